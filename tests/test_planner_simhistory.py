"""The planner on the pool simulator's own 12-week history (confscale-sim history).

The history ends in the Christmas holidays, so the backtest crosses a term → holiday
change; the same term calendar YAML drives the simulator and the planner.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import harness
import numpy as np
import pandas as pd
import pytest
from confscale.planner.backtest import rolling_origin
from confscale.planner.calendar import load_calendar
from confscale.planner.forecast import (
    ForecastConfig,
    forecast_frame,
    point_forecast,
    seasonal_naive,
)
from confscale.planner.history import derive_rates, load_history
from confscale.planner.resources import FEATURES
from confscale.planner.snapshot import PlannerConfig, compute_snapshot

TERMS = """terms:
  - {start: 2026-04-13, end: 2026-07-24}
  - {start: 2026-10-01, end: 2026-12-19}
  - {start: 2027-01-07, end: 2027-02-14}
"""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("planner-sim")
    (work / "terms.yml").write_text(TERMS)
    out = work / "history.parquet"
    subprocess.run(
        harness.python_module(
            "confscale.simulator.cli",
            "history",
            "--history.weeks",
            "12",
            "--pool.nodes",
            "20",
            "--model.seed",
            "3",
            "--history.end",
            "2027-01-03T23:55:00Z",
            "--model.term-calendar",
            str(work / "terms.yml"),
            "--output.file",
            str(out),
        ),
        check=True,
        cwd=harness.REPO,
        capture_output=True,
        timeout=300,
    )
    history = load_history(out)
    calendar = load_calendar(work / "terms.yml")
    snapshot = compute_snapshot(history, PlannerConfig(calendar=calendar))
    return {"history": history, "calendar": calendar, "snapshot": snapshot}


def test_backtest_beats_seasonal_naive_with_bands_near_nominal(simulated) -> None:
    table = simulated["snapshot"].backtest
    ours, naive = table.loc["confscale"], table.loc["seasonal_naive"]
    assert ours["origins"] >= 10
    assert ours["mase"] < naive["mase"]
    assert ours["peak_ape"] < naive["peak_ape"]
    assert 0.70 <= ours["coverage_80"] <= 0.92
    assert 0.85 <= ours["coverage_95"] <= 0.995


def test_term_to_holiday_change_is_forecast_from_the_calendar(simulated) -> None:
    snapshot = simulated["snapshot"]
    hourly = snapshot.forecast["actual"].dropna().asfreq("1h")
    origin = pd.Timestamp("2026-12-20T00:00:00Z")
    train, actual = (
        hourly[: origin - pd.Timedelta(hours=1)],
        hourly[origin : origin + pd.Timedelta(hours=167)],
    )
    calendar = simulated["calendar"]

    def regimes(index: pd.DatetimeIndex) -> np.ndarray:
        return np.asarray(calendar.regimes(index.date))

    ours = point_forecast(
        train, regimes(train.index), actual.index, regimes(actual.index), ForecastConfig()
    )
    naive = seasonal_naive(train, actual.index)
    our_error = np.nanmean(np.abs(ours - actual.to_numpy()))
    naive_error = np.nanmean(np.abs(naive - actual.to_numpy()))
    assert our_error < naive_error / 2
    # the forecast frame labels the holiday weeks and forecasts a holiday-sized peak
    assert set(snapshot.forecast["regime"]) >= {"term", "holiday"}


def test_resource_fit_is_conservative_on_simulated_nodes(simulated) -> None:
    snapshot = simulated["snapshot"]
    model = snapshot.model
    assert model.source == {"cpu": "fitted", "transmit": "fitted"}
    rows = derive_rates(simulated["history"]).dropna(subset=["cpu_busy_cores"])
    rows = rows[rows[list(FEATURES)].sum(axis=1) > 0]
    predicted = (
        model.cpu.intercept
        + model.cpu.voice_participants * rows["voice_participants"]
        + model.cpu.listeners * rows["listeners"]
        + model.cpu.video_fanout * rows["video_fanout"]
    )
    below = float((rows["cpu_busy_cores"] <= predicted).mean())
    assert 0.8 <= below <= 0.97  # a 0.9-quantile fit
    sizing = snapshot.sizing
    assert sizing.servers_online == 20
    assert all(isinstance(sizing.servers_needed[h], int) for h in ("now", "next_peak", "4w"))
    # The simulated 20 nodes carry their term peaks on the links (p99 link use ~0.3), but
    # not on seats: the simulator's own placement puts some node over 200 participants
    # in most busy 5-minute steps (lectures of 150-250 seats). Least-loaded packing at a
    # 1 % risk needs about twice the analytic count (a lecture arriving late lands on a
    # node already holding D/N), which the JSON says, with the risk at the analytic count
    # and the count with the lectures on nodes of their own (about the analytic one).
    packing = sizing.packing["next_peak"]
    needed = sizing.servers_needed["next_peak"]
    assert packing["fluid_bound"] <= needed <= packing["upper_bound"], packing
    assert packing["used"] in ("packing", "fluid"), packing
    assert packing["risk"] <= 0.01 and packing["risk_failure"] <= 0.01, packing
    assert needed > packing["analytic_bound"], packing
    assert "more than the analytic count" in packing["reason"], packing
    assert packing["fluid_bound"] <= packing["lectures_apart"] < needed, packing
    assert packing["fluid_bound"] >= 12


def test_planner_backtest_command_on_a_simulated_series(simulated, tmp_path: Path) -> None:
    hourly = simulated["snapshot"].forecast["actual"].dropna()
    path = tmp_path / "pool.csv"
    hourly.rename("participants").rename_axis("time").reset_index().to_csv(path, index=False)
    result = subprocess.run(
        harness.python_module(
            "confscale.planner.cli",
            "backtest",
            "--csv.file",
            str(path),
            "--csv.time-column",
            "time",
            "--csv.value-column",
            "participants",
            "--backtest.horizon",
            "24h",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=harness.REPO,
    )
    assert result.returncode == 0, result.stderr
    assert '"seasonal_naive"' in result.stdout and '"coverage_95"' in result.stdout


def test_bands_scale_with_the_level_and_keep_coverage(simulated) -> None:
    """Errors ÷ √level (counts) against the former errors ÷ level, on the same backtest.

    The history ends in the Christmas holidays (a pool of a few meetings, large relative
    errors); the former relative scale carried those errors onto the term's peaks.
    """
    hourly = simulated["snapshot"].forecast["actual"].dropna().asfreq("1h")
    calendar = simulated["calendar"]

    def regimes(index: pd.DatetimeIndex) -> np.ndarray:
        return np.asarray(calendar.regimes(index.date))

    results, frames = {}, {}
    for kind in ("relative", "sqrt"):
        config = ForecastConfig(error_scale=kind)
        result = rolling_origin(hourly, regimes, 672, config, warmup_hours=4 * 168)
        results[kind] = result.summary["confscale"]
        frames[kind] = forecast_frame(hourly, regimes, 672, result.residuals, {}, config)
    before, after = results["relative"], results["sqrt"]
    print(f"95 % band width / actual at busy hours: {before} -> {after}")
    assert 0.70 <= after["coverage_80"] <= 0.92
    assert 0.85 <= after["coverage_95"] <= 0.995
    assert after["coverage_95"] >= before["coverage_95"] - 0.03
    assert after["width_95_busy"] < 0.9 * before["width_95_busy"]
    # the page's forecast: the band over the coming term's busy hours, relative to the
    # median there, is narrower than with the relative scale
    ratios = {}
    for kind, frame in frames.items():
        future = frame[frame["actual"].isna()]
        busy = future[future["median"] >= 0.5 * future["median"].max()]
        ratios[kind] = float(((busy["upper_95"] - busy["lower_95"]) / busy["median"]).median())
    print(f"forecast 95 % band width / median at busy hours: {ratios}")
    assert ratios["sqrt"] < ratios["relative"]
