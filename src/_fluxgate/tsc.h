/* The monotonic clock read from the CPU's time-stamp counter.
 *
 * A protected call reads the monotonic clock twice, and on Linux
 * clock_gettime(CLOCK_MONOTONIC) costs about twice a bare `rdtsc`: the kernel
 * derives the clock from the same counter, with a fenced read, a sequence
 * check and a conversion. Where the kernel itself keeps time with the TSC
 * (its clocksource is "tsc", so the counter is invariant and synchronised
 * across CPUs), fg_tsc_now_ns() gives CLOCK_MONOTONIC's nanoseconds as
 *
 *     anchor_ns + (rdtsc() - anchor_tsc) * ns_per_tick
 *
 * from an anchor, a (counter, clock) pair read together, no older than
 * FG_TSC_ANCHOR_NS; any reading past that reads the clock itself and makes
 * it the new anchor. ns_per_tick is measured against the clock over at least
 * FG_TSC_CALIBRATE_NS and measured again every such span, so it follows the
 * rate NTP gives the clock; until it is known, and whenever a fresh reading
 * disagrees with the anchor's prediction by more than FG_TSC_TOLERANCE_NS
 * (a stepped counter, a new rate), every reading is a clock read. A reading
 * therefore stays within a few nanoseconds of clock_gettime while the
 * clock's rate moves by less than 500 ppm per FG_TSC_CALIBRATE_NS (a 500 ppm
 * change costs at most FG_TSC_ANCHOR_NS * 500e-6 = 100 ns).
 *
 * fg_tsc_wall_ns() gives CLOCK_REALTIME the same way, from the offset
 * between the two clocks read at the anchor: the kernel runs both at one
 * rate, so only a step of the wall clock (settimeofday, an NTP step) moves
 * the offset, and a derived reading sees it at the next anchor, at most
 * FG_TSC_ANCHOR_NS later.
 *
 * Elsewhere (other systems and CPUs, another clocksource, FLUXGATE_TSC=0 in
 * the environment at import), fg_tsc_now_ns() is fg_raw_perf_counter_ns()
 * and fg_tsc_wall_ns() fg_raw_wall_ns().
 *
 * The anchor is a sequence lock: writers (one at a time, by try-lock; a
 * reader that cannot write reads the clock) make the sequence odd while they
 * write; readers use what they read only if the sequence was even and
 * unchanged. On builds with the GIL every reader holds it, so the atomics
 * cost nothing beyond ordinary loads on x86-64. */
#ifndef FLUXGATE_TSC_H
#define FLUXGATE_TSC_H

#include "compat.h"

#if defined(__linux__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#  define FG_HAVE_TSC 1
#  include <x86intrin.h>
#else
#  define FG_HAVE_TSC 0
#endif

/* A derived reading is at most this far from its anchor. */
#define FG_TSC_ANCHOR_NS 200000
/* ns_per_tick is measured over spans of at least this. */
#define FG_TSC_CALIBRATE_NS 100000000
/* Each of an anchor's two clock reads lies between two counter reads at
 * most this far apart (half of it is the anchor's uncertainty). */
#define FG_TSC_PAIR_NS 100
/* A fresh clock read this far from the anchor's prediction distrusts the
 * rate (and the counter) until it has been measured again. */
#define FG_TSC_TOLERANCE_NS 1000

typedef struct {
    /* Read by every reading. */
    uint32_t seq;           /* odd while a writer changes the anchor */
    uint64_t anchor_tsc;
    int64_t anchor_ns;
    double ns_per_tick;     /* 0 while unknown */
    uint64_t anchor_ticks;  /* FG_TSC_ANCHOR_NS in ticks; 0 while unknown */
    int64_t wall_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC at the anchor */
    /* Written at initialisation only. */
    int usable;
    /* Writers' own. */
    int writing;            /* the writers' try-lock */
    uint64_t base_tsc;      /* start of the span ns_per_tick is measured on */
    int64_t base_ns;
} FgTsc;

