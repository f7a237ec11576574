/* Transitions of the state machine and the delivery of their signals.
 *
 * A transition changes the machine state under FG_LOCK and queues its
 * signal; the listeners are called afterwards, outside every critical
 * section, by one thread at a time (deliver_signals). The asyncio surface
 * takes the queued signals itself (fg_machine_take_signals). */
#include "machine.h"

#include "components.h"

/* ---- the queue of pending signals ------------------------------------------*/

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

/* ---- transitions and their delivery ----------------------------------------*/

/* Apply a transition; called inside the critical section. The pending
 * queue can only fail to grow for lack of memory, after the state change
 * (which must not be half-applied): the caller reports that MemoryError. */
static int
apply_transition(FgBreaker *cb, FgStateId target, double now, int depth,
                 int native_window)
{
    FgMachineState *ms = fg_machine_state(cb);
    FgStateId old_state = ms->state;
    ms->state = target;
    ms->period++;
    ms->changed_at = now;
    if (target == FG_CLOSED) {
        ms->reopens = 0;
        ms->consecutive_failures = 0;
    }
    else if (target == FG_HALF_OPEN) {
        ms->consecutive_failures = 0;
    }
    else if (target == FG_OPEN && old_state == FG_HALF_OPEN) {
        ms->reopens++;
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
    PyObject *signal = fg_value_new(st->Signal, &st->signal_layout, args, 3, NULL);
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
    FG_LOCK_LOCAL(cb);
    /* A delivery that was under way in the parent when this process forked
     * has no thread left to finish it here. */
    long pid = fg_getpid();
    have = cb->delivering_pid != pid && pending_pop(cb, &next);
    if (have) {
        cb->delivering_pid = pid;
        cb->delivering_thread = PyThread_get_thread_ident();
        cb->delivering_depth = next.depth;
    }
    FG_UNLOCK_LOCAL();
    while (have) {
        int rc = notify_listeners(cb, &next);
        FG_LOCK_LOCAL(cb);
        have = rc == 0 && pending_pop(cb, &next);
        if (have) {
            cb->delivering_depth = next.depth;
        }
        else {
            cb->delivering_pid = 0;
            cb->delivering_thread = 0;
        }
        FG_UNLOCK_LOCAL();
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
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
    FgMachineState *ms = fg_machine_state(cb);
    FG_LOCK(cb);
    if (period == NULL || ms->period == *period) {
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
            if (period == NULL) {
                cb->command_period = ms->period;
            }
            if (!native_window) {
                fg_pywindow_fork_check(cb, pid);
                reset_seq = fg_pywindow_push(cb, NULL);
                if (reset_seq == 0) {
                    queued = -1;
                }
            }
        }
    }
    FG_UNLOCK(cb);
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
        fg_pywindow_drain(cb, reset_seq, &reset_error);
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

PyObject *
fg_machine_take_signals(FgBreaker *cb)
{
    PyObject *signals = PyList_New(0);
    while (signals != NULL) {
        FgPendingSignal next;
        int have;
        FG_LOCK_LOCAL(cb);
        have = pending_pop(cb, &next);
        FG_UNLOCK_LOCAL();
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

int
fg_machine_signals_pending(FgBreaker *cb)
{
    int pending;
    FG_LOCK_LOCAL(cb);
    pending = cb->pending_len > 0;
    FG_UNLOCK_LOCAL();
    return pending;
}
