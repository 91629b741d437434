/* What changed in a frame since its last step: binding, rechecking and forgetting its locals. */
#include "core.h"

static int store_text(FrameRecord *rec, PyObject *name, PyObject *enc, PyObject **changes);

/* Bind name to obj in rec (PythonRecorder._set). Consumes `changes` (NULL or list); returns the new
 * changes (NULL or list) in *out. Returns -1 on error.
 * old_obj: the object the name was bound to (borrowed, may be NULL), when the caller knows it. */
static int record_set(Core *self, FrameRecord *rec, PyObject *name, PyObject *obj, PyObject *old_obj,
                      PyObject *changes, PyObject **out) {
    PyObject *text = scalar_encoding(self->limit, obj);
    if (text == NULL && PyErr_Occurred()) {
        Py_XDECREF(changes);
        return -1;
    }
    if (text != NULL) {
        /* Decided before objs[name] is replaced (that may free old_obj). */
        int same = old_obj != NULL && is_native(self->limit, old_obj) ? same_encoding(old_obj, text) : -2;
        if (same == -1) goto fail_text;
        if (PyDict_SetItem(rec->objs, name, obj) < 0) goto fail_text;
        if (n_mutables(rec) > 0) {
            int had = PySet_Discard(rec->mutables, name);
            if (had < 0) goto fail_text;
            if (had && rec->heads && dict_discard(rec->heads, name) < 0) goto fail_text;
        }
        if (same == -2) {
            PyObject *old = PyDict_GetItemWithError(rec->texts, name);
            if (old == NULL && PyErr_Occurred()) goto fail_text;
            same = old != NULL ? same_encoding(old, text) : 0;
        }
        if (same < 0) goto fail_text;
        if (!same) {
            if (PyDict_SetItem(rec->texts, name, text) < 0) goto fail_text;
            changes = changes_add(changes, name, text);
            if (changes == NULL) {
                Py_DECREF(text);
                return -1;
            }
        }
        Py_DECREF(text);
        *out = changes;
        return 0;
    fail_text:
        Py_DECREF(text);
        Py_XDECREF(changes);
        return -1;
    }
    int immutable = 0;
    PyObject *enc = encode_container(self->limit, obj, &immutable);
    if (enc != NULL) {
        int rc = PyDict_SetItem(rec->objs, name, obj);
        if (rc == 0 && immutable) {
            rc = (rec->mutables && PySet_Discard(rec->mutables, name) < 0) ||
                 (rec->heads && dict_discard(rec->heads, name) < 0) ? -1 : 0;
        } else if (rc == 0) {
            PyObject *mutables = get_mutables(rec);
            rc = mutables == NULL || PySet_Add(mutables, name) < 0 || fp_store(rec, name, obj) < 0 ? -1 : 0;
        }
        if (rc == 0) rc = store_text(rec, name, enc, &changes);
        Py_DECREF(enc);
        if (rc < 0) {
            Py_XDECREF(changes);
            return -1;
        }
        *out = changes;
        return 0;
    }
    if (PyErr_Occurred()) {
        Py_XDECREF(changes);
        return -1;
    }
    PyObject *r = PyObject_CallMethodObjArgs((PyObject *)self, S_set, rec, name, obj, changes_arg(changes), NULL);
    Py_XDECREF(changes);
    if (r == NULL) return -1;
    if (fp_remember(rec, name, obj) < 0) {
        Py_DECREF(r);
        return -1;
    }
    if (r == Py_None) {
        Py_DECREF(r);
        *out = NULL;
    } else {
        *out = r;
    }
    return 0;
}

/* rec.heads[name] = v's fingerprint (or no head when it has none). */
int fp_store(FrameRecord *rec, PyObject *name, PyObject *v) {
    int flat;
    PyObject *fp = fp_list(v, &flat);
    if (fp == NULL) return -1;
    int rc;
    if (fp != Py_None) {
        PyObject *head = Py_BuildValue("(Oi)", fp, flat ? FP_FLAT : FINGERPRINT);
        PyObject *heads = get_heads(rec);
        rc = head == NULL || heads == NULL ? -1 : PyDict_SetItem(heads, name, head);
        Py_XDECREF(head);
    } else {
        rc = rec->heads ? dict_discard(rec->heads, name) : 0;
    }
    Py_DECREF(fp);
    return rc < 0 ? -1 : 0;
}

