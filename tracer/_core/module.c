/* The tracer._core module: its functions, its constants and PyInit__core. */
#include "core.h"

PyObject *DISABLE;
PyObject *S_check, *S_full_check, *S_set, *S_recheck, *S_top, *S_thread, *S_thread_entering;
PyObject *S_checkpoint, *S_fail, *S_encode, *S_on_start, *S_fast, *S_on_line, *S_on_jump, *S_on_return;
PyObject *S_inf, *S_nan, *S_ellipsis;
PyTypeObject *deque_type, *defaultdict_type, *ordereddict_type, *counter_type;

/* simple_locals(code): True when code runs with fast locals (a function, not a class body or module)
 * and each is plain (no cell, free or hidden variable), so the C callbacks may read them from the frame's fast-locals array. */
static PyObject *simple_locals(PyObject *module, PyObject *code) {
    if (!PyCode_Check(code)) {
        PyErr_SetString(PyExc_TypeError, "simple_locals() needs a code object");
        return NULL;
    }
    PyCodeObject *co = (PyCodeObject *)code;
    if (!(co->co_flags & CO_OPTIMIZED)) Py_RETURN_FALSE; /* class bodies, exec'd code: a locals dict */
    for (int i = 0; i < co->co_nlocalsplus; i++) {
        _PyLocals_Kind kind = _PyLocals_GetKind(co->co_localspluskinds, i);
        if (kind & (CO_FAST_CELL | CO_FAST_FREE | CO_FAST_HIDDEN)) Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* frame_locals(frame): a function frame's bound variables as a fixed CPython's frame.f_locals shows them
 * (PEP 667), read from its fast-locals array without a FrameLocalsProxy. CPython 3.13 before the fix of
 * gh-128396 crashes in f_locals when an inlined comprehension's variable shares a slot that is a cell or
 * free variable of the function (the slot then holds the plain value); here a cell is dereferenced only when
 * the slot really holds one. Class bodies and modules (no fast locals) get frame.f_locals itself. */
static PyObject *frame_locals(PyObject *module, PyObject *frame) {
    if (!PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "frame_locals() needs a frame");
        return NULL;
    }
    _PyInterpreterFrame *f = ((PyFrameObject *)frame)->f_frame;
    PyCodeObject *co = FRAME_CODE(f);
    if (!(co->co_flags & CO_OPTIMIZED)) return PyObject_GetAttrString(frame, "f_locals");
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    for (int i = 0; i < co->co_nlocalsplus; i++) {
        PyObject *value = frame_local(frame, i); /* borrowed */
        if (value == NULL) continue;
        _PyLocals_Kind kind = _PyLocals_GetKind(co->co_localspluskinds, i);
        if ((kind & (CO_FAST_CELL | CO_FAST_FREE)) && PyCell_Check(value)) {
            value = PyCell_GET(value);
            if (value == NULL) continue; /* an empty cell: unbound */
        }
        PyObject *name = PyTuple_GET_ITEM(co->co_localsplusnames, i);
#if PY_VERSION_HEX >= 0x030D0000
        /* Two slots can share a name (a comprehension's own variable beside a free variable of the same
         * name): the proxy reads the first bound one. */
        if (PyDict_SetDefaultRef(d, name, value, NULL) < 0) {
#else
        /* 3.12's f_locals dict is filled slot by slot: the last bound slot of a shared name wins. */
        if (PyDict_SetItem(d, name, value) < 0) {
#endif
            Py_DECREF(d);
            return NULL;
        }
    }
#if PY_VERSION_HEX >= 0x030D0000
    /* Names a debugger added through f_locals that are not variables of the code (PEP 667). */
    PyObject *extra = ((PyFrameObject *)frame)->f_extra_locals;
    if (extra != NULL && PyDict_Merge(d, extra, 0) < 0) {
        Py_DECREF(d);
        return NULL;
    }
#endif
    return d;
}

/* fingerprint(value): the fingerprint the recorder keeps for value, or None when it has none (tests). */
static PyObject *fingerprint(PyObject *module, PyObject *value) { return fp_list(value, NULL); }

/* fingerprint_matches(value, fp): True when value still has fingerprint fp (tests). */
static PyObject *fingerprint_matches(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "fingerprint_matches(value, fingerprint)");
        return NULL;
    }
    Py_ssize_t pos = 0;
    int rc = fp_match(args[0], args[1], &pos);
    if (rc < 0) return NULL;
    return PyBool_FromLong(rc == 1 && pos == PyList_GET_SIZE(args[1]));
}

