/* tracer/_core/core.h: the one header of tracer._core, the recorder's hot path in C.
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
 * The units: records.c (Lock, FrameRecord, ThreadState), stepbuffer.c (a chunk's steps), values.c
 * (scalar encodings, fingerprints, container reprs, text deltas), check.c (what changed in a frame),
 * guards.c (effect guards), callbacks.c (Core and its callbacks), pack.c (msgpack), tracker.c (the
 * object tracker's entries and the changes it records without Python), module.c (the module, its
 * constants, PyInit__core). This header holds what they share: the constants, the structs,
 * the small hot helpers (inline) and the functions one unit calls in another.
 *
 * Frame locals are read from the interpreter frame's fast-locals array, so this includes CPython's
 * internal frame header; the extension is compiled for the running interpreter and is optional (without
 * it the pure Python recorder runs).
 */
#ifndef RETROGRADE_CORE_H
#define RETROGRADE_CORE_H
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

/* setup.py passes the CRC-32 of all the sources (tracer/native.py source_hash): a stale build is refused. */
#ifndef RETROGRADE_SOURCE_HASH
#define RETROGRADE_SOURCE_HASH "unknown"
#endif

/* The constants below that the Python code shares are exported by module.c and checked at import
 * (tracer/native.py, tracer/monitor.py).
 * Event numbers: tracer/format.py. */
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
enum { G_GLOBAL = 0, G_METHOD, G_ITEM_METHOD, G_SUBSCR, G_STORE, G_INPLACE, G_CALL, G_LIBCALL };
enum { K_PURE = 0, K_MUTATES, K_UNKNOWN };

/* Limits the scalar and container encoders share with tracer/values.py (checked at import). */
#define NATIVE_INT_LIMIT 20   /* values.py NATIVE_INT_LIMIT: the longest int64 repr */
#define NATIVE_FLOAT_LIMIT 24 /* values.py NATIVE_FLOAT_LIMIT: the longest float repr */
#define FAST_LEN 256          /* values.py _FAST_LEN */
#define NESTED_BUDGET 2048    /* values.py _NESTED_BUDGET */

/* Interned names and sys.monitoring.DISABLE, set once by PyInit__core (module.c). */
extern PyObject *DISABLE;
extern PyObject *S_check, *S_full_check, *S_set, *S_recheck, *S_top, *S_thread, *S_thread_entering;
extern PyObject *S_checkpoint, *S_fail, *S_encode, *S_on_start, *S_fast, *S_on_line, *S_on_jump, *S_on_return;
extern PyObject *S_inf, *S_nan, *S_ellipsis;
extern PyTypeObject *deque_type; /* collections.deque (its methods have known effects: plan._METHODS) */
/* collections' dict subclasses: their item reads, stores and methods have known effects (plan._effect) */
extern PyTypeObject *defaultdict_type, *ordereddict_type, *counter_type;

/* The types (records.c, stepbuffer.c, callbacks.c). */
extern PyTypeObject LockType, FrameRecordType, ThreadStateType, StepBufferType, CoreType, EntryType;

/* Lock (records.c): `held` is only looked at with the GIL held. */
typedef struct {
    PyObject_HEAD
    int held;
} LockObject;

/* FrameRecord (records.c): one live frame activation (monitor.FrameRecord). */
typedef struct {
    PyObject_HEAD
    PyObject *code, *plan, *frame, *texts, *objs, *mutables, *heads;
    PyObject *info;    /* plan.fast: tuple or None */
    PyObject *code_id; /* plan.code_id, looked up at the first step */
    Py_ssize_t fid, parent, thread, depth, last_line, last_pos;
    char in_comprehension;
} FrameRecord;

/* ThreadState (records.c): one thread's stack of records. */
typedef struct {
    PyObject_HEAD
    PyObject *owner, *stack, *jump_rec;
    Py_ssize_t number, jump_line;
} ThreadState;

/* StepBuffer (stepbuffer.c): one chunk's steps as the chunk's columns (C twin of monitor.StepBuffer). */
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

