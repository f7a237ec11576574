/* Shared declarations of the fluxgate._fluxgate extension: the module state
 * and the entry points each unit (one C file per type or concern) offers to
 * the others. The component interface the breaker evaluates lives in
 * components.h. */
#ifndef FLUXGATE_H
#define FLUXGATE_H

#include "compat.h"

/* Every Python object the module keeps, listed once so that traverse and
 * clear can never miss one. */
#define FG_STATE_OBJECTS(X)                                                   \
    /* value types */                                                         \
    X(Metric_Type)                                                            \
    X(CallNotPermittedError)                                                  \
    /* windows */                                                             \
    X(CountWindow_Type)                                                       \
    X(TimeWindow_Type)                                                        \
    /* trackers */                                                            \
    X(TrackerAll_Type)                                                        \
    X(TypeOf_Type)                                                            \
    X(Custom_Type)                                                            \
    X(TrackerAnd_Type)                                                        \
    X(TrackerOr_Type)                                                         \
    X(TrackerNot_Type)                                                        \
    /* trippers */                                                            \
    X(Closed_Type)                                                            \
    X(HalfOpened_Type)                                                        \
    X(MinRequests_Type)                                                       \
    X(FailureRate_Type)                                                       \
    X(AvgLatency_Type)                                                        \
    X(SlowRate_Type)                                                          \
    X(FailureStreak_Type)                                                     \
    X(TripperAnd_Type)                                                        \
    X(TripperOr_Type)                                                         \
    /* retries */                                                             \
    X(Always_Type)                                                            \
    X(Never_Type)                                                             \
    X(Cooldown_Type)                                                          \
    X(Backoff_Type)                                                           \
    /* permits */                                                             \
    X(PermitAll_Type)                                                         \
    X(Random_Type)                                                            \
    X(RampUp_Type)                                                            \
    /* breaker */                                                             \
    X(CircuitBreaker_Type)                                                    \
    X(Protected_Type)                                                         \
    X(AsyncCore_Type)                                                         \
    X(Ticket_Type)                                                            \
    X(SignedMethod_Type)                                                      \
    X(msg_open)                                                               \
    X(msg_half_open)                                                          \
    X(msg_forced_open)                                                        \
    /* default components, shared by every breaker (they hold no state) */    \
    X(default_tracker)                                                        \
    X(default_tripper)                                                        \
    X(default_retry)                                                          \
    X(default_permit)                                                         \
    /* clocks and randomness */                                               \
    X(time_dict)                                                              \
    X(clock_watch) /* 3.12+: a capsule holding the FgClockWatch, or NULL */   \
    X(random_module)                                                          \
    /* classes and hooks handed over by the Python layer (_bind) */           \
    X(Record)                                                                 \
    X(CallContext)                                                            \
    X(Signal)                                                                 \
    X(CircuitBreakerInfo)                                                     \
    X(report_listener_error)                                                  \
    X(report_async_listener)                                                  \
    /* interned strings */                                                    \
    X(s_perf_counter)                                                         \
    X(s_time)                                                                 \
    X(s_random)                                                               \
    X(s_uniform)                                                              \
    X(s_success)                                                              \
    X(s_duration)                                                             \
    X(s_slow_at)                                                              \
    X(s_timestamp)                                                            \
    X(s_record)                                                               \
    X(s_get_metric)                                                           \
    X(s_reset)                                                                \
    X(s_call)                                                                 \
    X(s_close)                                                                \
    X(s_metric)                                                               \
    X(s_state)                                                                \
    X(s_consecutive_failures)

/* The six states, in the order of typing.get_args(State). */
typedef enum {
    FG_CLOSED = 0,
    FG_OPEN,
    FG_HALF_OPEN,
    FG_METRICS_ONLY,
    FG_DISABLED,
    FG_FORCED_OPEN,
    FG_STATE_COUNT
} FgStateId;

/* The time module's clocks, indexed by FgClockId in FgState (clock.c). */
typedef enum { FG_CLOCK_PERF_COUNTER = 0, FG_CLOCK_TIME, FG_CLOCK_COUNT } FgClockId;

#if !FG_DICT_WATCHERS
/* Before 3.12: the version of the time module's namespace (fg_dict_version)
 * at which one of its clocks was last found native, and the function object
 * found then (borrowed from the namespace, and only read while the version
 * holds). */
