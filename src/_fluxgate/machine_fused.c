/* The fused record: fg_machine_record of a success in one step, for the
 * shape most breakers have (the defaults among them): a built-in
 * CountWindow or TimeWindow of this process with no slow threshold, and a
 * tripper tree compiled into a program with a truth table (trippers.h), in
 * CLOSED.
 *
 * The general path (machine.c) reads the thresholds the call reached,
 * decides the window's kind, records through the window's entry point and
 * evaluates through the tripper's: a dozen calls, and as many checks of
 * cases this shape cannot have. fg_machine_record (machine.h) sends a
 * success here instead while the window's class is unchanged; the checks
 * that the rest of the shape still holds come first (a tripper class
 * patched since, a window given a threshold or needing to grow, a duration
 * without a 32-bit code, a TimeWindow record in another second:
 * windows.h's count_add_plain and time_add_plain), then the record and the
 * verdict run inline, under the same critical section as the general
 * path's and to the same effect bit for bit. Any other case goes to the
 * general path, with nothing changed and a TimeWindow's bucket second
 * handed over, so that a replaced clock is read once per call.
 *
 * The one unit beside the windows and the trippers that reads their
 * private headers: the step it fuses is theirs. */
#include "machine.h"

#include "trippers.h"
#include "windows.h"

void
fg_machine_fuse(FgBreaker *cb)
{
    FgState *st = cb->st;
    PyObject *window = cb->window;
    PyObject *type = (PyObject *)Py_TYPE(window);
    cb->fused_window_tag = 0;
    if (cb->shared != NULL || cb->n_slow_thresholds != 0
        || (type != st->CountWindow_Type && type != st->TimeWindow_Type)
        || !is_composite(st, cb->tripper)) {
        return;
    }
    int kind = fg_window_native_kind(st, window);
    const FgTripProgram *program =
        FG_LOAD_PTR_ACQUIRE(((FgComposite *)cb->tripper)->program);
    if (kind != FG_WINDOW_PYTHON && program != NULL && program->has_truth) {
        cb->fused_window_kind = (char)kind;
        cb->fused_window_tag = fg_type_version(Py_TYPE(window));
    }
}

int
fg_machine_record_fused(FgBreaker *cb, uint64_t period, const FgCallTime *time)
{
    Window *w = (Window *)cb->window;
    double timestamp = 0.0;
    if (cb->fused_window_kind == FG_WINDOW_TIMED
        && fg_bucket_second(cb->st, time->end_tick, &timestamp) < 0) {
        return -1;
    }
    const FgTripProgram *program =
        FG_LOAD_PTR_ACQUIRE(((FgComposite *)cb->tripper)->program);
    int counted = w->kind == COUNT_WINDOW;
    /* The program still the tree's meaning (no class patched), and a
     * CountWindow's duration its own code. */
    if (program == NULL || !program_current(program)
        || (counted && (time->ns < 0 || time->ns >= DURATION_ESCAPE))) {
        return fg_machine_record_general(cb, period, 1, time, &timestamp);
    }
    FgMachineState *ms = fg_machine_state(cb);
    int recorded = 0;
    int tripped = 0;
    /* As the general path's record (machine.c): the window's lock alone. */
    fg_wait_until_unlocked(cb->window);
    Py_BEGIN_CRITICAL_SECTION(cb->window);
    if (ms->period != period) {
        recorded = 1; /* discarded: its period is over */
    }
    else if (ms->state == FG_CLOSED
             && (counted ? count_add_plain(w, 1, (uint32_t)time->ns, time->seconds)
                         : time_add_plain(w, 1, time->seconds, timestamp))) {
        recorded = 1;
        if (ms->consecutive_failures != 0) {
            ms->consecutive_failures = 0;
        }
        RunInput r = run_input(program, FG_CLOSED, 0, &w->store.totals);
        tripped = program_truth(program, &r);
    }
    Py_END_CRITICAL_SECTION();
    if (!recorded) {
        return fg_machine_record_general(cb, period, 1, time, &timestamp);
    }
    if (tripped && fg_machine_transition(cb, &period, FG_OPEN, NULL) < 0) {
        return -1;
    }
    return 0;
}
