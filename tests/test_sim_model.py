"""The load model (pure functions): daily shape, regimes, determinism, exact integrals."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from confscale.simulator import model
from confscale.simulator.node import integrate, truncate
from confscale.simulator.terms import CalendarError, TermCalendar, load_calendar

CAL = TermCalendar()
NODES = [f"bbb-{i:02d}" for i in range(1, 13)]


def day_of(year: int, month: int, day: int) -> int:
    return model.day_index(dt.datetime(year, month, day, tzinfo=dt.UTC).timestamp())


def participants_over(seed: int, node: str, day: int) -> list[int]:
    """Participants on ``node`` every 5 minutes of ``day``."""
    meetings = model.day_meetings(seed, node, day - 1, CAL) + model.day_meetings(
        seed, node, day, CAL
    )
    values = []
    for step in range(288):
        t = day * model.DAY + step * 300
        values.append(sum(m.attendance(t).participants for m in meetings if m.active(t)))
    return values


def mean_daily(seed: int, first_day: int, days: int) -> tuple[float, float, float]:
    """Across NODES and days: mean participants, mean daily peak, median peak hour."""
    means, peaks, hours = [], [], []
    for node in NODES:
        for day in range(first_day, first_day + days):
            values = participants_over(seed, node, day)
            means.append(sum(values) / len(values))
            peaks.append(max(values))
            hours.append(values.index(max(values)) * 5 / 60)
    hours.sort()
    return sum(means) / len(means), sum(peaks) / len(peaks), hours[len(hours) // 2]


def test_term_weekday_peaks_in_working_hours_below_capacity():
    monday = day_of(2026, 10, 5)
    mean, peak, hour = mean_daily(1, monday, 5)
    assert 9 <= hour <= 17
    # a node at peak: busy, yet on average below the 200-participant prior of DESIGN §4
    assert 60 <= peak <= 200
    assert peak > 3 * mean


def test_holidays_drop_about_sevenfold_and_weekends_are_quiet():
    term, _, _ = mean_daily(2, day_of(2026, 10, 5), 5)
    holiday, _, _ = mean_daily(2, day_of(2026, 8, 3), 5)
    weekend, _, _ = mean_daily(2, day_of(2026, 10, 10), 2)
    assert 4 <= term / holiday <= 12
    assert weekend < term / 3


def test_same_seed_same_meetings_other_seed_other_meetings():
    day = day_of(2026, 10, 6)
    first = model.day_meetings(7, "bbb-01", day, CAL)
    assert first == model.day_meetings(7, "bbb-01", day, CAL)
    assert first != model.day_meetings(8, "bbb-01", day, CAL)
    assert first != model.day_meetings(7, "bbb-02", day, CAL)


def test_attendance_mix_is_consistent():
    rng = random.Random(3)
    for kind in ("lecture", "seminar", "small"):
        for _ in range(500):
            a = model.draw_attendance(rng, kind)
            assert a.participants > 0
            assert a.voice + a.listeners <= a.participants
            assert a.video <= a.participants - a.dialin
            assert 1 <= a.moderators <= a.participants
    lectures = [model.draw_attendance(rng, "lecture") for _ in range(300)]
    seminars = [model.draw_attendance(rng, "seminar") for _ in range(300)]
    smalls = [model.draw_attendance(rng, "small") for _ in range(300)]
    assert min(a.participants for a in lectures) > max(a.participants for a in smalls)
    assert all(10 <= a.participants <= 30 for a in seminars)
    assert all(2 <= a.participants <= 6 for a in smalls)
    # lectures: mostly listeners, few cameras; seminars: many cameras
    assert sum(a.listeners / a.participants for a in lectures) / 300 > 0.5
    assert sum(a.video / a.participants for a in seminars) / 300 > 0.4
    assert sum(a.video for a in lectures) / 300 < 2


def test_bandwidth_formula():
    # DESIGN §4: 40 kbit/s per audio user; W·(n−1)·200 kbit/s, 100 kbit/s with >= 8 cams; ×1.2
    few = model.Attendance(10, 1, 2, 8, 3)
    assert few.tx_bytes_per_second() == pytest.approx(1.2 * (40e3 * 10 + 3 * 9 * 200e3) / 8)
    many = model.Attendance(20, 1, 0, 20, 8)
    assert many.tx_bytes_per_second() == pytest.approx(1.2 * (40e3 * 20 + 8 * 19 * 100e3) / 8)
    assert many.fanout == 8 * 19


def test_integral_is_additive_and_truncation_ends_load():
    day = day_of(2026, 10, 7)
    meetings = model.day_meetings(4, "bbb-03", day, CAL)
    a, b = day * model.DAY + 8 * 3600, day * model.DAY + 18 * 3600
    m = a + 3 * 3600 + 17.5
    whole = integrate(meetings, [], a, b, 8)
    parts = [
        x + y
        for x, y in zip(
            integrate(meetings, [], a, m, 8), integrate(meetings, [], m, b, 8), strict=True
        )
    ]
    assert parts == pytest.approx(whole, rel=1e-12)
    ended = [truncate(x, a) for x in meetings]
    idle = integrate(ended, [], a, b, 8)
    assert idle[0] == pytest.approx(model.CPU_NODE_BASE * (b - a))


def test_breakout_rooms_share_the_parents_people():
    for day in range(day_of(2026, 10, 5), day_of(2026, 10, 5) + 10):
        meetings = model.day_meetings(1, "bbb-01", day, CAL)
        for parent in (x for x in meetings if x.breakout_ids):
            t = parent.breakout_window[0] + 1
            rooms = [x for x in meetings if x.parent_internal_id == parent.internal_id]
            assert {r.internal_id for r in rooms} == set(parent.breakout_ids)
            before = parent.attendance(parent.start).participants
            during = parent.attendance(t).participants + sum(
                r.attendance(t).participants for r in rooms
            )
            assert during == before
            return
    pytest.fail("no seminar with breakout rooms in ten days")


def test_term_calendar_file(tmp_path):
    path = tmp_path / "terms.yml"
    path.write_text("terms:\n  - {start: 2026-09-01, end: 2026-09-30}\n")
    cal = load_calendar(path)
    assert cal.regime(dt.date(2026, 9, 15)) == "term-weekday"
    assert cal.regime(dt.date(2026, 10, 15)) == "holiday"
    # the planner's calendar file: breaks and public holidays inside a term are holidays
    path.write_text(
        "country: DE\nsubdivision: BY\n"
        "terms: [{start: 2026-10-01, end: 2027-02-12, name: winter}]\n"
        "holidays: [{start: 2026-11-16, end: 2026-11-20, name: reading week}]\n"
        "events: [{start: 2026-11-30, end: 2026-12-04, name: exams, regime: exams}]\n"
    )
    cal = load_calendar(path)
    assert cal.regime(dt.date(2026, 11, 13)) == "term-weekday"
    assert cal.regime(dt.date(2026, 11, 17)) == "holiday"
    assert cal.regime(dt.date(2026, 12, 25)) == "holiday"  # Christmas Day, a Friday
    assert cal.regime(dt.date(2027, 1, 6)) == "holiday"  # Epiphany in Bavaria
    assert cal.regime(dt.date(2027, 1, 7)) == "term-weekday"
    path.write_text("terms: []\ncountry: XX\n")
    with pytest.raises(CalendarError, match="XX"):
        load_calendar(path)
    path.write_text("terms:\n  - {start: 2026-09-30}\n")
    with pytest.raises(CalendarError, match=r"terms\[0\]"):
        load_calendar(path)


def test_no_meeting_outlasts_the_lookup_window():
    # node.meetings_between only looks MAX_MEETING_SECONDS back for running meetings
    for node in NODES[:2]:
        for day in range(day_of(2026, 10, 1), day_of(2026, 10, 1) + 30):
            for meeting in model.day_meetings(5, node, day, CAL, 2.0):
                assert 0 < meeting.end - meeting.start <= model.MAX_MEETING_SECONDS
