"""Sizing (docs/design.md §4): which constraint binds, monotonic in demand, N+1, largest meeting."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from confscale.planner.resources import prior_model
from confscale.planner.sizing import (
    DemandMix,
    NodeCapacity,
    WhatIf,
    constraint_demand,
    size_pool,
    usable_per_node,
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
    # the largest-meeting term: 120 of 200 is above T/2, so first fit's pair bound
    # (two nodes together hold more than 200) beats T − L = 80 per node
    assert sizing.per_constraint["participants"]["largest_meeting"] == 120
    expected = math.ceil(3000 / max(200 - 120, 200 / 2))
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
    # now: 1000 participants; 10 servers carry min(10·(200 − 20), 9·200) = 1800
    sizing = size_pool(
        flat_forecast(1000, 2000),
        mix=small,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=10,
    )
    assert sizing.headroom["participants"] == pytest.approx(1 - 1000 / 1800, abs=1e-4)
    # the /metrics series keeps the alerts' meaning: 1 − demand ÷ (target × capacity online)
    assert sizing.utilisation_headroom["participants"] == pytest.approx(1 - 1000 / 2000)
    # the band of 2000 needs ceil(2000 / (200 − 20)) = 12 > 10 servers: from the next hour
    assert sizing.servers_needed["next_peak"] == 12
    assert sizing.time_to_saturation_seconds == pytest.approx(3600.0)
    # already short now (1000 lecture seats need ceil(1000 / 100) = 10 > 9): 0
    short = size_pool(
        flat_forecast(1000, 2000),
        mix=LECTURES,
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=9,
    )
    assert short.headroom["participants"] < 0
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
    # the other meetings still pack first-fit at T/2 per node; a number, not null
    expected = max(math.ceil(1000 / 100), math.ceil(1000 / 200) + 1)
    assert sizing.servers_needed["next_peak"] == expected
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
    from confscale.planner.resources import LinearCost, ResourceModel

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
    from confscale.planner.sizing import largest_meeting_load

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


def _participants_only(largest: float) -> DemandMix:
    return DemandMix(
        voice_per_participant=0.0,
        listeners_per_participant=1.0,
        fanout_per_participant=0.0,
        webcam_share=0.0,
        largest_meeting=largest,
    )


def _need(demand: float, largest: float, online: int = 4) -> tuple[int, object]:
    sizing = size_pool(
        flat_forecast(demand * 0.2, demand),
        mix=_participants_only(largest),
        model=prior_model(),
        capacity=NodeCapacity(),
        servers_online=online,
    )
    return sizing.per_constraint["participants"]["servers_needed"]["next_peak"], sizing


def test_largest_meeting_near_a_node_target_no_longer_explodes() -> None:
    # T − L alone: ceil(2000 / (200 − 199)) = 2000 servers; first fit needs at most ~2·D/T
    need, _ = _need(2000, 199)
    assert math.ceil(2000 / 200) <= need <= math.ceil(2 * 2000 / 200) + 1
    # small L: unchanged against the T − L formula of the first design (docs/design.md §4)
    for largest in (0, 20, 60, 100):
        need, _ = _need(2000, largest)
        assert need == max(math.ceil(2000 / (200 - largest)), math.ceil(2000 / 200) + 1)


def test_servers_needed_is_monotone_in_demand_and_largest_meeting() -> None:
    demands = [200, 550, 900, 1500, 2600, 4000]
    largests = [0, 50, 99, 100, 101, 150, 190, 199, 200, 201, 260]
    table = np.array([[_need(d, lm)[0] for lm in largests] for d in demands])
    assert (np.diff(table, axis=0) >= 0).all(), table  # more demand, never fewer
    assert (np.diff(table, axis=1) >= 0).all(), table  # bigger largest meeting, never fewer
    for row, demand in zip(table, demands, strict=True):
        assert (row >= math.ceil(demand / 200)).all()
    # usable capacity per node never rises with L and never falls below T/2
    usable = [usable_per_node(200.0, lm) for lm in largests]
    assert all(a >= b for a, b in itertools.pairwise(usable))
    assert min(usable) == pytest.approx(100.0)


def test_headroom_and_time_to_saturation_agree_with_the_count() -> None:
    # the case: a 4-node pool whose largest meeting nearly fills a node
    for demand, largest, online in ((300, 190, 4), (300, 60, 4), (700, 190, 4), (900, 20, 4)):
        need, sizing = _need(demand, largest, online)
        now_need = sizing.per_constraint["participants"]["servers_needed"]["now"]
        headroom = sizing.headroom["participants"]
        enough_now = now_need <= online
        assert (headroom >= 0) == enough_now, (demand, largest, headroom, now_need)
        saturation = sizing.time_to_saturation_seconds
        if enough_now and need <= online:
            assert saturation is None  # flat band, no growth: never
        elif enough_now:
            assert saturation == pytest.approx(3600.0)  # the band starts next hour
        else:
            assert saturation == 0.0
