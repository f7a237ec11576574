/* Instances of the Python layer's value classes (fluxgate/_values.py) made
 * in C: Signal for the listeners, CallContext for Python trippers,
 * CircuitBreakerInfo for info().
 *
 * They are frozen, slotted dataclasses whose generated __init__ stores each
 * field with object.__setattr__, about half a microsecond for three fields.
 * When _bind hands a class over, the offset of each field's slot is read
 * from its member descriptor; an instance is then allocated and its slots
 * filled directly, which is what that __init__ does, in a few nanoseconds.
 * A class whose fields are not plain object slots of its own is called
 * instead. */
#include "fluxgate.h"

#include <structmember.h>

int
fg_value_layout(PyObject *cls, const char *const *names, int n, FgValueLayout *out)
{
    out->n = 0;
    if (!PyType_Check(cls) || n > FG_VALUE_MAX_FIELDS) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        PyObject *descr = PyObject_GetAttrString(cls, names[i]);
        if (descr == NULL) {
            return -1;
        }
        int plain_slot = Py_IS_TYPE(descr, &PyMemberDescr_Type)
                         && ((PyDescrObject *)descr)->d_type == (PyTypeObject *)cls
                         && ((PyMemberDescrObject *)descr)->d_member->type == Py_T_OBJECT_EX
                         && !(((PyMemberDescrObject *)descr)->d_member->flags & Py_READONLY);
        if (plain_slot) {
            out->offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        }
        Py_DECREF(descr);
        if (!plain_slot) {
            return 0;
        }
    }
    out->n = n;
    return 0;
}

PyObject *
fg_value_new(PyObject *cls, const FgValueLayout *layout, PyObject *const *values,
             int n, PyObject *kwnames)
{
    if (layout->n != n) {
        return PyObject_Vectorcall(cls, values, kwnames ? 0 : (size_t)n, kwnames);
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    PyObject *value = type->tp_alloc(type, 0);
    if (value == NULL) {
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        *(PyObject **)((char *)value + layout->offsets[i]) = Py_NewRef(values[i]);
    }
    return value;
}
