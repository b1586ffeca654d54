"""Plotly figures of the page, as pure functions of a snapshot and what-if inputs.

Figure shaping only: the numbers come from the engine (forecast frame, sizing, backtest);
where a figure needs servers for a demand it asks :mod:`planner.sizing`'s own functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from confscale.planner.sizing import (
    CONSTRAINTS,
    HORIZONS,
    Sizing,
    WhatIf,
    constraint_demand,
    effective_capacity,
    largest_meeting_load,
    servers_for,
    total_servers,
)
from confscale.planner.snapshot import Snapshot

WINDOWS: tuple[str, ...] = ("1w", "4w", "term", "90d", "all")
BAND_COLOURS = {
    95: "rgba(31,119,180,0.12)",
    80: "rgba(31,119,180,0.22)",
    50: "rgba(31,119,180,0.35)",
}
REGIME_COLOURS = {"holiday": "rgba(255,165,0,0.12)", "event": "rgba(148,103,189,0.12)"}
LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
    "legend": {"orientation": "h", "y": -0.15},
}


def _horizons(value: object) -> dict[str, Any]:
    """A per-horizon figure table of the sizing's JSON (``{}`` when absent)."""
    return value if isinstance(value, dict) else {}


def _number(value: object, default: float) -> float:
    """A figure of the sizing's JSON, or ``default`` when it is absent (None, missing)."""
    return float(value) if isinstance(value, int | float) else default


def capacity_participants(sizing: Sizing, servers: int) -> dict[str, float | None]:
    """Participants the ``servers`` carry at the headroom targets and at full capacity.

    Demand per constraint is linear in participants, so each constraint's capacity is
    expressed in participants with the sizing's own demand ratios; the lowest one binds.
    """
    people = _horizons(sizing.per_constraint.get("participants", {}).get("demand"))
    target: list[float] = []
    hard: list[float] = []
    for k in CONSTRAINTS:
        per = sizing.per_constraint.get(k, {})
        demand = _horizons(per.get("demand"))
        ratios = (
            float(people[h]) / float(demand[h])
            for h in HORIZONS
            if (demand.get(h) or 0) > 0 and (people.get(h) or 0) > 0
        )
        ratio = next(ratios, None)
        cap = _number(per.get("capacity_per_node"), 0.0)
        if ratio is None or cap <= 0:
            continue
        target.append(servers * _number(per.get("target_utilisation"), 1.0) * cap * ratio)
        hard.append(servers * cap * ratio)
    return {
        "target": min(target) if target else None,
        "hard": min(hard) if hard else None,
    }


def regime_spans(regimes: pd.Series) -> Iterator[tuple[pd.Timestamp, pd.Timestamp, str]]:
    """Contiguous runs of a regime other than term: (start, end, regime)."""
    if regimes.empty:
        return
    values = regimes.fillna("term").astype(str)
    run = (values != values.shift()).cumsum()
    step = pd.Timedelta(hours=1)
    for _, part in values.groupby(run):
        regime = part.iloc[0]
        if regime != "term":
            yield part.index[0], part.index[-1] + step, regime


