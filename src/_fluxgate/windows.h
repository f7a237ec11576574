/* What the window units share (SPEC.md section 3, DESIGN.md D5); private to
 * them. The breaker reaches windows only through components.h, except for
 * the fused record (machine_fused.c), which inlines count_add_plain and
 * time_add_plain below.
 *
 *   window_thresholds.c  the slow-threshold table
 *   windows.c            the two windows' storage, recording into it, and the
 *                        entry points of components.h (the hot path)
 *   window_types.c       the Python types: methods, __init__, specs
 *   window_state.c       pickling and copying: __reduce__, __setstate__ and
 *                        the checks of a state
 *
 * Both windows keep a running total (count, failures, duration) and a table
 * of the distinct slow thresholds currently live, each with its running
 * count, so that reading the metric never walks the records. Every update
 * removes the leaving contribution before adding the new record, in the
 * order of Metric arithmetic, so the totals match 0.9.4's `(total - old) +
 * new` bit for bit. An update is planned first (it may fail: a NaN
 * threshold, no memory) and then applied, which cannot fail: an error leaves
 * the window as it was.
 *
 * ---- Storage ----------------------------------------------------------------
 * Everything a window holds is in one WindowStore: a header of plain fields
 * (the totals, the table's and the ring's or pages' bookkeeping) and the
 * arrays it points to. __setstate__ builds a store aside and exchanges it
 * with the window's whole; nothing else in the object is part of the
 * contents. The per-process scratch space for planning an update
 * (SlowScratch) is not part of the store.
 *
 * Privately the arrays are PyMem blocks that grow as the window fills: a
 * CountWindow's ring doubles up to `size` slots, the table and the slots'
 * flag width grow as thresholds appear, and a TimeWindow's buckets are
 * allocated a page at a time as records land in them (only the page index
 * is allocated up front).
 *
 * A host-shared window is pre-sized instead, in one fixed block whose
 * layout follows from (kind, size, T) alone, T being the number of distinct
 * slow thresholds the segment header fixes:
 *
 *   header   the scalar fields of WindowStore (totals; table capacity = T,
 *            len, live, clock; ring capacity = size, words, head; or the
 *            pages' generation), at offset 0
 *   entries  SlowEntry[T]
 *   CountWindow:
 *     exact      double[size]
 *     durations  uint32_t[size]
 *     flags      size bytes while T <= NARROW_THRESHOLDS, else
 *                size * words_for(T + 1) uint64_t words
 *   TimeWindow:
 *     buckets    Bucket[size]
 *     rows       int64_t[size * T]   (every page's stride is T)
 *
 * each array at an offset that is a multiple of 8 (flags, the one array of
 * bytes, comes last).
 * With every capacity at its final value from the start, the grow paths
 * never run, and the same code records into the block. The array pointers
 * are the one per-process part: a process that maps the block points them
 * into its own mapping (for a TimeWindow, Page p of its page index at
 * buckets + p * PAGE_BUCKETS and rows + p * PAGE_BUCKETS * T, stride T),
 * while the header's fields live in the block, so the store's scalar
 * fields are then reached through the block rather than held in the
 * object. */
#ifndef FLUXGATE_WINDOWS_H
#define FLUXGATE_WINDOWS_H

#include "components.h"

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
/* Buckets per page of a TimeWindow. */
#define PAGE_BUCKETS 4096
/* The table's capacity when its first threshold appears; it then doubles. */
#define INITIAL_THRESHOLDS 4

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

static inline void
words_clear(uint64_t *set, int capacity)
{
    if (capacity <= 0) {
        return;
    }
    if (capacity <= 64) { /* the usual case: no call to memset */
        set[0] = 0;
        return;
    }
    memset(set, 0, (size_t)words_for(capacity) * sizeof(uint64_t));
}

/* ---- the threshold table (window_thresholds.c) -------------------------------*/

typedef struct {
    double threshold;
    int64_t count; /* running count; 0 marks a free entry */
    uint64_t since; /* when the entry became live: the Metric's key order */
} SlowEntry;

/* The live thresholds: entries past `len` are all free. */
typedef struct {
    int capacity;
    int len;
    int live;
    uint64_t clock;
    SlowEntry *entries; /* capacity entries */
} SlowTable;

/* The scratch space planning one record needs, sized with the table so that
 * recording allocates nothing: sets of entries (words_for(capacity) words
 * each) that the leaving contribution frees, that the new record counts in
 * again, and that it is counted in; and the thresholds that need a new
 * entry. Per process: never part of a window's contents. */
