"""SLA rules: policies as data, and the clocks they set on a case, as of an injected now."""
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import hours
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.sla import (
    CaseTimes,
    Pause,
    SlaPolicy,
    Target,
    Targets,
    compute_clocks,
    crossings_reached,
    next_deadline,
    validate_policy,
)

UTC = timezone.utc
M = timedelta(minutes=1)
H = timedelta(hours=1)
T0 = datetime(2026, 12, 22, 3, 0, tzinfo=UTC)   # Tuesday 12:00 in Tokyo, a weekday

POLICY = {
    "business_hours": True,
    "default": {
        "urgent": {"first_response": 30, "next_response": 60,
                   "resolution": {"minutes": 480, "business_hours": False}},
        "normal": {"first_response": 60, "next_response": 120, "resolution": 1440},
    },
    "overrides": [
        {"team": "vip", "targets": {"urgent": {"first_response": 15}}},
        {"platform": "x", "targets": {"urgent": {"first_response": 20, "next_response": 40}}},
        {"team": "vip", "platform": "whatsapp", "targets": {"urgent": {"first_response": {"minutes": 10,
                                                                                           "warning_ratio": 0.5}}}},
    ],
}


def around_the_clock(first=60, following=None, resolution=None, ratio=0.8):
    def target(kind, minutes):
        return None if minutes is None else Target(kind, minutes, business_hours=False, warning_ratio=ratio)
    return Targets(first_response=target("first_response", first), next_response=target("next_response", following),
                   resolution=target("resolution", resolution))


def tokyo(*parts):
    return datetime(*parts, tzinfo=hours.zone("Asia/Tokyo"))


def tokyo_office(**extra):
    return hours.validate_calendar({"time_zone": "Asia/Tokyo", "weekly": {
        d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}, **extra})


# ---- policy ----------------------------------------------------------------------

def test_the_most_specific_level_sets_each_target():
    policy = validate_policy(POLICY)
    minutes = lambda t: (t.first_response.minutes, t.next_response.minutes, t.resolution.minutes)  # noqa: E731
    assert minutes(policy.targets_for("urgent", "support", "facebook")) == (30, 60, 480)
    assert minutes(policy.targets_for("urgent", "vip", "facebook")) == (15, 60, 480)
    assert minutes(policy.targets_for("urgent", "support", "x")) == (20, 40, 480)
    # Team beats channel; what the team does not set still comes from the channel.
    assert minutes(policy.targets_for("urgent", "vip", "x")) == (15, 40, 480)
    assert minutes(policy.targets_for("urgent", "vip", "whatsapp")) == (10, 60, 480)
    assert minutes(policy.targets_for("urgent")) == (30, 60, 480)


def test_targets_take_the_policy_flags_unless_they_set_their_own():
    policy = validate_policy(POLICY)
    urgent = policy.targets_for("urgent", "vip", "whatsapp")
    assert urgent.first_response == Target("first_response", 10, business_hours=True, warning_ratio=0.5)
    assert urgent.resolution == Target("resolution", 480, business_hours=False, warning_ratio=0.8)
    assert urgent.first_response.warning_after == 5 * M
    assert policy.targets_for("low", "support", "x") == Targets()          # no targets for low
    assert policy.targets_for("whatever").first_response.minutes == 60     # unknown priority: normal
    assert urgent.get("resolution") is urgent.resolution
    with pytest.raises(ValueError):
        urgent.get("lunch")


def test_policy_round_trips():
    policy = validate_policy(POLICY)
    data = policy.to_dict()
    assert data["default"]["urgent"]["first_response"] == {"minutes": 30}
    assert data["default"]["urgent"]["resolution"] == {"minutes": 480, "business_hours": False}
    assert validate_policy(data) == policy and validate_policy(data).to_dict() == data
    assert SlaPolicy.from_dict(data) == policy
    assert validate_policy({"default": {}}).to_dict() == {"business_hours": True, "warning_ratio": 0.8,
                                                          "default": {}, "overrides": [],
                                                          "actions": {"warning": ["notify"], "breach": ["notify"]}}


