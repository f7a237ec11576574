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

/* ---- compiling a tree into a program (trippers.h) ----------------------------*/

/* The leaves under `node` when it can be compiled (initialised built-in
 * leaves under this module's _And and _Or, nested at most SHALLOW_TREE
 * deep, all of them running the built-ins' own __call__), else -1. */
static int
count_ops(FgState *st, PyObject *node, ternaryfunc call, int depth)
{
    if (Py_TYPE(node)->tp_call != call || depth > SHALLOW_TREE) {
        return -1;
    }
    if (!is_composite(st, node)) {
        return ((Node *)node)->kind < K_AND && !leaf_needs_init((Leaf *)node) ? 1 : -1;
    }
    Composite *c = (Composite *)node;
    if (c->left == NULL || c->right == NULL) {
        return -1;
    }
    int left = count_ops(st, c->left, call, depth + 1);
    int right = left < 0 ? -1 : count_ops(st, c->right, call, depth + 1);
    if (right < 0 || left + right > PROGRAM_MAX_OPS) {
        return -1;
    }
    return left + right;
}

/* Emits the ops of `node` from ops[at]: on_true and on_false are where the
 * node's verdict leads. The right operand of a composite starts after the
 * left operand's leaves; the left one jumps there when it does not decide.
 * Returns the index after the last op emitted. */
static int
emit_ops(FgState *st, FgTripProgram *p, PyObject *node, int at, int on_true,
         int on_false)
{
    if (!is_composite(st, node)) {
        Leaf *leaf = (Leaf *)node;
        p->ops[at] = (ProgramOp){
            .leaf = leaf,
            .kind = leaf->kind,
            .next = {on_false, on_true},
            .count = leaf->count,
            .value = leaf->kind == K_FAILURE_RATE || leaf->kind == K_SLOW_RATE
                         ? leaf->ratio
                         : leaf->threshold,
        };
        p->n = at + 1;
        p->needs_failure_rate |= leaf->kind == K_FAILURE_RATE;
        p->needs_avg_latency |= leaf->kind == K_AVG_LATENCY;
        int known = 0;
        while (known < p->n_types && p->types[known] != Py_TYPE(node)) {
            known++;
        }
        if (known == p->n_types) {
            p->types[p->n_types++] = Py_TYPE(node);
        }
        return at + 1;
    }
    Composite *c = (Composite *)node;
    int right = at + count_ops(st, c->left, p->call, 0);
    if (c->kind == K_AND) {
        p->and_type = Py_TYPE(node);
        emit_ops(st, p, c->left, at, right, on_false);
    }
    else {
        p->or_type = Py_TYPE(node);
        emit_ops(st, p, c->left, at, on_true, right);
    }
    return emit_ops(st, p, c->right, right, on_true, on_false);
}

/* The truth table of a program that can have one (trippers.h). */
static void
set_truth_table(FgTripProgram *p)
{
    if (p->n > TRUTH_TABLE_OPS) {
        return;
    }
    for (int i = 0; i < p->n; i++) {
        if (p->ops[i].kind == K_SLOW_RATE) {
            return;
        }
    }
    for (uint64_t verdicts = 0; verdicts < (UINT64_C(1) << p->n); verdicts++) {
        int at = 0;
        do {
            at = p->ops[at].next[verdicts >> at & 1];
        } while (at >= 0);
        p->truth |= (uint64_t)(at == PROGRAM_TRUE) << verdicts;
    }
    p->has_truth = 1;
}

int
fg_tree_compile(FgState *st, PyObject *tripper, ternaryfunc call,
                FgTripProgram **out)
{
    *out = NULL;
    int n = count_ops(st, tripper, call, 0);
    if (n <= 0) {
        return 0;
    }
    FgTripProgram *p = PyMem_Malloc(sizeof(FgTripProgram) + (size_t)n * sizeof(ProgramOp)
                                    + (size_t)n * sizeof(PyTypeObject *));
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *p = (FgTripProgram){.call = call, .ops = (ProgramOp *)(p + 1)};
    p->types = (PyTypeObject **)(p->ops + n);
    emit_ops(st, p, tripper, 0, PROGRAM_TRUE, PROGRAM_FALSE);
    set_truth_table(p);
    *out = p;
    return 0;
}
