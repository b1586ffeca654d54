"""Forecast method ``ets``: a day-type × hour seasonal profile plus a damped-trend ETS.

The slot-median method (``confscale``) lags a level that moves week by week (smooth
demand with a trend): the median of the last four weeks is two weeks old. This method
separates the two, as STL + ETS ("STLF") does: the seasonal profile is the median, per
local day type (weekday, Saturday, Sunday) and hour, of the series less its 168-hour
centred mean over the last ``PROFILE_WEEKS`` weeks (a weekly and a daily cycle, robust to
a holiday week); the seasonally adjusted series is forecast by an additive-error,
damped additive-trend exponential smoothing model (statsmodels ``ETSModel``, maximum
likelihood) fitted on the last ``FIT_WEEKS`` weeks, and the profile is added back.

Regimes are respected: targets in another regime than the last observed hour (a holiday
ahead of a term, a term after a holiday) are left to ``fallback`` — the ``confscale``
forecast, which forecasts each regime from its own slots.

Cost: a maximum-likelihood fit is ~0.1–0.5 s, so the rolling-origin backtest refits the
parameters only every ``REFIT_HOURS`` (a week) of origins and, in between, filters the
new data with the last parameters (``ETSModel.smooth``: no optimisation, milliseconds).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

WEEK_HOURS = 168
PROFILE_WEEKS = 4
FIT_WEEKS = 3
REFIT_HOURS = WEEK_HOURS
MIN_HOURS = 2 * WEEK_HOURS  # less history: no forecast (NaN), the backtest prefers others

Fallback = Callable[[np.ndarray], np.ndarray]


def _day_type_slot(index: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    local = index.tz_convert(timezone)
    weekday = local.weekday.to_numpy()
    day_type = np.where(weekday < 5, 0, weekday - 4)  # 0 weekday, 1 Saturday, 2 Sunday
    return day_type * 24 + local.hour.to_numpy()


def seasonal_profile(values: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """72 slot offsets: median of (value − 168 h centred mean) per day type × hour."""
    series = pd.Series(values)
    level = series.rolling(WEEK_HOURS, center=True, min_periods=WEEK_HOURS // 2).mean()
    detrended = (series - level).to_numpy()
    profile = np.zeros(72)
    frame = pd.DataFrame({"slot": slots, "d": detrended}).dropna()
    if not frame.empty:
        medians = frame.groupby("slot")["d"].median()
        profile[medians.index.to_numpy(dtype=int)] = medians.to_numpy()
        # a day type never seen (e.g. no Sunday yet): the hour's weekday offset
        for slot in range(24, 72):
            if slot not in medians.index:
                profile[slot] = profile[slot % 24]
    return profile


DAY_TYPE_GAIN = 1.05  # day types (weekday/Sat/Sun) only when they explain 5 % more


def _mad(values: np.ndarray) -> float:
    """Median absolute deviation from the series' own 168 h mean (NaN ignored)."""
    series = pd.Series(values)
    level = series.rolling(WEEK_HOURS, center=True, min_periods=WEEK_HOURS // 2).mean()
    deviation = (series - level).abs().dropna()
    return float(deviation.median()) if len(deviation) else 0.0


class EtsForecaster:
    """Fits and forecasts; keeps the last parameters so a backtest can refit weekly."""

    def __init__(self, timezone: str = "UTC") -> None:
        self.timezone = timezone
        self.params: np.ndarray | None = None
        self.fitted_at: pd.Timestamp | None = None

    def forecast(
        self,
        history: pd.Series,
        history_regimes: np.ndarray,
        targets: pd.DatetimeIndex,
        target_regimes: np.ndarray,
        fallback: Fallback,
    ) -> np.ndarray:
        """Point forecast for ``targets`` from ``history`` (hourly, NaN for gaps)."""
        known = history.dropna()
        result = np.full(len(targets), np.nan)
        if len(known) < MIN_HOURS:
            return fallback(np.ones(len(targets), dtype=bool))
        last = known.index[-1]
        window = history[last - pd.Timedelta(hours=(FIT_WEEKS + 1) * WEEK_HOURS - 1) : last]
        regimes = np.asarray(history_regimes)[-len(window) :]
        last_regime = regimes[-1]
        values = window.to_numpy(dtype=float).copy()
        values[regimes != last_regime] = np.nan  # the level and change of this regime
        change = values[WEEK_HOURS:] - values[:-WEEK_HOURS]  # week-on-week, hour by hour
        change = pd.Series(change).interpolate(limit_direction="both").to_numpy()
        if not np.isfinite(change).all() or len(change) < WEEK_HOURS:
            return fallback(np.ones(len(targets), dtype=bool))
        steps = round((targets[-1] - last) / pd.Timedelta(hours=1))
        drift = self._predict(change, last, steps)  # smoothed weekly change per hour
        # the last value seen of each hour of the week (up to 4 weeks back over gaps)
        base, back = np.full(WEEK_HOURS, np.nan), np.zeros(WEEK_HOURS)
        for weeks_back in range(FIT_WEEKS + 1):
            end = len(values) - weeks_back * WEEK_HOURS
            if end < WEEK_HOURS:
                break
            older = values[end - WEEK_HOURS : end]
            fill = np.isnan(base) & np.isfinite(older)
            base[fill], back[fill] = older[fill], weeks_back
        if np.isnan(base).any():
            return fallback(np.ones(len(targets), dtype=bool))
        lead = np.round((targets - last) / pd.Timedelta(hours=1)).astype(int)
        ok = (lead >= 1) & (lead <= steps)
        slot = (lead - 1) % WEEK_HOURS
        weeks = (lead - 1) // WEEK_HOURS + 1 + back[slot]
        result[ok] = (base[slot] + weeks * drift[np.clip(lead - 1, 0, steps - 1)])[ok]
        if np.nanmin(known.to_numpy()) >= 0:
            result = np.maximum(result, 0.0)
        other = np.asarray(target_regimes) != last_regime
        if other.any():
            result[other] = fallback(other)[other]
        return result

    def _predict(self, series: np.ndarray, last: pd.Timestamp, steps: int) -> np.ndarray:
        from statsmodels.tools.sm_exceptions import ConvergenceWarning
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        model = ETSModel(series, error="add", trend=None)
        refit = (
            self.params is None
            or self.fitted_at is None
            or last - self.fitted_at >= pd.Timedelta(hours=REFIT_HOURS)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            if refit:
                fitted = model.fit(disp=False)
                self.params, self.fitted_at = np.asarray(fitted.params), last
            else:
                fitted = model.smooth(self.params)
        # ETS(A,N,N) forecasts its last smoothed level at every lead: read it rather than
        # call ``forecast``, which simulates step by step (a tenth of the refit's time)
        forecast = np.full(steps, float(np.asarray(fitted.level)[-1]))
        if not np.isfinite(forecast).all():
            forecast = np.full(steps, float(series[-WEEK_HOURS:].mean()))
        return forecast
