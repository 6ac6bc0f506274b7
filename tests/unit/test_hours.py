"""Business hours: calendars as supervisor data, and time counted only while a team is open."""
from datetime import date, datetime, timedelta, timezone

import pytest

from chalicelib.domain import hours
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.hours import (
    ALWAYS_OPEN,
    Calendar,
    Shift,
    add_business_time,
    business_time_between,
    is_open,
    next_opening,
    validate_calendar,
)

WORKDAYS = ("mon", "tue", "wed", "thu", "fri")
UTC = timezone.utc
H = timedelta(hours=1)


def calendar(time_zone="Asia/Tokyo", day=(("09:00", "12:00"), ("13:00", "18:00")), days=WORKDAYS, **extra):
    return validate_calendar({"time_zone": time_zone, "weekly": {d: [list(p) for p in day] for d in days}, **extra})


def local(zone_name, *parts, fold=0):
    return datetime(*parts, tzinfo=hours.zone(zone_name), fold=fold)


def tokyo(*parts):
    return local("Asia/Tokyo", *parts)


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


# ---- the example from the feature ------------------------------------------------

def test_friday_night_complaint_before_a_monday_holiday_is_due_on_tuesday_in_business_hours():
    team = calendar(holidays=["2026-12-28"])
    complaint = tokyo(2026, 12, 25, 23, 50)  # Friday night

    assert not is_open(team, complaint)
    assert next_opening(team, complaint) == tokyo(2026, 12, 29, 9, 0)          # Tuesday: Monday is a holiday
    assert add_business_time(team, complaint, 1 * H) == tokyo(2026, 12, 29, 10, 0)
    assert add_business_time(team, complaint, 4 * H) == tokyo(2026, 12, 29, 14, 0)  # lunch excluded
    assert business_time_between(team, complaint, tokyo(2026, 12, 29, 14, 0)) == 4 * H
    # Answers are in UTC whatever the team's zone.
    assert add_business_time(team, complaint, 1 * H).tzinfo is UTC
    assert add_business_time(team, complaint, 1 * H) == utc(2026, 12, 29, 1, 0)


# ---- split shifts, exceptions, holidays ------------------------------------------

def test_split_shifts_close_for_lunch_starts_count_ends_do_not():
    team = calendar()
    assert is_open(team, tokyo(2026, 12, 22, 9, 0))          # a start is open
    assert is_open(team, tokyo(2026, 12, 22, 11, 59))
    assert not is_open(team, tokyo(2026, 12, 22, 12, 0))     # an end is closed
    assert not is_open(team, tokyo(2026, 12, 22, 8, 59))
    assert next_opening(team, tokyo(2026, 12, 22, 12, 10)) == tokyo(2026, 12, 22, 13, 0)
    assert next_opening(team, tokyo(2026, 12, 22, 10, 0)) == tokyo(2026, 12, 22, 10, 0)   # open: now
    assert business_time_between(team, tokyo(2026, 12, 22, 0, 0), tokyo(2026, 12, 23, 0, 0)) == 8 * H
    # Three hours from 09:00 run out exactly as the morning shift ends: due at 12:00, not 13:00.
    assert add_business_time(team, tokyo(2026, 12, 22, 9, 0), 3 * H) == tokyo(2026, 12, 22, 12, 0)
    assert add_business_time(team, tokyo(2026, 12, 22, 11, 30), H) == tokyo(2026, 12, 22, 13, 30)
    assert add_business_time(team, tokyo(2026, 12, 22, 17, 30), H) == tokyo(2026, 12, 23, 9, 30)


def test_an_exception_opens_a_saturday_and_an_empty_one_closes_a_weekday():
    team = calendar(holidays=["2026-12-28"], exceptions=[
        {"date": "2026-12-26", "hours": [["10:00", "15:00"]]},   # Saturday opening
        {"date": "2026-12-24", "hours": []},                     # Thursday closed
    ])
    assert not is_open(team, tokyo(2026, 12, 24, 10, 0))
    assert next_opening(team, tokyo(2026, 12, 24, 8, 0)) == tokyo(2026, 12, 25, 9, 0)
    assert next_opening(team, tokyo(2026, 12, 25, 23, 50)) == tokyo(2026, 12, 26, 10, 0)
    assert add_business_time(team, tokyo(2026, 12, 25, 23, 50), H) == tokyo(2026, 12, 26, 11, 0)
    # Five hours on Saturday, then Monday's holiday, then Tuesday.
    assert add_business_time(team, tokyo(2026, 12, 25, 23, 50), 6 * H) == tokyo(2026, 12, 29, 10, 0)
    assert not is_open(team, tokyo(2027, 1, 2, 10, 0))      # other Saturdays stay closed
    assert team.shifts_on(date(2026, 12, 26)) == (Shift(600, 900),)


