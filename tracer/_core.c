/* tracer._core: the recorder's hot path in C.
 *
 * The Python recorder (tracer/monitor.py, PythonRecorder) is the reference: it defines what is recorded.
 * This module makes the common events cheap and does exactly what the Python callbacks do:
 *
 *   - Core is the base class of CompiledRecorder. Its C fields are the recorder's hot attributes
 *     (_count, _steps, _threads, ...), visible to the Python methods under the same names, so the Python
 *     code and the C callbacks share one state.
 *   - FrameRecord and ThreadState are the Python classes' C twins (same attribute names).
 *   - Lock replaces _thread.lock so the C callbacks can take it without a Python call.
 *   - _c_on_line / _c_on_jump / _c_on_start / _c_on_return are sys.monitoring callbacks. They handle the
 *     common case in C (a plain function frame whose locals are fast locals, scalar values, containers
 *     whose elements did not change) and call the Python methods for everything else (module frames,
 *     cells, values that need the full encoder, stack resynchronisation, chunk flushes).
 *
 * Frame locals are read from the interpreter frame's fast-locals array, so this file includes CPython's
 * internal frame header; it is compiled for the running interpreter and is optional (without it the pure
 * Python recorder runs).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#include <string.h>

#define Py_BUILD_CORE 1
#include "internal/pycore_code.h"
#include "internal/pycore_frame.h"
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_setobject.h" /* _PySet_Dummy */
#endif
#undef Py_BUILD_CORE

/* The next element of set v from slot *pos on (what _PySet_NextEntry does, without a call per element):
 * 1 and *item set, or 0 at the end. */
static inline int set_next(PyObject *v, Py_ssize_t *pos, PyObject **item) {
    PySetObject *so = (PySetObject *)v;
    Py_ssize_t i = *pos, mask = so->mask;
    setentry *table = so->table;
    while (i <= mask && (table[i].key == NULL || table[i].key == _PySet_Dummy)) i++;
    *pos = i + 1;
    if (i > mask) return 0;
    *item = table[i].key;
    return 1;
}

#if PY_VERSION_HEX >= 0x030D0000
#define FRAME_CODE(f) _PyFrame_GetCode(f)
#else
#define FRAME_CODE(f) ((f)->f_code)
#endif

#ifndef RETROGRADE_SOURCE_HASH /* setup.py passes the CRC-32 of this file: native.py refuses a stale build */
#define RETROGRADE_SOURCE_HASH "unknown"
#endif

/* Event numbers: tracer/format.py (checked at import by monitor.py). */
enum { EV_CALL = 0, EV_LINE = 1, EV_RETURN = 2 };

/* Layout of CodePlan.fast (built by monitor.fast_info): */
enum {
    INFO_CODE_ID = 0,   /* int */
    INFO_IS_MODULE,     /* bool */
    INFO_SIMPLE,        /* bool: only plain fast locals (no cells, free or hidden variables) */
    INFO_LINE_BASE,     /* int: line number of lines[0] */
    INFO_LINES,         /* tuple: line - base -> LinePlan tuple or None */
    INFO_DEFAULT,       /* LinePlan tuple for lines with no instructions */
    INFO_OFFSETS,       /* tuple: offset // 2 -> line or None */
    INFO_SIZE
};
/* LinePlan tuple: (names, slots, may_mutate, full, guards); guards: None or a tuple of
 * (kind, slot, stored, name, attr_kinds, expected), see tracer/plan.py "effect guards". */
enum { G_GLOBAL = 0, G_METHOD, G_ITEM_METHOD, G_SUBSCR, G_STORE, G_INPLACE };
enum { K_PURE = 0, K_MUTATES, K_UNKNOWN };

static PyObject *DISABLE;          /* sys.monitoring.DISABLE */
static PyObject *S_check, *S_full_check, *S_set, *S_recheck, *S_top, *S_thread, *S_thread_entering;
static PyObject *S_checkpoint, *S_fail, *S_encode, *S_on_start, *S_fast, *S_on_line, *S_on_jump, *S_on_return;

/* ------------------------------------------------------------------------------------------------ */
/* Lock                                                                                               */

/* Every user of this lock holds the GIL when it looks at `held`, so taking a free lock is one test and one
 * store, with no system call. A thread that finds it taken waits with the GIL released (so the holder can
 * go on) and looks again. Contention is rare: the flusher, and programs with threads. Not for builds
 * without a GIL. */
typedef struct {
    PyObject_HEAD
    int held;
} LockObject;

static PyTypeObject LockType;

static PyObject *Lock_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    return type->tp_alloc(type, 0);
}

static void Lock_dealloc(LockObject *self) { Py_TYPE(self)->tp_free((PyObject *)self); }

static void lock_take(LockObject *self) {
    unsigned spins = 0;
    while (self->held) {
        Py_BEGIN_ALLOW_THREADS
        if (spins++ < 100) {
            sched_yield();
        } else {
            struct timespec pause = {0, 50000}; /* 50 us */
            nanosleep(&pause, NULL);
        }
        Py_END_ALLOW_THREADS
    }
    self->held = 1;
}

static void lock_give(LockObject *self) { self->held = 0; }

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

