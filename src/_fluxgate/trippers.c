/* Trippers: the conditions under which the breaker opens (SPEC.md section 5).
 *
 * Seven leaf types share one layout (a kind and its parameters) and two
 * composites (_And, _Or) hold their operands. One evaluator serves both
 * callers: a Python caller hands in a ctx object whose attributes are read
 * as each leaf needs them, and the breaker hands in an FgTripInput whose
 * numbers are read in place (components.h). A node whose direct call would
 * run Python code (no built-in, or __call__ overridden or patched) is called
 * through Python with a CallContext. */
#include "components.h"
#include "metric.h"
#include "trippers.h"

#include <math.h>
#include <stddef.h>

static PyObject *tripper_call(PyObject *self, PyObject *args, PyObject *kwargs);

/* 1 when a direct call of `node` runs the built-in's own __call__: its kind
 * field then says how to evaluate it without Python. A direct call runs the
 * type's tp_call, so when that is the built-ins' own (no subclass, no
 * patch: either makes it the generic slot) the answer is known at once. */
static int
is_native_node(FgState *st, PyObject *node)
{
    return Py_TYPE(node)->tp_call == tripper_call
           || fg_native_kind(st, FG_FAMILY_TRIPPER, node) != FG_PYTHON;
}

/* What each leaf's __init__ takes (its format and keywords), and the stubs
 * that word Python's errors for __init__ and __call__ (fg_bind_error). */
static char *no_keywords[] = {NULL};
static char *count_keywords[] = {"count", NULL};
static char *ratio_keywords[] = {"ratio", NULL};
static char *threshold_keywords[] = {"threshold", NULL};
static char *slow_rate_keywords[] = {"ratio", "threshold", NULL};

static const struct {
    const char *format;
    char **keywords;
    const char *key;
    const char *call_key;
} leaf_args[] = {
    [K_CLOSED] = {":Closed", no_keywords, "fluxgate.trippers.Closed.__init__",
        "fluxgate.trippers.Closed.__call__"},
    [K_HALF_OPENED] = {":HalfOpened", no_keywords,
                       "fluxgate.trippers.HalfOpened.__init__",
        "fluxgate.trippers.HalfOpened.__call__"},
    [K_MIN_REQUESTS] = {"O:MinRequests", count_keywords,
                        "fluxgate.trippers.MinRequests.__init__",
        "fluxgate.trippers.MinRequests.__call__"},
    [K_FAILURE_RATE] = {"O:FailureRate", ratio_keywords,
                        "fluxgate.trippers.FailureRate.__init__",
        "fluxgate.trippers.FailureRate.__call__"},
    [K_AVG_LATENCY] = {"O:AvgLatency", threshold_keywords,
                       "fluxgate.trippers.AvgLatency.__init__",
        "fluxgate.trippers.AvgLatency.__call__"},
    [K_SLOW_RATE] = {"O$O:SlowRate", slow_rate_keywords,
                     "fluxgate.trippers.SlowRate.__init__",
        "fluxgate.trippers.SlowRate.__call__"},
    [K_FAILURE_STREAK] = {"O:FailureStreak", count_keywords,
                          "fluxgate.trippers.FailureStreak.__init__",
        "fluxgate.trippers.FailureStreak.__call__"},
};

/* ---- evaluation ----------------------------------------------------------*/

typedef struct {
    FgState *st;
    FgTripInput *in; /* the breaker's input, or NULL for a Python caller */
    PyObject *ctx;   /* the Python caller's ctx when `in` is NULL */
    int native_only; /* stop with FG_NEEDS_PYTHON at a Python node */
    int depth;       /* composites entered */
    int have_totals; /* `totals` holds the window's, read once per walk */
    FgTotals totals;
} Eval;

/* Composites nested deeper than SHALLOW_TREE (trippers.h) are evaluated
 * under the interpreter's recursion guard; shallower trees (all but
 * pathological ones) skip it. */

