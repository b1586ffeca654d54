"""Every page renders with data and no console errors; the links route in the page;
the node table lists every simulated node."""

from __future__ import annotations

import pandas as pd
import requests
from harness import artifacts_dir, wait_until

from .pagetools import (
    GRAPHS,
    NODE_NAMES,
    PAGES,
    screenshot,
    severe_console_entries,
    trace_points,
    wait_for,
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