static PyTypeObject LockType = {
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

typedef struct {
    PyObject_HEAD
    PyObject *code, *plan, *frame, *texts, *objs, *mutables, *heads;
    PyObject *info;    /* plan.fast: tuple or None */
    PyObject *code_id; /* plan.code_id, looked up at the first step */
    Py_ssize_t fid, parent, thread, depth, last_line, last_pos;
    char in_comprehension;
} FrameRecord;

static PyTypeObject FrameRecordType;

static FrameRecord *record_alloc(Py_ssize_t fid, PyObject *code, PyObject *plan, PyObject *info,
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

static PyObject *get_mutables(FrameRecord *rec) {
    if (rec->mutables == NULL) rec->mutables = PySet_New(NULL);
    return rec->mutables;
}

static PyObject *get_heads(FrameRecord *rec) {
    if (rec->heads == NULL) rec->heads = PyDict_New();
    return rec->heads;
}

static inline Py_ssize_t n_mutables(FrameRecord *rec) { return rec->mutables ? PySet_GET_SIZE(rec->mutables) : 0; }

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

static PyTypeObject FrameRecordType = {
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

typedef struct {
    PyObject_HEAD
    PyObject *owner, *stack, *jump_rec;
    Py_ssize_t number, jump_line;
} ThreadState;

static PyTypeObject ThreadStateType;

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

static PyTypeObject ThreadStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._core.ThreadState",
    .tp_basicsize = sizeof(ThreadState),
    .tp_dealloc = (destructor)ThreadState_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A thread's stack of frame records (C twin of monitor.ThreadState).",
    .tp_members = ThreadState_members,
    .tp_new = ThreadState_new,
};

/* ------------------------------------------------------------------------------------------------ */
/* StepBuffer: one chunk's steps as the chunk's columns (C twin of monitor.StepBuffer)                 */

typedef struct {
    PyObject_HEAD
    /* One entry per step. */
    unsigned char *events;
    int64_t *fids;
    int32_t *lines;
    Py_ssize_t count, cap;
    /* Changes: for each step that has some, its offset and how many items (name, encoding, ...) it has;
     * the items of all of them in order in one list. No list per step (they were a third of the cost of
     * storing a step: allocation, then a garbage collector walk, then freeing). */
    int32_t *change_offsets, *change_sizes;
    Py_ssize_t nchanges, changes_cap;
    PyObject *change_items;
    /* Values: offset of each step that has one, and the encodings in order. */
    int32_t *value_offsets;
    Py_ssize_t nvalues, values_cap;
    PyObject *value_items;
    /* Frames that start in the chunk: fid, then code id, parent fid, thread, depth (5 per frame). */
    int64_t *frames;
    Py_ssize_t nframes, frames_cap;
    PyObject *names;                 /* set: the names that changed (for the summary) */
    PyObject *name_cache[64];        /* names added lately (strong references): most need no set lookup */
    Py_ssize_t min_depth, max_depth; /* -1 before the first step */
    uint64_t *pairs;                 /* open addressing: (code id, line) + 1, 0 = empty */
    Py_ssize_t pairs_cap, pairs_count;
    Py_ssize_t deltas; /* text deltas among the changes (format 4) */
} StepBuffer;

static PyTypeObject StepBufferType;

static PyObject *StepBuffer_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    StepBuffer *self = (StepBuffer *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->change_items = PyList_New(0);
    self->value_items = PyList_New(0);
    self->names = PySet_New(NULL);
    self->min_depth = self->max_depth = -1;
    self->pairs_cap = 256;
    self->pairs = PyMem_Calloc(self->pairs_cap, sizeof(uint64_t));
    if (!self->change_items || !self->value_items || !self->names || !self->pairs) {
        Py_DECREF(self);
        return NULL;
    }
    /* Their items are names and encodings (texts, numbers, small lists of those, made untracked as they
     * are added): no cycle can go through them, so the collector need not walk them. */
    PyObject_GC_UnTrack(self->change_items);
    PyObject_GC_UnTrack(self->value_items);
    return (PyObject *)self;
}

static void StepBuffer_dealloc(StepBuffer *self) {
    PyMem_Free(self->events);
    PyMem_Free(self->fids);
    PyMem_Free(self->lines);
    PyMem_Free(self->change_offsets);
    PyMem_Free(self->change_sizes);
    PyMem_Free(self->value_offsets);
    PyMem_Free(self->frames);
    for (int i = 0; i < 64; i++) Py_XDECREF(self->name_cache[i]);
    Py_XDECREF(self->change_items);
    Py_XDECREF(self->value_items);
    Py_XDECREF(self->names);
    PyMem_Free(self->pairs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int pairs_insert(StepBuffer *self, uint64_t key) {
    if (2 * (self->pairs_count + 1) > self->pairs_cap) {
        Py_ssize_t cap = self->pairs_cap * 2;
        uint64_t *table = PyMem_Calloc(cap, sizeof(uint64_t));
        if (table == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < self->pairs_cap; i++) {
            uint64_t k = self->pairs[i];
            if (k == 0) continue;
            Py_ssize_t j = (Py_ssize_t)((k * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1);
            while (table[j] != 0) j = (j + 1) & (cap - 1);
            table[j] = k;
        }
        PyMem_Free(self->pairs);
        self->pairs = table;
        self->pairs_cap = cap;
    }
    Py_ssize_t mask = self->pairs_cap - 1;
    Py_ssize_t j = (Py_ssize_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & mask;
    while (self->pairs[j] != 0) {
        if (self->pairs[j] == key) return 0;
        j = (j + 1) & mask;
    }
    self->pairs[j] = key;
    self->pairs_count++;
    return 0;
}

/* Grow an array of `size`-byte items to hold at least `need`; *cap is its capacity in items. */
static int grow(void **array, Py_ssize_t *cap, Py_ssize_t need, size_t size) {
    if (need <= *cap) return 0;
    Py_ssize_t n = *cap ? *cap : 1024;
    while (n < need) n *= 2;
    void *p = PyMem_Realloc(*array, (size_t)n * size);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *array = p;
    *cap = n;
    return 0;
}

/* Stop the garbage collector tracking a list whose elements are all untracked (or not containers): it
 * cannot be part of a cycle. */
static void untrack_flat(PyObject *list) {
    if (!PyList_CheckExact(list) || !PyObject_GC_IsTracked(list)) return;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (PyList_CheckExact(item)) untrack_flat(item);
        if (PyObject_GC_IsTracked(item)) return;
    }
    PyObject_GC_UnTrack(list);
}

/* Append an encoding to one of the item lists, untracked when it is a list (see StepBuffer_new). */
static int items_append(PyObject *items, PyObject *item) {
    if (PyList_CheckExact(item)) untrack_flat(item);
    return PyList_Append(items, item);
}

/* Append one step. changes: NULL or a list [name, enc, ...] (borrowed, copied); value: NULL or the
 * encoded value (borrowed). */
static int steps_add(StepBuffer *self, int event, int64_t fid, Py_ssize_t line, PyObject *changes,
                     PyObject *value, long long code, Py_ssize_t depth) {
    Py_ssize_t i = self->count;
    if (code < 0 || code > 0x7FFFFFFF || line < 0 || line > 0x7FFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "code id or line out of range");
        return -1;
    }
    if (i >= self->cap) {
        Py_ssize_t cap = self->cap;
        if (grow((void **)&self->events, &cap, i + 1, 1) < 0) return -1;
        cap = self->cap;
        if (grow((void **)&self->fids, &cap, i + 1, sizeof(int64_t)) < 0) return -1;
        cap = self->cap;
        if (grow((void **)&self->lines, &cap, i + 1, sizeof(int32_t)) < 0) return -1;
        self->cap = cap;
    }
    if (pairs_insert(self, (((uint64_t)code << 32) | (uint64_t)line) + 1) < 0) return -1;
    Py_ssize_t n = changes != NULL && changes != Py_None ? PyList_GET_SIZE(changes) : 0;
    if (n > 0) {
        if (self->nchanges >= self->changes_cap) {
            Py_ssize_t cap = self->changes_cap;
            if (grow((void **)&self->change_offsets, &cap, self->nchanges + 1, sizeof(int32_t)) < 0) return -1;
            cap = self->changes_cap;
            if (grow((void **)&self->change_sizes, &cap, self->nchanges + 1, sizeof(int32_t)) < 0) return -1;
            self->changes_cap = cap;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *item = PyList_GET_ITEM(changes, k);
            if (items_append(self->change_items, item) < 0) return -1;
            if (k % 2 == 0) {
                PyObject **cached = &self->name_cache[((uintptr_t)item >> 4) & 63];
                if (*cached != item) {
                    if (PySet_Add(self->names, item) < 0) return -1;
                    Py_XSETREF(*cached, Py_NewRef(item));
                }
            } else if (PyList_CheckExact(item) && PyList_GET_SIZE(item) == 3) {
                self->deltas++;
            }
        }
        self->change_offsets[self->nchanges] = (int32_t)i;
        self->change_sizes[self->nchanges] = (int32_t)n;
        self->nchanges++;
    }
    if (value != NULL && value != Py_None) {
        Py_ssize_t cap = self->values_cap;
        if (grow((void **)&self->value_offsets, &cap, self->nvalues + 1, sizeof(int32_t)) < 0) return -1;
        self->values_cap = cap;
        if (items_append(self->value_items, value) < 0) return -1;
        self->value_offsets[self->nvalues++] = (int32_t)i;
    }
    self->events[i] = (unsigned char)event;
    self->fids[i] = fid;
    self->lines[i] = (int32_t)line;
    self->count = i + 1;
    if (depth < self->min_depth || self->min_depth < 0) self->min_depth = depth;
    if (depth > self->max_depth) self->max_depth = depth;
    return 0;
}

/* A frame that starts in this chunk (the chunk's frame table). */
static int steps_add_frame(StepBuffer *self, int64_t fid, int64_t code, int64_t parent, int64_t thread,
                           int64_t depth) {
    Py_ssize_t cap = self->frames_cap;
    if (grow((void **)&self->frames, &cap, 5 * (self->nframes + 1), sizeof(int64_t)) < 0) return -1;
    self->frames_cap = cap;
    int64_t *entry = self->frames + 5 * self->nframes++;
    entry[0] = fid;
    entry[1] = code;
    entry[2] = parent;
    entry[3] = thread;
    entry[4] = depth;
    return 0;
}

static PyObject *StepBuffer_add_frame(StepBuffer *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "add_frame(fid, code_id, parent, thread, depth)");
        return NULL;
    }
    int64_t v[5];
    for (int i = 0; i < 5; i++) {
        v[i] = PyLong_AsLongLong(args[i]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    if (steps_add_frame(self, v[0], v[1], v[2], v[3], v[4]) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *StepBuffer_clear_frames(StepBuffer *self, PyObject *unused) {
    self->nframes = 0;
    Py_RETURN_NONE;
}

static PyObject *StepBuffer_add(StepBuffer *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "add(event, fid, line, changes, value, code_id, depth)");
        return NULL;
    }
    Py_ssize_t depth = PyLong_AsSsize_t(args[6]);
    if (depth == -1 && PyErr_Occurred()) return NULL;
    long event = PyLong_AsLong(args[0]);
    if (event == -1 && PyErr_Occurred()) return NULL;
    long long fid = PyLong_AsLongLong(args[1]);
    if (fid == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t line = PyLong_AsSsize_t(args[2]);
    if (line == -1 && PyErr_Occurred()) return NULL;
    long long code = PyLong_AsLongLong(args[5]);
    if (code == -1 && PyErr_Occurred()) return NULL;
    PyObject *changes = args[3];
    if (changes != Py_None && !PyList_Check(changes)) {
        PyErr_SetString(PyExc_TypeError, "changes must be a list or None");
        return NULL;
    }
    if (steps_add(self, (int)event, fid, line, changes, args[4], code, depth) < 0) return NULL;
    Py_RETURN_NONE;
}

static Py_ssize_t StepBuffer_len(StepBuffer *self) { return self->count; }

/* The columns as the Python StepBuffer keeps them (for the Python side and tests; the recorder itself
 * packs them with pack_columns). */
static PyObject *StepBuffer_get_events(StepBuffer *self, void *closure) {
    return PyBytes_FromStringAndSize((const char *)self->events, self->count);
}

/* fids (closure NULL) or lines (closure non-NULL) as a new list. */
static PyObject *StepBuffer_get_column(StepBuffer *self, void *closure) {
    PyObject *list = PyList_New(self->count);
    for (Py_ssize_t i = 0; list != NULL && i < self->count; i++) {
        PyObject *v = PyLong_FromLongLong(closure ? (long long)self->lines[i] : (long long)self->fids[i]);
        if (v == NULL) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, v);
    }
    return list;
}

/* [[offset, item, ...], ...]: records of sizes[k] items each, taken in order from items. */
static PyObject *records_list(int32_t *offsets, int32_t *sizes, Py_ssize_t n, PyObject *items) {
    PyObject *out = PyList_New(n);
    Py_ssize_t at = 0;
    for (Py_ssize_t k = 0; out != NULL && k < n; k++) {
        Py_ssize_t size = sizes ? sizes[k] : 1;
        PyObject *record = PyList_New(size + 1);
        PyObject *offset = record ? PyLong_FromLong(offsets[k]) : NULL;
        if (offset == NULL) {
            Py_XDECREF(record);
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(record, 0, offset);
        for (Py_ssize_t j = 0; j < size; j++) PyList_SET_ITEM(record, j + 1, Py_NewRef(PyList_GET_ITEM(items, at + j)));
        at += size;
        PyList_SET_ITEM(out, k, record);
    }
    return out;
}

static PyObject *StepBuffer_get_changes(StepBuffer *self, void *closure) {
    return records_list(self->change_offsets, self->change_sizes, self->nchanges, self->change_items);
}

static PyObject *StepBuffer_get_values(StepBuffer *self, void *closure) {
    return records_list(self->value_offsets, NULL, self->nvalues, self->value_items);
}

/* {fid: [code id, parent, thread, depth]} for the frames that start in the chunk (a new dict). */
static PyObject *StepBuffer_get_frames(StepBuffer *self, void *closure) {
    PyObject *out = PyDict_New();
    for (Py_ssize_t k = 0; out != NULL && k < self->nframes; k++) {
        int64_t *e = self->frames + 5 * k;
        PyObject *key = PyLong_FromLongLong(e[0]);
        PyObject *meta = Py_BuildValue("[LLLL]", (long long)e[1], (long long)e[2], (long long)e[3], (long long)e[4]);
        if (key == NULL || meta == NULL || PyDict_SetItem(out, key, meta) < 0) Py_CLEAR(out);
        Py_XDECREF(key);
        Py_XDECREF(meta);
    }
    return out;
}

static PyObject *StepBuffer_pack_columns(StepBuffer *self, PyObject *unused);

static PyGetSetDef StepBuffer_getset[] = {
    {"events", (getter)StepBuffer_get_events, NULL, "One event code per step (bytes).", NULL},
    {"fids", (getter)StepBuffer_get_column, NULL, "Frame id per step (a new list).", NULL},
    {"lines", (getter)StepBuffer_get_column, NULL, "Line per step (a new list).", (void *)1},
    {"changes", (getter)StepBuffer_get_changes, NULL, "[[offset, name, enc, ...], ...] (a new list).", NULL},
    {"values", (getter)StepBuffer_get_values, NULL, "[[offset, enc], ...] (a new list).", NULL},
    {"frames", (getter)StepBuffer_get_frames, NULL, "{fid: [code, parent, thread, depth]} (a new dict).", NULL},
    {NULL},
};

/* pairs(): the distinct (code id, line) of the steps, as a frozenset of tuples. */
static PyObject *StepBuffer_pairs(StepBuffer *self, PyObject *unused) {
    PyObject *result = PyFrozenSet_New(NULL);
    if (result == NULL) return NULL;
    for (Py_ssize_t i = 0; i < self->pairs_cap; i++) {
        uint64_t k = self->pairs[i];
        if (k == 0) continue;
        k -= 1;
        PyObject *pair = Py_BuildValue("(LL)", (long long)(k >> 32), (long long)(k & 0xFFFFFFFFULL));
        if (pair == NULL || PySet_Add(result, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(result);
            return NULL;
        }
        Py_DECREF(pair);
    }
    return result;
}

static PyMethodDef StepBuffer_methods[] = {
    {"add", (PyCFunction)(void (*)(void))StepBuffer_add, METH_FASTCALL, "add(event, fid, line, changes, value, code_id, depth)"},
    {"pairs", (PyCFunction)StepBuffer_pairs, METH_NOARGS, "The distinct (code id, line) pairs."},
    {"pack_columns", (PyCFunction)StepBuffer_pack_columns, METH_NOARGS,
     "msgpack of the fids, lines, changes, values and frames columns, one after the other (5 objects)."},
    {"add_frame", (PyCFunction)(void (*)(void))StepBuffer_add_frame, METH_FASTCALL,
     "add_frame(fid, code_id, parent, thread, depth): a frame that starts in this chunk."},
    {"clear_frames", (PyCFunction)StepBuffer_clear_frames, METH_NOARGS, "Forget the frames added so far."},
    {NULL},
};

#define SB_OFF(x) offsetof(StepBuffer, x)
static PyMemberDef StepBuffer_members[] = {
    {"names", Py_T_OBJECT_EX, SB_OFF(names), Py_READONLY, NULL},
    {"min_depth", Py_T_PYSSIZET, SB_OFF(min_depth), Py_READONLY, NULL},
    {"max_depth", Py_T_PYSSIZET, SB_OFF(max_depth), Py_READONLY, NULL},
    {"deltas", Py_T_PYSSIZET, SB_OFF(deltas), Py_READONLY, NULL},
    {NULL},
};

static PySequenceMethods StepBuffer_as_sequence = {
    .sq_length = (lenfunc)StepBuffer_len,
};

static PyTypeObject StepBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._core.StepBuffer",
    .tp_basicsize = sizeof(StepBuffer),
    .tp_dealloc = (destructor)StepBuffer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One chunk's steps as columns (C twin of monitor.StepBuffer).",
    .tp_as_sequence = &StepBuffer_as_sequence,
    .tp_methods = StepBuffer_methods,
    .tp_members = StepBuffer_members,
    .tp_getset = StepBuffer_getset,
    .tp_new = StepBuffer_new,
};

/* ------------------------------------------------------------------------------------------------ */
/* Core                                                                                               */

#define CODE_CACHE 512 /* direct-mapped cache of the codes dict's entries, by code object address */
#define RENDER_CACHE 16 /* recent container renderings (see render_lookup) */
#define RENDER_KEEP 3   /* steps a rendering is kept */

/* A dict's version tag (deprecated as API in 3.12, still maintained by 3.12 and 3.13). */
static inline uint64_t dict_version(PyObject *d) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return ((PyDictObject *)d)->ma_version_tag;
#pragma GCC diagnostic pop
}

typedef struct Core Core;
struct Core {
    PyObject_HEAD
    PyObject *steps, *threads, *codes, *suspended, *lock;
    Py_ssize_t count, next_check, next_fid, limit;
    unsigned long owner_tid;
    char has_owner, active;
    unsigned long tid_cached; /* the last thread id seen, and its int object */
    PyObject *tid_obj;
    /* Lookup caches, valid while the dict they came from has the same version tag (CPython gives a dict a
     * new, never reused tag on every change). Each holds strong references, so no address is reused. */
    PyObject *ts_dict, *ts_cached; /* threads[tid_obj] as found in ts_dict */
    unsigned long ts_tid;
    uint64_t ts_version;
    struct CodeSlot {
        PyObject *code, *entry, *dict; /* codes[id(code)] as found in dict */
        uint64_t version;
    } code_cache[CODE_CACHE];
    struct Render {
        PyObject *obj, *head, *enc; /* a container, its fingerprint head and its encoding, at step `step` */
        Py_ssize_t step;
    } renders[RENDER_CACHE];
    Py_ssize_t renders_oldest; /* the oldest step among them, -1: none */
};

static PyObject *Core_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Core *self = (Core *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->steps = PyObject_CallNoArgs((PyObject *)&StepBufferType);
    self->threads = PyDict_New();
    self->codes = PyDict_New();
    self->suspended = PyDict_New();
    self->lock = PyObject_CallNoArgs((PyObject *)&LockType);
    self->limit = 1000;
    self->next_check = 1;
    self->renders_oldest = -1;
    if (!self->steps || !self->threads || !self->codes || !self->suspended || !self->lock) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int Core_traverse(Core *self, visitproc visit, void *arg) {
    Py_VISIT(self->steps);
    Py_VISIT(self->threads);
    Py_VISIT(self->codes);
    Py_VISIT(self->suspended);
    Py_VISIT(self->lock);
    Py_VISIT(self->ts_dict);
    Py_VISIT(self->ts_cached);
    for (int i = 0; i < CODE_CACHE; i++) {
        Py_VISIT(self->code_cache[i].entry);
        Py_VISIT(self->code_cache[i].dict);
    }
    for (int i = 0; i < RENDER_CACHE; i++) {
        Py_VISIT(self->renders[i].obj);
        Py_VISIT(self->renders[i].head);
        Py_VISIT(self->renders[i].enc);
    }
    return 0;
}

static PyObject *Core_forget_renders(Core *self, PyObject *unused);

static int Core_clear(Core *self) {
    Py_CLEAR(self->steps);
    Py_CLEAR(self->threads);
    Py_CLEAR(self->codes);
    Py_CLEAR(self->suspended);
    Py_CLEAR(self->lock);
    Py_CLEAR(self->tid_obj);
    Py_CLEAR(self->ts_dict);
    Py_CLEAR(self->ts_cached);
    for (int i = 0; i < CODE_CACHE; i++) {
        Py_CLEAR(self->code_cache[i].code);
        Py_CLEAR(self->code_cache[i].entry);
        Py_CLEAR(self->code_cache[i].dict);
    }
    Py_XDECREF(Core_forget_renders(self, NULL));
    return 0;
}

static void Core_dealloc(Core *self) {
    PyObject_GC_UnTrack(self);
    Core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Core_get_owner(Core *self, void *closure) {
    if (!self->has_owner) Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->owner_tid);
}

static int Core_set_owner(Core *self, PyObject *value, void *closure) {
    if (value == NULL || value == Py_None) {
        self->has_owner = 0;
        return 0;
    }
    unsigned long tid = PyLong_AsUnsignedLong(value);
    if (tid == (unsigned long)-1 && PyErr_Occurred()) return -1;
    self->owner_tid = tid;
    self->has_owner = 1;
    return 0;
}

/* -- helpers ------------------------------------------------------------------------------------- */

#define FINGERPRINT (-2) /* rec.heads[name] = (fingerprint, FINGERPRINT): see "fingerprints" below */
#define FP_FLAT (-3)     /* the same, for a value whose repr shows no container but itself */
static int fp_match(PyObject *v, PyObject *fp, Py_ssize_t *pos);
static int fp_remember(FrameRecord *rec, PyObject *name, PyObject *obj);
static int fp_store(FrameRecord *rec, PyObject *name, PyObject *v);
static int store_text(FrameRecord *rec, PyObject *name, PyObject *enc, PyObject **changes);
static PyObject *encode_container(Py_ssize_t limit, PyObject *v, int *immutable);

static inline int is_none(PyObject *o) { return o == NULL || o == Py_None; }

/* dict.pop(key, None) without the value. */
static int dict_discard(PyObject *d, PyObject *key) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_Pop(d, key, NULL) < 0 ? -1 : 0;
#else
    int has = PyDict_Contains(d, key);
    if (has <= 0) return has;
    return PyDict_DelItem(d, key);
#endif
}

/* Report an internal error the way PythonRecorder does (self._fail(exc): stop recording, note it).
 * A BaseException that is not an Exception (KeyboardInterrupt...) is left set: it reaches the program,
 * as it would from the Python callbacks. Returns 0 when handled, -1 when the error must propagate. */
static int core_fail(Core *self) {
    PyObject *exc = PyErr_GetRaisedException();
    if (exc == NULL) return 0;
    if (!PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
        PyErr_SetRaisedException(exc);
        return -1;
    }
    PyObject *r = PyObject_CallMethodOneArg((PyObject *)self, S_fail, exc);
    Py_DECREF(exc);
    if (r == NULL) {
        PyErr_Clear();
    } else {
        Py_DECREF(r);
    }
    return 0;
}

/* The value of fast local i, or NULL (unbound). Only for SIMPLE codes: no cells, free or hidden vars. */
static inline PyObject *frame_local(PyObject *frame, Py_ssize_t i) {
    _PyInterpreterFrame *f = ((PyFrameObject *)frame)->f_frame;
    PyCodeObject *co = FRAME_CODE(f);
    if (i < 0 || i >= co->co_nlocalsplus) return NULL;
#if PY_VERSION_HEX >= 0x030E0000
    return PyStackRef_AsPyObjectBorrow(f->localsplus[i]);
#else
    return f->localsplus[i];
#endif
}

/* The encoding of a scalar (values.ValueEncoder.encode): an int64, bool or finite float is stored as
 * itself; None and a short str as their repr. NULL with no error set when the value needs the full
 * encoder; NULL with an error set on failure. */
#define NATIVE_INT_LIMIT 20   /* values.py NATIVE_INT_LIMIT */
#define NATIVE_FLOAT_LIMIT 24 /* values.py NATIVE_FLOAT_LIMIT */
/* Whether str s is printed by repr() as itself between single quotes: ASCII, printable, no quote or
 * backslash (the scalar encoder and both repr writers below share this test). */
static inline int plain_ascii(PyObject *s) {
    if (!PyUnicode_IS_ASCII(s)) return 0;
    const unsigned char *data = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = data[i];
        if (c < 0x20 || c > 0x7e || c == '\'' || c == '\\') return 0;
    }
    return 1;
}

/* The decimal text of x, written backwards so that it ends just before `end` (at most 21 characters);
 * returns where it starts. */
static inline char *format_ssize(Py_ssize_t x, char *end) {
    char *p = end;
    size_t u = x < 0 ? (size_t)0 - (size_t)x : (size_t)x;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0) *--p = '-';
    return p;
}

static PyObject *scalar_encoding(Py_ssize_t limit, PyObject *obj) {
    PyTypeObject *t = Py_TYPE(obj);
    if (t == &PyBool_Type) return Py_NewRef(obj); /* stored as itself (values.native) */
    if (t == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(obj);
        if (!isfinite(d)) return NULL;
        if (limit >= NATIVE_FLOAT_LIMIT) return Py_NewRef(obj);
    } else if (t == &PyLong_Type) {
        int overflow = 0;
        PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (PyErr_Occurred()) return NULL;
        if (!overflow && limit >= NATIVE_INT_LIMIT) return Py_NewRef(obj);
    } else if (t == &PyUnicode_Type) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(obj);
        if (n > 64) return NULL;
        if (n + 2 <= limit && plain_ascii(obj)) { /* its repr is 'text' */
            PyObject *text = PyUnicode_New(n + 2, 127);
            if (text == NULL) return NULL;
            Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
            out[0] = out[n + 1] = '\'';
            memcpy(out + 1, PyUnicode_1BYTE_DATA(obj), n);
            return text;
        }
    } else if (obj != Py_None) {
        return NULL;
    }
    PyObject *text = PyObject_Repr(obj);
    if (text == NULL) return NULL;
    if (PyUnicode_GET_LENGTH(text) > limit) {
        Py_DECREF(text);
        return NULL;
    }
    return text;
}

/* values.same_encoding: the same text (type-exact: 1 is not True, 0.0 is not -0.0). 1, 0, or -1. */
static int same_encoding(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (Py_TYPE(a) != Py_TYPE(b)) return 0;
    if (PyFloat_CheckExact(a)) {
        double x = PyFloat_AS_DOUBLE(a), y = PyFloat_AS_DOUBLE(b);
        return x == y && signbit(x) == signbit(y);
    }
    if (PyUnicode_CheckExact(a)) return PyUnicode_Compare(a, b) == 0 ? 1 : (PyErr_Occurred() ? -1 : 0);
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

/* changes (a list or NULL) += [name, enc]. Returns the list, or NULL on error (old list released). */
static PyObject *changes_add(PyObject *changes, PyObject *name, PyObject *enc) {
    if (changes == NULL) {
        changes = PyList_New(0);
        if (changes == NULL) return NULL;
    }
    if (PyList_Append(changes, name) < 0 || PyList_Append(changes, enc) < 0) {
        Py_DECREF(changes);
        return NULL;
    }
    return changes;
}

/* Python's changes argument (None or list) from ours (NULL or list). */
static PyObject *changes_arg(PyObject *changes) { return changes ? changes : Py_None; }

/* Bind name to obj in rec (PythonRecorder._set). Consumes `changes` (NULL or list); returns the new
 * changes (NULL or list) in *out. Returns -1 on error. */
/* True when v is stored as itself (values.native): then its encoding is v, and a name bound to it has
 * texts[name] equal to it, with no need to look it up. */
static inline int is_native(Py_ssize_t limit, PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyBool_Type) return 1;
    if (t == &PyFloat_Type) return limit >= NATIVE_FLOAT_LIMIT && isfinite(PyFloat_AS_DOUBLE(v));
    if (t == &PyLong_Type) return limit >= NATIVE_INT_LIMIT && _PyLong_IsCompact((PyLongObject *)v);
    return 0;
}

/* old_obj: the object the name was bound to (borrowed, may be NULL), when the caller knows it. */
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

/* True when value still holds exactly the objects of head = (elements, length) (ValueEncoder.head_unchanged). */
static int head_unchanged(PyObject *value, PyObject *head) {
    if (!PyTuple_CheckExact(head) || PyTuple_GET_SIZE(head) != 2) return -2;
    PyObject *elements = PyTuple_GET_ITEM(head, 0);
    Py_ssize_t length = PyLong_AsSsize_t(PyTuple_GET_ITEM(head, 1));
    if (length == -1 && PyErr_Occurred()) return -1;
    if (!PyList_CheckExact(elements)) return -2;
    if (length == FINGERPRINT || length == FP_FLAT) {
        Py_ssize_t pos = 0;
        int rc = fp_match(value, elements, &pos);
        return rc == 1 ? pos == PyList_GET_SIZE(elements) : rc;
    }
    Py_ssize_t m = PyList_GET_SIZE(elements);
    PyObject **want = ((PyListObject *)elements)->ob_item;
    PyTypeObject *t = Py_TYPE(value);
    if (t == &PyList_Type || t == &PyTuple_Type) {
        Py_ssize_t n = Py_SIZE(value);
        if (length >= 0 && n != length) return 0;
        if (n < m) return 0;
        PyObject **items = t == &PyList_Type ? ((PyListObject *)value)->ob_item : ((PyTupleObject *)value)->ob_item;
        for (Py_ssize_t i = 0; i < m; i++) {
            if (items[i] != want[i]) return 0;
        }
        return 1;
    }
    if (t == &PyDict_Type) {
        Py_ssize_t n = PyDict_GET_SIZE(value);
        if (length >= 0 && n != length) return 0;
        Py_ssize_t pos = 0, i = 0;
        PyObject *k, *v;
        while (i < m && PyDict_Next(value, &pos, &k, &v)) {
            if (k != want[i]) return 0;
            if (i + 1 < m && v != want[i + 1]) return 0;
            i += 2;
        }
        return i >= m;
    }
    if (t == &PySet_Type || t == &PyFrozenSet_Type) {
        Py_ssize_t n = PySet_GET_SIZE(value);
        if (length >= 0 && n != length) return 0;
        PyObject *it = PyObject_GetIter(value);
        if (it == NULL) return -1;
        Py_ssize_t i = 0;
        PyObject *item;
        int result = 1;
        while (i < m && (item = PyIter_Next(it)) != NULL) {
            int same = item == want[i];
            Py_DECREF(item);
            if (!same) {
                result = 0;
                break;
            }
            i++;
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) return -1;
        return result && i >= m;
    }
    return -2; /* some other type: let Python decide */
}

/* -- fingerprints ----------------------------------------------------------------------------------
 * A value's repr is fixed by the identity of the objects it shows when those are scalars, builtin
 * containers of them, or objects with object's default repr (type name and address). For such a value
 * the C recorder keeps a fingerprint: the objects met in a walk of it (each container followed by its
 * length), in repr order. Same fingerprint => same repr, so a mutable value is re-encoded only when its
 * fingerprint changed. Stored in rec.heads as (list, FINGERPRINT), or (list, FP_FLAT) when the list holds no
 * container but the value itself (then no other object can change its repr); the Python recorder treats that as
 * "changed" and re-encodes (monitor.ValueEncoder.head_unchanged).
 */
#define FP_BUDGET 4096
#define FP_DEPTH 32

static inline int scalar_leaf(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type || v == Py_None || t == &PyBool_Type ||
           t == &PyBytes_Type || t == &PyComplex_Type;
}

static inline int builtin_container(PyTypeObject *t) {
    return t == &PyList_Type || t == &PyTuple_Type || t == &PyDict_Type || t == &PySet_Type ||
           t == &PyFrozenSet_Type;
}

static inline int default_repr(PyObject *v) { return Py_TYPE(v)->tp_repr == PyBaseObject_Type.tp_repr; }

/* A fingerprint being built: new references in a C array (moved into a list at the end). */
typedef struct {
    PyObject **items;
    Py_ssize_t size, cap;
    Py_ssize_t containers; /* builtin containers met (the value itself included) */
    PyObject *inline_items[256];
} FpBuf;

static int fp_push(FpBuf *f, PyObject *o) { /* steals o */
    if (o == NULL) return -1;
    if (f->size == f->cap) {
        Py_ssize_t cap = f->cap * 2;
        PyObject **items = f->items == f->inline_items ? PyMem_Malloc(cap * sizeof(PyObject *))
                                                       : PyMem_Realloc(f->items, cap * sizeof(PyObject *));
        if (items == NULL) {
            Py_DECREF(o);
            PyErr_NoMemory();
            return -1;
        }
        if (f->items == f->inline_items) memcpy(items, f->inline_items, f->size * sizeof(PyObject *));
        f->items = items;
        f->cap = cap;
    }
    f->items[f->size++] = o;
    return 0;
}

/* Append v's fingerprint to f. 1: done; 0: v has no fingerprint; -1: error. Nothing here runs Python
 * code (lengths of builtin containers, no hashing), so the containers cannot change during the walk. */
static int fp_build(PyObject *v, FpBuf *f, Py_ssize_t *budget, int depth) {
    if (--*budget < 0) return 0;
    if (scalar_leaf(v)) return fp_push(f, Py_NewRef(v)) < 0 ? -1 : 1;
    PyTypeObject *t = Py_TYPE(v);
    if (!builtin_container(t)) {
        if (!default_repr(v)) return 0;
        if (fp_push(f, Py_NewRef(v)) < 0 || fp_push(f, Py_NewRef((PyObject *)t)) < 0) return -1;
        return 1;
    }
    if (depth >= FP_DEPTH) return 0;
    Py_ssize_t n = t == &PyDict_Type ? PyDict_GET_SIZE(v)
                   : t == &PyList_Type || t == &PyTuple_Type ? Py_SIZE(v)
                                                              : PySet_GET_SIZE(v);
    if (fp_push(f, Py_NewRef(v)) < 0 || fp_push(f, PyLong_FromSsize_t(n)) < 0) return -1;
    f->containers++;
    int rc = 1;
    if (t == &PyList_Type || t == &PyTuple_Type) {
        PyObject **items = t == &PyList_Type ? ((PyListObject *)v)->ob_item : ((PyTupleObject *)v)->ob_item;
        for (Py_ssize_t i = 0; i < n && rc == 1; i++) rc = fp_build(items[i], f, budget, depth + 1);
        return rc;
    }
    if (t == &PyDict_Type) {
        Py_ssize_t pos = 0;
        PyObject *k, *val;
        while (rc == 1 && PyDict_Next(v, &pos, &k, &val)) {
            rc = fp_build(k, f, budget, depth + 1);
            if (rc == 1) rc = fp_build(val, f, budget, depth + 1);
        }
        return rc;
    }
    Py_ssize_t spos = 0;
    PyObject *item;
    while (rc == 1 && set_next(v, &spos, &item)) rc = fp_build(item, f, budget, depth + 1);
    return rc;
}

/* v's fingerprint as a new list; Py_None (new reference) when it has none; NULL on error. *flat (when not
 * NULL): whether the repr shows no container but v itself. */
static PyObject *fp_list(PyObject *v, int *flat) {
    FpBuf f;
    f.items = f.inline_items;
    f.size = 0;
    f.containers = 0;
    f.cap = sizeof f.inline_items / sizeof f.inline_items[0];
    Py_ssize_t budget = FP_BUDGET;
    int rc = fp_build(v, &f, &budget, 0);
    PyObject *result = NULL;
    if (rc == 1) {
        result = PyList_New(f.size);
        if (result != NULL) {
            memcpy(((PyListObject *)result)->ob_item, f.items, f.size * sizeof(PyObject *));
            f.size = 0; /* the list owns them now */
        }
    } else if (rc == 0) {
        result = Py_NewRef(Py_None);
    }
    for (Py_ssize_t i = 0; i < f.size; i++) Py_DECREF(f.items[i]);
    if (f.items != f.inline_items) PyMem_Free(f.items);
    if (flat) *flat = f.containers <= 1;
    return result;
}

/* Does v still match fp from *pos on? 1 yes, 0 no, -1 error. */
/* One element of a container: a scalar that is the same object is matched inline (the common case). */
#define FP_ELEMENT(item)                                                                    \
    do {                                                                                    \
        PyObject *item_ = (item);                                                           \
        if (*pos < size && want_items[*pos] == item_ && scalar_leaf(item_)) {               \
            (*pos)++;                                                                       \
        } else {                                                                            \
            rc = fp_match(item_, fp, pos);                                                  \
        }                                                                                   \
    } while (0)

static int fp_match(PyObject *v, PyObject *fp, Py_ssize_t *pos) {
    Py_ssize_t size = PyList_GET_SIZE(fp);
    PyObject **want_items = ((PyListObject *)fp)->ob_item; /* fp is never changed after it is built */
    if (*pos >= size || want_items[*pos] != v) return 0;
    (*pos)++;
    if (scalar_leaf(v)) return 1;
    PyTypeObject *t = Py_TYPE(v);
    if (!builtin_container(t)) {
        if (*pos >= size || want_items[*pos] != (PyObject *)t) return 0;
        (*pos)++;
        return 1;
    }
    if (*pos >= size) return 0;
    Py_ssize_t n = Py_TYPE(v) == &PyDict_Type ? PyDict_GET_SIZE(v) : PyObject_Length(v);
    if (n < 0) return -1;
    Py_ssize_t want = PyLong_AsSsize_t(want_items[*pos]);
    if (want == -1 && PyErr_Occurred()) return -1;
    if (n != want) return 0;
    (*pos)++;
    int rc = 1;
    if (t == &PyList_Type || t == &PyTuple_Type) {
        /* A list cannot change during the walk: nothing here runs Python code. */
        PyObject **items = t == &PyList_Type ? ((PyListObject *)v)->ob_item : ((PyTupleObject *)v)->ob_item;
        for (Py_ssize_t i = 0; i < n && rc == 1; i++) FP_ELEMENT(items[i]);
        return rc;
    }
    if (t == &PyDict_Type) {
        Py_ssize_t dpos = 0;
        PyObject *k, *val;
        while (rc == 1 && PyDict_Next(v, &dpos, &k, &val)) {
            FP_ELEMENT(k);
            if (rc == 1) FP_ELEMENT(val);
        }
        return rc;
    }
    Py_ssize_t spos = 0;
    PyObject *item;
    while (rc == 1 && set_next(v, &spos, &item)) FP_ELEMENT(item);
    return rc;
}

/* After the Python encoder ran for name: when it left no head of its own and the value is mutable, keep
 * a fingerprint (if the value has one). */
static int fp_remember(FrameRecord *rec, PyObject *name, PyObject *obj) {
    if (rec->mutables == NULL) return 0;
    int mutable = PySet_Contains(rec->mutables, name);
    if (mutable <= 0) return mutable;
    int has = rec->heads ? PyDict_Contains(rec->heads, name) : 0;
    if (has != 0) return has < 0 ? -1 : 0;
    return fp_store(rec, name, obj);
}

/* -- containers ----------------------------------------------------------------------------------
 * The encoding of a builtin container of scalars (one level, or two as a container of small containers
 * of scalars), exactly as ValueEncoder.encode gives it on its fast and nested paths: repr(), cut at the
 * limit, marked non-literal for frozensets and inf/nan. Anything else goes to the Python encoder.
 */
enum { K_FAST = 1, K_STRB = 2, K_COMPLEX = 4, K_CONT = 8, K_FROZEN = 16, K_FLOAT = 32, K_OTHER = 64 };
#define FAST_LEN 256       /* values.py _FAST_LEN */
#define NESTED_BUDGET 2048 /* values.py _NESTED_BUDGET */

static PyObject *S_inf, *S_nan, *S_ellipsis;

static inline int kind_of(PyObject *x, Py_ssize_t *text) {
    PyTypeObject *t = Py_TYPE(x);
    if (t == &PyLong_Type || t == &PyBool_Type || x == Py_None) return K_FAST;
    if (t == &PyFloat_Type) return K_FAST | K_FLOAT;
    if (t == &PyUnicode_Type) {
        *text += PyUnicode_GET_LENGTH(x);
        return K_STRB;
    }
    if (t == &PyBytes_Type) {
        *text += PyBytes_GET_SIZE(x);
        return K_STRB;
    }
    if (t == &PyComplex_Type) return K_COMPLEX | K_FLOAT;
    if (t == &PyList_Type || t == &PyTuple_Type || t == &PyDict_Type || t == &PySet_Type) return K_CONT;
    if (t == &PyFrozenSet_Type) return K_CONT | K_FROZEN;
    return K_OTHER;
}

/* Call visit(element, ctx) for each element of a builtin container in the encoder's order (a dict: its
 * keys, then its values), stopping at the first non-zero result, which it returns. visit must not run
 * Python code (the container cannot change meanwhile). */
typedef int (*visit_fn)(PyObject *item, void *ctx);

static int for_each_element(PyObject *v, visit_fn visit, void *ctx) {
    PyTypeObject *t = Py_TYPE(v);
    int rc = 0;
    if (t == &PyList_Type || t == &PyTuple_Type) {
        Py_ssize_t n = Py_SIZE(v);
        PyObject **items = t == &PyList_Type ? ((PyListObject *)v)->ob_item : ((PyTupleObject *)v)->ob_item;
        for (Py_ssize_t i = 0; i < n && rc == 0; i++) rc = visit(items[i], ctx);
    } else if (t == &PyDict_Type) {
        Py_ssize_t pos = 0;
        PyObject *k, *val;
        while (rc == 0 && PyDict_Next(v, &pos, &k, &val)) rc = visit(k, ctx);
        pos = 0;
        while (rc == 0 && PyDict_Next(v, &pos, &k, &val)) rc = visit(val, ctx);
    } else {
        Py_ssize_t pos = 0;
        PyObject *item;
        while (rc == 0 && set_next(v, &pos, &item)) rc = visit(item, ctx);
    }
    return rc;
}

typedef struct {
    int mask;
    Py_ssize_t text;
} KindScan;

static int scan_kind(PyObject *item, void *ctx) {
    KindScan *scan = (KindScan *)ctx;
    scan->mask |= kind_of(item, &scan->text);
    return 0;
}

typedef struct {
    Py_ssize_t inner_len, limit;
    KindScan inner;
} NestedScan;

/* values.py _nested_kinds, one element: 1 stops the scan (the slow path it is). */
static int scan_nested(PyObject *item, void *ctx) {
    NestedScan *scan = (NestedScan *)ctx;
    if (!builtin_container(Py_TYPE(item))) return 0;
    scan->inner_len += Py_TYPE(item) == &PyDict_Type ? PyDict_GET_SIZE(item) : PyObject_Length(item);
    if (scan->inner_len > NESTED_BUDGET) return 1;
    for_each_element(item, scan_kind, &scan->inner);
    const int scalar_kinds = K_FAST | K_FLOAT | K_STRB | K_COMPLEX;
    return (scan->inner.mask & ~scalar_kinds) ? 1 : 0;
}

typedef struct {
    Py_ssize_t leaves, text, limit;
    int literal, depth;
} WalkScan;

static int walk_one(PyObject *item, void *ctx);

/* For the encoder's slow path (ValueEncoder._walk): every leaf of v is a scalar, every container a builtin
 * one, no deeper than FP_DEPTH, with a bounded number of leaves and of characters in strings (so repr()
 * is cheap). Sets *literal to 0 where _walk would (a frozenset, a float or complex that is inf or nan).
 * 1: such a value; 0: not; -1: error. */
#define WALK_LEAVES 1024
static int walk_one(PyObject *v, void *ctx) {
    WalkScan *scan = (WalkScan *)ctx;
    if (--scan->leaves < 0) return 1;
    int kind = kind_of(v, &scan->text);
    if (kind & K_OTHER) return 1;
    if (scan->text > 4 * scan->limit) return 1;
    if (!(kind & K_CONT)) {
        if (kind & K_FLOAT) {
            if (PyFloat_CheckExact(v)) {
                if (!isfinite(PyFloat_AS_DOUBLE(v))) scan->literal = 0;
            } else {
                Py_complex c = ((PyComplexObject *)v)->cval;
                if (!isfinite(c.real) || !isfinite(c.imag)) scan->literal = 0;
            }
        }
        return 0;
    }
    if (kind & K_FROZEN) scan->literal = 0;
    if (scan->depth >= FP_DEPTH) return 1;
    scan->depth++;
    int rc = for_each_element(v, walk_one, scan);
    scan->depth--;
    return rc;
}

/* True when v can never change: a scalar, or tuples and frozensets of them all the way down (so it needs
 * no recheck, however deep). */
static int frozen_tree(PyObject *v, int depth) {
    if (scalar_leaf(v)) return 1;
    PyTypeObject *t = Py_TYPE(v);
    if ((t != &PyTuple_Type && t != &PyFrozenSet_Type) || depth >= FP_DEPTH) return 0;
    if (t == &PyTuple_Type) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v); i++) {
            if (!frozen_tree(PyTuple_GET_ITEM(v, i), depth + 1)) return 0;
        }
        return 1;
    }
    Py_ssize_t pos = 0;
    PyObject *item;
    while (set_next(v, &pos, &item)) {
        if (!frozen_tree(item, depth + 1)) return 0;
    }
    return 1;
}

