/* The circuit breaker state machine (SPEC.md section 8): what it owns, and
 * what the two breakers above it (CircuitBreaker in breaker.c, _AsyncCore in
 * async_core.c) may ask of it. This header sits below both breakers and
 * includes nothing of theirs.
 *
 * Its units, each under the same critical-section rules (DESIGN.md D7):
 *   machine.c             admission, recording and evaluation: the hot path
 *   machine_fused.c       the record and evaluation of a success, in one
 *                         step, for the common shape of breaker
 *   machine_transitions.c transitions and the delivery of their signals
 *   machine_pywindow.c    a Python window's record()/reset(), in order
 *   machine_setup.c       construction, defaults and the object lifecycle
 *
 * The seam for another storage backend. Everything the breakers agree on
 * (state, period, changed_at, reopens, failure streak) lives in one
 * FgMachineState, reached only through fg_machine_state() and changed only
 * between FG_LOCK and FG_UNLOCK. A breaker shared by the processes of a
 * host (shared.h) keeps it in shared memory: FG_LOCK then also takes the
 * segment's lock and loads the current commit into cb->machine and the
 * window, and FG_UNLOCK publishes them. The rest of
 * FgBreaker is this process's own (its components, the signals waiting for
 * its listeners, its Python window's queue) and is guarded by
 * FG_LOCK_LOCAL, which never covers the machine state. */
#ifndef FLUXGATE_MACHINE_H
#define FLUXGATE_MACHINE_H

#include "fluxgate.h"

/* The state every process sharing a breaker must agree on. Every
 * transition starts a new period; an outcome is applied only in the period
 * its call was admitted in. */
typedef struct {
    FgStateId state;
    uint64_t period;
    double changed_at;
    int64_t reopens;
    int64_t consecutive_failures;
} FgMachineState;

/* A breaker's attachment to a host-shared segment (shared.c), or NULL. */
typedef struct FgShared FgShared;

/* One transition waiting to reach the listeners. Its depth counts the
 * listeners' commands that led to it (0 for a transition no listener made). */
typedef struct {
    FgStateId old_state;
    FgStateId new_state;
    double timestamp;
    int depth;
} FgPendingSignal;

/* A Python window's reset() (record NULL) or record(record), waiting to be
 * applied in order by one thread; seq tells its issuer which one is its. */
typedef struct {
    PyObject *record; /* owned; NULL for a reset */
    uint64_t seq;
} FgWindowOp;

/* The object both breaker types are: CircuitBreaker and _AsyncCore share
 * this layout and its lifecycle (machine_setup.c). */