/* Core (callbacks.c): the recorder's hot state, the base of monitor.CompiledRecorder. */
typedef struct Core Core;
struct Core {
    PyObject_HEAD
    PyObject *steps, *threads, *codes, *suspended, *lock;
    Py_ssize_t count, next_check, next_fid, limit;
    unsigned long owner_tid;
    char has_owner, active;
    char guarded; /* rechecking after a line whose guards held: plan.LinePlan.appends may be trusted */
    /* While guarded: the objects the line may have changed (borrowed, check()'s array), and the tuple of
     * them handed to the Python side (monitor.PythonRecorder._recheck reads self._touched), made on demand. */
    PyObject **touched_arr;
    int touched_n;
    PyObject *touched_tuple;
    /* The object tracker's `settled` set (tracer/objects.py): ids of tracked containers known equal to their
     * shadow. settle() empties it when code of unknown effect ran, and drops what a guarded line touched. */
    PyObject *settled;
    Py_ssize_t settle_thread; /* the thread of the last settled step */
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
    /* The object tracker's `entries` dict and `ops` list (tracer/objects.py ObjectTracker), bound by
     * CompiledRecorder (Core._bind_tracker): tracker.c records the commonest changes of tracked containers
     * into them itself. NULL: not bound (every tracked container goes to the Python tracker). */
    PyObject *t_entries, *t_ops;
};

/* The object tracker's codes (tracer/codes.py; checked at import by tracer/native.py). */
enum { T_LIST = 0, T_DICT = 2 };
enum { OP_SPLICE = 1, OP_SET = 2, OP_DEL = 3 };
#define FLAG_OBJECT 2 /* values.py FLAG_OBJECT: [text, flags, oid] is object oid */
/* Planned changes of a line (monitor.fast_info's line tuple, item LP_PLANNED: {name: (kind, ...)}; the kinds
 * are tracer/plan.py's). */
enum { PLAN_GROW = 0, PLAN_ITEMS = 1, PLAN_POP = 2 };
#define LP_PLANNED 5

/* One tracked container (tracker.c): objects.py's _Entry, in C so that tracker.c can update it. */
typedef struct {
    PyObject_HEAD
    PyObject *obj, *shadow, *keys, *nested, *fps, *nested_ids, *dirty, *shown;
    Py_ssize_t oid, code, base, since_snap, version, text_version;
    char touched, watched, rescan;
} Entry;

#define FINGERPRINT (-2) /* rec.heads[name] = (fingerprint, FINGERPRINT): see "fingerprints" below */
#define FP_FLAT (-3)     /* the same, for a value whose repr shows no container but itself */
#define HEAD_TRACKED (-4) /* values.py HEAD_TRACKED: an object the tracker records (only it can tell a change) */
#define HEAD_TRACKED_FLAT (-5) /* the same, holding no element that can change in place (values.py) */

static inline int is_none(PyObject *o) { return o == NULL || o == Py_None; }

/* dict.pop(key, None) without the value. */
static inline int dict_discard(PyObject *d, PyObject *key) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_Pop(d, key, NULL) < 0 ? -1 : 0;
#else
    int has = PyDict_Contains(d, key);
    if (has <= 0) return has;
    return PyDict_DelItem(d, key);
#endif
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

/* True when v is stored as itself (values.native): then its encoding is v, and a name bound to it has
 * texts[name] equal to it, with no need to look it up. */
static inline int is_native(Py_ssize_t limit, PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyBool_Type) return 1;
    if (t == &PyFloat_Type) return limit >= NATIVE_FLOAT_LIMIT && isfinite(PyFloat_AS_DOUBLE(v));
    if (t == &PyLong_Type) return limit >= NATIVE_INT_LIMIT && _PyLong_IsCompact((PyLongObject *)v);
    return 0;
}

/* -- small helpers shared by the units (inline: they are on the hot path) ------------------------ */

