"""The Prometheus rules in alerts/: promtool checks and unit tests, and what every alert carries.

promtool runs the unit tests in alerts/tests/*.yml at the rules' real ``for:`` durations;
these wrappers make ``make test`` run them and fail with promtool's own report.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import harness
import pytest
import yaml

ALERTS = harness.REPO / "alerts"
RULE_FILES = sorted((ALERTS / "rules").glob("*.yml"))
UNIT_TESTS = sorted((ALERTS / "tests").glob("*.yml"))
RUNBOOKS = harness.REPO / "docs" / "runbooks.md"
CONTRACTS = harness.REPO / "docs" / "contracts.md"
ALERTS_DOC = harness.REPO / "docs" / "alerts.md"
RUNBOOK_BASE = "https://github.com/confscale/confscale/blob/main/docs/runbooks.md#"
RECORD_NAME = re.compile(r"^(node|pool):[a-z0-9_]+:[a-z0-9_]+$")


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = harness.require_tool("promtool")
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def _rules() -> list[dict]:
    rules: list[dict] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def _alerts() -> list[dict]:
    return [rule for rule in _rules() if "alert" in rule]


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_rule_files_exist() -> None:
    assert RULE_FILES, f"no rule files under {ALERTS / 'rules'}"
    assert UNIT_TESTS, f"no promtool unit tests under {ALERTS / 'tests'}"


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(unit_test: Path) -> None:
    # promtool resolves the test file's rule_files relative to the test file.
    result = _promtool("test", "rules", unit_test)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool test rules {unit_test}:\n{report}"


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A copy of a unit test with one wrong expectation is reported as failing."""
    (tmp_path / "rules").symlink_to(ALERTS / "rules")
    (tmp_path / "tests").mkdir()
    broken = tmp_path / "tests" / "link.yml"
    text = (ALERTS / "tests" / "link.yml").read_text()
    assert "475Mbit/s = 95%" in text
    broken.write_text(text.replace("475Mbit/s = 95%", "475Mbit/s = 96%", 1))
    result = _promtool("test", "rules", broken)
    assert result.returncode != 0
    assert "96%" in result.stderr + result.stdout


@pytest.mark.parametrize(
    "alert", _alerts(), ids=lambda a: f"{a['alert']}-{a['labels']['severity']}"
)
def test_alert_carries_severity_and_annotations(alert: dict) -> None:
    name = alert["alert"]
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", name), f"{name}: alert names are CamelCase"
    assert alert["labels"].get("severity") in {"critical", "warning", "none"}, name
    annotations = alert.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert annotations.get(key), f"{name}: annotation {key!r} missing"
    if name != "Watchdog" and "node" in annotations["summary"]:
        assert "$labels.node" in annotations["description"], f"{name}: name the node"


def test_every_runbook_url_points_at_a_runbook_heading() -> None:
    headings = {
        _github_anchor(line.lstrip("#"))
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    for alert in _alerts():
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), f"{alert['alert']}: {url}"
        anchor = url.removeprefix(RUNBOOK_BASE)
        assert anchor in headings, f"{alert['alert']}: no heading for #{anchor} in {RUNBOOKS}"


def test_every_alert_has_a_firing_unit_test() -> None:
    fired: set[tuple[str, str]] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                for expected in check.get("exp_alerts") or []:
                    fired.add((check["alertname"], expected["exp_labels"]["severity"]))
    declared = {(a["alert"], a["labels"]["severity"]) for a in _alerts()}
    missing = declared - fired
    assert not missing, f"alerts without a unit test that makes them fire: {sorted(missing)}"


def test_recording_rules_follow_the_contract() -> None:
    """Every name in the contract's table is recorded, and every recorded name is listed."""
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    for name in recorded:
        assert RECORD_NAME.match(name), f"{name}: not level:metric:operation"
    section = CONTRACTS.read_text().split("## Recording rules", 1)[1]
    in_contract = set(re.findall(r"`((?:node|pool):[a-z0-9_]+:[a-z0-9_]+)`", section))
    assert in_contract - recorded == set(), "in docs/contracts.md but not recorded"
    assert recorded - in_contract == set(), "recorded but missing from docs/contracts.md"


def test_alerts_doc_lists_every_alert() -> None:
    text = ALERTS_DOC.read_text()
    for name in {a["alert"] for a in _alerts()}:
        assert f"`{name}`" in text, f"{name} is not documented in {ALERTS_DOC}"
