"""``confscale-planner serve``: its flags, and the wiring of loaders, readers, adapters,
maintenance and state files into one planning loop per unit behind the HTTP server."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from confscale.planner.cli_inputs import (
    UsageError,
    add_model_flags,
    planner_config,
    planning_units,
    prometheus_client,
    read_secret_file,
    source_name,
    state_path,
    what_if_changes,
)
from confscale.planner.reservations import ReservationPolicy
from confscale.planner.sizing import WhatIf
from confscale.planner.snapshot import PlannerConfig
from confscale.planner.wsgi import DEFAULT_THREADS

from confscale.flags import (
    add_subcommand,
    duration,
    listen_address,
    parse_listen_address,
    positive_int,
)
from confscale.log import get_logger

log = get_logger("confscale.planner")

DEFAULT_LISTEN = "127.0.0.1:9689"


def add_serve_command(sub) -> None:
    from confscale.planner.adapters import add_adapter_flags

    serve = add_subcommand(sub, "serve", help="HTTP API, /metrics and the page")
    add_model_flags(serve)
    serve.add_argument(
        "--web.listen-address",
        dest="listen",
        metavar="HOST:PORT",
        type=listen_address,
        default=parse_listen_address(DEFAULT_LISTEN),
        help="HOST:PORT, [IPV6]:PORT or :PORT to serve on (default: %(default)s)",
    )
    serve.add_argument(
        "--web.threads",
        dest="web_threads",
        type=positive_int,
        default=DEFAULT_THREADS,
        metavar="N",
        help="threads answering HTTP requests (waitress; default %(default)s)",
    )
    serve.add_argument(
        "--exporter.url", dest="exporter", help="exporter /metrics URL for current data"
    )
    serve.add_argument(
        "--refit.interval",
        dest="refit_interval",
        type=duration,
        default=900.0,
        help="how often the forecast and fits are recomputed (default 15m)",
    )
    serve.add_argument(
        "--placement.interval",
        dest="placement_interval",
        type=duration,
        default=30.0,
        help="how often placement is recomputed from current data (default 30s)",
    )
    serve.add_argument(
        "--placement.max-age",
        dest="placement_max_age",
        type=duration,
        default=300.0,
        help="a placement older than this (current data failing, or a saved one) is served "
        "marked stale and recommends no node (default 5m)",
    )
    serve.add_argument(
        "--capacity.max-age",
        dest="capacity_max_age",
        type=duration,
        default=3600.0,
        help="a capacity answer older than this (refits failing, or a saved one) is served "
        "marked stale (default 1h)",
    )
    serve.add_argument(
        "--next.settle",
        dest="next_settle",
        type=duration,
        default=ReservationPolicy.settle_seconds,
        help="/api/v1/placement/next: a node's reading this much newer than a reservation "
        "shows the whole meeting (default 10m)",
    )
    serve.add_argument(
        "--next.ttl",
        dest="next_ttl",
        type=duration,
        default=ReservationPolicy.ttl_seconds,
        help="/api/v1/placement/next: a reservation is dropped after this, readings or not "
        "(default 15m)",
    )
    serve.add_argument(
        "--state.file",
        dest="state_file",
        type=Path,
        help="keep the last placement and capacity answer in this JSON file: served after "
        "a restart until the first refresh, and taken-out nodes stay out (hysteresis)",
    )
    serve.add_argument(
        "--maintenance.file",
        dest="maintenance_file",
        type=Path,
        help="keep the nodes in maintenance in this JSON file (they stay in maintenance "
        "across restarts); without it, maintenance lasts until the planner stops",
    )
    serve.add_argument(
        "--web.admin-token-file",
        dest="admin_token_file",
        type=Path,
        help="file holding the token that authorises maintenance writes (Authorization: "
        "Bearer …); the page's basic auth authorises them too",
    )
    add_adapter_flags(serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from confscale.planner.adapters import (
        B3lbAdapter,
        ScaleliteAdapter,
        build_actuators,
        with_operator_holds,
    )
    from confscale.planner.adapters.autoscaler import build_autoscaler
    from confscale.planner.adapters.runner import AdapterRunner
    from confscale.planner.api import create_app
    from confscale.planner.maintenance import MaintenanceRegistry, with_maintenance
    from confscale.planner.maintenance_api import AdminAuth
    from confscale.planner.placement import NodeReading
    from confscale.planner.pools import PoolPlanners
    from confscale.planner.scrape import ExporterReader
    from confscale.planner.service import Actuator, PlannerService
    from confscale.planner.sources import file_loader, prometheus_loader, prometheus_reader
    from confscale.planner.web.auth import auth_from_env
    from confscale.planner.wsgi import PlannerServer

    config = planner_config(args)
    changes = what_if_changes(args)
    if changes:
        config = PlannerConfig(config.calendar, config.forecast, WhatIf(**changes).validated())
    try:
        reservations = ReservationPolicy(args.next_settle, args.next_ttl).validated()
    except ValueError as exc:
        raise UsageError(f"--next.settle/--next.ttl: {exc}") from exc
    config = replace(config, reservations=reservations)
    actuators = build_actuators(args)
    maintenance = MaintenanceRegistry(args.maintenance_file)
    admin = AdminAuth(
        None
        if args.admin_token_file is None
        else read_secret_file(args.admin_token_file, what="--web.admin-token-file"),
        basic=auth_from_env(),
    )
    build_autoscaler(args, {"pool": "check"})  # flags and secret files checked before serving
    client = None if args.prometheus is None else prometheus_client(args)
    units, discover = planning_units(args)

    def build(scope) -> PlannerService:
        if client is None:
            loader = file_loader(args.history)
        else:
            loader = prometheus_loader(
                client, scope, lookback=args.lookback, node_lookback=args.node_lookback
            )
        read_current: Callable[[], Sequence[NodeReading]] | None = None
        if args.exporter:
            read_current = ExporterReader(args.exporter, scope=scope)
        elif client is not None:
            read_current = prometheus_reader(client, scope)
        if read_current is not None:  # nodes an operator holds out are not online capacity
            read_current = with_maintenance(
                with_operator_holds(read_current, actuators), maintenance
            )
        # A tagged sub-pool ranks a subset of its pool's nodes in the same states: the
        # balancers are told once, by the pool's own loop.
        unit_actuators: list[Actuator] = list(actuators) if scope.tag is None else []
        scaler = None if scope.tag is not None else build_autoscaler(args, scope.labels())
        if scaler is not None:  # one per pool: it sizes that pool's servers
            unit_actuators.append(AdapterRunner(scaler))
        restored = recorder = None
        if args.state_file is not None:
            from confscale.planner.laststate import LastResultFile, load_last_result

            path = state_path(args.state_file, scope)
            restored = load_last_result(path)
            recorder = LastResultFile(path)
            unit_actuators.insert(0, recorder)
        service = PlannerService(
            loader,
            config,
            read_current=read_current,
            rates_included=client is not None,
            actuators=unit_actuators,
            refit_seconds=args.refit_interval,
            placement_seconds=args.placement_interval,
            restored=restored,
            placement_max_age=args.placement_max_age,
            capacity_max_age=args.capacity_max_age,
            pools=() if scope.pool is None else (scope.pool,),
        )
        if recorder is not None:
            recorder.snapshot = service.snapshot
        if scaler is not None:
            scaler.snapshot = service.snapshot
        return service

    planners = PoolPlanners(
        build, units=units, discover=discover, discover_seconds=max(60.0, args.placement_interval)
    )

    def reserved() -> dict[str, float]:
        """Every unit's open /next reservations, summed per node (a node of a tagged
        sub-pool is also planned in its pool: rooms sent through either count)."""
        total: dict[str, float] = {}
        for service in planners:
            for node, p in service.reserved_pressure().items():
                total[node] = total.get(node, 0.0) + p
        return total

    for runner in actuators:  # Scalelite's multiplier and b3lb's load see /next's reservations
        if isinstance(runner.adapter, ScaleliteAdapter | B3lbAdapter):
            runner.adapter.reserved = reserved
    b3lb = next((r.adapter for r in actuators if isinstance(r.adapter, B3lbAdapter)), None)
    app = create_app(planners, b3lb, maintenance=maintenance, admin=admin)
    try:
        from confscale.planner import web  # the Dash page, when installed

        options = web.options_from_env(os.environ)
        if "CONFSCALE_WEB_SOURCE" not in os.environ:
            options = replace(options, source=source_name(args))
        web.mount(app, planners, options, maintenance=maintenance)
    except ImportError:
        log.info("confscale.planner.web not available: serving the API only")
    listen = args.listen
    server = PlannerServer(app, listen, threads=args.web_threads)
    planners.start()
    address = listen.url(server.port)  # where we listen: no query, nothing secret
    log.info("listening", extra={"address": address, "server": "waitress"})
    try:
        server.run()
    finally:
        planners.stop()
    return 0
