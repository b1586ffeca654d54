"""The fast getMeetings scan: regular expressions over a document libxml2 has validated.

libxml2 (through lxml, with no tree and no callbacks) proves the bytes are well-formed
XML without a DTD; then one grammar, matched meeting by meeting, proves the document has
the plain shape bbb-web writes, in which every element the figures need sits at the one
place the reference parser looks for it:

- no comments, CDATA, processing instructions (but the XML declaration), attributes or
  namespace declarations anywhere: every ``<`` starts a plain tag;
- ``<response><returncode>SUCCESS</returncode><meetings>`` … ``</meetings></response>``;
- a meeting holds leaves (``<x>text</x>``, ``<x/>``), containers of leaves (metadata,
  breakoutRooms, anything new) and ``<attendees>`` of ``<attendee>`` elements that hold
  leaves and containers of leaves (customdata);
- the names the figures read (the counters, ``isBreakout``, ``internalMeetingID``,
  ``attendees``, ``attendee``, ``metadata``, ``clientType``, ``meeting`` …) occur only at
  their own place: a metadata key or custom-data key by that name sends the whole answer
  to the reference parser.

In that shape the first ``<participantCount>`` after ``<meeting>`` *is* the meeting's
participantCount child, and so on; anything else returns None and the caller runs the
reference parser, so an unusual answer costs time, never a wrong figure (the property
test in tests/test_exporter_scan.py compares both on generated, hostile documents).
"""

from __future__ import annotations

import re
from collections import Counter

from confscale.exporter.bbbfigures import (
    COUNTERS,
    ORIGIN_KEY,
    BbbFigures,
    Tally,
    element_text,
    utf8_declared,
)

# Names with a fixed place; anywhere else they would be mistaken for the real thing.
_PLACED = (
    *COUNTERS,
    "isBreakout",
    "internalMeetingID",
    "attendees",
    "attendee",
    "metadata",
    "meetings",
    "meeting",
    "clientType",
    "response",
    "returncode",
)
_PLACED_ALT = "|".join(sorted(_PLACED, key=len, reverse=True))
_NAME = rb"[A-Za-z_][-\w.:]*"
_FREE = rb"(?!(?:" + _PLACED_ALT.encode() + rb")[\s/>])" + _NAME


def _leaf(name: bytes) -> bytes:
    # <x/> or <x>text</x>: text holds no "<", so the next tag is this element's end tag
    return rb"<" + name + rb"\s*+(?:/>|>[^<]*+</[^>]*>)"


_FREE_LEAF = _leaf(_FREE)
_FREE_CONTAINER = rb"<" + _FREE + rb"\s*+>(?:\s*+" + _FREE_LEAF + rb")*+\s*+</[^>]*>"
# bbb-web's own attendee (getMeetings.ftlx): literal names, matched much faster than the
# general form below, which the regex tries when this one does not fit.
_ATTENDEE_FIELDS = (
    "userID",
    "fullName",
    "role",
    "isPresenter",
    "isListeningOnly",
    "hasJoinedVoice",
    "hasVideo",
)
_ATTENDEE_TEMPLATE = (
    rb"<attendee>"
    + b"".join(
        rb"\s*+<" + f.encode() + rb">[^<]*+</" + f.encode() + rb">" for f in _ATTENDEE_FIELDS
    )
    + rb"(?:\s*+<clientType>[^<]*+</clientType>)?(?:\s*+<customdata\s*+(?:/>|>\s*+</customdata>))?"
    + rb"\s*+</attendee>"
)
# At most one clientType per attendee: then no meeting has more typed clients than
# attendees, and the answer's clients can be counted in one pass over all attendees.
_ATTENDEE_REST = rb"(?:\s*+(?:" + _FREE_LEAF + rb"|" + _FREE_CONTAINER + rb"))*+"
_ATTENDEE = (
    rb"<attendee>"
    + _ATTENDEE_REST
    + rb"(?:\s*+<clientType>[^<]*+</clientType>"
    + _ATTENDEE_REST
    + rb")?\s*+</attendee>"
)
_ATTENDEES = (
    rb"<attendees\s*+(?:/>|>(?:\s*+(?:"
    + _ATTENDEE_TEMPLATE
    + rb"|"
    + _ATTENDEE
    + rb"))*+\s*+</attendees\s*+>)"
)
_METADATA = rb"<metadata\s*+(?:/>|>(?:\s*+" + _FREE_LEAF + rb")*+\s*+</metadata\s*+>)"
_FIELDS_ALT = "|".join((*COUNTERS, "isBreakout", "internalMeetingID")).encode()
_MEETING_LEAF = _leaf(rb"(?:" + _FIELDS_ALT + rb")")
_MEETING = re.compile(
    rb"\s*+<meeting\s*+(?:/>|>(?:\s*+(?:"
    + b"|".join((_FREE_LEAF, _MEETING_LEAF, rb"(?P<att>" + _ATTENDEES + rb")", _METADATA))
    + rb"|"
    + _FREE_CONTAINER
    # greedy, not possessive: Python 3.11's re mis-tracks a group inside a possessive
    # repeat; the alternatives never match the same bytes, so nothing backtracks far
    + rb"))*\s*+</meeting\s*+>)"
)
_HEAD = re.compile(
    rb"(?:<\?xml(?P<decl>[^>]*)\?>)?\s*<response\s*>\s*<returncode\s*>SUCCESS</returncode\s*>"
    rb"\s*<meetings\s*(?P<empty>/)?>"
)
_TAIL = re.compile(rb"\s*</meetings\s*>\s*</response\s*>\s*")
_EMPTY_TAIL = re.compile(rb"\s*</response\s*>\s*")
_FIELD = re.compile(rb"<(" + _FIELDS_ALT + rb")\s*(?:/>|>([^<]*)<)")
_CLIENT = re.compile(rb"<clientType>([^<]*)</clientType>")
_ORIGIN = re.compile(rb"<" + re.escape(ORIGIN_KEY.encode()) + rb"\s*(?:/>|>([^<]*)<)")
_FEW_CLIENT_TYPES = 4  # distinct client types counted by bytes.count; more: findall


