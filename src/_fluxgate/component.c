/* What the component types (windows, trackers, trippers, retries, permits)
 * share: GC support for a type that holds no object but its type, a repr of
 * its parameters, and reduction to its constructor's arguments for pickle
 * and copy. */
#include "components.h"

#include <string.h>

int
fg_plain_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

void
fg_plain_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    type->tp_free(self);
    Py_DECREF(type);
}

PyObject *
fg_params_repr(PyObject *self, const char *const *names, const double *values,
               int n)
{
    PyObject *qualname = PyObject_GetAttrString((PyObject *)Py_TYPE(self),
                                                "__qualname__");
    if (qualname == NULL) {
        return NULL;
    }
    PyObject *repr = PyUnicode_FromFormat("%U(", qualname);
    Py_DECREF(qualname);
    for (int i = 0; i < n && repr != NULL; i++) {
        PyObject *value = PyFloat_FromDouble(values[i]);
        if (value == NULL) {
            Py_CLEAR(repr);
            break;
        }
        PyUnicode_AppendAndDel(&repr, PyUnicode_FromFormat("%s%s=%R", i ? ", " : "",
                                                           names[i], value));
        Py_DECREF(value);
    }
    if (repr != NULL) {
        PyUnicode_AppendAndDel(&repr, PyUnicode_FromString(")"));
    }
    return repr;
}

/* The native type `type` derives from (itself for one of ours). */
static PyTypeObject *
native_base(PyTypeObject *type)
{
    while (type != NULL
           && (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE)
               || ((PyHeapTypeObject *)type)->ht_module == NULL)) {
        type = type->tp_base;
    }
    return type;
}

/* 1 when `self` is an instance of a Python subclass with an __init__ of its
 * own: its constructor's arguments are not the built-in's. */
static int
has_own_init(PyObject *self, PyTypeObject **builtin)
{
    *builtin = native_base(Py_TYPE(self));
    if (*builtin == NULL || *builtin == Py_TYPE(self)) {
        return 0;
    }
    PyObject *name = PyUnicode_InternFromString("__init__");
    if (name == NULL) {
        return -1;
    }
    int inherits = fg_inherits_method(Py_TYPE(self), *builtin, name);
    Py_DECREF(name);
    return inherits < 0 ? -1 : !inherits;
}

PyObject *
fg_reduce(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *result = NULL, *state = NULL, *newobj_ex = NULL;
    PyTypeObject *builtin;
    int own_init;
    if (args == NULL || PyObject_GetOptionalAttrString(self, "__dict__", &state) < 0) {
        goto done;
    }
    if (state == NULL) {
        state = Py_NewRef(Py_None);
    }
    if ((own_init = has_own_init(self, &builtin)) < 0) {
        goto done;
    }
    if (own_init) {
        /* fluxgate._checks.rebuild(cls, builtin, args, kwargs): the built-in's
         * __init__ on an instance of the subclass, whose own __init__ takes
         * other arguments (its instance dict comes back as the state). */
        PyObject *checks = PyImport_ImportModule("fluxgate._checks");
        if (checks != NULL) {
            newobj_ex = PyObject_GetAttrString(checks, "rebuild");
            Py_DECREF(checks);
        }
        if (newobj_ex != NULL) {
            result = Py_BuildValue("O(OOOO)O", newobj_ex, (PyObject *)Py_TYPE(self),
                                   (PyObject *)builtin, args,
                                   kwargs ? kwargs : Py_None, state);
        }
        goto done;
    }
    if (kwargs == NULL) {
        result = PyTuple_Pack(3, (PyObject *)Py_TYPE(self), args, state);
        goto done;
    }
    /* functools.partial(type, **kwargs)(*args): the constructor runs, as
     * for positional arguments (__new__ alone would leave it uninitialised). */
    PyObject *functools = PyImport_ImportModule("functools");
    PyObject *partial = NULL;
    if (functools != NULL) {
        newobj_ex = PyObject_GetAttrString(functools, "partial");
        Py_DECREF(functools);
    }
    if (newobj_ex != NULL) {
        PyObject *type_only = PyTuple_Pack(1, (PyObject *)Py_TYPE(self));
        if (type_only != NULL) {
            partial = PyObject_Call(newobj_ex, type_only, kwargs);
            Py_DECREF(type_only);
        }
    }
    if (partial != NULL) {
        result = PyTuple_Pack(3, partial, args, state);
        Py_DECREF(partial);
    }
done:
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(state);
    Py_XDECREF(newobj_ex);
    return result;
}

/* ---- argument errors and initialisation ----------------------------------*/

int
fg_bind_error(const char *key, PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
        return -1;
    }
    PyObject *original = PyErr_GetRaisedException();
    PyObject *module = PyImport_ImportModule("fluxgate._signatures");
    PyObject *result = NULL;
    if (module != NULL) {
        PyObject *no_args = args == NULL ? PyTuple_New(0) : Py_NewRef(args);
        if (no_args != NULL) {
            result = PyObject_CallMethod(module, "bind_error", "sOOO", key, self,
                                         no_args, kwargs ? kwargs : Py_None);
            Py_DECREF(no_args);
        }
        Py_DECREF(module);
    }
    if (result == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
        /* The stub did not bind: Python's own message replaces ours. */
        Py_DECREF(original);
        return -1;
    }
    /* The arguments bind (or the stub could not be reached): ours stands. */
    Py_XDECREF(result);
    PyErr_Clear();
    PyErr_SetRaisedException(original);
    return -1;
}

PyObject *
fg_bind_error_fast(const char *key, PyObject *self, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
        return NULL;
    }
    PyObject *original = PyErr_GetRaisedException();
    PyObject *tuple = PyTuple_New(nargs);
    PyObject *dict = NULL;
    int ok = tuple != NULL;
    for (Py_ssize_t i = 0; ok && i < nargs; i++) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    }
    if (ok && kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        dict = PyDict_New();
        ok = dict != NULL;
        for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(kwnames); i++) {
            ok = PyDict_SetItem(dict, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) == 0;
        }
    }
    if (!ok) {
        Py_XDECREF(tuple);
        Py_XDECREF(dict);
        Py_DECREF(original);
        return NULL;
    }
    PyErr_SetRaisedException(original);
    (void)fg_bind_error(key, self, tuple, dict);
    Py_DECREF(tuple);
    Py_XDECREF(dict);
    return NULL;
}

static const char *
short_type_name(PyObject *self)
{
    const char *name = Py_TYPE(self)->tp_name;
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

int
fg_check_no_args(const char *key, PyObject *self, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0)) {
        return 0;
    }
    PyErr_SetString(PyExc_TypeError, "takes no arguments");
    (void)fg_bind_error_fast(key, self, args, nargs, kwnames);
    return -1;
}

int
fg_already_initialised(PyObject *self)
{
    PyErr_Format(PyExc_TypeError,
                 "%.200s object is already initialised: __init__() may not be "
                 "called again",
                 short_type_name(self));
    return -1;
}

int
fg_not_initialised(PyObject *self)
{
    PyErr_Format(PyExc_TypeError,
                 "%.200s object is not initialised: its __init__() was not "
                 "called (a subclass's __init__ must call super().__init__())",
                 short_type_name(self));
    return -1;
}
