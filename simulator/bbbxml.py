"""bbb-web shaped XML answers (element names and order as in bbb-web's templates).

Numbers are plain by default; ``separator`` renders counts with thousands separators
(``1,202`` / ``1.000``) the way some real bbb-web versions and locales do.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from types import MappingProxyType
from xml.sax.saxutils import escape

from confscale.simulator.model import Meeting

FIRST = (
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Klara",
    "Leon",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Rosa",
    "Samir",
    "Tara",
    "Yusuf",
)
LAST = (
    "Schmidt",
    "Meyer",
    "Garcia",
    "Nowak",
    "Rossi",
    "Dubois",
    "Jensen",
    "Kowalski",
    "Silva",
    "Novak",
    "Weber",
    "Fischer",
    "Khan",
    "Larsen",
    "Moreau",
    "Horvat",
)
MESSAGES = MappingProxyType(
    {
        "checksumError": "Checksums do not match",
        "noMeetings": "no meetings were found on this server",
        "notFound": "We could not find a meeting with that meeting ID - perhaps the meeting is "
        "not yet running?",
        "invalidPassword": "The supplied password is incorrect.",
        "missingParamMeetingID": "You must specify a meeting ID for the meeting.",
        "missingParamFullName": "You must specify a name for the attendee who will be joining "
        "the meeting.",
        "sentEndMeetingRequest": "A request to end the meeting was sent.  Please wait a few "
        "seconds, and then use the getMeetingInfo or isMeetingRunning "
        "API calls to verify that it was ended.",
        "duplicateWarning": "This conference was already in existence and may currently be in "
        "progress.",
        "successfullyJoined": "You have joined successfully.",
        "unsupportedRequest": "This request is not supported.",
        "idNotUnique": "A meeting already exists with that meeting ID.  Please use a different "
        "meeting ID.",
    }
)


@dataclass(frozen=True)
class Attendee:
    user_id: str
    full_name: str
    role: str
    presenter: bool
    listen_only: bool
    voice: bool
    video: bool
    client: str


def attendees(meeting: Meeting, t: float) -> list[Attendee]:
    """The attendee list matching the meeting's counters at ``t`` (deterministic)."""
    att = meeting.attendance(t)
    joined = [j for j in meeting.joined if j[0] <= t]
    simulated = att.participants - len(joined)
    # the k-th person is the same in every segment: names survive joins and breakouts
    rng = random.Random(meeting.seed)
    people: list[Attendee] = []
    moderators = att.moderators - sum(1 for j in joined if j[3] == "MODERATOR")
    voice_left, listeners_left, video_left = att.voice, att.listeners, att.video
    dialin_left = att.dialin
    for position in range(simulated):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        user_id = f"w_{rng.getrandbits(48):012x}"
        if dialin_left and position == simulated - 1:
            dialin_left -= 1
            voice_left -= 1
            people.append(
                Attendee(
                    user_id,
                    f"Phone {int(user_id[2:8], 16) % 9000 + 1000}",
                    "VIEWER",
                    False,
                    False,
                    True,
                    False,
                    "DIAL-IN",
                )
            )
            continue
        listen = voice = False
        if voice_left > dialin_left:
            voice, voice_left = True, voice_left - 1
        elif listeners_left:
            listen, listeners_left = True, listeners_left - 1
        video = video_left > 0
        video_left -= int(video)
        role = "MODERATOR" if position < moderators else "VIEWER"
        people.append(Attendee(user_id, name, role, position == 0, listen, voice, video, "HTML5"))
    for _, user_id, name, role in joined:
        # a user joined through the API: in the voice conference, no webcam
        people.append(Attendee(user_id, name, role, False, False, True, False, "HTML5"))
    return people


def _num(value: int, separator: str) -> str:
    if not separator:
        return str(value)
    return f"{value:,}".replace(",", separator)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _date(t: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(t))


