/* Effect guards (tracer/plan.py): which objects a line's calls, stores and operators may change. */
#include "core.h"

/* -- effect guards (tracer/plan.py) ---------------------------------------------------------------- */

static inline int immutable_type(PyTypeObject *t) {
    return t == &PyUnicode_Type || t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type ||
           t == &PyTuple_Type || t == &PyBytes_Type || t == Py_TYPE(Py_None) || t == &PyComplex_Type ||
           t == &PyFrozenSet_Type || t == &PyRange_Type;
}

/* plan._safe_factory: a defaultdict whose default_factory is None or one of these builtin types makes a
 * missing key's value without running other code. */
static int safe_factory(PyObject *d) {
    PyObject *f = PyObject_GetAttrString(d, "default_factory");
    if (f == NULL) {
        PyErr_Clear();
        return 0;
    }
    int safe = f == Py_None || f == (PyObject *)&PyList_Type || f == (PyObject *)&PyDict_Type ||
               f == (PyObject *)&PySet_Type || f == (PyObject *)&PyLong_Type || f == (PyObject *)&PyFloat_Type ||
               f == (PyObject *)&PyUnicode_Type || f == (PyObject *)&PyTuple_Type ||
               f == (PyObject *)&PyBytes_Type || f == (PyObject *)&PyFrozenSet_Type ||
               f == (PyObject *)&PyBool_Type || f == (PyObject *)deque_type;
    Py_DECREF(f);
    return safe;
}

static inline int dict_like(PyTypeObject *t) {
    return t == &PyDict_Type || t == ordereddict_type || t == counter_type || t == defaultdict_type;
}

/* plan._effect: K_PURE, K_MUTATES or K_UNKNOWN. */
static int guard_effect(long kind, PyObject *obj, PyObject *attr_kinds) {
    PyTypeObject *t = Py_TYPE(obj);
    if (kind == G_SUBSCR) {
        if (t == defaultdict_type) return safe_factory(obj) ? K_MUTATES : K_UNKNOWN; /* may insert the key */
        return t == &PyList_Type || t == &PyTuple_Type || t == &PyUnicode_Type || t == &PyBytes_Type ||
                       t == &PyDict_Type || t == &PyRange_Type || t == ordereddict_type || t == counter_type
                   ? K_PURE
                   : K_UNKNOWN;
    }
    if (kind == G_ITEM_METHOD) return t == &PyUnicode_Type || t == &PyBytes_Type ? K_PURE : K_UNKNOWN;
    if (kind != G_STORE && immutable_type(t)) return K_PURE;
    if (kind == G_METHOD) {
        int i = t == &PyList_Type    ? 0
                : dict_like(t)       ? 1
                : t == &PySet_Type   ? 2
                : t == deque_type && t != NULL ? 3
                                     : -1;
        if (t == defaultdict_type && !safe_factory(obj)) return K_UNKNOWN; /* setdefault, get... */
        if (i < 0 || !PyTuple_CheckExact(attr_kinds) || PyTuple_GET_SIZE(attr_kinds) != 4) return K_UNKNOWN;
        long k = PyLong_AsLong(PyTuple_GET_ITEM(attr_kinds, i));
        if (k == -1) PyErr_Clear();
        return k == K_PURE || k == K_MUTATES ? (int)k : K_UNKNOWN;
    }
    if (kind == G_STORE) return t == &PyList_Type || dict_like(t) ? K_MUTATES : K_UNKNOWN;
    return t == &PyList_Type || t == &PyDict_Type || t == &PySet_Type ? K_MUTATES : K_UNKNOWN; /* G_INPLACE */
}

/* fn is a plain function whose code the recorder traces (it has a plan): what a call of it runs is that
 * frame's own steps, each accounted for by settle(). */
