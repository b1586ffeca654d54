"""``confscale-planner``: backtest, size, serve.

``backtest`` and ``size`` print JSON on stdout; errors go to stderr as one line naming
the file, column or URL, with exit status 2 (usage / input) or 1 (unexpected).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from confscale.planner.adapters import ADAPTER_FLAGS_RENAMED
from confscale.planner.backtest import rolling_origin
from confscale.planner.calendar import CalendarError, RegimeCalendar, load_calendar
from confscale.planner.forecast import WEEK_HOURS, ForecastConfig
from confscale.planner.history import HistoryError
from confscale.planner.prometheus import (
    PrometheusClient,
    PrometheusError,
    redact,
)
from confscale.planner.reservations import ReservationPolicy
from confscale.planner.sizing import WhatIf
from confscale.planner.snapshot import PlannerConfig, compute_snapshot, json_safe, what_if
from confscale.planner.wsgi import DEFAULT_THREADS

from confscale.files import read_small_file
from confscale.flags import (
    add_subcommand,
    duration,
    listen_address,
    new_parser,
    parse_command,
    parse_duration,
    parse_listen_address,
    positive_int,
)
from confscale.log import get_logger

log = get_logger("confscale.planner")


def _what_if_flag(name: str) -> str:
    """``--sizing.min-servers`` for the WhatIf field ``min_servers``."""
    return "--sizing." + name.replace("_", "-")


DEFAULT_LISTEN = "127.0.0.1:9689"
# Old spellings that still work for one release, with a warning (docs/cli.md).
_UNDOTTED_WHAT_IF = (
    "growth", "webcam_share", "camera_kbit", "screen_share_share", "screen_share_kbit",
    "headroom_participants", "headroom_cpu", "headroom_transmit", "failure_participants",
    "failure_cpu", "failure_transmit", "link_capacity_bytes_per_second", "redundancy",
    "min_servers", "cameras_per_viewer", "band",
)  # fmt: skip

RENAMED = {
    "--history": "--history.file",
    "--prometheus": "--prometheus.url",
    "--lookback": "--prometheus.lookback",
    "--node-lookback": "--prometheus.node-lookback",
    "--calendar": "--calendar.file",
    "--country": "--calendar.country",
    "--subdivision": "--calendar.subdivision",
    "--timezone": "--calendar.timezone",
    "--csv": "--csv.file",
    "--time-column": "--csv.time-column",
    "--value-column": "--csv.value-column",
    "--horizon": "--backtest.horizon",
    "--step": "--backtest.step",
    "--exporter": "--exporter.url",
    "--refit-interval": "--refit.interval",
    "--placement-interval": "--placement.interval",
    "--pool": "--pool.name",
    # only the inputs that had an undotted flag in 0.1.0 keep one; later inputs never did
    **{f"--{name.replace('_', '-')}": _what_if_flag(name) for name in _UNDOTTED_WHAT_IF},
    **ADAPTER_FLAGS_RENAMED,
}


class UsageError(ValueError):
    """Bad input a user can fix (printed as one line, exit status 2)."""


def _add_calendar_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calendar.file", dest="calendar", type=Path, help="term/holiday calendar YAML"
    )
    parser.add_argument(
        "--calendar.timezone", dest="timezone", default="UTC", help="pool's local time zone"
    )


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--history.file", dest="history", type=Path, help="history file (CSV, CSV.gz, Parquet)"
    )
    source.add_argument(
        "--prometheus.url",
        dest="prometheus",
        help="Prometheus-compatible base URL (credentials: --prometheus.username and "
        "--prometheus.password-file, never in the URL, where `ps` shows them)",
    )
    parser.add_argument(
        "--prometheus.username", dest="prom_username", help="HTTP basic auth user name"
    )
    parser.add_argument(
        "--prometheus.password-file",
        dest="prom_password_file",
        type=Path,
        help="file holding the HTTP basic auth password (or, without a user name, a bearer "
        "token); read at start, never logged",
    )
    parser.add_argument(
        "--prometheus.lookback",
        dest="lookback",
        type=duration,
        default=parse_duration("12w"),
        help="history to read from Prometheus (default 12w): pool peaks for the forecast",
    )
    parser.add_argument(
        "--prometheus.node-lookback",
        dest="node_lookback",
        type=duration,
        default=parse_duration("4w"),
        help="per-node 5-minute history for the resource fit and mix (default 4w)",
    )
    parser.add_argument(
        "--pool.name",
        dest="pools",
        action="append",
        metavar="POOL[/TAG]",
        help="plan this pool (repeatable; POOL/TAG: one tagged sub-pool); default: every "
        "pool found in the store, each on its own",
    )
    parser.add_argument(
        "--pool.tags",
        dest="pool_tags",
        choices=["all", "none"],
        default="all",
        help="also plan every tag of each pool (a Scalelite tag, a b3lb cluster) as its "
        "own sub-pool POOL/TAG (default: all)",
    )
    _add_calendar_flags(parser)
    parser.add_argument(
        "--calendar.country", dest="country", help="country for school/public holidays (e.g. DE)"
    )
    parser.add_argument(
        "--calendar.subdivision",
        dest="subdivision",
        help="state/subdivision for holidays (e.g. BY)",
    )
    group = parser.add_argument_group("what-if inputs (no refit)")
    for item in fields(WhatIf):
        kind = int if item.name in ("redundancy", "min_servers", "band") else float
        group.add_argument(
            _what_if_flag(item.name),
            dest=item.name,
            type=kind,
            default=None,
            help=f"default {item.default}",
        )


def _what_if(args: argparse.Namespace) -> dict[str, Any]:
    return {
        f.name: getattr(args, f.name)
        for f in fields(WhatIf)
        if getattr(args, f.name, None) is not None
    }


def _config(args: argparse.Namespace) -> PlannerConfig:
    calendar = load_calendar(args.calendar) if args.calendar else RegimeCalendar()
    if args.country:
        calendar = RegimeCalendar(calendar.terms, calendar.periods, args.country, args.subdivision)
    return PlannerConfig(calendar=calendar, forecast=ForecastConfig(timezone=args.timezone))


def _source_name(args: argparse.Namespace) -> str:
    """The page names where its figures come from (credentials removed from URLs)."""
    if args.history is not None:
        return f"history file {args.history}"
    return f"Prometheus at {redact(args.prometheus)}"


def _prometheus_client(args: argparse.Namespace) -> PrometheusClient:
    """The store's client, its password from a file (never from the command line)."""
    password = None
    if args.prom_password_file is not None:
        password = read_secret_file(args.prom_password_file, what="--prometheus.password-file")
    elif args.prom_username:
        raise UsageError("--prometheus.username needs --prometheus.password-file")
    if "@" in (urlsplit(args.prometheus).netloc or ""):
        log.warning(
            "credentials in --prometheus.url show in process listings; use "
            "--prometheus.username and --prometheus.password-file"
        )
    return PrometheusClient(args.prometheus, username=args.prom_username, password=password)


