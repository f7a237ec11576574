/* The Python types CountWindow and TimeWindow (SPEC.md section 3): their
 * methods, construction and type specs. The storage and recording are in
 * windows.c, pickling in window_state.c. Every method locks the window
 * (a critical section) around the storage it reads or changes. */
#include "windows.h"

/* Thresholds of record.slow_at read without allocating. */
#define SLOW_AT_BUFFER 16

/* ---- Python methods ---------------------------------------------------------*/

/* The thresholds of record.slow_at as doubles, in `buffer` when they fit,
 * else in a PyMem block the caller frees. */
static int
read_slow_at(PyObject *slow_at, double *buffer, Py_ssize_t buffer_len,
             double **out, Py_ssize_t *n)
{
    if (Py_TYPE(slow_at)->tp_iter == NULL && !PySequence_Check(slow_at)) {
        PyErr_Format(PyExc_TypeError,
                     "record.slow_at must be an iterable of real numbers, not %.200s",
                     Py_TYPE(slow_at)->tp_name);
        return -1;
    }
    /* A tuple, so that converting an item cannot change the others. */
    PyObject *items = PySequence_Tuple(slow_at);
    if (items == NULL) {
        return -1;
    }
    *n = PyTuple_GET_SIZE(items);
    *out = *n <= buffer_len ? buffer : PyMem_New(double, *n);
    if (*out == NULL) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        if (fg_as_double(PyTuple_GET_ITEM(items, i), "record.slow_at item",
                         &(*out)[i]) < 0) {
            Py_DECREF(items);
            if (*out != buffer) {
                PyMem_Free(*out);
            }
            return -1;
        }
    }
    Py_DECREF(items);
    return 0;
}

/* record.<name> through fg_as_double, naming it in errors. */
static int
read_double(PyObject *record, PyObject *name, const char *what, double *out)
{
    PyObject *value = PyObject_GetAttr(record, name);
    if (value == NULL) {
        return -1;
    }
    int rc = fg_as_double(value, what, out);
    Py_DECREF(value);
    return rc;
}

PyDoc_STRVAR(record_doc,
"record($self, /, record)\n"
"--\n\n"
"Add one call record. Reads its `success`, `duration` and `slow_at` (and,\n"
"for a TimeWindow, its `timestamp`); on error the window is unchanged.");

static PyObject *
window_record(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"record", NULL};
    static const char *const keys[] = {"fluxgate.windows.CountWindow.record",
                                       "fluxgate.windows.TimeWindow.record"};
    PyObject *record;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:record", kwlist, &record)) {
        fg_bind_error(keys[((Window *)self)->kind], self, args, kwargs);
        return NULL;
    }
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    Window *w = (Window *)self;
    PyObject *success_obj = PyObject_GetAttr(record, st->s_success);
    if (success_obj == NULL) {
        return NULL;
    }
    int success = PyObject_IsTrue(success_obj);
    Py_DECREF(success_obj);
    double duration, timestamp = 0.0;
    if (success < 0
        || read_double(record, st->s_duration, "record.duration", &duration) < 0) {
        return NULL;
    }
    PyObject *slow_obj = PyObject_GetAttr(record, st->s_slow_at);
    if (slow_obj == NULL) {
        return NULL;
    }
    double buffer[SLOW_AT_BUFFER], *slow_at;
    Py_ssize_t n_slow;
    int rc = read_slow_at(slow_obj, buffer, SLOW_AT_BUFFER, &slow_at, &n_slow);
    Py_DECREF(slow_obj);
    if (rc < 0) {
        return NULL;
    }
    if (w->kind == TIME_WINDOW) {
        rc = read_double(record, st->s_timestamp, "record.timestamp", &timestamp);
    }
    if (rc == 0) {
        Py_BEGIN_CRITICAL_SECTION(self);
        rc = fg_window_add(self, success, duration, -1, slow_at, n_slow, timestamp);
        Py_END_CRITICAL_SECTION();
    }
    if (slow_at != buffer) {
        PyMem_Free(slow_at);
    }
    return rc < 0 ? NULL : Py_NewRef(Py_None);
}

PyDoc_STRVAR(get_metric_doc,
"get_metric($self, /)\n"
"--\n\n"
"The totals of the records the window holds, as a Metric.");

static PyObject *
window_get_metric(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    static const char *const keys[] = {"fluxgate.windows.CountWindow.get_metric",
                                       "fluxgate.windows.TimeWindow.get_metric"};
    if (fg_check_no_args(keys[((Window *)self)->kind], self, args, nargs, kwnames) < 0) {
        return NULL;
    }
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyObject *metric;
    Py_BEGIN_CRITICAL_SECTION(self);
    metric = fg_window_metric(st, self);
    Py_END_CRITICAL_SECTION();
    return metric;
}

PyDoc_STRVAR(reset_doc,
"reset($self, /)\n"
"--\n\n"
"Forget every record: the metric becomes Metric.empty().");

