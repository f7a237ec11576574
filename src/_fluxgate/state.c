/* Module state access and type registration (state.h): the services every
 * unit needs from the module, kept below all of them so that no unit calls
 * back into module.c. */
#include "state.h"

#include <string.h>

FgState *
fg_state_from_type(PyTypeObject *type)
{
    PyObject *module = PyType_GetModuleByDef(type, &fluxgate_module_def);
    if (module == NULL) {
        return NULL;
    }
    return fg_state(module);
}

FgState *
fg_state_if_ours(PyTypeObject *type)
{
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        return NULL;
    }
    PyObject *pending = PyErr_GetRaisedException();
    PyObject *module = PyType_GetModuleByDef(type, &fluxgate_module_def);
    PyErr_Clear();
    PyErr_SetRaisedException(pending);
    return module == NULL ? NULL : fg_state(module);
}

int
fg_add_type(PyObject *module, PyType_Spec *spec, PyObject *base, PyObject **slot,
            int public)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, base);
    if (type == NULL) {
        return -1;
    }
    if (public) {
        const char *dot = strrchr(spec->name, '.');
        const char *short_name = dot ? dot + 1 : spec->name;
        if (PyModule_AddObjectRef(module, short_name, type) < 0) {
            Py_DECREF(type);
            return -1;
        }
    }
    *slot = type;
    return 0;
}
