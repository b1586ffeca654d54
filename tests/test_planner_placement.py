"""Placement signal: pressure, weights, hysteresis, down/stale exclusion, ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from confscale.planner.placement import (
    Hysteresis,
    NodeReading,
    PressureTargets,
    place,
    pressure_array,
)

NOW = 1_800_000_000.0


def reading(node: str, **kw: object) -> NodeReading:
    base = {
        "timestamp": NOW - 10,
        "cpu_utilisation": 0.2,
        "transmit_utilisation": 0.1,
        "receive_utilisation": 0.05,
        "participants": 40.0,
    }
    base.update(kw)
    return NodeReading(node=node, **base)  # type: ignore[arg-type]


def test_pressure_is_the_worst_constraint_over_its_target() -> None:
    value = pressure_array(
        cpu=np.array([0.6]),
        transmit=np.array([0.4]),
        receive=np.array([0.1]),
        participants=np.array([100.0]),
        jitsi_stress=np.array([np.nan]),
        targets=PressureTargets(),
    )
    assert value[0] == pytest.approx(0.8)  # cpu 0.6 / 0.75
    nothing = pressure_array(
        cpu=np.array([np.nan]),
        transmit=np.array([np.nan]),
        receive=np.array([np.nan]),
        participants=np.array([np.nan]),
    )
    assert math.isnan(nothing[0])  # no data is not idle


@pytest.mark.parametrize(
    "saturated",
    [
        {"transmit_utilisation": 0.85},
        {"cpu_utilisation": 0.97},
        {"jitsi_stress": 0.95, "kind": "jitsi"},
    ],
)
def test_saturated_node_gets_weight_zero_and_is_not_recommended(saturated: dict) -> None:
    readings = [reading("bbb-01", **saturated), reading("bbb-02", cpu_utilisation=0.5)]
    result = place(readings, now=NOW)
    by_node = {n.node: n for n in result.nodes}
    assert by_node["bbb-01"].weight == 0.0
    assert by_node["bbb-01"].state == "out"
    assert result.recommended == "bbb-02"
    assert result.nodes[0].node == "bbb-02"


def test_hysteresis_out_at_09_back_at_072() -> None:
    hysteresis = Hysteresis(out=0.9, back=0.72)
    # 0.8 pressure: in when it was in, still out when it was out
    mid = [reading("bbb-01", cpu_utilisation=0.6)]  # 0.6 / 0.75 = 0.8
    assert place(mid, now=NOW, hysteresis=hysteresis).nodes[0].state == "available"
    held = place(mid, now=NOW, previous_out=frozenset({"bbb-01"}), hysteresis=hysteresis)
    assert held.nodes[0].state == "out" and held.nodes[0].weight == 0.0
    assert held.out == frozenset({"bbb-01"})
    back = place(
        [reading("bbb-01", cpu_utilisation=0.5)],
        now=NOW,  # 0.667 ≤ 0.72
        previous_out=held.out,
        hysteresis=hysteresis,
    )
    assert back.nodes[0].state == "available" and back.out == frozenset()
    assert back.nodes[0].weight == pytest.approx(1 - 0.5 / 0.75)


def test_down_and_stale_nodes_are_excluded_and_ranked_last() -> None:
    readings = [
        reading("bbb-01", up=False),
        reading("bbb-02", timestamp=NOW - 3600),
        reading("bbb-03", cpu_utilisation=0.6),
        reading("bbb-04"),
        reading("bbb-05", timestamp=None),
    ]
    result = place(readings, now=NOW, stale_after=120)
    states = {n.node: (n.state, n.weight) for n in result.nodes}
    assert states["bbb-01"] == ("down", 0.0)
    assert states["bbb-02"] == ("stale", 0.0)
    assert states["bbb-05"] == ("stale", 0.0)
    assert [n.node for n in result.nodes][:2] == ["bbb-04", "bbb-03"]
    assert result.recommended == "bbb-04"
    assert [n.node for n in result.nodes][-1] == "bbb-01"


def test_no_node_available_recommends_none_and_json_has_timestamp() -> None:
    result = place([reading("bbb-01", up=False)], now=NOW)
    body = result.as_dict()
    assert body["recommended"] is None
    assert body["generated_at"] == NOW
    assert body["nodes"][0]["rank"] == 1 and body["nodes"][0]["state"] == "down"
