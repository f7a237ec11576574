/* The tripper nodes' layout, shared by the units that make up the trippers:
 * trippers.c (evaluation and the types) and tripper_tree.c (walking a tree:
 * iteration and the SlowRate thresholds). Private to them, but for the
 * fused record (machine_fused.c), which runs a program inline. */
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

/* ---- a tree compiled into a flat program (tripper_tree.c builds it,
 * trippers.c runs it) ---------------------------------------------------------
 * A tree of built-in leaves under _And and _Or nodes is evaluated by the
 * breaker after every call. Walking it recursively costs a call, a depth
 * count and a native check per node; instead the breaker compiles it once,
 * at construction, into one op per leaf, left to right, each with the
 * leaf's parameters (fixed once its __init__ has run: a second one is
 * refused) and naming the op to run next on either verdict
 * (short-circuiting is in those jumps), or the tree's verdict. The tree's
 * root composite keeps it (FgComposite), so every breaker with that tripper
 * shares it.
 *
 * A program of at most TRUTH_TABLE_OPS leaves, none of them SlowRate (whose
 * count is looked up only for a leaf that is reached), also has its truth
 * table: bit v tells the tree's verdict when leaf i's verdict is bit i of v.
 * Its run decides every leaf, then reads one bit instead of following the
 * jumps one dependent load after another.
 *
 * The program is the tree's meaning only while every node would still run
 * the built-ins' own __call__: a class patched afterwards changes its
 * tp_call. The run checks that for the composite types and the leaves'
 * distinct types first, and gives up if one changed, so that the caller
 * walks the tree as before (the walk finds which leaves are reached). */
#define PROGRAM_TRUE (-2)
#define PROGRAM_FALSE (-1)
/* At most this many leaves (and composites nested at most SHALLOW_TREE
 * deep) are compiled; a larger tree is walked. */
#define PROGRAM_MAX_OPS 256
#define SHALLOW_TREE 32
#define TRUTH_TABLE_OPS 6

typedef struct FgTripProgram FgTripProgram;

typedef struct {
    Leaf *leaf;   /* borrowed: the root composite owns the tree */
    int kind;
    int next[2];  /* next[verdict]: the next op, or PROGRAM_TRUE/FALSE */
    int64_t count; /* the leaf's count, or */
    double value;  /* its ratio or threshold */
} ProgramOp;

struct FgTripProgram {
    ternaryfunc call;       /* the built-ins' tp_call */
    PyTypeObject *and_type; /* borrowed from the module state, or NULL */
    PyTypeObject *or_type;  /* when the tree has no such node */
    int n;
    int n_types;
    int has_truth;          /* truth is the tree's table */
    uint64_t truth;
    char needs_failure_rate; /* a FailureRate leaf, or */
    char needs_avg_latency;  /* an AvgLatency one, is in the tree */
    ProgramOp *ops;         /* n, in the same block, after this header */
    PyTypeObject **types;   /* the leaves' n_types distinct types (borrowed:
                             * each leaf holds its own), after the ops */
};

/* ---- running a program (trippers.c; inline for the fused record,
 * machine_fused.c) ------------------------------------------------------------*/

/* Whether the program still means what the tree does: the composite types
 * it compiled away and the leaves' types still run the built-ins'
 * __call__. */
static inline int
program_current(const FgTripProgram *p)
{
    if ((p->and_type != NULL && p->and_type->tp_call != p->call)
        || (p->or_type != NULL && p->or_type->tp_call != p->call)) {
        return 0;
    }
    for (int i = 0; i < p->n_types; i++) {
        if (p->types[i]->tp_call != p->call) {
            return 0;
        }
    }
    return 1;
}

/* A SlowRate op's verdict is decided only where the run reaches it. */
enum { OP_LATER = 2 };

/* What a run reads: the breaker's state and failure streak and the window's
 * totals, with the quotients its leaves compare (as Python's true division,
 * once each and only where a leaf needs it: the counts convert to double
 * exactly, and a rate of no calls is never reached). */
typedef struct {
    FgStateId state;
    int64_t consecutive_failures;
    FgTotals totals;
    int any;
    double calls;
    double failure_rate;
    double avg_latency;
} RunInput;

static inline RunInput
run_input(const FgTripProgram *p, FgStateId state, int64_t consecutive_failures,
          const FgTotals *totals)
{
    RunInput r = {.state = state, .consecutive_failures = consecutive_failures,
                  .totals = *totals};
    r.any = r.totals.total_count > 0;
    r.calls = r.any ? (double)r.totals.total_count : 1.0;
    if (p->needs_failure_rate) {
        r.failure_rate = (double)r.totals.failure_count / r.calls;
    }
    if (p->needs_avg_latency) {
        r.avg_latency = r.totals.total_duration / r.calls;
    }
    return r;
}

/* The verdict of op `op` (OP_LATER for SlowRate). */
static inline int
op_verdict(const ProgramOp *op, const RunInput *r)
{
    switch (op->kind) {
    case K_CLOSED:
        return r->state == FG_CLOSED;
    case K_HALF_OPENED:
        return r->state == FG_HALF_OPEN;
    case K_FAILURE_STREAK:
        return r->consecutive_failures >= op->count;
    case K_MIN_REQUESTS:
        return r->totals.total_count >= op->count;
    case K_FAILURE_RATE:
        return r->any & (r->failure_rate >= op->value);
    case K_AVG_LATENCY:
        return r->any & (r->avg_latency >= op->value);
    default:
        return OP_LATER;
    }
}

/* The verdict of a program with a truth table: every leaf decided, then
 * one bit. */
static inline int
program_truth(const FgTripProgram *p, const RunInput *r)
{
    unsigned int bits = 0;
    for (int i = 0; i < p->n; i++) {
        bits |= (unsigned int)op_verdict(&p->ops[i], r) << i;
    }
    return (int)(p->truth >> bits & 1);
}

/* The program of `tripper` in *out, or NULL there when the tree has a node
 * that is not a built-in of this module (or is too large): it is then
 * walked. -1 with MemoryError. */
int fg_tree_compile(FgState *st, PyObject *tripper, ternaryfunc call,
                    FgTripProgram **out);

/* tp_iter of a leaf (it yields itself) and of a composite (its leaves,
 * depth-first, left to right). */
PyObject *fg_tripper_leaf_iter(PyObject *self);
PyObject *fg_tripper_composite_iter(PyObject *self);

#endif /* FLUXGATE_TRIPPERS_H */
