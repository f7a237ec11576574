/* The fluxgate._fluxgate module: multi-phase init, module state, and the
 * _bind() hand-over through which the Python layer gives the native core its
 * value classes and logging hooks. */
#include "components.h"

#include <math.h>
#include <string.h>

FgState *
fg_state_from_type(PyTypeObject *type)
{
    PyObject *module = PyType_GetModuleByDef(type, &fluxgate_module_def);
    if (module == NULL) {
        return NULL;
    }
    return fg_state(module);
}

int
fg_add_type(PyObject *module, PyType_Spec *spec, PyObject *base, PyObject **slot,
            int public)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, base);
    if (type == NULL) {
        return -1;
    }
    if (public) {
        const char *dot = strrchr(spec->name, '.');
        const char *short_name = dot ? dot + 1 : spec->name;
        if (PyModule_AddObjectRef(module, short_name, type) < 0) {
            Py_DECREF(type);
            return -1;
        }
    }
    *slot = type;
    return 0;
}

int
fg_as_double(PyObject *obj, const char *what, double *out)
{
    if (PyFloat_CheckExact(obj)) {
        *out = PyFloat_AS_DOUBLE(obj);
        return 0;
    }
    PyNumberMethods *nb = Py_TYPE(obj)->tp_as_number;
    if (nb == NULL || (nb->nb_float == NULL && nb->nb_index == NULL)) {
        PyErr_Format(PyExc_TypeError, "%s must be a real number, not %.200s",
                     what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = PyFloat_AsDouble(obj);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

int
fg_as_real(PyObject *obj, const char *what, double *out)
{
    if (fg_as_double(obj, what, out) == 0) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_OverflowError) || !PyLong_Check(obj)) {
        return -1;
    }
    PyErr_Clear();
    PyObject *zero = PyLong_FromLong(0);
    int negative = zero ? PyObject_RichCompareBool(obj, zero, Py_LT) : -1;
    Py_XDECREF(zero);
    *out = negative ? -HUGE_VAL : HUGE_VAL;
    return negative < 0 ? -1 : 0;
}

int
fg_as_int64(PyObject *obj, const char *what, int64_t *out)
{
    if (PyBool_Check(obj) || !(PyLong_Check(obj) || PyIndex_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "%s must be an integer, not %.200s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *index = PyNumber_Index(obj);
    if (index == NULL) {
        return -1;
    }
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0) {
        PyErr_Format(PyExc_ValueError, "%s is out of range", what);
        return -1;
    }
    *out = (int64_t)value;
    return 0;
}

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

static PyMethodDef module_methods[] = {
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
        || fg_signatures_init(module, st) < 0) {
        return -1;
    }
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
