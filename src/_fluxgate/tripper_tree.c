/* Walking a tripper tree: its leaves, as iter() yields them, and the
 * distinct SlowRate thresholds among them that the breaker classifies each
 * call against (components.h). */
#include "trippers.h"

#include <string.h>

/* Whether iter(obj) can succeed, decided without calling it (so that an
 * error raised by a user's __iter__ is not mistaken for "not iterable"). */
static int
is_iterable(PyObject *obj)
{
    return Py_TYPE(obj)->tp_iter != NULL || PySequence_Check(obj);
}

/* A leaf yields itself. */
PyObject *
fg_tripper_leaf_iter(PyObject *self)
{
    PyObject *one = PyTuple_Pack(1, self);
    if (one == NULL) {
        return NULL;
    }
    PyObject *iter = PyObject_GetIter(one);
    Py_DECREF(one);
    return iter;
}

/* Appends the leaves under `node` to `list`, depth-first, left to right. */
static int
extend_leaves(FgState *st, PyObject *list, PyObject *node)
{
    if (is_composite(st, node)) {
        if (Py_EnterRecursiveCall(" while iterating a tripper")) {
            return -1;
        }
        Composite *c = (Composite *)node;
        int rc = extend_leaves(st, list, c->left);
        if (rc == 0) {
            rc = extend_leaves(st, list, c->right);
        }
        Py_LeaveRecursiveCall();
        return rc;
    }
    if (!is_iterable(node)) {
        /* A plain callable is a leaf of its own. */
        return PyList_Append(list, node);
    }
    PyObject *iter = PyObject_GetIter(node);
    if (iter == NULL) {
        return -1;
    }
    PyObject *item;
    while ((item = PyIter_Next(iter)) != NULL) {
        int rc = PyList_Append(list, item);
        Py_DECREF(item);
        if (rc < 0) {
            break;
        }
    }
    Py_DECREF(iter);
    return PyErr_Occurred() ? -1 : 0;
}

PyObject *
fg_tripper_composite_iter(PyObject *node)
{
    Composite *self = (Composite *)node;
    FgState *st = fg_state_from_type(Py_TYPE(self));
    PyObject *leaves = st ? PyList_New(0) : NULL;
    if (leaves == NULL) {
        return NULL;
    }
    PyObject *iter = NULL;
    if (extend_leaves(st, leaves, self->left) == 0
        && extend_leaves(st, leaves, self->right) == 0) {
        iter = PyObject_GetIter(leaves);
    }
    Py_DECREF(leaves);
    return iter;
}

int
fg_tripper_collect_thresholds(FgState *st, PyObject *tripper,
                              double **thresholds, Py_ssize_t *n)
{
    *thresholds = NULL;
    *n = 0;
    if (!is_iterable(tripper)) {
        return 0;
    }
    PyObject *iter = PyObject_GetIter(tripper);
    if (iter == NULL) {
        return -1;
    }
    double *found = NULL;
    Py_ssize_t count = 0;
    PyObject *leaf;
    while ((leaf = PyIter_Next(iter)) != NULL) {
        int keep = PyObject_TypeCheck(leaf, (PyTypeObject *)st->SlowRate_Type);
        if (keep && leaf_needs_init((Leaf *)leaf)) {
            fg_not_initialised(leaf);
            Py_DECREF(leaf);
            break;
        }
        double threshold = keep ? ((Leaf *)leaf)->threshold : 0.0;
        Py_DECREF(leaf);
        /* Ascending, as 0.9.4 orders them (a record's slow_at, a metric's
         * slow_counts); thresholds are never NaN. */
        Py_ssize_t at = 0;
        while (keep && at < count && found[at] < threshold) {
            at++;
        }
        keep = keep && (at == count || found[at] != threshold);
        if (keep) {
            double *grown = PyMem_Realloc(found, (size_t)(count + 1) * sizeof(double));
            if (grown == NULL) {
                PyErr_NoMemory();
                break;
            }
            found = grown;
            memmove(found + at + 1, found + at, (size_t)(count - at) * sizeof(double));
            found[at] = threshold;
            count++;
        }
    }
    Py_DECREF(iter);
    if (PyErr_Occurred()) {
        PyMem_Free(found);
        return -1;
    }
    *thresholds = found;
    *n = count;
    return 0;
}
