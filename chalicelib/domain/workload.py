"""Workload rules that need no storage: when a team's shift has just ended. Pure."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from chalicelib.domain.hours import Calendar, is_open, next_opening, open_periods

# A closure shorter than this between two shifts (a lunch break in a split shift) is a break,
# not the end of the working day: agents are not signed off for it.
SHORT_BREAK = timedelta(hours=2)


def shift_end_between(calendar: Calendar, since: datetime, now: datetime,
                      short_break: timedelta = SHORT_BREAK) -> Optional[datetime]:
    """When the team's last open period before ``now`` closed, if the team was open at some moment
    in (since, now] and is closed at ``now``; else None. A closure that reopens within
    ``short_break`` (09:00-12:00, 13:00-18:00: lunch) is no ending.

    Shifts that touch (18:00-24:00 then 00:00-06:00, or 12:00 then 12:00) are one stretch of work:
    the team is open at the moment they meet, so no shift "ends" there. A team that has been closed
    since before ``since`` has no ending in between either: whoever is online then chose to be.
    """
    if now <= since or is_open(calendar, now):
        return None
    ended: Optional[datetime] = None
    # The periods come in order from `since` on (the first clipped to it); the walk stops at the
    # first one that starts at or after `now`, so it looks at a day or two, never the whole year.
    for opens, closes in open_periods(calendar, since):
        if opens >= now:
            break
        ended = closes  # closed at `now`, so every period that opened before `now` also closed by then
    if ended is not None:
        reopens = next_opening(calendar, ended)
        if reopens is not None and reopens - ended < short_break:
            return None
    return ended