@pytest.mark.parametrize("body, message", [
    ("30", "must be a JSON object"),
    ({}, "'default' is required"),
    ({"default": {}, "grace": 5}, "unknown field 'grace'"),
    ({"default": {"critical": {}}}, "unknown priority 'critical'; use urgent, high, normal, low"),
    ({"default": {"urgent": 30}}, "default.urgent must be an object"),
    ({"default": {"urgent": {"first_reply": 30}}}, "default.urgent: unknown field 'first_reply'"),
    ({"default": {"urgent": {"first_response": 0}}}, "default.urgent.first_response must be a whole number of minutes"),
    ({"default": {"urgent": {"first_response": 129601}}}, "from 1 to 129,600"),
    ({"default": {"urgent": {"first_response": 1.5}}}, "must be a number of minutes or an object"),
    ({"default": {"urgent": {"first_response": True}}}, "must be a number of minutes or an object"),
    ({"default": {"urgent": {"first_response": {"business_hours": True}}}}, "first_response.minutes is required"),
    ({"default": {"urgent": {"first_response": {"minutes": 30, "hours": 1}}}}, "unknown field 'hours'"),
    ({"default": {"urgent": {"first_response": {"minutes": 30, "business_hours": "yes"}}}}, "must be true"),
    ({"default": {"urgent": {"first_response": {"minutes": 30, "warning_ratio": 1}}}}, "between 0 and 1"),
    ({"default": {}, "warning_ratio": 0}, "warning_ratio must be a number between 0 and 1"),
    ({"default": {}, "business_hours": 1}, "business_hours must be true"),
    ({"default": {}, "overrides": {}}, "'overrides' must be a list"),
    ({"default": {}, "overrides": [{"targets": {}}]}, "overrides[0] needs a 'team', a 'platform' or both"),
    ({"default": {}, "overrides": [{"team": "a#b", "targets": {}}]}, "overrides[0].team must be a team name"),
    ({"default": {}, "overrides": [{"platform": "tiktok", "targets": {}}]}, "overrides[0].platform must be one of x"),
    ({"default": {}, "overrides": [{"team": "vip"}]}, "overrides[0].targets is required"),
    ({"default": {}, "overrides": [{"team": "vip", "targets": {}, "when": 1}]}, "unknown field 'when'"),
    ({"default": {}, "overrides": [{"team": "vip", "targets": {}}, {"team": "vip", "targets": {}}]},
     "overrides[1] is for the same team and channel as overrides[0]"),
    ({"default": {}, "overrides": [{"team": f"t{i}", "targets": {}} for i in range(201)]}, "201 entries; at most 200"),
])
def test_a_bad_policy_is_refused_with_what_to_fix(body, message):
    with pytest.raises(BadRequest) as refused:
        validate_policy(body)
    assert message in str(refused.value)


# ---- clocks: warning, breach, met ------------------------------------------------

def test_warning_then_breach_at_the_right_moments():
    times = CaseTimes(customer_posted_at=T0)
    targets = around_the_clock(first=60)

    before = compute_clocks(times, targets, now=T0 + 47 * M)
    assert before.state == "ok" and before.first_response_due == T0 + H
    assert before.first_response.warning_at == T0 + 48 * M
    assert before.first_response.remaining == 13 * M
    assert next_deadline(before).at == T0 + 48 * M and next_deadline(before).level == "warning"
    assert crossings_reached(before) == []

    warned = compute_clocks(times, targets, now=T0 + 48 * M)
    assert warned.state == "warning"
    assert [x.level for x in crossings_reached(warned)] == ["warning"]
    assert next_deadline(warned).at == T0 + H and next_deadline(warned).level == "breach"

    breached = compute_clocks(times, targets, now=T0 + H)
    assert breached.state == "breached" and breached.first_response.overdue_by == timedelta(0)
    assert [x.level for x in crossings_reached(breached)] == ["warning", "breach"]
    assert next_deadline(breached) is None

    later = compute_clocks(times, targets, now=T0 + 75 * M)
    assert later.first_response.overdue_by == 15 * M and later.first_response.elapsed == 75 * M
    assert later.first_response.remaining is None


