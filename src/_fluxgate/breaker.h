/* The circuit breaker state machine (machine.c), shared by CircuitBreaker
 * (breaker.c), its protected-function wrapper (protected.c) and the asyncio
 * surface (async_core.c). */
#ifndef FLUXGATE_BREAKER_H
#define FLUXGATE_BREAKER_H

#include "fluxgate.h"

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
    char async_mode;     /* signals are taken by the asyncio surface */

    /* State, changed only inside the breaker's critical section. Every
     * transition starts a new period; an outcome is applied only in the
     * period its call was admitted in. */
    FgStateId state;
    uint64_t period;
    double changed_at;
    int64_t reopens;
    int64_t consecutive_failures;

    /* Transitions not yet delivered to listeners, oldest first; the
     * process and thread delivering them right now, and the depth of the
     * signal it is delivering (a listener's command goes one deeper). */
    FgPendingSignal *pending;
    Py_ssize_t pending_head, pending_len, pending_cap;
    long delivering_pid; /* the process delivering them, or 0 */
    unsigned long delivering_thread;
    int delivering_depth;

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
    char window_draining;        /* a thread is applying the queue */
    long window_pid;

    PyObject *weakreflist;
} FgBreaker;

/* ---- machine.c ------------------------------------------------------------*/

/* The stateless default components every breaker shares, made once when
 * the module is initialised (after the component types). */
int fg_machine_create_defaults(FgState *st);
/* Fill a newly allocated breaker's components; None means the default. */
int fg_machine_setup(FgBreaker *cb, PyObject *window, PyObject *tracker,
                     PyObject *tripper, PyObject *retry, PyObject *permit,
                     PyObject *listeners);
int fg_machine_traverse(FgBreaker *cb, visitproc visit, void *arg);
int fg_machine_clear(FgBreaker *cb);
/* Everything dealloc must release, weak references included. */
void fg_machine_free(FgBreaker *cb);

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
 * exception set. Moves OPEN to HALF_OPEN when the retry allows. */
int fg_machine_admit(FgBreaker *cb, FgAdmitMode mode, uint64_t *period);
/* Apply the outcome of a call admitted in `period`: record it, evaluate the
 * tripper, transition. An outcome from an earlier period is discarded. */
int fg_machine_record(FgBreaker *cb, uint64_t period, int success,
                      double duration);
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

/* TypeError naming `name` unless obj is callable. */
int fg_require_callable(PyObject *obj, const char *name);

/* ---- breaker.c ------------------------------------------------------------*/

/* Run func(*args, **kwargs) under the breaker's protection: the whole
 * synchronous hot path. */
PyObject *fg_breaker_run(FgBreaker *cb, PyObject *func, PyObject *const *args,
                         size_t nargsf, PyObject *kwnames);

/* Replace the current exception with fallback(exception) when it is an
 * Exception; returns the fallback's result or NULL. */
PyObject *fg_apply_fallback(PyObject *fallback);

/* ---- protected.c, async_core.c -------------------------------------------*/

/* A protected callable for func. */
PyObject *fg_protected_new(FgState *st, FgBreaker *cb, PyObject *func,
                           PyObject *fallback);
int fg_protected_init(PyObject *module, FgState *st);
int fg_async_core_init(PyObject *module, FgState *st);

#endif /* FLUXGATE_BREAKER_H */
