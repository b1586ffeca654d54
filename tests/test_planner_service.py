"""PlannerService: one scheduler, last good snapshot kept, hysteresis across refreshes;
the exporter scrape reader against a local /metrics page."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

import pandas as pd
import pytest
from confscale.planner.history import HistoryError, validate_history
from confscale.planner.placement import NodeReading, Placement
from confscale.planner.scrape import ExporterReader, ScrapeError
from confscale.planner.service import PlannerService
from confscale.planner.snapshot import what_if
from confscale.planner.synthetic import synthetic_history
from localhttp import serving


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return validate_history(synthetic_history(nodes=3, weeks=4, seed=12))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_failed_refresh_keeps_the_last_snapshot_and_says_why(history) -> None:
    calls = {"n": 0}

    def load() -> pd.DataFrame:
        calls["n"] += 1
        if calls["n"] > 1:
            raise HistoryError("pool.csv: line 7: column participants: 'x' is not a number")
        return history

    service = PlannerService(load)
    first = service.refresh()
    assert first is not None and service.status().last_error is None
    assert service.refresh() is first
    assert service.snapshot() is first
    assert "pool.csv: line 7" in service.status().last_error
    assert service.status().refits == 1
    assert service.what_if(growth=2.0).servers_needed == what_if(first, growth=2.0).servers_needed


def test_placement_refresh_keeps_hysteresis_and_calls_adapters(history) -> None:
    clock = Clock(history["timestamp"].max().timestamp())
    pressures = {"bbb-01": 0.95, "bbb-02": 0.3, "bbb-03": 0.3}
    frozen: dict[str, float] = {}
    seen: list[object] = []

    class Recorder:
        def apply(self, placement: Placement) -> None:
            seen.append(placement.recommended)

    class Broken:
        def apply(self, placement: Placement) -> None:
            raise RuntimeError("balancer down")

    def current() -> list[NodeReading]:
        stamp = frozen.get("at", clock.now - 5)
        return [
            NodeReading(node=n, timestamp=stamp, pressure=p, participants=10)
            for n, p in pressures.items()
        ]

    service = PlannerService(
        lambda: history, read_current=current, actuators=[Broken(), Recorder()], clock=clock
    )
    service.refresh()
    states = lambda: {n.node: n.state for n in service.snapshot().placement.nodes}  # noqa: E731
    assert states()["bbb-01"] == "out"
    pressures["bbb-01"] = 0.8
    clock.now += 30
    service.refresh_placement()
    assert states()["bbb-01"] == "out"  # held by hysteresis
    pressures["bbb-01"] = 0.7
    clock.now += 30
    service.refresh_placement()
    assert states()["bbb-01"] == "available"
    assert len(seen) == 3  # the broken adapter did not stop the other one
    # readings that stop moving go stale and leave the ranking
    frozen["at"] = clock.now
    clock.now += 3600
    service.refresh_placement()
    assert service.snapshot().placement.recommended is None
    assert service.snapshot().nodes["state"].eq("stale").all()


def test_start_runs_one_scheduler_and_stops(history) -> None:
    service = PlannerService(lambda: history, refit_seconds=3600)
    service.start()
    service.start()  # idempotent: still one scheduler
    try:
        snapshot = service.wait_ready(timeout=60)
        assert snapshot.servers_online == 3
        assert len(service._scheduler.get_jobs()) == 1  # refit only: no current source
    finally:
        service.stop()
    assert service._scheduler is None


PAGE = """# TYPE confscale_node_up gauge
confscale_node_up{{node="bbb-01",source="bbb"}} 1
confscale_node_up{{node="bbb-01",source="host"}} 1
confscale_node_up{{node="bbb-02",source="bbb"}} 0
# TYPE confscale_node_last_success_timestamp_seconds gauge
confscale_node_last_success_timestamp_seconds{{node="bbb-01",source="bbb"}} {ts}
# TYPE bbb_meetings_participants gauge
bbb_meetings_participants{{node="bbb-01"}} 120
# TYPE confscale_node_cpu_seconds_total counter
confscale_node_cpu_seconds_total{{node="bbb-01",mode="idle"}} {idle}
confscale_node_cpu_seconds_total{{node="bbb-01",mode="user"}} {busy}
# TYPE confscale_node_network_transmit_bytes_total counter
confscale_node_network_transmit_bytes_total{{node="bbb-01"}} {tx}
# TYPE confscale_node_link_capacity_bytes_per_second gauge
confscale_node_link_capacity_bytes_per_second{{node="bbb-01"}} 62500000
"""


def test_exporter_reader_needs_two_scrapes_for_rates() -> None:
    state = {"idle": 1000.0, "busy": 500.0, "tx": 1e9, "ts": 1_800_000_000.0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = PAGE.format(**state).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    clock = Clock(1_800_000_000.0)
    with serving(Handler) as server:
        reader = ExporterReader(f"{server.url}/metrics", clock=clock)
        first = {r.node: r for r in reader()}
        assert first["bbb-01"].cpu_utilisation is None and first["bbb-01"].up
        assert first["bbb-01"].participants == 120
        assert not first["bbb-02"].up
        state.update(idle=1000.0 + 8 * 15 * 0.4, busy=500.0 + 8 * 15 * 0.6, tx=1e9 + 15 * 25e6)
        clock.now += 15
        second = {r.node: r for r in reader()}
    assert second["bbb-01"].cpu_utilisation == pytest.approx(0.6)
    assert second["bbb-01"].transmit_utilisation == pytest.approx(0.4)
    with pytest.raises(ScrapeError, match=r"exporter http://127\.0\.0\.1"):
        ExporterReader("http://127.0.0.1:9/metrics", timeout=2)()


def test_api_answers_from_memory_and_503_before_the_first_result(history) -> None:
    import requests
    from confscale.planner.api import create_app
    from werkzeug.serving import make_server

    loads = {"n": 0, "fail": True}

    def load() -> pd.DataFrame:
        loads["n"] += 1
        if loads["fail"]:
            raise HistoryError("history.csv: history has no rows")
        return history

    service = PlannerService(load)
    server = make_server("127.0.0.1", 0, create_app(service), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        service.refresh()
        early = requests.get(f"{base}/api/v1/capacity", timeout=5)
        assert early.status_code == 503
        error = early.json()["last_error"]
        assert error == "refresh failed: history: history.csv: history has no rows"
        assert requests.get(f"{base}/-/healthy", timeout=5).json()["ready"] is False
        loads["fail"] = False
        service.refresh()
        before = loads["n"]
        bodies = {requests.get(f"{base}/api/v1/placement", timeout=5).content for _ in range(30)}
        for _ in range(30):
            assert requests.get(f"{base}/api/v1/capacity", timeout=5).status_code == 200
            assert requests.get(f"{base}/metrics", timeout=5).status_code == 200
    finally:
        server.shutdown()
    assert loads["n"] == before  # requests never reloaded or recomputed anything
    assert len(bodies) == 1  # the same serialised answer every time


def test_placement_refresh_updates_servers_online_and_headroom(history) -> None:
    clock = Clock(history["timestamp"].max().timestamp())
    down: set[str] = set()

    def current() -> list[NodeReading]:
        return [
            NodeReading(
                node=n, up=n not in down, timestamp=clock.now - 5, pressure=0.3, participants=30
            )
            for n in ("bbb-01", "bbb-02", "bbb-03")
        ]

    service = PlannerService(lambda: history, read_current=current, clock=clock)
    first = service.refresh()
    assert first.servers_online == 3
    down.add("bbb-03")
    clock.now += 30
    service.refresh_placement()
    second = service.snapshot()
    assert second.servers_online == 2
    assert second.sizing.servers_needed == first.sizing.servers_needed  # demand unchanged
    assert second.sizing.headroom["participants"] < first.sizing.headroom["participants"]
    assert b'"servers_online": 2' in second.capacity_json


def test_placement_is_served_even_when_no_history_can_be_read() -> None:
    def broken() -> pd.DataFrame:
        raise HistoryError("Prometheus at http://127.0.0.1:1 unreachable after 4 attempt(s)")

    def current() -> list[NodeReading]:
        return [
            NodeReading(node="bbb-01", timestamp=1e9, pressure=0.95),
            NodeReading(node="bbb-02", timestamp=1e9, pressure=0.2),
        ]

    service = PlannerService(broken, read_current=current, clock=Clock(1e9 + 5))
    assert service.refresh() is None
    assert service.snapshot() is None
    placement = service.placement()
    assert placement is not None and placement.recommended == "bbb-02"
    assert b'"recommended": "bbb-02"' in service.placement_json()
    assert "unreachable" in service.status().last_error
    with pytest.raises(RuntimeError, match="no planner result yet"):
        service.what_if(growth=2)


def test_a_refit_never_replaces_a_fresher_placement(history) -> None:
    clock = Clock(history["timestamp"].max().timestamp())
    pressure = {"bbb-01": 0.3}
    seen: list[str] = []

    class Recorder:
        def apply(self, placement: Placement) -> None:
            seen.append(next(n.state for n in placement.nodes if n.node == "bbb-01"))

    def current() -> list[NodeReading]:
        return [NodeReading(node="bbb-01", timestamp=clock.now, pressure=pressure["bbb-01"])]

    def slow_history() -> pd.DataFrame:
        # while the refit reads history, a placement refresh sees bbb-01 saturate
        pressure["bbb-01"] = 0.95
        clock.now += 10
        service.refresh_placement()
        pressure["bbb-01"] = 0.3  # …and the refit itself would have read an old value
        clock.now -= 5
        return history

    service = PlannerService(
        slow_history, read_current=current, clock=clock, actuators=[Recorder()]
    )
    snapshot = service.refresh()
    assert service.placement().out == frozenset({"bbb-01"})
    assert snapshot.placement.out == frozenset({"bbb-01"})
    assert seen == ["out"]  # the adapters never saw the older placement
