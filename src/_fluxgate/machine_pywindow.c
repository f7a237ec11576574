/* A Python window's record() and reset(), applied in order (see
 * FgBreaker.window_ops in machine.h): they run outside every critical
 * section and under no lock, since user code may wait for another thread
 * that calls or commands this breaker. */
#include "machine.h"

#include "components.h"
#include "metric.h"

static void drain_mine(FgBreaker *cb, uint64_t mine, PyObject **my_error,
                       int *mine_applied);

void
fg_pywindow_drain(FgBreaker *cb, uint64_t mine, PyObject **my_error)
{
    drain_mine(cb, mine, my_error, NULL);
}

/* Inside the critical section: the first look at the window's counts in a
 * forked child forgets the parent's threads, which do not exist here. */
void
fg_pywindow_fork_check(FgBreaker *cb, long pid)
{
    if (cb->window_pid != pid) {
        cb->window_pid = pid;
        cb->window_recording = 0;
        cb->window_draining = 0;
    }
}

/* Inside the critical section: queue an operation (stealing `record`);
 * its sequence number, or 0 (with `record` released) when out of memory. */
uint64_t
fg_pywindow_push(FgBreaker *cb, PyObject *record)
{
    if (cb->window_ops_len == cb->window_ops_cap) {
        Py_ssize_t cap = cb->window_ops_cap ? cb->window_ops_cap * 2 : 4;
        FgWindowOp *grown = PyMem_Calloc((size_t)cap, sizeof(*grown));
        if (grown == NULL) {
            Py_XDECREF(record); /* no Python code: a Record holds floats */
            return 0;
        }
        for (Py_ssize_t i = 0; i < cb->window_ops_len; i++) {
            grown[i] =
                cb->window_ops[(cb->window_ops_head + i) % cb->window_ops_cap];
        }
        PyMem_Free(cb->window_ops);
        cb->window_ops = grown;
        cb->window_ops_cap = cap;
        cb->window_ops_head = 0;
    }
    FgWindowOp *op = &cb->window_ops[(cb->window_ops_head + cb->window_ops_len)
                                     % cb->window_ops_cap];
    op->record = record;
    op->seq = ++cb->window_op_seq;
    cb->window_ops_len++;
    return op->seq;
}

/* Apply the queued operations of a Python window, in order, unless another
 * thread is applying them or a record() is under way (its thread applies
 * them when it ends). The exception of the operation numbered `mine`, if
 * this thread applied it, goes to *my_error (and *mine_applied is set when
 * it applied it at all); any other operation's error has no caller waiting
 * for it and is reported as unraisable. */
static void
drain_mine(FgBreaker *cb, uint64_t mine, PyObject **my_error, int *mine_applied)
{
    long pid = fg_getpid();
    int draining = 0;
    for (;;) {
        FgWindowOp op = {NULL, 0};
        int have = 0;
        FG_LOCK_LOCAL(cb);
        if (cb->window_pid != pid) {
            /* Forked while this thread applied the queue: start over. */
            draining = 0;
        }
        fg_pywindow_fork_check(cb, pid);
        if (!draining && !cb->window_draining && cb->window_recording == 0
            && cb->window_ops_len > 0) {
            cb->window_draining = 1;
            draining = 1;
        }
        if (draining) {
            if (cb->window_ops_len > 0) {
                op = cb->window_ops[cb->window_ops_head];
                cb->window_ops_head = (cb->window_ops_head + 1) % cb->window_ops_cap;
                cb->window_ops_len--;
                have = 1;
            }
            else {
                cb->window_draining = 0;
            }
        }
        FG_UNLOCK_LOCAL();
        if (!have) {
            return;
        }
        PyObject *r = op.record == NULL
                          ? PyObject_CallMethodNoArgs(cb->window, cb->st->s_reset)
                          : PyObject_CallMethodOneArg(cb->window, cb->st->s_record,
                                                      op.record);
        Py_XDECREF(op.record);
        if (op.seq == mine && mine_applied != NULL) {
            *mine_applied = 1;
        }
        if (r != NULL) {
            Py_DECREF(r);
        }
        else if (op.seq == mine && my_error != NULL && *my_error == NULL) {
            *my_error = PyErr_GetRaisedException();
        }
        else {
            PyErr_WriteUnraisable(cb->window);
        }
    }
}