static int traced_code(Core *self, PyObject *fn) {
    if (fn == NULL || !PyFunction_Check(fn)) return 0;
    PyObject *entry = code_entry(self, PyFunction_GET_CODE(fn));
    if (entry == NULL) return PyErr_Occurred() ? -1 : 0;
    return PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) >= 2 && PyTuple_GET_ITEM(entry, 1) != Py_None;
}

PyObject *library_effects = NULL;

/* What a G_CALL / G_LIBCALL guard calls: global `name`, or attribute `attr` of global module `name` (from
 * the module's dict: no __getattr__ runs). Borrowed; NULL when there is none (an error only on failure). */
static PyObject *callee(_PyInterpreterFrame *f, PyObject *name, PyObject *attr) {
    PyObject *g = PyDict_GetItemWithError(f->f_globals, name);
    if (g == NULL || attr == Py_None) return g;
    if (!PyModule_CheckExact(g) || !PyUnicode_CheckExact(attr)) return NULL;
    PyObject *d = PyModule_GetDict(g);
    return d != NULL ? PyDict_GetItemWithError(d, attr) : NULL;
}

/* plan.library_effect: -1 (changes nothing), k >= 0 (changes its argument k), -2 (not known); -3 error. A
 * few recent answers are kept (functions live as long as their module). */
static int library_effect(PyObject *fn) {
    static PyObject *seen[8];
    static int effect_of[8];
    if (!PyCFunction_CheckExact(fn) || library_effects == NULL) return -2;
    int slot = (int)(((uintptr_t)fn >> 4) % 8);
    if (seen[slot] == fn) return effect_of[slot];
    PyObject *module = PyCFunction_GET_SELF(fn);
    if (module == NULL || !PyModule_CheckExact(module)) return -2;
    PyObject *module_name = PyModule_GetNameObject(module);
    if (module_name == NULL) {
        PyErr_Clear();
        return -2;
    }
    PyObject *key = Py_BuildValue("(Ns)", module_name, ((PyCFunctionObject *)fn)->m_ml->ml_name);
    if (key == NULL) return -3;
    PyObject *found = PyDict_GetItemWithError(library_effects, key);
    Py_DECREF(key);
    if (found == NULL) return PyErr_Occurred() ? -3 : -2;
    long effect = PyLong_AsLong(found);
    if (effect == -1 && PyErr_Occurred()) return -3;
    Py_XSETREF(seen[slot], Py_NewRef(fn));
    effect_of[slot] = effect < 0 ? -1 : (int)effect;
    return effect_of[slot];
}

/* A G_METHOD guard whose receiver is not a builtin container: obj.attr is a traced plain function bound to
 * obj (the type's attribute lookup is the generic one, the type holds the function, the instance does not
 * shadow it). Only the generic lookup runs, and only once the type's attribute is known to be a function
 * (not a property, whose getter would be the program's code). */
static int traced_method(Core *self, PyObject *obj, PyObject *attr) {
    if (!PyUnicode_CheckExact(attr)) return 0;
    PyTypeObject *t = Py_TYPE(obj);
    if (t->tp_getattro != PyObject_GenericGetAttr) return 0;
    PyObject *fn = _PyType_Lookup(t, attr); /* borrowed; runs no code */
    int traced = traced_code(self, fn);
    if (traced <= 0) return traced;
    PyObject *bound = PyObject_GetAttr(obj, attr);
    if (bound == NULL) {
        PyErr_Clear();
        return 0;
    }
    int same = PyMethod_Check(bound) && PyMethod_GET_FUNCTION(bound) == fn;
    Py_DECREF(bound);
    return same;
}

/* plan.touched_objects for a simple frame: 0 with touched[0..*n) the objects the line may have changed
 * (borrowed, only compared), 1 when the guards cannot tell, -1 on error. `calls`: NULL, or the core when a
 * call of a traced function counts as known (settle(): its frame's steps account for it); for the line's
 * own recheck it does not (its callee's changes are looked for by the full check that follows it). */