def test_clocks_start_from_the_customers_post_not_from_when_we_received_it():
    # Fetched 50 minutes late: already in warning on arrival.
    clocks = compute_clocks(CaseTimes(customer_posted_at=T0), around_the_clock(first=60), now=T0 + 50 * M)
    assert clocks.state == "warning" and clocks.first_response_due == T0 + H


def test_a_met_target_stays_met():
    times = CaseTimes(customer_posted_at=T0, first_response_at=T0 + 30 * M)
    for now in (T0 + 30 * M, T0 + 2 * H, T0 + timedelta(days=30)):
        clocks = compute_clocks(times, around_the_clock(first=60), now=now)
        assert clocks.state == "met" and clocks.first_response.met
        assert clocks.first_response.elapsed == 30 * M and clocks.first_response.overdue_by is None
        assert crossings_reached(clocks) == [] and next_deadline(clocks) is None


def test_a_response_exactly_at_the_due_moment_meets_it_one_later_breaches_it_by_how_much():
    on_time = compute_clocks(CaseTimes(T0, first_response_at=T0 + H), around_the_clock(first=60), now=T0 + 2 * H)
    assert on_time.first_response.state == "met"
    late = compute_clocks(CaseTimes(T0, first_response_at=T0 + 90 * M), around_the_clock(first=60), now=T0 + 2 * H)
    assert late.state == "breached" and late.first_response.overdue_by == 30 * M
    assert [x.level for x in crossings_reached(late)] == ["warning", "breach"]


def test_a_response_after_now_has_not_happened_yet():
    times = CaseTimes(customer_posted_at=T0, first_response_at=T0 + 90 * M)
    assert compute_clocks(times, around_the_clock(first=60), now=T0 + 30 * M).state == "ok"
    assert compute_clocks(times, around_the_clock(first=60), now=T0 + 80 * M).state == "breached"
    assert compute_clocks(times, around_the_clock(first=60), now=T0 + 90 * M).state == "breached"  # stopped late


# ---- clocks: pending pauses ------------------------------------------------------

def test_pending_pauses_the_clocks():
    pause = Pause(T0 + 20 * M, T0 + 2 * H)
    times = CaseTimes(customer_posted_at=T0, pauses=(pause,))

    during = compute_clocks(CaseTimes(T0, pauses=(Pause(T0 + 20 * M),)), around_the_clock(first=60), now=T0 + H)
    assert during.first_response.paused and during.state == "ok"
    assert during.first_response_due is None and during.first_response.remaining == 40 * M
    assert next_deadline(during) is None   # nothing to wake for while waiting on the customer

    after = compute_clocks(times, around_the_clock(first=60), now=T0 + 2 * H + 10 * M)
    assert not after.first_response.paused
    assert after.first_response_due == T0 + 2 * H + 40 * M          # 20 minutes before, 40 after
    assert after.first_response.warning_at == T0 + 2 * H + 28 * M
    assert after.first_response.elapsed == 30 * M

    # The same history, judged while the pause was still going on: paused then.
    assert compute_clocks(times, around_the_clock(first=60), now=T0 + H).first_response.paused


def test_a_pause_after_a_warning_keeps_the_warning_and_a_pause_after_a_breach_keeps_the_breach():
    warned = compute_clocks(CaseTimes(T0, pauses=(Pause(T0 + 50 * M),)), around_the_clock(first=60), now=T0 + 5 * H)
    assert warned.state == "warning" and warned.first_response.warning_at == T0 + 48 * M
    assert warned.first_response_due is None
    breached = compute_clocks(CaseTimes(T0, pauses=(Pause(T0 + 70 * M),)), around_the_clock(first=60), now=T0 + 5 * H)
    assert breached.state == "breached" and breached.first_response.overdue_by == 4 * H
    assert breached.first_response.elapsed == 70 * M