typedef struct {
    uint64_t *freed;
    uint64_t *kept;
    uint64_t *counted;
    double *fresh;
    Py_ssize_t fresh_capacity;
    int n_fresh;
} SlowScratch;

static inline int
table_find(const SlowTable *t, double threshold)
{
    for (int i = 0; i < t->len; i++) {
        if (t->entries[i].count > 0 && t->entries[i].threshold == threshold) {
            return i;
        }
    }
    return -1;
}

/* table_find, trying entry `hint` first: a breaker's calls reach its
 * thresholds in ascending order, and the entries are usually made in that
 * order, so the i-th threshold of a record is mostly entry i. */
static inline int
table_find_hinted(const SlowTable *t, double threshold, Py_ssize_t hint)
{
    if (hint < t->len && t->entries[hint].count > 0
        && t->entries[hint].threshold == threshold) {
        return (int)hint;
    }
    return table_find(t, threshold);
}

/* The capacity the table needs for `needed` live entries (entries are taken
 * lowest index first, so every live index is below the most ever live). */
static inline int
table_capacity_for(const SlowTable *t, int needed)
{
    if (needed <= t->capacity) {
        return t->capacity;
    }
    int capacity = t->capacity ? t->capacity : INITIAL_THRESHOLDS;
    while (capacity < needed) {
        capacity *= 2;
    }
    return capacity;
}

static inline void
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

static inline void
table_clear(SlowTable *t)
{
    t->len = 0;
    t->live = 0;
}

/* Plans a record's thresholds, given the entries the leaving contribution
 * will free (s->freed): the entries it counts in again go to s->kept, the
 * distinct thresholds that need an entry to s->fresh. Returns how many
 * entries will then be live, or -1 with ValueError or MemoryError. */
int fg_table_plan(const SlowTable *t, SlowScratch *s, const double *slow_at,
                  Py_ssize_t n);
/* Applies the plan: one more for each threshold. The entries counted are
 * left in s->counted. */
void fg_table_apply(SlowTable *t, SlowScratch *s);
/* Grows the table and the scratch sets to `capacity`, keeping contents. */
int fg_table_resize(SlowTable *t, SlowScratch *s, int capacity);

/* fg_table_resize, inline while the table is large enough already (the
 * record path's case). */
static inline int
table_reserve(SlowTable *t, SlowScratch *s, int capacity)
{
    return capacity <= t->capacity ? 0 : fg_table_resize(t, s, capacity);
}
/* A new live entry for `threshold` with no count yet; its index, or -1 with
 * MemoryError. */
int fg_table_add_entry(SlowTable *t, SlowScratch *s, double threshold);
void fg_table_free(SlowTable *t);
void fg_scratch_free(SlowScratch *s);
/* {threshold: count} of the live entries, in the order they became live, as
 * Metric arithmetic would have inserted them. */
PyObject *fg_table_dict(const SlowTable *t);

/* ---- the storage (windows.c) -------------------------------------------------*/

typedef enum { COUNT_WINDOW, TIME_WINDOW } WindowKind;

extern const char *const fg_window_kind_names[];

/* The last `size` records in a ring of slots: a duration, and flags with the
 * failure in bit 0 and table entry e in bit e + 1, in one byte per slot or,
 * once `words` > 0, in that many 64-bit words per slot. Until the window is
 * full the records fill slots 0, 1, ...; then `head` is the oldest.
 *
 * A duration is kept in 32 bits as whole nanoseconds when that gives back
 * the same double (duration_code): every duration under 4 s that the native
 * clock measures (fg_seconds_of_ns). Any other one is kept whole in `exact`,
 * an array allocated the first time one is recorded. */
typedef struct {
    Py_ssize_t capacity;
    int words;
    Py_ssize_t head;
    uint32_t *durations; /* capacity codes */
    double *exact;       /* capacity, or NULL while no code is an escape */
    void *flags;         /* capacity bytes, or capacity * words words */
} CountRing;

/* The code of a duration kept in `exact`. */
#define DURATION_ESCAPE UINT32_MAX

/* The 32-bit code of `duration`: its nanoseconds when fg_seconds_of_ns gives
 * it back bit for bit (not for -0.0, NaN, or 4 s and more), else
 * DURATION_ESCAPE. */
static inline uint32_t
duration_code(double duration)
{
    if (!signbit(duration) && duration < 4.0) {
        uint32_t ns = (uint32_t)(duration * 1e9 + 0.5);
        if (fg_seconds_of_ns(ns) == duration) {
            return ns;
        }
    }
    return DURATION_ESCAPE;
}

