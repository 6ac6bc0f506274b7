"""Nobody waits forever: presence, the teams' waiting queues, hand-offs, and shifts that end."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Optional

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import Case, ReplyTarget, with_assignee, with_status
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.errors import BadRequest, Forbidden, InvalidCursor
from chalicelib.domain.hours import validate_calendar
from chalicelib.domain.sla import validate_policy
from chalicelib.domain.workload import shift_end_between
from chalicelib.services import workload
from tests.fakes import Clock, fake_deps

MONDAY_NOON_TOKYO = "2026-11-23T03:00:00.000000Z"  # 12:00 JST, Monday


@pytest.fixture
def clock():
    return Clock(MONDAY_NOON_TOKYO)


@pytest.fixture
def deps(clock):
    return fake_deps(clock)


def add_agent(deps, agent_id, teams, *, capacity=5, presence="online", role="agent"):
    deps.settings.put_agent(Agent(agent_id=agent_id, teams=list(teams), capacity=capacity, role=role))
    if presence != "online":
        deps.settings.set_presence(agent_id, presence, at="2026-11-23T00:00:00.000000Z")
    return deps.settings.get_agent(agent_id)


def add_case(deps, case_id, team, *, priority="normal", created_at="2026-11-23T01:00:00.000000Z",
             due: Optional[str] = None, assignee: Optional[str] = None, status="open") -> Case:
    """A stored case; an assigned active one counts in its agent's load, as the store keeps it."""
    case = Case(case_id=case_id, team=team, platform="x", customer_key=f"x:{case_id}", customer={"id": case_id},
                reply_target=ReplyTarget(platform="x", kind="mention", platform_id=case_id, author_id=case_id),
                created_at=created_at, updated_at=created_at, status=status, priority=priority,
                assignee=assignee, sla_due_at=due)
    assert deps.cases.create(case)
    if assignee and case.active:
        assert deps.settings.adjust_open_cases(assignee, +1, at=created_at)
    return deps.cases.get(case_id)


def count_assigns(deps):
    """The outcome of every ``CaseStore.assign`` call from now on."""
    outcomes = []
    real_assign = deps.cases.assign

    def counted(before, after, *, event):
        outcomes.append(real_assign(before, after, event=event))
        return outcomes[-1]

    deps.cases.assign = counted
    return outcomes


def load(deps, agent_id):
    return deps.settings.agents[agent_id].open_cases


def events(deps, case_id):
    return [{k: v for k, v in e.items() if k not in ("_n", "at")} for e in deps.cases.events.get(case_id, [])]


# ---- coming online, freeing capacity ------------------------------------------------

def test_an_agent_coming_online_picks_up_the_waiting_case(deps, clock):
    aiko = add_agent(deps, "aiko", ["support"], presence="offline")
    add_case(deps, "c1", "support")
    assert workload.assign_waiting("support", deps) == []  # offline: the case waits

    clock.advance(minutes=5)
    answer = workload.set_presence(aiko, {"presence": "online"}, deps)

    assert answer["assigned"] == ["c1"]
    assert answer["presence"] == "online" and answer["open_cases"] == 1
    assert answer["presence_changed_at"] == clock.now()
    case = deps.cases.get("c1")
    assert case.assignee == "aiko" and case.assigned_at == clock.now()
    assert load(deps, "aiko") == 1
    assert events(deps, "c1") == [{"event": "assigned", "assignee": "aiko", "by": "auto", "reason": "agent_has_room"}]


