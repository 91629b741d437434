/* The object tracker's commonest looks and changes, done in C (tracer/objects.py is the reference).
 *
 * A builtin container whose text is cut at the value limit is recorded by structure by the Python
 * ObjectTracker: a shadow of its elements and element-level ops. Going through Python each time the
 * recorder looks at such a container cost about 4 us (a dozen Python calls), at every line that appends
 * to a big list, stores one of its items or sets a key of a big dict. This unit does exactly what the
 * Python methods do in the commonest cases, on the same Entry objects and the same ops list, and hands
 * every other case to Python before changing anything:
 *
 *   - a list the line only appended to (LinePlan.appends: ObjectTracker.grow),
 *   - a list the line only stored items of, at indexes that locals hold (item_stores: store_items),
 *   - a list the line only popped from its end (end_ops "pop": end_op),
 *   - a list nothing accounts for that still holds the objects of its shadow (observe, _diff_list),
 *   - a watched dict (any line: the dict watcher's log says what changed; ObjectTracker._drain),
 *   - a container holding elements that change in place, when the line's guards name what it changed
 *     and that is neither the container nor one of them (_nested_may_change).
 *
 * Changes are recorded here only for containers holding no element that changes in place, with elements
 * msgpack stores as themselves (ints of 64 bits, floats, str, bytes, bool, None), outside the head their
 * text shows (a change there goes to Python, which makes the text again).
 * tests/test_objects.py checks that the ops are the Python tracker's, op for op.
 */
#include "core.h"

/* -- Entry ------------------------------------------------------------------------------------------ */

static PyObject *Entry_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *obj;
    Py_ssize_t oid, code;
    if (!PyArg_ParseTuple(args, "Onn", &obj, &oid, &code)) return NULL;
    Entry *e = (Entry *)type->tp_alloc(type, 0);
    if (e == NULL) return NULL;
    e->obj = Py_NewRef(obj);
    e->oid = oid;
    e->code = code;
    e->shadow = Py_NewRef(Py_None);
    e->keys = Py_NewRef(Py_None);
    e->shown = Py_NewRef(Py_None);
    e->nested = PyDict_New();
    e->fps = PyDict_New();
    e->nested_ids = PySet_New(NULL);
    e->dirty = PyList_New(0);
    e->base = -1;
    if (e->nested == NULL || e->fps == NULL || e->nested_ids == NULL || e->dirty == NULL) {
        Py_DECREF(e);
        return NULL;
    }
    return (PyObject *)e;
}

static int Entry_traverse(Entry *e, visitproc visit, void *arg) {
    Py_VISIT(e->obj);
    Py_VISIT(e->shadow);
    Py_VISIT(e->keys);
    Py_VISIT(e->nested);
    Py_VISIT(e->fps);
    Py_VISIT(e->nested_ids);
    Py_VISIT(e->dirty);
    Py_VISIT(e->shown);
    return 0;
}

static int Entry_clear(Entry *e) {
    Py_CLEAR(e->obj);
    Py_CLEAR(e->shadow);
    Py_CLEAR(e->keys);
    Py_CLEAR(e->nested);
    Py_CLEAR(e->fps);
    Py_CLEAR(e->nested_ids);
    Py_CLEAR(e->dirty);
    Py_CLEAR(e->shown);
    return 0;
}

