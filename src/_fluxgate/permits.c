#include "fluxgate.h"

int
fg_permits_init(PyObject *module, FgState *st)
{
    return 0;
}
