"""The planner page in a real browser (Debian chromium through the system chromedriver).

One ``confscale-planner serve`` on a simulator history serves every page; a second one
points at a Prometheus that is not there. Screenshots of each page go under
``test-artifacts/screenshots`` (printed by the tests).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
from confscale.planner.forecast import METHODS
from harness import (
    REPO,
    Proc,
    artifacts_dir,
    free_port,
    python_module,
    require_tool,
    running,
    wait_until,
)

PAGES = {"overview": "/", "forecast": "/forecast", "nodes": "/nodes", "diagnostics": "/diagnostics"}
GRAPHS = {
    "overview": ["constraint-chart"],
    "forecast": ["fan-chart", "heatmap-demand", "heatmap-servers"],
    "diagnostics": ["coverage-chart", "residuals-chart"],
    "nodes": [],
}
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """Five simulated weeks of 4 BBB nodes and one bridge (enough for a backtest)."""
    out = tmp_path_factory.mktemp("web") / "history.csv.gz"
    args = python_module(
        "confscale.simulator.cli",
        "history",
        "--history.weeks=5",
        "--pool.nodes=4",
        "--pool.jitsi=1",
        "--model.seed=3",
        "--history.end=2026-11-20T12:00:00Z",
        f"--output.file={out}",
    )
    proc = Proc("sim-history", args, cwd=REPO)
    try:
        code = proc.popen.wait(120)
    finally:
        proc.stop()
    assert code == 0, proc.log()
    return out


def planner(*source: str, env: dict[str, str] | None = None) -> tuple[Proc, str]:
    port = free_port()
    args = python_module(
        "confscale.planner.cli",
        "serve",
        *source,
        f"--web.listen-address=127.0.0.1:{port}",
        "--refit.interval=1h",
    )
    return Proc("planner-web", args, cwd=REPO, env=env), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def page_url(history) -> Iterator[str]:
    proc, url = planner(f"--history.file={history}")
    with running(proc, f"{url}/-/healthy", timeout=60):
        wait_until(
            lambda: requests.get(f"{url}/-/healthy", timeout=5).json()["ready"],
            timeout=90,
            what="the planner's first result",
        )
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require_tool("chromium")
    driver_path = require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require_tool("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.TemporaryDirectory(prefix="confscale-chromium-")
    options.add_argument(f"--user-data-dir={profile.name}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    log = artifacts_dir("logs") / "chromedriver-web.log"
    driver = webdriver.Chrome(service=Service(driver_path, log_output=str(log)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        with contextlib.suppress(OSError):
            profile.cleanup()


def screenshot(driver, name: str) -> Path:
    folder = artifacts_dir("screenshots")
    path = folder / f"planner-{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


NODE_NAMES = (
    "const names = Array.from(document.querySelectorAll("
    "'#nodes-table td[data-dash-column=\"node\"]')).map(td => td.innerText.trim());"
)


def severe_console_entries(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def trace_points(driver, graph_id: str) -> list[int]:
    """Points per trace of a rendered dcc.Graph (empty until plotly has drawn it)."""
    script = (
        "const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
        "if (!el || !el._fullData) return null;"
        "const count = v => (v && (Array.isArray(v) || ArrayBuffer.isView(v)))"
        "  ? Array.from(v).reduce((n, x) => n + (typeof x === 'object' ? count(x)"
        "      : (x !== null && !Number.isNaN(x) ? 1 : 0)), 0) : 0;"
        "return (el._fullData || []).map(t => count(t.z || t.y));"
    )
    return driver.execute_script(script, graph_id)


def wait_for(driver, script: str, *args: object, what: str, timeout: float = 30.0):
    return wait_until(lambda: driver.execute_script(script, *args), timeout=timeout, what=what)


def text_of(driver, element_id: str) -> str:
    return driver.execute_script(
        "const el = document.getElementById(arguments[0]); return el ? el.textContent : null;",
        element_id,
    )


def test_every_page_loads_without_console_errors_and_graphs_have_data(page_url, browser):
    print(f"screenshots in {artifacts_dir('screenshots')}")
    for name, path in PAGES.items():
        browser.get(page_url + path)
        wait_for(
            browser,
            "return document.getElementById('page') && "
            "document.getElementById('page').children.length > 0",
            what=f"{name} page content",
        )
        for graph_id in GRAPHS[name]:
            points = wait_until(
                lambda g=graph_id: trace_points(browser, g), timeout=30, what=f"{graph_id} drawn"
            )
            assert sum(points) > 0, f"{graph_id} on {name} has no data: {points}"
        if name == "nodes":
            wait_for(
                browser,
                NODE_NAMES + "return names.length && names.every(n => n) && names;",
                what="named node rows",
            )
        if name == "overview":
            wait_for(
                browser,
                "return document.querySelectorAll('.card').length >= 8",
                what="overview cards",
            )
        screenshot(browser, name)
        source = browser.page_source
        assert "Traceback" not in source
        assert severe_console_entries(browser) == [], f"console errors on {name}"


def test_navigation_links_route_in_the_page(page_url, browser):
    from selenium.webdriver.common.by import By

    browser.get(page_url + "/")
    wait_until(lambda: trace_points(browser, "constraint-chart"), timeout=30, what="overview")
    for name, graph_id in (
        ("forecast", "fan-chart"),
        ("diagnostics", "coverage-chart"),
        ("nodes", None),
        ("overview", "constraint-chart"),
    ):
        browser.find_element(By.ID, f"nav-{name}").click()
        wait_until(
            lambda n=name: browser.current_url.rstrip("/") == (page_url + PAGES[n]).rstrip("/"),
            timeout=10,
            what=f"URL of {name}",
        )
        if graph_id:
            points = wait_until(
                lambda g=graph_id: trace_points(browser, g),
                timeout=30,
                what=f"{graph_id} after clicking {name}",
            )
            assert sum(points) > 0
        else:
            wait_for(
                browser,
                "return document.querySelectorAll("
                "'#nodes-table td[data-dash-column=\"node\"]').length",
                what="node rows",
            )
    browser.get(page_url + "/no-such-page")
    missing = wait_for(
        browser,
        "const p = document.getElementById('page');"
        "return p && p.innerText.includes('No page at') && p.innerText;",
        what="the unknown-page message",
    )
    assert "/no-such-page" in missing
    assert severe_console_entries(browser) == []


SETTLED = (  # no callback output still loading (dash marks them while they are)
    "return !document.querySelector('[data-dash-is-loading=\"true\"]')"
    " && !document.querySelector('._dash-loading');"
)


def named_trace_points(driver, graph_id: str) -> dict[str, int]:
    """Trace name → drawn points (x values that are not null) of a rendered graph."""
    script = (
        "const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
        "if (!el || !el._fullData) return null;"
        "const out = {};"
        "for (const t of el._fullData) {"
        "  const ys = t.y || t.median || [];"
        "  out[t.name] = (out[t.name] || 0) + Array.from(ys).filter("
        "    v => v !== null && !Number.isNaN(v)).length; }"
        "return out;"
    )
    return driver.execute_script(script, graph_id)


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


def test_sizing_reports_bbb_and_jitsi_apart(page_url, browser):
    body = requests.get(f"{page_url}/api/v1/capacity", timeout=10).json()
    scope, block = body["scope"], body["jitsi"]
    assert scope["sized_kind"] == "bbb" and scope["not_sized"] == {}
    assert "sized separately" in scope["note"]
    assert block["binding_constraint"] == "jitsi_stress" and block["servers_online"] == 1
    counts = " / ".join(str(block["servers_needed"][h]) for h in ("now", "next_peak", "4w"))
    browser.get(page_url + "/")
    shown = wait_until(lambda: text_of(browser, "card-jitsi-value"), timeout=30, what="Jitsi card")
    assert shown == counts
    assert "jitsi_stress" in text_of(browser, "card-jitsi")
    assert "Sizing covers the BBB part of the pool" not in browser.execute_script(
        "return document.body.textContent;"
    )
    from selenium.webdriver.common.keys import Keys

    _move_slider(browser, "wi-headroom-jitsi", Keys.HOME)  # stress target 0.3
    lower = wait_until(
        lambda: (t := text_of(browser, "card-jitsi-value")) != counts and t,
        timeout=30,
        what="the Jitsi count to follow a lower stress target",
    )
    before = [int(n) for n in counts.split(" / ")]
    after = [int(n) for n in lower.split(" / ")]
    assert all(a >= b for a, b in zip(after, before, strict=True)) and after != before
    _move_slider(browser, "wi-headroom-jitsi", Keys.END)  # back up (1.0) for the next tests


def test_nodes_table_lists_every_simulated_node(page_url, browser, history):
    expected = set(pd.read_csv(history, usecols=["node"])["node"])
    assert expected == {"bbb-01", "bbb-02", "bbb-03", "bbb-04", "jvb-01"}
    browser.get(page_url + "/nodes")
    script = (
        "return Array.from(document.querySelectorAll("
        "'#nodes-table td[data-dash-column=\"node\"]')).map(td => td.innerText.trim());"
    )
    shown = wait_until(
        lambda: (names := browser.execute_script(script)) and all(names) and names,
        timeout=30,
        what="node rows with names",
    )
    assert set(shown) == expected
    assert len(shown) == len(expected)
    api = requests.get(page_url + "/api/v1/placement", timeout=5).json()
    assert {n["node"] for n in api["nodes"]} == expected


def _card_number(browser, key: str) -> int:
    text = text_of(browser, f"card-{key}-value")
    assert text is not None and text.strip().isdigit(), f"card {key} shows {text!r}"
    return int(text)


def _move_slider(browser, control_id: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    handle = browser.find_element(By.CSS_SELECTOR, f"#{control_id} [role=slider]")
    handle.send_keys(key)


def _constraint_bars(browser) -> dict[str, int]:
    """Servers needed per constraint as the constraint chart draws them."""
    script = (
        "const el = document.querySelector('#constraint-chart .js-plotly-plot');"
        "if (!el || !el._fullData || !el._fullData.length) return null;"
        "const t = el._fullData[0]; return [Array.from(t.x), Array.from(t.y)];"
    )
    drawn = browser.execute_script(script)
    return dict(zip(drawn[0], drawn[1], strict=True)) if drawn else {}


def _open_overview(browser, page_url: str) -> None:
    browser.get(page_url + "/")
    browser.execute_script("window.sessionStorage.clear();")  # the what-if store
    browser.get(page_url + "/")
    wait_until(lambda: _constraint_bars(browser), timeout=30, what="constraint chart")


def test_growth_moves_servers_needed_up_and_down(page_url, browser):
    from selenium.webdriver.common.keys import Keys

    _open_overview(browser, page_url)
    before = wait_until(lambda: _card_number(browser, "4w"), timeout=30, what="4w card")
    _move_slider(browser, "wi-growth", Keys.END)  # growth 3×
    more = wait_until(
        lambda: (n := _card_number(browser, "4w")) != before and n,
        timeout=30,
        what="servers needed to change with growth 3×",
    )
    assert more > before
    _move_slider(browser, "wi-growth", Keys.HOME)  # growth 0.5×
    fewer = wait_until(
        lambda: (n := _card_number(browser, "4w")) != more and n,
        timeout=30,
        what="servers needed to change with growth 0.5×",
    )
    assert fewer < before
    screenshot(browser, "what-if-growth")
    body = requests.get(page_url + "/api/v1/capacity", timeout=5).json()
    assert body["servers_needed"]["4w"] == before  # the page's what-if leaves the API alone
    assert severe_console_entries(browser) == []


def test_webcam_share_moves_the_bandwidth_need_and_never_lowers_the_total(page_url, browser):
    from selenium.webdriver.common.keys import Keys

    _open_overview(browser, page_url)
    total = wait_until(lambda: _card_number(browser, "next_peak"), timeout=30, what="card")
    bars = _constraint_bars(browser)
    _move_slider(browser, "wi-webcam", Keys.END)  # every participant's camera on
    more = wait_until(
        lambda: (b := _constraint_bars(browser))["transmit"] > bars["transmit"] and b,
        timeout=30,
        what="the transmit need to grow with every camera on",
    )
    assert more["participants"] == bars["participants"]  # cameras cost no seats
    assert _card_number(browser, "next_peak") >= total
    _move_slider(browser, "wi-webcam", Keys.HOME)  # no cameras
    fewer = wait_until(
        lambda: (b := _constraint_bars(browser))["transmit"] < more["transmit"] and b,
        timeout=30,
        what="the transmit need to fall with no camera",
    )
    assert fewer["transmit"] <= bars["transmit"]
    screenshot(browser, "what-if-webcam")
    assert severe_console_entries(browser) == []


def test_prometheus_unreachable_shows_the_message_not_a_traceback(browser):
    closed = free_port()  # nothing listens here
    proc, url = planner(f"--prometheus.url=http://127.0.0.1:{closed}")
    with running(proc, f"{url}/-/healthy", timeout=60):
        wait_until(
            lambda: requests.get(f"{url}/-/healthy", timeout=5).json()["last_error"],
            timeout=60,
            what="the failed first refresh",
        )
        for name, path in PAGES.items():
            browser.get(url + path)
            banner = wait_for(
                browser,
                "const b = document.querySelector('.banner-bad'); return b && b.innerText;",
                what=f"the unreachable message on {name}",
            )
            assert "cannot read" in banner and f"127.0.0.1:{closed}" in banner
            assert "connection refused" in banner.lower() and "HTTPConnectionPool" not in banner
            assert "Traceback" not in browser.page_source
            placeholder = wait_for(
                browser,
                "const w = document.getElementById('waiting'); return w && w.innerText;",
                what=f"the placeholder on {name}",
            )
            assert "no result yet" in placeholder
            if name == "overview":
                screenshot(browser, "prometheus-unreachable")
        assert severe_console_entries(browser) == []


def test_short_history_says_how_much_is_missing(browser, tmp_path):
    from confscale.planner.synthetic import synthetic_history

    history = tmp_path / "week.csv"
    synthetic_history(nodes=2, weeks=1, start="2026-09-21").to_csv(history, index=False)
    proc, url = planner(f"--history.file={history}")
    with running(proc, f"{url}/-/healthy", timeout=60):
        wait_until(
            lambda: requests.get(f"{url}/-/healthy", timeout=5).json()["ready"],
            timeout=60,
            what="the planner's first result",
        )
        browser.get(url + "/diagnostics")
        banner = wait_for(
            browser,
            "const b = Array.from(document.querySelectorAll('.banner-warn'))"
            ".find(e => e.innerText.includes('History too short')); return b && b.innerText;",
            what="the short-history message",
        )
        assert "hours of history" in banner and "need" in banner
        note = wait_for(
            browser,
            "const n = document.getElementById('backtest-note');return n && n.innerText;",
            what="backtest note",
        )
        assert note.startswith("No backtest")
        screenshot(browser, "short-history")
        assert "Traceback" not in browser.page_source
        assert severe_console_entries(browser) == []
