"""The Dash app of the planner: a shell (navigation, banners) and a small router.

``create_app(service)`` builds the page on its own Flask server (``server = app.server``
for gunicorn, see :func:`wsgi`); ``mount(flask_app, service)`` puts it on the Flask app of
``confscale-planner serve`` beside the JSON API. Callbacks only move data between the
page and :mod:`confscale.planner.web.view` / :mod:`confscale.planner.web.figures`; the
computation runs in the service's background job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from confscale.planner.adapters import adapter_health
from confscale.planner.pools import PoolPlanners
from confscale.planner.service import PlannerService, RefreshStatus
from confscale.planner.web.auth import BasicAuth, auth_from_env, protect
from confscale.planner.web.components import banners, waiting
from confscale.planner.web.context import POOL_COOKIE, Context, WebOptions, safe
from confscale.planner.web.pages import PAGES
from confscale.planner.web.view import (
    Message,
    adapter_messages,
    adapter_status,
    answer_messages,
    messages,
)
from dash import Dash, Input, Output, State, callback_context, dcc, html, no_update
from flask import Flask

ASSETS = Path(__file__).resolve().parent / "assets"


def pool_options(ctx: Context) -> list[dict[str, str]]:
    return [{"label": name or "(unnamed pool)", "value": name} for name in ctx.planners.names()]


def shell(ctx: Context) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="what-if", storage_type="session"),
            dcc.Store(id="ready", data=False),
            dcc.Interval(id="tick", interval=int(ctx.options.refresh_seconds * 1000)),
            html.Header(
                [
                    html.H1(ctx.options.title),
                    html.Nav(
                        [
                            dcc.Link(
                                page.NAME,
                                href=page.PATH,
                                className="nav-link",
                                id=f"nav-{page.NAME.lower()}",
                            )
                            for page in PAGES
                        ]
                    ),
                    html.Label(
                        [
                            "Pool ",
                            dcc.Dropdown(
                                id="pool-select",
                                options=pool_options(ctx),
                                value=ctx.selected_name(),
                                clearable=False,
                                searchable=False,
                            ),
                        ],
                        className="pool-select",
                    ),
                    html.Div(id="status-line", className="status-line"),
                ],
                className="header",
            ),
            html.Div(id="banners"),
            dcc.Loading(html.Main(id="page"), type="circle"),
        ],
        className="shell",
    )


def _status_line(ctx: Context) -> str:
    snapshot = ctx.snapshot()
    status = ctx.service.status()
    line = f"source: {ctx.options.source}"
    if snapshot is not None:
        until = (
            pd.Timestamp(snapshot.data_until, unit="s").strftime("%Y-%m-%d %H:%M UTC")
            if snapshot.data_until
            else "—"
        )
        line += f" · data until {until} · refits {status.refits}"
    adapters = adapter_status(adapter_health(ctx.service.actuators))
    return f"{line} · {adapters}" if adapters else line


def register_shell(app: Dash, ctx: Context) -> None:
    by_path = {page.PATH: page for page in PAGES}

    @app.callback(
        Output("banners", "children"),
        Output("ready", "data"),
        Output("status-line", "children"),
        Output("pool-select", "options"),
        Input("tick", "n_intervals"),
        State("ready", "data"),
    )
    @safe(lambda exc: (banners([Message("bad", "Page error", str(exc))]), no_update, "", no_update))
    def refresh(_tick: int, ready: bool):
        snapshot = ctx.snapshot()
        now_ready = snapshot is not None
        if not ctx.planners.names():  # no pool found yet: the store's error, as a refresh's
            status = RefreshStatus(last_error=ctx.planners.discovery_error)
            return banners(messages(None, status, ctx.options.source)), False, "", []
        return (
            banners(
                messages(snapshot, ctx.service.status(), ctx.options.source)
                + answer_messages(ctx.service.answer_ages())
                + adapter_messages(adapter_health(ctx.service.actuators))
            ),
            now_ready if now_ready != ready else no_update,
            _status_line(ctx),
            pool_options(ctx),
        )

    @app.callback(
        Output("url", "search"),
        Input("pool-select", "value"),
        prevent_initial_call=True,
    )
    def select_pool(name: str | None):
        """Remember the viewer's pool (a cookie every later callback reads) and redraw."""
        if name is None or name not in ctx.planners.names():
            return no_update
        callback_context.response.set_cookie(POOL_COOKIE, name, samesite="Lax", httponly=True)
        return f"?pool={name}"

    @app.callback(
        Output("page", "children"),
        Input("url", "pathname"),
        Input("url", "search"),
        Input("ready", "data"),
        State("what-if", "data"),
    )
    @safe(lambda exc: html.Div(f"This page could not be drawn: {exc}", className="waiting"))
    def route(
        pathname: str | None, _search: str | None, ready: bool, store: dict[str, object] | None
    ):
        page = by_path.get(pathname or "/")
        if page is None:
            return html.Div(
                [
                    f"No page at {pathname}. Pages: ",
                    *[dcc.Link(p.NAME + " ", href=p.PATH) for p in PAGES],
                ],
                className="waiting",
            )
        if ctx.snapshot() is None:
            return waiting()
        return page.layout(ctx, store)

    for page in PAGES:
        page.register(app, ctx)