/* texts[name] = enc when it differs, then changes += [name, enc] (or the delta from the old text). */
static int store_text(FrameRecord *rec, PyObject *name, PyObject *enc, PyObject **changes) {
    PyObject *old = PyDict_GetItemWithError(rec->texts, name);
    if (old == NULL && PyErr_Occurred()) return -1;
    PyObject *delta = NULL;
    if (old != NULL) {
        int same = same_encoding(old, enc);
        if (same < 0) return -1;
        if (same) return 0;
        delta = text_delta(old, enc); /* before old is replaced (texts holds its only reference) */
    }
    if (PyDict_SetItem(rec->texts, name, enc) < 0) {
        Py_XDECREF(delta);
        return -1;
    }
    *changes = changes_add(*changes, name, delta ? delta : enc);
    Py_XDECREF(delta);
    return *changes == NULL ? -1 : 0;
}

/* -- recent renderings ------------------------------------------------------------------------------
 * The same container is often rendered again right after it was rendered: under a second name (an
 * alias), or in the caller once a callee that changed it returns (the callee's frame rendered it after
 * its last change). Each fresh rendering is kept with its fingerprint for RENDER_KEEP steps; a rendering
 * whose fingerprint still matches is the current one, so it is reused instead of rendering again. Entries
 * hold references (the fingerprint holds the value), released after RENDER_KEEP steps, so a value the
 * program dropped lives on for at most that many steps. */
static PyObject *render_lookup(Core *self, PyObject *obj, PyObject **head) {
    struct Render *r = &self->renders[((uintptr_t)obj >> 4) % RENDER_CACHE];
    if (r->obj != obj || self->count - r->step > RENDER_KEEP) return NULL;
    int same = head_unchanged(obj, r->head);
    if (same != 1) return NULL; /* -1 (an error) leaves it set for the caller */
    *head = Py_NewRef(r->head);
    return Py_NewRef(r->enc);
}

static void render_remember(Core *self, PyObject *obj, PyObject *head, PyObject *enc) {
    struct Render *r = &self->renders[((uintptr_t)obj >> 4) % RENDER_CACHE];
    Py_XSETREF(r->obj, Py_NewRef(obj));
    Py_XSETREF(r->head, Py_NewRef(head));
    Py_XSETREF(r->enc, Py_NewRef(enc));
    r->step = self->count;
    if (self->renders_oldest < 0 || r->step < self->renders_oldest) self->renders_oldest = r->step;
}

/* Release the renderings older than RENDER_KEEP steps (emit calls it when one may be). */
void render_sweep(Core *self) {
    Py_ssize_t oldest = -1;
    for (int i = 0; i < RENDER_CACHE; i++) {
        struct Render *r = &self->renders[i];
        if (r->obj == NULL) continue;
        if (self->count - r->step > RENDER_KEEP) {
            Py_CLEAR(r->obj);
            Py_CLEAR(r->head);
            Py_CLEAR(r->enc);
        } else if (oldest < 0 || r->step < oldest) {
            oldest = r->step;
        }
    }
    self->renders_oldest = oldest;
}

/* The new encoding of a mutable value if its text changed, else Py_None (PythonRecorder._recheck).
 * New reference; NULL on error. */