/* stale_nested(items, nested, fps): the keys of `nested` ({key: packed bytes}, tracer/objects.py) whose
 * element in items (a list by position, or a dict by key) is not provably unchanged: unchanged means
 * fps[key] is (that very element, a fingerprint it still matches, that very bytes object). The object
 * tracker then packs only those again (one C pass instead of a node per nested element). */
static PyObject *stale_nested(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !(PyList_CheckExact(args[0]) || PyDict_Check(args[0])) || !PyDict_CheckExact(args[1]) ||
        !PyDict_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "stale_nested(items, nested, fps): a list or dict and two dicts");
        return NULL;
    }
    PyObject *items = args[0], *nested = args[1], *fps = args[2];
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *before;
    while (PyDict_Next(nested, &pos, &key, &before)) {
        PyObject *x = NULL;
        if (PyList_CheckExact(items)) {
            Py_ssize_t i = PyLong_AsSsize_t(key);
            if (i == -1 && PyErr_Occurred()) PyErr_Clear();
            else if (i >= 0 && i < PyList_GET_SIZE(items)) x = PyList_GET_ITEM(items, i);
        } else {
            x = PyDict_GetItemWithError(items, key);
            if (x == NULL && PyErr_Occurred()) PyErr_Clear();
        }
        PyObject *cached = x != NULL ? PyDict_GetItemWithError(fps, key) : NULL;
        if (cached == NULL && PyErr_Occurred()) PyErr_Clear();
        int same = 0;
        if (cached != NULL && PyTuple_CheckExact(cached) && PyTuple_GET_SIZE(cached) == 3 &&
            PyTuple_GET_ITEM(cached, 0) == x && PyTuple_GET_ITEM(cached, 2) == before &&
            PyList_CheckExact(PyTuple_GET_ITEM(cached, 1))) {
            PyObject *fp = PyTuple_GET_ITEM(cached, 1);
            Py_ssize_t at = 0;
            int rc = fp_match(x, fp, &at);
            if (rc < 0) {
                Py_DECREF(out);
                return NULL;
            }
            same = rc == 1 && at == PyList_GET_SIZE(fp);
        }
        if (!same && PyList_Append(out, key) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* encode(value, limit): the C encoding of a scalar or builtin container, or None where the Python encoder
 * is used instead (tests compare the two). */
static PyObject *encode(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t limit;
    if (nargs != 2 || (limit = PyLong_AsSsize_t(args[1])) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "encode(value, limit)");
        return NULL;
    }
    PyObject *text = scalar_encoding(limit, args[0]);
    if (text != NULL || PyErr_Occurred()) return text;
    int immutable = 0;
    PyObject *enc = encode_container(limit, args[0], &immutable);
    if (enc != NULL || PyErr_Occurred()) return enc;
    Py_RETURN_NONE;
}

static PyObject *repr_of(PyObject *module, PyObject *value) { return container_repr(value, 0); }

static PyObject *head_text_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t limit;
    if (nargs != 2 || (limit = PyLong_AsSsize_t(args[1])) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "head_text(value, limit)");
        return NULL;
    }
    return head_text(args[0], limit);
}

/* common_affixes(old, new): (prefix, suffix), how many leading and trailing elements of two lists or
 * tuples are the same objects (tracer/objects.py: a tracked list's change is the splice between them).
 * new may also be a collections.deque, walked by its iterators (no copy). Pointer comparisons only: no
 * element's code runs. */
