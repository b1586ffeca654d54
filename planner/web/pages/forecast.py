"""Forecast: the fan chart and the weekday × hour heatmaps."""

from __future__ import annotations

from confscale.planner.web.components import error_figure, graph
from confscale.planner.web.context import Context, safe, what_if_changes, what_if_inputs
from confscale.planner.web.figures import WINDOWS, fan_chart, heatmaps, packing_factor
from dash import Dash, Input, Output, dcc, html

PATH = "/forecast"
NAME = "Forecast"
WINDOW_LABELS = {
    "1w": "1 week",
    "4w": "4 weeks",
    "term": "this term",
    "90d": "90 days",
    "all": "all",
}


def layout(ctx: Context, store: dict[str, object] | None = None) -> html.Div:
    snapshot = ctx.snapshot()
    past = getattr(snapshot, "past_forecasts", None)
    overlay_options = [
        {"label": " overlay past forecasts on actuals", "value": "past", "disabled": past is None}
    ]
    return html.Div(
        [
            html.Div(
                [
                    dcc.RadioItems(
                        id="fan-window",
                        value="4w",
                        inline=True,
                        options=[{"label": f" {WINDOW_LABELS[w]}", "value": w} for w in WINDOWS],
                    ),
                    dcc.Checklist(id="fan-overlay", value=[], options=overlay_options, inline=True),
                    html.Span(
                        ""
                        if past is not None
                        else "(past forecasts: not published by this planner engine yet)",
                        className="hint",
                    ),
                ],
                className="toolbar",
            ),
            graph("fan-chart", 460),
            html.Div(
                [graph("heatmap-demand", 340), graph("heatmap-servers", 340)],
                className="two-columns",
            ),
        ]
    )


def register(app: Dash, ctx: Context) -> None:
    def failed(exc: Exception) -> tuple[object, ...]:
        return (error_figure(f"cannot draw: {exc}"),) * 3

    @app.callback(
        Output("fan-chart", "figure"),
        Output("heatmap-demand", "figure"),
        Output("heatmap-servers", "figure"),
        Input("fan-window", "value"),
        Input("fan-overlay", "value"),
        Input("what-if", "data"),
    )
    @safe(failed)
    def update(window: str, overlay: list[str] | None, store: dict[str, object] | None):
        snapshot = ctx.snapshot()
        if snapshot is None:
            return (error_figure("no planner result yet"),) * 3
        try:
            inputs = what_if_inputs(snapshot, store)
            sizing = ctx.service.what_if(**what_if_changes(store))
        except ValueError:  # the overview page says which input; draw the engine's own
            inputs, sizing = snapshot.sizing.what_if, snapshot.sizing
        past = getattr(snapshot, "past_forecasts", None) if "past" in (overlay or []) else None
        fan = fan_chart(snapshot, sizing, window or "4w", past)
        demand, servers = heatmaps(snapshot, inputs, packing_factor(sizing))
        return fan, demand, servers
