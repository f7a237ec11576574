/* The slow-threshold table of a window (windows.h): the distinct slow
 * thresholds currently live, each with its running count and the moment it
 * became live, and the scratch space for planning a record against it. */
#include "windows.h"

#include <math.h>

/* Room in the scratch space for a record of `n` thresholds. */
static int
reserve_fresh(SlowScratch *s, Py_ssize_t n)
{
    if (n <= s->fresh_capacity) {
        return 0;
    }
    double *fresh = PyMem_Realloc(s->fresh, (size_t)n * sizeof(double));
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->fresh = fresh;
    s->fresh_capacity = n;
    return 0;
}

int
fg_table_plan(const SlowTable *t, SlowScratch *s, const double *slow_at,
              Py_ssize_t n)
{
    int live = t->live;
    for (int e = 0; e < t->len; e++) {
        live -= bit_get(s->freed, e);
    }
    if (reserve_fresh(s, n) < 0) {
        return -1;
    }
    words_clear(s->kept, t->capacity);
    s->n_fresh = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double threshold = slow_at[i];
        if (isnan(threshold)) {
            PyErr_SetString(PyExc_ValueError,
                            "record.slow_at must not contain NaN");
            return -1;
        }
        int e = table_find_hinted(t, threshold, i);
        if (e >= 0 && !bit_get(s->freed, e)) {
            bit_set(s->kept, e);
            continue;
        }
        int seen = 0;
        for (int j = 0; j < s->n_fresh && !seen; j++) {
            seen = s->fresh[j] == threshold;
        }
        if (!seen) {
            s->fresh[s->n_fresh++] = threshold;
        }
    }
    if (s->n_fresh > INT_MAX / 2 - live) {
        PyErr_NoMemory();
        return -1;
    }
    return live + s->n_fresh;
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

int
fg_table_resize(SlowTable *t, SlowScratch *s, int capacity)
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
        && (words_grow(&s->freed, old_words, words) < 0
            || words_grow(&s->kept, old_words, words) < 0
            || words_grow(&s->counted, old_words, words) < 0)) {
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

int
fg_table_add_entry(SlowTable *t, SlowScratch *s, double threshold)
{
    if (t->len == INT_MAX / 2) {
        PyErr_NoMemory();
        return -1;
    }
    if (fg_table_resize(t, s, table_capacity_for(t, t->len + 1)) < 0) {
        return -1;
    }
    int e = t->len++;
    t->entries[e] = (SlowEntry){threshold, 0, ++t->clock};
    t->live++;
    return e;
}

void
fg_table_free(SlowTable *t)
{
    PyMem_Free(t->entries);
    *t = (SlowTable){0};
}

void
fg_scratch_free(SlowScratch *s)
{
    PyMem_Free(s->freed);
    PyMem_Free(s->kept);
    PyMem_Free(s->counted);
    PyMem_Free(s->fresh);
    *s = (SlowScratch){0};
}

void
fg_table_apply(SlowTable *t, SlowScratch *s)
{
    words_clear(s->counted, t->capacity);
    for (int e = 0; e < t->len; e++) {
        if (bit_get(s->kept, e)) {
            t->entries[e].count++;
            bit_set(s->counted, e);
        }
    }
    for (int i = 0; i < s->n_fresh; i++) {
        int e = 0;
        while (e < t->len && t->entries[e].count != 0) {
            e++;
        }
        if (e == t->len) {
            t->len++;
        }
        t->entries[e] = (SlowEntry){s->fresh[i], 1, ++t->clock};
        t->live++;
        bit_set(s->counted, e);
    }
}

PyObject *
fg_table_dict(const SlowTable *t)
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
