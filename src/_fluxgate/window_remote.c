/* The other members' part of a fleet breaker's window (FgRemote,
 * windows.h): what the window units need of it, below them and below the
 * fleet unit (fleet.c), which sets it from the sync thread. */
#include "windows.h"

#include <time.h>

/* A monotonic clock in nanoseconds, cheap enough to read on every record of
 * a fleet breaker: Linux's coarse clock (a few milliseconds' resolution,
 * plenty against deadlines of several sync intervals). */
int64_t
fg_remote_clock_ns(void)
{
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
#endif
    return fg_raw_perf_counter_ns();
}

void
fg_remote_expire(FgRemote *remote)
{
    if (remote->live && fg_remote_clock_ns() > remote->deadline_ns) {
        remote->live = 0;
    }
}

void
fg_remote_free(FgRemote *remote)
{
    if (remote != NULL) {
        PyMem_Free(remote->thresholds);
        PyMem_Free(remote->slow);
        PyMem_Free(remote);
    }
}

int
fg_remote_add_slow(const FgRemote *remote, PyObject *slow)
{
    for (Py_ssize_t i = 0; i < remote->n; i++) {
        if (remote->slow[i] == 0) {
            continue;
        }
        PyObject *key = PyFloat_FromDouble(remote->thresholds[i]);
        if (key == NULL) {
            return -1;
        }
        PyObject *have;
        if (fg_dict_get_ref(slow, key, &have) < 0) {
            Py_DECREF(key);
            return -1;
        }
        long long sum = remote->slow[i];
        if (have != NULL) {
            sum += PyLong_AsLongLong(have);
            Py_DECREF(have);
            if (PyErr_Occurred()) {
                Py_DECREF(key);
                return -1;
            }
        }
        PyObject *value = PyLong_FromLongLong(sum);
        int rc = value == NULL ? -1 : PyDict_SetItem(slow, key, value);
        Py_XDECREF(value);
        Py_DECREF(key);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

/* Give a fleet breaker's private window its remote part, for the breaker's
 * slow thresholds. */
int
fg_fleet_attach_window(PyObject *window, const double *thresholds, Py_ssize_t n)
{
    Window *w = (Window *)window;
    FgRemote *r = PyMem_Calloc(1, sizeof(FgRemote));
    if (r == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    r->n = n;
    if (n > 0) {
        r->thresholds = PyMem_Calloc((size_t)n, sizeof(double));
        r->slow = PyMem_Calloc((size_t)n, sizeof(int64_t));
        if (r->thresholds == NULL || r->slow == NULL) {
            fg_remote_free(r);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(r->thresholds, thresholds, (size_t)n * sizeof(double));
    }
    fg_remote_free(w->remote);
    w->remote = r;
    return 0;
}