/* The CallContext handed to Python nodes, built once per input. Borrowed. */
static PyObject *
trip_context(FgState *st, FgTripInput *in)
{
    if (in->context != NULL) {
        return in->context;
    }
    if (st->CallContext == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "fluxgate._values is not imported");
        return NULL;
    }
    PyObject *metric = in->window != NULL ? fg_window_metric(st, in->window)
                                          : Py_XNewRef(in->metric);
    if (metric == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "tripper input without a metric");
        }
        return NULL;
    }
    PyObject *streak = PyLong_FromLongLong(in->consecutive_failures);
    PyObject *kwnames = PyTuple_Pack(3, st->s_metric, st->s_state,
                                     st->s_consecutive_failures);
    if (streak != NULL && kwnames != NULL) {
        PyObject *args[3] = {metric, st->state_names[in->state], streak};
        in->context = fg_value_new(st->CallContext, &st->call_context_layout, args,
                                   3, kwnames);
    }
    Py_DECREF(metric);
    Py_XDECREF(streak);
    Py_XDECREF(kwnames);
    return in->context;
}

static int
python_check(Eval *e, PyObject *node)
{
    if (e->native_only) {
        return FG_NEEDS_PYTHON;
    }
    PyObject *ctx = e->in != NULL ? trip_context(e->st, e->in) : e->ctx;
    if (ctx == NULL) {
        return -1;
    }
    return fg_truth(PyObject_CallOneArg(node, ctx));
}

static int
state_is(Eval *e, FgStateId id)
{
    if (e->in != NULL) {
        return e->in->state == id;
    }
    PyObject *state = PyObject_GetAttr(e->ctx, e->st->s_state);
    if (state == NULL) {
        return -1;
    }
    int equal = PyObject_RichCompareBool(state, e->st->state_names[id], Py_EQ);
    Py_DECREF(state);
    return equal;
}

static int
streak_reached(Eval *e, int64_t count)
{
    if (e->in != NULL) {
        return e->in->consecutive_failures >= count;
    }
    PyObject *streak = PyObject_GetAttr(e->ctx, e->st->s_consecutive_failures);
    if (streak == NULL) {
        return -1;
    }
    PyObject *limit = PyLong_FromLongLong(count);
    int reached = limit ? PyObject_RichCompareBool(streak, limit, Py_GE) : -1;
    Py_DECREF(streak);
    Py_XDECREF(limit);
    return reached;
}

/* The totals a leaf decides on and, for SlowRate, its slow count. */
static int
read_counts(Eval *e, Leaf *leaf, FgTotals *totals, int64_t *slow)
{
    if (e->in != NULL && e->in->window != NULL) {
        if (!e->have_totals) {
            fg_window_totals(e->in->window, &e->totals);
            e->have_totals = 1;
        }
        *totals = e->totals;
        if (leaf->kind == K_SLOW_RATE) {
            *slow = fg_window_slow_count(e->in->window, leaf->threshold);
        }
        return 0;
    }
    PyObject *metric = e->in != NULL ? Py_XNewRef(e->in->metric)
                                     : PyObject_GetAttr(e->ctx, e->st->s_metric);
    if (metric == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "tripper input without a metric");
        }
        return -1;
    }
    int rc = 0;
    if (!fg_metric_check(e->st, metric)) {
        PyErr_Format(PyExc_TypeError, "ctx.metric must be a Metric, not %.200s",
                     Py_TYPE(metric)->tp_name);
        rc = -1;
    }
    else {
        FgMetric *m = (FgMetric *)metric;
        totals->total_count = m->total_count;
        totals->failure_count = m->failure_count;
        totals->total_duration = m->total_duration;
        if (leaf->kind == K_SLOW_RATE) {
            rc = fg_metric_slow_count(m, leaf->threshold, slow);
        }
    }
    Py_DECREF(metric);
    return rc;
}

