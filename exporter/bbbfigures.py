"""What one getMeetings answer says about a node, and the one tally both parsers fill.

The reference parser (``bbb.MeetingsParser``, an lxml tree per meeting) and the fast scan
(``bbbscan``) find the same elements; everything they do with an element's text — counts
with thousands separators, client type spelling, origin labels, meeting-ID digests — lives
here once, so the two can only differ in *which* elements they find, which is what the
property test compares.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from confscale.exporter.contract import MAX_ORIGINS_TOP, MEETING_SIZE_BOUNDS
from confscale.exporter.fetch import PollError

_NOT_DIGIT = re.compile(r"[^0-9]")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_REFERENCE = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_MAX_COUNT_DIGITS = 12
# a column of plain counts joined by spaces: every one ASCII digits, none too long
_PLAIN_COUNTS = re.compile(rf"(?:[0-9]{{1,{_MAX_COUNT_DIGITS}}} )*[0-9]{{1,{_MAX_COUNT_DIGITS}}}")
# getMeetings element -> figure
COUNTERS = MappingProxyType(
    {
        "participantCount": "participants",
        "moderatorCount": "moderators",
        "listenerCount": "listeners",
        "voiceParticipantCount": "voice_participants",
        "videoCount": "video_participants",
    }
)
ORIGIN_KEY = "bbb-origin-server-name"  # the metadata Greenlight, Moodle, ... send
NO_ORIGIN = "none"  # a meeting without that metadata (breakout rooms, plain API users)
OTHER = "other"  # origins past the caps
MAX_ORIGINS = MAX_ORIGINS_TOP  # distinct origins kept per answer; the rest count as OTHER
MAX_LABEL = 64
MAX_CLIENT = 32
MAX_TRACKED_IDS = 4096  # internal meeting IDs remembered per answer (meetings seen starting)


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
    # meetings per size bucket (not cumulative), one entry per MEETING_SIZE_BOUNDS + >last
    sizes: tuple[int, ...] = (0,) * (len(MEETING_SIZE_BOUNDS) + 1)
    origins: tuple[tuple[str, int], ...] = ()  # participants by bbb-origin-server-name
    meeting_ids: frozenset[int] = frozenset()  # 64-bit digests of internalMeetingID
    breakout_ids: frozenset[int] = frozenset()


def parse_count(text: str | None, field: str) -> int:
    """A BBB count, tolerant of thousands separators (``1,202``, ``1.000``)."""
    if text is not None and text.isascii() and text.isdigit() and len(text) <= _MAX_COUNT_DIGITS:
        return int(text)  # the usual case, without the regular expression
    digits = _NOT_DIGIT.sub("", text or "")
    if not digits or len(digits) > _MAX_COUNT_DIGITS:
        shown = (text or "").strip()[:20]
        raise PollError("parse", f"{field} is not a count: {shown!r}")
    return int(digits)


def client_label(text: str) -> str:
    """One spelling for clientType: lower case, as greenstatic's exporter and its dashboards."""
    return text.strip().lower()[:MAX_CLIENT] or "unknown"


def origin_label(text: str | None) -> str:
    return (text or "").strip().lower()[:MAX_LABEL] or NO_ORIGIN


def meeting_digest(text: str) -> int:
    """A 64-bit digest of an internal meeting ID: bounded memory, collisions negligible."""
    return int.from_bytes(
        hashlib.blake2b(text.strip().encode("utf-8"), digest_size=8).digest(), "big"
    )


def size_bucket(participants: int) -> int:
    for index, bound in enumerate(MEETING_SIZE_BOUNDS):
        if participants <= bound:
            return index
    return len(MEETING_SIZE_BOUNDS)


