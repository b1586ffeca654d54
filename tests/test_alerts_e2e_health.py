"""End to end for the health alerts: simulator faults → exporter → Prometheus (rules time-
scaled as in test_alerts_e2e.py) → Alertmanager's route tree → this test's webhook.

A recordings backlog, a bridge failing its health check, a bridge stuck in graceful
shutdown, a node short of memory and a full recordings disk each reach their receiver,
for their node only. BBB versions mixed
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
]
EXPECTED = {
    ("capacity-channel", "ConfscaleRecordingsBacklog", "bbb-01", "warning", ""),
    ("capacity-channel", "ConfscaleNodeMemoryLow", "bbb-02", "warning", ""),
    ("oncall", "ConfscaleNodeDiskLow", "bbb-03", "critical", ""),
    ("oncall", "ConfscaleJitsiBridgeUnhealthy", "jvb-01", "critical", ""),
    ("capacity-channel", "ConfscaleJitsiBridgeStuckInShutdown", "jvb-02", "warning", ""),
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
            extra_args=[f"--clock.start={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"],
        ) as sim,
        WebhookSink() as sink,
    ):
        pool_config = _exporter_config(sim, tmp_path / "pool.yml")
        data = yaml.safe_load(pool_config.read_text())
        for node in data["nodes"]:
            if "bbb" in node:
                node["bbb"]["recordings"] = True  # getRecordings every 5 min
        pool_config.write_text(yaml.safe_dump(data))
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(delivery_config(sink.url), sort_keys=False))
        with (
            exporter(pool_config, log_level="info") as running_exporter,
            harness.alertmanager(am_config, tmp_path / "am") as am_url,
            harness.prometheus(
                _prometheus_config(rules, running_exporter.url, am_url), tmp_path / "prom"
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
    assert {a["metric"].get("node") for a in firing if a["metric"]["alertname"] in health} <= (
        faulty
    )
