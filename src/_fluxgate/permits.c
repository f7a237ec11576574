/* Permits: which calls a HALF_OPEN breaker admits (SPEC.md section 7).
 *
 * All, Random and RampUp keep their parameters as C doubles. One evaluation
 * function serves both the breaker's native route (fg_permit_check) and the
 * types' __call__, and computes in the order of the Python expressions in
 * SPEC.md, so results match them bit for bit. */
#include "components.h"


/* Every permit starts with this header: whether __init__ ran. */
typedef struct {
    PyObject_HEAD
    char initialised;
} FgPermitBase;

typedef struct {
    PyObject_HEAD
    char initialised;
    double ratio;
} FgRandom;

typedef struct {
    PyObject_HEAD
    char initialised;
    double initial;
    double final;
    double duration;
} FgRampUp;

typedef enum { PERMIT_ALL, PERMIT_RANDOM, PERMIT_RAMP_UP, PERMIT_OTHER } PermitKind;

/* Which built-in `obj` is an instance of (subclasses included). */
static PermitKind
permit_kind(FgState *st, PyObject *obj, PyTypeObject **builtin)
{
    PyObject *types[] = {st->PermitAll_Type, st->Random_Type, st->RampUp_Type};
    for (int kind = PERMIT_ALL; kind < PERMIT_OTHER; kind++) {
        if (PyObject_TypeCheck(obj, (PyTypeObject *)types[kind])) {
            *builtin = (PyTypeObject *)types[kind];
            return (PermitKind)kind;
        }
    }
    return PERMIT_OTHER;
}

/* One random.random() draw below `share`. */
static int
draw_below(FgState *st, double share)
{
    double draw;
    if (fg_random(st, &draw) < 0) {
        return -1;
    }
    return draw < share;
}

static int
permit_eval(FgState *st, PyObject *self, PermitKind kind, double changed_at)
{
    if ((kind == PERMIT_RANDOM || kind == PERMIT_RAMP_UP)
        && !((FgPermitBase *)self)->initialised) {
        return fg_not_initialised(self);
    }
    switch (kind) {
    case PERMIT_ALL:
        return 1;
    case PERMIT_RANDOM:
        return draw_below(st, ((FgRandom *)self)->ratio);
    case PERMIT_RAMP_UP: {
        FgRampUp *r = (FgRampUp *)self;
        double now;
        if (fg_wall_time(st, &now) < 0) {
            return -1;
        }
        double elapsed = now - changed_at, share;
        if (elapsed < 0) {
            /* A clock moved back since HALF_OPEN began (DESIGN.md D6). */
            share = r->initial;
        }
        else if (elapsed >= r->duration) {
            share = r->final;
        }
        else {
            share = r->initial + (r->final - r->initial) * elapsed / r->duration;
        }
        return draw_below(st, share);
    }
    default:
        return 0;
    }
}

int
fg_permit_check(FgState *st, PyObject *permit, double changed_at)
{
    /* The family's kinds are in PermitKind's order. */
    int kind = fg_native_kind(st, FG_FAMILY_PERMIT, permit);
    if (kind != FG_PYTHON) {
        return permit_eval(st, permit, (PermitKind)kind, changed_at);
    }
    PyObject *arg = PyFloat_FromDouble(changed_at);
    if (arg == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallOneArg(permit, arg);
    Py_DECREF(arg);
    return fg_truth(result);
}

/* ---- __call__ -------------------------------------------------------------*/

static PyObject *
permit_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"changed_at", NULL};
    PyObject *changed_at_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:__call__", kwlist,
                                     &changed_at_obj)) {
        static const char *const keys[] = {
            [PERMIT_ALL] = "fluxgate.permits.All.__call__",
            [PERMIT_RANDOM] = "fluxgate.permits.Random.__call__",
            [PERMIT_RAMP_UP] = "fluxgate.permits.RampUp.__call__",
        };
        FgState *st = fg_state_from_type(Py_TYPE(self));
        PyTypeObject *builtin;
        PermitKind kind = st ? permit_kind(st, self, &builtin) : PERMIT_OTHER;
        if (kind != PERMIT_OTHER) {
            fg_bind_error(keys[kind], self, args, kwargs);
        }
        else {
            PyErr_Clear(); /* no module state: keep the parser's error */
        }
        return NULL;
    }
    double changed_at;
    if (fg_as_double(changed_at_obj, "changed_at", &changed_at) < 0) {
        return NULL;
    }
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyTypeObject *builtin;
    int verdict = permit_eval(st, self, permit_kind(st, self, &builtin), changed_at);
    return verdict < 0 ? NULL : PyBool_FromLong(verdict);
}