/* repr() of a builtin container of scalars, written straight into one string: the same text as
 * PyObject_Repr (property-tested against it), without a str object per element. Elements other than exact
 * ints, bools, None, floats and plain ASCII strs (and nested builtin containers) go through PyObject_Repr. */
static int repr_into(_PyUnicodeWriter *w, PyObject *v, int depth);

static int repr_fallback(_PyUnicodeWriter *w, PyObject *v) {
    PyObject *text = PyObject_Repr(v);
    if (text == NULL) return -1;
    int rc = _PyUnicodeWriter_WriteStr(w, text);
    Py_DECREF(text);
    return rc;
}

static int repr_int(_PyUnicodeWriter *w, PyObject *v) {
    if (!_PyLong_IsCompact((PyLongObject *)v)) return repr_fallback(w, v);
    char buf[32], *end = buf + sizeof buf;
    char *p = format_ssize(_PyLong_CompactValue((PyLongObject *)v), end);
    return _PyUnicodeWriter_WriteASCIIString(w, p, end - p);
}

static int repr_str(_PyUnicodeWriter *w, PyObject *v) {
    if (!plain_ascii(v)) return repr_fallback(w, v); /* escapes, other quotes, non-ASCII */
    if (_PyUnicodeWriter_WriteChar(w, '\'') < 0) return -1;
    const char *data = (const char *)PyUnicode_1BYTE_DATA(v);
    if (_PyUnicodeWriter_WriteASCIIString(w, data, PyUnicode_GET_LENGTH(v)) < 0) return -1;
    return _PyUnicodeWriter_WriteChar(w, '\'');
}