def test_pauses_before_a_clock_starts_or_after_it_stops_do_not_move_it():
    times = CaseTimes(T0, first_response_at=T0 + 10 * M, follow_up_at=T0 + 3 * H,
                      pauses=(Pause(T0 + H, T0 + 2 * H), Pause(T0 + 4 * H + 30 * M)))
    clocks = compute_clocks(times, around_the_clock(first=60, following=60), now=T0 + 6 * H)
    assert clocks.first_response.met and clocks.first_response_due == T0 + H
    assert clocks.next_response_due == T0 + 4 * H       # the earlier pause is over before the follow-up
    # Pending after the breach: paused, and still breached.
    assert clocks.next_response.state == "breached" and clocks.next_response.paused
    assert clocks.next_response.elapsed == 90 * M


def test_resolving_during_a_pause_stops_the_clock_there():
    times = CaseTimes(T0, resolved_at=T0 + 3 * H, pauses=(Pause(T0 + 20 * M),))
    clocks = compute_clocks(times, around_the_clock(first=60, resolution=120), now=T0 + 10 * H)
    assert clocks.state == "met"
    assert clocks.resolution.elapsed == 20 * M and clocks.resolution.stopped_at == T0 + 3 * H


def test_a_reopened_case_does_not_count_the_time_it_spent_resolved():
    # Resolved at +1h, reopened at +2 days: the service passes the resolved time as a pause.
    times = CaseTimes(T0, first_response_at=T0 + 10 * M, pauses=(Pause(T0 + H, T0 + timedelta(days=2)),))
    clocks = compute_clocks(times, around_the_clock(first=60, resolution=240), now=T0 + timedelta(days=2, hours=1))
    assert clocks.resolution.state == "ok" and clocks.resolution.elapsed == 2 * H
    assert clocks.resolution_due == T0 + timedelta(days=2, hours=3)


# ---- clocks: follow-ups, resolution ----------------------------------------------

def test_a_follow_up_starts_the_next_response_clock():
    answered_once = CaseTimes(T0, first_response_at=T0 + 10 * M)
    targets = around_the_clock(first=60, following=60)
    quiet = compute_clocks(answered_once, targets, now=T0 + 3 * H)
    assert quiet.next_response is None and quiet.state == "met"

    waiting = CaseTimes(T0, first_response_at=T0 + 10 * M, follow_up_at=T0 + 3 * H)
    clocks = compute_clocks(waiting, targets, now=T0 + 3 * H + 50 * M)
    assert clocks.first_response.met
    assert clocks.next_response_due == T0 + 4 * H and clocks.state == "warning"
    assert next_deadline(clocks).at == T0 + 4 * H and next_deadline(clocks).kind == "next_response"

    answered = CaseTimes(T0, first_response_at=T0 + 10 * M, follow_up_at=T0 + 3 * H,
                         next_response_at=T0 + 3 * H + 55 * M)
    done = compute_clocks(answered, targets, now=T0 + 5 * H)
    assert done.next_response.met and done.state == "met"
    assert [x.level for x in crossings_reached(done)] == ["warning"]   # it did warn before the answer


def test_each_follow_up_cycle_has_its_own_crossing_keys():
    targets = around_the_clock(first=60, following=60)
    one = compute_clocks(CaseTimes(T0, T0 + 10 * M, follow_up_at=T0 + 3 * H), targets, now=T0 + 5 * H)
    two = compute_clocks(CaseTimes(T0, T0 + 10 * M, follow_up_at=T0 + 6 * H), targets, now=T0 + 8 * H)
    keys_one = {x.key for x in crossings_reached(one)}
    keys_two = {x.key for x in crossings_reached(two)}
    assert len(keys_one) == len(keys_two) == 2 and not keys_one & keys_two
    assert "next_response:breach:2026-12-22T06:00:00.000000Z" in keys_one


def test_resolving_stops_every_clock_and_a_reopen_starts_the_resolution_clock_again():
    targets = around_the_clock(first=60, resolution=120)
    resolved = compute_clocks(CaseTimes(T0, resolved_at=T0 + 30 * M), targets, now=T0 + 5 * H)
    assert resolved.first_response.met and resolved.resolution.met and resolved.state == "met"
    reopened = compute_clocks(CaseTimes(T0), targets, now=T0 + 100 * M)   # reopening clears resolved_at
    assert reopened.state == "breached" and reopened.first_response.breached
    assert reopened.resolution.state == "warning"