/* ---- shared type machinery ------------------------------------------------*/

static PyObject *
permit_reduce(PyObject *self, PyObject *unused)
{
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyTypeObject *builtin;
    PermitKind kind = permit_kind(st, self, &builtin);
    if ((kind == PERMIT_RANDOM || kind == PERMIT_RAMP_UP)
        && !((FgPermitBase *)self)->initialised) {
        fg_not_initialised(self);
        return NULL;
    }
    switch (kind) {
    case PERMIT_RANDOM:
        return fg_reduce(self, Py_BuildValue("(d)", ((FgRandom *)self)->ratio),
                         NULL);
    case PERMIT_RAMP_UP: {
        FgRampUp *r = (FgRampUp *)self;
        return fg_reduce(self,
                         Py_BuildValue("(ddd)", r->initial, r->final, r->duration),
                         NULL);
    }
    default:
        return fg_reduce(self, PyTuple_New(0), NULL);
    }
}

PyDoc_STRVAR(call_doc,
"__call__($self, /, changed_at)\n"
"--\n\n"
"Whether a call to a breaker that entered HALF_OPEN at wall-clock time\n"
"`changed_at` is admitted.");

static PyMethodDef permit_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))permit_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, call_doc},
    {"__reduce__", permit_reduce, METH_NOARGS,
     "__reduce__($self, /)\n--\n\nHelper for pickle and copy."},
    {NULL, NULL, 0, NULL},
};

#define PERMIT_FLAGS                                                           \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC)

/* ---- All ------------------------------------------------------------------*/

PyDoc_STRVAR(all_doc,
"All()\n"
"--\n\n"
"Admit every call in HALF_OPEN.");

/* The start of every __init__: the arguments bind (else Python's error for
 * the stub `key`), and __init__ has not run yet. */
static int
init_parse(PyObject *self, PyObject *args, PyObject *kwargs, const char *format,
           char **kwlist, const char *key, PyObject **a, PyObject **b,
           PyObject **c)
{
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, kwlist, a, b, c)) {
        return fg_bind_error(key, self, args, kwargs);
    }
    if (((FgPermitBase *)self)->initialised) {
        return fg_already_initialised(self);
    }
    return 0;
}

static int
all_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {NULL};
    if (init_parse(self, args, kwargs, ":All", kwlist,
                   "fluxgate.permits.All.__init__", NULL, NULL, NULL) < 0) {
        return -1;
    }
    ((FgPermitBase *)self)->initialised = 1;
    return 0;
}

static PyObject *
all_repr(PyObject *self)
{
    return fg_params_repr(self, NULL, NULL, 0);
}

static PyType_Slot all_slots[] = {
    {Py_tp_doc, (void *)all_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, all_init},
    {Py_tp_dealloc, fg_plain_dealloc},
    {Py_tp_traverse, fg_plain_traverse},
    {Py_tp_repr, all_repr},
    {Py_tp_call, permit_call},
    {Py_tp_methods, permit_methods},
    {0, NULL},
};

static PyType_Spec all_spec = {
    .name = "fluxgate.permits.All",
    .basicsize = sizeof(FgPermitBase),
    .flags = PERMIT_FLAGS,
    .slots = all_slots,
};

/* ---- Random ---------------------------------------------------------------*/

PyDoc_STRVAR(random_doc,
"Random(ratio)\n"
"--\n\n"
"Admit each call with probability `ratio`: one random.random() draw per\n"
"call, admitted when below `ratio`.");

static int
random_init(FgRandom *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"ratio", NULL};
    PyObject *ratio_obj = NULL;
    if (init_parse((PyObject *)self, args, kwargs, "O:Random", kwlist,
                   "fluxgate.permits.Random.__init__", &ratio_obj, NULL, NULL) < 0) {
        return -1;
    }
    double ratio;
    if (fg_as_real(ratio_obj, "ratio", &ratio) < 0) {
        return -1;
    }
    if (!(0 <= ratio && ratio <= 1)) {
        PyErr_SetString(PyExc_ValueError, "Ratio must be between 0.0 and 1.0");
        return -1;
    }
    self->ratio = ratio;
    self->initialised = 1;
    return 0;
}

static PyObject *
random_repr(FgRandom *self)
{
    if (!self->initialised) {
        return PyUnicode_FromFormat("<uninitialised %U object>",
                                    fg_qualname((PyObject *)self));
    }
    static const char *const names[] = {"ratio"};
    return fg_params_repr((PyObject *)self, names, &self->ratio, 1);
}

