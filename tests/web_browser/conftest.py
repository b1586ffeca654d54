"""One simulator history, one planner serving it and one chromium for every test in this
folder (package scope: each is started once, and stopped after the folder's last test)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import REPO, Proc, artifacts_dir, python_module, require_tool

from .pagetools import CHROMIUM_FLAGS, serving


@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
def page_url(history) -> Iterator[str]:
    with serving(f"--history.file={history}") as url:
        yield url


@pytest.fixture(scope="package")
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
