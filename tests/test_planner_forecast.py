"""Forecast and backtest on synthetic pools with a known truth (pure, fast)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from confscale.planner.backtest import rolling_origin
from confscale.planner.calendar import HOLIDAY, TERM, Period, RegimeCalendar
from confscale.planner.forecast import METHODS, ForecastConfig, forecast_frame, point_forecast
from confscale.planner.history import derive_rates, validate_history
from confscale.planner.peaks import hourly_peaks, pool_totals
from confscale.planner.synthetic import synthetic_history

HOLIDAYS = ((dt.date(2026, 10, 26), dt.date(2026, 11, 8)),)
CALENDAR = RegimeCalendar(periods=tuple(Period(a, b, HOLIDAY) for a, b in HOLIDAYS))


def regime_of(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(CALENDAR.regimes(index.date))


def pool_hourly(**kw: object) -> pd.Series:
    frame = derive_rates(validate_history(synthetic_history(**kw)))  # type: ignore[arg-type]
    return hourly_peaks(pool_totals(frame)["participants"])


def always_term(index: pd.DatetimeIndex) -> np.ndarray:
    return np.full(len(index), TERM, dtype=object)


@pytest.fixture(scope="module")
def term_only() -> pd.Series:
    return pool_hourly(nodes=5, weeks=10, seed=11, weekly_growth=1.02, noise=0.15)


def test_backtest_beats_seasonal_naive_and_bands_cover_near_nominal(term_only) -> None:
    result = rolling_origin(term_only, always_term, 168)
    ours, naive = result.summary["confscale"], result.summary["seasonal_naive"]
    assert ours["origins"] == naive["origins"] >= 20
    assert ours["mase"] < naive["mase"]
    assert 0.70 <= ours["coverage_80"] <= 0.92
    assert 0.85 <= ours["coverage_95"] <= 0.995
    assert ours["peak_ape"] < 0.15


def test_no_leakage_future_values_do_not_change_earlier_forecasts(term_only) -> None:
    origin = 6 * 168
    targets = term_only.index[origin : origin + 48]
    train = term_only.iloc[:origin]
    regimes = always_term(train.index)
    before = point_forecast(train, regimes, targets, always_term(targets), ForecastConfig())
    tampered = term_only.copy()
    tampered.iloc[origin:] *= 10  # the future changes…
    after = point_forecast(
        tampered.iloc[:origin], regimes, targets, always_term(targets), ForecastConfig()
    )
    np.testing.assert_allclose(before, after)  # …the forecast made before it does not
    a = rolling_origin(term_only.iloc[: 8 * 168], always_term, 24)
    b = rolling_origin(
        pd.concat([term_only.iloc[: 8 * 168], term_only.iloc[8 * 168 :] * 5]).iloc[: 8 * 168],
        always_term,
        24,
    )
    assert a.summary == b.summary


def test_term_to_holiday_regime_change_is_handled() -> None:
    hourly = pool_hourly(nodes=5, weeks=10, seed=4, holidays=HOLIDAYS, noise=0.1)
    origin = hourly.index.get_loc(pd.Timestamp("2026-10-26", tz="UTC"))
    train = hourly.iloc[:origin]
    targets = hourly.index[origin : origin + 168]
    actual = hourly.iloc[origin : origin + 168]
    ours = point_forecast(
        train, regime_of(train.index), targets, regime_of(targets), ForecastConfig()
    )
    naive_error = np.nanmean(
        np.abs(hourly.iloc[origin - 168 : origin].to_numpy() - actual.to_numpy())
    )
    our_error = np.nanmean(np.abs(ours - actual.to_numpy()))
    assert our_error < naive_error / 3  # the first holiday week, never seen before
    # a week into the holidays, holiday data is used, not the term level
    later = hourly.index.get_loc(pd.Timestamp("2026-11-02", tz="UTC"))
    week2 = hourly.index[later : later + 168]
    forecast = point_forecast(
        hourly.iloc[:later],
        regime_of(hourly.index[:later]),
        week2,
        regime_of(week2),
        ForecastConfig(),
    )
    ratio = np.nanmax(forecast) / np.nanmax(hourly.iloc[:origin].to_numpy())
    assert ratio < 0.3
    # and the backtest across the change still beats seasonal naive
    result = rolling_origin(hourly, regime_of, 168)
    assert result.summary["confscale"]["mase"] < result.summary["seasonal_naive"]["mase"]


def test_forecast_frame_columns_bands_ordered_and_methods(term_only) -> None:
    result = rolling_origin(term_only, always_term, 168)
    frame = forecast_frame(
        term_only, always_term, 336, result.residuals, result.method_by_bucket, ForecastConfig()
    )
    future = frame[frame["actual"].isna() & frame["median"].notna()]
    assert len(future) == 336
    assert set(frame["regime"].dropna()) <= {TERM, HOLIDAY}
    for level in (50, 80, 95):
        assert (future[f"lower_{level}"] <= future["median"] + 1e-9).all()
        assert (future[f"upper_{level}"] >= future["median"] - 1e-9).all()
    assert (future["upper_95"] >= future["upper_80"] - 1e-9).all()
    assert (future["upper_80"] >= future["upper_50"] - 1e-9).all()
    assert set(future["method"]) <= set(METHODS)


def test_slots_follow_the_pools_local_time_across_a_dst_change() -> None:
    # a pool whose lectures peak at 10:00 Berlin time; summer time ends on 25 Oct 2026
    index = pd.date_range("2026-09-14", "2026-10-25 23:00", freq="1h", tz="UTC")
    local = index.tz_convert("Europe/Berlin")
    values = np.where((local.hour == 10) & (local.weekday < 5), 1000.0, 100.0)
    history = pd.Series(values, index=index)
    targets = pd.date_range("2026-10-26", periods=120, freq="1h", tz="UTC")  # Mon–Fri
    regimes = always_term

    def peak_hours_utc(timezone: str) -> set[int]:
        point = point_forecast(
            history,
            regimes(history.index),
            targets,
            regimes(targets),
            ForecastConfig(timezone=timezone),
        )
        frame = pd.Series(point, index=targets)
        return {
            int(frame[day : day + pd.Timedelta(hours=23)].idxmax().hour)
            for day in pd.date_range("2026-10-26", periods=5, freq="1D", tz="UTC")
        }

    assert peak_hours_utc("Europe/Berlin") == {9}  # 10:00 CET
    assert peak_hours_utc("UTC") == {8}  # a UTC slot keeps the summer hour


def test_backtest_publishes_past_forecasts_residuals_and_a_per_horizon_table(term_only) -> None:
    result = rolling_origin(term_only, always_term, 168)
    # past forecasts: the day-ahead forecasts the rolling origins issued, up to the end
    past = result.past_forecasts("confscale")
    assert past.index.is_monotonic_increasing and past.index.is_unique
    assert (past.index >= past["origin"]).all()  # origin: the first hour not seen
    assert past["lead_hours"].between(1, 24).all()
    assert past.index[-1] == term_only.index[-1]  # origins run on past the last full horizon
    # out of sample: what an origin issued is the point forecast from the data before it
    origin = past["origin"].iloc[len(past) // 2]
    issued = past[past["origin"] == origin]
    train = term_only[term_only.index < origin]
    point = point_forecast(
        train, always_term(train.index), issued.index, always_term(issued.index), ForecastConfig()
    )
    np.testing.assert_allclose(point, issued["median"], rtol=0.5, atol=1.0)  # + median shift
    tampered = term_only.copy()
    tampered[tampered.index >= origin] *= 3
    again = rolling_origin(tampered, always_term, 168).past_forecasts("confscale")
    np.testing.assert_allclose(
        again.loc[again["origin"] == origin, "median"], issued["median"]
    )  # a changed future does not change what was issued before it
    # residuals by lead and local hour; a table per method and lead-time bucket
    residuals = result.residual_frame("Europe/Berlin")
    assert set(residuals["method"]) == set(METHODS)
    assert set(residuals["hour"]) == set(range(24))
    assert residuals["lead_hours"].between(1, 168).all()
    table = result.horizon_table()
    assert {(m, b) for m, b in zip(table["method"], table["bucket"], strict=True)} == {
        (m, b) for m in METHODS for b in ("1-24h", "25-168h")
    }
    assert table[["coverage_80", "coverage_95"]].notna().all().all()
    assert (table["coverage_80"] <= table["coverage_95"]).all()
    chosen = table[table["chosen"]]
    assert dict(zip(chosen["bucket"], chosen["method"], strict=True)) == result.method_by_bucket
    # the per-bucket counts add up to the summary's evaluated targets
    for method in METHODS:
        part = table[table["method"] == method]
        hits = (part["coverage_95"] * part["n"]).sum() / part["n"].sum()
        assert hits == pytest.approx(result.summary[method]["coverage_95"], abs=1e-3)