/* A user window's metric, which must be a Metric. */
PyObject *
fg_pywindow_metric(FgBreaker *cb)
{
    PyObject *metric = PyObject_CallMethodNoArgs(cb->window, cb->st->s_get_metric);
    if (metric != NULL && !fg_metric_check(cb->st, metric)) {
        PyErr_Format(PyExc_TypeError,
                     "window.get_metric() must return a Metric, not %.200s",
                     Py_TYPE(metric)->tp_name);
        Py_CLEAR(metric);
    }
    return metric;
}

/* Build the Record a Python window receives. */
static PyObject *
make_record(FgState *st, int success, double duration, const double *slow_at,
            Py_ssize_t n_slow)
{
    PyObject *slow = PyTuple_New(n_slow);
    if (slow == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_slow; i++) {
        PyObject *t = PyFloat_FromDouble(slow_at[i]);
        if (t == NULL) {
            Py_DECREF(slow);
            return NULL;
        }
        PyTuple_SET_ITEM(slow, i, t);
    }
    PyObject *dur = PyFloat_FromDouble(duration);
    PyObject *kwnames = dur ? Py_BuildValue("(OOO)", st->s_success,
                                            st->s_duration, st->s_slow_at)
                            : NULL;
    PyObject *record = NULL;
    if (kwnames != NULL) {
        PyObject *args[] = {success ? Py_True : Py_False, dur, slow};
        record = PyObject_Vectorcall(st->Record, args, 0, kwnames);
        Py_DECREF(kwnames);
    }
    Py_XDECREF(dur);
    Py_DECREF(slow);
    return record;
}

/* A Python window: build the Record and call window.record() outside the
 * critical section and under no lock, at once when nothing is queued for
 * the window, else queued behind what is (see FgBreaker.window_ops).
 * 1 recorded, 2 queued and not yet applied (the window may still hold the
 * previous period's records, so the tripper is not evaluated on it), 0
 * discarded (the period is over), -1 error. */
int
fg_pywindow_record(FgBreaker *cb, uint64_t period, int success,
                   double duration, const double *slow_at, Py_ssize_t n_slow)
{
    PyObject *record = make_record(cb->st, success, duration, slow_at, n_slow);
    if (record == NULL) {
        return -1;
    }
    long pid = fg_getpid();
    int outcome;
    uint64_t seq = 0;
    FgMachineState *ms = fg_machine_state(cb);
    FG_LOCK(cb);
    fg_pywindow_fork_check(cb, pid);
    if (ms->period != period || ms->state == FG_DISABLED) {
        outcome = 0;
    }
    else if (cb->window_ops_len > 0 || cb->window_draining) {
        outcome = 2;
        seq = fg_pywindow_push(cb, Py_NewRef(record));
        if (seq == 0) {
            outcome = -1;
        }
    }
    else {
        outcome = 1;
        cb->window_recording++;
    }
    FG_UNLOCK(cb);
    if (outcome == 1) {
        PyObject *r = PyObject_CallMethodOneArg(cb->window, cb->st->s_record,
                                                record);
        PyObject *error = r == NULL ? PyErr_GetRaisedException() : NULL;
        Py_XDECREF(r);
        FG_LOCK_LOCAL(cb);
        /* Not when this process was forked meanwhile: the child's count
         * started from zero without this call. */
        if (cb->window_pid == pid && cb->window_recording > 0) {
            cb->window_recording--;
        }
        FG_UNLOCK_LOCAL();
        fg_pywindow_drain(cb, 0, NULL);
        if (error != NULL) {
            PyErr_SetRaisedException(error);
            outcome = -1;
        }
    }
    else if (outcome == 2) {
        /* Nobody may be left to apply it but this thread. */
        PyObject *error = NULL;
        int applied = 0;
        drain_mine(cb, seq, &error, &applied);
        if (error != NULL) {
            PyErr_SetRaisedException(error);
            outcome = -1;
        }
        else if (applied) {
            outcome = 1;
        }
    }
    else if (outcome < 0) {
        PyErr_NoMemory();
    }
    Py_DECREF(record);
    return outcome;
}

/* Apply one outcome of a call admitted in `period`: record it, evaluate the
 * tripper, transition. An outcome from an earlier period is discarded. */
/* Release the queued operations of a Python window. */
void
fg_pywindow_free(FgBreaker *cb)
{
    for (Py_ssize_t i = 0; i < cb->window_ops_len; i++) {
        Py_CLEAR(cb->window_ops[(cb->window_ops_head + i) % cb->window_ops_cap]
                     .record);
    }
    cb->window_ops_len = 0;
    PyMem_Free(cb->window_ops);
    cb->window_ops = NULL;
    cb->window_ops_cap = 0;
}

