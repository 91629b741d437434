/* Encodings of values: scalars, fingerprints, container reprs, text deltas (tracer/values.py's twin). */
#include "core.h"

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

/* After a failed repr here (an int longer than sys.get_int_max_str_digits(), a raising __repr__ of an
 * object with the default repr's type...): forget an ordinary exception, so that the caller hands the
 * value to the Python encoder, which shows it without raising. Returns NULL. */
static PyObject *leave_to_python_encoder(void) {
    if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_Exception)) PyErr_Clear();
    return NULL;
}

/* The encoding of a scalar (values.ValueEncoder.encode): an int64, bool or finite float is stored as
 * itself; None and a short str as their repr. NULL with no error set when the value needs the full
 * encoder; NULL with an error set on failure. */
PyObject *scalar_encoding(Py_ssize_t limit, PyObject *obj) {
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
    if (text == NULL) return leave_to_python_encoder();
    if (PyUnicode_GET_LENGTH(text) > limit) {
        Py_DECREF(text);
        return NULL;
    }
    return text;
}

/* values.same_encoding: the same text (type-exact: 1 is not True, 0.0 is not -0.0). 1, 0, or -1. */
int same_encoding(PyObject *a, PyObject *b) {
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
PyObject *changes_add(PyObject *changes, PyObject *name, PyObject *enc) {
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

/* True when value still holds exactly the objects of head = (elements, length) (ValueEncoder.head_unchanged). */
int head_unchanged(PyObject *value, PyObject *head) {
    if (!PyTuple_CheckExact(head) || PyTuple_GET_SIZE(head) != 2) return -2;
    PyObject *elements = PyTuple_GET_ITEM(head, 0);
    Py_ssize_t length = PyLong_AsSsize_t(PyTuple_GET_ITEM(head, 1));
    if (length == -1 && PyErr_Occurred()) return -1;
    if (!PyList_CheckExact(elements)) return -2;
    if (length == HEAD_TRACKED || length == HEAD_TRACKED_FLAT) return 0; /* the object tracker compares it */
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
    if (n > *budget) return 0; /* its elements alone exceed what is left: no fingerprint, found at once */
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
PyObject *fp_list(PyObject *v, int *flat) {
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

int fp_match(PyObject *v, PyObject *fp, Py_ssize_t *pos) {
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
int fp_remember(FrameRecord *rec, PyObject *name, PyObject *obj) {
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

/* -- float reprs -----------------------------------------------------------------------------------
 * repr(float) (the shortest round-tripping digits) costs ~150-300 ns: most of the time of a recorder that
 * re-renders a container of floats where one element changed. A small direct-mapped cache keyed by the
 * double's bits gives the text of a float seen before (an unchanged coordinate, a constant) in a memcpy;
 * the text is exactly repr's, since a float's repr depends on its bits alone. */
#define FLOAT_CACHE_BITS 12
typedef struct {
    uint64_t bits;
    uint8_t len; /* 0: empty */
    char text[31];
} FloatText;
static FloatText float_cache[1 << FLOAT_CACHE_BITS];
int nonfinite_seen; /* set when a float repr written here was inf, -inf or nan (no literal form) */

/* repr(x) into *out (not NUL-terminated): its length, or -1 on error (set). */
static Py_ssize_t float_text(double x, const char **out) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    FloatText *slot = &float_cache[(bits * 0x9E3779B97F4A7C15ull) >> (64 - FLOAT_CACHE_BITS)];
    if (slot->len && slot->bits == bits) {
        *out = slot->text;
        return slot->len;
    }
    if (!isfinite(x)) nonfinite_seen = 1;
    char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) return -1;
    size_t n = strlen(text);
    if (n < sizeof slot->text && isfinite(x)) {
        memcpy(slot->text, text, n);
        slot->len = (uint8_t)n;
        slot->bits = bits;
        PyMem_Free(text);
        *out = slot->text;
        return (Py_ssize_t)n;
    }
    /* not cached: hand the text over through the slot-free path */
    static char spill[64];
    if (n >= sizeof spill) n = sizeof spill - 1;
    memcpy(spill, text, n);
    PyMem_Free(text);
    *out = spill;
    return (Py_ssize_t)n;
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
    const char *text;
    Py_ssize_t n = float_text(PyFloat_AS_DOUBLE(v), &text);
    return n < 0 ? -1 : _PyUnicodeWriter_WriteASCIIString(w, text, n);
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
        const char *text;
        Py_ssize_t n = float_text(PyFloat_AS_DOUBLE(v), &text);
        return n < 0 ? -1 : ascii_put(b, text, n);
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
PyObject *container_repr(PyObject *v, Py_ssize_t size_hint) {
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

/* head_text(v, limit): the head of a list, tuple, dict, set, frozenset or deque's repr, written until it is
 * longer than limit (values.py ValueEncoder cuts it there): (text, shown, flat), shown being how many
 * top-level elements (dict: pairs) it starts, flat whether none of them is a container. Elements are
 * compact ints, floats, plain ASCII strs no longer than limit, None, bools and builtin containers of those
 * (nested up to HEAD_DEPTH, not holding themselves); anything else, or a text that ends before the limit,
 * gives None (the Python path). The text is a prefix of repr(v); no element's code runs. */
#define HEAD_DEPTH 48
typedef struct {
    AsciiBuf *b;
    Py_ssize_t limit;
    int flat;
    int depth;
    PyObject *stack[HEAD_DEPTH];
} HeadWriter;

static int head_write(HeadWriter *h, PyObject *x);

static int head_sep(HeadWriter *h, Py_ssize_t i) { return i > 0 ? ascii_put(h->b, ", ", 2) : 0; }

static int head_container(HeadWriter *h, PyObject *x) {
    AsciiBuf *b = h->b;
    PyTypeObject *t = Py_TYPE(x);
    int rc = 0;
    if (t == &PyList_Type || t == &PyTuple_Type) {
        int list = t == &PyList_Type;
        rc = ascii_put(b, list ? "[" : "(", 1);
        Py_ssize_t i = 0;
        for (; rc == 0 && i < Py_SIZE(x) && b->size <= h->limit; i++) {
            rc = head_sep(h, i);
            if (rc == 0) rc = head_write(h, list ? PyList_GET_ITEM(x, i) : PyTuple_GET_ITEM(x, i));
        }
        if (rc == 0 && b->size <= h->limit && !list && Py_SIZE(x) == 1) rc = ascii_put(b, ",", 1);
        if (rc == 0 && b->size <= h->limit) rc = ascii_put(b, list ? "]" : ")", 1);
    } else if (t == &PyDict_Type) {
        Py_ssize_t pos = 0, i = 0;
        PyObject *key, *value;
        rc = ascii_put(b, "{", 1);
        while (rc == 0 && b->size <= h->limit && PyDict_Next(x, &pos, &key, &value)) {
            rc = head_sep(h, i++);
            if (rc == 0) rc = head_write(h, key);
            if (rc == 0 && b->size <= h->limit) rc = ascii_put(b, ": ", 2);
            if (rc == 0) rc = head_write(h, value);
        }
        if (rc == 0 && b->size <= h->limit) rc = ascii_put(b, "}", 1);
    } else { /* set, frozenset */
        int frozen = t == &PyFrozenSet_Type;
        if (PySet_GET_SIZE(x) == 0) return frozen ? ascii_put(b, "frozenset()", 11) : ascii_put(b, "set()", 5);
        rc = frozen ? ascii_put(b, "frozenset({", 11) : ascii_put(b, "{", 1);
        Py_ssize_t pos = 0, i = 0;
        PyObject *item;
        while (rc == 0 && b->size <= h->limit && set_next(x, &pos, &item)) {
            rc = head_sep(h, i++);
            if (rc == 0) rc = head_write(h, item);
        }
        if (rc == 0 && b->size <= h->limit) rc = frozen ? ascii_put(b, "})", 2) : ascii_put(b, "}", 1);
    }
    return rc;
}

/* 0: written (perhaps only up to the limit); 1: not a value written here (the Python path); -1: error. */
static int head_write(HeadWriter *h, PyObject *x) {
    PyTypeObject *t = Py_TYPE(x);
    int container =
        t == &PyList_Type || t == &PyTuple_Type || t == &PyDict_Type || t == &PySet_Type || t == &PyFrozenSet_Type;
    if (container) h->flat = 0; /* (even when its text starts past the limit: the head counts it) */
    if (h->b->size > h->limit) return 0;
    if (t == &PyLong_Type || t == &PyFloat_Type || x == Py_None || t == &PyBool_Type) return ascii_repr(h->b, x, 1);
    if (t == &PyUnicode_Type) return PyUnicode_GET_LENGTH(x) > h->limit ? 1 : ascii_repr(h->b, x, 1);
    if (!container) return 1;
    if (h->depth >= HEAD_DEPTH) return 1;
    for (int i = 0; i < h->depth; i++) {
        if (h->stack[i] == x) return 1; /* it holds itself: repr shows [...] (the Python path) */
    }
    h->stack[h->depth++] = x;
    int rc = head_container(h, x);
    h->depth--;
    return rc;
}

PyObject *head_text(PyObject *v, Py_ssize_t limit) {
    AsciiBuf b;
    b.data = b.inline_data;
    b.size = 0;
    b.cap = sizeof b.inline_data;
    HeadWriter h = {&b, limit, 1, 1, {v}};
    PyTypeObject *t = Py_TYPE(v);
    Py_ssize_t shown = 0;
    int rc = 0;
    if (t == &PyList_Type || t == &PyTuple_Type) {
        int list = t == &PyList_Type;
        rc = ascii_put(&b, list ? "[" : "(", 1);
        for (Py_ssize_t i = 0; rc == 0 && i < Py_SIZE(v) && b.size <= limit; i++, shown++) {
            rc = head_sep(&h, i);
            if (rc == 0) rc = head_write(&h, list ? PyList_GET_ITEM(v, i) : PyTuple_GET_ITEM(v, i));
        }
    } else if (t == &PyDict_Type) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        rc = ascii_put(&b, "{", 1);
        while (rc == 0 && b.size <= limit && PyDict_Next(v, &pos, &key, &value)) {
            rc = head_sep(&h, shown++);
            if (rc == 0) rc = head_write(&h, key);
            if (rc == 0 && b.size <= limit) rc = ascii_put(&b, ": ", 2);
            if (rc == 0) rc = head_write(&h, value);
        }
    } else if (strcmp(t->tp_name, "collections.deque") == 0) { /* its iterator is C: no code runs */
        PyObject *it = PyObject_GetIter(v);
        rc = it == NULL ? -1 : ascii_put(&b, "deque([", 7);
        while (rc == 0 && b.size <= limit) {
            PyObject *x = PyIter_Next(it);
            if (x == NULL) {
                if (PyErr_Occurred()) rc = -1;
                break;
            }
            rc = head_sep(&h, shown++);
            if (rc == 0) rc = head_write(&h, x);
            Py_DECREF(x);
        }
        Py_XDECREF(it);
    } else if (t == &PySet_Type || t == &PyFrozenSet_Type) {
        int frozen = t == &PyFrozenSet_Type;
        Py_ssize_t pos = 0;
        PyObject *item;
        rc = frozen ? ascii_put(&b, "frozenset({", 11) : ascii_put(&b, "{", 1);
        while (rc == 0 && b.size <= limit && set_next(v, &pos, &item)) {
            rc = head_sep(&h, shown++);
            if (rc == 0) rc = head_write(&h, item);
        }
    } else {
        rc = 1;
    }
    if (rc == 0 && b.size <= limit) rc = 1; /* not cut: the Python path shows it whole */
    PyObject *result = NULL;
    if (rc == 0) {
        PyObject *text = PyUnicode_New(b.size, 127);
        if (text != NULL) {
            memcpy(PyUnicode_1BYTE_DATA(text), b.data, b.size);
            result = Py_BuildValue("(NnO)", text, shown, h.flat ? Py_True : Py_False);
        }
    } else if (rc == 1) {
        result = Py_NewRef(Py_None);
    }
    if (b.data != b.inline_data) PyMem_Free(b.data);
    return result;
}

/* Encode v when the encoder would give repr(v) for it (a builtin container of scalars, or an object with
 * object's default repr): new reference, with *immutable set as is_immutable(v) would. NULL without an
 * error: any other value (use the Python encoder). */
static PyObject *encode_builtin(Py_ssize_t limit, PyObject *v, int *immutable);

PyObject *encode_container(Py_ssize_t limit, PyObject *v, int *immutable) {
    PyObject *enc = encode_builtin(limit, v, immutable);
    return enc != NULL ? enc : leave_to_python_encoder();
}

static PyObject *encode_builtin(Py_ssize_t limit, PyObject *v, int *immutable) {
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
    nonfinite_seen = 0;
    PyObject *text = container_repr(v, 2 + 4 * n + top.text + nested.inner.text + 4 * nested.inner_len);
    if (text == NULL) return NULL;
    *immutable = (t == &PyTuple_Type || t == &PyFrozenSet_Type) && (!(mask & K_CONT) || frozen_tree(v, 0));
    if (PyUnicode_GET_LENGTH(text) > limit) {
        /* Too long to show whole: the Python encoder records it by structure as well (trace format 5,
         * tracer/objects.py), so that nothing beyond the cut is lost. */
        Py_DECREF(text);
        return NULL;
    }
    if (path != WALK) {
        /* the fast and nested paths look at the whole text */
        int all = mask | inner_mask;
        literal = t != &PyFrozenSet_Type && !(all & K_FROZEN);
        if (literal && (all & K_FLOAT) && nonfinite_seen) literal = 0; /* inf / nan have no literal form */
        if (literal && (all & K_COMPLEX)) { /* complex reprs are not written here: look at the text */
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

/* A text delta (trace format 4) from text `old` to text `new`: [prefix, suffix, middle], meaning
 * old[:prefix] + middle + old[len(old) - suffix:], when both are plain texts (literal reprs) that share
 * enough of a prefix and suffix to be worth it; else NULL (no error). A container that changed in one
 * place (an append, one key's value) then costs the change, not its whole repr again. */
#define DELTA_MIN_LEN 48   /* shorter texts are stored whole */
#define DELTA_MIN_SHARED 32 /* characters a delta must save */
PyObject *text_delta(PyObject *old, PyObject *new) {
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
