/* The interface between the circuit breaker and its components
 * (DESIGN.md D4).
 *
 * The breaker never calls a component through Python when it does not have
 * to. Each kind of component has one entry point here. Given a node, the
 * entry point checks whether it is a built-in whose relevant method is still
 * the built-in's own (an exact built-in type, or a Python subclass that does
 * not override it); if so it evaluates the node directly in C on C numbers,
 * building no Python object. Any other node (a user subclass of the ABC, a
 * subclass of a built-in that overrides the method, a plain callable) is
 * called through Python with real value objects, for that node only: a
 * composite of built-ins around one Python callable still evaluates the
 * built-ins natively.
 *
 * Predicates return 1 (true), 0 (false) or -1 with an exception set. An
 * entry point may call Python code (a user node, a replaced clock, the random
 * module), so the breaker never calls one inside a critical section. */
#ifndef FLUXGATE_COMPONENTS_H
#define FLUXGATE_COMPONENTS_H

#include "fluxgate.h"

/* ---- Native or Python: one question for every kind of component ---------
 * A node is evaluated natively when the methods a direct call would run
 * (`node(...)` for trackers, trippers, retries and permits; `record`,
 * `get_metric` and `reset` for windows) are all the C methods of one
 * built-in type the node is an instance of. A method overridden in a
 * subclass, or patched onto a built-in class (they are as mutable as Python
 * classes), makes it a Python node, called the way a direct call would.
 *
 * fg_native_kind returns the index of that built-in in its family (the
 * order of the family's list in component.c, which each unit's own enum
 * follows), or FG_PYTHON. It never raises. The verdict depends only on the
 * type, and is cached in the module state against the type's version tag,
 * which CPython replaces whenever the type or a base changes: the common
 * case is one load and one comparison. A type without a tag at the moment
 * is looked up every time. The native kind is found from the built-in's own
 * module, so a component of another copy of the extension (a re-import) is
 * native too: evaluation depends only on the shared C layout. */
#define FG_PYTHON (-1)
/* A cache entry: the version tag above the low FG_KIND_BITS, kind + 1 in
 * them (0 for FG_PYTHON). */
#define FG_KIND_BITS 8
#define FG_KIND_MASK ((UINT64_C(1) << FG_KIND_BITS) - 1)

int fg_native_kind_slow(FgState *st, FgFamily family, PyTypeObject *type,
                        unsigned int tag);

static inline int
fg_native_kind(FgState *st, FgFamily family, PyObject *node)
{
    PyTypeObject *type = Py_TYPE(node);
    unsigned int tag = fg_type_version(type);
    uint64_t entry = fg_load_u64(&st->dispatch_cache[family][tag % FG_DISPATCH_WAYS]);
    if (tag != 0 && entry >> FG_KIND_BITS == tag) {
        return (int)(entry & FG_KIND_MASK) - 1;
    }
    return fg_native_kind_slow(st, family, type, tag);
}

/* ---- What component types share (component.c) ----------------------------*/

/* tp_traverse and tp_dealloc of a GC type whose instances hold no Python
 * object but their (heap) type. They are GC types all the same: the module
 * state keeps shared default instances, each referring to its type, which
 * refers to the module; only a traverse that visits the type lets the
 * collector see and break that cycle when a copy of the module goes away. */
int fg_plain_traverse(PyObject *self, visitproc visit, void *arg);
void fg_plain_dealloc(PyObject *self);
/* A component's class names. Every component type, built-in or a Python
 * subclass, is a heap type: reprs show its __qualname__ (borrowed), messages
 * its __name__ (the last part of tp_name, which is dotted for ours). */
static inline PyObject *
fg_qualname(PyObject *self)
{
    return ((PyHeapTypeObject *)Py_TYPE(self))->ht_qualname;
}
const char *fg_type_name(PyObject *self);
/* "Name(a=1.0, b=2.0)" with the type's qualified name. */
PyObject *fg_params_repr(PyObject *self, const char *const *names,
                         const double *values, int n);
