"""The fast getMeetings scan of larger answers: a table of every tag, built by numpy, over
bytes libxml2 has validated (exporter/bbbscan.py's grammar is faster below
``bbb.TABLE_FROM``: numpy's fixed cost per call weighs on a small answer).

libxml2 (through lxml, with no tree and no callbacks) proves the bytes are well-formed
XML without a DTD. In such a document text holds no ``<``, so when it also holds no
comment, CDATA section or processing instruction (no ``<!``, no ``<?`` past the XML
declaration) every ``<`` starts a tag; when no tag has an attribute (no ``=`` between a
``<`` and the next ``>``) a tag ends at the first ``>`` after its ``<`` and its name is
the bytes up to a blank, ``/`` or ``>``. Then, in C loops over the whole answer:

- each tag is a start tag, an end tag (``</``) or an empty-element tag (``/>``), and the
  number of elements open before it is a running sum: every tag's depth;
- a tag's parent is the last start tag one level up before it;
- names are compared on a window of bytes per tag, only for the few depths that matter.

So the scan finds exactly the elements the reference parser (``bbb.MeetingsParser``)
reads — ``response/meetings/meeting``, each meeting's first counter, ``isBreakout``,
``internalMeetingID`` and ``metadata`` child, the origin key in that metadata, every
``attendees/attendee/clientType`` — wherever a hostile meeting name, metadata key or
custom-data key puts a look-alike: a ``<participantCount>`` in metadata is one level
too deep, a ``<meeting>`` in metadata has the wrong parent. An answer of another shape
(attributes or namespaces, comments, CDATA, a declaration other than UTF-8, FAILED,
getMeetingInfo's one meeting on the root, elements where a figure's text is expected)
returns None and the caller runs the reference parser: an unusual answer costs time,
never a wrong figure. The property test (tests/test_exporter_scan.py) compares both on
generated, hostile documents.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import numpy.typing as npt
from confscale.exporter.bbbfigures import (
    COUNTERS,
    ORIGIN_KEY,
    BbbFigures,
    Tally,
    element_text,
    utf8_declared,
)

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_LT, _GT, _EQ, _SLASH, _BANG, _QUESTION = (ord(c) for c in "<>=/!?")
_NAME_END = np.zeros(256, dtype=bool)  # the bytes that may end a name in a plain tag
_NAME_END[list(b" \t\r\n/>")] = True
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_PAD = 24  # zero bytes after the document: every name offset has three 8-byte words
_DECLARATION = re.compile(rb"<\?xml(?P<decl>[^>]*)\?>")


class _Names:
    """Element names of 8 to 24 bytes, recognised among many tags in a few array passes:
    the name's first 8 bytes as an integer pick the candidate, the next 16 and the byte
    after the name confirm it."""

    def __init__(self, *names: str) -> None:
        raw = [name.encode() for name in names]
        if any(not 8 <= len(r) <= 24 for r in raw) or len({r[:8] for r in raw}) < len(raw):
            raise ValueError("names of 8 to 24 bytes with distinct first 8 bytes")
        first = np.array([int.from_bytes(r[:8], "little") for r in raw], dtype=np.uint64)
        self.order = np.argsort(first)
        self.first = first[self.order]
        words = [[r[8:16], r[16:24]] for r in raw]
        self.second = np.array([int.from_bytes(w[0], "little") for w in words], dtype=np.uint64)
        self.third = np.array([int.from_bytes(w[1], "little") for w in words], dtype=np.uint64)
        self.second_mask = _LOW_BYTES[[len(w[0]) for w in words]]
        self.third_mask = _LOW_BYTES[[len(w[1]) for w in words]]
        self.length = np.array([len(r) for r in raw], dtype=np.int64)
        self.index = {name: i for i, name in enumerate(names)}


# a meeting's single-valued children the figures read (the first one counts, as findtext)
_FIELDS = (*COUNTERS, "isBreakout", "internalMeetingID")
_MEETING_CHILDREN = _Names(*_FIELDS, "metadata", "attendees")
_GRANDCHILDREN = _Names("attendee", ORIGIN_KEY)
_CLIENT_TYPE = _Names("clientType")
_TAG_NAME = re.compile(rb"</?([^\s/>]*)")


class _Tags:
    """Every tag of a document: where it starts and ends, its kind and depth."""

    def __init__(
        self, doc: bytes, padded: bytes, lt: Ints, gt: Ints, marker: npt.NDArray[np.uint8]
    ) -> None:
        self.doc = doc
        self.data = np.frombuffer(padded, dtype=np.uint8)
        # the 8 bytes from each offset on, as one little-endian integer (a view, no copy)
        self._window = np.ndarray((len(doc) + 16,), dtype="<u8", buffer=padded, strides=(1,))
        self.start = lt  # offset of each tag's "<"
        self.end = gt  # offset of each tag's ">"
        self.closing = marker == _SLASH  # marker: the byte after each "<"
        self.empty = self.data[gt - 1] == _SLASH
        # +1 a start tag, -1 an end tag, 0 an empty-element tag
        step = 1 - 2 * self.closing.view(np.int8) - self.empty.view(np.int8)
        self.depth = np.cumsum(step, dtype=np.int32) - step  # elements open before the tag
        self.plain = b"&" not in doc and b"\r" not in doc  # texts need no _text
        self._opening: dict[int, Ints] = {}
        self._grandchildren: Ints | None = None

    def grandchildren(self) -> Ints:
        """``names(opening(4), _GRANDCHILDREN)``, computed once."""
        if self._grandchildren is None:
            self._grandchildren = self.names(self.opening(4), _GRANDCHILDREN)
        return self._grandchildren

    def opening(self, depth: int) -> Ints:
        """Indices of the start tags (empty-element tags included) at ``depth``."""
        found = self._opening.get(depth)
        if found is None:
            found = self._opening[depth] = np.flatnonzero((self.depth == depth) & ~self.closing)
        return found

    def names(self, tags: Ints, names: _Names) -> Ints:
        """For each start tag in ``tags``: the index of its name in ``names``, or -1."""
        at = self.start[tags] + 1
        first = self._window[at]
        slot = np.minimum(np.searchsorted(names.first, first), names.first.size - 1)
        code = np.where(names.first[slot] == first, names.order[slot], -1)
        hit = np.flatnonzero(code >= 0)
        if hit.size:
            c, where = code[hit], at[hit]
            confirmed = (
                ((self._window[where + 8] & names.second_mask[c]) == names.second[c])
                & ((self._window[where + 16] & names.third_mask[c]) == names.third[c])
                & _NAME_END[self.data[where + names.length[c]]]
            )
            code[hit[~confirmed]] = -1
        return code

    def name_of(self, tag: int) -> bytes:
        """One tag's element name (for the few tags near the root)."""
        found = _TAG_NAME.match(self.doc, int(self.start[tag]))
        return found.group(1) if found is not None else b""

    def within(self, tags: Ints, parents: Ints, depth: int) -> Ints:
        """Those of ``tags`` (at ``depth + 1``) whose parent is one of ``parents``."""
        chosen = np.zeros(self.start.size, dtype=bool)
        chosen[parents] = True
        return tags[chosen[self.parents(tags, depth)]]

    def parents(self, tags: Ints, depth: int) -> Ints:
        """The parent of each tag in ``tags`` (all at ``depth + 1``): the last start tag
        at ``depth`` before it (an empty-element tag there is never followed by a child)."""
        above = self.opening(depth)
        return above[np.searchsorted(above, tags) - 1]

    def leaves(self, tags: Ints) -> bool:
        """True when none of the elements ``tags`` has a child element."""
        inner = tags[~self.empty[tags]]
        return bool(self.closing[inner + 1].all())

    def text_counts(self, tags: Ints) -> Counter[str]:
        """How many of the elements ``tags`` (without children, not empty) have each text:
        texts of up to 8 bytes are told apart by their bytes as one integer (XML text
        holds no NUL, so the zero padding cannot make two texts equal), longer ones one by
        one."""
        starts = self.end[tags] + 1
        lengths = self.start[tags + 1] - starts
        short = lengths <= 8
        keys = self._window[starts[short]] & _LOW_BYTES[lengths[short]]
        counts: Counter[str] = Counter()
        values, numbers = np.unique(keys, return_counts=True)
        for value, number in zip(values.tolist(), numbers.tolist(), strict=True):
            counts[element_text(value.to_bytes(8, "little").rstrip(b"\0"))] += number
        doc = self.doc
        for s, e in zip(starts[~short].tolist(), (starts + lengths)[~short].tolist(), strict=True):
            counts[element_text(doc[s:e])] += 1
        return counts

    def texts(self, tags: Ints) -> list[str]:
        """The elements' texts (of elements without children: all of their content)."""
        empty = self.empty[tags]
        starts = np.where(empty, 0, self.end[tags] + 1).tolist()
        ends = np.where(empty, 0, self.start[np.minimum(tags + 1, self.start.size - 1)]).tolist()
        doc = self.doc
        if self.plain:
            return [doc[s:e].decode() for s, e in zip(starts, ends, strict=True)]
        return [element_text(doc[s:e]) for s, e in zip(starts, ends, strict=True)]


