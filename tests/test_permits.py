"""Permits: All, Random, RampUp and the Permit base (SPEC.md section 7)."""

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

import fluxgate.permits
from fluxgate.permits import All, Permit, Random, RampUp

FROZEN_AT = "2026-01-01 12:00:00"
NAN = math.nan
INF = math.inf


# ---- pure-Python reference of SPEC.md section 7 ---------------------------


def _bare(sig: inspect.Signature) -> str:
    """A signature as text without its annotations (shown separately by the
    conformance tests, as 0.9.4's)."""
    return str(
        sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
    )


def reference_random(ratio: float, changed_at: float) -> bool:
    return random.random() < ratio


def reference_ramp_up(
    initial: float, final: float, duration: float, changed_at: float
) -> bool:
    elapsed = time.time() - changed_at
    if elapsed < 0:
        share = initial
    elif elapsed >= duration:
        share = final
    else:
        share = initial + (final - initial) * elapsed / duration
    return random.random() < share


# ---- names and signatures -------------------------------------------------


def test_module_exports() -> None:
    assert fluxgate.permits.__all__ == ["Permit", "All", "Random", "RampUp"]


@pytest.mark.parametrize("cls", [All, Random, RampUp])
def test_public_identity(cls: type) -> None:
    assert cls.__module__ == "fluxgate.permits"
    assert cls.__qualname__ == cls.__name__
    assert getattr(fluxgate.permits, cls.__name__) is cls
    assert issubclass(cls, Permit)


def test_two_different_classes_named_all() -> None:
    tracker_all = pytest.importorskip("fluxgate.trackers").All
    assert tracker_all is not All
    assert (tracker_all.__module__, tracker_all.__qualname__) == ("fluxgate.trackers", "All")
    assert (All.__module__, All.__qualname__) == ("fluxgate.permits", "All")
    assert not isinstance(All(), tracker_all)


@pytest.mark.parametrize("permit", [All(), Random(0.5), RampUp(0.1, 1.0, 60.0)], ids=repr)
def test_builtins_are_permits(permit: Permit) -> None:
    assert isinstance(permit, Permit)


@pytest.mark.parametrize(
    ("cls", "signature"),
    [(All, "()"), (Random, "(ratio)"), (RampUp, "(initial, final, duration)")],
)
def test_class_signatures(cls: type, signature: str) -> None:
    assert _bare(inspect.signature(cls)) == signature


@pytest.mark.parametrize("cls", [All, Random, RampUp])
def test_call_signature(cls: type) -> None:
    assert str(inspect.signature(cls.__call__)) == "(self, /, changed_at)"


def test_bound_call_signature() -> None:
    assert str(inspect.signature(Random(0.5).__call__)) == "(changed_at)"


@pytest.mark.parametrize(
    ("permit", "text"),
    [
        (All(), "All()"),
        (Random(1), "Random(ratio=1.0)"),
        (Random(0.25), "Random(ratio=0.25)"),
        (RampUp(0.1, 1, 60), "RampUp(initial=0.1, final=1.0, duration=60.0)"),
    ],
)
def test_repr(permit: Permit, text: str) -> None:
    assert repr(permit) == text


def test_parameters_are_readonly_floats() -> None:
    ramp = RampUp(initial=0.5, final=1, duration=30)
    assert (ramp.initial, ramp.final, ramp.duration) == (0.5, 1.0, 30.0)
    assert type(ramp.final) is float
    assert Random(ratio=0).ratio == 0.0
    with pytest.raises(AttributeError):
        ramp.duration = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Random(0.5).ratio = 1.0  # type: ignore[misc]


# ---- validation ----------------------------------------------------------

RATIO = "Ratio must be between 0.0 and 1.0"
SHARES = "Initial must be > 0.0 and <= final, and final must be <= 1.0"
DURATION = "Duration must be greater than zero"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Random(-0.1), RATIO),
        (lambda: Random(1.01), RATIO),
        (lambda: Random(NAN), RATIO),
        (lambda: Random(INF), RATIO),
        (lambda: RampUp(0, 1, 1), SHARES),
        (lambda: RampUp(0.5, 0.4, 1), SHARES),
        (lambda: RampUp(0.5, 1.5, 1), SHARES),
        (lambda: RampUp(NAN, 1, 1), SHARES),
        (lambda: RampUp(0.5, NAN, 1), SHARES),
        (lambda: RampUp(0.5, 1, 0), DURATION),
        (lambda: RampUp(0.5, 1, -1), DURATION),
        (lambda: RampUp(0.5, 1, NAN), DURATION),
        # Checked in SPEC's order: the first failing check is reported.
        (lambda: RampUp(0, 1, 0), SHARES),
        (lambda: RampUp(0.5, 2, "soon"), SHARES),
    ],
)
def test_invalid_arguments(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: Random("0.5"), "ratio"),
        (lambda: Random(None), "ratio"),
        (lambda: RampUp("0.1", 1, 1), "initial"),
        (lambda: RampUp(0.1, [], 1), "final"),
        (lambda: RampUp(0.1, 1, "60"), "duration"),
    ],
)
def test_non_numbers_name_the_argument(make: Callable[[], object], name: str) -> None:
    with pytest.raises(TypeError, match=f"^{name} "):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: All(1),
        lambda: Random(),
        lambda: Random(0.5, 0.5),
        lambda: Random(share=0.5),
        lambda: RampUp(0.1, 1),
        lambda: RampUp(0.1, 1, 60, 2),
    ],
)
def test_wrong_arity(make: Callable[[], object]) -> None:
    with pytest.raises(TypeError):
        make()


