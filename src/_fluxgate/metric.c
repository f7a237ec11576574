/* Metric: totals over a set of call records, and a monoid under + and -.
 *
 * The scalar fields are C numbers; slow_counts is a dict (threshold to count)
 * because users read it as a Mapping and it is only built when Python asks
 * for a Metric (windows keep their running totals in C). The Python layer
 * (fluxgate/_values.py) adds the dataclass protocol, frozen assignment and
 * pickling. */
#include "metric.h"


static FgState *
metric_state(PyObject *self)
{
    return fg_state_from_type(Py_TYPE(self));
}

int
fg_metric_check_slow(PyObject *obj)
{
    FgState *st = fg_state_if_ours(Py_TYPE(obj));
    return st != NULL && PyObject_TypeCheck(obj, (PyTypeObject *)st->Metric_Type);
}

PyObject *
fg_metric_new(FgState *st, int64_t total_count, double total_duration,
              int64_t failure_count, PyObject *slow_counts)
{
    if (slow_counts == NULL && (slow_counts = PyDict_New()) == NULL) {
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)st->Metric_Type;
    FgMetric *m = (FgMetric *)type->tp_alloc(type, 0);
    if (m == NULL) {
        Py_DECREF(slow_counts);
        return NULL;
    }
    m->total_count = total_count;
    m->total_duration = total_duration;
    m->failure_count = failure_count;
    m->slow_counts = slow_counts;
    return (PyObject *)m;
}

int
fg_metric_slow_count(FgMetric *m, double threshold, int64_t *out)
{
    PyObject *key = PyFloat_FromDouble(threshold);
    if (key == NULL) {
        return -1;
    }
    PyObject *value;
    int found = fg_dict_get_ref(m->slow_counts, key, &value);
    Py_DECREF(key);
    if (found <= 0) {
        *out = 0;
        return found;
    }
    int rc = fg_as_int64(value, "slow_counts value", out);
    Py_DECREF(value);
    return rc;
}

/* dict(mapping), insisting on a mapping so that errors name the field. A
 * mapping is what dict() takes as one: an object with keys() (bytes, range
 * and other sequences would otherwise be read as pairs). */
static PyObject *
copy_slow_counts(PyObject *mapping)
{
    if (PyDict_Check(mapping)) {
        return PyDict_Copy(mapping);
    }
    PyObject *keys;
    int has_keys = PyObject_GetOptionalAttrString(mapping, "keys", &keys);
    if (has_keys < 0) {
        return NULL;
    }
    Py_XDECREF(keys);
    if (!has_keys) {
        PyErr_Format(PyExc_TypeError, "slow_counts must be a mapping, not %.200s",
                     Py_TYPE(mapping)->tp_name);
        return NULL;
    }
    return PyObject_CallOneArg((PyObject *)&PyDict_Type, mapping);
}

PyDoc_STRVAR(metric_doc,
"Metric(*, total_count, total_duration, failure_count, slow_counts)\n"
"--\n\n"
"Totals over a set of call records.\n\n"
"A monoid: ``Metric.empty()`` is the identity of ``+``, ``Metric.from_record``\n"
"lifts one record, and ``-`` removes a contribution again (a slow-counts key\n"
"brought to exactly zero is dropped).");

static PyObject *
metric_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"total_count", "total_duration", "failure_count",
                             "slow_counts", NULL};
    PyObject *count_obj, *duration_obj, *failures_obj, *slow_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOO:Metric", kwlist,
                                     &count_obj, &duration_obj, &failures_obj,
                                     &slow_obj)) {
        fg_bind_error("fluxgate.metric.Metric.__init__", Py_None, args, kwargs);
        return NULL;
    }
    int64_t count, failures;
    double duration;
    if (fg_as_int64(count_obj, "total_count", &count) < 0
        || fg_as_real(duration_obj, "total_duration", &duration) < 0
        || fg_as_int64(failures_obj, "failure_count", &failures) < 0) {
        return NULL;
    }
    PyObject *slow = copy_slow_counts(slow_obj);
    if (slow == NULL) {
        return NULL;
    }
    FgMetric *m = (FgMetric *)type->tp_alloc(type, 0);
    if (m == NULL) {
        Py_DECREF(slow);
        return NULL;
    }
    m->total_count = count;
    m->total_duration = duration;
    m->failure_count = failures;
    m->slow_counts = slow;
    return (PyObject *)m;
}

