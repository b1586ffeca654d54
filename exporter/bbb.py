"""BigBlueButton getMeetings: signed URL, safe streaming parse, per-node figures.

The parser is fed the body chunk by chunk while it downloads, keeps only one meeting
in memory at a time, never expands entities, never loads a DTD or anything from the
network, and refuses any document that declares a DTD.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from confscale.exporter.config import BbbSource, parse_bbb
from confscale.exporter.contract import BBB_GAUGES, CLIENTS
from confscale.exporter.exposition import Family, gauge
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.source import SourceKind
from lxml import etree

_NOT_DIGIT = re.compile(r"[^0-9]")
_MAX_COUNT_DIGITS = 12
# A DTD is where entity bombs and external entities live; BBB never sends one.
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
_FORBIDDEN_OVERLAP = max(len(m) for m in _FORBIDDEN) - 1
_COUNTERS = MappingProxyType(
    {
        "participantCount": "participants",
        "moderatorCount": "moderators",
        "listenerCount": "listeners",
        "voiceParticipantCount": "voice_participants",
        "videoCount": "video_participants",
    }
)


@dataclass(frozen=True)
class BbbFigures:
    """What one getMeetings answer says about a node (docs/design.md §2)."""

    meetings: int = 0
    breakout_rooms: int = 0
    participants: int = 0
    moderators: int = 0
    listeners: int = 0
    voice_participants: int = 0
    video_participants: int = 0
    participants_max: int = 0
    video_fanout: int = 0
    clients: tuple[tuple[str, int], ...] = ()


def parse_count(text: str | None, field: str) -> int:
    """A BBB count, tolerant of thousands separators (``1,202``, ``1.000``)."""
    digits = _NOT_DIGIT.sub("", text or "")
    if not digits or len(digits) > _MAX_COUNT_DIGITS:
        shown = (text or "").strip()[:20]
        raise PollError("parse", f"{field} is not a count: {shown!r}")
    return int(digits)


def signed_url(source: BbbSource, call: str = "getMeetings", query: str = "") -> str:
    """``url + call?query&checksum=…`` with checksum = H(call + query + secret)."""
    digest = hashlib.new(
        source.checksum, (call + query + source.secret.reveal()).encode("utf-8")
    ).hexdigest()
    separator = "&" if query else ""
    return f"{source.url}{call}?{query}{separator}checksum={digest}"


class MeetingsParser:
    """Incremental getMeetings parser: ``feed`` chunks, then ``close`` for the figures."""

    def __init__(self) -> None:
        self._parser = etree.XMLPullParser(
            events=("end",),
            tag="meeting",
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,
            collect_ids=False,
        )
        # Compiled per parser: lxml XPath objects must not be shared between threads.
        self._client_types = etree.XPath(
            "attendees/attendee/clientType/text()", smart_strings=False
        )
        self._attendee_count = etree.XPath("count(attendees/attendee)")
        self._tail = b""
        self._sums: Counter[str] = Counter()
        self._clients: Counter[str] = Counter()
        self._meetings = 0
        self._breakouts = 0
        self._max = 0
        self._fanout = 0

    def feed(self, chunk: bytes) -> None:
        # The markers are looked for in the chunk and across the seam with the last one.
        seam = self._tail + chunk[:_FORBIDDEN_OVERLAP]
        if any(marker in chunk or marker in seam for marker in _FORBIDDEN):
            raise PollError("parse", "the document declares a DTD or entities; refused")
        self._tail = (self._tail + chunk[-_FORBIDDEN_OVERLAP:])[-_FORBIDDEN_OVERLAP:]
        try:
            self._parser.feed(chunk)
        except etree.XMLSyntaxError as exc:
            raise PollError("parse", f"invalid XML: {_syntax_detail(exc)}") from None
        self._drain()

    def close(self) -> BbbFigures:
        try:
            root = self._parser.close()
        except etree.XMLSyntaxError as exc:
            raise PollError("parse", f"invalid XML: {_syntax_detail(exc)}") from None
        self._drain()
        if root.tag != "response":
            raise PollError("parse", f"expected a <response> document, got <{_short(root.tag)}>")
        returncode = (root.findtext("returncode") or "").strip()
        if returncode == "FAILED":
            key = (root.findtext("messageKey") or "").strip()
            if key == "checksumError":
                raise PollError("checksum", "BBB refused the checksum (checksumError)")
            raise PollError("failed", f"BBB answered FAILED ({_short(key) or 'no messageKey'})")
        if returncode != "SUCCESS":
            raise PollError("parse", "no SUCCESS or FAILED returncode in the answer")
        if self._meetings == 0 and root.find("participantCount") is not None:
            self._add_meeting(root)  # getMeetingInfo shape: one meeting's fields on the root
        return BbbFigures(
            meetings=self._meetings,
            breakout_rooms=self._breakouts,
            participants=self._sums["participants"],
            moderators=self._sums["moderators"],
            listeners=self._sums["listeners"],
            voice_participants=self._sums["voice_participants"],
            video_participants=self._sums["video_participants"],
            participants_max=self._max,
            video_fanout=self._fanout,
            clients=tuple(sorted(self._clients.items())),
        )

    def _drain(self) -> None:
        for _event, meeting in self._parser.read_events():
            parent = meeting.getparent()
            # A <meeting> inside <metadata> is user data, not a meeting.
            if parent is None or parent.tag != "meetings":
                continue
            self._add_meeting(meeting)
            meeting.clear()
            while meeting.getprevious() is not None:
                del parent[0]

    def _add_meeting(self, meeting: etree._Element) -> None:
        counts = {}
        for tag, key in _COUNTERS.items():
            text = meeting.findtext(tag)  # None when the element is missing
            if text is not None:
                counts[key] = parse_count(text, tag)
        if (meeting.findtext("isBreakout") or "").strip().lower() == "true":
            self._breakouts += 1
        typed = 0
        for client in self._client_types(meeting):
            self._clients[str(client).strip()[:32] or "unknown"] += 1
            typed += 1
        untyped = int(self._attendee_count(meeting)) - typed  # XPath count() is a float
        if untyped > 0:
            self._clients["unknown"] += untyped
        self._meetings += 1
        self._sums.update(counts)
        n, w = counts.get("participants", 0), counts.get("video_participants", 0)
        self._max = max(self._max, n)
        self._fanout += w * max(n - 1, 0)


def parse_meetings(document: bytes, chunk_size: int = 64 * 1024) -> BbbFigures:
    """Figures of a whole getMeetings (or getMeetingInfo) document held in memory."""
    parser = MeetingsParser()
    for start in range(0, len(document), chunk_size):
        parser.feed(document[start : start + chunk_size])
    return parser.close()


def poll_bbb(
    client: HttpClient, source: BbbSource, *, timeout: float, max_bytes: int
) -> BbbFigures:
    """One getMeetings poll of one node; raises PollError with the failure reason."""
    parser = MeetingsParser()
    client.fetch(
        signed_url(source), timeout=timeout, max_bytes=max_bytes, sink=parser.feed, tls=source.tls
    )
    return parser.close()


class BbbFamilies:
    """The getMeetings families of the contract (exporter/contract.py), node by node."""

    def __init__(self, base: Sequence[str]) -> None:
        self._gauges = [(g.field, gauge(g.metric, g.help, base)) for g in BBB_GAUGES]
        self._clients = gauge(CLIENTS.name, CLIENTS.help, [*base, "type"])

    def add(self, figures: BbbFigures, labels: dict[str, str]) -> None:
        for key, family in self._gauges:
            family.add(labels, getattr(figures, key))
        for client, count in figures.clients:
            self._clients.add({**labels, "type": client}, count)

    def families(self) -> list[Family]:
        return [*(family for _, family in self._gauges), self._clients]


SOURCE = SourceKind(key="bbb", parse=parse_bbb, poll=poll_bbb, families=BbbFamilies)


def _syntax_detail(exc: etree.XMLSyntaxError) -> str:
    message = str(getattr(exc, "msg", "") or "malformed").split(",")[0]
    return _short(message, 80)


def _short(text: str, limit: int = 40) -> str:
    return str(text).replace("\n", " ")[:limit]
