/* The circuit breaker state machine (SPEC.md section 8), shared by
 * CircuitBreaker (breaker.c) and the asyncio surface (async_core.c).
 *
 * State lives in C and changes only in short critical sections that call no
 * Python code; user components, listeners and replaced clocks are always
 * called outside them (DESIGN.md D7). On GIL builds the critical-section
 * macros are empty and the GIL makes those sections atomic; on free-threaded
 * builds they lock the breaker and its window. Every transition starts a new
 * period, and an outcome is applied only in the period its call was admitted
 * in, so no stale sample crosses a transition. */
#include "breaker.h"

#include "components.h"
#include "metric.h"

/* The breaker's state and its window change together. */
#define FG_LOCK(cb) Py_BEGIN_CRITICAL_SECTION2((PyObject *)(cb), (cb)->window)
#define FG_UNLOCK() Py_END_CRITICAL_SECTION2()

#define FG_NO_TRANSITION FG_STATE_COUNT

/* ---- transitions and signals ---------------------------------------------*/

static int
pending_push(FgBreaker *cb, FgStateId old_state, FgStateId new_state,
             double timestamp, int depth)
{
    if (cb->pending_len == cb->pending_cap) {
        Py_ssize_t cap = cb->pending_cap ? cb->pending_cap * 2 : 4;
        FgPendingSignal *grown = PyMem_Calloc((size_t)cap, sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < cb->pending_len; i++) {
            grown[i] = cb->pending[(cb->pending_head + i) % cb->pending_cap];
        }
        PyMem_Free(cb->pending);
        cb->pending = grown;
        cb->pending_cap = cap;
        cb->pending_head = 0;
    }
    FgPendingSignal *slot =
        &cb->pending[(cb->pending_head + cb->pending_len) % cb->pending_cap];
    slot->old_state = old_state;
    slot->new_state = new_state;
    slot->timestamp = timestamp;
    slot->depth = depth;
    cb->pending_len++;
    return 0;
}

static int
pending_pop(FgBreaker *cb, FgPendingSignal *out)
{
    if (cb->pending_len == 0) {
        return 0;
    }
    *out = cb->pending[cb->pending_head];
    cb->pending_head = (cb->pending_head + 1) % cb->pending_cap;
    cb->pending_len--;
    return 1;
}

/* Apply a transition; called inside the critical section. The pending
 * queue can only fail to grow for lack of memory, after the state change
 * (which must not be half-applied): the caller reports that MemoryError. */
static int
apply_transition(FgBreaker *cb, FgStateId target, double now, int depth,
                 int native_window)
{
    FgStateId old_state = cb->state;
    cb->state = target;
    cb->period++;
    cb->changed_at = now;
    if (target == FG_CLOSED) {
        cb->reopens = 0;
        cb->consecutive_failures = 0;
    }
    else if (target == FG_HALF_OPEN) {
        cb->consecutive_failures = 0;
    }
    else if (target == FG_OPEN && old_state == FG_HALF_OPEN) {
        cb->reopens++;
    }
    if (native_window) {
        fg_window_clear(cb->window);
    }
    if (PyTuple_GET_SIZE(cb->listeners) == 0) {
        return 0;
    }
    return pending_push(cb, old_state, target, now, depth);
}

static int
notify_one(FgBreaker *cb, PyObject *listener, PyObject *signal)
{
    FgState *st = cb->st;
    PyObject *result = PyObject_CallOneArg(listener, signal);
    PyObject *report;
    if (result == NULL) {
        PyObject *error = PyErr_GetRaisedException();
        if (!PyErr_GivenExceptionMatches(error, PyExc_Exception)) {
            PyErr_SetRaisedException(error);
            return -1;
        }
        report = PyObject_CallFunctionObjArgs(st->report_listener_error, listener,
                                              error, NULL);
        Py_DECREF(error);
    }
    else {
        PyTypeObject *type = Py_TYPE(result);
        if (type->tp_as_async == NULL || type->tp_as_async->am_await == NULL) {
            Py_DECREF(result);
            return 0;
        }
        report = PyObject_CallFunctionObjArgs(st->report_async_listener, listener,
                                              result, NULL);
        Py_DECREF(result);
    }
    if (report == NULL) {
        PyErr_WriteUnraisable(listener);
    }
    Py_XDECREF(report);
    return 0;
}

