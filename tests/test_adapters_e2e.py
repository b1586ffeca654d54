"""The issue's "done when", end to end: a real ``confscale-planner serve`` with all three
adapters acting on fakes that follow the balancers' sources, fed by a live /metrics page.

A saturated BBB node is cordoned in Scalelite, auto-disabled by Scalelite's poller and
re-enabled when it recovers; the operator's multiplier of another server is the base
across a planner restart; an operator-disabled server stays disabled and its node is
``held``; an out-of-pool server is never touched; a stressed bridge is drained and
undrained; b3lb reads 10000 for the out node through its own fetch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import harness
import requests
from confscale.planner.synthetic import synthetic_history
from fake_b3lb import B3lbNode
from fake_jvb import FakeBridge
from fake_jvb import serve as jvb_serve
from fake_scalelite import FakeScalelite, FakeServer, serve
from localhttp import serving

SECRET = "lb-secret-e2e-0123456789"


@contextlib.contextmanager
def exporter(load: dict[str, float]) -> Iterator[str]:
    """A live exporter page: participants per BBB node, stress per bridge (``load``)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            now = time.time()
            lines = []
            for node, value in sorted(load.items()):
                source = "jitsi" if node.startswith("jvb") else "bbb"
                labels = f'node="{node}",source="{source}"'
                lines += [
                    f"confscale_node_up{{{labels}}} 1",
                    f"confscale_node_last_success_timestamp_seconds{{{labels}}} {now}",
                ]
                if source == "jitsi":
                    lines.append(f'jitsi_stress_level{{node="{node}"}} {value}')
                else:
                    lines.append(f'bbb_meetings_participants{{node="{node}"}} {value}')
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as server:
        yield f"{server.url}/metrics"


def planner(tmp_path: Path, port: int, scalelite: str, bridge: str, metrics: str) -> harness.Proc:
    history = tmp_path / "history.csv.gz"
    if not history.exists():
        synthetic_history(nodes=2, weeks=2, seed=4).to_csv(history, index=False)
    (tmp_path / "secret").write_text(SECRET)
    (tmp_path / "bridges.yml").write_text(f"jvb-01: {bridge}\n")
    return harness.Proc(
        "planner-adapters-e2e",
        harness.python_module(
            "confscale.planner.cli",
            "serve",
            f"--history.file={history}",
            f"--exporter.url={metrics}",
            "--placement.interval=1s",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--scalelite.url={scalelite}",
            f"--scalelite.secret-file={tmp_path / 'secret'}",
            f"--jitsi.bridges={tmp_path / 'bridges.yml'}",
            "--b3lb.enable",
            f"--adapters.state-dir={tmp_path / 'state'}",
            "--adapters.actuate",
        ),
        cwd=harness.REPO,
    )


def test_all_three_balancers_end_to_end(tmp_path: Path) -> None:
    fake = FakeScalelite(secrets=(SECRET,))
    fake.add(FakeServer("id-1", "https://bbb-01.example.org/bigbluebutton/api", "s-1"))
    fake.add(FakeServer("id-2", "https://bbb-02.example.org/bigbluebutton/api", "s-2"))
    fake.servers["id-2"].load_multiplier = "2.0"  # the operator's smaller machine
    fake.servers["id-2"].attendees = 10
    fake.add(FakeServer("id-3", "https://bbb-03.example.org/bigbluebutton/api", "s-3"))
    fake.servers["id-3"].state = "disabled"  # the operator's
    fake.add(FakeServer("id-9", "https://elsewhere.example.org/bigbluebutton/api", "s-9"))
    bridge = FakeBridge()
    load = {"bbb-01": 195.0, "bbb-02": 140.0, "bbb-03": 20.0, "jvb-01": 0.76}
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(fake) as sl, jvb_serve(bridge) as jvb, exporter(load) as metrics:
        b3lb = B3lbNode("bbb-01", f"{base}/bbb-01/b3lb/load")
        with harness.running(planner(tmp_path, port, sl, jvb, metrics), f"{base}/-/healthy"):
            harness.wait_until(
                lambda: fake.servers["id-1"].state == "cordoned" and bridge.drain,
                timeout=60,
                what="bbb-01 cordoned and jvb-01 drained",
            )
            # bbb-02 at pressure 0.7: the operator's 2.0 × 1.4
            harness.wait_until(
                lambda: fake.servers["id-2"].load_multiplier == "2.8", timeout=60, what="2.8"
            )
            b3lb.fetch_load()
            assert b3lb.cpu_load == 10000 and b3lb.load() == 4166

            def state_of(node: str) -> str:
                answer = requests.get(f"{base}/api/v1/placement", timeout=10).json()
                return {n["node"]: n["state"] for n in answer["nodes"]}[node]

            # the adapter's read-back of the operator's disable reaches the next placement
            harness.wait_until(lambda: state_of("bbb-03") == "held", timeout=60, what="held")
            metrics_text = requests.get(f"{base}/metrics", timeout=10).text
        assert 'confscale_planner_adapter_nodes_held_out{adapter="scalelite"} 1.0' in metrics_text
        assert 'confscale_planner_adapter_nodes_held_out{adapter="jitsi"} 1.0' in metrics_text
        assert "confscale_pool_servers_online 2.0" in metrics_text  # bbb-03 is held
        # while the planner is down: Scalelite auto-disables the empty cordoned server
        fake.poll()
        assert fake.servers["id-1"].state == "disabled"
        load.update({"bbb-01": 40.0, "bbb-02": 40.0, "jvb-01": 0.3})
        with harness.running(planner(tmp_path, port, sl, jvb, metrics), f"{base}/-/healthy"):
            harness.wait_until(
                lambda: (
                    fake.servers["id-1"].state == "enabled"
                    and not bridge.drain
                    and fake.servers["id-2"].load_multiplier == "2.0"
                ),
                timeout=60,
                what="re-enabled after the auto-disable, undrained, the operator's 2.0 back",
            )
            b3lb.fetch_load()
            assert b3lb.cpu_load == 2000
    assert fake.servers["id-3"].state == "disabled"
    assert all(u["id"] not in ("id-3", "id-9") for u in fake.updates())
    assert fake.servers["id-9"].load_multiplier is None
    assert {u["server"].get("state") for u in fake.updates()} <= {None, "cordon", "enable"}