def test_the_most_urgent_waiting_cases_of_all_the_agents_teams_go_first_up_to_capacity(deps):
    aiko = add_agent(deps, "aiko", ["support", "vip"], capacity=4, presence="offline")
    add_case(deps, "old_normal", "support", created_at="2026-11-22T01:00:00.000000Z")
    add_case(deps, "new_normal", "vip", created_at="2026-11-23T01:00:00.000000Z")
    add_case(deps, "high", "vip", priority="high", created_at="2026-11-23T02:00:00.000000Z")
    add_case(deps, "due_later", "vip", priority="low", due="2026-11-23T05:00:00.000000Z")
    add_case(deps, "due_soon", "support", priority="low", due="2026-11-23T04:00:00.000000Z")
    add_case(deps, "elsewhere", "sales", priority="urgent", due="2026-11-23T03:30:00.000000Z")

    answer = workload.set_presence(aiko, {"presence": "online"}, deps)

    # SLA due first, then priority, then oldest; never a case of a team she is not in.
    assert answer["assigned"] == ["due_soon", "due_later", "high", "old_normal"]
    assert load(deps, "aiko") == 4
    assert deps.cases.get("new_normal").assignee is None  # she is full: it keeps waiting
    assert deps.cases.get("elsewhere").assignee is None
    assert workload.fill_agent("aiko", deps) == []


def test_an_agent_away_gets_nothing_new_but_keeps_her_cases(deps):
    aiko = add_agent(deps, "aiko", ["support"])
    add_case(deps, "mine", "support", assignee="aiko")

    answer = workload.set_presence(aiko, {"presence": "away"}, deps)
    add_case(deps, "waiting", "support")

    assert answer["assigned"] == [] and answer["presence"] == "away"
    assert workload.fill_agent("aiko", deps) == []
    assert workload.assign_waiting("support", deps) == []
    assert deps.cases.get("waiting").assignee is None
    assert deps.cases.get("mine").assignee == "aiko" and load(deps, "aiko") == 1


def test_a_resolved_case_frees_capacity_and_fill_agent_gives_the_next_waiting_one(deps, clock):
    add_agent(deps, "aiko", ["support"], capacity=1)
    first = add_case(deps, "first", "support", assignee="aiko")
    add_case(deps, "next", "support")
    assert workload.fill_agent("aiko", deps) == []  # full

    clock.advance(minutes=3)
    resolved = with_status(first, "resolved", clock.now())
    assert deps.cases.change_status(first, resolved, event={"event": "status", "status": "resolved"})
    assert load(deps, "aiko") == 0

    assert workload.fill_agent("aiko", deps) == ["next"]
    assert deps.cases.get("next").assignee == "aiko" and load(deps, "aiko") == 1


def test_a_case_taken_meanwhile_is_skipped_and_the_next_one_given(deps):
    add_agent(deps, "aiko", ["support"])
    add_agent(deps, "ben", ["support"])
    add_case(deps, "a", "support", priority="urgent")
    add_case(deps, "b", "support")
    real_page = deps.cases.waiting_page

    def page_then_ben_takes_a(team, limit, after):
        page = real_page(team, limit, after)
        a = deps.cases.get("a")
        if a.assignee is None:  # another writer, between our read and our write
            assert deps.cases.assign(a, with_assignee(a, "ben", "2026-11-23T03:00:01.000000Z"), event={}) == "assigned"
        return page

    deps.cases.waiting_page = page_then_ben_takes_a
    assert workload.fill_agent("aiko", deps) == ["b"]
    assert deps.cases.get("a").assignee == "ben"
    assert (load(deps, "aiko"), load(deps, "ben")) == (1, 1)


def test_an_agent_who_filled_up_meanwhile_takes_nothing(deps):
    add_agent(deps, "aiko", ["support"], capacity=1)
    add_case(deps, "a", "support")
    add_case(deps, "b", "support")
    real_page = deps.cases.waiting_page

    def page_then_full(team, limit, after):
        page = real_page(team, limit, after)
        deps.settings.adjust_open_cases("aiko", +1, at="2026-11-23T03:00:01.000000Z")
        return page

    deps.cases.waiting_page = page_then_full
    outcomes = count_assigns(deps)
    assert workload.fill_agent("aiko", deps) == []
    assert deps.cases.get("a").assignee is None and load(deps, "aiko") == 1
    assert outcomes == ["full"]  # she stops at once: no write for "b" that could only fail too


def test_the_sla_marks_are_refreshed_in_the_write_that_assigns(deps, monkeypatch):
    add_agent(deps, "aiko", ["support"])
    add_case(deps, "c1", "support")
    seen = []

    def refresh(case, _deps, now):
        seen.append((case.assignee, now))
        return replace(case, sla_state="met")

    monkeypatch.setattr("chalicelib.services.sla.refresh", refresh)
    assert workload.fill_agent("aiko", deps) == ["c1"]
    assert seen == [("aiko", deps.now())]
    assert deps.cases.get("c1").sla_state == "met"