def _table(doc: bytes) -> _Tags | None:
    """The tag table, or None when some ``<`` is not a plain tag (see the module)."""
    padded = doc + bytes(_PAD)
    data = np.frombuffer(padded, dtype=np.uint8)[: len(doc)]
    lt = np.flatnonzero(data == _LT)
    gts = np.flatnonzero(data == _GT)
    if lt.size < 2 or gts.size == 0 or lt[-1] > gts[-1]:
        return None
    head = 0
    if data[lt[0] + 1] == _QUESTION:
        declaration = _DECLARATION.match(doc)
        if declaration is None or not utf8_declared(declaration.group("decl")):
            return None
        head = 1
    elif doc[: lt[0]].strip(b" \t\r\n"):
        return None  # a byte-order mark or another encoding: not read here
    if head:
        lt, gts = lt[1:], gts[1:]
    marker = data[lt + 1]
    if (b"!" in doc or b"?" in doc) and ((marker == _BANG) | (marker == _QUESTION)).any():
        return None  # a comment, CDATA section or processing instruction
    if gts.size == lt.size and (lt < gts).all() and (gts[:-1] < lt[1:]).all():
        gt = gts  # one ">" per "<", in turn: no ">" in text or attribute values
    else:
        gt = gts[np.searchsorted(gts, lt)]  # the first ">" after each "<"
    if b"=" in doc:
        equals = np.flatnonzero(data == _EQ)
        owner = np.searchsorted(lt, equals) - 1  # the last "<" before each "="
        inside = (owner >= 0) & (equals < gt[np.maximum(owner, 0)])
        if inside.any():
            return None  # an attribute (or a namespace declaration)
    return _Tags(doc, padded, lt, gt, marker)


