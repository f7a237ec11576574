/* Clocks and random draws (DESIGN.md D6).
 *
 * The native clocks are used while the time module still holds its original
 * functions; once something (freezegun, unittest.mock, time-machine) replaces
 * time.perf_counter or time.time on the module, the replacement is called
 * instead, so the library always sees the same time as the user's code.
 * Random draws always go through the random module's current functions so
 * that seeding and patching both work. */
#include "fluxgate.h"

#include <string.h>

static PyObject *
clock_name(FgState *st, FgClockId which)
{
    return which == FG_CLOCK_PERF_COUNTER ? st->s_perf_counter : st->s_time;
}

#if FG_DICT_WATCHERS
/* `value`, found in the time module's namespace under a clock's name, is the
 * time module's own function for it (the object made from its method-table
 * entry `def`). */
static int
is_original(PyObject *value, PyMethodDef *def)
{
    return value != NULL && PyCFunction_Check(value)
           && ((PyCFunctionObject *)value)->m_ml == def;
}

/* Looks the clock up in the time module's namespace: 1 native (its own
 * built-in function, compared by the C function behind it, so that importing
 * fluxgate while a clock is already frozen changes nothing), 0 replaced
 * (*replacement set to a new reference), -1 error. */
static int
look_up_clock(FgState *st, FgClockId which, PyObject **replacement)
{
    PyObject *current;
    int found = fg_dict_get_ref(st->time_dict, clock_name(st, which), &current);
    if (found < 0) {
        return -1;
    }
    if (found == 0) {
        /* A deleted attribute leaves nothing to honour: keep the native clock. */
        return 1;
    }
    if (PyCFunction_Check(current)
        && PyCFunction_GET_FUNCTION(current) == st->clock_native[which]) {
        Py_DECREF(current);
        return 1;
    }
    *replacement = current;
    return 0;
}

/* 3.12+: a dict watcher on the time module's namespace keeps, for each
 * clock, a flag saying whether the namespace still holds the time module's
 * own function.  A protected call then reads that flag and the C function in
 * the method-table entry (time-machine swaps it there, without touching the
 * namespace): no lookup, no reference taken, nothing written.
 *
 * A watcher's callback gets no context, and dict watchers are a few per
 * interpreter, so there is one FgClockWatch per interpreter, in a capsule in
 * the interpreter's dict, shared by every copy of this module there. */

#define CLOCK_WATCH_KEY "fluxgate._fluxgate.clock_watch"
static const char *const clock_names[FG_CLOCK_COUNT] = {"perf_counter", "time"};

static FgClockWatch *
clock_watch_of(PyObject *capsule)
{
    return (FgClockWatch *)PyCapsule_GetPointer(capsule, CLOCK_WATCH_KEY);
}

static void
clock_watch_free(PyObject *capsule)
{
    PyMem_RawFree(clock_watch_of(capsule));
}

/* This interpreter's FgClockWatch, or NULL (no exception) if there is none. */
static FgClockWatch *
find_clock_watch(void)
{
    PyObject *interp_dict = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (interp_dict == NULL) {
        return NULL;
    }
    PyObject *capsule;
    if (PyDict_GetItemStringRef(interp_dict, CLOCK_WATCH_KEY, &capsule) <= 0) {
        PyErr_Clear();
        return NULL;
    }
    /* The interpreter's dict keeps it alive. */
    FgClockWatch *watch = PyCapsule_IsValid(capsule, CLOCK_WATCH_KEY)
                              ? clock_watch_of(capsule) : NULL;
    Py_DECREF(capsule);
    return watch;
}

