/* Host-shared segments (shared.h): their layout, making and checking one,
 * attaching a breaker, the segment lock and the commits. */
#include "shared.h"

#include "components.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__APPLE__) || defined(__FreeBSD__)
#  include <sys/sysctl.h>
#  include <sys/time.h>
#endif
#ifndef _WIN32
#  include <errno.h>
#  include <sched.h>
#  include <signal.h>
#  include <time.h>
#endif

struct FgShared {
    FgState *st;
    PyObject *owner; /* the mapping (an mmap), exported through `view` */
    Py_buffer view;
    FgSegmentHeader *header;
    char *commits;
    size_t commit_size; /* the header's, kept here: its line is read-mostly */
    int64_t max_half_open;
    int64_t *slots;
    uint64_t held_sequence; /* the commit loaded under the lock */
    int recovered;          /* the lock was taken over from a dead process */
};

/* ---- layout ------------------------------------------------------------------*/

static size_t
round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Each commit starts a cache line: two processes writing the two commits
 * then never write one line. */
static size_t
round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* The most bytes of records a segment holds: shared memory is reserved up
 * front, and a tmpfs that ran out under a mapping would kill the process. */
#define FG_SEGMENT_MAX_RECORDS ((size_t)1 << 30)

static size_t
machine_image_size(void)
{
    return round8(sizeof(FgMachineState));
}

/* The header a segment of `shape` has, without the fields of a made one
 * (magic, boot, namespace, run-time words); 0 total size when too large. */
static FgSegmentHeader
layout(const FgSegmentShape *shape)
{
    FgSegmentHeader h = {0};
    h.version = FG_SEGMENT_VERSION;
    h.header_size = (uint32_t)round8(sizeof(FgSegmentHeader));
    h.async_breaker = shape->async_breaker;
    h.window_kind = shape->window_kind;
    h.window_size = shape->window_size;
    h.max_half_open = shape->max_half_open;
    h.n_thresholds = shape->n_thresholds;
    size_t second = 0;
    size_t records = fg_window_records_size(shape->window_kind, shape->window_size,
                                            (int)shape->n_thresholds, &second);
    if (records == 0 || records > FG_SEGMENT_MAX_RECORDS || shape->max_half_open < 0
        || shape->max_half_open > 1000000) {
        return h;
    }
    h.commit_offset =
        round64(h.header_size + (size_t)shape->n_thresholds * sizeof(double));
    h.commit_size =
        round64(machine_image_size() + fg_window_image_size((int)shape->n_thresholds));
    h.slots_offset = h.commit_offset + 2 * h.commit_size;
    h.records_offset = h.slots_offset + (uint64_t)shape->max_half_open * sizeof(int64_t);
    h.flags_offset = h.records_offset + second;
    h.total_size = h.records_offset + records;
    return h;
}

static double *
thresholds_of(FgSegmentHeader *h)
{
    return (double *)((char *)h + h->header_size);
}

/* ---- describing shapes in errors -----------------------------------------------*/

static PyObject *
describe_window(int64_t kind, int64_t size)
{
    return PyUnicode_FromFormat("%s(%lld)", kind == 0 ? "CountWindow" : "TimeWindow",
                                (long long)size);
}

static PyObject *
describe_thresholds(const double *t, int64_t n)
{
    PyObject *items = fg_tuple_of_doubles(t, (Py_ssize_t)n);
    if (items == NULL) {
        return NULL;
    }
    PyObject *text = PyObject_Repr(items);
    Py_DECREF(items);
    return text;
}

static PyObject *
describe_breaker(int64_t async_breaker, int64_t max_half_open)
{
    if (!async_breaker) {
        return PyUnicode_FromString("CircuitBreaker");
    }
    return PyUnicode_FromFormat("AsyncCircuitBreaker(max_half_open_calls=%lld)",
                                (long long)max_half_open);
}

