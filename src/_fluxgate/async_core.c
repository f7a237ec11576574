/* _AsyncCore: the state machine as AsyncCircuitBreaker drives it.
 *
 * The coroutine surface lives in Python (fluxgate/_async.py); this type gives
 * it the steps of a protected call as plain C calls, none of which waits:
 * begin() admits a call and starts its clock, returning a ticket (its
 * period and start time); succeed() and fail() apply its outcome if the
 * breaker is still in that period. Transitions queue their signals for the
 * Python side, which takes them with take_signals() and gathers the
 * listeners. HALF_OPEN slots are Python's too: begin() answers None when the
 * call must take a slot and ask again with begin_holding_slot(), which
 * answers None when the slot must be given back. */
#include "breaker.h"
#include "shared.h"

typedef FgBreaker FgAsyncCore;

PyDoc_STRVAR(async_core_doc,
"_AsyncCore(window, tracker, tripper, retry, permit, listeners, shared=None,\n"
"           max_half_open_calls=0)\n"
"--\n\n"
"The native state machine behind AsyncCircuitBreaker (internal).");

static PyObject *
async_core_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "tracker", "tripper", "retry", "permit",
                             "listeners", "shared", "max_half_open_calls", NULL};
    PyObject *window, *tracker, *tripper, *retry, *permit, *listeners;
    PyObject *shared = Py_None;
    long long max_half_open = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOO|OL:_AsyncCore", kwlist,
                                     &window, &tracker, &tripper, &retry,
                                     &permit, &listeners, &shared, &max_half_open)) {
        return NULL;
    }
    FgAsyncCore *core = fg_machine_alloc(type);
    if (core == NULL) {
        return NULL;
    }
    core->async_mode = 1;
    if (fg_machine_setup(core, window, tracker, tripper, retry, permit,
                         listeners, shared, max_half_open) < 0) {
        Py_DECREF(core);
        return NULL;
    }
    return (PyObject *)core;
}

static PyObject *
signals_pending(FgAsyncCore *core)
{
    return PyBool_FromLong(fg_machine_signals_pending(core));
}

/* A ticket: what begin() admitted, handed back to succeed() or fail(). The
 * clock that timed the call is chosen once, at begin(), as for the
 * synchronous breaker. */
typedef struct {
    PyObject_HEAD
    uint64_t period;
    int64_t start_ns; /* the native clock's start */
    double start;     /* a replacement's start, in seconds */
    char recorded;     /* false for a DISABLED call: nothing is recorded */
    char native_clock; /* timed by the native clock, not a replacement */
} FgTicket;

static void
ticket_dealloc(PyObject *ticket)
{
    PyTypeObject *type = Py_TYPE(ticket);
    type->tp_free(ticket);
    Py_DECREF(type);
}

static PyType_Slot ticket_slots[] = {
    {Py_tp_doc, "A call admitted by _AsyncCore.begin() (internal)."},
    {Py_tp_dealloc, ticket_dealloc},
    {0, NULL},
};

static PyType_Spec ticket_spec = {
    .name = "fluxgate._fluxgate._Ticket",
    .basicsize = sizeof(FgTicket),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = ticket_slots,
};

static FgTicket *
as_ticket(FgAsyncCore *core, PyObject *obj)
{
    if (!Py_IS_TYPE(obj, (PyTypeObject *)core->st->Ticket_Type)) {
        PyErr_SetString(PyExc_TypeError, "ticket must come from begin()");
        return NULL;
    }
    return (FgTicket *)obj;
}

