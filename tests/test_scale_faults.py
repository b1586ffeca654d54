"""A pool with a fifth of its nodes broken: healthy nodes exact, broken ones down with the
right reason, nothing overruns the cycle.

210 nodes (200 BBB, 10 Jitsi) on the simulator's frozen clock: 10 % of the BBB nodes
hold the connection without answering (timeout), 5 % answer garbage (an HTML page or
truncated XML), 5 % answer ``checksumError`` (the fault plan of ``bench/bench_scale.py``,
which measures the 1,000-node timings). This test asserts structure only.
"""

from __future__ import annotations

from pathlib import Path

from harness import simulator
from test_exporter_e2e import assert_node_matches_truth, bbb_gauges, exporter_config
from test_exporter_support import exporter, series, value

from bench.bench_scale import fault_plan

BBB = 200
JITSI = 10


def test_a_fifth_of_the_pool_broken_healthy_nodes_stay_exact(tmp_path: Path) -> None:
    with simulator(nodes=BBB, jitsi=JITSI) as sim:
        plan = fault_plan(sim.names, hold=4)
        assert len(plan) == BBB // 5
        for node, (mode, arg, _, _) in plan.items():
            sim.set_fault(node, mode, arg)
        config = exporter_config(sim, tmp_path / "pool.yml", interval="6s", timeout="2s")
        with exporter(config, log_level="warn") as running:
            samples = running.wait_cycles(2, timeout=60)
            truth = sim.truth()["nodes"]
    healthy = [n for n in sim.names if n not in plan]
    for node in healthy:
        assert_node_matches_truth(samples, node, truth[node])
    for node, (mode, _, bbb_reason, host_reason) in plan.items():
        labels = {"node": node, "pool": "sim"}
        assert value(samples, "confscale_node_up", **labels, source="bbb") == 0, (node, mode)
        reasons = {
            dict(k)["reason"]
            for k in series(samples, "confscale_node_poll_errors_total", **labels, source="bbb")
        }
        assert reasons == {bbb_reason}, (node, mode, reasons)  # never overrun
        assert bbb_gauges(samples, node) == {}, f"{node} {mode}: absent, not zero"
        host_up = value(samples, "confscale_node_up", **labels, source="host")
        assert host_up == (1 if host_reason is None else 0), (node, mode)
        if host_reason is not None:
            host_reasons = {
                dict(k)["reason"]
                for k in series(
                    samples, "confscale_node_poll_errors_total", **labels, source="host"
                )
            }
            assert host_reasons == {host_reason}, (node, mode, host_reasons)
    assert value(samples, "confscale_exporter_nodes", state="polled") == BBB + JITSI
    assert value(samples, "confscale_exporter_nodes", state="up") == len(healthy)