/* ValueError: the segment at `where` was made for `theirs`; this breaker
 * asks for `ours` (both new references, consumed). */
static int
mismatch(PyObject *where, const char *what, PyObject *theirs, PyObject *ours)
{
    if (theirs != NULL && ours != NULL) {
        PyErr_Format(PyExc_ValueError,
                     "the shared breaker %U has %s %U; this breaker has %U",
                     where, what, theirs, ours);
    }
    Py_XDECREF(theirs);
    Py_XDECREF(ours);
    return -1;
}

/* ---- checking and making a segment -------------------------------------------*/

static int
get_buffer(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE) < 0) {
        return -1;
    }
    if (((uintptr_t)view->buf & 7) != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "a shared segment must be 8-byte aligned");
        return -1;
    }
    return 0;
}

static int
corrupt(PyObject *where, const char *why)
{
    PyErr_Format(PyExc_ValueError,
                 "%U is not a usable fluxgate shared breaker: %s; remove it "
                 "with HostMemory.unlink() to start afresh",
                 where, why);
    return -1;
}

/* Whether the current commit of a segment holds a valid state (its layout
 * fields already checked). */
static int
commit_valid(FgSegmentHeader *h)
{
    uint64_t seq = __atomic_load_n(&h->sequence, __ATOMIC_ACQUIRE);
    const char *commit = (char *)h + h->commit_offset + (seq & 1) * h->commit_size;
    FgMachineState ms;
    memcpy(&ms, commit, sizeof ms);
    return (int)ms.state >= 0 && (int)ms.state < FG_STATE_COUNT && ms.reopens >= 0
           && ms.consecutive_failures >= 0
           && fg_window_image_valid((int)h->window_kind, h->window_size,
                                    (int)h->n_thresholds, commit + machine_image_size());
}

/* 1: the segment in `view` is usable as is; 0: it was made before the last
 * boot and must be made again; -1 with ValueError. */
static int
check_segment(const Py_buffer *view, const FgSegmentHeader *want, uint64_t boot_id,
              uint64_t pid_namespace, PyObject *where)
{
    if ((size_t)view->len < sizeof(FgSegmentHeader)) {
        return corrupt(where, "it is truncated");
    }
    FgSegmentHeader *h = view->buf;
    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != FG_SEGMENT_MAGIC) {
        return corrupt(where, "it does not start as one does");
    }
    if (h->version != FG_SEGMENT_VERSION) {
        PyErr_Format(PyExc_ValueError,
                     "the shared breaker %U has layout version %u; this fluxgate "
                     "reads version %d",
                     where, (unsigned)h->version, FG_SEGMENT_VERSION);
        return -1;
    }
    if (h->header_size != want->header_size || h->total_size != (uint64_t)view->len) {
        return corrupt(where, h->total_size > (uint64_t)view->len ? "it is truncated"
                                                                  : "its header is corrupt");
    }
    if (h->boot_id != boot_id) {
        return 0;
    }
    if (h->pid_namespace != pid_namespace) {
        PyErr_Format(PyExc_ValueError,
                     "the shared breaker %U belongs to another PID namespace (a "
                     "container): its processes cannot be told alive from dead "
                     "here; give this breaker another name",
                     where);
        return -1;
    }
    if (h->async_breaker != want->async_breaker
        || (want->async_breaker && h->max_half_open != want->max_half_open)) {
        return mismatch(where, "the breaker kind",
                        describe_breaker(h->async_breaker, h->max_half_open),
                        describe_breaker(want->async_breaker, want->max_half_open));
    }
    if (h->window_kind != want->window_kind || h->window_size != want->window_size) {
        return mismatch(where, "the window", describe_window(h->window_kind, h->window_size),
                        describe_window(want->window_kind, want->window_size));
    }
    const double *theirs = thresholds_of(h);
    const double *ours = thresholds_of((FgSegmentHeader *)want);
    int same = h->n_thresholds == want->n_thresholds;
    for (int64_t i = 0; same && i < h->n_thresholds; i++) {
        same = theirs[i] == ours[i];
    }
    if (!same) {
        if (h->n_thresholds < 0 || h->n_thresholds > 4096) {
            return corrupt(where, "its header is corrupt");
        }
        return mismatch(where, "the SlowRate thresholds",
                        describe_thresholds(theirs, h->n_thresholds),
                        describe_thresholds(ours, want->n_thresholds));
    }
    if (h->commit_offset != want->commit_offset || h->commit_size != want->commit_size
        || h->slots_offset != want->slots_offset
        || h->records_offset != want->records_offset
        || h->flags_offset != want->flags_offset || !commit_valid(h)) {
        return corrupt(where, "its header is corrupt");
    }
    return 1;
}