static PyObject *record_recheck(Core *self, FrameRecord *rec, PyObject *name, PyObject *obj) {
    PyObject *head = rec->heads ? PyDict_GetItemWithError(rec->heads, name) : NULL;
    if (head == NULL && PyErr_Occurred()) return NULL;
    if (head != NULL) {
        int same = head_unchanged(obj, head);
        if (same == -1) return NULL;
        if (same == 1) Py_RETURN_NONE;
    }
    if (head != NULL && self->t_entries != NULL && PyTuple_CheckExact(head) && PyTuple_GET_SIZE(head) == 2 &&
        PyLong_CheckExact(PyTuple_GET_ITEM(head, 1))) {
        Py_ssize_t kind = PyLong_AsSsize_t(PyTuple_GET_ITEM(head, 1));
        if (kind == HEAD_TRACKED_FLAT || kind == HEAD_TRACKED) {
            /* a container the object tracker records: its commonest changes are recorded in C (tracker.c) */
            PyObject *r = tracker_recheck(self, rec, name, obj, kind == HEAD_TRACKED_FLAT);
            if (r != NOT_HANDLED) return r;
        }
    }
    PyObject *recent_head = NULL;
    PyObject *enc = render_lookup(self, obj, &recent_head);
    if (enc == NULL && PyErr_Occurred()) return NULL;
    int fresh = enc == NULL;
    int immutable = 0;
    if (fresh) enc = encode_container(self->limit, obj, &immutable);
    if (enc != NULL) {
        PyObject *changes = NULL;
        int rc;
        if (fresh) {
            rc = fp_store(rec, name, obj);
            PyObject *new_head = rc == 0 && rec->heads ? PyDict_GetItemWithError(rec->heads, name) : NULL;
            if (new_head != NULL) render_remember(self, obj, new_head, enc);
            if (PyErr_Occurred()) rc = -1;
        } else {
            PyObject *heads = get_heads(rec);
            rc = heads == NULL ? -1 : PyDict_SetItem(heads, name, recent_head);
            Py_DECREF(recent_head);
        }
        if (rc == 0) rc = store_text(rec, name, enc, &changes);
        Py_DECREF(enc);
        if (rc < 0) {
            Py_XDECREF(changes);
            return NULL;
        }
        if (changes == NULL) Py_RETURN_NONE;
        /* changes is [name, enc]: the new encoding (or its delta) */
        PyObject *result = Py_NewRef(PyList_GET_ITEM(changes, 1));
        Py_DECREF(changes);
        return result;
    }
    if (PyErr_Occurred()) return NULL;
    if (self->guarded && self->touched_tuple == NULL && self->touched_arr != NULL) {
        /* the Python side (the object tracker) may use them: what the line can have changed */
        self->touched_tuple = PyTuple_New(self->touched_n);
        if (self->touched_tuple == NULL) return NULL;
        for (int i = 0; i < self->touched_n; i++) {
            PyTuple_SET_ITEM(self->touched_tuple, i, Py_NewRef(self->touched_arr[i]));
        }
    }
    enc = PyObject_CallMethodObjArgs((PyObject *)self, S_recheck, rec, name, obj, NULL);
    if (enc != NULL && fp_remember(rec, name, obj) < 0) Py_CLEAR(enc);
    return enc;
}

/* Forget name in rec; changes += [name, None]. */
static int record_forget(FrameRecord *rec, PyObject *name, PyObject **changes) {
    if (PyDict_DelItem(rec->objs, name) < 0) return -1;
    if (dict_discard(rec->texts, name) < 0) return -1;
    if (rec->mutables && PySet_Discard(rec->mutables, name) < 0) return -1;
    if (rec->heads && dict_discard(rec->heads, name) < 0) return -1;
    *changes = changes_add(*changes, name, Py_None);
    return *changes == NULL ? -1 : 0;
}

/* Python's result (None or list, new reference) into ours (NULL or list). */
static int from_python(PyObject *r, PyObject **out) {
    if (r == NULL) return -1;
    if (r == Py_None) {
        Py_DECREF(r);
        *out = NULL;
    } else {
        *out = r;
    }
    return 0;
}

/* A new frame's argument that is the very object a local of its caller holds: take the caller's encoding
 * (and head) when it is still right: the value cannot change (no head needed) or its head still matches.
 * 1: taken; 0: encode it; -1: error. */