/* Decides whether the counter may be used (FgState's, at module init). */
void fg_tsc_init(FgTsc *tsc);
/* In a forked child: no writer is left mid-write. */
void fg_tsc_after_fork(FgTsc *tsc);
/* Clock reads that also refresh the anchor (and the rate): the slow path of
 * fg_tsc_now_ns (wall == 0) and fg_tsc_wall_ns (wall == 1). */
int64_t fg_tsc_refresh(FgTsc *tsc, int wall);

/* The clock (wall: CLOCK_REALTIME, else CLOCK_MONOTONIC) at counter value
 * `tick`, derived from the anchor: 1 with *ns set, or 0 when the anchor
 * cannot give it (a writer is changing it, or `tick` lies before it or past
 * its age). */
static inline int
fg_tsc_derive(FgTsc *tsc, int wall, uint64_t tick, int64_t *ns)
{
#if FG_HAVE_TSC
    uint32_t seq = __atomic_load_n(&tsc->seq, __ATOMIC_ACQUIRE);
    uint64_t anchor_tsc = __atomic_load_n(&tsc->anchor_tsc, __ATOMIC_RELAXED);
    int64_t anchor_ns = __atomic_load_n(&tsc->anchor_ns, __ATOMIC_RELAXED);
    uint64_t anchor_ticks = __atomic_load_n(&tsc->anchor_ticks, __ATOMIC_RELAXED);
    int64_t offset = wall ? __atomic_load_n(&tsc->wall_offset_ns, __ATOMIC_RELAXED) : 0;
    double ns_per_tick;
    __atomic_load(&tsc->ns_per_tick, &ns_per_tick, __ATOMIC_RELAXED);
    /* A tick before the anchor wraps to a huge `ticks`. */
    uint64_t ticks = tick - anchor_tsc;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (ticks < anchor_ticks && (seq & 1) == 0
        && __atomic_load_n(&tsc->seq, __ATOMIC_RELAXED) == seq) {
        *ns = anchor_ns + offset + (int64_t)((double)ticks * ns_per_tick);
        return 1;
    }
#else
    (void)tsc, (void)wall, (void)tick, (void)ns;
#endif
    return 0;
}

/* A reading of the clock; *tick receives the counter value it was derived
 * from, or 0 when the clock itself was read. */
static inline int64_t
fg_tsc_read_ns(FgTsc *tsc, int wall, uint64_t *tick)
{
    *tick = 0;
#if FG_HAVE_TSC
    if (tsc->usable) {
        uint64_t now = __rdtsc();
        int64_t ns;
        if (fg_tsc_derive(tsc, wall, now, &ns)) {
            *tick = now;
            return ns;
        }
        return fg_tsc_refresh(tsc, wall);
    }
#endif
    return wall ? fg_raw_wall_ns() : fg_raw_perf_counter_ns();
}

/* CLOCK_MONOTONIC's nanoseconds: time.perf_counter()'s clock. */
static inline int64_t
fg_tsc_now_ns(FgTsc *tsc)
{
    uint64_t tick;
    return fg_tsc_read_ns(tsc, 0, &tick);
}

/* CLOCK_REALTIME's nanoseconds: time.time()'s clock. */
static inline int64_t
fg_tsc_wall_ns(FgTsc *tsc)
{
    uint64_t tick;
    return fg_tsc_read_ns(tsc, 1, &tick);
}

/* CLOCK_REALTIME's nanoseconds at counter value `tick` of an earlier
 * reading (so that one counter read serves both clocks), or now when that
 * is 0 or the anchor has moved on since. */
static inline int64_t
fg_tsc_wall_ns_at(FgTsc *tsc, uint64_t tick)
{
    int64_t ns;
    if (tick != 0 && fg_tsc_derive(tsc, 1, tick, &ns)) {
        return ns;
    }
    return fg_tsc_wall_ns(tsc);
}

#endif
