"""Regime calendar: YAML terms/holidays/events, the holidays package, clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from confscale.planner.calendar import HOLIDAY, TERM, CalendarError, RegimeCalendar, load_calendar


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar.yml"
    path.write_text(text)
    return path


def test_terms_holidays_and_events_precedence(tmp_path: Path) -> None:
    calendar = load_calendar(
        write(
            tmp_path,
            """
terms:
  - {start: 2026-10-01, end: 2027-02-12, name: winter}
holidays:
  - {start: 2026-12-21, end: 2027-01-06, name: christmas}
events:
  - {start: 2026-11-30, end: 2026-12-04, name: exams, regime: exams}
""",
        )
    )
    assert calendar.regime(dt.date(2026, 10, 15)) == TERM
    assert calendar.regime(dt.date(2026, 12, 24)) == HOLIDAY
    assert calendar.regime(dt.date(2026, 12, 1)) == "exams"
    assert calendar.regime(dt.date(2026, 9, 15)) == HOLIDAY  # outside every term


def test_simulator_term_calendar_format_is_accepted(tmp_path: Path) -> None:
    calendar = load_calendar(write(tmp_path, "terms: [{start: 2026-10-01, end: 2026-12-19}]\n"))
    assert calendar.regimes([dt.date(2026, 12, 19), dt.date(2026, 12, 20)]) == [TERM, HOLIDAY]


def test_school_holidays_from_the_holidays_package() -> None:
    bavaria = RegimeCalendar(country="DE", subdivision="BY")
    assert bavaria.regime(dt.date(2026, 1, 2)) == HOLIDAY  # Christmas break
    assert bavaria.regime(dt.date(2026, 5, 1)) == HOLIDAY  # public holiday
    assert bavaria.regime(dt.date(2026, 3, 11)) == TERM


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("terms: [{start: 2026-10-01}]", r"terms\[0\]: needs 'start' and 'end'"),
        ("terms: [{start: 2026-10-01, end: 2026-09-01}]", r"terms\[0\]: ends .* before"),
        ("events: [{start: 2026-10-01, end: 2026-10-02}]", r"events\[0\]: an event needs"),
        ("terms: yes", "'terms' must be a list"),
        ("semesters: []", "unknown key"),
        ("country: XX", "unknown country"),
        ("- a\n- b", "expected a mapping"),
        (": : :", "cannot read calendar"),
    ],
)
def test_bad_calendars_name_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        load_calendar(write(tmp_path, text))