def test_the_case_state_is_that_of_its_most_urgent_running_clock():
    targets = around_the_clock(first=60, resolution=600)
    late_answer = CaseTimes(T0, first_response_at=T0 + 2 * H)
    clocks = compute_clocks(late_answer, targets, now=T0 + 3 * H)
    assert clocks.first_response.breached and clocks.resolution.state == "ok"
    assert clocks.state == "ok"     # the breach is history; nothing running is late
    closed = compute_clocks(CaseTimes(T0, first_response_at=T0 + 2 * H, resolved_at=T0 + 4 * H), targets,
                            now=T0 + 5 * H)
    assert closed.state == "breached"   # nothing running: breached if any target was
    assert compute_clocks(CaseTimes(T0), Targets(), now=T0 + 5 * H).state == "ok"   # no targets at all


# ---- business hours vs around the clock ------------------------------------------

def test_business_hours_and_around_the_clock_targets_on_the_same_case():
    team = tokyo_office(holidays=["2026-12-28"])
    policy = validate_policy({"default": {"urgent": {
        "first_response": 60, "next_response": 240, "resolution": {"minutes": 480, "business_hours": False}}}})
    targets = policy.targets_for("urgent", "support", "x")
    complaint = tokyo(2026, 12, 25, 23, 50)   # Friday night, Monday is a holiday

    clocks = compute_clocks(CaseTimes(complaint), targets, team, now=tokyo(2026, 12, 26, 7, 0))
    assert clocks.first_response_due == tokyo(2026, 12, 29, 10, 0)
    assert clocks.first_response.warning_at == tokyo(2026, 12, 29, 9, 48)
    assert clocks.first_response.elapsed == timedelta(0)          # nobody was at work yet
    assert clocks.resolution_due == tokyo(2026, 12, 26, 7, 50)     # around the clock: Saturday morning
    assert clocks.state == "warning"                               # the resolution clock's
    assert next_deadline(clocks).at == tokyo(2026, 12, 26, 7, 50)

    # A four-hour business-hours target skips lunch: Tuesday 14:00.
    follow_up = CaseTimes(complaint, first_response_at=tokyo(2026, 12, 29, 9, 30), follow_up_at=complaint)
    assert compute_clocks(follow_up, targets, team, now=tokyo(2026, 12, 29, 9, 30)).next_response_due == \
        tokyo(2026, 12, 29, 14, 0)

    # Without a calendar the team is open around the clock.
    assert compute_clocks(CaseTimes(complaint), targets, None, now=complaint).first_response_due == \
        tokyo(2026, 12, 26, 0, 50)


def test_pending_while_the_team_is_closed_changes_nothing_while_open_it_moves_the_deadline():
    team = tokyo_office(holidays=["2026-12-28"])
    targets = Targets(first_response=Target("first_response", 60, business_hours=True, warning_ratio=0.8))
    complaint = tokyo(2026, 12, 25, 23, 50)
    weekend = Pause(tokyo(2026, 12, 26, 10, 0), tokyo(2026, 12, 28, 10, 0))
    now = tokyo(2026, 12, 29, 9, 0)
    assert compute_clocks(CaseTimes(complaint, pauses=(weekend,)), targets, team, now=now).first_response_due == \
        tokyo(2026, 12, 29, 10, 0)
    tuesday = Pause(tokyo(2026, 12, 29, 9, 30), tokyo(2026, 12, 29, 13, 30))
    later = tokyo(2026, 12, 29, 14, 0)
    clocks = compute_clocks(CaseTimes(complaint, pauses=(tuesday,)), targets, team, now=later)
    # 30 minutes before the pause; the other 30 after it ends at 13:30.
    assert clocks.first_response_due == tokyo(2026, 12, 29, 14, 0) and clocks.state == "breached"
    assert clocks.first_response.elapsed == H


