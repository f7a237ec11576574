/* The tripper nodes' layout, shared by the units that make up the trippers:
 * trippers.c (evaluation and the types) and tripper_tree.c (walking a tree:
 * iteration and the SlowRate thresholds). Private to them. */
#ifndef FLUXGATE_TRIPPERS_H
#define FLUXGATE_TRIPPERS_H

#include "components.h"

typedef enum {
    K_CLOSED,
    K_HALF_OPENED,
    K_MIN_REQUESTS,
    K_FAILURE_RATE,
    K_AVG_LATENCY,
    K_SLOW_RATE,
    K_FAILURE_STREAK,
    K_AND,
    K_OR,
    K_COUNT
} Kind;

/* Every node starts with its kind, at the offset FgComposite keeps it. */
typedef struct {
    PyObject_HEAD
    int kind;
} Node;

typedef struct {
    PyObject_HEAD
    int kind;
    char initialised; /* __init__ ran */
    int64_t count;
    double ratio;
    double threshold;
} Leaf;

/* _And and _Or are FgComposite nodes (composite.c). */
typedef FgComposite Composite;

static inline int
is_composite(FgState *st, PyObject *node)
{
    PyObject *type = (PyObject *)Py_TYPE(node);
    return type == st->TripperAnd_Type || type == st->TripperOr_Type;
}

/* A leaf with parameters whose __init__ never ran is not initialised: using
 * it raises TypeError. */
static inline int
leaf_needs_init(const Leaf *leaf)
{
    return !leaf->initialised && leaf->kind != K_CLOSED
           && leaf->kind != K_HALF_OPENED;
}

/* tp_iter of a leaf (it yields itself) and of a composite (its leaves,
 * depth-first, left to right). */
PyObject *fg_tripper_leaf_iter(PyObject *self);
PyObject *fg_tripper_composite_iter(PyObject *self);

#endif /* FLUXGATE_TRIPPERS_H */