static PyObject *deque_affixes(PyObject **a, Py_ssize_t n, PyObject *d) {
    Py_ssize_t m = PyObject_Length(d);
    if (m < 0) return NULL;
    Py_ssize_t limit = n < m ? n : m, prefix = 0, suffix = 0;
    PyObject *it = PyObject_GetIter(d), *x;
    if (it == NULL) return NULL;
    while (prefix < limit && (x = PyIter_Next(it)) != NULL) {
        int same = x == a[prefix];
        Py_DECREF(x);
        if (!same) break;
        prefix++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    if (prefix < limit) {
        PyObject *rit = PyObject_CallMethod(d, "__reversed__", NULL);
        if (rit == NULL) return NULL;
        while (suffix < limit - prefix && (x = PyIter_Next(rit)) != NULL) {
            int same = x == a[n - 1 - suffix];
            Py_DECREF(x);
            if (!same) break;
            suffix++;
        }
        Py_DECREF(rit);
        if (PyErr_Occurred()) return NULL;
    }
    return Py_BuildValue("(nn)", prefix, suffix);
}

static PyObject *common_affixes(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !(PyList_CheckExact(args[0]) || PyTuple_CheckExact(args[0])) ||
        !(PyList_CheckExact(args[1]) || PyTuple_CheckExact(args[1]) || Py_IS_TYPE(args[1], deque_type))) {
        PyErr_SetString(PyExc_TypeError, "common_affixes(old, new) takes two lists or tuples (new: or a deque)");
        return NULL;
    }
    PyObject **a = PySequence_Fast_ITEMS(args[0]);
    Py_ssize_t n = Py_SIZE(args[0]);
    if (Py_IS_TYPE(args[1], deque_type)) return deque_affixes(a, n, args[1]);
    PyObject **b = PySequence_Fast_ITEMS(args[1]);
    Py_ssize_t m = Py_SIZE(args[1]);
    Py_ssize_t limit = n < m ? n : m, prefix = 0, suffix = 0;
    while (prefix < limit && a[prefix] == b[prefix]) prefix++;
    while (suffix < limit - prefix && a[n - 1 - suffix] == b[m - 1 - suffix]) suffix++;
    return Py_BuildValue("(nn)", prefix, suffix);
}

/* changed_positions(old, new, start, stop, cap): the indices i in [start, stop) where old[i] is not new[i]
 * (two lists or tuples at least `stop` long), or None when there are more than cap of them (tracer/objects.py:
 * a list changed in a few scattered places, as a heap push or pop changes one, is recorded item by item).
 * Pointer comparisons only. */
static PyObject *changed_positions(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t start, stop, cap;
    if (nargs != 5 || !(PyList_CheckExact(args[0]) || PyTuple_CheckExact(args[0])) ||
        !(PyList_CheckExact(args[1]) || PyTuple_CheckExact(args[1])) ||
        (start = PyLong_AsSsize_t(args[2])) < 0 || (stop = PyLong_AsSsize_t(args[3])) < 0 ||
        (cap = PyLong_AsSsize_t(args[4])) < 0 || stop > Py_SIZE(args[0]) || stop > Py_SIZE(args[1])) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "changed_positions(old, new, start, stop, cap): lists, in range");
        }
        return NULL;
    }
    PyObject **a = PySequence_Fast_ITEMS(args[0]), **b = PySequence_Fast_ITEMS(args[1]);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = start; i < stop; i++) {
        if (a[i] == b[i]) continue;
        if (PyList_GET_SIZE(out) >= cap) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PyList_Append(out, index) < 0) {
            Py_XDECREF(index);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(index);
    }
    return out;
}

/* -- dict watchers (tracer/objects.py): the changes of tracked dicts, as they happen ------------------------
 * One watcher for the process. Each event on a watched dict is logged as (id(dict), event, key, value);
 * the object tracker drains the log (dict_events) when it next looks at a dict, so a dict's change costs
 * one log entry instead of a comparison of the whole dict. If the log cannot grow (no memory), `lost` is
 * set and the tracker compares every watched dict in full once. */
static int dict_watcher = -1;
PyObject *dict_log = NULL; /* shared with tracker.c */
int dict_log_lost = 0;

static int on_dict_event(PyDict_WatchEvent event, PyObject *dict, PyObject *key, PyObject *new_value) {
    if (dict_log == NULL) return 0;
    PyObject *exc = PyErr_GetRaisedException(); /* a watcher must leave the program's error state alone */
    PyObject *entry = Py_BuildValue("(NiOO)", PyLong_FromVoidPtr(dict), (int)event, key ? key : Py_None,
                                    new_value ? new_value : Py_None);
    if (entry == NULL || PyList_Append(dict_log, entry) < 0) {
        PyErr_Clear();
        dict_log_lost = 1;
    }
    Py_XDECREF(entry);
    PyErr_SetRaisedException(exc);
    return 0;
}

static int ensure_watcher(void) {
    if (dict_watcher >= 0) return 0;
    if (dict_log == NULL && (dict_log = PyList_New(0)) == NULL) return -1;
    dict_watcher = PyDict_AddWatcher(on_dict_event);
    return dict_watcher < 0 ? -1 : 0;
}

