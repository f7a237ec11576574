/* What the component types (windows, trackers, trippers, retries, permits)
 * share: GC support for a type that holds no object but its type, a repr of
 * its parameters, and reduction to its constructor's arguments for pickle
 * and copy. */
#include "components.h"

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

PyObject *
fg_reduce(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *result = NULL, *state = NULL, *newobj_ex = NULL;
    if (args == NULL || PyObject_GetOptionalAttrString(self, "__dict__", &state) < 0) {
        goto done;
    }
    if (state == NULL) {
        state = Py_NewRef(Py_None);
    }
    if (kwargs == NULL) {
        result = PyTuple_Pack(3, (PyObject *)Py_TYPE(self), args, state);
        goto done;
    }
    PyObject *copyreg = PyImport_ImportModule("copyreg");
    if (copyreg != NULL) {
        newobj_ex = PyObject_GetAttrString(copyreg, "__newobj_ex__");
        Py_DECREF(copyreg);
    }
    if (newobj_ex != NULL) {
        result = Py_BuildValue("O(OOO)O", newobj_ex, (PyObject *)Py_TYPE(self),
                               args, kwargs, state);
    }
done:
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(state);
    Py_XDECREF(newobj_ex);
    return result;
}