def scan_meetings(document: bytes) -> BbbFigures | None:
    """The figures of a well-formed getMeetings document, or None if it is not plain."""
    head = _HEAD.match(document)
    if head is None or not utf8_declared(head.group("decl")):
        return None
    tally = Tally()
    position = head.end()
    if head.group("empty"):
        return tally.figures() if _EMPTY_TAIL.fullmatch(document, position) else None
    first = position
    read: list[tuple[dict[str, str], str | None, str | None, str | None]] = []
    while True:
        meeting = _MEETING.match(document, position)
        if meeting is None:
            break
        read.append(_read(document, meeting))
        position = meeting.end()
    if _TAIL.fullmatch(document, position) is None:
        return None
    tally.add_columns(
        {tag: [found[0].get(tag) for found in read] for tag in COUNTERS},
        breakouts=[found[1] for found in read],
        internal_ids=[found[2] for found in read],
        origins=[found[3] for found in read],
    )
    # In the grammar <attendee> and <clientType> occur only in attendee lists, at most one
    # clientType per attendee: counting them over all meetings at once is exact.
    raw = _client_texts(document, first, position)
    raw.pop(b"", None)  # <clientType></clientType>: no text, an unknown client
    clients: Counter[str] = Counter()
    for text, count in raw.items():
        clients[element_text(text)] += count
    tally.count_clients(clients, document.count(b"<attendee>", first, position))
    return tally.figures()


def _client_texts(doc: bytes, start: int, end: int) -> Counter[bytes]:
    """clientType text -> elements with it. The grammar admits only the literal form
    ``<clientType>text</clientType>`` (text without ``<``) and no ``<clientType>`` elsewhere,
    so a count of each whole element's bytes is exact; an answer has one or two client
    types, and one ``bytes.count`` pass per type costs a fraction of a ``findall`` that
    makes a bytes object per attendee (more than a few types: the ``findall``)."""
    total = doc.count(b"<clientType>", start, end)
    texts: Counter[bytes] = Counter()
    counted = 0
    while counted < total and len(texts) < _FEW_CLIENT_TYPES:
        if texts:  # the first element whose text is not counted yet
            seen = b"|".join(re.escape(text) for text in texts)
            other = re.compile(rb"<clientType>(?!(?:" + seen + rb")</clientType>)")
            found = other.search(doc, start, end)
            if found is None:
                break
            at = found.start()
        else:
            at = doc.find(b"<clientType>", start, end)
        head = at + len(b"<clientType>")
        text = doc[head : doc.find(b"<", head, end)]
        texts[text] = doc.count(b"<clientType>" + text + b"</clientType>", start, end)
        counted += texts[text]
    if counted == total:
        return texts
    return Counter(_CLIENT.findall(doc, start, end))


def _read(
    doc: bytes, meeting: re.Match[bytes]
) -> tuple[dict[str, str], str | None, str | None, str | None]:
    """One meeting's counter texts, isBreakout, internalMeetingID and origin texts."""
    start, end = meeting.span()
    # The attendee lists are most of the bytes and hold none of the meeting's own fields
    # (the grammar keeps those names out of them): read the fields around the last list.
    lists = meeting.span("att")
    regions = ((start, end),) if lists[0] < 0 else ((start, lists[0]), (lists[1], end))
    counters: dict[str, str] = {}
    breakout = internal_id = origin = None
    for low, high in regions:
        for name, text in _FIELD.findall(doc, low, high):
            key = name.decode()
            if key == "isBreakout":
                breakout = element_text(text) if breakout is None else breakout
            elif key == "internalMeetingID":
                internal_id = element_text(text) if internal_id is None else internal_id
            elif key not in counters:
                counters[key] = element_text(text)
    for low, high in regions:
        metadata = _find_tag(doc, b"<metadata", low, high)
        if metadata >= 0:
            closed = doc.find(b"</metadata", metadata, high)
            if closed >= 0:
                found = _ORIGIN.search(doc, metadata, closed)
                if found is not None:
                    origin = element_text(found.group(1) or b"")
            break
    return counters, breakout, internal_id, origin


def _find_tag(doc: bytes, opening: bytes, start: int, end: int) -> int:
    """The first start tag ``opening`` (not a longer name that begins the same way)."""
    at = doc.find(opening, start, end)
    while at >= 0 and doc[at + len(opening) : at + len(opening) + 1] not in b" \t\r\n/>":
        at = doc.find(opening, at + 1, end)
    return at
