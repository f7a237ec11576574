/* The circuit breaker state machine, shared by CircuitBreaker (breaker.c),
 * its protected-function wrapper (protected.c) and the asyncio surface. */
#ifndef FLUXGATE_BREAKER_H
#define FLUXGATE_BREAKER_H

#include "fluxgate.h"

/* One transition waiting to reach the listeners. */
typedef struct {
    FgStateId old_state;
    FgStateId new_state;
    double timestamp;
} FgPendingSignal;

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
    double *slow_thresholds; /* distinct SlowRate thresholds of the tripper */
    Py_ssize_t n_slow_thresholds;
    char native_window;  /* record into the window's C buffers */
    char timed_window;   /* the window places records by wall time */
    char native_tripper; /* evaluate the tripper inside the critical section */

    /* State, changed only inside the breaker's critical section. Every
     * transition starts a new period; an outcome is applied only in the
     * period its call was admitted in. */
    FgStateId state;
    uint64_t period;
    double changed_at;
    int64_t reopens;
    int64_t consecutive_failures;

    /* Transitions not yet delivered to listeners, oldest first, and whether
     * some thread is delivering them right now. */
    FgPendingSignal *pending;
    Py_ssize_t pending_head, pending_len, pending_cap;
    char delivering;

    PyObject *weakreflist;
} FgBreaker;

/* Run func(*args, **kwargs) under the breaker's protection: the whole
 * synchronous hot path. */
PyObject *fg_breaker_run(FgBreaker *cb, PyObject *func, PyObject *const *args,
                         size_t nargsf, PyObject *kwnames);

/* Replace the current exception with fallback(exception) when it is an
 * Exception; returns the fallback's result or NULL. */
PyObject *fg_apply_fallback(PyObject *fallback);

/* A protected callable for func (protected.c). */
PyObject *fg_protected_new(FgState *st, FgBreaker *cb, PyObject *func,
                           PyObject *fallback);
int fg_protected_init(PyObject *module, FgState *st);

#endif /* FLUXGATE_BREAKER_H */