def scan_tags(document: bytes) -> BbbFigures | None:
    """The figures of a well-formed getMeetings document, or None if it is not plain."""
    tags = _table(document)
    if tags is None:
        return None
    if tags.closing[0] or tags.empty[0] or tags.name_of(0) != b"response":
        return None
    top = tags.opening(1)
    if top.size == 0 or tags.name_of(top[0]) != b"returncode" or not tags.leaves(top[:1]):
        return None
    if tags.texts(top[:1])[0].strip() != "SUCCESS":
        return None  # FAILED and anything else: the reference says why
    if any(tags.name_of(tag) == b"participantCount" for tag in top.tolist()):
        return None  # getMeetingInfo's shape: one meeting's fields on the root
    meetings = tags.opening(2)
    tally = Tally()
    if meetings.size == 0:
        return tally.figures()
    holders = np.unique(tags.parents(meetings, 1)).tolist()
    if any(tags.name_of(tag) != b"meetings" for tag in holders) or any(
        tags.name_of(tag) != b"meeting" for tag in meetings.tolist()
    ):
        return None  # something else under <meetings>, or a meeting in another element
    children = tags.opening(3)  # every child of a meeting (every depth-2 tag is one)
    owner = np.searchsorted(meetings, children) - 1
    codes = tags.names(children, _MEETING_CHILDREN)
    fields = _fields(tags, children, owner, codes, meetings.size)
    origins = _origins(tags, children, owner, codes, meetings.size)
    clients = _clients(tags, children, owner, codes, meetings.size)
    if fields is None or origins is None or clients is None:
        return None
    tally.add_columns(
        {tag: fields[tag] for tag in COUNTERS},
        breakouts=fields["isBreakout"],
        internal_ids=fields["internalMeetingID"],
        origins=origins,
    )
    named, unknown = clients
    tally.count_clients(named, 0)
    tally.count_clients({}, unknown)
    return tally.figures()


