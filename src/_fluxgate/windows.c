/* Windows: the storage of CountWindow and TimeWindow and recording into it
 * (SPEC.md section 3; windows.h describes the storage).
 *
 * The same functions serve the Python methods (window_types.c, which lock
 * the window) and the breaker's entry points in components.h, at the end of
 * this file (which run under the breaker's critical section and call no
 * Python code). Recording stays in this one unit with those entry points,
 * so that the breaker's record path is one call deep. */
#include "windows.h"
#include "metric.h"

#include <math.h>

const char *const fg_window_kind_names[] = {"CountWindow", "TimeWindow"};

/* An empty window of `kind`; __init__ or __setstate__ gives it storage. */
PyObject *
fg_window_new(PyTypeObject *type, WindowKind kind)
{
    Window *w = (Window *)type->tp_alloc(type, 0);
    if (w != NULL) {
        w->kind = kind;
    }
    return (PyObject *)w;
}

/* ---- CountWindow ------------------------------------------------------------*/

/* Stores a record's flags: its failure and the entries of `counted`. */
static void
set_slot(CountRing *r, Py_ssize_t slot, int failed, const uint64_t *counted,
         int len)
{
    /* `counted` has no bit at or past `len`: the flags are `counted`
     * shifted up by one bit, the failure below. */
    if (r->words == 0) {
        uint8_t flags = (uint8_t)failed;
        if (len > 0) {
            flags |= (uint8_t)(counted[0] << 1);
        }
        ((uint8_t *)r->flags)[slot] = flags;
        return;
    }
    uint64_t *words = (uint64_t *)r->flags + slot * r->words;
    int have = len > 0 ? words_for(len) : 0;
    uint64_t carry = (uint64_t)failed;
    for (int w = 0; w < r->words; w++) {
        uint64_t bits = w < have ? counted[w] : 0;
        words[w] = bits << 1 | carry;
        carry = bits >> 63;
    }
}

/* Gives every slot room for the bits of the table's `capacity` entries,
 * once `needed` live entries no longer fit in a byte (a new entry takes the
 * lowest free index, so every index stays below the most entries ever
 * live). */
static int
ring_widen(CountRing *r, int needed, int capacity)
{
    int words = words_for(capacity + 1);
    if (needed <= NARROW_THRESHOLDS && r->words == 0) {
        return 0;
    }
    if (words <= r->words) {
        return 0;
    }
    if ((size_t)r->capacity > PY_SSIZE_T_MAX / ((size_t)words * sizeof(uint64_t))) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t *flags = PyMem_Calloc((size_t)r->capacity * words, sizeof(uint64_t));
    if (flags == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < r->capacity; i++) {
        if (r->words == 0) {
            flags[i * words] = ((uint8_t *)r->flags)[i];
        }
        else {
            memcpy(flags + i * words, (uint64_t *)r->flags + i * r->words,
                   (size_t)r->words * sizeof(uint64_t));
        }
    }
    PyMem_Free(r->flags);
    r->flags = flags;
    r->words = words;
    return 0;
}

/* Room for more slots, up to `size`, as a window that is not full yet fills
 * up. */
