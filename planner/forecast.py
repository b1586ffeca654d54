"""Hourly-peak demand forecast per weekday-hour slot and regime, with calibrated bands.

Method ``confscale``: for a target hour, the median of the last ``slot_weeks`` values of
the same local weekday-hour slot *in the same regime* (term, holiday, …), moved forward
by a robust weekly growth factor. A regime slot never seen falls back to the same hour
of the same day type (weekday/weekend) in that regime, then to the ``term`` slot scaled by
``holiday_ratio_prior`` (a 7× drop in the holidays is real). Method ``seasonal_naive``:
the value one week (168 h) earlier. Bands come from the out-of-sample errors of a
rolling-origin backtest (split-conformal on scaled residuals, per lead-time bucket).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from confscale.planner.calendar import HOLIDAY, TERM
from confscale.planner.ets import EtsForecaster

WEEK_HOURS = 168
WEEK_SECONDS = 7 * 24 * 3600.0
LEAD_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("1-24h", 1, 24),
    ("25-168h", 25, 168),
    ("169-672h", 169, 672),
    (">672h", 673, 10**9),
)
METHODS = ("confscale", "seasonal_naive", "ets")

RegimeFn = Callable[[pd.DatetimeIndex], np.ndarray]


@dataclass(frozen=True)
class ForecastConfig:
    """Knobs of the forecast; the defaults are what the backtests were run with."""

    timezone: str = "UTC"
    slot_weeks: int = 4
    growth_weeks: int = 4
    max_weekly_growth: float = 0.05
    levels: tuple[float, ...] = (0.5, 0.8, 0.95)
    holiday_ratio_prior: float = 1 / 7
    min_residuals: int = 48
    calibration_weeks: int = 6  # residuals older than this leave the pool (adaptive)
    floor_share: float = 0.25  # residual scale floor as a share of a busy hour
    error_scale: str = "sqrt"  # residuals ÷ √max(forecast, floor); "relative": ÷ max(…)
    # adaptive conformal: per origin, log band width += rate × (miss share − (1 − level))
    # over the targets resolved since the previous origin (0 switches it off)
    band_adapt_rate: float = 0.5
    methods: tuple[str, ...] = METHODS  # the candidates the backtest chooses from


def lead_bucket(lead_hours: np.ndarray) -> np.ndarray:
    """Name of the lead-time bucket of each lead (in hours, 1 = the next hour)."""
    names = np.empty(len(lead_hours), dtype=object)
    for name, low, high in LEAD_BUCKETS:
        names[(lead_hours >= low) & (lead_hours <= high)] = name
    return names


def _slot_frame(index: pd.DatetimeIndex, timezone: str) -> pd.DataFrame:
    local = index.tz_convert(timezone)
    weekday = local.weekday.to_numpy()
    hour = local.hour.to_numpy()
    return pd.DataFrame(
        {"slot": weekday * 24 + hour, "hour": hour, "weekend": weekday >= 5, "t": index.asi8 / 1e9}
    )


def growth_factor(history: pd.Series, regimes: np.ndarray, config: ForecastConfig) -> float:
    """Weekly growth: median log ratio of an hour to the same hour a week earlier.

    Only pairs in the same regime and clearly above the night floor count; the window is
    the last ``growth_weeks`` weeks; the result is clipped to ±``max_weekly_growth``.
    """
    values = history.to_numpy(dtype=float)
    if len(values) <= WEEK_HOURS:
        return 1.0
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return 1.0
    floor = 0.2 * float(np.quantile(positive, 0.9))
    now, before = values[WEEK_HOURS:], values[:-WEEK_HOURS]
    same = regimes[WEEK_HOURS:] == regimes[:-WEEK_HOURS]
    ok = same & np.isfinite(now) & np.isfinite(before) & (now > floor) & (before > floor)
    window = config.growth_weeks * WEEK_HOURS
    ok[: max(0, len(ok) - window)] = False
    if ok.sum() < 24:
        return 1.0
    weekly = float(np.exp(np.median(np.log(now[ok] / before[ok]))))
    return float(np.clip(weekly, 1 - config.max_weekly_growth, 1 + config.max_weekly_growth))


def point_forecast(
    history: pd.Series,
    history_regimes: np.ndarray,
    targets: pd.DatetimeIndex,
    target_regimes: np.ndarray,
    config: ForecastConfig,
) -> np.ndarray:
    """The ``confscale`` point forecast for ``targets`` from ``history`` (hourly peaks)."""
    valid = history.notna().to_numpy()
    result = np.full(len(targets), np.nan)
    if not valid.any():
        return result
    frame = _slot_frame(history.index[valid], config.timezone)
    frame["v"] = history.to_numpy(dtype=float)[valid]
    frame["regime"] = np.asarray(history_regimes)[valid]
    growth = growth_factor(history, np.asarray(history_regimes), config)
    k = config.slot_weeks

    def recent(keys: list[str], count: int) -> pd.DataFrame:
        tail = frame.groupby(keys, sort=False).tail(count)
        return tail.groupby(keys).agg(v=("v", "median"), base_t=("t", "mean"))

    by_slot = recent(["regime", "slot"], k)
    by_hour = recent(["regime", "weekend", "hour"], 3 * k)
    want = _slot_frame(targets, config.timezone)
    want["regime"] = np.asarray(target_regimes)
    level1 = want.join(by_slot, on=["regime", "slot"])
    level2 = want.join(by_hour, on=["regime", "weekend", "hour"])
    base_regime = TERM if TERM in set(frame["regime"]) else frame["regime"].iloc[-1]
    fallback = want.assign(regime=base_regime).join(by_slot, on=["regime", "slot"])
    ratios = _regime_ratios(by_hour, base_regime, config)

    def prior(regime: str) -> float:  # level relative to term when a regime is unseen
        return config.holiday_ratio_prior if regime == HOLIDAY else 1.0

    ratio = np.array([ratios.get(r, prior(r) / prior(base_regime)) for r in want["regime"]])
    value = level1["v"].to_numpy(dtype=float)
    stamp = level1["base_t"].to_numpy(dtype=float)
    for other, scale in ((level2, 1.0), (fallback, ratio)):
        missing = np.isnan(value)
        value[missing] = (other["v"].to_numpy(dtype=float) * scale)[missing]
        stamp[missing] = other["base_t"].to_numpy(dtype=float)[missing]
    weeks_ahead = (want["t"].to_numpy() - stamp) / WEEK_SECONDS
    result = value * growth**weeks_ahead
    return np.maximum(result, 0.0)


def _regime_ratios(
    by_hour: pd.DataFrame, base_regime: str, config: ForecastConfig
) -> dict[str, float]:
    """Level of each seen regime relative to the base regime, from busy shared hours."""
    values = by_hour["v"]
    if base_regime not in values.index.get_level_values(0):
        return {}
    base = values.xs(base_regime, level=0)
    busy = base[base >= 0.5 * base.max()] if len(base) else base
    ratios = {}
    for regime in set(values.index.get_level_values(0)) - {base_regime}:
        other = values.xs(regime, level=0).reindex(busy.index).dropna()
        if len(other):
            shared = busy.loc[other.index]
            ratios[regime] = float(np.median(other / shared))
    return ratios


def seasonal_naive(history: pd.Series, targets: pd.DatetimeIndex) -> np.ndarray:
    """The value 168 h (or a multiple) before each target, from the last known week."""
    known = history.dropna()
    result = np.full(len(targets), np.nan)
    if known.empty:
        return result
    last = known.index[-1]
    week = pd.Timedelta(hours=WEEK_HOURS)
    weeks = np.maximum(1, np.ceil((targets - last) / week).to_numpy(dtype=float)).astype(int)
    lookup = known[~known.index.duplicated(keep="last")]
    for extra in range(4):  # skip back over gaps, a bounded number of weeks
        missing = np.isnan(result)
        if not missing.any():
            break
        back = targets[missing] - pd.to_timedelta((weeks[missing] + extra) * WEEK_HOURS, "h")
        result[missing] = lookup.reindex(back).to_numpy(dtype=float)
    return result


def predict(
    method: str,
    history: pd.Series,
    history_regimes: np.ndarray,
    targets: pd.DatetimeIndex,
    target_regimes: np.ndarray,
    config: ForecastConfig,
    ets: EtsForecaster | None = None,
) -> np.ndarray:
    """Point forecast by method name (one of :data:`METHODS`).

    ``ets``: the forecaster whose parameters a backtest keeps between origins (a new one
    fits afresh).
    """
    if method == "confscale":
        return point_forecast(history, history_regimes, targets, target_regimes, config)
    if method == "seasonal_naive":
        return seasonal_naive(history, targets)
    if method == "ets":
        forecaster = ets or EtsForecaster(config.timezone)

        def fallback(mask: np.ndarray) -> np.ndarray:
            out = np.full(len(targets), np.nan)
            out[mask] = point_forecast(
                history, history_regimes, targets[mask], np.asarray(target_regimes)[mask], config
            )
            return out

        return forecaster.forecast(history, history_regimes, targets, target_regimes, fallback)
    raise ValueError(f"unknown forecast method {method!r}; expected one of {METHODS}")


def busy_level(history: pd.Series) -> float:
    """A busy hour's level: the 90th percentile of the positive hourly peaks (≥ 1)."""
    positive = history[history > 0]
    return max(1.0, float(positive.quantile(0.9))) if not positive.empty else 1.0


