"""BigBlueButton getMeetings: signed URL, safe parse, per-node figures.

Two parsers give the same figures (``bbbfigures.Tally`` does the arithmetic for both):

- ``MeetingsParser``, the reference: lxml's pull parser, one meeting's tree at a time.
- ``AnswerParser``, what a poll uses: the body goes through libxml2 with no tree and no
  callbacks (well-formedness only, about a third of a tree build), is kept in memory up
  to ``FAST_LIMIT``, and read by a scan: ``bbbscan``'s grammar of bbb-web's plain shape
  below ``TABLE_FROM`` bytes, ``bbbtags``'s table of every tag (depth and parent of
  each, built by numpy) from there on, where numpy's fixed cost per call is paid back;
  any other shape, or a body larger than ``FAST_LIMIT``, goes to the reference parser.

Both never expand entities, never load a DTD or anything from the network, and refuse
any document that declares a DTD, before libxml2 sees the bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Sequence

from confscale.exporter.bbbfigures import (
    COUNTERS,
    ORIGIN_KEY,
    OTHER,
    BbbFigures,
    Tally,
    parse_count,
)
from confscale.exporter.bbbscan import scan_meetings
from confscale.exporter.bbbtags import scan_tags
from confscale.exporter.config import BbbSource, parse_bbb
from confscale.exporter.contract import (
    BBB_GAUGES,
    CLIENTS,
    MEETING_SIZE_BOUNDS,
    MEETING_SIZES,
    ORIGINS,
)
from confscale.exporter.exposition import Family, gauge
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.source import SourceKind
from lxml import etree

__all__ = ["AnswerParser", "BbbFigures", "MeetingsParser", "parse_count", "parse_meetings"]

# A DTD is where entity bombs and external entities live; BBB never sends one.
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
_FORBIDDEN_OVERLAP = max(len(m) for m in _FORBIDDEN) - 1
FAST_LIMIT = 2 * 1024 * 1024  # bodies held for the scan (twice, while joined); larger ones stream
# From this size on the tag table (bbbtags) reads an answer faster than the grammar
# (bbbscan), CPU per answer of 25-attendee meetings: 82 KiB 0.93 vs 0.85 ms, 123 KiB
# 1.14 vs 1.30 ms, 1.64 MB 9.7 vs 17.2 ms (bench/bench_parse.py --scan-sizes)
TABLE_FROM = 100 * 1024
_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
}


def signed_url(source: BbbSource, call: str = "getMeetings", query: str = "") -> str:
    """``url + call?query&checksum=…`` with checksum = H(call + query + secret)."""
    digest = hashlib.new(
        source.checksum, (call + query + source.secret.reveal()).encode("utf-8")
    ).hexdigest()
    separator = "&" if query else ""
    return f"{source.url}{call}?{query}{separator}checksum={digest}"


class _DtdGuard:
    """Refuses a DTD or entity declaration, also when split across two chunks."""

    def __init__(self) -> None:
        self._tail = b""

    def check(self, chunk: bytes) -> None:
        window = self._tail + chunk
        # "!" is rare in getMeetings and found at memchr speed; "<!" is not ("<" is everywhere)
        if b"!" in window and any(marker in window for marker in _FORBIDDEN):
            raise PollError("parse", "the document declares a DTD or entities; refused")
        self._tail = window[-_FORBIDDEN_OVERLAP:]


class MeetingsParser:
    """The reference parser: ``feed`` chunks, then ``close`` for the figures."""

    def __init__(self) -> None:
        self._parser = etree.XMLPullParser(
            events=("end",),
            tag="meeting",
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,
            collect_ids=False,
            **_PARSER_OPTIONS,
        )
        # Compiled per parser: lxml XPath objects must not be shared between threads.
        self._client_types = etree.XPath(
            "attendees/attendee/clientType/text()", smart_strings=False
        )
        self._attendee_count = etree.XPath("count(attendees/attendee)")
        self._guard = _DtdGuard()
        self._tally = Tally()

    def feed(self, chunk: bytes) -> None:
        self._guard.check(chunk)
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
        _check_envelope(root)
        if self._tally.meetings == 0 and root.find("participantCount") is not None:
            self._add_meeting(root)  # getMeetingInfo shape: one meeting's fields on the root
        return self._tally.figures()

    def _drain(self) -> None:
        for _event, meeting in self._parser.read_events():
            parent = meeting.getparent()
            # Only <response><meetings><meeting>: one inside <metadata> is user data.
            if (
                parent is None
                or parent.tag != "meetings"
                or parent.getparent() is None
                or parent.getparent().getparent() is not None
            ):
                continue
            self._add_meeting(meeting)
            meeting.clear()
            while meeting.getprevious() is not None:
                del parent[0]

    def _add_meeting(self, meeting: etree._Element) -> None:
        counters = {}
        for tag in COUNTERS:
            text = meeting.findtext(tag)  # None when the element is missing
            if text is not None:
                counters[tag] = text
        metadata = meeting.find("metadata")
        self._tally.add(
            counters,
            breakout=meeting.findtext("isBreakout"),
            internal_id=meeting.findtext("internalMeetingID"),
            origin=None if metadata is None else metadata.findtext(ORIGIN_KEY),
            clients=Counter(str(c) for c in self._client_types(meeting)),
            attendees=int(self._attendee_count(meeting)),  # XPath count() is a float
        )


class _NoTree:
    """An lxml parser target without callbacks: libxml2 checks the XML, builds nothing."""

    def close(self) -> None:
        return None


class AnswerParser:
    """What a poll feeds: well-formedness by libxml2, figures by the scan (see module)."""

    def __init__(self, fast_limit: int = FAST_LIMIT, table_from: int = TABLE_FROM) -> None:
        self._table_from = table_from
        self._guard = _DtdGuard()
        self._check = etree.XMLParser(target=_NoTree(), **_PARSER_OPTIONS)
        self._chunks: list[bytes] | None = []
        self._size = 0
        self._limit = fast_limit
        self._reference: MeetingsParser | None = None

    def feed(self, chunk: bytes) -> None:
        if self._reference is not None:
            self._reference.feed(chunk)
            return
        self._guard.check(chunk)
        assert self._chunks is not None
        self._size += len(chunk)
        if self._size > self._limit:
            # Too large to hold: stream the rest through the reference parser instead.
            self._reference = MeetingsParser()
            for held in (*self._chunks, chunk):
                self._reference.feed(held)
            self._chunks = None
            return
        try:
            self._check.feed(chunk)
        except etree.XMLSyntaxError as exc:
            raise PollError("parse", f"invalid XML: {_syntax_detail(exc)}") from None
        self._chunks.append(chunk)

    def close(self) -> BbbFigures:
        if self._reference is not None:
            return self._reference.close()
        try:
            self._check.close()
        except etree.XMLSyntaxError as exc:
            raise PollError("parse", f"invalid XML: {_syntax_detail(exc)}") from None
        assert self._chunks is not None
        document = b"".join(self._chunks)
        self._chunks = None
        scan = scan_tags if len(document) >= self._table_from else scan_meetings
        figures = scan(document)
        if figures is not None:
            return figures
        # Not bbb-web's plain shape (or FAILED, getMeetingInfo, ...): the reference decides.
        reference = MeetingsParser()
        reference.feed(document)
        return reference.close()


def _check_envelope(root: etree._Element) -> None:
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


def _feed_all(parser: AnswerParser | MeetingsParser, document: bytes, chunk: int) -> BbbFigures:
    for start in range(0, len(document), chunk):
        parser.feed(document[start : start + chunk])
    return parser.close()


def parse_meetings(
    document: bytes, chunk_size: int = 64 * 1024, table_from: int = TABLE_FROM
) -> BbbFigures:
    """Figures of a whole getMeetings (or getMeetingInfo) document, as a poll gets them
    (``table_from``: the size from which the tag table scans instead of the grammar)."""
    return _feed_all(AnswerParser(table_from=table_from), document, chunk_size)


def parse_meetings_reference(document: bytes, chunk_size: int = 64 * 1024) -> BbbFigures:
    """The same figures by the reference parser alone."""
    return _feed_all(MeetingsParser(), document, chunk_size)


def poll_bbb(
    client: HttpClient, source: BbbSource, *, timeout: float, max_bytes: int
) -> BbbFigures:
    """One getMeetings poll of one node; raises PollError with the failure reason."""
    parser = AnswerParser()
    client.fetch(
        signed_url(source), timeout=timeout, max_bytes=max_bytes, sink=parser.feed, tls=source.tls
    )
    figures = parser.close()
    return dataclasses.replace(figures, origins=top_origins(figures.origins, source.origins_top))


def top_origins(origins: tuple[tuple[str, int], ...], top: int) -> tuple[tuple[str, int], ...]:
    """The ``top`` origins by participants (ties by name); the rest summed as ``other``."""
    ranked = sorted((o for o in origins if o[0] != OTHER), key=lambda o: (-o[1], o[0]))
    rest = sum(n for o, n in origins if o == OTHER) + sum(n for _, n in ranked[top:])
    return (*ranked[:top], *(((OTHER, rest),) if rest else ()))


class BbbFamilies:
    """The getMeetings families of the contract (exporter/contract.py), node by node."""

    def __init__(self, base: Sequence[str]) -> None:
        self._gauges = [(g.field, gauge(g.metric, g.help, base)) for g in BBB_GAUGES]
        self._clients = gauge(CLIENTS.name, CLIENTS.help, [*base, "type"])
        self._sizes = gauge(MEETING_SIZES.name, MEETING_SIZES.help, [*base, "le"])
        self._origins = gauge(ORIGINS.name, ORIGINS.help, [*base, "server"])

    def add(self, figures: BbbFigures, labels: dict[str, str]) -> None:
        for key, family in self._gauges:
            family.add(labels, getattr(figures, key))
        for client, count in figures.clients:
            self._clients.add_with(labels, "type", client, count)
        total = 0
        for bound, count in zip(_SIZE_LABELS, figures.sizes, strict=True):
            total += count
            self._sizes.add_with(labels, "le", bound, total)
        for server, count in figures.origins:
            self._origins.add_with(labels, "server", server, count)

    def families(self) -> list[Family]:
        return [*(family for _, family in self._gauges), self._clients, self._sizes, self._origins]


_SIZE_LABELS = (*(str(b) for b in MEETING_SIZE_BOUNDS), "+Inf")


SOURCE = SourceKind(key="bbb", parse=parse_bbb, poll=poll_bbb, families=BbbFamilies)


def _syntax_detail(exc: etree.XMLSyntaxError) -> str:
    message = str(getattr(exc, "msg", "") or "malformed").split(",")[0]
    return _short(message, 80)


def _short(text: str, limit: int = 40) -> str:
    return str(text).replace("\n", " ")[:limit]
