"""Rolling-origin backtest of the forecast methods, without leakage.

At each origin (every ``step_hours``) every method sees only the hours before the
origin; its bands come from the scaled residuals of *earlier* origins whose targets
also lie before this origin (split-conformal, refreshed as time moves on). Metrics:
MASE (scale: in-sample seasonal-naive error before the origin), coverage of the 80 and
95 % bands, and the absolute percentage error of each day's peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from confscale.planner.forecast import (
    LEAD_BUCKETS,
    METHODS,
    WEEK_HOURS,
    ForecastConfig,
    RegimeFn,
    apply_bands,
    band_quantiles,
    busy_level,
    lead_bucket,
    predict,
    residual_scale,
    scale_floor,
)

RESIDUAL_COLUMNS = ("bucket", "error", "target_time", "lead_hours", "raw_error")


@dataclass(frozen=True)
class BacktestResult:
    """Summary per method, per-bucket MASE, the residual pools and the method choice."""

    summary: dict[str, dict[str, float | int | None]]
    by_bucket: pd.DataFrame  # index (method, bucket): mase, coverage_80, coverage_95, n
    residuals: dict[str, pd.DataFrame] = field(repr=False)
    method_by_bucket: dict[str, str]
    horizon_hours: int
    origins: int
    # forecasts as issued at each origin for the next step (a day): method, target_time,
    # origin, lead_hours, actual, median and band columns
    issued: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def table(self) -> pd.DataFrame:
        """One row per method (the backtest table of the page)."""
        return pd.DataFrame.from_dict(self.summary, orient="index").rename_axis("method")

    def horizon_table(self) -> pd.DataFrame:
        """One row per method and lead-time bucket, with ``chosen`` for the picked method."""
        if self.by_bucket.empty:
            return empty_horizon_table()
        table = self.by_bucket.reset_index()
        table["chosen"] = [
            self.method_by_bucket.get(str(b)) == m
            for m, b in zip(table["method"], table["bucket"], strict=True)
        ]
        order = {name: i for i, (name, _, _) in enumerate(LEAD_BUCKETS)}
        table["_order"] = table["bucket"].map(order)
        table = table.sort_values(["_order", "method"]).drop(columns="_order")
        return table.reset_index(drop=True)

    def past_forecasts(self, method: str) -> pd.DataFrame:
        """``method``'s forecasts as issued a day ahead, indexed by target hour."""
        if self.issued.empty:
            return self.issued
        part = self.issued[self.issued["method"] == method]
        part = part.drop_duplicates("target_time", keep="last")
        return part.set_index("target_time").drop(columns="method").sort_index()

    def residual_frame(self, timezone: str = "UTC") -> pd.DataFrame:
        """Every out-of-sample residual: method, bucket, lead, local hour, errors."""
        parts = [
            frame.assign(method=method) for method, frame in self.residuals.items() if len(frame)
        ]
        if not parts:
            return pd.DataFrame(columns=[*RESIDUAL_COLUMNS, "method", "hour"])
        frame = pd.concat(parts, ignore_index=True)
        frame["hour"] = pd.DatetimeIndex(frame["target_time"]).tz_convert(timezone).hour
        return frame


HORIZON_COLUMNS = ("method", "bucket", "mase", "coverage_80", "coverage_95", "n", "chosen")


def empty_horizon_table() -> pd.DataFrame:
    return pd.DataFrame(columns=list(HORIZON_COLUMNS))


