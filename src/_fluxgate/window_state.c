/* Pickling and copying CountWindow and TimeWindow: __reduce__, and
 * __setstate__ with the checks of a state (SPEC.md section 3). */
#include "windows.h"

#include <math.h>

/* Room for "<kind> state: <what>" in an error message. */
#define LABEL_LEN 80

/* A window reduces to (type, (size,), state), the state made of plain values:
 *   CountWindow: (records, total_duration, thresholds[, attributes]), the
 *     records oldest first as (success, duration, slow_at) tuples;
 *   TimeWindow: (buckets, total_duration, thresholds[, attributes]), each
 *     live bucket as (second, count, failures, duration, {threshold: count}).
 * total_duration is the running total, which adding up the records again
 * need not reproduce bit for bit; thresholds lists the live slow thresholds
 * in the order get_metric() gives them; attributes is the instance dict of a
 * Python subclass that has one. __setstate__ checks the state while building
 * the contents in a scratch window, and takes them over only when complete:
 * a malformed state leaves the window unchanged. */

/* The instance dict of a Python subclass, or NULL when there is none. */
static int
instance_dict(PyObject *self, PyObject **out)
{
    *out = PyObject_GetAttrString(self, "__dict__");
    if (*out == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return 0;
    }
    return *out == NULL ? -1 : 0;
}

/* The thresholds of the table entries the record in `slot` counts in. */
static PyObject *
slot_thresholds(const Window *w, Py_ssize_t slot)
{
    const SlowTable *t = &w->store.slow;
    const CountRing *r = &w->store.records.ring;
    Py_ssize_t n = 0;
    for (int e = 0; e < t->len; e++) {
        n += ring_counts(r, slot, e);
    }
    PyObject *tuple = PyTuple_New(n);
    Py_ssize_t k = 0;
    for (int e = 0; tuple != NULL && e < t->len; e++) {
        if (ring_counts(r, slot, e)) {
            PyObject *threshold = PyFloat_FromDouble(t->entries[e].threshold);
            if (threshold == NULL) {
                Py_CLEAR(tuple);
            }
            else {
                PyTuple_SET_ITEM(tuple, k++, threshold);
            }
        }
    }
    return tuple;
}

static PyObject *
count_records(const Window *w)
{
    const CountRing *r = &w->store.records.ring;
    Py_ssize_t n = (Py_ssize_t)w->store.totals.total_count;
    PyObject *records = PyList_New(n);
    for (Py_ssize_t i = 0; records != NULL && i < n; i++) {
        Py_ssize_t slot = (r->head + i) % r->capacity;
        PyObject *slow_at = slot_thresholds(w, slot);
        PyObject *duration = slow_at ? PyFloat_FromDouble(ring_duration(r, slot)) : NULL;
        PyObject *record = NULL;
        if (duration != NULL) {
            record = PyTuple_Pack(3, ring_failed(r, slot) ? Py_False : Py_True,
                                  duration, slow_at);
        }
        Py_XDECREF(slow_at);
        Py_XDECREF(duration);
        if (record == NULL) {
            Py_CLEAR(records);
        }
        else {
            PyList_SET_ITEM(records, i, record);
        }
    }
    return records;
}

static PyObject *
time_buckets(const Window *w)
{
    const SlowTable *t = &w->store.slow;
    PyObject *buckets = PyList_New(0);
    for (Py_ssize_t i = 0; buckets != NULL && i < (Py_ssize_t)w->size; i++) {
        const Bucket *bucket = fg_time_bucket_if_any(w, i);
        if (bucket == NULL) {
            i += PAGE_BUCKETS - 1 - i % PAGE_BUCKETS; /* the whole page is empty */
            continue;
        }
        if (bucket->generation != w->store.records.pages.generation
            || bucket->count == 0) {
            continue;
        }
        PyObject *slow = PyDict_New();
        for (int e = 0; slow != NULL && e < t->len; e++) {
            int64_t count = time_row_get(w, i, e);
            if (count == 0) {
                continue;
            }
            PyObject *key = PyFloat_FromDouble(t->entries[e].threshold);
            PyObject *value = key ? PyLong_FromLongLong(count) : NULL;
            if (value == NULL || PyDict_SetItem(slow, key, value) < 0) {
                Py_CLEAR(slow);
            }
            Py_XDECREF(key);
            Py_XDECREF(value);
        }
        PyObject *second = slow ? PyLong_FromDouble(bucket->second) : NULL;
        PyObject *item = NULL;
        if (second != NULL) {
            item = Py_BuildValue("(OLLdO)", second, (long long)bucket->count,
                                 (long long)bucket->failures, bucket->duration, slow);
        }
        Py_XDECREF(second);
        Py_XDECREF(slow);
        if (item == NULL || PyList_Append(buckets, item) < 0) {
            Py_CLEAR(buckets);
        }
        Py_XDECREF(item);
    }
    return buckets;
}