static int
metric_traverse(FgMetric *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->slow_counts);
    return 0;
}

static int
metric_clear(FgMetric *self)
{
    Py_CLEAR(self->slow_counts);
    return 0;
}

static void
metric_dealloc(FgMetric *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)metric_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}

/* ---- fields --------------------------------------------------------------
 * Each field has a setter so that object.__setattr__ works as it does on a
 * frozen dataclass; plain assignment is refused by the Python layer's
 * __setattr__. */

static PyObject *
get_total_count(FgMetric *self, void *closure)
{
    return PyLong_FromLongLong(self->total_count);
}

static int
set_total_count(FgMetric *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete field 'total_count'");
        return -1;
    }
    return fg_as_int64(value, "total_count", &self->total_count);
}

static PyObject *
get_total_duration(FgMetric *self, void *closure)
{
    return PyFloat_FromDouble(self->total_duration);
}

static int
set_total_duration(FgMetric *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "cannot delete field 'total_duration'");
        return -1;
    }
    return fg_as_real(value, "total_duration", &self->total_duration);
}

static PyObject *
get_failure_count(FgMetric *self, void *closure)
{
    return PyLong_FromLongLong(self->failure_count);
}

static int
set_failure_count(FgMetric *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "cannot delete field 'failure_count'");
        return -1;
    }
    return fg_as_int64(value, "failure_count", &self->failure_count);
}

static PyObject *
get_slow_counts(FgMetric *self, void *closure)
{
    return Py_NewRef(self->slow_counts);
}

static int
set_slow_counts(FgMetric *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete field 'slow_counts'");
        return -1;
    }
    PyObject *copy = copy_slow_counts(value);
    if (copy == NULL) {
        return -1;
    }
    Py_SETREF(self->slow_counts, copy);
    return 0;
}

/* ---- derived values ------------------------------------------------------*/

static PyObject *
get_avg_duration(FgMetric *self, void *closure)
{
    if (self->total_count == 0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(self->total_duration / (double)self->total_count);
}

static PyObject *
get_failure_rate(FgMetric *self, void *closure)
{
    if (self->total_count == 0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble((double)self->failure_count
                              / (double)self->total_count);
}

PyDoc_STRVAR(slow_rate_doc,
"slow_rate($self, /, threshold)\n"
"--\n\n"
"Share of calls at or above `threshold` seconds, or None without calls.");

static PyObject *
metric_slow_rate(FgMetric *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"threshold", NULL};
    PyObject *threshold;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:slow_rate", kwlist,
                                     &threshold)) {
        fg_bind_error("fluxgate.metric.Metric.slow_rate", (PyObject *)self, args,
                      kwargs);
        return NULL;
    }
    if (self->total_count == 0) {
        Py_RETURN_NONE;
    }
    PyObject *value;
    int found = fg_dict_get_ref(self->slow_counts, threshold, &value);
    if (found < 0) {
        return NULL;
    }
    if (found == 0) {
        return PyFloat_FromDouble(0.0);
    }
    PyObject *count = PyLong_FromLongLong(self->total_count);
    PyObject *rate = count ? PyNumber_TrueDivide(value, count) : NULL;
    Py_DECREF(value);
    Py_XDECREF(count);
    return rate;
}

/* ---- the monoid ----------------------------------------------------------*/

PyDoc_STRVAR(empty_doc,
"empty($type, /)\n"
"--\n\n"
"The identity of +: no calls, no slow counts.");

static PyObject *
metric_empty(PyTypeObject *type, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    if (fg_check_no_args("fluxgate.metric.Metric.empty", (PyObject *)type, args,
                         nargs, kwnames) < 0) {
        return NULL;
    }
    FgState *st = fg_state_from_type(type);
    return st ? fg_metric_new(st, 0, 0.0, 0, NULL) : NULL;
}

PyDoc_STRVAR(from_record_doc,
"from_record($type, /, record)\n"
"--\n\n"
"The metric of one record: one call, its duration, one failure if it\n"
"failed, and a count of one for each threshold in its slow_at.");

