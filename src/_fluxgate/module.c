/* The fluxgate._fluxgate module: multi-phase init, the lifecycle of the
 * module state, and the _bind() hand-over through which the Python layer
 * gives the native core its value classes and logging hooks. The top of the
 * extension: it starts every unit, and no unit calls into it (state access
 * and type registration are in state.c). */
#include "fluxgate.h"
#include "shared.h"
#include "fleet.h"
#include "fork.h"

/* ---- _bind ---------------------------------------------------------------*/

PyDoc_STRVAR(bind_doc,
"_bind($module, /, *, record, call_context, signal, info,\n"
"      report_listener_error, report_async_listener)\n"
"--\n\n"
"Hand the Python layer's value classes and logging hooks to the native core.\n"
"Called once by fluxgate._values; not part of the public API.");

static PyObject *
module_bind(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"record", "call_context", "signal", "info",
                             "report_listener_error", "report_async_listener",
                             NULL};
    PyObject *record, *call_context, *signal, *info, *report_error,
        *report_async;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOO:_bind", kwlist,
                                     &record, &call_context, &signal, &info,
                                     &report_error, &report_async)) {
        return NULL;
    }
    FgState *st = fg_state(module);
    Py_XSETREF(st->Record, Py_NewRef(record));
    Py_XSETREF(st->CallContext, Py_NewRef(call_context));
    Py_XSETREF(st->Signal, Py_NewRef(signal));
    Py_XSETREF(st->CircuitBreakerInfo, Py_NewRef(info));
    Py_XSETREF(st->report_listener_error, Py_NewRef(report_error));
    Py_XSETREF(st->report_async_listener, Py_NewRef(report_async));
    static const char *const signal_fields[] = {"old_state", "new_state", "timestamp"};
    static const char *const context_fields[] = {"metric", "state",
                                                 "consecutive_failures"};
    static const char *const info_fields[] = {"state", "changed_at", "reopens",
                                              "metrics"};
    if (fg_value_layout(signal, signal_fields, 3, &st->signal_layout) < 0
        || fg_value_layout(call_context, context_fields, 3,
                           &st->call_context_layout) < 0
        || fg_value_layout(info, info_fields, 4, &st->info_layout) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The clock unit as the breaker sees it, for tests and the benchmarks. */
static PyObject *
module_monotonic(PyObject *module, PyObject *unused)
{
    double now;
    return fg_perf_counter(fg_state(module), &now) < 0 ? NULL
                                                       : PyFloat_FromDouble(now);
}

static PyObject *
module_wall_time(PyObject *module, PyObject *unused)
{
    double now;
    return fg_wall_time(fg_state(module), &now) < 0 ? NULL
                                                    : PyFloat_FromDouble(now);
}

static PyObject *
module_bucket_time(PyObject *module, PyObject *unused)
{
    double now;
    return fg_bucket_time(fg_state(module), 0, &now) < 0 ? NULL
                                                      : PyFloat_FromDouble(now);
}

/* The second a TimeWindow takes for a wall-clock reading of `ns`. */
static PyObject *
module_second_of_ns(PyObject *module, PyObject *arg)
{
    long long ns = PyLong_AsLongLong(arg);
    if (ns == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyFloat_FromDouble(fg_second_of_ns((int64_t)ns));
}

/* Whether the monotonic clock is read from the time-stamp counter (tsc.h):
 * (usable, nanoseconds per tick), the rate 0.0 while it is being measured. */
static PyObject *
module_counter_clock(PyObject *module, PyObject *unused)
{
    FgTsc *tsc = &fg_state(module)->tsc;
#if FG_HAVE_TSC
    double ns_per_tick;
    __atomic_load(&tsc->ns_per_tick, &ns_per_tick, __ATOMIC_RELAXED);
#else
    double ns_per_tick = 0.0;
#endif
    return Py_BuildValue("(Od)", tsc->usable ? Py_True : Py_False, ns_per_tick);
}

static PyMethodDef module_methods[] = {
    {"_bucket_time", module_bucket_time, METH_NOARGS,
     "_bucket_time($module, /)\n--\n\nWall-clock seconds as a TimeWindow "
     "reads them to choose a bucket."},
    {"_second_of_ns", module_second_of_ns, METH_O,
     "_second_of_ns($module, ns, /)\n--\n\nThe second a TimeWindow files a "
     "wall-clock reading of ns nanoseconds under: trunc(ns / 1e9) in "
     "doubles."},
    {"_counter_clock", module_counter_clock, METH_NOARGS,
     "_counter_clock($module, /)\n--\n\n(usable, ns_per_tick): whether the "
     "monotonic clock is read from the CPU's time-stamp counter, and its "
     "measured rate (0.0 until measured)."},
    {"_monotonic", module_monotonic, METH_NOARGS,
     "_monotonic($module, /)\n--\n\nSeconds of the monotonic clock the breaker "
     "times calls with."},
    {"_wall_time", module_wall_time, METH_NOARGS,
     "_wall_time($module, /)\n--\n\nWall-clock seconds as the breaker reads them."},
    {"_bind", (PyCFunction)(void (*)(void))module_bind,
     METH_VARARGS | METH_KEYWORDS, bind_doc},
    {NULL, NULL, 0, NULL},
};

/* ---- module lifecycle ----------------------------------------------------*/

static int
intern_strings(FgState *st)
{
#define FG_INTERN(field, text)                                                \
    if ((st->field = PyUnicode_InternFromString(text)) == NULL) {             \
        return -1;                                                            \
    }
    FG_INTERN(s_perf_counter, "perf_counter")
    FG_INTERN(s_time, "time")
    FG_INTERN(s_random, "random")
    FG_INTERN(s_uniform, "uniform")
    FG_INTERN(s_success, "success")
    FG_INTERN(s_duration, "duration")
    FG_INTERN(s_slow_at, "slow_at")
    FG_INTERN(s_timestamp, "timestamp")
    FG_INTERN(s_record, "record")
    FG_INTERN(s_get_metric, "get_metric")
    FG_INTERN(s_reset, "reset")
    FG_INTERN(s_call, "__call__")
    FG_INTERN(s_close, "close")
    FG_INTERN(s_metric, "metric")
    FG_INTERN(s_state, "state")
    FG_INTERN(s_consecutive_failures, "consecutive_failures")
    FG_INTERN(s_status_code, "status_code")
    FG_INTERN(s_url, "url")
    FG_INTERN(s_uri_reference, "_uri_reference")
    FG_INTERN(s_make, "_make")
    FG_INTERN(s_call_method, "call")
    FG_INTERN(s_response, "response")
#undef FG_INTERN
    static const char *const names[FG_STATE_COUNT] = {
        "closed", "open", "half_open", "metrics_only", "disabled", "forced_open",
    };
    for (int i = 0; i < FG_STATE_COUNT; i++) {
        st->state_names[i] = PyUnicode_InternFromString(names[i]);
        if (st->state_names[i] == NULL) {
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(call_not_permitted_doc,
"Raised when a call is not permitted due to circuit breaker state.");

static int
module_exec(PyObject *module)
{
    FgState *st = fg_state(module);
    if (intern_strings(st) < 0) {
        return -1;
    }
    st->CallNotPermittedError = PyErr_NewExceptionWithDoc(
        "fluxgate.errors.CallNotPermittedError", call_not_permitted_doc,
        PyExc_Exception, NULL);
    if (st->CallNotPermittedError == NULL
        || PyModule_AddObjectRef(module, "CallNotPermittedError",
                                 st->CallNotPermittedError) < 0) {
        return -1;
    }
    if (fg_clock_init(module, st) < 0 || fg_metric_init(module, st) < 0
        || fg_windows_init(module, st) < 0 || fg_trackers_init(module, st) < 0
        || fg_trippers_init(module, st) < 0 || fg_retries_init(module, st) < 0
        || fg_permits_init(module, st) < 0 || fg_breaker_init(module, st) < 0
        || fg_signatures_init(module, st) < 0
        || fg_status_check_init(module, st) < 0
        || fg_registry_init(module, st) < 0
        || fg_transport_init(module, st) < 0
        || PyModule_AddFunctions(module, fg_shared_functions) < 0
        || PyModule_AddFunctions(module, fg_fleet_functions) < 0
        || PyModule_AddFunctions(module, fg_fork_functions) < 0) {
        return -1;
    }
    st->process_token = fg_process_token(fg_getpid());
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    FgState *st = fg_state(module);
#define FG_VISIT_FIELD(name) Py_VISIT(st->name);
    FG_STATE_OBJECTS(FG_VISIT_FIELD)
#undef FG_VISIT_FIELD
    return 0;
}

static int
module_clear(PyObject *module)
{
    FgState *st = fg_state(module);
#define FG_CLEAR_FIELD(name) Py_CLEAR(st->name);
    FG_STATE_OBJECTS(FG_CLEAR_FIELD)
#undef FG_CLEAR_FIELD
    for (int i = 0; i < FG_STATE_COUNT; i++) {
        Py_CLEAR(st->state_names[i]);
    }
    return 0;
}

static void
module_free(void *module)
{
    (void)module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, (void *)module_exec},
    FG_MODULE_SLOT_INTERPRETERS
    FG_MODULE_SLOT_GIL
    {0, NULL},
};

PyModuleDef fluxgate_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fluxgate._fluxgate",
    .m_doc = "Native core of fluxgate: windows, metrics, components and the "
             "circuit breaker state machine.",
    .m_size = sizeof(FgState),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__fluxgate(void)
{
    return PyModuleDef_Init(&fluxgate_module_def);
}
