"""getRecordings paging, caps and failures, and the API root's versions, over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
from confscale.exporter.bbb_version import parse_root, poll_version
from confscale.exporter.config import BbbSource, ConfigValueError, Secret, parse_config
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.recordings import PAGE_SIZE, RecordingsSource, poll_recordings
from localhttp import serving

SECRET = "recordings-test-secret"


def recording(i: int, state: str, end_ms: int) -> str:
    # the shape bbb-web's getRecordings template writes (recordID, state, times in ms)
    return (
        f"<recording><recordID>rec-{i}</recordID><meetingID>m-{i}</meetingID>"
        f"<internalMeetingID>rec-{i}</internalMeetingID><name>Lecture {i}</name>"
        f"<isBreakout>false</isBreakout><published>{str(state == 'published').lower()}"
        f"</published><state>{state}</state><startTime>{end_ms - 3_600_000}</startTime>"
        f"<endTime>{end_ms}</endTime><participants>12</participants>"
        f"<metadata><meeting>not a recording</meeting></metadata><playback/></recording>"
    )


def library(count: int) -> list[str]:
    states = ("published", "processing", "processed", "unpublished", "deleted")
    return [recording(i, states[i % 5], 1_790_000_000_000 + i * 1000) for i in range(count)]


@contextmanager
def bbb_server(recordings: list[str], *, paging: bool = True, failed: str = "") -> Iterator[dict]:
    seen: dict = {"queries": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.endswith("/api/"):
                seen["root"] = seen.get("root", 0) + 1
                body = (
                    "<response><returncode>SUCCESS</returncode><version>2.0</version>"
                    "<apiVersion>2.0</apiVersion><bbbVersion>3.0.4</bbbVersion></response>"
                )
            else:
                query, _, checksum = parts.query.rpartition("&checksum=")
                seen["queries"].append(query)
                expected = hashlib.sha256(f"getRecordings{query}{SECRET}".encode()).hexdigest()
                params = parse_qs(query)
                if failed or checksum != expected:
                    key = failed or "checksumError"
                    body = (
                        "<response><returncode>FAILED</returncode>"
                        f"<messageKey>{key}</messageKey></response>"
                    )
                else:
                    page = recordings
                    if paging:  # bbb-web 2.6+: offset >= 0, limit clamped to 1..100
                        offset = int(params["offset"][0])
                        limit = min(max(int(params["limit"][0]), 1), 100)
                        page = recordings[offset : offset + limit]
                    body = (
                        "<response><returncode>SUCCESS</returncode><recordings>"
                        + "".join(page)
                        + "</recordings></response>"
                    )
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    with serving(Handler) as server:
        seen["source"] = BbbSource(url=f"{server.url}/bigbluebutton/api/", secret=Secret(SECRET))
        yield seen


@pytest.mark.parametrize("paging", [True, False], ids=["paged", "old-server-ignores-paging"])
def test_recordings_by_state_over_pages(paging: bool) -> None:
    with bbb_server(library(2 * PAGE_SIZE + 7), paging=paging) as server:
        figures = poll_recordings(
            HttpClient(), RecordingsSource(bbb=server["source"]), timeout=5, max_bytes=1 << 22
        )
    assert dict(figures.states) == {
        "published": 42,
        "processing": 42,
        "processed": 41,
        "unpublished": 41,
        "deleted": 41,
    }
    assert figures.oldest_processing == 1_790_000_000 + 1  # rec-1 ended first
    pages = server["queries"]
    assert len(pages) == (3 if paging else 1)
    assert pages[0].startswith("state=processing,processed,published,unpublished,deleted&")
    assert "limit=100" in pages[0]  # 2.6+ answers nothing without a limit


def test_recordings_cap_and_failures() -> None:
    with bbb_server(library(250)) as server:
        capped = RecordingsSource(bbb=server["source"], max_recordings=120)
        with pytest.raises(PollError) as raised:
            poll_recordings(HttpClient(), capped, timeout=5, max_bytes=1 << 22)
        assert raised.value.reason == "too_large"
        wrong = RecordingsSource(bbb=BbbSource(url=server["source"].url, secret=Secret("x")))
        with pytest.raises(PollError) as raised:
            poll_recordings(HttpClient(), wrong, timeout=5, max_bytes=1 << 22)
        assert raised.value.reason == "checksum"
    with bbb_server([], failed="internalError") as server:
        with pytest.raises(PollError) as raised:
            poll_recordings(
                HttpClient(), RecordingsSource(bbb=server["source"]), timeout=5, max_bytes=1 << 20
            )
        assert raised.value.reason == "failed"


def test_api_root_versions() -> None:
    with bbb_server([]) as server:
        version = poll_version(HttpClient(), server["source"], timeout=5, max_bytes=1 << 20)
    assert (version.bbb_version, version.api_version) == ("3.0.4", "2.0")
    older = parse_root(
        b"<response><returncode>SUCCESS</returncode><version>2.0</version></response>"
    )
    assert (older.bbb_version, older.api_version) == ("", "2.0")
    with pytest.raises(PollError, match="DTD"):
        parse_root(b'<!DOCTYPE r [<!ENTITY a "b">]><response>&a;</response>')


def test_recordings_settings() -> None:
    def node(recordings: object) -> dict:
        bbb = {"url": "http://b/bigbluebutton/api/", "secret": "${S}", "recordings": recordings}
        return {"nodes": [{"name": "bbb-01", "bbb": bbb}]}

    config = parse_config(node({"interval": "10m", "max_recordings": 500}), "t.yml", {"S": "s"})
    settings = config.nodes[0].source("bbb_recordings")
    assert settings.interval == 600 and settings.max_recordings == 500
    assert config.nodes[0].sources() == ("bbb", "bbb_version", "bbb_recordings")
    assert parse_config(node(False), "t.yml", {"S": "s"}).nodes[0].source("bbb_recordings") is None
    for bad in ({"interval": "soon"}, {"max_recordings": 0}, {"every": "5m"}, "yes"):
        with pytest.raises(ConfigValueError, match="recordings"):
            parse_config(node(bad), "t.yml", {"S": "s"})


def test_a_slower_source_is_polled_at_its_own_interval_and_held_between() -> None:
    from confscale.exporter.config import NodeConfig, PoolConfig
    from confscale.exporter.poller import Poller

    clock = [1_790_000_000.0]
    with bbb_server(library(3)) as server:
        node = NodeConfig(
            name="bbb-01",
            settings={
                "bbb_version": server["source"],
                "bbb_recordings": RecordingsSource(bbb=server["source"], interval=300),
            },
        )
        poller = Poller(
            PoolConfig(nodes=(node,), interval=15, timeout=5), workers=2, clock=lambda: clock[0]
        )
        try:
            first = poller.run_cycle()
            clock[0] += 60
            second = poller.run_cycle()
            clock[0] += 300
            third = poller.run_cycle()
        finally:
            poller.stop()
    assert server["root"] == 2 and len(server["queries"]) == 2  # cycles 1 and 3 only
    held = {r.source: r for r in second.results}
    assert held["bbb_recordings"] is {r.source: r for r in first.results}["bbb_recordings"]
    assert all(r.ok for r in (*first.results, *second.results, *third.results))
    assert second.errors == {}
