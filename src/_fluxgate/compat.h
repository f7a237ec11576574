/* Version and platform differences, kept in one place.
 *
 * The rest of the extension is written against the CPython 3.13 C API and
 * this header supplies what older versions (3.10-3.12) lack, plus the few
 * spellings that differ between GIL and free-threaded builds. */
#ifndef FLUXGATE_COMPAT_H
#define FLUXGATE_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Locking (DESIGN.md D7) ------------------------------------------------
 * Critical sections exist from 3.13; on a GIL build they cost nothing and the
 * GIL already makes C code that calls no Python atomic. Before 3.13 there is
 * no free-threaded build, so the macros can be empty. */
#if PY_VERSION_HEX < 0x030D0000
#  define Py_BEGIN_CRITICAL_SECTION(op) {
#  define Py_END_CRITICAL_SECTION() }
#  define Py_BEGIN_CRITICAL_SECTION2(a, b) {
#  define Py_END_CRITICAL_SECTION2() }
#endif

/* Before taking an object's critical section on the hot path, wait briefly
 * while its lock is visibly held. CPython 3.13's PyMutex never looks at the
 * lock again while it spins (gh-135871, fixed after 3.14): a thread that
 * finds it held goes through 40 sched_yield() calls and then parks, tens
 * of microseconds, for a lock held a hundred nanoseconds. Reading the lock
 * byte (private to CPython, hence only here) lets a waiter take the fast
 * path once the holder lets go. Free-threaded builds only. */
#ifdef Py_GIL_DISABLED
#  if defined(_MSC_VER)
#    include <intrin.h>
#    define fg_cpu_relax() YieldProcessor()
#  elif defined(__x86_64__) || defined(__i386__)
#    define fg_cpu_relax() __builtin_ia32_pause()
#  elif defined(__aarch64__) || defined(__arm__)
#    define fg_cpu_relax() __asm__ __volatile__("yield")
#  else
#    define fg_cpu_relax() ((void)0)
#  endif
#  define FG_LOCK_SPINS 2000
static inline void
fg_wait_until_unlocked(PyObject *op)
{
    for (int i = 0; i < FG_LOCK_SPINS
                    && (_Py_atomic_load_uint8_relaxed(&op->ob_mutex._bits) & 1);
         i++) {
        fg_cpu_relax();
    }
}
#else
#  define fg_wait_until_unlocked(op) ((void)0)
#endif

/* A pointer set once under a lock and read without one. */
#ifdef Py_GIL_DISABLED
#  define FG_LOAD_PTR_ACQUIRE(field) _Py_atomic_load_ptr_acquire(&(field))
#  define FG_STORE_PTR_RELEASE(field, value)                                  \
    _Py_atomic_store_ptr_release(&(field), (value))
#else
#  define FG_LOAD_PTR_ACQUIRE(field) (field)
#  define FG_STORE_PTR_RELEASE(field, value) ((void)((field) = (value)))
#endif

/* ---- Clocks ----------------------------------------------------------------
 * Raw nanosecond readings of the clocks behind time.perf_counter() and
 * time.time(); they never raise. On Linux CPython reads them with
 * clock_gettime(CLOCK_MONOTONIC) and clock_gettime(CLOCK_REALTIME) and
 * counts tv_sec * 10**9 + tv_nsec; reading them the same way here gives the
 * same nanoseconds without CPython's conversion and overflow checks around
 * the call (a protected call reads two or three). Elsewhere CPython's own
 * functions are called. */
#ifdef __linux__
#  include <time.h>
#endif
#if defined(__linux__) && defined(CLOCK_MONOTONIC) && defined(CLOCK_REALTIME)
static inline int64_t
fg_clock_gettime_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) {
        return 0; /* a clock Linux always has: cannot happen */
    }
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}
static inline int64_t
fg_raw_perf_counter_ns(void)
{
    return fg_clock_gettime_ns(CLOCK_MONOTONIC);
}
static inline int64_t
fg_raw_wall_ns(void)
{
    return fg_clock_gettime_ns(CLOCK_REALTIME);
}
#elif PY_VERSION_HEX >= 0x030D0000
static inline int64_t
fg_raw_perf_counter_ns(void)
{
    PyTime_t t = 0;
    (void)PyTime_PerfCounterRaw(&t);
    return (int64_t)t;
}
static inline int64_t
fg_raw_wall_ns(void)
{
    PyTime_t t = 0;
    (void)PyTime_TimeRaw(&t);
    return (int64_t)t;
}
#else
static inline int64_t
fg_raw_perf_counter_ns(void)
{
    return (int64_t)_PyTime_GetPerfCounter();
}
static inline int64_t
fg_raw_wall_ns(void)
{
    return (int64_t)_PyTime_GetSystemClock();
}
#endif

