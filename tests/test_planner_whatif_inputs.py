"""What-if inputs are checked for type and range, in plain words, before any sizing."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
from confscale.planner.demand import WHAT_IF_RANGES, WhatIf, with_changes
from hypothesis import given, settings
from hypothesis import strategies as st

NAMES = [f.name for f in fields(WhatIf)]


def test_every_input_has_a_range() -> None:
    assert set(NAMES) == set(WHAT_IF_RANGES)


def test_an_integral_float_band_is_the_same_band() -> None:
    """``band: 95.0`` once read the missing column upper_95.0 and sized at median × 1.25."""
    changed = with_changes(WhatIf(), band=95.0, redundancy=2.0)
    assert changed.band == 95 and isinstance(changed.band, int)
    assert changed.redundancy == 2 and isinstance(changed.redundancy, int)
    with pytest.raises(ValueError, match=r"band must be a whole number, got 95\.5"):
        with_changes(WhatIf(), band=95.5)
    with pytest.raises(ValueError, match="band must be 50, 80 or 95, got 90"):
        with_changes(WhatIf(), band=90)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("redundancy", 10**18, r"redundancy must be in \[0, 100\], got 1e\+18"),
        ("min_servers", 1e18, r"min_servers must be in \[0, 100000\], got 1e\+18"),
        ("growth", "2", r"growth must be a number, got '2'"),
        ("growth", True, "growth must be a number, got True"),
        ("headroom_cpu", math.nan, "headroom_cpu must be a finite number, got nan"),
        ("webcam_share", [1], "webcam_share must be a number, got list"),
        ("growth", 0, r"growth must be in \(0, 100\], got 0"),
    ],
)
def test_bad_inputs_are_named_in_plain_words(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        with_changes(WhatIf(), **{name: value})


def test_unknown_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="unknown what-if input"):
        with_changes(WhatIf(), bandwidth=1)


VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NAMES), value=VALUE)
def test_any_value_is_checked_or_refused_with_its_name(name: str, value: object) -> None:
    try:
        changed = with_changes(WhatIf(), **{name: value})
    except ValueError as exc:
        assert str(exc).startswith(f"{name} must be"), str(exc)
        assert len(str(exc)) < 120
        return
    result = getattr(changed, name)
    spec = WHAT_IF_RANGES[name]
    if result is None:
        assert spec.optional
        return
    assert not isinstance(result, bool) and math.isfinite(result)
    assert spec.low <= result <= spec.high
    if spec.whole:
        assert isinstance(result, int)