typedef struct {
    PyObject_HEAD
    FgState *st; /* module state; the type keeps the module alive */

    /* Components, fixed at construction. */
    PyObject *window;
    PyObject *tracker;
    PyObject *tripper;
    PyObject *retry;
    PyObject *permit;
    PyObject *listeners; /* tuple */
    double *slow_thresholds; /* distinct SlowRate thresholds of the tripper,
                              * ascending */
    Py_ssize_t n_slow_thresholds;
    FgShared *shared;    /* the host-shared segment, or NULL */
    /* The fused record's plan (machine_fused.c), fixed at construction:
     * the version tag the window's type had when the breaker was found to
     * have the shape it serves (0 when it has not: every outcome then takes
     * the general path), and the window's kind (FG_WINDOW_NATIVE or
     * FG_WINDOW_TIMED). */
    unsigned int fused_window_tag;
    char fused_window_kind;
    char async_mode;     /* signals are taken by the asyncio surface */
    char window_draining; /* a thread is applying window_ops (below) */
    int delivering_depth; /* the depth of the signal being delivered */

    /* Read through fg_machine_state(), changed only under FG_LOCK (the
     * failure streak also under the window's lock alone: machine.c). */
    FgMachineState machine;
#ifdef Py_GIL_DISABLED
    /* The state and period, as fg_admission_pack() makes them, published
     * when a section changed them, so that admission reads one word instead
     * of taking the locks (free-threaded builds; a breaker that is not
     * host-shared). */
    uint64_t admission;
#endif
    /* The period the last command began (0 before any), under FG_LOCK: a
     * fleet breaker's sync tells a command from a transition the machine
     * made itself (fleet.c). */
    uint64_t command_period;

    /* Transitions not yet delivered to listeners, oldest first; the
     * process and thread delivering them right now (the depth of the
     * signal it is delivering, above: a listener's command goes one
     * deeper). */
    FgPendingSignal *pending;
    Py_ssize_t pending_head, pending_len, pending_cap;
    long delivering_pid; /* the process delivering them, or 0 */
    unsigned long delivering_thread;

    /* A Python window's record() and reset() run outside the critical
     * section and under no lock (user code may wait for another thread that
     * calls or commands this breaker). No record may land after the reset
     * of a later transition, nor before the reset of an earlier one: records
     * of the current period run at once, in parallel, unless operations are
     * waiting; a transition queues its reset, and a record behind a queued
     * reset queues too. One thread at a time applies the queue, in order,
     * once no record() is under way. The counts are this process's
     * (window_pid): a child forked meanwhile starts from zero. */
    FgWindowOp *window_ops;
    Py_ssize_t window_ops_head, window_ops_len, window_ops_cap;
    uint64_t window_op_seq;      /* the last sequence number given */
    Py_ssize_t window_recording; /* record() calls under way */
    long window_pid;

    PyObject *weakreflist;
#ifdef Py_GIL_DISABLED
    FgForkLink fork_link; /* on the module's list of breakers (fork.h) */
#endif
} FgBreaker;

/* ---- the storage and its locks --------------------------------------------*/

/* The machine state of `cb`. Every read and write of it goes through here. */
static inline FgMachineState *
fg_machine_state(FgBreaker *cb)
{
    return &cb->machine;
}

/* Take the segment lock, load the current commit into the breaker's
 * machine state and window; leave publishes them as the next commit
 * (`changed` 1) or only unlocks (shared.c). */
void fg_shared_enter(FgShared *shared, FgMachineState *machine, PyObject *window);
void fg_shared_leave(FgShared *shared, const FgMachineState *machine,
                     PyObject *window, int changed);

/* A consistent copy of a shared breaker's machine state read without the
 * segment lock (a sequence lock over the commits). */
void fg_shared_read(FgShared *shared, FgMachineState *out);

/* ---- admission without locks (free-threaded builds) ----------------------
 * Every section that may change the state or period publishes them as one
 * word; admission of a breaker that is not host-shared reads that word.
 * A word read just before a transition is published admits the call as if
 * it came just before the transition, which the locks allowed too: its
 * outcome carries the old period and is dropped. On GIL builds admission
 * reads the machine state itself. */
#ifdef Py_GIL_DISABLED
#  define FG_ADMISSION_STATE_BITS 3
static inline uint64_t
fg_admission_pack(const FgMachineState *ms)
{
    return ms->period << FG_ADMISSION_STATE_BITS | (uint64_t)ms->state;
}
static inline void
fg_admission_publish(FgBreaker *cb)
{
    uint64_t word = fg_admission_pack(&cb->machine);
    /* Stored only when it changed: a store would take the cache line away
     * from every thread reading it. */
    if (_Py_atomic_load_uint64_relaxed(&cb->admission) != word) {
        _Py_atomic_store_uint64_release(&cb->admission, word);
    }
}
#else
#  define fg_admission_publish(cb) ((void)0)
#endif

/* The machine state and a native window change together: on free-threaded
 * builds this locks the breaker and its window; on GIL builds it is empty
 * and the GIL makes the section atomic. A host-shared breaker also takes
 * its segment's lock. Nothing between the two calls Python code.
 * FG_UNLOCK_READ ends a section that changed nothing. */
#define FG_LOCK(cb)                                                           \
    Py_BEGIN_CRITICAL_SECTION2((PyObject *)(cb), (cb)->window);               \
    if ((cb)->shared != NULL) {                                               \
        fg_shared_enter((cb)->shared, &(cb)->machine, (cb)->window);          \
    }
