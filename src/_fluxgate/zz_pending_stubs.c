/* Transitional: weak stand-ins so the module imports while the component
 * units are being written; each real definition replaces its stand-in at link
 * time. This file goes away once all units are in. */
#include "components.h"
#include <string.h>
#define W __attribute__((weak))
static int nyi(void) { PyErr_SetString(PyExc_NotImplementedError, "component not built yet"); return -1; }
W int fg_tracker_check(FgState *st, PyObject *t, PyObject *e) { return nyi(); }
W int fg_retry_check(FgState *st, PyObject *r, double c, int64_t n) { return nyi(); }
W int fg_permit_check(FgState *st, PyObject *p, double c) { return nyi(); }
W int fg_window_is_native(FgState *st, PyObject *w) { return 0; }
W int fg_window_needs_timestamp(FgState *st, PyObject *w) { return 0; }
W int fg_window_add(PyObject *w, int s, double d, const double *a, Py_ssize_t n, double t) { return nyi(); }
W void fg_window_totals(PyObject *w, FgTotals *o) { memset(o, 0, sizeof *o); }
W int64_t fg_window_slow_count(PyObject *w, double t) { return 0; }
W void fg_window_clear(PyObject *w) { }
W PyObject *fg_window_metric(FgState *st, PyObject *w) { nyi(); return NULL; }
W int fg_tripper_check(FgState *st, PyObject *t, FgTripInput *in) { return nyi(); }
W void fg_trip_input_release(FgTripInput *in) { Py_CLEAR(in->context); }
W int fg_tripper_is_native(FgState *st, PyObject *t) { return 0; }
W int fg_tripper_collect_thresholds(FgState *st, PyObject *t, double **o, Py_ssize_t *n) { *o = NULL; *n = 0; return 0; }
