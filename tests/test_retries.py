"""Retries: Always, Never, Cooldown, Backoff and the Retry base (SPEC.md section 6)."""

from __future__ import annotations

import inspect
import math
import random
import time
from collections.abc import Callable
from unittest import mock

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

import fluxgate
import fluxgate.permits
import fluxgate.retries
import fluxgate.trippers
from fluxgate.retries import Always, Backoff, Cooldown, Never, Retry

FROZEN_AT = "2026-01-01 12:00:00"
NAN = math.nan
INF = math.inf


# ---- pure-Python reference of SPEC.md section 6 ---------------------------


def _bare(sig: inspect.Signature) -> str:
    """A signature as text without its annotations (shown separately by the
    conformance tests, as 0.9.4's)."""
    return str(
        sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
    )


def jitter(jitter_ratio: float) -> float:
    return random.uniform(-jitter_ratio, jitter_ratio) if jitter_ratio > 0 else 0.0


def reference_cooldown(
    duration: float, jitter_ratio: float, changed_at: float, reopens: int
) -> bool:
    j = jitter(jitter_ratio)
    return time.time() - changed_at >= duration * (1 + j)


def reference_backoff(
    initial: float,
    multiplier: float,
    max_duration: float,
    jitter_ratio: float,
    changed_at: float,
    reopens: int,
) -> bool:
    wait = backoff_wait(initial, multiplier, max_duration, reopens)
    j = jitter(jitter_ratio)
    return time.time() - changed_at >= wait * (1 + j)


def backoff_wait(initial: float, multiplier: float, max_duration: float, reopens: int) -> float:
    try:
        grown = initial * multiplier**reopens
    except OverflowError:  # saturates instead (SPEC.md section 6)
        grown = INF
    return min(grown, max_duration)


# ---- names and signatures -------------------------------------------------


def test_module_exports() -> None:
    assert fluxgate.retries.__all__ == ["Retry", "Always", "Never", "Cooldown", "Backoff"]


@pytest.mark.parametrize("cls", [Always, Never, Cooldown, Backoff])
def test_public_identity(cls: type) -> None:
    assert cls.__module__ == "fluxgate.retries"
    assert cls.__qualname__ == cls.__name__
    assert getattr(fluxgate.retries, cls.__name__) is cls
    assert issubclass(cls, Retry)


@pytest.mark.parametrize(
    "retry", [Always(), Never(), Cooldown(1.0), Backoff(1.0)], ids=repr
)
def test_builtins_are_retries(retry: Retry) -> None:
    assert isinstance(retry, Retry)


@pytest.mark.parametrize(
    ("cls", "signature"),
    [
        (Always, "()"),
        (Never, "()"),
        (Cooldown, "(duration, jitter_ratio=0.0)"),
        (Backoff, "(initial, multiplier=2.0, max_duration=300.0, jitter_ratio=0.0)"),
    ],
)
def test_class_signatures(cls: type, signature: str) -> None:
    assert _bare(inspect.signature(cls)) == signature


@pytest.mark.parametrize("cls", [Always, Never, Cooldown, Backoff])
def test_call_signature(cls: type) -> None:
    assert _bare(inspect.signature(cls.__call__)) == "(self, /, changed_at, reopens)"


def test_bound_call_signature() -> None:
    assert _bare(inspect.signature(Cooldown(1.0).__call__)) == "(changed_at, reopens)"


@pytest.mark.parametrize(
    ("retry", "text"),
    [
        (Always(), "Always()"),
        (Never(), "Never()"),
        (Cooldown(60), "Cooldown(duration=60.0, jitter_ratio=0.0)"),
        (Cooldown(1.5, 0.25), "Cooldown(duration=1.5, jitter_ratio=0.25)"),
        (
            Backoff(2),
            "Backoff(initial=2.0, multiplier=2.0, max_duration=300.0, jitter_ratio=0.0)",
        ),
        (
            Backoff(1, 3, 10, 0.5),
            "Backoff(initial=1.0, multiplier=3.0, max_duration=10.0, jitter_ratio=0.5)",
        ),
    ],
)
def test_repr(retry: Retry, text: str) -> None:
    assert repr(retry) == text