static PyObject *dict_watch(PyObject *module, PyObject *d) {
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "dict_watch(d) takes a dict");
        return NULL;
    }
    if (ensure_watcher() < 0 || PyDict_Watch(dict_watcher, d) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *dict_unwatch(PyObject *module, PyObject *d) {
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "dict_unwatch(d) takes a dict");
        return NULL;
    }
    if (dict_watcher >= 0 && PyDict_Unwatch(dict_watcher, d) < 0) return NULL;
    Py_RETURN_NONE;
}

/* dict_events() -> (events since the last call, lost): the log is handed over and a new one started. */
static PyObject *dict_events(PyObject *module, PyObject *unused) {
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL) return NULL;
    PyObject *old = dict_log != NULL ? dict_log : PyList_New(0);
    dict_log = fresh;
    int lost = dict_log_lost;
    dict_log_lost = 0;
    return old == NULL ? NULL : Py_BuildValue("(NO)", old, lost ? Py_True : Py_False);
}

/* same_head(value, head): ValueEncoder.head_unchanged for a (elements, length) head, in C. */
static PyObject *same_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "same_head(value, head)");
        return NULL;
    }
    int rc = head_unchanged(args[0], args[1]);
    if (rc == -1) return NULL;
    return PyBool_FromLong(rc == 1);
}

/* set_library_effects(effects): plan.LIBRARY_EFFECTS, {(module name, function name): argument or -1}. */
static PyObject *set_library_effects(PyObject *module, PyObject *effects) {
    if (!PyDict_CheckExact(effects)) {
        PyErr_SetString(PyExc_TypeError, "set_library_effects(dict)");
        return NULL;
    }
    Py_XSETREF(library_effects, Py_NewRef(effects));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"set_library_effects", set_library_effects, METH_O,
     "The library functions of known effect (tracer/plan.py LIBRARY_EFFECTS), for the effect guards."},
    {"same_head", (PyCFunction)(void (*)(void))same_head, METH_FASTCALL,
     "True when value still holds the objects of an encoder head (elements, length)."},
    {"dict_watch", dict_watch, METH_O, "Log the changes of dict d (dict_events gives them)."},
    {"dict_unwatch", dict_unwatch, METH_O, "Stop logging the changes of dict d."},
    {"dict_events", dict_events, METH_NOARGS, "(events logged since the last call, lost)."},
    {"repr", repr_of, METH_O, "repr(value) as the encoder writes it (non-recursive builtin values only)."},
    {"head_text", (PyCFunction)(void (*)(void))head_text_of, METH_FASTCALL,
     "(text, shown): the head of a big flat container's repr, past the limit, or None."},
    {"packb", packb, METH_O, "msgpack.packb(obj, use_bin_type=True) for a chunk's types, else None."},
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL, "The C encoding of a value, or None."},
    {"fingerprint", fingerprint, METH_O, "The fingerprint kept for a value, or None."},
    {"fingerprint_matches", (PyCFunction)(void (*)(void))fingerprint_matches, METH_FASTCALL,
     "True when value still has the fingerprint."},
    {"stale_nested", (PyCFunction)(void (*)(void))stale_nested, METH_FASTCALL,
     "The keys of nested elements not provably unchanged (tracer/objects.py)."},
    {"common_affixes", (PyCFunction)(void (*)(void))common_affixes, METH_FASTCALL,
     "(prefix, suffix): leading and trailing elements two lists share by identity."},
    {"changed_positions", (PyCFunction)(void (*)(void))changed_positions, METH_FASTCALL,
     "The indices where two lists hold different objects, or None past a cap."},
    {"simple_locals", simple_locals, METH_O, "True when code has only plain fast locals."},
    {"frame_locals", frame_locals, METH_O, "A function frame's bound variables as a dict (f_locals safely)."},
    {NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "tracer._core", "The recorder's hot path in C (see tracer/monitor.py).", -1,
    module_methods,
};

/* The constants the C code shares with the Python code, as module attributes: tracer/native.py checks each
 * against its Python definition at import and refuses a build where one differs. */