/* __reduce__ rebuilding self from its constructor's arguments, with a Python
 * subclass's instance dict as the state, so that unpickling runs the
 * constructor's checks again. Steals args and kwargs; with kwargs (may be
 * NULL) it goes through functools.partial(type, **kwargs). */
PyObject *fg_reduce(PyObject *self, PyObject *args, PyObject *kwargs);

/* The truth of what a Python node returned, which it steals: 1 or 0, or -1
 * with an exception when `result` is NULL (the call raised) or its truth
 * test raises. */
int fg_truth(PyObject *result);

/* ---- Composites (composite.c) --------------------------------------------
 * The nodes that &, | and ~ build: a family's kind (what the family's
 * evaluator dispatches on) and one or two operands; `right` is NULL for a
 * negation. Fields are set at construction and NULL only after the garbage
 * collector cleared the node. */
typedef struct {
    PyObject_HEAD
    int kind;
    PyObject *left;
    PyObject *right;
    /* A tripper composite that is a breaker's tripper: the tree under it
     * compiled into a program (FgTripProgram, trippers.h), shared by every
     * breaker with that tripper, or NULL. A plain PyMem block that refers
     * to the leaves without owning them (the node owns its operands and
     * never changes them); freed with the operands. */
    void *program;
} FgComposite;

/* A new composite of `type` (right may be NULL). */
PyObject *fg_composite_new(PyTypeObject *type, int kind, PyObject *left,
                           PyObject *right);
/* a & b or a | b with either operand one of ours: NotImplemented unless both
 * are callable, else a composite of the type found in the module state at
 * `type_offset` (offsetof(FgState, ...)), of the given kind. */
PyObject *fg_combine(PyObject *left, PyObject *right, size_t type_offset,
                     int kind);
int fg_composite_traverse(PyObject *self, visitproc visit, void *arg);
int fg_composite_clear(PyObject *self);
void fg_composite_dealloc(PyObject *self);

/* ---- Trackers (trackers.c) -----------------------------------------------
 * tracker(exception) -> bool. `exception` is an Exception instance. */
int fg_tracker_check(FgState *st, PyObject *tracker, PyObject *exception);

/* ---- Retries (retries.c) -------------------------------------------------
 * retry(changed_at, reopens) -> bool: may OPEN try HALF_OPEN now? */
int fg_retry_check(FgState *st, PyObject *retry, double changed_at,
                   int64_t reopens);

/* ---- Permits (permits.c) -------------------------------------------------
 * permit(changed_at) -> bool: is this HALF_OPEN call admitted? */
int fg_permit_check(FgState *st, PyObject *permit, double changed_at);

/* ---- Windows (windows.c) ------------------------------------------------
 * A native window is a CountWindow or TimeWindow (or a subclass) whose
 * record, get_metric and reset are all the built-in's own, as the breaker
 * finds at each operation (a class may be patched at any time). For those the
 * breaker records through the functions below, which do no locking and call
 * no Python code: the breaker holds its critical section around them. For
 * any other window the breaker builds Record objects and calls its methods. */
typedef struct {
    int64_t total_count;
    int64_t failure_count;
    double total_duration;
} FgTotals;

/* How the breaker records into `window` right now (fg_native_kind): through
 * Python, natively, or natively with a wall-clock timestamp (a TimeWindow). */
enum { FG_WINDOW_PYTHON = 0, FG_WINDOW_NATIVE = 1, FG_WINDOW_TIMED = 2 };
int fg_window_native_kind(FgState *st, PyObject *window);
/* Record one outcome; slow_at lists the thresholds the call reached.
 * duration_ns is the duration in nanoseconds when it is fg_seconds_of_ns of
 * that (FgCallTime), else -1. -1 with an exception (MemoryError, or
 * ValueError for a non-finite timestamp), the window unchanged. */
int fg_window_add(PyObject *window, int success, double duration,
                  int64_t duration_ns, const double *slow_at, Py_ssize_t n_slow,
                  double timestamp);
void fg_window_totals(PyObject *window, FgTotals *out);
/* Running count of records at or above `threshold` (0 if never seen). */
int64_t fg_window_slow_count(PyObject *window, double threshold);
void fg_window_clear(PyObject *window);
/* The window's current totals as a new Metric (what get_metric() returns). */
PyObject *fg_window_metric(FgState *st, PyObject *window);

