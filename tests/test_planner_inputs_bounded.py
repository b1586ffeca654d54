"""The planner's reads of outside data are bounded, and old answers never pass as current.

Prometheus and the exporter are read through one total deadline and a size cap (a store
that drips its answer, or answers 200 MB, costs the deadline or the cap); errors name the
source that failed; a state file is validated, set aside when corrupt, and its answers are
served with their age and marked stale once old.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from confscale.planner.laststate import LastResultFile, load_last_result
from confscale.planner.placement import NodeReading, place
from confscale.planner.prometheus import PrometheusClient, PrometheusError, PrometheusUnreachable
from confscale.planner.scrape import ExporterReader, ScrapeError
from confscale.planner.service import PlannerService
from hostile import HostileNode, body_drip, head_then, header_drip

PROM_OK = b'{"status":"success","data":{"resultType":"vector","result":[]}}'


def _client(url: str, **kw: object) -> PrometheusClient:
    return PrometheusClient(url.rstrip("/"), retries=1, backoff=0.01, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("behaviour", [header_drip(0.05), body_drip(0.05)], ids=["head", "body"])
def test_a_dripping_store_costs_its_budget_not_forever(behaviour) -> None:
    with HostileNode(behaviour, hold=30) as node:
        client = _client(node.url, timeout=0.6, budget=1.5)
        started = time.monotonic()
        with pytest.raises(PrometheusUnreachable, match=r"unreachable after \d attempt"):
            client.query("up")
        elapsed = time.monotonic() - started
    # bounded by the budget (plus scheduling): the drip would go on for 30 s
    assert elapsed < 15, elapsed
    assert node.held_out == 0  # the client gave up before the node did


def test_a_huge_answer_is_refused_at_the_cap_with_a_reason() -> None:
    huge = head_then(
        b"HTTP/1.1 200 OK", [b"Content-Type: application/json", b"Content-Length: 209715200"]
    )
    with (
        HostileNode(huge) as node,
        pytest.raises(PrometheusError, match="answer larger than 1,048,576 bytes"),
    ):
        _client(node.url, max_bytes=1024 * 1024).query("up")


def test_credentials_go_in_a_header_and_never_in_an_error() -> None:
    with HostileNode(head_then(b"HTTP/1.1 401 Unauthorized", [b"Content-Length: 0"], b"")) as node:
        with pytest.raises(PrometheusError, match="authentication refused") as caught:
            _client(node.url, username="planner", password="s3cret-pw").query("up")
        assert "s3cret-pw" not in str(caught.value)
        (head,) = node.requests
    assert b"Authorization: Basic cGxhbm5lcjpzM2NyZXQtcHc=" in head
    assert b"s3cret-pw" not in head


def test_user_info_in_the_url_becomes_a_header() -> None:
    ok = head_then(b"HTTP/1.1 200 OK", [b"Content-Length: %d" % len(PROM_OK)], PROM_OK)
    with HostileNode(ok) as node:
        url = node.url.replace("http://", "http://admin:hunter2@")
        client = _client(url)
        assert client.query("up") == []
        assert "hunter2" not in client.base_url and "hunter2" not in repr(client)
        (head,) = node.requests
    assert b"Authorization: Basic YWRtaW46aHVudGVyMg==" in head


def test_an_exporter_scrape_is_capped_while_reading_and_names_the_exporter() -> None:
    endless = head_then(b"HTTP/1.1 200 OK", [b"Transfer-Encoding: chunked"], b"")

    def chunked_forever(conn) -> None:
        endless(conn)
        chunk = b"# " + b"x" * 65_000 + b"\n"
        while conn.alive():
            conn.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    with HostileNode(chunked_forever, hold=20) as node:
        reader = ExporterReader(node.url + "metrics", timeout=5, max_bytes=2 * 1024 * 1024)
        with pytest.raises(
            ScrapeError, match=r"^exporter http://127\.0\.0\.1:\d+/metrics: too_large"
        ):
            reader()


# --- answers and the state file ---------------------------------------------------------


def _readings(now: float) -> list[NodeReading]:
    return [
        NodeReading(node="bbb-a", timestamp=now, pressure=0.3, participants=10),
        NodeReading(node="bbb-b", timestamp=now, pressure=0.5, participants=20),
    ]


def _saved_state(path: Path, saved_at: float) -> None:
    recorder = LastResultFile(path, clock=lambda: saved_at)
    recorder.apply(place(_readings(saved_at), now=saved_at))


def _failing_service(path: Path, clock, **kw) -> PlannerService:
    def fail() -> list[NodeReading]:
        raise RuntimeError("store down")

    def no_history():
        raise RuntimeError("history down")

    return PlannerService(
        no_history, read_current=fail, restored=load_last_result(path), clock=clock, **kw
    )


def test_a_month_old_saved_placement_is_served_stale_and_recommends_nothing(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    now = time.time()
    _saved_state(state, now - 30 * 86400)
    service = _failing_service(state, lambda: now)
    service.refresh()  # fails on both sources
    body = json.loads(service.placement_json())
    assert body["answer"]["restored"] is True and body["answer"]["stale"] is True
    assert body["answer"]["age_seconds"] == pytest.approx(30 * 86400, abs=5)
    assert body["recommended"] is None
    assert {n["state"] for n in body["nodes"]} == {"stale"}
    assert {n["weight"] for n in body["nodes"]} == {0.0}
    assert service.answer_ages()["placement"][1:] == (True, True)
    assert "current data: store down" in (service.status().last_error or "")


def test_a_fresh_saved_placement_is_marked_restored_not_stale(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    now = time.time()
    _saved_state(state, now - 60)
    body = json.loads(_failing_service(state, lambda: now).placement_json())
    assert body["answer"] == {
        "made_at": pytest.approx(now - 60),
        "age_seconds": pytest.approx(60, abs=1),
        "stale": False,
        "max_age_seconds": 300.0,
        "restored": True,
    }
    assert body["recommended"] in ("bbb-a", "bbb-b")


def test_a_live_placement_goes_stale_when_current_data_stops(tmp_path: Path) -> None:
    clock = [time.time()]
    readings = {"fail": False}

    def current() -> list[NodeReading]:
        if readings["fail"]:
            raise RuntimeError("exporter down")
        return _readings(clock[0])

    service = PlannerService(
        lambda: None, read_current=current, clock=lambda: clock[0], placement_max_age=120
    )
    service.refresh_placement()
    fresh = json.loads(service.placement_json())
    assert "answer" not in fresh and fresh["recommended"] == "bbb-a"
    readings["fail"] = True
    clock[0] += 300
    service.refresh_placement()
    stale = json.loads(service.placement_json())
    assert stale["answer"]["stale"] is True and stale["recommended"] is None


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"schema": 99}',
        b"",
        b'{"schema": 1, "out": [], "saved_at": 1, "placement": 7}',
    ],
    ids=["corrupt", "wrong-schema", "empty", "bad-body"],
)
def test_a_bad_state_file_is_set_aside_and_the_planner_starts(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    assert load_last_result(state, now=1234) is None
    assert not state.exists()
    assert (tmp_path / "state.json.corrupt-1234").read_bytes() == content
    assert "set aside" in caplog.text


def test_the_state_file_is_complete_json_after_every_write(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state.json"
    for step in range(3):
        _saved_state(state, 1_700_000_000 + step)
        restored = load_last_result(state)
        assert restored is not None and restored.saved_at == 1_700_000_000 + step
    assert not list(state.parent.glob("*.tmp"))