static void Entry_dealloc(Entry *e) {
    PyObject_GC_UnTrack(e);
    Entry_clear(e);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

#define ENTRY_OFF(x) offsetof(Entry, x)
static PyMemberDef Entry_members[] = {
    {"obj", Py_T_OBJECT_EX, ENTRY_OFF(obj), 0, NULL},
    {"shadow", Py_T_OBJECT_EX, ENTRY_OFF(shadow), 0, NULL},
    {"keys", Py_T_OBJECT_EX, ENTRY_OFF(keys), 0, NULL},
    {"nested", Py_T_OBJECT_EX, ENTRY_OFF(nested), 0, NULL},
    {"fps", Py_T_OBJECT_EX, ENTRY_OFF(fps), 0, NULL},
    {"nested_ids", Py_T_OBJECT_EX, ENTRY_OFF(nested_ids), 0, NULL},
    {"dirty", Py_T_OBJECT_EX, ENTRY_OFF(dirty), 0, NULL},
    {"shown", Py_T_OBJECT_EX, ENTRY_OFF(shown), 0, NULL},
    {"oid", Py_T_PYSSIZET, ENTRY_OFF(oid), 0, NULL},
    {"code", Py_T_PYSSIZET, ENTRY_OFF(code), 0, NULL},
    {"base", Py_T_PYSSIZET, ENTRY_OFF(base), 0, NULL},
    {"since_snap", Py_T_PYSSIZET, ENTRY_OFF(since_snap), 0, NULL},
    {"version", Py_T_PYSSIZET, ENTRY_OFF(version), 0, NULL},
    {"text_version", Py_T_PYSSIZET, ENTRY_OFF(text_version), 0, NULL},
    {"touched", Py_T_BOOL, ENTRY_OFF(touched), 0, NULL},
    {"watched", Py_T_BOOL, ENTRY_OFF(watched), 0, NULL},
    {"rescan", Py_T_BOOL, ENTRY_OFF(rescan), 0, NULL},
    {NULL},
};

PyTypeObject EntryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._core.Entry",
    .tp_basicsize = sizeof(Entry),
    .tp_dealloc = (destructor)Entry_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Entry(obj, oid, code): one tracked container (tracer/objects.py _Entry).",
    .tp_traverse = (traverseproc)Entry_traverse,
    .tp_clear = (inquiry)Entry_clear,
    .tp_members = Entry_members,
    .tp_new = Entry_new,
};

/* -- helpers ---------------------------------------------------------------------------------------- */

/* True for a value msgpack stores as itself in a node (objects.py _NATIVE, ints within 64 bits). */
static inline int plain(PyObject *x) {
    PyTypeObject *t = Py_TYPE(x);
    if (t == &PyLong_Type) {
        if (_PyLong_IsCompact((PyLongObject *)x)) return 1;
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return !overflow;
    }
    return t == &PyFloat_Type || t == &PyUnicode_Type || t == &PyBytes_Type || t == &PyBool_Type || x == Py_None;
}

/* The tracked entry of obj (borrowed), or NULL (none; an error is set only on failure). */
static Entry *entry_of(Core *self, PyObject *obj) {
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL) return NULL;
    PyObject *e = PyDict_GetItemWithError(self->t_entries, key);
    Py_DECREF(key);
    if (e == NULL || !Py_IS_TYPE(e, &EntryType) || ((Entry *)e)->obj != obj) return NULL;
    return (Entry *)e;
}

/* ObjectTracker._op: ops.append([step, oid, op, *args]); the entry's counters. */
static int add_op(Core *self, Entry *e, int op, Py_ssize_t size, int nargs, PyObject **args) {
    PyObject *rec = PyList_New(3 + nargs);
    if (rec == NULL) return -1;
    PyObject *step = PyLong_FromSsize_t(self->count), *oid = PyLong_FromSsize_t(e->oid), *code = PyLong_FromLong(op);
    PyList_SET_ITEM(rec, 0, step);
    PyList_SET_ITEM(rec, 1, oid);
    PyList_SET_ITEM(rec, 2, code);
    for (int i = 0; i < nargs; i++) PyList_SET_ITEM(rec, 3 + i, Py_NewRef(args[i]));
    int rc = (step && oid && code) ? PyList_Append(self->t_ops, rec) : -1;
    Py_DECREF(rec);
    if (rc < 0) return -1;
    e->since_snap += size;
    e->touched = 1;
    e->version++;
    return 0;
}

static int settled_add(Core *self, PyObject *obj) {
    if (self->settled == NULL || !PySet_CheckExact(self->settled)) return 0;
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL) return -1;
    int rc = PySet_Add(self->settled, key);
    Py_DECREF(key);
    return rc;
}

/* ObjectTracker._planned_done(in_head=False): the text is still right, the shadow exact. */
static int planned_done(Core *self, Entry *e, PyObject *obj) {
    e->text_version = e->version;
    return settled_add(self, obj) < 0 ? -1 : 1;
}

