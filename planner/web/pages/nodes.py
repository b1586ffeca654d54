"""Nodes: the pool's nodes like Scalelite's ``status``, sortable, with colour thresholds."""

from __future__ import annotations

import pandas as pd
from confscale.planner.web.context import Context, safe
from confscale.planner.web.view import NODE_TABLE_COLUMNS, node_rows
from dash import Dash, Input, Output, dash_table, html
from dash.dash_table.Format import Format, Scheme

from confscale.thresholds import PRESSURE_BAD, PRESSURE_WARN, UTILISATION_BAD, UTILISATION_WARN

PATH = "/nodes"
NAME = "Nodes"
AMBER, RED = "#fff3cd", "#f8d7da"


def _column(column: str, header: str, kind: str) -> dict[str, object]:
    spec: dict[str, object] = {"id": column, "name": header}
    if kind == "pct":
        spec.update(type="numeric", format=Format(precision=1, scheme=Scheme.percentage))
    elif kind == "ratio":
        spec.update(type="numeric", format=Format(precision=2, scheme=Scheme.fixed))
    elif kind == "int":
        spec.update(type="numeric")
    return spec


def _thresholds() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = []
    for column, warn, bad in (
        ("pressure", PRESSURE_WARN, PRESSURE_BAD),
        ("cpu_utilisation", UTILISATION_WARN, UTILISATION_BAD),
        ("link_utilisation", UTILISATION_WARN, UTILISATION_BAD),
    ):
        rules.append(
            {
                "if": {
                    "filter_query": f"{{{column}}} >= {warn} && {{{column}}} < {bad}",
                    "column_id": column,
                },
                "backgroundColor": AMBER,
            }
        )
        rules.append(
            {
                "if": {"filter_query": f"{{{column}}} >= {bad}", "column_id": column},
                "backgroundColor": RED,
                "fontWeight": "bold",
            }
        )
    for state, colour in (("down", RED), ("stale", AMBER), ("out", AMBER), ("held", AMBER)):
        rules.append(
            {
                "if": {"filter_query": f'{{state}} = "{state}"', "column_id": "state"},
                "backgroundColor": colour,
            }
        )
    rules.append(
        {"if": {"filter_query": "{weight} = 0", "column_id": "weight"}, "backgroundColor": RED}
    )
    return rules


def layout(ctx: Context, store: dict[str, object] | None = None) -> html.Div:
    return html.Div(
        [
            html.P(
                f"Pressure amber from {PRESSURE_WARN:g} (back in), red from {PRESSURE_BAD:g} "
                "(taken out of placement); CPU and link amber from "
                f"{UTILISATION_WARN:.0%}, red from {UTILISATION_BAD:.0%} of capacity.",
                className="hint",
            ),
            dash_table.DataTable(
                id="nodes-table",
                columns=[_column(*spec) for spec in NODE_TABLE_COLUMNS],
                data=[],
                sort_action="native",
                sort_mode="multi",
                filter_action="native",
                page_action="none",
                style_table={"overflowX": "auto"},
                style_cell={"fontFamily": "inherit", "padding": "4px 8px"},
                style_header={"fontWeight": "bold"},
                style_cell_conditional=[
                    {"if": {"column_id": c}, "textAlign": "left"}
                    for c, _, kind in NODE_TABLE_COLUMNS
                    if kind == "text"
                ],
                style_data_conditional=_thresholds(),
            ),
            html.Div(id="nodes-updated", className="hint"),
        ]
    )


def register(app: Dash, ctx: Context) -> None:
    @app.callback(
        Output("nodes-table", "data"),
        Output("nodes-updated", "children"),
        Input("nodes-table", "id"),
        Input("tick", "n_intervals"),
    )
    @safe(lambda exc: ([], f"cannot show the nodes: {exc}"))
    def update(_id: str, _tick: int):
        snapshot = ctx.snapshot()
        if snapshot is None:
            return [], "no planner result yet"
        placement = snapshot.placement
        return node_rows(snapshot.nodes), (
            f"{len(snapshot.nodes)} nodes; placement at "
            f"{_utc(placement.generated_at)}; recommended next: {placement.recommended or '—'}"
        )


def _utc(epoch: float) -> str:
    return pd.Timestamp(epoch, unit="s").strftime("%Y-%m-%d %H:%M:%S UTC")