static PyObject *
admit(FgAsyncCore *core, FgAdmitMode mode)
{
    uint64_t period;
    int state = fg_machine_admit(core, mode, &period);
    if (state == FG_ADMIT_SLOT) {
        Py_RETURN_NONE;
    }
    if (state < 0) {
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)core->st->Ticket_Type;
    FgTicket *ticket = (FgTicket *)type->tp_alloc(type, 0);
    if (ticket == NULL) {
        return NULL;
    }
    ticket->period = period;
    ticket->recorded = state != FG_DISABLED;
    if (ticket->recorded) {
        FgCallClock clock;
        if (fg_call_clock_start(core->st, &clock) < 0) {
            Py_DECREF(ticket);
            return NULL;
        }
        ticket->start_ns = clock.start_ns;
        ticket->start = clock.start;
        ticket->native_clock = clock.replacement == NULL;
        fg_call_clock_release(&clock);
    }
    return (PyObject *)ticket;
}

PyDoc_STRVAR(begin_doc,
"begin($self, /)\n"
"--\n\n"
"Admit a call: its ticket, or None when it must first take a HALF_OPEN\n"
"slot and ask again with begin_holding_slot(). Raises CallNotPermittedError\n"
"when the call is refused.");

static PyObject *
async_core_begin(FgAsyncCore *core, PyObject *unused)
{
    return admit(core, FG_ADMIT_NEEDS_SLOT);
}

PyDoc_STRVAR(begin_holding_slot_doc,
"begin_holding_slot($self, /)\n"
"--\n\n"
"As begin(), for a call holding a HALF_OPEN slot: None when the state has\n"
"changed meanwhile, so the slot must be given back and begin() asked.");

static PyObject *
async_core_begin_holding_slot(FgAsyncCore *core, PyObject *unused)
{
    return admit(core, FG_ADMIT_HOLDING_SLOT);
}

PyDoc_STRVAR(succeed_doc,
"succeed($self, ticket, /)\n"
"--\n\n"
"Apply the success of the ticket's call; True when signals are waiting.");

static PyObject *
async_core_succeed(FgAsyncCore *core, PyObject *ticket_obj)
{
    FgTicket *t = as_ticket(core, ticket_obj);
    if (t == NULL) {
        return NULL;
    }
    if (t->recorded) {
        FgCallTime time;
        if (t->native_clock) {
            uint64_t end_tick;
            int64_t end_ns = fg_tsc_read_ns(&core->st->tsc, 0, &end_tick);
            time = fg_call_time_ns(t->start_ns, end_ns, end_tick);
        }
        else {
            double end;
            if (fg_perf_counter(core->st, &end) < 0) {
                return NULL;
            }
            time = fg_call_time_seconds(t->start, end);
        }
        if (fg_machine_record(core, t->period, 1, &time) < 0) {
            return NULL;
        }
    }
    return signals_pending(core);
}

PyDoc_STRVAR(fail_doc,
"fail($self, ticket, error, /)\n"
"--\n\n"
"Apply the exception of the ticket's call (recorded if the tracker counts\n"
"it); True when signals are waiting.");

static PyObject *
async_core_fail(FgAsyncCore *core, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "fail() takes a ticket and an error");
        return NULL;
    }
    FgTicket *t = as_ticket(core, args[0]);
    if (t == NULL) {
        return NULL;
    }
    if (t->recorded && PyErr_GivenExceptionMatches(args[1], PyExc_Exception)
        && fg_machine_fail(core, t->period, args[1]) < 0) {
        return NULL;
    }
    return signals_pending(core);
}

PyDoc_STRVAR(command_doc,
"command($self, state, /)\n"
"--\n\n"
"Move to `state` (a State string) now; True when signals are waiting.");

