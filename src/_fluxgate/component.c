/* What the component types (windows, trackers, trippers, retries, permits)
 * share: GC support for a type that holds no object but its type, a repr of
 * its parameters, reduction to its constructor's arguments for pickle
 * and copy, and the one decision every kind of component needs: whether a
 * node is evaluated natively or called through Python. */
#include "components.h"

#include <stddef.h>
#include <string.h>

int
fg_plain_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

void
fg_plain_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    type->tp_free(self);
    Py_DECREF(type);
}

PyObject *
fg_params_repr(PyObject *self, const char *const *names, const double *values,
               int n)
{
    PyObject *repr = PyUnicode_FromFormat("%U(", fg_qualname(self));
    for (int i = 0; i < n && repr != NULL; i++) {
        PyObject *value = PyFloat_FromDouble(values[i]);
        if (value == NULL) {
            Py_CLEAR(repr);
            break;
        }
        PyUnicode_AppendAndDel(&repr, PyUnicode_FromFormat("%s%s=%R", i ? ", " : "",
                                                           names[i], value));
        Py_DECREF(value);
    }
    if (repr != NULL) {
        PyUnicode_AppendAndDel(&repr, PyUnicode_FromString(")"));
    }
    return repr;
}

/* The native type `type` derives from (itself for one of ours). */
static PyTypeObject *
native_base(PyTypeObject *type)
{
    while (type != NULL
           && (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE)
               || ((PyHeapTypeObject *)type)->ht_module == NULL)) {
        type = type->tp_base;
    }
    return type;
}

/* True when `type` is `builtin` or a subclass that inherits `builtin`'s
 * attribute `name` unchanged (no override anywhere in between). */
static int
inherits_method(PyTypeObject *type, PyTypeObject *builtin, PyObject *name)
{
    if (type == builtin) {
        return 1;
    }
    /* Borrowed lookups through the type cache; only the identities matter. */
    PyObject *found = fg_type_lookup(type, name);
    return found != NULL && found == fg_type_lookup(builtin, name);
}

/* 1 when `self` is an instance of a Python subclass with an __init__ of its
 * own: its constructor's arguments are not the built-in's. */
static int
has_own_init(PyObject *self, PyTypeObject **builtin)
{
    *builtin = native_base(Py_TYPE(self));
    if (*builtin == NULL || *builtin == Py_TYPE(self)) {
        return 0;
    }
    PyObject *name = PyUnicode_InternFromString("__init__");
    if (name == NULL) {
        return -1;
    }
    int inherits = inherits_method(Py_TYPE(self), *builtin, name);
    Py_DECREF(name);
    return inherits < 0 ? -1 : !inherits;
}

PyObject *
fg_reduce(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *result = NULL, *state = NULL, *newobj_ex = NULL;
    PyTypeObject *builtin;
    int own_init;
    if (args == NULL || PyObject_GetOptionalAttrString(self, "__dict__", &state) < 0) {
        goto done;
    }
    if (state == NULL) {
        state = Py_NewRef(Py_None);
    }
    if ((own_init = has_own_init(self, &builtin)) < 0) {
        goto done;
    }
    if (own_init) {
        /* fluxgate._checks.rebuild(cls, builtin, args, kwargs): the built-in's
         * __init__ on an instance of the subclass, whose own __init__ takes
         * other arguments (its instance dict comes back as the state). */
        PyObject *checks = PyImport_ImportModule("fluxgate._checks");
        if (checks != NULL) {
            newobj_ex = PyObject_GetAttrString(checks, "rebuild");
            Py_DECREF(checks);
        }
        if (newobj_ex != NULL) {
            result = Py_BuildValue("O(OOOO)O", newobj_ex, (PyObject *)Py_TYPE(self),
                                   (PyObject *)builtin, args,
                                   kwargs ? kwargs : Py_None, state);
        }
        goto done;
    }
    if (kwargs == NULL) {
        result = PyTuple_Pack(3, (PyObject *)Py_TYPE(self), args, state);
        goto done;
    }
    /* functools.partial(type, **kwargs)(*args): the constructor runs, as
     * for positional arguments (__new__ alone would leave it uninitialised). */
    PyObject *functools = PyImport_ImportModule("functools");
    PyObject *partial = NULL;
    if (functools != NULL) {
        newobj_ex = PyObject_GetAttrString(functools, "partial");
        Py_DECREF(functools);
    }
    if (newobj_ex != NULL) {
        PyObject *type_only = PyTuple_Pack(1, (PyObject *)Py_TYPE(self));
        if (type_only != NULL) {
            partial = PyObject_Call(newobj_ex, type_only, kwargs);
            Py_DECREF(type_only);
        }
    }
    if (partial != NULL) {
        result = PyTuple_Pack(3, partial, args, state);
        Py_DECREF(partial);
    }
done:
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(state);
    Py_XDECREF(newobj_ex);
    return result;
}