def test_shifts_ending_at_midnight_continue_into_the_next_day():
    team = validate_calendar({"time_zone": "Asia/Tokyo", "weekly": {
        "fri": [["20:00", "24:00"]], "sat": [["00:00", "02:00"]]}})
    assert is_open(team, tokyo(2026, 12, 26, 0, 0))
    assert add_business_time(team, tokyo(2026, 12, 25, 23, 0), 2 * H) == tokyo(2026, 12, 26, 1, 0)
    assert business_time_between(team, tokyo(2026, 12, 25, 0, 0), tokyo(2026, 12, 27, 0, 0)) == 6 * H


def test_a_long_span_is_walked_day_by_day():
    team = calendar(day=(("09:00", "17:00"),))
    # 52 weeks of 5 eight-hour days.
    assert business_time_between(team, tokyo(2027, 1, 4, 0, 0), tokyo(2028, 1, 3, 0, 0)) == 52 * 40 * H
    assert add_business_time(team, tokyo(2027, 1, 4, 0, 0), 52 * 40 * H) == tokyo(2027, 12, 31, 17, 0)


def test_zero_and_backward_spans():
    team = calendar()
    at = tokyo(2026, 12, 26, 3, 0)  # closed
    assert add_business_time(team, at, timedelta(0)) == at
    assert business_time_between(team, at, at - H) == timedelta(0)
    with pytest.raises(ValueError):
        add_business_time(team, at, -H)


# ---- daylight saving -------------------------------------------------------------

def test_new_york_office_hours_follow_the_clocks_across_the_spring_change():
    team = calendar("America/New_York", day=(("09:00", "17:00"),))
    friday_open, monday_open = next_opening(team, utc(2026, 3, 6, 0, 0)), next_opening(team, utc(2026, 3, 7, 0, 0))
    assert friday_open == utc(2026, 3, 6, 14, 0)     # 09:00 EST
    assert monday_open == utc(2026, 3, 9, 13, 0)     # 09:00 EDT
    assert add_business_time(team, local("America/New_York", 2026, 3, 6, 16, 0), 2 * H) == utc(2026, 3, 9, 14, 0)
    assert business_time_between(team, utc(2026, 3, 6, 0, 0), utc(2026, 3, 10, 0, 0)) == 16 * H


def test_new_york_night_shift_is_an_hour_shorter_in_spring_and_longer_in_autumn():
    night = calendar("America/New_York", day=(("00:00", "05:00"),), days=("sun",))
    spring_day = (utc(2026, 3, 8, 0, 0), utc(2026, 3, 9, 0, 0))
    autumn_day = (utc(2026, 11, 1, 0, 0), utc(2026, 11, 2, 0, 0))
    assert business_time_between(night, *spring_day) == 4 * H
    assert business_time_between(night, *autumn_day) == 6 * H
    # 01:00 EST + 2 hours of open time: 04:00 EDT (the clocks skipped 02:00-03:00).
    assert add_business_time(night, local("America/New_York", 2026, 3, 8, 1, 0), 2 * H) == utc(2026, 3, 8, 8, 0)
    # Open through both 01:15s of the autumn night.
    assert is_open(night, local("America/New_York", 2026, 11, 1, 1, 15, fold=0))
    assert is_open(night, local("America/New_York", 2026, 11, 1, 1, 15, fold=1))


def test_new_york_a_start_inside_the_skipped_hour_opens_when_the_clocks_jump():
    team = calendar("America/New_York", day=(("02:30", "06:00"),), days=("sun",))
    assert next_opening(team, utc(2026, 3, 8, 0, 0)) == utc(2026, 3, 8, 7, 0)   # 03:00 EDT, the jump
    assert business_time_between(team, utc(2026, 3, 8, 0, 0), utc(2026, 3, 9, 0, 0)) == 3 * H
    # A start inside the repeated hour opens at its first occurrence (01:30 EDT).
    repeated = calendar("America/New_York", day=(("01:30", "03:00"),), days=("sun",))
    assert next_opening(repeated, utc(2026, 11, 1, 0, 0)) == utc(2026, 11, 1, 5, 30)
    assert business_time_between(repeated, utc(2026, 11, 1, 0, 0), utc(2026, 11, 2, 0, 0)) == 2.5 * H


def test_new_york_a_shift_wholly_inside_the_skipped_hour_never_opens():
    team = calendar("America/New_York", day=(("02:10", "02:50"),), days=("sun",))
    assert next_opening(team, utc(2026, 3, 8, 0, 0)) == local("America/New_York", 2026, 3, 15, 2, 10)