static PyObject *
make_signal(FgState *st, const FgPendingSignal *pending)
{
    PyObject *ts = PyFloat_FromDouble(pending->timestamp);
    if (ts == NULL) {
        return NULL;
    }
    PyObject *args[] = {st->state_names[pending->old_state],
                        st->state_names[pending->new_state], ts};
    PyObject *signal = PyObject_Vectorcall(st->Signal, args, 3, NULL);
    Py_DECREF(ts);
    return signal;
}

static int
notify_listeners(FgBreaker *cb, const FgPendingSignal *pending)
{
    PyObject *signal = make_signal(cb->st, pending);
    if (signal == NULL) {
        return -1;
    }
    int rc = 0;
    Py_ssize_t n = PyTuple_GET_SIZE(cb->listeners);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        rc = notify_one(cb, PyTuple_GET_ITEM(cb->listeners, i), signal);
    }
    Py_DECREF(signal);
    return rc;
}

/* Deliver every pending signal, in order, outside the critical section. One
 * thread delivers at a time; a transition made meanwhile (by another thread,
 * or by a listener calling back into the breaker) is queued and delivered by
 * that same loop, so each signal reaches the listeners exactly once. */
static int
deliver_signals(FgBreaker *cb)
{
    /* The asyncio surface takes the signals itself (fg_machine_take_signals). */
    if (PyTuple_GET_SIZE(cb->listeners) == 0 || cb->async_mode) {
        return 0;
    }
    FgPendingSignal next;
    int have;
    Py_BEGIN_CRITICAL_SECTION(cb);
    /* A delivery that was under way in the parent when this process forked
     * has no thread left to finish it here. */
    long pid = fg_getpid();
    have = cb->delivering_pid != pid && pending_pop(cb, &next);
    if (have) {
        cb->delivering_pid = pid;
        cb->delivering_thread = PyThread_get_thread_ident();
        cb->delivering_depth = next.depth;
    }
    Py_END_CRITICAL_SECTION();
    while (have) {
        int rc = notify_listeners(cb, &next);
        Py_BEGIN_CRITICAL_SECTION(cb);
        have = rc == 0 && pending_pop(cb, &next);
        if (have) {
            cb->delivering_depth = next.depth;
        }
        else {
            cb->delivering_pid = 0;
            cb->delivering_thread = 0;
        }
        Py_END_CRITICAL_SECTION();
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- the operations of a Python window (see FgBreaker.window_ops) -------*/

static void window_ops_drain_mine(FgBreaker *cb, uint64_t mine,
                                  PyObject **my_error, int *mine_applied);

static void
window_ops_drain(FgBreaker *cb, uint64_t mine, PyObject **my_error)
{
    window_ops_drain_mine(cb, mine, my_error, NULL);
}

/* Inside the critical section: the first look at the window's counts in a
 * forked child forgets the parent's threads, which do not exist here. */
static void
window_fork_check(FgBreaker *cb, long pid)
{
    if (cb->window_pid != pid) {
        cb->window_pid = pid;
        cb->window_recording = 0;
        cb->window_draining = 0;
    }
}

/* Inside the critical section: queue an operation (stealing `record`);
 * its sequence number, or 0 (with `record` released) when out of memory. */
static uint64_t
window_ops_push(FgBreaker *cb, PyObject *record)
{
    if (cb->window_ops_len == cb->window_ops_cap) {
        Py_ssize_t cap = cb->window_ops_cap ? cb->window_ops_cap * 2 : 4;
        FgWindowOp *grown = PyMem_Calloc((size_t)cap, sizeof(*grown));
        if (grown == NULL) {
            Py_XDECREF(record); /* no Python code: a Record holds floats */
            return 0;
        }
        for (Py_ssize_t i = 0; i < cb->window_ops_len; i++) {
            grown[i] =
                cb->window_ops[(cb->window_ops_head + i) % cb->window_ops_cap];
        }
        PyMem_Free(cb->window_ops);
        cb->window_ops = grown;
        cb->window_ops_cap = cap;
        cb->window_ops_head = 0;
    }
    FgWindowOp *op = &cb->window_ops[(cb->window_ops_head + cb->window_ops_len)
                                     % cb->window_ops_cap];
    op->record = record;
    op->seq = ++cb->window_op_seq;
    cb->window_ops_len++;
    return op->seq;
}

/* Apply the queued operations of a Python window, in order, unless another
 * thread is applying them or a record() is under way (its thread applies
 * them when it ends). The exception of the operation numbered `mine`, if
 * this thread applied it, goes to *my_error (and *mine_applied is set when
 * it applied it at all); any other operation's error has no caller waiting
 * for it and is reported as unraisable. */
static void
window_ops_drain_mine(FgBreaker *cb, uint64_t mine, PyObject **my_error,
                      int *mine_applied)
{
    long pid = fg_getpid();
    int draining = 0;
    for (;;) {
        FgWindowOp op = {NULL, 0};
        int have = 0;
        Py_BEGIN_CRITICAL_SECTION(cb);
        if (cb->window_pid != pid) {
            /* Forked while this thread applied the queue: start over. */
            draining = 0;
        }
        window_fork_check(cb, pid);
        if (!draining && !cb->window_draining && cb->window_recording == 0
            && cb->window_ops_len > 0) {
            cb->window_draining = 1;
            draining = 1;
        }
        if (draining) {
            if (cb->window_ops_len > 0) {
                op = cb->window_ops[cb->window_ops_head];
                cb->window_ops_head = (cb->window_ops_head + 1) % cb->window_ops_cap;
                cb->window_ops_len--;
                have = 1;
            }
            else {
                cb->window_draining = 0;
            }
        }
        Py_END_CRITICAL_SECTION();
        if (!have) {
            return;
        }
        PyObject *r = op.record == NULL
                          ? PyObject_CallMethodNoArgs(cb->window, cb->st->s_reset)
                          : PyObject_CallMethodOneArg(cb->window, cb->st->s_record,
                                                      op.record);
        Py_XDECREF(op.record);
        if (op.seq == mine && mine_applied != NULL) {
            *mine_applied = 1;
        }
        if (r != NULL) {
            Py_DECREF(r);
        }
        else if (op.seq == mine && my_error != NULL && *my_error == NULL) {
            *my_error = PyErr_GetRaisedException();
        }
        else {
            PyErr_WriteUnraisable(cb->window);
        }
    }
}

/* Move to `target` if the breaker is still in `period` (any period when
 * `period` is NULL, for commands), then notify. Returns 1 if this call made
 * the transition, 0 if another one got there first, -1 on error. On success
 * *changed_at receives the new changed_at. */
int
fg_machine_transition(FgBreaker *cb, const uint64_t *period, FgStateId target,
                      double *changed_at)
{
    double now;
    int native_clock;
    if (fg_wall_time_ex(cb->st, &now, &native_clock) < 0) {
        return -1;
    }
    long pid = fg_getpid();
    unsigned long me = PyThread_get_thread_ident();
    int limit = Py_GetRecursionLimit();
    int applied = 0, queued = 0, too_deep = 0;
    uint64_t reset_seq = 0;
    /* Decided once: the clear inside and the reset() outside must agree. */
    int native_window = fg_window_native_kind(cb->st, cb->window) != FG_WINDOW_PYTHON;
    FG_LOCK(cb);
    if (period == NULL || cb->period == *period) {
        /* A transition made by a listener while its signal is delivered is
         * one level deeper than that signal. A command that would go past
         * the recursion limit is refused: a listener commanding on every
         * signal would otherwise never stop (SPEC.md section 12). */
        int depth = 0;
        if (cb->delivering_pid == pid && cb->delivering_thread == me) {
            depth = cb->delivering_depth + 1;
        }
        if (period == NULL && depth >= limit) {
            too_deep = 1;
        }
        else {
            applied = 1;
            /* Read again inside the critical section when that calls no
             * Python, so that signals' timestamps follow their order across
             * threads. */
            if (native_clock) {
                now = fg_raw_wall_time();
            }
            queued = apply_transition(cb, target, now, depth, native_window);
            if (!native_window) {
                window_fork_check(cb, pid);
                reset_seq = window_ops_push(cb, NULL);
                if (reset_seq == 0) {
                    queued = -1;
                }
            }
        }
    }
    FG_UNLOCK();
    if (too_deep) {
        PyErr_SetString(PyExc_RecursionError,
                        "maximum recursion depth exceeded in a circuit breaker "
                        "listener");
        return -1;
    }
    if (!applied) {
        return 0;
    }
    if (changed_at != NULL) {
        *changed_at = now;
    }
    /* A Python window is reset outside the critical section, now or, when
     * a record() is under way, by its thread when it ends. The transition
     * has happened whatever reset() does, so listeners hear of it first and
     * its error (when this thread applied it) is raised after. */
    PyObject *reset_error = NULL;
    if (reset_seq != 0) {
        window_ops_drain(cb, reset_seq, &reset_error);
    }
    if (queued < 0) {
        Py_XDECREF(reset_error);
        PyErr_NoMemory();
        return -1;
    }
    int delivered = deliver_signals(cb);
    if (reset_error != NULL) {
        if (delivered < 0) {
            Py_DECREF(reset_error);
        }
        else {
            PyErr_SetRaisedException(reset_error);
        }
        return -1;
    }
    return delivered < 0 ? -1 : 1;
}

/* ---- recording outcomes --------------------------------------------------*/

/* What an evaluated tripper means in `state` after a success or failure. */
static FgStateId
decide(FgStateId state, int success, int tripped)
{
    if (state == FG_CLOSED) {
        return tripped ? FG_OPEN : FG_NO_TRANSITION;
    }
    if (state == FG_HALF_OPEN) {
        if (success) {
            return tripped ? FG_NO_TRANSITION : FG_CLOSED;
        }
        return tripped ? FG_OPEN : FG_NO_TRANSITION;
    }
    return FG_NO_TRANSITION;
}

/* The part of recording that must be atomic: the period check, the window,
 * the streak, and (for a native tripper) the verdict. Returns 1 with *later
 * filled when a tripper with Python nodes must still be evaluated outside. */
static int
record_locked(FgBreaker *cb, int native_window, uint64_t period, int success,
              double duration, const double *slow_at, Py_ssize_t n_slow,
              double timestamp, int evaluate, FgStateId *target,
              FgTripInput *later)
{
    if (cb->period != period || cb->state == FG_DISABLED) {
        return 0;
    }
    if (native_window
        && fg_window_add(cb->window, success, duration, slow_at, n_slow,
                         timestamp) < 0) {
        return -1;
    }
    cb->consecutive_failures = success ? 0 : cb->consecutive_failures + 1;
    if (!evaluate || (cb->state != FG_CLOSED && cb->state != FG_HALF_OPEN)) {
        return 0;
    }
    FgTripInput in = {.state = cb->state,
                      .consecutive_failures = cb->consecutive_failures};
    if (native_window) {
        /* Evaluated here when no Python node is reached; else outside. */
        in.window = cb->window;
        int tripped = fg_tripper_check_native(cb->st, cb->tripper, &in);
        in.window = NULL;
        if (tripped != FG_NEEDS_PYTHON) {
            if (tripped < 0) {
                return -1;
            }
            *target = decide(cb->state, success, tripped);
            return 0;
        }
    }
    *later = in;
    return 1;
}

/* A user window's metric, which must be a Metric. */
static PyObject *
user_window_metric(FgBreaker *cb)
{
    PyObject *metric = PyObject_CallMethodNoArgs(cb->window, cb->st->s_get_metric);
    if (metric != NULL && !fg_metric_check(cb->st, metric)) {
        PyErr_Format(PyExc_TypeError,
                     "window.get_metric() must return a Metric, not %.200s",
                     Py_TYPE(metric)->tp_name);
        Py_CLEAR(metric);
    }
    return metric;
}

/* Evaluate a tripper with Python nodes on a snapshot of the metric. */
static int
evaluate_outside(FgBreaker *cb, int native_window, FgTripInput *in, int success,
                 FgStateId *target)
{
    FgState *st = cb->st;
    PyObject *metric;
    if (native_window) {
        Py_BEGIN_CRITICAL_SECTION(cb->window);
        metric = fg_window_metric(st, cb->window);
        Py_END_CRITICAL_SECTION();
    }
    else {
        metric = user_window_metric(cb);
    }
    if (metric == NULL) {
        return -1;
    }
    in->metric = metric;
    int tripped = fg_tripper_check(st, cb->tripper, in);
    fg_trip_input_release(in);
    Py_DECREF(metric);
    if (tripped < 0) {
        return -1;
    }
    *target = decide(in->state, success, tripped);
    return 0;
}

/* Build the Record a Python window receives. */
static PyObject *
make_record(FgState *st, int success, double duration, const double *slow_at,
            Py_ssize_t n_slow)
{
    PyObject *slow = PyTuple_New(n_slow);
    if (slow == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_slow; i++) {
        PyObject *t = PyFloat_FromDouble(slow_at[i]);
        if (t == NULL) {
            Py_DECREF(slow);
            return NULL;
        }
        PyTuple_SET_ITEM(slow, i, t);
    }
    PyObject *dur = PyFloat_FromDouble(duration);
    PyObject *kwnames = dur ? Py_BuildValue("(OOO)", st->s_success,
                                            st->s_duration, st->s_slow_at)
                            : NULL;
    PyObject *record = NULL;
    if (kwnames != NULL) {
        PyObject *args[] = {success ? Py_True : Py_False, dur, slow};
        record = PyObject_Vectorcall(st->Record, args, 0, kwnames);
        Py_DECREF(kwnames);
    }
    Py_XDECREF(dur);
    Py_DECREF(slow);
    return record;
}

/* A Python window: build the Record and call window.record() outside the
 * critical section and under no lock, at once when nothing is queued for
 * the window, else queued behind what is (see FgBreaker.window_ops).
 * 1 recorded, 2 queued and not yet applied (the window may still hold the
 * previous period's records, so the tripper is not evaluated on it), 0
 * discarded (the period is over), -1 error. */
static int
record_in_python_window(FgBreaker *cb, uint64_t period, int success,
                        double duration, const double *slow_at,
                        Py_ssize_t n_slow)
{
    PyObject *record = make_record(cb->st, success, duration, slow_at, n_slow);
    if (record == NULL) {
        return -1;
    }
    long pid = fg_getpid();
    int outcome;
    uint64_t seq = 0;
    Py_BEGIN_CRITICAL_SECTION(cb);
    window_fork_check(cb, pid);
    if (cb->period != period || cb->state == FG_DISABLED) {
        outcome = 0;
    }
    else if (cb->window_ops_len > 0 || cb->window_draining) {
        outcome = 2;
        seq = window_ops_push(cb, Py_NewRef(record));
        if (seq == 0) {
            outcome = -1;
        }
    }
    else {
        outcome = 1;
        cb->window_recording++;
    }
    Py_END_CRITICAL_SECTION();
    if (outcome == 1) {
        PyObject *r = PyObject_CallMethodOneArg(cb->window, cb->st->s_record,
                                                record);
        PyObject *error = r == NULL ? PyErr_GetRaisedException() : NULL;
        Py_XDECREF(r);
        Py_BEGIN_CRITICAL_SECTION(cb);
        /* Not when this process was forked meanwhile: the child's count
         * started from zero without this call. */
        if (cb->window_pid == pid && cb->window_recording > 0) {
            cb->window_recording--;
        }
        Py_END_CRITICAL_SECTION();
        window_ops_drain(cb, 0, NULL);
        if (error != NULL) {
            PyErr_SetRaisedException(error);
            outcome = -1;
        }
    }
    else if (outcome == 2) {
        /* Nobody may be left to apply it but this thread. */
        PyObject *error = NULL;
        int applied = 0;
        window_ops_drain_mine(cb, seq, &error, &applied);
        if (error != NULL) {
            PyErr_SetRaisedException(error);
            outcome = -1;
        }
        else if (applied) {
            outcome = 1;
        }
    }
    else if (outcome < 0) {
        PyErr_NoMemory();
    }
    Py_DECREF(record);
    return outcome;
}

/* Apply one outcome of a call admitted in `period`: record it, evaluate the
 * tripper, transition. An outcome from an earlier period is discarded. */
int
fg_machine_record(FgBreaker *cb, uint64_t period, int success, double duration)
{
    FgState *st = cb->st;
    /* The thresholds are ascending: the ones the call reached are the first
     * n_slow, read in place. */
    const double *slow_at = cb->slow_thresholds;
    Py_ssize_t n_slow = 0;
    while (success && n_slow < cb->n_slow_thresholds
           && duration >= slow_at[n_slow]) {
        n_slow++;
    }
    /* Decided once per outcome, so that one path records it. */
    int window_kind = fg_window_native_kind(st, cb->window);
    int native_window = window_kind != FG_WINDOW_PYTHON;
    double timestamp = 0.0;
    int rc = 0;
    if (window_kind == FG_WINDOW_TIMED) {
        rc = fg_wall_time(st, &timestamp);
    }
    int evaluate = 1;
    if (rc == 0 && !native_window) {
        rc = record_in_python_window(cb, period, success, duration, slow_at,
                                     n_slow);
        if (rc <= 0) {
            return rc < 0 ? -1 : 0;
        }
        evaluate = rc == 1;
        rc = 0;
    }
    FgStateId target = FG_NO_TRANSITION;
    FgTripInput later = {0};
    if (rc == 0) {
        FG_LOCK(cb);
        rc = record_locked(cb, native_window, period, success, duration,
                           slow_at, n_slow, timestamp, evaluate, &target, &later);
        FG_UNLOCK();
    }
    if (rc == 1) {
        rc = evaluate_outside(cb, native_window, &later, success, &target);
    }
    if (rc == 0 && target != FG_NO_TRANSITION) {
        rc = fg_machine_transition(cb, &period, target, NULL) < 0 ? -1 : 0;
    }
    return rc < 0 ? -1 : 0;
}

/* ---- admission -----------------------------------------------------------*/

/* HALF_OPEN admits a call when the permit says so. */
static int
admit_half_open(FgBreaker *cb, double changed_at)
{
    FgState *st = cb->st;
    int permitted = fg_permit_check(st, cb->permit, changed_at);
    if (permitted <= 0) {
        if (permitted == 0) {
            PyErr_SetObject(st->CallNotPermittedError, st->msg_half_open);
        }
        return -1;
    }
    return FG_HALF_OPEN;
}

int
fg_machine_admit(FgBreaker *cb, FgAdmitMode mode, uint64_t *period)
{
    FgState *st = cb->st;
    for (;;) {
        FgStateId state;
        double changed_at;
        int64_t reopens;
        FG_LOCK(cb);
        state = cb->state;
        *period = cb->period;
        changed_at = cb->changed_at;
        reopens = cb->reopens;
        FG_UNLOCK();
        if (mode == FG_ADMIT_HOLDING_SLOT && state != FG_HALF_OPEN) {
            return FG_ADMIT_SLOT; /* give the slot back, then try again */
        }
        switch (state) {
        case FG_CLOSED:
        case FG_METRICS_ONLY:
        case FG_DISABLED:
            return (int)state;
        case FG_FORCED_OPEN:
            PyErr_SetObject(st->CallNotPermittedError, st->msg_forced_open);
            return -1;
        case FG_OPEN: {
            int retry = fg_retry_check(st, cb->retry, changed_at, reopens);
            if (retry <= 0) {
                if (retry == 0) {
                    PyErr_SetObject(st->CallNotPermittedError, st->msg_open);
                }
                return -1;
            }
            /* This call moves the breaker to HALF_OPEN and belongs to the
             * new period; if another call got there first, start over. */
            int moved = fg_machine_transition(cb, period, FG_HALF_OPEN, &changed_at);
            if (moved < 0) {
                return -1;
            }
            if (moved == 0) {
                continue;
            }
            (*period)++;
            if (mode == FG_ADMIT_NEEDS_SLOT) {
                return FG_ADMIT_SLOT;
            }
            return admit_half_open(cb, changed_at);
        }
        case FG_HALF_OPEN:
            if (mode == FG_ADMIT_NEEDS_SLOT) {
                return FG_ADMIT_SLOT;
            }
            return admit_half_open(cb, changed_at);
        default:
            PyErr_SetString(PyExc_SystemError, "fluxgate: corrupt breaker state");
            return -1;
        }
    }
}

int
fg_machine_fail(FgBreaker *cb, uint64_t period, PyObject *error)
{
    int tracked = fg_tracker_check(cb->st, cb->tracker, error);
    if (tracked > 0 && fg_machine_record(cb, period, 0, 0.0) < 0) {
        tracked = -1;
    }
    if (tracked >= 0) {
        return 0;
    }
    /* The component's exception propagates, the call's as its context. */
    PyObject *raised = PyErr_GetRaisedException();
    PyObject *context = PyException_GetContext(raised);
    if (context == NULL && raised != error) {
        PyException_SetContext(raised, Py_NewRef(error));
    }
    Py_XDECREF(context);
    PyErr_SetRaisedException(raised);
    return -1;
}

int
fg_require_callable(PyObject *obj, const char *name)
{
    if (!PyCallable_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be callable, not %.200s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

static int
require_window(FgState *st, PyObject *window)
{
    PyObject *names[] = {st->s_record, st->s_get_metric, st->s_reset};
    for (int i = 0; i < 3; i++) {
        PyObject *method;
        if (PyObject_GetOptionalAttr(window, names[i], &method) < 0) {
            return -1;
        }
        int ok = method != NULL && PyCallable_Check(method);
        Py_XDECREF(method);
        if (!ok) {
            PyErr_Format(PyExc_TypeError,
                         "window must be a Window (with record, get_metric and "
                         "reset methods), not %.200s",
                         Py_TYPE(window)->tp_name);
            return -1;
        }
    }
    return 0;
}

static PyObject *
make_listeners(PyObject *iterable)
{
    PyObject *listeners = PySequence_Tuple(iterable);
    if (listeners == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError,
                         "listeners must be an iterable of callables, not %.200s",
                         Py_TYPE(iterable)->tp_name);
        }
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(listeners); i++) {
        PyObject *listener = PyTuple_GET_ITEM(listeners, i);
        if (!PyCallable_Check(listener)) {
            PyErr_Format(PyExc_TypeError,
                         "listeners[%zd] must be callable, not %.200s", i,
                         Py_TYPE(listener)->tp_name);
            Py_DECREF(listeners);
            return NULL;
        }
    }
    return listeners;
}

int
fg_machine_create_defaults(FgState *st)
{
    PyObject *min_requests = PyObject_CallFunction(st->MinRequests_Type, "i", 100);
    PyObject *failure_rate =
        min_requests ? PyObject_CallFunction(st->FailureRate_Type, "d", 0.5) : NULL;
    st->default_tripper =
        failure_rate ? PyNumber_And(min_requests, failure_rate) : NULL;
    Py_XDECREF(min_requests);
    Py_XDECREF(failure_rate);
    if (st->default_tripper == NULL
        || (st->default_tracker = PyObject_CallNoArgs(st->TrackerAll_Type)) == NULL
        || (st->default_retry =
                PyObject_CallFunction(st->Cooldown_Type, "d", 60.0)) == NULL
        || (st->default_permit = PyObject_CallFunction(st->RampUp_Type, "ddd", 0.1,
                                                       1.0, 60.0)) == NULL) {
        return -1; /* what was made is released with the module state */
    }
    return 0;
}

/* The value classes arrive when the Python layer is imported. */
static int
ensure_value_classes(FgState *st)
{
    if (st->Signal != NULL) {
        return 0;
    }
    PyObject *values = PyImport_ImportModule("fluxgate._values");
    Py_XDECREF(values);
    return values == NULL ? -1 : 0;
}

/* SPEC.md section 12: a component class where an instance belongs
 * (window=CountWindow, tripper=FailureStreak) is a TypeError naming the
 * argument; fluxgate._checks decides what a component class is. */
static int
refuse_component_classes(PyObject *const *given, const char *const *names, int n)
{
    PyObject *checks = NULL;
    for (int i = 0; i < n; i++) {
        if (!PyType_Check(given[i])) {
            continue;
        }
        if (checks == NULL
            && (checks = PyImport_ImportModule("fluxgate._checks")) == NULL) {
            return -1;
        }
        PyObject *ok = PyObject_CallMethod(checks, "refuse_component_class", "sO",
                                           names[i], given[i]);
        if (ok == NULL) {
            Py_DECREF(checks);
            return -1;
        }
        Py_DECREF(ok);
    }
    Py_XDECREF(checks);
    return 0;
}

int
fg_machine_setup(FgBreaker *cb, PyObject *window, PyObject *tracker,
              PyObject *tripper, PyObject *retry, PyObject *permit,
              PyObject *listeners)
{
    FgState *st = cb->st;
    if (ensure_value_classes(st) < 0) {
        return -1;
    }
    PyObject *const components[] = {window, tracker, tripper, retry, permit};
    static const char *const component_names[] = {"window", "tracker", "tripper",
                                                  "retry", "permit"};
    if (refuse_component_classes(components, component_names, 5) < 0) {
        return -1;
    }
    if (window == Py_None) {
        cb->window = PyObject_CallFunction(st->CountWindow_Type, "i", 100);
        if (cb->window == NULL) {
            return -1;
        }
    }
    else if (require_window(st, window) < 0) {
        return -1;
    }
    else {
        cb->window = Py_NewRef(window);
    }
    PyObject *given[] = {tracker, tripper, retry, permit};
    PyObject *defaults[] = {st->default_tracker, st->default_tripper,
                            st->default_retry, st->default_permit};
    PyObject **fields[] = {&cb->tracker, &cb->tripper, &cb->retry, &cb->permit};
    const char *names[] = {"tracker", "tripper", "retry", "permit"};
    for (int i = 0; i < 4; i++) {
        if (given[i] != Py_None && fg_require_callable(given[i], names[i]) < 0) {
            return -1;
        }
        *fields[i] = Py_NewRef(given[i] == Py_None ? defaults[i] : given[i]);
    }
    if ((cb->listeners = make_listeners(listeners)) == NULL) {
        return -1;
    }
    if (fg_tripper_collect_thresholds(st, cb->tripper, &cb->slow_thresholds,
                                      &cb->n_slow_thresholds) < 0) {
        return -1;
    }
    cb->window_pid = fg_getpid();
    cb->state = FG_CLOSED;
    return fg_wall_time(st, &cb->changed_at);
}

/* Release the queued operations of a Python window. */
static void
window_ops_free(FgBreaker *cb)
{
    for (Py_ssize_t i = 0; i < cb->window_ops_len; i++) {
        Py_CLEAR(cb->window_ops[(cb->window_ops_head + i) % cb->window_ops_cap]
                     .record);
    }
    cb->window_ops_len = 0;
    PyMem_Free(cb->window_ops);
    cb->window_ops = NULL;
    cb->window_ops_cap = 0;
}

int
fg_machine_traverse(FgBreaker *cb, visitproc visit, void *arg)
{
    Py_VISIT(cb->window);
    Py_VISIT(cb->tracker);
    Py_VISIT(cb->tripper);
    Py_VISIT(cb->retry);
    Py_VISIT(cb->permit);
    Py_VISIT(cb->listeners);
    for (Py_ssize_t i = 0; i < cb->window_ops_len; i++) {
        Py_VISIT(
            cb->window_ops[(cb->window_ops_head + i) % cb->window_ops_cap].record);
    }
    return 0;
}

int
fg_machine_clear(FgBreaker *cb)
{
    Py_CLEAR(cb->window);
    Py_CLEAR(cb->tracker);
    Py_CLEAR(cb->tripper);
    Py_CLEAR(cb->retry);
    Py_CLEAR(cb->permit);
    Py_CLEAR(cb->listeners);
    return 0;
}

void
fg_machine_free(FgBreaker *cb)
{
    if (cb->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)cb);
    }
    (void)fg_machine_clear(cb);
    PyMem_Free(cb->slow_thresholds);
    cb->slow_thresholds = NULL;
    PyMem_Free(cb->pending);
    cb->pending = NULL;
    window_ops_free(cb);
}

