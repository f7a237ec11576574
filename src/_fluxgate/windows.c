/* Windows: CountWindow and TimeWindow (SPEC.md section 3).
 *
 * Both keep a running total (count, failures, duration) and a small table of
 * the distinct slow thresholds currently live, each with its running count,
 * so that reading the metric never walks the records. Every update removes
 * the leaving contribution before adding the new record, in the order of
 * Metric arithmetic, so the totals match 0.9.4's `(total - old) + new` bit for
 * bit. An update is planned first (it may fail: a NaN threshold, no memory)
 * and then applied, which cannot fail: an error leaves the window as it was.
 *
 * The same functions serve the Python methods (which lock the window) and
 * the breaker's entry points in components.h (which run under the breaker's
 * critical section and call no Python code). */
#include "components.h"
#include "metric.h"

#include <math.h>
#include <string.h>

/* A CountWindow slot keeps a bit per table entry next to its failure bit:
 * in one byte while entries 0-6 are all it needs, then in as many 64-bit
 * words as the table's capacity asks. There is no limit on the number of
 * distinct thresholds; the table and the slots grow as thresholds appear,
 * and recording into a grown window allocates nothing. */
#define NARROW_THRESHOLDS 7
/* Slots a CountWindow allocates up front; larger windows grow as they fill. */
#define INITIAL_SLOTS 1024

/* ---- bit sets ----------------------------------------------------------------*/

static inline int
words_for(int bits)
{
    return (bits + 63) / 64;
}

static inline int
bit_get(const uint64_t *set, int i)
{
    return (int)(set[i >> 6] >> (i & 63) & 1);
}

static inline void
bit_set(uint64_t *set, int i)
{
    set[i >> 6] |= (uint64_t)1 << (i & 63);
}

/* ---- the threshold table ----------------------------------------------------*/

typedef struct {
    double threshold;
    int64_t count; /* running count; 0 marks a free entry */
    uint64_t since; /* when the entry became live: the Metric's key order */
} SlowEntry;

/* The live thresholds, and the scratch space planning one record needs,
 * sized with the table so that recording allocates nothing: sets of
 * entries (words_for(capacity) words each) that the leaving contribution
 * frees, that the new record counts in again, and that it is counted in;
 * and the thresholds that need a new entry. */
typedef struct {
    SlowEntry *entries;
    int capacity;
    int len; /* entries past this one are all free */
    int live;
    uint64_t clock;
    uint64_t *freed;
    uint64_t *kept;
    uint64_t *counted;
    double *fresh;
    Py_ssize_t fresh_capacity;
    int n_fresh;
} SlowTable;

static void
words_clear(uint64_t *set, int capacity)
{
    if (capacity > 0) {
        memset(set, 0, (size_t)words_for(capacity) * sizeof(uint64_t));
    }
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

/* Room in the scratch space for a record of `n` thresholds. */
static int
table_reserve_fresh(SlowTable *t, Py_ssize_t n)
{
    if (n <= t->fresh_capacity) {
        return 0;
    }
    double *fresh = PyMem_Realloc(t->fresh, (size_t)n * sizeof(double));
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->fresh = fresh;
    t->fresh_capacity = n;
    return 0;
}

/* Plans a record's thresholds, given the entries the leaving contribution
 * will free (t->freed): the entries it counts in again go to t->kept, the
 * distinct thresholds that need an entry to t->fresh. Returns how many
 * entries will then be live, or -1 with ValueError. */
static int
table_plan(SlowTable *t, const double *slow_at, Py_ssize_t n)
{
    int live = t->live;
    for (int e = 0; e < t->len; e++) {
        live -= bit_get(t->freed, e);
    }
    if (table_reserve_fresh(t, n) < 0) {
        return -1;
    }
    words_clear(t->kept, t->capacity);
    t->n_fresh = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double threshold = slow_at[i];
        if (isnan(threshold)) {
            PyErr_SetString(PyExc_ValueError,
                            "record.slow_at must not contain NaN");
            return -1;
        }
        int e = table_find(t, threshold);
        if (e >= 0 && !bit_get(t->freed, e)) {
            bit_set(t->kept, e);
            continue;
        }
        int seen = 0;
        for (int j = 0; j < t->n_fresh && !seen; j++) {
            seen = t->fresh[j] == threshold;
        }
        if (!seen) {
            t->fresh[t->n_fresh++] = threshold;
        }
    }
    if (t->n_fresh > INT_MAX / 2 - live) {
        PyErr_NoMemory();
        return -1;
    }
    return live + t->n_fresh;
}