int
fg_truth(PyObject *result)
{
    if (result == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* ---- Native or Python (components.h) --------------------------------------*/

#define FG_MAX_KINDS 9   /* the trippers' */
#define FG_MAX_METHODS 3 /* the windows': record, get_metric, reset */

/* A family's built-in types, in the order of its kinds, and the methods a
 * node of the family must leave as the built-in's own to be native. */
typedef struct {
    int n_kinds;
    size_t kinds[FG_MAX_KINDS]; /* offsets of the types in FgState */
    int n_methods;
    const char *methods[FG_MAX_METHODS];
    size_t names[FG_MAX_METHODS]; /* offsets of the methods' interned names in FgState */
} FamilyDef;

#define FG_TYPE(name) offsetof(FgState, name)

static const FamilyDef families[FG_FAMILY_COUNT] = {
    [FG_FAMILY_WINDOW] = {2, {FG_TYPE(CountWindow_Type), FG_TYPE(TimeWindow_Type)},
                          3, {"record", "get_metric", "reset"},
                          {FG_TYPE(s_record), FG_TYPE(s_get_metric), FG_TYPE(s_reset)}},
    [FG_FAMILY_TRACKER] = {6, {FG_TYPE(TrackerAll_Type), FG_TYPE(TypeOf_Type),
                               FG_TYPE(Custom_Type), FG_TYPE(TrackerAnd_Type),
                               FG_TYPE(TrackerOr_Type), FG_TYPE(TrackerNot_Type)},
                           1, {"__call__"}, {FG_TYPE(s_call)}},
    [FG_FAMILY_TRIPPER] = {9, {FG_TYPE(Closed_Type), FG_TYPE(HalfOpened_Type),
                               FG_TYPE(MinRequests_Type), FG_TYPE(FailureRate_Type),
                               FG_TYPE(AvgLatency_Type), FG_TYPE(SlowRate_Type),
                               FG_TYPE(FailureStreak_Type), FG_TYPE(TripperAnd_Type),
                               FG_TYPE(TripperOr_Type)},
                           1, {"__call__"}, {FG_TYPE(s_call)}},
    [FG_FAMILY_RETRY] = {4, {FG_TYPE(Always_Type), FG_TYPE(Never_Type),
                             FG_TYPE(Cooldown_Type), FG_TYPE(Backoff_Type)},
                         1, {"__call__"}, {FG_TYPE(s_call)}},
    [FG_FAMILY_PERMIT] = {3, {FG_TYPE(PermitAll_Type), FG_TYPE(Random_Type),
                              FG_TYPE(RampUp_Type)},
                          1, {"__call__"}, {FG_TYPE(s_call)}},
};

#undef FG_TYPE

static PyObject *
state_field(FgState *st, size_t offset)
{
    return *(PyObject **)((char *)st + offset);
}

/* The C method descriptor that `obj` stands for when it is a _SignedMethod
 * (the Python layer installs them to give our methods signatures), of this
 * copy of the extension or of another; else `obj`. */
static PyObject *
signed_method_target(FgState *st, PyObject *obj)
{
    PyObject *target = fg_signed_method_target(st, obj);
    if (target != obj || Py_IS_TYPE(obj, &PyMethodDescr_Type)) {
        return target;
    }
    FgState *own = fg_state_if_ours(Py_TYPE(obj));
    return own == NULL ? obj : fg_signed_method_target(own, obj);
}

/* The verdict for `type`, from its MRO: every method of the family must be
 * found as a C method descriptor of that name, all of one built-in type of
 * the family that `type` derives from. */
static int
decide(FgState *st, const FamilyDef *def, PyTypeObject *type)
{
    PyTypeObject *owner = NULL;
    for (int i = 0; i < def->n_methods; i++) {
        PyObject *found = fg_type_lookup(type, state_field(st, def->names[i]));
        if (found != NULL) {
            found = signed_method_target(st, found);
        }
        if (found == NULL || !Py_IS_TYPE(found, &PyMethodDescr_Type)) {
            return FG_PYTHON;
        }
        PyMethodDescrObject *descr = (PyMethodDescrObject *)found;
        if (strcmp(descr->d_method->ml_name, def->methods[i]) != 0
            || (owner != NULL && descr->d_common.d_type != owner)) {
            return FG_PYTHON;
        }
        owner = descr->d_common.d_type;
    }
    if (owner == NULL || !(owner->tp_flags & Py_TPFLAGS_HEAPTYPE)
        || !PyType_IsSubtype(type, owner)) {
        return FG_PYTHON;
    }
    /* The built-in may come from another copy of the extension: its kind is
     * found in its own module's state. */
    FgState *own = fg_state_if_ours(owner);
    if (own == NULL) {
        return FG_PYTHON;
    }
    for (int k = 0; k < def->n_kinds; k++) {
        if (state_field(own, def->kinds[k]) == (PyObject *)owner) {
            return k;
        }
    }
    return FG_PYTHON;
}

int
fg_native_kind_slow(FgState *st, FgFamily family, PyTypeObject *type,
                    unsigned int tag)
{
    int kind = decide(st, &families[family], type);
    /* The lookups assign a tag to a type that had none. Under the GIL no
     * other thread can change the type meanwhile; without it, a verdict is
     * kept only when the tag held from before the lookups to after them. */
    unsigned int after = fg_type_version(type);
#ifdef Py_GIL_DISABLED
    int keep = after != 0 && after == tag;
#else
    int keep = after != 0;
    (void)tag;
#endif
    if (keep) {
        fg_store_u64(&st->dispatch_cache[family][after % FG_DISPATCH_WAYS],
                     (uint64_t)after << FG_KIND_BITS | (uint64_t)(kind + 1));
    }
    return kind;

}

/* ---- argument errors and initialisation ----------------------------------*/

int
fg_bind_error(const char *key, PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
        return -1;
    }
    PyObject *original = PyErr_GetRaisedException();
    PyObject *module = PyImport_ImportModule("fluxgate._signatures");
    PyObject *result = NULL;
    if (module != NULL) {
        PyObject *no_args = args == NULL ? PyTuple_New(0) : Py_NewRef(args);
        if (no_args != NULL) {
            result = PyObject_CallMethod(module, "bind_error", "sOOO", key, self,
                                         no_args, kwargs ? kwargs : Py_None);
            Py_DECREF(no_args);
        }
        Py_DECREF(module);
    }
    if (result == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
        /* The stub did not bind: Python's own message replaces ours. */
        Py_DECREF(original);
        return -1;
    }
    /* The arguments bind (or the stub could not be reached): ours stands. */
    Py_XDECREF(result);
    PyErr_Clear();
    PyErr_SetRaisedException(original);
    return -1;
}

PyObject *
fg_bind_error_fast(const char *key, PyObject *self, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
        return NULL;
    }
    PyObject *original = PyErr_GetRaisedException();
    PyObject *tuple = PyTuple_New(nargs);
    PyObject *dict = NULL;
    int ok = tuple != NULL;
    for (Py_ssize_t i = 0; ok && i < nargs; i++) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    }
    if (ok && kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        dict = PyDict_New();
        ok = dict != NULL;
        for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(kwnames); i++) {
            ok = PyDict_SetItem(dict, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) == 0;
        }
    }
    if (!ok) {
        Py_XDECREF(tuple);
        Py_XDECREF(dict);
        Py_DECREF(original);
        return NULL;
    }
    PyErr_SetRaisedException(original);
    (void)fg_bind_error(key, self, tuple, dict);
    Py_DECREF(tuple);
    Py_XDECREF(dict);
    return NULL;
}

const char *
fg_type_name(PyObject *self)
{
    const char *name = Py_TYPE(self)->tp_name;
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

int
fg_check_no_args(const char *key, PyObject *self, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0)) {
        return 0;
    }
    PyErr_SetString(PyExc_TypeError, "takes no arguments");
    (void)fg_bind_error_fast(key, self, args, nargs, kwnames);
    return -1;
}

int
fg_already_initialised(PyObject *self)
{
    PyErr_Format(PyExc_TypeError,
                 "%.200s object is already initialised: __init__() may not be "
                 "called again",
                 fg_type_name(self));
    return -1;
}

int
fg_not_initialised(PyObject *self)
{
    PyErr_Format(PyExc_TypeError,
                 "%.200s object is not initialised: its __init__() was not "
                 "called (a subclass's __init__ must call super().__init__())",
                 fg_type_name(self));
    return -1;
}
