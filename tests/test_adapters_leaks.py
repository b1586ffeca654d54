"""No secret and no checksum anywhere: every adapter fault, in-process and in a real planner.

A checksum of a parameterless Scalelite call is a static, replayable credential (the
getServers checksum reads every BBB secret). Every fault — refused, timeout, 401, 404,
500, bad JSON, Scalelite's XML checksumError — is run and everything the planner puts
out is searched for the LOADBALANCER_SECRET, the BBB secrets getServers returned and
every checksum the fake received: log records at DEBUG (urllib3's request lines
included), errors, health, /metrics, the page's status line and banners, state files
and a real ``confscale-planner serve`` process's stderr.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import harness
import pytest
import requests
from adapter_support import placement_for
from confscale.planner.adapters import AdapterRunner
from confscale.planner.adapters.memory import NodeRecords
from confscale.planner.adapters.scalelite import RECORD_SCHEMA, ScaleliteAdapter
from confscale.planner.metrics import AdapterCollector
from confscale.planner.synthetic import synthetic_history
from confscale.planner.web.view import adapter_messages, adapter_status
from fake_scalelite import FakeScalelite, FakeServer, serve
from localhttp import serving
from prometheus_client import CollectorRegistry, generate_latest

SECRET = "lb-secret-0123456789abcdef"
BBB = ("bbb-secret-AAAA-1111", "bbb-secret-BBBB-2222")
FAULTS = ("refused", "timeout", "401", "404", "500", "badjson", "checksum")


def pool() -> FakeScalelite:
    fake = FakeScalelite(secrets=(SECRET,))
    fake.add(FakeServer("id-1", "https://bbb-01.example.org/bigbluebutton/api", BBB[0]))
    fake.add(FakeServer("id-2", "https://bbb-02.example.org/bigbluebutton/api", BBB[1]))
    return fake


def forbidden(fake: FakeScalelite) -> set[str]:
    assert fake.checksums, "the fake saw no checksum: the test would prove nothing"
    return {SECRET, *BBB, *fake.checksums}


def test_every_fault_in_process(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = pool()
    state = tmp_path / "scalelite.json"
    placements = [placement_for({"bbb-01": 0.95, "bbb-02": 0.7}), placement_for({"bbb-01": 0.2})]
    reasons: dict[str, str] = {}
    with serve(fake) as url:
        good = ScaleliteAdapter(
            url, SECRET, dry_run=False, memory=NodeRecords(RECORD_SCHEMA, state)
        )
        good.apply(placements[0])  # one good cycle: real getServers with BBB secrets
        for fault in FAULTS:
            fake.hang = threading.Event() if fault == "timeout" else None
            fake.fault = fault if fault in ("401", "404", "500", "badjson") else None
            target = "http://127.0.0.1:9" if fault == "refused" else url
            secret = "not-the-secret" if fault == "checksum" else SECRET
            adapter = ScaleliteAdapter(
                target, secret, dry_run=False, timeout=1.0, memory=NodeRecords(RECORD_SCHEMA, state)
            )
            runner = AdapterRunner(adapter)
            assert runner.run_once(placements[1]) is False
            view = adapter.health.view()
            assert view.state == "failing"
            reasons[fault] = view.reason or ""
            if fake.hang is not None:
                fake.hang.set()
            registry = CollectorRegistry()
            registry.register(AdapterCollector(lambda a=adapter: [a.health.view()]))
            text = generate_latest(registry).decode()
            text += adapter_status([view]) + str(adapter_messages([view]))
            for value in forbidden(fake):
                assert value not in text, fault
    assert reasons["refused"].endswith("connection refused")
    assert reasons["timeout"].endswith("timed out")
    assert reasons["401"].endswith("HTTP 401") and reasons["500"].endswith("HTTP 500")
    assert "not JSON" in reasons["badjson"] and "checksum rejected" in reasons["checksum"]
    assert all("getServers" in r for r in reasons.values())  # which call, in every reason
    seen = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "/scalelite/api/getServers" in seen  # urllib3's DEBUG lines were captured...
    for value in forbidden(fake):
        assert value not in seen  # ...without their query
        assert value not in state.read_text()


class Exporter:
    """A minimal exporter /metrics: bbb-01 saturated, bbb-02 fine, fresh timestamps."""

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                now = time.time()
                lines = []
                for node, participants in (("bbb-01", 195), ("bbb-02", 40)):
                    labels = f'node="{node}",source="bbb"'
                    lines += [
                        f"confscale_node_up{{{labels}}} 1",
                        f"confscale_node_last_success_timestamp_seconds{{{labels}}} {now}",
                        f'bbb_meetings_participants{{node="{node}"}} {participants}',
                        f'bbb_meetings{{node="{node}"}} 3',
                    ]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        with serving(Handler) as server:
            yield f"{server.url}/metrics"


def test_a_real_planner_leaks_nothing(tmp_path: Path) -> None:
    history = tmp_path / "history.csv.gz"
    synthetic_history(nodes=2, weeks=2, seed=3).to_csv(history, index=False)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    state_dir = tmp_path / "state"
    fake = pool()
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(fake) as url, Exporter().serve() as exporter:
        proc = harness.Proc(
            "planner-leaks",
            harness.python_module(
                "confscale.planner.cli",
                "--log.level",
                "debug",
                "serve",
                f"--history.file={history}",
                f"--exporter.url={exporter}",
                "--placement.interval=1s",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--scalelite.url={url}",
                f"--scalelite.secret-file={secret_file}",
                f"--adapters.state-dir={state_dir}",
                "--adapters.actuate",
            ),
            cwd=harness.REPO,
        )
        pages: list[str] = []
        with harness.running(proc, f"{base}/-/healthy", timeout=60):
            harness.wait_until(
                lambda: fake.servers["id-1"].state == "cordoned", timeout=60, what="a cordon"
            )
            for fault in ("401", "404", "500", "badjson", None):
                fake.fault = fault
                seen = len(fake.requests)
                harness.wait_until(
                    lambda s=seen: len(fake.requests) >= s + 2, timeout=60, what=f"{fault}"
                )
                pages.append(requests.get(f"{base}/metrics", timeout=10).text)
            fake.secrets = ("rotated-secret",)  # Scalelite answers checksumError (XML, 200)
            seen = len(fake.requests)
            harness.wait_until(lambda: len(fake.requests) >= seen + 2, timeout=60, what="xml")
            metrics = requests.get(f"{base}/metrics", timeout=10).text
            pages += [metrics, requests.get(f"{base}/api/v1/placement", timeout=10).text]
        log = proc.log_path.read_text(errors="replace")
    assert 'confscale_planner_adapter_requests_total{adapter="scalelite",result="ok"}' in metrics
    for result in ("unauthorized", "not_found", "server_error", "bad_answer"):
        line = f'confscale_planner_adapter_requests_total{{adapter="scalelite",result="{result}"}}'
        assert line in metrics and f"{line} 0.0" not in metrics, result
    assert 'confscale_planner_adapter_failing{adapter="scalelite"} 1.0' in metrics
    assert "getServers" in log and "HTTP 500" in log and "checksum rejected" in log
    assert "Traceback" not in log
    assert "urllib3.connectionpool" in log  # the DEBUG request lines are there, redacted
    outputs = [log, *pages, *(p.read_text() for p in state_dir.glob("*"))]
    for value in forbidden(fake):
        for text in outputs:
            assert value not in text
