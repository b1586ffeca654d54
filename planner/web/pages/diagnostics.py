"""Diagnostics: backtest per method and horizon, band coverage, residuals, model source."""

from __future__ import annotations

import pandas as pd
from confscale.planner.web.components import error_figure, graph
from confscale.planner.web.context import Context, safe
from confscale.planner.web.figures import coverage_chart, residuals_chart
from confscale.planner.web.view import backtest_horizon_rows, backtest_rows, ordered_buckets
from dash import Dash, Input, Output, dash_table, html

PATH = "/diagnostics"
NAME = "Diagnostics"
BACKTEST_COLUMNS = (
    ("method", "Method"),
    ("chosen_for", "Chosen for lead times"),
    ("mase", "MASE"),
    ("coverage_80", "Coverage 80 %"),
    ("coverage_95", "Coverage 95 %"),
    ("peak_ape", "Daily peak APE"),
    ("origins", "Origins"),
)


HORIZON_COLUMNS = (
    ("bucket", "Lead time"),
    ("method", "Method"),
    ("mase", "MASE"),
    ("coverage_80", "Coverage 80 %"),
    ("coverage_95", "Coverage 95 %"),
    ("n", "Targets"),
    ("chosen", "Used"),
)


def _table(table_id: str, columns: tuple[tuple[str, str], ...], **extra: object):
    return dash_table.DataTable(
        id=table_id,
        columns=[{"id": c, "name": n} for c, n in columns],
        data=[],
        sort_action="native",
        style_cell={"fontFamily": "inherit", "padding": "4px 8px"},
        style_header={"fontWeight": "bold"},
        **extra,
    )


def layout(ctx: Context, store: dict[str, object] | None = None) -> html.Div:
    snapshot = ctx.snapshot()
    residuals = getattr(snapshot, "residuals", None)
    residual_part = (
        graph("residuals-chart", 380)
        if isinstance(residuals, pd.DataFrame) and not residuals.empty
        else html.P(
            "Backtest residuals: none yet (no backtest: the history is too short); "
            "the notes above say how much is missing.",
            className="hint",
            id="residuals-missing",
        )
    )
    return html.Div(
        [
            html.H3("Rolling-origin backtest"),
            _table("backtest-table", BACKTEST_COLUMNS),
            html.Div(id="backtest-note", className="hint"),
            html.H3("Per lead time"),
            _table(
                "backtest-horizon-table",
                HORIZON_COLUMNS,
                style_data_conditional=[
                    {
                        "if": {"filter_query": '{chosen} = "yes"'},
                        "fontWeight": "bold",
                        "backgroundColor": "#eef5ff",
                    }
                ],
            ),
            graph("coverage-chart", 340),
            residual_part,
            html.H3("Resource model"),
            html.Pre(id="model-info", className="model-info"),
        ]
    )


def register(app: Dash, ctx: Context) -> None:
    def failed(exc: Exception) -> tuple[object, ...]:
        return [], [], f"cannot show the backtest: {exc}", error_figure("no data"), ""

    @app.callback(
        Output("backtest-table", "data"),
        Output("backtest-horizon-table", "data"),
        Output("backtest-note", "children"),
        Output("coverage-chart", "figure"),
        Output("model-info", "children"),
        Input("backtest-table", "id"),
    )
    @safe(failed)
    def update(_id: str):
        snapshot = ctx.snapshot()
        if snapshot is None:
            return [], [], "no planner result yet", error_figure("no planner result yet"), ""
        rows = backtest_rows(snapshot)
        note = (
            "MASE below 1 beats the in-sample naive scale; compare each method with "
            "seasonal_naive. Lead-time buckets: "
            + ", ".join(f"{b} → {m}" for b, m in ordered_buckets(snapshot.method_by_horizon))
            if rows
            else "No backtest: " + "; ".join(snapshot.warnings or ("history too short",))
        )
        model = snapshot.model.as_dict()
        info = "\n".join(f"{key}: {value}" for key, value in model.items())
        return rows, backtest_horizon_rows(snapshot), note, coverage_chart(snapshot), info

    @app.callback(Output("residuals-chart", "figure"), Input("backtest-table", "id"))
    @safe(lambda exc: error_figure(f"cannot draw: {exc}"))
    def residuals(_id: str):
        snapshot = ctx.snapshot()
        frame = getattr(snapshot, "residuals", None)
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            return error_figure("no residuals published")
        return residuals_chart(frame)
