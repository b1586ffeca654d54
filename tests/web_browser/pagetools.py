"""Reading the planner page in the browser: what the pages are, how to start a planner,
and small scripts that read drawn graphs, cards and sliders (used by every test here)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import requests
from harness import REPO, Proc, artifacts_dir, free_port, python_module, running, wait_until

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


@contextlib.contextmanager
def serving(*source: str, until: str = "ready", timeout: float = 90.0) -> Iterator[str]:
    """``planner(*source)`` running, once its /-/healthy says ``until`` (its first result,
    or ``last_error``: its first failed refresh); yields its base URL."""
    proc, url = planner(*source)
    with running(proc, f"{url}/-/healthy", timeout=60):
        wait_until(
            lambda: requests.get(f"{url}/-/healthy", timeout=5).json()[until],
            timeout=timeout,
            what=f"the planner's {until}",
        )
        yield url


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


def card_number(browser, key: str) -> int:
    text = text_of(browser, f"card-{key}-value")
    assert text is not None and text.strip().isdigit(), f"card {key} shows {text!r}"
    return int(text)


def move_slider(browser, control_id: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    handle = browser.find_element(By.CSS_SELECTOR, f"#{control_id} [role=slider]")
    handle.send_keys(key)


def constraint_bars(browser) -> dict[str, int]:
    """Servers needed per constraint as the constraint chart draws them."""
    script = (
        "const el = document.querySelector('#constraint-chart .js-plotly-plot');"
        "if (!el || !el._fullData || !el._fullData.length) return null;"
        "const t = el._fullData[0]; return [Array.from(t.x), Array.from(t.y)];"
    )
    drawn = browser.execute_script(script)
    return dict(zip(drawn[0], drawn[1], strict=True)) if drawn else {}


def open_overview(browser, page_url: str) -> None:
    browser.get(page_url + "/")
    browser.execute_script("window.sessionStorage.clear();")  # the what-if store
    browser.get(page_url + "/")
    wait_until(lambda: constraint_bars(browser), timeout=30, what="constraint chart")
