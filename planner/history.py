"""History as a table: load the simulator's file format, validate it, derive rates.

One row per node per 5-minute step, columns fixed in docs/contracts.md. This module is
also the *no-Prometheus path*: where Prometheus would answer a recording rule
(``node:confscale_cpu_utilisation:ratio_rate5m`` …), :func:`derive_rates` computes the
same figure from the file's counters.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from confscale.exporter.contract import BBB_FIELDS
from confscale.planner.placement import PressureTargets, pressure_array

HISTORY_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "node",
    "kind",
    *BBB_FIELDS,  # meetings … video_fanout, the contract's BBB figures in its order
    "cpu_count",
    "cpu_seconds_total",
    "transmit_bytes_total",
    "receive_bytes_total",
    "link_capacity_bytes_per_second",
)
NUMERIC_COLUMNS: tuple[str, ...] = HISTORY_COLUMNS[3:]
# Read when present (older files have none): the JVB's own stress_level per Jitsi row. A
# BBB row's empty cell is 0 (it has no stress); a Jitsi row's is a missing figure.
OPTIONAL_COLUMNS: tuple[str, ...] = ("jitsi_stress",)
KINDS = frozenset({"bbb", "jitsi"})
log = logging.getLogger(__name__)
# Rates across a gap longer than this would smear an outage over hours: leave them empty.
MAX_RATE_GAP_SECONDS = 900.0


class HistoryError(ValueError):
    """History that cannot be used; the message names the file, line and column."""


def load_history(path: Path | str) -> pd.DataFrame:
    """Read a history file (CSV, CSV.gz or Parquet) and validate it.

    What one file may cost is bounded (``LIMITS``): a line longer than 64 KiB, more text
    than 4 GiB once decompressed, or more than 20 million rows is refused with the file
    and line, before it is held in memory.
    """
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"{path}: no such history file")
    if not path.is_file():
        raise HistoryError(f"{path}: not a regular file")
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            _check_parquet(path)
            frame = pd.read_parquet(path)
            first_line = 0
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            with _BoundedText(path) as stream:
                frame = pd.read_csv(
                    stream,
                    dtype={"node": str, "kind": str, "timestamp": str},
                    nrows=LIMITS.rows + 1,
                )
            if len(frame) > LIMITS.rows:
                raise HistoryError(f"{path}: more than {LIMITS.rows:,} rows")
            first_line = 2  # line 1 is the header
        else:
            raise HistoryError(
                f"{path}: unknown history format; expected .csv, .csv.gz or .parquet"
            )
    except HistoryError:
        raise
    except Exception as exc:  # pandas raises many parser error types
        cause = exc.__context__ if isinstance(exc.__context__, HistoryError) else None
        if cause is not None:
            raise cause from None
        raise HistoryError(f"{path}: cannot read history: {str(exc)[:300]}") from exc
    return validate_history(frame, source=str(path), first_line=first_line)


@dataclass(frozen=True)
class Limits:
    """What one history file may hold (docs/planner.md, History limits)."""

    line_bytes: int = 64 * 1024
    text_bytes: int = 4 * 1024**3
    rows: int = 20_000_000
    earliest_year: int = 2000
    latest_year: int = 2100  # exclusive; planned terms may lie ahead of the clock
    span_days: float = 730.0  # a longer history is refused (a stray row, not a pool)
    gap_warn_seconds: float = 6 * 3600.0


LIMITS = Limits()
RANGE = f"a history lies between {LIMITS.earliest_year} and {LIMITS.latest_year}"

# Largest plausible value per column: above it a row is an export error, not a pool.
MAXIMA = MappingProxyType(
    {
        "meetings": 1e5,
        "breakout_rooms": 1e5,
        "participants": 1e6,
        "moderators": 1e6,
        "listeners": 1e6,
        "voice_participants": 1e6,
        "video_participants": 1e6,
        "participants_max": 1e6,
        "video_fanout": 1e12,
        "cpu_count": 1e4,
        "cpu_seconds_total": 1e15,
        "transmit_bytes_total": 1e20,
        "receive_bytes_total": 1e20,
        "link_capacity_bytes_per_second": 1.25e12,  # 10 Tbit/s
        "jitsi_stress": 10.0,  # 1.0 is the bridge's load threshold; 10× is an export error
    }
)


class _BoundedText(io.RawIOBase):
    """A (gzip-decompressed) file read through line-length and total-size checks."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115
        self._total = 0
        self._line = 1
        self._since_newline = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # io's Buffer protocol
        view = memoryview(buffer)
        try:
            chunk = self._raw.read(min(len(view), 64 * 1024))
        except (OSError, EOFError) as exc:  # gzip: truncated or not gzip at all
            raise HistoryError(f"{self._path}: cannot decompress: {exc}") from None
        self._check(chunk)
        view[: len(chunk)] = chunk
        return len(chunk)

    def _check(self, chunk: bytes) -> None:
        self._total += len(chunk)
        if self._total > LIMITS.text_bytes:
            raise HistoryError(
                f"{self._path}: more than {LIMITS.text_bytes:,} bytes of text (decompressed)"
            )
        first = chunk.find(b"\n")
        if first < 0:
            self._since_newline += len(chunk)
        elif self._since_newline + first > LIMITS.line_bytes:
            self._since_newline += first
        else:
            self._line += chunk.count(b"\n")
            self._since_newline = len(chunk) - chunk.rfind(b"\n") - 1
            return
        if self._since_newline > LIMITS.line_bytes:
            raise HistoryError(
                f"{self._path}: line {self._line}: longer than {LIMITS.line_bytes:,} bytes"
            )

    def close(self) -> None:
        self._raw.close()
        super().close()


