/* _TransportBase: the request of the sync httpx transport
 * (fluxgate/integrations/httpx.py, BreakerTransport) in C, so that a request
 * costs the breaker's own call plus the lookups of its key and breaker.
 *
 * BreakerTransport inherits handle_request(request) from it:
 *
 * 1. the key: the default key remembered per origin (fg_origin_key; a new
 *    origin goes to the Python function `new_origin(keys, request)`, which
 *    makes and remembers it), or `key(request)` for a custom key;
 * 2. the breaker: the registry's entry for the key, marked as used
 *    (fg_registry_find), or `registry[key]` for a key it does not hold;
 * 3. the protected call: for a CircuitBreaker, run.c's fg_breaker_run of the
 *    protected send with the request (what breaker.call(send, request) does,
 *    without the method call); for a subclass, its own call(send, request);
 *    anything else is a TypeError;
 * 4. the outcome: the response; the response of a FailedResponse (a
 *    failure status, counted by the breaker and still returned); for a
 *    refusal, the exception `refusal(error, request, key)` returns (the
 *    Python slow path, which names the key); any other exception as raised.
 *
 * `_bind(registry, key, origin_keys, failed, refusal, new_origin)`, called
 * once by BreakerTransport.__init__, sets all but the protected send, which
 * `_protected_send` replaces (the `transport` property sets it when the inner
 * transport changes). Everything else is fixed once bound, so a request
 * reads it with no lock; the protected send is read under the transport's
 * critical section on free-threaded builds. */
#include "breaker.h"
#include "registry.h"

typedef struct {
    PyObject_HEAD
    FgState *st; /* the type keeps the module alive */
    PyObject *registry;    /* the BreakerRegistry */
    PyObject *key;         /* the key callable */
    PyObject *origin_keys; /* the default key's dict of origins, or NULL */
    PyObject *failed;      /* FailedResponse */
    PyObject *refusal;     /* (error, request, key) -> the exception to raise */
    PyObject *new_origin;  /* (keys, request) -> the key of a new origin */
    PyObject *send;        /* the protected send, replaceable */
} FgTransportBase;

#define TB "fluxgate._fluxgate._TransportBase"

static PyObject *
transport_base_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    FgState *st = fg_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    FgTransportBase *t = (FgTransportBase *)type->tp_alloc(type, 0);
    if (t == NULL) {
        return NULL;
    }
    t->st = st;
    return (PyObject *)t;
}

static int
transport_base_traverse(FgTransportBase *t, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->registry);
    Py_VISIT(t->key);
    Py_VISIT(t->origin_keys);
    Py_VISIT(t->failed);
    Py_VISIT(t->refusal);
    Py_VISIT(t->new_origin);
    Py_VISIT(t->send);
    return 0;
}

static int
transport_base_clear(FgTransportBase *t)
{
    Py_CLEAR(t->registry);
    Py_CLEAR(t->key);
    Py_CLEAR(t->origin_keys);
    Py_CLEAR(t->failed);
    Py_CLEAR(t->refusal);
    Py_CLEAR(t->new_origin);
    Py_CLEAR(t->send);
    return 0;
}

static void
transport_base_dealloc(FgTransportBase *t)
{
    PyTypeObject *type = Py_TYPE(t);
    PyObject_GC_UnTrack(t);
    (void)transport_base_clear(t);
    type->tp_free(t);
    Py_DECREF(type);
}

/* ---- the request ----------------------------------------------------------*/

/* The request's key, a new reference. */
static PyObject *
request_key(FgTransportBase *t, PyObject *request)
{
    if (t->origin_keys == NULL) {
        return PyObject_CallOneArg(t->key, request);
    }
    PyObject *key = fg_origin_key(t->st, t->origin_keys, request);
    if (key != Py_None) {
        return key;
    }
    Py_DECREF(key);
    PyObject *args[2] = {t->origin_keys, request};
    return PyObject_Vectorcall(t->new_origin, args, 2, NULL);
}

/* The key's breaker, a new reference: the registry's entry, or
 * registry[key] for a key it does not hold (or a registry of another kind). */
static PyObject *
key_breaker(FgTransportBase *t, PyObject *key)
{
    PyObject *registry = t->registry;
    if (PyObject_TypeCheck(registry, (PyTypeObject *)t->st->RegistryBase_Type)) {
        PyObject *breaker;
        int rc = fg_registry_find((FgRegistryBase *)registry, key, &breaker);
        if (rc != 0) {
            return rc < 0 ? NULL : breaker;
        }
    }
    return PyObject_GetItem(registry, key);
}

