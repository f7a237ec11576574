/* Retries: when may an OPEN breaker try HALF_OPEN (SPEC.md section 6).
 *
 * Always, Never, Cooldown and Backoff keep their parameters as C doubles.
 * One evaluation function serves both the breaker's native route
 * (fg_retry_check) and the types' __call__, and computes in the order of the
 * Python expressions in SPEC.md, so results match them bit for bit. */
#include "components.h"

#include <math.h>

/* Every retry starts with this header: whether __init__ ran. */
typedef struct {
    PyObject_HEAD
    char initialised;
} FgRetryBase;

typedef struct {
    PyObject_HEAD
    char initialised;
    double duration;
    double jitter_ratio;
} FgCooldown;

typedef struct {
    PyObject_HEAD
    char initialised;
    double initial;
    double multiplier;
    double max_duration;
    double jitter_ratio;
} FgBackoff;

typedef enum { RETRY_ALWAYS, RETRY_NEVER, RETRY_COOLDOWN, RETRY_BACKOFF, RETRY_OTHER } RetryKind;

/* Which built-in `obj` is an instance of (subclasses included). */
static RetryKind
retry_kind(FgState *st, PyObject *obj, PyTypeObject **builtin)
{
    PyObject *types[] = {st->Always_Type, st->Never_Type, st->Cooldown_Type,
                         st->Backoff_Type};
    for (int kind = RETRY_ALWAYS; kind < RETRY_OTHER; kind++) {
        if (PyObject_TypeCheck(obj, (PyTypeObject *)types[kind])) {
            *builtin = (PyTypeObject *)types[kind];
            return (RetryKind)kind;
        }
    }
    return RETRY_OTHER;
}

/* now - changed_at >= wait * (1 + j), with j drawn only when jittered. */
static int
waited(FgState *st, double wait, double jitter_ratio, double changed_at)
{
    double j = 0.0;
    if (jitter_ratio > 0 && fg_uniform(st, -jitter_ratio, jitter_ratio, &j) < 0) {
        return -1;
    }
    return fg_wall_time_reached(st, changed_at, wait * (1 + j));
}

static int
retry_eval(FgState *st, PyObject *self, RetryKind kind, double changed_at,
           double reopens)
{
    if ((kind == RETRY_COOLDOWN || kind == RETRY_BACKOFF)
        && !((FgRetryBase *)self)->initialised) {
        return fg_not_initialised(self);
    }
    switch (kind) {
    case RETRY_ALWAYS:
        return 1;
    case RETRY_COOLDOWN: {
        FgCooldown *c = (FgCooldown *)self;
        return waited(st, c->duration, c->jitter_ratio, changed_at);
    }
    case RETRY_BACKOFF: {
        FgBackoff *b = (FgBackoff *)self;
        /* pow() gives inf where Python's ** raises OverflowError: the wait
         * then saturates at max_duration (SPEC.md section 6). */
        double grown = b->initial * pow(b->multiplier, reopens);
        double wait = b->max_duration < grown ? b->max_duration : grown;
        return waited(st, wait, b->jitter_ratio, changed_at);
    }
    default:
        return 0;
    }
}

int
fg_retry_check(FgState *st, PyObject *retry, double changed_at, int64_t reopens)
{
    /* The family's kinds are in RetryKind's order. */
    int kind = fg_native_kind(st, FG_FAMILY_RETRY, retry);
    if (kind != FG_PYTHON) {
        return retry_eval(st, retry, (RetryKind)kind, changed_at, (double)reopens);
    }
    PyObject *args[2] = {PyFloat_FromDouble(changed_at), PyLong_FromLongLong(reopens)};
    PyObject *result = NULL;
    if (args[0] != NULL && args[1] != NULL) {
        result = PyObject_Vectorcall(retry, args, 2, NULL);
    }
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    return fg_truth(result);
}

/* ---- __call__ -------------------------------------------------------------*/

/* reopens as the double Python's float ** int would use; an integer too large
 * for a double becomes an infinity of its sign instead of OverflowError. */