/* The segment's initial commits: CLOSED since `now`, an empty window. */
static int
make_segment(FgState *st, const Py_buffer *view, const FgSegmentHeader *want,
             uint64_t boot_id, uint64_t pid_namespace, double now)
{
    if ((uint64_t)view->len != want->total_size) {
        PyErr_SetString(PyExc_ValueError, "the mapping does not have the segment's size");
        return -1;
    }
    char *base = view->buf;
    memset(base, 0, (size_t)view->len);
    FgSegmentHeader *h = (FgSegmentHeader *)base;
    memcpy(h, want, want->commit_offset);
    h->magic = 0;
    h->boot_id = boot_id;
    h->pid_namespace = pid_namespace;
    PyObject *window = fg_window_new_shared(st, (int)h->window_kind, h->window_size,
                                            (int)h->n_thresholds, base + h->records_offset,
                                            h->flags_offset - h->records_offset);
    if (window == NULL) {
        return -1;
    }
    FgMachineState machine = {.state = FG_CLOSED, .changed_at = now};
    for (int i = 0; i < 2; i++) {
        char *commit = base + h->commit_offset + i * h->commit_size;
        memcpy(commit, &machine, sizeof machine);
        fg_window_save(window, commit + machine_image_size());
    }
    Py_DECREF(window);
    __atomic_store_n(&h->magic, FG_SEGMENT_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

/* The header image of a shape, thresholds included, as bytes (what
 * HostMemory passes back to _segment_check and _segment_make). */
static PyObject *
shape_spec(const FgSegmentShape *shape)
{
    FgSegmentHeader h = layout(shape);
    if (h.total_size == 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s(%lld) is too large to share: a shared window's records "
                     "may take at most 1 GiB",
                     shape->window_kind == 0 ? "CountWindow" : "TimeWindow",
                     (long long)shape->window_size);
        return NULL;
    }
    PyObject *spec = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)h.commit_offset);
    if (spec == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(spec);
    memset(out, 0, (size_t)h.commit_offset);
    memcpy(out, &h, sizeof h);
    if (shape->n_thresholds > 0) {
        memcpy(out + h.header_size, shape->thresholds,
               (size_t)shape->n_thresholds * sizeof(double));
    }
    return spec;
}

static int
spec_header(PyObject *spec, const FgSegmentHeader **out)
{
    if (!PyBytes_Check(spec) || PyBytes_GET_SIZE(spec) < (Py_ssize_t)sizeof(FgSegmentHeader)) {
        PyErr_SetString(PyExc_TypeError, "spec must be the bytes a breaker passed");
        return -1;
    }
    const FgSegmentHeader *h = (const FgSegmentHeader *)PyBytes_AS_STRING(spec);
    if ((uint64_t)PyBytes_GET_SIZE(spec) != h->commit_offset) {
        PyErr_SetString(PyExc_ValueError, "spec must be the bytes a breaker passed");
        return -1;
    }
    *out = h;
    return 0;
}

