"""``confscale-planner``: backtest, size, serve.

``backtest`` and ``size`` print JSON on stdout; errors go to stderr as one line naming
the file, column or URL, with exit status 2 (usage / input) or 1 (unexpected).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
from confscale.planner.backtest import rolling_origin
from confscale.planner.calendar import CalendarError, RegimeCalendar, load_calendar
from confscale.planner.forecast import WEEK_HOURS, ForecastConfig
from confscale.planner.history import HistoryError, load_history
from confscale.planner.prometheus import (
    PrometheusClient,
    PrometheusError,
    load_prometheus_history,
    read_prometheus_current,
    redact,
)
from confscale.planner.sizing import WhatIf
from confscale.planner.snapshot import PlannerConfig, compute_snapshot, json_safe, what_if

log = logging.getLogger("confscale.planner")
DEFAULT_LISTEN = "127.0.0.1:9689"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class UsageError(ValueError):
    """Bad input a user can fix (printed as one line, exit status 2)."""


def parse_duration(text: str) -> float:
    """Seconds in ``168h``, ``7d``, ``30s``, ``15m``, ``4w``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 168h, 7d or 30s")
    return float(match.group(1)) * _UNIT[match.group(2)]


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--history", type=Path, help="history file (CSV, CSV.gz, Parquet)")
    source.add_argument("--prometheus", help="Prometheus-compatible base URL")
    parser.add_argument(
        "--lookback",
        type=parse_duration,
        default=parse_duration("12w"),
        help="history to read from Prometheus (default 12w): pool peaks for the forecast",
    )
    parser.add_argument(
        "--node-lookback",
        type=parse_duration,
        default=parse_duration("4w"),
        help="per-node 5-minute history for the resource fit and mix (default 4w)",
    )
    parser.add_argument("--calendar", type=Path, help="term/holiday calendar YAML")
    parser.add_argument("--country", help="country for school/public holidays (e.g. DE)")
    parser.add_argument("--subdivision", help="state/subdivision for holidays (e.g. BY)")
    parser.add_argument("--timezone", default="UTC", help="pool's local time zone")
    group = parser.add_argument_group("what-if inputs (no refit)")
    for item in fields(WhatIf):
        flag = "--" + item.name.replace("_", "-")
        kind = int if item.name in ("redundancy", "min_servers", "band") else float
        group.add_argument(
            flag, dest=item.name, type=kind, default=None, help=f"default {item.default}"
        )


def _what_if(args: argparse.Namespace) -> dict[str, object]:
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


def _history_loader(args: argparse.Namespace) -> tuple[Callable[[], pd.DataFrame], bool]:
    if args.history is not None:
        path = args.history
        return (lambda: load_history(path)), False
    client = PrometheusClient(args.prometheus)

    def from_prometheus() -> pd.DataFrame:
        end = time.time()
        frame, _ = load_prometheus_history(
            client, start=end - args.lookback, end=end, node_lookback=args.node_lookback
        )
        return frame

    return from_prometheus, True


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
        raise UsageError("--horizon must be at least 1h")
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
    config = _config(args)
    loader, rates = _history_loader(args)
    history = loader()
    readings = None
    now = None
    if args.prometheus:
        readings = read_prometheus_current(PrometheusClient(args.prometheus))
        now = time.time()
    snapshot = compute_snapshot(history, config, readings=readings, now=now, rates_included=rates)
    changes = _what_if(args)
    if not changes:
        return snapshot.capacity_dict()
    sizing = what_if(snapshot, **changes)
    return {**snapshot.capacity_dict(), **sizing.as_dict()}


def cmd_serve(args: argparse.Namespace) -> int:
    from confscale.planner.adapters import B3lbAdapter, build_actuators
    from confscale.planner.api import create_app
    from confscale.planner.scrape import ExporterReader
    from confscale.planner.service import PlannerService
    from werkzeug.serving import make_server

    config = _config(args)
    changes = _what_if(args)
    if changes:
        config = PlannerConfig(config.calendar, config.forecast, WhatIf(**changes).validated())
    loader, rates = _history_loader(args)
    restored = None
    actuators = build_actuators(args)
    if args.state_file is not None:
        from confscale.planner.laststate import LastResultFile, load_last_result

        restored = load_last_result(args.state_file)
        recorder = LastResultFile(args.state_file)
        actuators = [recorder, *actuators]
    read_current = None
    if args.exporter:
        read_current = ExporterReader(args.exporter)
    elif args.prometheus:
        client = PrometheusClient(args.prometheus)
        read_current = lambda: read_prometheus_current(client)  # noqa: E731
    service = PlannerService(
        loader,
        config,
        read_current=read_current,
        rates_included=rates,
        actuators=actuators,
        refit_seconds=args.refit_interval,
        placement_seconds=args.placement_interval,
        restored=restored,
    )
    if args.state_file is not None:
        recorder.snapshot = service.snapshot
    b3lb = next(
        (a.adapter for a in actuators if isinstance(getattr(a, "adapter", None), B3lbAdapter)),
        None,
    )
    app = create_app(service, b3lb)
    try:
        from confscale.planner import web  # the Dash page, when installed

        options = web.options_from_env(os.environ)
        if "CONFSCALE_WEB_SOURCE" not in os.environ:
            options = replace(options, source=_source_name(args))
        web.mount(app, service, options)
    except ImportError:
        log.info("confscale.planner.web not available: serving the API only")
    host, _, port = args.listen.rpartition(":")
    server = make_server(host or "127.0.0.1", int(port), app, threaded=True)
    stop = threading.Event()

    def shutdown(*_: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    service.start()
    print(f"listening on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        service.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="confscale-planner", description=__doc__)
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
    sub = parser.add_subparsers(dest="command", required=True)
    backtest = sub.add_parser("backtest", help="rolling-origin backtest of a time series")
    backtest.add_argument("--csv", type=Path, required=True)
    backtest.add_argument("--time-column", required=True)
    backtest.add_argument("--value-column", required=True)
    backtest.add_argument("--horizon", type=parse_duration, default=parse_duration("168h"))
    backtest.add_argument(
        "--step",
        type=parse_duration,
        default=parse_duration("24h"),
        help="time between origins (default 24h)",
    )
    backtest.add_argument("--calendar", type=Path)
    backtest.add_argument("--timezone", default="UTC")
    size = sub.add_parser("size", help="servers needed now, at the next peak, in 4 weeks")
    _add_model_flags(size)
    serve = sub.add_parser("serve", help="HTTP API, /metrics and the page")
    _add_model_flags(serve)
    serve.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN)
    serve.add_argument("--exporter", help="exporter /metrics URL for current data")
    serve.add_argument("--refit-interval", type=parse_duration, default=900.0)
    serve.add_argument("--placement-interval", type=parse_duration, default=30.0)
    serve.add_argument(
        "--state.file",
        dest="state_file",
        type=Path,
        help="keep the last placement and capacity answer in this JSON file: served after "
        "a restart until the first refresh, and taken-out nodes stay out (hysteresis)",
    )
    from confscale.planner.adapters import add_adapter_flags

    add_adapter_flags(serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            return cmd_serve(args)
        result = cmd_backtest(args) if args.command == "backtest" else cmd_size(args)
    except (UsageError, HistoryError, CalendarError, PrometheusError, ValueError, OSError) as exc:
        print(f"confscale-planner {args.command}: error: {exc}", file=sys.stderr)
        return 2
    json.dump(json_safe(result), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
