"""What the page says when it has no result: Prometheus unreachable, history too short
(each test starts its own planner)."""

from __future__ import annotations

from harness import free_port

from .pagetools import PAGES, screenshot, serving, severe_console_entries, wait_for


def test_prometheus_unreachable_shows_the_message_not_a_traceback(browser):
    closed = free_port()  # nothing listens here
    with serving(f"--prometheus.url=http://127.0.0.1:{closed}", until="last_error") as url:
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
    with serving(f"--history.file={history}") as url:
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