def _first(found: Ints, key: Ints) -> tuple[Ints, Ints]:
    """(keys, tags): for each key the first tag of ``found`` (in document order)."""
    keys, first = np.unique(key, return_index=True)
    return keys, found[first]


def _fields(
    tags: _Tags, children: Ints, owner: Ints, codes: Ints, meetings: int
) -> dict[str, list[str | None]] | None:
    """Per name in _FIELDS the text of each meeting's first child of that name (None: no
    such child); None if one of those has element children (findtext reads the text
    before them: not read here)."""
    is_field = (codes >= 0) & (codes < len(_FIELDS))
    keys, chosen = _first(children[is_field], owner[is_field] * len(_FIELDS) + codes[is_field])
    if not tags.leaves(chosen):
        return None
    columns: list[list[str | None]] = [[None] * meetings for _ in _FIELDS]
    for key, text in zip(keys.tolist(), tags.texts(chosen), strict=True):
        columns[key % len(_FIELDS)][key // len(_FIELDS)] = text
    return dict(zip(_FIELDS, columns, strict=True))


def _origins(
    tags: _Tags, children: Ints, owner: Ints, codes: Ints, meetings: int
) -> list[str | None] | None:
    """Per meeting the text of the origin key in its first <metadata> (None: no such key)."""
    origins: list[str | None] = [None] * meetings
    is_metadata = codes == _MEETING_CHILDREN.index["metadata"]
    if not is_metadata.any():
        return origins
    holders, metadata = _first(children[is_metadata], owner[is_metadata])
    below = tags.opening(4)
    keys = below[tags.grandchildren() == _GRANDCHILDREN.index[ORIGIN_KEY]]
    keys = tags.within(keys, metadata, 3)
    if keys.size == 0:
        return origins
    parents, chosen = _first(keys, tags.parents(keys, 3))
    if not tags.leaves(chosen):
        return None
    meeting_of = dict(zip(metadata.tolist(), holders.tolist(), strict=True))
    for parent, text in zip(parents.tolist(), tags.texts(chosen), strict=True):
        origins[meeting_of[parent]] = text
    return origins


def _clients(
    tags: _Tags, children: Ints, owner: Ints, codes: Ints, meetings: int
) -> tuple[Counter[str], int] | None:
    """Client-type texts of every attendees/attendee/clientType, and the attendees beyond
    each meeting's typed ones (counted as unknown, as ``Tally.count_clients`` does)."""
    lists = children[codes == _MEETING_CHILDREN.index["attendees"]]
    if lists.size == 0:
        return Counter(), 0
    below = tags.opening(4)
    people = below[tags.grandchildren() == _GRANDCHILDREN.index["attendee"]]
    people = tags.within(people, lists, 3)
    if people.size == 0:
        return Counter(), 0
    fifth = tags.opening(5)
    types = tags.within(fifth[tags.names(fifth, _CLIENT_TYPE) == 0], people, 4)
    if not tags.leaves(types):
        return None  # text() of a clientType with children: the reference reads that
    # an element with no content has no text node: not a typed client
    types = types[~tags.empty[types]]
    types = types[tags.start[types + 1] > tags.end[types] + 1]
    named = tags.text_counts(types)
    attendees = np.bincount(_meeting_of(people, children, owner), minlength=meetings)
    typed = np.bincount(_meeting_of(types, children, owner), minlength=meetings)
    return named, int(np.maximum(attendees - typed, 0).sum())


def _meeting_of(tags: Ints, children: Ints, owner: Ints) -> Ints:
    """The meeting of descendants of meeting children: that of the last child before."""
    return owner[np.searchsorted(children, tags) - 1]
