/* Core: the recorder's shared state and its sys.monitoring callbacks. */
#include "core.h"

/* ------------------------------------------------------------------------------------------------ */
/* Core                                                                                               */

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
    self->settle_thread = -1;
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
    Py_VISIT(self->touched_tuple);
    Py_VISIT(self->settled);
    Py_VISIT(self->t_entries);
    Py_VISIT(self->t_ops);
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
    Py_CLEAR(self->touched_tuple);
    Py_CLEAR(self->settled);
    Py_CLEAR(self->t_entries);
    Py_CLEAR(self->t_ops);
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
PyObject *code_entry(Core *self, PyObject *code) {
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
        /* What the caller's line ran before this call (its arguments) happened before this step. */
        if (settle(self, (FrameRecord *)caller) < 0) goto error;
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
    {"_bind_tracker", (PyCFunction)(void (*)(void))Core_bind_tracker, METH_FASTCALL,
     "Record the commonest changes of the object tracker's containers in C (tracker.c)."},
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
    {"_guarded", Py_T_BOOL, CORE_OFF(guarded), 0, NULL},
    {"_settled", Py_T_OBJECT_EX, CORE_OFF(settled), 0, NULL},
    {NULL},
};

/* _touched: what the line being checked may have changed (a tuple), or None (see core.h). */
static PyObject *Core_get_touched(Core *self, void *closure) {
    return Py_NewRef(self->touched_tuple != NULL ? self->touched_tuple : Py_None);
}

static int Core_set_touched(Core *self, PyObject *value, void *closure) {
    if (value != NULL && value != Py_None && !PyTuple_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "_touched is a tuple or None");
        return -1;
    }
    Py_XSETREF(self->touched_tuple, value == NULL || value == Py_None ? NULL : Py_NewRef(value));
    return 0;
}

static PyGetSetDef Core_getset[] = {
    {"_owner", (getter)Core_get_owner, (setter)Core_set_owner, NULL, NULL},
    {"_touched", (getter)Core_get_touched, (setter)Core_set_touched, NULL, NULL},
    {NULL},
};

PyTypeObject CoreType = {
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
