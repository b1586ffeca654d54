"""--model.counters wall: CPU and byte counters grow at the load's rate per wall-clock second."""

from __future__ import annotations

import harness
import pytest

SPEED = 600.0
STEP = 3600.0  # one simulated hour of a term afternoon


def deltas(extra: list[str]) -> dict[str, dict[str, float]]:
    with harness.simulator(nodes=2, jitsi=1, frozen=True, speed=SPEED, extra_args=extra) as sim:
        before = sim.truth()["nodes"]
        sim.advance(STEP)
        after = sim.truth()["nodes"]
    out = {}
    for name, now in after.items():
        was = before[name]
        out[name] = {
            "tx": now["transmit_bytes"] - was["transmit_bytes"],
            "rx": now["receive_bytes"] - was["receive_bytes"],
            "busy": sum(v for m, v in now["cpu_seconds"].items() if m != "idle")
            - sum(v for m, v in was["cpu_seconds"].items() if m != "idle"),
            "all": sum(now["cpu_seconds"].values()) - sum(was["cpu_seconds"].values()),
        }
    return out


def test_wall_counters_are_the_simulated_ones_divided_by_speed():
    simulated = deltas(["--clock.start=2026-11-18T13:00:00Z", "--model.counters=simulated"])
    wall = deltas(["--clock.start=2026-11-18T13:00:00Z", "--model.counters=wall"])
    assert simulated.keys() == wall.keys()
    for name, sim in simulated.items():
        assert sim["tx"] > 0 and sim["busy"] > 0, (name, sim)  # the hour carried load
        for key, value in sim.items():
            assert wall[name][key] == pytest.approx(value / SPEED, rel=1e-6), (name, key)
        # the CPU share (busy ÷ all CPU seconds) is the same in both modes
        assert wall[name]["busy"] / wall[name]["all"] == pytest.approx(sim["busy"] / sim["all"])