static int
reopens_as_double(PyObject *obj, double *out)
{
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "reopens must be an integer, not %.200s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *index;
    long long value;
    int overflow;
    if (fg_index(obj, &value, &overflow, &index) < 0) {
        return -1;
    }
    if (overflow == 0) {
        *out = (double)value;
    }
    else {
        *out = PyLong_AsDouble(index);
        if (*out == -1.0 && PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            *out = overflow > 0 ? INFINITY : -INFINITY;
        }
    }
    Py_DECREF(index);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *
retry_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"changed_at", "reopens", NULL};
    PyObject *changed_at_obj, *reopens_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:__call__", kwlist,
                                     &changed_at_obj, &reopens_obj)) {
        static const char *const keys[] = {
            [RETRY_ALWAYS] = "fluxgate.retries.Always.__call__",
            [RETRY_NEVER] = "fluxgate.retries.Never.__call__",
            [RETRY_COOLDOWN] = "fluxgate.retries.Cooldown.__call__",
            [RETRY_BACKOFF] = "fluxgate.retries.Backoff.__call__",
        };
        FgState *st = fg_state_from_type(Py_TYPE(self));
        PyTypeObject *builtin;
        RetryKind kind = st ? retry_kind(st, self, &builtin) : RETRY_OTHER;
        if (kind != RETRY_OTHER) {
            fg_bind_error(keys[kind], self, args, kwargs);
        }
        else {
            PyErr_Clear(); /* no module state: keep the parser's error */
        }
        return NULL;
    }
    double changed_at, reopens;
    if (fg_as_double(changed_at_obj, "changed_at", &changed_at) < 0
        || reopens_as_double(reopens_obj, &reopens) < 0) {
        return NULL;
    }
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyTypeObject *builtin;
    int verdict = retry_eval(st, self, retry_kind(st, self, &builtin), changed_at,
                             reopens);
    return verdict < 0 ? NULL : PyBool_FromLong(verdict);
}

/* ---- shared type machinery ------------------------------------------------*/

/* Arguments of the same name and meaning in several constructors. */
static int
check_jitter(PyObject *obj, double *out)
{
    if (fg_as_real(obj, "jitter_ratio", out) < 0) {
        return -1;
    }
    if (!(0 <= *out && *out < 1)) {
        PyErr_SetString(PyExc_ValueError, "Jitter ratio must be between 0.0 and 1.0");
        return -1;
    }
    return 0;
}

static PyObject *
retry_reduce(PyObject *self, PyObject *unused)
{
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyTypeObject *builtin;
    RetryKind kind = retry_kind(st, self, &builtin);
    if ((kind == RETRY_COOLDOWN || kind == RETRY_BACKOFF)
        && !((FgRetryBase *)self)->initialised) {
        fg_not_initialised(self);
        return NULL;
    }
    switch (kind) {
    case RETRY_COOLDOWN: {
        FgCooldown *c = (FgCooldown *)self;
        return fg_reduce(self, Py_BuildValue("(dd)", c->duration, c->jitter_ratio),
                         NULL);
    }
    case RETRY_BACKOFF: {
        FgBackoff *b = (FgBackoff *)self;
        return fg_reduce(self,
                         Py_BuildValue("(dddd)", b->initial, b->multiplier,
                                       b->max_duration, b->jitter_ratio),
                         NULL);
    }
    default:
        return fg_reduce(self, PyTuple_New(0), NULL);
    }
}

PyDoc_STRVAR(call_doc,
"__call__($self, /, changed_at, reopens)\n"
"--\n\n"
"Whether an OPEN breaker that entered OPEN at wall-clock time `changed_at`,\n"
"after `reopens` returns from HALF_OPEN, may try HALF_OPEN now.");

static PyMethodDef retry_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))retry_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, call_doc},
    {"__reduce__", retry_reduce, METH_NOARGS,
     "__reduce__($self, /)\n--\n\nHelper for pickle and copy."},
    {NULL, NULL, 0, NULL},
};

/* ---- Always and Never -----------------------------------------------------*/

/* The start of every __init__: the arguments bind (else Python's error for
 * the stub `key`), and __init__ has not run yet. */
static int
init_parse(PyObject *self, PyObject *args, PyObject *kwargs, const char *format,
           char **kwlist, const char *key, PyObject **a, PyObject **b,
           PyObject **c, PyObject **d)
{
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, kwlist, a, b, c, d)) {
        return fg_bind_error(key, self, args, kwargs);
    }
    if (((FgRetryBase *)self)->initialised) {
        return fg_already_initialised(self);
    }
    return 0;
}

static int
always_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {NULL};
    if (init_parse(self, args, kwargs, ":Always", kwlist,
                   "fluxgate.retries.Always.__init__", NULL, NULL, NULL, NULL) < 0) {
        return -1;
    }
    ((FgRetryBase *)self)->initialised = 1;
    return 0;
}

static int
never_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {NULL};
    if (init_parse(self, args, kwargs, ":Never", kwlist,
                   "fluxgate.retries.Never.__init__", NULL, NULL, NULL, NULL) < 0) {
        return -1;
    }
    ((FgRetryBase *)self)->initialised = 1;
    return 0;
}

static PyObject *
no_args_repr(PyObject *self)
{
    return fg_params_repr(self, NULL, NULL, 0);
}

