/* Windows: CountWindow and TimeWindow (SPEC.md section 3).
 *
 * Both keep a running total (count, failures, duration) and a small table of
 * the distinct slow thresholds currently live, each with its running count,
 * so that reading the metric never walks the records. Every update removes
 * the leaving contribution before adding the new record, in the order of
 * Metric arithmetic, so the totals match 0.9.4's `(total - old) + new` bit for
 * bit. An update is planned first (it may fail: too many thresholds, no
 * memory) and then applied, which cannot fail: an error leaves the window as
 * it was.
 *
 * The same functions serve the Python methods (which lock the window) and
 * the breaker's entry points in components.h (which run under the breaker's
 * critical section and call no Python code). */
#include "components.h"
#include "metric.h"

#include <math.h>
#include <string.h>

/* Distinct thresholds a window can hold at once: a CountWindow slot keeps a
 * bit per table entry next to its failure bit, in one byte (7 entries) until
 * more are live, then in 64 bits. */
#define MAX_THRESHOLDS 63
#define NARROW_THRESHOLDS 7
/* Slots a CountWindow allocates up front; larger windows grow as they fill. */
#define INITIAL_SLOTS 1024

/* ---- the threshold table ----------------------------------------------------*/

typedef struct {
    double threshold;
    int64_t count; /* running count; 0 marks a free entry */
    uint64_t since; /* when the entry became live: the Metric's key order */
} SlowEntry;

typedef struct {
    SlowEntry *entries;
    int capacity;
    int len; /* entries past this one are all free */
    int live;
    uint64_t clock;
} SlowTable;

/* The thresholds of one new record: entries already live that it counts in
 * again, and the distinct thresholds that need an entry. */
typedef struct {
    uint64_t kept;
    double fresh[MAX_THRESHOLDS];
    int n_fresh;
} SlowPlan;

static int
bit_count(uint64_t mask)
{
    int n = 0;
    for (; mask != 0; mask &= mask - 1) {
        n++;
    }
    return n;
}

static int
table_find(const SlowTable *t, double threshold)
{
    for (int i = 0; i < t->len; i++) {
        if (t->entries[i].count > 0 && t->entries[i].threshold == threshold) {
            return i;
        }
    }
    return -1;
}

/* Plans a record's thresholds, given the entries the leaving contribution
 * will free. Returns how many entries will then be live, or -1 with
 * ValueError. */
static int
table_plan(const SlowTable *t, uint64_t freed, const double *slow_at,
           Py_ssize_t n, SlowPlan *plan)
{
    int live = t->live - bit_count(freed);
    plan->kept = 0;
    plan->n_fresh = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double threshold = slow_at[i];
        if (isnan(threshold)) {
            PyErr_SetString(PyExc_ValueError,
                            "record.slow_at must not contain NaN");
            return -1;
        }
        int e = table_find(t, threshold);
        if (e >= 0 && !(freed >> e & 1)) {
            plan->kept |= (uint64_t)1 << e;
            continue;
        }
        int seen = 0;
        for (int j = 0; j < plan->n_fresh && !seen; j++) {
            seen = plan->fresh[j] == threshold;
        }
        if (seen) {
            continue;
        }
        if (live + plan->n_fresh == MAX_THRESHOLDS) {
            PyErr_Format(PyExc_ValueError,
                         "a window can hold at most %d distinct slow "
                         "thresholds at once",
                         MAX_THRESHOLDS);
            return -1;
        }
        plan->fresh[plan->n_fresh++] = threshold;
    }
    return live + plan->n_fresh;
}

/* The capacity the table needs for `needed` live entries (entries are taken
 * lowest index first, so every live index is below the live count). */
static int
table_capacity_for(const SlowTable *t, int needed)
{
    if (needed <= t->capacity) {
        return t->capacity;
    }
    int capacity = t->capacity ? t->capacity : 4;
    while (capacity < needed) {
        capacity *= 2;
    }
    return capacity < MAX_THRESHOLDS ? capacity : MAX_THRESHOLDS;
}

