"""Overview: cards, the what-if panel and the constraint breakdown."""

from __future__ import annotations

from confscale.planner.web.components import cards, error_figure, graph
from confscale.planner.web.context import Context, defaults, safe, what_if_changes
from confscale.planner.web.figures import constraint_chart
from confscale.planner.web.view import overview_cards
from dash import Dash, Input, Output, dcc, html
from dash.development.base_component import Component

from confscale.thresholds import PARTICIPANTS_PER_NODE, TARGET

PATH = "/"
NAME = "Overview"
CAMERA_PROFILES = {"low": 100.0, "medium": 200.0, "high": 500.0, "hd": 800.0}


def _control(label: str, widget: Component) -> html.Div:
    """A what-if control: its label (tied to the widget by id) above the widget."""
    return html.Div([html.Label(label, htmlFor=widget.id), widget], className="control")


def _slider(
    control_id: str,
    label: str,
    low: float,
    high: float,
    step: float,
    value: object,
    marks: dict[float, str],
) -> html.Div:
    return _control(
        label,
        dcc.Slider(
            id=control_id,
            min=low,
            max=high,
            step=step,
            value=value,
            marks=marks,
            tooltip={"placement": "bottom", "always_visible": False},
            updatemode="drag",  # keyboard moves count too; what_if takes milliseconds
        ),
    )


def what_if_panel(ctx: Context, store: dict[str, object] | None = None) -> html.Div:
    snapshot = ctx.snapshot()
    values = defaults(snapshot) if snapshot is not None else {}
    values.update(what_if_changes(store))  # coming back to the page keeps the inputs
    camera = values.get("camera_kbit") or CAMERA_PROFILES["medium"]
    profile = next((k for k, v in CAMERA_PROFILES.items() if v == camera), "medium")
    pct = {0: "0 %", 0.5: "50 %", 1: "100 %"}
    return html.Div(
        [
            html.H3("What if"),
            _slider(
                "wi-growth",
                "Growth (× demand)",
                0.5,
                3.0,
                0.05,
                values.get("growth", 1.0),
                {0.5: "0.5", 1: "1", 2: "2", 3: "3"},
            ),
            _slider(
                "wi-webcam", "Webcam share", 0.0, 1.0, 0.01, values.get("webcam_share", 0.1), pct
            ),
            _control(
                "Camera profile",
                dcc.Dropdown(
                    id="wi-camera",
                    clearable=False,
                    value=profile,
                    options=[
                        {"label": f"{k} ({v:g} kbit/s)", "value": k}
                        for k, v in CAMERA_PROFILES.items()
                    ],
                ),
            ),
            _slider(
                "wi-screen",
                "Screen-share viewers (share)",
                0.0,
                1.0,
                0.01,
                values.get("screen_share_share", 0.0),
                pct,
            ),
            _slider(
                "wi-headroom-cpu",
                "CPU headroom target",
                0.3,
                1.0,
                0.01,
                values.get("headroom_cpu", TARGET["cpu"]),
                {0.5: "50 %", 0.75: "75 %", 1: "100 %"},
            ),
            _slider(
                "wi-headroom-link",
                "Link headroom target",
                0.3,
                1.0,
                0.01,
                values.get("headroom_transmit", 0.8),
                {0.5: "50 %", 0.8: "80 %", 1: "100 %"},
            ),
            _slider(
                "wi-headroom-participants",
                f"Participants target (× {_seats(snapshot)} per node)",
                0.3,
                1.5,
                0.01,
                values.get("headroom_participants", 1.0),
                {0.5: "0.5", 1: "1", 1.5: "1.5"},
            ),
            _slider(
                "wi-headroom-jitsi",
                "Jitsi stress target (bridges)",
                0.3,
                1.0,
                0.01,
                values.get("headroom_jitsi_stress", TARGET["jitsi_stress"]),
                {0.5: "0.5", 0.8: "0.8", 1: "1"},
            ),
            _control(
                "Redundancy (N + R)",
                dcc.Input(
                    id="wi-redundancy",
                    type="number",
                    min=0,
                    max=10,
                    step=1,
                    value=values.get("redundancy", 1),
                ),
            ),
            _control(
                "Link capacity per node (Mbit/s)",
                dcc.Input(
                    id="wi-link",
                    type="number",
                    min=10,
                    max=100000,
                    step=10,
                    value=_link_mbit(values, snapshot),
                ),
            ),
            _control(
                "Demand band",
                dcc.RadioItems(
                    id="wi-band",
                    value=values.get("band", 95),
                    inline=True,
                    options=[{"label": f" {b} %", "value": b} for b in (50, 80, 95)],
                ),
            ),
            _control(
                "Procurement lead time (days)",
                dcc.Input(
                    id="wi-lead",
                    type="number",
                    min=0,
                    max=365,
                    step=1,
                    value=ctx.options.lead_time_days,
                ),
            ),
            html.Div(id="wi-error", className="control-error"),
        ],
        className="what-if",
        id="what-if-panel",
    )