static PyObject *
metric_from_record(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"record", NULL};
    PyObject *record;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:from_record", kwlist,
                                     &record)) {
        fg_bind_error("fluxgate.metric.Metric.from_record", (PyObject *)type,
                      args, kwargs);
        return NULL;
    }
    FgState *st = fg_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    PyObject *success = PyObject_GetAttr(record, st->s_success);
    if (success == NULL) {
        return NULL;
    }
    int ok = PyObject_IsTrue(success);
    Py_DECREF(success);
    if (ok < 0) {
        return NULL;
    }
    PyObject *duration_obj = PyObject_GetAttr(record, st->s_duration);
    if (duration_obj == NULL) {
        return NULL;
    }
    double duration;
    int rc = fg_as_double(duration_obj, "record.duration", &duration);
    Py_DECREF(duration_obj);
    if (rc < 0) {
        return NULL;
    }
    PyObject *slow_at = PyObject_GetAttr(record, st->s_slow_at);
    if (slow_at == NULL) {
        return NULL;
    }
    PyObject *slow = PyDict_New();
    PyObject *iter = slow ? PyObject_GetIter(slow_at) : NULL;
    Py_DECREF(slow_at);
    if (iter == NULL) {
        Py_XDECREF(slow);
        return NULL;
    }
    PyObject *one = PyLong_FromLong(1);
    PyObject *threshold;
    while (one != NULL && (threshold = PyIter_Next(iter)) != NULL) {
        rc = PyDict_SetItem(slow, threshold, one);
        Py_DECREF(threshold);
        if (rc < 0) {
            break;
        }
    }
    Py_DECREF(iter);
    Py_XDECREF(one);
    if (PyErr_Occurred()) {
        Py_DECREF(slow);
        return NULL;
    }
    return fg_metric_new(st, 1, duration, ok ? 0 : 1, slow);
}

/* a.slow_counts merged with b.slow_counts, key by key: added, or subtracted
 * with keys brought to exactly zero dropped. */
static PyObject *
merge_slow_counts(PyObject *a, PyObject *b, int subtract)
{
    PyObject *result = PyDict_Copy(a);
    if (result == NULL) {
        return NULL;
    }
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(b, &pos, &key, &value)) {
        Py_INCREF(key);
        Py_INCREF(value);
        PyObject *current;
        int found = fg_dict_get_ref(result, key, &current);
        PyObject *merged = NULL;
        int rc = -1;
        if (found >= 0) {
            PyObject *base = found ? current : Py_NewRef(zero);
            merged = subtract ? PyNumber_Subtract(base, value)
                              : PyNumber_Add(base, value);
            Py_DECREF(base);
        }
        if (merged != NULL) {
            int is_zero = subtract ? PyObject_RichCompareBool(merged, zero, Py_EQ)
                                   : 0;
            if (is_zero > 0) {
                rc = found ? PyDict_DelItem(result, key) : 0;
            }
            else if (is_zero == 0) {
                rc = PyDict_SetItem(result, key, merged);
            }
            Py_DECREF(merged);
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc < 0) {
            Py_DECREF(zero);
            Py_DECREF(result);
            return NULL;
        }
    }
    Py_DECREF(zero);
    return result;
}

/* a + b or a - b on a counter; OverflowError naming `what` rather than
 * wrapping around (signed overflow is undefined behaviour in C). */
static int
combine_count(int64_t a, int64_t b, int subtract, const char *what,
              int64_t *out)
{
    int overflow = subtract ? (b < 0 ? a > INT64_MAX + b : a < INT64_MIN + b)
                            : (b > 0 ? a > INT64_MAX - b : a < INT64_MIN - b);
    if (overflow) {
        PyErr_Format(PyExc_OverflowError, "%s is out of range", what);
        return -1;
    }
    *out = subtract ? a - b : a + b;
    return 0;
}

