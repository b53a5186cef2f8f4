"""Business-day calendars as data: weekends and holidays from TOML, and date rolling.

A calendar file (``matching/calendar_data/<NAME>.toml``) names its weekend days, the years
its holiday list covers, and each holiday::

    name = "US"
    weekend = ["Sat", "Sun"]
    covers = [2026, 2027]
    holidays = [{date = 2026-01-01, name = "New Year's Day"}, ...]

Beyond the covered years only weekends are known: ``Calendar.covers`` tells whether a
date's holidays are, and an operator extends the file before the year turns.

Business-day conventions (ISDA 2006 Section 4.12): ``none`` (unadjusted), ``following``,
``modified_following`` (following unless that crosses into the next month, then
preceding), ``preceding``, ``modified_preceding``.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from os import PathLike

__all__ = ["Calendar", "CalendarError", "BUSINESS_DAY_RULES", "WEEKDAYS", "load_calendar",
           "calendar_from_toml", "is_business_day", "add_business_days",
           "business_days_before", "adjust", "EVERY_DAY"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
BUSINESS_DAY_RULES = ("none", "following", "modified_following", "preceding",
                      "modified_preceding")
_ONE = timedelta(days=1)


class CalendarError(ValueError):
    """A bad calendar file, an unknown calendar, or an unknown business-day rule."""


@dataclass(frozen=True)
class Calendar:
    """Non-business days: a set of weekdays (0 = Monday) and dated holidays."""
    name: str
    weekend: frozenset[int]
    holidays: frozenset[date]
    first_year: int = 0
    last_year: int = 0
    names: tuple[tuple[date, str], ...] = ()

    def is_business_day(self, d: date) -> bool:
        return d.weekday() not in self.weekend and d not in self.holidays

    def covers(self, d: date) -> bool:
        """Whether ``d``'s year is one the holiday list was written for."""
        return self.first_year <= d.year <= self.last_year


#: Tokens settle every day: the calendar of an instrument that names none.
EVERY_DAY = Calendar("EVERY_DAY", frozenset(), frozenset(), 1, 9999)


def calendar_from_toml(data: dict, source: str) -> Calendar:
    """A Calendar from parsed TOML (``source`` names it in errors)."""
    unknown = set(data) - {"name", "description", "weekend", "covers", "holidays", "note"}
    if unknown:
        raise CalendarError(f"{source}: unknown key(s) {sorted(unknown)}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise CalendarError(f"{source}: 'name' must be a non-empty string")
    weekend = data.get("weekend", ["Sat", "Sun"])
    if not isinstance(weekend, list) or not all(w in WEEKDAYS for w in weekend):
        raise CalendarError(f"{source}: 'weekend' must list days from {WEEKDAYS}")
    covers = data.get("covers")
    if (not isinstance(covers, list) or len(covers) != 2
            or not all(isinstance(y, int) and not isinstance(y, bool) for y in covers)
            or covers[0] > covers[1]):
        raise CalendarError(f"{source}: 'covers' must be [first_year, last_year]")
    rows = data.get("holidays", [])
    named: list[tuple[date, str]] = []
    for i, row in enumerate(rows if isinstance(rows, list) else [None]):
        if not isinstance(row, dict) or set(row) - {"date", "name", "tentative"} \
                or not isinstance(row.get("date"), date) or not isinstance(row.get("name"), str):
            raise CalendarError(f"{source}: holiday {i} must be {{date = YYYY-MM-DD, "
                                f"name = \"...\"}}, got {row!r}")
        d = row["date"]
        if not covers[0] <= d.year <= covers[1]:
            raise CalendarError(f"{source}: holiday {d} is outside covers {covers}")
        named.append((d, row["name"]))
    return Calendar(name, frozenset(WEEKDAYS.index(w) for w in weekend),
                    frozenset(d for d, _ in named), covers[0], covers[1],
                    tuple(sorted(named)))


@lru_cache(maxsize=64)
def load_calendar(name: str | None, path: str | PathLike | None = None) -> Calendar:
    """The calendar called ``name``: shipped under matching/calendar_data/, or at ``path``.
    None (or "EVERY_DAY") is the every-day calendar of tokens settling on-chain."""
    if name is None or name == "EVERY_DAY":
        return EVERY_DAY
    try:
        if path is not None:
            with open(path, "rb") as f:
                data = tomllib.load(f)
            source = str(path)
        else:
            text = resources.files("matching").joinpath(
                "calendar_data", f"{name}.toml").read_text("utf-8")
            data, source = tomllib.loads(text), f"matching/calendar_data/{name}.toml"
    except FileNotFoundError:
        raise CalendarError(f"unknown calendar {name!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"calendar {name!r}: not valid TOML: {exc}") from exc
    cal = calendar_from_toml(data, source)
    if cal.name != name:
        raise CalendarError(f"{source}: name {cal.name!r} does not match {name!r}")
    return cal


def _cal(calendar: Calendar | str | None) -> Calendar:
    return calendar if isinstance(calendar, Calendar) else load_calendar(calendar)


def is_business_day(d: date, calendar: Calendar | str | None) -> bool:
    return _cal(calendar).is_business_day(d)


def add_business_days(d: date, n: int, calendar: Calendar | str | None) -> date:
    """``d`` moved ``n`` business days (T+n settlement). With n = 0, ``d`` itself when it
    is a business day, else the following one; negative ``n`` counts back. O(n + closed
    days).

    >>> add_business_days(date(2026, 7, 2), 1, "US")      # 3 July 2026 is a US holiday
    datetime.date(2026, 7, 6)
    """
    cal = _cal(calendar)
    step = _ONE if n >= 0 else -_ONE
    while not cal.is_business_day(d):
        d += step
    for _ in range(abs(n)):
        d += step
        while not cal.is_business_day(d):
            d += step
    return d


def business_days_before(d: date, n: int, calendar: Calendar | str | None) -> date:
    """The date ``n`` business days before ``d`` (a record date ``record_lag`` business days
    before a payment date). ``d`` itself need not be a business day; n = 0 gives ``d``.

    >>> business_days_before(date(2026, 11, 27), 1, "US")   # Thanksgiving is closed
    datetime.date(2026, 11, 25)
    """
    if n < 0:
        raise ValueError(f"business_days_before needs n >= 0, got {n}")
    cal = _cal(calendar)
    for _ in range(n):
        d -= _ONE
        while not cal.is_business_day(d):
            d -= _ONE
    return d


def adjust(d: date, rule: str, calendar: Calendar | str | None) -> date:
    """``d`` rolled to a business day by ``rule`` (ISDA 2006 Section 4.12).

    >>> adjust(date(2026, 5, 31), "modified_following", "US")   # Sunday, month end
    datetime.date(2026, 5, 29)
    """
    if rule not in BUSINESS_DAY_RULES:
        raise CalendarError(f"unknown business-day rule {rule!r}; known: "
                            f"{', '.join(BUSINESS_DAY_RULES)}")
    cal = _cal(calendar)
    if rule == "none" or cal.is_business_day(d):
        return d
    if rule in ("following", "modified_following"):
        out = d
        while not cal.is_business_day(out):
            out += _ONE
        if rule == "modified_following" and out.month != d.month:
            return adjust(d, "preceding", cal)
        return out
    out = d
    while not cal.is_business_day(out):
        out -= _ONE
    if rule == "modified_preceding" and out.month != d.month:
        return adjust(d, "following", cal)
    return out