/* The verdict of a leaf that decides on the metric's counts. */
static inline int
counts_verdict(const Leaf *leaf, const FgTotals *totals, int64_t slow)
{
    if (leaf->kind == K_MIN_REQUESTS) {
        return totals->total_count >= leaf->count;
    }
    if (totals->total_count == 0) {
        return 0;
    }
    /* As Python's true division: the counts convert to double exactly. */
    double calls = (double)totals->total_count;
    switch (leaf->kind) {
    case K_FAILURE_RATE:
        return (double)totals->failure_count / calls >= leaf->ratio;
    case K_AVG_LATENCY:
        return totals->total_duration / calls >= leaf->threshold;
    default:
        return (double)slow / calls >= leaf->ratio;
    }
}

static int
leaf_check(Eval *e, Leaf *leaf)
{
    if (leaf_needs_init(leaf)) {
        return fg_not_initialised((PyObject *)leaf);
    }
    switch (leaf->kind) {
    case K_CLOSED:
        return state_is(e, FG_CLOSED);
    case K_HALF_OPENED:
        return state_is(e, FG_HALF_OPEN);
    case K_FAILURE_STREAK:
        return streak_reached(e, leaf->count);
    default:
        break;
    }
    FgTotals totals;
    int64_t slow = 0;
    if (read_counts(e, leaf, &totals, &slow) < 0) {
        return -1;
    }
    return counts_verdict(leaf, &totals, slow);
}

static int node_check(Eval *e, PyObject *node);

/* Evaluates `self` by its built-in semantics, whatever its type overrides. */
static int
builtin_check(Eval *e, PyObject *self)
{
    Kind kind = ((Node *)self)->kind;
    if (kind != K_AND && kind != K_OR) {
        return leaf_check(e, (Leaf *)self);
    }
    int guarded = ++e->depth > SHALLOW_TREE;
    if (guarded && Py_EnterRecursiveCall(" while evaluating a tripper")) {
        e->depth--;
        return -1;
    }
    Composite *c = (Composite *)self;
    int result = node_check(e, c->left);
    /* Short-circuit: the right operand decides only when the left did not.
     * A negative result (an error, or FG_NEEDS_PYTHON) ends the walk. */
    if (result >= 0 && result == (kind == K_AND)) {
        result = node_check(e, c->right);
    }
    if (guarded) {
        Py_LeaveRecursiveCall();
    }
    e->depth--;
    return result;
}

static int
node_check(Eval *e, PyObject *node)
{
    if (is_native_node(e->st, node)) {
        return builtin_check(e, node);
    }
    return python_check(e, node);
}

/* ---- the interface the breaker uses (components.h) -----------------------*/

int
fg_tripper_check(FgState *st, PyObject *tripper, FgTripInput *in)
{
    Eval e = {.st = st, .in = in};
    return node_check(&e, tripper);
}

int
fg_tripper_check_native(FgState *st, PyObject *tripper, FgTripInput *in)
{
    Eval e = {.st = st, .in = in, .native_only = 1};
    return node_check(&e, tripper);
}

/* ---- the compiled program (trippers.h) ------------------------------------*/

int
fg_tripper_compile(FgState *st, PyObject *tripper)
{
    if (!is_composite(st, tripper)) {
        return 0; /* a leaf alone is evaluated as fast walked */
    }
    Composite *root = (Composite *)tripper;
    int rc = 0;
    /* Set once, before any breaker with this tripper evaluates it. */
    Py_BEGIN_CRITICAL_SECTION(tripper);
    if (root->program == NULL) {
        FgTripProgram *program;
        rc = fg_tree_compile(st, tripper, tripper_call, &program);
        if (rc == 0) {
            FG_STORE_PTR_RELEASE(root->program, program);
        }
    }
    Py_END_CRITICAL_SECTION();
    return rc;
}

/* The tree's verdict from the program, as builtin_check gives it for a
 * native window.
 *
 * Two passes: the leaves' verdicts first, none depending on another, then
 * the tree's verdict from them: one bit of the truth table, or the jumps.
 * Deciding each jump as its leaf is evaluated makes every step wait for the
 * previous leaf (its division, a branch on its kind that mispredicts)
 * before the next op is even loaded. Deciding a leaf that the
 * short-circuit then skips has no effect. */