const char fg_window_reduce_doc[] = PyDoc_STR(
"__reduce__($self, /)\n"
"--\n\n"
"Helper for pickle and copy: the size, and the records as plain values.");

PyObject *
fg_window_reduce(PyObject *self, PyObject *unused)
{
    Window *w = (Window *)self;
    PyObject *attributes;
    if (window_check_initialised(w) < 0 || instance_dict(self, &attributes) < 0) {
        return NULL;
    }
    PyObject *contents, *slow = NULL;
    long long size;
    double total_duration;
    Py_BEGIN_CRITICAL_SECTION(self);
    size = (long long)w->size;
    total_duration = w->store.totals.total_duration;
    contents = w->kind == COUNT_WINDOW ? count_records(w) : time_buckets(w);
    if (contents != NULL) {
        slow = fg_table_dict(&w->store.slow);
    }
    Py_END_CRITICAL_SECTION();
    PyObject *thresholds = slow ? PySequence_Tuple(slow) : NULL;
    PyObject *state = NULL, *result = NULL;
    if (thresholds != NULL) {
        state = attributes
                    ? Py_BuildValue("(OdOO)", contents, total_duration, thresholds,
                                    attributes)
                    : Py_BuildValue("(OdO)", contents, total_duration, thresholds);
    }
    if (state != NULL) {
        result = Py_BuildValue("(O(L)O)", (PyObject *)Py_TYPE(self), size, state);
    }
    Py_XDECREF(attributes);
    Py_XDECREF(contents);
    Py_XDECREF(slow);
    Py_XDECREF(thresholds);
    Py_XDECREF(state);
    return result;
}

/* A list or tuple of a state, as a tuple that converting its items cannot
 * change. */
static PyObject *
state_items(PyObject *obj, const char *name, const char *what)
{
    if (!PyList_Check(obj) && !PyTuple_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s state: %s must be a list or tuple, not %.200s",
                     name, what, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return PySequence_Tuple(obj);
}

/* A real number of a state; TypeError or ValueError naming it otherwise (an
 * integer beyond a double too). */
static int
state_double(PyObject *obj, const char *name, const char *what, double *out)
{
    char label[LABEL_LEN];
    PyOS_snprintf(label, sizeof(label), "%s state: %s", name, what);
    if (fg_as_double(obj, label, out) == 0) {
        return 0;
    }
    if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s is out of range", label);
    }
    return -1;
}

/* A duration of a state: a real number, neither NaN nor negative. */
static int
state_duration(PyObject *obj, const char *name, const char *what, double *out)
{
    if (state_double(obj, name, what, out) < 0) {
        return -1;
    }
    if (isnan(*out) || *out < 0) {
        PyErr_Format(PyExc_ValueError, "%s state: %s must not be NaN or negative",
                     name, what);
        return -1;
    }
    return 0;
}

static int
state_int64(PyObject *obj, const char *name, const char *what, int64_t *out)
{
    char label[LABEL_LEN];
    PyOS_snprintf(label, sizeof(label), "%s state: %s", name, what);
    return fg_as_int64(obj, label, out);
}

/* Replays the records through the same path as record(). */
static int
count_restore(Window *w, PyObject *records)
{
    const char *name = fg_window_kind_names[COUNT_WINDOW];
    PyObject *items = state_items(records, name, "records");
    if (items == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    int rc = 0;
    if (n > w->size) {
        PyErr_Format(PyExc_ValueError, "%s state: %zd records do not fit in size %lld",
                     name, n, (long long)w->size);
        rc = -1;
    }
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *record = PyTuple_GET_ITEM(items, i);
        if (!PyTuple_Check(record) || PyTuple_GET_SIZE(record) != 3
            || !PyBool_Check(PyTuple_GET_ITEM(record, 0))) {
            PyErr_Format(PyExc_TypeError,
                         "%s state: each record must be a (success, duration, "
                         "slow_at) tuple with a bool success",
                         name);
            rc = -1;
            break;
        }
        double duration, *slow_at = NULL;
        PyObject *slow_items = NULL;
        rc = state_duration(PyTuple_GET_ITEM(record, 1), name, "record duration",
                            &duration);
        if (rc == 0) {
            slow_items = state_items(PyTuple_GET_ITEM(record, 2), name, "record slow_at");
            rc = slow_items ? 0 : -1;
        }
        Py_ssize_t n_slow = slow_items ? PyTuple_GET_SIZE(slow_items) : 0;
        if (rc == 0 && n_slow > 0 && (slow_at = PyMem_New(double, n_slow)) == NULL) {
            PyErr_NoMemory();
            rc = -1;
        }
        for (Py_ssize_t k = 0; rc == 0 && k < n_slow; k++) {
            rc = state_double(PyTuple_GET_ITEM(slow_items, k), name,
                              "record slow_at item", &slow_at[k]);
        }
        Py_XDECREF(slow_items);
        if (rc == 0) {
            rc = fg_window_add((PyObject *)w, PyTuple_GET_ITEM(record, 0) == Py_True,
                               duration, -1, slow_at, n_slow, 0.0);
        }
        PyMem_Free(slow_at);
    }
    Py_DECREF(items);
    return rc;
}