def test_london_weekdays_and_a_weekend_night_shift_across_both_changes():
    team = calendar("Europe/London", day=(("09:00", "17:00"),))
    assert next_opening(team, utc(2026, 3, 27, 0, 0)) == utc(2026, 3, 27, 9, 0)    # Friday, GMT
    assert next_opening(team, utc(2026, 3, 28, 0, 0)) == utc(2026, 3, 30, 8, 0)    # Monday, BST
    assert add_business_time(team, utc(2026, 3, 27, 16, 0), 2 * H) == utc(2026, 3, 30, 9, 0)
    assert business_time_between(team, utc(2026, 3, 27, 9, 0), utc(2026, 3, 30, 16, 0)) == 16 * H

    night = validate_calendar({"time_zone": "Europe/London",
                               "weekly": {"sat": [["22:00", "24:00"]], "sun": [["00:00", "06:00"]]}})
    spring = business_time_between(night, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0))
    autumn = business_time_between(night, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0))
    assert (spring, autumn) == (7 * H, 9 * H)
    # 23:00 GMT + 3 hours open: 03:00 BST on the clocks (they skipped 01:00-02:00), 02:00 UTC.
    assert add_business_time(night, local("Europe/London", 2026, 3, 28, 23, 0), 3 * H) == \
        local("Europe/London", 2026, 3, 29, 3, 0) == utc(2026, 3, 29, 2, 0)


# ---- around the clock and never --------------------------------------------------

def test_without_a_calendar_a_team_is_open_around_the_clock():
    assert Calendar.always_open() is ALWAYS_OPEN and ALWAYS_OPEN.is_always_open
    at = utc(2026, 12, 26, 3, 0)
    assert is_open(ALWAYS_OPEN, at) and next_opening(ALWAYS_OPEN, at) == at
    assert add_business_time(ALWAYS_OPEN, at, 30 * H) == at + 30 * H
    assert business_time_between(ALWAYS_OPEN, at, at + 30 * H) == 30 * H
    assert hours.zone("UTC") is UTC   # no zone file needed for it
    # Round the clock in another zone counts the same, DST or not.
    anywhere = calendar("America/New_York", day=(("00:00", "24:00"),), days=hours.WEEKDAYS)
    assert anywhere.is_always_open
    assert business_time_between(anywhere, utc(2026, 3, 7), utc(2026, 3, 10)) == 72 * H


def test_a_calendar_that_stops_opening_has_no_next_opening():
    only_once = Calendar(time_zone="Asia/Tokyo", weekly=((),) * 7, exceptions={date(2026, 12, 26): (Shift(600, 660),)})
    assert next_opening(only_once, tokyo(2026, 12, 20, 0, 0)) == tokyo(2026, 12, 26, 10, 0)
    assert next_opening(only_once, tokyo(2026, 12, 27, 0, 0)) is None
    assert add_business_time(only_once, tokyo(2026, 12, 20, 0, 0), 2 * H) is None
    assert business_time_between(only_once, tokyo(2026, 12, 20, 0, 0), tokyo(2028, 1, 1, 0, 0)) == H


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(calendar(), datetime(2026, 12, 25, 9, 0))


# ---- validation ------------------------------------------------------------------

def test_to_dict_round_trips_and_normalizes():
    body = {"time_zone": "Asia/Tokyo",
            "weekly": {"tue": [["13:00", "18:00"], ["09:00", "12:00"]], "mon": [["09:00", "24:00"]]},
            "holidays": ["2027-01-01", "2026-12-31"],
            "exceptions": [{"date": "2026-12-26", "hours": [["10:00", "15:00"]]}, {"date": "2026-12-24", "hours": []}]}
    team = validate_calendar(body)
    data = team.to_dict()
    assert data["weekly"]["tue"] == [["09:00", "12:00"], ["13:00", "18:00"]]
    assert data["weekly"]["mon"] == [["09:00", "24:00"]] and data["weekly"]["sun"] == []
    assert data["holidays"] == ["2026-12-31", "2027-01-01"]
    assert [e["date"] for e in data["exceptions"]] == ["2026-12-24", "2026-12-26"]
    assert validate_calendar(data) == team and validate_calendar(data).to_dict() == data
    assert Calendar.from_dict(data) == team
    assert validate_calendar(ALWAYS_OPEN.to_dict()) == ALWAYS_OPEN


def test_zones_come_from_the_tzdata_package():
    names = hours.available_time_zones()
    assert {"Asia/Tokyo", "America/New_York", "Europe/London", "UTC"} <= names
    assert "localtime" not in names and not any(n.startswith("/") or ".." in n for n in names)
    assert hours.zone("Asia/Tokyo").key == "Asia/Tokyo"   # type: ignore[attr-defined]
    assert hours.zone("Asia/Tokyo") is hours.zone("Asia/Tokyo")   # read once per container
    with pytest.raises(ValueError):
        hours.zone("../../etc/passwd")


def _week(**days):
    return {"time_zone": "Asia/Tokyo", "weekly": days}


