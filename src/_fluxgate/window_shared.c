/* Windows whose records live in a host-shared segment (shared.h): the
 * pre-sized layout windows.h describes, and loading, saving and rebuilding
 * the small state the segment keeps for them. The recording code of
 * windows.c runs on them unchanged: every capacity is final from the start,
 * so nothing grows or allocates. */
#include "windows.h"

/* The image of a window's small state: its WindowStore (whose array
 * pointers are this process's and are ignored on loading) and its table's
 * entries. */
static size_t
round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

size_t
fg_window_image_size(int n_thresholds)
{
    return round8(sizeof(WindowStore) + (size_t)n_thresholds * sizeof(SlowEntry));
}

static int
flag_words(int n_thresholds)
{
    return n_thresholds > NARROW_THRESHOLDS ? words_for(n_thresholds + 1) : 0;
}

/* Where a shared CountWindow's codes follow its exact durations. */
static size_t
count_codes_offset(size_t n)
{
    return n * sizeof(double);
}

size_t
fg_window_records_size(int kind, int64_t size, int n_thresholds,
                       size_t *second_offset)
{
    /* Sizes beyond 2**40 records are refused before they can overflow. */
    if (size <= 0 || size > ((int64_t)1 << 40) || n_thresholds > 4096) {
        return 0;
    }
    size_t n = (size_t)size;
    if (kind == COUNT_WINDOW) {
        /* exact, then the codes at count_codes_offset, then the flags. */
        int words = flag_words(n_thresholds);
        *second_offset = count_codes_offset(n) + round8(n * sizeof(uint32_t));
        size_t flags = words ? n * (size_t)words * sizeof(uint64_t) : n;
        return round8(*second_offset + flags);
    }
    *second_offset = round8(n * sizeof(Bucket));
    return *second_offset + n * (size_t)n_thresholds * sizeof(int64_t);
}

PyObject *
fg_window_new_shared(FgState *st, int kind, int64_t size, int n_thresholds,
                     void *records, size_t second_offset)
{
    PyTypeObject *type = (PyTypeObject *)(kind == COUNT_WINDOW ? st->CountWindow_Type
                                                               : st->TimeWindow_Type);
    Window *w = (Window *)fg_window_new(type, (WindowKind)kind);
    if (w == NULL) {
        return NULL;
    }
    w->external = 1;
    w->size = size;
    if (n_thresholds > 0
        && (fg_window_scratch(w) == NULL
            || fg_table_resize(&w->store.slow, w->scratch, n_thresholds) < 0)) {
        Py_DECREF(w);
        return NULL;
    }
    char *base = records;
    if (kind == COUNT_WINDOW) {
        w->store.records.ring = (CountRing){
            .capacity = (Py_ssize_t)size,
            .words = flag_words(n_thresholds),
            .exact = (double *)base,
            .durations = (uint32_t *)(base + count_codes_offset((size_t)size)),
            .flags = base + second_offset,
        };
        return (PyObject *)w;
    }
    Py_ssize_t n_pages = (Py_ssize_t)(size / PAGE_BUCKETS + (size % PAGE_BUCKETS != 0));
    Page *pages = PyMem_Calloc((size_t)n_pages, sizeof(Page));
    if (pages == NULL) {
        Py_DECREF(w);
        return PyErr_NoMemory();
    }
    Bucket *buckets = (Bucket *)base;
    int64_t *rows = (int64_t *)(base + second_offset);
    for (Py_ssize_t i = 0; i < n_pages; i++) {
        pages[i].buckets = buckets + i * PAGE_BUCKETS;
        pages[i].slow = n_thresholds ? rows + i * PAGE_BUCKETS * n_thresholds : NULL;
        pages[i].stride = n_thresholds;
    }
    w->store.records.pages = (TimePages){.n_pages = n_pages, .pages = pages};
    return (PyObject *)w;
}

int
fg_window_shape(FgState *st, PyObject *window, int *kind, int64_t *size)
{
    if (fg_window_native_kind(st, window) == FG_WINDOW_PYTHON) {
        PyErr_Format(PyExc_TypeError,
                     "with shared=, window must be a CountWindow or TimeWindow (it "
                     "names the kind and size of the shared window), not %.200s",
                     Py_TYPE(window)->tp_name);
        return -1;
    }
    const Window *w = (const Window *)window;
    if (window_check_initialised(w) < 0) {
        return -1;
    }
    *kind = (int)w->kind;
    *size = w->size;
    return 0;
}

