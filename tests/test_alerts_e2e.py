"""End to end: simulated pool → confscale-exporter → Prometheus with alerts/rules →
Alertmanager with alerts/alertmanager.yml's route tree → a webhook in this test.

One node's link is saturated (simulator fault ``link_saturated``): its alert must reach the
on-call receiver and nothing may arrive for the healthy nodes. Then the node stops
answering: ``ConfscaleNodeDown`` must arrive and its link alert must be muted.

To run in about a minute instead of hours, Prometheus loads a copy of the rules with every
time scaled down 30× (``for: 5m`` → 10 s, ``[5m]`` → ``[10s]``, …); the promtool unit tests
in alerts/tests/ cover the real durations.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import harness
import pytest
import requests
import yaml
from test_alerts_alertmanager import WebhookSink, delivery_config
from test_exporter_support import exporter

RULES = harness.REPO / "alerts" / "rules"
SCALE = 30  # real seconds per test second
SAT_NODE = "bbb-02"
HEALTHY = {"bbb-01", "bbb-03"}
DURATION = re.compile(r"^(\d+)([smh])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# Plain numbers in the expressions that are times in seconds (not PromQL durations).
SECONDS_LITERALS = (", 1800)", ") > 300")


def _scaled(duration: str) -> str:
    match = DURATION.match(duration)
    if not match:
        raise ValueError(f"unexpected duration {duration!r} in {RULES}")
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)] // SCALE
    if seconds < 1:
        raise ValueError(f"{duration} scaled by 1/{SCALE} is below a second")
    return f"{seconds}s"


def _scale_text(text: str) -> str:
    text = re.sub(r"\[(\d+[smh])\]", lambda m: f"[{_scaled(m.group(1))}]", text)
    text = re.sub(r"offset (\d+[smh])", lambda m: f"offset {_scaled(m.group(1))}", text)
    return text


def _rules_text(paths: list[Path]) -> str:
    """Every rule of ``paths`` as plain text (``for:`` line, expression, annotations)."""
    lines = []
    for path in paths:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                lines.append(f"for: {rule['for']}" if "for" in rule else "")
                lines.append(rule["expr"])
                lines.extend(rule.get("annotations", {}).values())
    return "\n".join(lines)


def _scale_literal(literal: str) -> str:
    seconds = re.search(r"\d+", literal)
    assert seconds
    return literal.replace(seconds.group(), str(int(seconds.group()) // SCALE))


def fast_rules(target: Path) -> list[Path]:
    """Copies of alerts/rules/*.yml with every time divided by SCALE; returns the paths."""
    target.mkdir(parents=True, exist_ok=True)
    literals_seen = dict.fromkeys(SECONDS_LITERALS, 0)
    written = []
    for source in sorted(RULES.glob("*.yml")):
        data = yaml.safe_load(source.read_text())
        for group in data["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = _scaled(rule["for"])
                expr = _scale_text(rule["expr"])
                for literal in SECONDS_LITERALS:
                    literals_seen[literal] += expr.count(literal)
                    expr = expr.replace(literal, _scale_literal(literal))
                rule["expr"] = expr
                for key, value in rule.get("annotations", {}).items():
                    rule["annotations"][key] = _scale_text(value)
        path = target / source.name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        written.append(path)
    assert all(literals_seen.values()), f"rules changed, update SECONDS_LITERALS: {literals_seen}"
    leftover = re.findall(r"\[\d+m\]|offset \d+m|for: \d+m", _rules_text(written))
    assert not leftover, f"unscaled durations left: {leftover}"
    return written


def test_fast_rules_scale_every_time(tmp_path: Path) -> None:
    """The scaled copy is still valid and keeps nothing of the real durations."""
    paths = fast_rules(tmp_path)
    text = _rules_text(paths)
    assert "[10s]" in text and "for: 20s" in text and "offset 70s" in text
    assert ", 60)" in text and ") > 10" in text
    assert ", 1800)" not in text and ") > 300" not in text
    binary = harness.require_tool("promtool")
    result = subprocess.run(
        [binary, "check", "rules", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _prometheus_config(rule_files: list[Path], exporter_url: str, alertmanager_url: str) -> str:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": "confscale",
                "static_configs": [{"targets": [exporter_url.removeprefix("http://")]}],
            },
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def _exporter_config(sim: Any, path: Path) -> Path:
    sim.write_config(path)
    data = yaml.safe_load(path.read_text())
    data["interval"], data["timeout"] = "1s", "500ms"
    path.write_text(yaml.safe_dump(data))
    return path


def _alertmanager_alerts(url: str) -> list[dict[str, Any]]:
    return requests.get(f"{url}/api/v2/alerts", timeout=10).json()


def _prometheus_alerts(url: str) -> list[dict[str, Any]]:
    return harness.prom_query(url, 'ALERTS{alertstate="firing"}')


@pytest.mark.slow
def test_saturated_link_pages_and_node_down_mutes_it(tmp_path: Path) -> None:
    rules = fast_rules(tmp_path / "rules-fast")
    with (
        harness.simulator(
            nodes=3, frozen=False, speed=1, faults=[f"{SAT_NODE}=link_saturated"]
        ) as sim,
        WebhookSink() as sink,
    ):
        pool_config = _exporter_config(sim, tmp_path / "pool.yml")
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(delivery_config(sink.url), sort_keys=False))
        with (
            exporter(pool_config, log_level="info") as running_exporter,
            harness.alertmanager(am_config, tmp_path / "am") as am_url,
            harness.prometheus(
                _prometheus_config(rules, running_exporter.url, am_url), tmp_path / "prom"
            ) as prom_url,
        ):
            # 1. The saturated link pages on-call, for the right node and direction.
            page = ("oncall", "ConfscaleLinkSaturated", SAT_NODE, "critical", "transmit")
            harness.wait_until(
                lambda: page in sink.firing(),
                timeout=90,
                interval=0.5,
                what=f"{page} at the webhook",
            )
            # The warning follows 10 s later in Prometheus; Alertmanager mutes it under
            # the critical. Waiting for it also gives the healthy nodes time to misfire.
            harness.wait_until(
                lambda: any(
                    a["metric"]["alertname"] == "ConfscaleLinkSaturated"
                    and a["metric"]["severity"] == "warning"
                    for a in _prometheus_alerts(prom_url)
                ),
                timeout=60,
                interval=0.5,
                what="the link warning in Prometheus",
            )
            harness.wait_until(
                lambda: any(
                    a["labels"]["alertname"] == "ConfscaleLinkSaturated"
                    and a["labels"]["severity"] == "warning"
                    and a["status"]["inhibitedBy"]
                    for a in _alertmanager_alerts(am_url)
                ),
                timeout=30,
                interval=0.5,
                what="the link warning muted in Alertmanager",
            )
            delivered = sink.firing()
            assert {n for _, _, n, _, _ in delivered} <= {SAT_NODE, ""}, delivered
            assert not any(a["metric"].get("node") in HEALTHY for a in _prometheus_alerts(prom_url))
            assert (
                "capacity-channel",
                "ConfscaleLinkSaturated",
                SAT_NODE,
                "warning",
                "transmit",
            ) not in delivered

            # 2. The node stops answering: NodeDown pages, the link alert is muted.
            before = len(sink.notifications())
            sim.set_fault(SAT_NODE, "timeout", 2)
            down = ("oncall", "ConfscaleNodeDown", SAT_NODE, "critical", "")
            harness.wait_until(
                lambda: down in sink.firing(),
                timeout=60,
                interval=0.5,
                what=f"{down} at the webhook",
            )
            harness.wait_until(
                lambda: any(
                    a["labels"]["alertname"] == "ConfscaleLinkSaturated"
                    and a["labels"].get("node") == SAT_NODE
                    and a["labels"]["severity"] == "critical"
                    and a["status"]["inhibitedBy"]
                    for a in _alertmanager_alerts(am_url)
                ),
                timeout=30,
                interval=0.5,
                what="the link alert muted by ConfscaleNodeDown",
            )
            after = sink.notifications()[before:]

    node_down = [
        alert
        for _, body in after
        for alert in body["alerts"]
        if alert["labels"]["alertname"] == "ConfscaleNodeDown"
    ]
    assert node_down
    assert all(alert["labels"]["node"] == SAT_NODE for alert in node_down)
    assert any("reason: timeout" in alert["annotations"]["description"] for alert in node_down)
    # Neither a repeat nor a "resolved" of the link alert once the node is down.
    link_after = [
        (alert["status"], alert["labels"])
        for _, body in after
        for alert in body["alerts"]
        if alert["labels"]["alertname"] == "ConfscaleLinkSaturated"
    ]
    assert link_after == []
    assert {n for _, _, n, _, _ in sink.firing()} <= {SAT_NODE, ""}
