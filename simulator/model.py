"""The load model: which meetings run on a node, a pure function of seed, node and time.

Every day of every node gets its own random stream (seeded from ``seed:node:day``), so
any instant can be computed without simulating the days before it, and the live server
and the history generator see exactly the same meetings.

A meeting holds a constant attendance over each of its segments (a seminar with breakout
rooms has three: everyone, breakout time, everyone again). Rates (CPU, bytes) are
functions of the attendance, so counters are exact integrals over segments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from confscale.simulator.terms import TermCalendar

DAY = 86400.0

# docs/design.md §4: outbound bandwidth per meeting, in bit/s.
AUDIO_BPS = 40e3
WEBCAM_BPS = 200e3
WEBCAM_BPS_MANY = 100e3  # BBB lowers the webcam profile with >= 8 cameras
MANY_CAMS = 8
SCREEN_BPS = 500e3
OVERHEAD = 1.2
LINK_CAPACITY_BYTES = 62.5e6  # 500 Mbit/s
MAX_MEETING_SECONDS = 4 * 3600.0  # no modelled meeting runs longer (lets lookups skip days)

# CPU cost in busy cores (fitted by eye to "200 participants on 8 cores ≈ 75 %").
CPU_NODE_BASE = 0.12
CPU_PER_MEETING = 0.04
CPU_PER_VOICE = 0.012
CPU_PER_LISTENER = 0.004
CPU_PER_STREAM = 0.0015  # per forwarded webcam stream (video fan-out)
CPU_SCREEN = 0.15
CPU_MAX_BUSY = 0.99  # a node cannot be busier than this share of its cores

# Expected meetings per node and day in a term weekday; weekends and holidays scale it.
MEETINGS_PER_DAY = MappingProxyType({"lecture": 2.5, "seminar": 7.0, "small": 16.0})
REGIME_FACTOR = MappingProxyType({"term-weekday": 1.0, "term-weekend": 0.15, "holiday": 1.0 / 7.0})


@dataclass(frozen=True)
class Attendance:
    """Who is in a meeting over one segment; counters as getMeetings reports them."""

    participants: int
    moderators: int
    listeners: int  # listen-only audio
    voice: int  # joined voice (microphone), dial-in included
    video: int  # webcams
    dialin: int = 0
    screenshare: bool = False

    @property
    def fanout(self) -> int:
        """Forwarded webcam streams W·(n−1) (docs/design.md §2)."""
        return self.video * max(self.participants - 1, 0)

    def tx_bytes_per_second(self) -> float:
        webcam = WEBCAM_BPS_MANY if self.video >= MANY_CAMS else WEBCAM_BPS
        bits = AUDIO_BPS * (self.voice + self.listeners) + webcam * self.fanout
        if self.screenshare:
            bits += SCREEN_BPS * max(self.participants - 1, 0)
        return OVERHEAD * bits / 8.0

    def rx_bytes_per_second(self) -> float:
        webcam = WEBCAM_BPS_MANY if self.video >= MANY_CAMS else WEBCAM_BPS
        bits = AUDIO_BPS * self.voice + webcam * self.video
        if self.screenshare:
            bits += SCREEN_BPS
        return OVERHEAD * bits / 8.0

    def busy_cores(self) -> float:
        if self.participants == 0:
            return CPU_PER_MEETING / 4
        return (
            CPU_PER_MEETING
            + CPU_PER_VOICE * self.voice
            + CPU_PER_LISTENER * self.listeners
            + CPU_PER_STREAM * self.fanout
            + (CPU_SCREEN if self.screenshare else 0.0)
        )


EMPTY = Attendance(0, 0, 0, 0, 0)


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    attendance: Attendance


@dataclass(frozen=True)
class Meeting:
    """One meeting (or breakout room) on one node; ``end`` is exclusive."""

    meeting_id: str
    internal_id: str
    name: str
    kind: str  # lecture | seminar | small | breakout | api
    start: float
    end: float
    segments: tuple[Segment, ...]
    seed: int
    parent_internal_id: str = ""
    sequence: int = 0
    breakout_ids: tuple[str, ...] = ()
    breakout_window: tuple[float, float] | None = None
    max_users: int = 0
    metadata: tuple[tuple[str, str], ...] = ()
    attendee_pw: str = ""
    moderator_pw: str = ""
    voice_bridge: int = 0
    recording: bool = False
    joined: tuple[tuple[float, str, str, str], ...] = field(default=())  # (t, userID, name, role)

    @property
    def is_breakout(self) -> bool:
        return bool(self.parent_internal_id)

    def active(self, t: float) -> bool:
        return self.start <= t < self.end

    def attendance(self, t: float) -> Attendance:
        for segment in self.segments:
            if segment.start <= t < segment.end:
                return segment.attendance
        return EMPTY

    def breakouts_open(self, t: float) -> bool:
        window = self.breakout_window
        return window is not None and window[0] <= t < window[1]


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (``hash()`` is salted per process)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def day_index(t: float) -> int:
    return math.floor(t / DAY)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method; means here are small (< 40).
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit and k < 200:
        k += 1
        p *= rng.random()
    return k


def _start_hour(rng: random.Random, kind: str, weekend: bool) -> float:
    """Start time in hours after midnight UTC for one meeting of ``kind``."""
    if weekend:
        return rng.uniform(9.5, 20.0)
    if kind == "lecture":
        return rng.choice((8, 10, 10, 12, 14, 14, 16)) + rng.uniform(-0.08, 0.25)
    if kind == "seminar":
        return rng.choice((8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)) + rng.uniform(0, 0.3)
    # small meetings: office hours and team calls, a broad day with an evening tail
    return min(max(rng.gauss(13.0, 3.2), 6.5), 22.5)


def _duration(rng: random.Random, kind: str) -> float:
    """Duration in seconds."""
    if kind == "lecture":
        minutes = rng.choice((90, 90, 90, 60, 120)) + rng.uniform(-10, 5)
    elif kind == "seminar":
        minutes = rng.choice((60, 90, 90, 120)) + rng.uniform(-10, 10)
    else:
        minutes = min(rng.lognormvariate(math.log(40), 0.6), 240)
    return min(max(minutes, 5.0) * 60.0, MAX_MEETING_SECONDS)


def draw_attendance(rng: random.Random, kind: str) -> Attendance:
    """Sizes, audio and webcams of one meeting from the realistic mix of its kind."""
    if kind == "lecture":
        n = int(min(max(rng.lognormvariate(math.log(55), 0.45), 20), 250))
        moderators = rng.choice((1, 1, 2))
        listeners = int(n * rng.uniform(0.5, 0.7))
        voice = min(n - listeners, moderators + int(n * rng.uniform(0.05, 0.2)))
        video = rng.choice((0, 1, 1, 2))
        screenshare = rng.random() < 0.7
    elif kind == "seminar":
        n = rng.randint(10, 30)
        moderators = rng.choice((1, 1, 2))
        listeners = int(n * rng.uniform(0.0, 0.3))
        voice = n - listeners - rng.randint(0, 2)
        video = int(n * rng.uniform(0.4, 0.9))
        screenshare = rng.random() < 0.4
    else:
        n = rng.randint(2, 6)
        moderators = rng.choice((1, 1, 2)) if n > 2 else 1
        listeners = 1 if rng.random() < 0.15 else 0
        voice = n - listeners
        video = rng.randint(n // 2, n)
        screenshare = rng.random() < 0.2
    voice = max(voice, 0)
    dialin = 1 if voice > 1 and rng.random() < 0.05 else 0
    video = min(video, n - dialin)
    return Attendance(n, min(moderators, n), listeners, voice, video, dialin, screenshare)


def _split(attendance: Attendance, rooms: int) -> tuple[Attendance, list[Attendance]]:
    """Parent (moderator stays) and breakout rooms sharing everyone else."""
    a = attendance
    parent = Attendance(participants=1, moderators=1, listeners=0, voice=1, video=min(a.video, 1))
    rest = a.participants - 1
    parts = []
    for index in range(rooms):
        n = rest // rooms + (1 if index < rest % rooms else 0)
        voice = min(n, round(a.voice * n / max(a.participants, 1)))
        listeners = min(n - voice, round(a.listeners * n / max(a.participants, 1)))
        video = min(n, round(max(a.video - 1, 0) * n / max(rest, 1)))
        parts.append(Attendance(n, 0, listeners, voice, video))
    return parent, parts


NAMES = MappingProxyType(
    {
        "lecture": (
            "Linear Algebra",
            "Organic Chemistry",
            "Macroeconomics",
            "Intro to CS",
            "Statistics I",
            "Constitutional Law",
            "Physics II",
            "Art History",
        ),
        "seminar": (
            "Reading Group",
            "Lab Seminar",
            "Writing Workshop",
            "Tutorial",
            "Project Meeting",
            "Language Course",
            "Case Studies",
        ),
        "small": (
            "Office Hours",
            "Team Call",
            "Thesis Meeting",
            "Consultation",
            "Stand-up",
            "Exam Review",
        ),
    }
)


def _ids(seed: int, label: str, start: float) -> tuple[str, str]:
    meeting_id = hashlib.sha1(f"{seed}:{label}".encode(), usedforsecurity=False).hexdigest()
    internal = hashlib.sha1(meeting_id.encode(), usedforsecurity=False).hexdigest()
    return meeting_id[:24], f"{internal}-{int(start * 1000)}"


def make_meeting(
    seed: int,
    kind: str,
    start: float,
    duration: float,
    attendance: Attendance,
    *,
    name: str,
    rng: random.Random,
    breakouts: int = 0,
) -> list[Meeting]:
    """A meeting (and its breakout rooms, if any) with the given attendance."""
    end = start + duration
    meeting_id, internal_id = _ids(seed, "m", start)
    common: dict[str, Any] = {
        "attendee_pw": f"ap-{meeting_id[:6]}",
        "moderator_pw": f"mp-{meeting_id[6:12]}",
        "voice_bridge": 10000 + seed % 89999,
        "recording": rng.random() < 0.3,
    }
    metadata = origin_metadata(seed)
    if not breakouts or duration < 50 * 60:
        segment = Segment(start, end, attendance)
        return [
            Meeting(
                meeting_id,
                internal_id,
                name,
                kind,
                start,
                end,
                (segment,),
                seed,
                metadata=metadata,
                **common,
            )
        ]
    b0 = start + 20 * 60
    b1 = b0 + rng.uniform(15, 25) * 60
    parent, rooms = _split(attendance, breakouts)
    room_ids = []
    meetings = []
    for index, room in enumerate(rooms, start=1):
        room_seed = stable_seed(seed, "breakout", index)
        _, room_internal = _ids(room_seed, "b", b0)
        room_ids.append(room_internal)
        meetings.append(
            Meeting(
                room_internal,
                room_internal,
                f"{name} (Room {index})",
                "breakout",
                b0,
                b1,
                (Segment(b0, b1, room),),
                room_seed,
                parent_internal_id=internal_id,
                sequence=index,
                **{**common, "voice_bridge": common["voice_bridge"] + index},
            )
        )
    segments = (
        Segment(start, b0, attendance),
        Segment(b0, b1, parent),
        Segment(b1, end, attendance),
    )
    meetings.insert(
        0,
        Meeting(
            meeting_id,
            internal_id,
            name,
            kind,
            start,
            end,
            segments,
            seed,
            breakout_ids=tuple(room_ids),
            breakout_window=(b0, b1),
            metadata=metadata,
            **common,
        ),
    )
    return meetings


# Front ends that create meetings (bbb-origin-server-name); every 7th meeting has none.
ORIGIN_SERVERS = ("lms.example.edu", "moodle.example.org", "Greenlight.Example.COM")


def origin_metadata(seed: int) -> tuple[tuple[str, str], ...]:
    """The metadata a front end sends with create (none for plain API users)."""
    if seed % 7 == 6:
        return ()
    server = ORIGIN_SERVERS[seed % len(ORIGIN_SERVERS)]
    return (("bbb-origin", "Greenlight"), ("bbb-origin-server-name", server))


def day_meetings(
    seed: int, node: str, day: int, calendar: TermCalendar, scale: float = 1.0
) -> list[Meeting]:
    """All meetings that start on ``day`` (days since the epoch, UTC) on ``node``."""
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    regime = calendar.regime(date)
    rng = random.Random(stable_seed(seed, node, day))
    factor = REGIME_FACTOR[regime] * scale
    weekend = date.weekday() >= 5
    meetings: list[Meeting] = []
    for kind, mean in MEETINGS_PER_DAY.items():
        for index in range(_poisson(rng, mean * factor)):
            start = day * DAY + _start_hour(rng, kind, weekend) * 3600.0
            start = round(start)  # whole seconds, like createTime rounded
            duration = round(_duration(rng, kind))
            attendance = draw_attendance(rng, kind)
            breakouts = rng.randint(3, 5) if kind == "seminar" and rng.random() < 0.3 else 0
            name = f"{rng.choice(NAMES[kind])} {index + 1}"
            meeting_seed = stable_seed(seed, node, day, kind, index)
            meetings.extend(
                make_meeting(
                    meeting_seed,
                    kind,
                    start,
                    duration,
                    attendance,
                    name=name,
                    rng=rng,
                    breakouts=breakouts,
                )
            )
    meetings.sort(key=lambda m: (m.start, m.meeting_id))
    return meetings