/* How many elements the entry's cut text shows (len(shown[1][0])), or -1 when it has no head. */
static Py_ssize_t shown_count(Entry *e) {
    PyObject *shown = e->shown;
    if (!PyTuple_CheckExact(shown) || PyTuple_GET_SIZE(shown) != 2) return -1;
    PyObject *head = PyTuple_GET_ITEM(shown, 1);
    if (!PyTuple_CheckExact(head) || PyTuple_GET_SIZE(head) != 2 || !PyList_CheckExact(PyTuple_GET_ITEM(head, 0)))
        return -1;
    return PyList_GET_SIZE(PyTuple_GET_ITEM(head, 0));
}

/* -- lists: the bytecode plan's changes (1 recorded, 0 not handled, -1 error) ----------------------- */

/* ObjectTracker.grow: only appended to. */
static int list_grow(Core *self, Entry *e, PyObject *obj) {
    PyObject *old = e->shadow;
    Py_ssize_t n = PyList_GET_SIZE(old), m = PyList_GET_SIZE(obj);
    if (m < n) return 0;
    if (m > n) {
        for (Py_ssize_t i = n; i < m; i++) {
            if (!plain(PyList_GET_ITEM(obj, i))) return 0;
        }
        PyObject *segment = PyList_GetSlice(obj, n, m);
        PyObject *at = PyLong_FromSsize_t(n);
        int rc = -1;
        if (segment != NULL && at != NULL) {
            PyObject *args[3] = {at, at, segment};
            rc = add_op(self, e, OP_SPLICE, m - n + 1, 3, args);
            if (rc == 0) rc = PyList_SetSlice(old, n, n, segment);
        }
        Py_XDECREF(segment);
        Py_XDECREF(at);
        if (rc < 0) return -1;
    }
    return planned_done(self, e, obj);
}

/* ObjectTracker.store_items: items stored at the indexes the locals `keys` hold, all past the head. */
static int list_items(Core *self, FrameRecord *rec, Entry *e, PyObject *obj, PyObject *keys) {
    PyObject *old = e->shadow;
    Py_ssize_t n = PyList_GET_SIZE(old), shown = shown_count(e);
    Py_ssize_t nkeys = PyTuple_GET_SIZE(keys);
    if (shown < 0 || PyList_GET_SIZE(obj) != n || nkeys > MAX_TOUCHED || is_none(rec->objs)) return 0;
    Py_ssize_t positions[MAX_TOUCHED];
    int count = 0;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *index = PyDict_GetItemWithError(rec->objs, PyTuple_GET_ITEM(keys, k));
        if (index == NULL) return PyErr_Occurred() ? -1 : 0;
        if (!PyLong_CheckExact(index)) return 0;
        Py_ssize_t i = PyLong_AsSsize_t(index);
        if (i == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (i < 0) i += n;
        if (i < 0 || i >= n || i < shown) return 0; /* out of range, or in the head its text shows */
        if (!plain(PyList_GET_ITEM(obj, i))) return 0;
        int seen = 0;
        for (int j = 0; j < count; j++) seen |= positions[j] == i;
        if (!seen) {
            int j = count++;
            while (j > 0 && positions[j - 1] > i) { /* kept sorted: ops in index order, as Python's */
                positions[j] = positions[j - 1];
                j--;
            }
            positions[j] = i;
        }
    }
    for (int j = 0; j < count; j++) {
        Py_ssize_t i = positions[j];
        PyObject *x = PyList_GET_ITEM(obj, i);
        if (x == PyList_GET_ITEM(old, i)) continue;
        PyObject *at = PyLong_FromSsize_t(i);
        if (at == NULL) return -1;
        PyObject *args[2] = {at, x};
        int rc = add_op(self, e, OP_SET, 1, 2, args);
        Py_DECREF(at);
        if (rc < 0) return -1;
        if (PyList_SetItem(old, i, Py_NewRef(x)) < 0) return -1;
    }
    return planned_done(self, e, obj);
}