def create_app(
    service: PlannerService | PoolPlanners,
    options: WebOptions | None = None,
    *,
    server: Flask | bool = True,
    auth: BasicAuth | None = None,
    maintenance: object | None = None,
) -> Dash:
    """The planner page bound to ``service`` (on ``server`` if one is given).

    With a ``maintenance`` registry and page ``auth``, the Nodes page can put nodes into
    maintenance and take them out (the page's user is who).
    """
    from confscale.planner.api import as_planners

    ctx = Context(as_planners(service), options or WebOptions(), maintenance, auth)
    app = Dash(
        "confscale.planner.web",
        server=server,
        assets_folder=str(ASSETS),
        title=ctx.options.title,
        suppress_callback_exceptions=True,  # page components appear when a page is routed
        update_title=None,
    )
    app.layout = lambda: shell(ctx)  # per page load: the viewer's pool cookie
    register_shell(app, ctx)
    if auth is not None:
        protect(app.server, auth)
    return app


def mount(
    server: Flask,
    service: PlannerService | PoolPlanners,
    options: WebOptions | None = None,
    maintenance: object | None = None,
) -> Dash:
    """Put the page on an existing Flask app (``confscale-planner serve``).

    Basic auth is on when ``$CONFSCALE_WEB_AUTH_FILE`` or ``$CONFSCALE_WEB_USER`` /
    ``$CONFSCALE_WEB_PASSWORD`` are set (it then also covers the API beside the page).
    """
    if options is None:
        options = options_from_env(os.environ)
    return create_app(
        service, options, server=server, auth=auth_from_env(), maintenance=maintenance
    )


def options_from_env(env: Mapping[str, str]) -> WebOptions:
    """``$CONFSCALE_WEB_SOURCE`` and ``$CONFSCALE_WEB_LEAD_TIME_DAYS`` (default 28)."""
    lead = env.get("CONFSCALE_WEB_LEAD_TIME_DAYS", "").strip()
    try:
        days = float(lead) if lead else WebOptions.lead_time_days
    except ValueError:
        days = -1.0
    if not 0 <= days <= 3650:
        raise ValueError(f"CONFSCALE_WEB_LEAD_TIME_DAYS={lead!r}: expected days between 0 and 3650")
    return WebOptions(
        source=env.get("CONFSCALE_WEB_SOURCE", WebOptions.source), lead_time_days=days
    )


def wsgi(history: str | None = None) -> Flask:
    """gunicorn entry: ``gunicorn 'confscale.planner.web.app:wsgi()'`` (history from env).

    ``$CONFSCALE_HISTORY`` names the history file; the one background service starts
    here, so run gunicorn with one worker (threads for concurrency).
    """
    from confscale.planner.api import blueprint
    from confscale.planner.history import load_history

    path = history or os.environ.get("CONFSCALE_HISTORY")
    if not path:
        raise RuntimeError("set CONFSCALE_HISTORY to the planner's history file")
    service = PlannerService(lambda: load_history(path))
    app = create_app(service, WebOptions(source=f"history file {path}"), auth=auth_from_env())
    server = app.server
    server.register_blueprint(blueprint(service))
    service.start()
    return server
