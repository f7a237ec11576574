/* Construction of the state machine: validating and filling the
 * components, the shared defaults, and the object lifecycle (allocation,
 * GC traversal, clearing, deallocation) both breaker types use. */
#include "machine.h"

#include "components.h"
#include "shared.h"
#include "fleet.h"
#include "fork.h"

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

/* Fill the components; on error what was filled is left for
 * fg_machine_setup to undo. */
/* Record into the host-shared segment `shared` gives: the window the
 * caller named is replaced by one over the segment's records. */
static int
attach_shared(FgBreaker *cb, PyObject *shared, int64_t max_half_open)
{
    FgSegmentShape shape = {
        .async_breaker = cb->async_mode,
        .max_half_open = cb->async_mode ? max_half_open : 0,
        .thresholds = cb->slow_thresholds,
        .n_thresholds = cb->n_slow_thresholds,
    };
    if (fg_window_shape(cb->st, cb->window, &shape.window_kind, &shape.window_size) < 0) {
        return -1;
    }
    PyObject *window;
    FgShared *attached = fg_shared_attach(cb->st, shared, &shape, &window);
    if (attached == NULL) {
        return -1;
    }
    Py_SETREF(cb->window, window);
    cb->shared = attached;
    fg_shared_load(attached, &cb->machine, cb->window);
    return 0;
}

/* Record into a private window of the kind and size the caller named,
 * which also carries the other members' part of the fleet metric, and
 * join the fleet: `join` (RedisFleet._fluxgate_fleet) registers the
 * breaker with this process's sync thread. */
static int
attach_fleet(FgBreaker *cb, PyObject *join)
{
    FgState *st = cb->st;
    int kind;
    int64_t size;
    if (fg_window_shape(st, cb->window, &kind, &size) < 0) {
        return -1;
    }
    PyObject *type = kind == 0 ? st->CountWindow_Type : st->TimeWindow_Type;
    PyObject *window = PyObject_CallFunction(type, "L", (long long)size);
    if (window == NULL) {
        return -1;
    }
    if (fg_fleet_attach_window(window, cb->slow_thresholds, cb->n_slow_thresholds) < 0) {
        Py_DECREF(window);
        return -1;
    }
    Py_SETREF(cb->window, window);
    FgMachineState *ms = fg_machine_state(cb);
    ms->state = FG_CLOSED;
    if (fg_wall_time(st, &ms->changed_at) < 0) {
        return -1;
    }
    PyObject *joined = PyObject_CallOneArg(join, (PyObject *)cb);
    Py_XDECREF(joined);
    return joined == NULL ? -1 : 0;
}

static int
setup_components(FgBreaker *cb, PyObject *window, PyObject *tracker,
                 PyObject *tripper, PyObject *retry, PyObject *permit,
                 PyObject *listeners, PyObject *shared, int64_t max_half_open)
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
    if (shared != Py_None && window != Py_None
        && fg_window_shape(st, window, &(int){0}, &(int64_t){0}) < 0) {
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
                                      &cb->n_slow_thresholds) < 0
        || fg_tripper_compile(st, cb->tripper) < 0) {
        return -1;
    }
    cb->window_pid = fg_getpid();
    if (shared != Py_None) {
        PyObject *join;
        if (PyObject_GetOptionalAttrString(shared, "_fluxgate_fleet", &join) < 0) {
            return -1;
        }
        if (join != NULL) {
            int rc = attach_fleet(cb, join);
            Py_DECREF(join);
            return rc;
        }
        return attach_shared(cb, shared, max_half_open);
    }
    fg_machine_fuse(cb);
    FgMachineState *ms = fg_machine_state(cb);
    ms->state = FG_CLOSED;
    return fg_wall_time(st, &ms->changed_at);
}

/* Release the components (tp_clear); the rest stays until dealloc. */
static int
clear_components(FgBreaker *cb)
{
    Py_CLEAR(cb->window);
    Py_CLEAR(cb->tracker);
    Py_CLEAR(cb->tripper);
    Py_CLEAR(cb->retry);
    Py_CLEAR(cb->permit);
    Py_CLEAR(cb->listeners);
    return 0;
}

int
fg_machine_setup(FgBreaker *cb, PyObject *window, PyObject *tracker,
                 PyObject *tripper, PyObject *retry, PyObject *permit,
                 PyObject *listeners, PyObject *shared, int64_t max_half_open)
{
    if (setup_components(cb, window, tracker, tripper, retry, permit, listeners,
                         shared, max_half_open) == 0) {
        fg_admission_publish(cb);
        return 0;
    }
    /* Undo a setup that failed half-way: the breaker stays unconfigured
     * (a window of NULL), so that __init__ may be called again. */
    (void)clear_components(cb);
    cb->fused_window_tag = 0;
    PyMem_Free(cb->slow_thresholds);
    cb->slow_thresholds = NULL;
    cb->n_slow_thresholds = 0;
    fg_shared_free(cb->shared);
    cb->shared = NULL;
    return -1;
}

/* ---- the object lifecycle ----------------------------------------------------*/

FgBreaker *
fg_machine_alloc(PyTypeObject *type)
{
    FgState *st = fg_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    FgBreaker *cb = (FgBreaker *)type->tp_alloc(type, 0);
    if (cb != NULL) {
        cb->st = st;
        fg_fork_track(st, &cb->fork_link, (PyObject *)cb, &cb->window);
    }
    return cb;
}

int
fg_machine_tp_traverse(PyObject *self, visitproc visit, void *arg)
{
    FgBreaker *cb = (FgBreaker *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(cb->window);
    Py_VISIT(cb->tracker);
    Py_VISIT(cb->tripper);
    Py_VISIT(cb->retry);
    Py_VISIT(cb->permit);
    Py_VISIT(cb->listeners);
    int visited = fg_shared_traverse(cb->shared, visit, arg);
    if (visited != 0) {
        return visited;
    }
    for (Py_ssize_t i = 0; i < cb->window_ops_len; i++) {
        Py_VISIT(
            cb->window_ops[(cb->window_ops_head + i) % cb->window_ops_cap].record);
    }
    return 0;
}

int
fg_machine_tp_clear(PyObject *self)
{
    return clear_components((FgBreaker *)self);
}

void
fg_machine_tp_dealloc(PyObject *self)
{
    FgBreaker *cb = (FgBreaker *)self;
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    fg_fork_untrack(cb->st, &cb->fork_link);
    if (cb->weakreflist != NULL) {
        PyObject_ClearWeakRefs(self);
    }
    (void)clear_components(cb);
    cb->fused_window_tag = 0;
    PyMem_Free(cb->slow_thresholds);
    PyMem_Free(cb->pending);
    fg_shared_free(cb->shared);
    fg_pywindow_free(cb);
    type->tp_free(self);
    Py_DECREF(type);
}