static int
table_resize(SlowTable *t, int capacity)
{
    if (capacity == t->capacity) {
        return 0;
    }
    SlowEntry *entries = PyMem_Realloc(t->entries, capacity * sizeof(SlowEntry));
    if (entries == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->entries = entries;
    t->capacity = capacity;
    return 0;
}

static void
table_remove(SlowTable *t, int e, int64_t count)
{
    t->entries[e].count -= count;
    if (t->entries[e].count == 0) {
        t->live--;
        while (t->len > 0 && t->entries[t->len - 1].count == 0) {
            t->len--;
        }
    }
}

/* Applies a plan: one more for each threshold. Returns the entries counted. */
static uint64_t
table_apply(SlowTable *t, const SlowPlan *plan)
{
    uint64_t counted = plan->kept;
    for (int e = 0; e < t->len; e++) {
        t->entries[e].count += (int64_t)(plan->kept >> e & 1);
    }
    for (int i = 0; i < plan->n_fresh; i++) {
        int e = 0;
        while (e < t->len && t->entries[e].count != 0) {
            e++;
        }
        if (e == t->len) {
            t->len++;
        }
        t->entries[e] = (SlowEntry){plan->fresh[i], 1, ++t->clock};
        t->live++;
        counted |= (uint64_t)1 << e;
    }
    return counted;
}

static void
table_clear(SlowTable *t)
{
    t->len = 0;
    t->live = 0;
}

/* {threshold: count} of the live entries, in the order they became live, as
 * Metric arithmetic would have inserted them. */
static PyObject *
table_dict(const SlowTable *t)
{
    int order[MAX_THRESHOLDS], n = 0;
    for (int e = 0; e < t->len; e++) {
        if (t->entries[e].count == 0) {
            continue;
        }
        int i = n++;
        for (; i > 0 && t->entries[order[i - 1]].since > t->entries[e].since; i--) {
            order[i] = order[i - 1];
        }
        order[i] = e;
    }
    PyObject *dict = PyDict_New();
    for (int i = 0; i < n && dict != NULL; i++) {
        const SlowEntry *entry = &t->entries[order[i]];
        PyObject *key = PyFloat_FromDouble(entry->threshold);
        PyObject *value = key ? PyLong_FromLongLong(entry->count) : NULL;
        if (value == NULL || PyDict_SetItem(dict, key, value) < 0) {
            Py_CLEAR(dict);
        }
        Py_XDECREF(key);
        Py_XDECREF(value);
    }
    return dict;
}

/* ---- the window types -------------------------------------------------------*/

typedef enum { COUNT_WINDOW, TIME_WINDOW } WindowKind;

static const char *const kind_names[] = {"CountWindow", "TimeWindow"};

typedef struct {
    PyObject_HEAD
    WindowKind kind;
    int64_t size; /* 0 until __init__ has run */
    FgTotals totals;
    SlowTable slow;
} Window;

/* The last `size` records in a ring of slots: a duration, and flags with the
 * failure in bit 0 and table entry e in bit e + 1. Until the window is full
 * the records fill slots 0, 1, ...; then `head` is the oldest. */
typedef struct {
    Window base;
    double *durations;
    void *flags; /* uint8_t per slot, or uint64_t once `wide` */
    int wide;
    Py_ssize_t capacity;
    Py_ssize_t head;
} CountWindow;

typedef struct {
    int64_t count;
    int64_t failures;
    double duration;
    double second; /* trunc(timestamp) of the records held, when count > 0 */
    uint64_t generation; /* the bucket is empty unless it is the window's */
} Bucket;

/* One bucket per second modulo `size`, each with its own totals and its
 * count per table entry (a row of `stride` counters). Clearing the window
 * starts a new generation instead of touching every bucket. */
typedef struct {
    Window base;
    Bucket *buckets;
    int64_t *bucket_slow;
    int stride;
    uint64_t generation;
} TimeWindow;

/* ---- CountWindow ------------------------------------------------------------*/

static uint64_t
slot_flags(const CountWindow *w, Py_ssize_t slot)
{
    return w->wide ? ((uint64_t *)w->flags)[slot] : ((uint8_t *)w->flags)[slot];
}

static void
set_slot_flags(CountWindow *w, Py_ssize_t slot, uint64_t flags)
{
    if (w->wide) {
        ((uint64_t *)w->flags)[slot] = flags;
    }
    else {
        ((uint8_t *)w->flags)[slot] = (uint8_t)flags;
    }
}

static int
count_widen(CountWindow *w)
{
    uint64_t *flags = PyMem_New(uint64_t, w->capacity);
    if (flags == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < w->capacity; i++) {
        flags[i] = ((uint8_t *)w->flags)[i];
    }
    PyMem_Free(w->flags);
    w->flags = flags;
    w->wide = 1;
    return 0;
}

/* Room for more slots, as a window that is not full yet fills up. */
static int
count_grow(CountWindow *w)
{
    int64_t capacity = 2 * (int64_t)w->capacity;
    if (capacity > w->base.size) {
        capacity = w->base.size;
    }
    if (capacity > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(double)) {
        PyErr_NoMemory();
        return -1;
    }
    size_t width = w->wide ? sizeof(uint64_t) : sizeof(uint8_t);
    double *durations = PyMem_Realloc(w->durations, capacity * sizeof(double));
    if (durations == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->durations = durations;
    void *flags = PyMem_Realloc(w->flags, capacity * width);
    if (flags == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->flags = flags;
    w->capacity = (Py_ssize_t)capacity;
    return 0;
}

static int
count_add(CountWindow *w, int success, double duration, const double *slow_at,
          Py_ssize_t n_slow)
{
    Window *b = &w->base;
    SlowTable *t = &b->slow;
    int full = b->totals.total_count == b->size;
    uint64_t leaving = full ? slot_flags(w, w->head) >> 1 : 0;
    uint64_t freed = 0;
    for (int e = 0; e < t->len; e++) {
        if ((leaving >> e & 1) && t->entries[e].count == 1) {
            freed |= (uint64_t)1 << e;
        }
    }
    SlowPlan plan;
    int needed = table_plan(t, freed, slow_at, n_slow, &plan);
    if (needed < 0 || table_resize(t, table_capacity_for(t, needed)) < 0
        || (needed > NARROW_THRESHOLDS && !w->wide && count_widen(w) < 0)) {
        return -1;
    }
    if (!full && b->totals.total_count == w->capacity && count_grow(w) < 0) {
        return -1;
    }
    Py_ssize_t slot = (Py_ssize_t)b->totals.total_count;
    if (full) {
        slot = w->head;
        w->head = slot + 1 == w->capacity ? 0 : slot + 1;
        b->totals.total_count--;
        b->totals.failure_count -= (int64_t)(slot_flags(w, slot) & 1);
        b->totals.total_duration = b->totals.total_duration - w->durations[slot];
        for (int e = 0; leaving >> e != 0; e++) {
            if (leaving >> e & 1) {
                table_remove(t, e, 1);
            }
        }
    }
    uint64_t counted = table_apply(t, &plan);
    w->durations[slot] = duration;
    set_slot_flags(w, slot, counted << 1 | (success ? 0 : 1));
    b->totals.total_count++;
    b->totals.failure_count += success ? 0 : 1;
    b->totals.total_duration = b->totals.total_duration + duration;
    return 0;
}

static void
count_clear(CountWindow *w)
{
    w->base.totals = (FgTotals){0, 0, 0.0};
    table_clear(&w->base.slow);
    w->head = 0;
}

/* ---- TimeWindow -------------------------------------------------------------*/

static int64_t *
bucket_row(TimeWindow *w, Py_ssize_t index)
{
    return w->stride ? w->bucket_slow + index * w->stride : NULL;
}

/* Gives every bucket room for `stride` threshold counters. */
static int
time_restride(TimeWindow *w, int stride)
{
    if (stride <= w->stride) {
        return 0;
    }
    Py_ssize_t size = (Py_ssize_t)w->base.size;
    if ((size_t)size > PY_SSIZE_T_MAX / ((size_t)stride * sizeof(int64_t))) {
        PyErr_NoMemory();
        return -1;
    }
    int64_t *rows = PyMem_Calloc((size_t)size * stride, sizeof(int64_t));
    if (rows == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < size && w->stride > 0; i++) {
        memcpy(rows + i * stride, bucket_row(w, i), w->stride * sizeof(int64_t));
    }
    PyMem_Free(w->bucket_slow);
    w->bucket_slow = rows;
    w->stride = stride;
    return 0;
}

static int
time_add(TimeWindow *w, int success, double duration, const double *slow_at,
         Py_ssize_t n_slow, double timestamp)
{
    Window *b = &w->base;
    SlowTable *t = &b->slow;
    if (!isfinite(timestamp)) {
        PyObject *value = PyFloat_FromDouble(timestamp);
        if (value != NULL) {
            PyErr_Format(PyExc_ValueError, "record.timestamp must be finite, not %R",
                         value);
            Py_DECREF(value);
        }
        return -1;
    }
    /* Python's int(timestamp) % size: trunc and fmod are exact on doubles,
     * and size is far below 2**53 (its buckets were allocated). */
    double second = trunc(timestamp);
    double rem = fmod(second, (double)b->size);
    if (rem < 0) {
        rem += (double)b->size;
    }
    Py_ssize_t index = (Py_ssize_t)rem;
    Bucket *bucket = &w->buckets[index];
    if (bucket->generation != w->generation) {
        /* Left over from before a clear: empty already, tidy it up. */
        *bucket = (Bucket){.generation = w->generation};
        if (w->stride > 0) {
            memset(bucket_row(w, index), 0, w->stride * sizeof(int64_t));
        }
    }
    int stale = bucket->count > 0 && bucket->second != second;
    uint64_t freed = 0;
    if (stale) {
        int64_t *row = bucket_row(w, index);
        for (int e = 0; e < t->len; e++) {
            if (row[e] > 0 && row[e] == t->entries[e].count) {
                freed |= (uint64_t)1 << e;
            }
        }
    }
    SlowPlan plan;
    int needed = table_plan(t, freed, slow_at, n_slow, &plan);
    int capacity = needed < 0 ? 0 : table_capacity_for(t, needed);
    if (needed < 0 || time_restride(w, capacity) < 0
        || table_resize(t, capacity) < 0) {
        return -1;
    }
    int64_t *row = bucket_row(w, index);
    if (stale) {
        b->totals.total_count -= bucket->count;
        b->totals.failure_count -= bucket->failures;
        b->totals.total_duration = b->totals.total_duration - bucket->duration;
        for (int e = 0; e < t->len; e++) {
            if (row[e] > 0) {
                table_remove(t, e, row[e]);
                row[e] = 0;
            }
        }
        *bucket = (Bucket){.generation = w->generation};
    }
    bucket->second = second;
    uint64_t counted = table_apply(t, &plan);
    for (int e = 0; counted >> e != 0; e++) {
        row[e] += (int64_t)(counted >> e & 1);
    }
    bucket->count++;
    bucket->failures += success ? 0 : 1;
    bucket->duration = bucket->duration + duration;
    b->totals.total_count++;
    b->totals.failure_count += success ? 0 : 1;
    b->totals.total_duration = b->totals.total_duration + duration;
    return 0;
}

static void
time_clear(TimeWindow *w)
{
    w->base.totals = (FgTotals){0, 0, 0.0};
    table_clear(&w->base.slow);
    w->generation++;
}

/* ---- shared by both kinds ---------------------------------------------------*/

static int
window_add(Window *w, int success, double duration, const double *slow_at,
           Py_ssize_t n_slow, double timestamp)
{
    if (w->size == 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "window is not initialised: %s.__init__() was not called",
                     kind_names[w->kind]);
        return -1;
    }
    if (w->kind == COUNT_WINDOW) {
        return count_add((CountWindow *)w, success, duration, slow_at, n_slow);
    }
    return time_add((TimeWindow *)w, success, duration, slow_at, n_slow, timestamp);
}

static void
window_clear(Window *w)
{
    if (w->kind == COUNT_WINDOW) {
        count_clear((CountWindow *)w);
    }
    else {
        time_clear((TimeWindow *)w);
    }
}

/* Frees the storage of the records (the table stays allocated). */
static void
window_free_storage(Window *w)
{
    if (w->kind == COUNT_WINDOW) {
        CountWindow *c = (CountWindow *)w;
        PyMem_Free(c->durations);
        PyMem_Free(c->flags);
        c->durations = NULL;
        c->flags = NULL;
        c->capacity = 0;
        c->wide = 0;
    }
    else {
        TimeWindow *t = (TimeWindow *)w;
        PyMem_Free(t->buckets);
        PyMem_Free(t->bucket_slow);
        t->buckets = NULL;
        t->bucket_slow = NULL;
        t->stride = 0;
    }
}

/* Fresh, empty storage for `size` records; on error the window is as it was. */
static int
window_allocate(Window *w, int64_t size)
{
    if (w->kind == COUNT_WINDOW) {
        Py_ssize_t capacity = size < INITIAL_SLOTS ? (Py_ssize_t)size : INITIAL_SLOTS;
        double *durations = PyMem_New(double, capacity);
        uint8_t *flags = PyMem_New(uint8_t, capacity);
        if (durations == NULL || flags == NULL) {
            PyMem_Free(durations);
            PyMem_Free(flags);
            PyErr_NoMemory();
            return -1;
        }
        window_free_storage(w);
        CountWindow *c = (CountWindow *)w;
        c->durations = durations;
        c->flags = flags;
        c->capacity = capacity;
        c->head = 0;
    }
    else {
        if ((uint64_t)size > PY_SSIZE_T_MAX / sizeof(Bucket)) {
            PyErr_NoMemory();
            return -1;
        }
        Bucket *buckets = PyMem_Calloc((size_t)size, sizeof(Bucket));
        if (buckets == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        window_free_storage(w);
        ((TimeWindow *)w)->buckets = buckets;
    }
    w->size = size;
    w->totals = (FgTotals){0, 0, 0.0};
    table_clear(&w->slow);
    return 0;
}

static FgState *
window_state(PyObject *self)
{
    return fg_state_from_type(Py_TYPE(self));
}

/* ---- the entry points of components.h ---------------------------------------*/

/* The built-in `window` is an instance of, or NULL. */
static PyTypeObject *
builtin_type(FgState *st, PyObject *window)
{
    PyTypeObject *types[] = {(PyTypeObject *)st->CountWindow_Type,
                             (PyTypeObject *)st->TimeWindow_Type};
    for (int i = 0; i < 2; i++) {
        if (PyObject_TypeCheck(window, types[i])) {
            return types[i];
        }
    }
    return NULL;
}

int
fg_window_is_native(FgState *st, PyObject *window)
{
    PyTypeObject *builtin = builtin_type(st, window);
    PyTypeObject *type = Py_TYPE(window);
    return builtin != NULL && fg_inherits_method(type, builtin, st->s_record)
           && fg_inherits_method(type, builtin, st->s_get_metric)
           && fg_inherits_method(type, builtin, st->s_reset);
}

int
fg_window_needs_timestamp(FgState *st, PyObject *window)
{
    return PyObject_TypeCheck(window, (PyTypeObject *)st->TimeWindow_Type);
}

int
fg_window_add(PyObject *window, int success, double duration,
              const double *slow_at, Py_ssize_t n_slow, double timestamp)
{
    return window_add((Window *)window, success, duration, slow_at, n_slow,
                      timestamp);
}

void
fg_window_totals(PyObject *window, FgTotals *out)
{
    *out = ((Window *)window)->totals;
}

int64_t
fg_window_slow_count(PyObject *window, double threshold)
{
    const SlowTable *t = &((Window *)window)->slow;
    int e = table_find(t, threshold);
    return e < 0 ? 0 : t->entries[e].count;
}

void
fg_window_clear(PyObject *window)
{
    window_clear((Window *)window);
}

PyObject *
fg_window_metric(FgState *st, PyObject *window)
{
    Window *w = (Window *)window;
    PyObject *slow = table_dict(&w->slow);
    if (slow == NULL) {
        return NULL;
    }
    return fg_metric_new(st, w->totals.total_count, w->totals.total_duration,
                         w->totals.failure_count, slow);
}

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
    PyObject *record;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:record", kwlist, &record)) {
        return NULL;
    }
    FgState *st = window_state(self);
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
    double buffer[16], *slow_at;
    Py_ssize_t n_slow;
    int rc = read_slow_at(slow_obj, buffer, 16, &slow_at, &n_slow);
    Py_DECREF(slow_obj);
    if (rc < 0) {
        return NULL;
    }
    if (w->kind == TIME_WINDOW) {
        rc = read_double(record, st->s_timestamp, "record.timestamp", &timestamp);
    }
    if (rc == 0) {
        Py_BEGIN_CRITICAL_SECTION(self);
        rc = window_add(w, success, duration, slow_at, n_slow, timestamp);
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
window_get_metric(PyObject *self, PyObject *unused)
{
    FgState *st = window_state(self);
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
window_reset(PyObject *self, PyObject *unused)
{
    Py_BEGIN_CRITICAL_SECTION(self);
    window_clear((Window *)self);
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
        return -1;
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
    rc = window_allocate(w, size);
    Py_END_CRITICAL_SECTION();
    return rc;
}

static PyObject *
window_new(PyTypeObject *type, WindowKind kind)
{
    Window *w = (Window *)type->tp_alloc(type, 0);
    if (w != NULL) {
        w->kind = kind;
    }
    return (PyObject *)w;
}

static PyObject *
count_window_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    return window_new(type, COUNT_WINDOW);
}

static PyObject *
time_window_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    return window_new(type, TIME_WINDOW);
}

static void
window_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Window *w = (Window *)self;
    window_free_storage(w);
    PyMem_Free(w->slow.entries);
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
    {"get_metric", window_get_metric, METH_NOARGS, get_metric_doc},
    {"reset", window_reset, METH_NOARGS, reset_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef window_getset[] = {
    {"size", window_get_size, NULL,
     "How many records (CountWindow) or seconds (TimeWindow) the window spans.",
     NULL},
    {NULL},
};

#define WINDOW_FLAGS                                                          \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE)

PyDoc_STRVAR(count_window_doc,
"CountWindow(size)\n"
"--\n\n"
"The last `size` call records. When full, the oldest record leaves as a\n"
"new one arrives; the metric is kept as a running total.");

static PyType_Slot count_window_slots[] = {
    {Py_tp_doc, (void *)count_window_doc},
    {Py_tp_new, count_window_new},
    {Py_tp_init, window_init},
    {Py_tp_dealloc, window_dealloc},
    {Py_tp_repr, window_repr},
    {Py_tp_methods, window_methods},
    {Py_tp_getset, window_getset},
    {0, NULL},
};

static PyType_Spec count_window_spec = {
    .name = "fluxgate.windows.CountWindow",
    .basicsize = sizeof(CountWindow),
    .flags = WINDOW_FLAGS,
    .slots = count_window_slots,
};

PyDoc_STRVAR(time_window_doc,
"TimeWindow(size)\n"
"--\n\n"
"The call records of the last `size` seconds, in one-second buckets. A\n"
"record goes to bucket int(record.timestamp) % size; a bucket that last\n"
"held another second is emptied first. Buckets are only emptied by a new\n"
"record, so after a quiet spell old ones still count until overwritten.");

static PyType_Slot time_window_slots[] = {
    {Py_tp_doc, (void *)time_window_doc},
    {Py_tp_new, time_window_new},
    {Py_tp_init, window_init},
    {Py_tp_dealloc, window_dealloc},
    {Py_tp_repr, window_repr},
    {Py_tp_methods, window_methods},
    {Py_tp_getset, window_getset},
    {0, NULL},
};

static PyType_Spec time_window_spec = {
    .name = "fluxgate.windows.TimeWindow",
    .basicsize = sizeof(TimeWindow),
    .flags = WINDOW_FLAGS,
    .slots = time_window_slots,
};

int
fg_windows_init(PyObject *module, FgState *st)
{
    if (fg_add_type(module, &count_window_spec, NULL, &st->CountWindow_Type, 1) < 0
        || fg_add_type(module, &time_window_spec, NULL, &st->TimeWindow_Type, 1) < 0) {
        return -1;
    }
    return 0;
}