@pytest.mark.parametrize("body, message", [
    ([], "must be a JSON object"),
    ({"weekly": {}}, "'time_zone' is required"),
    ({"time_zone": "Asia/Tokyo"}, "'weekly' is required"),
    ({**_week(mon=[["09:00", "18:00"]]), "colour": "red"}, "unknown field 'colour'"),
    ({"time_zone": "Asia/Tokio", "weekly": {"mon": [["09:00", "18:00"]]}}, "did you mean 'Asia/Tokyo'"),
    ({"time_zone": "Mars/Olympus", "weekly": {"mon": [["09:00", "18:00"]]}}, "not an IANA time zone"),
    ({"time_zone": 9, "weekly": {}}, "IANA time zone name"),
    ({"time_zone": "localtime", "weekly": {"mon": [["09:00", "18:00"]]}}, "not an IANA time zone"),
    (_week(monday=[["09:00", "18:00"]]), "unknown day 'monday'; use mon, tue"),
    (_week(mon=[["9:00", "18:00"]]), "weekly.mon[0] start is '9:00'; write times as HH:MM"),
    (_week(mon=[["09:00", "25:00"]]), "weekly.mon[0] end is '25:00'"),
    (_week(mon=[["09:60", "18:00"]]), "weekly.mon[0] start is '09:60'"),
    (_week(mon=[["09:00", 18]]), "end is not a string"),
    (_week(mon=[["18:00", "09:00"]]), "end 09:00 must be after start 18:00"),
    (_week(mon=[["09:00", "09:00"]]), "end 09:00 must be after start 09:00"),
    (_week(mon=[["24:00", "24:00"]]), "cannot start at 24:00"),
    (_week(mon=[["09:00", "12:00"], ["11:00", "13:00"]]), "09:00-12:00 overlaps 11:00-13:00"),
    (_week(mon=[["09:00", "12:00"], ["09:00", "12:00"]]), "overlaps"),
    (_week(mon=[["09:00"]]), "[start, end] pair"),
    (_week(mon="09:00-18:00"), "list of [start, end] pairs"),
    (_week(mon=[["00:00", "01:00"]] * 11), "11 intervals; at most 10"),
    (_week(mon=[]), "no opening hours on any day"),
    ({**_week(mon=[["09:00", "18:00"]]), "holidays": ["2026-02-30"]}, "'2026-02-30' is not a real date"),
    ({**_week(mon=[["09:00", "18:00"]]), "holidays": ["31/12/2026"]}, "write dates as YYYY-MM-DD"),
    ({**_week(mon=[["09:00", "18:00"]]), "holidays": ["0226-12-31"]}, "outside the years"),
    ({**_week(mon=[["09:00", "18:00"]]), "holidays": ["2026-12-31", "2026-12-31"]}, "listed twice"),
    ({**_week(mon=[["09:00", "18:00"]]), "holidays": "2026-12-31"}, "must be a list of dates"),
    ({**_week(mon=[["09:00", "18:00"]]), "holidays": ["2026-01-01"] * 367}, "367 dates; at most 366"),
    ({**_week(mon=[["09:00", "18:00"]]), "exceptions": [{"date": "2026-12-26"}]}, 'exactly "date" and "hours"'),
    ({**_week(mon=[["09:00", "18:00"]]), "exceptions": [{"date": "2026-12-26", "hours": []}] * 2}, "listed twice"),
    ({**_week(mon=[["09:00", "18:00"]]), "exceptions": [{"date": "x", "hours": []}] * 367}, "367 entries; at most 366"),
    ({**_week(mon=[["09:00", "18:00"]]), "holidays": ["2026-12-26"],
      "exceptions": [{"date": "2026-12-26", "hours": []}]}, "both a holiday and an exception"),
    ({**_week(mon=[["09:00", "18:00"]]),
      "exceptions": [{"date": "2026-12-26", "hours": [["15:00", "10:00"]]}]}, "exceptions[0].hours[0]: end 10:00"),
])
def test_a_bad_calendar_is_refused_with_what_to_fix(body, message):
    with pytest.raises(BadRequest) as refused:
        validate_calendar(body)
    assert message in str(refused.value)


def test_maxima_are_allowed():
    day = [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(10)]
    holidays = [(date(2027, 1, 1) + timedelta(days=i)).isoformat() for i in range(366)]
    exceptions = [{"date": (date(2029, 1, 1) + timedelta(days=i)).isoformat(), "hours": []} for i in range(366)]
    team = validate_calendar({"time_zone": "Asia/Tokyo", "weekly": {"mon": day},
                              "holidays": holidays, "exceptions": exceptions})
    assert len(team.weekly[0]) == 10 and len(team.holidays) == 366 and len(team.exceptions) == 366
    # Touching intervals are not overlapping.
    validate_calendar(_week(mon=[["09:00", "12:00"], ["12:00", "13:00"]]))