int guard_touched(Core *calls, FrameRecord *rec, PyObject *guards, PyObject *objs, PyObject **touched, int *n) {
    *n = 0;
    if (!PyTuple_CheckExact(guards)) return 1;
    _PyInterpreterFrame *f = ((PyFrameObject *)rec->frame)->f_frame;
    for (Py_ssize_t g = 0; g < PyTuple_GET_SIZE(guards); g++) {
        PyObject *guard = PyTuple_GET_ITEM(guards, g);
        if (!PyTuple_CheckExact(guard) || PyTuple_GET_SIZE(guard) != 6) return 1;
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(guard, 0));
        Py_ssize_t slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(guard, 1));
        if ((kind == -1 || slot == -1) && PyErr_Occurred()) return -1;
        PyObject *name = PyTuple_GET_ITEM(guard, 3);
        if (kind == G_CALL || kind == G_LIBCALL) {
            PyObject *call = PyTuple_GET_ITEM(guard, 4); /* (attr or None, slot of the first argument) */
            if (!PyTuple_CheckExact(call) || PyTuple_GET_SIZE(call) != 2) return 1;
            PyObject *fn = callee(f, name, PyTuple_GET_ITEM(call, 0));
            if (fn == NULL) return PyErr_Occurred() ? -1 : 1;
            int effect = library_effect(fn);
            if (effect == -3) return -1;
            if (effect == -1) continue; /* a library function that changes nothing of the program's */
            if (effect >= 0) {          /* ... or only its argument `effect`: the first is known */
                Py_ssize_t arg_slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(call, 1));
                if (arg_slot == -1 && PyErr_Occurred()) return -1;
                PyObject *arg = effect == 0 && arg_slot >= 0 ? frame_local(rec->frame, arg_slot) : NULL;
                if (arg == NULL || !PyList_CheckExact(arg)) return 1;
                int known = 0;
                for (int i = 0; i < *n; i++) known |= touched[i] == arg;
                if (known) continue;
                if (*n == MAX_TOUCHED) return 1;
                touched[(*n)++] = arg;
                continue;
            }
            if (calls == NULL) return 1; /* a traced function: only settle() counts its steps */
            Py_INCREF(fn);
            int traced = traced_code(calls, fn);
            Py_DECREF(fn);
            if (traced < 0) return -1;
            if (!traced) return 1;
            continue;
        }
        if (kind == G_GLOBAL) {
            PyObject *hidden = PyDict_GetItemWithError(f->f_globals, name);
            if (hidden != NULL) return 1;
            if (PyErr_Occurred()) return -1;
            PyObject *builtin = PyDict_GetItemWithError(f->f_builtins, name);
            if (builtin == NULL && PyErr_Occurred()) return -1;
            if (builtin != PyTuple_GET_ITEM(guard, 5)) return 1;
            continue;
        }
        if (slot < 0) return 1;
        PyObject *candidates[2] = {frame_local(rec->frame, slot), NULL};
        if (PyTuple_GET_ITEM(guard, 2) == Py_True) {
            candidates[1] = PyDict_GetItemWithError(objs, name);
            if (candidates[1] == NULL && PyErr_Occurred()) return -1;
        }
        if (candidates[0] == NULL && candidates[1] == NULL) return 1; /* not bound before or after: cannot tell */
        for (int c = 0; c < 2; c++) {
            PyObject *obj = candidates[c];
            if (obj == NULL) continue;
            int effect = guard_effect(kind, obj, PyTuple_GET_ITEM(guard, 4));
            if (effect == K_UNKNOWN && calls != NULL && kind == G_METHOD) { /* self.helper(...) */
                int traced = traced_method(calls, obj, PyTuple_GET_ITEM(guard, 5));
                if (traced < 0) return -1;
                if (traced) continue;
            }
            if (effect == K_UNKNOWN) return 1;
            if (effect == K_MUTATES) {
                int known = 0;
                for (int i = 0; i < *n; i++) known |= touched[i] == obj;
                if (known) continue;
                if (*n == MAX_TOUCHED) return 1;
                touched[(*n)++] = obj;
            }
        }
    }
    return 0;
}

