/* CircuitBreaker: the synchronous surface of the state machine (machine.h):
 * construction, call, call_with_fallback, the decorator and the commands.
 * The protected call itself is run.c's fg_breaker_run. */
#include "breaker.h"

PyDoc_STRVAR(breaker_doc,
"CircuitBreaker(window=None, tracker=None, tripper=None, retry=None,\n"
"               permit=None, listeners=(), *, shared=None)\n"
"--\n\n"
"Synchronous, thread-safe circuit breaker.\n\n"
"Defaults (for None): CountWindow(100), All(), MinRequests(100) &\n"
"FailureRate(0.5), Cooldown(60.0), RampUp(0.1, 1.0, 60.0).");

#define CB "fluxgate.circuitbreaker.CircuitBreaker"

/* __new__ only allocates; __init__ configures, so that a subclass's __init__
 * of any signature can call super().__init__(...). Until then the breaker
 * has no window and refuses to be used. */
static PyObject *
breaker_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    return (PyObject *)fg_machine_alloc(type);
}

static int
breaker_init(FgBreaker *cb, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "tracker", "tripper", "retry",
                             "permit", "listeners", "shared", NULL};
    PyObject *window = Py_None, *tracker = Py_None, *tripper = Py_None,
             *retry = Py_None, *permit = Py_None, *listeners = NULL,
             *shared = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOOOO$O:CircuitBreaker",
                                     kwlist, &window, &tracker, &tripper, &retry,
                                     &permit, &listeners, &shared)) {
        return fg_bind_error(CB ".__init__", (PyObject *)cb, args, kwargs);
    }
    if (cb->window != NULL) {
        return fg_already_initialised((PyObject *)cb);
    }
    PyObject *no_listeners = PyTuple_New(0);
    if (no_listeners == NULL) {
        return -1;
    }
    int rc = fg_machine_setup(cb, window, tracker, tripper, retry, permit,
                              listeners ? listeners : no_listeners, shared, 0);
    Py_DECREF(no_listeners);
    return rc;
}

/* 0 for a configured breaker; -1 with TypeError for one whose __init__
 * never ran. */
static inline int
check_ready(FgBreaker *cb)
{
    if (cb->window == NULL) {
        return fg_not_initialised((PyObject *)cb);
    }
    return 0;
}

/* ---- Python-facing methods -----------------------------------------------*/

PyDoc_STRVAR(call_doc,
"call($self, func, /, *args, **kwargs)\n"
"--\n\n"
"Run func(*args, **kwargs) under the breaker's protection.");

static PyObject *
breaker_call(FgBreaker *cb, PyObject *const *args, size_t nargsf,
             PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "call() missing required positional argument: 'func'");
        return fg_bind_error_fast(CB ".call", (PyObject *)cb, args, nargs, kwnames);
    }
    if (check_ready(cb) < 0) {
        return NULL;
    }
    return fg_breaker_run(cb, args[0], args + 1,
                          (size_t)(nargs - 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                          kwnames);
}

PyDoc_STRVAR(call_with_fallback_doc,
"call_with_fallback($self, func, fallback, /, *args, **kwargs)\n"
"--\n\n"
"Run func(*args, **kwargs) under protection; any Exception, a refused call\n"
"included, is passed to fallback, whose result is returned instead.");

static PyObject *
breaker_call_with_fallback(FgBreaker *cb, PyObject *const *args, size_t nargsf,
                           PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError,
                        "call_with_fallback() missing required positional "
                        "arguments");
        return fg_bind_error_fast(CB ".call_with_fallback", (PyObject *)cb, args,
                                  nargs, kwnames);
    }
    if (check_ready(cb) < 0) {
        return NULL;
    }
    PyObject *result =
        fg_breaker_run(cb, args[0], args + 2,
                       (size_t)(nargs - 2) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                       kwnames);
    return result != NULL ? result : fg_apply_fallback(args[1]);
}