static int take_from_caller(FrameRecord *rec, FrameRecord *caller, PyObject *name, PyObject *obj,
                            PyObject **changes) {
    if (is_none(caller->objs) || caller->texts == NULL) return 0;
    Py_ssize_t pos = 0;
    PyObject *cname = NULL, *cobj;
    while (PyDict_Next(caller->objs, &pos, &cname, &cobj)) {
        if (cobj == obj) break;
        cname = NULL;
    }
    if (cname == NULL) return 0;
    PyObject *enc = PyDict_GetItemWithError(caller->texts, cname);
    if (enc == NULL) return PyErr_Occurred() ? -1 : 0;
    int mutable = n_mutables(caller) ? PySet_Contains(caller->mutables, cname) : 0;
    if (mutable < 0) return -1;
    PyObject *head = NULL;
    if (mutable) {
        head = caller->heads ? PyDict_GetItemWithError(caller->heads, cname) : NULL;
        if (head == NULL) return PyErr_Occurred() ? -1 : 0;
        int same = head_unchanged(obj, head);
        if (same != 1) return same == -1 ? -1 : 0;
    }
    Py_INCREF(enc);
    Py_XINCREF(head);
    int rc = PyDict_SetItem(rec->objs, name, obj);
    if (rc == 0 && head != NULL) {
        PyObject *mutables = get_mutables(rec), *heads = get_heads(rec);
        rc = !mutables || !heads || PySet_Add(mutables, name) < 0 || PyDict_SetItem(heads, name, head) < 0;
    }
    if (rc == 0) rc = store_text(rec, name, enc, changes);
    Py_DECREF(enc);
    Py_XDECREF(head);
    return rc < 0 ? -1 : 1;
}

/* A value encoded in a few instructions (scalar_encoding): cheaper to encode again than to look for in
 * the caller's locals. */
static inline int cheap_scalar(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type || v == Py_None ||
           (t == &PyUnicode_Type && PyUnicode_GET_LENGTH(v) <= 64);
}

/* Every local of a simple function frame (PythonRecorder._full_check); caller: the record of the frame
 * that called it, for a new frame (its arguments may be the caller's values), else NULL. */

static int full_check(Core *self, FrameRecord *rec, PyObject **out) { return full_check_from(self, rec, NULL, out); }

