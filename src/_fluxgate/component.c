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
    PyObject *qualname = PyObject_GetAttrString((PyObject *)Py_TYPE(self),
                                                "__qualname__");
    if (qualname == NULL) {
        return NULL;
    }
    PyObject *repr = PyUnicode_FromFormat("%U(", qualname);
    Py_DECREF(qualname);
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

PyObject *
fg_reduce(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *result = NULL, *state = NULL, *newobj_ex = NULL;
    if (args == NULL || PyObject_GetOptionalAttrString(self, "__dict__", &state) < 0) {
        goto done;
    }
    if (state == NULL) {
        state = Py_NewRef(Py_None);
    }
    if (kwargs == NULL) {
        result = PyTuple_Pack(3, (PyObject *)Py_TYPE(self), args, state);
        goto done;
    }
    PyObject *copyreg = PyImport_ImportModule("copyreg");
    if (copyreg != NULL) {
        newobj_ex = PyObject_GetAttrString(copyreg, "__newobj_ex__");
        Py_DECREF(copyreg);
    }
    if (newobj_ex != NULL) {
        result = Py_BuildValue("O(OOO)O", newobj_ex, (PyObject *)Py_TYPE(self),
                               args, kwargs, state);
    }
done:
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(state);
    Py_XDECREF(newobj_ex);
    return result;
}

/* ---- Native or Python (components.h) --------------------------------------*/

#define FG_MAX_KINDS 9

/* A family's built-in types, in the order of its kinds, and the methods a
 * node of the family must leave as the built-in's own to be native. */
typedef struct {
    int n_kinds;
    size_t kinds[FG_MAX_KINDS]; /* offsets of the types in FgState */
    int n_methods;
    const char *methods[3];
    size_t names[3]; /* offsets of the methods' interned names in FgState */
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

/* The verdict for `type`, from its MRO: every method of the family must be
 * found as a C method descriptor of that name, all of one built-in type of
 * the family that `type` derives from. */
static int
decide(FgState *st, const FamilyDef *def, PyTypeObject *type)
{
    PyTypeObject *owner = NULL;
    for (int i = 0; i < def->n_methods; i++) {
        PyObject *found = fg_type_lookup(type, state_field(st, def->names[i]));
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
    PyObject *pending = PyErr_GetRaisedException();
    PyObject *module = PyType_GetModuleByDef(owner, &fluxgate_module_def);
    PyErr_Clear();
    PyErr_SetRaisedException(pending);
    if (module == NULL) {
        return FG_PYTHON;
    }
    FgState *own = fg_state(module);
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
                     (uint64_t)after << 8 | (uint64_t)(kind + 1));
    }
    return kind;
}
