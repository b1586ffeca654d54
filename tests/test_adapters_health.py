"""A failing or hanging balancer never stops or delays placement, API or page; health shows it."""

from __future__ import annotations

import threading

import harness
import requests
from adapter_support import NOW, placement_for
from confscale.planner.adapters import AdapterRunner, adapter_health
from confscale.planner.adapters.b3lb import B3lbAdapter
from confscale.planner.adapters.jitsi import JitsiAdapter
from confscale.planner.adapters.scalelite import ScaleliteAdapter
from confscale.planner.api import create_app
from confscale.planner.placement import NodeReading
from confscale.planner.service import PlannerService
from confscale.planner.web.app import _status_line
from confscale.planner.web.context import Context, WebOptions
from confscale.planner.web.view import adapter_messages, adapter_status
from fake_jvb import FakeBridge
from fake_jvb import serve as jvb_serve
from fake_scalelite import FakeScalelite, FakeServer, serve
from werkzeug.serving import make_server

SECRET = "lb-secret-0123456789"


def test_a_hanging_scalelite_delays_nothing() -> None:
    fake = FakeScalelite(secrets=(SECRET,), hang=threading.Event())
    fake.add(FakeServer("id-1", "https://bbb-01.example.org/bigbluebutton/api", "s1"))
    readings = [NodeReading("bbb-01", timestamp=NOW, pressure=0.95, participants=1.0)]
    with serve(fake) as url:
        runner = AdapterRunner(ScaleliteAdapter(url, SECRET, dry_run=False, timeout=60))
        service = PlannerService(
            lambda: None, read_current=lambda: readings, actuators=[runner], clock=lambda: NOW
        )
        server = make_server("127.0.0.1", 0, create_app(service), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            for _ in range(3):  # each refresh returns although Scalelite never answers
                assert service.refresh_placement() is not None
            answers = [
                requests.get(f"{base}{p}", timeout=10)
                for p in ("/api/v1/placement", "/metrics", "/-/healthy")
            ]
            assert not fake.hang.is_set()  # all of that happened while Scalelite hung
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert answers[0].json()["nodes"][0]["state"] == "out"
            assert 'confscale_planner_adapter_failing{adapter="scalelite"} 0.0' in answers[1].text
            assert adapter_health(service.actuators)[0].state == "starting"
            harness.wait_until(lambda: fake.arrivals >= 1, timeout=30, what="the hung request")
            assert fake.arrivals == 1  # one worker, one request in flight: no pile-up
        finally:
            fake.hang.set()
            runner.stop()
            server.shutdown()


def test_failure_metrics_and_page_words_then_recovery() -> None:
    fake = FakeScalelite(secrets=(SECRET,))
    fake.add(FakeServer("id-1", "https://bbb-01.example.org/bigbluebutton/api", "s1"))
    with serve(fake) as url:
        adapter = ScaleliteAdapter(url, SECRET, dry_run=False)
        runner = AdapterRunner(adapter)
        fake.fault = "500"
        assert runner.run_once(placement_for({"bbb-01": 0.95})) is False
        view = adapter.health.view()
        assert view.state == "failing" and view.requests == {"server_error": 1}
        assert "scalelite: failing — GET http://127.0.0.1:" in adapter_status([view])
        assert "HTTP 500" in adapter_status([view])
        (banner,) = adapter_messages([view])
        assert banner.tone == "bad" and "keeps its last settings" in banner.text
        fake.fault = None
        assert runner.run_once(placement_for({"bbb-01": 0.95})) is True
        view = adapter.health.view()
    assert view.state == "working" and view.held_out == ("bbb-01",)
    assert view.requests == {"server_error": 1, "ok": 2}  # getServers + updateServer
    assert adapter_messages([view]) == []
    assert adapter_status([view]) == "scalelite: working, holds out bbb-01"


def test_jitsi_faults_are_counted_and_named_per_bridge() -> None:
    class Broken(FakeBridge):
        def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
            if path == "/colibri/stats":
                return 200, b"{not json"
            return super().handle(method, path, body)

    failing, broken, good = FakeBridge(), Broken(), FakeBridge()
    failing.handle = lambda *_: (500, b"")  # type: ignore[method-assign]
    with jvb_serve(failing) as a, jvb_serve(broken) as b, jvb_serve(good) as c:
        adapter = JitsiAdapter(
            {"jvb-a": a, "jvb-b": b, "jvb-c": c, "jvb-d": "http://127.0.0.1:9"},
            dry_run=False,
            timeout=2.0,
        )
        runner = AdapterRunner(adapter)
        pressures = {"jvb-a": 0.95, "jvb-b": 0.95, "jvb-c": 0.95, "jvb-d": 0.95}
        assert runner.run_once(placement_for(pressures, kind="jitsi")) is False
    view = adapter.health.view()
    assert good.drain is True  # the good bridge was drained all the same
    assert view.state == "failing"
    for words in ("jvb-a", "HTTP 500", "jvb-b", "not JSON", "jvb-d", "connection refused"):
        assert words in (view.reason or "")
    assert view.requests == {"server_error": 1, "bad_answer": 1, "refused": 1, "ok": 3}
    (banner,) = adapter_messages([view])
    assert "jitsi failing" in banner.title


def test_the_page_status_line_names_each_adapter_state() -> None:
    fake = FakeScalelite(secrets=(SECRET,))
    fake.add(FakeServer("id-1", "https://bbb-01.example.org/bigbluebutton/api", "s1"))
    b3lb = AdapterRunner(B3lbAdapter())
    with serve(fake) as url:
        scalelite = AdapterRunner(ScaleliteAdapter(url, SECRET, dry_run=False))
        service = PlannerService(lambda: None, actuators=[scalelite, b3lb])
        ctx = Context(service, WebOptions(source="test"))
        assert _status_line(ctx) == "source: test · scalelite: starting · b3lb: starting"
        placement = placement_for({"bbb-01": 0.95})
        scalelite.run_once(placement)
        b3lb.run_once(placement)
        line = _status_line(ctx)
    assert "scalelite: working, holds out bbb-01" in line
    assert "b3lb: dry-run (changes nothing; --adapters.actuate to act)" in line
    scalelite.run_once(placement)  # the fake is gone: refused
    assert "scalelite: failing — GET http://127.0.0.1:" in _status_line(ctx)