def _seats(snapshot: object) -> str:
    seats = snapshot.capacity.participants if snapshot is not None else PARTICIPANTS_PER_NODE  # type: ignore[attr-defined]
    return f"{seats:g}"


def _link_mbit(values: dict[str, object], snapshot: object) -> float:
    link = values.get("link_capacity_bytes_per_second") or (
        snapshot.capacity.link_bytes_per_second if snapshot is not None else 62.5e6  # type: ignore[attr-defined]
    )
    return round(float(link) * 8 / 1e6)  # type: ignore[arg-type]


def layout(ctx: Context, store: dict[str, object] | None = None) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    dcc.Loading(html.Div(id="overview-cards", className="cards")),
                    dcc.RadioItems(
                        id="constraint-horizon",
                        value="next_peak",
                        inline=True,
                        className="toolbar",
                        options=[
                            {"label": " now", "value": "now"},
                            {"label": " at the next peak", "value": "next_peak"},
                            {"label": " in 4 weeks", "value": "4w"},
                        ],
                    ),
                    graph("constraint-chart", 380),
                ],
                className="main-column",
            ),
            what_if_panel(ctx, store),
        ],
        className="overview",
    )


def store_from_controls(
    growth, webcam, camera, screen, cpu, link, participants, redundancy, link_mbit, band, jitsi=None
) -> dict[str, object]:
    """The what-if store from the control values (None where a control is empty)."""

    def number(value: object) -> float | None:
        return None if value in (None, "") else float(value)  # type: ignore[arg-type]

    mbit = number(link_mbit)
    red = number(redundancy)
    return {
        "growth": number(growth),
        "webcam_share": number(webcam),
        "camera_kbit": CAMERA_PROFILES.get(str(camera)),
        "screen_share_share": number(screen),
        "headroom_cpu": number(cpu),
        "headroom_transmit": number(link),
        "headroom_participants": number(participants),
        "redundancy": None if red is None else int(red),
        "link_capacity_bytes_per_second": None if mbit is None else mbit * 1e6 / 8,
        "band": None if band is None else int(band),
        "headroom_jitsi_stress": number(jitsi),
    }


def register(app: Dash, ctx: Context) -> None:
    @app.callback(
        Output("what-if", "data"),
        Input("wi-growth", "value"),
        Input("wi-webcam", "value"),
        Input("wi-camera", "value"),
        Input("wi-screen", "value"),
        Input("wi-headroom-cpu", "value"),
        Input("wi-headroom-link", "value"),
        Input("wi-headroom-participants", "value"),
        Input("wi-redundancy", "value"),
        Input("wi-link", "value"),
        Input("wi-band", "value"),
        Input("wi-headroom-jitsi", "value"),
    )
    def controls_to_store(*values: object) -> dict[str, object]:
        return store_from_controls(*values)

    def failed(exc: Exception) -> tuple[object, ...]:
        return [], error_figure("cannot draw: see the log"), f"{exc}"

    @app.callback(
        Output("overview-cards", "children"),
        Output("constraint-chart", "figure"),
        Output("wi-error", "children"),
        Input("what-if", "data"),
        Input("wi-lead", "value"),
        Input("constraint-horizon", "value"),
        Input("tick", "n_intervals"),
    )
    @safe(failed)
    def update(
        store: dict[str, object] | None, lead: float | None, horizon: str | None, _tick: int
    ):
        snapshot = ctx.snapshot()
        if snapshot is None:
            return [], error_figure("no planner result yet"), ""
        error = ""
        try:
            sizing = ctx.service.what_if(**what_if_changes(store))
        except ValueError as exc:  # out-of-range input: say which, keep the last good sizing
            sizing, error = snapshot.sizing, str(exc)
        lead_days = ctx.options.lead_time_days if lead is None else float(lead)
        return (
            cards(overview_cards(snapshot, sizing, lead_days)),
            constraint_chart(sizing, horizon or "next_peak"),
            error,
        )
