"""Forked children and the shared segment: a child of a process holding a
shared breaker keeps sharing with its parent; an unnamed HostMemory is
shared with the children forked after its first breaker was built (and only
those); an unnamed one cannot be pickled, a named one can."""

from __future__ import annotations

import copy
import os
import pickle

import pytest

from fluxgate import CallNotPermittedError, CircuitBreaker
from fluxgate.retries import Never
from fluxgate.shared import HostMemory
from fluxgate.trippers import FailureStreak

from .workers import ON_WINDOWS, SKIP_REASON, context, run_in_fork, start_process, succeed

pytestmark = [
    pytest.mark.skipif(ON_WINDOWS, reason=SKIP_REASON),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
]


def memories(tmp_path):  # type: ignore[no-untyped-def]
    return {"named": HostMemory("svc", directory=tmp_path), "unnamed": HostMemory()}


@pytest.mark.parametrize("which", ["named", "unnamed"])
def test_a_forked_child_keeps_sharing_with_its_parent(tmp_path, which) -> None:
    memory = memories(tmp_path)[which]
    breaker = CircuitBreaker(tripper=FailureStreak(2), retry=Never(), shared=memory)
    for _ in range(3):
        breaker.call(succeed)

    def child() -> tuple[int, int]:
        seen = breaker.info().metrics.total_count
        for _ in range(5):
            breaker.call(succeed)
        # A breaker the child builds on the same memory shares too.
        other = CircuitBreaker(tripper=FailureStreak(2), retry=Never(), shared=memory)
        other.call(succeed)
        return seen, other.info().metrics.total_count

    assert run_in_fork(child) == (3, 9)
    assert breaker.info().metrics.total_count == 9

    def trip() -> str:
        for _ in range(2):
            with pytest.raises(ZeroDivisionError):
                breaker.call(lambda: 1 / 0)
        return breaker.info().state

    assert run_in_fork(trip) == "open"
    assert breaker.info().state == "open"
    with pytest.raises(CallNotPermittedError):
        breaker.call(succeed)

    def reset() -> str:
        breaker.reset()
        return breaker.info().state

    assert run_in_fork(reset) == "closed"
    assert breaker.call(succeed) == "ok"
    assert breaker.info().metrics.total_count == 1


def test_a_grandchild_shares_too(tmp_path) -> None:
    breaker = CircuitBreaker(shared=HostMemory())

    def child() -> int:
        breaker.call(succeed)
        return run_in_fork(lambda: breaker.call(succeed) and breaker.info().metrics.total_count)

    assert run_in_fork(child) == 2
    assert breaker.info().metrics.total_count == 2


def test_breakers_on_one_unnamed_memory_share_in_one_process() -> None:
    memory = HostMemory()
    first, second = CircuitBreaker(shared=memory), CircuitBreaker(shared=memory)
    first.call(succeed)
    assert second.info().metrics.total_count == 1
    first.force_open()
    assert second.info().state == "forced_open"


def test_two_unnamed_memories_are_separate() -> None:
    first, second = CircuitBreaker(shared=HostMemory()), CircuitBreaker(shared=HostMemory())
    first.call(succeed)
    assert second.info().metrics.total_count == 0


def test_an_unnamed_memory_first_used_after_the_fork_is_not_shared() -> None:
    memory = HostMemory()

    def child() -> int:
        breaker = CircuitBreaker(shared=memory)
        breaker.call(succeed)
        return breaker.info().metrics.total_count

    assert run_in_fork(child) == 1
    assert CircuitBreaker(shared=memory).info().metrics.total_count == 0


def test_multiprocessing_fork_children_share_an_unnamed_memory() -> None:
    breaker = CircuitBreaker(shared=HostMemory())
    ctx = context("fork")
    process = ctx.Process(target=breaker.call, args=(succeed,))
    start_process(process)
    process.join(60)
    assert process.exitcode == 0
    assert breaker.info().metrics.total_count == 1


# ---- pickling ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_an_unnamed_memory_cannot_be_pickled(protocol) -> None:
    with pytest.raises(TypeError, match="name"):
        pickle.dumps(HostMemory(), protocol)


def test_an_unnamed_memory_cannot_go_to_a_spawned_process() -> None:
    ctx = context("spawn")
    process = ctx.Process(target=print, args=(HostMemory(),))
    with pytest.raises(TypeError, match="name"):
        process.start()
    if process.pid is not None:  # started after all: do not leave it behind
        process.join(60)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_named_memory_pickles_with_its_name_and_directory(tmp_path, protocol) -> None:
    memory = HostMemory("svc", directory=tmp_path)
    clone = pickle.loads(pickle.dumps(memory, protocol))
    assert type(clone) is HostMemory
    assert (clone.name, clone.directory, clone.path) == (memory.name, memory.directory, memory.path)
    first, second = CircuitBreaker(shared=memory), CircuitBreaker(shared=clone)
    first.call(succeed)
    assert second.info().metrics.total_count == 1


def test_a_named_memory_copies(tmp_path) -> None:
    memory = HostMemory("svc", directory=tmp_path)
    for clone in (copy.copy(memory), copy.deepcopy(memory)):
        assert (clone.name, clone.directory) == ("svc", str(tmp_path))