static PyMemberDef random_members[] = {
    {"ratio", Py_T_DOUBLE, offsetof(FgRandom, ratio), Py_READONLY,
     "Probability that a call is admitted."},
    {NULL},
};

static PyType_Slot random_slots[] = {
    {Py_tp_doc, (void *)random_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, random_init},
    {Py_tp_dealloc, fg_plain_dealloc},
    {Py_tp_traverse, fg_plain_traverse},
    {Py_tp_repr, random_repr},
    {Py_tp_call, permit_call},
    {Py_tp_methods, permit_methods},
    {Py_tp_members, random_members},
    {0, NULL},
};

static PyType_Spec random_spec = {
    .name = "fluxgate.permits.Random",
    .basicsize = sizeof(FgRandom),
    .flags = PERMIT_FLAGS,
    .slots = random_slots,
};

/* ---- RampUp ---------------------------------------------------------------*/

PyDoc_STRVAR(ramp_up_doc,
"RampUp(initial, final, duration)\n"
"--\n\n"
"Admit a share of calls growing linearly from `initial` to `final` over\n"
"`duration` seconds after HALF_OPEN began; one random.random() draw per\n"
"call, admitted when below the share.");

static int
ramp_up_init(FgRampUp *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"initial", "final", "duration", NULL};
    PyObject *initial_obj = NULL, *final_obj = NULL, *duration_obj = NULL;
    if (init_parse((PyObject *)self, args, kwargs, "OOO:RampUp", kwlist,
                   "fluxgate.permits.RampUp.__init__", &initial_obj, &final_obj,
                   &duration_obj) < 0) {
        return -1;
    }
    double initial, final, duration;
    if (fg_as_real(initial_obj, "initial", &initial) < 0
        || fg_as_real(final_obj, "final", &final) < 0) {
        return -1;
    }
    if (!(0 < initial && initial <= final && final <= 1)) {
        PyErr_SetString(PyExc_ValueError,
                        "Initial must be > 0.0 and <= final, and final must be <= 1.0");
        return -1;
    }
    if (fg_as_real(duration_obj, "duration", &duration) < 0) {
        return -1;
    }
    if (!(duration > 0)) {
        PyErr_SetString(PyExc_ValueError, "Duration must be greater than zero");
        return -1;
    }
    self->initial = initial;
    self->final = final;
    self->duration = duration;
    self->initialised = 1;
    return 0;
}

static PyObject *
ramp_up_repr(FgRampUp *self)
{
    if (!self->initialised) {
        return PyUnicode_FromFormat("<uninitialised %U object>",
                                    fg_qualname((PyObject *)self));
    }
    static const char *const names[] = {"initial", "final", "duration"};
    double values[] = {self->initial, self->final, self->duration};
    return fg_params_repr((PyObject *)self, names, values, 3);
}

static PyMemberDef ramp_up_members[] = {
    {"initial", Py_T_DOUBLE, offsetof(FgRampUp, initial), Py_READONLY,
     "Share of calls admitted when HALF_OPEN begins."},
    {"final", Py_T_DOUBLE, offsetof(FgRampUp, final), Py_READONLY,
     "Share of calls admitted once the ramp is over."},
    {"duration", Py_T_DOUBLE, offsetof(FgRampUp, duration), Py_READONLY,
     "Seconds the ramp from initial to final takes."},
    {NULL},
};

static PyType_Slot ramp_up_slots[] = {
    {Py_tp_doc, (void *)ramp_up_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, ramp_up_init},
    {Py_tp_dealloc, fg_plain_dealloc},
    {Py_tp_traverse, fg_plain_traverse},
    {Py_tp_repr, ramp_up_repr},
    {Py_tp_call, permit_call},
    {Py_tp_methods, permit_methods},
    {Py_tp_members, ramp_up_members},
    {0, NULL},
};

static PyType_Spec ramp_up_spec = {
    .name = "fluxgate.permits.RampUp",
    .basicsize = sizeof(FgRampUp),
    .flags = PERMIT_FLAGS,
    .slots = ramp_up_slots,
};

int
fg_permits_init(PyObject *module, FgState *st)
{
    /* Added as PermitAll: the trackers already use the short name All. */
    if (fg_add_type(module, &all_spec, NULL, &st->PermitAll_Type, 0) < 0
        || PyModule_AddObjectRef(module, "PermitAll", st->PermitAll_Type) < 0
        || fg_add_type(module, &random_spec, NULL, &st->Random_Type, 1) < 0
        || fg_add_type(module, &ramp_up_spec, NULL, &st->RampUp_Type, 1) < 0) {
        return -1;
    }
    return 0;
}