def scale_floor(history: pd.Series, share: float = 0.25) -> float:
    """Residual scale floor: ``share`` of a busy hour. Errors are divided by
    max(forecast, floor), so a near-zero forecast (nights) does not make them infinite."""
    return max(1.0, share * busy_level(history))


def residual_scale(point: np.ndarray, floor: float, kind: str = "sqrt") -> np.ndarray:
    """What a residual is divided by (and a band quantile multiplied by) at ``point``.

    ``sqrt``: √max(point, floor). Participant counts vary like counts (variance about
    proportional to the level), so errors divided by √level are alike at every level and
    can be pooled: a band then widens like √level, and a quiet month's (holidays, a few
    meetings) large *relative* errors no longer become ±100 % bands on a term's peaks.
    ``relative``: max(point, floor), the former scale (band ∝ level).
    """
    level = np.maximum(np.asarray(point, dtype=float), floor)
    if kind == "relative":
        return level
    if kind == "sqrt":
        return np.sqrt(level)
    raise ValueError(f"unknown error scale {kind!r}; expected 'relative' or 'sqrt'")


def recent_residuals(pool: pd.DataFrame, until: pd.Timestamp, weeks: int) -> pd.DataFrame:
    """Residuals whose target lies in the ``weeks`` before ``until`` (never after it)."""
    if pool.empty:
        return pool
    times = pool["target_time"]
    return pool[(times < until) & (times >= until - pd.Timedelta(weeks=weeks))]


