"""The ``huge`` fault: a valid getMeetings answer of about N megabytes."""

from __future__ import annotations

import random

from simulator import bbbxml, model
from simulator.node import NodeState

ATTENDEES_PER_MEETING = 25


def get_meetings(node: NodeState, megabytes: float) -> bytes:
    """Many 25-attendee meetings (cached per node and size, the fault is for parsers)."""
    key = ("huge", megabytes)
    cached = node.render_cache.get("huge")
    if cached is not None and cached[0] == key:
        return cached[1]
    target = int(megabytes * 1_000_000)
    t = 1_700_000_000.0
    rng = random.Random(model.stable_seed(node.name, "huge"))
    attendance = model.Attendance(ATTENDEES_PER_MEETING, 2, 5, 18, 6)
    sample = model.make_meeting(1, "seminar", t - 60, 3600, attendance, name="x", rng=rng)[0]
    per_meeting = len(bbbxml.meeting_fields(sample, t).encode()) + 22
    count = max(1, target // per_meeting)
    meetings = [
        model.make_meeting(
            model.stable_seed(node.name, "huge", i),
            "seminar",
            t - 60,
            3600,
            attendance,
            name=f"Huge {i}",
            rng=rng,
        )[0]
        for i in range(count)
    ]
    body = bbbxml.get_meetings(meetings, t)
    node.render_cache["huge"] = (key, body)
    return body