def test_a_presence_body_is_checked(deps):
    aiko = add_agent(deps, "aiko", ["support"])
    with pytest.raises(BadRequest):
        workload.set_presence(aiko, {"presence": "busy"}, deps)
    assert deps.settings.agents["aiko"].presence == "online"


# ---- the sweep ----------------------------------------------------------------------

def test_the_sweep_reads_the_queue_once_and_nothing_else_when_nobody_waits(deps):
    add_agent(deps, "aiko", ["support"])
    add_case(deps, "busy", "support", assignee="aiko")
    calls = {"waiting_page": 0, "team_agents": 0}
    real_page, real_agents = deps.cases.waiting_page, deps.settings.team_agents

    def counted_page(*args, **kwargs):
        calls["waiting_page"] += 1
        return real_page(*args, **kwargs)

    def counted_agents(*args, **kwargs):
        calls["team_agents"] += 1
        return real_agents(*args, **kwargs)

    deps.cases.waiting_page, deps.settings.team_agents = counted_page, counted_agents
    assert workload.assign_waiting("support", deps) == []
    assert calls == {"waiting_page": 1, "team_agents": 0}


def test_the_sweep_gives_the_most_urgent_first_to_the_least_loaded_agents_with_room(deps):
    add_agent(deps, "aiko", ["support"], capacity=2)
    add_agent(deps, "ben", ["support"], capacity=1)
    add_agent(deps, "carl", ["support"], presence="away")
    add_case(deps, "aikos", "support", assignee="aiko")
    add_case(deps, "low", "support", priority="low")
    add_case(deps, "urgent", "support", priority="urgent")
    add_case(deps, "high", "support", priority="high")

    outcomes = count_assigns(deps)
    assert workload.assign_waiting("support", deps) == ["urgent", "high"]
    assert outcomes == ["assigned", "assigned"]  # the loads it counts as it goes waste no write on a full agent

    assert deps.cases.get("urgent").assignee == "ben"  # the least loaded first
    assert deps.cases.get("high").assignee == "aiko"
    assert deps.cases.get("low").assignee is None  # everyone with presence online is full
    assert (load(deps, "aiko"), load(deps, "ben"), load(deps, "carl")) == (2, 1, 0)
    assert events(deps, "high") == [{"event": "assigned", "assignee": "aiko", "by": "auto", "reason": "queue"}]


# ---- hand-offs by rule ----------------------------------------------------------------

def test_reassign_with_nobody_free_keeps_the_assignee(deps):
    add_agent(deps, "aiko", ["support"])
    add_agent(deps, "ben", ["support"], capacity=1)
    add_agent(deps, "carl", ["support"], presence="offline")
    case = add_case(deps, "late", "support", assignee="aiko")
    add_case(deps, "bens", "support", assignee="ben")

    assert workload.reassign(case, deps, reason="sla_breach") is None

    assert deps.cases.get("late").assignee == "aiko"
    assert (load(deps, "aiko"), load(deps, "ben")) == (1, 1)
    assert events(deps, "late") == []


def test_reassign_hands_the_case_to_the_least_loaded_other_agent(deps, clock):
    add_agent(deps, "aiko", ["support"])
    add_agent(deps, "ben", ["support"])
    add_agent(deps, "dai", ["support"])
    case = add_case(deps, "late", "support", assignee="aiko")
    add_case(deps, "bens", "support", assignee="ben")

    moved = workload.reassign(case, deps, reason="sla_breach")

    assert moved is not None and moved.assignee == "dai" and moved.assigned_at == clock.now()
    assert deps.cases.get("late").assignee == "dai"
    assert (load(deps, "aiko"), load(deps, "ben"), load(deps, "dai")) == (0, 1, 1)
    assert events(deps, "late") == [{"event": "reassigned", "from": "aiko", "to": "dai", "assignee": "dai",
                                     "by": "auto", "reason": "sla_breach"}]


