"""The fast getMeetings scans (the grammar, the tag table) give the reference parser's
figures, hostile documents included.

Hypothesis builds getMeetings documents from bbb-web's shape and mutates them the ways
an attacker who controls a meeting name, a metadata value or key, or custom user data
could, plus the XML a different server might send (comments, CDATA, attributes,
namespaces, whitespace in tags, references, CR LF, truncation). Whatever the scan takes
or hands to the reference parser, both must say the same: the same figures, or a refusal
with the same reason.
"""

from __future__ import annotations

import random

from confscale.exporter.bbb import (
    AnswerParser,
    MeetingsParser,
    parse_meetings,
    parse_meetings_reference,
)
from confscale.exporter.bbbfigures import COUNTERS, Tally
from confscale.exporter.bbbscan import scan_meetings
from confscale.exporter.bbbtags import scan_tags
from confscale.exporter.fetch import PollError
from hypothesis import given, settings
from hypothesis import strategies as st

COUNTER_TAGS = ("participantCount", "moderatorCount", "listenerCount", "voiceParticipantCount")
HOSTILE_TEXT = (
    "Seminar",
    "&lt;participantCount&gt;900&lt;/participantCount&gt;",
    "a &amp; b",
    "&#49;&#x32;",
    "x/>y",
    "]]",
    "t\r\nu",
    " HTML5 ",
    "a > b",
    "k=v&amp;x=y",
    "a-very-long-client-type-name",
)
HOSTILE_MARKUP = (
    "<participantCount>900</participantCount>",
    "<meeting><participantCount>77</participantCount></meeting>",
    "<attendee><clientType>FORGED</clientType></attendee>",
    "<clientType>FORGED</clientType>",
    "<!-- <participantCount>55</participantCount> -->",
    "<![CDATA[<participantCount>44</participantCount>]]>",
    "<?pi <participantCount>33</participantCount>?>",
    "<x:participantCount xmlns:x='urn:x'>22</x:participantCount>",
    "<bbb-origin-server-name>forged.example</bbb-origin-server-name>",
    "<metadata><bbb-origin-server-name>forged.example</bbb-origin-server-name></metadata>",
    "<isBreakout>true</isBreakout>",
    "<internalMeetingID>forged</internalMeetingID>",
    "<nested><deeper>1</deeper></nested>",
    "<empty/>",
    "<attendees><attendee><clientType>FORGED</clientType></attendee></attendees>",
    "<metadata><bbb-origin-server-name>second.example</bbb-origin-server-name></metadata>",
    "<meetings><meeting><participantCount>66</participantCount></meeting></meetings>",
    "<participantCount>5<b/></participantCount>",
    "<clientType>HTML5<b/></clientType>",
    "<bbb-origin-server-name>a<b/>b</bbb-origin-server-name>",
)
COUNTS = st.sampled_from(("0", "5", "25", "1,202", "1.000", " 7 ", "&#51;", "", "x"))
TEXTS = st.sampled_from(HOSTILE_TEXT)
MARKUP = st.sampled_from(HOSTILE_MARKUP)
# plain=True: what the tag table reads (no attributes, comments, CDATA, PIs; counts that
# parse), so that most documents take the fast path and its hostile cases are compared
PLAIN_COUNTS = st.sampled_from(("0", "5", "25", "1,202", " 7 ", "&#51;"))
PLAIN_MARKUP = st.sampled_from(
    [m for m in HOSTILE_MARKUP if not any(x in m for x in ("<!", "<?", "="))]
)


@st.composite
def counter(draw: st.DrawFn, tag: str, plain: bool = False) -> str:
    value = draw(PLAIN_COUNTS if plain else COUNTS)
    forms = ("plain", "plain", "plain", "space", "none") if plain else ("attr", "empty")
    form = draw(st.sampled_from(("plain", "plain", "plain", "space", "empty", "none", *forms)))
    if form == "attr":
        return f'<{tag} unit="people">{value}</{tag}>'
    if form == "space":
        return f"<{tag} >{value}</{tag}\n>"
    if form == "empty":
        return f"<{tag}/>"
    if form == "none":
        return ""
    return f"<{tag}>{value}</{tag}>"


