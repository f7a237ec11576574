/* Trackers: which exceptions count as failures (SPEC.md section 4).
 *
 * All, TypeOf and Custom are public and subclassable; _And, _Or and _Not
 * are the private composites that &, | and ~ build. Every node has one C
 * evaluation function; the breaker reaches it through fg_tracker_check,
 * which calls a node through Python only when a direct call would run
 * Python code (fg_native_kind, DESIGN.md D4). Python callers reach the same
 * evaluation through tp_call and a "__call__" method carrying the text
 * signature.
 *
 * TypeOf and Custom take their arguments in __init__, as the pure-Python
 * classes did, so a subclass may give its own __init__ a different
 * signature. Their field is set once, under the object's critical section
 * (__init__ called again raises TypeError), and read under it. */
#include "components.h"

#include <stddef.h>

/* Every node but All is an FgComposite (composite.c), whose kind field the
 * trackers leave unused: _And and _Or hold their two operands, _Not its
 * operand as `left`; TypeOf keeps its tuple of classes and Custom its
 * function as `left` (VALUE). */
#define VALUE(self) (((FgComposite *)(self))->left)

typedef int (*EvalFn)(FgState *st, PyObject *self, PyObject *exception);

static int
not_initialised(PyObject *self)
{
    PyErr_Format(PyExc_TypeError, "%s object is not initialised",
                 fg_type_name(self));
    return -1;
}

static PyObject *
get_value(PyObject *self)
{
    PyObject *value;
    Py_BEGIN_CRITICAL_SECTION(self);
    value = Py_XNewRef(VALUE(self));
    Py_END_CRITICAL_SECTION();
    return value;
}

/* Sets the field once: -1 with TypeError when __init__ already ran. */
static int
set_value(PyObject *self, PyObject *value)
{
    int done = 0;
    Py_BEGIN_CRITICAL_SECTION(self);
    if (VALUE(self) == NULL) {
        VALUE(self) = Py_NewRef(value);
        done = 1;
    }
    Py_END_CRITICAL_SECTION();
    return done ? 0 : fg_already_initialised(self);
}

/* ---- evaluation ----------------------------------------------------------*/

static int
all_eval(FgState *st, PyObject *self, PyObject *exception)
{
    return 1;
}

static int
typeof_eval(FgState *st, PyObject *self, PyObject *exception)
{
    PyObject *types = get_value(self);
    if (types == NULL) {
        return not_initialised(self);
    }
    int result = PyObject_IsInstance(exception, types);
    Py_DECREF(types);
    return result;
}

static int
custom_eval(FgState *st, PyObject *self, PyObject *exception)
{
    PyObject *func = get_value(self);
    if (func == NULL) {
        return not_initialised(self);
    }
    PyObject *verdict = PyObject_CallOneArg(func, exception);
    Py_DECREF(func);
    return fg_truth(verdict);
}

/* The composites are immutable; a field is NULL only after the garbage
 * collector cleared the object. The right operand is asked only when the
 * left one answered `undecided` (1 for &, 0 for |), as `and`/`or` do. */
static int
pair_eval(FgState *st, PyObject *self, PyObject *exception, int undecided)
{
    FgComposite *pair = (FgComposite *)self;
    if (pair->left == NULL) {
        return not_initialised(self);
    }
    if (Py_EnterRecursiveCall(" while evaluating a tracker")) {
        return -1;
    }
    int result = fg_tracker_check(st, pair->left, exception);
    if (result == undecided) {
        result = fg_tracker_check(st, pair->right, exception);
    }
    Py_LeaveRecursiveCall();
    return result;
}

static int
and_eval(FgState *st, PyObject *self, PyObject *exception)
{
    return pair_eval(st, self, exception, 1);
}

static int
or_eval(FgState *st, PyObject *self, PyObject *exception)
{
    return pair_eval(st, self, exception, 0);
}

static int
not_eval(FgState *st, PyObject *self, PyObject *exception)
{
    PyObject *operand = ((FgComposite *)self)->left;
    if (operand == NULL) {
        return not_initialised(self);
    }
    if (Py_EnterRecursiveCall(" while evaluating a tracker")) {
        return -1;
    }
    int result = fg_tracker_check(st, operand, exception);
    Py_LeaveRecursiveCall();
    return result < 0 ? -1 : !result;
}

/* How each built-in is evaluated, in the order of the tracker family's
 * kinds (component.c): All, TypeOf, Custom, _And, _Or, _Not. */