SHORT_HISTORY_WEEKS = 6  # less history than this: bands are marked short and widened


def is_short(history: pd.Series) -> bool:
    """Fewer than :data:`SHORT_HISTORY_WEEKS` weeks of known hours."""
    return int(history.notna().sum()) < SHORT_HISTORY_WEEKS * WEEK_HOURS


def band_quantiles(
    residuals: pd.DataFrame,
    buckets: np.ndarray,
    levels: Sequence[float],
    min_residuals: int,
    short: bool = False,
) -> dict[str, np.ndarray] | None:
    """Per target: quantiles of scaled residuals for median and each band edge.

    ``residuals`` has columns ``bucket`` and ``error`` (scaled). Buckets with too few
    residuals borrow the whole pool; None when the whole pool is too small. ``short``
    (a short history): the split-conformal finite-sample correction, quantile
    ⌈(n + 1)·p⌉ / n, with n the distinct target *days* in the pool rather than the
    residuals (hours of one day err together), so a few weeks of residuals give honestly
    wider bands (with 10 days, the 95 % band's edges are the extreme residuals).
    """
    if len(residuals) < min_residuals:
        return None
    days = None
    if short and "target_time" in residuals:
        days = max(1, pd.DatetimeIndex(residuals["target_time"]).floor("D").nunique())

    def corrected(p: float) -> float:
        if days is None or p == 0.5:
            return p
        upper = max(p, 1 - p)
        adjusted = min(1.0, np.ceil((days + 1) * upper) / days)
        return adjusted if p > 0.5 else 1 - adjusted

    probs = {"median": 0.5}
    for level in levels:
        probs[f"lower_{round(level * 100)}"] = corrected((1 - level) / 2)
        probs[f"upper_{round(level * 100)}"] = corrected((1 + level) / 2)
    names, values = list(probs), list(probs.values())
    errors = residuals["error"].to_numpy(dtype=float)
    pooled = np.quantile(errors, values)
    of_residual = residuals["bucket"].to_numpy()
    wanted = np.asarray(buckets)
    rows = np.empty((len(wanted), len(values)))
    for bucket in np.unique(wanted):
        own = errors[of_residual == bucket]
        rows[wanted == bucket] = np.quantile(own, values) if len(own) >= min_residuals else pooled
    return {name: rows[:, i] for i, name in enumerate(names)}