#define FG_UNLOCK_AS(cb, changed)                                             \
    if ((cb)->shared != NULL) {                                               \
        fg_shared_leave((cb)->shared, &(cb)->machine, (cb)->window, (changed)); \
    }                                                                         \
    else if (changed) {                                                       \
        fg_admission_publish(cb);                                             \
    }                                                                         \
    Py_END_CRITICAL_SECTION2()
#define FG_UNLOCK(cb) FG_UNLOCK_AS(cb, 1)
#define FG_UNLOCK_READ(cb) FG_UNLOCK_AS(cb, 0)

/* This process's own bookkeeping (pending signals, the Python window's
 * queue): the breaker alone. Never used for the machine state. */
#define FG_LOCK_LOCAL(cb) Py_BEGIN_CRITICAL_SECTION((PyObject *)(cb))
#define FG_UNLOCK_LOCAL() Py_END_CRITICAL_SECTION()

/* A consistent copy of the machine state. */
static inline void
fg_machine_snapshot(FgBreaker *cb, FgMachineState *out)
{
    FG_LOCK(cb);
    *out = *fg_machine_state(cb);
    FG_UNLOCK_READ(cb);
}

/* ---- what the breakers ask of the machine ---------------------------------*/

/* How a call waits for a HALF_OPEN slot: the synchronous breaker has none;
 * the asyncio surface first admits without one and, when told to, takes a
 * slot and admits again while holding it. */
typedef enum {
    FG_ADMIT_SYNC,
    FG_ADMIT_NEEDS_SLOT,
    FG_ADMIT_HOLDING_SLOT,
} FgAdmitMode;
/* fg_machine_admit's answer when the caller must take (or give back) a
 * HALF_OPEN slot and ask again. */
#define FG_ADMIT_SLOT (-2)

/* May a call run now? The state it runs in (*period set to its period),
 * FG_ADMIT_SLOT, or -1 with CallNotPermittedError or a component's
 * exception set. Moves OPEN to HALF_OPEN when the retry allows. The states
 * that admit every call are read inline (on free-threaded builds from the
 * published word); the rest is fg_machine_admit_slow's. */
int fg_machine_admit_slow(FgBreaker *cb, FgAdmitMode mode, uint64_t *period);
static inline int
fg_machine_admit(FgBreaker *cb, FgAdmitMode mode, uint64_t *period)
{
    if (cb->shared == NULL && mode != FG_ADMIT_HOLDING_SLOT) {
#ifdef Py_GIL_DISABLED
        uint64_t word = _Py_atomic_load_uint64_acquire(&cb->admission);
        FgStateId state = (FgStateId)(word & ((1u << FG_ADMISSION_STATE_BITS) - 1));
        uint64_t now = word >> FG_ADMISSION_STATE_BITS;
#else
        FgStateId state = fg_machine_state(cb)->state;
        uint64_t now = fg_machine_state(cb)->period;
#endif
        if (state == FG_CLOSED || state == FG_METRICS_ONLY || state == FG_DISABLED) {
            *period = now;
            return (int)state;
        }
    }
    return fg_machine_admit_slow(cb, mode, period);
}
/* Apply the outcome of a call admitted in `period`, which took `time`:
 * record it, evaluate the tripper, transition. An outcome from an earlier
 * period is discarded. A success on a breaker of the common shape takes the
 * fused step (machine_fused.c) while the plan holds, any other outcome the
 * general path (machine.c), which takes a TimeWindow's bucket second when
 * the fused step has read it already (else NULL). fg_machine_fuse plans
 * the fused step at construction. */
int fg_machine_record_general(FgBreaker *cb, uint64_t period, int success,
                              const FgCallTime *time, const double *bucket_second);
