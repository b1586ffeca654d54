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

from confscale.exporter.bbbfigures import COUNTERS, ORIGIN_KEY, BbbFigures, Tally

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
    return rb"<" + name + rb"\s*(?:/>|>[^<]*</[^>]*>)"


_FREE_LEAF = _leaf(_FREE)
_FREE_CONTAINER = rb"<" + _FREE + rb"\s*>(?:\s*" + _FREE_LEAF + rb")*+\s*</[^>]*>"
_ATTENDEE = (
    rb"<attendee>(?:\s*(?:"
    + _FREE_LEAF
    + rb"|<clientType>[^<]*</clientType>|"
    + _FREE_CONTAINER
    + rb"))*+\s*</attendee>"
)
_ATTENDEES = rb"<attendees\s*(?:/>|>(?:\s*" + _ATTENDEE + rb")*+\s*</attendees\s*>)"
_METADATA = rb"<metadata\s*(?:/>|>(?:\s*" + _FREE_LEAF + rb")*+\s*</metadata\s*>)"
_FIELDS_ALT = "|".join((*COUNTERS, "isBreakout", "internalMeetingID")).encode()
_MEETING_LEAF = _leaf(rb"(?:" + _FIELDS_ALT + rb")")
_MEETING = re.compile(
    rb"\s*<meeting\s*(?:/>|>(?:\s*(?:"
    + b"|".join((_FREE_LEAF, _MEETING_LEAF, _ATTENDEES, _METADATA, _FREE_CONTAINER))
    + rb"))*+\s*</meeting\s*>)"
)
_HEAD = re.compile(
    rb"(?:<\?xml(?P<decl>[^>]*)\?>)?\s*<response\s*>\s*<returncode\s*>SUCCESS</returncode\s*>"
    rb"\s*<meetings\s*(?P<empty>/)?>"
)
_TAIL = re.compile(rb"\s*</meetings\s*>\s*</response\s*>\s*")
_EMPTY_TAIL = re.compile(rb"\s*</response\s*>\s*")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_FIELD = re.compile(rb"<(" + _FIELDS_ALT + rb")\s*(?:/>|>([^<]*)<)")
_CLIENT = re.compile(rb"<clientType>([^<]*)</clientType>")
_ORIGIN = re.compile(rb"<" + re.escape(ORIGIN_KEY.encode()) + rb"\s*(?:/>|>([^<]*)<)")
_REFERENCE = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def scan_meetings(document: bytes) -> BbbFigures | None:
    """The figures of a well-formed getMeetings document, or None if it is not plain."""
    head = _HEAD.match(document)
    if head is None or not _utf8(head.group("decl")):
        return None
    tally = Tally()
    position = head.end()
    if head.group("empty"):
        return tally.figures() if _EMPTY_TAIL.fullmatch(document, position) else None
    while True:
        meeting = _MEETING.match(document, position)
        if meeting is None:
            break
        _add(tally, document, meeting.start(), meeting.end())
        position = meeting.end()
    if _TAIL.fullmatch(document, position) is None:
        return None
    return tally.figures()


def _add(tally: Tally, doc: bytes, start: int, end: int) -> None:
    counters: dict[str, str] = {}
    breakout = internal_id = origin = None
    clients: list[str] = []
    attendees = 0
    # The attendee lists are most of the bytes; the meeting's own fields are outside them.
    outside = start
    while True:
        opened = _find_tag(doc, b"<attendees", outside, end)
        stop = end if opened < 0 else opened
        for name, text in _FIELD.findall(doc, outside, stop):
            key = name.decode()
            value = _text(text)
            if key == "isBreakout":
                breakout = value if breakout is None else breakout
            elif key == "internalMeetingID":
                internal_id = value if internal_id is None else internal_id
            elif key not in counters:
                counters[key] = value
        if opened < 0:
            break
        closed = doc.find(b"</attendees", opened, end)
        if closed < 0:  # <attendees/>: the grammar allows no other shape
            outside = doc.index(b">", opened) + 1
            continue
        attendees += doc.count(b"<attendee>", opened, closed)
        clients.extend(_text(t) for t in _CLIENT.findall(doc, opened, closed) if t)
        outside = closed
    metadata = _find_tag(doc, b"<metadata", start, end)
    if metadata >= 0:
        closed = doc.find(b"</metadata", metadata, end)
        if closed >= 0:
            found = _ORIGIN.search(doc, metadata, closed)
            if found is not None:
                origin = _text(found.group(1) or b"")
    tally.add(
        counters,
        breakout=breakout,
        internal_id=internal_id,
        origin=origin,
        clients=clients,
        attendees=attendees,
    )


def _find_tag(doc: bytes, opening: bytes, start: int, end: int) -> int:
    """The first start tag ``opening`` (not a longer name that begins the same way)."""
    at = doc.find(opening, start, end)
    while at >= 0 and doc[at + len(opening) : at + len(opening) + 1] not in b" \t\r\n/>":
        at = doc.find(opening, at + 1, end)
    return at


def _text(raw: bytes) -> str:
    """Element text as an XML parser reports it: line ends normalised, references resolved."""
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    text = raw.decode("utf-8")
    return _REFERENCE.sub(_resolve, text) if "&" in text else text


def _resolve(match: re.Match[str]) -> str:
    ref = match.group(1)
    if ref.startswith("#x"):
        return chr(int(ref[2:], 16))
    if ref.startswith("#"):
        return chr(int(ref[1:]))
    return _NAMED[ref]


def _utf8(declaration: bytes | None) -> bool:
    if not declaration:
        return True
    found = _ENCODING.search(declaration)
    return found is None or found.group(1).lower().replace(b"_", b"-") in (b"utf-8", b"utf8")