def test_bounds_are_inclusive() -> None:
    assert Random(0).ratio == 0.0
    assert Random(1).ratio == 1.0
    assert RampUp(1, 1, 1).initial == 1.0
    assert RampUp(0.2, 0.2, INF).duration == INF


@pytest.mark.parametrize("permit", [All(), Random(0.5), RampUp(0.5, 1, 1)], ids=repr)
def test_call_arguments_are_checked(permit: Permit) -> None:
    with pytest.raises(TypeError):
        permit()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        permit(0.0, 1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="^changed_at "):
        permit("now")  # type: ignore[arg-type]


# ---- All -------------------------------------------------------------------


def test_all_admits_everything_without_drawing() -> None:
    with mock.patch("random.random", wraps=random.random) as draw:
        assert All()(0.0) is True
        assert All()(changed_at=time.time()) is True
    assert draw.call_count == 0


# ---- Random ---------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.0, 0.3, 1.0])
def test_random_draws_exactly_once(ratio: float) -> None:
    permit = Random(ratio)
    with mock.patch("random.random", wraps=random.random) as draw:
        for _ in range(5):
            permit(0.0)
    assert draw.call_count == 5


@pytest.mark.parametrize(
    ("ratio", "draw", "admitted"),
    [(0.0, 0.0, False), (1.0, 0.999, True), (0.5, 0.5, False), (0.5, 0.49, True)],
)
def test_random_admits_below_ratio(ratio: float, draw: float, admitted: bool) -> None:
    with mock.patch("random.random", return_value=draw):
        assert Random(ratio)(changed_at=0.0) is admitted


@given(
    ratio=st.floats(0.0, 1.0) | st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 2**32),
)
def test_random_matches_reference(ratio: float, seed: int) -> None:
    permit = Random(ratio)
    random.seed(seed)
    expected = [reference_random(ratio, 0.0) for _ in range(5)]
    random.seed(seed)
    assert [permit(0.0) for _ in range(5)] == expected


def test_random_seed_reproduces_a_run() -> None:
    permit = Random(0.5)
    random.seed(42)
    first = [permit(0.0) for _ in range(50)]
    random.seed(42)
    assert [permit(0.0) for _ in range(50)] == first
    assert True in first and False in first


def test_a_failing_draw_propagates() -> None:
    with mock.patch("random.random", side_effect=RuntimeError("no entropy")):
        with pytest.raises(RuntimeError, match="no entropy"):
            Random(0.5)(0.0)
    assert Random(1.0)(0.0) is True


# ---- RampUp ---------------------------------------------------------------