static const EvalFn native_evals[] = {all_eval, typeof_eval, custom_eval,
                                      and_eval, or_eval, not_eval};

int
fg_tracker_check(FgState *st, PyObject *tracker, PyObject *exception)
{
    int kind = fg_native_kind(st, FG_FAMILY_TRACKER, tracker);
    if (kind != FG_PYTHON) {
        return native_evals[kind](st, tracker, exception);
    }
    return fg_truth(PyObject_CallOneArg(tracker, exception));
}

/* ---- calling from Python -------------------------------------------------*/

static PyObject *
call_with(EvalFn eval, const char *key, PyObject *self, PyObject *args,
          PyObject *kwargs)
{
    static char *kwlist[] = {"exception", NULL};
    PyObject *exception;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:__call__", kwlist,
                                     &exception)) {
        if (key != NULL) {
            fg_bind_error(key, self, args, kwargs);
        }
        return NULL;
    }
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    int result = eval(st, self, exception);
    return result < 0 ? NULL : PyBool_FromLong(result);
}

#define FG_DEFINE_CALL(prefix, key)                                           \
    static PyObject *prefix##_call(PyObject *self, PyObject *args,            \
                                   PyObject *kwargs)                          \
    {                                                                         \
        return call_with(prefix##_eval, (key), self, args, kwargs);           \
    }
FG_DEFINE_CALL(all, "fluxgate.trackers.All.__call__")
FG_DEFINE_CALL(typeof, "fluxgate.trackers.TypeOf.__call__")
FG_DEFINE_CALL(custom, "fluxgate.trackers.Custom.__call__")
FG_DEFINE_CALL(and, NULL)
FG_DEFINE_CALL(or, NULL)
FG_DEFINE_CALL(not, NULL)
#undef FG_DEFINE_CALL

#define FG_CALL_DOC                                                           \
    "__call__($self, /, exception)\n--\n\n"                                   \
    "True when `exception` counts as a failure."

/* ---- composition ---------------------------------------------------------*/

static PyObject *
tracker_and(PyObject *left, PyObject *right)
{
    return fg_combine(left, right, offsetof(FgState, TrackerAnd_Type), 0);
}

static PyObject *
tracker_or(PyObject *left, PyObject *right)
{
    return fg_combine(left, right, offsetof(FgState, TrackerOr_Type), 0);
}

static PyObject *
tracker_invert(PyObject *self)
{
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    if (Py_IS_TYPE(self, (PyTypeObject *)st->TrackerNot_Type)
        && ((FgComposite *)self)->left != NULL) {
        return Py_NewRef(((FgComposite *)self)->left); /* ~~t is t */
    }
    return fg_composite_new((PyTypeObject *)st->TrackerNot_Type, 0, self, NULL);
}

#define FG_REDUCE_DOC "__reduce__($self, /)\n--\n\nHelper for pickle and copy."

/* ---- All -----------------------------------------------------------------*/

PyDoc_STRVAR(all_doc,
"All()\n"
"--\n\n"
"Track every exception: each one the protected call raises is a failure.");

/* All holds only whether __init__ ran. */
typedef struct {
    PyObject_HEAD
    char initialised;
} TrackerAll;

static int
all_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, ":All", kwlist)) {
        return fg_bind_error("fluxgate.trackers.All.__init__", self, args, kwargs);
    }
    if (((TrackerAll *)self)->initialised) {
        return fg_already_initialised(self);
    }
    ((TrackerAll *)self)->initialised = 1;
    return 0;
}

static PyObject *
all_repr(PyObject *self)
{
    return PyUnicode_FromFormat("%s()", fg_type_name(self));
}

static PyObject *
all_reduce(PyObject *self, PyObject *unused)
{
    return fg_reduce(self, PyTuple_New(0), NULL);
}

static PyMethodDef all_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))all_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, FG_CALL_DOC},
    {"__reduce__", all_reduce, METH_NOARGS, FG_REDUCE_DOC},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot all_slots[] = {
    {Py_tp_doc, (void *)all_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, all_init},
    {Py_tp_dealloc, fg_plain_dealloc},
    {Py_tp_traverse, fg_plain_traverse},
    {Py_tp_call, all_call},
    {Py_tp_repr, all_repr},
    {Py_tp_methods, all_methods},
    {Py_nb_and, tracker_and},
    {Py_nb_or, tracker_or},
    {Py_nb_invert, tracker_invert},
    {0, NULL},
};