def rolling_origin(
    hourly: pd.Series,
    regime_of: RegimeFn,
    horizon_hours: int,
    config: ForecastConfig | None = None,
    *,
    step_hours: int = 24,
    warmup_hours: int = 4 * WEEK_HOURS,
) -> BacktestResult:
    """Backtest every method on ``hourly`` (regular hourly index, NaN for gaps)."""
    config = config or ForecastConfig()
    if horizon_hours < 1:
        raise ValueError("horizon must be at least one hour")
    hourly = hourly.astype(float)
    values = hourly.to_numpy()
    index = hourly.index
    regimes = regime_of(index)
    busy = busy_level(hourly)  # only for the width statistic, never for a forecast
    # origins whose horizon runs past the data are not evaluated, but their residuals
    # (for the bands' recent pool) and day-ahead forecasts (the page's overlay) count
    origins = list(range(warmup_hours, len(hourly), step_hours))
    records: dict[str, list[pd.DataFrame]] = {m: [] for m in METHODS}
    per_origin: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    widths: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    busy_widths: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    issued: dict[str, list[pd.DataFrame]] = {m: [] for m in METHODS}
    for origin in origins:
        train = hourly.iloc[:origin]
        actual = values[origin : origin + horizon_hours]
        if np.isnan(actual).all() or train.dropna().empty:
            continue
        evaluated = origin + horizon_hours <= len(hourly)
        floor = scale_floor(train, config.floor_share)  # from the past only, like the rest
        targets = index[origin : origin + horizon_hours]
        scale = _mase_scale(train.to_numpy())
        leads = np.arange(1, len(targets) + 1)
        buckets = lead_bucket(leads)
        origin_time = index[origin]
        for method in METHODS:
            point = predict(
                method,
                train,
                regimes[:origin],
                targets,
                regimes[origin : origin + horizon_hours],
                config,
            )
            earlier = _recent(records[method], origin_time, config.calibration_weeks)
            pool = pd.concat(earlier) if earlier else pd.DataFrame(columns=list(RESIDUAL_COLUMNS))
            quantiles = band_quantiles(pool, buckets, config.levels, config.min_residuals)
            banded = apply_bands(point, quantiles, floor, config.levels, config.error_scale)
            median = banded["median"].to_numpy()
            ok = np.isfinite(actual) & np.isfinite(median) & evaluated
            stats: dict[str, float] = {"n": float(ok.sum())}
            if ok.any() and scale > 0:
                stats["mase"] = float(np.mean(np.abs(actual[ok] - median[ok])) / scale)
                for bucket in np.unique(buckets[ok]):
                    sel = ok & (buckets == bucket)
                    stats[f"mase:{bucket}"] = float(
                        np.mean(np.abs(actual[sel] - median[sel])) / scale
                    )
            if quantiles is not None:
                for level in (80, 95):
                    low = banded[f"lower_{level}"].to_numpy()
                    high = banded[f"upper_{level}"].to_numpy()
                    inside = ok & (actual >= low) & (actual <= high)
                    stats[f"hits_{level}"] = float(inside.sum())
                    for bucket in np.unique(buckets[ok]):
                        sel = buckets == bucket
                        stats[f"hits_{level}:{bucket}"] = float((inside & sel).sum())
                        stats[f"covered_n:{bucket}"] = float((ok & sel).sum())
                stats["covered_n"] = float(ok.sum())
                seen = ok & (actual > 0)  # the 95 % band's width relative to what happened
                width = banded["upper_95"].to_numpy() - banded["lower_95"].to_numpy()
                widths[method].append(width[seen] / actual[seen])
                peak = ok & (actual >= 0.5 * busy)  # the hours that size the pool
                busy_widths[method].append(width[peak] / actual[peak])
            if evaluated:
                stats["peak_ape"] = _daily_peak_ape(targets, actual, median, config.timezone)
                per_origin[method].append(stats)
            residual = (actual - point) / residual_scale(point, floor, config.error_scale)
            keep = np.isfinite(residual)
            records[method].append(
                pd.DataFrame(
                    {
                        "bucket": buckets[keep],
                        "error": residual[keep],
                        "target_time": targets[keep],
                        "lead_hours": leads[keep],
                        "raw_error": (actual - point)[keep],
                    }
                )
            )
            first = slice(0, min(step_hours, len(targets)))  # the next day, as issued
            issued[method].append(
                banded.iloc[first]
                .assign(
                    target_time=targets[first],
                    origin=origin_time,
                    lead_hours=leads[first],
                    actual=actual[first],
                )
                .reset_index(drop=True)
            )
    return _summarise(per_origin, records, (widths, busy_widths), issued, horizon_hours)


def _recent(parts: list[pd.DataFrame], until: pd.Timestamp, weeks: int) -> list[pd.DataFrame]:
    """:func:`planner.forecast.recent_residuals` of each part, by slicing: each part is
    one origin's residuals, sorted by target time (a boolean mask per part per origin
    was most of the backtest's time)."""
    start = until - pd.Timedelta(weeks=weeks)
    out = []
    for part in parts:
        times = part["target_time"].array.asi8
        low, high = np.searchsorted(times, [start.value, until.value])
        if high > low:
            out.append(part.iloc[low:high])
    return out