static int
program_run(const FgTripProgram *p, const FgTripInput *in)
{
    FgTotals totals;
    fg_window_totals(in->window, &totals);
    RunInput r = run_input(p, in->state, in->consecutive_failures, &totals);
    if (p->has_truth) {
        return program_truth(p, &r);
    }
    signed char verdicts[PROGRAM_MAX_OPS];
    for (int i = 0; i < p->n; i++) {
        verdicts[i] = (signed char)op_verdict(&p->ops[i], &r);
    }
    int at = 0;
    do {
        int verdict = verdicts[at];
        const ProgramOp *op = &p->ops[at];
        if (verdict == OP_LATER) {
            int64_t slow = fg_window_slow_count(in->window, op->leaf->threshold);
            verdict = r.any && (double)slow / r.calls >= op->value;
        }
        at = op->next[verdict];
    } while (at >= 0);
    return at == PROGRAM_TRUE;
}

int
fg_tripper_check_compiled(FgState *st, PyObject *tripper, FgTripInput *in)
{
    /* Read without the root's lock: a breaker built meanwhile elsewhere may
     * be setting it. */
    const FgTripProgram *program =
        is_composite(st, tripper)
            ? FG_LOAD_PTR_ACQUIRE(((Composite *)tripper)->program)
            : NULL;
    if (program != NULL && in->window != NULL && program_current(program)) {
        return program_run(program, in);
    }
    return fg_tripper_check_native(st, tripper, in);
}

void
fg_trip_input_release(FgTripInput *in)
{
    Py_CLEAR(in->context);
}

/* ---- Python-facing behaviour shared by every tripper ---------------------*/

PyDoc_STRVAR(call_doc,
"__call__($self, /, ctx)\n"
"--\n\n"
"True when the breaker should open (or stay open) given `ctx`.");

static PyObject *
tripper_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"ctx", NULL};
    PyObject *ctx;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:__call__", kwlist, &ctx)) {
        int kind = ((Node *)self)->kind;
        if (kind < K_AND) {
            fg_bind_error(leaf_args[kind].call_key, self, args, kwargs);
        }
        return NULL;
    }
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    Eval e = {.st = st, .ctx = ctx};
    int result = builtin_check(&e, self);
    return result < 0 ? NULL : PyBool_FromLong(result);
}

static PyObject *
tripper_and(PyObject *a, PyObject *b)
{
    return fg_combine(a, b, offsetof(FgState, TripperAnd_Type), K_AND);
}

static PyObject *
tripper_or(PyObject *a, PyObject *b)
{
    return fg_combine(a, b, offsetof(FgState, TripperOr_Type), K_OR);
}

/* ---- leaves --------------------------------------------------------------*/

static PyObject *
new_leaf(PyTypeObject *type, Kind kind, int64_t count, double ratio,
         double threshold)
{
    Leaf *leaf = (Leaf *)type->tp_alloc(type, 0);
    if (leaf == NULL) {
        return NULL;
    }
    leaf->kind = kind;
    leaf->count = count;
    leaf->ratio = ratio;
    leaf->threshold = threshold;
    return (PyObject *)leaf;
}

static PyObject *
leaf_repr(Leaf *self)
{
    PyObject *name = fg_qualname((PyObject *)self);
    if (leaf_needs_init(self)) {
        return PyUnicode_FromFormat("<uninitialised %U object>", name);
    }
    switch (self->kind) {
    case K_MIN_REQUESTS:
    case K_FAILURE_STREAK:
        return PyUnicode_FromFormat("%U(%lld)", name, (long long)self->count);
    case K_FAILURE_RATE:
    case K_AVG_LATENCY:
    case K_SLOW_RATE:
        break;
    default:
        return PyUnicode_FromFormat("%U()", name);
    }
    PyObject *ratio = PyFloat_FromDouble(self->ratio);
    PyObject *threshold = ratio ? PyFloat_FromDouble(self->threshold) : NULL;
    PyObject *repr = NULL;
    if (threshold != NULL) {
        repr = self->kind == K_FAILURE_RATE ? PyUnicode_FromFormat("%U(%R)", name, ratio)
               : self->kind == K_AVG_LATENCY
                   ? PyUnicode_FromFormat("%U(%R)", name, threshold)
                   : PyUnicode_FromFormat("%U(%R, threshold=%R)", name, ratio,
                                          threshold);
    }
    Py_XDECREF(ratio);
    Py_XDECREF(threshold);
    return repr;
}

