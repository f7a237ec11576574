/* The C parts of BreakerRegistry (registry.c), which the httpx transport's
 * request (transport.c) looks breakers up with. */
#ifndef FLUXGATE_REGISTRY_H
#define FLUXGATE_REGISTRY_H

#include "state.h"

/* One key's breaker and what the registry's sweeps know about its use. */
typedef struct {
    PyObject_HEAD
    PyObject *breaker;   /* fixed when made */
    PyObject *listeners; /* fixed when made */
    double seen;
    int touched;         /* read and written with relaxed atomics */
} FgRegistryEntry;

/* The base of BreakerRegistry: its dict of entries, made with it and never
 * replaced (cleared only by a collection). */
typedef struct {
    PyObject_HEAD
    FgState *st; /* the type keeps the module alive */
    PyObject *entries;
} FgRegistryBase;

/* The breaker of key if the registry holds an entry for it: 1 with the
 * breaker in *breaker (a new reference) and the entry marked as used, 0 with
 * NULL there when it holds none (or something other than an entry), -1 with
 * an exception. */
int fg_registry_find(FgRegistryBase *registry, PyObject *key, PyObject **breaker);
/* registry[key]: the breaker of key (a new reference), its entry marked as
 * used; for a key the registry does not hold, registry._make(key). NULL with
 * an exception. */
PyObject *fg_registry_lookup(FgRegistryBase *registry, PyObject *key);

#endif /* FLUXGATE_REGISTRY_H */