/* Puts a bucket's slow counts in its row and the table (entries in the order
 * first seen, set right by table_set_order). */
static int
time_restore_slow(Window *w, Bucket *bucket, Py_ssize_t index,
                  PyObject *slow_counts)
{
    const char *name = fg_window_kind_names[TIME_WINDOW];
    SlowTable *t = &w->store.slow;
    if (!PyDict_Check(slow_counts)) {
        PyErr_Format(PyExc_TypeError,
                     "%s state: a bucket's slow counts must be a dict, not %.200s",
                     name, Py_TYPE(slow_counts)->tp_name);
        return -1;
    }
    PyObject *pairs = PyDict_Items(slow_counts);
    if (pairs == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(pairs); i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        double threshold;
        int64_t count;
        rc = state_double(PyTuple_GET_ITEM(pair, 0), name, "slow threshold", &threshold);
        if (rc == 0) {
            rc = state_int64(PyTuple_GET_ITEM(pair, 1), name, "slow count", &count);
        }
        if (rc == 0
            && (isnan(threshold) || count < 1 || count > bucket->count)) {
            PyErr_Format(PyExc_ValueError,
                         "%s state: a bucket's slow counts must be between 1 and "
                         "its count, for thresholds that are not NaN",
                         name);
            rc = -1;
        }
        int e = rc == 0 ? table_find(t, threshold) : -1;
        if (rc == 0 && e < 0
            && (fg_window_scratch(w) == NULL
                || (e = fg_table_add_entry(t, w->scratch, threshold)) < 0)) {
            rc = -1;
            break;
        }
        int64_t *row = rc == 0 ? fg_time_row_reserve(w, index) : NULL;
        if (rc == 0 && row == NULL) {
            rc = -1;
            break;
        }
        if (rc == 0) {
            if (row[e] != 0) {
                PyErr_Format(PyExc_ValueError,
                             "%s state: a bucket counts a slow threshold twice", name);
                rc = -1;
                break;
            }
            row[e] = count;
            t->entries[e].count += count;
        }
    }
    Py_DECREF(pairs);
    return rc;
}

static int
time_restore(Window *w, PyObject *buckets)
{
    const char *name = fg_window_kind_names[TIME_WINDOW];
    FgTotals *totals = &w->store.totals;
    PyObject *items = state_items(buckets, name, "buckets");
    if (items == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(items); i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 5) {
            PyErr_Format(PyExc_TypeError,
                         "%s state: each bucket must be a (second, count, failures, "
                         "duration, slow_counts) tuple",
                         name);
            rc = -1;
            break;
        }
        double second, duration;
        int64_t count, failures;
        if (state_double(PyTuple_GET_ITEM(item, 0), name, "bucket second", &second) < 0
            || state_int64(PyTuple_GET_ITEM(item, 1), name, "bucket count", &count) < 0
            || state_int64(PyTuple_GET_ITEM(item, 2), name, "bucket failures",
                           &failures) < 0
            || state_duration(PyTuple_GET_ITEM(item, 3), name, "bucket duration",
                            &duration) < 0) {
            rc = -1;
            break;
        }
        if (!isfinite(second) || second != trunc(second)) {
            PyErr_Format(PyExc_ValueError,
                         "%s state: a bucket's second must be a whole number", name);
            rc = -1;
            break;
        }
        if (count < 1 || failures < 0 || failures > count
            || count > INT64_MAX - totals->total_count) {
            PyErr_Format(PyExc_ValueError,
                         "%s state: a bucket must count at least one record and "
                         "at most that many failures",
                         name);
            rc = -1;
            break;
        }
        Py_ssize_t index = bucket_index(second, w->size);
        Bucket *bucket = fg_time_bucket(w, index);
        if (bucket == NULL) {
            rc = -1;
            break;
        }
        if (bucket->count > 0) {
            PyErr_Format(PyExc_ValueError,
                         "%s state: two buckets fall in the same slot", name);
            rc = -1;
            break;
        }
        *bucket = (Bucket){count, failures, duration, second,
                           w->store.records.pages.generation};
        totals->total_count += count;
        totals->failure_count += failures;
        rc = time_restore_slow(w, bucket, index, PyTuple_GET_ITEM(item, 4));
    }
    Py_DECREF(items);
    return rc;
}

