/* The lookup of BreakerRegistry (fluxgate/registry.py) in C, so that
 * `registry[key]` for a key it holds costs a dict lookup and setting a flag.
 *
 * _RegistryEntry(breaker, seen, listeners): one key's breaker and what the
 * registry's sweeps know about its use. `breaker` and `listeners` are fixed
 * when it is made (so a lookup may read the breaker with no lock); `touched`
 * (set by every lookup, cleared by the sweeps) and `seen` (a monotonic time)
 * are written by the Python code of the sweeps, under the registry's lock.
 *
 * _RegistryBase: the base of BreakerRegistry. It owns the dict of entries,
 * key -> _RegistryEntry (`_entries`, read-only: the dict itself is the one the
 * Python code fills and sweeps), and implements `registry[key]` and
 * `registry.get(key)`: an exact dict lookup; on a hit with a _RegistryEntry,
 * set its touched flag and return its breaker; otherwise call
 * `self._make(key)`, the Python slow path (the once-latch, the factory and
 * the eviction). */
#include "fluxgate.h"

#include "registry.h"

/* The touched flag is read and written with relaxed atomics: lookups in
 * several threads set it with no lock (free-threaded builds), while a sweep
 * reads and clears it under the registry's lock; a lost race only keeps a
 * breaker one sweep longer. Python reads and writes it through a getset (not
 * a member), so that its accesses are atomic too. */

/* ---- _RegistryEntry -------------------------------------------------------*/

static PyObject *
entry_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"breaker", "seen", "listeners", NULL};
    PyObject *breaker, *listeners;
    double seen;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OdO:_RegistryEntry", kwlist,
                                     &breaker, &seen, &listeners)) {
        return NULL;
    }
    FgRegistryEntry *entry = (FgRegistryEntry *)type->tp_alloc(type, 0);
    if (entry == NULL) {
        return NULL;
    }
    entry->breaker = Py_NewRef(breaker);
    entry->listeners = Py_NewRef(listeners);
    entry->seen = seen;
    entry->touched = 0;
    return (PyObject *)entry;
}

static int
entry_traverse(FgRegistryEntry *entry, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(entry));
    Py_VISIT(entry->breaker);
    Py_VISIT(entry->listeners);
    return 0;
}

static int
entry_clear(FgRegistryEntry *entry)
{
    Py_CLEAR(entry->breaker);
    Py_CLEAR(entry->listeners);
    return 0;
}

static void
entry_dealloc(FgRegistryEntry *entry)
{
    PyTypeObject *type = Py_TYPE(entry);
    PyObject_GC_UnTrack(entry);
    (void)entry_clear(entry);
    type->tp_free(entry);
    Py_DECREF(type);
}

static PyObject *
entry_repr(FgRegistryEntry *entry)
{
    if (entry->breaker == NULL) {
        return PyUnicode_FromString("<_RegistryEntry (cleared)>");
    }
    int touched = fg_atomic_load_int_relaxed(&entry->touched);
    return PyUnicode_FromFormat("<_RegistryEntry %R touched=%s>", entry->breaker,
                                touched ? "True" : "False");
}

static PyMemberDef entry_members[] = {
    {"breaker", Py_T_OBJECT_EX, offsetof(FgRegistryEntry, breaker), Py_READONLY,
     "The key's breaker."},
    {"listeners", Py_T_OBJECT_EX, offsetof(FgRegistryEntry, listeners),
     Py_READONLY, "The breaker's listeners that have a close() method."},
    {"seen", Py_T_DOUBLE, offsetof(FgRegistryEntry, seen), 0,
     "The last time a sweep (or its creation) knew it was used."},
    {NULL},
};

static PyObject *
entry_get_touched(PyObject *self, void *closure)
{
    FgRegistryEntry *entry = (FgRegistryEntry *)self;
    return PyBool_FromLong(fg_atomic_load_int_relaxed(&entry->touched));
}

static int
entry_set_touched(PyObject *self, PyObject *value, void *closure)
{
    if (value == NULL || !PyBool_Check(value)) {
        PyErr_Format(PyExc_TypeError, "touched must be a bool, not %.200s",
                     value == NULL ? "nothing (it cannot be deleted)"
                                   : Py_TYPE(value)->tp_name);
        return -1;
    }
    FgRegistryEntry *entry = (FgRegistryEntry *)self;
    fg_atomic_store_int_relaxed(&entry->touched, value == Py_True);
    return 0;
}

static PyGetSetDef entry_getset[] = {
    {"touched", entry_get_touched, entry_set_touched,
     "Used since the last sweep looked at it.", NULL},
    {NULL},
};

PyDoc_STRVAR(entry_doc,
"_RegistryEntry(breaker, seen, listeners)\n"
"--\n\n"
"One key's breaker in a BreakerRegistry, and what the sweeps know about its\n"
"use; not part of the public API.");

static PyType_Slot entry_slots[] = {
    {Py_tp_doc, (void *)entry_doc},
    {Py_tp_new, entry_new},
    {Py_tp_dealloc, entry_dealloc},
    {Py_tp_traverse, entry_traverse},
    {Py_tp_clear, entry_clear},
    {Py_tp_repr, entry_repr},
    {Py_tp_members, entry_members},
    {Py_tp_getset, entry_getset},
    {0, NULL},
};