static int repr_float(_PyUnicodeWriter *w, PyObject *v) {
    char *text = PyOS_double_to_string(PyFloat_AS_DOUBLE(v), 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) return -1;
    int rc = _PyUnicodeWriter_WriteASCIIString(w, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return rc;
}

static int repr_items(_PyUnicodeWriter *w, PyObject *const *items, Py_ssize_t n, int depth) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0 && _PyUnicodeWriter_WriteASCIIString(w, ", ", 2) < 0) return -1;
        if (repr_into(w, items[i], depth + 1) < 0) return -1;
    }
    return 0;
}

static int repr_set(_PyUnicodeWriter *w, PyObject *v, int depth) {
    int frozen = Py_IS_TYPE(v, &PyFrozenSet_Type);
    if (PySet_GET_SIZE(v) == 0) {
        const char *empty = frozen ? "frozenset()" : "set()";
        return _PyUnicodeWriter_WriteASCIIString(w, empty, (Py_ssize_t)strlen(empty));
    }
    if (frozen && _PyUnicodeWriter_WriteASCIIString(w, "frozenset(", 10) < 0) return -1;
    if (_PyUnicodeWriter_WriteChar(w, '{') < 0) return -1;
    Py_ssize_t pos = 0, i = 0;
    PyObject *item;
    while (set_next(v, &pos, &item)) {
        if (i++ > 0 && _PyUnicodeWriter_WriteASCIIString(w, ", ", 2) < 0) return -1;
        if (repr_into(w, item, depth + 1) < 0) return -1;
    }
    if (_PyUnicodeWriter_WriteChar(w, '}') < 0) return -1;
    return frozen ? _PyUnicodeWriter_WriteChar(w, ')') : 0;
}

