"""Maintenance mode: the registry, the placement state, the API's auth, restarts, expiry."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
from confscale.planner.api import create_app
from confscale.planner.maintenance import (
    MaintenanceError,
    MaintenanceRegistry,
    checked,
    load,
    with_maintenance,
)
from confscale.planner.maintenance_api import AdminAuth
from confscale.planner.placement import NodeReading, place
from confscale.planner.service import PlannerService
from confscale.planner.snapshot import servers_online
from confscale.planner.web.auth import BasicAuth
from werkzeug.serving import make_server

NOW = 1_800_000_000.0
TOKEN = "t0ken-for-tests-only"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def readings() -> list[NodeReading]:
    return [
        NodeReading(node, timestamp=NOW, participants=20.0 * i, cpu_utilisation=0.1)
        for i, node in enumerate(("bbb-01", "bbb-02", "bbb-03"), start=1)
    ]


def test_a_node_in_maintenance_leaves_placement_and_capacity(tmp_path: Path) -> None:
    clock = Clock()
    registry = MaintenanceRegistry(tmp_path / "m.json", clock=clock)
    read = with_maintenance(readings, registry)
    before = place(read(), now=NOW)
    assert before.recommended == "bbb-01" and servers_online(before, "bbb") == 3
    registry.start(checked("bbb-01", "disk swap", "ops", NOW + 3600, None, now=NOW))
    during = place(read(), now=NOW)
    states = {n.node: (n.state, n.weight) for n in during.nodes}
    assert states["bbb-01"] == ("maintenance", 0.0)
    assert during.recommended == "bbb-02"
    assert servers_online(during, "bbb") == 2
    assert "maintenance by ops until" in next(n.reason for n in during.nodes if n.node == "bbb-01")
    # a restart reads it back; the end time passing ends it (and the file forgets it)
    again = MaintenanceRegistry(tmp_path / "m.json", clock=clock)
    assert set(again.active()) == {"bbb-01"}
    clock.now = NOW + 3601
    assert again.active() == {}
    assert load(tmp_path / "m.json") == {}
    assert place(with_maintenance(readings, again)(), now=NOW).recommended == "bbb-01"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("bad node!", "x", "ops", None, None), "node"),
        (("bbb-01", "  ", "ops", None, None), "reason"),
        (("bbb-01", "x" * 201, "ops", None, None), "at most 200"),
        (("bbb-01", "x", "o p s", None, None), "by"),
        (("bbb-01", "x", "ops", NOW - 1, None), "future"),
        (("bbb-01", "x", "ops", "tomorrow", None), "Unix time"),
        (("bbb-01", "x", "ops", None, "a/b"), "pool"),
    ],
)
def test_requests_are_validated(args: tuple, fragment: str) -> None:
    with pytest.raises(MaintenanceError, match=fragment):
        checked(*args, now=NOW)


@pytest.mark.parametrize(
    "text",
    ["{", '{"schema": 2, "nodes": []}', '{"schema": 1, "nodes": [{"node": "a"}]}'],
)
def test_a_bad_state_file_is_refused_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(MaintenanceError, match=str(path)):
        MaintenanceRegistry(path)


@pytest.fixture
def planner(tmp_path: Path):
    """A real HTTP server with one pool's service, a registry and the admin token."""
    clock = Clock()
    registry = MaintenanceRegistry(tmp_path / "m.json", clock=clock)
    service = PlannerService(
        lambda: (_ for _ in ()).throw(RuntimeError("no history in this test")),
        read_current=with_maintenance(readings, registry),
        clock=clock,
    )
    service.refresh_placement()
    app = create_app(
        service,
        maintenance=registry,
        admin=AdminAuth(TOKEN, basic=BasicAuth("alice", "wonder")),
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", registry, clock
    finally:
        server.shutdown()


def test_api_writes_need_auth_and_take_effect_at_once(planner, caplog) -> None:
    base, registry, _ = planner
    url = f"{base}/api/v1/nodes/bbb-01/maintenance"
    body = {"reason": "kernel update", "until": "2027-01-15T12:00:00Z", "by": "bob"}
    assert requests.post(url, json=body, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.post(url, json=body, headers=wrong, timeout=10).status_code == 401
    token = {"Authorization": f"Bearer {TOKEN}"}
    bad = requests.post(url, json={"reason": ""}, headers=token, timeout=10)
    assert bad.status_code == 400 and "reason" in bad.json()["error"]
    with caplog.at_level("INFO", logger="confscale.planner.maintenance"):
        made = requests.post(url, json=body, headers=token, timeout=10)
    assert made.status_code == 201, made.text
    assert made.json()["by"] == "bob" and made.json()["until"] == NOW + 4 * 3600
    assert any("bbb-01 started by bob" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text
    # reads are open; the placement already shows it
    assert (
        requests.get(f"{base}/api/v1/maintenance", timeout=10).json()["nodes"][0]["node"]
        == "bbb-01"
    )
    placement = requests.get(f"{base}/api/v1/placement", timeout=10).json()
    assert {n["node"]: n["state"] for n in placement["nodes"]}["bbb-01"] == "maintenance"
    assert placement["recommended"] == "bbb-02"
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    assert 'confscale_node_maintenance{node="bbb-01"} 1.0' in metrics
    # the page's basic auth may end it; who is the page's user
    basic = ("alice", "wonder")
    ended = requests.delete(url, auth=basic, timeout=10)
    assert ended.status_code == 200 and ended.json()["ended_by"] == "alice"
    assert requests.delete(url, auth=basic, timeout=10).status_code == 404
    placement = requests.get(f"{base}/api/v1/placement", timeout=10).json()
    assert placement["recommended"] == "bbb-01"
    assert "confscale_node_maintenance{" not in requests.get(f"{base}/metrics", timeout=10).text
    assert json.loads((registry._path).read_text())["nodes"] == []


def test_writes_are_off_without_a_token_or_page_auth(tmp_path: Path) -> None:
    registry = MaintenanceRegistry(None)
    service = PlannerService(lambda: None, read_current=with_maintenance(readings, registry))
    app = create_app(service, maintenance=registry)
    client = app.test_client()
    answer = client.post("/api/v1/nodes/bbb-01/maintenance", json={"reason": "x"})
    assert answer.status_code == 403 and "--web.admin-token-file" in answer.get_json()["error"]
    assert client.get("/api/v1/maintenance").get_json() == {"nodes": []}


def test_the_page_writes_only_with_its_login() -> None:
    import base64

    from confscale.planner.web.context import Context, WebOptions
    from confscale.planner.web.pages.nodes import change_maintenance
    from flask import Flask

    registry = MaintenanceRegistry(None)
    service = PlannerService(lambda: None, read_current=with_maintenance(readings, registry))
    service.refresh_placement()
    login = BasicAuth("alice", "wonder")
    app = Flask("t")
    good = "Basic " + base64.b64encode(b"alice:wonder").decode()
    forged = "Basic " + base64.b64encode(b"alice:guess").decode()
    open_page = Context(service, WebOptions(), registry, None)
    with app.test_request_context(headers={"Authorization": good}):
        assert "needs the page's login" in change_maintenance(
            open_page, "maint-start", "bbb-02", "fan", 2
        )
    page = Context(service, WebOptions(), registry, login)
    with app.test_request_context(headers={"Authorization": forged}):
        assert "needs the page's login" in change_maintenance(
            page, "maint-start", "bbb-02", "fan", 2
        )
    assert registry.active() == {}
    with app.test_request_context(headers={"Authorization": good}):
        said = change_maintenance(page, "maint-start", "bbb-02", "fan", 2)
        assert "bbb-02 is in maintenance by alice until" in said
        states = {n.node: n.state for n in service.placement().nodes}
        assert states["bbb-02"] == "maintenance"
        assert "not started: reason" in change_maintenance(page, "maint-start", "bbb-03", "", None)
        assert change_maintenance(page, "maint-end", "bbb-02", None, None) == (
            "maintenance of bbb-02 ended by alice"
        )
    assert {n.node: n.state for n in service.placement().nodes}["bbb-02"] == "available"