def test_parameters_are_readonly_floats() -> None:
    cooldown = Cooldown(duration=5, jitter_ratio=0.5)
    assert (cooldown.duration, cooldown.jitter_ratio) == (5.0, 0.5)
    assert type(cooldown.duration) is float
    backoff = Backoff(initial=1, multiplier=3, max_duration=9, jitter_ratio=0.1)
    assert (backoff.initial, backoff.multiplier, backoff.max_duration) == (1.0, 3.0, 9.0)
    assert backoff.jitter_ratio == 0.1
    with pytest.raises(AttributeError):
        cooldown.duration = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        backoff.max_duration = 1.0  # type: ignore[misc]


def test_keyword_construction_matches_positional() -> None:
    assert repr(Backoff(0.5, 4.0, 8.0, 0.2)) == repr(
        Backoff(jitter_ratio=0.2, max_duration=8.0, multiplier=4.0, initial=0.5)
    )


# ---- validation ----------------------------------------------------------

DURATION = "Duration must be greater than zero"
JITTER = "Jitter ratio must be between 0.0 and 1.0"
INITIAL = "Initial duration must be greater than zero"
MULTIPLIER = "Multiplier must be greater than 1.0"
MAX_DURATION = "Max duration must be >= initial duration"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Cooldown(0), DURATION),
        (lambda: Cooldown(-1.0), DURATION),
        (lambda: Cooldown(NAN), DURATION),
        (lambda: Cooldown(-INF), DURATION),
        (lambda: Cooldown(1, -0.1), JITTER),
        (lambda: Cooldown(1, 1.0), JITTER),
        (lambda: Cooldown(1, NAN), JITTER),
        (lambda: Cooldown(0, 1.0), DURATION),
        (lambda: Backoff(0), INITIAL),
        (lambda: Backoff(-1), INITIAL),
        (lambda: Backoff(NAN), INITIAL),
        (lambda: Backoff(1, 1.0), MULTIPLIER),
        (lambda: Backoff(1, 0.5), MULTIPLIER),
        (lambda: Backoff(1, NAN), MULTIPLIER),
        (lambda: Backoff(10, 2.0, 5.0), MAX_DURATION),
        (lambda: Backoff(1, 2.0, NAN), MAX_DURATION),
        (lambda: Backoff(400), MAX_DURATION),
        (lambda: Backoff(INF), MAX_DURATION),
        (lambda: Backoff(1, jitter_ratio=1.0), JITTER),
        (lambda: Backoff(1, jitter_ratio=NAN), JITTER),
        # Checked in SPEC's order: the first failing check is reported.
        (lambda: Backoff(0, 1.0), INITIAL),
        (lambda: Backoff(0, 1.0, -1.0, 2.0), INITIAL),
        (lambda: Backoff(1, 1.0, 0.5, 2.0), MULTIPLIER),
        (lambda: Backoff(1, 2.0, 0.5, 2.0), MAX_DURATION),
    ],
)
def test_invalid_arguments(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: Cooldown("60"), "duration"),
        (lambda: Cooldown(None), "duration"),
        (lambda: Cooldown(1, "0.1"), "jitter_ratio"),
        (lambda: Backoff("1"), "initial"),
        (lambda: Backoff(1, "2"), "multiplier"),
        (lambda: Backoff(1, 2, []), "max_duration"),
        (lambda: Backoff(1, 2, 300, object()), "jitter_ratio"),
    ],
)
def test_non_numbers_name_the_argument(make: Callable[[], object], name: str) -> None:
    with pytest.raises(TypeError, match=f"^{name} "):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Always(1),
        lambda: Never(x=1),
        lambda: Cooldown(),
        lambda: Cooldown(1, 0.1, 3),
        lambda: Cooldown(1, ratio=0.1),
        lambda: Backoff(),
        lambda: Backoff(1, 2, 3, 0.1, 5),
    ],
)
def test_wrong_arity(make: Callable[[], object]) -> None:
    with pytest.raises(TypeError):
        make()


def test_infinity_follows_the_range_checks() -> None:
    assert Cooldown(INF).duration == INF
    assert Backoff(1, INF).multiplier == INF
    assert Backoff(1, max_duration=INF).max_duration == INF
    assert Backoff(INF, max_duration=INF).initial == INF


# ---- Always and Never ----------------------------------------------------


