"""The Grafana dashboards: generated == committed, Grafana's schema, uids, units, datasource."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from dashboards import checks, generate

REPO = Path(__file__).resolve().parent.parent
SCHEMA_DIR = REPO / "dashboards" / "schema"
JSON_DIR = REPO / "dashboards" / "json"
PROVISIONING = REPO / "dashboards" / "provisioning"
# Grafana's panel plugin ids → the folder names of @grafana/schema's panel configs.
SCHEMA_NAME = {"state-timeline": "statetimeline"}


def committed() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(JSON_DIR.glob("*.json"))}


def dashboard_validator() -> Draft7Validator:
    return Draft7Validator(json.loads((SCHEMA_DIR / "dashboard.schema.json").read_text()))


def without_required(schema: Any) -> Any:
    """Grafana's generated panel types mark every option that has a CUE default as required;
    Grafana fills those defaults in when it loads a dashboard, so for panel options we check
    that every key we set exists and has the right type, not that all are present."""
    if isinstance(schema, dict):
        return {k: without_required(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [without_required(v) for v in schema]
    return schema


def panel_validators(panel_type: str) -> dict[str, Draft7Validator]:
    name = SCHEMA_NAME.get(panel_type, panel_type)
    validators = {}
    for part in ("options", "fieldconfig"):
        path = SCHEMA_DIR / "panels" / f"{name}.{part}.schema.json"
        if path.exists():
            validators[part] = Draft7Validator(without_required(json.loads(path.read_text())))
    return validators


def panel_schema_errors(board: dict[str, Any]) -> list[str]:
    errors = []
    for panel in checks.iter_panels(board):
        validators = panel_validators(panel["type"])
        parts = {
            "options": panel.get("options", {}),
            "fieldconfig": panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {}),
        }
        for part, validator in validators.items():
            errors += [
                f"{board['uid']}: {panel['title']!r} {part} "
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(parts[part])
            ]
    return errors


def test_committed_json_is_the_generators_output():
    assert generate.stale_files() == [], "run `python -m dashboards.generate` and commit"
    assert sorted(committed()) == sorted(name for name, _ in generate.BUILDERS)


@pytest.mark.parametrize("name", [name for name, _ in generate.BUILDERS])
def test_dashboard_validates_against_grafanas_schema(name):
    board = committed()[name]
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in dashboard_validator().iter_errors(board)
    ]
    assert errors == []
    assert panel_schema_errors(board) == []
    assert checks.structural_problems(board) == []


def test_every_modern_panel_type_used_has_a_schema_checked():
    used = {p["type"] for board in committed().values() for p in checks.iter_panels(board)}
    unchecked = {t for t in used if not panel_validators(t)} - {"row", "alertlist"}
    assert unchecked == set()
    assert {"timeseries", "stat", "gauge", "bargauge", "table", "heatmap", "state-timeline"} <= used


def test_the_schemas_catch_mistakes():
    """The validators are live: a misspelt option, an unknown top-level key, a missing unit
    and an Angular panel are all reported."""
    board = copy.deepcopy(committed()["pool-overview.json"])
    timeseries = next(p for p in board["panels"] if p["type"] == "timeseries")
    timeseries["options"]["legend"]["placment"] = "right"
    board["refreshh"] = "5s"
    assert any("placment" in e for e in panel_schema_errors(board))
    assert any("refreshh" in e.message for e in dashboard_validator().iter_errors(board))

    del timeseries["fieldConfig"]["defaults"]["unit"]
    board["panels"].append({**timeseries, "type": "graph", "id": 999})
    problems = checks.structural_problems(board)
    assert any("no unit" in p and timeseries["title"] in p for p in problems)
    assert any("'graph' is not a modern panel type" in p for p in problems)


def test_uids_are_unique_and_stable():
    boards = committed()
    uids = [board["uid"] for board in boards.values()]
    assert len(uids) == len(set(uids))
    assert set(uids) == {
        "confscale-pool-overview",
        "confscale-node-detail",
        "confscale-capacity",
        "confscale-health",
    }


def test_variables_and_rate_interval():
    boards = committed()
    for board in boards.values():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["pool"]["query"]["query"].startswith("label_values(")
    node = {v["name"]: v for v in boards["node-detail.json"]["templating"]["list"]}["node"]
    assert node["query"]["query"] == 'label_values(confscale_node_up{pool=~"$pool"}, node)'
    exprs = [q.expr for b in boards.values() for q in checks.panel_queries(b)]
    assert any("[$__rate_interval]" in expr for expr in exprs)


def test_substitute_replaces_every_variable_form():
    values = {"node": "bbb-01", "pool": "sim|campus", "__rate_interval": "75s", "__range": "3600s"}
    assert (
        checks.substitute('rate(x{node="$node"}[$__rate_interval])', values)
        == 'rate(x{node="bbb-01"}[75s])'
    )
    assert (
        checks.substitute('y{pool=~"${pool}"}[[node]] $__range', values)
        == 'y{pool=~"sim|campus"}bbb-01 3600s'
    )
    with pytest.raises(KeyError, match=r"\$nod\b"):
        checks.substitute('x{node="$nod"}', values)


def test_grafana_rate_interval():
    assert checks.grafana_rate_interval(15, 15) == "60s"
    assert checks.grafana_rate_interval(600, 15) == "615s"


def test_provisioning_files():
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    sources = {source["type"]: source for source in datasources["datasources"]}
    prometheus_ds, alertmanager_ds = sources["prometheus"], sources["alertmanager"]
    assert prometheus_ds["url"] == "http://prometheus:9090" and prometheus_ds["isDefault"]
    assert alertmanager_ds["url"] == "http://alertmanager:9093"
    assert prometheus_ds["jsonData"]["alertmanagerUid"] == alertmanager_ds["uid"]
    scrape = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())["global"]
    assert prometheus_ds["jsonData"]["timeInterval"] == scrape["scrape_interval"]
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "confscale.yml").read_text())
    provider = providers["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/confscale"


def test_recording_rules_the_dashboards_read_exist_in_alerts():
    recorded = {
        rule["record"]
        for path in sorted((REPO / "alerts" / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    used = {
        name
        for board in committed().values()
        for query in checks.panel_queries(board)
        for name in re.findall(r"\b[a-z]+:[a-z0-9_]+:[a-z0-9_]+\b", query.expr)
    }
    assert used, "the dashboards read no recording rules"
    assert used - recorded == set(), "dashboards read series that alerts/rules do not record"


def test_data_links_open_an_existing_dashboard_with_its_variables():
    boards = {board["uid"]: board for board in committed().values()}
    links = [
        (board["uid"], panel["title"], link["url"])
        for board in boards.values()
        for panel in checks.iter_panels(board)
        for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", [])
    ]
    assert len(links) >= 3
    for uid, title, url in links:
        target = re.fullmatch(r"/d/([\w-]+)\?(.*)", url)
        assert target, f"{uid} {title!r}: {url}"
        assert target.group(1) in boards, f"{uid} {title!r}: no dashboard {target.group(1)}"
        names = {v["name"] for v in boards[target.group(1)]["templating"]["list"]}
        for name in re.findall(r"var-(\w+)=", target.group(2)):
            assert name in names, f"{uid} {title!r}: {target.group(1)} has no variable {name}"