int fg_machine_record_fused(FgBreaker *cb, uint64_t period, const FgCallTime *time);
void fg_machine_fuse(FgBreaker *cb);
static inline int
fg_machine_record(FgBreaker *cb, uint64_t period, int success,
                  const FgCallTime *time)
{
    if (success && cb->fused_window_tag != 0
        && fg_type_version(Py_TYPE(cb->window)) == cb->fused_window_tag) {
        return fg_machine_record_fused(cb, period, time);
    }
    return fg_machine_record_general(cb, period, success, time, NULL);
}
/* A call admitted in `period` raised `error` (an Exception): record it as a
 * failure if the tracker says so. -1 with the component's exception set
 * (chained to `error`) if the tracker or the window raised. */
int fg_machine_fail(FgBreaker *cb, uint64_t period, PyObject *error);
/* Move to `target` if still in *period (always when period is NULL), then
 * notify. 1 if this call made the transition, 0 if another got there first,
 * -1 on error; *changed_at (if not NULL) receives the new changed_at. */
int fg_machine_transition(FgBreaker *cb, const uint64_t *period,
                          FgStateId target, double *changed_at);
PyObject *fg_machine_info(FgBreaker *cb);
/* The pending signals as a list of Signal objects (asyncio surface). */
PyObject *fg_machine_take_signals(FgBreaker *cb);
/* Whether signals are waiting to be taken. */
int fg_machine_signals_pending(FgBreaker *cb);

/* The stateless default components every breaker shares, made once when
 * the module is initialised (after the component types). */
int fg_machine_create_defaults(FgState *st);

/* ---- the lifecycle both breaker types share (machine_setup.c) -------------*/

/* Allocate an unconfigured breaker of `type` (a subtype of either breaker
 * type); it refuses to be used until fg_machine_setup. */
FgBreaker *fg_machine_alloc(PyTypeObject *type);
/* Fill a newly allocated breaker's components; None means the default. On
 * error the breaker is left unconfigured, so setup may be tried again. */
int fg_machine_setup(FgBreaker *cb, PyObject *window, PyObject *tracker,
                     PyObject *tripper, PyObject *retry, PyObject *permit,
                     PyObject *listeners, PyObject *shared, int64_t max_half_open);
/* The type slots: tp_traverse, tp_clear, tp_dealloc. */
int fg_machine_tp_traverse(PyObject *self, visitproc visit, void *arg);
int fg_machine_tp_clear(PyObject *self);
void fg_machine_tp_dealloc(PyObject *self);

/* TypeError naming `name` unless obj is callable. */
int fg_require_callable(PyObject *obj, const char *name);

/* The current exception (which must be set) gets `context` as its
 * __context__ unless it has one, as raising inside `except context:`
 * would do. */
void fg_chain_context(PyObject *context);

/* ---- between the machine's own units ----------------------------------------*/

/* No transition: a value beside the states. */
#define FG_NO_TRANSITION FG_STATE_COUNT

/* machine_pywindow.c: a Python window's operations (FgBreaker.window_ops). */

/* Record one outcome in a Python window: 1 recorded, 2 queued and not yet
 * applied, 0 discarded (the period is over), -1 error. */
int fg_pywindow_record(FgBreaker *cb, uint64_t period, int success,
                       double duration, const double *slow_at,
                       Py_ssize_t n_slow);
/* A Python window's metric, which must be a Metric. */
PyObject *fg_pywindow_metric(FgBreaker *cb);
/* Inside FG_LOCK or FG_LOCK_LOCAL: forget a forked parent's threads. */
void fg_pywindow_fork_check(FgBreaker *cb, long pid);
/* Inside FG_LOCK or FG_LOCK_LOCAL: queue a reset (record NULL) or a record
 * (stolen); its sequence number, or 0 when out of memory. */
uint64_t fg_pywindow_push(FgBreaker *cb, PyObject *record);
/* Apply the queue unless another thread is; the error of operation `mine`,
 * if this thread applied it, goes to *my_error. */
void fg_pywindow_drain(FgBreaker *cb, uint64_t mine, PyObject **my_error);
/* Release the queue. */
void fg_pywindow_free(FgBreaker *cb);

#endif /* FLUXGATE_MACHINE_H */