static int
ring_grow(CountRing *r, int64_t size)
{
    int64_t capacity = 2 * (int64_t)r->capacity;
    if (capacity > size) {
        capacity = size;
    }
    size_t width = r->words ? (size_t)r->words * sizeof(uint64_t) : sizeof(uint8_t);
    if (capacity > (int64_t)(PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(double))
        || (size_t)capacity > PY_SSIZE_T_MAX / width) {
        PyErr_NoMemory();
        return -1;
    }
    uint32_t *durations = PyMem_Realloc(r->durations, capacity * sizeof(uint32_t));
    if (durations == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    r->durations = durations;
    if (r->exact != NULL) {
        double *exact = PyMem_Realloc(r->exact, capacity * sizeof(double));
        if (exact == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->exact = exact;
    }
    void *flags = PyMem_Realloc(r->flags, (size_t)capacity * width);
    if (flags == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    r->flags = flags;
    r->capacity = (Py_ssize_t)capacity;
    return 0;
}

/* The array of durations that have no 32-bit code, the first time one is
 * recorded. */
static int
ring_add_exact(CountRing *r)
{
    r->exact = PyMem_New(double, r->capacity);
    if (r->exact == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int
count_add(Window *w, int success, double duration, int64_t duration_ns,
          const double *slow_at, Py_ssize_t n_slow)
{
    if (n_slow == 0 && duration_ns >= 0 && duration_ns < DURATION_ESCAPE
        && count_add_plain(w, success, (uint32_t)duration_ns, duration)) {
        return 0;
    }
    FgTotals *totals = &w->store.totals;
    SlowTable *t = &w->store.slow;
    SlowScratch *s = NULL;
    CountRing *r = &w->store.records.ring;
    int full = totals->total_count == w->size;
    /* Without thresholds, live or new, the table has nothing to do. */
    int slow = n_slow > 0 || t->len > 0;
    if (slow) {
        if ((s = fg_window_scratch(w)) == NULL) {
            return -1;
        }
        words_clear(s->freed, t->capacity);
        for (int e = 0; full && e < t->len; e++) {
            if (ring_counts(r, r->head, e) && t->entries[e].count == 1) {
                bit_set(s->freed, e);
            }
        }
        int needed = fg_table_plan(t, s, slow_at, n_slow);
        if (needed < 0 || table_reserve(t, s, table_capacity_for(t, needed)) < 0
            || ring_widen(r, needed, t->capacity) < 0) {
            return -1;
        }
    }
    if (!full && totals->total_count == r->capacity && ring_grow(r, w->size) < 0) {
        return -1;
    }
    /* A native duration is its own code; any other is checked. */
    uint32_t code = duration_ns >= 0 && duration_ns < DURATION_ESCAPE
                        ? (uint32_t)duration_ns
                        : duration_code(duration);
    if (code == DURATION_ESCAPE && r->exact == NULL && ring_add_exact(r) < 0) {
        return -1;
    }
    Py_ssize_t slot = (Py_ssize_t)totals->total_count;
    if (full) {
        slot = r->head;
        r->head = slot + 1 == r->capacity ? 0 : slot + 1;
        totals_remove(totals, 1, ring_failed(r, slot), ring_duration(r, slot));
        int len = t->len;
        for (int e = 0; e < len; e++) {
            if (ring_counts(r, slot, e)) {
                table_remove(t, e, 1);
            }
        }
    }
    if (slow) {
        fg_table_apply(t, s);
    }
    if (code == DURATION_ESCAPE) {
        r->exact[slot] = duration;
    }
    r->durations[slot] = code;
    set_slot(r, slot, !success, slow ? s->counted : NULL, t->len);
    totals_add(totals, success, duration);
    return 0;
}

/* ---- TimeWindow -------------------------------------------------------------*/

/* How many buckets the page holding bucket `index` has. */
static Py_ssize_t
page_len(const Window *w, Py_ssize_t index)
{
    int64_t left = w->size - (int64_t)(index / PAGE_BUCKETS) * PAGE_BUCKETS;
    return left < PAGE_BUCKETS ? (Py_ssize_t)left : PAGE_BUCKETS;
}

static Bucket *
time_bucket(Window *w, Py_ssize_t index)
{
    Page *page = page_of(&w->store.records.pages, index);
    if (page->buckets == NULL) {
        page->buckets = PyMem_Calloc((size_t)page_len(w, index), sizeof(Bucket));
        if (page->buckets == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    return &page->buckets[index % PAGE_BUCKETS];
}

Bucket *
fg_time_bucket(Window *w, Py_ssize_t index)
{
    return time_bucket(w, index);
}

const Bucket *
fg_time_bucket_if_any(const Window *w, Py_ssize_t index)
{
    const Page *page = page_of(&w->store.records.pages, index);
    return page->buckets ? &page->buckets[index % PAGE_BUCKETS] : NULL;
}

/* The counters of bucket `index` (its page allocated), or NULL when the page
 * has none yet. */
static int64_t *
bucket_row(Window *w, Py_ssize_t index)
{
    Page *page = page_of(&w->store.records.pages, index);
    return page->stride ? page->slow + (index % PAGE_BUCKETS) * page->stride : NULL;
}

/* Gives the buckets of the page holding bucket `index` room for `stride`
 * threshold counters. */
static int
time_restride(Window *w, Py_ssize_t index, int stride)
{
    Page *page = page_of(&w->store.records.pages, index);
    if (stride <= page->stride) {
        return 0;
    }
    Py_ssize_t n = page_len(w, index);
    if ((size_t)n > PY_SSIZE_T_MAX / ((size_t)stride * sizeof(int64_t))) {
        PyErr_NoMemory();
        return -1;
    }
    int64_t *rows = PyMem_Calloc((size_t)n * stride, sizeof(int64_t));
    if (rows == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n && page->stride > 0; i++) {
        memcpy(rows + i * stride, page->slow + i * page->stride,
               page->stride * sizeof(int64_t));
    }
    PyMem_Free(page->slow);
    page->slow = rows;
    page->stride = stride;
    return 0;
}

int64_t *
fg_time_row_reserve(Window *w, Py_ssize_t index)
{
    if (time_restride(w, index, w->store.slow.capacity) < 0) {
        return NULL;
    }
    return bucket_row(w, index);
}

static int
time_add(Window *w, int success, double duration, const double *slow_at,
         Py_ssize_t n_slow, double timestamp)
{
    if (n_slow == 0 && time_add_plain(w, success, duration, timestamp)) {
        return 0;
    }
    FgTotals *totals = &w->store.totals;
    SlowTable *t = &w->store.slow;
    SlowScratch *s = NULL;
    TimePages *p = &w->store.records.pages;
    if (!isfinite(timestamp)) {
        PyObject *value = PyFloat_FromDouble(timestamp);
        if (value != NULL) {
            PyErr_Format(PyExc_ValueError, "record.timestamp must be finite, not %R",
                         value);
            Py_DECREF(value);
        }
        return -1;
    }
    double second = trunc(timestamp);
    Py_ssize_t index;
    if (second == p->cached_second) {
        index = p->cached_index;
    }
    else {
        index = bucket_index(second, w->size);
        p->cached_second = second;
        p->cached_index = index;
    }
    Bucket *bucket = time_bucket(w, index);
    if (bucket == NULL) {
        return -1;
    }
    if (bucket->generation != p->generation) {
        /* Left over from before a clear: empty already, tidy it up. */
        *bucket = (Bucket){.generation = p->generation};
        if (page_of(p, index)->stride > 0) {
            memset(bucket_row(w, index), 0, page_of(p, index)->stride * sizeof(int64_t));
        }
    }
    int stale = bucket->count > 0 && bucket->second != second;
    /* Without thresholds, live or new, the table has nothing to do. */
    int slow = n_slow > 0 || t->len > 0;
    if (slow) {
        if ((s = fg_window_scratch(w)) == NULL) {
            return -1;
        }
        words_clear(s->freed, t->capacity);
    }
    if (stale && slow) {
        for (int e = 0; e < t->len; e++) {
            int64_t held = time_row_get(w, index, e);
            if (held > 0 && held == t->entries[e].count) {
                bit_set(s->freed, e);
            }
        }
    }
    int needed = slow ? fg_table_plan(t, s, slow_at, n_slow) : 0;
    int capacity = needed < 0 ? 0 : table_capacity_for(t, needed);
    if (needed < 0 || (slow && time_restride(w, index, capacity) < 0)
        || table_reserve(t, s, capacity) < 0) {
        return -1;
    }
    int64_t *row = bucket_row(w, index);
    if (stale) {
        totals_remove(totals, bucket->count, bucket->failures, bucket->duration);
        for (int e = 0; e < t->len; e++) {
            if (row[e] > 0) {
                table_remove(t, e, row[e]);
                row[e] = 0;
            }
        }
        *bucket = (Bucket){.generation = p->generation};
    }
    bucket->second = second;
    if (slow) {
        fg_table_apply(t, s);
        for (int e = 0; e < t->len; e++) {
            row[e] += bit_get(s->counted, e);
        }
    }
    bucket->count++;
    bucket->failures += success ? 0 : 1;
    bucket->duration = bucket->duration + duration;
    totals_add(totals, success, duration);
    return 0;
}

/* ---- both kinds ---------------------------------------------------------------*/

/* Frees the arrays of the records (the table stays). */
static void
free_records(Window *w)
{
    if (w->kind == COUNT_WINDOW) {
        CountRing *r = &w->store.records.ring;
        if (!w->external) {
            PyMem_Free(r->durations);
            PyMem_Free(r->exact);
            PyMem_Free(r->flags);
        }
        *r = (CountRing){0};
    }
    else {
        TimePages *p = &w->store.records.pages;
        for (Py_ssize_t i = 0; i < p->n_pages && !w->external; i++) {
            PyMem_Free(p->pages[i].buckets);
            PyMem_Free(p->pages[i].slow);
        }
        PyMem_Free(p->pages);
        p->pages = NULL;
        p->n_pages = 0;
    }
}

int
fg_window_allocate(Window *w, int64_t size)
{
    if (w->kind == COUNT_WINDOW) {
        Py_ssize_t capacity = size < INITIAL_SLOTS ? (Py_ssize_t)size : INITIAL_SLOTS;
        uint32_t *durations = PyMem_New(uint32_t, capacity);
        uint8_t *flags = PyMem_New(uint8_t, capacity);
        if (durations == NULL || flags == NULL) {
            PyMem_Free(durations);
            PyMem_Free(flags);
            PyErr_NoMemory();
            return -1;
        }
        free_records(w);
        w->store.records.ring =
            (CountRing){.capacity = capacity, .durations = durations, .flags = flags};
    }
    else {
        /* Only the index of the pages is allocated up front. Beyond 2**53
         * seconds bucket_index would not be exact, and no machine has the
         * memory for such an index anyway. */
        int64_t n_pages = size / PAGE_BUCKETS + (size % PAGE_BUCKETS != 0);
        Page *pages = NULL;
        if (size <= ((int64_t)1 << 53)
            && (uint64_t)n_pages <= PY_SSIZE_T_MAX / sizeof(Page)) {
            pages = PyMem_Calloc((size_t)n_pages, sizeof(Page));
        }
        if (pages == NULL) {
            PyErr_Format(PyExc_MemoryError,
                         "TimeWindow size %lld is too large: not enough memory "
                         "for the index of its buckets",
                         (long long)size);
            return -1;
        }
        free_records(w);
        TimePages *p = &w->store.records.pages;
        p->pages = pages;
        p->n_pages = (Py_ssize_t)n_pages;
        p->cached_second = 0.0; /* bucket 0 at any size */
        p->cached_index = 0;
    }
    w->size = size;
    w->store.totals = (FgTotals){0, 0, 0.0};
    table_clear(&w->store.slow);
    return 0;
}

void
fg_window_free(Window *w)
{
    free_records(w);
    fg_table_free(&w->store.slow);
    if (w->scratch != NULL) {
        fg_scratch_free(w->scratch);
        PyMem_Free(w->scratch);
        w->scratch = NULL;
    }
    fg_remote_free(w->remote);
    w->remote = NULL;
}

void
fg_window_swap(Window *a, Window *b)
{
    WindowStore store = a->store;
    a->store = b->store;
    b->store = store;
    /* The scratch space goes with the table it is sized for. */
    SlowScratch *scratch = a->scratch;
    a->scratch = b->scratch;
    b->scratch = scratch;
}

SlowScratch *
fg_window_scratch(Window *w)
{
    if (w->scratch == NULL) {
        w->scratch = PyMem_Calloc(1, sizeof(SlowScratch));
        if (w->scratch == NULL) {
            PyErr_NoMemory();
        }
    }
    return w->scratch;
}

/* ---- the entry points of components.h ---------------------------------------*/

/* Whether an instance of a subclass with a __dict__ holds one of the
 * window methods itself: `window.record(r)` would then call that. */
static int
instance_shadows_methods(FgState *st, PyObject *window)
{
    PyObject *dict = PyObject_GenericGetDict(window, NULL);
    if (dict == NULL) {
        PyErr_Clear();
        return 1; /* no answer: the Python path is right either way */
    }
    int shadows = 0;
    PyObject *names[] = {st->s_record, st->s_get_metric, st->s_reset};
    for (int i = 0; i < 3 && !shadows; i++) {
        shadows = PyDict_Check(dict) ? PyDict_Contains(dict, names[i]) : 1;
        if (shadows < 0) {
            PyErr_Clear();
            shadows = 1;
        }
    }
    Py_DECREF(dict);
    return shadows;
}

/* The window family's kinds are in WindowKind's order. */
int
fg_window_native_kind(FgState *st, PyObject *window)
{
    int kind = fg_native_kind(st, FG_FAMILY_WINDOW, window);
    if (kind == FG_PYTHON
        || (Py_TYPE(window)->tp_dictoffset != 0
            && instance_shadows_methods(st, window))) {
        return FG_WINDOW_PYTHON;
    }
    return kind == TIME_WINDOW ? FG_WINDOW_TIMED : FG_WINDOW_NATIVE;
}

int
fg_window_add(PyObject *window, int success, double duration,
              int64_t duration_ns, const double *slow_at, Py_ssize_t n_slow,
              double timestamp)
{
    Window *w = (Window *)window;
    if (window_check_initialised(w) < 0) {
        return -1;
    }
    if (w->remote != NULL) {
        fg_remote_expire(w->remote);
    }
    if (w->kind == COUNT_WINDOW) {
        return count_add(w, success, duration, duration_ns, slow_at, n_slow);
    }
    return time_add(w, success, duration, slow_at, n_slow, timestamp);
}

void
fg_window_totals(PyObject *window, FgTotals *out)
{
    const Window *w = (const Window *)window;
    *out = w->store.totals;
    if (w->remote != NULL && w->remote->live) {
        out->total_count += w->remote->totals.total_count;
        out->failure_count += w->remote->totals.failure_count;
        out->total_duration += w->remote->totals.total_duration;
    }
}

int64_t
fg_window_slow_count(PyObject *window, double threshold)
{
    const SlowTable *t = &((Window *)window)->store.slow;
    int e = table_find(t, threshold);
    int64_t count = e < 0 ? 0 : t->entries[e].count;
    const FgRemote *r = ((Window *)window)->remote;
    if (r != NULL && r->live) {
        for (Py_ssize_t i = 0; i < r->n; i++) {
            if (r->thresholds[i] == threshold) {
                count += r->slow[i];
            }
        }
    }
    return count;
}

void
fg_window_clear(PyObject *window)
{
    Window *w = (Window *)window;
    w->store.totals = (FgTotals){0, 0, 0.0};
    table_clear(&w->store.slow);
    if (w->remote != NULL) {
        w->remote->live = 0;
    }
    if (w->kind == COUNT_WINDOW) {
        w->store.records.ring.head = 0;
    }
    else {
        w->store.records.pages.generation++;
    }
}

PyObject *
fg_window_metric(FgState *st, PyObject *window)
{
    Window *w = (Window *)window;
    if (w->remote != NULL) {
        fg_remote_expire(w->remote);
    }
    PyObject *slow = fg_table_dict(&w->store.slow);
    if (slow == NULL) {
        return NULL;
    }
    if (w->remote != NULL && w->remote->live && fg_remote_add_slow(w->remote, slow) < 0) {
        Py_DECREF(slow);
        return NULL;
    }
    FgTotals totals;
    fg_window_totals(window, &totals);
    return fg_metric_new(st, totals.total_count, totals.total_duration,
                         totals.failure_count, slow);
}
