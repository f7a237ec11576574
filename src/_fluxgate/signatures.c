/* Runtime signatures of the native classes and methods (SPEC.md section 0).
 *
 * A C method's __text_signature__ cannot carry annotations, so
 * fluxgate._signatures replaces each public method descriptor of our types
 * with a _SignedMethod: a method descriptor that keeps the original's
 * behaviour and speed (it is a Py_TPFLAGS_METHOD_DESCRIPTOR type, so
 * `obj.method(...)` binds no method object, and a METH_FASTCALL method is
 * called directly) and exposes the inspect.Signature it is given as
 * __signature__. Bound to an instance it gives a types.MethodType, whose
 * signature inspect derives from ours without `self`.
 *
 * _set_class_attribute stores an attribute in one of our (immutable) types'
 * dict; it is how the Python layer installs __signature__ and the signed
 * methods. */
#include "fluxgate.h"

#include <structmember.h>

/* A METH_FASTCALL | METH_KEYWORDS method (the name is public from 3.13). */
typedef PyObject *(*FastKeywordsFn)(PyObject *, PyObject *const *, Py_ssize_t,
                                    PyObject *);

typedef struct {
    PyObject_HEAD
    PyObject *descr;     /* the method_descriptor this one stands for */
    PyObject *signature; /* inspect.Signature, `self` included */
    PyTypeObject *objclass;
    FastKeywordsFn fast; /* METH_FASTCALL | METH_KEYWORDS, or NULL */
    vectorcallfunc vectorcall;
} SignedMethod;

static PyObject *
signed_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                  PyObject *kwnames)
{
    SignedMethod *m = (SignedMethod *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (m->fast != NULL && nargs >= 1 && PyObject_TypeCheck(args[0], m->objclass)) {
        return m->fast(args[0], args + 1, nargs - 1, kwnames);
    }
    /* Anything else (a wrong `self`, no argument): the original decides. */
    return PyObject_Vectorcall(m->descr, args, nargsf, kwnames);
}

static PyObject *
signed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"descriptor", "signature", NULL};
    PyObject *descr, *signature;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:_SignedMethod", kwlist,
                                     &descr, &signature)) {
        return NULL;
    }
    if (!Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
        PyErr_Format(PyExc_TypeError,
                     "descriptor must be a method descriptor, not %.200s",
                     Py_TYPE(descr)->tp_name);
        return NULL;
    }
    SignedMethod *m = (SignedMethod *)type->tp_alloc(type, 0);
    if (m == NULL) {
        return NULL;
    }
    PyMethodDescrObject *d = (PyMethodDescrObject *)descr;
    m->descr = Py_NewRef(descr);
    m->signature = Py_NewRef(signature);
    m->objclass = (PyTypeObject *)Py_NewRef((PyObject *)PyDescr_TYPE(d));
    int flags = d->d_method->ml_flags & ~METH_COEXIST;
    if (flags == (METH_FASTCALL | METH_KEYWORDS)) {
        m->fast = (FastKeywordsFn)(void (*)(void))d->d_method->ml_meth;
    }
    m->vectorcall = signed_vectorcall;
    return (PyObject *)m;
}

static int
signed_traverse(SignedMethod *m, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(m));
    Py_VISIT(m->descr);
    Py_VISIT(m->signature);
    Py_VISIT(m->objclass);
    return 0;
}

static int
signed_clear(SignedMethod *m)
{
    Py_CLEAR(m->descr);
    Py_CLEAR(m->signature);
    Py_CLEAR(m->objclass);
    m->fast = NULL;
    return 0;
}

static void
signed_dealloc(SignedMethod *m)
{
    PyTypeObject *type = Py_TYPE(m);
    PyObject_GC_UnTrack(m);
    (void)signed_clear(m);
    type->tp_free(m);
    Py_DECREF(type);
}

static PyObject *
signed_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

/* __name__, __qualname__, __doc__, __objclass__, __text_signature__ ...:
 * the original's. */
static PyObject *
signed_getattro(PyObject *self, PyObject *name)
{
    PyObject *value = PyObject_GenericGetAttr(self, name);
    if (value != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return value;
    }
    PyErr_Clear();
    SignedMethod *m = (SignedMethod *)self;
    if (m->descr == NULL) {
        PyErr_SetObject(PyExc_AttributeError, name);
        return NULL;
    }
    return PyObject_GetAttr(m->descr, name);
}

static PyObject *
signed_get_signature(SignedMethod *m, void *closure)
{
    return Py_NewRef(m->signature ? m->signature : Py_None);
}

static PyObject *
signed_repr(SignedMethod *m)
{
    return m->descr ? PyObject_Repr(m->descr) : PyUnicode_FromString("<_SignedMethod>");
}

static PyObject *
signed_reduce(SignedMethod *m, PyObject *unused)
{
    /* Pickled as the original is: getattr(objclass, name). */
    return PyObject_CallMethod(m->descr, "__reduce__", NULL);
}

static PyGetSetDef signed_getset[] = {
    {"__signature__", (getter)signed_get_signature, NULL, NULL, NULL},
    {NULL},
};

static PyMemberDef signed_members[] = {
    {"__vectorcalloffset__", Py_T_PYSSIZET, offsetof(SignedMethod, vectorcall),
     Py_READONLY, NULL},
    {NULL},
};

static PyMethodDef signed_methods[] = {
    {"__reduce__", (PyCFunction)signed_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot signed_slots[] = {
    {Py_tp_doc, "A native method carrying its Python signature."},
    {Py_tp_new, signed_new},
    {Py_tp_dealloc, signed_dealloc},
    {Py_tp_traverse, signed_traverse},
    {Py_tp_clear, signed_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, signed_descr_get},
    {Py_tp_getattro, signed_getattro},
    {Py_tp_repr, signed_repr},
    {Py_tp_getset, signed_getset},
    {Py_tp_members, signed_members},
    {Py_tp_methods, signed_methods},
    {0, NULL},
};

static PyType_Spec signed_spec = {
    .name = "fluxgate._fluxgate._SignedMethod",
    .basicsize = sizeof(SignedMethod),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .slots = signed_slots,
};

PyObject *
fg_signed_method_target(FgState *st, PyObject *obj)
{
    if (Py_IS_TYPE(obj, (PyTypeObject *)st->SignedMethod_Type)) {
        return ((SignedMethod *)obj)->descr;
    }
    return obj;
}

/* _set_class_attribute(cls, name, value): cls.name = value, for our types
 * (immutable ones included), at import of the Python layer. */
static PyObject *
set_class_attribute(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "_set_class_attribute(cls, name, value) takes a type, a "
                        "str and a value");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    /* Only types made by a native module (ours), never a Python class. */
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE) || PyType_GetModule(type) == NULL
        || type->tp_dict == NULL) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "not a fluxgate type");
        return NULL;
    }
    if (PyDict_SetItem(type->tp_dict, args[1], args[2]) < 0) {
        return NULL;
    }
    PyType_Modified(type);
    Py_RETURN_NONE;
}

static PyMethodDef signature_functions[] = {
    {"_set_class_attribute", (PyCFunction)(void (*)(void))set_class_attribute,
     METH_FASTCALL,
     "_set_class_attribute($module, cls, name, value, /)\n--\n\n"
     "Set an attribute of a fluxgate type; not part of the public API."},
    {NULL, NULL, 0, NULL},
};

int
fg_signatures_init(PyObject *module, FgState *st)
{
    if (fg_add_type(module, &signed_spec, NULL, &st->SignedMethod_Type, 1) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, signature_functions);
}
