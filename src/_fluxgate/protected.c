/* The object @cb returns: a function protected by a breaker.
 *
 * A vectorcall wrapper (the pattern of functools.partial) whose call goes
 * straight to the breaker's hot path. It keeps the wrapped function's
 * identity as functools.wraps does (metadata copied into its __dict__,
 * __wrapped__ set, so inspect.signature shows the original), binds as a
 * method in a class body, and pickles by reference like the function. */
#include "breaker.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    FgBreaker *breaker;
    PyObject *func;
    PyObject *fallback; /* NULL when none */
    PyObject *dict;
    PyObject *weakreflist;
} FgProtected;

static PyObject *
protected_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                     PyObject *kwnames)
{
    FgProtected *p = (FgProtected *)self;
    PyObject *result = fg_breaker_run(p->breaker, p->func, args, nargsf, kwnames);
    if (result == NULL && p->fallback != NULL) {
        return fg_apply_fallback(p->fallback);
    }
    return result;
}

PyObject *
fg_protected_new(FgState *st, FgBreaker *cb, PyObject *func, PyObject *fallback)
{
    PyTypeObject *type = (PyTypeObject *)st->Protected_Type;
    FgProtected *p = (FgProtected *)type->tp_alloc(type, 0);
    if (p == NULL) {
        return NULL;
    }
    p->vectorcall = protected_vectorcall;
    p->breaker = (FgBreaker *)Py_NewRef((PyObject *)cb);
    p->func = Py_NewRef(func);
    p->fallback = Py_XNewRef(fallback);
    PyObject *functools = PyImport_ImportModule("functools");
    PyObject *r = functools ? PyObject_CallMethod(functools, "update_wrapper",
                                                  "OO", (PyObject *)p, func)
                            : NULL;
    Py_XDECREF(functools);
    if (r == NULL) {
        Py_DECREF(p);
        return NULL;
    }
    Py_DECREF(r);
    return (PyObject *)p;
}

static int
protected_traverse(FgProtected *p, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(p));
    Py_VISIT(p->breaker);
    Py_VISIT(p->func);
    Py_VISIT(p->fallback);
    Py_VISIT(p->dict);
    return 0;
}

static int
protected_clear(FgProtected *p)
{
    Py_CLEAR(p->breaker);
    Py_CLEAR(p->func);
    Py_CLEAR(p->fallback);
    Py_CLEAR(p->dict);
    return 0;
}

static void
protected_dealloc(FgProtected *p)
{
    PyTypeObject *type = Py_TYPE(p);
    PyObject_GC_UnTrack(p);
    if (p->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)p);
    }
    (void)protected_clear(p);
    type->tp_free(p);
    Py_DECREF(type);
}

/* Bind like a function: accessed on an instance it becomes a bound method. */
static PyObject *
protected_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

static PyObject *
protected_repr(FgProtected *p)
{
    return PyUnicode_FromFormat("<protected %R>", p->func);
}

/* Pickled by reference: the name under which the module holds it. */
static PyObject *
protected_reduce(PyObject *self, PyObject *unused)
{
    return PyObject_GetAttrString(self, "__qualname__");
}

static PyMethodDef protected_methods[] = {
    {"__reduce__", protected_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef protected_members[] = {
    {"__vectorcalloffset__", Py_T_PYSSIZET, offsetof(FgProtected, vectorcall),
     Py_READONLY, NULL},
    {"__dictoffset__", Py_T_PYSSIZET, offsetof(FgProtected, dict), Py_READONLY,
     NULL},
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(FgProtected, weakreflist),
     Py_READONLY, NULL},
    {NULL},
};

static PyGetSetDef protected_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyType_Slot protected_slots[] = {
    {Py_tp_doc, "A function protected by a circuit breaker."},
    {Py_tp_dealloc, protected_dealloc},
    {Py_tp_traverse, protected_traverse},
    {Py_tp_clear, protected_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, protected_descr_get},
    {Py_tp_repr, protected_repr},
    {Py_tp_methods, protected_methods},
    {Py_tp_members, protected_members},
    {Py_tp_getset, protected_getset},
    {0, NULL},
};

static PyType_Spec protected_spec = {
    .name = "fluxgate.circuitbreaker.ProtectedFunction",
    .basicsize = sizeof(FgProtected),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = protected_slots,
};

int
fg_protected_init(PyObject *module, FgState *st)
{
    return fg_add_type(module, &protected_spec, NULL, &st->Protected_Type, 0);
}
