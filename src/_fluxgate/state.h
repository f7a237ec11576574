/* The module state (FgState) and the two services every unit needs from
 * it: finding the state from one of the extension's types, and registering a
 * type in the module. It sits at the bottom of the extension with compat.h:
 * it calls nothing of the other units, and every unit may use it.
 *
 * The module definition itself (its exec slot, methods and state lifecycle)
 * is in module.c; this unit only uses its address, to tell the extension's
 * own modules from any other. */
#ifndef FLUXGATE_STATE_H
#define FLUXGATE_STATE_H

#include "compat.h"
#include "tsc.h"

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
    X(StatusCheck_Type)                                                       \
    X(RegistryEntry_Type)                                                     \
    X(RegistryBase_Type)                                                      \
    X(TransportBase_Type)                                                     \
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
    X(s_consecutive_failures)                                                 \
    X(s_status_code)                                                          \
    X(s_url)                                                                  \
    X(s_uri_reference)                                                        \
    X(s_make)                                                                 \
    X(s_call_method)                                                          \
    X(s_response)

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
typedef struct FgClockWatch {
    /* The namespace watched (identity only; NULL once it is deallocated). */
    PyObject *dict;
    PyMethodDef *def[FG_CLOCK_COUNT];
    /* 1: the namespace holds the original (or nothing); 0: look it up.
     * Written by the callback, read by every thread: relaxed atomics. */
    int original[FG_CLOCK_COUNT];
} FgClockWatch;

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

/* Where the fields of a value class's instance are (values.c); n is 0 when
 * the class is called instead. */
#define FG_VALUE_MAX_FIELDS 4
typedef struct {
    Py_ssize_t offsets[FG_VALUE_MAX_FIELDS];
    int n;
} FgValueLayout;

/* One breaker on its module's list of breakers (fork.h); `owner` and
 * `*companion` (its window, read when the list is walked) are the objects
 * whose locks a forked child frees. */
typedef struct FgForkLink {
    struct FgForkLink *prev, *next;
    PyObject *owner;
    PyObject **companion;
} FgForkLink;

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
    /* The monotonic clock from the time-stamp counter (tsc.h). */
    FgTsc tsc;
    /* fg_native_kind's verdicts: a type's version tag << 8 | (kind + 1),
     * direct-mapped by the tag; 0 is an empty entry. */
    uint64_t dispatch_cache[FG_FAMILY_COUNT][FG_DISPATCH_WAYS];
    /* Who this process is in a host-shared segment's lock word and slots:
     * its pid, and in the high 32 bits the low bits of its start time where
     * the system tells it (so a pid reused by a new process is not taken for
     * the dead holder). Refreshed after a fork (fluxgate/shared.py). */
    int64_t process_token;
    /* The value classes' layouts, read when _bind hands them over. */
    FgValueLayout signal_layout;
    FgValueLayout call_context_layout;
    FgValueLayout info_layout;
#ifdef Py_GIL_DISABLED
    /* Every breaker of this module, for a forked child (fork.h). */
    PyMutex fork_lock;
    FgForkLink fork_breakers;
#endif
} FgState;

/* The extension's module definition (module.c). Units use only its address:
 * it tells the extension's own modules from any other. */
extern PyModuleDef fluxgate_module_def;

/* The state of one of the extension's modules. */
static inline FgState *
fg_state(PyObject *module)
{
    return (FgState *)PyModule_GetState(module);
}

/* The state of the module that defined `type`, one of the extension's types
 * or a Python subclass of one; NULL with TypeError for any other type. */
FgState *fg_state_from_type(PyTypeObject *type);
/* The same for any type, or NULL when no copy of the extension defined it;
 * it never raises and leaves a pending exception as it was. */
FgState *fg_state_if_ours(PyTypeObject *type);

/* Creates a type from a spec bound to the module, adds it to the module
 * under its short name unless `public` is 0, and stores it in *slot. */
int fg_add_type(PyObject *module, PyType_Spec *spec, PyObject *base,
                PyObject **slot, int public);

#endif /* FLUXGATE_STATE_H */