/* Puts the live thresholds in the order `thresholds` gives, which must name
 * each of them once: the order get_metric() then lists them in. */
static int
table_set_order(SlowTable *t, SlowScratch *s, PyObject *thresholds,
                const char *name)
{
    PyObject *items = state_items(thresholds, name, "thresholds");
    if (items == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    /* The scratch set s->kept marks the entries named so far. */
    uint64_t *seen = s->kept;
    words_clear(seen, t->capacity);
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        double threshold;
        rc = state_double(PyTuple_GET_ITEM(items, i), name, "threshold", &threshold);
        int e = rc == 0 ? table_find(t, threshold) : -1;
        if (rc == 0 && (e < 0 || bit_get(seen, e))) {
            rc = -1;
        }
        else if (rc == 0) {
            bit_set(seen, e);
            t->entries[e].since = (uint64_t)i + 1;
        }
    }
    Py_DECREF(items);
    if (rc == 0 && n != t->live) {
        rc = -1;
    }
    if (rc < 0 && !PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError,
                     "%s state: thresholds must list each live slow threshold once",
                     name);
    }
    t->clock = (uint64_t)n;
    return rc;
}

const char fg_window_setstate_doc[] = PyDoc_STR(
"__setstate__($self, state, /)\n"
"--\n\n"
"Take the records of a state that __reduce__ gave; on error the window is\n"
"unchanged.");

PyObject *
fg_window_setstate(PyObject *self, PyObject *state)
{
    Window *w = (Window *)self;
    const char *name = fg_window_kind_names[w->kind];
    FgState *st = fg_state_from_type(Py_TYPE(self));
    if (st == NULL || window_check_initialised(w) < 0) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_Check(state) ? PyTuple_GET_SIZE(state) : 0;
    if (n != 3 && n != 4) {
        PyErr_Format(PyExc_TypeError, "%s state must be a tuple of 3 or 4 items, not %.200s",
                     name, Py_TYPE(state)->tp_name);
        return NULL;
    }
    PyObject *attributes = n == 4 ? PyTuple_GET_ITEM(state, 3) : NULL;
    PyObject *dict = NULL;
    if (attributes != NULL) {
        if (!PyDict_Check(attributes)) {
            PyErr_Format(PyExc_TypeError, "%s state: attributes must be a dict, not %.200s",
                         name, Py_TYPE(attributes)->tp_name);
            return NULL;
        }
        if (instance_dict(self, &dict) < 0) {
            return NULL;
        }
        if (dict == NULL || !PyDict_Check(dict)) {
            Py_XDECREF(dict);
            PyErr_Format(PyExc_TypeError,
                         "%s state: attributes given to an object without a __dict__",
                         name);
            return NULL;
        }
    }
    double total_duration;
    PyTypeObject *type = (PyTypeObject *)(w->kind == COUNT_WINDOW ? st->CountWindow_Type
                                                                   : st->TimeWindow_Type);
    Window *scratch = NULL;
    int rc = state_duration(PyTuple_GET_ITEM(state, 1), name, "total_duration",
                          &total_duration);
    if (rc == 0) {
        scratch = (Window *)fg_window_new(type, w->kind);
        rc = scratch ? fg_window_allocate(scratch, w->size) : -1;
    }
    if (rc == 0) {
        PyObject *contents = PyTuple_GET_ITEM(state, 0);
        rc = w->kind == COUNT_WINDOW ? count_restore(scratch, contents)
                                     : time_restore(scratch, contents);
    }
    if (rc == 0) {
        rc = fg_window_scratch(scratch) == NULL
                 ? -1
                 : table_set_order(&scratch->store.slow, scratch->scratch,
                                   PyTuple_GET_ITEM(state, 2), name);
    }
    if (rc == 0) {
        scratch->store.totals.total_duration = total_duration;
        Py_BEGIN_CRITICAL_SECTION(self);
        fg_window_swap(w, scratch);
        Py_END_CRITICAL_SECTION();
        if (dict != NULL) {
            rc = PyDict_Update(dict, attributes);
        }
    }
    Py_XDECREF((PyObject *)scratch);
    Py_XDECREF(dict);
    return rc < 0 ? NULL : Py_NewRef(Py_None);
}