static inline double
ring_duration(const CountRing *r, Py_ssize_t slot)
{
    uint32_t code = r->durations[slot];
    return code != DURATION_ESCAPE ? fg_seconds_of_ns(code) : r->exact[slot];
}

typedef struct {
    int64_t count;
    int64_t failures;
    double duration;
    double second; /* trunc(timestamp) of the records held, when count > 0 */
    uint64_t generation; /* the bucket is empty unless it is the window's */
} Bucket;

/* One page of PAGE_BUCKETS buckets (fewer in the last page), with a row of
 * `stride` counters per bucket (entries at or past the stride count 0
 * there). */
typedef struct {
    Bucket *buckets; /* NULL until touched */
    int64_t *slow;   /* stride counters per bucket, or NULL */
    int stride;
} Page;

/* One bucket per second modulo `size`, each with its own totals and its
 * count per table entry, in pages allocated as records land in them.
 * Clearing the window starts a new generation instead of touching every
 * bucket. */
typedef struct {
    Py_ssize_t n_pages;
    uint64_t generation;
    Page *pages; /* n_pages, allocated up front */
    /* The last bucket_index(cached_second, size): most records land in the
     * second of the one before, and fmod is the costliest step of a record.
     * A pure function of the second and the window's size (0 -> 0 at any
     * size, so zeroed fields are valid); this process's own, never loaded
     * from a shared image. It fits in the union beside CountRing. */
    double cached_second;
    Py_ssize_t cached_index;
} TimePages;

/* Everything a window holds (see Storage above). */
typedef struct {
    FgTotals totals;
    SlowTable slow;
    union {
        CountRing ring;   /* COUNT_WINDOW */
        TimePages pages;  /* TIME_WINDOW */
    } records;
} WindowStore;

/* The other members' part of a fleet breaker's metric (fleet.c): their
 * summed totals and, for each of the breaker's slow thresholds, their summed
 * slow count. The sync thread sets it; it counts until `deadline_ns` (a
 * monotonic clock, fg_remote_clock_ns) and is dropped by the next record
 * after that, or by any clear of the window (a new period). */
typedef struct {
    FgTotals totals;
    Py_ssize_t n;       /* the breaker's slow thresholds */
    double *thresholds; /* n, ascending */
    int64_t *slow;      /* n */
    int64_t deadline_ns;
    int live;
} FgRemote;

typedef struct {
    PyObject_HEAD
    WindowKind kind;
    int64_t size; /* 0 until __init__ has run */
    char external; /* the record arrays are in a shared segment (shared.h) */
    WindowStore store;
    SlowScratch *scratch; /* NULL until a record or a state has a threshold */
    FgRemote *remote; /* a fleet breaker's private window only, else NULL */
} Window;

/* window_remote.c: the clock of the remote part's deadline; drop the part
 * once that has passed; give a window one (a fleet breaker's). */
int64_t fg_remote_clock_ns(void);
void fg_remote_expire(FgRemote *remote);
void fg_remote_free(FgRemote *remote);
/* Add the remote slow counts into a {threshold: count} dict. */
int fg_remote_add_slow(const FgRemote *remote, PyObject *slow);

static inline int
window_check_initialised(const Window *w)
{
    if (w->size == 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "window is not initialised: %s.__init__() was not called",
                     fg_window_kind_names[w->kind]);
        return -1;
    }
    return 0;
}

/* Fresh, empty storage for `size` records; on error the window is as it
 * was. */
int fg_window_allocate(Window *w, int64_t size);
/* The window's scratch space, allocated on first use (NULL with
 * MemoryError). */
SlowScratch *fg_window_scratch(Window *w);
/* Frees the store and the scratch space. */
void fg_window_free(Window *w);
/* Exchanges the contents of two windows of the same kind and size. */
void fg_window_swap(Window *a, Window *b);

static inline int
slot_bit(const CountRing *r, Py_ssize_t slot, int bit)
{
    if (r->words == 0) {
        return ((uint8_t *)r->flags)[slot] >> bit & 1;
    }
    return bit_get((uint64_t *)r->flags + slot * r->words, bit);
}

/* Whether the record in ring slot `slot` failed, and whether it counts in
 * table entry e. */
static inline int
ring_failed(const CountRing *r, Py_ssize_t slot)
{
    return slot_bit(r, slot, 0);
}

static inline int
ring_counts(const CountRing *r, Py_ssize_t slot, int e)
{
    return slot_bit(r, slot, e + 1);
}

/* A record's part in a window's running totals, in Metric arithmetic's
 * order: what leaves comes off first, then the new record goes on, so the
 * totals match 0.9.4's `(total - old) + new` bit for bit. */