def _median_width(parts: list[np.ndarray]) -> float | None:
    """Median of the 95 % band's width ÷ the actual value (targets with an actual > 0)."""
    values = np.concatenate(parts) if parts else np.empty(0)
    return round(float(np.median(values)), 4) if values.size else None


def _mase_scale(train: np.ndarray) -> float:
    if len(train) <= WEEK_HOURS:
        diffs = np.abs(np.diff(train))
    else:
        diffs = np.abs(train[WEEK_HOURS:] - train[:-WEEK_HOURS])
    diffs = diffs[np.isfinite(diffs)]
    return float(diffs.mean()) if diffs.size else 0.0


def _daily_peak_ape(
    targets: pd.DatetimeIndex, actual: np.ndarray, median: np.ndarray, timezone: str
) -> float:
    days = targets.tz_convert(timezone).date
    frame = pd.DataFrame({"day": days, "actual": actual, "median": median}).dropna()
    if frame.empty:
        return float("nan")
    peaks = frame.groupby("day")[["actual", "median"]].max()
    peaks = peaks[peaks["actual"] > 0]
    if peaks.empty:
        return float("nan")
    return float((np.abs(peaks["median"] - peaks["actual"]) / peaks["actual"]).mean())


def _summarise(
    per_origin: dict[str, list[dict[str, float]]],
    records: dict[str, list[pd.DataFrame]],
    widths: tuple[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]]],
    issued: dict[str, list[pd.DataFrame]],
    horizon_hours: int,
) -> BacktestResult:
    summary: dict[str, dict[str, float | int | None]] = {}
    bucket_rows = []
    for method, rows in per_origin.items():
        frame = pd.DataFrame(rows)
        covered = frame["covered_n"].sum() if "covered_n" in frame else 0.0

        def mean(column: str, frame: pd.DataFrame = frame) -> float | None:
            if column not in frame or frame[column].dropna().empty:
                return None
            return round(float(frame[column].dropna().mean()), 4)

        summary[method] = {
            "mase": mean("mase"),
            "coverage_80": round(float(frame["hits_80"].sum() / covered), 4) if covered else None,
            "coverage_95": round(float(frame["hits_95"].sum() / covered), 4) if covered else None,
            "peak_ape": mean("peak_ape"),
            "width_95": _median_width(widths[0].get(method, [])),
            "width_95_busy": _median_width(widths[1].get(method, [])),
            "origins": len(rows),
        }
        for column in frame.columns:
            if column.startswith("mase:"):
                bucket = column[5:]
                n = frame.get(f"covered_n:{bucket}")
                covered_b = float(n.sum()) if n is not None else 0.0
                row: dict[str, object] = {
                    "method": method,
                    "bucket": bucket,
                    "mase": mean(column),
                    "n": int(covered_b),
                }
                for level in (80, 95):
                    hits = frame.get(f"hits_{level}:{bucket}")
                    row[f"coverage_{level}"] = (
                        round(float(hits.sum()) / covered_b, 4)
                        if hits is not None and covered_b
                        else None
                    )
                bucket_rows.append(row)
    by_bucket = pd.DataFrame(
        bucket_rows, columns=["method", "bucket", "mase", "coverage_80", "coverage_95", "n"]
    )
    method_by_bucket: dict[str, str] = {}
    for bucket, group in by_bucket.dropna().groupby("bucket"):
        best = group.sort_values(["mase", "method"]).iloc[0]
        method_by_bucket[str(bucket)] = str(best["method"])
    residuals = {
        m: (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=list(RESIDUAL_COLUMNS))
        )
        for m, parts in records.items()
    }
    origins = max((len(rows) for rows in per_origin.values()), default=0)
    issued_parts = [f.assign(method=m) for m, parts in issued.items() for f in parts]
    return BacktestResult(
        summary,
        by_bucket.set_index(["method", "bucket"]),
        residuals,
        method_by_bucket,
        horizon_hours,
        origins,
        pd.concat(issued_parts, ignore_index=True) if issued_parts else pd.DataFrame(),
    )