PyObject *
fg_machine_info(FgBreaker *cb)
{
    FgState *st = cb->st;
    FgStateId state;
    double changed_at;
    int64_t reopens;
    PyObject *metrics = NULL;
    int native_window = fg_window_native_kind(st, cb->window) != FG_WINDOW_PYTHON;
    FG_LOCK(cb);
    state = cb->state;
    changed_at = cb->changed_at;
    reopens = cb->reopens;
    if (native_window) {
        metrics = fg_window_metric(st, cb->window);
    }
    FG_UNLOCK();
    if (!native_window) {
        metrics = user_window_metric(cb);
    }
    if (metrics == NULL) {
        return NULL;
    }
    PyObject *info = PyObject_CallFunction(st->CircuitBreakerInfo, "OdLO",
                                           st->state_names[state], changed_at,
                                           (long long)reopens, metrics);
    Py_DECREF(metrics);
    return info;
}

PyObject *
fg_machine_take_signals(FgBreaker *cb)
{
    PyObject *signals = PyList_New(0);
    while (signals != NULL) {
        FgPendingSignal next;
        int have;
        Py_BEGIN_CRITICAL_SECTION(cb);
        have = pending_pop(cb, &next);
        Py_END_CRITICAL_SECTION();
        if (!have) {
            break;
        }
        PyObject *signal = make_signal(cb->st, &next);
        if (signal == NULL || PyList_Append(signals, signal) < 0) {
            Py_XDECREF(signal);
            Py_CLEAR(signals);
            break;
        }
        Py_DECREF(signal);
    }
    return signals;
}
