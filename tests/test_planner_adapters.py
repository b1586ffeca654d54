"""Balancer adapters against local fakes that follow the documented APIs exactly."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from confscale.planner.adapters.b3lb import B3lbAdapter
from confscale.planner.adapters.jitsi import JitsiAdapter
from confscale.planner.adapters.memory import RememberedNodes
from confscale.planner.adapters.scalelite import ScaleliteAdapter
from confscale.planner.api import create_app
from confscale.planner.placement import NodeReading, Placement, place
from confscale.planner.service import PlannerService
from werkzeug.serving import make_server

SECRET = "lb-secret-0123456789"
NOW = 1_800_000_000.0


def placement_for(
    pressures: dict[str, float | None],
    *,
    previous_out=frozenset(),
    kind: str = "bbb",
    down: tuple[str, ...] = (),
) -> Placement:
    readings = [
        NodeReading(
            node=n, kind=kind, up=n not in down, timestamp=NOW, pressure=p, participants=0.0
        )
        for n, p in pressures.items()
    ]
    return place(readings, now=NOW, previous_out=previous_out)


@contextlib.contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class FakeScalelite:
    """Scalelite's admin API as its source documents it (checksum as verify_checksum)."""

    def __init__(self) -> None:
        self.servers = {
            "id-1": {
                "id": "id-1",
                "url": "https://bbb-01.example.org/bigbluebutton/api",
                "state": "enabled",
                "load_multiplier": "1.0",
                "online": "online",
            },
            "id-2": {
                "id": "id-2",
                "url": "https://bbb-02.example.org/bigbluebutton/api",
                "state": "enabled",
                "load_multiplier": "1.0",
                "online": "online",
            },
            "id-3": {
                "id": "id-3",
                "url": "https://bbb-03.example.org/bigbluebutton/api",
                "state": "disabled",
                "load_multiplier": "1.0",
                "online": "online",
            },
        }
        self.updates: list[dict] = []
        self.errors: list[str] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _check(self, action: str) -> bool:
                query = urlsplit(self.path).query
                given = parse_qs(query).get("checksum", [""])[0]
                rest = re.sub(f"&checksum={given}|checksum={given}&|checksum={given}", "", query)
                expected = hashlib.sha256(f"{action}{rest}{SECRET}".encode()).hexdigest()
                if given != expected:
                    fake.errors.append(f"{action}: bad checksum")
                    self._send(401, {"error": "checksumError"})
                    return False
                return True

            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if urlsplit(self.path).path != "/scalelite/api/servers":
                    fake.errors.append(f"GET {self.path}")
                    return self._send(404, {})
                if self._check("servers"):
                    self._send(200, list(fake.servers.values()))

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/scalelite/api/updateServer":
                    fake.errors.append(f"POST {self.path}")
                    return self._send(404, {})
                if self.headers.get("Content-Type") != "application/json":
                    fake.errors.append("content type")
                    return self._send(415, {})
                if not self._check("updateServer"):
                    return None
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.updates.append(body)
                server = fake.servers[body["id"]]
                change = body["server"]
                if set(change) - {"state", "load_multiplier"}:
                    fake.errors.append(f"unexpected fields {change}")
                if change.get("state") not in (None, "enable", "cordon"):
                    fake.errors.append(f"state {change.get('state')} sent")
                states = {"enable": "enabled", "cordon": "cordoned"}
                if "state" in change:
                    server["state"] = states.get(change["state"], change["state"])
                if "load_multiplier" in change:
                    assert float(change["load_multiplier"]) > 0
                    server["load_multiplier"] = str(change["load_multiplier"])
                self._send(200, server)

        return Handler


def test_scalelite_dry_run_logs_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeScalelite()
    with serve(fake.handler()) as url:
        adapter = ScaleliteAdapter(url, SECRET)  # dry-run by default
        caplog.set_level(logging.INFO, logger="confscale.planner.adapters.scalelite")
        actions = adapter.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.3}))
    assert fake.updates == [] and fake.errors == []
    assert {a.node for a in actions} == {"bbb-01", "bbb-02"}
    assert "would updateServer id=id-1 (bbb-01) {'state': 'cordon'}" in caplog.text
    assert SECRET not in caplog.text


