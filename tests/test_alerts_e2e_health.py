"""End to end for the health alerts: simulator faults → exporter → Prometheus (rules time-
scaled as in test_alerts_e2e.py) → Alertmanager's route tree → this test's webhook.

A recordings backlog, a bridge failing its health check, a bridge stuck in graceful
shutdown, a node short of memory, a full recordings disk and the cluster proxy refusing
connections (--pool.proxy, fault proxy_refusing) each reach their receiver, for their node
only; of two coturn targets, the simulator's /_turn/metrics (fault turn_allocations: 14,000, over
80 % of coturn's relay ports) raises only ConfscaleTurnAllocationsNearLimit and a closed
port only ConfscaleTurnServerDown. BBB versions mixed
for a day cannot be waited for end to end (24 h scaled is still 48 min); its promtool test
in alerts/tests/health.yml runs it at the real duration.
"""

from __future__ import annotations

import time
from pathlib import Path

import harness
import pytest
import yaml
from test_alerts_alertmanager import WebhookSink, delivery_config
from test_alerts_e2e import _exporter_config, _prometheus_config, fast_rules
from test_exporter_support import exporter

FAULTS = [
    "bbb-01=recordings_backlog:10",  # oldest processing recording: 10 h
    "bbb-02=memory_low:0.03",
    "bbb-03=disk_full:0.02",
    "jvb-01=jvb_unhealthy",
    "jvb-02=jvb_graceful_shutdown",  # for: 1h, 2 min scaled: the longest wait here
    "proxy-01=proxy_refusing:0.2",  # the cluster proxy drops a fifth of new connections
    "turn=turn_allocations:14000",  # for: 10m, 20 s scaled
]
EXPECTED = {
    ("capacity-channel", "ConfscaleRecordingsBacklog", "bbb-01", "warning", ""),
    ("capacity-channel", "ConfscaleNodeMemoryLow", "bbb-02", "warning", ""),
    ("oncall", "ConfscaleNodeDiskLow", "bbb-03", "critical", ""),
    ("oncall", "ConfscaleJitsiBridgeUnhealthy", "jvb-01", "critical", ""),
    ("capacity-channel", "ConfscaleJitsiBridgeStuckInShutdown", "jvb-02", "warning", ""),
    ("oncall", "ConfscaleProxyRefusingConnections", "proxy-01", "critical", ""),
    ("oncall", "ConfscaleTurnServerDown", "", "critical", ""),  # no node label: by instance
    ("capacity-channel", "ConfscaleTurnAllocationsNearLimit", "", "warning", ""),
}


@pytest.mark.slow
def test_health_alerts_reach_the_webhook(tmp_path: Path) -> None:
    rules = fast_rules(tmp_path / "rules-fast")
    with (
        harness.simulator(
            nodes=4,
            jitsi=2,
            frozen=False,
            speed=1,
            faults=FAULTS,
            # simulated time is wall time: recording timestamps compare with Prometheus' time()
            extra_args=[
                f"--clock.start={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
                "--pool.proxy",
            ],
        ) as sim,
        WebhookSink() as sink,
    ):
        pool_config = _exporter_config(sim, tmp_path / "pool.yml")
        data = yaml.safe_load(pool_config.read_text())
        for node in data["nodes"]:
            if "bbb" in node:
                node["bbb"]["recordings"] = True  # getRecordings every 5 min
        pool_config.write_text(yaml.safe_dump(data))
        turn_down = f"127.0.0.1:{harness.free_port()}"  # nothing listens: coturn is down
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(delivery_config(sink.url), sort_keys=False))
        with (
            exporter(pool_config, log_level="info") as running_exporter,
            harness.alertmanager(am_config, tmp_path / "am") as am_url,
            harness.prometheus(
                _with_coturn(
                    _prometheus_config(rules, running_exporter.url, am_url), sim.url, turn_down
                ),
                tmp_path / "prom",
            ) as prom_url,
        ):
            harness.wait_until(
                lambda: sink.firing() >= EXPECTED,
                timeout=240,
                interval=1,
                what=f"{sorted(EXPECTED - sink.firing())} at the webhook",
            )
            firing = harness.prom_query(prom_url, 'ALERTS{alertstate="firing"}')
    health = {a[1] for a in EXPECTED}
    delivered = {d for d in sink.firing() if d[1] in health}
    assert delivered == EXPECTED, delivered  # the healthy nodes raise none of them
    faulty = {fault.partition("=")[0] for fault in FAULTS}
    by_node = health - TURN_ALERTS
    assert {a["metric"].get("node") for a in firing if a["metric"]["alertname"] in by_node} <= (
        faulty
    )
    turn = {
        (a["metric"]["alertname"], a["metric"]["instance"])
        for a in firing
        if a["metric"]["alertname"] in TURN_ALERTS
    }
    sim_turn = sim.url.removeprefix("http://")
    assert turn == {
        ("ConfscaleTurnServerDown", turn_down),
        ("ConfscaleTurnAllocationsNearLimit", sim_turn),
    }, turn


TURN_ALERTS = {"ConfscaleTurnServerDown", "ConfscaleTurnAllocationsNearLimit"}


def _with_coturn(prometheus_config: str, sim_url: str, down: str) -> str:
    """The same Prometheus configuration plus a coturn job: the simulator's TURN page and a
    target where nothing listens."""
    config = yaml.safe_load(prometheus_config)
    config["scrape_configs"].append(
        {
            "job_name": "coturn",
            "static_configs": [
                {
                    "targets": [sim_url.removeprefix("http://")],
                    "labels": {"__metrics_path__": "/_turn/metrics"},
                },
                {"targets": [down]},
            ],
        }
    )
    return yaml.safe_dump(config, sort_keys=False)