def test_a_business_hours_clock_during_closed_time_warns_at_the_right_moment():
    team = tokyo_office()
    targets = Targets(first_response=Target("first_response", 60, business_hours=True, warning_ratio=0.8))
    at_5pm = tokyo(2026, 12, 22, 17, 30)     # 30 minutes left in the day
    clocks = compute_clocks(CaseTimes(at_5pm), targets, team, now=tokyo(2026, 12, 23, 8, 0))
    assert clocks.state == "ok" and clocks.first_response.elapsed == 30 * M
    assert clocks.first_response.warning_at == tokyo(2026, 12, 23, 9, 18)
    assert compute_clocks(CaseTimes(at_5pm), targets, team, now=tokyo(2026, 12, 23, 9, 18)).state == "warning"


# ---- a scheduler fires each crossing exactly once --------------------------------

def test_a_scheduler_waking_at_each_next_deadline_fires_every_crossing_once():
    times = CaseTimes(T0, first_response_at=T0 + 50 * M, follow_up_at=T0 + 2 * H,
                      pauses=(Pause(T0 + 2 * H + 10 * M, T0 + 3 * H),))
    targets = around_the_clock(first=60, following=30, resolution=300)
    # The service computes the clocks again whenever the case changes, and the
    # scheduler wakes at the next deadline: whichever comes first.
    case_changes = [T0 + 50 * M, T0 + 2 * H, T0 + 2 * H + 10 * M, T0 + 3 * H]
    fired = {}
    now = T0
    for _ in range(20):
        clocks = compute_clocks(times, targets, now=now)
        for crossing in crossings_reached(clocks):
            assert fired.setdefault(crossing.key, now) <= now   # a stored key is never fired again
        upcoming = next_deadline(clocks)
        assert upcoming is None or upcoming.at > now
        wake = [t for t in case_changes if t > now] + ([upcoming.at] if upcoming else [])
        if not wake:
            break
        now = min(wake)
    assert {k: v - T0 for k, v in fired.items()} == {
        "first_response:warning:2026-12-22T03:00:00.000000Z": 48 * M,
        # next response: 10 minutes, then the pause, then 14 more to the warning and 20 to the breach
        "next_response:warning:2026-12-22T05:00:00.000000Z": 3 * H + 14 * M,
        "next_response:breach:2026-12-22T05:00:00.000000Z": 3 * H + 20 * M,
        # resolution: 300 minutes, plus the 50-minute pause
        "resolution:warning:2026-12-22T03:00:00.000000Z": 4 * H + 50 * M,
        "resolution:breach:2026-12-22T03:00:00.000000Z": 5 * H + 50 * M,
    }


def test_clocks_as_json_for_the_api():
    clocks = compute_clocks(CaseTimes(T0), around_the_clock(first=60), now=T0 + 70 * M)
    assert clocks.to_dict() == {"state": "breached", "first_response": {
        "state": "breached", "minutes": 60, "business_hours": False, "started_at": "2026-12-22T03:00:00.000000Z",
        "stopped_at": None, "warning_at": "2026-12-22T03:48:00.000000Z", "due_at": "2026-12-22T04:00:00.000000Z",
        "paused": False, "elapsed_seconds": 4200, "remaining_seconds": None, "overdue_seconds": 600}}


# ---- inputs ----------------------------------------------------------------------

def test_case_times_refuse_what_cannot_happen():
    with pytest.raises(ValueError, match="timezone-aware"):
        CaseTimes(datetime(2026, 12, 22, 3, 0))
    with pytest.raises(ValueError, match="needs first_response_at"):
        CaseTimes(T0, follow_up_at=T0 + H)
    with pytest.raises(ValueError, match="needs follow_up_at"):
        CaseTimes(T0, first_response_at=T0 + H, next_response_at=T0 + 2 * H)
    with pytest.raises(ValueError, match="cannot end before"):
        Pause(T0 + H, T0)
    with pytest.raises(ValueError, match="only the latest pause"):
        CaseTimes(T0, pauses=(Pause(T0), Pause(T0 + H, T0 + 2 * H)))
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_clocks(CaseTimes(T0), Targets(), now=datetime(2026, 12, 22))
