"""The ``huge`` fault: a valid getMeetings answer of about N megabytes."""

from __future__ import annotations

import random
from collections import OrderedDict

from confscale.simulator import bbbxml, model

ATTENDEES_PER_MEETING = 25
KEEP_SIZES = 4  # answers of different sizes kept (each is shared by every node)


def get_meetings(cache: OrderedDict[float, bytes], megabytes: float) -> bytes:
    """Many 25-attendee meetings; one answer per size, shared by all nodes in ``cache``."""
    cached = cache.get(megabytes)
    if cached is not None:
        cache.move_to_end(megabytes)
        return cached
    target = int(megabytes * 1_000_000)
    t = 1_700_000_000.0
    rng = random.Random(model.stable_seed("huge", megabytes))
    attendance = model.Attendance(ATTENDEES_PER_MEETING, 2, 5, 18, 6)
    sample = model.make_meeting(1, "seminar", t - 60, 3600, attendance, name="x", rng=rng)[0]
    per_meeting = len(bbbxml.meeting_fields(sample, t).encode()) + 22
    count = max(1, target // per_meeting)
    meetings = [
        model.make_meeting(
            model.stable_seed("huge", i), "seminar", t - 60, 3600, attendance,
            name=f"Huge {i}", rng=rng,
        )[0]
        for i in range(count)
    ]  # fmt: skip
    body = bbbxml.get_meetings(meetings, t)
    cache[megabytes] = body
    while len(cache) > KEEP_SIZES:
        cache.popitem(last=False)
    return body