PyDoc_STRVAR(reduce_doc,
"__reduce__($self, /)\n--\n\nHelper for pickle and copy.");

static PyObject *
leaf_reduce(Leaf *self, PyObject *unused)
{
    PyObject *self_obj = (PyObject *)self;
    if (leaf_needs_init(self)) {
        fg_not_initialised(self_obj);
        return NULL;
    }
    switch (self->kind) {
    case K_MIN_REQUESTS:
    case K_FAILURE_STREAK:
        return fg_reduce(self_obj, Py_BuildValue("(L)", (long long)self->count),
                         NULL);
    case K_FAILURE_RATE:
        return fg_reduce(self_obj, Py_BuildValue("(d)", self->ratio), NULL);
    case K_AVG_LATENCY:
        return fg_reduce(self_obj, Py_BuildValue("(d)", self->threshold), NULL);
    case K_SLOW_RATE:
        return fg_reduce(self_obj, Py_BuildValue("(d)", self->ratio),
                         Py_BuildValue("{sd}", "threshold", self->threshold));
    default:
        return fg_reduce(self_obj, PyTuple_New(0), NULL);
    }
}

/* ---- argument validation (SPEC.md section 5, in the table's order) -------*/

/* A count: a number > 0, compared with integer counters. As in 0.9.4, any
 * real number is accepted (bool included); a fractional count is kept as the
 * next integer up, the first counter value that reaches it (total >= 2.5
 * holds from 3). One beyond int64 can never be reached, so it is kept as the
 * largest int64. */
static int
parse_count(PyObject *obj, int64_t *out)
{
    if (PyLong_Check(obj) || PyIndex_Check(obj)) {
        long long value;
        int overflow;
        if (fg_index(obj, &value, &overflow, NULL) < 0) {
            return -1;
        }
        *out = overflow > 0 ? INT64_MAX : overflow < 0 ? -1 : (int64_t)value;
    }
    else {
        double count;
        if (fg_as_real(obj, "count", &count) < 0) {
            return -1;
        }
        const double two_to_63 = 9223372036854775808.0; /* beyond INT64_MAX */
        *out = !(count > 0.0) ? -1 : count >= two_to_63 ? INT64_MAX : (int64_t)ceil(count);
    }
    if (*out <= 0) {
        PyErr_SetString(PyExc_ValueError, "Count must be greater than zero");
        return -1;
    }
    return 0;
}

/* A real number in (0, upper]; ValueError with `message` outside it. */
static int
parse_in_range(PyObject *obj, const char *what, double upper, const char *message,
               double *out)
{
    if (fg_as_real(obj, what, out) < 0) {
        return -1;
    }
    if (!(*out > 0.0 && *out <= upper)) {
        PyErr_SetString(PyExc_ValueError, message);
        return -1;
    }
    return 0;
}

static int
parse_ratio(PyObject *obj, double *out)
{
    return parse_in_range(obj, "ratio", 1.0, "Ratio must be between 0 and 1", out);
}

static int
parse_threshold(PyObject *obj, double *out)
{
    return parse_in_range(obj, "threshold", HUGE_VAL,
                          "Threshold must be greater than 0", out);
}

/* ---- constructors --------------------------------------------------------
 *
 * __new__ only allocates a leaf of its kind; __init__ parses, so that a
 * subclass's __init__ of any signature can call super().__init__(...)
 * (leaf_needs_init, trippers.h). __init__ runs once. */

#define LEAF_NEW(fn, kind)                                                    \
    static PyObject *fn(PyTypeObject *type, PyObject *args, PyObject *kwargs) \
    {                                                                         \
        (void)args;                                                           \
        (void)kwargs;                                                         \
        return new_leaf(type, (kind), 0, 0.0, 0.0);                           \
    }