def test_always_and_never() -> None:
    assert Always()(0.0, 0) is True
    assert Always()(changed_at=time.time(), reopens=5) is True
    assert Never()(0.0, 0) is False
    assert Never()(changed_at=0.0, reopens=10**40) is False


@pytest.mark.parametrize("retry", [Always(), Never(), Cooldown(1), Backoff(1)], ids=repr)
def test_call_arguments_are_checked(retry: Retry) -> None:
    with pytest.raises(TypeError):
        retry(0.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        retry(0.0, 1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="^changed_at "):
        retry("now", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^reopens "):
        retry(0.0, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^reopens "):
        retry(0.0, "1")  # type: ignore[arg-type]


# ---- Cooldown -------------------------------------------------------------


def test_cooldown_waits_its_duration() -> None:
    cooldown = Cooldown(60.0)
    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        assert cooldown(changed_at, 0) is False
        frozen.tick(59.5)
        assert cooldown(changed_at, 0) is False
        assert cooldown(changed_at=changed_at, reopens=0) is False
        frozen.tick(0.5)
        assert cooldown(changed_at, 0) is True
        frozen.tick(1000)
        assert cooldown(changed_at, 7) is True


def test_cooldown_ignores_reopens() -> None:
    with freeze_time(FROZEN_AT):
        changed_at = time.time() - 10
        assert Cooldown(10)(changed_at, 0) is True
        assert Cooldown(10)(changed_at, 10**30) is True


def test_infinite_cooldown_never_ends() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        frozen.tick(10**9)
        assert Cooldown(INF)(changed_at, 0) is False


@pytest.mark.parametrize(
    "elapsed, reached",
    [(0.0, False), (9.0, False), (10.0, True), (10.0005, True), (11.0, True), (1e9, True)],
)
def test_cooldown_on_the_real_wall_clock(elapsed: float, reached: bool) -> None:
    # time.time() is read just before the retry reads it: the time passing
    # in between only adds to `elapsed`, and a cooldown read a hair short of
    # its end (an approximate clock) would turn 10.0 and 10.0005 to False.
    assert Cooldown(10.0)(changed_at=time.time() - elapsed, reopens=0) is reached
    assert Backoff(10.0)(changed_at=time.time() - elapsed, reopens=0) is reached


def test_a_breaker_refuses_until_its_cooldown_ends_on_the_real_clock() -> None:
    def boom() -> None:
        raise ValueError

    cb = fluxgate.CircuitBreaker(
        tripper=fluxgate.trippers.FailureStreak(1),
        retry=Cooldown(0.05),
        permit=fluxgate.permits.All(),
    )
    with pytest.raises(ValueError):
        cb.call(boom)
    with pytest.raises(fluxgate.CallNotPermittedError):
        cb.call(boom)
    time.sleep(0.06)
    with pytest.raises(ValueError):
        cb.call(boom)  # admitted in HALF_OPEN, and trips again
    assert cb.info().state == "open"


def test_no_jitter_draw_without_jitter() -> None:
    with mock.patch("random.uniform", wraps=random.uniform) as uniform:
        Cooldown(1.0)(0.0, 0)
        Backoff(1.0)(0.0, 3)
        Cooldown(1.0, 0.0)(time.time(), 0)
    assert uniform.call_count == 0


def test_one_jitter_draw_per_evaluation() -> None:
    with mock.patch("random.uniform", wraps=random.uniform) as uniform:
        retry = Cooldown(1.0, 0.25)
        for _ in range(3):
            retry(0.0, 0)
        Backoff(1.0, jitter_ratio=0.5)(0.0, 2)
    assert uniform.call_args_list == [mock.call(-0.25, 0.25)] * 3 + [
        mock.call(-0.5, 0.5)
    ]


def test_jitter_scales_the_wait() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        frozen.tick(14)
        with mock.patch("random.uniform", return_value=0.5):
            assert Cooldown(10, 0.9)(changed_at, 0) is False
            frozen.tick(1)
            assert Cooldown(10, 0.9)(changed_at, 0) is True
        with mock.patch("random.uniform", return_value=-0.5):
            assert Cooldown(40, 0.9)(changed_at, 0) is False
            assert Cooldown(30, 0.9)(changed_at, 0) is True


def test_a_failing_draw_propagates() -> None:
    with mock.patch("random.uniform", side_effect=RuntimeError("no entropy")):
        with pytest.raises(RuntimeError, match="no entropy"):
            Cooldown(1.0, 0.5)(0.0, 0)
    assert Cooldown(1.0, 0.5)(0.0, 0) is True


def test_a_failing_clock_propagates() -> None:
    with mock.patch("time.time", side_effect=OSError("clock gone")):
        with pytest.raises(OSError, match="clock gone"):
            Cooldown(1.0)(0.0, 0)


# ---- Backoff --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reopens", "wait"), [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (50, 60.0)]
)
def test_backoff_grows_with_reopens(reopens: int, wait: float) -> None:
    backoff = Backoff(1.0, 2.0, 60.0)
    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        frozen.tick(wait - 0.5)
        assert backoff(changed_at, reopens) is False
        frozen.tick(0.5)
        assert backoff(changed_at, reopens=reopens) is True


@pytest.mark.parametrize("reopens", [10**6, 10**30, 10**400, 2**63, 2**64])
def test_backoff_saturates_instead_of_overflowing(reopens: int) -> None:
    backoff = Backoff(1.0, 2.0, 300.0)
    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        frozen.tick(299)
        assert backoff(changed_at, reopens) is False
        frozen.tick(1)
        assert backoff(changed_at, reopens) is True


@pytest.mark.parametrize(("reopens", "wait"), [(-1, 2.0), (-10**400, 0.0)])
def test_backoff_negative_reopens_computes_as_python(reopens: int, wait: float) -> None:
    backoff = Backoff(4.0, 2.0)
    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        assert backoff(changed_at, reopens) is (wait == 0.0)
        frozen.tick(wait)
        assert backoff(changed_at, reopens) is True


def test_backoff_accepts_integer_like_reopens() -> None:
    class Count:
        def __index__(self) -> int:
            return 3

    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        frozen.tick(8)
        assert Backoff(1.0)(changed_at, Count()) is True  # type: ignore[arg-type]
        assert Backoff(1.1)(changed_at, Count()) is False  # type: ignore[arg-type]


# ---- agreement with the reference, bit for bit ----------------------------

NOW = 1_767_268_800.0
offsets = st.floats(-1e4, 1e4, allow_nan=False) | st.sampled_from([0.0, 1.0, 2.0, 60.0])
jitters = st.sampled_from([0.0, 0.1, 0.5]) | st.floats(0.0, 1.0, exclude_max=True)


@given(
    duration=st.floats(1e-3, 1e4) | st.sampled_from([1.0, 60.0, 0.1, INF]),
    jitter_ratio=jitters,
    elapsed=offsets,
    seed=st.integers(0, 2**32),
)
def test_cooldown_matches_reference(
    duration: float, jitter_ratio: float, elapsed: float, seed: int
) -> None:
    changed_at = NOW - elapsed
    retry = Cooldown(duration, jitter_ratio)
    with mock.patch("time.time", return_value=NOW):
        random.seed(seed)
        expected = reference_cooldown(duration, jitter_ratio, changed_at, 0)
        expected_next = random.random()
        random.seed(seed)
        assert retry(changed_at, 0) is expected
        assert random.random() == expected_next
        # At the exact boundary of an unjittered wait.
        boundary = NOW - duration
        random.seed(seed)
        expected = reference_cooldown(duration, jitter_ratio, boundary, 0)
        random.seed(seed)
        assert retry(boundary, 0) is expected


@given(
    initial=st.floats(1e-3, 100.0) | st.sampled_from([0.1, 1.0, 3.0]),
    multiplier=st.floats(1.0, 10.0, exclude_min=True) | st.sampled_from([1.5, 2.0, 3.0]),
    headroom=st.floats(0.0, 1e4) | st.sampled_from([0.0, INF]),
    jitter_ratio=jitters,
    reopens=st.integers(-50, 2000) | st.sampled_from([10**6, 10**30]),
    elapsed=offsets | st.floats(0.0, 1e5),
    seed=st.integers(0, 2**32),
)
def test_backoff_matches_reference(
    initial: float,
    multiplier: float,
    headroom: float,
    jitter_ratio: float,
    reopens: int,
    elapsed: float,
    seed: int,
) -> None:
    max_duration = initial + headroom
    retry = Backoff(initial, multiplier, max_duration, jitter_ratio)
    with mock.patch("time.time", return_value=NOW):
        for changed_at in (NOW - elapsed, NOW - initial * multiplier**min(reopens, 30)):
            random.seed(seed)
            expected = reference_backoff(
                initial, multiplier, max_duration, jitter_ratio, changed_at, reopens
            )
            expected_next = random.random()
            random.seed(seed)
            assert retry(changed_at, reopens) is expected
            assert random.random() == expected_next


@settings(max_examples=300)
@given(
    initial=st.floats(1e-3, 100.0) | st.sampled_from([0.1, 1.0, 3.0]),
    multiplier=st.floats(1.0, 10.0, exclude_min=True) | st.sampled_from([1.1, 2.0, 3.0]),
    headroom=st.floats(0.0, 1e6) | st.sampled_from([0.0, INF]),
    reopens=st.integers(-50, 400),
    j=st.floats(-0.9, 0.9),
)
def test_backoff_wait_is_exact(
    initial: float, multiplier: float, headroom: float, reopens: int, j: float
) -> None:
    """With changed_at at 0 the elapsed time is the clock's reading: the
    retry must say yes exactly at the reference wait and no one float
    before, which pins its wait to the reference's bit for bit."""
    max_duration = initial + headroom
    wait = backoff_wait(initial, multiplier, max_duration, reopens) * (1 + j)
    retry = Backoff(initial, multiplier, max_duration, jitter_ratio=0.95)
    with mock.patch("random.uniform", return_value=j):
        with mock.patch("time.time", return_value=wait):
            assert retry(0.0, reopens) is True
        with mock.patch("time.time", return_value=math.nextafter(wait, -INF)):
            assert retry(0.0, reopens) is False


# ---- subclasses ------------------------------------------------------------


def test_retry_is_abstract() -> None:
    with pytest.raises(TypeError):
        Retry()  # type: ignore[abstract]

    class Incomplete(Retry):
        pass

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]


def test_user_retry() -> None:
    class FewReopens(Retry):
        def __call__(self, changed_at: float, reopens: int) -> bool:
            return reopens < 3

    retry = FewReopens()
    assert isinstance(retry, Retry)
    assert retry(0.0, 2) is True
    assert retry(changed_at=0.0, reopens=3) is False


def test_subclass_overriding_call() -> None:
    class Logged(Cooldown):
        def __init__(self, duration: float) -> None:
            super().__init__(duration)
            self.seen: list[int] = []

        def __call__(self, changed_at: float, reopens: int) -> bool:
            self.seen.append(reopens)
            return super().__call__(changed_at, reopens)

    retry = Logged(10)
    assert isinstance(retry, Retry) and isinstance(retry, Cooldown)
    with freeze_time(FROZEN_AT):
        assert retry(time.time() - 10, 4) is True
        assert retry(time.time() - 9, 5) is False
    assert retry.seen == [4, 5]
    assert repr(retry) == f"{Logged.__qualname__}(duration=10.0, jitter_ratio=0.0)"


def test_subclass_with_its_own_constructor() -> None:
    class Minutes(Backoff):
        def __init__(self, minutes: float) -> None:
            super().__init__(minutes * 60, max_duration=3600)

    retry = Minutes(2)
    assert (retry.initial, retry.max_duration) == (120.0, 3600.0)
    with freeze_time(FROZEN_AT):
        assert retry(time.time() - 240, 1) is True
        assert retry(time.time() - 239, 1) is False
    with pytest.raises(ValueError, match="^Initial duration must be greater than zero$"):
        Minutes(0)


def test_subclass_keeps_builtin_behaviour() -> None:
    class Plain(Never):
        pass

    assert Plain()(0.0, 0) is False
    assert isinstance(Plain(), Retry)


def test_unconstructed_instance_says_it_is_not_initialised() -> None:
    for cls in (Cooldown, Backoff):
        retry = cls.__new__(cls)
        assert repr(retry) == f"<uninitialised {cls.__name__} object>"
        with pytest.raises(TypeError, match=f"{cls.__name__} object is not initialised"):
            retry(0.0, 0)