static int
clock_watch_callback(PyDict_WatchEvent event, PyObject *dict, PyObject *key,
                     PyObject *new_value)
{
    /* Called before the change is made, possibly with an exception set. */
    PyObject *exc = PyErr_GetRaisedException();
    FgClockWatch *watch = find_clock_watch();
    if (watch != NULL && watch->dict == dict) {
        for (int i = 0; i < FG_CLOCK_COUNT; i++) {
            int original;
            switch (event) {
            case PyDict_EVENT_ADDED:
            case PyDict_EVENT_MODIFIED:
            case PyDict_EVENT_DELETED:
                if (!PyUnicode_Check(key)
                    || PyUnicode_CompareWithASCIIString(key, clock_names[i]) != 0) {
                    continue;
                }
                /* Deleted: nothing to honour, the native clock is read. */
                original = new_value == NULL || is_original(new_value, watch->def[i]);
                break;
            case PyDict_EVENT_CLEARED:
                original = 1;
                break;
            case PyDict_EVENT_DEALLOCATED:
                watch->dict = NULL;
                original = 0;
                break;
            default: /* CLONED: filled from another dict; look it up */
                original = 0;
                break;
            }
            fg_atomic_store_int_relaxed(&watch->original[i], original);
        }
    }
    PyErr_SetRaisedException(exc);
    return 0;
}

/* Points the watch at st->time_dict: watched, and each flag from what the
 * namespace holds now. */
static int
clock_watch_bind(FgClockWatch *watch, int watcher_id, FgState *st)
{
    if (PyDict_Watch(watcher_id, st->time_dict) < 0) {
        return -1;
    }
    watch->dict = st->time_dict;
    for (int i = 0; i < FG_CLOCK_COUNT; i++) {
        watch->def[i] = st->clock_def[i];
        PyObject *current;
        if (fg_dict_get_ref(st->time_dict, clock_name(st, (FgClockId)i), &current) < 0) {
            return -1;
        }
        fg_atomic_store_int_relaxed(&watch->original[i],
                                    current == NULL || is_original(current, watch->def[i]));
        Py_XDECREF(current);
    }
    return 0;
}

/* Sets st->clock_watch (and _data) to this interpreter's watch, made on first
 * use.  Without a free watcher slot (or an interpreter dict) the module works
 * without: every call looks the clocks up. */
static int
clock_watch_init(FgState *st)
{
    PyObject *interp_dict = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (interp_dict == NULL) {
        return 0;
    }
    int rc = -1;
    PyObject *capsule = NULL;
    Py_BEGIN_CRITICAL_SECTION(interp_dict);
    if (PyDict_GetItemStringRef(interp_dict, CLOCK_WATCH_KEY, &capsule) < 0) {
        goto done;
    }
    if (capsule == NULL) {
        int watcher_id = PyDict_AddWatcher(clock_watch_callback);
        if (watcher_id < 0) {
            PyErr_Clear(); /* no free watcher slot: look the clocks up */
            rc = 0;
            goto done;
        }
        FgClockWatch *watch = PyMem_RawCalloc(1, sizeof(FgClockWatch));
        if (watch == NULL) {
            PyErr_NoMemory();
            (void)PyDict_ClearWatcher(watcher_id);
            goto done;
        }
        capsule = PyCapsule_New(watch, CLOCK_WATCH_KEY, clock_watch_free);
        if (capsule == NULL) {
            PyMem_RawFree(watch);
            (void)PyDict_ClearWatcher(watcher_id);
            goto done;
        }
        if (PyCapsule_SetContext(capsule, (void *)(intptr_t)watcher_id) < 0
            || PyDict_SetItemString(interp_dict, CLOCK_WATCH_KEY, capsule) < 0) {
            Py_CLEAR(capsule); /* frees the watch */
            (void)PyDict_ClearWatcher(watcher_id);
            goto done;
        }
    }
    FgClockWatch *watch = clock_watch_of(capsule);
    if (watch == NULL) {
        goto done;
    }
    if (watch->dict == NULL) {
        /* New, or its namespace is gone: watch this module's. */
        int watcher_id = (int)(intptr_t)PyCapsule_GetContext(capsule);
        if (clock_watch_bind(watch, watcher_id, st) < 0) {
            watch->dict = NULL;
            goto done;
        }
    }
    if (watch->dict == st->time_dict) {
        st->clock_watch = Py_NewRef(capsule);
        st->clock_watch_data = watch;
    }
    /* Otherwise this copy sees another time module: it looks its clocks up. */
    rc = 0;
done:
    Py_END_CRITICAL_SECTION();
    Py_XDECREF(capsule);
    return rc;
}