LEAF_NEW(closed_new, K_CLOSED)
LEAF_NEW(half_opened_new, K_HALF_OPENED)
LEAF_NEW(min_requests_new, K_MIN_REQUESTS)
LEAF_NEW(failure_streak_new, K_FAILURE_STREAK)
LEAF_NEW(failure_rate_new, K_FAILURE_RATE)
LEAF_NEW(avg_latency_new, K_AVG_LATENCY)
LEAF_NEW(slow_rate_new, K_SLOW_RATE)

/* Every leaf's __init__: its kind (set by __new__) says what it takes. The
 * arguments are parsed and checked in the order of SPEC.md's table before
 * any field changes, so a failed __init__ leaves the leaf as it was. */
static int
leaf_init(Leaf *self, PyObject *args, PyObject *kwargs)
{
    PyObject *first = NULL, *second = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, leaf_args[self->kind].format,
                                     leaf_args[self->kind].keywords, &first,
                                     &second)) {
        return fg_bind_error(leaf_args[self->kind].key, (PyObject *)self, args,
                             kwargs);
    }
    if (self->initialised) {
        return fg_already_initialised((PyObject *)self);
    }
    int64_t count = 0;
    double ratio = 0.0, threshold = 0.0;
    int rc = 0;
    switch (self->kind) {
    case K_MIN_REQUESTS:
    case K_FAILURE_STREAK:
        rc = parse_count(first, &count);
        break;
    case K_FAILURE_RATE:
        rc = parse_ratio(first, &ratio);
        break;
    case K_AVG_LATENCY:
        rc = parse_threshold(first, &threshold);
        break;
    case K_SLOW_RATE:
        rc = parse_ratio(first, &ratio) < 0 ? -1 : parse_threshold(second, &threshold);
        break;
    default:
        break;
    }
    if (rc < 0) {
        return -1;
    }
    self->count = count;
    self->ratio = ratio;
    self->threshold = threshold;
    self->initialised = 1;
    return 0;
}

/* ---- leaf types ----------------------------------------------------------*/