typedef struct {
    uint64_t version;
    PyObject *function;
} FgClockCheck;
#endif

/* 3.12+: whether the time module still holds its original clocks, kept up to
 * date by a dict watcher on its namespace (clock.c).  One per interpreter,
 * shared by every copy of this module in it. */
typedef struct FgClockWatch FgClockWatch;

/* The kinds of component, each with its own built-in types and methods
 * (components.h, fg_native_kind). */
typedef enum {
    FG_FAMILY_WINDOW,
    FG_FAMILY_TRACKER,
    FG_FAMILY_TRIPPER,
    FG_FAMILY_RETRY,
    FG_FAMILY_PERMIT,
    FG_FAMILY_COUNT
} FgFamily;

/* Entries per family of the cache of fg_native_kind's verdicts. */
#define FG_DISPATCH_WAYS 8

typedef struct FgState {
#define FG_DECLARE_FIELD(name) PyObject *name;
    FG_STATE_OBJECTS(FG_DECLARE_FIELD)
#undef FG_DECLARE_FIELD
    /* Interned state names, indexed by FgStateId. */
    PyObject *state_names[FG_STATE_COUNT];
    /* The C functions behind the time module's own clocks, and the entries
     * of its method table they come from (time-machine swaps the C function
     * in the entry). */
    PyCFunction clock_native[FG_CLOCK_COUNT];
    PyMethodDef *clock_def[FG_CLOCK_COUNT];
#if FG_DICT_WATCHERS
    /* Borrowed from the clock_watch capsule, or NULL when no watcher could
     * be set (each call then looks the clocks up). */
    FgClockWatch *clock_watch_data;
#else
    /* Where each was last seen native. */
    FgClockCheck clock_check[FG_CLOCK_COUNT];
#endif
    /* fg_native_kind's verdicts: a type's version tag << 8 | (kind + 1),
     * direct-mapped by the tag; 0 is an empty entry. */
    uint64_t dispatch_cache[FG_FAMILY_COUNT][FG_DISPATCH_WAYS];
} FgState;

extern PyModuleDef fluxgate_module_def;

/* Module state from a module, or from an instance of any of our types or of
 * a Python subclass of one. */
static inline FgState *
fg_state(PyObject *module)
{
    return (FgState *)PyModule_GetState(module);
}

FgState *fg_state_from_type(PyTypeObject *type);

/* Creates a type from a spec bound to the module, adds it to the module
 * under its short name unless `public` is 0, and stores it in *slot. */
int fg_add_type(PyObject *module, PyType_Spec *spec, PyObject *base,
                PyObject **slot, int public);

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
/* The method descriptor a _SignedMethod of `st`'s module stands for, or
 * `obj` itself (borrowed). */
PyObject *fg_signed_method_target(FgState *st, PyObject *obj);

/* ---- clock.c: time and randomness, honouring replacements (DESIGN.md D6). */

/* Seconds of the monotonic clock: native unless time.perf_counter has been
 * replaced, in which case the replacement is called. -1 with an exception
 * set if a replacement raised or returned a non-number. */
int fg_perf_counter(FgState *st, double *out);
/* The monotonic clock held for the length of one protected call: the
 * replacement check is made once, when the call starts, and both readings
 * come from the same clock. fg_call_clock_stop (or _release, when the
 * second reading is not needed) must follow every successful start. */
typedef struct {
    PyObject *replacement; /* NULL for the native clock */
} FgCallClock;
int fg_call_clock_start(FgState *st, FgCallClock *clock, double *now);
int fg_call_clock_stop(FgCallClock *clock, double *now);
static inline void
fg_call_clock_release(FgCallClock *clock)
{
    Py_CLEAR(clock->replacement);
}
/* Wall-clock seconds, as the time module's current time() gives them. */
int fg_wall_time(FgState *st, double *out);
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

/* ---- Argument helpers shared by the component constructors. ------------- */

/* A real number through __float__ (bool and int included); TypeError naming
 * `what` otherwise. NaN is returned as is: callers reject it with their
 * range message (SPEC.md section 5). */
int fg_as_double(PyObject *obj, const char *what, double *out);
/* fg_as_double for a constructor argument: an int too large for a double
 * counts as an infinity of its sign (instead of OverflowError), so that the
 * range checks give their messages. */
int fg_as_real(PyObject *obj, const char *what, double *out);
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
