/* A breaker shared by the processes of a host (DESIGN.md D10): the layout of
 * its segment and how the state machine reaches it.
 *
 * The segment is one fixed block, mapped MAP_SHARED by every process that
 * attaches (the Python layer, fluxgate/shared.py, makes or opens it):
 *
 *   FgSegmentHeader   identity (magic, layout version, breaker and window
 *                     shape), the lock word and the commit sequence
 *   double[T]         the sorted distinct SlowRate thresholds
 *   FgCommit[2]       two copies of the small state: the machine state, the
 *                     window store's scalar fields, the T threshold entries
 *   int64_t[S]        the asyncio breaker's HALF_OPEN slots (owner pids)
 *   records           a CountWindow's durations and flags, or a TimeWindow's
 *                     buckets and rows (windows.h)
 *
 * Every change happens under the segment lock, between fg_shared_enter and
 * fg_shared_leave (FG_LOCK in machine.h). Enter copies the current commit
 * into the breaker's own machine state and window store, whose arrays point
 * into the records; the usual code then runs unchanged; leave writes the
 * other commit and publishes it by bumping the sequence. A process killed at
 * any instruction therefore leaves one whole commit behind: the next holder
 * takes the lock over (its owner pid no longer exists), rebuilds the
 * window's totals from the records (the dead process's half-written record
 * at most is lost or counted) and goes on. No lock is held while Python code
 * runs. */
#ifndef FLUXGATE_SHARED_H
#define FLUXGATE_SHARED_H

#include "machine.h"

/* "fluxgate" read as a little-endian word; written last when a segment is
 * made, so a segment without it was never finished. */
#define FG_SEGMENT_MAGIC UINT64_C(0x6574616778756c66)
#define FG_SEGMENT_VERSION 2

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t total_size;
    uint64_t boot_id;       /* the boot the segment was made in */
    uint64_t pid_namespace; /* the PID namespace of its processes */
    int64_t async_breaker;  /* 0 CircuitBreaker, 1 AsyncCircuitBreaker */
    int64_t window_kind;    /* WindowKind */
    int64_t window_size;
    int64_t max_half_open;  /* the asyncio breaker's slots, else 0 */
    int64_t n_thresholds;
    uint64_t commit_offset;
    uint64_t commit_size;
    uint64_t slots_offset;
    uint64_t records_offset;
    uint64_t flags_offset;  /* CountWindow flags, or TimeWindow rows */
    /* Changed at run time, with atomic operations only, each in a cache
     * line of its own: the lock word changes twice per record, the
     * sequence once, and the fields above are read on every call. */
    char pad_identity[64 - 15 * 8 % 64];
    int64_t lock_owner;     /* the process holding the segment lock, or 0 */
    char pad_lock[56];
    uint64_t sequence;      /* commits published; the current is sequence & 1 */
    uint64_t takeovers;     /* locks taken over from a dead process */
    char pad_sequence[48];
} FgSegmentHeader;

/* What the breaker asks of its segment to attach. */
typedef struct {
    int async_breaker;
    int window_kind;
    int64_t window_size;
    int64_t max_half_open;
    const double *thresholds;
    Py_ssize_t n_thresholds;
} FgSegmentShape;

/* Attach a breaker to the segment `host_memory` (a HostMemory) gives,
 * which it makes if it does not exist: the private window the breaker
 * records into goes to *window. NULL with TypeError, ValueError or OSError. */
FgShared *fg_shared_attach(FgState *st, PyObject *host_memory,
                           const FgSegmentShape *shape, PyObject **window);
void fg_shared_free(FgShared *shared);
int fg_shared_traverse(FgShared *shared, visitproc visit, void *arg);
/* Load the current commit into a breaker's machine state and window, under
 * the lock (done once at attach). */
void fg_shared_load(FgShared *shared, FgMachineState *machine, PyObject *window);

/* The asyncio breaker's host-wide HALF_OPEN slots: take a free one (1, or 0
 * when every slot is held by a live process), give one back. */
int fg_shared_take_slot(FgShared *shared);
void fg_shared_release_slot(FgShared *shared);

/* The token naming process `pid` in lock words and slots (FgState). */
int64_t fg_process_token(long pid);

/* The module's functions for fluxgate/shared.py (module.c adds them). */
extern PyMethodDef fg_shared_functions[];

#endif /* FLUXGATE_SHARED_H */
