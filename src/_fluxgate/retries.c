#include "fluxgate.h"

int
fg_retries_init(PyObject *module, FgState *st)
{
    return 0;
}
