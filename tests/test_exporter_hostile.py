"""Hostile nodes on raw sockets (tests/hostile.py): every one is down with its own reason
within its timeout, costs nothing beyond it, and no output carries a checksum it was sent.

The first tests poll one hostile node directly; the last runs a real exporter over the
simulator's healthy nodes with every hostile node beside them and few workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import hostile
import pytest
from confscale.exporter.bbb import poll_bbb
from confscale.exporter.config import BbbSource, Secret, TlsOptions
from confscale.exporter.fetch import HttpClient, PollError

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
