/* The two breakers above the state machine (machine.h): CircuitBreaker
 * (breaker.c) with its protected-function wrapper (protected.c), both running
 * calls through run.c, and the asyncio surface (async_core.c). */
#ifndef FLUXGATE_BREAKER_H
#define FLUXGATE_BREAKER_H

#include "machine.h"

/* ---- run.c ----------------------------------------------------------------*/

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