static PyObject *
async_core_command(FgAsyncCore *core, PyObject *state)
{
    for (int i = 0; i < FG_STATE_COUNT; i++) {
        int equal = PyObject_RichCompareBool(state, core->st->state_names[i], Py_EQ);
        if (equal < 0) {
            return NULL;
        }
        if (equal) {
            if (fg_machine_transition(core, NULL, (FgStateId)i, NULL) < 0) {
                return NULL;
            }
            return signals_pending(core);
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown state %R", state);
    return NULL;
}

static PyObject *
async_core_take_signals(FgAsyncCore *core, PyObject *unused)
{
    return fg_machine_take_signals(core);
}

static PyObject *
async_core_info(FgAsyncCore *core, PyObject *unused)
{
    return fg_machine_info(core);
}

static PyObject *
async_core_get_listeners(FgAsyncCore *core, void *closure)
{
    return Py_NewRef(core->listeners);
}

/* The host-wide HALF_OPEN slots of a shared breaker (shared.h). */
static PyObject *
async_core_take_host_slot(FgAsyncCore *core, PyObject *unused)
{
    if (core->shared == NULL) {
        Py_RETURN_TRUE;
    }
    return PyBool_FromLong(fg_shared_take_slot(core->shared));
}

static PyObject *
async_core_release_host_slot(FgAsyncCore *core, PyObject *unused)
{
    if (core->shared != NULL) {
        fg_shared_release_slot(core->shared);
    }
    Py_RETURN_NONE;
}

static PyObject *
async_core_get_shared(FgAsyncCore *core, void *closure)
{
    return PyBool_FromLong(core->shared != NULL);
}

static PyMethodDef async_core_methods[] = {
    {"take_host_slot", (PyCFunction)async_core_take_host_slot, METH_NOARGS,
     "take_host_slot($self, /)\n--\n\nTake one of the host's HALF_OPEN slots "
     "(always True for a breaker that is not shared)."},
    {"release_host_slot", (PyCFunction)async_core_release_host_slot, METH_NOARGS,
     "release_host_slot($self, /)\n--\n\nGive one of the host's HALF_OPEN slots "
     "back."},
    {"begin", (PyCFunction)async_core_begin, METH_NOARGS, begin_doc},
    {"begin_holding_slot", (PyCFunction)async_core_begin_holding_slot,
     METH_NOARGS, begin_holding_slot_doc},
    {"succeed", (PyCFunction)async_core_succeed, METH_O, succeed_doc},
    {"fail", (PyCFunction)(void (*)(void))async_core_fail, METH_FASTCALL,
     fail_doc},
    {"command", (PyCFunction)async_core_command, METH_O, command_doc},
    {"take_signals", (PyCFunction)async_core_take_signals, METH_NOARGS,
     "take_signals($self, /)\n--\n\nThe signals waiting for the listeners, "
     "oldest first."},
    {"info", (PyCFunction)async_core_info, METH_NOARGS,
     "info($self, /)\n--\n\nThe breaker's CircuitBreakerInfo."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef async_core_getset[] = {
    {"listeners", (getter)async_core_get_listeners, NULL,
     "The listeners, as a tuple.", NULL},
    {"shared", (getter)async_core_get_shared, NULL,
     "Whether the breaker is shared by the processes of the host.", NULL},
    {NULL},
};

static PyMemberDef async_core_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(FgBreaker, weakreflist),
     Py_READONLY, NULL},
    {NULL},
};

static PyType_Slot async_core_slots[] = {
    {Py_tp_doc, (void *)async_core_doc},
    {Py_tp_new, async_core_new},
    {Py_tp_dealloc, fg_machine_tp_dealloc},
    {Py_tp_traverse, fg_machine_tp_traverse},
    {Py_tp_clear, fg_machine_tp_clear},
    {Py_tp_methods, async_core_methods},
    {Py_tp_getset, async_core_getset},
    {Py_tp_members, async_core_members},
    {0, NULL},
};

static PyType_Spec async_core_spec = {
    .name = "fluxgate._fluxgate._AsyncCore",
    .basicsize = sizeof(FgAsyncCore),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = async_core_slots,
};

int
fg_async_core_init(PyObject *module, FgState *st)
{
    if (fg_add_type(module, &ticket_spec, NULL, &st->Ticket_Type, 0) < 0) {
        return -1;
    }
    return fg_add_type(module, &async_core_spec, NULL, &st->AsyncCore_Type, 1);
}
