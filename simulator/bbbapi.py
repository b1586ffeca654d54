"""The BBB API of one node: checksums as bbb-web checks them, and the calls.

Checksum = hex digest of ``callName + queryString + secret``, where queryString is the
query as it appears in the URL without the checksum parameter. Like bbb-web, the
algorithm is told by the checksum's length and must be one the node accepts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import parse_qs, quote

from confscale.simulator import bbbxml, model, recordings
from confscale.simulator.model import Attendance, Meeting
from confscale.simulator.node import NodeState, with_change

ALGORITHMS = MappingProxyType({40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"})
ALL_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")
CALLS = (
    "create",
    "join",
    "end",
    "isMeetingRunning",
    "getMeetingInfo",
    "getMeetings",
    "getRecordings",
)
BBB_VERSION = "2.7.12"
XML = MappingProxyType({"Content-Type": "text/xml;charset=utf-8"})
MAX_AUDIENCE = 5000  # meta_confscale-audience cap (real bugs show at 1,202 participants)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


def checksum(call: str, query: str, secret: str, algorithm: str = "sha256") -> str:
    """What a client appends as ``checksum=``."""
    return hashlib.new(algorithm, (call + query + secret).encode()).hexdigest()


def strip_checksum(query: str) -> tuple[str, str]:
    """(query without the checksum parameter, the checksum given or '')."""
    kept, given = [], ""
    for part in query.split("&") if query else []:
        if part.startswith("checksum="):
            given = part[len("checksum=") :]
        else:
            kept.append(part)
    return "&".join(kept), given


def checksum_ok(call: str, query: str, secret: str, accepted: tuple[str, ...]) -> bool:
    rest, given = strip_checksum(query)
    algorithm = ALGORITHMS.get(len(given))
    if algorithm is None or algorithm not in accepted:
        return False
    expected = checksum(call, rest, secret, algorithm)
    return hmac.compare_digest(expected, given.lower())


def api_root(version: str = BBB_VERSION) -> Answer:
    body = bbbxml.fields_only("SUCCESS", version="2.0", apiVersion="2.0", bbbVersion=version)
    return Answer(200, XML, body)


def handle(
    node: NodeState,
    call: str,
    query: str,
    *,
    t: float,
    secret: str,
    accepted: tuple[str, ...],
    base_url: str,
    separator: str = "",
    cache: bool = True,
    mode: str = "",
    arg: float = 0.0,
) -> Answer:
    """Answer one API call on ``node`` at simulated time ``t`` (under fault ``mode``)."""
    if call not in CALLS:
        return Answer(200, XML, bbbxml.message("FAILED", "unsupportedRequest"))
    if not checksum_ok(call, query, secret, accepted):
        return Answer(200, XML, bbbxml.message("FAILED", "checksumError"))
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if call == "getRecordings":
        library = recordings.library(node.name, t, mode, arg)
        return Answer(200, XML, recordings.get_recordings(library, params))
    with node.lock:
        if call == "getMeetings":
            if not cache:
                return Answer(200, XML, bbbxml.get_meetings(node.active(t), t, separator))
            return Answer(200, XML, get_meetings(node, t, separator))
        meeting_id = params.get("meetingID", "")
        if not meeting_id:
            return Answer(200, XML, bbbxml.message("FAILED", "missingParamMeetingID"))
        if call == "create":
            return Answer(200, XML, create(node, t, meeting_id, params))
        meeting = node.find(t, meeting_id)
        if call == "isMeetingRunning":
            running = meeting is not None and meeting.attendance(t).participants > 0
            return Answer(200, XML, bbbxml.fields_only("SUCCESS", running=_b(running)))
        if meeting is None:
            return Answer(200, XML, bbbxml.message("FAILED", "notFound"))
        if call == "getMeetingInfo":
            return Answer(200, XML, bbbxml.get_meeting_info(meeting, t, separator))
        if call == "end":
            password = params.get("password")
            if password is not None and password != meeting.moderator_pw:
                return Answer(200, XML, bbbxml.message("FAILED", "invalidPassword"))
            node.end_meeting(t, meeting)
            return Answer(200, XML, bbbxml.message("SUCCESS", "sentEndMeetingRequest"))
        return join(node, t, meeting, params, base_url)


def _b(value: bool) -> str:
    return "true" if value else "false"


def get_meetings(node: NodeState, t: float, separator: str) -> bytes:
    """Rendered getMeetings, cached per simulated instant and node version."""
    key = (t, node.version, separator)
    cached = node.render_cache.get("getMeetings")
    if cached is not None and cached[0] == key:
        return cached[1]
    body = bbbxml.get_meetings(node.active(t), t, separator, node.fragments)
    node.render_cache["getMeetings"] = (key, body)
    return body


def audience(meeting_id: str, params: dict[str, str]) -> tuple[Attendance, float]:
    """Simulated participants of a meeting created through the API, and how long they stay.

    ``meta_confscale-audience`` = ``none`` or a number of participants overrides the draw.
    """
    rng = random.Random(model.stable_seed("api", meeting_id))
    wanted = params.get("meta_confscale-audience", "").strip().lower()
    duration = rng.uniform(45, 90) * 60
    if wanted == "none":
        return model.EMPTY, duration
    if wanted.isdigit() and int(wanted) > 0:
        n = min(int(wanted), MAX_AUDIENCE)
        listeners = n // 3
        video = min(n, max(1, n // 4))
        return Attendance(n, 1, listeners, n - listeners, video, 0, n > 10), duration
    kind = rng.choice(("small", "small", "seminar", "seminar", "lecture"))
    return model.draw_attendance(rng, kind), duration


def create(node: NodeState, t: float, meeting_id: str, params: dict[str, str]) -> bytes:
    existing = node.find(t, meeting_id)
    if existing is not None:
        return bbbxml.create_answer(existing, duplicate=True)
    attendance, duration = audience(meeting_id, params)
    seed = model.stable_seed("api", node.name, meeting_id)
    metadata = tuple((k[len("meta_") :], v) for k, v in params.items() if k.startswith("meta_"))
    max_users = params.get("maxParticipants", "0")
    internal = hashlib.sha1(meeting_id.encode(), usedforsecurity=False).hexdigest()
    start = float(t)
    meeting = Meeting(
        meeting_id=meeting_id,
        internal_id=f"{internal}-{int(start * 1000)}",
        name=params.get("name", meeting_id),
        kind="api",
        start=start,
        end=start + duration,
        segments=(model.Segment(start, start + duration, attendance),),
        seed=seed,
        max_users=int(max_users) if max_users.isdigit() else 0,
        metadata=metadata,
        attendee_pw=params.get("attendeePW") or secrets.token_urlsafe(6),
        moderator_pw=params.get("moderatorPW") or secrets.token_urlsafe(6),
        voice_bridge=int(params["voiceBridge"])
        if params.get("voiceBridge", "").isdigit()
        else 70000 + seed % 9999,
        recording=params.get("record", "false") == "true",
    )
    node.put_api_meeting(t, meeting)
    return bbbxml.create_answer(meeting, duplicate=False)


def join(
    node: NodeState, t: float, meeting: Meeting, params: dict[str, str], base_url: str
) -> Answer:
    full_name = params.get("fullName", "")
    if not full_name:
        return Answer(200, XML, bbbxml.message("FAILED", "missingParamFullName"))
    role = params.get("role", "").upper()
    password = params.get("password")
    if password is not None and role not in ("MODERATOR", "VIEWER"):
        if password == meeting.moderator_pw:
            role = "MODERATOR"
        elif password == meeting.attendee_pw:
            role = "VIEWER"
        else:
            return Answer(200, XML, bbbxml.message("FAILED", "invalidPassword"))
    if role not in ("MODERATOR", "VIEWER"):
        return Answer(200, XML, bbbxml.message("FAILED", "invalidPassword"))
    user_id = params.get("userID") or f"w_{secrets.token_hex(6)}"
    session = secrets.token_hex(8)
    change = Attendance(1, int(role == "MODERATOR"), 0, 1, 0)
    joined = (*meeting.joined, (t, user_id, full_name, role))
    updated = with_change(meeting, t, change)
    if meeting.kind == "api":
        node.put_api_meeting(t, _replace_joined(updated, joined))
    else:
        # a model meeting joined through the API becomes an API meeting from now on
        # (its breakout rooms run on)
        node.end_meeting(t, meeting, breakouts=False)
        node.put_api_meeting(t, _replace_joined(_from(updated, t), joined))
    url = f"{base_url}/html5client/join?sessionToken={session}"
    if params.get("redirect", "true").lower() == "false":
        body = bbbxml.message(
            "SUCCESS",
            "successfullyJoined",
            meeting_id=meeting.internal_id,
            user_id=user_id,
            auth_token=secrets.token_hex(6),
            session_token=session,
            guestStatus="ALLOW",
            url=url,
        )
        return Answer(200, XML, body)
    return Answer(302, {"Location": url, "Content-Type": "text/html"}, b"")


def _replace_joined(meeting: Meeting, joined: tuple) -> Meeting:
    return dataclasses.replace(meeting, joined=joined)


def _from(meeting: Meeting, t: float) -> Meeting:
    """The part of a model meeting from ``t`` on, as an API meeting."""
    segments = tuple(
        model.Segment(max(s.start, t), s.end, s.attendance) for s in meeting.segments if s.end > t
    )
    return dataclasses.replace(meeting, kind="api", segments=segments)


def sign(call: str, params: str, secret: str, algorithm: str) -> str:
    """``call?params&checksum=…`` for clients and tests."""
    value = checksum(call, params, secret, algorithm)
    joiner = "&" if params else ""
    return f"{call}?{params}{joiner}checksum={value}"


def encode(params: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