/* _segment_check(mapping, spec, boot_id, pid_namespace, where) -> bool */
static PyObject *
segment_check(PyObject *module, PyObject *args)
{
    PyObject *mapping, *spec, *where;
    unsigned long long boot_id, pid_namespace;
    if (!PyArg_ParseTuple(args, "OSKKU:_segment_check", &mapping, &spec, &boot_id,
                          &pid_namespace, &where)) {
        return NULL;
    }
    const FgSegmentHeader *want;
    Py_buffer view;
    if (spec_header(spec, &want) < 0 || get_buffer(mapping, &view) < 0) {
        return NULL;
    }
    /* The spec's bytes may move with a resize of a bytes object: copy. */
    char *copy = PyMem_Malloc(want->commit_offset);
    if (copy == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    memcpy(copy, want, want->commit_offset);
    int rc = check_segment(&view, (FgSegmentHeader *)copy, boot_id, pid_namespace, where);
    PyMem_Free(copy);
    PyBuffer_Release(&view);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

/* _segment_make(mapping, spec, boot_id, pid_namespace, now) */
static PyObject *
segment_make(PyObject *module, PyObject *args)
{
    PyObject *mapping, *spec;
    unsigned long long boot_id, pid_namespace;
    double now;
    if (!PyArg_ParseTuple(args, "OSKKd:_segment_make", &mapping, &spec, &boot_id,
                          &pid_namespace, &now)) {
        return NULL;
    }
    const FgSegmentHeader *want;
    Py_buffer view;
    if (spec_header(spec, &want) < 0 || get_buffer(mapping, &view) < 0) {
        return NULL;
    }
    int rc = make_segment(fg_state(module), &view, want, boot_id, pid_namespace, now);
    PyBuffer_Release(&view);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _segment_size(spec) -> int */
static PyObject *
segment_size(PyObject *module, PyObject *spec)
{
    const FgSegmentHeader *want;
    if (spec_header(spec, &want) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(want->total_size);
}

/* ---- the lock ------------------------------------------------------------------*/

/* The start time of process `pid` in clock ticks since boot, from
 * /proc/PID/stat (field 22, after the command's closing parenthesis); 0
 * where that cannot be read. */
static uint64_t
start_time(long pid)
{
#ifdef __linux__
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strrchr(text, ')');
    if (p == NULL) {
        return 0;
    }
    /* Fields 3 to 21 follow the parenthesis; the start time is field 22. */
    for (int field = 2; field < 22 && p != NULL; field++) {
        p = strchr(p + 1, ' ');
    }
    return p == NULL ? 0 : strtoull(p + 1, NULL, 10);
#else
    (void)pid;
    return 0;
#endif
}

int64_t
fg_process_token(long pid)
{
    uint64_t start = start_time(pid) & 0x7fffffff;
    return (int64_t)(start << 32 | (uint32_t)pid);
}

#ifndef _WIN32
/* Whether the process a token names has ended: no process has its pid, or
 * the one that has it started at another time. */
static int
process_gone(int64_t token)
{
    long pid = (long)(uint32_t)token;
    if (pid <= 0 || (uint32_t)token > 0x7fffffffU) {
        return 1; /* names no process: a damaged word, free to take */
    }
    if (kill((pid_t)pid, 0) < 0) {
        return errno == ESRCH;
    }
    uint64_t started = (uint64_t)token >> 32;
    return started != 0 && fg_process_token(pid) != token;
}

static void
pause_briefly(unsigned spins)
{
    if (spins < 64) {
#  if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#  endif
        return;
    }
    if (spins < 1024) {
        sched_yield();
        return;
    }
    struct timespec nap = {0, 50000};
    nanosleep(&nap, NULL);
}

static void
lock_slow(FgShared *sh, int64_t me)
{
    int64_t *word = &sh->header->lock_owner;
    for (unsigned spins = 0;; spins++) {
        int64_t owner = 0;
        if (__atomic_compare_exchange_n(word, &owner, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            return;
        }
        /* A holder killed inside its section never lets go: take over. */
        if (spins >= 64 && spins % 64 == 0 && process_gone(owner)
            && __atomic_compare_exchange_n(word, &owner, me, 0, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED)) {
            sh->recovered = 1;
            __atomic_fetch_add(&sh->header->takeovers, 1, __ATOMIC_RELAXED);
            return;
        }
        pause_briefly(spins);
    }
}

static inline void
segment_lock(FgShared *sh)
{
    int64_t me = sh->st->process_token;
    int64_t free_word = 0;
    if (!__atomic_compare_exchange_n(&sh->header->lock_owner, &free_word, me, 0,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        lock_slow(sh, me);
    }
}

static inline void
segment_unlock(FgShared *sh)
{
    __atomic_store_n(&sh->header->lock_owner, 0, __ATOMIC_RELEASE);
}
#endif

/* ---- commits ---------------------------------------------------------------------*/

static inline char *
commit_at(FgShared *sh, uint64_t sequence)
{
    return sh->commits + (sequence & 1) * sh->commit_size;
}

void
fg_shared_enter(FgShared *sh, FgMachineState *machine, PyObject *window)
{
#ifndef _WIN32
    segment_lock(sh);
    uint64_t sequence = __atomic_load_n(&sh->header->sequence, __ATOMIC_ACQUIRE);
    sh->held_sequence = sequence;
    const char *commit = commit_at(sh, sequence);
    memcpy(machine, commit, sizeof *machine);
    fg_window_load(window, commit + machine_image_size());
    if (sh->recovered) {
        fg_window_rebuild(window);
    }
#else
    (void)sh, (void)machine, (void)window;
#endif
}

void
fg_shared_leave(FgShared *sh, const FgMachineState *machine, PyObject *window,
                int changed)
{
#ifndef _WIN32
    if (changed || sh->recovered) {
        uint64_t next = sh->held_sequence + 1;
        char *commit = commit_at(sh, next);
        memcpy(commit, machine, sizeof *machine);
        fg_window_save(window, commit + machine_image_size());
        __atomic_store_n(&sh->header->sequence, next, __ATOMIC_RELEASE);
        sh->recovered = 0;
    }
    segment_unlock(sh);
#else
    (void)sh, (void)machine, (void)window, (void)changed;
#endif
}

void
fg_shared_read(FgShared *sh, FgMachineState *out)
{
#ifndef _WIN32
    /* A writer fills the commit the sequence does not point to and then
     * bumps it; the next writer refills the one read here only after that
     * bump, so an unchanged sequence proves the copy whole. */
    for (;;) {
        uint64_t before = __atomic_load_n(&sh->header->sequence, __ATOMIC_ACQUIRE);
        memcpy(out, commit_at(sh, before), sizeof *out);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&sh->header->sequence, __ATOMIC_RELAXED) == before) {
            return;
        }
    }
#else
    (void)sh;
    memset(out, 0, sizeof *out);
#endif
}

void
fg_shared_load(FgShared *sh, FgMachineState *machine, PyObject *window)
{
    fg_shared_enter(sh, machine, window);
    fg_shared_leave(sh, machine, window, 0);
}

/* ---- HALF_OPEN slots -------------------------------------------------------------*/

int
fg_shared_take_slot(FgShared *sh)
{
#ifndef _WIN32
    int64_t me = sh->st->process_token;
    for (int64_t i = 0; i < sh->max_half_open; i++) {
        int64_t owner = __atomic_load_n(&sh->slots[i], __ATOMIC_RELAXED);
        if ((owner == 0 || process_gone(owner))
            && __atomic_compare_exchange_n(&sh->slots[i], &owner, me, 0,
                                           __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            return 1;
        }
    }
#endif
    return 0;
}

void
fg_shared_release_slot(FgShared *sh)
{
#ifndef _WIN32
    int64_t me = sh->st->process_token;
    for (int64_t i = 0; i < sh->max_half_open; i++) {
        int64_t owner = me;
        if (__atomic_compare_exchange_n(&sh->slots[i], &owner, 0, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            return;
        }
    }
#endif
}

/* ---- attaching -------------------------------------------------------------------*/

FgShared *
fg_shared_attach(FgState *st, PyObject *host_memory, const FgSegmentShape *shape,
                 PyObject **window)
{
    /* A HostMemory (or another object of the same protocol), not a class. */
    PyObject *attach = PyType_Check(host_memory)
                           ? NULL
                           : PyObject_GetAttrString(host_memory, "_fluxgate_segment");
    if (attach == NULL) {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "shared must be a HostMemory, a RedisFleet or None, not %.200s",
                         Py_TYPE(host_memory)->tp_name);
        }
        return NULL;
    }
    PyObject *spec = shape_spec(shape);
    PyObject *mapping = spec ? PyObject_CallOneArg(attach, spec) : NULL;
    Py_DECREF(attach);
    Py_XDECREF(spec);
    if (mapping == NULL) {
        return NULL;
    }
    FgShared *sh = PyMem_Calloc(1, sizeof(FgShared));
    if (sh == NULL) {
        Py_DECREF(mapping);
        PyErr_NoMemory();
        return NULL;
    }
    if (get_buffer(mapping, &sh->view) < 0) {
        Py_DECREF(mapping);
        PyMem_Free(sh);
        return NULL;
    }
    sh->st = st;
    sh->owner = mapping;
    char *base = sh->view.buf;
    FgSegmentHeader *h = sh->header = (FgSegmentHeader *)base;
    if ((size_t)sh->view.len < sizeof(FgSegmentHeader) || h->total_size != (uint64_t)sh->view.len
        || h->magic != FG_SEGMENT_MAGIC) {
        PyErr_SetString(PyExc_ValueError, "HostMemory gave a mapping that is not a segment");
        fg_shared_free(sh);
        return NULL;
    }
    sh->commits = base + h->commit_offset;
    sh->commit_size = (size_t)h->commit_size;
    sh->max_half_open = h->max_half_open;
    sh->slots = (int64_t *)(base + h->slots_offset);
    *window = fg_window_new_shared(st, (int)h->window_kind, h->window_size,
                                   (int)h->n_thresholds, base + h->records_offset,
                                   h->flags_offset - h->records_offset);
    if (*window == NULL) {
        fg_shared_free(sh);
        return NULL;
    }
    return sh;
}

void
fg_shared_free(FgShared *sh)
{
    if (sh == NULL) {
        return;
    }
    PyBuffer_Release(&sh->view);
    Py_CLEAR(sh->owner);
    PyMem_Free(sh);
}

int
fg_shared_traverse(FgShared *sh, visitproc visit, void *arg)
{
    if (sh != NULL) {
        Py_VISIT(sh->owner);
    }
    return 0;
}

/* ---- the module's functions --------------------------------------------------------*/

/* _describe_segment(mapping) -> dict: what `python -m fluxgate shared list`
 * shows of a segment, or ValueError when it is not one. */
static PyObject *
describe_segment(PyObject *module, PyObject *mapping)
{
    Py_buffer view;
    if (get_buffer(mapping, &view) < 0) {
        return NULL;
    }
    FgSegmentHeader *h = view.buf;
    PyObject *result = NULL;
    if ((size_t)view.len < sizeof(FgSegmentHeader) || h->magic != FG_SEGMENT_MAGIC
        || h->total_size != (uint64_t)view.len || h->n_thresholds < 0
        || h->commit_offset > (uint64_t)view.len
        || h->header_size + (uint64_t)h->n_thresholds * sizeof(double) > h->commit_offset
        || h->commit_offset + 2 * h->commit_size > (uint64_t)view.len
        || (h->window_kind != 0 && h->window_kind != 1) || h->window_size <= 0
        || h->n_thresholds > 4096
        || h->commit_size < machine_image_size() + fg_window_image_size((int)h->n_thresholds)
        || !commit_valid(h)) {
        PyErr_SetString(PyExc_ValueError, "not a fluxgate shared breaker");
        goto done;
    }
    uint64_t seq = __atomic_load_n(&h->sequence, __ATOMIC_ACQUIRE);
    FgMachineState ms;
    memcpy(&ms, (char *)h + h->commit_offset + (seq & 1) * h->commit_size, sizeof ms);
    PyObject *thresholds = fg_tuple_of_doubles(thresholds_of(h), (Py_ssize_t)h->n_thresholds);
    if (thresholds != NULL) {
        result = Py_BuildValue(
            "{s:s,s:L,s:O,s:O,s:L,s:O,s:d,s:L,s:K}", "window_kind",
            h->window_kind == 0 ? "CountWindow" : "TimeWindow", "window_size",
            (long long)h->window_size, "slow_thresholds", thresholds, "async",
            h->async_breaker ? Py_True : Py_False, "max_half_open_calls",
            (long long)h->max_half_open, "state",
            fg_state(module)->state_names[ms.state], "changed_at", ms.changed_at,
            "reopens", (long long)ms.reopens, "takeovers",
            (unsigned long long)h->takeovers);
        Py_DECREF(thresholds);
    }
done:
    PyBuffer_Release(&view);
    return result;
}

/* _boot_id() -> int: a number that changes with every boot of the host and
 * with nothing else (not the wall clock): Linux's boot_id, or the boot time
 * the kernel keeps on macOS and the BSDs; 0 where neither can be read. */
static PyObject *
boot_id(PyObject *module, PyObject *unused)
{
    unsigned long long id = 0;
#if defined(__linux__)
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f != NULL) {
        int c;
        /* FNV-1a over the text: the id is 128 bits of hex. */
        id = 1469598103934665603ULL;
        while ((c = fgetc(f)) != EOF && c != '\n') {
            id = (id ^ (unsigned char)c) * 1099511628211ULL;
        }
        fclose(f);
    }
#elif defined(__APPLE__) || defined(__FreeBSD__)
    struct timeval boot;
    size_t len = sizeof boot;
    if (sysctlbyname("kern.boottime", &boot, &len, NULL, 0) == 0) {
        id = (unsigned long long)boot.tv_sec * 1000000ULL + (unsigned long long)boot.tv_usec;
    }
#endif
    (void)module, (void)unused;
    return PyLong_FromUnsignedLongLong(id);
}

static PyObject *
refresh_pid(PyObject *module, PyObject *unused)
{
    fg_state(module)->process_token = fg_process_token(fg_getpid());
    Py_RETURN_NONE;
}

PyMethodDef fg_shared_functions[] = {
    {"_segment_check", segment_check, METH_VARARGS,
     "_segment_check(mapping, spec, boot_id, pid_namespace, where)\n--\n\n"
     "Whether a mapped segment can be used as is for spec (False: made before "
     "the last boot); ValueError when it cannot be used."},
    {"_segment_make", segment_make, METH_VARARGS,
     "_segment_make(mapping, spec, boot_id, pid_namespace, now)\n--\n\n"
     "Make a new segment for spec in a zeroed mapping of its size."},
    {"_segment_size", segment_size, METH_O,
     "_segment_size(spec)\n--\n\nThe bytes a segment for spec takes."},
    {"_describe_segment", describe_segment, METH_O,
     "_describe_segment(mapping)\n--\n\nA segment's shape and current state."},
    {"_boot_id", boot_id, METH_NOARGS,
     "_boot_id()\n--\n\nA number that changes with every boot of the host."},
    {"_refresh_pid", refresh_pid, METH_NOARGS,
     "_refresh_pid()\n--\n\nRead this process's pid again (after a fork)."},
    {NULL, NULL, 0, NULL},
};