def test_scalelite_cordon_weights_reenable_after_auto_disable_never_disable() -> None:
    fake = FakeScalelite()
    with serve(fake.handler()) as url:
        adapter = ScaleliteAdapter(url, SECRET, dry_run=False)
        adapter.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.3, "bbb-03": 0.1}))
        assert fake.errors == []
        by_id = {u["id"]: u["server"] for u in fake.updates}
        assert by_id["id-1"] == {"state": "cordon"}  # out: cordoned, no multiplier
        assert by_id["id-2"] == {"load_multiplier": 1.3}  # 1 + pressure
        assert "state" not in by_id.get("id-3", {})  # an operator's disable is theirs
        assert fake.servers["id-1"]["state"] == "cordoned"
        # hysteresis: 0.8 keeps it out, no new call for bbb-01
        fake.updates.clear()
        adapter.apply(
            placement_for({"bbb-01": 0.8, "bbb-02": 0.3}, previous_out=frozenset({"bbb-01"}))
        )
        assert [u for u in fake.updates if u["id"] == "id-1"] == []
        # Scalelite disables the drained cordoned server by itself; back at 0.6 → enable
        fake.servers["id-1"]["state"] = "disabled"
        adapter.apply(
            placement_for({"bbb-01": 0.6, "bbb-02": 0.3}, previous_out=frozenset({"bbb-01"}))
        )
        assert {"id": "id-1", "server": {"state": "enable", "load_multiplier": 1.6}} in fake.updates
        assert fake.servers["id-1"]["state"] == "enabled"
        # a down node is left alone (Scalelite has its own health checks)
        fake.updates.clear()
        adapter.apply(placement_for({"bbb-01": None, "bbb-02": 0.3}, down=("bbb-01",)))
        assert all(u["id"] != "id-1" for u in fake.updates)
    assert fake.errors == []
    assert all(u["server"].get("state") != "disable" for u in fake.updates)


def test_scalelite_remembers_its_cordons_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state" / "scalelite-cordoned.json"
    fake = FakeScalelite()
    with serve(fake.handler()) as url:
        first = ScaleliteAdapter(url, SECRET, dry_run=False, cordoned_by_us=RememberedNodes(state))
        first.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.3}))
        assert json.loads(state.read_text()) == ["bbb-01"]
        fake.servers["id-1"]["state"] = "disabled"  # drained while the planner restarts
        restarted = ScaleliteAdapter(
            url, SECRET, dry_run=False, cordoned_by_us=RememberedNodes(state)
        )
        restarted.apply(
            placement_for({"bbb-01": 0.5, "bbb-02": 0.3}, previous_out=frozenset({"bbb-01"}))
        )
    assert fake.servers["id-1"]["state"] == "enabled"
    assert json.loads(state.read_text()) == []
    state.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read adapter state"):
        RememberedNodes(state)


def test_scalelite_wrong_secret_is_an_error_not_a_silent_success() -> None:
    fake = FakeScalelite()
    with serve(fake.handler()) as url:
        adapter = ScaleliteAdapter(url, "wrong-secret", dry_run=False)
        with pytest.raises(requests.HTTPError):
            adapter.apply(placement_for({"bbb-01": 0.95}))
    assert fake.updates == []


def test_jitsi_drain_enable_and_disable_exactly() -> None:
    calls: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            calls.append(("POST", self.path, self.rfile.read(length)))
            ok = self.path in ("/colibri/drain/enable", "/colibri/drain/disable")
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serve(Handler) as url:
        dry = JitsiAdapter({"jvb-01": url})
        assert dry.apply(placement_for({"jvb-01": 0.95}, kind="jitsi")) == [("jvb-01", "enable")]
        assert calls == []
        adapter = JitsiAdapter({"jvb-01": url, "jvb-02": url}, dry_run=False)
        adapter.apply(placement_for({"jvb-01": 0.95, "jvb-02": 0.2}, kind="jitsi"))
        adapter.apply(placement_for({"jvb-01": 0.95, "jvb-02": 0.2}, kind="jitsi"))  # no repeat
        adapter.apply(
            placement_for({"jvb-01": 0.8}, kind="jitsi", previous_out=frozenset({"jvb-01"}))
        )  # held out
        adapter.apply(
            placement_for({"jvb-01": 0.5}, kind="jitsi", previous_out=frozenset({"jvb-01"}))
        )
    assert calls == [
        ("POST", "/colibri/drain/enable", b""),
        ("POST", "/colibri/drain/disable", b""),
    ]


def test_b3lb_load_endpoint_serves_integer_and_newline() -> None:
    adapter = B3lbAdapter(dry_run=False)
    snapshot = placement_for({"bbb-01": 0.95, "bbb-02": 0.25, "bbb-03": None}, down=("bbb-03",))
    adapter.apply(snapshot)
    service = PlannerService(lambda: None)  # routes only read the adapter here
    server = make_server("127.0.0.1", 0, create_app(service, adapter), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        answers = {
            n: requests.get(f"{base}/{n}/b3lb/load", timeout=5)
            for n in ("bbb-01", "bbb-02", "bbb-03", "bbb-99")
        }
        dry = B3lbAdapter()
        dry.apply(snapshot)
    finally:
        server.shutdown()
    for node in ("bbb-01", "bbb-02", "bbb-03"):
        assert re.fullmatch(r"\d{1,5}\n", answers[node].text)
        assert 0 <= int(answers[node].text) <= 10000
    assert answers["bbb-01"].text == "10000\n"  # out
    assert answers["bbb-02"].text == "2500\n"
    assert answers["bbb-03"].text == "10000\n"  # down
    assert answers["bbb-99"].status_code == 404
    assert dry.body("bbb-02") is None  # dry-run: nothing served
