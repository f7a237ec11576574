/* Breakers in a child forked while other threads used them (free-threaded
 * builds only; on GIL builds everything here compiles to nothing).
 *
 * A breaker's critical sections lock its own and its window's per-object
 * mutex. CPython stops every thread before it forks, but a mutex unlocked
 * by one thread while another waited for it longer than a millisecond is
 * handed to the waiter, which then waits to run again: if the fork comes
 * first, the child inherits the mutex locked by a thread it does not have,
 * and its first call of that breaker blocks forever. So every breaker is on
 * a list in its module's state, and right after a fork the child marks the
 * mutexes of the listed breakers and their windows unlocked. That is safe
 * because the breaker's critical sections never run Python code (machine.h):
 * the thread that forked holds none of them, and a thread that was handed
 * one had not started using what it guards. */
#ifndef FLUXGATE_FORK_H
#define FLUXGATE_FORK_H

#include "state.h"

#ifdef Py_GIL_DISABLED
void fg_fork_track(FgState *st, FgForkLink *link, PyObject *owner,
                   PyObject **companion);
void fg_fork_untrack(FgState *st, FgForkLink *link);
#else
#  define fg_fork_track(st, link, owner, companion) ((void)0)
#  define fg_fork_untrack(st, link) ((void)0)
#endif

/* _release_after_fork(), run in a forked child by fluxgate's at-fork hook. */
extern PyMethodDef fg_fork_functions[];

#endif /* FLUXGATE_FORK_H */