def meeting_fields(meeting: Meeting, t: float, separator: str = "", indent: str = "") -> str:
    """The elements of one meeting (the body of ``<meeting>`` / of getMeetingInfo)."""
    att = meeting.attendance(t)
    people = attendees(meeting, t)
    create_ms = int(meeting.start * 1000)
    n = lambda v: _num(v, separator)  # noqa: E731
    lines = [
        f"<meetingName>{escape(meeting.name)}</meetingName>",
        f"<meetingID>{escape(meeting.meeting_id)}</meetingID>",
        f"<internalMeetingID>{meeting.internal_id}</internalMeetingID>",
        f"<createTime>{create_ms}</createTime>",
        f"<createDate>{_date(meeting.start)}</createDate>",
        f"<voiceBridge>{meeting.voice_bridge}</voiceBridge>",
        "<dialNumber>613-555-1234</dialNumber>",
        f"<attendeePW>{escape(meeting.attendee_pw)}</attendeePW>",
        f"<moderatorPW>{escape(meeting.moderator_pw)}</moderatorPW>",
        f"<running>{_bool(att.participants > 0)}</running>",
        f"<duration>{n(0)}</duration>",
        f"<hasUserJoined>{_bool(att.participants > 0 or bool(meeting.joined))}</hasUserJoined>",
        f"<recording>{_bool(meeting.recording)}</recording>",
        "<hasBeenForciblyEnded>false</hasBeenForciblyEnded>",
        f"<startTime>{create_ms + 12}</startTime>",
        "<endTime>0</endTime>",
        f"<participantCount>{n(att.participants)}</participantCount>",
        f"<listenerCount>{n(att.listeners)}</listenerCount>",
        f"<voiceParticipantCount>{n(att.voice)}</voiceParticipantCount>",
        f"<videoCount>{n(att.video)}</videoCount>",
        f"<maxUsers>{n(meeting.max_users)}</maxUsers>",
        f"<moderatorCount>{n(att.moderators)}</moderatorCount>",
    ]
    if people:
        lines.append("<attendees>")
        for p in people:
            lines.append(
                "<attendee>"
                f"<userID>{p.user_id}</userID>"
                f"<fullName>{escape(p.full_name)}</fullName>"
                f"<role>{p.role}</role>"
                f"<isPresenter>{_bool(p.presenter)}</isPresenter>"
                f"<isListeningOnly>{_bool(p.listen_only)}</isListeningOnly>"
                f"<hasJoinedVoice>{_bool(p.voice)}</hasJoinedVoice>"
                f"<hasVideo>{_bool(p.video)}</hasVideo>"
                f"<clientType>{p.client}</clientType>"
                "<customdata></customdata>"
                "</attendee>"
            )
        lines.append("</attendees>")
    else:
        lines.append("<attendees></attendees>")
    if meeting.metadata:
        lines.append("<metadata>")
        lines.extend(f"<{k}>{escape(v)}</{k}>" for k, v in meeting.metadata)
        lines.append("</metadata>")
    else:
        lines.append("<metadata></metadata>")
    lines.append(f"<isBreakout>{_bool(meeting.is_breakout)}</isBreakout>")
    if meeting.is_breakout:
        lines.append(f"<parentMeetingID>{meeting.parent_internal_id}</parentMeetingID>")
        lines.append(f"<sequence>{meeting.sequence}</sequence>")
        lines.append("<freeJoin>false</freeJoin>")
    elif meeting.breakouts_open(t):
        lines.append("<breakoutRooms>")
        lines.extend(f"<breakout>{room}</breakout>" for room in meeting.breakout_ids)
        lines.append("</breakoutRooms>")
    return "".join(indent + line + "\n" for line in lines)


def fragment_key(meeting: Meeting, t: float, separator: str) -> tuple[object, ...]:
    """What a meeting's XML depends on: it only changes between segments (and with joins)."""
    segment = next((s.start for s in meeting.segments if s.start <= t < s.end), None)
    joined = sum(1 for j in meeting.joined if j[0] <= t)
    return (meeting.meeting_id, meeting.internal_id, segment, joined, separator)


def get_meetings(
    meetings: list[Meeting],
    t: float,
    separator: str = "",
    fragments: dict[tuple[object, ...], str] | None = None,
) -> bytes:
    """getMeetings; ``fragments`` caches each meeting's XML across instants.

    The cache keeps only the fragments of this answer, so it never outgrows one answer.
    """
    used = set()
    parts = ["<response>\n<returncode>SUCCESS</returncode>\n<meetings>\n"]
    for meeting in meetings:
        parts.append("<meeting>\n")
        if fragments is None:
            parts.append(meeting_fields(meeting, t, separator))
        else:
            key = fragment_key(meeting, t, separator)
            used.add(key)
            body = fragments.get(key)
            if body is None:
                body = fragments[key] = meeting_fields(meeting, t, separator)
            parts.append(body)
        parts.append("</meeting>\n")
    if fragments is not None:
        for key in [k for k in fragments if k not in used]:
            del fragments[key]
    if not meetings:
        return message("SUCCESS", "noMeetings")
    parts.append("</meetings>\n</response>\n")
    return "".join(parts).encode()


def get_meeting_info(meeting: Meeting, t: float, separator: str = "") -> bytes:
    body = meeting_fields(meeting, t, separator)
    return f"<response>\n<returncode>SUCCESS</returncode>\n{body}</response>\n".encode()


def message(returncode: str, key: str, text: str | None = None, **fields: str) -> bytes:
    """A short answer: returncode, extra fields, messageKey and message."""
    extra = "".join(f"<{k}>{escape(v)}</{k}>\n" for k, v in fields.items())
    text = MESSAGES.get(key, key) if text is None else text
    return (
        f"<response>\n<returncode>{returncode}</returncode>\n{extra}"
        f"<messageKey>{key}</messageKey>\n<message>{escape(text)}</message>\n</response>\n"
    ).encode()


def fields_only(returncode: str, **fields: str) -> bytes:
    extra = "".join(f"<{k}>{escape(v)}</{k}>\n" for k, v in fields.items())
    return f"<response>\n<returncode>{returncode}</returncode>\n{extra}</response>\n".encode()


def create_answer(meeting: Meeting, duplicate: bool) -> bytes:
    fields = {
        "meetingID": meeting.meeting_id,
        "internalMeetingID": meeting.internal_id,
        "parentMeetingID": "bbb-none",
        "attendeePW": meeting.attendee_pw,
        "moderatorPW": meeting.moderator_pw,
        "createTime": str(int(meeting.start * 1000)),
        "voiceBridge": str(meeting.voice_bridge),
        "dialNumber": "613-555-1234",
        "createDate": _date(meeting.start),
        "hasUserJoined": _bool(bool(meeting.joined)),
        "duration": "0",
        "hasBeenForciblyEnded": "false",
    }
    if duplicate:
        return message("SUCCESS", "duplicateWarning", **fields)
    extra = "".join(f"<{k}>{escape(v)}</{k}>\n" for k, v in fields.items())
    return (
        f"<response>\n<returncode>SUCCESS</returncode>\n{extra}"
        "<messageKey></messageKey>\n<message></message>\n</response>\n"
    ).encode()