static PyMethodDef leaf_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))tripper_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, call_doc},
    {"__reduce__", (PyCFunction)leaf_reduce, METH_NOARGS, reduce_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef count_members[] = {
    {"count", Py_T_LONGLONG, offsetof(Leaf, count), Py_READONLY, "The count to reach."},
    {NULL},
};

static PyMemberDef ratio_members[] = {
    {"ratio", Py_T_DOUBLE, offsetof(Leaf, ratio), Py_READONLY,
     "The share of calls to reach."},
    {NULL},
};

static PyMemberDef threshold_members[] = {
    {"threshold", Py_T_DOUBLE, offsetof(Leaf, threshold), Py_READONLY,
     "The mean duration in seconds to reach."},
    {NULL},
};

static PyMemberDef slow_rate_members[] = {
    {"ratio", Py_T_DOUBLE, offsetof(Leaf, ratio), Py_READONLY,
     "The share of slow calls to reach."},
    {"threshold", Py_T_DOUBLE, offsetof(Leaf, threshold), Py_READONLY,
     "The duration in seconds from which a call is slow."},
    {NULL},
};

#define LEAF_SLOTS(new_fn, doc, members)                                      \
    {Py_tp_doc, (void *)(doc)},                                               \
    {Py_tp_new, (void *)(new_fn)},                                            \
    {Py_tp_init, (void *)leaf_init},                                          \
    {Py_tp_dealloc, (void *)fg_plain_dealloc},                                \
    {Py_tp_traverse, (void *)fg_plain_traverse},                              \
    {Py_tp_repr, (void *)leaf_repr},                                          \
    {Py_tp_call, (void *)tripper_call},                                       \
    {Py_tp_iter, (void *)fg_tripper_leaf_iter},                               \
    {Py_tp_methods, (void *)leaf_methods},                                    \
    {Py_tp_members, (void *)(members)},                                       \
    {Py_nb_and, (void *)tripper_and},                                         \
    {Py_nb_or, (void *)tripper_or},                                           \
    {0, NULL}

#define LEAF_SPEC(name, slots)                                                \
    {"fluxgate.trippers." name, sizeof(Leaf), 0,                              \
     Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, slots}

static PyMemberDef no_members[] = {{NULL}};

PyDoc_STRVAR(closed_doc,
"Closed()\n--\n\n"
"True while the breaker is closed.");
static PyType_Slot closed_slots[] = {LEAF_SLOTS(closed_new, closed_doc, no_members)};
static PyType_Spec closed_spec = LEAF_SPEC("Closed", closed_slots);

PyDoc_STRVAR(half_opened_doc,
"HalfOpened()\n--\n\n"
"True while the breaker is half-open.");
static PyType_Slot half_opened_slots[] = {
    LEAF_SLOTS(half_opened_new, half_opened_doc, no_members)};
static PyType_Spec half_opened_spec = LEAF_SPEC("HalfOpened", half_opened_slots);

PyDoc_STRVAR(min_requests_doc,
"MinRequests(count)\n--\n\n"
"True once the window holds at least `count` calls.");
static PyType_Slot min_requests_slots[] = {
    LEAF_SLOTS(min_requests_new, min_requests_doc, count_members)};
static PyType_Spec min_requests_spec = LEAF_SPEC("MinRequests", min_requests_slots);

PyDoc_STRVAR(failure_rate_doc,
"FailureRate(ratio)\n--\n\n"
"True when there are calls and at least `ratio` of them failed.");
static PyType_Slot failure_rate_slots[] = {
    LEAF_SLOTS(failure_rate_new, failure_rate_doc, ratio_members)};
static PyType_Spec failure_rate_spec = LEAF_SPEC("FailureRate", failure_rate_slots);

PyDoc_STRVAR(avg_latency_doc,
"AvgLatency(threshold)\n--\n\n"
"True when there are calls and their mean duration is at least `threshold`\n"
"seconds.");
static PyType_Slot avg_latency_slots[] = {
    LEAF_SLOTS(avg_latency_new, avg_latency_doc, threshold_members)};
static PyType_Spec avg_latency_spec = LEAF_SPEC("AvgLatency", avg_latency_slots);

PyDoc_STRVAR(slow_rate_doc,
"SlowRate(ratio, *, threshold)\n--\n\n"
"True when there are calls and at least `ratio` of them took `threshold`\n"
"seconds or longer. The breaker classifies each successful call against the\n"
"thresholds of the SlowRate trippers it finds in its tripper.");
static PyType_Slot slow_rate_slots[] = {
    LEAF_SLOTS(slow_rate_new, slow_rate_doc, slow_rate_members)};
static PyType_Spec slow_rate_spec = LEAF_SPEC("SlowRate", slow_rate_slots);

PyDoc_STRVAR(failure_streak_doc,
"FailureStreak(count)\n--\n\n"
"True once the last `count` recorded calls all failed.");
static PyType_Slot failure_streak_slots[] = {
    LEAF_SLOTS(failure_streak_new, failure_streak_doc, count_members)};
static PyType_Spec failure_streak_spec = LEAF_SPEC("FailureStreak",
                                                   failure_streak_slots);

/* ---- composites ----------------------------------------------------------*/

static PyObject *
composite_new(PyTypeObject *type, PyObject *args, PyObject *kwargs, Kind kind,
              const char *format)
{
    static char *kwlist[] = {"left", "right", NULL};
    PyObject *left, *right;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, kwlist, &left, &right)) {
        return NULL;
    }
    if (!PyCallable_Check(left) || !PyCallable_Check(right)) {
        PyObject *bad = PyCallable_Check(left) ? right : left;
        PyErr_Format(PyExc_TypeError, "%s must be callable, not %.200s",
                     bad == left ? "left" : "right", Py_TYPE(bad)->tp_name);
        return NULL;
    }
    return fg_composite_new(type, kind, left, right);
}

static PyObject *
and_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    return composite_new(type, args, kwargs, K_AND, "OO:_And");
}

static PyObject *
or_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    return composite_new(type, args, kwargs, K_OR, "OO:_Or");
}

