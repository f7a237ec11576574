/* The protected call, the hot path of both CircuitBreaker.call and the
 * functions @cb returns (protected.c): admit, read the clock, call, read the
 * clock, record, evaluate, return. With built-in components none of it
 * enters Python; the state machine it drives is machine.h's. */
#include "breaker.h"

static PyObject *
refuse_coroutine(FgState *st, PyObject *result)
{
    PyObject *r = PyObject_CallMethodNoArgs(result, st->s_close);
    Py_DECREF(result);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    PyErr_SetString(PyExc_TypeError,
                    "the protected function returned a coroutine; "
                    "use AsyncCircuitBreaker to protect async functions");
    return NULL;
}

PyObject *
fg_breaker_run(FgBreaker *cb, PyObject *func, PyObject *const *args,
               size_t nargsf, PyObject *kwnames)
{
    uint64_t period;
    int state = fg_machine_admit(cb, FG_ADMIT_SYNC, &period);
    if (state < 0) {
        return NULL;
    }
    if (state == FG_DISABLED) {
        PyObject *result = PyObject_Vectorcall(func, args, nargsf, kwnames);
        if (result != NULL && PyCoro_CheckExact(result)) {
            return refuse_coroutine(cb->st, result);
        }
        return result;
    }
    FgCallClock clock;
    if (fg_call_clock_start(cb->st, &clock) < 0) {
        return NULL;
    }
    PyObject *result = PyObject_Vectorcall(func, args, nargsf, kwnames);
    if (result == NULL) {
        fg_call_clock_release(&clock);
        PyObject *error = PyErr_GetRaisedException();
        if (PyErr_GivenExceptionMatches(error, PyExc_Exception)
            && fg_machine_fail(cb, period, error) < 0) {
            Py_DECREF(error);
            return NULL;
        }
        PyErr_SetRaisedException(error);
        return NULL;
    }
    if (PyCoro_CheckExact(result)) {
        fg_call_clock_release(&clock);
        return refuse_coroutine(cb->st, result);
    }
    FgCallTime time;
    if (fg_call_clock_stop(&clock, &time) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    if (fg_machine_record(cb, period, 1, &time) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

PyObject *
fg_apply_fallback(PyObject *fallback)
{
    PyObject *error = PyErr_GetRaisedException();
    if (!PyErr_GivenExceptionMatches(error, PyExc_Exception)) {
        PyErr_SetRaisedException(error);
        return NULL;
    }
    PyObject *result = PyObject_CallOneArg(fallback, error);
    if (result == NULL) {
        /* As `except Exception as e: return fallback(e)` would chain it. */
        fg_chain_context(error);
    }
    Py_DECREF(error);
    return result;
}
