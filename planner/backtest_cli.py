"""``confscale-planner backtest``: a rolling-origin backtest of one CSV time series."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from confscale.planner.backtest import rolling_origin
from confscale.planner.calendar import RegimeCalendar, load_calendar
from confscale.planner.cli_inputs import UsageError, add_calendar_flags
from confscale.planner.forecast import WEEK_HOURS, ForecastConfig

from confscale.flags import add_subcommand, duration, parse_duration


def add_backtest_command(sub) -> None:
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
    add_calendar_flags(backtest)


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
