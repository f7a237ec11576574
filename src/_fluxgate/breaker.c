#include "fluxgate.h"

int
fg_breaker_init(PyObject *module, FgState *st)
{
    return 0;
}