def test_a_hand_off_decided_on_an_old_copy_is_not_made(deps, clock):
    add_agent(deps, "aiko", ["support"])
    add_agent(deps, "ben", ["support"])
    add_agent(deps, "vera", ["escalations"])
    old = add_case(deps, "c1", "support", assignee="aiko")
    # Meanwhile aiko answered (any write): the rule that chose the hand-off must look again.
    current = deps.cases.get("c1")
    assert deps.cases.save(replace(current, first_response_at=clock.now()))

    assert workload.reassign(old, deps, reason="sla_breach") is None
    assert workload.move_to_team(old, "escalations", deps, reason="sla_breach") is None
    assert (deps.cases.get("c1").team, deps.cases.get("c1").assignee) == ("support", "aiko")
    assert (load(deps, "aiko"), load(deps, "ben"), load(deps, "vera")) == (1, 0, 0)

    resolved = deps.cases.get("c1")
    assert deps.cases.change_status(resolved, with_status(resolved, "resolved", clock.now()), event={})
    assert workload.reassign(deps.cases.get("c1"), deps, reason="sla_breach") is None  # no longer active


def test_move_to_team_moves_the_case_and_an_agent_there_takes_it(deps):
    add_agent(deps, "aiko", ["support"])
    add_agent(deps, "vera", ["escalations"])
    case = add_case(deps, "late", "support", assignee="aiko")

    moved = workload.move_to_team(case, "escalations", deps, reason="sla_breach")

    assert moved is not None and (moved.team, moved.assignee) == ("escalations", "vera")
    assert (load(deps, "aiko"), load(deps, "vera")) == (0, 1)
    assert events(deps, "late") == [
        {"event": "moved", "from_team": "support", "to_team": "escalations", "from": "aiko", "by": "auto",
         "reason": "sla_breach"},
        {"event": "assigned", "assignee": "vera", "by": "auto", "reason": "queue"},
    ]


def test_a_moved_case_waits_in_its_new_team_when_nobody_there_has_room(deps):
    add_agent(deps, "aiko", ["support"])
    add_agent(deps, "vera", ["escalations"], presence="away")
    case = add_case(deps, "late", "support", assignee="aiko")

    moved = workload.move_to_team(case, "escalations", deps, reason="sla_breach")

    assert moved is not None and (moved.team, moved.assignee) == ("escalations", None)
    assert load(deps, "aiko") == 0
    assert [c.case_id for c in deps.cases.waiting_page("escalations", 10, None).cases] == ["late"]


def test_a_case_no_longer_active_is_not_moved(deps):
    add_agent(deps, "vera", ["escalations"])
    case = add_case(deps, "done", "support", status="resolved")
    assert workload.move_to_team(case, "escalations", deps, reason="sla_breach") is None
    assert deps.cases.get("done").team == "support" and load(deps, "vera") == 0


# ---- shifts -------------------------------------------------------------------------------

