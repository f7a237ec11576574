/* The monotonic clock read from the time-stamp counter: see tsc.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsc.h"

#if FG_HAVE_TSC
#  include <cpuid.h>

/* The CPU says its counter runs at a constant rate in every power state. */
static int
invariant_counter(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx)) {
        return 0;
    }
    return (edx >> 8) & 1;
}

/* The kernel keeps CLOCK_MONOTONIC with the counter: it has checked that the
 * counter is stable and synchronised across CPUs, and would have switched
 * to another clocksource otherwise. */
static int
kernel_clock_is_tsc(void)
{
    FILE *file = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (file == NULL) {
        return 0;
    }
    char name[32] = {0};
    int is_tsc = fgets(name, sizeof(name), file) != NULL && strcmp(name, "tsc\n") == 0;
    fclose(file);
    return is_tsc;
}

static void
publish(FgTsc *tsc, uint64_t anchor_tsc, int64_t anchor_ns, int64_t wall_offset_ns,
        double ns_per_tick)
{
    uint32_t seq = tsc->seq; /* only writers change it, one at a time */
    __atomic_store_n(&tsc->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&tsc->anchor_tsc, anchor_tsc, __ATOMIC_RELAXED);
    __atomic_store_n(&tsc->anchor_ns, anchor_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&tsc->wall_offset_ns, wall_offset_ns, __ATOMIC_RELAXED);
    __atomic_store(&tsc->ns_per_tick, &ns_per_tick, __ATOMIC_RELAXED);
    uint64_t anchor_ticks =
        ns_per_tick > 0 ? (uint64_t)(FG_TSC_ANCHOR_NS / ns_per_tick) : 0;
    __atomic_store_n(&tsc->anchor_ticks, anchor_ticks, __ATOMIC_RELAXED);
    __atomic_store_n(&tsc->seq, seq + 2, __ATOMIC_RELEASE);
}

/* The rate after a fresh pair (at, now_ns); under the writers' lock. */
static double
next_rate(FgTsc *tsc, uint64_t at, int64_t now_ns)
{
    double ns_per_tick = tsc->ns_per_tick;
    if (ns_per_tick > 0) {
        /* The anchor's prediction of now: off by more than its rate could
         * explain means a stepped counter or a new rate. */
        int64_t elapsed = now_ns - tsc->anchor_ns;
        double predicted = (double)tsc->anchor_ns
                           + (double)(int64_t)(at - tsc->anchor_tsc) * ns_per_tick;
        double allowed = FG_TSC_TOLERANCE_NS + 1e-4 * fabs((double)elapsed);
        if (fabs(predicted - (double)now_ns) > allowed) {
            tsc->base_tsc = at;
            tsc->base_ns = now_ns;
            return 0.0;
        }
    }
    if (tsc->base_tsc == 0 || at <= tsc->base_tsc || now_ns <= tsc->base_ns) {
        tsc->base_tsc = at;
        tsc->base_ns = now_ns;
        return ns_per_tick;
    }
    if (now_ns - tsc->base_ns < FG_TSC_CALIBRATE_NS) {
        return ns_per_tick;
    }
    double measured = (double)(now_ns - tsc->base_ns) / (double)(at - tsc->base_tsc);
    tsc->base_tsc = at;
    tsc->base_ns = now_ns;
    /* Between 1 MHz and 1 THz, and (once known) within 1000 ppm of the last
     * measure: anything else is measured again before it is used. */
    if (!(measured > 1e-3 && measured < 1e3)) {
        return 0.0;
    }
    if (ns_per_tick > 0 && fabs(measured / ns_per_tick - 1.0) > 1e-3) {
        return 0.0;
    }
    return measured;
}
#endif

void
fg_tsc_init(FgTsc *tsc)
{
    memset(tsc, 0, sizeof(*tsc));
#if FG_HAVE_TSC
    const char *setting = getenv("FLUXGATE_TSC");
    if (setting != NULL && strcmp(setting, "0") == 0) {
        return;
    }
    tsc->usable = invariant_counter() && kernel_clock_is_tsc();
#endif
}

void
fg_tsc_after_fork(FgTsc *tsc)
{
    tsc->writing = 0;
    if (tsc->seq & 1) {
        tsc->seq++;
    }
}

int64_t
fg_tsc_refresh(FgTsc *tsc, int wall)
{
#if FG_HAVE_TSC
    uint64_t before = __rdtsc();
    int64_t now_ns = fg_raw_perf_counter_ns();
    uint64_t middle = __rdtsc();
    int64_t wall_ns = fg_raw_wall_ns();
    uint64_t after = __rdtsc();
    int64_t result = wall ? wall_ns : now_ns;
    int idle = 0;
    if (!__atomic_compare_exchange_n(&tsc->writing, &idle, 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED)) {
        return result; /* another thread is writing the anchor */
    }
    /* A clock read takes 20-40 ns. Slower (an interruption, a preemption,
     * a busy hypervisor), it places the clock too loosely for an anchor: half
     * the time between the counter reads around it is the uncertainty.
     * While the rate is unknown no reading uses the anchor, and 300 ticks
     * are FG_TSC_PAIR_NS at 3 GHz. */
    double ns_per_tick = tsc->ns_per_tick;
    uint64_t most = ns_per_tick > 0 ? (uint64_t)(FG_TSC_PAIR_NS / ns_per_tick) : 300;
    if (middle - before <= most && after - middle <= most) {
        uint64_t at = before + (middle - before) / 2;
        double rate = next_rate(tsc, at, now_ns);
        /* The wall clock was read half a pair later than the monotonic one. */
        int64_t wall_offset = wall_ns - now_ns
                              - (int64_t)((double)((after - before) / 2) * rate);
        publish(tsc, at, now_ns, wall_offset, rate);
    }
    __atomic_store_n(&tsc->writing, 0, __ATOMIC_RELEASE);
    return result;
#else
    (void)tsc;
    return wall ? fg_raw_wall_ns() : fg_raw_perf_counter_ns();
#endif
}