int full_check_from(Core *self, FrameRecord *rec, FrameRecord *caller, PyObject **out) {
    *out = NULL;
    if (is_none(rec->frame)) return 0;
    if (!has_info(rec) || info_item(rec, INFO_IS_MODULE) == Py_True || info_item(rec, INFO_SIMPLE) != Py_True ||
        !PyFrame_Check(rec->frame)) {
        return from_python(PyObject_CallMethodOneArg((PyObject *)self, S_full_check, (PyObject *)rec), out);
    }
    if (is_none(rec->objs)) {
        PyObject *d = PyDict_New();
        if (d == NULL) return -1;
        Py_XSETREF(rec->objs, d);
    }
    _PyInterpreterFrame *f = ((PyFrameObject *)rec->frame)->f_frame;
    PyCodeObject *co = FRAME_CODE(f);
    PyObject *names = co->co_localsplusnames;
    Py_ssize_t n = co->co_nlocalsplus, seen = 0;
    PyObject *changes = NULL;
    PyObject *objs = rec->objs;
    Py_INCREF(objs);
    int fresh = PyDict_GET_SIZE(objs) == 0; /* a new frame: nothing to look up (names are distinct) */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = frame_local(rec->frame, i);
        if (obj == NULL) continue;
        PyObject *name = PyTuple_GET_ITEM(names, i);
        seen++;
        PyObject *old = fresh ? NULL : PyDict_GetItemWithError(objs, name);
        if (old == NULL && PyErr_Occurred()) goto error;
        if (old == obj) {
            int mutable = n_mutables(rec) ? PySet_Contains(rec->mutables, name) : 0;
            if (mutable < 0) goto error;
            if (mutable) {
                Py_INCREF(obj);
                PyObject *enc = record_recheck(self, rec, name, obj);
                Py_DECREF(obj);
                if (enc == NULL) goto error;
                if (enc != Py_None) {
                    changes = changes_add(changes, name, enc);
                    if (changes == NULL) {
                        Py_DECREF(enc);
                        goto error_nochanges;
                    }
                }
                Py_DECREF(enc);
            }
            continue;
        }
        Py_INCREF(obj);
        Py_INCREF(name);
        int rc = 0;
        if (old == NULL && caller != NULL && !cheap_scalar(obj)) {
            rc = take_from_caller(rec, caller, name, obj, &changes);
            if (rc == 1) {
                Py_DECREF(name);
                Py_DECREF(obj);
                continue;
            }
        }
        if (rc == 0) rc = record_set(self, rec, name, obj, old, changes, &changes);
        Py_DECREF(name);
        Py_DECREF(obj);
        if (rc < 0) goto error_nochanges;
    }
    if (seen != PyDict_GET_SIZE(rec->objs)) {
        /* Names bound before and gone now: collect them first (we change the dict). */
        PyObject *gone = PyList_New(0);
        if (gone == NULL) goto error;
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(rec->objs, &pos, &k, &v)) {
            Py_ssize_t slot = -1;
            for (Py_ssize_t i = 0; i < n; i++) {
                if (PyTuple_GET_ITEM(names, i) == k) {
                    slot = i;
                    break;
                }
            }
            if (slot < 0 || frame_local(rec->frame, slot) == NULL) {
                if (PyList_Append(gone, k) < 0) {
                    Py_DECREF(gone);
                    goto error;
                }
            }
        }
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(gone); j++) {
            if (record_forget(rec, PyList_GET_ITEM(gone, j), &changes) < 0) {
                Py_DECREF(gone);
                goto error_nochanges;
            }
        }
        Py_DECREF(gone);
    }
    Py_DECREF(objs);
    *out = changes;
    return 0;
error:
    Py_XDECREF(changes);
error_nochanges:
    Py_DECREF(objs);
    return -1;
}

/* Recheck one mutable name (check's loop): 0, or -1 on error (*changes is then released and NULL). With
 * n_touched >= 0, only a name whose value can show one of touched[0..n_touched) (see shows_touched). */
static int recheck_one(Core *self, FrameRecord *rec, PyObject *objs, PyObject *name, PyObject **changes,
                       PyObject **touched, int n_touched) {
    PyObject *obj = PyDict_GetItemWithError(objs, name);
    if (obj == NULL) {
        if (!PyErr_Occurred()) return 0;
        Py_CLEAR(*changes);
        return -1;
    }
    if (n_touched >= 0) {
        int shows = shows_touched(rec, name, obj, touched, n_touched);
        if (shows <= 0) {
            if (shows < 0) Py_CLEAR(*changes);
            return shows;
        }
    }
    Py_INCREF(obj);
    PyObject *enc = record_recheck(self, rec, name, obj);
    Py_DECREF(obj);
    if (enc == NULL) {
        Py_CLEAR(*changes);
        return -1;
    }
    if (enc != Py_None) {
        *changes = changes_add(*changes, name, enc); /* NULL (and released) on error */
        if (*changes == NULL) {
            Py_DECREF(enc);
            return -1;
        }
    }
    Py_DECREF(enc);
    return 0;
}