PyDoc_STRVAR(info_doc,
"info($self, /)\n"
"--\n\n"
"The breaker's state, when it last changed, its reopens and its metrics.");

static PyObject *
breaker_info(FgBreaker *cb, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    if (fg_check_no_args(CB ".info", (PyObject *)cb, args, nargs, kwnames) < 0
        || check_ready(cb) < 0) {
        return NULL;
    }
    return fg_machine_info(cb);
}

static PyObject *
command(FgBreaker *cb, FgStateId target, const char *key, PyObject *const *args,
        Py_ssize_t nargs, PyObject *kwnames)
{
    if (fg_check_no_args(key, (PyObject *)cb, args, nargs, kwnames) < 0
        || check_ready(cb) < 0
        || fg_machine_transition(cb, NULL, target, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

#define COMMAND(fn, target, name)                                             \
    static PyObject *fn(FgBreaker *cb, PyObject *const *args,                 \
                        Py_ssize_t nargs, PyObject *kwnames)                  \
    {                                                                         \
        return command(cb, (target), CB "." name, args, nargs, kwnames);      \
    }

COMMAND(breaker_reset, FG_CLOSED, "reset")
COMMAND(breaker_disable, FG_DISABLED, "disable")
COMMAND(breaker_metrics_only, FG_METRICS_ONLY, "metrics_only")
COMMAND(breaker_force_open, FG_FORCED_OPEN, "force_open")

/* functools.partial(cb, fallback=fallback): what @cb() and @cb(fallback=f)
 * return. */
static PyObject *
make_decorator(FgBreaker *cb, PyObject *fallback)
{
    PyObject *functools = PyImport_ImportModule("functools");
    if (functools == NULL) {
        return NULL;
    }
    PyObject *partial = PyObject_GetAttrString(functools, "partial");
    Py_DECREF(functools);
    if (partial == NULL) {
        return NULL;
    }
    PyObject *decorator = NULL;
    PyObject *args = PyTuple_Pack(1, (PyObject *)cb);
    PyObject *kwargs = args ? Py_BuildValue("{sO}", "fallback", fallback) : NULL;
    if (kwargs != NULL) {
        decorator = PyObject_Call(partial, args, kwargs);
    }
    Py_DECREF(partial);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return decorator;
}

/* DESIGN.md D9: a synchronous breaker cannot protect an async function. */
static int
refuse_coroutine_function(PyObject *func)
{
    PyObject *inspect = PyImport_ImportModule("inspect");
    if (inspect == NULL) {
        return -1;
    }
    PyObject *is_async =
        PyObject_CallMethod(inspect, "iscoroutinefunction", "O", func);
    Py_DECREF(inspect);
    if (is_async == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(is_async);
    Py_DECREF(is_async);
    if (truth > 0) {
        PyErr_Format(PyExc_TypeError,
                     "CircuitBreaker cannot protect the async function %R; "
                     "use AsyncCircuitBreaker",
                     func);
        return -1;
    }
    return truth;
}

/* cb(func=None, *, fallback=None): a protected function, or a decorator. */
static PyObject *
breaker_decorate(FgBreaker *cb, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"func", "fallback", NULL};
    PyObject *func = Py_None, *fallback = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$O:__call__", kwlist,
                                     &func, &fallback)) {
        fg_bind_error(CB ".__call__", (PyObject *)cb, args, kwargs);
        return NULL;
    }
    if (check_ready(cb) < 0) {
        return NULL;
    }
    if (fallback != Py_None && fg_require_callable(fallback, "fallback") < 0) {
        return NULL;
    }
    if (func == Py_None) {
        return make_decorator(cb, fallback);
    }
    if (fg_require_callable(func, "func") < 0 || refuse_coroutine_function(func) < 0) {
        return NULL;
    }
    return fg_protected_new(cb->st, cb, func, fallback == Py_None ? NULL : fallback);
}

static PyObject *
breaker_repr(FgBreaker *cb)
{
    if (cb->window == NULL) {
        return PyUnicode_FromFormat("<uninitialised %s object at %p>",
                                    Py_TYPE(cb)->tp_name, cb);
    }
    FgMachineState now;
    fg_machine_snapshot(cb, &now);
    return PyUnicode_FromFormat("<%s state=%R at %p>", Py_TYPE(cb)->tp_name,
                                cb->st->state_names[now.state], cb);
}

static PyMethodDef breaker_methods[] = {
    {"call", (PyCFunction)(void (*)(void))breaker_call,
     METH_FASTCALL | METH_KEYWORDS, call_doc},
    {"call_with_fallback", (PyCFunction)(void (*)(void))breaker_call_with_fallback,
     METH_FASTCALL | METH_KEYWORDS, call_with_fallback_doc},
    {"info", (PyCFunction)(void (*)(void))breaker_info, METH_FASTCALL | METH_KEYWORDS, info_doc},
    {"reset", (PyCFunction)(void (*)(void))breaker_reset, METH_FASTCALL | METH_KEYWORDS,
     "reset($self, /)\n--\n\nMove to CLOSED and clear the metrics."},
    {"disable", (PyCFunction)(void (*)(void))breaker_disable, METH_FASTCALL | METH_KEYWORDS,
     "disable($self, /)\n--\n\nMove to DISABLED: calls run untracked."},
    {"metrics_only", (PyCFunction)(void (*)(void))breaker_metrics_only, METH_FASTCALL | METH_KEYWORDS,
     "metrics_only($self, /)\n--\n\nMove to METRICS_ONLY: calls are recorded "
     "but never trip the breaker."},
    {"force_open", (PyCFunction)(void (*)(void))breaker_force_open, METH_FASTCALL | METH_KEYWORDS,
     "force_open($self, /)\n--\n\nMove to FORCED_OPEN: every call is refused."},
    {"__call__", (PyCFunction)(void (*)(void))breaker_decorate,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST,
     "__call__($self, /, func=None, *, fallback=None)\n--\n\n"
     "Protect func, or return a decorator that does (with an optional "
     "fallback)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef breaker_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(FgBreaker, weakreflist),
     Py_READONLY, NULL},
    /* Private, as on AsyncCircuitBreaker: what a registry closes on eviction. */
    {"_listeners", Py_T_OBJECT_EX, offsetof(FgBreaker, listeners), Py_READONLY,
     NULL},
    {NULL},
};

static PyType_Slot breaker_slots[] = {
    {Py_tp_doc, (void *)breaker_doc},
    {Py_tp_new, breaker_new},
    {Py_tp_init, breaker_init},
    {Py_tp_dealloc, fg_machine_tp_dealloc},
    {Py_tp_traverse, fg_machine_tp_traverse},
    {Py_tp_clear, fg_machine_tp_clear},
    {Py_tp_call, breaker_decorate},
    {Py_tp_repr, breaker_repr},
    {Py_tp_methods, breaker_methods},
    {Py_tp_members, breaker_members},
    {0, NULL},
};

static PyType_Spec breaker_spec = {
    .name = "fluxgate.circuitbreaker.CircuitBreaker",
    .basicsize = sizeof(FgBreaker),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = breaker_slots,
};

int
fg_breaker_init(PyObject *module, FgState *st)
{
    if ((st->msg_open = PyUnicode_InternFromString("Circuit breaker is open")) == NULL
        || (st->msg_half_open = PyUnicode_InternFromString(
                "Circuit breaker is half-open, not executing")) == NULL
        || (st->msg_forced_open =
                PyUnicode_InternFromString("Circuit breaker is forced open")) == NULL) {
        return -1;
    }
    if (fg_add_type(module, &breaker_spec, NULL, &st->CircuitBreaker_Type, 1) < 0
        || fg_machine_create_defaults(st) < 0) {
        return -1;
    }
    if (fg_protected_init(module, st) < 0) {
        return -1;
    }
    return fg_async_core_init(module, st);
}