static PyType_Spec entry_spec = {
    .name = "fluxgate._fluxgate._RegistryEntry",
    .basicsize = sizeof(FgRegistryEntry),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = entry_slots,
};

/* ---- _RegistryBase --------------------------------------------------------*/

int
fg_registry_find(FgRegistryBase *registry, PyObject *key, PyObject **breaker)
{
    *breaker = NULL;
    PyObject *entries = registry->entries;
    if (entries == NULL) {
        return 0;
    }
    PyObject *found;
    int rc = fg_dict_get_ref(entries, key, &found);
    if (rc <= 0) {
        return rc;
    }
    if (Py_IS_TYPE(found, (PyTypeObject *)registry->st->RegistryEntry_Type)) {
        FgRegistryEntry *entry = (FgRegistryEntry *)found;
        PyObject *held = entry->breaker; /* fixed while the entry lives */
        if (held != NULL) {
            /* Written only when it changes: threads looking one key up at
             * once then share its cache line instead of passing it round. */
            if (!fg_atomic_load_int_relaxed(&entry->touched)) {
                fg_atomic_store_int_relaxed(&entry->touched, 1);
            }
            *breaker = Py_NewRef(held);
        }
    }
    Py_DECREF(found);
    return *breaker != NULL;
}

PyObject *
fg_registry_lookup(FgRegistryBase *registry, PyObject *key)
{
    PyObject *breaker;
    int rc = fg_registry_find(registry, key, &breaker);
    if (rc != 0) {
        return rc < 0 ? NULL : breaker;
    }
    /* A new key (or something other than an entry under it): the slow path,
     * which looks again under the registry's lock. */
    return PyObject_CallMethodOneArg((PyObject *)registry, registry->st->s_make,
                                     key);
}

static PyObject *
registry_base_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    FgState *st = fg_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    PyObject *entries = PyDict_New();
    if (entries == NULL) {
        return NULL;
    }
    FgRegistryBase *registry = (FgRegistryBase *)type->tp_alloc(type, 0);
    if (registry == NULL) {
        Py_DECREF(entries);
        return NULL;
    }
    registry->st = st;
    registry->entries = entries;
    return (PyObject *)registry;
}

static int
registry_base_traverse(FgRegistryBase *registry, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(registry));
    Py_VISIT(registry->entries);
    return 0;
}

static int
registry_base_clear(FgRegistryBase *registry)
{
    Py_CLEAR(registry->entries);
    return 0;
}

static void
registry_base_dealloc(FgRegistryBase *registry)
{
    PyTypeObject *type = Py_TYPE(registry);
    PyObject_GC_UnTrack(registry);
    (void)registry_base_clear(registry);
    type->tp_free(registry);
    Py_DECREF(type);
}

static PyObject *
registry_base_subscript(PyObject *self, PyObject *key)
{
    return fg_registry_lookup((FgRegistryBase *)self, key);
}

/* get(key): the key positional or by name, as the Python method took it. */
static PyObject *
registry_base_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs + nkw != 1) {
        PyErr_Format(PyExc_TypeError,
                     "get() takes exactly one argument (key), %zd given",
                     nargs + nkw);
        return NULL;
    }
    if (nkw == 1) {
        int is_key = PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0))
                     && PyUnicode_CompareWithASCIIString(
                            PyTuple_GET_ITEM(kwnames, 0), "key") == 0;
        if (!is_key) {
            PyErr_Format(PyExc_TypeError,
                         "get() got an unexpected keyword argument '%S'",
                         PyTuple_GET_ITEM(kwnames, 0));
            return NULL;
        }
    }
    return fg_registry_lookup((FgRegistryBase *)self, args[0]);
}

static PyMethodDef registry_base_methods[] = {
    {"get", (PyCFunction)(void (*)(void))registry_base_get,
     METH_FASTCALL | METH_KEYWORDS,
     "get($self, key)\n--\n\n"
     "The breaker of key, made with factory(key) on first use."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef registry_base_members[] = {
    {"_entries", Py_T_OBJECT_EX, offsetof(FgRegistryBase, entries), Py_READONLY,
     "The registry's entries: key -> _RegistryEntry."},
    {NULL},
};

PyDoc_STRVAR(registry_base_doc,
"_RegistryBase()\n"
"--\n\n"
"The base of fluxgate.BreakerRegistry: its dict of entries and its lookups\n"
"(registry[key], registry.get(key)), which call self._make(key) for a key it\n"
"does not hold; not part of the public API.");

static PyType_Slot registry_base_slots[] = {
    {Py_tp_doc, (void *)registry_base_doc},
    {Py_tp_new, registry_base_new},
    {Py_tp_dealloc, registry_base_dealloc},
    {Py_tp_traverse, registry_base_traverse},
    {Py_tp_clear, registry_base_clear},
    {Py_tp_methods, registry_base_methods},
    {Py_tp_members, registry_base_members},
    {Py_mp_subscript, registry_base_subscript},
    {0, NULL},
};

static PyType_Spec registry_base_spec = {
    .name = "fluxgate._fluxgate._RegistryBase",
    .basicsize = sizeof(FgRegistryBase),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = registry_base_slots,
};

int
fg_registry_init(PyObject *module, FgState *st)
{
    if (fg_add_type(module, &entry_spec, NULL, &st->RegistryEntry_Type, 1) < 0) {
        return -1;
    }
    return fg_add_type(module, &registry_base_spec, NULL, &st->RegistryBase_Type,
                       1);
}
