/* A breaker shared by a fleet through Redis (DESIGN.md D11, fleet.c): what
 * the rest of the extension asks of the fleet unit. */
#ifndef FLUXGATE_FLEET_H
#define FLUXGATE_FLEET_H

#include "machine.h"

/* The module's functions for fluxgate/_fleet.py (module.c adds them). */
extern PyMethodDef fg_fleet_functions[];

#endif /* FLUXGATE_FLEET_H */
