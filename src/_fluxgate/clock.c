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

/* The time module's current `name` is its own built-in function (compared by
 * the C function behind it, so that importing fluxgate while a clock is
 * already frozen changes nothing): 1 native, 0 replaced (*replacement set),
 * -1 error. `verified` remembers, where the interpreter allows it, the
 * version of the time module's namespace at which `name` was last found
 * native. */
static int
time_function_is_native(FgState *st, PyObject *name, PyCFunction native,
                        FgClockCheck *verified, PyObject **replacement)
{
    /* While the namespace is unchanged, the function object seen then is
     * still there; its C function is checked again because time-machine
     * swaps that in place. */
    uint64_t version = fg_dict_version(st->time_dict);
    if (version != 0 && version == verified->version
        && PyCFunction_GET_FUNCTION(verified->function) == native) {
        return 1;
    }
    verified->version = 0;
    PyObject *current;
    int found = fg_dict_get_ref(st->time_dict, name, &current);
    if (found < 0) {
        return -1;
    }
    if (found == 0) {
        /* A deleted attribute leaves nothing to honour: keep the native clock. */
        return 1;
    }
    if (PyCFunction_Check(current) && PyCFunction_GET_FUNCTION(current) == native) {
        verified->version = version;
        verified->function = current; /* borrowed: the namespace holds it */
        Py_DECREF(current);
        return 1;
    }
    *replacement = current;
    return 0;
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

int
fg_perf_counter(FgState *st, double *out)
{
    PyObject *replacement = NULL;
    int native = time_function_is_native(st, st->s_perf_counter,
                                         st->native_perf_counter_fn,
                                         &st->perf_counter_check, &replacement);
    if (native == 1) {
        *out = (double)fg_raw_perf_counter_ns() / 1e9;
        return 0;
    }
    return native < 0 ? -1 : call_clock(replacement, out);
}

int
fg_call_clock_start(FgState *st, FgCallClock *clock, double *now)
{
    clock->replacement = NULL;
    int native = time_function_is_native(st, st->s_perf_counter,
                                         st->native_perf_counter_fn,
                                         &st->perf_counter_check,
                                         &clock->replacement);
    if (native < 0) {
        return -1;
    }
    if (native == 0 && call_clock(Py_NewRef(clock->replacement), now) < 0) {
        fg_call_clock_release(clock);
        return -1;
    }
    if (native == 1) {
        *now = (double)fg_raw_perf_counter_ns() / 1e9;
    }
    return 0;
}

int
fg_call_clock_stop(FgCallClock *clock, double *now)
{
    if (clock->replacement == NULL) {
        *now = (double)fg_raw_perf_counter_ns() / 1e9;
        return 0;
    }
    PyObject *replacement = clock->replacement;
    clock->replacement = NULL;
    return call_clock(replacement, now);
}

int
fg_wall_time_ex(FgState *st, double *out, int *native)
{
    PyObject *replacement = NULL;
    *native = time_function_is_native(st, st->s_time, st->native_time_fn,
                                      &st->time_check, &replacement);
    if (*native == 1) {
        *out = fg_raw_wall_time();
        return 0;
    }
    return *native < 0 ? -1 : call_clock(replacement, out);
}

int
fg_wall_time(FgState *st, double *out)
{
    int native;
    return fg_wall_time_ex(st, out, &native);
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
            st->native_perf_counter_fn = m->ml_meth;
        }
        else if (strcmp(m->ml_name, "time") == 0) {
            st->native_time_fn = m->ml_meth;
        }
    }
    if (st->native_perf_counter_fn == NULL || st->native_time_fn == NULL) {
        PyErr_SetString(PyExc_ImportError,
                        "fluxgate: the time module has no perf_counter/time");
        return -1;
    }
    st->random_module = PyImport_ImportModule("random");
    return st->random_module == NULL ? -1 : 0;
}
