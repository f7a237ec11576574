/* A breaker shared by a fleet through Redis (DESIGN.md D11, fleet.c): what
 * the rest of the extension asks of the fleet unit. */
#ifndef FLUXGATE_FLEET_H
#define FLUXGATE_FLEET_H

#include "machine.h"

/* Give a fleet breaker's private native window (made for it) the other
 * members' part of the metric, for the breaker's sorted slow thresholds. */
int fg_fleet_attach_window(PyObject *window, const double *thresholds, Py_ssize_t n);

/* The module's functions for fluxgate/_fleet.py (module.c adds them). */
extern PyMethodDef fg_fleet_functions[];

#endif /* FLUXGATE_FLEET_H */