TOKYO = {"time_zone": "Asia/Tokyo", "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
TOKYO_CLOSES_MONDAY = "2026-11-23T09:00:00.000000Z"  # 18:00 JST


def minutes_around(moment: str, before: int, after: int):
    """(moment - before seconds, moment + after seconds), as stored times."""
    base = parse_iso(moment)
    return to_iso(base - timedelta(seconds=before)), to_iso(base + timedelta(seconds=after))


def test_the_end_of_a_shift_signs_its_online_agents_off_once(deps, clock):
    deps.settings.calendars["tokyo"] = validate_calendar(TOKYO)
    add_agent(deps, "aiko", ["tokyo"])
    add_agent(deps, "ben", ["tokyo"], presence="away")
    add_agent(deps, "carl", ["tokyo"], presence="offline")
    add_case(deps, "aikos", "tokyo", assignee="aiko")
    since, now = minutes_around(TOKYO_CLOSES_MONDAY, 30, 30)

    assert workload.end_shifts(deps, since=None, now=now) == []  # first run: nothing is known to have ended
    assert workload.end_shifts(deps, since=minutes_around(TOKYO_CLOSES_MONDAY, 90, 0)[0],
                               now=minutes_around(TOKYO_CLOSES_MONDAY, 30, 0)[0]) == []  # still open
    assert workload.end_shifts(deps, since=since, now=now) == ["aiko", "ben"]

    assert deps.settings.agents["aiko"].presence == "offline"
    assert deps.settings.agents["aiko"].presence_changed_at == now
    assert deps.cases.get("aikos").assignee == "aiko" and load(deps, "aiko") == 1  # she keeps her cases
    # She works late: no new shift ended, so the next runs leave her online.
    clock.moment = datetime(2026, 11, 23, 9, 5, tzinfo=timezone.utc)
    workload.set_presence(deps.settings.get_agent("aiko"), {"presence": "online"}, deps)
    assert workload.end_shifts(deps, since=now, now="2026-11-23T09:01:30.000000Z") == []
    assert workload.end_shifts(deps, since="2026-11-23T09:05:30.000000Z", now="2026-11-23T09:06:30.000000Z") == []
    assert deps.settings.agents["aiko"].presence == "online"


def test_an_agent_who_went_online_after_the_shift_ended_stays_on_even_in_a_late_run(deps, clock):
    deps.settings.calendars["tokyo"] = validate_calendar(TOKYO)
    add_agent(deps, "aiko", ["tokyo"], presence="offline")
    clock.moment = datetime(2026, 11, 23, 9, 0, 10, tzinfo=timezone.utc)  # 10 s after closing time
    workload.set_presence(deps.settings.get_agent("aiko"), {"presence": "online"}, deps)

    since, now = minutes_around(TOKYO_CLOSES_MONDAY, 30, 30)
    assert workload.end_shifts(deps, since=since, now=now) == []
    assert deps.settings.agents["aiko"].presence == "online"


def test_an_agent_stays_on_while_another_of_her_teams_is_open(deps):
    deps.settings.calendars["tokyo"] = validate_calendar(TOKYO)
    deps.settings.calendars["london"] = validate_calendar(
        {"time_zone": "Europe/London", "weekly": {"mon": [["08:00", "17:00"]]}})
    deps.settings.calendars["osaka"] = validate_calendar(
        {"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "17:00"]]}})
    add_agent(deps, "aiko", ["tokyo", "london"])     # London opened at 08:00 GMT
    add_agent(deps, "ben", ["tokyo", "support"])     # support has no calendar: open around the clock
    add_agent(deps, "carl", ["tokyo", "osaka"])      # Osaka closed at 17:00 JST: no help

    since, now = minutes_around(TOKYO_CLOSES_MONDAY, 30, 30)
    assert workload.end_shifts(deps, since=since, now=now) == ["carl"]


def test_shifts_that_meet_at_midnight_are_one_night_shift_and_a_lunch_break_ends_no_shift(deps):
    night_and_split = {"time_zone": "Asia/Tokyo", "weekly": {
        "mon": [["09:00", "12:00"], ["13:00", "18:00"], ["22:00", "24:00"]], "tue": [["00:00", "06:00"]]}}
    deps.settings.calendars["tokyo"] = validate_calendar(night_and_split)
    add_agent(deps, "aiko", ["tokyo"])

    assert workload.end_shifts(deps, since="2026-11-23T14:59:30.000000Z", now="2026-11-23T15:00:30.000000Z") == []
    assert workload.end_shifts(deps, since="2026-11-23T20:59:30.000000Z", now="2026-11-23T21:00:30.000000Z") == ["aiko"]
    # The morning shift ends at 12:00 JST (03:00 UTC) and the team reopens at 13:00: lunch, not the end of
    # the day, so nobody is signed off; the afternoon shift ends at 18:00 (09:00 UTC) with 4 hours to the
    # night shift: that is an end.
    deps.settings.set_presence("aiko", "online", at="2026-11-23T00:00:00.000000Z")
    assert workload.end_shifts(deps, since="2026-11-23T02:59:30.000000Z", now="2026-11-23T03:00:30.000000Z") == []
    assert deps.settings.agents["aiko"].presence == "online"
    assert workload.end_shifts(deps, since="2026-11-23T08:59:30.000000Z", now="2026-11-23T09:00:30.000000Z") == ["aiko"]


def test_a_shift_ending_inside_the_spring_forward_gap_ends_when_the_clocks_jump(deps):
    # New York, Sunday 8 March 2026: at 02:00 EST the clocks jump to 03:00 EDT (07:00 UTC), so 02:30 never comes.
    deps.settings.calendars["ny"] = validate_calendar(
        {"time_zone": "America/New_York", "weekly": {"sat": [["22:00", "24:00"]], "sun": [["00:00", "02:30"]]}})
    add_agent(deps, "aiko", ["ny"])

    assert workload.end_shifts(deps, since="2026-03-08T06:29:30.000000Z", now="2026-03-08T06:30:30.000000Z") == []
    assert workload.end_shifts(deps, since="2026-03-08T06:59:30.000000Z", now="2026-03-08T07:00:30.000000Z") == ["aiko"]


def test_a_shift_end_is_found_only_when_the_team_was_open_in_between_and_is_closed_now():
    calendar = validate_calendar(TOKYO)
    at = parse_iso
    closes = at("2026-11-23T09:00:00Z")
    assert shift_end_between(calendar, at("2026-11-23T08:59:00Z"), at("2026-11-23T09:01:00Z")) == closes
    # Across a whole night the last ending counts; an ending exactly at `since` belonged to the previous run.
    assert shift_end_between(calendar, at("2026-11-23T00:00:00Z"), at("2026-11-23T20:00:00Z")) == closes
    assert shift_end_between(calendar, at("2026-11-23T00:00:00Z"), at("2026-11-24T10:00:00Z")) == at("2026-11-24T09:00:00Z")
    assert shift_end_between(calendar, closes, at("2026-11-23T09:01:00Z")) is None
    assert shift_end_between(calendar, at("2026-11-23T08:58:00Z"), at("2026-11-23T08:59:00Z")) is None  # open
    assert shift_end_between(calendar, at("2026-11-23T09:01:00Z"), at("2026-11-23T09:00:30Z")) is None


# ---- the queue, for supervisors ---------------------------------------------------------

def test_supervisors_page_through_a_teams_waiting_queue(deps):
    boss = add_agent(deps, "boss", ["leads"], role="supervisor")
    for index, priority in enumerate(("low", "urgent", "normal")):
        add_case(deps, f"w{index}", "support", priority=priority)
    add_case(deps, "other", "sales")

    first = workload.waiting_view(boss, "support", {"limit": "2"}, deps)
    assert [c["case_id"] for c in first["cases"]] == ["w1", "w2"]
    assert "sla_due_at" not in first["cases"][0]
    rest = workload.waiting_view(boss, "support", {"limit": "2", "cursor": first["next_cursor"]}, deps)
    assert [c["case_id"] for c in rest["cases"]] == ["w0"] and rest["next_cursor"] is None

    with pytest.raises(InvalidCursor):
        workload.waiting_view(boss, "sales", {"cursor": first["next_cursor"]}, deps)
    for bad in ("0", "101", "ten"):
        with pytest.raises(BadRequest):
            workload.waiting_view(boss, "support", {"limit": bad}, deps)


def test_the_waiting_queue_shows_each_cases_live_clocks(deps):
    boss = add_agent(deps, "boss", ["leads"], role="supervisor")
    add_case(deps, "w", "support")  # created 01:00 UTC; the clock reads 03:00
    assert workload.waiting_view(boss, "support", {}, deps)["cases"][0]["sla"] is None  # no policy: no clocks

    deps.settings.sla_policy = validate_policy({"business_hours": False, "default": {"normal": {"first_response": 60}}})
    shown = workload.waiting_view(boss, "support", {}, deps)["cases"][0]["sla"]
    assert shown["state"] == "breached" and shown["first_response_due"].startswith("2026-11-23T02:00:00")


def test_agents_may_not_see_the_waiting_queue(deps):
    aiko = add_agent(deps, "aiko", ["support"])
    with pytest.raises(Forbidden):
        workload.waiting_view(aiko, "support", {}, deps)