PyDoc_STRVAR(always_doc,
"Always()\n"
"--\n\n"
"Try HALF_OPEN at the first call after the breaker opens.");

PyDoc_STRVAR(never_doc,
"Never()\n"
"--\n\n"
"Never leave OPEN on its own: only a command (reset and the like) does.");

static PyType_Slot always_slots[] = {
    {Py_tp_doc, (void *)always_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, always_init},
    {Py_tp_dealloc, fg_plain_dealloc},
    {Py_tp_traverse, fg_plain_traverse},
    {Py_tp_repr, no_args_repr},
    {Py_tp_call, retry_call},
    {Py_tp_methods, retry_methods},
    {0, NULL},
};

static PyType_Slot never_slots[] = {
    {Py_tp_doc, (void *)never_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, never_init},
    {Py_tp_dealloc, fg_plain_dealloc},
    {Py_tp_traverse, fg_plain_traverse},
    {Py_tp_repr, no_args_repr},
    {Py_tp_call, retry_call},
    {Py_tp_methods, retry_methods},
    {0, NULL},
};

#define RETRY_FLAGS                                                           \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC)

static PyType_Spec always_spec = {
    .name = "fluxgate.retries.Always",
    .basicsize = sizeof(FgRetryBase),
    .flags = RETRY_FLAGS,
    .slots = always_slots,
};

static PyType_Spec never_spec = {
    .name = "fluxgate.retries.Never",
    .basicsize = sizeof(FgRetryBase),
    .flags = RETRY_FLAGS,
    .slots = never_slots,
};

/* ---- Cooldown -------------------------------------------------------------*/

PyDoc_STRVAR(cooldown_doc,
"Cooldown(duration, jitter_ratio=0.0)\n"
"--\n\n"
"Try HALF_OPEN once `duration` seconds have passed since the breaker opened.\n\n"
"With `jitter_ratio` > 0 the wait is scaled by 1 + uniform(-jitter_ratio,\n"
"jitter_ratio), drawn from the random module at each evaluation.");

static int
cooldown_init(FgCooldown *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"duration", "jitter_ratio", NULL};
    PyObject *duration_obj = NULL, *jitter_obj = NULL;
    if (init_parse((PyObject *)self, args, kwargs, "O|O:Cooldown", kwlist,
                   "fluxgate.retries.Cooldown.__init__", &duration_obj,
                   &jitter_obj, NULL, NULL) < 0) {
        return -1;
    }
    double duration, jitter = 0.0;
    if (fg_as_real(duration_obj, "duration", &duration) < 0) {
        return -1;
    }
    if (!(duration > 0)) {
        PyErr_SetString(PyExc_ValueError, "Duration must be greater than zero");
        return -1;
    }
    if (jitter_obj != NULL && check_jitter(jitter_obj, &jitter) < 0) {
        return -1;
    }
    self->duration = duration;
    self->jitter_ratio = jitter;
    self->initialised = 1;
    return 0;
}

static PyObject *
cooldown_repr(FgCooldown *self)
{
    if (!self->initialised) {
        return PyUnicode_FromFormat("<uninitialised %U object>",
                                    fg_qualname((PyObject *)self));
    }
    static const char *const names[] = {"duration", "jitter_ratio"};
    double values[] = {self->duration, self->jitter_ratio};
    return fg_params_repr((PyObject *)self, names, values, 2);
}

static PyMemberDef cooldown_members[] = {
    {"duration", Py_T_DOUBLE, offsetof(FgCooldown, duration), Py_READONLY,
     "Seconds to wait after the breaker opened."},
    {"jitter_ratio", Py_T_DOUBLE, offsetof(FgCooldown, jitter_ratio), Py_READONLY,
     "Largest relative change of the wait drawn at each evaluation."},
    {NULL},
};

static PyType_Slot cooldown_slots[] = {
    {Py_tp_doc, (void *)cooldown_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, cooldown_init},
    {Py_tp_dealloc, fg_plain_dealloc},
    {Py_tp_traverse, fg_plain_traverse},
    {Py_tp_repr, cooldown_repr},
    {Py_tp_call, retry_call},
    {Py_tp_methods, retry_methods},
    {Py_tp_members, cooldown_members},
    {0, NULL},
};

static PyType_Spec cooldown_spec = {
    .name = "fluxgate.retries.Cooldown",
    .basicsize = sizeof(FgCooldown),
    .flags = RETRY_FLAGS,
    .slots = cooldown_slots,
};

/* ---- Backoff --------------------------------------------------------------*/

