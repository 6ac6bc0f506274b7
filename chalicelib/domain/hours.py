"""Business hours per team, and time counted only while a team is open. Pure.

A team's calendar is supervisor data: an IANA time zone, weekly opening hours
(split shifts allowed), dated holidays (closed all day) and dated exceptions
(that day's hours replace the weekly ones; empty hours = closed). Without a
calendar a team is open around the clock: ``ALWAYS_OPEN``.

Opening hours are wall-clock times in the team's zone; every function takes
and returns timezone-aware datetimes and answers in UTC. Across daylight
saving changes a shift opens at the first instant the team's clocks read its
start (a start inside a spring-forward gap opens when the clocks jump; a
start inside a fall-back repeat opens at its first occurrence), and closes
likewise, so one day's shifts stay in order and never overlap.

Zones come from the ``tzdata`` package, not the operating system: Lambda's
image has no zone files we can rely on. It is imported only when a calendar
with a zone other than UTC is used, so functions that never use one do not
pay for it.
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from itertools import islice
from typing import Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Tuple

from chalicelib.domain.errors import BadRequest

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
MINUTES_PER_DAY = 24 * 60
MAX_SHIFTS_PER_DAY = 10
MAX_HOLIDAYS = 366
MAX_EXCEPTIONS = 366
MAX_TIME_ZONE_CHARS = 64
# Dated entries outside these years are almost surely typos ("0226-12-31").
FIRST_YEAR, LAST_YEAR = 2000, 2199
# How far the walk looks for the next opening before it decides the team never
# opens again: a year of holidays and closed exceptions, and then some.
SEARCH_DAYS = 400

_ONE_DAY = timedelta(days=1)
# The end of an always-open calendar's one period: compare with it, never add to it.
FOREVER = datetime.max.replace(tzinfo=timezone.utc)
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CALENDAR_FIELDS = ("time_zone", "weekly", "holidays", "exceptions")
_EXAMPLE = ('e.g. {"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]]}, '
            '"holidays": ["2026-12-31"], "exceptions": [{"date": "2026-12-26", "hours": [["10:00", "15:00"]]}]}')


@dataclass(frozen=True, order=True)
class Shift:
    """One opening interval of a day, [start, end) in minutes after local midnight (end up to 24:00)."""

    start_minute: int
    end_minute: int

    def to_pair(self) -> List[str]:
        return [format_time(self.start_minute), format_time(self.end_minute)]


Day = Tuple[Shift, ...]
_ALL_DAY: Day = (Shift(0, MINUTES_PER_DAY),)


@dataclass(frozen=True)
class Calendar:
    """A team's opening hours. Build it with ``validate_calendar`` (or ``from_dict``), which checks everything."""

    time_zone: str
    weekly: Tuple[Day, ...]                        # seven days, Monday first
    holidays: FrozenSet[date] = frozenset()
    exceptions: Mapping[date, Day] = field(default_factory=dict, hash=False)

    @classmethod
    def always_open(cls) -> "Calendar":
        return ALWAYS_OPEN

    @classmethod
    def from_dict(cls, data: Any) -> "Calendar":
        return validate_calendar(data)

    @property
    def is_always_open(self) -> bool:
        """Open every minute of every day, whatever the zone: counting needs no zone at all."""
        return not self.holidays and not self.exceptions and all(day == _ALL_DAY for day in self.weekly)

    def shifts_on(self, day: date) -> Day:
        """The opening hours of a local date: a holiday closes it, an exception replaces its weekly hours."""
        if day in self.holidays:
            return ()
        special = self.exceptions.get(day)
        if special is not None:
            return special
        return self.weekly[day.weekday()]

    def to_dict(self) -> Dict[str, Any]:
        """The calendar as the API shows and stores it; ``validate_calendar`` reads it back unchanged."""
        return {
            "time_zone": self.time_zone,
            "weekly": {name: [s.to_pair() for s in day] for name, day in zip(WEEKDAYS, self.weekly)},
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "exceptions": [{"date": d.isoformat(), "hours": [s.to_pair() for s in self.exceptions[d]]}
                           for d in sorted(self.exceptions)],
        }


ALWAYS_OPEN = Calendar(time_zone="UTC", weekly=(_ALL_DAY,) * 7)


# ---- validation ------------------------------------------------------------------

