"""The forecast page's past-forecast overlay and the diagnostics page's backtest."""

from __future__ import annotations

from confscale.planner.forecast import METHODS
from harness import wait_until

from .pagetools import (
    SETTLED,
    named_trace_points,
    screenshot,
    severe_console_entries,
    trace_points,
    wait_for,
)


def test_past_forecast_overlay_draws_the_day_ahead_forecasts(page_url, browser):
    from selenium.webdriver.common.by import By

    browser.get(page_url + "/forecast")
    wait_until(lambda: trace_points(browser, "fan-chart"), timeout=30, what="fan chart")
    past = "forecast a day ahead (past)"
    assert past not in (named_trace_points(browser, "fan-chart") or {})  # off by default
    box = browser.find_element(By.CSS_SELECTOR, "#fan-overlay input[type=checkbox]")
    assert box.is_enabled(), "the overlay toggle is disabled: no past forecasts published"
    box.click()
    drawn = wait_until(
        lambda: (named_trace_points(browser, "fan-chart") or {}).get(past),
        timeout=30,
        what="the past forecasts trace",
    )
    # a day-ahead forecast for every hour from the backtest's first origin to the end:
    # 5 weeks of history less a warm-up of at least 2 weeks
    assert drawn >= 7 * 24, drawn
    # 90 days: the whole history, where the overlay follows the actuals
    browser.find_element(By.XPATH, "//*[@id='fan-window']//label[contains(., '90 days')]").click()
    span_days = (
        "const el = document.querySelector('#fan-chart .js-plotly-plot');"
        "const r = el && el._fullLayout && el._fullLayout.xaxis.range;"
        "return r && (new Date(r[1]) - new Date(r[0])) / 86400000;"
    )
    before = browser.execute_script(span_days)
    wait_until(
        lambda: (browser.execute_script(span_days) or 0) > before + 1,
        timeout=30,
        what=f"the fan chart's x range wider than {before} days",
    )
    wait_for(browser, SETTLED, what="the fan chart redrawn for 90 days")
    assert (named_trace_points(browser, "fan-chart") or {}).get(past), "overlay gone"
    screenshot(browser, "forecast-past-overlay")
    assert severe_console_entries(browser) == []


def test_diagnostics_show_the_backtest_per_horizon_and_residuals(page_url, browser):
    browser.get(page_url + "/diagnostics")
    rows = wait_for(
        browser,
        "const rows = Array.from(document.querySelectorAll('#backtest-horizon-table tbody tr'))"
        "  .map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.innerText.trim()))"
        "  .filter(r => r.length && r[0]);"
        "return rows.length && rows;",
        what="the per-horizon backtest table",
    )
    buckets = {row[0] for row in rows}
    methods = {row[1] for row in rows}
    assert methods == set(METHODS)
    assert "1-24h" in buckets and len(rows) == len(METHODS) * len(buckets)
    for bucket in buckets:  # exactly one method is used per lead time
        assert [row[-1] for row in rows if row[0] == bucket].count("yes") == 1
    traces = wait_until(
        lambda: named_trace_points(browser, "residuals-chart"),
        timeout=30,
        what="the residuals chart",
    )
    assert traces.get("confscale", 0) > 0 and traces.get("seasonal_naive", 0) > 0, traces
    browser.execute_script("document.getElementById('residuals-chart').scrollIntoView();")
    wait_for(browser, SETTLED, what="the diagnostics page settled")
    screenshot(browser, "diagnostics-residuals")
    assert severe_console_entries(browser) == []
