/* Lock, FrameRecord and ThreadState: the recorder's small objects (C twins of the Python classes). */
#include "core.h"

/* ------------------------------------------------------------------------------------------------ */
/* Lock                                                                                               */

/* Every user of this lock holds the GIL when it looks at `held`, so taking a free lock is one test and one
 * store, with no system call. A thread that finds it taken waits with the GIL released (so the holder can
 * go on) and looks again. Contention is rare: the flusher, and programs with threads. Not for builds
 * without a GIL. */

static PyObject *Lock_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    return type->tp_alloc(type, 0);
}

static void Lock_dealloc(LockObject *self) { Py_TYPE(self)->tp_free((PyObject *)self); }

static PyObject *Lock_acquire(LockObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"blocking", "timeout", NULL};
    int blocking = 1;
    double timeout = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pd", kwlist, &blocking, &timeout)) return NULL;
    if (!blocking) {
        if (self->held) Py_RETURN_FALSE;
        self->held = 1;
        Py_RETURN_TRUE;
    }
    lock_take(self);
    Py_RETURN_TRUE;
}

static PyObject *Lock_release(LockObject *self, PyObject *unused) {
    if (!self->held) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    lock_give(self);
    Py_RETURN_NONE;
}

static PyObject *Lock_enter(LockObject *self, PyObject *unused) {
    lock_take(self);
    Py_RETURN_TRUE;
}

static PyObject *Lock_exit(LockObject *self, PyObject *args) {
    if (self->held) lock_give(self);
    Py_RETURN_NONE;
}

static PyObject *Lock_locked(LockObject *self, PyObject *unused) { return PyBool_FromLong(self->held); }

static PyMethodDef Lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Lock_acquire, METH_VARARGS | METH_KEYWORDS, NULL},
    {"release", (PyCFunction)Lock_release, METH_NOARGS, NULL},
    {"locked", (PyCFunction)Lock_locked, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)Lock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Lock_exit, METH_VARARGS, NULL},
    {NULL},
};

PyTypeObject LockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._core.Lock",
    .tp_basicsize = sizeof(LockObject),
    .tp_dealloc = (destructor)Lock_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A lock the C callbacks can take without calling Python (same interface as _thread.lock).",
    .tp_methods = Lock_methods,
    .tp_new = Lock_new,
};

/* ------------------------------------------------------------------------------------------------ */
/* FrameRecord                                                                                        */

FrameRecord *record_alloc(Py_ssize_t fid, PyObject *code, PyObject *plan, PyObject *info,
                                 PyObject *frame, Py_ssize_t parent, Py_ssize_t thread, Py_ssize_t depth) {
    FrameRecord *rec = PyObject_New(FrameRecord, &FrameRecordType);
    if (rec == NULL) return NULL;
    rec->code = Py_NewRef(code);
    rec->plan = Py_NewRef(plan);
    rec->frame = Py_NewRef(frame);
    rec->info = Py_NewRef(info);
    rec->texts = PyDict_New();
    rec->objs = PyDict_New();
    rec->mutables = NULL; /* made on first use (most frames never hold a mutable value) */
    rec->heads = NULL;
    rec->code_id = NULL;
    rec->fid = fid;
    rec->parent = parent;
    rec->thread = thread;
    rec->depth = depth;
    rec->last_line = 0;
    rec->last_pos = -2;
    rec->in_comprehension = 0;
    if (!rec->texts || !rec->objs) {
        Py_DECREF(rec);
        return NULL;
    }
    return rec;
}

static PyObject *FrameRecord_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Py_ssize_t fid, parent, thread, depth;
    PyObject *code, *plan, *frame;
    if (!PyArg_ParseTuple(args, "nOOOnnn", &fid, &code, &plan, &frame, &parent, &thread, &depth)) return NULL;
    PyObject *info = PyObject_GetAttr(plan, S_fast);
    if (info == NULL) {
        PyErr_Clear();
        info = Py_NewRef(Py_None);
    }
    FrameRecord *rec = record_alloc(fid, code, plan, info, frame, parent, thread, depth);
    Py_DECREF(info);
    return (PyObject *)rec;
}

static void FrameRecord_dealloc(FrameRecord *self) {
    Py_XDECREF(self->code);
    Py_XDECREF(self->plan);
    Py_XDECREF(self->frame);
    Py_XDECREF(self->info);
    Py_XDECREF(self->texts);
    Py_XDECREF(self->objs);
    Py_XDECREF(self->mutables);
    Py_XDECREF(self->heads);
    Py_XDECREF(self->code_id);
    PyObject_Free(self);
}

