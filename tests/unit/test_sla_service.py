"""Service levels on the fakes, with an injected clock: deadlines in the team's hours, the tick that fires
each warning and breach once (with its actions in the same write), pauses, follow-ups, the inbox by due
time, and the supervisors' settings."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain import case as case_rules
from chalicelib.domain.agent import Agent
from chalicelib.domain.errors import BadRequest, Forbidden, InvalidCursor
from chalicelib.services import assign, away, inbox, sla, workload
from chalicelib.services.case_updates import modify_case
from tests.fakes import Clock, fake_deps, mention

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
# Mon-Fri 09:00-18:00 in Tokyo; Monday 2026-11-23 (Labour Thanksgiving Day) is a holiday.
TOKYO = {"time_zone": "Asia/Tokyo", "weekly": {d: [["09:00", "18:00"]] for d in WEEKDAYS}, "holidays": ["2026-11-23"]}
FRIDAY_2350_TOKYO = "2026-11-20T14:50:00.000000Z"


def policy(*, business_hours=True, warning=("notify",), breach=("notify",)):
    return {"business_hours": business_hours, "warning_ratio": 0.8,
            "default": {"normal": {"first_response": 60, "next_response": 30, "resolution": 1440},
                        "high": {"first_response": 30, "next_response": 15, "resolution": 720},
                        "urgent": {"first_response": 15, "next_response": 10, "resolution": 240}},
            "actions": {"warning": list(warning), "breach": list(breach)}}


def triaged(post, **triage):
    return json.dumps({"mention": post.to_dict(), "triage": {"priority": "normal", "case": True, **triage}})


def make_deps(start, *, calendar=None, sla_policy=None, agents=()):
    clock = Clock(start)
    deps = fake_deps(clock)
    deps.settings.put_agent(Agent(agent_id="boss", teams=["support"], role="supervisor"))
    deps.settings.put_agent(Agent(agent_id="vboss", teams=["vip"], role="supervisor"))
    deps.settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    for agent in agents:
        deps.settings.put_agent(agent)
    boss = deps.settings.get_agent("boss")
    if calendar is not None:
        sla.save_calendar(boss, "support", calendar, deps)
    if sla_policy is not None:
        sla.save_policy(boss, sla_policy, deps)
    return deps, clock


def open_case(deps, platform_id="1", author_id="7", posted=None, **triage):
    result = assign.assign_message(triaged(mention(platform_id, author_id=author_id,
                                                   created_at=posted or deps.now()), **triage), deps)
    return deps.cases.get(result["case_id"])


def tick_at(deps, clock, moment, **options):
    clock.moment = Clock(moment).moment
    return sla.run_tick(deps, **options)


def feed(deps, who):
    return sorted(deps.notifications.feeds.get(who, {}).values(), key=lambda n: n.at)


# ---- deadlines in the team's hours ------------------------------------------------

def test_a_complaint_at_2350_tokyo_on_the_friday_before_a_holiday_is_due_on_the_next_business_day():
    deps, _clock = make_deps(FRIDAY_2350_TOKYO, calendar=TOKYO, sla_policy=policy())
    case = open_case(deps, posted=FRIDAY_2350_TOKYO)
    # Closed Saturday, Sunday and the Monday holiday: Tuesday 09:00 + 60 business minutes = 10:00 JST.
    assert case.sla_due_at == "2026-11-24T01:00:00.000000Z"
    assert case.sla_warning_at == "2026-11-24T00:48:00.000000Z"  # 80 % of an hour: 09:48
    shown = inbox.case_detail(deps.settings.get_agent("boss"), case.case_id, deps)["case"]["sla"]
    assert shown["first_response_due"] == "2026-11-24T01:00:00.000000Z"
    # 24 business hours: 9 on Tuesday, 9 on Wednesday, 6 on Thursday (15:00 JST).
    assert shown["resolution_due"] == "2026-11-26T06:00:00.000000Z"
    assert shown["next_response_due"] is None and shown["next_response"] is None
    assert shown["state"] == "ok" and shown["met"] == [] and shown["breached"] == []
    assert shown["first_response"]["business_hours"] is True and shown["first_response"]["minutes"] == 60


def test_without_a_policy_a_case_has_no_clocks_and_picks_a_later_policy_up_at_its_next_tick():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z")
    case = open_case(deps)
    assert (case.sla_state, case.sla_due_at, case.sla_warning_at) == ("ok", None, None)
    assert inbox.case_detail(deps.settings.get_agent("boss"), case.case_id, deps)["case"]["sla"] is None
    # A supervisor sets a policy; the open case is not rewritten then...
    body, created = sla.save_policy(deps.settings.get_agent("boss"), policy(business_hours=False), deps)
    assert created and body["policy"]["default"]["normal"]["first_response"] == {"minutes": 60}
    assert deps.cases.get(case.case_id).sla_due_at is None
    # ...but it is looked at again within the recheck interval, and then carries the policy's clocks.
    tick_at(deps, clock, "2026-11-23T03:30:00.000000Z")
    assert deps.cases.get(case.case_id).sla_due_at is None  # not due for a look yet
    tick_at(deps, clock, "2026-11-23T04:00:00.000000Z")
    stored = deps.cases.get(case.case_id)
    assert stored.sla_due_at == "2026-11-23T04:00:00.000000Z" and stored.sla_state == "breached"
    # Posted an hour ago: due now. The warning it passed is recorded, not sent after the fact.
    assert [n.reason for n in feed(deps, "boss")] == ["sla_breach"]
    assert sorted(k.split(":")[1] for k in stored.sla_fired) == ["breach", "warning"]


# ---- the tick: each crossing once, with its actions ----------------------------------

def test_a_warning_and_a_breach_fire_their_actions_once_each_however_many_ticks_run():
    deps, clock = make_deps(FRIDAY_2350_TOKYO, calendar=TOKYO,
                            sla_policy=policy(warning=["notify"], breach=["notify", "raise_priority"]))
    case = open_case(deps, posted=FRIDAY_2350_TOKYO)
    # Through the weekend and the holiday, every 20 minutes: nothing is due.
    moment = clock.moment
    while clock.now() < "2026-11-24T00:40:00.000000Z":
        sla.run_tick(deps)
        clock.advance(minutes=20)
    assert feed(deps, "boss") == [] and clock.moment > moment
    tick_at(deps, clock, "2026-11-24T00:47:00.000000Z")
    assert feed(deps, "boss") == []
    for _ in range(3):  # the warning at 09:48 JST, whatever number of ticks run at or after it
        result = tick_at(deps, clock, "2026-11-24T00:48:00.000000Z")
    warning = feed(deps, "boss")
    assert [n.reason for n in warning] == ["sla_warning"]
    assert "first response" in warning[0].detail and "Tue 2026-11-24 10:00 Asia/Tokyo" in warning[0].detail
    assert "12 min left" in warning[0].detail
    assert deps.cases.get(case.case_id).priority == "normal"  # the warning only notifies
    for moment in ("2026-11-24T00:59:00.000000Z", "2026-11-24T01:03:00.000000Z", "2026-11-24T01:04:00.000000Z",
                   "2026-11-24T02:00:00.000000Z", "2026-11-24T05:00:00.000000Z"):
        result = tick_at(deps, clock, moment)
    boss_feed = feed(deps, "boss")
    assert [n.reason for n in boss_feed] == ["sla_warning", "sla_breach"]
    assert "3 min late" in boss_feed[1].detail  # the tick that saw it came at 10:03
    assert [n.reason for n in feed(deps, "aiko")] == ["sla_warning", "sla_breach"]  # the assignee too
    assert len(deps.notifier.published) == 2
    stored = deps.cases.get(case.case_id)
    assert stored.priority == "high"  # raised one step, once
    assert sorted(k.split(":")[1] for k in stored.sla_fired) == ["breach", "warning"]
    assert result["crossings"] == 0 and result["errors"] == 0


def test_a_raised_priority_and_a_move_land_with_the_fired_key_in_one_write():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(
        business_hours=False, warning=[], breach=["notify", "raise_priority", {"move_to_team": "escalations"}]),
        agents=[Agent(agent_id="esko", teams=["escalations"], available=False)])  # nobody there takes it
    case = open_case(deps)
    writes = []
    for name in ("save", "assign", "change_status", "add_follow_up"):
        real = getattr(deps.cases, name)

        def recording(*args, _real=real, _name=name, **kwargs):
            outcome = _real(*args, **kwargs)
            writes.append((_name, outcome, deps.cases.get(case.case_id)))
            return outcome
        setattr(deps.cases, name, recording)
    tick_at(deps, clock, "2026-11-23T04:00:00.000000Z")
    assert len(writes) == 1
    name, outcome, stored = writes[0]
    assert name == "assign" and outcome == "assigned"
    assert stored.team == "escalations" and stored.assignee is None and stored.priority == "high"
    assert any(k.startswith("first_response:breach:") for k in stored.sla_fired)
    assert deps.settings.get_agent("aiko").open_cases == 0  # the move gave the load back in that write
    # However often the tick runs, nothing moves or rises again.
    for minutes in (1, 2, 60):
        clock.advance(minutes=minutes)
        sla.run_tick(deps)
    again = deps.cases.get(case.case_id)
    assert (again.team, again.priority) == ("escalations", "high")
    assert [n.reason for n in feed(deps, "boss")] == ["sla_breach"]


def test_reassign_hands_the_case_to_another_agent_with_room_in_the_same_write():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(
        business_hours=False, warning=["reassign"], breach=[]))
    case = open_case(deps)
    assert case.assignee == "aiko"
    deps.settings.put_agent(Agent(agent_id="ben", teams=["support"], capacity=5))
    deps.settings.set_presence("aiko", "away", at=deps.now())  # aiko steps away: nobody answers
    tick_at(deps, clock, "2026-11-23T03:48:00.000000Z")
    stored = deps.cases.get(case.case_id)
    assert stored.assignee == "ben" and any(":warning:" in k for k in stored.sla_fired)
    assert deps.settings.get_agent("ben").open_cases == 1 and deps.settings.get_agent("aiko").open_cases == 0
    tick_at(deps, clock, "2026-11-23T03:49:00.000000Z")
    assert deps.cases.get(case.case_id).assignee == "ben"


def test_a_crash_between_notify_and_save_neither_notifies_twice_nor_runs_an_action_twice():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(
        business_hours=False, warning=[], breach=["notify", "raise_priority"]))
    case = open_case(deps)
    real_save = deps.cases.save
    crashes = []

    def crash_once(changed):
        if not crashes:
            crashes.append(changed.case_id)
            raise ConnectionError("the Lambda died here")
        return real_save(changed)
    deps.cases.save = crash_once
    first = tick_at(deps, clock, "2026-11-23T04:00:00.000000Z")
    assert first["errors"] == 1 and crashes == [case.case_id]
    assert [n.reason for n in feed(deps, "boss")] == ["sla_breach"]  # notified before the save
    assert deps.cases.get(case.case_id).priority == "normal"  # the action never landed
    for moment in ("2026-11-23T04:01:00.000000Z", "2026-11-23T04:02:00.000000Z"):
        tick_at(deps, clock, moment)
    stored = deps.cases.get(case.case_id)
    assert stored.priority == "high"  # raised once, by the run that saved it
    assert len(feed(deps, "boss")) == 1 and len(deps.notifier.published) == 1


def test_a_crash_after_the_save_runs_nothing_again():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(
        business_hours=False, warning=[], breach=["notify", "raise_priority"]))
    case = open_case(deps)
    real_save = deps.cases.save

    def save_then_crash(changed):
        assert real_save(changed)
        deps.cases.save = real_save
        raise ConnectionError("the Lambda died after the write")
    deps.cases.save = save_then_crash
    assert tick_at(deps, clock, "2026-11-23T04:00:00.000000Z")["errors"] == 1
    tick_at(deps, clock, "2026-11-23T04:01:00.000000Z")
    assert deps.cases.get(case.case_id).priority == "high"
    assert len(feed(deps, "boss")) == 1 and len(deps.notifier.published) == 1


def test_a_writer_saving_first_makes_the_tick_read_again_and_decide_again():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(
        business_hours=False, warning=[], breach=["notify", "raise_priority"]))
    case = open_case(deps)
    real_get = deps.cases.get
    raced = []

    def get_then_race(case_id):
        read = real_get(case_id)
        if not raced:  # an agent's reply lands between the tick's read and its write
            raced.append(case_id)
            now = deps.now()
            modify_case(deps.cases, case_id, lambda c: sla.refresh(case_rules.with_response(c, "2026-11-23T03:59:00.000000Z"),
                                                                   deps, now))
        return read
    deps.cases.get = get_then_race
    result = tick_at(deps, clock, "2026-11-23T04:00:00.000000Z")
    deps.cases.get = real_get
    stored = deps.cases.get(case.case_id)
    # Read again: the first response came in time, so no breach fires and no priority rises.
    assert stored.priority == "normal" and stored.sla_fired == [] and result["errors"] == 0
    assert sla.sla_view(stored, deps, deps.now())["met"] == [{"target": "first_response", "by_seconds": 60}]


def test_the_tick_stops_after_its_quota_and_says_how_many_remain():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(business_hours=False))
    ids = [open_case(deps, platform_id=str(i), author_id=f"a{i}").case_id for i in range(5)]
    first = tick_at(deps, clock, "2026-11-23T03:48:00.000000Z", max_cases=2)
    assert (first["checked"], first["remaining"], first["stopped_early"]) == (2, 3, True)
    second = tick_at(deps, clock, "2026-11-23T03:48:30.000000Z", max_cases=10)
    assert (second["checked"], second["remaining"], second["stopped_early"]) == (3, 0, False)
    assert all(any(":warning:" in k for k in deps.cases.get(i).sla_fired) for i in ids)


def test_the_tick_stops_when_its_time_is_up_and_the_next_run_takes_the_rest():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(business_hours=False))
    for i in range(4):
        open_case(deps, platform_id=str(i), author_id=f"a{i}")
    readings = iter([0.0, 1.0, 31.0])  # the start, before the first case, before the second: out of time
    clock.moment = Clock("2026-11-23T03:48:00.000000Z").moment
    first = sla.run_tick(deps, clock=lambda: next(readings, 99.0), budget_seconds=30)
    assert (first["checked"], first["remaining"], first["stopped_early"]) == (1, 3, True)
    assert sla.run_tick(deps)["checked"] == 3


def test_the_tick_ends_shifts_since_its_last_run_then_fills_every_teams_queue(monkeypatch):
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(business_hours=False))
    deps.settings.put_agent(Agent(agent_id="mika", teams=["vip"]))
    calls = []
    monkeypatch.setattr(workload, "end_shifts", lambda d, *, since, now: calls.append(("end", since, now)) or ["aiko"])
    monkeypatch.setattr(workload, "assign_waiting", lambda team, d, **k: calls.append(("fill", team)) or ["c1"])
    result = sla.run_tick(deps)
    clock.advance(minutes=1)
    sla.run_tick(deps)
    assert calls[:4] == [("end", None, "2026-11-23T03:00:00.000000Z"), ("fill", "support"), ("fill", "vip"),
                         ("end", "2026-11-23T03:00:00.000000Z", "2026-11-23T03:01:00.000000Z")]
    assert (result["went_offline"], result["assigned"]) == (1, 2)


def test_a_failure_ending_shifts_keeps_the_window_for_the_next_run(monkeypatch):
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z")
    seen = []

    def failing(d, *, since, now):
        seen.append(since)
        raise ConnectionError("settings table unreachable")
    monkeypatch.setattr(workload, "end_shifts", failing)
    sla.run_tick(deps)
    clock.advance(minutes=1)
    sla.run_tick(deps)
    assert seen == [None, None] and deps.settings.last_run("sla_tick") is None


# ---- pauses and follow-ups ----------------------------------------------------------

def test_pending_pauses_the_clocks_and_the_deadline_moves_by_the_paused_time():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(business_hours=False))
    case = open_case(deps)
    assert case.sla_due_at == "2026-11-23T04:00:00.000000Z"
    aiko = deps.settings.get_agent("aiko")
    clock.advance(minutes=10)
    paused = inbox.change_status(aiko, case.case_id, {"status": "pending"}, deps)
    assert paused["sla"]["first_response"]["paused"] is True and paused["sla"]["first_response_due"] is None
    assert deps.cases.get(case.case_id).sla_due_at is None  # nothing is due while the customer is awaited
    clock.advance(minutes=30)
    reopened = inbox.change_status(aiko, case.case_id, {"status": "open"}, deps)
    assert reopened["sla"]["first_response_due"] == "2026-11-23T04:30:00.000000Z"
    assert deps.cases.get(case.case_id).sla_due_at == "2026-11-23T04:30:00.000000Z"
    # The tick agrees: no breach at the old deadline.
    tick_at(deps, clock, "2026-11-23T04:10:00.000000Z")
    assert not any(":breach:" in k for k in deps.cases.get(case.case_id).sla_fired)


def test_a_follow_up_starts_the_next_response_clock():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(business_hours=False))
    case = open_case(deps, author_id="42")
    clock.advance(minutes=5)
    now = deps.now()
    modify_case(deps.cases, case.case_id, lambda c: sla.refresh(case_rules.with_response(c, now), deps, now))
    clock.advance(minutes=15)
    joined = assign.assign_message(triaged(mention("2", author_id="42", created_at=deps.now(), text="any news?")), deps)
    assert joined["outcome"] == "joined"
    stored = deps.cases.get(case.case_id)
    assert stored.follow_up_at == "2026-11-23T03:20:00.000000Z"
    assert stored.sla_due_at == "2026-11-23T03:50:00.000000Z"  # 30 minutes for the next response
    view = sla.sla_view(stored, deps, deps.now())
    assert view["next_response_due"] == "2026-11-23T03:50:00.000000Z"
    assert view["met"] == [{"target": "first_response", "by_seconds": 55 * 60}]


# ---- the inbox by due time -------------------------------------------------------------

@pytest.fixture
def due_inbox():
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(business_hours=False),
                            agents=[Agent(agent_id="mika", teams=["vip"])])
    # Posted 70, 50 and 10 minutes ago (due in -10, 10 and 50 minutes), one of them in another team.
    late = open_case(deps, "1", "a1", posted="2026-11-23T01:50:00.000000Z")
    warned = open_case(deps, "2", "a2", posted="2026-11-23T02:10:00.000000Z", team="vip")
    fine = open_case(deps, "3", "a3", posted="2026-11-23T02:50:00.000000Z")
    return deps, {"late": late.case_id, "warned": warned.case_id, "fine": fine.case_id}


def test_the_inbox_orders_by_due_across_teams_and_shows_each_cases_clocks(due_inbox):
    deps, ids = due_inbox
    boss = deps.settings.get_agent("boss")
    seen, cursor = [], None
    while True:
        page = inbox.list_inbox(boss, {"order": "due", "limit": "1", **({"cursor": cursor} if cursor else {})}, deps)
        seen.extend(page["cases"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [c["case_id"] for c in seen] == [ids["late"], ids["warned"], ids["fine"]]
    assert [c["sla"]["state"] for c in seen] == ["breached", "warning", "ok"]
    assert seen[0]["sla"]["breached"] == [{"target": "first_response", "by_seconds": 600}]
    assert "sla_due_at" not in seen[0]  # the marks stay internal; ``sla`` is the view


@pytest.mark.parametrize("state, expected", [("breached", "late"), ("warning", "warned")])
def test_the_inbox_filters_by_sla_state(due_inbox, state, expected):
    deps, ids = due_inbox
    page = inbox.list_inbox(deps.settings.get_agent("boss"), {"sla": state, "order": "due"}, deps)
    assert [c["case_id"] for c in page["cases"]] == [ids[expected]]


def test_an_inbox_cursor_is_bound_to_its_sla_filter_and_bad_values_are_400(due_inbox):
    deps, _ids = due_inbox
    boss = deps.settings.get_agent("boss")
    cursor = inbox.list_inbox(boss, {"order": "due", "limit": "1"}, deps)["next_cursor"]
    with pytest.raises(InvalidCursor):
        inbox.list_inbox(boss, {"order": "due", "limit": "1", "sla": "breached", "cursor": cursor}, deps)
    for params in ({"sla": "ok"}, {"sla": "met"}, {"order": "sla"}):
        with pytest.raises(BadRequest):
            inbox.list_inbox(boss, params, deps)


# ---- the hooks of the other services ------------------------------------------------------

def test_an_escalation_notifies_the_assignee_and_the_teams_supervisors_once():
    deps, _clock = make_deps("2026-11-23T03:00:00.000000Z")
    body = triaged(mention("9", author_id="v1", verified=True), escalate=True, priority="urgent", category="complaint")
    first = assign.assign_message(body, deps)
    assign.assign_message(body, deps)  # a redelivery
    boss_feed = feed(deps, "boss")
    assert [(n.reason, n.case_id, n.priority) for n in boss_feed] == [("escalation", first["case_id"], "urgent")]
    assert "verified account" in boss_feed[0].detail and "assigned to aiko" in boss_feed[0].detail
    assert [n.reason for n in feed(deps, "aiko")] == ["escalation"]
    assert feed(deps, "vboss") == []  # another team's supervisor
    assert len(deps.notifier.published) == 1 and deps.notifier.published[0][1] == ["aiko", "boss"]


def test_an_escalation_in_a_team_without_supervisors_reaches_every_supervisor():
    deps, _clock = make_deps("2026-11-23T03:00:00.000000Z", agents=[Agent(agent_id="sal", teams=["sales"])])
    assign.assign_message(triaged(mention("9"), escalate=True, team="sales"), deps)
    assert [n.reason for n in feed(deps, "boss")] == ["escalation"] == [n.reason for n in feed(deps, "vboss")]


def test_a_case_without_escalation_notifies_nobody():
    deps, _clock = make_deps("2026-11-23T03:00:00.000000Z")
    assign.assign_message(triaged(mention("9")), deps)
    assert deps.notifications.feeds == {} and deps.notifier.published == []


def test_the_away_hook_runs_on_open_and_join_and_its_failure_never_fails_assignment(monkeypatch):
    deps, clock = make_deps("2026-11-23T03:00:00.000000Z")
    calls = []

    def failing(case, post, d, now):
        calls.append((case.case_id, post.id, now))
        raise RuntimeError("the away settings are unreadable")
    monkeypatch.setattr(away, "maybe_acknowledge", failing)
    opened = assign.assign_message(triaged(mention("1", author_id="5")), deps)
    clock.advance(minutes=1)
    joined = assign.assign_message(triaged(mention("2", author_id="5", created_at=deps.now())), deps)
    assert (opened["outcome"], joined["outcome"]) == ("opened", "joined")
    assert [c[:2] for c in calls] == [(opened["case_id"], "x:1"), (opened["case_id"], "x:2")]


def test_a_case_that_finds_nobody_with_room_waits_with_its_marks():
    deps, _clock = make_deps("2026-11-23T03:00:00.000000Z", sla_policy=policy(business_hours=False))
    for agent_id in ("aiko", "boss"):
        deps.settings.set_presence(agent_id, "offline", at=deps.now())
    case = open_case(deps)
    assert case.assignee is None and case.waiting_for_agent
    assert case.sla_due_at == "2026-11-23T04:00:00.000000Z"  # the queue puts it by its due time


def test_changing_an_agent_or_freeing_a_slot_offers_waiting_cases(monkeypatch):
    deps, _clock = make_deps("2026-11-23T03:00:00.000000Z")
    filled = []
    monkeypatch.setattr(workload, "fill_agent", lambda agent_id, d: filled.append(agent_id) or [])
    inbox.save_agent("aiko", {"capacity": 10}, deps)
    inbox.save_agent("aiko", {"capacity": 10}, deps)  # no change: nothing to offer
    inbox.save_agent("newbie", {"teams": ["support"]}, deps)
    case = open_case(deps)
    boss = deps.settings.get_agent("boss")
    inbox.change_status(boss, case.case_id, {"status": "pending"}, deps)  # still theirs
    inbox.change_status(boss, case.case_id, {"status": "closed"}, deps)
    assert filled == ["aiko", "newbie", case.assignee]


def test_a_failing_fill_never_fails_the_status_change(monkeypatch):
    deps, _clock = make_deps("2026-11-23T03:00:00.000000Z")
    monkeypatch.setattr(workload, "fill_agent", lambda agent_id, d: (_ for _ in ()).throw(ConnectionError("down")))
    case = open_case(deps)
    boss = deps.settings.get_agent("boss")
    assert inbox.change_status(boss, case.case_id, {"status": "resolved"}, deps)["status"] == "resolved"
    assert deps.cases.get(case.case_id).status == "resolved"


# ---- supervisors' settings ----------------------------------------------------------------

def test_calendars_are_validated_per_team_and_only_supervisors_change_them():
    deps, _clock = make_deps("2026-11-23T03:00:00.000000Z")
    boss, aiko = deps.settings.get_agent("boss"), deps.settings.get_agent("aiko")
    assert sla.calendar_view("support", deps) == {"team": "support", "calendar": None, "always_open": True}
    body, created = sla.save_calendar(boss, "support", TOKYO, deps)
    assert created and body["calendar"]["time_zone"] == "Asia/Tokyo" and body["calendar"]["holidays"] == ["2026-11-23"]
    assert sla.save_calendar(boss, "support", TOKYO, deps)[1] is False
    assert sla.calendar_view("support", deps)["calendar"] == body["calendar"]
    for team in ("a#b", " support", "", "x" * 65):
        with pytest.raises(BadRequest):
            sla.save_calendar(boss, team, TOKYO, deps)
    with pytest.raises(BadRequest):
        sla.save_calendar(boss, "support", {**TOKYO, "time_zone": "Asia/Tokio"}, deps)
    with pytest.raises(Forbidden):
        sla.save_calendar(aiko, "support", TOKYO, deps)
    with pytest.raises(Forbidden):
        sla.delete_calendar(aiko, "support", deps)
    assert sla.delete_calendar(boss, "support", deps)["deleted"] is True
    assert sla.delete_calendar(boss, "support", deps)["deleted"] is False
    assert sla.calendar_view("support", deps)["always_open"] is True


def test_the_policy_is_validated_whole_and_only_supervisors_set_it():
    deps, _clock = make_deps("2026-11-23T03:00:00.000000Z")
    boss, aiko = deps.settings.get_agent("boss"), deps.settings.get_agent("aiko")
    assert sla.policy_view(deps) == {"policy": None}
    with pytest.raises(BadRequest):
        sla.save_policy(boss, {"default": {"normal": {"first_response": 0}}}, deps)
    with pytest.raises(Forbidden):
        sla.save_policy(aiko, policy(), deps)
    assert sla.policy_view(deps) == {"policy": None}
    saved, created = sla.save_policy(boss, policy(), deps)
    assert created and sla.policy_view(deps) == saved
    assert sla.save_policy(boss, policy(), deps)[1] is False


@pytest.mark.parametrize("priority, expected", [("low", "normal"), ("normal", "high"), ("high", "urgent"),
                                                ("urgent", "urgent")])
def test_raising_the_priority_is_one_step_more_urgent(priority, expected):
    assert sla.more_urgent(priority) == expected