/* Can the value of mutable `name` (obj) show one of the touched objects? Yes when it is one, or when its
 * fingerprint (which lists every container its repr shows) holds one; a value without a fingerprint may. */
int shows_touched(FrameRecord *rec, PyObject *name, PyObject *obj, PyObject **touched, int n) {
    for (int i = 0; i < n; i++) {
        if (touched[i] == obj) return 1;
    }
    PyObject *head = rec->heads ? PyDict_GetItemWithError(rec->heads, name) : NULL;
    if (head == NULL) return PyErr_Occurred() ? -1 : 1;
    if (!PyTuple_CheckExact(head) || PyTuple_GET_SIZE(head) != 2 || !PyList_CheckExact(PyTuple_GET_ITEM(head, 0)))
        return 1;
    Py_ssize_t kind = PyLong_AsSsize_t(PyTuple_GET_ITEM(head, 1));
    if (kind == -1 && PyErr_Occurred()) return -1;
    if (kind == FP_FLAT) return 0; /* it shows no other container, and it is none of them */
    if (kind == HEAD_TRACKED_FLAT) return 0; /* tracked, none of them, and its elements cannot change */
    if (kind != FINGERPRINT) return 1;
    PyObject *fp = PyTuple_GET_ITEM(head, 0);
    PyObject **items = ((PyListObject *)fp)->ob_item;
    Py_ssize_t size = PyList_GET_SIZE(fp);
    for (Py_ssize_t j = 0; j < size; j++) {
        for (int i = 0; i < n; i++) {
            if (items[j] == touched[i]) return 1;
        }
    }
    return 0;
}

/* After rec's last line ran (at rec's next step, or at a call it makes): which tracked containers may have
 * changed unseen? The object tracker skips comparing a container whose id is in self->settled; this keeps
 * that set true. When the line's guards name what it changed (calls of traced functions count: their
 * frames' own steps settle them), only those leave the set; when they cannot tell, or the frame is not a
 * simple one, or another thread ran, the set is emptied (every container is compared at its next look). */
int settle(Core *self, FrameRecord *rec) {
    PyObject *settled = self->settled;
    if (settled == NULL || !PySet_CheckExact(settled) || PySet_GET_SIZE(settled) == 0) {
        if (rec != NULL) self->settle_thread = rec->thread;
        return 0;
    }
    if (rec == NULL || rec->thread != self->settle_thread || !has_info(rec) ||
        info_item(rec, INFO_IS_MODULE) == Py_True || info_item(rec, INFO_SIMPLE) != Py_True || is_none(rec->objs) ||
        is_none(rec->frame) || !PyFrame_Check(rec->frame)) {
        if (rec != NULL) self->settle_thread = rec->thread;
        return PySet_Clear(settled);
    }
    PyObject *lp = last_line_plan(rec);
    if (lp == NULL) return -1;
    if (PyTuple_GET_ITEM(lp, 3) == Py_True) return PySet_Clear(settled); /* no analysis of the line */
    if (PyTuple_GET_ITEM(lp, 2) != Py_True) return 0; /* the line changes no object */
    if (PyTuple_GET_SIZE(lp) <= 4 || PyTuple_GET_ITEM(lp, 4) == Py_None) return PySet_Clear(settled);
    PyObject *touched[MAX_TOUCHED];
    int n = 0;
    int rc = guard_touched(self, rec, PyTuple_GET_ITEM(lp, 4), rec->objs, touched, &n);
    if (rc < 0) return -1;
    if (rc == 1) return PySet_Clear(settled);
    for (int i = 0; i < n; i++) {
        PyObject *key = PyLong_FromVoidPtr(touched[i]);
        if (key == NULL) return -1;
        int d = PySet_Discard(settled, key);
        Py_DECREF(key);
        if (d < 0) return -1;
    }
    return 0;
}
