"""Academic calendar: which days are term days and which are holidays.

The load model scales demand by regime (term weekday, term weekend, holiday), so the
planner sees the real-world pattern of a ~7x drop between term and holidays. The file
format is the planner's calendar YAML (planner/calendar.py), so one file serves both:
``terms`` (outside every term is holiday), ``holidays`` (breaks inside a term) and
optionally ``country`` / ``subdivision`` for public holidays; other keys are ignored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import holidays as holidays_package
import yaml

# (month, day) ranges of teaching periods in a default (European) academic year.
# A winter term with a Christmas break and a summer term; everything else is holiday.
DEFAULT_TERMS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((1, 7), (2, 14)),
    ((4, 13), (7, 24)),
    ((10, 1), (12, 19)),
)

Span = tuple[dt.date, dt.date]


class CalendarError(ValueError):
    """A term calendar file that cannot be used (says which file and entry)."""


@dataclass(frozen=True)
class TermCalendar:
    """Teaching periods and breaks as (start, end) dates, both inclusive."""

    terms: tuple[Span, ...] = ()
    breaks: tuple[Span, ...] = ()
    country: str | None = None
    subdivision: str | None = None

    def in_term(self, day: dt.date) -> bool:
        if any(start <= day <= end for start, end in self.breaks):
            return False
        if self.country and day in _public_holidays(self.country, self.subdivision, day.year):
            return False
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


@lru_cache(maxsize=64)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[dt.date]:
    return frozenset(holidays_package.country_holidays(country, subdiv=subdivision, years=year))


def load_calendar(path: Path) -> TermCalendar:
    """Read ``terms: [{start: 2026-10-01, end: 2027-02-12}, …]`` (+ holidays, country)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CalendarError(f"{path}: cannot read term calendar: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("terms"), list):
        raise CalendarError(f"{path}: expected a mapping with a list under 'terms'")
    holidays = data.get("holidays") or []
    if not isinstance(holidays, list):
        raise CalendarError(f"{path}: 'holidays' must be a list of {{start, end}}")
    country = data.get("country")
    subdivision = data.get("subdivision")
    if country is not None:
        try:
            holidays_package.country_holidays(str(country), subdiv=subdivision)
        except (NotImplementedError, KeyError) as exc:
            raise CalendarError(
                f"{path}: country {country!r} / subdivision {subdivision!r} unknown to the "
                f"holidays package: {exc}"
            ) from exc
    return TermCalendar(
        terms=_spans(path, "terms", data["terms"]),
        breaks=_spans(path, "holidays", holidays),
        country=str(country) if country is not None else None,
        subdivision=str(subdivision) if subdivision is not None else None,
    )


def _spans(path: Path, key: str, entries: list[object]) -> tuple[Span, ...]:
    spans = []
    for index, entry in enumerate(entries):
        try:
            start = _as_date(entry["start"])  # type: ignore[index]
            end = _as_date(entry["end"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError) as exc:
            raise CalendarError(
                f"{path}: {key}[{index}] needs 'start' and 'end' as YYYY-MM-DD: {exc}"
            ) from exc
        if end < start:
            raise CalendarError(f"{path}: {key}[{index}] ends before it starts")
        spans.append((start, end))
    return tuple(spans)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