static int repr_dict(_PyUnicodeWriter *w, PyObject *v, int depth) {
    if (_PyUnicodeWriter_WriteChar(w, '{') < 0) return -1;
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(v, &pos, &key, &value)) {
        if (i++ > 0 && _PyUnicodeWriter_WriteASCIIString(w, ", ", 2) < 0) return -1;
        if (repr_into(w, key, depth + 1) < 0) return -1;
        if (_PyUnicodeWriter_WriteASCIIString(w, ": ", 2) < 0) return -1;
        if (repr_into(w, value, depth + 1) < 0) return -1;
    }
    return _PyUnicodeWriter_WriteChar(w, '}');
}

/* Only called on values the encoder's scans accepted (builtin scalars and containers, bounded depth):
 * nothing here runs Python code that could change a container while it is walked. */
static int repr_into(_PyUnicodeWriter *w, PyObject *v, int depth) {
    PyTypeObject *t = Py_TYPE(v);
    if (depth > FP_DEPTH) return repr_fallback(w, v);
    if (v == Py_None) return _PyUnicodeWriter_WriteASCIIString(w, "None", 4);
    if (t == &PyBool_Type) return v == Py_True ? _PyUnicodeWriter_WriteASCIIString(w, "True", 4)
                                               : _PyUnicodeWriter_WriteASCIIString(w, "False", 5);
    if (t == &PyLong_Type) return repr_int(w, v);
    if (t == &PyUnicode_Type) return repr_str(w, v);
    if (t == &PyFloat_Type) return repr_float(w, v);
    if (t == &PyList_Type) {
        if (_PyUnicodeWriter_WriteChar(w, '[') < 0) return -1;
        if (repr_items(w, ((PyListObject *)v)->ob_item, PyList_GET_SIZE(v), depth) < 0) return -1;
        return _PyUnicodeWriter_WriteChar(w, ']');
    }
    if (t == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(v);
        if (_PyUnicodeWriter_WriteChar(w, '(') < 0) return -1;
        if (repr_items(w, ((PyTupleObject *)v)->ob_item, n, depth) < 0) return -1;
        if (n == 1 && _PyUnicodeWriter_WriteChar(w, ',') < 0) return -1;
        return _PyUnicodeWriter_WriteChar(w, ')');
    }
    if (t == &PyDict_Type) return repr_dict(w, v, depth);
    if (t == &PySet_Type || t == &PyFrozenSet_Type) return repr_set(w, v, depth);
    return repr_fallback(w, v);
}

/* -- plain ASCII reprs ------------------------------------------------------------------------------
 * Most containers hold small ints, ASCII strings without quotes or escapes, floats, None and bools: their
 * repr is plain ASCII, written here into a byte buffer with no per-piece writer calls, then copied into an
 * ASCII str once. Anything else (a big int, a string needing escapes or other quotes, non-ASCII text) makes
 * the caller use the _PyUnicodeWriter walk above. */
typedef struct {
    char *data;
    Py_ssize_t size, cap;
    char inline_data[1024];
} AsciiBuf;