static inline void lock_take(LockObject *self) {
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

static inline void lock_give(LockObject *self) { self->held = 0; }

static inline Py_ssize_t n_mutables(FrameRecord *rec) { return rec->mutables ? PySet_GET_SIZE(rec->mutables) : 0; }

static inline PyObject *changes_arg(PyObject *changes) { return changes ? changes : Py_None; }

static inline PyObject *info_item(FrameRecord *rec, int i) { return PyTuple_GET_ITEM(rec->info, i); }

static inline int has_info(FrameRecord *rec) {
    return rec->info != NULL && PyTuple_CheckExact(rec->info) && PyTuple_GET_SIZE(rec->info) == INFO_SIZE;
}

/* The LinePlan tuple of rec's last line (the plan's default for a line it has none of), borrowed; NULL on
 * error. rec has info. */
static inline PyObject *last_line_plan(FrameRecord *rec) {
    PyObject *lines = info_item(rec, INFO_LINES);
    Py_ssize_t base = PyLong_AsSsize_t(info_item(rec, INFO_LINE_BASE));
    if (base == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t k = rec->last_line - base;
    PyObject *lp = (k >= 0 && k < PyTuple_GET_SIZE(lines)) ? PyTuple_GET_ITEM(lines, k) : Py_None;
    return lp != Py_None ? lp : info_item(rec, INFO_DEFAULT);
}

/* -- functions shared between the units (hidden: not exported from the extension) --------------- */
#pragma GCC visibility push(hidden)

/* records.c: Lock, FrameRecord, ThreadState */
FrameRecord *record_alloc(Py_ssize_t fid, PyObject *code, PyObject *plan, PyObject *info,
                          PyObject *frame, Py_ssize_t parent, Py_ssize_t thread, Py_ssize_t depth);
PyObject *get_mutables(FrameRecord *rec);
PyObject *get_heads(FrameRecord *rec);

/* stepbuffer.c: the step buffer */
int steps_add(StepBuffer *self, int event, int64_t fid, Py_ssize_t line, PyObject *changes,
              PyObject *value, long long code, Py_ssize_t depth);
int steps_add_frame(StepBuffer *self, int64_t fid, int64_t code, int64_t parent, int64_t thread,
                    int64_t depth);

/* values.c: scalar encodings, fingerprints, reprs, text deltas */
PyObject *scalar_encoding(Py_ssize_t limit, PyObject *obj);
int same_encoding(PyObject *a, PyObject *b);
PyObject *changes_add(PyObject *changes, PyObject *name, PyObject *enc);
int head_unchanged(PyObject *value, PyObject *head);
PyObject *fp_list(PyObject *v, int *flat);
int fp_match(PyObject *v, PyObject *fp, Py_ssize_t *pos);
int fp_remember(FrameRecord *rec, PyObject *name, PyObject *obj);
PyObject *container_repr(PyObject *v, Py_ssize_t size_hint);
PyObject *head_text(PyObject *v, Py_ssize_t limit);
PyObject *encode_container(Py_ssize_t limit, PyObject *v, int *immutable);
PyObject *text_delta(PyObject *old, PyObject *new);

/* check.c: what changed in a frame */
int fp_store(FrameRecord *rec, PyObject *name, PyObject *v);
void render_sweep(Core *self);
int full_check_from(Core *self, FrameRecord *rec, FrameRecord *caller, PyObject **out);
int check(Core *self, FrameRecord *rec, PyObject **out);

/* guards.c: effect guards */
#define MAX_TOUCHED 8 /* objects a line's guards may name as changed */
int guard_touched(Core *calls, FrameRecord *rec, PyObject *guards, PyObject *objs, PyObject **touched, int *n);
int settle(Core *self, FrameRecord *rec);
PyObject *code_entry(Core *self, PyObject *code);
int shows_touched(FrameRecord *rec, PyObject *name, PyObject *obj, PyObject **touched, int n);
extern PyObject *library_effects; /* plan.LIBRARY_EFFECTS, set by tracer/native.py (set_library_effects) */

/* tracker.c: changes of tracked containers recorded in C. tracker_recheck gives a new reference: the
 * value's encoding, Py_None when it is unchanged, or NOT_HANDLED (Py_NotImplemented, not a new reference)
 * when the Python tracker must look (nothing was changed then); NULL on error. */
#define NOT_HANDLED Py_NotImplemented
PyObject *tracker_recheck(Core *self, FrameRecord *rec, PyObject *name, PyObject *obj, int flat_head);
PyObject *Core_bind_tracker(Core *self, PyObject *const *args, Py_ssize_t nargs);
extern PyObject *dict_log; /* module.c: the dict watcher's log of (id(dict), event, key, value) */
extern int dict_log_lost;

/* pack.c: msgpack */
PyObject *StepBuffer_pack_columns(StepBuffer *self, PyObject *unused);
PyObject *packb(PyObject *module, PyObject *obj);

#pragma GCC visibility pop

#endif /* RETROGRADE_CORE_H */
