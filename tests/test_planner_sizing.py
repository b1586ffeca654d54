"""Sizing (DESIGN.md §4): which constraint binds, monotonic in demand, N+1, largest meeting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from planner.resources import prior_model
from planner.sizing import (
    DemandMix,
    NodeCapacity,
    WhatIf,
    constraint_demand,
    size_pool,
    with_changes,
)


def flat_forecast(participants_now: float, peak: float, hours: int = 700) -> pd.DataFrame:
    """History of 48 h at ``participants_now`` then a flat forecast band at ``peak``."""
    past = pd.date_range("2026-10-01", periods=48, freq="1h", tz="UTC")
    future = pd.date_range(past[-1] + pd.Timedelta(hours=1), periods=hours, freq="1h")
    history = pd.DataFrame({"actual": participants_now}, index=past)
    columns = {"median": peak * 0.9}
    for level in (50, 80, 95):
        columns[f"lower_{level}"] = peak * 0.8
        columns[f"upper_{level}"] = peak
    return pd.concat([history, pd.DataFrame(columns, index=future)])


SEMINARS = DemandMix(
    voice_per_participant=0.9,
    listeners_per_participant=0.1,
    fanout_per_participant=9.0,
    webcam_share=0.9,
    mean_meeting_size=10,
    largest_meeting=12,
)
LECTURES = DemandMix(
    voice_per_participant=0.02,
    listeners_per_participant=0.98,
    fanout_per_participant=0.0,
    webcam_share=0.0,
    mean_meeting_size=300,
    largest_meeting=120,
)


def test_many_webcam_seminars_bind_on_transmit_bandwidth() -> None:
    sizing = size_pool(
        flat_forecast(500, 3000),
        mix=SEMINARS,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
    )
    assert sizing.binding_constraint == "transmit"
    per = sizing.per_constraint
    assert (
        per["transmit"]["servers_needed"]["next_peak"]
        > per["participants"]["servers_needed"]["next_peak"]
    )


def test_large_audio_lectures_bind_on_participants() -> None:
    sizing = size_pool(
        flat_forecast(500, 3000),
        mix=LECTURES,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
    )
    assert sizing.binding_constraint in ("participants", "cpu")
    assert sizing.binding_constraint != "transmit"
    # the largest-meeting term: 120 of 200 participants reserved on one node
    assert sizing.per_constraint["participants"]["largest_meeting"] == 120
    expected = math.ceil(3000 / (200 - 120))
    assert sizing.per_constraint["participants"]["servers_needed"]["next_peak"] == expected


def test_servers_needed_is_monotonic_in_demand() -> None:
    previous = 0
    for peak in np.linspace(100, 20000, 25):
        sizing = size_pool(
            flat_forecast(100, float(peak)),
            mix=SEMINARS,
            model=prior_model(),
            capacity=NodeCapacity(),
            servers_online=10,
        )
        needed = sizing.servers_needed["next_peak"]
        assert needed is not None and needed >= previous
        previous = needed


@pytest.mark.parametrize("redundancy", [0, 1, 2, 5])
def test_n_plus_r_is_respected(redundancy: int) -> None:
    what_if = WhatIf(redundancy=redundancy)
    sizing = size_pool(
        flat_forecast(100, 2000),
        mix=LECTURES,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
        what_if=what_if,
    )
    demand = constraint_demand(2000, LECTURES, prior_model(), what_if)
    for constraint, capacity in (("participants", 200.0),):
        floor = math.ceil(demand[constraint] / (what_if.failure(constraint) * capacity))
        assert (
            sizing.per_constraint[constraint]["servers_needed"]["next_peak"] >= floor + redundancy
        )
    assert sizing.servers_needed["next_peak"] >= math.ceil(2000 / 200) + redundancy


def test_headroom_and_time_to_saturation() -> None:
    small = DemandMix(
        voice_per_participant=0.1,
        listeners_per_participant=0.9,
        fanout_per_participant=0.0,
        webcam_share=0.0,
        largest_meeting=20,
    )
    # now: 1000 participants on 10 servers of 200 → headroom 0.5 on participants
    sizing = size_pool(
        flat_forecast(1000, 2000),
        mix=small,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
    )
    assert sizing.headroom["participants"] == pytest.approx(0.5)
    # the band of 2000 needs ceil(2000 / (200 − 20)) = 12 > 10 servers: from the next hour
    assert sizing.servers_needed["next_peak"] == 12
    assert sizing.time_to_saturation_seconds == pytest.approx(3600.0)
    # already short now: 0
    short = size_pool(
        flat_forecast(1000, 2000),
        mix=LECTURES,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
    )
    assert short.time_to_saturation_seconds == 0.0
    plenty = size_pool(
        flat_forecast(100, 200),
        mix=LECTURES,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=50,
    )
    assert plenty.time_to_saturation_seconds is None  # no growth, never


def test_what_if_inputs_change_the_answer_and_validate() -> None:
    forecast = flat_forecast(500, 3000)
    base = size_pool(
        forecast, mix=SEMINARS, model=prior_model(), capacity=NodeCapacity(), servers_online=10
    )
    faster = size_pool(
        forecast,
        mix=SEMINARS,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
        what_if=WhatIf(link_capacity_bytes_per_second=125e6),
    )
    assert faster.servers_needed["next_peak"] < base.servers_needed["next_peak"]
    fewer_cams = size_pool(
        forecast,
        mix=SEMINARS,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
        what_if=WhatIf(webcam_share=0.1),
    )
    assert fewer_cams.servers_needed["next_peak"] < base.servers_needed["next_peak"]
    with pytest.raises(ValueError, match="headroom_cpu"):
        with_changes(WhatIf(), headroom_cpu=0)
    with pytest.raises(ValueError, match="unknown what-if input"):
        with_changes(WhatIf(), cores=3)


def test_largest_meeting_that_cannot_fit_says_so() -> None:
    huge = DemandMix(largest_meeting=250, webcam_share=0.0, fanout_per_participant=0.0)
    sizing = size_pool(
        flat_forecast(100, 1000),
        mix=huge,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
    )
    assert sizing.per_constraint["participants"]["largest_meeting_fits"] is False
    assert sizing.servers_needed["next_peak"] == math.ceil(1000 / 200) + 1  # N+1 binds
    assert any("largest meeting (250 participants)" in note for note in sizing.notes)


def test_time_to_saturation_extrapolates_growth_past_the_forecast() -> None:
    small = DemandMix(
        voice_per_participant=0.1,
        listeners_per_participant=0.9,
        fanout_per_participant=0.0,
        webcam_share=0.0,
        largest_meeting=20,
    )
    forecast = flat_forecast(500, 1000)  # fits 10 servers all through the forecast
    times = {}
    for growth in (1.0, 1.02, 1.1):
        sizing = size_pool(
            forecast,
            mix=small,
            model=prior_model(),
            capacity=NodeCapacity(),
            servers_online=10,
            weekly_growth=growth,
        )
        times[growth] = sizing.time_to_saturation_seconds
    assert times[1.0] is None
    horizon = 700 * 3600.0
    assert times[1.1] > horizon and times[1.02] > times[1.1]
    # 10 servers hold up to 1800 participants (N+1 and the 20-seat largest meeting)
    weeks = math.log(1800 / 1000) / math.log(1.1)
    assert times[1.1] == pytest.approx(horizon + weeks * 7 * 86400, rel=0.01)


def test_cpu_binds_when_talking_users_are_expensive() -> None:
    from planner.resources import LinearCost, ResourceModel

    heavy = ResourceModel(
        cpu=LinearCost(0.5, 0.08, 0.01, 0.0005),
        transmit=prior_model().transmit,
        source={"cpu": "fitted", "transmit": "prior"},
        quantile=0.9,
        samples=5000,
    )
    talkers = DemandMix(
        voice_per_participant=0.9,
        listeners_per_participant=0.1,
        fanout_per_participant=0.5,
        webcam_share=0.05,
        largest_meeting=20,
    )
    sizing = size_pool(
        flat_forecast(300, 3000),
        mix=talkers,
        model=heavy,
        capacity=NodeCapacity(),
        servers_online=10,
    )
    assert sizing.binding_constraint == "cpu"
    per = sizing.per_constraint["cpu"]
    assert per["capacity_per_node"] == pytest.approx(8 - 0.5)  # baseline off the node


def test_largest_meeting_uses_its_observed_fanout_and_what_if_scales_it() -> None:
    from planner.sizing import largest_meeting_load

    lecture = DemandMix(
        webcam_share=0.2,
        largest_meeting=200,
        largest_voice_share=0.1,
        largest_listener_share=0.9,
        largest_fanout_per_participant=1.5,
    )
    model = prior_model()
    base = largest_meeting_load(lecture, model, WhatIf())
    per_stream = model.transmit.video_fanout
    audio = 200 * (0.1 * model.transmit.voice_participants + 0.9 * model.transmit.listeners)
    assert base["transmit"] == pytest.approx(audio + 300 * per_stream)  # 1.5 × 200 streams
    doubled = largest_meeting_load(lecture, model, WhatIf(webcam_share=0.4))
    assert doubled["transmit"] == pytest.approx(audio + 600 * per_stream)
    capped = largest_meeting_load(lecture, model, WhatIf(webcam_share=1.0))
    assert capped["transmit"] == pytest.approx(audio + 200 * 5 * per_stream)  # pagination