static int ascii_room(AsciiBuf *b, Py_ssize_t extra) {
    if (b->size + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->size + extra) cap *= 2;
    char *data = b->data == b->inline_data ? PyMem_Malloc(cap) : PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (b->data == b->inline_data) memcpy(data, b->inline_data, b->size);
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int ascii_put(AsciiBuf *b, const char *text, Py_ssize_t n) {
    if (b->size + n > b->cap && ascii_room(b, n) < 0) return -1;
    memcpy(b->data + b->size, text, n);
    b->size += n;
    return 0;
}

/* 0: written; 1: not plain ASCII (nothing useful written: the caller falls back); -1: error. */
static int ascii_repr(AsciiBuf *b, PyObject *v, int depth) {
    PyTypeObject *t = Py_TYPE(v);
    if (depth > FP_DEPTH) return 1;
    if (t == &PyLong_Type) {
        if (!_PyLong_IsCompact((PyLongObject *)v)) return 1;
        char digits[24], *end = digits + sizeof digits;
        char *p = format_ssize(_PyLong_CompactValue((PyLongObject *)v), end);
        return ascii_put(b, p, end - p);
    }
    if (t == &PyUnicode_Type) {
        if (!plain_ascii(v)) return 1;
        Py_ssize_t n = PyUnicode_GET_LENGTH(v);
        if (b->size + n + 2 > b->cap && ascii_room(b, n + 2) < 0) return -1;
        char *out = b->data + b->size;
        out[0] = '\'';
        memcpy(out + 1, PyUnicode_1BYTE_DATA(v), n);
        out[n + 1] = '\'';
        b->size += n + 2;
        return 0;
    }
    if (v == Py_None) return ascii_put(b, "None", 4);
    if (v == Py_True) return ascii_put(b, "True", 4);
    if (v == Py_False) return ascii_put(b, "False", 5);
    if (t == &PyFloat_Type) {
        char *text = PyOS_double_to_string(PyFloat_AS_DOUBLE(v), 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (text == NULL) return -1;
        int rc = ascii_put(b, text, (Py_ssize_t)strlen(text));
        PyMem_Free(text);
        return rc;
    }
    int rc = 0;
    if (t == &PyList_Type || t == &PyTuple_Type) {
        int list = t == &PyList_Type;
        Py_ssize_t n = Py_SIZE(v);
        PyObject **items = list ? ((PyListObject *)v)->ob_item : ((PyTupleObject *)v)->ob_item;
        rc = ascii_put(b, list ? "[" : "(", 1);
        for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
            if (i > 0) rc = ascii_put(b, ", ", 2);
            if (rc == 0) rc = ascii_repr(b, items[i], depth + 1);
        }
        if (rc == 0 && !list && n == 1) rc = ascii_put(b, ",", 1);
        return rc != 0 ? rc : ascii_put(b, list ? "]" : ")", 1);
    }
    if (t == &PyDict_Type) {
        Py_ssize_t pos = 0, i = 0;
        PyObject *key, *value;
        rc = ascii_put(b, "{", 1);
        while (rc == 0 && PyDict_Next(v, &pos, &key, &value)) {
            if (i++ > 0) rc = ascii_put(b, ", ", 2);
            if (rc == 0) rc = ascii_repr(b, key, depth + 1);
            if (rc == 0) rc = ascii_put(b, ": ", 2);
            if (rc == 0) rc = ascii_repr(b, value, depth + 1);
        }
        return rc != 0 ? rc : ascii_put(b, "}", 1);
    }
    if (t == &PySet_Type || t == &PyFrozenSet_Type) {
        int frozen = t == &PyFrozenSet_Type;
        if (PySet_GET_SIZE(v) == 0) return frozen ? ascii_put(b, "frozenset()", 11) : ascii_put(b, "set()", 5);
        rc = frozen ? ascii_put(b, "frozenset({", 11) : ascii_put(b, "{", 1);
        Py_ssize_t pos = 0, i = 0;
        PyObject *item;
        while (rc == 0 && set_next(v, &pos, &item)) {
            if (i++ > 0) rc = ascii_put(b, ", ", 2);
            if (rc == 0) rc = ascii_repr(b, item, depth + 1);
        }
        return rc != 0 ? rc : frozen ? ascii_put(b, "})", 2) : ascii_put(b, "}", 1);
    }
    return 1;
}

/* size_hint: about how long the text will be (its buffer starts that big: no regrowing on the way). */
static PyObject *container_repr(PyObject *v, Py_ssize_t size_hint) {
    AsciiBuf b;
    b.data = b.inline_data;
    b.size = 0;
    b.cap = sizeof b.inline_data;
    int rc = size_hint > b.cap ? ascii_room(&b, size_hint) : 0;
    if (rc == 0) rc = ascii_repr(&b, v, 0);
    PyObject *text = NULL;
    if (rc == 0) {
        text = PyUnicode_New(b.size, 127);
        if (text != NULL) memcpy(PyUnicode_1BYTE_DATA(text), b.data, b.size);
    }
    if (b.data != b.inline_data) PyMem_Free(b.data);
    if (rc <= 0) return text;
    _PyUnicodeWriter w;
    _PyUnicodeWriter_Init(&w);
    w.overallocate = 1;
    w.min_length = size_hint > 16 ? size_hint : 16;
    if (repr_into(&w, v, 0) < 0) {
        _PyUnicodeWriter_Dealloc(&w);
        return NULL;
    }
    return _PyUnicodeWriter_Finish(&w);
}

/* Encode v when the encoder would give repr(v) for it (a builtin container of scalars, or an object with
 * object's default repr): new reference, with *immutable set as is_immutable(v) would. NULL without an
 * error: any other value (use the Python encoder). */
static PyObject *encode_container(Py_ssize_t limit, PyObject *v, int *immutable) {
    PyTypeObject *t = Py_TYPE(v);
    *immutable = 0;
    if (t == &PyRange_Type) { /* immutable, and its repr is plain (values.py: [repr, 0]) */
        PyObject *text = PyObject_Repr(v);
        if (text == NULL || PyUnicode_GET_LENGTH(text) > limit) {
            Py_XDECREF(text);
            return NULL;
        }
        *immutable = 1;
        return Py_BuildValue("[Ni]", text, 0);
    }
    if (!builtin_container(t)) {
        if (!default_repr(v) || t == &PyBaseObject_Type || PyType_Check(v)) return NULL;
        PyObject *text = PyObject_Repr(v);
        if (text == NULL) return NULL;
        if (PyUnicode_GET_LENGTH(text) > limit) {
            Py_DECREF(text);
            return NULL;
        }
        return Py_BuildValue("[Ni]", text, 0);
    }
    Py_ssize_t n = PyObject_Length(v);
    if (n < 0) return NULL;
    /* Bigger ones take the encoder's head-of-a-big-container path. */
    if (n > limit / 2 && t != &PyFrozenSet_Type) return NULL;
    enum { FAST, NESTED, WALK } path = WALK;
    KindScan top = {0, 0};
    NestedScan nested = {0, limit, {0, 0}};
    for_each_element(v, scan_kind, &top);
    int mask = top.mask, inner_mask = 0;
    const int fast_kinds = K_FAST | K_FLOAT, scalar_kinds = K_FAST | K_FLOAT | K_STRB | K_COMPLEX;
    if (n <= FAST_LEN) {
        if ((mask & ~fast_kinds) == 0 || ((mask & ~scalar_kinds) == 0 && top.text <= limit)) {
            path = FAST;
        } else if (!(mask & K_OTHER)) {
            /* values.py _nested_kinds: small containers of scalars inside */
            int stopped = for_each_element(v, scan_nested, &nested);
            if (!stopped && nested.inner.text <= 4 * limit) {
                path = NESTED;
                inner_mask = nested.inner.mask;
            }
        }
    }
    int literal = 1;
    if (path == WALK) {
        WalkScan scan = {WALK_LEAVES, 0, limit, 1, 0};
        if (walk_one(v, &scan) != 0) return NULL;
        literal = scan.literal;
    }
    /* Each element takes its text and ", " (a number: about 4 characters in all). */
    PyObject *text = container_repr(v, 2 + 4 * n + top.text + nested.inner.text + 4 * nested.inner_len);
    if (text == NULL) return NULL;
    *immutable = (t == &PyTuple_Type || t == &PyFrozenSet_Type) && (!(mask & K_CONT) || frozen_tree(v, 0));
    if (PyUnicode_GET_LENGTH(text) > limit) {
        PyObject *head = PyUnicode_Substring(text, 0, limit);
        Py_DECREF(text);
        if (head == NULL) return NULL;
        PyObject *cut = PyUnicode_Concat(head, S_ellipsis);
        Py_DECREF(head);
        if (cut == NULL) return NULL;
        return Py_BuildValue("[Ni]", cut, 1);
    }
    if (path != WALK) {
        /* the fast and nested paths look at the whole text */
        int all = mask | inner_mask;
        literal = t != &PyFrozenSet_Type && !(all & K_FROZEN);
        if (literal && (all & K_FLOAT)) {
            int inf = PyUnicode_Contains(text, S_inf);
            int nan = inf == 0 ? PyUnicode_Contains(text, S_nan) : 0;
            if (inf < 0 || nan < 0) {
                Py_DECREF(text);
                return NULL;
            }
            literal = !(inf || nan);
        }
    }
    if (literal) return text;
    return Py_BuildValue("[Ni]", text, 0);
}

/* rec.heads[name] = v's fingerprint (or no head when it has none). */
static int fp_store(FrameRecord *rec, PyObject *name, PyObject *v) {
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

/* A text delta (trace format 4) from text `old` to text `new`: [prefix, suffix, middle], meaning
 * old[:prefix] + middle + old[len(old) - suffix:], when both are plain texts (literal reprs) that share
 * enough of a prefix and suffix to be worth it; else NULL (no error). A container that changed in one
 * place (an append, one key's value) then costs the change, not its whole repr again. */
#define DELTA_MIN_LEN 48   /* shorter texts are stored whole */
#define DELTA_MIN_SHARED 32 /* characters a delta must save */
static PyObject *text_delta(PyObject *old, PyObject *new) {
    if (!PyUnicode_CheckExact(old) || !PyUnicode_CheckExact(new)) return NULL;
    Py_ssize_t n0 = PyUnicode_GET_LENGTH(old), n1 = PyUnicode_GET_LENGTH(new);
    int kind = PyUnicode_KIND(old);
    if (n0 < DELTA_MIN_LEN || n1 < DELTA_MIN_LEN || kind != PyUnicode_KIND(new)) return NULL;
    const void *a = PyUnicode_DATA(old), *b = PyUnicode_DATA(new);
    Py_ssize_t m = n0 < n1 ? n0 : n1, prefix = 0, suffix = 0;
    if (kind == PyUnicode_1BYTE_KIND) { /* the common case, as bytes: 8 at a time while they agree */
        const unsigned char *x = a, *y = b;
        while (prefix + 8 <= m && memcmp(x + prefix, y + prefix, 8) == 0) prefix += 8;
        while (prefix < m && x[prefix] == y[prefix]) prefix++;
        while (suffix + 8 <= m - prefix && memcmp(x + n0 - suffix - 8, y + n1 - suffix - 8, 8) == 0) suffix += 8;
        while (suffix < m - prefix && x[n0 - 1 - suffix] == y[n1 - 1 - suffix]) suffix++;
    } else {
        while (prefix < m && PyUnicode_READ(kind, a, prefix) == PyUnicode_READ(kind, b, prefix)) prefix++;
        while (suffix < m - prefix &&
               PyUnicode_READ(kind, a, n0 - 1 - suffix) == PyUnicode_READ(kind, b, n1 - 1 - suffix)) {
            suffix++;
        }
    }
    if (prefix + suffix < DELTA_MIN_SHARED) return NULL;
    PyObject *middle = PyUnicode_Substring(new, prefix, n1 - suffix);
    if (middle == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *delta = PyList_New(3);
    PyObject *p = PyLong_FromSsize_t(prefix), *q = PyLong_FromSsize_t(suffix);
    if (delta == NULL || p == NULL || q == NULL) {
        PyErr_Clear();
        Py_XDECREF(delta);
        Py_XDECREF(p);
        Py_XDECREF(q);
        Py_DECREF(middle);
        return NULL;
    }
    PyList_SET_ITEM(delta, 0, p);
    PyList_SET_ITEM(delta, 1, q);
    PyList_SET_ITEM(delta, 2, middle);
    return delta;
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
static void render_sweep(Core *self) {
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

static inline PyObject *info_item(FrameRecord *rec, int i) { return PyTuple_GET_ITEM(rec->info, i); }

static inline int has_info(FrameRecord *rec) {
    return rec->info != NULL && PyTuple_CheckExact(rec->info) && PyTuple_GET_SIZE(rec->info) == INFO_SIZE;
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
static int full_check_from(Core *self, FrameRecord *rec, FrameRecord *caller, PyObject **out);

static int full_check(Core *self, FrameRecord *rec, PyObject **out) { return full_check_from(self, rec, NULL, out); }

static int full_check_from(Core *self, FrameRecord *rec, FrameRecord *caller, PyObject **out) {
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

/* -- effect guards (tracer/plan.py) ---------------------------------------------------------------- */
#define MAX_TOUCHED 8

static inline int immutable_type(PyTypeObject *t) {
    return t == &PyUnicode_Type || t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type ||
           t == &PyTuple_Type || t == &PyBytes_Type || t == Py_TYPE(Py_None) || t == &PyComplex_Type ||
           t == &PyFrozenSet_Type || t == &PyRange_Type;
}

/* plan._effect: K_PURE, K_MUTATES or K_UNKNOWN. */
static int guard_effect(long kind, PyObject *obj, PyObject *attr_kinds) {
    PyTypeObject *t = Py_TYPE(obj);
    if (kind == G_SUBSCR) {
        return t == &PyList_Type || t == &PyTuple_Type || t == &PyUnicode_Type || t == &PyBytes_Type ||
                       t == &PyDict_Type || t == &PyRange_Type
                   ? K_PURE
                   : K_UNKNOWN;
    }
    if (kind == G_ITEM_METHOD) return t == &PyUnicode_Type || t == &PyBytes_Type ? K_PURE : K_UNKNOWN;
    if (kind != G_STORE && immutable_type(t)) return K_PURE;
    if (kind == G_METHOD) {
        int i = t == &PyList_Type ? 0 : t == &PyDict_Type ? 1 : t == &PySet_Type ? 2 : -1;
        if (i < 0 || !PyTuple_CheckExact(attr_kinds) || PyTuple_GET_SIZE(attr_kinds) != 3) return K_UNKNOWN;
        long k = PyLong_AsLong(PyTuple_GET_ITEM(attr_kinds, i));
        if (k == -1) PyErr_Clear();
        return k == K_PURE || k == K_MUTATES ? (int)k : K_UNKNOWN;
    }
    if (kind == G_STORE) return t == &PyList_Type || t == &PyDict_Type ? K_MUTATES : K_UNKNOWN;
    return t == &PyList_Type || t == &PyDict_Type || t == &PySet_Type ? K_MUTATES : K_UNKNOWN; /* G_INPLACE */
}

/* plan.touched_objects for a simple frame: 0 with touched[0..*n) the objects the line may have changed
 * (borrowed, only compared), 1 when the guards cannot tell, -1 on error. */
static int guard_touched(FrameRecord *rec, PyObject *guards, PyObject *objs, PyObject **touched, int *n) {
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
static int shows_touched(FrameRecord *rec, PyObject *name, PyObject *obj, PyObject **touched, int n) {
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

/* Changes in rec's frame since its last step (PythonRecorder._check). */
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

static int check(Core *self, FrameRecord *rec, PyObject **out) {
    *out = NULL;
    if (!has_info(rec) || info_item(rec, INFO_IS_MODULE) == Py_True || info_item(rec, INFO_SIMPLE) != Py_True) {
        return from_python(PyObject_CallMethodOneArg((PyObject *)self, S_check, (PyObject *)rec), out);
    }
    if (rec->last_pos != self->count - 1 || is_none(rec->objs)) return full_check(self, rec, out);
    PyObject *lines = info_item(rec, INFO_LINES);
    Py_ssize_t base = PyLong_AsSsize_t(info_item(rec, INFO_LINE_BASE));
    Py_ssize_t k = rec->last_line - base;
    PyObject *lp = (k >= 0 && k < PyTuple_GET_SIZE(lines)) ? PyTuple_GET_ITEM(lines, k) : Py_None;
    if (lp == Py_None) {
        lp = info_item(rec, INFO_DEFAULT);
        if (PyTuple_GET_ITEM(lp, 3) == Py_True) return full_check(self, rec, out);
    }
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
        int rc = guard_touched(rec, PyTuple_GET_ITEM(lp, 4), objs, touched, &n_touched);
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

/* Append one step (PythonRecorder._emit). Consumes changes (NULL or list) and value (NULL or object). */
static int emit(Core *self, int event, FrameRecord *rec, Py_ssize_t line, PyObject *changes, PyObject *value) {
    int rc = -1;
    if (rec->code_id == NULL) {
        PyObject *plan_id = has_info(rec) ? Py_NewRef(info_item(rec, INFO_CODE_ID))
                                          : PyObject_GetAttrString(rec->plan, "code_id");
        if (plan_id == NULL) goto out;
        rec->code_id = plan_id;
    }
    if (Py_IS_TYPE(self->steps, &StepBufferType)) {
        long long code = PyLong_AsLongLong(rec->code_id);
        rc = code == -1 && PyErr_Occurred()
                 ? -1
                 : steps_add((StepBuffer *)self->steps, event, rec->fid, line, changes, value, code, rec->depth);
    } else {
        PyObject *r = PyObject_CallMethod(self->steps, "add", "innOOOn", event, rec->fid, line,
                                          changes ? changes : Py_None, value ? value : Py_None, rec->code_id,
                                          rec->depth);
        Py_XDECREF(r);
        rc = r == NULL ? -1 : 0;
    }
out:
    Py_XDECREF(changes);
    Py_XDECREF(value);
    if (rc < 0) return -1;
    Py_ssize_t count = self->count;
    rec->last_pos = count;
    rec->last_line = line;
    self->count = count + 1;
    if (self->renders_oldest >= 0 && self->count - self->renders_oldest > RENDER_KEEP) render_sweep(self);
    if (count + 1 >= self->next_check) {
        PyObject *r = PyObject_CallMethodNoArgs((PyObject *)self, S_checkpoint);
        if (r == NULL) return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* Take the recorder's lock as this thread's (PythonRecorder: `with self._lock: self._owner = tid`).
 * Returns 0, or -1 when the lock is not ours to take from C (then the caller uses the Python path). */
static int enter(Core *self, unsigned long tid) {
    if (self->lock == NULL || !Py_IS_TYPE(self->lock, &LockType)) return -1;
    LockObject *lock = (LockObject *)Py_NewRef(self->lock);
    lock_take(lock);
    Py_DECREF(lock); /* the recorder keeps it alive; leave() finds it through self->lock */
    self->owner_tid = tid;
    self->has_owner = 1;
    return 0;
}

static void leave(Core *self) {
    self->has_owner = 0;
    lock_give((LockObject *)self->lock);
}

/* The current thread's id as an int object (new reference). */
static PyObject *tid_object(Core *self, unsigned long tid) {
    if (self->tid_obj == NULL || self->tid_cached != tid) {
        PyObject *obj = PyLong_FromUnsignedLong(tid);
        if (obj == NULL) return NULL;
        Py_XSETREF(self->tid_obj, obj);
        self->tid_cached = tid;
    }
    return Py_NewRef(self->tid_obj);
}

static inline int busy(Core *self, unsigned long tid) {
    return (self->has_owner && self->owner_tid == tid) || !self->active;
}

/* The thread state of tid_obj (from tid_object: the current thread), borrowed, or NULL; no error. */
static ThreadState *thread_lookup(Core *self, PyObject *tid_obj) {
    PyObject *threads = self->threads;
    if (self->ts_cached != NULL && self->ts_dict == threads && self->ts_tid == self->tid_cached &&
        tid_obj == self->tid_obj && dict_version(threads) == self->ts_version) {
        return (ThreadState *)self->ts_cached;
    }
    if (!PyDict_CheckExact(threads)) return NULL;
    PyObject *ts = PyDict_GetItemWithError(threads, tid_obj);
    if (ts == NULL || !Py_IS_TYPE(ts, &ThreadStateType)) {
        PyErr_Clear();
        return NULL;
    }
    if (tid_obj == self->tid_obj) {
        Py_XSETREF(self->ts_dict, Py_NewRef(threads));
        Py_XSETREF(self->ts_cached, Py_NewRef(ts));
        self->ts_tid = self->tid_cached;
        self->ts_version = dict_version(threads);
    }
    return (ThreadState *)ts;
}

/* self.codes.get(id(code)) (borrowed) or NULL, with no error unless it returns NULL with one set. */
static PyObject *code_entry(Core *self, PyObject *code) {
    PyObject *codes = self->codes;
    struct CodeSlot *slot = &self->code_cache[((uintptr_t)code >> 4) % CODE_CACHE];
    if (slot->code == code && slot->dict == codes && dict_version(codes) == slot->version) return slot->entry;
    if (!PyDict_CheckExact(codes)) return NULL;
    PyObject *key = PyLong_FromVoidPtr(code);
    if (key == NULL) return NULL;
    PyObject *entry = PyDict_GetItemWithError(codes, key);
    Py_DECREF(key);
    if (entry == NULL) return NULL;
    Py_XSETREF(slot->code, Py_NewRef(code));
    Py_XSETREF(slot->entry, Py_NewRef(entry));
    Py_XSETREF(slot->dict, Py_NewRef(codes));
    slot->version = dict_version(codes);
    return entry;
}

/* The thread state (new reference), made by the Python method `method` when it is not there yet. */
static ThreadState *thread_get(Core *self, PyObject *tid_obj, PyObject *method, int need_stack) {
    ThreadState *ts = thread_lookup(self, tid_obj);
    if (ts != NULL && (!need_stack || PyList_GET_SIZE(ts->stack) > 0)) return (ThreadState *)Py_NewRef(ts);
    PyObject *r = PyObject_CallMethodOneArg((PyObject *)self, method, tid_obj);
    if (r == NULL) return NULL;
    if (!Py_IS_TYPE(r, &ThreadStateType)) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "thread state of the wrong type");
        return NULL;
    }
    return (ThreadState *)r;
}

/* The record of the frame that raised the event (PythonRecorder._top), new reference, or Py_None. */
static PyObject *top(Core *self, ThreadState *ts, PyObject *code) {
    Py_ssize_t n = PyList_GET_SIZE(ts->stack);
    if (n > 0) {
        PyObject *rec = PyList_GET_ITEM(ts->stack, n - 1);
        if (Py_IS_TYPE(rec, &FrameRecordType) && ((FrameRecord *)rec)->code == code) return Py_NewRef(rec);
    }
    PyObject *one = PyLong_FromLong(1); /* from here, sys._getframe(1) is the program's frame */
    PyObject *r = PyObject_CallMethodObjArgs((PyObject *)self, S_top, ts, code, one, NULL);
    Py_DECREF(one);
    if (r != NULL && r != Py_None && !Py_IS_TYPE(r, &FrameRecordType)) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "frame record of the wrong type");
        return NULL;
    }
    return r;
}

static void set_jump(ThreadState *ts, PyObject *rec, Py_ssize_t line) {
    Py_SETREF(ts->jump_rec, Py_NewRef(rec));
    ts->jump_line = line;
}

static void clear_jump(ThreadState *ts) {
    if (ts->jump_rec != Py_None) Py_SETREF(ts->jump_rec, Py_NewRef(Py_None));
}

/* The line of the instruction at `offset` from a code's offset table (info: its CodePlan.fast tuple), or -1
 * when the table has none for it (or info is not such a tuple). */
static Py_ssize_t info_line(PyObject *info, Py_ssize_t offset) {
    if (info == NULL || !PyTuple_CheckExact(info) || PyTuple_GET_SIZE(info) != INFO_SIZE) return -1;
    PyObject *offsets = PyTuple_GET_ITEM(info, INFO_OFFSETS);
    Py_ssize_t k = offset / 2;
    if (k < 0 || k >= PyTuple_GET_SIZE(offsets)) return -1;
    PyObject *line = PyTuple_GET_ITEM(offsets, k);
    return PyLong_CheckExact(line) ? PyLong_AsSsize_t(line) : -1;
}

/* The line of the event at `offset` (an int): from the offset table, which is what
 * PyFrame_GetLineNumber(frame) would compute from the frame; that is the fallback. */
static int offset_line(PyObject *info, PyObject *offset, PyFrameObject *frame) {
    Py_ssize_t line = PyLong_CheckExact(offset) ? info_line(info, PyLong_AsSsize_t(offset)) : -1;
    if (line >= 0) return (int)line;
    PyErr_Clear();
    return PyFrame_GetLineNumber(frame);
}

/* -- callbacks ----------------------------------------------------------------------------------- */

static PyObject *Core_on_line(Core *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_c_on_line(code, line)");
        return NULL;
    }
    PyObject *code = args[0];
    Py_ssize_t line = PyLong_AsSsize_t(args[1]);
    if (line == -1 && PyErr_Occurred()) return NULL;
    unsigned long tid = PyThread_get_thread_ident();
    if (busy(self, tid)) Py_RETURN_NONE;
    PyObject *tid_obj = tid_object(self, tid);
    if (tid_obj == NULL) return NULL;
    ThreadState *ts = thread_lookup(self, tid_obj);
    if (ts != NULL && ts->jump_rec != Py_None && ts->jump_line == line &&
        Py_IS_TYPE(ts->jump_rec, &FrameRecordType) && ((FrameRecord *)ts->jump_rec)->code == code) {
        /* The backward jump just reported this line (LINE fires again for the loop header). */
        Py_ssize_t last = ((FrameRecord *)ts->jump_rec)->last_pos;
        clear_jump(ts);
        if (last == self->count - 1) {
            Py_DECREF(tid_obj);
            Py_RETURN_NONE;
        }
    }
    if (enter(self, tid) < 0) { /* not our lock (never expected): the Python callback does it all */
        Py_DECREF(tid_obj);
        return PyObject_CallMethodObjArgs((PyObject *)self, S_on_line, args[0], args[1], NULL);
    }
    PyObject *result = Py_None;
    PyObject *rec = NULL;
    ts = NULL;
    if (!self->active) goto done;
    ts = thread_get(self, tid_obj, S_thread, 0);
    if (ts == NULL) goto error;
    rec = top(self, ts, code);
    if (rec == NULL) goto error;
    if (rec != Py_None) {
        FrameRecord *r = (FrameRecord *)rec;
        if (ts->jump_rec != Py_None) {
            int same = ts->jump_rec == rec && ts->jump_line == line;
            clear_jump(ts);
            if (same && r->last_pos == self->count - 1) goto done; /* the jump already reported it */
        }
        PyObject *changes;
        if (check(self, r, &changes) < 0) goto error;
        if (emit(self, EV_LINE, r, line, changes, NULL) < 0) goto error;
    }
    goto done;
error:
    if (core_fail(self) < 0) result = NULL; /* not an Exception (KeyboardInterrupt): it reaches the program */
done:
    leave(self);
    Py_XDECREF(rec);
    Py_XDECREF(ts);
    Py_DECREF(tid_obj);
    return Py_XNewRef(result);
}

static PyObject *Core_on_jump(Core *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_c_on_jump(code, source, destination)");
        return NULL;
    }
    PyObject *code = args[0];
    Py_ssize_t source = PyLong_AsSsize_t(args[1]);
    Py_ssize_t destination = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) return NULL;
    if (destination > source) return Py_NewRef(DISABLE);
    /* A backward jump to another line: the LINE event that follows it reports that line (CPython fires
     * LINE whenever the line changes), so this jump never needs to be seen again. Only a jump within one
     * line (a one-line loop or comprehension) is reported here. */
    PyObject *entry = code_entry(self, code);
    if (entry == NULL && PyErr_Occurred()) return NULL;
    if (entry != NULL && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) > 2) {
        PyObject *info = PyTuple_GET_ITEM(entry, 2);
        Py_ssize_t from = info_line(info, source), to = info_line(info, destination);
        if (from >= 0 && to >= 0 && from != to) return Py_NewRef(DISABLE);
    }
    unsigned long tid = PyThread_get_thread_ident();
    if (busy(self, tid)) Py_RETURN_NONE;
    PyObject *tid_obj = tid_object(self, tid);
    if (tid_obj == NULL) return NULL;
    if (enter(self, tid) < 0) {
        Py_DECREF(tid_obj);
        return PyObject_CallMethodObjArgs((PyObject *)self, S_on_jump, args[0], args[1], args[2], NULL);
    }
    PyObject *result = Py_None;
    PyObject *rec = NULL;
    ThreadState *ts = NULL;
    if (!self->active) goto done;
    ts = thread_get(self, tid_obj, S_thread, 0);
    if (ts == NULL) goto error;
    rec = top(self, ts, code);
    if (rec == NULL) goto error;
    if (rec != Py_None) {
        FrameRecord *r = (FrameRecord *)rec;
        Py_ssize_t line = info_line(r->info, destination);
        if (line >= 0) {
            PyObject *changes;
            if (check(self, r, &changes) < 0) goto error;
            if (emit(self, EV_LINE, r, line, changes, NULL) < 0) goto error;
            set_jump(ts, rec, line);
        }
    }
    goto done;
error:
    if (core_fail(self) < 0) result = NULL; /* not an Exception (KeyboardInterrupt): it reaches the program */
done:
    leave(self);
    Py_XDECREF(rec);
    Py_XDECREF(ts);
    Py_DECREF(tid_obj);
    return Py_XNewRef(result);
}

static PyObject *Core_on_start(Core *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_c_on_start(code, offset)");
        return NULL;
    }
    PyObject *code = args[0];
    PyObject *entry = code_entry(self, code);
    if (entry == NULL) {
        if (PyErr_Occurred()) return NULL;
        /* First start of this code object: the Python method decides (filters, plan). */
        return PyObject_CallMethodObjArgs((PyObject *)self, S_on_start, args[0], args[1], NULL);
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) < 2) {
        return PyObject_CallMethodObjArgs((PyObject *)self, S_on_start, args[0], args[1], NULL);
    }
    PyObject *plan = PyTuple_GET_ITEM(entry, 1);
    if (plan == Py_None) return Py_NewRef(DISABLE);
    unsigned long tid = PyThread_get_thread_ident();
    if (busy(self, tid)) Py_RETURN_NONE;
    PyFrameObject *frame = PyEval_GetFrame(); /* borrowed: the frame that starts */
    if (frame == NULL) Py_RETURN_NONE;
    Py_INCREF(frame);
    PyObject *tid_obj = tid_object(self, tid);
    if (tid_obj == NULL) {
        Py_DECREF(frame);
        return NULL;
    }
    if (enter(self, tid) < 0) {
        Py_DECREF(frame);
        Py_DECREF(tid_obj);
        return PyObject_CallMethodObjArgs((PyObject *)self, S_on_start, args[0], args[1], NULL);
    }
    PyObject *result = Py_None;
    ThreadState *ts = NULL;
    FrameRecord *rec = NULL;
    Py_INCREF(entry); /* plan is borrowed from it, and Python code below may replace the codes entry */
    PyObject *info = PyTuple_GET_SIZE(entry) > 2 ? Py_NewRef(PyTuple_GET_ITEM(entry, 2)) : PyObject_GetAttr(plan, S_fast);
    if (info == NULL) goto error;
    if (!self->active) goto done;
    ts = thread_get(self, tid_obj, S_thread_entering, 1);
    if (ts == NULL) goto error;
    {
        Py_ssize_t n = PyList_GET_SIZE(ts->stack);
        Py_ssize_t parent = -1;
        if (n > 0) {
            PyObject *p = PyList_GET_ITEM(ts->stack, n - 1);
            if (Py_IS_TYPE(p, &FrameRecordType)) {
                parent = ((FrameRecord *)p)->fid;
            } else {
                PyObject *fid = PyObject_GetAttrString(p, "fid");
                if (fid == NULL) goto error;
                parent = PyLong_AsSsize_t(fid);
                Py_DECREF(fid);
                if (parent == -1 && PyErr_Occurred()) goto error;
            }
        }
        PyObject *code_id;
        if (PyTuple_CheckExact(info) && PyTuple_GET_SIZE(info) == INFO_SIZE) {
            code_id = Py_NewRef(PyTuple_GET_ITEM(info, INFO_CODE_ID));
        } else {
            code_id = PyObject_GetAttrString(plan, "code_id");
            if (code_id == NULL) goto error;
        }
        rec = record_alloc(self->next_fid, code, plan, info, (PyObject *)frame, parent, ts->number, n);
        if (rec == NULL) {
            Py_DECREF(code_id);
            goto error;
        }
        self->next_fid++;
        if (PyList_Append(ts->stack, (PyObject *)rec) < 0) {
            Py_DECREF(code_id);
            goto error;
        }
        long long code_number = PyLong_AsLongLong(code_id);
        Py_DECREF(code_id);
        if (code_number == -1 && PyErr_Occurred()) goto error;
        int rc;
        if (Py_IS_TYPE(self->steps, &StepBufferType)) {
            rc = steps_add_frame((StepBuffer *)self->steps, rec->fid, code_number, parent, ts->number, n);
        } else {
            PyObject *r = PyObject_CallMethod(self->steps, "add_frame", "nLnnn", rec->fid, code_number, parent,
                                              ts->number, n);
            rc = r == NULL ? -1 : 0;
            Py_XDECREF(r);
        }
        if (rc < 0) goto error;
        clear_jump(ts);
        PyObject *changes;
        PyObject *caller = n > 0 ? PyList_GET_ITEM(ts->stack, n - 1) : NULL;
        if (caller != NULL && !Py_IS_TYPE(caller, &FrameRecordType)) caller = NULL;
        if (full_check_from(self, rec, (FrameRecord *)caller, &changes) < 0) goto error;
        if (emit(self, EV_CALL, rec, offset_line(info, args[1], frame), changes, NULL) < 0) goto error;
    }
    goto done;
error:
    if (core_fail(self) < 0) result = NULL; /* not an Exception (KeyboardInterrupt): it reaches the program */
done:
    leave(self);
    Py_XDECREF(info);
    Py_XDECREF(rec);
    Py_XDECREF(ts);
    Py_DECREF(entry);
    Py_DECREF(frame);
    Py_DECREF(tid_obj);
    return Py_XNewRef(result);
}

/* A return value's encoding (new reference): scalars and builtin containers here, anything else by
 * self.encode(value). */
static PyObject *encode_value(Core *self, PyObject *value) {
    PyObject *text = scalar_encoding(self->limit, value);
    if (text != NULL || PyErr_Occurred()) return text;
    int immutable;
    text = encode_container(self->limit, value, &immutable); /* returned tuples, lists, dicts ... */
    if (text != NULL) return text;
    PyErr_Clear(); /* the Python encoder deals with whatever went wrong (it never raises) */
    return PyObject_CallMethodOneArg((PyObject *)self, S_encode, value);
}

static PyObject *Core_on_return(Core *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_c_on_return(code, offset, value)");
        return NULL;
    }
    PyObject *code = args[0];
    PyObject *value = args[2];
    unsigned long tid = PyThread_get_thread_ident();
    if (busy(self, tid)) Py_RETURN_NONE;
    PyObject *tid_obj = tid_object(self, tid);
    if (tid_obj == NULL) return NULL;
    if (enter(self, tid) < 0) {
        Py_DECREF(tid_obj);
        return PyObject_CallMethodObjArgs((PyObject *)self, S_on_return, args[0], args[1], args[2], NULL);
    }
    PyObject *result = Py_None;
    PyObject *rec = NULL;
    ThreadState *ts = NULL;
    PyObject *frame = NULL;
    if (!self->active) goto done;
    ts = thread_get(self, tid_obj, S_thread, 0);
    if (ts == NULL) goto error;
    rec = top(self, ts, code);
    if (rec == NULL) goto error;
    if (rec != Py_None) {
        FrameRecord *r = (FrameRecord *)rec;
        frame = Py_NewRef(r->frame ? r->frame : Py_None);
        Py_ssize_t line = r->last_line;
        if (frame != Py_None && PyFrame_Check(frame)) {
            int l = offset_line(r->info, args[1], (PyFrameObject *)frame);
            if (l >= 0) line = l;
        }
        PyObject *changes;
        if (check(self, r, &changes) < 0) goto error;
        PyObject *encoded = encode_value(self, value);
        if (encoded == NULL) {
            Py_XDECREF(changes);
            goto error;
        }
        clear_jump(ts);
        if (emit(self, EV_RETURN, r, line, changes, encoded) < 0) goto error;
        Py_ssize_t n = PyList_GET_SIZE(ts->stack);
        if (n > 0 && PyList_GET_ITEM(ts->stack, n - 1) == rec) { /* pop it (no slice machinery) */
            PyList_SET_ITEM(ts->stack, n - 1, NULL);
            Py_SET_SIZE(ts->stack, n - 1);
            Py_DECREF(rec); /* the list's reference; `rec` holds its own until done */
        }
        if (PyDict_GET_SIZE(self->suspended) > 0) {
            PyObject *key = PyLong_FromVoidPtr(frame);
            if (key == NULL) goto error;
            int rc = dict_discard(self->suspended, key);
            Py_DECREF(key);
            if (rc < 0) goto error;
        }
        Py_XSETREF(r->frame, Py_NewRef(Py_None));
    }
    goto done;
error:
    if (core_fail(self) < 0) result = NULL; /* not an Exception (KeyboardInterrupt): it reaches the program */
done:
    leave(self);
    Py_XDECREF(frame);
    Py_XDECREF(rec);
    Py_XDECREF(ts);
    Py_DECREF(tid_obj);
    return Py_XNewRef(result);
}

/* _forget_renders(): release the recent renderings now (recording stopped: no step will sweep them). */
static PyObject *Core_forget_renders(Core *self, PyObject *unused) {
    for (int i = 0; i < RENDER_CACHE; i++) {
        Py_CLEAR(self->renders[i].obj);
        Py_CLEAR(self->renders[i].head);
        Py_CLEAR(self->renders[i].enc);
    }
    self->renders_oldest = -1;
    Py_RETURN_NONE;
}

static PyMethodDef Core_methods[] = {
    {"_forget_renders", (PyCFunction)Core_forget_renders, METH_NOARGS, "Release the recent renderings."},
    {"_c_on_line", (PyCFunction)(void (*)(void))Core_on_line, METH_FASTCALL, "LINE callback."},
    {"_c_on_jump", (PyCFunction)(void (*)(void))Core_on_jump, METH_FASTCALL, "JUMP callback."},
    {"_c_on_start", (PyCFunction)(void (*)(void))Core_on_start, METH_FASTCALL, "PY_START callback."},
    {"_c_on_return", (PyCFunction)(void (*)(void))Core_on_return, METH_FASTCALL, "PY_RETURN callback."},
    {NULL},
};

#define CORE_OFF(x) offsetof(Core, x)
static PyMemberDef Core_members[] = {
    {"_steps", Py_T_OBJECT_EX, CORE_OFF(steps), 0, NULL},
    {"_threads", Py_T_OBJECT_EX, CORE_OFF(threads), 0, NULL},
    {"_codes", Py_T_OBJECT_EX, CORE_OFF(codes), 0, NULL},
    {"_suspended", Py_T_OBJECT_EX, CORE_OFF(suspended), 0, NULL},
    {"_lock", Py_T_OBJECT_EX, CORE_OFF(lock), 0, NULL},
    {"_count", Py_T_PYSSIZET, CORE_OFF(count), 0, NULL},
    {"_next_check", Py_T_PYSSIZET, CORE_OFF(next_check), 0, NULL},
    {"_next_fid", Py_T_PYSSIZET, CORE_OFF(next_fid), 0, NULL},
    {"_value_limit", Py_T_PYSSIZET, CORE_OFF(limit), 0, NULL},
    {"_active", Py_T_BOOL, CORE_OFF(active), 0, NULL},
    {NULL},
};

static PyGetSetDef Core_getset[] = {
    {"_owner", (getter)Core_get_owner, (setter)Core_set_owner, NULL, NULL},
    {NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._core.Core",
    .tp_basicsize = sizeof(Core),
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The recorder's hot state and its C callbacks (base class of monitor.CompiledRecorder).",
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_methods = Core_methods,
    .tp_members = Core_members,
    .tp_getset = Core_getset,
    .tp_new = Core_new,
};

/* ------------------------------------------------------------------------------------------------ */

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

/* -- msgpack --------------------------------------------------------------------------------------
 * packb(obj): the msgpack bytes of a chunk body, exactly as msgpack.packb(obj, use_bin_type=True) gives
 * them, for the types a chunk holds (None, bool, int within 64 bits, float, str, bytes, list, tuple,
 * dict). Anything else, or a str that is not valid UTF-8: None (format.py then uses msgpack itself).
 * Packing a chunk was a tenth of the recording time of call-heavy code.
 */
typedef struct {
    char *data;
    Py_ssize_t size, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->size + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->size + extra) cap *= 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

#define HOT inline __attribute__((always_inline))
static HOT int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->size, src, n);
    b->size += n;
    return 0;
}

