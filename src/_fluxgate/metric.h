/* The Metric value type: the monoid that windows aggregate into. */
#ifndef FLUXGATE_METRIC_H
#define FLUXGATE_METRIC_H

#include "fluxgate.h"

typedef struct {
    PyObject_HEAD
    int64_t total_count;
    double total_duration;
    int64_t failure_count;
    PyObject *slow_counts; /* dict: threshold -> count */
} FgMetric;

/* A new Metric of the module's Metric type; steals `slow_counts` (a dict),
 * which may be NULL for an empty one. */
PyObject *fg_metric_new(FgState *st, int64_t total_count, double total_duration,
                        int64_t failure_count, PyObject *slow_counts);

/* 1 when `obj` is a Metric: of this module's Metric type or, after the
 * extension was loaded again, of another copy's (the same C layout). */
int fg_metric_check_slow(PyObject *obj);

static inline int
fg_metric_check(FgState *st, PyObject *obj)
{
    return PyObject_TypeCheck(obj, (PyTypeObject *)st->Metric_Type)
           || fg_metric_check_slow(obj);
}

/* slow_counts.get(threshold, 0) as a count; -1 with an exception on error. */
int fg_metric_slow_count(FgMetric *m, double threshold, int64_t *out);

#endif /* FLUXGATE_METRIC_H */