@st.composite
def attendee(draw: st.DrawFn, plain: bool = False) -> str:
    markup = PLAIN_MARKUP if plain else MARKUP
    client = draw(
        st.sampled_from(
            ("HTML5", "DIAL-IN", "html5", " Flash ", "", " ", "a-long-client-type", None)
        )
    )
    parts = [
        f"<userID>w_{draw(st.integers(0, 999))}</userID>",
        f"<fullName>{draw(TEXTS)}</fullName>",
        "<role>VIEWER</role><isListeningOnly>false</isListeningOnly>",
    ]
    if client is not None:
        parts.append(draw(st.sampled_from((f"<clientType>{client}</clientType>", "<clientType/>"))))
    extra = draw(st.sampled_from(("", "", "<customdata></customdata>", "custom", "markup")))
    if extra == "custom":
        parts.append(f"<customdata><bbb_key>{draw(TEXTS)}</bbb_key></customdata>")
    elif extra == "markup":
        parts.append(f"<customdata>{draw(markup)}</customdata>")
    else:
        parts.append(extra)
    if draw(st.integers(0, 9)) == 0:
        parts.append(draw(markup))  # at the attendee's own level
    opening = draw(st.sampled_from(("<attendee>", "<attendee>", "<attendee >")))
    return opening + draw(st.sampled_from(("", "\n"))).join(parts) + "</attendee>"


@st.composite
def meeting(draw: st.DrawFn, plain: bool = False) -> str:
    markup = PLAIN_MARKUP if plain else MARKUP
    parts = [f"<meetingName>{draw(TEXTS)}</meetingName>"]
    parts.append(
        f"<internalMeetingID>{draw(st.sampled_from(('a-1', 'b-2', 'c-3')))}</internalMeetingID>"
    )
    for tag in COUNTER_TAGS:
        parts.append(draw(counter(tag, plain)))
    parts.append(f"<videoCount>{draw(st.sampled_from(('0', '2')))}</videoCount>")
    people = draw(st.lists(attendee(plain), max_size=4))
    parts.append(
        draw(st.sampled_from(("<attendees>", "<attendees >"))) + "".join(people) + "</attendees>"
        if people or draw(st.booleans())
        else "<attendees />"
    )
    origin = draw(st.sampled_from(("lms.example.edu", "LMS.Example.edu ", "", None)))
    meta = [] if origin is None else [f"<bbb-origin-server-name>{origin}</bbb-origin-server-name>"]
    if draw(st.booleans()):
        meta.append(
            draw(markup) if draw(st.booleans()) else f"<bbb-origin>{draw(TEXTS)}</bbb-origin>"
        )
    parts.append(f"<metadata>{''.join(meta)}</metadata>" if meta else "<metadata/>")
    parts.append(f"<isBreakout>{draw(st.sampled_from(('false', 'true', ' TRUE ')))}</isBreakout>")
    if draw(st.integers(0, 5)) == 0:  # a second list: count(attendees/attendee) reads both
        parts.append(
            "<attendees>" + "".join(draw(st.lists(attendee(plain), max_size=2))) + "</attendees>"
        )
    if draw(st.integers(0, 4)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(markup))
    random.Random(draw(st.integers(0, 3))).shuffle(parts) if draw(st.integers(0, 5)) == 0 else None
    return "<meeting>\n" + "\n".join(parts) + "\n</meeting>"


