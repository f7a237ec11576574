#include "fluxgate.h"

int
fg_trippers_init(PyObject *module, FgState *st)
{
    return 0;
}
