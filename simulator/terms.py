"""Academic calendar: which days are term days and which are holidays.

The load model scales demand by regime (term weekday, term weekend, holiday), so the
planner sees the real-world pattern of a ~7x drop between term and holidays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml

# (month, day) ranges of teaching periods in a default (European) academic year.
# A winter term with a Christmas break and a summer term; everything else is holiday.
DEFAULT_TERMS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((1, 7), (2, 14)),
    ((4, 13), (7, 24)),
    ((10, 1), (12, 19)),
)


class CalendarError(ValueError):
    """A term calendar file that cannot be used (says which file and entry)."""


@dataclass(frozen=True)
class TermCalendar:
    """Teaching periods as (start, end) dates, both inclusive."""

    terms: tuple[tuple[dt.date, dt.date], ...] = ()

    def in_term(self, day: dt.date) -> bool:
        if self.terms:
            return any(start <= day <= end for start, end in self.terms)
        return any(
            dt.date(day.year, *start) <= day <= dt.date(day.year, *end)
            for start, end in DEFAULT_TERMS
        )

    def regime(self, day: dt.date) -> str:
        """``term-weekday``, ``term-weekend`` or ``holiday``."""
        if not self.in_term(day):
            return "holiday"
        return "term-weekend" if day.weekday() >= 5 else "term-weekday"


def load_calendar(path: Path) -> TermCalendar:
    """Read a YAML file ``terms: [{start: 2026-10-01, end: 2027-02-12}, …]``."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CalendarError(f"{path}: cannot read term calendar: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("terms"), list):
        raise CalendarError(f"{path}: expected a mapping with a list under 'terms'")
    terms = []
    for index, entry in enumerate(data["terms"]):
        try:
            start = _as_date(entry["start"])
            end = _as_date(entry["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CalendarError(
                f"{path}: terms[{index}] needs 'start' and 'end' as YYYY-MM-DD: {exc}"
            ) from exc
        if end < start:
            raise CalendarError(f"{path}: terms[{index}] ends before it starts")
        terms.append((start, end))
    return TermCalendar(tuple(terms))


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
