/* msgpack: the bytes of a chunk body, as msgpack.packb gives them. */
#include "core.h"

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
PyObject *StepBuffer_pack_columns(StepBuffer *self, PyObject *unused) {
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

PyObject *packb(PyObject *module, PyObject *obj) {
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
