"""The rules in alerts/rules/ use exactly the numbers of confscale/thresholds.py.

The rules are PromQL written by hand; this test is what keeps them in step with the one
table that the planner, its page and the dashboards read.
"""

import re
from pathlib import Path

import pytest
import yaml

from confscale import thresholds as th

RULES = Path(__file__).resolve().parent.parent / "alerts" / "rules"
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def _rules(root: Path = RULES) -> list[dict]:
    found = []
    for path in sorted(root.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(group["rules"])
    return found


def _alert(name: str, severity: str) -> dict:
    matches = [
        r
        for r in _rules()
        if r.get("alert") == name and r.get("labels", {}).get("severity") == severity
    ]
    assert len(matches) == 1, f"{name}/{severity}: {len(matches)} rules"
    return matches[0]


def _record(name: str, **labels: str) -> list[dict]:
    return [
        r
        for r in _rules()
        if r.get("record") == name
        and all(r.get("labels", {}).get(k) == v for k, v in labels.items())
    ]


@pytest.mark.parametrize("key", sorted(th.ALERT_LEVELS), ids=lambda k: "/".join(k))
def test_alert_fires_and_clears_at_the_table_levels(key):
    level = th.ALERT_LEVELS[key]
    rule = _alert(*key)
    compared = {float(v) for v in re.findall(r">=\s*" + NUMBER, rule["expr"])}
    assert compared == {level.fire, level.clear}, rule["expr"]
    assert rule["for"] == level.hold


def test_link_imminent_reads_the_table_minimum():
    rule = _alert("ConfscaleLinkSaturationImminent", "warning")
    compared = {float(v) for v in re.findall(r">=\s*" + NUMBER, rule["expr"])}
    assert compared == {1.0, th.LINK_IMMINENT_MIN_UTILISATION}


def _pressure_divisors(rules: list[dict]) -> dict[str, float]:
    (rule,) = [r for r in rules if r.get("record") == "node:confscale_pressure:ratio"]
    pattern = r"/\s*" + NUMBER + r',\s*"constraint",\s*"([a-z_]+)"'
    return {c: float(d) for d, c in re.findall(pattern, rule["expr"])}


PRESSURE_DIVISORS = {k: th.TARGET[k] for k in ("cpu", "transmit", "receive", "jitsi_stress")}
PRESSURE_DIVISORS["participants"] = th.TARGET["participants"] * th.PARTICIPANTS_PER_NODE


def test_pressure_divides_each_constraint_by_its_target():
    assert _pressure_divisors(_rules()) == PRESSURE_DIVISORS


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("participants", th.TARGET["participants"] * th.PARTICIPANTS_PER_NODE),
        ("cpu", th.TARGET["cpu"]),
        ("transmit", th.TARGET["transmit"]),
    ],
)
def test_pool_headroom_uses_the_target(constraint, expected):
    (rule,) = _record("pool:confscale_headroom:ratio", constraint=constraint)
    (factor,) = re.findall(r"\(\s*" + NUMBER + r"\s*\*\s*sum by", rule["expr"])
    assert float(factor) == expected


def test_the_planner_defaults_are_the_table():
    from confscale.planner.demand import NodeCapacity, WhatIf
    from confscale.planner.placement import Hysteresis, PressureTargets

    what_if, targets = WhatIf(), PressureTargets()
    for constraint in ("participants", "cpu", "transmit"):
        assert what_if.headroom(constraint) == th.TARGET[constraint]
        assert what_if.failure(constraint) == th.FAILURE[constraint]
    assert what_if.redundancy == th.REDUNDANCY and what_if.min_servers == th.MIN_SERVERS
    assert NodeCapacity().participants == th.PARTICIPANTS_PER_NODE
    assert targets.cpu == th.TARGET["cpu"] and targets.link == th.TARGET["transmit"]
    assert targets.participants == th.PARTICIPANTS_PER_NODE
    assert targets.jitsi_stress == th.TARGET["jitsi_stress"]
    assert Hysteresis() == th.HYSTERESIS


def test_a_changed_rule_would_be_caught(tmp_path):
    """The checks read the files: a rule with another number fails them."""
    for path in RULES.glob("*.yml"):
        text = path.read_text()
        old = "node:confscale_cpu_utilisation:ratio_rate5m / 0.75"
        (tmp_path / path.name).write_text(text.replace(old, old.replace("0.75", "0.7")))
    changed = _pressure_divisors(_rules(tmp_path))
    assert changed != PRESSURE_DIVISORS and changed["cpu"] == 0.7