/* An operand's repr, parenthesised when it is itself a composite. */
static PyObject *
operand_repr(FgState *st, PyObject *operand)
{
    PyObject *repr = PyObject_Repr(operand);
    if (repr == NULL || !is_composite(st, operand)) {
        return repr;
    }
    Py_SETREF(repr, PyUnicode_FromFormat("(%U)", repr));
    return repr;
}

static PyObject *
composite_repr(Composite *self)
{
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyObject *left = operand_repr(st, self->left);
    PyObject *right = left ? operand_repr(st, self->right) : NULL;
    PyObject *repr = NULL;
    if (right != NULL) {
        repr = PyUnicode_FromFormat("%U %s %U", left,
                                    self->kind == K_AND ? "&" : "|", right);
    }
    Py_XDECREF(left);
    Py_XDECREF(right);
    return repr;
}

static PyObject *
composite_reduce(Composite *self, PyObject *unused)
{
    return fg_reduce((PyObject *)self, PyTuple_Pack(2, self->left, self->right),
                     NULL);
}

static PyMethodDef composite_methods[] = {
    {"__call__", (PyCFunction)(void (*)(void))tripper_call,
     METH_VARARGS | METH_KEYWORDS | METH_COEXIST, call_doc},
    {"__reduce__", (PyCFunction)composite_reduce, METH_NOARGS, reduce_doc},
    {NULL, NULL, 0, NULL},
};

#define COMPOSITE_SLOTS(new_fn, doc)                                          \
    {Py_tp_doc, (void *)(doc)},                                               \
    {Py_tp_new, (void *)(new_fn)},                                            \
    {Py_tp_dealloc, (void *)fg_composite_dealloc},                            \
    {Py_tp_traverse, (void *)fg_composite_traverse},                          \
    {Py_tp_clear, (void *)fg_composite_clear},                                \
    {Py_tp_repr, (void *)composite_repr},                                     \
    {Py_tp_call, (void *)tripper_call},                                       \
    {Py_tp_iter, (void *)fg_tripper_composite_iter},                          \
    {Py_tp_methods, (void *)composite_methods},                               \
    {Py_nb_and, (void *)tripper_and},                                         \
    {Py_nb_or, (void *)tripper_or},                                           \
    {0, NULL}

PyDoc_STRVAR(and_doc,
"_And(left, right)\n--\n\n"
"left(ctx) and right(ctx); built by `left & right`.");
static PyType_Slot and_slots[] = {COMPOSITE_SLOTS(and_new, and_doc)};
static PyType_Spec and_spec = {"fluxgate.trippers._And", sizeof(Composite), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, and_slots};

PyDoc_STRVAR(or_doc,
"_Or(left, right)\n--\n\n"
"left(ctx) or right(ctx); built by `left | right`.");
static PyType_Slot or_slots[] = {COMPOSITE_SLOTS(or_new, or_doc)};
static PyType_Spec or_spec = {"fluxgate.trippers._Or", sizeof(Composite), 0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, or_slots};

int
fg_trippers_init(PyObject *module, FgState *st)
{
    if (fg_add_type(module, &closed_spec, NULL, &st->Closed_Type, 1) < 0
        || fg_add_type(module, &half_opened_spec, NULL, &st->HalfOpened_Type, 1) < 0
        || fg_add_type(module, &min_requests_spec, NULL, &st->MinRequests_Type, 1) < 0
        || fg_add_type(module, &failure_rate_spec, NULL, &st->FailureRate_Type, 1) < 0
        || fg_add_type(module, &avg_latency_spec, NULL, &st->AvgLatency_Type, 1) < 0
        || fg_add_type(module, &slow_rate_spec, NULL, &st->SlowRate_Type, 1) < 0
        || fg_add_type(module, &failure_streak_spec, NULL, &st->FailureStreak_Type, 1) < 0
        || fg_add_type(module, &and_spec, NULL, &st->TripperAnd_Type, 1) < 0
        || fg_add_type(module, &or_spec, NULL, &st->TripperOr_Type, 1) < 0) {
        return -1;
    }
    return 0;
}