#else /* before 3.12 */

/* clock_is_native, once the namespace has changed since the clock was last
 * found native. */
static int
look_up_clock(FgState *st, FgClockId which, PyObject **replacement)
{
    FgClockCheck *verified = &st->clock_check[which];
    uint64_t version = fg_dict_version(st->time_dict);
    verified->version = 0;
    PyObject *current;
    int found = fg_dict_get_ref(st->time_dict, clock_name(st, which), &current);
    if (found <= 0) {
        return found < 0 ? -1 : 1; /* deleted: keep the native clock */
    }
    if (PyCFunction_Check(current)
        && PyCFunction_GET_FUNCTION(current) == st->clock_native[which]) {
        verified->version = version;
        verified->function = current; /* borrowed: the namespace holds it */
        Py_DECREF(current);
        return 1;
    }
    *replacement = current;
    return 0;
}

#endif

/* 1 native, 0 replaced (*replacement set), -1 error. */
static inline int
clock_is_native(FgState *st, FgClockId which, PyObject **replacement)
{
    if (fg_clock_known_native(st, which)) {
        return 1;
    }
    return look_up_clock(st, which, replacement);
}

static int
call_clock(PyObject *clock, double *out)
{
    PyObject *value = PyObject_CallNoArgs(clock);
    Py_DECREF(clock);
    if (value == NULL) {
        return -1;
    }
    *out = PyFloat_AsDouble(value);
    Py_DECREF(value);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* The native clocks, in nanoseconds. */
typedef int64_t (*NativeClock)(FgState *st, uint64_t tick);

static int64_t
monotonic_ns(FgState *st, uint64_t tick)
{
    (void)tick;
    return fg_tsc_now_ns(&st->tsc);
}

static int64_t
wall_ns(FgState *st, uint64_t tick)
{
    (void)st, (void)tick;
    return fg_raw_wall_ns();
}

static int64_t
bucket_ns(FgState *st, uint64_t tick)
{
    return fg_tsc_wall_ns_at(&st->tsc, tick);
}

/* One reading of clock `which`: `native_ns` when the time module holds its
 * own function (*native = 1), else its replacement's result (*native = 0).
 * -1 with an exception set on error. */
static inline int
read_clock(FgState *st, FgClockId which, NativeClock native_ns, uint64_t tick,
           double *out, int *native)
{
    PyObject *replacement = NULL;
    *native = clock_is_native(st, which, &replacement);
    if (*native == 1) {
        *out = (double)native_ns(st, tick) / 1e9;
        return 0;
    }
    return *native < 0 ? -1 : call_clock(replacement, out);
}

int
fg_perf_counter(FgState *st, double *out)
{
    int native;
    return read_clock(st, FG_CLOCK_PERF_COUNTER, monotonic_ns, 0, out, &native);
}

int
fg_call_clock_start_slow(FgState *st, FgCallClock *clock)
{
    int native = look_up_clock(st, FG_CLOCK_PERF_COUNTER, &clock->replacement);
    if (native < 0) {
        return -1;
    }
    if (native == 0 && call_clock(Py_NewRef(clock->replacement), &clock->start) < 0) {
        fg_call_clock_release(clock);
        return -1;
    }
    if (native == 1) {
        clock->start_ns = fg_tsc_now_ns(clock->tsc);
    }
    return 0;
}

int
fg_call_clock_stop_replaced(FgCallClock *clock, FgCallTime *time)
{
    PyObject *replacement = clock->replacement;
    clock->replacement = NULL;
    double end;
    if (call_clock(replacement, &end) < 0) {
        return -1;
    }
    *time = fg_call_time_seconds(clock->start, end);
    return 0;
}

int
fg_wall_time_ex(FgState *st, double *out, int *native)
{
    return read_clock(st, FG_CLOCK_TIME, wall_ns, 0, out, native);
}

int
fg_bucket_time(FgState *st, uint64_t tick, double *out)
{
    int native;
    return read_clock(st, FG_CLOCK_TIME, bucket_ns, tick, out, &native);
}

int
fg_bucket_second(FgState *st, uint64_t tick, double *out)
{
    PyObject *replacement = NULL;
    int native = clock_is_native(st, FG_CLOCK_TIME, &replacement);
    if (native == 1) {
        *out = fg_second_of_ns(fg_tsc_wall_ns_at(&st->tsc, tick));
        return 0;
    }
    return native < 0 ? -1 : call_clock(replacement, out);
}

int
fg_wall_time(FgState *st, double *out)
{
    int native;
    return fg_wall_time_ex(st, out, &native);
}

/* How far before a deadline the counter's wall clock must put now for
 * fg_wall_time_reached to answer without the clock: far beyond the
 * counter's error (within 100 ns of the clock, tsc.h). */
#define WALL_MARGIN_SECONDS 1e-3

int
fg_wall_time_reached(FgState *st, double since, double wait)
{
    if (fg_clock_known_native(st, FG_CLOCK_TIME)) {
        double approx = fg_seconds_of_ns(fg_tsc_wall_ns(&st->tsc));
        if (approx - since < wait - WALL_MARGIN_SECONDS) {
            return 0;
        }
    }
    double now;
    if (fg_wall_time(st, &now) < 0) {
        return -1;
    }
    return now - since >= wait;
}

static int
draw(PyObject *result, double *out)
{
    if (result == NULL) {
        return -1;
    }
    *out = PyFloat_AsDouble(result);
    Py_DECREF(result);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

int
fg_random(FgState *st, double *out)
{
    return draw(PyObject_CallMethodNoArgs(st->random_module, st->s_random), out);
}

int
fg_uniform(FgState *st, double a, double b, double *out)
{
    PyObject *low = PyFloat_FromDouble(a);
    PyObject *high = low ? PyFloat_FromDouble(b) : NULL;
    PyObject *result = NULL;
    if (high != NULL) {
        PyObject *args[] = {st->random_module, low, high};
        result = PyObject_VectorcallMethod(
            st->s_uniform, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_XDECREF(low);
    Py_XDECREF(high);
    return draw(result, out);
}

int
fg_clock_init(PyObject *module, FgState *st)
{
    fg_tsc_init(&st->tsc);
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) {
        return -1;
    }
    st->time_dict = Py_NewRef(PyModule_GetDict(time_module));
    /* The module's method table names the originals even if a replacement
     * is installed right now. */
    PyModuleDef *def = PyModule_GetDef(time_module);
    Py_DECREF(time_module);
    for (PyMethodDef *m = def ? def->m_methods : NULL; m && m->ml_name; m++) {
        if (strcmp(m->ml_name, "perf_counter") == 0) {
            st->clock_def[FG_CLOCK_PERF_COUNTER] = m;
            st->clock_native[FG_CLOCK_PERF_COUNTER] = m->ml_meth;
        }
        else if (strcmp(m->ml_name, "time") == 0) {
            st->clock_def[FG_CLOCK_TIME] = m;
            st->clock_native[FG_CLOCK_TIME] = m->ml_meth;
        }
    }
    if (st->clock_def[FG_CLOCK_PERF_COUNTER] == NULL || st->clock_def[FG_CLOCK_TIME] == NULL) {
        PyErr_SetString(PyExc_ImportError,
                        "fluxgate: the time module has no perf_counter/time");
        return -1;
    }
#if FG_DICT_WATCHERS
    if (clock_watch_init(st) < 0) {
        return -1;
    }
#endif
    st->random_module = PyImport_ImportModule("random");
    return st->random_module == NULL ? -1 : 0;
}
