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

/* True when `type` is `builtin` or a subclass that inherits `builtin`'s
 * attribute `name` unchanged (no override anywhere in between). */
int fg_inherits_method(PyTypeObject *type, PyTypeObject *builtin, PyObject *name);

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

#endif /* FLUXGATE_COMPONENTS_H */
