/* _StatusCheck: the send step of the httpx transport
 * (fluxgate/integrations/httpx.py), in C so that a protected request runs no
 * Python frame of the library.
 *
 * _StatusCheck(target, name, statuses, exception) holds an object, the name
 * of one of its methods, a frozenset of failure statuses and an exception
 * class. Calling it calls target.<name> with the same arguments (looked up
 * on each call, as `target.name(...)` in Python would, so that a method
 * replaced later is the one called), reads the result's `status_code`, and
 * when that is in `statuses` raises exception(result); otherwise it returns
 * the result. It is immutable once made, so threads may call one at once
 * with no lock.
 *
 * _origin_key(keys, request): the lookup of the transport's default key,
 * remembered per origin, without building the key in Python. */
#include "fluxgate.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *target;
    PyObject *name;           /* an interned str */
    PyObject *statuses;       /* a frozenset */
    PyObject *exception;      /* an exception class */
    PyObject *s_status_code;  /* the interned attribute name */
} FgStatusCheck;

/* The arguments of one call on the C stack up to this many. */
#define FG_SMALL_STACK 8

/* target.<name>(*args, **kwargs): args[-1] is borrowed for target when the
 * caller allows it (PY_VECTORCALL_ARGUMENTS_OFFSET), as a bound method does. */
static PyObject *
call_method(FgStatusCheck *sc, PyObject *const *args, size_t nargsf,
            PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargsf & PY_VECTORCALL_ARGUMENTS_OFFSET) {
        PyObject **stack = (PyObject **)args - 1;
        PyObject *saved = stack[0];
        stack[0] = sc->target;
        PyObject *result = PyObject_VectorcallMethod(
            sc->name, stack, (size_t)(nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
            kwnames);
        stack[0] = saved;
        return result;
    }
    Py_ssize_t total = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject *small[FG_SMALL_STACK];
    PyObject **stack = small;
    if (total + 1 > FG_SMALL_STACK) {
        stack = PyMem_New(PyObject *, (size_t)total + 1);
        if (stack == NULL) {
            return PyErr_NoMemory();
        }
    }
    stack[0] = sc->target;
    for (Py_ssize_t i = 0; i < total; i++) {
        stack[i + 1] = args[i];
    }
    PyObject *result = PyObject_VectorcallMethod(
        sc->name, stack, (size_t)(nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
        kwnames);
    if (stack != small) {
        PyMem_Free(stack);
    }
    return result;
}

static PyObject *
status_check_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                        PyObject *kwnames)
{
    FgStatusCheck *sc = (FgStatusCheck *)self;
    if (sc->target == NULL) {
        /* Cleared by a collection, and called by a finaliser. */
        PyErr_SetString(PyExc_RuntimeError, "_StatusCheck has been cleared");
        return NULL;
    }
    PyObject *response = call_method(sc, args, nargsf, kwnames);
    if (response == NULL) {
        return NULL;
    }
    PyObject *status = PyObject_GetAttr(response, sc->s_status_code);
    if (status == NULL) {
        Py_DECREF(response);
        return NULL;
    }
    int failed = PySet_Contains(sc->statuses, status);
    Py_DECREF(status);
    if (failed == 0) {
        return response;
    }
    if (failed > 0) {
        PyObject *error = PyObject_CallOneArg(sc->exception, response);
        if (error != NULL) {
            if (PyExceptionInstance_Check(error)) {
                PyErr_SetObject((PyObject *)Py_TYPE(error), error);
            }
            else {
                PyErr_Format(PyExc_TypeError,
                             "calling %R should have returned an exception, "
                             "not %.200s",
                             sc->exception, Py_TYPE(error)->tp_name);
            }
            Py_DECREF(error);
        }
    }
    Py_DECREF(response);
    return NULL;
}

static PyObject *
status_check_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"target", "name", "statuses", "exception", NULL};
    PyObject *target, *name, *statuses, *exception;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:_StatusCheck", kwlist,
                                     &target, &name, &statuses, &exception)) {
        return NULL;
    }
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "name must be a str, not %.200s",
                     Py_TYPE(name)->tp_name);
        return NULL;
    }
    if (!PyFrozenSet_Check(statuses)) {
        PyErr_Format(PyExc_TypeError, "statuses must be a frozenset, not %.200s",
                     Py_TYPE(statuses)->tp_name);
        return NULL;
    }
    if (!PyExceptionClass_Check(exception)) {
        PyErr_Format(PyExc_TypeError,
                     "exception must be an exception class, not %.200s",
                     Py_TYPE(exception)->tp_name);
        return NULL;
    }
    FgState *st = fg_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    Py_INCREF(name);
    PyUnicode_InternInPlace(&name);
    FgStatusCheck *sc = (FgStatusCheck *)type->tp_alloc(type, 0);
    if (sc == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    sc->vectorcall = status_check_vectorcall;
    sc->target = Py_NewRef(target);
    sc->name = name;
    sc->statuses = Py_NewRef(statuses);
    sc->exception = Py_NewRef(exception);
    sc->s_status_code = Py_NewRef(st->s_status_code);
    return (PyObject *)sc;
}

static int
status_check_traverse(FgStatusCheck *sc, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(sc));
    Py_VISIT(sc->target);
    Py_VISIT(sc->statuses);
    Py_VISIT(sc->exception);
    return 0;
}

static int
status_check_clear(FgStatusCheck *sc)
{
    Py_CLEAR(sc->target);
    Py_CLEAR(sc->name);
    Py_CLEAR(sc->statuses);
    Py_CLEAR(sc->exception);
    Py_CLEAR(sc->s_status_code);
    return 0;
}