/* ---- Processes -------------------------------------------------------------*/
#ifdef _WIN32
#  include <process.h>
static inline long
fg_getpid(void)
{
    return (long)_getpid();
}
#else
#  include <unistd.h>
static inline long
fg_getpid(void)
{
    return (long)getpid();
}
#endif

/* ---- Exceptions ------------------------------------------------------------
 * The 3.12 single-object API for the current exception. */
#if PY_VERSION_HEX < 0x030C0000
static inline PyObject *
fg_PyErr_GetRaisedException(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
        Py_DECREF(tb);
    }
    Py_DECREF(type);
    return value;
}
static inline void
fg_PyErr_SetRaisedException(PyObject *exc)
{
    if (exc == NULL) {
        return;
    }
    PyObject *type = Py_NewRef((PyObject *)Py_TYPE(exc));
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(type, exc, tb);
}
#  define PyErr_GetRaisedException fg_PyErr_GetRaisedException
#  define PyErr_SetRaisedException fg_PyErr_SetRaisedException
#endif

/* ---- Dictionaries ----------------------------------------------------------
 * A strong reference to d[key], or NULL with no exception when absent. */
static inline int
fg_dict_get_ref(PyObject *d, PyObject *key, PyObject **result)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_GetItemRef(d, key, result);
#else
    *result = Py_XNewRef(PyDict_GetItemWithError(d, key));
    if (*result != NULL) {
        return 1;
    }
    return PyErr_Occurred() ? -1 : 0;
#endif
}

/* The same for a key given as a C string. */
#if PY_VERSION_HEX < 0x030D0000
static inline int
fg_PyDict_GetItemStringRef(PyObject *d, const char *key, PyObject **result)
{
    PyObject *key_obj = PyUnicode_FromString(key);
    if (key_obj == NULL) {
        *result = NULL;
        return -1;
    }
    int rc = fg_dict_get_ref(d, key_obj, result);
    Py_DECREF(key_obj);
    return rc;
}
#  define PyDict_GetItemStringRef fg_PyDict_GetItemStringRef
#endif

/* Dict watchers (PyDict_AddWatcher) exist from 3.12, which deprecated the
 * version tag (PEP 509) older versions offer instead: a number that changes
 * whenever the dict changes. */
#if PY_VERSION_HEX >= 0x030C0000
#  define FG_DICT_WATCHERS 1
#else
#  define FG_DICT_WATCHERS 0
static inline uint64_t
fg_dict_version(PyObject *d)
{
    return ((PyDictObject *)d)->ma_version_tag;
}
#endif

/* ---- Atomics ---------------------------------------------------------------
 * Relaxed loads and stores of an int that threads share: atomic on 3.13+
 * (free-threaded builds need it), plain before (a GIL always serialises). */
#if PY_VERSION_HEX >= 0x030D0000
#  define fg_atomic_load_int_relaxed(p) _Py_atomic_load_int_relaxed(p)
#  define fg_atomic_store_int_relaxed(p, v) _Py_atomic_store_int_relaxed((p), (v))
#else
#  define fg_atomic_load_int_relaxed(p) (*(p))
#  define fg_atomic_store_int_relaxed(p, v) ((void)(*(p) = (v)))
#endif

/* ---- Attributes ------------------------------------------------------------*/
#if PY_VERSION_HEX < 0x030D0000
static inline int
fg_PyObject_GetOptionalAttr(PyObject *obj, PyObject *name, PyObject **result)
{
    return _PyObject_LookupAttr(obj, name, result);
}
#  define PyObject_GetOptionalAttr fg_PyObject_GetOptionalAttr
static inline int
fg_PyObject_GetOptionalAttrString(PyObject *obj, const char *name,
                                  PyObject **result)
{
    PyObject *key = PyUnicode_FromString(name);
    if (key == NULL) {
        *result = NULL;
        return -1;
    }
    int rc = _PyObject_LookupAttr(obj, key, result);
    Py_DECREF(key);
    return rc;
}
#  define PyObject_GetOptionalAttrString fg_PyObject_GetOptionalAttrString
#endif