static PyType_Spec all_spec = {
    .name = "fluxgate.trackers.All",
    .basicsize = sizeof(TrackerAll),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = all_slots,
};

/* ---- TypeOf --------------------------------------------------------------*/

PyDoc_STRVAR(typeof_doc,
"TypeOf(*types)\n"
"--\n\n"
"Track exceptions that are instances of any of the given exception classes.");

static int
typeof_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "TypeOf() takes no keyword arguments");
        return fg_bind_error("fluxgate.trackers.TypeOf.__init__", self, args, kwargs);
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "At least one exception type is required");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(args, i);
        if (!PyExceptionClass_Check(item)) {
            PyErr_Format(PyExc_TypeError,
                         "TypeOf() argument %zd must be an exception class, not %R",
                         i + 1, item);
            return -1;
        }
    }
    return set_value(self, args);
}

/* A class as code names it: `ValueError`, `package.module.Error`. */
static PyObject *
class_name(PyObject *cls)
{
    PyObject *module = PyObject_GetAttrString(cls, "__module__");
    if (module == NULL) {
        return NULL;
    }
    PyObject *qualname = PyObject_GetAttrString(cls, "__qualname__");
    PyObject *name = NULL;
    if (qualname != NULL) {
        if (PyUnicode_Check(module)
            && PyUnicode_CompareWithASCIIString(module, "builtins") == 0) {
            name = Py_NewRef(qualname);
        }
        else {
            name = PyUnicode_FromFormat("%S.%S", module, qualname);
        }
        Py_DECREF(qualname);
    }
    Py_DECREF(module);
    return name;
}

static PyObject *
typeof_repr(PyObject *self)
{
    PyObject *types = get_value(self);
    if (types == NULL) {
        return PyUnicode_FromFormat("<uninitialised %s object>",
                                    fg_type_name(self));
    }
    Py_ssize_t n = PyTuple_GET_SIZE(types);
    PyObject *names = PyTuple_New(n);
    for (Py_ssize_t i = 0; names != NULL && i < n; i++) {
        PyObject *name = class_name(PyTuple_GET_ITEM(types, i));
        if (name == NULL) {
            Py_CLEAR(names);
            break;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
    Py_DECREF(types);
    if (names == NULL) {
        return NULL;
    }
    PyObject *sep = PyUnicode_FromString(", ");
    PyObject *joined = sep ? PyUnicode_Join(sep, names) : NULL;
    Py_XDECREF(sep);
    Py_DECREF(names);
    if (joined == NULL) {
        return NULL;
    }
    PyObject *repr = PyUnicode_FromFormat("%s(%U)", fg_type_name(self), joined);
    Py_DECREF(joined);
    return repr;
}

static PyObject *
typeof_reduce(PyObject *self, PyObject *unused)
{
    PyObject *types = get_value(self);
    if (types == NULL) {
        not_initialised(self);
        return NULL;
    }
    return fg_reduce(self, types, NULL);
}

static PyMethodDef typeof_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))typeof_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, FG_CALL_DOC},
    {"__reduce__", typeof_reduce, METH_NOARGS, FG_REDUCE_DOC},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot typeof_slots[] = {
    {Py_tp_doc, (void *)typeof_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, typeof_init},
    {Py_tp_dealloc, fg_composite_dealloc},
    {Py_tp_traverse, fg_composite_traverse},
    {Py_tp_clear, fg_composite_clear},
    {Py_tp_call, typeof_call},
    {Py_tp_repr, typeof_repr},
    {Py_tp_methods, typeof_methods},
    {Py_nb_and, tracker_and},
    {Py_nb_or, tracker_or},
    {Py_nb_invert, tracker_invert},
    {0, NULL},
};

static PyType_Spec typeof_spec = {
    .name = "fluxgate.trackers.TypeOf",
    .basicsize = sizeof(FgComposite),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = typeof_slots,
};

/* ---- Custom --------------------------------------------------------------*/

PyDoc_STRVAR(custom_doc,
"Custom(func)\n"
"--\n\n"
"Track the exceptions for which `func(exception)` is true.");

static int
custom_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"func", NULL};
    PyObject *func;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Custom", kwlist, &func)) {
        return fg_bind_error("fluxgate.trackers.Custom.__init__", self, args, kwargs);
    }
    if (!PyCallable_Check(func)) {
        PyErr_Format(PyExc_TypeError,
                     "Custom() argument 'func' must be callable, not %.200s",
                     Py_TYPE(func)->tp_name);
        return -1;
    }
    return set_value(self, func);
}

