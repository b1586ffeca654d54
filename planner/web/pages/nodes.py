"""Nodes: the pool's nodes like Scalelite's ``status``, sortable, with colour thresholds."""

from __future__ import annotations

import pandas as pd
from confscale.planner.web.context import Context, safe
from confscale.planner.web.view import NODE_TABLE_COLUMNS, node_rows
from dash import Dash, Input, Output, State, callback_context, dash_table, dcc, html
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
    for state, colour in (
        ("down", RED),
        ("stale", AMBER),
        ("out", AMBER),
        ("held", AMBER),
        ("maintenance", AMBER),
    ):
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
            _maintenance_form(ctx),
        ]
    )


def _maintenance_form(ctx: Context) -> html.Div:
    """Start or end a node's maintenance (needs the page's login: its user is who)."""
    if ctx.maintenance is None:
        return html.Div()
    return html.Div(
        [
            html.H3("Maintenance"),
            dcc.Input(id="maint-node", type="text", placeholder="node (bbb-03)"),
            dcc.Input(id="maint-reason", type="text", placeholder="reason", maxLength=200),
            dcc.Input(
                id="maint-hours",
                type="number",
                placeholder="hours (empty: until ended)",
                min=0,
                max=8784,
            ),
            html.Button("Start maintenance", id="maint-start"),
            html.Button("End maintenance", id="maint-end"),
            html.Div(id="maint-result", className="hint"),
        ],
        className="maintenance",
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

    @app.callback(
        Output("maint-result", "children"),
        Input("maint-start", "n_clicks"),
        Input("maint-end", "n_clicks"),
        State("maint-node", "value"),
        State("maint-reason", "value"),
        State("maint-hours", "value"),
        prevent_initial_call=True,
    )
    @safe(lambda exc: f"not done: {exc}")
    def maintenance(_start, _end, node, reason, hours):
        return change_maintenance(ctx, callback_context.triggered_id, node, reason, hours)


def change_maintenance(ctx: Context, action: str | None, node, reason, hours) -> str:
    """The page's maintenance write (plain words back; nothing done without the login)."""
    import time

    from confscale.planner.maintenance import MaintenanceError, MaintenanceRegistry, checked
    from flask import request

    registry = ctx.maintenance
    auth = ctx.page_auth
    header = request.headers.get("Authorization")
    if not isinstance(registry, MaintenanceRegistry) or auth is None or not auth.allows(header):  # type: ignore[attr-defined]
        return "maintenance from the page needs the page's login (CONFSCALE_WEB_AUTH_FILE)"
    who = auth.user  # type: ignore[attr-defined]
    if action == "maint-end":
        entry = registry.end(str(node or ""), who)
        if entry is None:
            return f"{node} is not in maintenance"
        ctx.planners.refresh_placements()
        return f"maintenance of {node} ended by {who}"
    now = time.time()
    until = None if hours in (None, "") else now + float(hours) * 3600
    try:
        entry = registry.start(checked(node, reason, who, until, None, now=now))
    except MaintenanceError as exc:
        return f"not started: {exc}"
    ctx.planners.refresh_placements()
    return f"{entry.node} is in {entry.describe()}"


def _utc(epoch: float) -> str:
    return pd.Timestamp(epoch, unit="s").strftime("%Y-%m-%d %H:%M:%S UTC")
