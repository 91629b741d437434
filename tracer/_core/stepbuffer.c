/* StepBuffer: one chunk's steps, stored as the chunk's columns. */
#include "core.h"

/* ------------------------------------------------------------------------------------------------ */
/* StepBuffer: one chunk's steps as the chunk's columns (C twin of monitor.StepBuffer)                 */

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
int steps_add(StepBuffer *self, int event, int64_t fid, Py_ssize_t line, PyObject *changes,
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
int steps_add_frame(StepBuffer *self, int64_t fid, int64_t code, int64_t parent, int64_t thread,
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

PyTypeObject StepBufferType = {
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