static HOT int buf_head(Buf *b, unsigned char code, uint64_t value, int width) {
    unsigned char out[9];
    out[0] = code;
    for (int i = 0; i < width; i++) out[1 + i] = (unsigned char)(value >> (8 * (width - 1 - i)));
    return buf_put(b, out, 1 + width);
}

/* The header of a str/bin/array/map of n items: fix (if any), then 8/16/32-bit forms. */
static HOT int buf_sized(Buf *b, Py_ssize_t n, int fix_base, Py_ssize_t fix_max, int c8, int c16, int c32) {
    if (fix_base >= 0 && n <= fix_max) {
        unsigned char c = (unsigned char)(fix_base | n);
        return buf_put(b, &c, 1);
    }
    if (c8 >= 0 && n <= 0xff) return buf_head(b, (unsigned char)c8, (uint64_t)n, 1);
    if (n <= 0xffff) return buf_head(b, (unsigned char)c16, (uint64_t)n, 2);
    if ((uint64_t)n <= 0xffffffffULL) return buf_head(b, (unsigned char)c32, (uint64_t)n, 4);
    return 1;
}

/* Write code then the low `width` bytes of value, big endian; room for 9 bytes must be reserved. */
static HOT void put_head(unsigned char *out, unsigned char code, uint64_t value, int width) {
    out[0] = code;
    for (int i = 0; i < width; i++) out[1 + i] = (unsigned char)(value >> (8 * (width - 1 - i)));
}

