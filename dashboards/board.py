"""Template variables, grid layout and the dashboard envelope."""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.panels import Json, datasource

SCHEMA_VERSION = 42  # Grafana 12.4's dashboard schema version (see dashboards/schema/)
GRID_WIDTH = 24


def datasource_variable() -> Json:
    """The ``datasource`` variable every panel reads (any Prometheus-compatible store)."""
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
    }


def query_variable(name: str, label: str, query: str, *, multi: bool, include_all: bool) -> Json:
    """A variable filled by ``label_values(...)`` from the data source."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": {
            "qryType": 1,
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "hide": 0,
        "multi": multi,
        "includeAll": include_all,
        "options": [],
        **({"allValue": ".*"} if include_all else {}),
    }


def pool_variable() -> Json:
    return query_variable(
        "pool", "Pool", "label_values(confscale_node_up, pool)", multi=True, include_all=True
    )


def _row(title: str, y: int) -> Json:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
    }


def layout(rows: Sequence[tuple[str, Sequence[Json]]]) -> list[Json]:
    """Place panels left to right under row headers, wrapping at the grid width; number ids."""
    placed: list[Json] = []
    y = 0
    for title, panels in rows:
        placed.append(_row(title, y))
        y += 1
        x, line_height = 0, 0
        for panel in panels:
            grid = panel["gridPos"]
            if x + grid["w"] > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            placed.append({**panel, "gridPos": {**grid, "x": x, "y": y}})
            x += grid["w"]
            line_height = max(line_height, grid["h"])
        y += line_height
    return [{**panel, "id": index} for index, panel in enumerate(placed, start=1)]


def dashboard(
    uid: str,
    title: str,
    *,
    description: str,
    variables: Sequence[Json],
    rows: Sequence[tuple[str, Sequence[Json]]],
    time_from: str = "now-6h",
) -> Json:
    """A complete dashboard with the shared confscale links and annotations."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["confscale"],
        "id": None,
        "version": 1,
        "schemaVersion": SCHEMA_VERSION,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "30s",
        "liveNow": False,
        "fiscalYearStartMonth": 0,
        "weekStart": "",
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "confscale",
                "type": "dashboards",
                "tags": ["confscale"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": list(variables)},
        "panels": layout(rows),
    }