static inline void
totals_remove(FgTotals *t, int64_t count, int64_t failures, double duration)
{
    t->total_count -= count;
    t->failure_count -= failures;
    t->total_duration = t->total_duration - duration;
}

static inline void
totals_add(FgTotals *t, int success, double duration)
{
    t->total_count++;
    t->failure_count += success ? 0 : 1;
    t->total_duration = t->total_duration + duration;
}

/* A CountWindow's record in the common case, inline for the fused record
 * (machine_fused.c) and first thing in windows.c's own: no threshold live
 * or reached, no remote part, a duration with a code, slots of one byte,
 * and a slot ready (the window full, or the ring not). 1 when recorded; 0,
 * the window untouched, for any other case. */
static inline int
count_add_plain(Window *w, int success, uint32_t code, double duration)
{
    FgTotals *totals = &w->store.totals;
    CountRing *r = &w->store.records.ring;
    if (w->store.slow.len != 0 || w->remote != NULL || code == DURATION_ESCAPE
        || r->words != 0 || w->size == 0) {
        return 0;
    }
    Py_ssize_t slot = (Py_ssize_t)totals->total_count;
    if (totals->total_count == w->size) {
        slot = r->head;
        r->head = slot + 1 == r->capacity ? 0 : slot + 1;
        totals_remove(totals, 1, ring_failed(r, slot), ring_duration(r, slot));
    }
    else if (slot == r->capacity) {
        return 0; /* the ring grows first */
    }
    r->durations[slot] = code;
    ((uint8_t *)r->flags)[slot] = (uint8_t)!success;
    totals_add(totals, success, duration);
    return 1;
}

/* Python's int(timestamp) % size, given second = trunc(timestamp): trunc
 * and fmod are exact on doubles, and size is at most 2**53
 * (fg_window_allocate). */
static inline Py_ssize_t
bucket_index(double second, int64_t size)
{
    double rem = fmod(second, (double)size);
    if (rem < 0) {
        rem += (double)size;
    }
    return (Py_ssize_t)rem;
}

static inline Page *
page_of(const TimePages *p, Py_ssize_t index)
{
    return &p->pages[index / PAGE_BUCKETS];
}

/* A TimeWindow's record in the common case, as count_add_plain: no
 * threshold live, no remote part, `timestamp` a whole second, the one whose
 * bucket the window found last, and that bucket of the current generation
 * and holding that second (or nothing). 1 when recorded; 0, the window
 * untouched, for any other case. */
static inline int
time_add_plain(Window *w, int success, double duration, double timestamp)
{
    FgTotals *totals = &w->store.totals;
    TimePages *p = &w->store.records.pages;
    if (w->store.slow.len != 0 || w->remote != NULL || w->size == 0
        || timestamp != p->cached_second) {
        return 0;
    }
    Bucket *buckets = page_of(p, p->cached_index)->buckets;
    Bucket *bucket = buckets ? &buckets[p->cached_index % PAGE_BUCKETS] : NULL;
    if (bucket == NULL || bucket->generation != p->generation
        || (bucket->count > 0 && bucket->second != timestamp)) {
        return 0;
    }
    bucket->second = timestamp;
    bucket->count++;
    bucket->failures += success ? 0 : 1;
    bucket->duration = bucket->duration + duration;
    totals_add(totals, success, duration);
    return 1;
}

/* Bucket `index`'s count for entry e. */
static inline int64_t
time_row_get(const Window *w, Py_ssize_t index, int e)
{
    const Page *page = page_of(&w->store.records.pages, index);
    return e < page->stride ? page->slow[(index % PAGE_BUCKETS) * page->stride + e] : 0;
}

/* Bucket `index`, its page allocated first if need be (NULL with
 * MemoryError when that fails, the window unchanged). */
Bucket *fg_time_bucket(Window *w, Py_ssize_t index);
/* The bucket `index` when its page is allocated, else NULL. */
const Bucket *fg_time_bucket_if_any(const Window *w, Py_ssize_t index);
/* The counters of bucket `index`, with room for the table's capacity (NULL
 * with MemoryError). */
int64_t *fg_time_row_reserve(Window *w, Py_ssize_t index);

/* ---- the Python types (window_types.c) and their pickling (window_state.c) */

PyObject *fg_window_new(PyTypeObject *type, WindowKind kind);
PyObject *fg_window_reduce(PyObject *self, PyObject *unused);
PyObject *fg_window_setstate(PyObject *self, PyObject *state);
extern const char fg_window_reduce_doc[];
extern const char fg_window_setstate_doc[];

#endif /* FLUXGATE_WINDOWS_H */
