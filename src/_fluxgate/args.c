/* Number arguments of the component constructors (fluxgate.h): C numbers
 * from Python objects, with errors that name the argument. */
#include "fluxgate.h"

#include <math.h>

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
fg_index(PyObject *obj, long long *value, int *overflow, PyObject **index)
{
    PyObject *number = PyNumber_Index(obj);
    if (number == NULL) {
        return -1;
    }
    *overflow = 0;
    *value = PyLong_AsLongLongAndOverflow(number, overflow);
    if (*value == -1 && PyErr_Occurred()) {
        Py_DECREF(number);
        return -1;
    }
    if (index != NULL) {
        *index = number;
    }
    else {
        Py_DECREF(number);
    }
    return 0;
}

PyObject *
fg_tuple_of_doubles(const double *values, Py_ssize_t n)
{
    PyObject *tuple = PyTuple_New(n);
    for (Py_ssize_t i = 0; tuple != NULL && i < n; i++) {
        PyObject *value = PyFloat_FromDouble(values[i]);
        if (value == NULL) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, i, value);
    }
    return tuple;
}

int
fg_as_int64(PyObject *obj, const char *what, int64_t *out)
{
    if (PyBool_Check(obj) || !(PyLong_Check(obj) || PyIndex_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "%s must be an integer, not %.200s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    long long value;
    int overflow;
    if (fg_index(obj, &value, &overflow, NULL) < 0) {
        return -1;
    }
    if (overflow != 0) {
        PyErr_Format(PyExc_ValueError, "%s is out of range", what);
        return -1;
    }
    *out = (int64_t)value;
    return 0;
}