def share_at(permit: RampUp, changed_at: float) -> float:
    """The share the permit uses now, read by finding the draw's threshold."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        with mock.patch("random.random", return_value=middle):
            admitted = permit(changed_at)
        low, high = (middle, high) if admitted else (low, middle)
    return high


def test_ramp_up_grows_linearly() -> None:
    permit = RampUp(0.2, 1.0, 10.0)
    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        assert share_at(permit, changed_at) == pytest.approx(0.2)
        frozen.tick(5)
        assert share_at(permit, changed_at) == pytest.approx(0.6)
        frozen.tick(5)
        assert share_at(permit, changed_at) == pytest.approx(1.0)
        frozen.tick(100)
        assert share_at(permit, changed_at) == pytest.approx(1.0)


def test_ramp_up_with_a_clock_moved_back_uses_initial() -> None:
    permit = RampUp(0.25, 0.75, 10.0)
    with freeze_time(FROZEN_AT):
        future = time.time() + 5
        assert share_at(permit, future) == pytest.approx(0.25)
        with mock.patch("random.random", return_value=0.24):
            assert permit(future) is True
        with mock.patch("random.random", return_value=0.25):
            assert permit(future) is False


def test_ramp_up_reaches_final_at_duration() -> None:
    permit = RampUp(0.1, 0.9, 4.0)
    with freeze_time(FROZEN_AT) as frozen:
        changed_at = time.time()
        frozen.tick(4)
        with mock.patch("random.random", return_value=0.899):
            assert permit(changed_at) is True
        with mock.patch("random.random", return_value=0.9):
            assert permit(changed_at) is False


@pytest.mark.parametrize("elapsed", [-3.0, 0.0, 2.0, 60.0])
def test_ramp_up_draws_exactly_once(elapsed: float) -> None:
    permit = RampUp(1.0, 1.0, 10.0)
    with freeze_time(FROZEN_AT):
        with mock.patch("random.random", wraps=random.random) as draw:
            assert permit(time.time() - elapsed) is True
    assert draw.call_count == 1


NOW = 1_767_268_800.0


@given(
    initial=st.floats(0.0, 1.0, exclude_min=True),
    spread=st.floats(0.0, 1.0),
    duration=st.floats(1e-3, 1e4) | st.sampled_from([1.0, 60.0, INF]),
    elapsed=st.floats(-1e3, 2e4) | st.sampled_from([0.0, 1.0, 60.0, -1.0]),
    seed=st.integers(0, 2**32),
)
def test_ramp_up_matches_reference(
    initial: float, spread: float, duration: float, elapsed: float, seed: int
) -> None:
    final = initial + (1.0 - initial) * spread
    permit = RampUp(initial, final, duration)
    with mock.patch("time.time", return_value=NOW):
        for changed_at in (NOW - elapsed, NOW - duration):
            random.seed(seed)
            expected = [reference_ramp_up(initial, final, duration, changed_at)
                        for _ in range(3)]
            expected_next = random.random()
            random.seed(seed)
            assert [permit(changed_at) for _ in range(3)] == expected
            assert random.random() == expected_next


def reference_share(initial: float, final: float, duration: float, elapsed: float) -> float:
    if elapsed < 0:
        return initial
    if elapsed >= duration:
        return final
    return initial + (final - initial) * elapsed / duration


@settings(max_examples=500)
@given(
    initial=st.floats(0.0, 1.0, exclude_min=True),
    spread=st.floats(0.0, 1.0),
    duration=st.floats(1e-3, 1e4) | st.sampled_from([3.0, 7.0, 60.0]),
    changed_at=st.floats(NOW - 2e4, NOW + 10),
)
def test_ramp_up_share_is_exact(
    initial: float, spread: float, duration: float, changed_at: float
) -> None:
    """A draw equal to the share is refused and the next float below admitted,
    which pins the share the permit computes to the reference's bit for bit."""
    final = initial + (1.0 - initial) * spread
    share = reference_share(initial, final, duration, NOW - changed_at)
    permit = RampUp(initial, final, duration)
    with mock.patch("time.time", return_value=NOW):
        with mock.patch("random.random", return_value=share):
            assert permit(changed_at) is False
        with mock.patch("random.random", return_value=math.nextafter(share, 0.0)):
            assert permit(changed_at) is True


# ---- subclasses ------------------------------------------------------------


def test_permit_is_abstract() -> None:
    with pytest.raises(TypeError):
        Permit()  # type: ignore[abstract]

    class Incomplete(Permit):
        pass

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]


def test_user_permit() -> None:
    class EveryOther(Permit):
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, changed_at: float) -> bool:
            self.calls += 1
            return self.calls % 2 == 1

    permit = EveryOther()
    assert isinstance(permit, Permit)
    assert [permit(0.0), permit(changed_at=0.0), permit(0.0)] == [True, False, True]


def test_subclass_overriding_call() -> None:
    class Counted(Random):
        def __init__(self, ratio: float) -> None:
            super().__init__(ratio)
            self.calls = 0

        def __call__(self, changed_at: float) -> bool:
            self.calls += 1
            return super().__call__(changed_at)

    permit = Counted(1.0)
    assert isinstance(permit, Permit) and isinstance(permit, Random)
    assert permit(0.0) is True
    assert permit(changed_at=0.0) is True
    assert permit.calls == 2
    assert repr(permit) == f"{Counted.__qualname__}(ratio=1.0)"


def test_subclass_with_its_own_constructor() -> None:
    class Minutes(RampUp):
        def __init__(self, minutes: float) -> None:
            super().__init__(0.5, 1.0, minutes * 60)

    permit = Minutes(1)
    assert permit.duration == 60.0
    with freeze_time(FROZEN_AT):
        with mock.patch("random.random", return_value=0.74):
            assert permit(time.time() - 30) is True
        with mock.patch("random.random", return_value=0.76):
            assert permit(time.time() - 30) is False
    with pytest.raises(ValueError, match=f"^{DURATION}$"):
        Minutes(0)


def test_subclass_keeps_builtin_behaviour() -> None:
    class Plain(All):
        pass

    assert Plain()(0.0) is True
    assert isinstance(Plain(), Permit)


def test_unconstructed_instance_says_it_is_not_initialised() -> None:
    for cls in (Random, RampUp):
        permit = cls.__new__(cls)
        assert repr(permit) == f"<uninitialised {cls.__name__} object>"
        with pytest.raises(TypeError, match=f"{cls.__name__} object is not initialised"):
            permit(0.0)