def window_range(forecast: pd.DataFrame, window: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """x-axis range for a window around the last observed hour (None: everything)."""
    actual = forecast["actual"].dropna()
    if actual.empty or window == "all":
        return None
    now, end = actual.index[-1], forecast.index[-1]
    if window == "1w":
        return now - pd.Timedelta(days=7), min(end, now + pd.Timedelta(days=7))
    if window == "4w":
        return now - pd.Timedelta(days=28), end
    if window == "90d":
        return now - pd.Timedelta(days=90), end
    if window == "term":
        regimes = forecast["regime"].fillna("term").astype(str)
        same = (regimes != regimes.shift()).cumsum()
        current = same.loc[now]
        run = regimes.index[same == current]
        return run[0], run[-1]
    raise ValueError(f"unknown window {window!r}; expected one of {', '.join(WINDOWS)}")


def _utc_values(index: pd.Index) -> np.ndarray:
    stamps = pd.DatetimeIndex(index)
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    return stamps.to_numpy()


def _naive(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def fan_chart(
    snapshot: Snapshot,
    sizing: Sizing,
    window: str = "4w",
    past_forecasts: pd.DataFrame | None = None,
) -> go.Figure:
    """History of hourly peaks, forecast median with 50/80/95 % bands, capacity lines."""
    frame = snapshot.forecast
    fig = go.Figure()
    is_future = frame["actual"].isna().to_numpy()
    future = frame[is_future]
    # naive UTC datetime64 values: plotly deep-copies its inputs, and a tz-aware index is
    # an object array of Timestamps (copying those was most of the chart's time)
    times = _utc_values(frame.index)
    future_times = times[is_future]
    for level in (95, 80, 50):
        lower, upper = future.get(f"lower_{level}"), future.get(f"upper_{level}")
        if lower is None or upper is None or upper.isna().all():
            continue
        fig.add_trace(
            go.Scatter(
                x=future_times,
                y=upper.to_numpy(),
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                name=f"upper {level} %",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=future_times,
                y=lower.to_numpy(),
                line={"width": 0},
                fill="tonexty",
                fillcolor=BAND_COLOURS[level],
                name=f"{level} % band",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=times,
            y=frame["actual"].to_numpy(),
            name="hourly peak (history)",
            line={"color": "#333", "width": 1},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=future_times,
            y=future["median"].to_numpy(),
            name="forecast median",
            line={"color": "#1f77b4", "width": 2},
        )
    )
    if past_forecasts is not None and not past_forecasts.empty:
        # what the planner said a day ahead (the backtest's origins), over the actuals
        fig.add_trace(
            go.Scatter(
                x=_utc_values(past_forecasts.index),
                y=past_forecasts["median"].to_numpy(),
                name="forecast a day ahead (past)",
                line={"color": "#d62728", "dash": "dot", "width": 1.5},
            )
        )
    lines = capacity_participants(sizing, sizing.servers_online)
    for key, dash, colour, where in (
        ("target", "dash", "#2ca02c", "bottom left"),
        ("hard", "solid", "#d62728", "top right"),
    ):
        value = lines[key]
        if value is not None and math.isfinite(value):
            fig.add_hline(
                y=value,
                line={"dash": dash, "color": colour, "width": 1.5},
                annotation_text=f"{key} capacity of {sizing.servers_online} servers",
                annotation_position=where,
            )
    for start, end, regime in regime_spans(frame["regime"]):
        fig.add_vrect(
            x0=_naive(start),
            x1=_naive(end),
            fillcolor=REGIME_COLOURS.get(regime, "rgba(0,0,0,0.06)"),
            line_width=0,
            layer="below",
            annotation_text=regime,
            annotation_position="top right",
        )
    fig.update_layout(
        title="Pool participants: hourly peaks and forecast", yaxis_title="participants", **LAYOUT
    )
    span = window_range(frame, window)
    if span is not None:
        fig.update_xaxes(range=[_naive(span[0]), _naive(span[1])])
    return fig


def weekday_hour(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Weekday × hour (UTC) table of the maximum of ``column`` over the forecast rows."""
    future = frame[frame["actual"].isna()]
    values = future[column]
    table = values.groupby([values.index.dayofweek, values.index.hour]).max().unstack()
    table.index = [("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[d] for d in table.index]
    return table.reindex(columns=range(24))


def servers_for_participants(
    snapshot: Snapshot, what_if: WhatIf, participants: float, inflation: float = 1.0
) -> int | None:
    """Servers the engine's sizing asks for at a pool-wide participant count: the analytic
    formula at ``inflation`` × the demand (the packing-aware count's factor over it, see
    :func:`packing_factor`), so the cells agree with the horizon cards."""
    if not math.isfinite(participants):
        return None
    caps = effective_capacity(snapshot.capacity, snapshot.model, what_if)
    largest = largest_meeting_load(snapshot.mix, snapshot.model, what_if)
    demand = constraint_demand(participants, snapshot.mix, snapshot.model, what_if)
    demand = {k: v * inflation for k, v in demand.items()}
    total, _ = total_servers(servers_for(demand, largest, caps, what_if), what_if)
    return total


def packing_factor(sizing: Sizing) -> float:
    """The next peak's packing-aware count ÷ the analytic formula (1 without packing)."""
    packing = sizing.packing.get("next_peak") or sizing.packing.get("now") or {}
    value = packing.get("inflation")
    return float(value) if isinstance(value, int | float) and value > 0 else 1.0


def heatmaps(
    snapshot: Snapshot, what_if: WhatIf, inflation: float = 1.0
) -> tuple[go.Figure, go.Figure]:
    """Forecast demand (median) and servers needed (upper band) per weekday × hour, the
    count at ``inflation`` (:func:`packing_factor` of the sizing the cards show)."""
    frame = snapshot.forecast
    demand = weekday_hour(frame, "median")
    column = f"upper_{what_if.band}"
    upper_column = column if column in frame and frame[column].notna().any() else "median"
    upper = weekday_hour(frame, upper_column)
    servers = upper.map(
        lambda v: (
            float("nan")
            if v is None or not math.isfinite(v)
            else float(
                servers_for_participants(snapshot, what_if, float(v), inflation) or float("nan")
            )
        )
    )
    hours = [f"{h:02d}" for h in range(24)]
    demand_fig = go.Figure(
        go.Heatmap(
            z=demand.to_numpy(),
            x=hours,
            y=list(demand.index),
            colorscale="Blues",
            colorbar={"title": "participants"},
        )
    )
    demand_fig.update_layout(title="Forecast demand (median), weekday × hour UTC", **LAYOUT)
    servers_fig = go.Figure(
        go.Heatmap(
            z=servers.to_numpy(),
            x=hours,
            y=list(servers.index),
            colorscale="OrRd",
            colorbar={"title": "servers"},
        )
    )
    servers_fig.update_layout(
        title=f"Servers needed ({what_if.band} % band, what-if)",
        **LAYOUT,
    )
    for fig in (demand_fig, servers_fig):
        fig.update_yaxes(autorange="reversed")
    return demand_fig, servers_fig


def constraint_chart(sizing: Sizing, horizon: str = "next_peak") -> go.Figure:
    """Servers needed per constraint at ``horizon``; the binding one highlighted."""
    binding = sizing.binding_by_horizon.get(horizon, sizing.binding_constraint)
    names, values, colours, labels = [], [], [], []
    for k in CONSTRAINTS:
        per = sizing.per_constraint.get(k, {})
        value = _horizons(per.get("servers_needed")).get(horizon) if isinstance(per, dict) else None
        names.append(k)
        values.append(0 if value is None else value)
        labels.append("does not fit" if value is None else str(value))
        colours.append("#d62728" if k == binding else "#9ecae1")
    fig = go.Figure(
        go.Bar(x=names, y=values, marker_color=colours, text=labels, textposition="outside")
    )
    fig.add_hline(
        y=sizing.servers_online,
        line={"dash": "dash", "color": "#333"},
        annotation_text=f"online: {sizing.servers_online}",
    )
    fig.update_layout(
        title=f"Servers needed per constraint ({horizon.replace('_', ' ')}); binding: {binding}",
        yaxis_title="servers",
        **LAYOUT,
    )
    return fig


def coverage_chart(snapshot: Snapshot) -> go.Figure:
    """Backtest interval coverage per method against the nominal 80 % and 95 %."""
    table = snapshot.backtest
    fig = go.Figure()
    if table.empty:
        fig.add_annotation(
            text="no backtest yet: the history is too short (see above)",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
        )
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.update_layout(title="Backtest: share of actuals inside the bands", **LAYOUT)
        return fig
    for level in (80, 95):
        column = f"coverage_{level}"
        if column in table:
            fig.add_trace(
                go.Bar(x=[str(m) for m in table.index], y=table[column], name=f"{level} % band")
            )
            fig.add_hline(y=level / 100, line={"dash": "dot"}, annotation_text=f"nominal {level} %")
    fig.update_layout(
        title="Backtest: share of actuals inside the bands",
        yaxis_tickformat=".0%",
        barmode="group",
        **LAYOUT,
    )
    return fig


RESIDUAL_COLOURS = {"confscale": "#1f77b4", "seasonal_naive": "#999999"}


def residuals_chart(residuals: pd.DataFrame) -> go.Figure:
    """Out-of-sample errors (actual − forecast, participants) per lead-time bucket and
    method as boxes (2.5/25/50/75/97.5 % quantiles, computed here: the browser gets ten
    numbers per box, not every residual), and the mean absolute error per local hour."""
    from plotly.subplots import make_subplots

    column = "raw_error" if "raw_error" in residuals else "error"
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.45, 0.55],
        subplot_titles=("by lead time", "mean absolute error by hour of day"),
    )
    buckets = list(dict.fromkeys(residuals["bucket"])) if "bucket" in residuals else []
    for method, part in residuals.groupby("method", sort=True):
        colour = RESIDUAL_COLOURS.get(str(method), "#ff7f0e")
        if buckets:
            stats = part.groupby("bucket")[column].quantile([0.025, 0.25, 0.5, 0.75, 0.975])
            stats = stats.unstack().reindex(buckets).dropna()
            fig.add_trace(
                go.Box(
                    x=list(stats.index),
                    lowerfence=stats[0.025].to_numpy(),
                    q1=stats[0.25].to_numpy(),
                    median=stats[0.5].to_numpy(),
                    q3=stats[0.75].to_numpy(),
                    upperfence=stats[0.975].to_numpy(),
                    name=str(method),
                    marker_color=colour,
                    legendgroup=str(method),
                ),
                row=1,
                col=1,
            )
        if "hour" in part:
            by_hour = part.groupby("hour")[column].apply(lambda v: float(np.mean(np.abs(v))))
            fig.add_trace(
                go.Scatter(
                    x=by_hour.index.to_numpy(),
                    y=by_hour.to_numpy(),
                    name=str(method),
                    mode="lines+markers",
                    line={"color": colour},
                    legendgroup=str(method),
                    showlegend=not buckets,
                ),
                row=1,
                col=2,
            )
    unit = "participants" if column == "raw_error" else "scaled error"
    fig.update_yaxes(title_text=f"actual − forecast ({unit})", row=1, col=1)
    fig.update_yaxes(title_text=unit, row=1, col=2)
    fig.update_xaxes(title_text="local hour", dtick=3, row=1, col=2)
    fig.update_layout(title="Backtest residuals (out of sample)", boxmode="group", **LAYOUT)
    return fig