def validate_calendar(body: Any) -> Calendar:
    """A supervisor's calendar (``PUT /admin/teams/{team}/hours``), or a BadRequest saying what to fix."""
    if not isinstance(body, dict):
        raise BadRequest(f"the calendar must be a JSON object, {_EXAMPLE}")
    unknown = [key for key in body if key not in _CALENDAR_FIELDS]
    if unknown:
        raise BadRequest(f"unknown field {_quote(str(unknown[0]))}; a calendar has {', '.join(_CALENDAR_FIELDS)}")
    for required in ("time_zone", "weekly"):
        if required not in body:
            raise BadRequest(f"field '{required}' is required, {_EXAMPLE}")
    zone = validate_time_zone(body["time_zone"])
    weekly = _weekly(body["weekly"])
    holidays = _holidays(body.get("holidays", []))
    exceptions = _exceptions(body.get("exceptions", []), holidays)
    if not any(weekly):
        # Dated exceptions alone run out, after which the team would never open
        # and no business-hours clock could ever fall due.
        raise BadRequest("field 'weekly' has no opening hours on any day; give at least one day's hours "
                         "(for a team that is always open, remove its calendar)")
    return Calendar(time_zone=zone, weekly=weekly, holidays=frozenset(holidays), exceptions=exceptions)