int
fg_window_image_valid(int kind, int64_t size, int n_thresholds, const void *image)
{
    WindowStore s;
    memcpy(&s, image, sizeof s);
    const FgTotals *t = &s.totals;
    if (t->total_count < 0 || t->failure_count < 0 || t->failure_count > t->total_count
        || (kind == COUNT_WINDOW && t->total_count > size)) {
        return 0;
    }
    const SlowTable *table = &s.slow;
    if (table->capacity != n_thresholds || table->len < 0 || table->len > table->capacity
        || table->live < 0 || table->live > table->len) {
        return 0;
    }
    SlowEntry entry;
    for (int e = 0; e < table->len; e++) {
        memcpy(&entry, (const char *)image + sizeof s + (size_t)e * sizeof entry,
               sizeof entry);
        if (entry.count < 0 || entry.count > t->total_count) {
            return 0;
        }
    }
    if (kind == COUNT_WINDOW) {
        const CountRing *r = &s.records.ring;
        return r->capacity == (Py_ssize_t)size && r->words == flag_words(n_thresholds)
               && r->head >= 0 && r->head < r->capacity;
    }
    Py_ssize_t n_pages = (Py_ssize_t)(size / PAGE_BUCKETS + (size % PAGE_BUCKETS != 0));
    return s.records.pages.n_pages == n_pages;
}

void
fg_window_load(PyObject *window, const void *image)
{
    Window *w = (Window *)window;
    WindowStore local = w->store;
    memcpy(&w->store, image, sizeof(WindowStore));
    /* The arrays stay this process's: its entries, and its view of the
     * records. */
    w->store.slow.entries = local.slow.entries;
    w->store.slow.capacity = local.slow.capacity;
    if (w->kind == COUNT_WINDOW) {
        w->store.records.ring.durations = local.records.ring.durations;
        w->store.records.ring.exact = local.records.ring.exact;
        w->store.records.ring.flags = local.records.ring.flags;
        w->store.records.ring.capacity = local.records.ring.capacity;
        w->store.records.ring.words = local.records.ring.words;
    }
    else {
        w->store.records.pages.pages = local.records.pages.pages;
        w->store.records.pages.n_pages = local.records.pages.n_pages;
        w->store.records.pages.cached_second = local.records.pages.cached_second;
        w->store.records.pages.cached_index = local.records.pages.cached_index;
    }
    if (w->store.slow.capacity > 0) {
        memcpy(w->store.slow.entries, (const char *)image + sizeof(WindowStore),
               (size_t)w->store.slow.capacity * sizeof(SlowEntry));
    }
}

void
fg_window_save(PyObject *window, void *image)
{
    Window *w = (Window *)window;
    memcpy(image, &w->store, sizeof(WindowStore));
    if (w->store.slow.capacity > 0) {
        memcpy((char *)image + sizeof(WindowStore), w->store.slow.entries,
               (size_t)w->store.slow.capacity * sizeof(SlowEntry));
    }
}

/* A table whose counts were recomputed: entries with none are free. */
static void
table_settle(SlowTable *t)
{
    t->live = 0;
    for (int e = 0; e < t->len; e++) {
        t->live += t->entries[e].count > 0;
    }
    while (t->len > 0 && t->entries[t->len - 1].count == 0) {
        t->len--;
    }
}

void
fg_window_rebuild(PyObject *window)
{
    Window *w = (Window *)window;
    FgTotals totals = {0, 0, 0.0};
    SlowTable *t = &w->store.slow;
    for (int e = 0; e < t->len; e++) {
        t->entries[e].count = 0;
    }
    if (w->kind == COUNT_WINDOW) {
        const CountRing *r = &w->store.records.ring;
        /* The slots held before the dead process's change: the first
         * total_count, or all of them once full. */
        Py_ssize_t held = (Py_ssize_t)w->store.totals.total_count;
        for (Py_ssize_t slot = 0; slot < held && slot < r->capacity; slot++) {
            totals.total_count++;
            totals.failure_count += ring_failed(r, slot);
            totals.total_duration += ring_duration(r, slot);
            for (int e = 0; e < t->len; e++) {
                t->entries[e].count += ring_counts(r, slot, e);
            }
        }
    }
    else {
        const TimePages *p = &w->store.records.pages;
        for (Py_ssize_t index = 0; index < (Py_ssize_t)w->size; index++) {
            const Bucket *b = fg_time_bucket_if_any(w, index);
            if (b == NULL || b->generation != p->generation || b->count <= 0) {
                continue;
            }
            totals.total_count += b->count;
            totals.failure_count += b->failures;
            totals.total_duration += b->duration;
            for (int e = 0; e < t->len; e++) {
                t->entries[e].count += time_row_get(w, index, e);
            }
        }
    }
    w->store.totals = totals;
    table_settle(t);
}
