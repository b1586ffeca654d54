"""Builders for Grafana panels and their queries (plain JSON dicts).

Only modern (React) panel types. Every query panel reads the ``$datasource`` variable
and sets a unit, so the checks in ``dashboards.checks`` hold by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confscale.thresholds import ALERT_LEVELS, PRESSURE_BAD, PRESSURE_WARN

Json = dict[str, Any]

DATASOURCE_UID = "${datasource}"


def datasource() -> Json:
    """A fresh reference to the dashboard's ``datasource`` variable."""
    return {"type": "prometheus", "uid": DATASOURCE_UID}


NODE_DETAIL_UID = "confscale-node-detail"


def linked_to_node_detail(panel: Json) -> Json:
    """``panel`` with a data link from each series (labelled ``node``) to that node's detail."""
    url = (
        f"/d/{NODE_DETAIL_UID}?var-node=${{__field.labels.node}}"
        "&var-datasource=${datasource}&${__url_time_range}"
    )
    link = {"title": "Node detail: ${__field.labels.node}", "url": url}
    field_config = panel["fieldConfig"]
    defaults = {**field_config["defaults"], "links": [link]}
    return {**panel, "fieldConfig": {**field_config, "defaults": defaults}}


@dataclass(frozen=True)
class Query:
    """One PromQL target; ``legend`` uses Grafana's ``{{label}}`` syntax."""

    expr: str
    legend: str = "__auto"
    instant: bool = False


@dataclass(frozen=True)
class Step:
    """One threshold step: ``value`` None is the base step."""

    color: str
    value: float | None = None


# Colour steps from the one threshold table: links amber where the warning clears, red
# where it fires; pressure amber at the hysteresis "back in" level, red at "take out".
LINK_WARNING = ALERT_LEVELS["ConfscaleLinkSaturated", "warning"]
CPU_WARNING = ALERT_LEVELS["ConfscaleCPUSaturated", "warning"]
GREEN_ORANGE_RED_LINK = (
    Step("green"),
    Step("orange", LINK_WARNING.clear),
    Step("red", LINK_WARNING.fire),
)
GREEN_ORANGE_RED_CPU = (
    Step("green"),
    Step("orange", CPU_WARNING.clear),
    Step("red", CPU_WARNING.fire),
)
GREEN_ORANGE_RED_PRESSURE = (
    Step("green"),
    Step("orange", PRESSURE_WARN),
    Step("red", PRESSURE_BAD),
)


def up_down_mapping() -> list[Json]:
    """Value mapping for 0/1 health series: down in red, up in green."""
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": "down", "color": "red", "index": 0},
                "1": {"text": "up", "color": "green", "index": 1},
            },
        },
    ]


def thresholds(steps: Sequence[Step]) -> Json:
    """Absolute thresholds; the first step is the base (value null)."""
    return {
        "mode": "absolute",
        "steps": [{"color": step.color, "value": step.value} for step in steps],
    }


def targets(queries: Sequence[Query]) -> list[Json]:
    """Prometheus targets with refIds A, B, C…"""
    return [
        {
            "datasource": datasource(),
            "refId": chr(ord("A") + index),
            "expr": query.expr,
            "legendFormat": query.legend,
            "range": not query.instant,
            "instant": query.instant,
            "editorMode": "code",
        }
        for index, query in enumerate(queries)
    ]


def _panel(
    kind: str,
    title: str,
    queries: Sequence[Query],
    unit: str,
    *,
    description: str,
    options: Json,
    custom: Json | None = None,
    steps: Sequence[Step] = (Step("green"),),
    mappings: list[Json] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    color: Json | None = None,
    width: int = 12,
    height: int = 8,
) -> Json:
    defaults: Json = {
        "unit": unit,
        "thresholds": thresholds(steps),
        "mappings": mappings or [],
        "color": color or {"mode": "palette-classic"},
    }
    if custom is not None:
        defaults["custom"] = custom
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource(),
        "targets": targets(queries),
        "options": options,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
    }


def _legend(placement: str = "bottom", calcs: Sequence[str] = ()) -> Json:
    return {
        "showLegend": True,
        "displayMode": "table" if calcs else "list",
        "placement": placement,
        "calcs": list(calcs),
    }


def _reduce(calc: str = "lastNotNull") -> Json:
    return {"calcs": [calc], "fields": "", "values": False}