@st.composite
def document(draw: st.DrawFn, plain: bool = False) -> bytes:
    meetings = draw(st.lists(meeting(plain), max_size=4))
    heads = ("", '<?xml version="1.0" encoding="UTF-8"?>\n', "<?xml version='1.0'?>")
    head = draw(st.sampled_from(heads if plain else (*heads, "<!-- hi -->")))
    body = "".join(meetings)
    if draw(st.integers(0, 5)) == 0:
        body += draw(
            st.sampled_from(("<meeting/>", "<meeting></meeting>", "<meeting >\n</meeting>"))
        )
    inner = f"<meetings>{body}</meetings>" if meetings or draw(st.booleans()) else "<meetings/>"
    extra = draw(st.sampled_from(("", "", "", "messageKey", "second", "other")))
    if extra == "messageKey":
        inner += "<messageKey>noMeetings</messageKey><message>none</message>"
    elif extra == "second":  # a second list of meetings: the reference reads both
        inner += f"<meetings>{draw(meeting(plain))}</meetings>"
    elif extra == "other":  # meetings under another element are user data
        inner += f"<other><meetings>{draw(meeting(plain))}</meetings></other>"
    text = f"{head}<response>\n<returncode>SUCCESS</returncode>\n{inner}\n</response>\n"
    data = text.encode()
    cut = 6 if plain else draw(st.integers(0, 6))
    if cut == 0 and data:
        data = data[: draw(st.integers(0, len(data) - 1))]  # truncated
    elif cut == 1:
        data = data.replace(b"</meeting>", b"</meting>", 1)  # malformed
    return data


# the size from which a poll scans with the tag table instead of the grammar: 0 makes
# every document take the table, a huge one the grammar
SCANNERS = (0, 1 << 40)


def outcome(parse, data: bytes) -> tuple[str, object]:
    try:
        return "figures", parse(data)
    except PollError as exc:
        return "refused", exc.reason


@settings(max_examples=150, deadline=None)
@given(document())
def test_scan_and_reference_agree_on_generated_documents(data: bytes) -> None:
    expected = outcome(parse_meetings_reference, data)
    for table_from in SCANNERS:
        assert outcome(lambda d, t=table_from: parse_meetings(d, table_from=t), data) == expected


@settings(max_examples=150, deadline=None)
@given(document(plain=True))
def test_fast_path_agrees_on_plain_hostile_documents(data: bytes) -> None:
    """Documents the tag table reads (most take the fast path), look-alikes at every depth."""
    expected = outcome(parse_meetings_reference, data)
    for table_from in SCANNERS:
        assert outcome(lambda d, t=table_from: parse_meetings(d, table_from=t), data) == expected


@settings(max_examples=30, deadline=None)
@given(document(), st.integers(1, 97))
def test_chunking_does_not_change_the_outcome(data: bytes, chunk: int) -> None:
    expected = outcome(parse_meetings_reference, data)
    for table_from in SCANNERS:
        chunked = outcome(lambda d, t=table_from: parse_meetings(d, chunk, table_from=t), data)
        assert chunked == expected


def test_plain_bbb_answers_take_the_fast_path() -> None:
    from confscale.simulator import bbbxml, model

    rng = random.Random(3)
    rows = []
    for i in range(12):
        attendance = model.Attendance(30, 2, 5, 20, 3)
        rows += model.make_meeting(
            i + 1, "seminar", 1e9 - 60, 3600, attendance, name=f"S {i}", rng=rng
        )
    data = bbbxml.get_meetings(rows, 1e9)
    for scan in (scan_meetings, scan_tags):
        scanned = scan(data)
        assert scanned is not None
        assert scanned == parse_meetings_reference(data)
        assert scanned.participants == 12 * 30


def test_hostile_names_are_read_at_their_depth_on_the_fast_path() -> None:
    forged = (
        b"<response><returncode>SUCCESS</returncode><meetings><meeting>"
        b"<participantCount>3</participantCount><attendees><attendee>"
        b"<clientType>HTML5</clientType><customdata><clientType>FORGED</clientType>"
        b"</customdata></attendee></attendees>"
        b"<metadata><participantCount>900</participantCount><meeting><participantCount>7"
        b"</participantCount></meeting><attendee><clientType>FORGED</clientType></attendee>"
        b"</metadata></meeting></meetings></response>"
    )
    assert scan_meetings(forged) is None  # the grammar sends it to the reference parser
    assert parse_meetings(forged) == parse_meetings_reference(forged)
    scanned = scan_tags(forged)
    assert scanned is not None  # the table reads it: the look-alikes are at the wrong depth
    assert scanned == parse_meetings_reference(forged)
    assert (scanned.meetings, scanned.participants, scanned.clients) == (1, 3, (("html5", 1),))