/* ObjectTracker.end_op(obj, "pop") on a list: items left its end, past the head. */
static int list_pop(Core *self, Entry *e, PyObject *obj) {
    PyObject *old = e->shadow;
    Py_ssize_t n = PyList_GET_SIZE(old), m = PyList_GET_SIZE(obj), shown = shown_count(e);
    if (m > n) return 0;
    if (m == n) return planned_done(self, e, obj);
    if (m && PyList_GET_ITEM(obj, m - 1) != PyList_GET_ITEM(old, m - 1)) return 0;
    if (shown < 0) shown = n + 1;
    if (m < shown) return 0; /* its text shows the change: Python makes it again */
    PyObject *lo = PyLong_FromSsize_t(m), *hi = PyLong_FromSsize_t(n), *none = PyList_New(0);
    int rc = -1;
    if (lo && hi && none) {
        PyObject *args[3] = {lo, hi, none};
        rc = add_op(self, e, OP_SPLICE, 1, 3, args);
        if (rc == 0) rc = PyList_SetSlice(old, m, n, NULL);
    }
    Py_XDECREF(lo);
    Py_XDECREF(hi);
    Py_XDECREF(none);
    return rc < 0 ? -1 : planned_done(self, e, obj);
}

static int list_planned(Core *self, FrameRecord *rec, PyObject *name, Entry *e, PyObject *obj) {
    if (!self->guarded || !PyList_CheckExact(e->shadow) || !has_info(rec)) return 0;
    PyObject *lp = last_line_plan(rec);
    if (lp == NULL) return -1;
    if (PyTuple_GET_SIZE(lp) <= LP_PLANNED || !PyDict_CheckExact(PyTuple_GET_ITEM(lp, LP_PLANNED))) return 0;
    PyObject *plan = PyDict_GetItemWithError(PyTuple_GET_ITEM(lp, LP_PLANNED), name);
    if (plan == NULL) return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_CheckExact(plan) || PyTuple_GET_SIZE(plan) < 1) return 0;
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(plan, 0));
    if (kind == -1 && PyErr_Occurred()) return -1;
    if (kind == PLAN_GROW) return list_grow(self, e, obj);
    if (kind == PLAN_POP) return list_pop(self, e, obj);
    if (kind == PLAN_ITEMS && PyTuple_GET_SIZE(plan) == 2 && PyTuple_CheckExact(PyTuple_GET_ITEM(plan, 1)))
        return list_items(self, rec, e, obj, PyTuple_GET_ITEM(plan, 1));
    return 0;
}

/* -- dicts: the watcher's log -------------------------------------------------------------------- */

/* The watched entry an event is for (borrowed), NULL when none (or on error: check PyErr_Occurred). */
static Entry *event_entry(Core *self, PyObject *event) {
    PyObject *e = PyDict_GetItemWithError(self->t_entries, PyTuple_GET_ITEM(event, 0));
    if (e == NULL || !Py_IS_TYPE(e, &EntryType)) return NULL;
    Entry *entry = (Entry *)e;
    return entry->watched && !entry->rescan ? entry : NULL;
}

/* ObjectTracker._drain, when every logged change of a tracked dict is a key set or deleted with scalar
 * key and value, in a dict holding no nested element: 1 (the log is applied and emptied), 0 (left to
 * Python, untouched), -1 on error. */