def timeseries(
    title: str,
    queries: Sequence[Query],
    unit: str,
    *,
    description: str,
    stack: bool = False,
    steps: Sequence[Step] = (Step("green"),),
    show_thresholds: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
    width: int = 12,
    height: int = 8,
) -> Json:
    """A time series panel (lines; stacked areas when ``stack``)."""
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 20 if stack else 5,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if show_thresholds else "off"},
    }
    options = {
        "legend": _legend(calcs=("lastNotNull", "max")),
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel(
        "timeseries",
        title,
        queries,
        unit,
        description=description,
        options=options,
        custom=custom,
        steps=steps,
        min_value=min_value,
        max_value=max_value,
        width=width,
        height=height,
    )


def stat(
    title: str,
    queries: Sequence[Query],
    unit: str,
    *,
    description: str,
    steps: Sequence[Step] = (Step("green"),),
    mappings: list[Json] | None = None,
    text_mode: str = "value",
    graph: bool = True,
    width: int = 4,
    height: int = 4,
) -> Json:
    """A single-value stat panel (coloured background by thresholds)."""
    options = {
        "reduceOptions": _reduce(),
        "orientation": "auto",
        "textMode": text_mode,
        "colorMode": "background" if len(steps) > 1 or mappings else "value",
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "wideLayout": True,
        "showPercentChange": False,
        "percentChangeColorMode": "standard",
    }
    return _panel(
        "stat",
        title,
        queries,
        unit,
        description=description,
        options=options,
        steps=steps,
        mappings=mappings,
        color={"mode": "thresholds"},
        width=width,
        height=height,
    )


def gauge(
    title: str,
    queries: Sequence[Query],
    unit: str,
    *,
    description: str,
    steps: Sequence[Step],
    min_value: float,
    max_value: float,
    width: int = 4,
    height: int = 6,
) -> Json:
    """A radial gauge with threshold markers."""
    options = {
        "reduceOptions": _reduce(),
        "orientation": "auto",
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
        "minVizWidth": 75,
        "minVizHeight": 75,
        "sizing": "auto",
    }
    return _panel(
        "gauge",
        title,
        queries,
        unit,
        description=description,
        options=options,
        steps=steps,
        min_value=min_value,
        max_value=max_value,
        color={"mode": "thresholds"},
        width=width,
        height=height,
    )


def bargauge(
    title: str,
    queries: Sequence[Query],
    unit: str,
    *,
    description: str,
    steps: Sequence[Step],
    min_value: float,
    max_value: float | None = None,
    width: int = 12,
    height: int = 8,
) -> Json:
    """Horizontal bar gauges, one per series (per node), coloured by thresholds."""
    options = {
        "reduceOptions": _reduce(),
        "orientation": "horizontal",
        "displayMode": "gradient",
        "valueMode": "color",
        "namePlacement": "left",
        "showUnfilled": True,
        "sizing": "auto",
        "minVizWidth": 8,
        "minVizHeight": 16,
        "maxVizHeight": 300,
        "legend": {**_legend(), "showLegend": False},
    }
    return _panel(
        "bargauge",
        title,
        queries,
        unit,
        description=description,
        options=options,
        steps=steps,
        min_value=min_value,
        max_value=max_value,
        color={"mode": "thresholds"},
        width=width,
        height=height,
    )


def table(
    title: str,
    queries: Sequence[Query],
    unit: str,
    *,
    description: str,
    steps: Sequence[Step] = (Step("green"),),
    width: int = 12,
    height: int = 8,
) -> Json:
    """A table of instant values, one row per series, labels as columns."""
    instant = [Query(q.expr, q.legend, instant=True) for q in queries]
    panel = _panel(
        "table",
        title,
        instant,
        unit,
        description=description,
        options={"showHeader": True, "frameIndex": 0, "cellHeight": "sm"},
        custom={"align": "auto", "cellOptions": {"type": "color-text"}, "inspect": False},
        steps=steps,
        color={"mode": "thresholds"},
        width=width,
        height=height,
    )
    for target in panel["targets"]:
        target["format"] = "table"
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True}}},
    ]
    return panel


def heatmap(
    title: str,
    queries: Sequence[Query],
    unit: str,
    *,
    description: str,
    width: int = 12,
    height: int = 8,
) -> Json:
    """A heatmap that buckets the series' values per time step (distribution over nodes)."""
    options = {
        "calculate": True,
        "cellGap": 1,
        "color": {
            "mode": "scheme",
            "scheme": "Oranges",
            "fill": "dark-orange",
            "scale": "exponential",
            "exponent": 0.5,
            "steps": 64,
            "reverse": False,
        },
        "yAxis": {"axisPlacement": "left", "unit": unit, "reverse": False},
        "showValue": "never",
        "tooltip": {"mode": "single", "yHistogram": False},
        "legend": {"show": True},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
    }
    return _panel(
        "heatmap",
        title,
        queries,
        unit,
        description=description,
        options=options,
        custom={
            "hideFrom": {"legend": False, "tooltip": False, "viz": False},
            "scaleDistribution": {"type": "linear"},
        },
        width=width,
        height=height,
    )


def state_timeline(
    title: str,
    queries: Sequence[Query],
    unit: str,
    *,
    description: str,
    mappings: list[Json],
    width: int = 12,
    height: int = 8,
) -> Json:
    """One lane per series, coloured by value mappings (e.g. up/down)."""
    options = {
        "showValue": "never",
        "rowHeight": 0.9,
        "mergeValues": True,
        "alignValue": "left",
        "legend": _legend(),
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return _panel(
        "state-timeline",
        title,
        queries,
        unit,
        description=description,
        options=options,
        custom={"fillOpacity": 80, "lineWidth": 0},
        mappings=mappings,
        color={"mode": "thresholds"},
        width=width,
        height=height,
    )


def alertlist(title: str, *, description: str, width: int = 12, height: int = 8) -> Json:
    """Firing and pending alerts (Grafana's alert list reads the alerting API, no query)."""
    return {
        "type": "alertlist",
        "title": title,
        "description": description,
        "options": {
            "viewMode": "list",
            "groupMode": "default",
            "groupBy": [],
            "maxItems": 20,
            "sortOrder": 1,
            "dashboardAlerts": False,
            "alertName": "",
            "alertInstanceLabelFilter": "",
            "showInstances": True,
            "stateFilter": {
                "firing": True,
                "pending": True,
                "noData": False,
                "normal": False,
                "error": True,
            },
        },
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
    }