/* An int in msgpack's smallest form (as msgpack.packb writes it). */
static HOT int pack_int(Buf *b, long long v) {
    if (b->size + 9 > b->cap && buf_reserve(b, 9) < 0) return -1;
    unsigned char *out = (unsigned char *)b->data + b->size;
    int n;
    if (v >= 0) {
        if (v <= 0x7f) {
            out[0] = (unsigned char)v;
            n = 1;
        } else if (v <= 0xff) {
            put_head(out, 0xcc, (uint64_t)v, 1), n = 2;
        } else if (v <= 0xffff) {
            put_head(out, 0xcd, (uint64_t)v, 2), n = 3;
        } else if (v <= 0xffffffffLL) {
            put_head(out, 0xce, (uint64_t)v, 4), n = 5;
        } else {
            put_head(out, 0xcf, (uint64_t)v, 8), n = 9;
        }
    } else if (v >= -0x20) {
        out[0] = (unsigned char)(int8_t)v; /* negative fixint: 0xe0 | (v & 0x1f) */
        n = 1;
    } else if (v >= -0x80) {
        put_head(out, 0xd0, (uint64_t)(uint8_t)(int8_t)v, 1), n = 2;
    } else if (v >= -0x8000) {
        put_head(out, 0xd1, (uint64_t)(uint16_t)(int16_t)v, 2), n = 3;
    } else if (v >= -0x80000000LL) {
        put_head(out, 0xd2, (uint64_t)(uint32_t)(int32_t)v, 4), n = 5;
    } else {
        put_head(out, 0xd3, (uint64_t)v, 8), n = 9;
    }
    b->size += n;
    return 0;
}

static HOT int pack_array_head(Buf *b, Py_ssize_t n) { return buf_sized(b, n, 0x90, 15, -1, 0xdc, 0xdd); }

/* 0: packed; 1: a value it does not pack (no error); -1: error. */
static int pack(Buf *b, PyObject *o, int depth) {
    if (depth > 64) return 1;
    PyTypeObject *t = Py_TYPE(o);
    if (o == Py_None) return buf_put(b, "\xc0", 1);
    if (o == Py_True) return buf_put(b, "\xc3", 1);
    if (o == Py_False) return buf_put(b, "\xc2", 1);
    if (t == &PyLong_Type) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (overflow > 0) {
            unsigned long long u = PyLong_AsUnsignedLongLong(o);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return 1;
            }
            return buf_head(b, 0xcf, u, 8);
        }
        if (overflow < 0) return 1;
        return pack_int(b, v);
    }
    if (t == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(o);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return buf_head(b, 0xcb, bits, 8);
    }
    if (t == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *utf8;
        if (PyUnicode_IS_COMPACT_ASCII(o)) { /* its bytes are its UTF-8 */
            utf8 = (const char *)PyUnicode_1BYTE_DATA(o);
            n = PyUnicode_GET_LENGTH(o);
        } else {
            utf8 = PyUnicode_AsUTF8AndSize(o, &n);
        }
        if (utf8 == NULL) {
            PyErr_Clear();
            return 1;
        }
        int rc = buf_sized(b, n, 0xa0, 31, 0xd9, 0xda, 0xdb);
        return rc != 0 ? rc : buf_put(b, utf8, n);
    }
    if (t == &PyBytes_Type || t == &PyByteArray_Type) {
        Py_ssize_t n = t == &PyBytes_Type ? PyBytes_GET_SIZE(o) : PyByteArray_GET_SIZE(o);
        const char *data = t == &PyBytes_Type ? PyBytes_AS_STRING(o) : PyByteArray_AS_STRING(o);
        int rc = buf_sized(b, n, -1, 0, 0xc4, 0xc5, 0xc6);
        return rc != 0 ? rc : buf_put(b, data, n);
    }
    if (t == &PyList_Type || t == &PyTuple_Type) {
        Py_ssize_t n = Py_SIZE(o);
        int rc = buf_sized(b, n, 0x90, 15, -1, 0xdc, 0xdd);
        PyObject **items = t == &PyList_Type ? ((PyListObject *)o)->ob_item : ((PyTupleObject *)o)->ob_item;
        for (Py_ssize_t i = 0; i < n && rc == 0; i++) rc = pack(b, items[i], depth + 1);
        return rc;
    }
    if (t == &PyDict_Type) {
        int rc = buf_sized(b, PyDict_GET_SIZE(o), 0x80, 15, -1, 0xde, 0xdf);
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (rc == 0 && PyDict_Next(o, &pos, &k, &v)) {
            rc = pack(b, k, depth + 1);
            if (rc == 0) rc = pack(b, v, depth + 1);
        }
        return rc;
    }
    return 1;
}

/* A run of records [offset, item, ...] (sizes NULL: one item each), as a msgpack array. */
static int pack_records(Buf *b, int32_t *offsets, int32_t *sizes, Py_ssize_t n, PyObject *items) {
    int rc = pack_array_head(b, n);
    Py_ssize_t at = 0;
    for (Py_ssize_t k = 0; k < n && rc == 0; k++) {
        Py_ssize_t size = sizes ? sizes[k] : 1;
        rc = pack_array_head(b, size + 1);
        if (rc == 0) rc = pack_int(b, offsets[k]);
        for (Py_ssize_t j = 0; j < size && rc == 0; j++) rc = pack(b, PyList_GET_ITEM(items, at + j), 1);
        at += size;
    }
    return rc;
}

/* StepBuffer.pack_columns(): the msgpack of [fids], [lines], [changes], [values], {frames} (five objects,
 * no array around them: ChunkData.pack_body puts them in the chunk body's array), the bytes msgpack.packb
 * would give for each of the lists and the dict the Python StepBuffer keeps. */
static PyObject *StepBuffer_pack_columns(StepBuffer *self, PyObject *unused) {
    Buf b = {NULL, 0, 0};
    /* Room for the two int columns at their widest, and a guess at the rest: few regrowths. */
    int rc = buf_reserve(&b, 20 * self->count + 64);
    if (rc == 0) rc = pack_array_head(&b, self->count);
    for (Py_ssize_t i = 0; i < self->count && rc == 0; i++) rc = pack_int(&b, self->fids[i]);
    if (rc == 0) rc = pack_array_head(&b, self->count);
    for (Py_ssize_t i = 0; i < self->count && rc == 0; i++) rc = pack_int(&b, self->lines[i]);
    if (rc == 0) rc = pack_records(&b, self->change_offsets, self->change_sizes, self->nchanges, self->change_items);
    if (rc == 0) rc = pack_records(&b, self->value_offsets, NULL, self->nvalues, self->value_items);
    if (rc == 0) rc = buf_sized(&b, self->nframes, 0x80, 15, -1, 0xde, 0xdf); /* a map, like a dict's */
    for (Py_ssize_t k = 0; k < self->nframes && rc == 0; k++) {
        int64_t *e = self->frames + 5 * k;
        rc = pack_int(&b, e[0]);
        if (rc == 0) rc = pack_array_head(&b, 4);
        for (int j = 1; j <= 4 && rc == 0; j++) rc = pack_int(&b, e[j]);
    }
    PyObject *result = NULL;
    if (rc == 0) {
        result = PyBytes_FromStringAndSize(b.data, b.size);
    } else if (rc == 1) {
        PyErr_SetString(PyExc_TypeError, "a change or value that msgpack cannot pack");
    }
    PyMem_Free(b.data);
    return result;
}

static PyObject *packb(PyObject *module, PyObject *obj) {
    Buf b = {NULL, 0, 0};
    int rc = pack(&b, obj, 0);
    PyObject *result = NULL;
    if (rc == 0) {
        result = PyBytes_FromStringAndSize(b.data, b.size);
    } else if (rc == 1) {
        result = Py_NewRef(Py_None);
    }
    PyMem_Free(b.data);
    return result;
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

static PyMethodDef module_methods[] = {
    {"repr", repr_of, METH_O, "repr(value) as the encoder writes it (non-recursive builtin values only)."},
    {"packb", packb, METH_O, "msgpack.packb(obj, use_bin_type=True) for a chunk's types, else None."},
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL, "The C encoding of a value, or None."},
    {"fingerprint", fingerprint, METH_O, "The fingerprint kept for a value, or None."},
    {"fingerprint_matches", (PyCFunction)(void (*)(void))fingerprint_matches, METH_FASTCALL,
     "True when value still has the fingerprint."},
    {"simple_locals", simple_locals, METH_O, "True when code has only plain fast locals."},
    {NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "tracer._core", "The recorder's hot path in C (see tracer/monitor.py).", -1,
    module_methods,
};

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
    if (PyType_Ready(&LockType) < 0 || PyType_Ready(&FrameRecordType) < 0 ||
        PyType_Ready(&ThreadStateType) < 0 || PyType_Ready(&StepBufferType) < 0 ||
        PyType_Ready(&CoreType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Lock", (PyObject *)&LockType) < 0 ||
        PyModule_AddObjectRef(m, "FrameRecord", (PyObject *)&FrameRecordType) < 0 ||
        PyModule_AddObjectRef(m, "ThreadState", (PyObject *)&ThreadStateType) < 0 ||
        PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0 ||
        PyModule_AddObjectRef(m, "StepBuffer", (PyObject *)&StepBufferType) < 0 ||
        PyModule_AddIntConstant(m, "EV_CALL", EV_CALL) < 0 || PyModule_AddIntConstant(m, "EV_LINE", EV_LINE) < 0 ||
        PyModule_AddIntConstant(m, "EV_RETURN", EV_RETURN) < 0 ||
        PyModule_AddStringConstant(m, "SOURCE_HASH", RETROGRADE_SOURCE_HASH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