static int drain_log(Core *self) {
    if (dict_log == NULL) return 1;
    if (dict_log_lost || !PyList_CheckExact(dict_log)) return 0;
    Py_ssize_t n = PyList_GET_SIZE(dict_log);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ev = PyList_GET_ITEM(dict_log, i);
        if (!PyTuple_CheckExact(ev) || PyTuple_GET_SIZE(ev) != 4) return 0;
        Entry *e = event_entry(self, ev);
        if (e == NULL) {
            if (PyErr_Occurred()) return -1;
            continue;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(ev, 1));
        if (kind == -1 && PyErr_Occurred()) return -1;
        if (kind != PyDict_EVENT_ADDED && kind != PyDict_EVENT_MODIFIED && kind != PyDict_EVENT_DELETED) return 0;
        if (!PyDict_CheckExact(e->shadow) || !PyDict_CheckExact(e->nested) || PyDict_GET_SIZE(e->nested)) return 0;
        if (!plain(PyTuple_GET_ITEM(ev, 2))) return 0;
        if (kind != PyDict_EVENT_DELETED && !plain(PyTuple_GET_ITEM(ev, 3))) return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ev = PyList_GET_ITEM(dict_log, i);
        Entry *e = event_entry(self, ev);
        if (e == NULL) {
            if (PyErr_Occurred()) return -1;
            continue;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(ev, 1));
        PyObject *key = PyTuple_GET_ITEM(ev, 2), *value = PyTuple_GET_ITEM(ev, 3);
        if (kind == PyDict_EVENT_DELETED) {
            int has = PyDict_Contains(e->shadow, key);
            if (has < 0) return -1;
            if (!has) continue;
            if (PyDict_DelItem(e->shadow, key) < 0 || add_op(self, e, OP_DEL, 1, 1, &key) < 0) return -1;
        } else {
            PyObject *args[2] = {key, value};
            if (PyDict_SetItem(e->shadow, key, value) < 0 || add_op(self, e, OP_SET, 1, 2, args) < 0) return -1;
        }
    }
    /* Nothing above runs Python code or changes a watched dict: the log is still those n events. */
    return PyList_SetSlice(dict_log, 0, n, NULL) < 0 ? -1 : 1;
}

/* A watched dict: the log applied; 1 when its text is still the one its entry shows (then current), 0 not
 * handled, -1 error. */
static int dict_logged(Core *self, Entry *e, PyObject *obj) {
    if (!e->watched || e->rescan) return 0;
    PyObject *shown = e->shown;
    if (!PyTuple_CheckExact(shown) || PyTuple_GET_SIZE(shown) != 2) return 0;
    int rc = drain_log(self);
    if (rc <= 0) return rc; /* (the log never changes what is nested: a nested element sends it to Python) */
    if (e->version != e->text_version) {
        PyObject *head = PyTuple_GET_ITEM(shown, 1);
        if (head == Py_None) return 0;
        int same = head_unchanged(obj, head);
        if (same <= 0) return same;
        e->text_version = e->version;
    }
    return settled_add(self, obj) < 0 ? -1 : 1;
}

/* -- the recorder's look at a tracked container ----------------------------------------------------- */

/* The encoding ValueEncoder.encode gives a tracked container whose text is current ([text, flags |
 * FLAG_OBJECT, oid]), then PythonRecorder._recheck's comparison with the recorded one: a new reference to
 * it when it differs (texts[name] updated), Py_None when it is the same, NOT_HANDLED, NULL on error. */
static PyObject *recorded_text(FrameRecord *rec, PyObject *name, Entry *e) {
    PyObject *shown = e->shown;
    if (rec->texts == NULL || !PyTuple_CheckExact(shown) || PyTuple_GET_SIZE(shown) != 2) return NOT_HANDLED;
    PyObject *text = PyTuple_GET_ITEM(shown, 0);
    if (!PyList_CheckExact(text) || PyList_GET_SIZE(text) < 2 || !PyLong_CheckExact(PyList_GET_ITEM(text, 1)))
        return NOT_HANDLED;
    long flags = PyLong_AsLong(PyList_GET_ITEM(text, 1));
    if (flags == -1 && PyErr_Occurred()) return NULL;
    PyObject *enc = Py_BuildValue("[Oln]", PyList_GET_ITEM(text, 0), flags | FLAG_OBJECT, e->oid);
    if (enc == NULL) return NULL;
    PyObject *old = PyDict_GetItemWithError(rec->texts, name);
    if (old == NULL && PyErr_Occurred()) {
        Py_DECREF(enc);
        return NULL;
    }
    int same = old != NULL ? same_encoding(old, enc) : 0;
    if (same < 0 || (!same && PyDict_SetItem(rec->texts, name, enc) < 0)) {
        Py_DECREF(enc);
        return NULL;
    }
    if (same) {
        Py_DECREF(enc);
        Py_RETURN_NONE;
    }
    return enc;
}

