"""What ``size`` and ``serve`` share on the command line: the data source (history file
or Prometheus), the calendar, the pools to plan and the what-if inputs, their flags and
how they become the planner's inputs."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from confscale.planner.calendar import RegimeCalendar, load_calendar
from confscale.planner.forecast import ForecastConfig
from confscale.planner.prometheus import PrometheusClient, redact
from confscale.planner.sizing import WhatIf
from confscale.planner.snapshot import PlannerConfig

from confscale.files import read_small_file
from confscale.flags import duration, parse_duration
from confscale.log import get_logger

log = get_logger("confscale.planner")


class UsageError(ValueError):
    """Bad input a user can fix (printed as one line, exit status 2)."""


def what_if_flag(name: str) -> str:
    """``--sizing.min-servers`` for the WhatIf field ``min_servers``."""
    return "--sizing." + name.replace("_", "-")


def add_calendar_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calendar.file", dest="calendar", type=Path, help="term/holiday calendar YAML"
    )
    parser.add_argument(
        "--calendar.timezone", dest="timezone", default="UTC", help="pool's local time zone"
    )


def add_model_flags(parser: argparse.ArgumentParser) -> None:
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
    add_calendar_flags(parser)
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
            what_if_flag(item.name),
            dest=item.name,
            type=kind,
            default=None,
            help=f"default {item.default}",
        )


def what_if_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The what-if inputs given on the command line (the others keep WhatIf's defaults)."""
    return {
        f.name: getattr(args, f.name)
        for f in fields(WhatIf)
        if getattr(args, f.name, None) is not None
    }


def planner_config(args: argparse.Namespace) -> PlannerConfig:
    calendar = load_calendar(args.calendar) if args.calendar else RegimeCalendar()
    if args.country:
        calendar = RegimeCalendar(calendar.terms, calendar.periods, args.country, args.subdivision)
    return PlannerConfig(calendar=calendar, forecast=ForecastConfig(timezone=args.timezone))


def source_name(args: argparse.Namespace) -> str:
    """The page names where its figures come from (credentials removed from URLs)."""
    if args.history is not None:
        return f"history file {args.history}"
    return f"Prometheus at {redact(args.prometheus)}"


def prometheus_client(args: argparse.Namespace) -> PrometheusClient:
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


def planning_units(args: argparse.Namespace):
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
    client = prometheus_client(args)
    tags = args.pool_tags == "all"
    pools = sorted({unit.pool or "" for unit in named})

    def discover() -> list[Scope]:
        try:
            return list(discover_units(client, pools=pools, tags=tags))
        except Exception as exc:
            # A store that is down at start must not hide the answers saved by the last
            # run: plan the units that have a state file until discovery works again.
            state = getattr(args, "state_file", None)  # serve has one; size has none
            saved = saved_units(state) if state is not None else []
            if not saved:
                raise
            log.warning(
                "pool discovery failed; serving the saved units meanwhile",
                extra={"error": str(exc)[:300], "units": ",".join(s.name or "-" for s in saved)},
            )
            return saved

    return named, discover


def saved_units(path: Path) -> list:
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


def state_path(path: Path, scope) -> Path:
    """One state file per unit: FILE for the unnamed pool, FILE's stem.POOL[.TAG] else."""
    if not scope.name:
        return path
    return path.with_name(f"{path.stem}.{scope.name.replace('/', '.')}{path.suffix}")
