"""Pure checks over dashboard JSON, and the panel queries with variables substituted."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from dashboards.panels import DATASOURCE_UID, Json

MODERN_PANEL_TYPES = frozenset(
    {
        "timeseries",
        "stat",
        "gauge",
        "bargauge",
        "table",
        "heatmap",
        "state-timeline",
        "status-history",
        "alertlist",
        "barchart",
        "piechart",
        "text",
        "row",
    }
)
# Panels without queries of their own: a row groups panels; the alert list reads Grafana's
# alerting API (Grafana- and Prometheus-managed rules), not a data source query.
QUERYLESS_PANEL_TYPES = frozenset({"row", "alertlist", "text"})


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str


def iter_panels(board: Json) -> Iterator[Json]:
    """Every panel, including those nested in collapsed rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(board: Json) -> list[PanelQuery]:
    """All PromQL expressions of a dashboard, in panel order."""
    return [
        PanelQuery(board["uid"], panel.get("title", ""), target.get("refId", ""), target["expr"])
        for panel in iter_panels(board)
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def structural_problems(board: Json) -> list[str]:
    """What Grafana would accept but an operator would trip over; empty when all is well."""
    problems: list[str] = []
    uid = board.get("uid") or ""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
        problems.append(
            f"dashboard {board.get('title')!r}: uid {uid!r} is not a stable uid "
            "(1–40 of A–Z a–z 0–9 _ -)"
        )
    variables = {v["name"]: v for v in board.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append(f"{uid}: no `datasource` template variable")
    ids = [panel.get("id") for panel in iter_panels(board)]
    if len(ids) != len(set(ids)):
        problems.append(f"{uid}: panel ids are not unique: {ids}")
    for panel in iter_panels(board):
        where = f"{uid}: panel {panel.get('title')!r}"
        kind = panel.get("type")
        if kind not in MODERN_PANEL_TYPES:
            problems.append(f"{where}: type {kind!r} is not a modern panel type")
        if kind in QUERYLESS_PANEL_TYPES:
            continue
        if panel.get("datasource", {}).get("uid") != DATASOURCE_UID:
            problems.append(f"{where}: datasource is not {DATASOURCE_UID}")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{where}: no unit in fieldConfig.defaults")
        targets = panel.get("targets", [])
        if not targets:
            problems.append(f"{where}: no queries")
        for target in targets:
            if target.get("datasource", {}).get("uid") != DATASOURCE_UID:
                problems.append(
                    f"{where} {target.get('refId')}: datasource is not {DATASOURCE_UID}"
                )
            if "$__interval]" in target.get("expr", ""):
                problems.append(
                    f"{where} {target.get('refId')}: use $__rate_interval, "
                    "not $__interval, as a rate window"
                )
    return problems


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (``$name``, ``${name}``, ``[[name]]``) in ``expr``.

    Names are matched whole (``$__rate_interval`` is never read as ``$__rate``). A variable
    without a value raises KeyError naming it, so a typo in a panel cannot pass silently.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", replace, expr)


def grafana_rate_interval(step_seconds: float, scrape_interval_seconds: float) -> str:
    """``$__rate_interval`` as Grafana computes it: max(interval + scrape, 4 × scrape)."""
    seconds = max(step_seconds + scrape_interval_seconds, 4 * scrape_interval_seconds)
    return f"{round(seconds)}s"