/* Member definitions: the Py_T_* spellings are public from 3.12. */
#if PY_VERSION_HEX < 0x030C0000
#  include <structmember.h>
#  define Py_T_PYSSIZET T_PYSSIZET
#  define Py_T_OBJECT_EX T_OBJECT_EX
#  define Py_T_DOUBLE T_DOUBLE
#  define Py_T_LONGLONG T_LONGLONG
#  ifndef Py_READONLY
#    define Py_READONLY READONLY
#  endif
#endif

/* ---- Types -----------------------------------------------------------------*/
#if PY_VERSION_HEX < 0x030B0000
/* 3.10 lacks PyType_GetModuleByDef: walk the MRO for the heap type that was
 * created from our module, as 3.11 does. */
static inline PyObject *
fg_PyType_GetModuleByDef(PyTypeObject *type, PyModuleDef *def)
{
    PyObject *mro = type->tp_mro;
    Py_ssize_t n = PyTuple_GET_SIZE(mro);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(base->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            continue;
        }
        PyObject *module = ((PyHeapTypeObject *)base)->ht_module;
        if (module != NULL && PyModule_GetDef(module) == def) {
            return module;
        }
    }
    PyErr_Format(PyExc_TypeError,
                 "PyType_GetModuleByDef: No superclass of '%s' has the given module",
                 type->tp_name);
    return NULL;
}
#  define PyType_GetModuleByDef fg_PyType_GetModuleByDef
#endif

/* The attribute `name` as the type's MRO gives it (a borrowed reference, or
 * NULL with no exception when there is none): what a method call on an
 * instance finds, short of the instance's own dict. Private API, kept here. */
static inline PyObject *
fg_type_lookup(PyTypeObject *type, PyObject *name)
{
    return _PyType_Lookup(type, name);
}

/* The type's version tag: a number, unique in the interpreter, that CPython
 * replaces whenever the type or one of its bases changes, or 0 when the type
 * has none at the moment (not yet assigned, invalidated, or out of tags).
 * 3.10 keeps a stale tag and only the flag says it is invalid; from 3.11 an
 * invalidated tag is 0. */
static inline unsigned int
fg_type_version(PyTypeObject *type)
{
#if PY_VERSION_HEX < 0x030B0000
    if (!(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        return 0;
    }
    return type->tp_version_tag;
#elif defined(Py_GIL_DISABLED)
    return __atomic_load_n(&type->tp_version_tag, __ATOMIC_ACQUIRE);
#else
    return type->tp_version_tag;
#endif
}

/* A word that threads read and write without a lock: relaxed atomics on a
 * free-threaded build, plain accesses under the GIL. */
static inline uint64_t
fg_load_u64(const uint64_t *p)
{
#ifdef Py_GIL_DISABLED
    return __atomic_load_n(p, __ATOMIC_RELAXED);
#else
    return *p;
#endif
}

static inline void
fg_store_u64(uint64_t *p, uint64_t value)
{
#ifdef Py_GIL_DISABLED
    __atomic_store_n(p, value, __ATOMIC_RELAXED);
#else
    *p = value;
#endif
}

/* Module slots that only newer versions know about. */
#if PY_VERSION_HEX >= 0x030C0000
#  define FG_MODULE_SLOT_INTERPRETERS \
       {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#else
#  define FG_MODULE_SLOT_INTERPRETERS
#endif
#if PY_VERSION_HEX >= 0x030D0000
#  define FG_MODULE_SLOT_GIL {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#else
#  define FG_MODULE_SLOT_GIL
#endif

/* Vectorcall on heap types: the flag is public from 3.12 and the slot
 * (Py_tp_vectorcall) only applies to calls of the type object itself. */
#ifndef Py_TPFLAGS_HAVE_VECTORCALL
#  define Py_TPFLAGS_HAVE_VECTORCALL _Py_TPFLAGS_HAVE_VECTORCALL
#endif

#endif /* FLUXGATE_COMPAT_H */