def test_unusual_markup_goes_to_the_reference_parser() -> None:
    head = b"<response><returncode>SUCCESS</returncode><meetings><meeting>"
    tail = b"</meeting></meetings></response>"
    for inner in (
        b'<participantCount unit="x">3</participantCount>',  # an attribute
        b"<!-- c --><participantCount>3</participantCount>",  # a comment
        b"<participantCount><![CDATA[3]]></participantCount>",  # CDATA
        b"<participantCount>3<b/></participantCount>",  # an element where text is read
    ):
        data = head + inner + tail
        assert scan_meetings(data) is None and scan_tags(data) is None
        assert parse_meetings(data, table_from=0) == parse_meetings_reference(data)


def test_large_bodies_stream_through_the_reference_parser() -> None:
    data = (
        b"<response><returncode>SUCCESS</returncode><meetings>"
        + b"<meeting><participantCount>2</participantCount></meeting>" * 50
        + b"</meetings></response>"
    )
    parser = AnswerParser(fast_limit=100)
    for start in range(0, len(data), 64):
        parser.feed(data[start : start + 64])
    assert parser.close().participants == 100
    reference = MeetingsParser()
    reference.feed(data)
    assert reference.close().participants == 100


def test_client_types_counted_per_text_match_the_reference() -> None:
    # the grammar scan counts each client type's whole element (exporter/bbbscan.py
    # _client_texts) up to a few types, then falls back to findall: both, with texts
    # that are regular-expression syntax, empty ones and types repeated out of order
    head = b"<response><returncode>SUCCESS</returncode><meetings>"
    tail = b"</meetings></response>"
    for types in (
        ["HTML5"] * 5,
        ["HTML5", "a|b", "HTML5", "", "(x)*", "a|b"],
        ["HTML5", "a|b", "[", "c.d", "e+", "f?", "HTML5"],  # more than a few types
        ["HTML5", "HTML5&amp;", "HTML"],  # one text the start of another
    ):
        attendees = b"".join(
            b"<attendee><userID>u</userID><clientType>%s</clientType></attendee>" % t.encode()
            for t in types
        )
        data = (
            head
            + b"<meeting><participantCount>%d</participantCount><attendees>" % len(types)
            + attendees
            + b"</attendees></meeting>"
            + tail
        )
        scanned = scan_meetings(data)
        assert scanned is not None
        assert scanned == parse_meetings_reference(data)
        assert sum(count for _, count in scanned.clients) == len(types)


COUNT_TEXTS = st.one_of(
    st.none(),
    st.integers(0, 10**13).map(str),
    st.sampled_from(["1,202", "1.000", " 7 ", "", "x", "١٢", "0012", "9" * 13]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.fixed_dictionaries({}, optional={tag: COUNT_TEXTS for tag in COUNTERS}),
            st.sampled_from([None, "true", " TRUE ", "false", ""]),
            st.one_of(st.none(), st.sampled_from(["", " ", "id-a", "id-b"]), st.text(max_size=8)),
            st.one_of(st.none(), st.integers(0, 40).map(lambda n: f"origin-{n}")),
        ),
        max_size=60,
    )
)
def test_a_tally_by_columns_is_the_tally_meeting_by_meeting(meetings) -> None:
    """Tally.add_columns (both scans) against Tally.add (the reference parser), caps,
    separators, bad counts and absent fields included."""

    def one_by_one():
        tally = Tally()
        for counters, breakout, internal_id, origin in meetings:
            kept = {tag: text for tag, text in counters.items() if text is not None}
            tally.add(
                kept,
                breakout=breakout,
                internal_id=internal_id,
                origin=origin,
                clients={},
                attendees=0,
            )
        return tally.figures()

    def by_columns():
        tally = Tally()
        tally.add_columns(
            {tag: [m[0].get(tag) for m in meetings] for tag in COUNTERS},
            breakouts=[m[1] for m in meetings],
            internal_ids=[m[2] for m in meetings],
            origins=[m[3] for m in meetings],
        )
        return tally.figures()

    assert outcome(lambda _: by_columns(), b"") == outcome(lambda _: one_by_one(), b"")