def read_secret_file(path: Path, *, what: str, max_bytes: int = 4096) -> str:
    """A secret from a small regular UTF-8 file (trailing newline dropped); UsageError
    naming the file otherwise (a FIFO or /dev/zero is refused, not read for ever)."""
    try:
        text = read_small_file(path, max_bytes).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path}: not UTF-8 text") from None
    except ValueError as exc:
        raise UsageError(f"{what} {path}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror or exc}") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise UsageError(f"{what} {path}: empty")
    return secret


def cmd_backtest(args: argparse.Namespace) -> dict[str, object]:
    try:
        frame = pd.read_csv(args.csv)
    except FileNotFoundError as exc:
        raise UsageError(f"{args.csv}: no such file") from exc
    except Exception as exc:  # pandas' parser errors are many types
        raise UsageError(f"{args.csv}: cannot read CSV: {exc}") from exc
    for column in (args.time_column, args.value_column):
        if column not in frame.columns:
            raise UsageError(
                f"{args.csv}: no column {column!r}; columns are "
                f"{', '.join(map(str, frame.columns))}"
            )
    stamps = pd.to_datetime(frame[args.time_column], utc=True, errors="coerce", format="mixed")
    values = pd.to_numeric(frame[args.value_column], errors="coerce")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if bad.size:
        raise UsageError(
            f"{args.csv}: line {bad[0] + 2}: column {args.time_column}: cannot "
            f"read {frame[args.time_column].iloc[bad[0]]!r} as a time"
        )
    bad = np.flatnonzero((values.isna() & frame[args.value_column].notna()).to_numpy())
    if bad.size:
        raise UsageError(
            f"{args.csv}: line {bad[0] + 2}: column {args.value_column}: "
            f"{frame[args.value_column].iloc[bad[0]]!r} is not a number"
        )
    series = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(stamps))
    series = series.sort_index()
    steps = series.index.to_series().diff().dropna()
    if steps.empty:
        raise UsageError(f"{args.csv}: need more than one row")
    if steps.median() > pd.Timedelta(hours=1):
        raise UsageError(
            f"{args.csv}: samples every {steps.median()}; the backtest needs hourly or finer data"
        )
    hourly = series.resample("1h").max()
    horizon = int(args.horizon // 3600)
    if horizon < 1:
        raise UsageError("--backtest.horizon must be at least 1h")
    config = ForecastConfig(timezone=args.timezone)
    calendar = load_calendar(args.calendar) if args.calendar else RegimeCalendar()

    def regime_of(index: pd.DatetimeIndex) -> np.ndarray:
        return np.asarray(calendar.regimes(index.tz_convert(args.timezone).date))

    warmup = min(4 * WEEK_HOURS, len(hourly) - horizon - 7 * 24)
    if warmup < 2 * WEEK_HOURS:
        raise UsageError(
            f"{args.csv}: {len(hourly)} hours of data; a backtest with horizon "
            f"{horizon}h needs at least {2 * WEEK_HOURS + horizon + 7 * 24}"
        )
    result = rolling_origin(
        hourly,
        regime_of,
        horizon,
        config,
        step_hours=int(args.step // 3600) or 24,
        warmup_hours=warmup,
    )
    return {
        **result.summary,
        "horizon_hours": horizon,
        "method_by_horizon": result.method_by_bucket,
    }


def cmd_size(args: argparse.Namespace) -> dict[str, object]:
    """One pool's capacity answer; with several pools, ``{"pools": {name: answer}}``."""
    from confscale.planner.sources import file_loader, prometheus_loader, prometheus_reader

    config = _config(args)
    units, discover = _units(args)
    if not units and discover is not None:
        units = discover()
        if not units:
            raise UsageError(
                f"Prometheus at {redact(args.prometheus)} has no bbb_meetings_participants "
                "in the last day: no pool to size"
            )
    answers: dict[str, dict[str, object]] = {}
    for scope in units:
        if args.history is not None:
            history, readings, now = file_loader(args.history)(), None, None
        else:
            client = _prometheus_client(args)
            history = prometheus_loader(
                client, scope, lookback=args.lookback, node_lookback=args.node_lookback
            )()
            readings, now = prometheus_reader(client, scope)(), time.time()
        snapshot = compute_snapshot(
            history,
            config,
            readings=readings,
            now=now,
            rates_included=args.history is None,
        )
        answer = snapshot.capacity_dict()
        changes = _what_if(args)
        if changes:
            answer = {**answer, **what_if(snapshot, **changes).as_dict()}
        answers[scope.name] = answer
    if len(answers) == 1:
        return next(iter(answers.values()))
    return {"pools": answers}


def _units(args: argparse.Namespace):
    """The fixed units (``--pool``) and, with a store, the discovery of the others."""
    from confscale.planner.scope import Scope, ScopeError
    from confscale.planner.sources import discover_units

    try:
        named = [Scope.parse(text) for text in args.pools or ()]
    except ScopeError as exc:
        raise UsageError(f"--pool: {exc}") from exc
    if args.history is not None:
        if len(named) > 1:
            raise UsageError("--history.file is one pool: give at most one --pool.name")
        return named or [Scope()], None
    client = _prometheus_client(args)
    tags = args.pool_tags == "all"
    pools = sorted({unit.pool or "" for unit in named})

    def discover() -> list[Scope]:
        try:
            return list(discover_units(client, pools=pools, tags=tags))
        except Exception as exc:
            # A store that is down at start must not hide the answers saved by the last
            # run: plan the units that have a state file until discovery works again.
            state = getattr(args, "state_file", None)  # serve has one; size has none
            saved = _saved_units(state) if state is not None else []
            if not saved:
                raise
            log.warning(
                "pool discovery failed; serving the saved units meanwhile",
                extra={"error": str(exc)[:300], "units": ",".join(s.name or "-" for s in saved)},
            )
            return saved

    return named, discover


def _saved_units(path: Path) -> list:
    """The units whose state file exists: FILE is the unnamed pool, FILE's stem.POOL the
    pool POOL (a tagged unit's file name cannot be told from a pool with a dot)."""
    from confscale.planner.scope import Scope, ScopeError

    units = [Scope()] if path.is_file() else []
    for other in sorted(path.parent.glob(f"{path.stem}.*{path.suffix}")):
        name = other.name[len(path.stem) + 1 : len(other.name) - len(path.suffix)]
        if name and ".corrupt-" not in other.name:
            try:
                units.append(Scope(pool=name))
            except ScopeError:
                continue
    return units


def _state_path(path: Path, scope) -> Path:
    """One state file per unit: FILE for the unnamed pool, FILE's stem.POOL[.TAG] else."""
    if not scope.name:
        return path
    return path.with_name(f"{path.stem}.{scope.name.replace('/', '.')}{path.suffix}")


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

    config = _config(args)
    changes = _what_if(args)
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
    client = None if args.prometheus is None else _prometheus_client(args)
    units, discover = _units(args)

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

            path = _state_path(args.state_file, scope)
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
            options = replace(options, source=_source_name(args))
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


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("confscale-planner", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    backtest = add_subcommand(sub, "backtest", help="rolling-origin backtest of a time series")
    backtest.add_argument("--csv.file", dest="csv", type=Path, required=True)
    backtest.add_argument("--csv.time-column", dest="time_column", required=True)
    backtest.add_argument("--csv.value-column", dest="value_column", required=True)
    backtest.add_argument(
        "--backtest.horizon",
        dest="horizon",
        type=duration,
        default=parse_duration("168h"),
        help="how far ahead each origin forecasts (default 168h)",
    )
    backtest.add_argument(
        "--backtest.step",
        dest="step",
        type=duration,
        default=parse_duration("24h"),
        help="time between origins (default 24h)",
    )
    _add_calendar_flags(backtest)
    size = add_subcommand(sub, "size", help="servers needed now, at the next peak, in 4 weeks")
    _add_model_flags(size)
    serve = add_subcommand(sub, "serve", help="HTTP API, /metrics and the page")
    _add_model_flags(serve)
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
    from confscale.planner.adapters import add_adapter_flags
    from confscale.planner.maintenance_cli import add_maintenance_command

    add_adapter_flags(serve)
    add_maintenance_command(sub)
    proxy = add_subcommand(
        sub, "cluster-proxy", help="BBB cluster proxy: nginx locations and node settings"
    )
    proxy.add_argument("--config.file", dest="config_file", type=Path, required=True,
                       help="the exporter's pool file (every node with a bbb: source)")  # fmt: skip
    proxy.add_argument("--proxy.url", dest="proxy_url", required=True,
                       help="the proxy's public URL (https://bbb-proxy.example.com)")  # fmt: skip
    proxy.add_argument("--output.dir", dest="output_dir", type=Path, required=True)
    return parser


def cmd_cluster_proxy(args: argparse.Namespace) -> dict[str, object]:
    """Write the proxy's nginx snippet and each BBB node's settings (planner.clusterproxy)."""
    from confscale.exporter.config import ConfigError, load_config
    from confscale.planner.clusterproxy import generate, write_files

    try:
        pool = load_config(args.config_file)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    files = generate(pool, args.proxy_url)
    written = write_files(files, args.output_dir)
    return {"output_dir": str(args.output_dir), "files": [str(p) for p in written]}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command(build_parser(), argv, RENAMED)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "cluster-proxy":
            result = cmd_cluster_proxy(args)
        elif args.command == "maintenance":
            from confscale.planner.maintenance_cli import cmd_maintenance

            result = cmd_maintenance(args, read_secret_file)
        else:
            result = cmd_backtest(args) if args.command == "backtest" else cmd_size(args)
    except (UsageError, HistoryError, CalendarError, PrometheusError, ValueError, OSError) as exc:
        print(f"confscale-planner {args.command}: error: {exc}", file=sys.stderr)
        return 2
    json.dump(json_safe(result), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