static PyObject *
custom_repr(PyObject *self)
{
    PyObject *func = get_value(self);
    if (func == NULL) {
        return PyUnicode_FromFormat("<uninitialised %s object>",
                                    fg_type_name(self));
    }
    PyObject *repr = PyUnicode_FromFormat("%s(%R)", fg_type_name(self), func);
    Py_DECREF(func);
    return repr;
}

static PyObject *
custom_reduce(PyObject *self, PyObject *unused)
{
    PyObject *func = get_value(self);
    if (func == NULL) {
        not_initialised(self);
        return NULL;
    }
    PyObject *args = PyTuple_Pack(1, func);
    Py_DECREF(func);
    return fg_reduce(self, args, NULL);
}

static PyMethodDef custom_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))custom_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, FG_CALL_DOC},
    {"__reduce__", custom_reduce, METH_NOARGS, FG_REDUCE_DOC},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot custom_slots[] = {
    {Py_tp_doc, (void *)custom_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, custom_init},
    {Py_tp_dealloc, fg_composite_dealloc},
    {Py_tp_traverse, fg_composite_traverse},
    {Py_tp_clear, fg_composite_clear},
    {Py_tp_call, custom_call},
    {Py_tp_repr, custom_repr},
    {Py_tp_methods, custom_methods},
    {Py_nb_and, tracker_and},
    {Py_nb_or, tracker_or},
    {Py_nb_invert, tracker_invert},
    {0, NULL},
};

static PyType_Spec custom_spec = {
    .name = "fluxgate.trackers.Custom",
    .basicsize = sizeof(FgComposite),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = custom_slots,
};

/* ---- the composites ------------------------------------------------------
 * Built by &, | and ~; constructible from Python (the Tracker ABC's
 * operators use them) with operands checked to be callable. */

static int
check_operands(const char *name, PyObject *args, PyObject *kwargs,
               Py_ssize_t n, PyObject **operands)
{
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", name);
        return -1;
    }
    if (PyTuple_GET_SIZE(args) != n) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd arguments (%zd given)",
                     name, n, PyTuple_GET_SIZE(args));
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        operands[i] = PyTuple_GET_ITEM(args, i);
        if (!PyCallable_Check(operands[i])) {
            PyErr_Format(PyExc_TypeError,
                         "%s() argument %zd must be callable, not %.200s", name,
                         i + 1, Py_TYPE(operands[i])->tp_name);
            return -1;
        }
    }
    return 0;
}

static PyObject *
and_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *operands[2];
    if (check_operands("_And", args, kwargs, 2, operands) < 0) {
        return NULL;
    }
    return fg_composite_new(type, 0, operands[0], operands[1]);
}

static PyObject *
or_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *operands[2];
    if (check_operands("_Or", args, kwargs, 2, operands) < 0) {
        return NULL;
    }
    return fg_composite_new(type, 0, operands[0], operands[1]);
}

static PyObject *
not_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *operand;
    if (check_operands("_Not", args, kwargs, 1, &operand) < 0) {
        return NULL;
    }
    return fg_composite_new(type, 0, operand, NULL);
}

static PyObject *
pair_repr(FgComposite *self, const char *op)
{
    if (self->left == NULL) {
        return PyUnicode_FromFormat("<uninitialised %s object>",
                                    fg_type_name((PyObject *)self));
    }
    return PyUnicode_FromFormat("(%R %s %R)", self->left, op, self->right);
}

static PyObject *
and_repr(PyObject *self)
{
    return pair_repr((FgComposite *)self, "&");
}

static PyObject *
or_repr(PyObject *self)
{
    return pair_repr((FgComposite *)self, "|");
}

static PyObject *
not_repr(PyObject *self)
{
    PyObject *operand = ((FgComposite *)self)->left;
    if (operand == NULL) {
        return PyUnicode_FromFormat("<uninitialised %s object>",
                                    fg_type_name(self));
    }
    return PyUnicode_FromFormat("~%R", operand);
}

static PyObject *
pair_reduce(PyObject *self, PyObject *unused)
{
    FgComposite *pair = (FgComposite *)self;
    if (pair->left == NULL) {
        not_initialised(self);
        return NULL;
    }
    return fg_reduce(self, PyTuple_Pack(2, pair->left, pair->right), NULL);
}