#define CONSTANT(name) {#name, name}
static const struct {
    const char *name;
    long value;
} CONSTANTS[] = {
    /* tracer/format.py (checked by tracer/monitor.py) */
    CONSTANT(EV_CALL), CONSTANT(EV_LINE), CONSTANT(EV_RETURN),
    /* tracer/plan.py */
    CONSTANT(G_GLOBAL), CONSTANT(G_METHOD), CONSTANT(G_ITEM_METHOD), CONSTANT(G_SUBSCR), CONSTANT(G_STORE),
    CONSTANT(G_INPLACE), CONSTANT(G_CALL), CONSTANT(G_LIBCALL), CONSTANT(K_PURE), CONSTANT(K_MUTATES), CONSTANT(K_UNKNOWN),
    CONSTANT(PLAN_GROW), CONSTANT(PLAN_ITEMS), CONSTANT(PLAN_POP),
    /* tracer/values.py */
    CONSTANT(NATIVE_INT_LIMIT), CONSTANT(NATIVE_FLOAT_LIMIT), CONSTANT(FAST_LEN), CONSTANT(NESTED_BUDGET),
    CONSTANT(HEAD_TRACKED),
    CONSTANT(HEAD_TRACKED_FLAT), CONSTANT(FLAG_OBJECT),
    /* tracer/codes.py */
    CONSTANT(T_LIST), CONSTANT(T_DICT), CONSTANT(OP_SPLICE), CONSTANT(OP_SET), CONSTANT(OP_DEL),
    /* the size of tracer/monitor.py fast_info's tuple (checked by tracer/monitor.py) */
    CONSTANT(INFO_SIZE),
};

static int add_constants(PyObject *m) {
    for (size_t i = 0; i < sizeof(CONSTANTS) / sizeof(CONSTANTS[0]); i++) {
        if (PyModule_AddIntConstant(m, CONSTANTS[i].name, CONSTANTS[i].value) < 0) return -1;
    }
    return 0;
}

#define INTERN(var, text)                                   \
    do {                                                    \
        var = PyUnicode_InternFromString(text);             \
        if (var == NULL) return NULL;                       \
    } while (0)

PyMODINIT_FUNC PyInit__core(void) {
    INTERN(S_check, "_check");
    INTERN(S_full_check, "_full_check");
    INTERN(S_set, "_set");
    INTERN(S_recheck, "_recheck");
    INTERN(S_top, "_top");
    INTERN(S_thread, "_thread");
    INTERN(S_thread_entering, "_thread_entering");
    INTERN(S_checkpoint, "_checkpoint");
    INTERN(S_fail, "_fail");
    INTERN(S_encode, "encode");
    INTERN(S_on_start, "_on_start");
    INTERN(S_on_line, "_on_line");
    INTERN(S_on_jump, "_on_jump");
    INTERN(S_on_return, "_on_return");
    INTERN(S_fast, "fast");
    INTERN(S_inf, "inf");
    INTERN(S_nan, "nan");
    INTERN(S_ellipsis, "...");
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    if (mon == NULL) {
        PyErr_SetString(PyExc_ImportError, "sys.monitoring is missing");
        return NULL;
    }
    DISABLE = PyObject_GetAttrString(mon, "DISABLE");
    if (DISABLE == NULL) return NULL;
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL) return NULL;
    /* kept for the process */
    deque_type = (PyTypeObject *)PyObject_GetAttrString(collections, "deque");
    defaultdict_type = (PyTypeObject *)PyObject_GetAttrString(collections, "defaultdict");
    ordereddict_type = (PyTypeObject *)PyObject_GetAttrString(collections, "OrderedDict");
    counter_type = (PyTypeObject *)PyObject_GetAttrString(collections, "Counter");
    Py_DECREF(collections);
    if (deque_type == NULL || defaultdict_type == NULL || ordereddict_type == NULL || counter_type == NULL) return NULL;
    if (PyType_Ready(&LockType) < 0 || PyType_Ready(&FrameRecordType) < 0 ||
        PyType_Ready(&ThreadStateType) < 0 || PyType_Ready(&StepBufferType) < 0 ||
        PyType_Ready(&CoreType) < 0 || PyType_Ready(&EntryType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Lock", (PyObject *)&LockType) < 0 ||
        PyModule_AddObjectRef(m, "FrameRecord", (PyObject *)&FrameRecordType) < 0 ||
        PyModule_AddObjectRef(m, "ThreadState", (PyObject *)&ThreadStateType) < 0 ||
        PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0 ||
        PyModule_AddObjectRef(m, "StepBuffer", (PyObject *)&StepBufferType) < 0 ||
        PyModule_AddObjectRef(m, "Entry", (PyObject *)&EntryType) < 0 ||
        add_constants(m) < 0 || PyModule_AddStringConstant(m, "SOURCE_HASH", RETROGRADE_SOURCE_HASH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