static PyObject *
metric_combine(PyObject *left, PyObject *right, int subtract)
{
    FgState *st = NULL;
    if (PyObject_TypeCheck(left, Py_TYPE(right))
        || PyObject_TypeCheck(right, Py_TYPE(left))) {
        st = metric_state(left);
        if (st == NULL) {
            PyErr_Clear();
        }
    }
    if (st == NULL || !fg_metric_check(st, left) || !fg_metric_check(st, right)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    FgMetric *a = (FgMetric *)left, *b = (FgMetric *)right;
    int64_t count, failures;
    if (combine_count(a->total_count, b->total_count, subtract, "total_count",
                      &count) < 0
        || combine_count(a->failure_count, b->failure_count, subtract,
                         "failure_count", &failures) < 0) {
        return NULL;
    }
    PyObject *slow = merge_slow_counts(a->slow_counts, b->slow_counts, subtract);
    if (slow == NULL) {
        return NULL;
    }
    double duration = subtract ? a->total_duration - b->total_duration
                               : a->total_duration + b->total_duration;
    return fg_metric_new(st, count, duration, failures, slow);
}

static PyObject *
metric_add(PyObject *left, PyObject *right)
{
    return metric_combine(left, right, 0);
}

static PyObject *
metric_subtract(PyObject *left, PyObject *right)
{
    return metric_combine(left, right, 1);
}

/* ---- dataclass-like behaviour --------------------------------------------*/

static PyObject *
metric_richcompare(PyObject *self, PyObject *other, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(self) != Py_TYPE(other)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    FgMetric *a = (FgMetric *)self, *b = (FgMetric *)other;
    int equal = a->total_count == b->total_count
                && a->total_duration == b->total_duration
                && a->failure_count == b->failure_count;
    if (equal) {
        equal = PyObject_RichCompareBool(a->slow_counts, b->slow_counts, Py_EQ);
        if (equal < 0) {
            return NULL;
        }
    }
    return PyBool_FromLong(op == Py_EQ ? equal : !equal);
}

static PyObject *
metric_repr(FgMetric *self)
{
    PyObject *qualname = PyObject_GetAttrString((PyObject *)Py_TYPE(self),
                                                "__qualname__");
    if (qualname == NULL) {
        return NULL;
    }
    PyObject *duration = PyFloat_FromDouble(self->total_duration);
    PyObject *repr = NULL;
    if (duration != NULL) {
        repr = PyUnicode_FromFormat(
            "%U(total_count=%lld, total_duration=%R, failure_count=%lld, "
            "slow_counts=%R)",
            qualname, (long long)self->total_count, duration,
            (long long)self->failure_count, self->slow_counts);
        Py_DECREF(duration);
    }
    Py_DECREF(qualname);
    return repr;
}

static PyMethodDef metric_methods[] = {
    {"empty", (PyCFunction)(void (*)(void))metric_empty,
     METH_FASTCALL | METH_KEYWORDS | METH_CLASS, empty_doc},
    {"from_record", (PyCFunction)(void (*)(void))metric_from_record,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     from_record_doc},
    {"slow_rate", (PyCFunction)(void (*)(void))metric_slow_rate,
     METH_VARARGS | METH_KEYWORDS, slow_rate_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef metric_getset[] = {
    {"total_count", (getter)get_total_count, (setter)set_total_count,
     "Number of calls.", NULL},
    {"total_duration", (getter)get_total_duration, (setter)set_total_duration,
     "Sum of the calls' durations in seconds.", NULL},
    {"failure_count", (getter)get_failure_count, (setter)set_failure_count,
     "Number of failed calls.", NULL},
    {"slow_counts", (getter)get_slow_counts, (setter)set_slow_counts,
     "Slow threshold (seconds) to the number of calls at or above it.", NULL},
    {"avg_duration", (getter)get_avg_duration, NULL,
     "Mean duration in seconds, or None without calls.", NULL},
    {"failure_rate", (getter)get_failure_rate, NULL,
     "Share of failed calls, or None without calls.", NULL},
    {NULL},
};

static PyType_Slot metric_slots[] = {
    {Py_tp_doc, (void *)metric_doc},
    {Py_tp_new, metric_tp_new},
    {Py_tp_dealloc, metric_dealloc},
    {Py_tp_traverse, metric_traverse},
    {Py_tp_clear, metric_clear},
    {Py_tp_repr, metric_repr},
    {Py_tp_richcompare, metric_richcompare},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_methods, metric_methods},
    {Py_tp_getset, metric_getset},
    {Py_nb_add, metric_add},
    {Py_nb_subtract, metric_subtract},
    {0, NULL},
};

/* Not immutable: the Python layer installs the dataclass protocol and the
 * frozen __setattr__ on it once at import. */
static PyType_Spec metric_spec = {
    .name = "fluxgate.metric.Metric",
    .basicsize = sizeof(FgMetric),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = metric_slots,
};

int
fg_metric_init(PyObject *module, FgState *st)
{
    return fg_add_type(module, &metric_spec, NULL, &st->Metric_Type, 1);
}
