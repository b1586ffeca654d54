"""The overview's cards and what-if sliders: BBB and Jitsi sized apart, growth and
webcam share move servers needed the right way (and leave the API alone)."""

from __future__ import annotations

import requests
from harness import wait_until

from .pagetools import (
    card_number,
    constraint_bars,
    move_slider,
    open_overview,
    screenshot,
    severe_console_entries,
    text_of,
)


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

    move_slider(browser, "wi-headroom-jitsi", Keys.HOME)  # stress target 0.3
    lower = wait_until(
        lambda: (t := text_of(browser, "card-jitsi-value")) != counts and t,
        timeout=30,
        what="the Jitsi count to follow a lower stress target",
    )
    before = [int(n) for n in counts.split(" / ")]
    after = [int(n) for n in lower.split(" / ")]
    assert all(a >= b for a, b in zip(after, before, strict=True)) and after != before
    move_slider(browser, "wi-headroom-jitsi", Keys.END)  # back up (1.0) for the next tests


def test_growth_moves_servers_needed_up_and_down(page_url, browser):
    from selenium.webdriver.common.keys import Keys

    open_overview(browser, page_url)
    before = wait_until(lambda: card_number(browser, "4w"), timeout=30, what="4w card")
    move_slider(browser, "wi-growth", Keys.END)  # growth 3×
    more = wait_until(
        lambda: (n := card_number(browser, "4w")) != before and n,
        timeout=30,
        what="servers needed to change with growth 3×",
    )
    assert more > before
    move_slider(browser, "wi-growth", Keys.HOME)  # growth 0.5×
    fewer = wait_until(
        lambda: (n := card_number(browser, "4w")) != more and n,
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

    open_overview(browser, page_url)
    total = wait_until(lambda: card_number(browser, "next_peak"), timeout=30, what="card")
    bars = constraint_bars(browser)
    move_slider(browser, "wi-webcam", Keys.END)  # every participant's camera on
    more = wait_until(
        lambda: (b := constraint_bars(browser))["transmit"] > bars["transmit"] and b,
        timeout=30,
        what="the transmit need to grow with every camera on",
    )
    assert more["participants"] == bars["participants"]  # cameras cost no seats
    assert card_number(browser, "next_peak") >= total
    move_slider(browser, "wi-webcam", Keys.HOME)  # no cameras
    fewer = wait_until(
        lambda: (b := constraint_bars(browser))["transmit"] < more["transmit"] and b,
        timeout=30,
        what="the transmit need to fall with no camera",
    )
    assert fewer["transmit"] <= bars["transmit"]
    screenshot(browser, "what-if-webcam")
    assert severe_console_entries(browser) == []