/* A flat list that no plan accounts for (code of unknown effect ran, or the line's plan names no change
 * of it): unchanged when it is settled (ObjectTracker.settled) or holds the very objects of its shadow
 * (what ObjectTracker._diff_list finds first). 1 unchanged, 0 changed (or cannot tell), -1 error. */
static int list_unchanged(Core *self, Entry *e, PyObject *obj) {
    PyObject *old = e->shadow;
    if (!PyList_CheckExact(old)) return 0;
    if (self->settled != NULL && PySet_CheckExact(self->settled)) {
        PyObject *key = PyLong_FromVoidPtr(obj);
        if (key == NULL) return -1;
        int in = PySet_Contains(self->settled, key);
        Py_DECREF(key);
        if (in) return in;
    }
    Py_ssize_t n = PyList_GET_SIZE(old);
    if (PyList_GET_SIZE(obj) != n) return 0;
    if (n && memcmp(((PyListObject *)old)->ob_item, ((PyListObject *)obj)->ob_item, n * sizeof(PyObject *)))
        return 0;
    return settled_add(self, obj) < 0 ? -1 : 1;
}

PyObject *tracker_recheck(Core *self, FrameRecord *rec, PyObject *name, PyObject *obj, int flat_head) {
    if (self->t_entries == NULL || self->t_ops == NULL) return NOT_HANDLED;
    Entry *e = entry_of(self, obj);
    if (e == NULL) return PyErr_Occurred() ? NULL : NOT_HANDLED;
    if (e->shown == Py_None || !PyDict_CheckExact(e->nested)) return NOT_HANDLED;
    /* The head the recorder keeps says whether it holds elements that change in place (Python sets it after
     * each look): when that is no longer true, Python looks once and sets it again. */
    if ((PyDict_GET_SIZE(e->nested) == 0) != (flat_head != 0)) return NOT_HANDLED;
    if (PyDict_GET_SIZE(e->nested)) {
        /* Elements that can change in place: only when the line's guards say what it changed, and that is
         * neither the container nor one of them (ObjectTracker._nested_may_change) */
        if (!self->guarded || self->touched_n < 0 || self->touched_arr == NULL || !PySet_CheckExact(e->nested_ids))
            return NOT_HANDLED;
        for (int i = 0; i < self->touched_n; i++) {
            if (self->touched_arr[i] == obj) return NOT_HANDLED;
            PyObject *key = PyLong_FromVoidPtr(self->touched_arr[i]);
            if (key == NULL) return NULL;
            int in = PySet_Contains(e->nested_ids, key);
            Py_DECREF(key);
            if (in) return in < 0 ? NULL : NOT_HANDLED;
        }
    }
    PyObject *result = NOT_HANDLED;
    Py_INCREF(e);
    if (PyList_CheckExact(obj) && PyDict_GET_SIZE(e->nested)) {
        if (e->version == e->text_version) {
            int rc = list_unchanged(self, e, obj);
            result = rc == 1 ? recorded_text(rec, name, e) : rc < 0 ? NULL : NOT_HANDLED;
        }
    } else if (PyList_CheckExact(obj)) { /* ObjectTracker._planned_entry: nothing nested in it */
        if (e->version == e->text_version) {
            int rc = list_planned(self, rec, name, e, obj);
            if (rc == 1) {
                result = Py_NewRef(Py_None); /* _planned_change: its text is the one recorded */
            } else if (rc == 0) {
                rc = list_unchanged(self, e, obj);
                if (rc == 1) result = recorded_text(rec, name, e);
            }
            if (rc < 0) result = NULL;
        }
    } else if (PyDict_Check(obj)) {
        int rc = dict_logged(self, e, obj);
        result = rc == 1 ? recorded_text(rec, name, e) : rc < 0 ? NULL : NOT_HANDLED;
    }
    Py_DECREF(e);
    return result;
}

/* Core._bind_tracker(entries, ops): the object tracker's dict and list this unit records into. */
PyObject *Core_bind_tracker(Core *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyDict_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_bind_tracker(entries: dict, ops: list)");
        return NULL;
    }
    Py_XSETREF(self->t_entries, Py_NewRef(args[0]));
    Py_XSETREF(self->t_ops, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}
