/* A breaker shared by a fleet through Redis (DESIGN.md D11): the C half.
 *
 * The protected call never touches the network. A fleet breaker records
 * into a private native window that also carries the other members' part of
 * the fleet metric (FgRemote, windows.h): their summed totals and slow
 * counts, set by the process's sync thread (fluxgate/_fleet.py) under the
 * breaker's lock and read by the tripper as plain C numbers, added to the
 * local ones by fg_window_totals, fg_window_slow_count and
 * fg_window_metric. The remote part counts until a deadline of a few sync
 * intervals: a record after it drops the part, so a stuck sync thread
 * cannot keep stale counts alive. Any clear of the window (every
 * transition) drops it too: the other members' counts belong to the fleet
 * generation this member has just left.
 *
 * The sync thread talks to Redis and drives the machine through the
 * module functions below: it reads a snapshot (state, period, local
 * metric), sets the remote part for the period it read, adopts the fleet's
 * state as a new period without a signal, and evaluates the tripper on the
 * fleet metric after each sync. */
#include "fleet.h"

#include "components.h"
#include "windows.h"


/* ---- the sync thread's functions ----------------------------------------*/

/* The breaker behind `obj` if it is a fleet breaker; else NULL with
 * TypeError. */
static FgBreaker *
fleet_breaker(PyObject *module, PyObject *obj)
{
    FgState *st = fg_state(module);
    if (PyObject_TypeCheck(obj, (PyTypeObject *)st->CircuitBreaker_Type)
        || PyObject_TypeCheck(obj, (PyTypeObject *)st->AsyncCore_Type)) {
        FgBreaker *cb = (FgBreaker *)obj;
        if (cb->window != NULL
            && (Py_IS_TYPE(cb->window, (PyTypeObject *)st->CountWindow_Type)
                || Py_IS_TYPE(cb->window, (PyTypeObject *)st->TimeWindow_Type))
            && ((Window *)cb->window)->remote != NULL) {
            return cb;
        }
    }
    PyErr_Format(PyExc_TypeError, "expected a fleet breaker, not %.200s",
                 Py_TYPE(obj)->tp_name);
    return NULL;
}

static FgRemote *
remote_of(FgBreaker *cb)
{
    return ((Window *)cb->window)->remote;
}

/* _fleet_thresholds(breaker) -> tuple[float, ...] */
static PyObject *
fleet_thresholds(PyObject *module, PyObject *obj)
{
    FgBreaker *cb = fleet_breaker(module, obj);
    if (cb == NULL) {
        return NULL;
    }
    FgRemote *r = remote_of(cb);
    return fg_tuple_of_doubles(r->thresholds, r->n);
}

/* _fleet_snapshot(breaker) -> (state, period, changed_at, reopens, count,
 * failures, total_duration, slow_counts, commanded): the machine state and
 * this member's own metric (its local window, without the remote part),
 * read together; commanded is whether a command began the period. */
static PyObject *
fleet_snapshot(PyObject *module, PyObject *obj)
{
    FgBreaker *cb = fleet_breaker(module, obj);
    if (cb == NULL) {
        return NULL;
    }
    FgRemote *r = remote_of(cb);
    int64_t *slow = PyMem_Calloc((size_t)r->n + 1, sizeof(int64_t));
    if (slow == NULL) {
        return PyErr_NoMemory();
    }
    FgMachineState ms;
    FgTotals totals;
    int commanded;
    Window *w = (Window *)cb->window;
    FG_LOCK(cb);
    ms = *fg_machine_state(cb);
    commanded = cb->command_period != 0 && cb->command_period == ms.period;
    totals = w->store.totals;
    for (Py_ssize_t i = 0; i < r->n; i++) {
        int e = table_find(&w->store.slow, r->thresholds[i]);
        slow[i] = e < 0 ? 0 : w->store.slow.entries[e].count;
    }
    FG_UNLOCK_READ(cb);
    PyObject *counts = PyTuple_New(r->n);
    for (Py_ssize_t i = 0; counts != NULL && i < r->n; i++) {
        PyObject *c = PyLong_FromLongLong(slow[i]);
        if (c == NULL) {
            Py_CLEAR(counts);
            break;
        }
        PyTuple_SET_ITEM(counts, i, c);
    }
    PyMem_Free(slow);
    if (counts == NULL) {
        return NULL;
    }
    return Py_BuildValue("iKdLLLdNN", (int)ms.state, (unsigned long long)ms.period,
                         ms.changed_at, (long long)ms.reopens,
                         (long long)totals.total_count, (long long)totals.failure_count,
                         totals.total_duration, counts, PyBool_FromLong(commanded));
}

/* _fleet_set_remote(breaker, period, count, failures, total_duration,
 * slow_counts, ttl) -> bool: the other members' part, counted for `ttl`
 * seconds, if the breaker is still in `period`. */