static PyObject *
not_reduce(PyObject *self, PyObject *unused)
{
    PyObject *operand = ((FgComposite *)self)->left;
    if (operand == NULL) {
        not_initialised(self);
        return NULL;
    }
    return fg_reduce(self, PyTuple_Pack(1, operand), NULL);
}

static PyMethodDef and_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))and_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, FG_CALL_DOC},
    {"__reduce__", pair_reduce, METH_NOARGS, FG_REDUCE_DOC},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef or_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))or_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, FG_CALL_DOC},
    {"__reduce__", pair_reduce, METH_NOARGS, FG_REDUCE_DOC},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef not_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))not_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, FG_CALL_DOC},
    {"__reduce__", not_reduce, METH_NOARGS, FG_REDUCE_DOC},
    {NULL, NULL, 0, NULL},
};

#define FG_PAIR_SLOTS                                                         \
    {Py_tp_dealloc, fg_composite_dealloc},                                    \
        {Py_tp_traverse, fg_composite_traverse},                              \
        {Py_tp_clear, fg_composite_clear}, {Py_nb_and, tracker_and},                  \
        {Py_nb_or, tracker_or}, {Py_nb_invert, tracker_invert}

static PyType_Slot and_slots[] = {
    {Py_tp_doc, "_And(left, right, /)\n--\n\n"
                "True when both trackers are; `right` is only asked when "
                "`left` is true."},
    {Py_tp_new, and_tp_new},
    {Py_tp_call, and_call},
    {Py_tp_repr, and_repr},
    {Py_tp_methods, and_methods},
    FG_PAIR_SLOTS,
    {0, NULL},
};

static PyType_Slot or_slots[] = {
    {Py_tp_doc, "_Or(left, right, /)\n--\n\n"
                "True when either tracker is; `right` is only asked when "
                "`left` is false."},
    {Py_tp_new, or_tp_new},
    {Py_tp_call, or_call},
    {Py_tp_repr, or_repr},
    {Py_tp_methods, or_methods},
    FG_PAIR_SLOTS,
    {0, NULL},
};

static PyType_Slot not_slots[] = {
    {Py_tp_doc, "_Not(operand, /)\n--\n\nTrue when `operand` is false."},
    {Py_tp_new, not_tp_new},
    {Py_tp_call, not_call},
    {Py_tp_repr, not_repr},
    {Py_tp_methods, not_methods},
    {Py_tp_dealloc, fg_composite_dealloc},
    {Py_tp_traverse, fg_composite_traverse},
    {Py_tp_clear, fg_composite_clear},
    {Py_nb_and, tracker_and},
    {Py_nb_or, tracker_or},
    {Py_nb_invert, tracker_invert},
    {0, NULL},
};

#define FG_COMPOSITE_FLAGS                                                    \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC)

static PyType_Spec and_spec = {
    .name = "fluxgate.trackers._And",
    .basicsize = sizeof(FgComposite),
    .flags = FG_COMPOSITE_FLAGS,
    .slots = and_slots,
};

static PyType_Spec or_spec = {
    .name = "fluxgate.trackers._Or",
    .basicsize = sizeof(FgComposite),
    .flags = FG_COMPOSITE_FLAGS,
    .slots = or_slots,
};

static PyType_Spec not_spec = {
    .name = "fluxgate.trackers._Not",
    .basicsize = sizeof(FgComposite),
    .flags = FG_COMPOSITE_FLAGS,
    .slots = not_slots,
};

/* ---- module setup --------------------------------------------------------
 * permits.All shares the short name All, and the trippers have composites of
 * their own, so these are added to the module under distinct names;
 * fluxgate.trackers exposes them under their public ones. */

static int
add_named(PyObject *module, PyType_Spec *spec, PyObject **slot, const char *name)
{
    if (fg_add_type(module, spec, NULL, slot, 0) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, name, *slot);
}

int
fg_trackers_init(PyObject *module, FgState *st)
{
    if (add_named(module, &all_spec, &st->TrackerAll_Type, "TrackerAll") < 0
        || fg_add_type(module, &typeof_spec, NULL, &st->TypeOf_Type, 1) < 0
        || fg_add_type(module, &custom_spec, NULL, &st->Custom_Type, 1) < 0
        || add_named(module, &and_spec, &st->TrackerAnd_Type, "_TrackerAnd") < 0
        || add_named(module, &or_spec, &st->TrackerOr_Type, "_TrackerOr") < 0
        || add_named(module, &not_spec, &st->TrackerNot_Type, "_TrackerNot") < 0) {
        return -1;
    }
    return 0;
}