/* A window whose records live in a host-shared segment (window_shared.c,
 * shared.h). Its small state (the totals, the threshold table, the ring's
 * head or the pages' generation) is an image of fg_window_image_size bytes
 * that the segment keeps and the breaker loads and saves around each change;
 * the records are written in place. */
size_t fg_window_image_size(int n_thresholds);
/* The bytes of the records of a window of `kind` and `size` with
 * n_thresholds thresholds; *second_offset receives where its second array
 * (a CountWindow's flags, a TimeWindow's rows) starts. 0 when too large. */
size_t fg_window_records_size(int kind, int64_t size, int n_thresholds,
                              size_t *second_offset);
/* A new, empty window of `kind` whose records are at `records` (zeroed for
 * a new segment), or NULL with an exception. */
PyObject *fg_window_new_shared(FgState *st, int kind, int64_t size,
                               int n_thresholds, void *records,
                               size_t second_offset);
/* The kind and size a built-in window names for a shared one; -1 with
 * TypeError for any other window. */
int fg_window_shape(FgState *st, PyObject *window, int *kind, int64_t *size);
/* Whether an image holds a window of that shape whose fields are all in
 * range (a segment read from a file may have been damaged). */
int fg_window_image_valid(int kind, int64_t size, int n_thresholds, const void *image);
void fg_window_load(PyObject *window, const void *image);
void fg_window_save(PyObject *window, void *image);
/* Recompute the totals and threshold counts from the records, after a
 * process died while changing them. */
void fg_window_rebuild(PyObject *window);
/* Give a fleet breaker's private native window (made for it) the other
 * members' part of the metric, for the breaker's sorted slow thresholds
 * (window_remote.c; fleet.c sets it). */
int fg_fleet_attach_window(PyObject *window, const double *thresholds, Py_ssize_t n);

/* ---- Trippers (trippers.c) -----------------------------------------------
 * tripper(ctx) -> bool. The input names the metric either as a native window
 * (read in place, inside the breaker's critical section) or as a Metric
 * object (a snapshot, or what a user window's get_metric() returned). */
typedef struct {
    FgStateId state;
    int64_t consecutive_failures;
    PyObject *window; /* borrowed: a native window, or NULL */
    PyObject *metric; /* borrowed: a Metric, used when window is NULL */
    PyObject *context; /* owned: the CallContext built for Python nodes */
} FgTripInput;

int fg_tripper_check(FgState *st, PyObject *tripper, FgTripInput *in);
/* The same, calling no Python code, so that the breaker may evaluate inside
 * its critical section: FG_NEEDS_PYTHON, having built nothing, when the
 * verdict needs a Python node (one not skipped by short-circuiting). */
#define FG_NEEDS_PYTHON (-2)
int fg_tripper_check_native(FgState *st, PyObject *tripper, FgTripInput *in);
/* A tree of built-in trippers compiled into a flat program when a breaker
 * is built with it (trippers.h says how), kept by the tree's root
 * composite: fg_tripper_check_native's answer found without walking it.
 * fg_tripper_compile gives `tripper` its program unless it has one or
 * cannot have one (a leaf alone, a Python node); -1 with MemoryError. */
int fg_tripper_compile(FgState *st, PyObject *tripper);
/* fg_tripper_check_native through the program when there is one and no
 * class of its nodes has been patched since; else by walking `tripper`. */
int fg_tripper_check_compiled(FgState *st, PyObject *tripper, FgTripInput *in);
/* Releases what fg_tripper_check built (the CallContext). */
void fg_trip_input_release(FgTripInput *in);
/* The distinct SlowRate thresholds of the tree in ascending order, as a
 * PyMem_Malloc'ed array the caller frees (NULL with *n == 0 when none). A
 * tripper that is not iterable contributes none. */
int fg_tripper_collect_thresholds(FgState *st, PyObject *tripper,
                                  double **thresholds, Py_ssize_t *n);

#endif /* FLUXGATE_COMPONENTS_H */