int check(Core *self, FrameRecord *rec, PyObject **out) {
    *out = NULL;
    if (!has_info(rec) || info_item(rec, INFO_IS_MODULE) == Py_True || info_item(rec, INFO_SIMPLE) != Py_True) {
        return from_python(PyObject_CallMethodOneArg((PyObject *)self, S_check, (PyObject *)rec), out);
    }
    if (settle(self, rec) < 0) return -1;
    if (rec->last_pos != self->count - 1 || is_none(rec->objs)) return full_check(self, rec, out);
    PyObject *lp = last_line_plan(rec);
    if (lp == NULL) return -1;
    if (PyTuple_GET_ITEM(lp, 3) == Py_True) return full_check(self, rec, out); /* no analysis: all of it */
    PyObject *names = PyTuple_GET_ITEM(lp, 0);
    PyObject *slots = PyTuple_GET_ITEM(lp, 1);
    int mutate = PyTuple_GET_ITEM(lp, 2) == Py_True;
    Py_ssize_t nnames = PyTuple_GET_SIZE(names);
    if (nnames == 0 && !(mutate && n_mutables(rec) > 0)) return 0;
    if (is_none(rec->frame) || !PyFrame_Check(rec->frame)) return 0;
    PyObject *changes = NULL;
    PyObject *objs = rec->objs;
    Py_INCREF(objs);
    /* The guards first: they may look at the values from before the line, which the loop below replaces. */
    PyObject *touched[MAX_TOUCHED];
    int n_touched = -1; /* -1: every mutable */
    if (mutate && n_mutables(rec) > 0 && PyTuple_GET_SIZE(lp) > 4 && PyTuple_GET_ITEM(lp, 4) != Py_None) {
        int rc = guard_touched(NULL, rec, PyTuple_GET_ITEM(lp, 4), objs, touched, &n_touched);
        if (rc < 0) goto error;
        if (rc == 1) n_touched = -1;
        if (n_touched == 0) mutate = 0; /* the line changed no object */
    }
    for (Py_ssize_t j = 0; j < nnames; j++) {
        PyObject *name = PyTuple_GET_ITEM(names, j);
        Py_ssize_t slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(slots, j));
        PyObject *obj = frame_local(rec->frame, slot);
        PyObject *old = PyDict_GetItemWithError(objs, name);
        if (old == NULL && PyErr_Occurred()) goto error;
        if (obj == NULL) {
            if (old != NULL && record_forget(rec, name, &changes) < 0) goto error_nochanges;
            continue;
        }
        if (old == obj) continue;
        Py_INCREF(obj);
        int rc = record_set(self, rec, name, obj, old, changes, &changes);
        Py_DECREF(obj);
        if (rc < 0) goto error_nochanges;
    }
    if (mutate && n_mutables(rec) > 0) {
        /* Walk the set itself (no list per step). Nothing below is expected to change it; if something
         * did, walk a copy from the start (rechecking a name twice changes nothing). */
        PyObject *mut = Py_NewRef(rec->mutables);
        PySetObject *so = (PySetObject *)mut;
        setentry *table = so->table;
        Py_ssize_t used = so->used, fill = so->fill, pos = 0;
        PyObject *name;
        int rc = 0, moved = 0;
        self->guarded = n_touched >= 0;
        self->touched_arr = touched;
        self->touched_n = n_touched;
        while (rc == 0 && set_next(mut, &pos, &name)) {
            Py_INCREF(name);
            rc = recheck_one(self, rec, objs, name, &changes, touched, n_touched);
            Py_DECREF(name);
            if (rec->mutables != mut || so->table != table || so->used != used || so->fill != fill) {
                moved = 1;
                break;
            }
        }
        Py_DECREF(mut);
        if (rc == 0 && moved && rec->mutables != NULL) {
            PyObject *names_now = PySequence_List(rec->mutables);
            if (names_now == NULL) goto error;
            for (Py_ssize_t j = 0; j < PyList_GET_SIZE(names_now) && rc == 0; j++) {
                rc = recheck_one(self, rec, objs, PyList_GET_ITEM(names_now, j), &changes, touched, n_touched);
            }
            Py_DECREF(names_now);
        }
        self->guarded = 0;
        self->touched_arr = NULL;
        self->touched_n = 0;
        Py_CLEAR(self->touched_tuple);
        if (rc < 0) goto error;
    }
    Py_DECREF(objs);
    *out = changes;
    return 0;
error:
    Py_XDECREF(changes);
error_nochanges:
    Py_DECREF(objs);
    return -1;
}