static PyObject *
fleet_set_remote(PyObject *module, PyObject *args)
{
    PyObject *obj, *counts;
    unsigned long long period;
    long long count, failures;
    double duration, ttl;
    if (!PyArg_ParseTuple(args, "OKLLdO!d:_fleet_set_remote", &obj, &period, &count,
                          &failures, &duration, &PyTuple_Type, &counts, &ttl)) {
        return NULL;
    }
    FgBreaker *cb = fleet_breaker(module, obj);
    if (cb == NULL) {
        return NULL;
    }
    FgRemote *r = remote_of(cb);
    if (PyTuple_GET_SIZE(counts) != r->n) {
        PyErr_Format(PyExc_ValueError, "slow_counts must have %zd items", r->n);
        return NULL;
    }
    int64_t *slow = PyMem_Calloc((size_t)r->n + 1, sizeof(int64_t));
    if (slow == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < r->n; i++) {
        slow[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(counts, i));
        if (slow[i] == -1 && PyErr_Occurred()) {
            PyMem_Free(slow);
            return NULL;
        }
    }
    int64_t deadline = fg_remote_clock_ns() + (int64_t)(ttl * 1e9);
    int applied = 0;
    FG_LOCK(cb);
    if (fg_machine_state(cb)->period == period) {
        applied = 1;
        r->totals.total_count = count;
        r->totals.failure_count = failures;
        r->totals.total_duration = duration;
        if (r->n > 0) {
            memcpy(r->slow, slow, (size_t)r->n * sizeof(int64_t));
        }
        r->deadline_ns = deadline;
        r->live = count > 0;
    }
    FG_UNLOCK(cb);
    PyMem_Free(slow);
    return PyBool_FromLong(applied);
}

/* _fleet_adopt(breaker, period, state, changed_at, reopens) -> bool: the
 * fleet's state as a new local period, the window cleared, no signal; only
 * if the breaker is still in `period`. */
static PyObject *
fleet_adopt(PyObject *module, PyObject *args)
{
    PyObject *obj;
    unsigned long long period;
    int state;
    double changed_at;
    long long reopens;
    if (!PyArg_ParseTuple(args, "OKidL:_fleet_adopt", &obj, &period, &state,
                          &changed_at, &reopens)) {
        return NULL;
    }
    FgBreaker *cb = fleet_breaker(module, obj);
    if (cb == NULL) {
        return NULL;
    }
    if (state < 0 || state >= FG_STATE_COUNT) {
        PyErr_Format(PyExc_ValueError, "state must be 0 to %d", FG_STATE_COUNT - 1);
        return NULL;
    }
    int applied = 0;
    FgMachineState *ms = fg_machine_state(cb);
    FG_LOCK(cb);
    if (ms->period == period) {
        applied = 1;
        ms->state = (FgStateId)state;
        ms->period++;
        ms->changed_at = changed_at;
        ms->reopens = reopens;
        ms->consecutive_failures = 0;
        fg_window_clear(cb->window);
    }
    FG_UNLOCK(cb);
    return PyBool_FromLong(applied);
}

/* _fleet_evaluate(breaker) -> bool: run the tripper on the fleet metric of
 * a CLOSED breaker; open it (signalling as any trip does) if it fires. */
static PyObject *
fleet_evaluate(PyObject *module, PyObject *obj)
{
    FgBreaker *cb = fleet_breaker(module, obj);
    if (cb == NULL) {
        return NULL;
    }
    FgState *st = cb->st;
    FgMachineState *ms = fg_machine_state(cb);
    FgTripInput in = {0};
    uint64_t period = 0;
    int tripped = 0;
    FG_LOCK(cb);
    fg_remote_expire(remote_of(cb));
    if (ms->state == FG_CLOSED) {
        period = ms->period;
        in.state = ms->state;
        in.consecutive_failures = ms->consecutive_failures;
        in.window = cb->window;
        tripped = fg_tripper_check_native(st, cb->tripper, &in);
        in.window = NULL;
    }
    FG_UNLOCK_READ(cb);
    if (tripped == FG_NEEDS_PYTHON) {
        PyObject *metric;
        Py_BEGIN_CRITICAL_SECTION(cb->window);
        metric = fg_window_metric(st, cb->window);
        Py_END_CRITICAL_SECTION();
        if (metric == NULL) {
            return NULL;
        }
        in.metric = metric;
        tripped = fg_tripper_check(st, cb->tripper, &in);
        fg_trip_input_release(&in);
        Py_DECREF(metric);
    }
    if (tripped < 0) {
        return NULL;
    }
    if (tripped == 0) {
        Py_RETURN_FALSE;
    }
    int moved = fg_machine_transition(cb, &period, FG_OPEN, NULL);
    if (moved < 0) {
        return NULL;
    }
    return PyBool_FromLong(moved);
}

PyMethodDef fg_fleet_functions[] = {
    {"_fleet_thresholds", fleet_thresholds, METH_O, NULL},
    {"_fleet_snapshot", fleet_snapshot, METH_O, NULL},
    {"_fleet_set_remote", fleet_set_remote, METH_VARARGS, NULL},
    {"_fleet_adopt", fleet_adopt, METH_VARARGS, NULL},
    {"_fleet_evaluate", fleet_evaluate, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};
