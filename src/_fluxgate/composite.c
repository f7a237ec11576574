/* What the composite trackers and trippers share: a node holding one or two
 * operands (FgComposite), its lifecycle, and the `a & b` / `a | b` operators
 * that build one. Each family keeps its own evaluation, repr and
 * constructor checks (their messages differ, as 0.9.4's did). */
#include "components.h"

#include <stddef.h>

PyObject *
fg_composite_new(PyTypeObject *type, int kind, PyObject *left, PyObject *right)
{
    FgComposite *node = (FgComposite *)type->tp_alloc(type, 0);
    if (node == NULL) {
        return NULL;
    }
    node->kind = kind;
    node->left = Py_NewRef(left);
    node->right = Py_XNewRef(right);
    return (PyObject *)node;
}

/* The module state of whichever operand is one of ours: the left one may be
 * a plain callable when Python falls back to the right one's slot. */
static FgState *
operands_state(PyObject *left, PyObject *right)
{
    FgState *st = fg_state_from_type(Py_TYPE(left));
    if (st == NULL) {
        PyErr_Clear();
        st = fg_state_from_type(Py_TYPE(right));
    }
    return st;
}

PyObject *
fg_combine(PyObject *left, PyObject *right, size_t type_offset, int kind)
{
    if (!PyCallable_Check(left) || !PyCallable_Check(right)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    FgState *st = operands_state(left, right);
    if (st == NULL) {
        return NULL;
    }
    PyObject *type = *(PyObject **)((char *)st + type_offset);
    return fg_composite_new((PyTypeObject *)type, kind, left, right);
}

int
fg_composite_traverse(PyObject *self, visitproc visit, void *arg)
{
    FgComposite *node = (FgComposite *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(node->left);
    Py_VISIT(node->right);
    return 0;
}

int
fg_composite_clear(PyObject *self)
{
    FgComposite *node = (FgComposite *)self;
    PyMem_Free(node->program);
    node->program = NULL;
    Py_CLEAR(node->left);
    Py_CLEAR(node->right);
    return 0;
}

/* The trashcan keeps the C stack flat when a long chain such as
 * `t = t & other` in a loop is freed. */
void
fg_composite_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_TRASHCAN_BEGIN(self, fg_composite_dealloc)
    (void)fg_composite_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
    Py_TRASHCAN_END
}
