"""Windows at their limits: many distinct slow thresholds, very large
sizes, and states handed to __setstate__ that no window could have had."""

from __future__ import annotations

import math

import pytest

from fluxgate.windows import CountWindow, TimeWindow

NAN = math.nan


@pytest.mark.parametrize(
    "state",
    [
        ([(True, NAN, ())], 1.0, ()),
        ([(True, -1.0, ())], 1.0, ()),
        ([(True, 1.0, ())], NAN, ()),
        ([(True, 1.0, ())], -1.0, ()),
    ],
    ids=["nan record", "negative record", "nan total", "negative total"],
)
def test_count_window_state_with_a_bad_duration_is_a_value_error(state: tuple) -> None:
    window = CountWindow(3)
    with pytest.raises(ValueError, match="duration"):
        window.__setstate__(state)
    assert window.get_metric().total_count == 0


@pytest.mark.parametrize(
    "state",
    [
        ([(100, 1, 0, NAN, {})], 1.0, ()),
        ([(100, 1, 0, -1.0, {})], 1.0, ()),
        ([(100, 1, 0, 1.0, {})], NAN, ()),
        ([(100, 1, 0, 1.0, {})], -0.5, ()),
    ],
    ids=["nan bucket", "negative bucket", "nan total", "negative total"],
)
def test_time_window_state_with_a_bad_duration_is_a_value_error(state: tuple) -> None:
    window = TimeWindow(3)
    with pytest.raises(ValueError, match="duration"):
        window.__setstate__(state)
    assert window.get_metric().total_count == 0
