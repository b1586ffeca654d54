"""Term and holiday regimes: which demand pattern applies on which day.

Sources, strongest first: explicit periods of the calendar YAML (``holidays`` and
``events`` entries), then the ``terms`` list (a day outside every term is a holiday),
then school and public holidays of the ``holidays`` package for the configured country
and subdivision, then ``term``. The YAML's ``terms: [{start, end}]`` list is the same
format ``confscale-sim --term-calendar`` reads, so one file serves both.

```yaml
country: DE          # optional, ISO 3166 code for the holidays package
subdivision: BY      # optional
terms:   [{start: 2026-10-01, end: 2027-02-12, name: winter}]
holidays: [{start: 2026-12-21, end: 2027-01-06, name: christmas}]
events:  [{start: 2026-11-30, end: 2026-12-04, name: exams, regime: exams}]
```
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import holidays as holidays_package
import yaml

TERM = "term"
HOLIDAY = "holiday"


class CalendarError(ValueError):
    """A calendar file or setting that cannot be used (names the file and entry)."""


@dataclass(frozen=True)
class Period:
    """Days ``start`` … ``end`` (both inclusive) in ``regime``."""

    start: dt.date
    end: dt.date
    regime: str
    name: str = ""

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class RegimeCalendar:
    """Which regime each day belongs to (see the module docstring for precedence)."""

    terms: tuple[Period, ...] = ()
    periods: tuple[Period, ...] = ()  # explicit holidays and events
    country: str | None = None
    subdivision: str | None = None

    def regime(self, day: dt.date) -> str:
        for period in self.periods:
            if period.contains(day):
                return period.regime
        if self.terms and not any(term.contains(day) for term in self.terms):
            return HOLIDAY
        if self.country and day in _country_holidays(self.country, self.subdivision, day.year):
            return HOLIDAY
        return TERM

    def regimes(self, days: Iterable[dt.date]) -> list[str]:
        """Regime per day, computed once per distinct day."""
        cache: dict[dt.date, str] = {}
        out = []
        for day in days:
            if day not in cache:
                cache[day] = self.regime(day)
            out.append(cache[day])
        return out


@lru_cache(maxsize=64)
def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[dt.date]:
    """School plus public holidays of one year (school where the package has them)."""
    days: set[dt.date] = set()
    for category in (holidays_package.PUBLIC, holidays_package.SCHOOL):
        try:
            found = holidays_package.country_holidays(
                country, subdiv=subdivision, years=year, categories=(category,)
            )
        except NotImplementedError as exc:
            if category == holidays_package.PUBLIC:
                raise CalendarError(
                    f"holidays: unknown country/subdivision {country}/{subdivision}: {exc}"
                ) from exc
            continue  # this country has no school-holiday data in the package
        days.update(found.keys())
    return frozenset(days)


def load_calendar(path: Path | str) -> RegimeCalendar:
    """Read the calendar YAML (format in the module docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CalendarError(f"{path}: cannot read calendar: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CalendarError(f"{path}: expected a mapping with terms/holidays/events")
    unknown = set(data) - {"country", "subdivision", "terms", "holidays", "events"}
    if unknown:
        raise CalendarError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; expected "
            "country, subdivision, terms, holidays, events"
        )
    terms = tuple(_periods(path, data, "terms", TERM))
    periods = (*_periods(path, data, "holidays", HOLIDAY), *_periods(path, data, "events", None))
    calendar = RegimeCalendar(
        terms, periods, _opt_str(data.get("country")), _opt_str(data.get("subdivision"))
    )
    if calendar.country:
        _country_holidays(calendar.country, calendar.subdivision, dt.date.today().year)
    return calendar


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _periods(path: Path, data: dict, key: str, regime: str | None) -> list[Period]:
    entries = data.get(key) or []
    if not isinstance(entries, list):
        raise CalendarError(f"{path}: '{key}' must be a list of {{start, end}} entries")
    periods = []
    for index, entry in enumerate(entries):
        where = f"{path}: {key}[{index}]"
        if not isinstance(entry, dict):
            raise CalendarError(f"{where}: expected a mapping with start and end")
        try:
            start = _as_date(entry["start"])
            end = _as_date(entry["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CalendarError(f"{where}: needs 'start' and 'end' as YYYY-MM-DD ({exc})") from exc
        if end < start:
            raise CalendarError(f"{where}: ends ({end}) before it starts ({start})")
        label = regime or str(entry.get("regime") or "")
        if not label:
            raise CalendarError(f"{where}: an event needs a 'regime' name")
        periods.append(Period(start, end, label, str(entry.get("name", ""))))
    return periods


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
