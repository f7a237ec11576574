/* Shared declarations of the fluxgate._fluxgate extension: the entry points
 * each unit (one C file per type or concern) offers to the others. The module
 * state and type registration live in state.h, the component interface the
 * breaker evaluates in components.h. */
#ifndef FLUXGATE_H
#define FLUXGATE_H

#include "compat.h"
#include "state.h"

/* ---- Unit initialisers, called in this order by the module's exec slot. --*/
int fg_clock_init(PyObject *module, FgState *st);
int fg_metric_init(PyObject *module, FgState *st);
int fg_windows_init(PyObject *module, FgState *st);
int fg_trackers_init(PyObject *module, FgState *st);
int fg_trippers_init(PyObject *module, FgState *st);
int fg_retries_init(PyObject *module, FgState *st);
int fg_permits_init(PyObject *module, FgState *st);
int fg_breaker_init(PyObject *module, FgState *st);
int fg_signatures_init(PyObject *module, FgState *st);
/* The httpx transport's send step (status_check.c). */
int fg_status_check_init(PyObject *module, FgState *st);
/* BreakerRegistry's entries and lookups (registry.c), and the sync httpx
 * transport's request (transport.c). */
int fg_registry_init(PyObject *module, FgState *st);
int fg_transport_init(PyObject *module, FgState *st);
/* The remembered default key of an httpx request's origin in `keys` (a
 * dict), as a new reference: Py_None when keys holds none for it (status_check.c).
 * NULL with an exception. */
PyObject *fg_origin_key(FgState *st, PyObject *keys, PyObject *request);
/* The method descriptor a _SignedMethod of `st`'s module stands for, or
 * `obj` itself (borrowed). */
PyObject *fg_signed_method_target(FgState *st, PyObject *obj);

/* ---- clock.c: time and randomness, honouring replacements (DESIGN.md D6). */

/* Seconds of the monotonic clock: native unless time.perf_counter has been
 * replaced, in which case the replacement is called. -1 with an exception
 * set if a replacement raised or returned a non-number. */
int fg_perf_counter(FgState *st, double *out);
/* Seconds in `ns` nanoseconds: how a call timed by the native clock gets its
 * duration, and how a window reads back one it keeps as nanoseconds
 * (windows.h), so that both give the same double. */
static inline double
fg_seconds_of_ns(int64_t ns)
{
    return (double)ns * 1e-9;
}
/* The monotonic clock held for the length of one protected call: the
 * replacement check is made once, when the call starts, and both readings
 * come from the same clock. fg_call_clock_stop (or _release, when the
 * duration is not needed) must follow every successful start. */
typedef struct {
    PyObject *replacement; /* NULL for the native clock */
    FgTsc *tsc;            /* the native clock's reader */
    int64_t start_ns;      /* the native clock's start */
    double start;          /* the replacement's start, in seconds */
} FgCallClock;
/* How long a call took, in seconds: whole nanoseconds of the native clock,
 * or the difference of a replacement's readings; 0.0 when a clock moved
 * back (a test's) made it negative. */
typedef struct {
    double seconds;
    int64_t ns;        /* the same in nanoseconds when the native clock timed
                        * it (a window keeps that as is: windows.h), or -1 */
    uint64_t end_tick; /* the counter value of the native clock's end
                        * reading (tsc.h), or 0 */
} FgCallTime;
static inline FgCallTime
fg_call_time_ns(int64_t start_ns, int64_t end_ns, uint64_t end_tick)
{
    int64_t ns = end_ns > start_ns ? end_ns - start_ns : 0;
    return (FgCallTime){fg_seconds_of_ns(ns), ns, end_tick};
}
static inline FgCallTime
fg_call_time_seconds(double start, double end)
{
    return (FgCallTime){end > start ? end - start : 0.0, -1, 0};
}
static inline void
fg_call_clock_release(FgCallClock *clock)
{
    Py_CLEAR(clock->replacement);
}

/* Whether the time module's clock `which` is known to be its own, by the
 * check clock.c keeps current: 1, or 0 when clock.c must look it up.
 * 3.12+: a dict watcher on the time module's namespace keeps a flag per
 * clock, and the C function in the method-table entry is compared (where
 * time-machine swaps it). Before: the namespace's version at which the
 * clock was last found native, and the function object seen then, still
 * there while the version holds (its C function compared as well). */
static inline int
fg_clock_known_native(FgState *st, FgClockId which)
{
#if FG_DICT_WATCHERS
    FgClockWatch *watch = st->clock_watch_data;
    return watch != NULL && fg_atomic_load_int_relaxed(&watch->original[which])
           && st->clock_def[which]->ml_meth == st->clock_native[which];
#else
    const FgClockCheck *verified = &st->clock_check[which];
    uint64_t version = fg_dict_version(st->time_dict);
    return version != 0 && version == verified->version
           && PyCFunction_GET_FUNCTION(verified->function) == st->clock_native[which];
#endif
}

/* Start and stop the clock of a call: inline while the clock is native,
 * clock.c's otherwise. */
