"""Hostile nodes on raw sockets (tests/hostile.py): every one is down with its own reason
within its timeout, costs nothing beyond it, and no output carries a checksum it was sent.

The first tests poll one hostile node directly; the last runs a real exporter over the
simulator's healthy nodes with every hostile node beside them and few workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import hostile
import pytest
import requests
import yaml
from confscale.exporter.bbb import poll_bbb
from confscale.exporter.config import BbbSource, Secret, TlsOptions, load_config
from confscale.exporter.fetch import HttpClient, PollError
from harness import simulator
from test_exporter_e2e import assert_node_matches_truth, exporter_config
from test_exporter_support import exporter, parse_text, series, value

SECRET = "Hostile-Suite-Secret-93c1e0"
TIMEOUT = 0.6

# behaviour, node options, expected reason, words the detail must hold
CASES: dict[str, tuple[hostile.Behaviour, dict, str, str]] = {
    "header-drip": (hostile.header_drip(), {}, "timeout", "within"),
    "status-drip": (hostile.status_drip(), {}, "timeout", "within"),
    "body-drip": (hostile.body_drip(), {}, "timeout", "within"),
    "silence": (hostile.silence(), {}, "timeout", "within"),
    "lying-length-open": (hostile.lying_length(), {}, "timeout", "within"),
    "lying-length-closed": (hostile.short_length_then_close(), {}, "connect", "broken"),
    "malformed-header": (hostile.malformed_header(), {}, "http", "malformed header"),
    "many-headers": (hostile.many_headers(), {}, "http", "headers too large"),
    "huge-header": (hostile.huge_header(), {}, "http", "headers too large"),
    "redirect": (hostile.redirect("http://127.0.0.1:9/elsewhere"), {}, "http", "302"),
    "not-http": (hostile.not_http(), {}, "http", "not an HTTP answer"),
    "tls-to-plain": (hostile.plain_http(), {"read_head": False}, "connect", "TLS"),
}


def bbb_source(node: hostile.HostileNode, name: str) -> BbbSource:
    if name == "tls-to-plain":
        return BbbSource(
            url=hostile.https_url(node.url),
            secret=Secret(SECRET),
            tls=TlsOptions(insecure_skip_verify=True),
        )
    return BbbSource(url=node.url, secret=Secret(SECRET))


@pytest.mark.parametrize("name", list(CASES))
def test_each_hostile_node_fails_with_its_own_reason(name: str) -> None:
    behaviour, options, reason, words = CASES[name]
    client = HttpClient()
    with hostile.HostileNode(behaviour, hold=15, **options) as node:
        try:
            with pytest.raises(PollError) as caught:
                poll_bbb(client, bbb_source(node, name), timeout=TIMEOUT, max_bytes=1 << 20)
        finally:
            client.close()
        sent, held_out = node.checksums(), node.held_out
    assert held_out == 0, "the poll outwaited the node: its deadline did not hold"
    assert (caught.value.reason, words in caught.value.detail) == (reason, True), caught.value
    assert name == "tls-to-plain" or sent, "the node saw a signed request"
    for checksum in sent:
        assert checksum not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_close_ends_every_exchange_in_flight_at_once() -> None:
    """Stopping does not wait for a node: close() ends a header drip mid-read."""
    client = HttpClient()
    outcome: list[BaseException] = []
    started = threading.Event()

    def poll(url: str) -> Callable[[], None]:
        def run() -> None:
            started.set()
            try:
                # a deadline far beyond the test: only close() can end it
                poll_bbb(
                    client,
                    BbbSource(url=url, secret=Secret(SECRET)),
                    timeout=600,
                    max_bytes=1 << 20,
                )
            except BaseException as exc:
                outcome.append(exc)

        return run

    with hostile.HostileNode(hostile.header_drip(), hold=60) as node:
        worker = threading.Thread(target=poll(node.url), daemon=True)
        worker.start()
        started.wait(5)
        for _ in range(100):  # until the node has the request (bounded)
            if node.requests:
                break
            threading.Event().wait(0.05)
        client.close()
        worker.join(20)
        assert not worker.is_alive(), "close() did not end the poll"
    assert len(outcome) == 1 and isinstance(outcome[0], PollError)
    assert outcome[0].reason == "timeout"


def test_hostile_nodes_beside_healthy_ones_in_a_real_exporter(tmp_path: Path) -> None:
    """Every hostile node down with its own reason, the simulator's healthy nodes exact and
    up with few workers, /probe of a dripping node answers, SIGTERM is prompt, and no
    output at debug level holds the secret or any checksum that was sent."""
    with contextlib.ExitStack() as stack:
        sim = stack.enter_context(simulator(nodes=3, secret=SECRET))
        nodes = {
            name: stack.enter_context(hostile.HostileNode(behaviour, hold=30, **options))
            for name, (behaviour, options, _, _) in CASES.items()
        }
        config = exporter_config(sim, tmp_path / "pool.yml", interval="4s", timeout="1s")
        data = yaml.safe_load(config.read_text())
        secret_file = data["nodes"][0]["bbb"]["secret_file"]
        for name, node in nodes.items():
            bbb = {"url": bbb_source(node, name).url, "secret_file": secret_file}
            if name == "tls-to-plain":
                bbb["tls"] = {"insecure_skip_verify": True}
            data["nodes"].append({"name": name, "bbb": bbb})
        config.write_text(yaml.safe_dump(data))
        # Few workers: enough that the nodes costing a whole timeout (1 s) each take at
        # most two waves of the 4 s interval; a poll that outlived its deadline would hold
        # its worker and push the healthy nodes into overrun.
        slow = [name for name, case in CASES.items() if case[2] == "timeout"]
        per_node = len(load_config(config).node(slow[0]).sources())
        workers = len(slow) * per_node // 2 + 1
        running = stack.enter_context(exporter(config, f"--poll.workers={workers}"))
        samples = running.wait_cycles(2, timeout=60)
        truth = sim.truth()["nodes"]
        probe = requests.get(f"{running.url}/probe", params={"node": "header-drip"}, timeout=20)
        page = requests.get(f"{running.url}/metrics", timeout=10).text
        status = running.proc.stop()
        log = running.proc.log_path.read_text(errors="replace")
        sent = set().union(*(node.checksums() for node in nodes.values()))
    for name in truth:
        assert_node_matches_truth(samples, name, truth[name])
    for name, (_, _, reason, _) in CASES.items():
        assert value(samples, "confscale_node_up", node=name, pool="sim", source="bbb") == 0
        reasons = {
            dict(key)["reason"]
            for key in series(samples, "confscale_node_poll_errors_total", node=name)
        }
        assert reasons == {reason}, name  # its own reason, never overrun
    assert probe.status_code == 200
    assert (
        value(
            parse_text(probe.text),
            "confscale_node_up",
            node="header-drip",
            pool="sim",
            source="bbb",
        )
        == 0
    )
    assert status == 0, "SIGTERM waited for a node (or the exporter crashed)"
    # one secret for the pool, one getMeetings call: every node got the same checksum, and
    # it is exactly the one the simulator's nodes got too
    assert sent == {hashlib.sha256(f"getMeetings{SECRET}".encode()).hexdigest()}
    assert "getMeetings?<redacted>" in log  # urllib3's debug request line, redacted
    for text in (log, page, probe.text):
        assert SECRET not in text
        for checksum in sent:
            assert checksum not in text