/* The protected send, a new reference (NULL with TypeError if never set). */
static PyObject *
protected_send(FgTransportBase *t)
{
    PyObject *send;
    Py_BEGIN_CRITICAL_SECTION(t);
    send = Py_XNewRef(t->send);
    Py_END_CRITICAL_SECTION();
    if (send == NULL) {
        (void)fg_not_initialised((PyObject *)t);
    }
    return send;
}

/* Runs the request through `breaker`; the response, or NULL with the
 * exception of the protected call. */
static PyObject *
run_request(FgTransportBase *t, PyObject *breaker, PyObject *key,
            PyObject *request)
{
    FgState *st = t->st;
    PyTypeObject *cb_type = (PyTypeObject *)st->CircuitBreaker_Type;
    int kind = Py_IS_TYPE(breaker, cb_type) ? 1 : 0;
    if (!kind) {
        /* isinstance, as a subclass or anything claiming the class does */
        int is = PyObject_IsInstance(breaker, (PyObject *)cb_type);
        if (is < 0) {
            return NULL;
        }
        if (!is) {
            PyObject *name =
                PyObject_GetAttrString((PyObject *)Py_TYPE(breaker), "__name__");
            if (name != NULL) {
                PyErr_Format(PyExc_TypeError,
                             "BreakerTransport needs a CircuitBreaker for %R, "
                             "got %S (use AsyncBreakerTransport with "
                             "AsyncCircuitBreaker)",
                             key, name);
                Py_DECREF(name);
            }
            return NULL;
        }
        kind = 2;
    }
    PyObject *send = protected_send(t);
    if (send == NULL) {
        return NULL;
    }
    PyObject *result;
    if (kind == 1) {
        FgBreaker *cb = (FgBreaker *)breaker;
        if (cb->window == NULL) {
            (void)fg_not_initialised(breaker);
            result = NULL;
        }
        else {
            /* args[0] is free for the callee (PY_VECTORCALL_ARGUMENTS_OFFSET) */
            PyObject *args[2] = {NULL, request};
            result = fg_breaker_run(cb, send, args + 1,
                                    1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        }
    }
    else {
        /* breaker.call(send, request): an overridden call() is honoured */
        PyObject *args[3] = {breaker, send, request};
        result = PyObject_VectorcallMethod(
            st->s_call_method, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_DECREF(send);
    return result;
}

/* The outcome of a request whose protected call raised: the response of a
 * FailedResponse, else NULL with the exception to raise. */
static PyObject *
request_failed(FgTransportBase *t, PyObject *key, PyObject *request)
{
    PyObject *error = PyErr_GetRaisedException();
    if (error == NULL) {
        PyErr_SetString(PyExc_SystemError,
                        "BreakerTransport: a call failed with no exception");
        return NULL;
    }
    if (PyErr_GivenExceptionMatches(error, t->failed)) {
        PyObject *response = PyObject_GetAttr(error, t->st->s_response);
        Py_DECREF(error);
        return response;
    }
    if (PyErr_GivenExceptionMatches(error, t->st->CallNotPermittedError)) {
        PyObject *args[3] = {error, request, key};
        PyObject *raised = PyObject_Vectorcall(t->refusal, args, 3, NULL);
        Py_DECREF(error);
        if (raised == NULL) {
            return NULL;
        }
        if (!PyExceptionInstance_Check(raised)) {
            PyErr_Format(PyExc_TypeError,
                         "the refusal of BreakerTransport returned %.200s, "
                         "not an exception",
                         Py_TYPE(raised)->tp_name);
            Py_DECREF(raised);
            return NULL;
        }
        PyErr_SetRaisedException(raised);
        return NULL;
    }
    PyErr_SetRaisedException(error);
    return NULL;
}

static PyObject *
transport_base_handle_request(PyObject *self, PyObject *request)
{
    FgTransportBase *t = (FgTransportBase *)self;
    if (t->registry == NULL) {
        (void)fg_not_initialised(self);
        return NULL;
    }
    PyObject *key = request_key(t, request);
    if (key == NULL) {
        return NULL;
    }
    PyObject *breaker = key_breaker(t, key);
    if (breaker == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *response = run_request(t, breaker, key, request);
    Py_DECREF(breaker);
    if (response == NULL) {
        response = request_failed(t, key, request);
    }
    Py_DECREF(key);
    return response;
}

/* ---- binding --------------------------------------------------------------*/

static PyObject *
transport_base_bind(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"registry", "key", "origin_keys", "failed",
                             "refusal", "new_origin", NULL};
    PyObject *registry, *key, *origin_keys, *failed, *refusal, *new_origin;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOO:_bind", kwlist,
                                     &registry, &key, &origin_keys, &failed,
                                     &refusal, &new_origin)) {
        return NULL;
    }
    FgTransportBase *t = (FgTransportBase *)self;
    if (t->registry != NULL) {
        (void)fg_already_initialised(self);
        return NULL;
    }
    if (origin_keys != Py_None && !PyDict_Check(origin_keys)) {
        PyErr_Format(PyExc_TypeError, "origin_keys must be a dict or None, not %.200s",
                     Py_TYPE(origin_keys)->tp_name);
        return NULL;
    }
    if (!PyExceptionClass_Check(failed)) {
        PyErr_Format(PyExc_TypeError,
                     "failed must be an exception class, not %.200s",
                     Py_TYPE(failed)->tp_name);
        return NULL;
    }
    if (!PyCallable_Check(key) || !PyCallable_Check(refusal)
        || !PyCallable_Check(new_origin)) {
        PyErr_SetString(PyExc_TypeError,
                        "key, refusal and new_origin must be callable");
        return NULL;
    }
    t->key = Py_NewRef(key);
    t->origin_keys = origin_keys == Py_None ? NULL : Py_NewRef(origin_keys);
    t->failed = Py_NewRef(failed);
    t->refusal = Py_NewRef(refusal);
    t->new_origin = Py_NewRef(new_origin);
    t->registry = Py_NewRef(registry); /* last: it marks the transport bound */
    Py_RETURN_NONE;
}

static PyObject *
transport_base_get_send(PyObject *self, void *closure)
{
    FgTransportBase *t = (FgTransportBase *)self;
    PyObject *send;
    Py_BEGIN_CRITICAL_SECTION(t);
    send = Py_XNewRef(t->send);
    Py_END_CRITICAL_SECTION();
    if (send == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_protected_send");
    }
    return send;
}

static int
transport_base_set_send(PyObject *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_protected_send cannot be deleted");
        return -1;
    }
    if (!PyCallable_Check(value)) {
        PyErr_Format(PyExc_TypeError, "_protected_send must be callable, not %.200s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    FgTransportBase *t = (FgTransportBase *)self;
    PyObject *old;
    Py_BEGIN_CRITICAL_SECTION(t);
    old = t->send;
    t->send = Py_NewRef(value);
    Py_END_CRITICAL_SECTION();
    Py_XDECREF(old);
    return 0;
}

static PyMethodDef transport_base_methods[] = {
    {"handle_request", transport_base_handle_request, METH_O,
     "handle_request($self, request, /)\n--\n\n"
     "Send request through the breaker of its key; the response."},
    {"_bind", (PyCFunction)(void (*)(void))transport_base_bind,
     METH_VARARGS | METH_KEYWORDS,
     "_bind($self, registry, key, origin_keys, failed, refusal, new_origin)\n"
     "--\n\n"
     "Set what a request needs; once."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef transport_base_getset[] = {
    {"_protected_send", transport_base_get_send, transport_base_set_send,
     "The protected call: the inner transport's send, checking the status.",
     NULL},
    {NULL},
};

PyDoc_STRVAR(transport_base_doc,
"_TransportBase()\n"
"--\n\n"
"The base of fluxgate.integrations.httpx.BreakerTransport: its\n"
"handle_request; not part of the public API.");

static PyType_Slot transport_base_slots[] = {
    {Py_tp_doc, (void *)transport_base_doc},
    {Py_tp_new, transport_base_new},
    {Py_tp_dealloc, transport_base_dealloc},
    {Py_tp_traverse, transport_base_traverse},
    {Py_tp_clear, transport_base_clear},
    {Py_tp_methods, transport_base_methods},
    {Py_tp_getset, transport_base_getset},
    {0, NULL},
};

static PyType_Spec transport_base_spec = {
    .name = TB,
    .basicsize = sizeof(FgTransportBase),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = transport_base_slots,
};

int
fg_transport_init(PyObject *module, FgState *st)
{
    return fg_add_type(module, &transport_base_spec, NULL,
                       &st->TransportBase_Type, 1);
}
