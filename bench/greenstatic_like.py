"""A getMeetings exporter built the way greenstatic's bigbluebutton-exporter is built.

greenstatic/bigbluebutton-exporter (bbb-exporter/api_lib.py, collector.py, server.py at
bbb24abeb0be4658dbecfcb21d1c98fd1c8da2da): prometheus_client's ``start_http_server``,
a custom collector whose ``collect()`` calls ``requests.get`` on getMeetings at every
scrape, ``xmltodict.parse`` of the whole answer, and the families built from the dicts
(totals, clients, origins, the room histograms, unique meetings). This is that design
in one file, for bench/bench_poll.py to measure against confscale-exporter on the same
answer: it is the comparison, not a port of the project.

    python -m bench.greenstatic_like --url URL --secret S --port P
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import defaultdict
from typing import Any

import requests
import xmltodict
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
)

BUCKETS = [0, 1, 5, 15, 30, 60, 90, 120, 150, 200, 250, 300, 400, 500, float("inf")]


def to_int(text: str | None) -> int:
    text = (text or "").replace(",", "").split(".")[0]
    return int(text) if text else 0


class Collector:
    def __init__(self, url: str, secret: str) -> None:
        self._url, self._secret = url, secret
        self._seen: set[str] = set()
        self._unique = 0

    def _meetings(self) -> list[dict[str, Any]]:
        call = ("getMeetings" + self._secret).encode()
        checksum = hashlib.sha1(call).hexdigest()  # noqa: S324 - BBB's checksum, as greenstatic
        answer = requests.get(f"{self._url}getMeetings?checksum={checksum}", timeout=10)
        data = xmltodict.parse(answer.content)
        meetings = (data["response"].get("meetings") or {}).get("meeting", [])
        return [meetings] if isinstance(meetings, dict) else meetings

    def collect(self):
        meetings = self._meetings()
        for name, key in (
            ("bbb_meetings_participants", "participantCount"),
            ("bbb_meetings_listeners", "listenerCount"),
            ("bbb_meetings_voice_participants", "voiceParticipantCount"),
            ("bbb_meetings_video_participants", "videoCount"),
        ):
            family = GaugeMetricFamily(name, name)
            family.add_metric([], sum(to_int(m[key]) for m in meetings))
            yield family
        total = GaugeMetricFamily("bbb_meetings", "meetings")
        total.add_metric([], len(meetings))
        yield total
        largest = GaugeMetricFamily("bbb_meetings_participants_max", "largest")
        largest.add_metric([], max((to_int(m["participantCount"]) for m in meetings), default=0))
        yield largest
        clients: dict[str, int] = defaultdict(int, {"HTML5": 0, "DIAL-IN": 0})
        origins: dict[tuple[str, str], int] = defaultdict(int)
        for meeting in meetings:
            people = (meeting.get("attendees") or {}).get("attendee", [])
            for person in [people] if isinstance(people, dict) else people:
                clients[person["clientType"]] += 1
            n = to_int(meeting["participantCount"])
            if n:
                meta = meeting.get("metadata") or {}
                key = (meta.get("bbb-origin-server-name") or "", meta.get("bbb-origin") or "")
                origins[key] += n
        by_client = GaugeMetricFamily("bbb_meetings_participant_clients", "c", labels=["type"])
        for client, count in clients.items():
            by_client.add_metric([client.lower()], count)
        yield by_client
        by_origin = GaugeMetricFamily(
            "bbb_meetings_participants_origin", "o", labels=["server", "name"]
        )
        for (server, name), count in origins.items():
            by_origin.add_metric([server.lower(), name.lower()], count)
        yield by_origin
        for name, key in (
            ("bbb_room_participants", "participantCount"),
            ("bbb_room_listeners", "listenerCount"),
            ("bbb_room_voice_participants", "voiceParticipantCount"),
            ("bbb_room_video_participants", "videoCount"),
        ):
            values = [to_int(m[key]) for m in meetings]
            family = GaugeHistogramMetricFamily(name, name)
            family.add_metric(
                [],
                [
                    (str(b) if b != float("inf") else "+Inf", sum(v <= b for v in values))
                    for b in BUCKETS
                ],
                sum(values),
            )
            yield family
        ids = {m["internalMeetingID"] for m in meetings if m["isBreakout"].lower() == "false"}
        self._unique += len(ids - self._seen)
        self._seen = ids
        unique = CounterMetricFamily("bbb_unique_meetings", "unique")
        unique.add_metric([], self._unique)
        yield unique


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the BBB API URL, ending in /")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    start_http_server(args.port, addr="127.0.0.1")
    REGISTRY.register(Collector(args.url, args.secret))
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
