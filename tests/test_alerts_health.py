"""The health alerts read confscale/thresholds.py: each number in the rule is the table's."""

from __future__ import annotations

import re

import harness
import yaml

from confscale import thresholds as th

RULES = harness.REPO / "alerts" / "rules" / "confscale-health.yml"


def _alert(name: str, severity: str) -> dict:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name and rule["labels"]["severity"] == severity:
                return rule
    raise AssertionError(f"no {name} {severity} in {RULES}")


def _numbers(expr: str, operator: str) -> set[float]:
    return {float(v) for v in re.findall(re.escape(operator) + r"\s*([0-9.]+)", expr)}


def test_health_alerts_read_the_table() -> None:
    backlog = _alert("ConfscaleRecordingsBacklog", "warning")
    assert _numbers(backlog["expr"], ">") == {th.RECORDINGS_BACKLOG_SECONDS}
    memory = _alert("ConfscaleNodeMemoryLow", "warning")
    assert _numbers(memory["expr"], "<") == {th.MEMORY_AVAILABLE_MIN}
    for severity, level in th.DISK_FREE.items():
        assert _numbers(_alert("ConfscaleNodeDiskLow", severity)["expr"], "<") == {level}
    assert _alert("ConfscaleJitsiBridgeStuckInShutdown", "warning")["for"] == th.JVB_SHUTDOWN_STUCK
    assert _alert("ConfscaleBBBVersionsMixed", "warning")["for"] == th.VERSIONS_MIXED_FOR
    turn = _alert("ConfscaleTurnAllocationsNearLimit", "warning")
    assert _numbers(turn["expr"], ">") == {int(th.TURN_RELAY_PORTS * th.TURN_ALLOCATIONS_WARN)}
    assert f"{th.TURN_RELAY_PORTS}" in turn["annotations"]["description"]


def test_the_check_reads_the_file(tmp_path) -> None:
    text = RULES.read_text().replace(") < 0.10", ") < 0.2", 1)
    changed = tmp_path / "rules.yml"
    changed.write_text(text)
    rule = next(
        r
        for g in yaml.safe_load(text)["groups"]
        for r in g["rules"]
        if r.get("alert") == "ConfscaleNodeMemoryLow"
    )
    assert _numbers(rule["expr"], "<") == {0.2}


def test_node_health_rules_select_the_contract_load_sources() -> None:
    """The recording rule and the stale alert read exactly exporter/contract.py's sources."""
    from confscale.exporter.contract import LOAD_SOURCE_SELECTOR

    rules = harness.REPO / "alerts" / "rules"
    recording = (rules / "confscale-recording.yml").read_text()
    assert f"min by (pool, node) (confscale_node_up{{{LOAD_SOURCE_SELECTOR}}})" in recording
    alerts = (rules / "confscale-alerts.yml").read_text()
    assert f"confscale_node_last_success_timestamp_seconds{{{LOAD_SOURCE_SELECTOR}}}" in alerts
