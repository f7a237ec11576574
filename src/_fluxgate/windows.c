#include "fluxgate.h"

int
fg_windows_init(PyObject *module, FgState *st)
{
    return 0;
}
