"""The simulated cluster proxy (--pool.proxy): nginx's stub_status text, its counters and
the proxy_refusing fault, in process (the HTTP route is in test_exporter_e2e.py); and the
TURN page's turn_allocations fault."""

from __future__ import annotations

import re

import pytest
from confscale.exporter.proxy import parse_stub_status
from confscale.simulator import turn
from confscale.simulator.pool import TURN_NAME, FaultError, Pool, SimClock
from confscale.simulator.proxy import PROXY_NAME, stub_status_page

START = 1_760_000_000.0  # a weekday in term, so there are meetings


def make_pool(proxy: bool = True) -> Pool:
    return Pool(nodes=3, jitsi=1, seed=2, clock=SimClock(START, frozen=True), proxy=proxy)


def test_the_page_is_nginx_text_and_parses_to_the_figures() -> None:
    pool = make_pool()
    pool.clock.advance(4 * 3600)
    assert pool.proxy is not None
    figures = pool.proxy.figures(pool, pool.clock.now())
    page = stub_status_page(figures).decode()
    # nginx's own line formats, trailing spaces included
    assert re.fullmatch(
        r"Active connections: \d+ \nserver accepts handled requests\n \d+ \d+ \d+ \n"
        r"Reading: \d+ Writing: \d+ Waiting: \d+ \n",
        page,
    ), page
    parsed = parse_stub_status(page.encode())
    assert parsed.active == figures["active"] > 0
    assert parsed.reading + parsed.writing + parsed.waiting == parsed.active
    assert parsed.accepted == parsed.handled == figures["accepted"] > 0  # healthy: none dropped
    assert parsed.requests > parsed.accepted


def test_refusing_drops_the_share_from_then_on_and_clearing_stops_it() -> None:
    pool = make_pool()
    assert pool.proxy is not None
    pool.clock.advance(1000)
    before = pool.proxy.figures(pool, pool.clock.now())
    pool.set_fault(PROXY_NAME, "proxy_refusing", 0.25)
    pool.clock.advance(1000)
    during = pool.proxy.figures(pool, pool.clock.now())
    offered = during["accepted"] - before["accepted"]
    assert during["accepted"] - during["handled"] == pytest.approx(offered * 0.25, abs=1)
    assert pool.faults() == {PROXY_NAME: {"mode": "proxy_refusing", "arg": 0.25}}
    pool.clear_faults(PROXY_NAME)
    pool.clock.advance(1000)
    after = pool.proxy.figures(pool, pool.clock.now())
    dropped = during["accepted"] - during["handled"]
    assert after["accepted"] - after["handled"] == pytest.approx(dropped, abs=1)  # no more
    for field in ("accepted", "handled", "requests"):  # counters never go back
        assert before[field] <= during[field] <= after[field], field


def test_proxy_faults_are_validated() -> None:
    pool = make_pool()
    with pytest.raises(FaultError, match="cluster proxy"):
        pool.set_fault("bbb-01", "proxy_refusing", 0.1)
    with pytest.raises(FaultError, match="0–1"):
        pool.set_fault(PROXY_NAME, "proxy_refusing", 1.5)
    with pytest.raises(FaultError, match="not for the cluster proxy"):
        pool.set_fault(PROXY_NAME, "memory_low", 0.1)
    pool.set_fault(PROXY_NAME, "http_error", 503)  # the network faults apply to it too
    without = make_pool(proxy=False)
    assert without.proxy is None
    with pytest.raises(FaultError, match="unknown node"):
        without.set_fault(PROXY_NAME, "proxy_refusing", 0.1)


ALLOCATIONS = re.compile(r'^turn_total_allocations\{type="\w+"\} (\d+)$', re.M)


def allocations(pool: Pool) -> int:
    page = turn.metrics_page(pool, pool.clock.now()).decode()
    return sum(int(n) for n in ALLOCATIONS.findall(page))


def test_turn_allocations_fault_sets_the_count_and_is_validated() -> None:
    pool = make_pool()
    pool.clock.advance(4 * 3600)
    modelled = allocations(pool)
    assert modelled < 13107  # far below the alert's 80 % of 16384 ports
    pool.set_fault(TURN_NAME, "turn_allocations", 14000)
    assert allocations(pool) == 14000
    pool.clear_faults(TURN_NAME)
    assert allocations(pool) == modelled
    with pytest.raises(FaultError, match="TURN server"):
        pool.set_fault("bbb-01", "turn_allocations", 10)
    with pytest.raises(FaultError, match="not for turn"):
        pool.set_fault(TURN_NAME, "slow", 1)