class Tally:
    """Sums over meetings; ``add`` takes one meeting's texts as the parser found them."""

    def __init__(self) -> None:
        self.meetings = 0
        self._breakouts = 0
        self._sums: Counter[str] = Counter()
        self._clients: Counter[str] = Counter()
        self._origins: Counter[str] = Counter()
        self._sizes = [0] * (len(MEETING_SIZE_BOUNDS) + 1)
        self._max = 0
        self._fanout = 0
        self._ids: set[int] = set()
        self._breakout_ids: set[int] = set()

    def add(
        self,
        counters: dict[str, str],
        *,
        breakout: str | None,
        internal_id: str | None,
        origin: str | None,
        clients: Mapping[str, int],
        attendees: int,
    ) -> None:
        """``counters``: element name -> text of the meeting's first such child.

        ``clients``: text -> how many clientType elements have that text (elements without
        text are not in it); ``attendees``: the number of attendee elements (those not
        accounted for by ``clients`` count as ``unknown``).
        """
        counts = {COUNTERS[tag]: parse_count(text, tag) for tag, text in counters.items()}
        is_breakout = (breakout or "").strip().lower() == "true"
        self._breakouts += is_breakout
        self.count_clients(clients, attendees)
        self.meetings += 1
        self._sums.update(counts)
        n, w = counts.get("participants", 0), counts.get("video_participants", 0)
        self._max = max(self._max, n)
        self._fanout += w * max(n - 1, 0)
        self._sizes[size_bucket(n)] += 1
        if n > 0:
            label = origin_label(origin)
            if label not in self._origins and len(self._origins) >= MAX_ORIGINS:
                label = OTHER
            self._origins[label] += n
        if internal_id is not None and internal_id.strip():
            ids = self._breakout_ids if is_breakout else self._ids
            if len(self._ids) + len(self._breakout_ids) < MAX_TRACKED_IDS:
                ids.add(meeting_digest(internal_id))

    def add_columns(
        self,
        counters: Mapping[str, Sequence[str | None]],
        *,
        breakouts: Sequence[str | None],
        internal_ids: Sequence[str | None],
        origins: Sequence[str | None],
    ) -> None:
        """Many meetings at once, as ``add`` one by one in order (same sums, same caps).

        ``counters``: element name -> one text per meeting (None: the meeting has no such
        child); the other sequences have one entry per meeting too. A column of plain
        counts is checked by one regular expression and converted by ``map(int)``; any
        other goes element by element through ``parse_count``.
        """
        meetings = len(breakouts)
        columns: dict[str, list[int]] = {}
        for tag, texts in counters.items():
            present = [t for t in texts if t is not None]
            if len(present) == len(texts) and _PLAIN_COUNTS.fullmatch(" ".join(present)):
                values = list(map(int, present))
            else:
                values = [0 if t is None else parse_count(t, tag) for t in texts]
            columns[COUNTERS[tag]] = values
            self._sums[COUNTERS[tag]] += sum(values)
        flags = [(b or "").strip().lower() == "true" for b in breakouts]
        self._breakouts += sum(flags)
        self.meetings += meetings
        people = columns.get("participants", [0] * meetings)
        cameras = columns.get("video_participants", [0] * meetings)
        if people:
            self._max = max(self._max, max(people))
        self._fanout += sum(w * (n - 1) for n, w in zip(people, cameras, strict=True) if n > 1)
        for bucket in map(bisect.bisect_left, [MEETING_SIZE_BOUNDS] * meetings, people):
            self._sizes[bucket] += 1
        for n, origin in zip(people, origins, strict=True):
            if n > 0:
                label = origin_label(origin)
                if label not in self._origins and len(self._origins) >= MAX_ORIGINS:
                    label = OTHER
                self._origins[label] += n
        for internal_id, is_breakout in zip(internal_ids, flags, strict=True):
            if internal_id is not None and internal_id.strip():
                ids = self._breakout_ids if is_breakout else self._ids
                if len(self._ids) + len(self._breakout_ids) < MAX_TRACKED_IDS:
                    ids.add(meeting_digest(internal_id))

    def count_clients(self, clients: Mapping[str, int], attendees: int) -> None:
        """Client types of one meeting (or of several whose typed never exceed attendees)."""
        typed = 0
        for client, count in clients.items():
            self._clients[client_label(client)] += count
            typed += count
        if attendees > typed:
            self._clients["unknown"] += attendees - typed

    def figures(self) -> BbbFigures:
        return BbbFigures(
            meetings=self.meetings,
            breakout_rooms=self._breakouts,
            participants=self._sums["participants"],
            moderators=self._sums["moderators"],
            listeners=self._sums["listeners"],
            voice_participants=self._sums["voice_participants"],
            video_participants=self._sums["video_participants"],
            participants_max=self._max,
            video_fanout=self._fanout,
            clients=tuple(sorted(self._clients.items())),
            sizes=tuple(self._sizes),
            origins=tuple(sorted(self._origins.items())),
            meeting_ids=frozenset(self._ids),
            breakout_ids=frozenset(self._breakout_ids),
        )


def element_text(raw: bytes) -> str:
    """Element text as an XML parser reports it: line ends normalised, references resolved.

    For the scans, which read raw bytes libxml2 has already proven well-formed."""
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


def utf8_declared(declaration: bytes | None) -> bool:
    """Whether an XML declaration's encoding (if any) is UTF-8."""
    if not declaration:
        return True
    found = _ENCODING.search(declaration)
    return found is None or found.group(1).lower().replace(b"_", b"-") in (b"utf-8", b"utf8")
