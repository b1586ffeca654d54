"""History as a table: load the simulator's file format, validate it, derive rates.

One row per node per 5-minute step, columns fixed in docs/contracts.md. This module is
also the *no-Prometheus path*: where Prometheus would answer a recording rule
(``node:confscale_cpu_utilisation:ratio_rate5m`` …), :func:`derive_rates` computes the
same figure from the file's counters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from confscale.planner.placement import PressureTargets, pressure_array

HISTORY_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "node",
    "kind",
    "meetings",
    "breakout_rooms",
    "participants",
    "moderators",
    "listeners",
    "voice_participants",
    "video_participants",
    "participants_max",
    "video_fanout",
    "cpu_count",
    "cpu_seconds_total",
    "transmit_bytes_total",
    "receive_bytes_total",
    "link_capacity_bytes_per_second",
)
NUMERIC_COLUMNS: tuple[str, ...] = HISTORY_COLUMNS[3:]
COUNTER_COLUMNS: tuple[str, ...] = (
    "cpu_seconds_total",
    "transmit_bytes_total",
    "receive_bytes_total",
)
KINDS = frozenset({"bbb", "jitsi"})
# Rates across a gap longer than this would smear an outage over hours: leave them empty.
MAX_RATE_GAP_SECONDS = 900.0


class HistoryError(ValueError):
    """History that cannot be used; the message names the file, line and column."""


def load_history(path: Path | str) -> pd.DataFrame:
    """Read a history file (CSV, CSV.gz or Parquet) and validate it."""
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"{path}: no such history file")
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
            first_line = 0
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            frame = pd.read_csv(path, dtype={"node": str, "kind": str, "timestamp": str})
            first_line = 2  # line 1 is the header
        else:
            raise HistoryError(
                f"{path}: unknown history format; expected .csv, .csv.gz or .parquet"
            )
    except HistoryError:
        raise
    except Exception as exc:  # pandas raises many parser error types
        raise HistoryError(f"{path}: cannot read history: {exc}") from exc
    return validate_history(frame, source=str(path), first_line=first_line)


def validate_history(
    frame: pd.DataFrame, *, source: str = "history", first_line: int = 0
) -> pd.DataFrame:
    """Check columns and values; return a typed copy sorted by node and time.

    ``first_line`` is the file line of row 0 (2 for CSV) so errors can point at a line.
    """
    missing = [c for c in HISTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise HistoryError(
            f"{source}: missing column(s) {', '.join(missing)}; expected "
            f"{', '.join(HISTORY_COLUMNS)}"
        )
    if frame.empty:
        raise HistoryError(f"{source}: history has no rows")

    def where(position: int) -> str:
        return f"line {position + first_line}" if first_line else f"row {position}"

    columns: dict[str, np.ndarray] = {}
    raw_ts = frame["timestamp"].reset_index(drop=True)
    if isinstance(raw_ts.dtype, pd.DatetimeTZDtype):
        stamps = raw_ts.dt.tz_convert("UTC")
    else:
        stamps = pd.to_datetime(raw_ts, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if bad.size:
        raise HistoryError(
            f"{source}: {where(int(bad[0]))}: column timestamp: cannot read "
            f"{raw_ts.iloc[bad[0]]!r} as an ISO 8601 time ({bad.size} bad row(s))"
        )
    # Few distinct names: clean the categories, not millions of strings.
    nodes = _clean_labels(frame["node"], str.strip)
    bad = np.flatnonzero((nodes.isna() | (nodes == "")).to_numpy())
    if bad.size:
        raise HistoryError(f"{source}: {where(int(bad[0]))}: column node is empty")
    kinds = _clean_labels(frame["kind"], lambda text: text.strip().lower())
    bad = np.flatnonzero((~kinds.isin(KINDS)).to_numpy())
    if bad.size:
        raise HistoryError(
            f"{source}: {where(int(bad[0]))}: column kind is {kinds.iloc[bad[0]]!r}; "
            "expected bbb or jitsi"
        )
    for column in NUMERIC_COLUMNS:
        raw = frame[column].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(raw.dtype):
            values = raw.astype(float)
        else:
            values = pd.to_numeric(raw, errors="coerce")
            bad = np.flatnonzero((values.isna() & raw.notna()).to_numpy())
            if bad.size:
                raise HistoryError(
                    f"{source}: {where(int(bad[0]))}: column {column}: {raw.iloc[bad[0]]!r} "
                    "is not a number"
                )
        negative = np.flatnonzero((values < 0).to_numpy())
        if negative.size:
            raise HistoryError(
                f"{source}: {where(int(negative[0]))}: column {column}: "
                f"{values.iloc[negative[0]]} is negative"
            )
        columns[column] = values.to_numpy(dtype=float)
    # Sort by (node, time) and keep the last of duplicate rows, on integer keys.
    codes = pd.Categorical(nodes).codes.astype(np.int64)
    times = pd.DatetimeIndex(stamps).asi8
    ordered = bool(
        np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (times[1:] > times[:-1])))
    )
    if ordered:  # the usual case (our writers sort): no copy through a permutation
        return pd.DataFrame({"timestamp": stamps, "node": nodes, "kind": kinds, **columns})
    order = np.lexsort((times, codes))
    codes, times = codes[order], times[order]
    keep = np.ones(len(order), dtype=bool)
    keep[:-1] = (codes[1:] != codes[:-1]) | (times[1:] != times[:-1])
    rows = order[keep]
    return pd.DataFrame(
        {
            "timestamp": stamps.iloc[rows].reset_index(drop=True),
            "node": nodes.iloc[rows].reset_index(drop=True),
            "kind": kinds.iloc[rows].reset_index(drop=True),
            **{c: columns[c][rows] for c in NUMERIC_COLUMNS},  # type: ignore[index]
        }
    )


def _clean_labels(series: pd.Series, clean: Callable[[str], str]) -> pd.Series:
    """Apply ``clean`` to each distinct label (missing stays missing)."""
    labels = series.reset_index(drop=True).astype("category")
    cleaned = labels.cat.categories.map(lambda text: clean(str(text)))
    return (
        pd.Series(pd.Categorical.from_codes(labels.cat.codes, categories=range(len(cleaned))))
        .map(dict(enumerate(cleaned)))
        .astype(object)
    )


def derive_rates(frame: pd.DataFrame, targets: PressureTargets | None = None) -> pd.DataFrame:
    """Add per-node rates and ratios computed from the file's counters.

    The no-Prometheus path: the same formulas as the recording rules
    (``node:confscale_cpu_utilisation:ratio_rate5m`` = busy CPU seconds per second ÷
    CPUs, ``…transmit_utilisation…`` = bytes/s ÷ link capacity,
    ``node:confscale_pressure:ratio``). Counter resets and gaps longer than
    ``MAX_RATE_GAP_SECONDS`` give empty (NaN) rates rather than invented ones.
    """
    targets = targets or PressureTargets()
    out = frame.copy()
    seconds = out["timestamp"].astype("int64").to_numpy() / 1e9
    same_node = out["node"].to_numpy()[1:] == out["node"].to_numpy()[:-1]
    dt = np.empty(len(out))
    dt[0] = np.nan
    dt[1:] = np.where(same_node, np.diff(seconds), np.nan)
    dt[(dt <= 0) | (dt > MAX_RATE_GAP_SECONDS)] = np.nan
    for column, rate_name in (
        ("cpu_seconds_total", "cpu_busy_cores"),
        ("transmit_bytes_total", "transmit_bytes_per_second"),
        ("receive_bytes_total", "receive_bytes_per_second"),
    ):
        values = out[column].to_numpy()
        delta = np.empty(len(out))
        delta[0] = np.nan
        delta[1:] = np.diff(values)
        delta[delta < 0] = np.nan  # counter reset: no rate for this step
        out[rate_name] = delta / dt
    cpu_count = out["cpu_count"].replace(0, np.nan)
    out["cpu_utilisation"] = (out["cpu_busy_cores"] / cpu_count).clip(0.0, 1.0)
    capacity = out["link_capacity_bytes_per_second"].replace(0, np.nan)
    out["transmit_utilisation"] = out["transmit_bytes_per_second"] / capacity
    out["receive_utilisation"] = out["receive_bytes_per_second"] / capacity
    out["pressure"] = pressure_array(
        cpu=out["cpu_utilisation"].to_numpy(),
        transmit=out["transmit_utilisation"].to_numpy(),
        receive=out["receive_utilisation"].to_numpy(),
        participants=out["participants"].to_numpy(),
        jitsi_stress=out["jitsi_stress"].to_numpy() if "jitsi_stress" in out else None,
        targets=targets,
    )
    return out