def validate_time_zone(name: Any) -> str:
    """An IANA zone name that the bundled tzdata knows (the host's zone files are never consulted)."""
    if not isinstance(name, str) or not name or len(name) > MAX_TIME_ZONE_CHARS:
        raise BadRequest(f"field 'time_zone' must be an IANA time zone name of 1 to {MAX_TIME_ZONE_CHARS} "
                         "characters, e.g. 'Asia/Tokyo' or 'America/New_York'")
    if name not in available_time_zones():
        close = difflib.get_close_matches(name, sorted(available_time_zones()), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "use a name like 'Asia/Tokyo' or 'America/New_York'"
        raise BadRequest(f"time zone {_quote(name)} is not an IANA time zone name; {hint}")
    return name


def _weekly(value: Any) -> Tuple[Day, ...]:
    if not isinstance(value, dict):
        raise BadRequest('field \'weekly\' must be an object of weekday to hours, e.g. {"mon": [["09:00", "18:00"]]}')
    for key in value:
        if key not in WEEKDAYS:
            raise BadRequest(f"weekly: unknown day {_quote(str(key))}; use {', '.join(WEEKDAYS)} "
                             "(a day left out is closed)")
    return tuple(_day(value.get(name, []), f"weekly.{name}") for name in WEEKDAYS)


def _day(value: Any, where: str) -> Day:
    if not isinstance(value, list):
        raise BadRequest(f'{where} must be a list of [start, end] pairs, e.g. [["09:00", "12:00"], ["13:00", "18:00"]]')
    if len(value) > MAX_SHIFTS_PER_DAY:
        raise BadRequest(f"{where} has {len(value)} intervals; at most {MAX_SHIFTS_PER_DAY} a day")
    shifts: List[Shift] = []
    for index, pair in enumerate(value):
        here = f"{where}[{index}]"
        if not (isinstance(pair, list) and len(pair) == 2):
            raise BadRequest(f'{here} must be a [start, end] pair such as ["09:00", "18:00"]')
        start = parse_time(pair[0], f"{here} start")
        end = parse_time(pair[1], f"{here} end")
        if start == MINUTES_PER_DAY:
            raise BadRequest(f"{here}: a day's hours cannot start at 24:00; '24:00' only ends a day "
                             "(continue on the next day from 00:00)")
        if end <= start:
            raise BadRequest(f"{here}: end {format_time(end)} must be after start {format_time(start)} "
                             "(hours past midnight belong to the next day, from 00:00)")
        shifts.append(Shift(start, end))
    shifts.sort()
    for earlier, later in zip(shifts, shifts[1:]):
        if later.start_minute < earlier.end_minute:
            raise BadRequest(f"{where}: {'-'.join(earlier.to_pair())} overlaps {'-'.join(later.to_pair())}; "
                             "intervals of a day must not overlap")
    return tuple(shifts)


def _holidays(value: Any) -> List[date]:
    if not isinstance(value, list):
        raise BadRequest('field \'holidays\' must be a list of dates, e.g. ["2026-12-31", "2027-01-01"]')
    if len(value) > MAX_HOLIDAYS:
        raise BadRequest(f"field 'holidays' has {len(value)} dates; at most {MAX_HOLIDAYS} "
                         "(remove past ones)")
    days: List[date] = []
    seen = set()
    for index, text in enumerate(value):
        day = parse_date(text, f"holidays[{index}]")
        if day in seen:
            raise BadRequest(f"holidays: {day.isoformat()} is listed twice; list each date once")
        seen.add(day)
        days.append(day)
    return days


def _exceptions(value: Any, holidays: List[date]) -> Dict[date, Day]:
    if not isinstance(value, list):
        raise BadRequest('field \'exceptions\' must be a list such as [{"date": "2026-12-26", "hours": [["10:00", "15:00"]]}]')
    if len(value) > MAX_EXCEPTIONS:
        raise BadRequest(f"field 'exceptions' has {len(value)} entries; at most {MAX_EXCEPTIONS} "
                         "(remove past ones)")
    closed = set(holidays)
    result: Dict[date, Day] = {}
    for index, entry in enumerate(value):
        where = f"exceptions[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"date", "hours"}:
            raise BadRequest(f'{where} must be an object with exactly "date" and "hours", e.g. '
                             '{"date": "2026-12-26", "hours": [["10:00", "15:00"]]} ("hours": [] closes the day)')
        day = parse_date(entry["date"], f"{where}.date")
        if day in result:
            raise BadRequest(f"exceptions: {day.isoformat()} is listed twice; give each date one entry")
        if day in closed:
            raise BadRequest(f"{day.isoformat()} is both a holiday and an exception; keep only one "
                             "(an exception with empty hours also closes the day)")
        result[day] = _day(entry["hours"], f"{where}.hours")
    return result


def parse_time(value: Any, where: str = "time") -> int:
    """'HH:MM' (00:00 to 24:00) as minutes after midnight."""
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match:
        hours, minutes = int(match.group(1)), int(match.group(2))
        if (hours < 24 and minutes < 60) or (hours == 24 and minutes == 0):
            return hours * 60 + minutes
    shown = _quote(value) if isinstance(value, str) else "not a string"
    raise BadRequest(f"{where} is {shown}; write times as HH:MM from 00:00 to 24:00, e.g. '09:00'")


def format_time(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_date(value: Any, where: str = "date") -> date:
    """'YYYY-MM-DD', a real date between FIRST_YEAR and LAST_YEAR."""
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise BadRequest(f"{where} {_quote(value)} is not a real date") from None
        if FIRST_YEAR <= day.year <= LAST_YEAR:
            return day
        raise BadRequest(f"{where} {_quote(value)} is outside the years {FIRST_YEAR} to {LAST_YEAR}")
    shown = _quote(value) if isinstance(value, str) else "not a string"
    raise BadRequest(f"{where} is {shown}; write dates as YYYY-MM-DD, e.g. '2026-12-31'")


def _quote(text: str, length: int = 40) -> str:
    clipped = text if len(text) <= length else text[:length] + "…"
    return "'" + clipped.encode("ascii", "backslashreplace").decode("ascii") + "'"


# ---- time zones (tzdata, never the host's files) ---------------------------------

@functools.lru_cache(maxsize=1)
def available_time_zones() -> FrozenSet[str]:
    """Every zone name the bundled tzdata package holds (its own list, with the backward-compatible links)."""
    from importlib import resources
    try:
        listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    except ModuleNotFoundError:  # pragma: no cover - a packaging mistake, not an input error
        raise RuntimeError("the tzdata package is missing from the deployment; add it to requirements.txt") from None
    return frozenset(line.strip() for line in listing.splitlines() if line.strip())


@functools.lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The tzinfo for an IANA name, read from tzdata once per container and zone."""
    if name == "UTC":
        return timezone.utc  # no file needed for the commonest zone
    # Only names from tzdata's own list reach the file system, so a name can never walk out of it.
    if name not in available_time_zones():
        raise ValueError(f"unknown time zone {name!r}")
    from importlib import resources
    from zoneinfo import ZoneInfo
    ref = resources.files("tzdata.zoneinfo")
    for part in name.split("/"):
        ref = ref.joinpath(part)
    with ref.open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


# ---- counting open time ----------------------------------------------------------

def is_open(calendar: Calendar, at: datetime) -> bool:
    return next_opening(calendar, at) == _utc(at)


def next_opening(calendar: Calendar, at: datetime) -> Optional[datetime]:
    """``at`` itself when the team is open then; otherwise when it next opens.

    None when it does not open within SEARCH_DAYS (every day closed by
    holidays and exceptions): there is no next opening to wait for.
    """
    at = _utc(at)
    if calendar.is_always_open:
        return at
    for start, _end in open_periods(calendar, at):
        return start
    return None


def add_business_time(calendar: Calendar, start: datetime, duration: timedelta) -> Optional[datetime]:
    """The moment ``duration`` of open time has passed since ``start`` (UTC).

    A target that runs out exactly as a shift ends is due at that end, not
    when the team opens again. None when the team stops opening before the
    duration is used up (see ``next_opening``).
    """
    start = _utc(start)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if calendar.is_always_open or not duration:
        return start + duration
    remaining = duration
    for opens, closes in open_periods(calendar, start):
        if closes - opens >= remaining:
            return opens + remaining
        remaining -= closes - opens
    return None


def business_time_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """How much open time lies in [start, end); zero when end is not after start."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return timedelta(0)
    if calendar.is_always_open:
        return end - start
    total = timedelta(0)
    for opens, closes in open_periods(calendar, start):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total


def open_periods(calendar: Calendar, since: datetime) -> Iterator[Tuple[datetime, datetime]]:
    """The team's open periods as UTC [start, end) pairs, in order, from ``since`` on (the first clipped to it).

    Walks local dates (never minutes). Periods of consecutive shifts may touch
    (18:00-24:00 then 00:00-06:00); callers that sum them need not merge them.
    Stops after SEARCH_DAYS days without any opening. An always-open calendar
    gives one period that ends at FOREVER.
    """
    since = _utc(since)
    if calendar.is_always_open:
        yield since, FOREVER  # one endless period; no zone needed
        return
    tz = zone(calendar.time_zone)
    # Start a day early: yesterday's last shift may still be open (it ends at 24:00 at the latest).
    day = since.astimezone(tz).date() - _ONE_DAY
    last_open = day
    while (day - last_open).days <= SEARCH_DAYS:
        shifts = calendar.shifts_on(day)
        if shifts:
            for opens, closes in _periods_on(tz, day, shifts):
                last_open = day
                if closes > since:
                    yield max(opens, since), closes
        day += _ONE_DAY


# Cached: an inbox page computes the same team's days over and over.
@functools.lru_cache(maxsize=4096)
def _periods_on(tz: tzinfo, day: date, shifts: Day) -> Tuple[Tuple[datetime, datetime], ...]:
    """A local date's shifts as UTC [opens, closes) pairs, without the ones wholly inside a DST gap."""
    offset = _midnight_offset(tz, day)
    if offset is not None and offset == _midnight_offset(tz, day + _ONE_DAY):
        # The usual day: one offset from midnight to midnight, so plain arithmetic will do.
        midnight = datetime.combine(day, time(), tzinfo=timezone.utc) - offset
        pairs = [(midnight + timedelta(minutes=s.start_minute), midnight + timedelta(minutes=s.end_minute))
                 for s in shifts]
    else:  # the clocks change that day
        pairs = [(local_to_utc(day, s.start_minute, tz), local_to_utc(day, s.end_minute, tz)) for s in shifts]
    return tuple((opens, closes) for opens, closes in pairs if closes > opens)


@functools.lru_cache(maxsize=4096)
def _midnight_offset(tz: tzinfo, day: date) -> Optional[timedelta]:
    return datetime.combine(day, time(), tzinfo=tz).utcoffset()


def local_to_utc(day: date, minute: int, tz: tzinfo) -> datetime:
    """The first instant at which the wall clocks in ``tz`` read ``minute`` after midnight of ``day`` (or later).

    Repeated wall times (clocks set back) give their first occurrence; wall
    times that never happen (clocks set forward) give the moment of the jump.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)  # 24:00 is the next midnight
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    before, after = first.utcoffset(), second.utcoffset()
    if before is None or after is None or before >= after:
        # Not in a gap: fold=0 is the only or the first occurrence.
        return first.astimezone(timezone.utc)
    # In a gap, fold=0 reads it with the old offset (after the jump), fold=1 with the new one
    # (before it): the jump lies between; find it to the second.
    low = second.astimezone(timezone.utc)   # the wall clock still reads earlier than `wall`
    high = first.astimezone(timezone.utc)   # it already reads later
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(timezone.utc)


def next_opening_after_close(calendar: Optional[Calendar], now: datetime) -> Optional[datetime]:
    """When the team next opens after being closed: the next opening, or, while it is open now, the
    one after the current period (a message about being closed must not say "now"). None when the
    team never closes (or has no calendar)."""
    if calendar is None or calendar.is_always_open:
        return None
    previous_end: Optional[datetime] = None
    for start, end in islice(open_periods(calendar, now), 50):
        if start > now and (previous_end is None or start > previous_end):  # touching periods are one
            return start
        previous_end = end
    return None
