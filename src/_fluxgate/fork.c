/* Breakers in a forked child: see fork.h for why. */
#include <string.h>

#include "fork.h"

#ifdef Py_GIL_DISABLED
/* The list is circular around st->fork_breakers; a zeroed head (a module
 * state never used yet) is an empty list. */
static void
ensure_head(FgState *st)
{
    if (st->fork_breakers.next == NULL) {
        st->fork_breakers.next = st->fork_breakers.prev = &st->fork_breakers;
    }
}

void
fg_fork_track(FgState *st, FgForkLink *link, PyObject *owner,
              PyObject **companion)
{
    link->owner = owner;
    link->companion = companion;
    PyMutex_Lock(&st->fork_lock);
    ensure_head(st);
    link->prev = st->fork_breakers.prev;
    link->next = &st->fork_breakers;
    link->prev->next = link;
    st->fork_breakers.prev = link;
    PyMutex_Unlock(&st->fork_lock);
}

void
fg_fork_untrack(FgState *st, FgForkLink *link)
{
    /* The link's own fields are read under the lock too: a neighbour's
     * untracking, in another thread, writes them. */
    PyMutex_Lock(&st->fork_lock);
    if (link->next != NULL) { /* NULL: never tracked */
        link->prev->next = link->next;
        link->next->prev = link->prev;
        link->prev = link->next = NULL;
    }
    PyMutex_Unlock(&st->fork_lock);
}

/* Only in a child right after fork(), where this is the only thread. */
static void
forget_holder(PyObject *op)
{
    if (op != NULL) {
        memset(&op->ob_mutex, 0, sizeof(op->ob_mutex));
    }
}
#endif

static PyObject *
release_after_fork(PyObject *module, PyObject *unused)
{
    FgState *st = fg_state(module);
    fg_tsc_after_fork(&st->tsc);
#ifdef Py_GIL_DISABLED
    memset(&st->fork_lock, 0, sizeof(st->fork_lock));
    ensure_head(st);
    for (FgForkLink *link = st->fork_breakers.next; link != &st->fork_breakers;
         link = link->next) {
        forget_holder(link->owner);
        forget_holder(*link->companion);
    }
#endif
    Py_RETURN_NONE;
}

PyMethodDef fg_fork_functions[] = {
    {"_release_after_fork", release_after_fork, METH_NOARGS,
     "_release_after_fork()\n--\n\nIn a child right after fork(): free the "
     "breakers' locks that threads the child does not have were given, and "
     "the clock's anchor a writer left half-written."},
    {NULL, NULL, 0, NULL},
};
