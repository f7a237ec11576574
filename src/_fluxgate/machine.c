/* The circuit breaker state machine (SPEC.md section 8), shared by
 * CircuitBreaker (breaker.c) and the asyncio surface (async_core.c):
 * admission and recording, the steps of every protected call. Transitions
 * and their signals are in machine_transitions.c, a Python window's queue in
 * machine_pywindow.c, construction in machine_setup.c (see machine.h).
 *
 * State lives in C and changes only in short critical sections that call no
 * Python code; user components, listeners and replaced clocks are always
 * called outside them (DESIGN.md D7). On GIL builds the critical-section
 * macros are empty and the GIL makes those sections atomic; on free-threaded
 * builds they lock the breaker and its window. Every transition starts a new
 * period, and an outcome is applied only in the period its call was admitted
 * in, so no stale sample crosses a transition. */
#include "machine.h"

#include "components.h"
#include "metric.h"

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
              const FgCallTime *time, const double *slow_at, Py_ssize_t n_slow,
              double timestamp, int evaluate, FgStateId *target,
              FgTripInput *later)
{
    FgMachineState *ms = fg_machine_state(cb);
    if (ms->period != period || ms->state == FG_DISABLED) {
        return 0;
    }
    if (native_window
        && fg_window_add(cb->window, success, time->seconds, time->ns, slow_at,
                         n_slow, timestamp) < 0) {
        return -1;
    }
    /* Written only when it changes: an unchanged line stays shared by the
     * threads calling this breaker. */
    if (!success) {
        ms->consecutive_failures++;
    }
    else if (ms->consecutive_failures != 0) {
        ms->consecutive_failures = 0;
    }
    if (!evaluate || (ms->state != FG_CLOSED && ms->state != FG_HALF_OPEN)) {
        return 0;
    }
    FgTripInput in = {.state = ms->state,
                      .consecutive_failures = ms->consecutive_failures};
    if (native_window) {
        /* Evaluated here when no Python node is reached; else outside. */
        in.window = cb->window;
        int tripped = fg_tripper_check_compiled(cb->st, cb->tripper, &in);
        in.window = NULL;
        if (tripped != FG_NEEDS_PYTHON) {
            if (tripped < 0) {
                return -1;
            }
            *target = decide(ms->state, success, tripped);
            return 0;
        }
    }
    *later = in;
    return 1;
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
        metric = fg_pywindow_metric(cb);
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
int
fg_machine_record_general(FgBreaker *cb, uint64_t period, int success,
                          const FgCallTime *time, const double *bucket_second)
{
    double duration = time->seconds;
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
        if (bucket_second != NULL) {
            timestamp = *bucket_second;
        }
        else {
            rc = fg_bucket_second(st, time->end_tick, &timestamp);
        }
    }
    int evaluate = 1;
    if (rc == 0 && !native_window) {
        rc = fg_pywindow_record(cb, period, success, duration, slow_at,
                                     n_slow);
        if (rc <= 0) {
            return rc < 0 ? -1 : 0;
        }
        evaluate = rc == 1;
        rc = 0;
    }
    FgStateId target = FG_NO_TRANSITION;
    FgTripInput later = {0};
#ifdef Py_GIL_DISABLED
    if (rc == 0 && cb->shared == NULL) {
        /* Recording changes the window and the failure streak, never the
         * state or period: every FG_LOCK section holds the window's lock
         * too, so that lock alone suffices, and threads calling one breaker
         * contend for one lock, not two. */
        fg_wait_until_unlocked(cb->window);
        Py_BEGIN_CRITICAL_SECTION(cb->window);
        rc = record_locked(cb, native_window, period, success, time,
                           slow_at, n_slow, timestamp, evaluate, &target, &later);
        Py_END_CRITICAL_SECTION();
    }
    else
#endif
    if (rc == 0) {
        FG_LOCK(cb);
        rc = record_locked(cb, native_window, period, success, time,
                           slow_at, n_slow, timestamp, evaluate, &target, &later);
        FG_UNLOCK(cb);
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
fg_machine_admit_slow(FgBreaker *cb, FgAdmitMode mode, uint64_t *period)
{
    FgState *st = cb->st;
    FgMachineState *ms = fg_machine_state(cb);
    for (;;) {
        FgStateId state;
        double changed_at;
        int64_t reopens;
        if (cb->shared != NULL) {
            FgMachineState now;
            fg_shared_read(cb->shared, &now);
            state = now.state;
            *period = now.period;
            changed_at = now.changed_at;
            reopens = now.reopens;
        }
        else {
            FG_LOCK(cb);
            state = ms->state;
            *period = ms->period;
            changed_at = ms->changed_at;
            reopens = ms->reopens;
            FG_UNLOCK_READ(cb);
        }
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
    static const FgCallTime no_time = {0.0, 0, 0};
    if (tracked > 0 && fg_machine_record_general(cb, period, 0, &no_time, NULL) < 0) {
        tracked = -1;
    }
    if (tracked >= 0) {
        return 0;
    }
    /* The component's exception propagates, the call's as its context. */
    fg_chain_context(error);
    return -1;
}

void
fg_chain_context(PyObject *context)
{
    PyObject *raised = PyErr_GetRaisedException();
    PyObject *existing = PyException_GetContext(raised);
    if (existing == NULL && raised != context) {
        PyException_SetContext(raised, Py_NewRef(context));
    }
    Py_XDECREF(existing);
    PyErr_SetRaisedException(raised);
}

PyObject *
fg_machine_info(FgBreaker *cb)
{
    FgState *st = cb->st;
    FgMachineState *ms = fg_machine_state(cb);
    FgStateId state;
    double changed_at;
    int64_t reopens;
    PyObject *metrics = NULL;
    int native_window = fg_window_native_kind(st, cb->window) != FG_WINDOW_PYTHON;
    FG_LOCK(cb);
    state = ms->state;
    changed_at = ms->changed_at;
    reopens = ms->reopens;
    if (native_window) {
        metrics = fg_window_metric(st, cb->window);
    }
    FG_UNLOCK_READ(cb);
    if (!native_window) {
        metrics = fg_pywindow_metric(cb);
    }
    if (metrics == NULL) {
        return NULL;
    }
    PyObject *when = PyFloat_FromDouble(changed_at);
    PyObject *count = when ? PyLong_FromLongLong(reopens) : NULL;
    PyObject *info = NULL;
    if (count != NULL) {
        PyObject *fields[] = {st->state_names[state], when, count, metrics};
        info = fg_value_new(st->CircuitBreakerInfo, &st->info_layout, fields, 4, NULL);
    }
    Py_XDECREF(when);
    Py_XDECREF(count);
    Py_DECREF(metrics);
    return info;
}