def apply_bands(
    point: np.ndarray,
    quantiles: dict[str, np.ndarray] | None,
    floor: float,
    levels: Sequence[float],
    kind: str = "sqrt",
    widen: Mapping[int, float | np.ndarray] | None = None,
) -> pd.DataFrame:
    """Median and band columns from a point forecast and residual quantiles.

    ``widen``: per level (50, 80, 95), a factor on each edge's distance from the median,
    learnt online by the backtest from the coverage its earlier bands achieved
    (:func:`planner.backtest.rolling_origin`); bands stay nested.
    """
    columns = ["median"] + [
        f"{edge}_{round(level * 100)}" for level in levels for edge in ("lower", "upper")
    ]
    if quantiles is None:
        frame = pd.DataFrame({c: np.full(len(point), np.nan) for c in columns})
        frame["median"] = point
        return frame
    scale = residual_scale(point, floor, kind)
    edges = {c: point + quantiles[c] * scale for c in columns}  # numpy: a backtest's hot path
    median = edges["median"]
    inner_low, inner_high = median, median
    for level in sorted(levels):
        name = round(level * 100)
        factor = (widen or {}).get(name, 1.0)
        low = median - factor * (median - edges[f"lower_{name}"])
        high = median + factor * (edges[f"upper_{name}"] - median)
        inner_low, inner_high = np.minimum(low, inner_low), np.maximum(high, inner_high)
        edges[f"lower_{name}"], edges[f"upper_{name}"] = inner_low, inner_high
    return pd.DataFrame({c: np.maximum(edges[c], 0.0) for c in columns})


def forecast_frame(
    history: pd.Series,
    regime_of: RegimeFn,
    horizon_hours: int,
    residuals: dict[str, pd.DataFrame],
    method_by_bucket: dict[str, str],
    config: ForecastConfig,
    widen: dict[str, dict[str, dict[int, float]]] | None = None,
) -> pd.DataFrame:
    """Hourly history plus forecast for ``horizon_hours`` after its last hour.

    Columns: ``actual``, ``regime``, ``method``, ``median`` and ``lower_/upper_50|80|95``;
    the forecast rows have no ``actual``. Each lead-time bucket uses the method its
    backtest picked (default ``confscale``) and that method's residual pool.
    """
    history = history.astype(float)
    if history.dropna().empty:
        raise ValueError("no history to forecast from")
    last = history.dropna().index[-1]
    history = history[:last]
    targets = pd.date_range(last + pd.Timedelta(hours=1), periods=horizon_hours, freq="1h")
    regimes_hist = regime_of(history.index)
    regimes_target = regime_of(targets)
    leads = np.arange(1, horizon_hours + 1)
    buckets = lead_bucket(leads)
    floor = scale_floor(history, config.floor_share)
    out = apply_bands(np.zeros(horizon_hours), None, floor, config.levels)
    chosen = np.array([method_by_bucket.get(str(b), "confscale") for b in buckets])
    for method in config.methods:
        mask = chosen == method
        if not mask.any():
            continue
        point = predict(method, history, regimes_hist, targets, regimes_target, config)
        pool = residuals.get(method)
        if pool is not None:
            pool = recent_residuals(pool, targets[0], config.calibration_weeks)
        quantiles = (
            None
            if pool is None
            else band_quantiles(
                pool, buckets, config.levels, config.min_residuals, is_short(history)
            )
        )
        factors = (widen or {}).get(method)
        per_target = (
            None
            if not factors
            else {
                level: np.array([factors.get(str(b), {}).get(level, 1.0) for b in buckets])
                for level in {lv for per in factors.values() for lv in per}
            }
        )
        banded = apply_bands(point, quantiles, floor, config.levels, config.error_scale, per_target)
        out.loc[mask, :] = banded.loc[mask, :].to_numpy()
    out.index = targets
    out.insert(0, "method", chosen)
    out.insert(0, "regime", regimes_target)
    past = pd.DataFrame({"actual": history, "regime": regimes_hist}, index=history.index)
    return pd.concat([past, out], axis=0).rename_axis("timestamp")