static void
status_check_dealloc(FgStatusCheck *sc)
{
    PyTypeObject *type = Py_TYPE(sc);
    PyObject_GC_UnTrack(sc);
    (void)status_check_clear(sc);
    type->tp_free(sc);
    Py_DECREF(type);
}

static PyObject *
status_check_repr(FgStatusCheck *sc)
{
    if (sc->target == NULL) {
        return PyUnicode_FromString("<_StatusCheck (cleared)>");
    }
    return PyUnicode_FromFormat("<_StatusCheck %R.%U>", sc->target, sc->name);
}

static PyMemberDef status_check_members[] = {
    {"__vectorcalloffset__", Py_T_PYSSIZET,
     offsetof(FgStatusCheck, vectorcall), Py_READONLY, NULL},
    {"target", Py_T_OBJECT_EX, offsetof(FgStatusCheck, target), Py_READONLY,
     NULL},
    {"name", Py_T_OBJECT_EX, offsetof(FgStatusCheck, name), Py_READONLY, NULL},
    {"statuses", Py_T_OBJECT_EX, offsetof(FgStatusCheck, statuses), Py_READONLY,
     NULL},
    {"exception", Py_T_OBJECT_EX, offsetof(FgStatusCheck, exception),
     Py_READONLY, NULL},
    {NULL},
};

PyDoc_STRVAR(status_check_doc,
"_StatusCheck(target, name, statuses, exception)\n"
"--\n\n"
"Calls target.<name> with its arguments and returns the result, unless the\n"
"result's status_code is in the frozenset statuses: then raises\n"
"exception(result).\n"
"The send step of fluxgate.integrations.httpx; not part of the public API.");

static PyType_Slot status_check_slots[] = {
    {Py_tp_doc, (void *)status_check_doc},
    {Py_tp_new, status_check_new},
    {Py_tp_dealloc, status_check_dealloc},
    {Py_tp_traverse, status_check_traverse},
    {Py_tp_clear, status_check_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_repr, status_check_repr},
    {Py_tp_members, status_check_members},
    {0, NULL},
};

static PyType_Spec status_check_spec = {
    .name = "fluxgate._fluxgate._StatusCheck",
    .basicsize = sizeof(FgStatusCheck),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = status_check_slots,
};

/* ---- _origin_key ---------------------------------------------------------*/

/* The remembered key of an httpx request's origin (scheme, host, port),
 * read from request.url._uri_reference (httpx's parsed URL, a tuple whose
 * items 0, 2 and 3 are those). `keys` maps a host to a tuple of
 * (scheme, port, key) triples, one per origin of that host seen (usually
 * one): a str key, whose hash the host string computes once, spares the
 * hashing and comparing of a tuple on every request. None when keys holds no
 * such origin, or when the parsed URL is not such a tuple (the caller then
 * finds the key its own way and remembers it). */
PyObject *
fg_origin_key(FgState *st, PyObject *keys, PyObject *request)
{
    PyObject *url = PyObject_GetAttr(request, st->s_url);
    if (url == NULL) {
        return NULL;
    }
    PyObject *parts = PyObject_GetAttr(url, st->s_uri_reference);
    Py_DECREF(url);
    if (parts == NULL) {
        return NULL;
    }
    PyObject *result = Py_None;
    PyObject *known = NULL;
    if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) < 4) {
        goto done;
    }
    int found = fg_dict_get_ref(keys, PyTuple_GET_ITEM(parts, 2), &known);
    if (found < 0) {
        result = NULL;
        goto done;
    }
    if (found == 0 || !PyTuple_Check(known)) {
        goto done;
    }
    PyObject *scheme = PyTuple_GET_ITEM(parts, 0);
    PyObject *port = PyTuple_GET_ITEM(parts, 3);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(known); i++) {
        PyObject *origin = PyTuple_GET_ITEM(known, i);
        if (!PyTuple_Check(origin) || PyTuple_GET_SIZE(origin) != 3) {
            continue;
        }
        int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(origin, 0), scheme,
                                            Py_EQ);
        if (same > 0) {
            same = PyObject_RichCompareBool(PyTuple_GET_ITEM(origin, 1), port,
                                            Py_EQ);
        }
        if (same < 0) {
            result = NULL;
            goto done;
        }
        if (same) {
            result = PyTuple_GET_ITEM(origin, 2);
            break;
        }
    }
done:
    Py_XINCREF(result);
    Py_XDECREF(known);
    Py_DECREF(parts);
    return result;
}

static PyObject *
origin_key(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "_origin_key() takes 2 positional arguments (keys, "
                     "request) but %zd were given",
                     nargs);
        return NULL;
    }
    if (!PyDict_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "keys must be a dict, not %.200s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    return fg_origin_key(fg_state(module), args[0], args[1]);
}

static PyMethodDef status_check_functions[] = {
    {"_origin_key", (PyCFunction)(void (*)(void))origin_key, METH_FASTCALL,
     "_origin_key($module, keys, request, /)\n--\n\n"
     "The remembered key of an httpx request's origin, or None."},
    {NULL, NULL, 0, NULL},
};

int
fg_status_check_init(PyObject *module, FgState *st)
{
    if (PyModule_AddFunctions(module, status_check_functions) < 0) {
        return -1;
    }
    return fg_add_type(module, &status_check_spec, NULL, &st->StatusCheck_Type, 1);
}