static PyObject *
window_reset(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    static const char *const keys[] = {"fluxgate.windows.CountWindow.reset",
                                       "fluxgate.windows.TimeWindow.reset"};
    if (fg_check_no_args(keys[((Window *)self)->kind], self, args, nargs, kwnames) < 0) {
        return NULL;
    }
    Py_BEGIN_CRITICAL_SECTION(self);
    fg_window_clear(self);
    Py_END_CRITICAL_SECTION();
    Py_RETURN_NONE;
}

static int
window_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"size", NULL};
    Window *w = (Window *)self;
    PyObject *size_obj;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, w->kind == COUNT_WINDOW ? "O:CountWindow" : "O:TimeWindow",
            kwlist, &size_obj)) {
        return fg_bind_error(w->kind == COUNT_WINDOW
                                 ? "fluxgate.windows.CountWindow.__init__"
                                 : "fluxgate.windows.TimeWindow.__init__",
                             self, args, kwargs);
    }
    int64_t size;
    if (fg_as_int64(size_obj, "size", &size) < 0) {
        return -1;
    }
    if (size < 1) {
        PyErr_SetString(PyExc_ValueError, "size must be greater than zero");
        return -1;
    }
    int rc;
    Py_BEGIN_CRITICAL_SECTION(self);
    /* __init__ runs once: a breaker may already be recording into it. */
    rc = w->size != 0 ? fg_already_initialised(self) : fg_window_allocate(w, size);
    Py_END_CRITICAL_SECTION();
    return rc;
}

static PyObject *
count_window_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    return fg_window_new(type, COUNT_WINDOW);
}

static PyObject *
time_window_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    return fg_window_new(type, TIME_WINDOW);
}

static void
window_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Window *w = (Window *)self;
    PyObject_GC_UnTrack(self);
    fg_window_free(w);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyObject *
window_repr(PyObject *self)
{
    PyObject *qualname = PyObject_GetAttrString((PyObject *)Py_TYPE(self),
                                                "__qualname__");
    if (qualname == NULL) {
        return NULL;
    }
    PyObject *repr = PyUnicode_FromFormat("%U(size=%lld)", qualname,
                                          (long long)((Window *)self)->size);
    Py_DECREF(qualname);
    return repr;
}

static PyObject *
window_get_size(PyObject *self, void *closure)
{
    return PyLong_FromLongLong(((Window *)self)->size);
}

static PyMethodDef window_methods[] = {
    {"record", (PyCFunction)(void (*)(void))window_record,
     METH_VARARGS | METH_KEYWORDS, record_doc},
    {"get_metric", (PyCFunction)(void (*)(void))window_get_metric,
     METH_FASTCALL | METH_KEYWORDS, get_metric_doc},
    {"reset", (PyCFunction)(void (*)(void))window_reset,
     METH_FASTCALL | METH_KEYWORDS, reset_doc},
    {"__reduce__", fg_window_reduce, METH_NOARGS, fg_window_reduce_doc},
    {"__setstate__", fg_window_setstate, METH_O, fg_window_setstate_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef window_getset[] = {
    {"size", window_get_size, NULL,
     "How many records (CountWindow) or seconds (TimeWindow) the window spans.",
     NULL},
    {NULL},
};

/* The two window types differ only in their constructor and doc. */
#define WINDOW_SLOTS(new_func, doc)                                           \
    {                                                                         \
        {Py_tp_doc, (void *)(doc)}, {Py_tp_new, (new_func)},                  \
        {Py_tp_init, window_init}, {Py_tp_dealloc, window_dealloc},           \
        {Py_tp_traverse, fg_plain_traverse}, {Py_tp_repr, window_repr},       \
        {Py_tp_methods, window_methods}, {Py_tp_getset, window_getset},       \
        {0, NULL},                                                            \
    }

#define WINDOW_SPEC(short_name, slot_array)                                   \
    {                                                                         \
        .name = "fluxgate.windows." short_name,                               \
        .basicsize = sizeof(Window),                                          \
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, \
        .slots = (slot_array),                                                \
    }

PyDoc_STRVAR(count_window_doc,
"CountWindow(size)\n"
"--\n\n"
"The last `size` call records. When full, the oldest record leaves as a\n"
"new one arrives; the metric is kept as a running total.");

static PyType_Slot count_window_slots[] = WINDOW_SLOTS(count_window_new,
                                                   count_window_doc);
static PyType_Spec count_window_spec = WINDOW_SPEC("CountWindow", count_window_slots);

PyDoc_STRVAR(time_window_doc,
"TimeWindow(size)\n"
"--\n\n"
"The call records of the last `size` seconds, in one-second buckets. A\n"
"record goes to bucket int(record.timestamp) % size; a bucket that last\n"
"held another second is emptied first. Buckets are only emptied by a new\n"
"record, so after a quiet spell old ones still count until overwritten.");

static PyType_Slot time_window_slots[] = WINDOW_SLOTS(time_window_new,
                                                  time_window_doc);
static PyType_Spec time_window_spec = WINDOW_SPEC("TimeWindow", time_window_slots);

int
fg_windows_init(PyObject *module, FgState *st)
{
    if (fg_add_type(module, &count_window_spec, NULL, &st->CountWindow_Type, 1) < 0
        || fg_add_type(module, &time_window_spec, NULL, &st->TimeWindow_Type, 1) < 0) {
        return -1;
    }
    return 0;
}