/* The capacity the table needs for `needed` live entries (entries are taken
 * lowest index first, so every live index is below the most ever live). */
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
    return capacity;
}

/* Grows one entry set to `words` words, the new ones empty. */
static int
words_grow(uint64_t **set, int old_words, int words)
{
    uint64_t *grown = PyMem_Realloc(*set, (size_t)words * sizeof(uint64_t));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(grown + old_words, 0, (size_t)(words - old_words) * sizeof(uint64_t));
    *set = grown;
    return 0;
}

/* Grows the table and its scratch sets, keeping their contents. */
static int
table_resize(SlowTable *t, int capacity)
{
    if (capacity <= t->capacity) {
        return 0;
    }
    if ((size_t)capacity > PY_SSIZE_T_MAX / sizeof(SlowEntry)) {
        PyErr_NoMemory();
        return -1;
    }
    int old_words = t->capacity ? words_for(t->capacity) : 0;
    int words = words_for(capacity);
    if (words > old_words
        && (words_grow(&t->freed, old_words, words) < 0
            || words_grow(&t->kept, old_words, words) < 0
            || words_grow(&t->counted, old_words, words) < 0)) {
        return -1;
    }
    SlowEntry *entries = PyMem_Realloc(t->entries, (size_t)capacity * sizeof(SlowEntry));
    if (entries == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->entries = entries;
    t->capacity = capacity;
    return 0;
}

static void
table_free(SlowTable *t)
{
    PyMem_Free(t->entries);
    PyMem_Free(t->freed);
    PyMem_Free(t->kept);
    PyMem_Free(t->counted);
    PyMem_Free(t->fresh);
    *t = (SlowTable){0};
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

/* Applies the plan: one more for each threshold. The entries counted are
 * left in t->counted. */
static void
table_apply(SlowTable *t)
{
    words_clear(t->counted, t->capacity);
    for (int e = 0; e < t->len; e++) {
        if (bit_get(t->kept, e)) {
            t->entries[e].count++;
            bit_set(t->counted, e);
        }
    }
    for (int i = 0; i < t->n_fresh; i++) {
        int e = 0;
        while (e < t->len && t->entries[e].count != 0) {
            e++;
        }
        if (e == t->len) {
            t->len++;
        }
        t->entries[e] = (SlowEntry){t->fresh[i], 1, ++t->clock};
        t->live++;
        bit_set(t->counted, e);
    }
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
    int *order = PyMem_New(int, t->len > 0 ? t->len : 1);
    if (order == NULL) {
        return PyErr_NoMemory();
    }
    int n = 0;
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
    PyMem_Free(order);
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
 * failure in bit 0 and table entry e in bit e + 1, in one byte per slot or,
 * once `words` > 0, in that many 64-bit words per slot. Until the window is
 * full the records fill slots 0, 1, ...; then `head` is the oldest. */
typedef struct {
    Window base;
    double *durations;
    void *flags;
    int words;
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
 * count per table entry. The buckets come in pages of PAGE_BUCKETS, each
 * allocated when a record first lands in it, with a row of `stride`
 * counters per bucket (entries at or past a page's stride count 0 there):
 * a window of many seconds costs only an index of its pages up front.
 * Clearing the window starts a new generation instead of touching every
 * bucket. */
#define PAGE_BUCKETS 4096

typedef struct {
    Bucket *buckets; /* NULL until touched */
    int64_t *slow;   /* stride counters per bucket, or NULL */
    int stride;
} Page;

typedef struct {
    Window base;
    Page *pages;
    Py_ssize_t n_pages;
    uint64_t generation;
} TimeWindow;

/* ---- CountWindow ------------------------------------------------------------*/

static int
slot_bit(const CountWindow *w, Py_ssize_t slot, int bit)
{
    if (w->words == 0) {
        return ((uint8_t *)w->flags)[slot] >> bit & 1;
    }
    return bit_get((uint64_t *)w->flags + slot * w->words, bit);
}

/* Whether the record in `slot` failed, and whether it counts in entry e. */
static int
slot_failed(const CountWindow *w, Py_ssize_t slot)
{
    return slot_bit(w, slot, 0);
}

static int
slot_counts(const CountWindow *w, Py_ssize_t slot, int e)
{
    return slot_bit(w, slot, e + 1);
}

/* Stores a record's flags: its failure and the entries of `counted`. */
static void
set_slot(CountWindow *w, Py_ssize_t slot, int failed, const uint64_t *counted,
         int len)
{
    if (w->words == 0) {
        uint8_t flags = (uint8_t)failed;
        for (int e = 0; e < len; e++) {
            flags |= (uint8_t)(bit_get(counted, e) << (e + 1));
        }
        ((uint8_t *)w->flags)[slot] = flags;
        return;
    }
    uint64_t *words = (uint64_t *)w->flags + slot * w->words;
    memset(words, 0, (size_t)w->words * sizeof(uint64_t));
    words[0] = (uint64_t)failed;
    for (int e = 0; e < len; e++) {
        if (bit_get(counted, e)) {
            bit_set(words, e + 1);
        }
    }
}

/* Gives every slot room for the bits of the table's `capacity` entries,
 * once `needed` live entries no longer fit in a byte (a new entry takes the
 * lowest free index, so every index stays below the most entries ever
 * live). */
static int
count_widen(CountWindow *w, int needed, int capacity)
{
    int words = words_for(capacity + 1);
    if (needed <= NARROW_THRESHOLDS && w->words == 0) {
        return 0;
    }
    if (words <= w->words) {
        return 0;
    }
    if ((size_t)w->capacity > PY_SSIZE_T_MAX / ((size_t)words * sizeof(uint64_t))) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t *flags = PyMem_Calloc((size_t)w->capacity * words, sizeof(uint64_t));
    if (flags == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < w->capacity; i++) {
        if (w->words == 0) {
            flags[i * words] = ((uint8_t *)w->flags)[i];
        }
        else {
            memcpy(flags + i * words, (uint64_t *)w->flags + i * w->words,
                   (size_t)w->words * sizeof(uint64_t));
        }
    }
    PyMem_Free(w->flags);
    w->flags = flags;
    w->words = words;
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
    size_t width = w->words ? (size_t)w->words * sizeof(uint64_t) : sizeof(uint8_t);
    if (capacity > (int64_t)(PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(double))
        || (size_t)capacity > PY_SSIZE_T_MAX / width) {
        PyErr_NoMemory();
        return -1;
    }
    double *durations = PyMem_Realloc(w->durations, capacity * sizeof(double));
    if (durations == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->durations = durations;
    void *flags = PyMem_Realloc(w->flags, (size_t)capacity * width);
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
    /* Without thresholds, live or new, the table has nothing to do. */
    int slow = n_slow > 0 || t->len > 0;
    if (slow) {
        words_clear(t->freed, t->capacity);
        for (int e = 0; full && e < t->len; e++) {
            if (slot_counts(w, w->head, e) && t->entries[e].count == 1) {
                bit_set(t->freed, e);
            }
        }
        int needed = table_plan(t, slow_at, n_slow);
        if (needed < 0 || table_resize(t, table_capacity_for(t, needed)) < 0
            || count_widen(w, needed, t->capacity) < 0) {
            return -1;
        }
    }
    if (!full && b->totals.total_count == w->capacity && count_grow(w) < 0) {
        return -1;
    }
    Py_ssize_t slot = (Py_ssize_t)b->totals.total_count;
    if (full) {
        slot = w->head;
        w->head = slot + 1 == w->capacity ? 0 : slot + 1;
        b->totals.total_count--;
        b->totals.failure_count -= slot_failed(w, slot);
        b->totals.total_duration = b->totals.total_duration - w->durations[slot];
        int len = t->len;
        for (int e = 0; e < len; e++) {
            if (slot_counts(w, slot, e)) {
                table_remove(t, e, 1);
            }
        }
    }
    if (slow) {
        table_apply(t);
    }
    w->durations[slot] = duration;
    set_slot(w, slot, !success, t->counted, t->len);
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

static Page *
page_of(TimeWindow *w, Py_ssize_t index)
{
    return &w->pages[index / PAGE_BUCKETS];
}

/* How many buckets the page holding bucket `index` has. */
static Py_ssize_t
page_len(const TimeWindow *w, Py_ssize_t index)
{
    int64_t left = w->base.size - (int64_t)(index / PAGE_BUCKETS) * PAGE_BUCKETS;
    return left < PAGE_BUCKETS ? (Py_ssize_t)left : PAGE_BUCKETS;
}

/* Bucket `index`, its page allocated first if need be (NULL with
 * MemoryError when that fails, the window unchanged). */
static Bucket *
time_bucket(TimeWindow *w, Py_ssize_t index)
{
    Page *page = page_of(w, index);
    if (page->buckets == NULL) {
        page->buckets = PyMem_Calloc((size_t)page_len(w, index), sizeof(Bucket));
        if (page->buckets == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    return &page->buckets[index % PAGE_BUCKETS];
}

/* The counters of bucket `index` (its page allocated), or NULL when the page
 * has none yet. */
static int64_t *
bucket_row(TimeWindow *w, Py_ssize_t index)
{
    Page *page = page_of(w, index);
    return page->stride ? page->slow + (index % PAGE_BUCKETS) * page->stride : NULL;
}

/* Bucket `index`'s count for entry e. */
static int64_t
row_get(TimeWindow *w, Py_ssize_t index, int e)
{
    Page *page = page_of(w, index);
    return e < page->stride ? page->slow[(index % PAGE_BUCKETS) * page->stride + e] : 0;
}

/* Gives the buckets of the page holding bucket `index` room for `stride`
 * threshold counters. */
static int
time_restride(TimeWindow *w, Py_ssize_t index, int stride)
{
    Page *page = page_of(w, index);
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

/* Python's int(timestamp) % size, given second = trunc(timestamp): trunc and
 * fmod are exact on doubles, and size is at most 2**53 (window_allocate). */
static Py_ssize_t
bucket_index(double second, int64_t size)
{
    double rem = fmod(second, (double)size);
    if (rem < 0) {
        rem += (double)size;
    }
    return (Py_ssize_t)rem;
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
    double second = trunc(timestamp);
    Py_ssize_t index = bucket_index(second, b->size);
    Bucket *bucket = time_bucket(w, index);
    if (bucket == NULL) {
        return -1;
    }
    if (bucket->generation != w->generation) {
        /* Left over from before a clear: empty already, tidy it up. */
        *bucket = (Bucket){.generation = w->generation};
        if (page_of(w, index)->stride > 0) {
            memset(bucket_row(w, index), 0,
                   page_of(w, index)->stride * sizeof(int64_t));
        }
    }
    int stale = bucket->count > 0 && bucket->second != second;
    /* Without thresholds, live or new, the table has nothing to do. */
    int slow = n_slow > 0 || t->len > 0;
    words_clear(t->freed, t->capacity);
    if (stale && slow) {
        for (int e = 0; e < t->len; e++) {
            int64_t held = row_get(w, index, e);
            if (held > 0 && held == t->entries[e].count) {
                bit_set(t->freed, e);
            }
        }
    }
    int needed = slow ? table_plan(t, slow_at, n_slow) : 0;
    int capacity = needed < 0 ? 0 : table_capacity_for(t, needed);
    if (needed < 0 || (slow && time_restride(w, index, capacity) < 0)
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
    if (slow) {
        table_apply(t);
        for (int e = 0; e < t->len; e++) {
            row[e] += bit_get(t->counted, e);
        }
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
check_initialised(const Window *w)
{
    if (w->size == 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "window is not initialised: %s.__init__() was not called",
                     kind_names[w->kind]);
        return -1;
    }
    return 0;
}

static int
window_add(Window *w, int success, double duration, const double *slow_at,
           Py_ssize_t n_slow, double timestamp)
{
    if (check_initialised(w) < 0) {
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
        c->words = 0;
    }
    else {
        TimeWindow *t = (TimeWindow *)w;
        for (Py_ssize_t p = 0; p < t->n_pages; p++) {
            PyMem_Free(t->pages[p].buckets);
            PyMem_Free(t->pages[p].slow);
        }
        PyMem_Free(t->pages);
        t->pages = NULL;
        t->n_pages = 0;
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
        window_free_storage(w);
        ((TimeWindow *)w)->pages = pages;
        ((TimeWindow *)w)->n_pages = (Py_ssize_t)n_pages;
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
    static const char *const keys[] = {"fluxgate.windows.CountWindow.record",
                                       "fluxgate.windows.TimeWindow.record"};
    PyObject *record;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:record", kwlist, &record)) {
        fg_bind_error(keys[((Window *)self)->kind], self, args, kwargs);
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
window_get_metric(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    static const char *const keys[] = {"fluxgate.windows.CountWindow.get_metric",
                                       "fluxgate.windows.TimeWindow.get_metric"};
    if (fg_check_no_args(keys[((Window *)self)->kind], self, args, nargs, kwnames) < 0) {
        return NULL;
    }
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
window_reset(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    static const char *const keys[] = {"fluxgate.windows.CountWindow.reset",
                                       "fluxgate.windows.TimeWindow.reset"};
    if (fg_check_no_args(keys[((Window *)self)->kind], self, args, nargs, kwnames) < 0) {
        return NULL;
    }
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
    rc = w->size != 0 ? fg_already_initialised(self) : window_allocate(w, size);
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
    PyObject_GC_UnTrack(self);
    window_free_storage(w);
    table_free(&w->slow);
    type->tp_free(self);
    Py_DECREF(type);
}

/* ---- pickle and copy --------------------------------------------------------
 *
 * A window reduces to (type, (size,), state), the state made of plain values:
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
slot_thresholds(const CountWindow *w, Py_ssize_t slot)
{
    const SlowTable *t = &w->base.slow;
    Py_ssize_t n = 0;
    for (int e = 0; e < t->len; e++) {
        n += slot_counts(w, slot, e);
    }
    PyObject *tuple = PyTuple_New(n);
    Py_ssize_t k = 0;
    for (int e = 0; tuple != NULL && e < t->len; e++) {
        if (slot_counts(w, slot, e)) {
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
count_records(CountWindow *w)
{
    Py_ssize_t n = (Py_ssize_t)w->base.totals.total_count;
    PyObject *records = PyList_New(n);
    for (Py_ssize_t i = 0; records != NULL && i < n; i++) {
        Py_ssize_t slot = (w->head + i) % w->capacity;
        PyObject *slow_at = slot_thresholds(w, slot);
        PyObject *duration = slow_at ? PyFloat_FromDouble(w->durations[slot]) : NULL;
        PyObject *record = NULL;
        if (duration != NULL) {
            record = PyTuple_Pack(3, slot_failed(w, slot) ? Py_False : Py_True,
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
time_buckets(TimeWindow *w)
{
    const SlowTable *t = &w->base.slow;
    PyObject *buckets = PyList_New(0);
    for (Py_ssize_t i = 0; buckets != NULL && i < (Py_ssize_t)w->base.size; i++) {
        if (page_of(w, i)->buckets == NULL) {
            i += PAGE_BUCKETS - 1 - i % PAGE_BUCKETS; /* the whole page is empty */
            continue;
        }
        const Bucket *bucket = &page_of(w, i)->buckets[i % PAGE_BUCKETS];
        if (bucket->generation != w->generation || bucket->count == 0) {
            continue;
        }
        PyObject *slow = PyDict_New();
        for (int e = 0; slow != NULL && e < t->len; e++) {
            int64_t count = row_get(w, i, e);
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

PyDoc_STRVAR(reduce_doc,
"__reduce__($self, /)\n"
"--\n\n"
"Helper for pickle and copy: the size, and the records as plain values.");

static PyObject *
window_reduce(PyObject *self, PyObject *unused)
{
    Window *w = (Window *)self;
    PyObject *attributes;
    if (check_initialised(w) < 0 || instance_dict(self, &attributes) < 0) {
        return NULL;
    }
    PyObject *contents, *slow = NULL;
    long long size;
    double total_duration;
    Py_BEGIN_CRITICAL_SECTION(self);
    size = (long long)w->size;
    total_duration = w->totals.total_duration;
    contents = w->kind == COUNT_WINDOW ? count_records((CountWindow *)w)
                                       : time_buckets((TimeWindow *)w);
    if (contents != NULL) {
        slow = table_dict(&w->slow);
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
    char label[80];
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
    char label[80];
    PyOS_snprintf(label, sizeof(label), "%s state: %s", name, what);
    return fg_as_int64(obj, label, out);
}

/* Replays the records through the same path as record(). */
static int
count_restore(CountWindow *w, PyObject *records)
{
    const char *name = kind_names[COUNT_WINDOW];
    PyObject *items = state_items(records, name, "records");
    if (items == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    int rc = 0;
    if (n > w->base.size) {
        PyErr_Format(PyExc_ValueError, "%s state: %zd records do not fit in size %lld",
                     name, n, (long long)w->base.size);
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
            rc = count_add(w, PyTuple_GET_ITEM(record, 0) == Py_True, duration, slow_at,
                           n_slow);
        }
        PyMem_Free(slow_at);
    }
    Py_DECREF(items);
    return rc;
}

/* Puts a bucket's slow counts in its row and the table (entries in the order
 * first seen, set right by table_set_order). */
static int
time_restore_slow(TimeWindow *w, Py_ssize_t index, PyObject *slow_counts)
{
    const char *name = kind_names[TIME_WINDOW];
    SlowTable *t = &w->base.slow;
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
            && (isnan(threshold) || count < 1
                || count > page_of(w, index)->buckets[index % PAGE_BUCKETS].count)) {
            PyErr_Format(PyExc_ValueError,
                         "%s state: a bucket's slow counts must be between 1 and "
                         "its count, for thresholds that are not NaN",
                         name);
            rc = -1;
        }
        int e = rc == 0 ? table_find(t, threshold) : -1;
        if (rc == 0 && e < 0) {
            if (t->len == INT_MAX / 2) {
                PyErr_NoMemory();
                rc = -1;
                break;
            }
            int capacity = table_capacity_for(t, t->len + 1);
            if (table_resize(t, capacity) < 0) {
                rc = -1;
                break;
            }
            e = t->len++;
            t->entries[e] = (SlowEntry){threshold, 0, ++t->clock};
            t->live++;
        }
        if (rc == 0 && time_restride(w, index, t->capacity) < 0) {
            rc = -1;
            break;
        }
        if (rc == 0) {
            int64_t *row = bucket_row(w, index);
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
time_restore(TimeWindow *w, PyObject *buckets)
{
    const char *name = kind_names[TIME_WINDOW];
    FgTotals *totals = &w->base.totals;
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
        Py_ssize_t index = bucket_index(second, w->base.size);
        Bucket *bucket = time_bucket(w, index);
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
        *bucket = (Bucket){count, failures, duration, second, w->generation};
        totals->total_count += count;
        totals->failure_count += failures;
        rc = time_restore_slow(w, index, PyTuple_GET_ITEM(item, 4));
    }
    Py_DECREF(items);
    return rc;
}

/* Puts the live thresholds in the order `thresholds` gives, which must name
 * each of them once: the order get_metric() then lists them in. */
static int
table_set_order(SlowTable *t, PyObject *thresholds, const char *name)
{
    PyObject *items = state_items(thresholds, name, "thresholds");
    if (items == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    /* The scratch set t->kept marks the entries named so far. */
    uint64_t *seen = t->kept;
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

/* Exchanges the contents of two windows of the same kind, leaving their
 * object headers alone. */
static void
window_swap(Window *a, Window *b)
{
    unsigned char buffer[sizeof(CountWindow) > sizeof(TimeWindow) ? sizeof(CountWindow)
                                                                  : sizeof(TimeWindow)];
    size_t start = offsetof(Window, size);
    size_t end = a->kind == COUNT_WINDOW ? sizeof(CountWindow) : sizeof(TimeWindow);
    memcpy(buffer, (char *)a + start, end - start);
    memcpy((char *)a + start, (char *)b + start, end - start);
    memcpy((char *)b + start, buffer, end - start);
}

PyDoc_STRVAR(setstate_doc,
"__setstate__($self, state, /)\n"
"--\n\n"
"Take the records of a state that __reduce__ gave; on error the window is\n"
"unchanged.");

static PyObject *
window_setstate(PyObject *self, PyObject *state)
{
    Window *w = (Window *)self;
    const char *name = kind_names[w->kind];
    FgState *st = window_state(self);
    if (st == NULL || check_initialised(w) < 0) {
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
        scratch = (Window *)window_new(type, w->kind);
        rc = scratch ? window_allocate(scratch, w->size) : -1;
    }
    if (rc == 0) {
        PyObject *contents = PyTuple_GET_ITEM(state, 0);
        rc = w->kind == COUNT_WINDOW ? count_restore((CountWindow *)scratch, contents)
                                     : time_restore((TimeWindow *)scratch, contents);
    }
    if (rc == 0) {
        rc = table_set_order(&scratch->slow, PyTuple_GET_ITEM(state, 2), name);
    }
    if (rc == 0) {
        scratch->totals.total_duration = total_duration;
        Py_BEGIN_CRITICAL_SECTION(self);
        window_swap(w, scratch);
        Py_END_CRITICAL_SECTION();
        if (dict != NULL) {
            rc = PyDict_Update(dict, attributes);
        }
    }
    Py_XDECREF((PyObject *)scratch);
    Py_XDECREF(dict);
    return rc < 0 ? NULL : Py_NewRef(Py_None);
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
    {"__reduce__", window_reduce, METH_NOARGS, reduce_doc},
    {"__setstate__", window_setstate, METH_O, setstate_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef window_getset[] = {
    {"size", window_get_size, NULL,
     "How many records (CountWindow) or seconds (TimeWindow) the window spans.",
     NULL},
    {NULL},
};

#define WINDOW_FLAGS                                                          \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC)

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
    {Py_tp_traverse, fg_plain_traverse},
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
    {Py_tp_traverse, fg_plain_traverse},
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