#define FR_OFF(x) offsetof(FrameRecord, x)
static PyMemberDef FrameRecord_members[] = {
    {"code", Py_T_OBJECT_EX, FR_OFF(code), 0, NULL},
    {"plan", Py_T_OBJECT_EX, FR_OFF(plan), 0, NULL},
    {"frame", Py_T_OBJECT_EX, FR_OFF(frame), 0, NULL},
    {"texts", Py_T_OBJECT_EX, FR_OFF(texts), 0, NULL},
    {"objs", Py_T_OBJECT_EX, FR_OFF(objs), 0, NULL},
    {"fid", Py_T_PYSSIZET, FR_OFF(fid), Py_READONLY, NULL},
    {"parent", Py_T_PYSSIZET, FR_OFF(parent), 0, NULL},
    {"thread", Py_T_PYSSIZET, FR_OFF(thread), 0, NULL},
    {"depth", Py_T_PYSSIZET, FR_OFF(depth), 0, NULL},
    {"last_line", Py_T_PYSSIZET, FR_OFF(last_line), 0, NULL},
    {"last_pos", Py_T_PYSSIZET, FR_OFF(last_pos), 0, NULL},
    {"in_comprehension", Py_T_BOOL, FR_OFF(in_comprehension), 0, NULL},
    {NULL},
};

PyObject *get_mutables(FrameRecord *rec) {
    if (rec->mutables == NULL) rec->mutables = PySet_New(NULL);
    return rec->mutables;
}

PyObject *get_heads(FrameRecord *rec) {
    if (rec->heads == NULL) rec->heads = PyDict_New();
    return rec->heads;
}

static PyObject *FrameRecord_get_mutables(FrameRecord *rec, void *closure) { return Py_XNewRef(get_mutables(rec)); }

static PyObject *FrameRecord_get_heads(FrameRecord *rec, void *closure) { return Py_XNewRef(get_heads(rec)); }

static int FrameRecord_set_mutables(FrameRecord *rec, PyObject *value, void *closure) {
    if (value == NULL || !PySet_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "mutables must be a set");
        return -1;
    }
    Py_XSETREF(rec->mutables, Py_NewRef(value));
    return 0;
}

static int FrameRecord_set_heads(FrameRecord *rec, PyObject *value, void *closure) {
    if (value == NULL || !PyDict_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "heads must be a dict");
        return -1;
    }
    Py_XSETREF(rec->heads, Py_NewRef(value));
    return 0;
}

static PyGetSetDef FrameRecord_getset[] = {
    {"mutables", (getter)FrameRecord_get_mutables, (setter)FrameRecord_set_mutables, NULL, NULL},
    {"heads", (getter)FrameRecord_get_heads, (setter)FrameRecord_set_heads, NULL, NULL},
    {NULL},
};

PyTypeObject FrameRecordType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._core.FrameRecord",
    .tp_basicsize = sizeof(FrameRecord),
    .tp_dealloc = (destructor)FrameRecord_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "What the recorder remembers of one live frame activation (C twin of monitor.FrameRecord).",
    .tp_members = FrameRecord_members,
    .tp_getset = FrameRecord_getset,
    .tp_new = FrameRecord_new,
};

/* ------------------------------------------------------------------------------------------------ */
/* ThreadState                                                                                        */

static PyObject *ThreadState_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Py_ssize_t number;
    PyObject *owner;
    if (!PyArg_ParseTuple(args, "nO", &number, &owner)) return NULL;
    ThreadState *self = (ThreadState *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->number = number;
    self->owner = Py_NewRef(owner);
    self->stack = PyList_New(0);
    self->jump_rec = Py_NewRef(Py_None);
    self->jump_line = -1;
    if (self->stack == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void ThreadState_dealloc(ThreadState *self) {
    Py_XDECREF(self->owner);
    Py_XDECREF(self->stack);
    Py_XDECREF(self->jump_rec);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define TS_OFF(x) offsetof(ThreadState, x)
static PyMemberDef ThreadState_members[] = {
    {"owner", Py_T_OBJECT_EX, TS_OFF(owner), 0, NULL},
    {"stack", Py_T_OBJECT_EX, TS_OFF(stack), 0, NULL},
    {"jump_rec", Py_T_OBJECT_EX, TS_OFF(jump_rec), 0, NULL},
    {"number", Py_T_PYSSIZET, TS_OFF(number), 0, NULL},
    {"jump_line", Py_T_PYSSIZET, TS_OFF(jump_line), 0, NULL},
    {NULL},
};

PyTypeObject ThreadStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._core.ThreadState",
    .tp_basicsize = sizeof(ThreadState),
    .tp_dealloc = (destructor)ThreadState_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A thread's stack of frame records (C twin of monitor.ThreadState).",
    .tp_members = ThreadState_members,
    .tp_new = ThreadState_new,
};