PyDoc_STRVAR(backoff_doc,
"Backoff(initial, multiplier=2.0, max_duration=300.0, jitter_ratio=0.0)\n"
"--\n\n"
"Try HALF_OPEN after min(initial * multiplier ** reopens, max_duration)\n"
"seconds: the wait grows with each return from HALF_OPEN to OPEN.\n\n"
"With `jitter_ratio` > 0 the wait is scaled by 1 + uniform(-jitter_ratio,\n"
"jitter_ratio), drawn from the random module at each evaluation.");

static int
backoff_init(FgBackoff *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"initial", "multiplier", "max_duration",
                             "jitter_ratio", NULL};
    PyObject *initial_obj = NULL, *multiplier_obj = NULL, *max_obj = NULL,
             *jitter_obj = NULL;
    if (init_parse((PyObject *)self, args, kwargs, "O|OOO:Backoff", kwlist,
                   "fluxgate.retries.Backoff.__init__", &initial_obj,
                   &multiplier_obj, &max_obj, &jitter_obj) < 0) {
        return -1;
    }
    double initial, multiplier = 2.0, max_duration = 300.0, jitter = 0.0;
    if (fg_as_real(initial_obj, "initial", &initial) < 0) {
        return -1;
    }
    if (!(initial > 0)) {
        PyErr_SetString(PyExc_ValueError,
                        "Initial duration must be greater than zero");
        return -1;
    }
    if (multiplier_obj != NULL
        && fg_as_real(multiplier_obj, "multiplier", &multiplier) < 0) {
        return -1;
    }
    if (!(multiplier > 1.0)) {
        PyErr_SetString(PyExc_ValueError, "Multiplier must be greater than 1.0");
        return -1;
    }
    if (max_obj != NULL && fg_as_real(max_obj, "max_duration", &max_duration) < 0) {
        return -1;
    }
    if (!(max_duration >= initial)) {
        PyErr_SetString(PyExc_ValueError,
                        "Max duration must be >= initial duration");
        return -1;
    }
    if (jitter_obj != NULL && check_jitter(jitter_obj, &jitter) < 0) {
        return -1;
    }
    self->initial = initial;
    self->multiplier = multiplier;
    self->max_duration = max_duration;
    self->jitter_ratio = jitter;
    self->initialised = 1;
    return 0;
}

static PyObject *
backoff_repr(FgBackoff *self)
{
    if (!self->initialised) {
        return PyUnicode_FromFormat("<uninitialised %U object>",
                                    fg_qualname((PyObject *)self));
    }
    static const char *const names[] = {"initial", "multiplier", "max_duration",
                                        "jitter_ratio"};
    double values[] = {self->initial, self->multiplier, self->max_duration,
                       self->jitter_ratio};
    return fg_params_repr((PyObject *)self, names, values, 4);
}

static PyMemberDef backoff_members[] = {
    {"initial", Py_T_DOUBLE, offsetof(FgBackoff, initial), Py_READONLY,
     "Seconds to wait after the first opening."},
    {"multiplier", Py_T_DOUBLE, offsetof(FgBackoff, multiplier), Py_READONLY,
     "Factor the wait grows by with each reopening."},
    {"max_duration", Py_T_DOUBLE, offsetof(FgBackoff, max_duration), Py_READONLY,
     "Longest wait in seconds."},
    {"jitter_ratio", Py_T_DOUBLE, offsetof(FgBackoff, jitter_ratio), Py_READONLY,
     "Largest relative change of the wait drawn at each evaluation."},
    {NULL},
};

static PyType_Slot backoff_slots[] = {
    {Py_tp_doc, (void *)backoff_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, backoff_init},
    {Py_tp_dealloc, fg_plain_dealloc},
    {Py_tp_traverse, fg_plain_traverse},
    {Py_tp_repr, backoff_repr},
    {Py_tp_call, retry_call},
    {Py_tp_methods, retry_methods},
    {Py_tp_members, backoff_members},
    {0, NULL},
};

static PyType_Spec backoff_spec = {
    .name = "fluxgate.retries.Backoff",
    .basicsize = sizeof(FgBackoff),
    .flags = RETRY_FLAGS,
    .slots = backoff_slots,
};

int
fg_retries_init(PyObject *module, FgState *st)
{
    if (fg_add_type(module, &always_spec, NULL, &st->Always_Type, 1) < 0
        || fg_add_type(module, &never_spec, NULL, &st->Never_Type, 1) < 0
        || fg_add_type(module, &cooldown_spec, NULL, &st->Cooldown_Type, 1) < 0
        || fg_add_type(module, &backoff_spec, NULL, &st->Backoff_Type, 1) < 0) {
        return -1;
    }
    return 0;
}
