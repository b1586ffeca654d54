"""The fast getMeetings scan gives the reference parser's figures, hostile documents included.

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
from confscale.exporter.bbbscan import scan_meetings
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
)
COUNTS = st.sampled_from(("0", "5", "25", "1,202", "1.000", " 7 ", "&#51;", "", "x"))
TEXTS = st.sampled_from(HOSTILE_TEXT)
MARKUP = st.sampled_from(HOSTILE_MARKUP)


@st.composite
def counter(draw: st.DrawFn, tag: str) -> str:
    value = draw(COUNTS)
    form = draw(st.sampled_from(("plain", "plain", "plain", "attr", "space", "empty", "none")))
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
def attendee(draw: st.DrawFn) -> str:
    client = draw(st.sampled_from(("HTML5", "DIAL-IN", "html5", " Flash ", "", None)))
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
        parts.append(f"<customdata>{draw(MARKUP)}</customdata>")
    else:
        parts.append(extra)
    opening = draw(st.sampled_from(("<attendee>", "<attendee>", "<attendee >")))
    return opening + draw(st.sampled_from(("", "\n"))).join(parts) + "</attendee>"


@st.composite
def meeting(draw: st.DrawFn) -> str:
    parts = [f"<meetingName>{draw(TEXTS)}</meetingName>"]
    parts.append(
        f"<internalMeetingID>{draw(st.sampled_from(('a-1', 'b-2', 'c-3')))}</internalMeetingID>"
    )
    for tag in COUNTER_TAGS:
        parts.append(draw(counter(tag)))
    parts.append(f"<videoCount>{draw(st.sampled_from(('0', '2')))}</videoCount>")
    people = draw(st.lists(attendee(), max_size=4))
    parts.append(
        draw(st.sampled_from(("<attendees>", "<attendees >"))) + "".join(people) + "</attendees>"
        if people or draw(st.booleans())
        else "<attendees />"
    )
    origin = draw(st.sampled_from(("lms.example.edu", "LMS.Example.edu ", "", None)))
    meta = [] if origin is None else [f"<bbb-origin-server-name>{origin}</bbb-origin-server-name>"]
    if draw(st.booleans()):
        meta.append(
            draw(MARKUP) if draw(st.booleans()) else f"<bbb-origin>{draw(TEXTS)}</bbb-origin>"
        )
    parts.append(f"<metadata>{''.join(meta)}</metadata>" if meta else "<metadata/>")
    parts.append(f"<isBreakout>{draw(st.sampled_from(('false', 'true', ' TRUE ')))}</isBreakout>")
    if draw(st.integers(0, 4)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(MARKUP))
    random.Random(draw(st.integers(0, 3))).shuffle(parts) if draw(st.integers(0, 5)) == 0 else None
    return "<meeting>\n" + "\n".join(parts) + "\n</meeting>"


@st.composite
def document(draw: st.DrawFn) -> bytes:
    meetings = draw(st.lists(meeting(), max_size=4))
    head = draw(
        st.sampled_from(
            ("", '<?xml version="1.0" encoding="UTF-8"?>\n', "<?xml version='1.0'?>", "<!-- hi -->")
        )
    )
    body = "".join(meetings)
    inner = f"<meetings>{body}</meetings>" if meetings or draw(st.booleans()) else "<meetings/>"
    text = f"{head}<response>\n<returncode>SUCCESS</returncode>\n{inner}\n</response>\n"
    data = text.encode()
    cut = draw(st.integers(0, 6))
    if cut == 0 and data:
        data = data[: draw(st.integers(0, len(data) - 1))]  # truncated
    elif cut == 1:
        data = data.replace(b"</meeting>", b"</meting>", 1)  # malformed
    return data


def outcome(parse, data: bytes) -> tuple[str, object]:
    try:
        return "figures", parse(data)
    except PollError as exc:
        return "refused", exc.reason


@settings(max_examples=150, deadline=None)
@given(document())
def test_scan_and_reference_agree_on_generated_documents(data: bytes) -> None:
    assert outcome(parse_meetings, data) == outcome(parse_meetings_reference, data)


@settings(max_examples=30, deadline=None)
@given(document(), st.integers(1, 97))
def test_chunking_does_not_change_the_outcome(data: bytes, chunk: int) -> None:
    expected = outcome(parse_meetings_reference, data)
    assert outcome(lambda d: parse_meetings(d, chunk_size=chunk), data) == expected


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
    scanned = scan_meetings(data)
    assert scanned is not None
    assert scanned == parse_meetings_reference(data)
    assert scanned.participants == 12 * 30


def test_hostile_names_send_the_answer_to_the_reference_parser() -> None:
    forged = (
        b"<response><returncode>SUCCESS</returncode><meetings><meeting>"
        b"<participantCount>3</participantCount><attendees></attendees>"
        b"<metadata><participantCount>900</participantCount></metadata>"
        b"</meeting></meetings></response>"
    )
    assert scan_meetings(forged) is None
    assert parse_meetings(forged).participants == 3


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