def _check_parquet(path: Path) -> None:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as exc:
        raise HistoryError(f"{path}: not a Parquet file: {str(exc)[:200]}") from None
    if meta.num_rows > LIMITS.rows:
        raise HistoryError(f"{path}: {meta.num_rows:,} rows, more than {LIMITS.rows:,}")
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if size > LIMITS.text_bytes:
        raise HistoryError(f"{path}: {size:,} bytes uncompressed, more than {LIMITS.text_bytes:,}")


def validate_history(
    frame: pd.DataFrame,
    *,
    source: str = "history",
    first_line: int = 0,
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
        text = raw_ts.iloc[bad[0]]
        what = (
            f"is out of range ({RANGE})"
            if _iso_time(text)
            else "cannot be read as an ISO 8601 time"
        )
        raise HistoryError(
            f"{source}: {where(int(bad[0]))}: column timestamp: {str(text)[:80]!r} {what} "
            f"({bad.size} bad row(s))"
        )
    earliest = pd.Timestamp(year=LIMITS.earliest_year, month=1, day=1, tz="UTC")
    latest = pd.Timestamp(year=LIMITS.latest_year, month=1, day=1, tz="UTC")
    bad = np.flatnonzero(((stamps < earliest) | (stamps >= latest)).to_numpy())
    if bad.size:
        raise HistoryError(
            f"{source}: {where(int(bad[0]))}: column timestamp: {stamps.iloc[bad[0]]} is out "
            f"of range ({RANGE}; {bad.size} such row(s))"
        )
    first, last = int(stamps.argmin()), int(stamps.argmax())
    span = stamps.iloc[last] - stamps.iloc[first]
    if span > pd.Timedelta(days=LIMITS.span_days):
        raise HistoryError(
            f"{source}: history spans {span.days} days, from {where(first)} "
            f"({stamps.iloc[first]}) to {where(last)} ({stamps.iloc[last]}); at most "
            f"{LIMITS.span_days:g} days are read (a stray row, or split the file)"
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
    present = [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    for column in (*NUMERIC_COLUMNS, *present):
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
        absurd = np.flatnonzero((np.isinf(values) | (values > MAXIMA[column])).to_numpy())
        if absurd.size:
            raise HistoryError(
                f"{source}: {where(int(absurd[0]))}: column {column}: "
                f"{values.iloc[absurd[0]]:g} is not a plausible value (at most "
                f"{MAXIMA[column]:g}; {absurd.size} such row(s))"
            )
        columns[column] = values.to_numpy(dtype=float)
    if "jitsi_stress" in columns:  # a BBB node has no stress: 0, not a missing figure
        stress = columns["jitsi_stress"]
        columns["jitsi_stress"] = np.where(
            np.isnan(stress) & (kinds != "jitsi").to_numpy(), 0.0, stress
        )
    warnings: list[str] = []
    missing_values = np.zeros(len(frame), dtype=bool)
    for values in columns.values():
        missing_values |= np.isnan(values)
    keep = ~missing_values
    if missing_values.any():
        first = int(np.flatnonzero(missing_values)[0])
        warnings.append(
            f"{source}: {int(missing_values.sum())} row(s) with an empty or NaN figure "
            f"dropped, the first at {where(first)}"
        )
    if not keep.all():
        if not keep.any():
            raise HistoryError(f"{source}: no usable rows ({warnings[0]})")
        rows = np.flatnonzero(keep)
        stamps = stamps.iloc[rows].reset_index(drop=True)
        nodes = nodes.iloc[rows].reset_index(drop=True)
        kinds = kinds.iloc[rows].reset_index(drop=True)
        columns = {c: v[rows] for c, v in columns.items()}
    warnings.extend(_gap_warnings(stamps, source))
    for warning in warnings:
        log.warning("%s", warning)
    result = _sorted_frame(stamps, nodes, kinds, columns)
    result.attrs["warnings"] = warnings
    return result


def _iso_time(text: object) -> bool:
    """Whether ``text`` is an ISO 8601 time at all (pandas refuses years past 2262)."""
    try:
        dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _gap_warnings(stamps: pd.Series, source: str) -> list[str]:
    """The pool's timeline has no row for longer than ``LIMITS.gap_warn_seconds``."""
    times = np.unique(pd.DatetimeIndex(stamps).asi8) / 1e9
    gaps = np.flatnonzero(np.diff(times) > LIMITS.gap_warn_seconds)
    if not gaps.size:
        return []

    def when(t: float) -> str:
        return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")

    longest = gaps[np.argmax(np.diff(times)[gaps])]
    return [
        f"{source}: {gaps.size} gap(s) longer than {LIMITS.gap_warn_seconds / 3600:g} h "
        f"with no data; the longest from {when(times[longest])} to {when(times[longest + 1])}"
    ]


def _sorted_frame(
    stamps: pd.Series, nodes: pd.Series, kinds: pd.Series, columns: dict[str, np.ndarray]
) -> pd.DataFrame:
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
            **{c: v[rows] for c, v in columns.items()},
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