int fg_call_clock_start_slow(FgState *st, FgCallClock *clock);
int fg_call_clock_stop_replaced(FgCallClock *clock, FgCallTime *time);
static inline int
fg_call_clock_start(FgState *st, FgCallClock *clock)
{
    *clock = (FgCallClock){.tsc = &st->tsc};
    if (!fg_clock_known_native(st, FG_CLOCK_PERF_COUNTER)) {
        return fg_call_clock_start_slow(st, clock);
    }
    clock->start_ns = fg_tsc_now_ns(clock->tsc);
    return 0;
}
static inline int
fg_call_clock_stop(FgCallClock *clock, FgCallTime *time)
{
    if (clock->replacement != NULL) {
        return fg_call_clock_stop_replaced(clock, time);
    }
    uint64_t end_tick;
    int64_t end_ns = fg_tsc_read_ns(clock->tsc, 0, &end_tick);
    *time = fg_call_time_ns(clock->start_ns, end_ns, end_tick);
    return 0;
}
/* Wall-clock seconds, as the time module's current time() gives them. */
int fg_wall_time(FgState *st, double *out);
/* Whether `wait` seconds of wall-clock time have passed since `since`
 * (fg_wall_time's now - since >= wait): 1, 0, or -1 with an exception. A
 * retry's question at every refusal of an OPEN breaker: while the clock is
 * native and the counter's wall clock (tsc.h) puts now more than a
 * millisecond short of the wait, the answer is no without a clock read;
 * otherwise the clock is read. */
int fg_wall_time_reached(FgState *st, double since, double wait);
/* The same for a TimeWindow's bucket: the native clock is read from the
 * time-stamp counter where it can be (tsc.h), within nanoseconds of it, at
 * `tick` when that is an FgCallTime's end_tick (0: now). */
int fg_bucket_time(FgState *st, uint64_t tick, double *out);
/* The same, where only its second matters (a TimeWindow's record): the
 * native reading's second itself (fg_second_of_ns). */
int fg_bucket_second(FgState *st, uint64_t tick, double *out);
/* trunc((double)ns / 1e9), the second of a wall-clock reading as a
 * TimeWindow takes it, without the division where no rounding can carry
 * the reading across a second: converting ns to a double and dividing move
 * it by less than 1.5 us anywhere in int64_t's range. */
static inline double
fg_second_of_ns(int64_t ns)
{
    const int64_t margin = 2000;
    int64_t into = ns % 1000000000;
    if (ns >= 0 && into >= margin && into <= 1000000000 - margin) {
        return (double)(ns / 1000000000);
    }
    return trunc((double)ns / 1e9);
}
/* The same, telling whether the native clock was read (*native == 1): then
 * fg_raw_wall_time() may be read again where no Python code may run. */
int fg_wall_time_ex(FgState *st, double *out, int *native);
static inline double
fg_raw_wall_time(void)
{
    return (double)fg_raw_wall_ns() / 1e9;
}
/* One draw of the random module's current random(). */
int fg_random(FgState *st, double *out);
/* One draw of the random module's current uniform(a, b). */
int fg_uniform(FgState *st, double a, double b, double *out);

/* ---- values.c: instances of the Python layer's value classes. ----------- */

/* Read where `cls`'s fields `names` live; -1 with an exception. */
int fg_value_layout(PyObject *cls, const char *const *names, int n,
                    FgValueLayout *out);
/* A new instance of `cls` with fields `values` (by keyword when kwnames is
 * not NULL, as the class's __init__ takes them). */
PyObject *fg_value_new(PyObject *cls, const FgValueLayout *layout,
                       PyObject *const *values, int n, PyObject *kwnames);

/* ---- args.c: argument helpers shared by the component constructors. ---- */

/* A real number through __float__ (bool and int included); TypeError naming
 * `what` otherwise. NaN is returned as is: callers reject it with their
 * range message (SPEC.md section 5). */
int fg_as_double(PyObject *obj, const char *what, double *out);
/* fg_as_double for a constructor argument: an int too large for a double
 * counts as an infinity of its sign (instead of OverflowError), so that the
 * range checks give their messages. */
int fg_as_real(PyObject *obj, const char *what, double *out);
/* obj.__index__() as a long long: *overflow is 0, or the sign of an integer
 * beyond that range (*value is then -1). With `index` not NULL the int is
 * also returned there (a new reference). -1 with an exception when
 * __index__ fails. */
int fg_index(PyObject *obj, long long *value, int *overflow, PyObject **index);
/* A tuple of floats from n doubles. */
PyObject *fg_tuple_of_doubles(const double *values, Py_ssize_t n);
/* An integer through __index__; TypeError naming `what` otherwise. */
int fg_as_int64(PyObject *obj, const char *what, int64_t *out);

/* ---- Argument errors and initialisation (component.c). --------------------
 *
 * fg_bind_error: call with the exception a native argument parser raised.
 * When it is a TypeError and the arguments do not bind to the signature of
 * the Python stub `key` ("fluxgate.windows.CountWindow.__init__", see
 * fluxgate/_signatures.py), it is replaced by the TypeError Python raises
 * for that signature, word for word; otherwise it stands. `self` is the
 * instance (the class for a classmethod); args may be NULL for none, kwargs
 * NULL. Always returns -1 (NULL from the _fast variant), with an exception. */
int fg_bind_error(const char *key, PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *fg_bind_error_fast(const char *key, PyObject *self, PyObject *const *args,
                             Py_ssize_t nargs, PyObject *kwnames);
/* For a vectorcall method taking no argument: 0 when given none, else -1
 * with Python's error for the stub `key`. */
int fg_check_no_args(const char *key, PyObject *self, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames);
/* TypeError for __init__ called on an instance already initialised. */
int fg_already_initialised(PyObject *self);
/* TypeError for a built-in used before its __init__ ran (a subclass whose
 * __init__ did not call super().__init__(), or Type.__new__(Type)). */
int fg_not_initialised(PyObject *self);

#endif /* FLUXGATE_H */
