"""Service levels through the real Chalice app on moto: calendars, the SLA policy, clocks on cases,
presence, the waiting queue, notifications, and the once-a-minute ``sla_tick``.

Time is injected: ``deps().now`` is the clock every service reads, so a test moves it instead of waiting.
"""
from __future__ import annotations

import pytest

from chalicelib.bootstrap import deps
from chalicelib.domain.hours import validate_calendar
from chalicelib.domain.sla import validate_policy
from tests.api import call, frozen_clock
from tests.test_app import mention, open_case, team  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}
REGION = "us-east-1"
WEEKDAY_HOURS = [["09:00", "12:00"], ["13:00", "18:00"]]
TOKYO = {"time_zone": "Asia/Tokyo",
         "weekly": {day: WEEKDAY_HOURS for day in ("mon", "tue", "wed", "thu", "fri")},
         "holidays": ["2026-11-23"],
         "exceptions": [{"date": "2026-11-28", "hours": [["10:00", "15:00"]]}]}
# Around the clock and short, so that a test crosses warning (0.8 of a minute) and breach within minutes.
QUICK = {"business_hours": False, "warning_ratio": 0.8,
         "default": {p: {"first_response": 1, "resolution": 600} for p in ("urgent", "high", "normal", "low")}}
T0 = "2026-11-23T03:00:00.000000Z"


@pytest.fixture
def clock(app_module):
    """The time every service sees; tests set ``clock["now"]``."""
    return frozen_clock(T0)




def tick(app_module):
    from local.lambda_events import LambdaContext, scheduled_event

    return app_module.sla_tick(scheduled_event("sla", REGION), LambdaContext("sla", REGION))


def sla_of(detail):
    """The live clocks of ``GET /cases/{id}``."""
    return detail["case"]["sla"]


def feed(client, headers, query=""):
    answer = client.http.get("/notifications" + query, headers=headers)
    assert answer.status_code == 200, answer.body
    return answer.json_body["notifications"]


# ---- business hours -----------------------------------------------------------------------

def test_a_supervisor_saves_a_tokyo_calendar_reads_it_back_and_removes_it(client, team):  # noqa: F811
    boss = team["boss"]
    saved = call(client, "PUT", "/admin/teams/support/hours", boss, TOKYO)
    assert saved.status_code == 201, saved.body   # new: the team was open around the clock until now
    expected = validate_calendar(TOKYO).to_dict()
    shown = client.http.get("/admin/teams/support/hours", headers=boss)
    assert shown.status_code == 200
    assert expected == shown.json_body["calendar"] == saved.json_body["calendar"]
    assert deps().settings.get_team_calendar("support") == validate_calendar(TOKYO)
    # Saving it again replaces it: 200, never a second calendar.
    again = call(client, "PUT", "/admin/teams/support/hours", boss, {**TOKYO, "holidays": []})
    assert again.status_code == 200 and again.json_body["calendar"]["holidays"] == []

    assert call(client, "DELETE", "/admin/teams/support/hours", boss).status_code == 200
    assert deps().settings.get_team_calendar("support") is None
    shown = client.http.get("/admin/teams/support/hours", headers=boss).json_body
    assert shown["calendar"] is None and shown["always_open"] is True


@pytest.mark.parametrize("change, words", [
    ({"weekly": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}}, "overlap"),
    ({"weekly": {"mon": [["09:00", "25:00"]]}}, "25:00"),
    ({"time_zone": "Mars/Base"}, "Mars/Base"),
])
def test_a_bad_calendar_gets_a_400_that_says_what_to_fix(client, team, change, words):  # noqa: F811
    answer = call(client, "PUT", "/admin/teams/support/hours", team["boss"], {**TOKYO, **change})
    assert answer.status_code == 400 and words in answer.json_body["error"], answer.body
    assert deps().settings.get_team_calendar("support") is None


def test_agents_get_a_403_on_every_supervisor_route(client, team):  # noqa: F811
    aiko = team["aiko"]
    found = []
    for method, path, body in [
        ("GET", "/admin/teams/support/hours", None), ("PUT", "/admin/teams/support/hours", TOKYO),
        ("DELETE", "/admin/teams/support/hours", None),
        ("GET", "/admin/teams/support/away", None), ("PUT", "/admin/teams/support/away", {"enabled": False}),
        ("GET", "/admin/sla", None), ("PUT", "/admin/sla", QUICK), ("GET", "/teams/support/waiting", None),
        ("GET", "/teams/support/agents", None),
    ]:
        answer = call(client, method, path, aiko, body)
        if answer.status_code != 403 or "supervisor" not in answer.json_body.get("error", ""):
            found.append(f"{method} {path}: {answer.status_code} {answer.body[:120]!r}")
    assert found == []
    assert deps().settings.get_team_calendar("support") is None and deps().settings.get_sla_policy() is None


def test_a_team_name_that_cannot_exist_is_a_400(client, team):  # noqa: F811
    # Longer than a team name may be (64), though a valid id (128): refused before any read.
    long_team = "t" * 65
    for method, path in [("GET", f"/admin/teams/{long_team}/hours"), ("PUT", f"/admin/teams/{long_team}/hours"),
                         ("GET", f"/admin/teams/{long_team}/away"), ("GET", f"/teams/{long_team}/waiting"),
                         ("GET", f"/teams/{long_team}/agents")]:
        answer = call(client, method, path, team["boss"], TOKYO if method == "PUT" else None)
        assert answer.status_code == 400 and "team" in answer.json_body["error"], (path, answer.body)


# ---- away messages ---------------------------------------------------------------------------

def test_a_supervisor_edits_the_away_message_and_sees_it_as_it_would_go_out(client, team, clock):  # noqa: F811
    boss = team["boss"]
    assert call(client, "PUT", "/admin/teams/support/hours", boss, TOKYO).status_code in (200, 201)
    template = "Hi {customer_name}, we are closed and back {next_open}. Typical reply: {typical_reply}."
    saved = call(client, "PUT", "/admin/teams/support/away", boss, {"enabled": True, "templates": {"en": template}})
    assert saved.status_code == 200, saved.body
    shown = client.http.get("/admin/teams/support/away", headers=boss).json_body
    assert shown == saved.json_body and shown["enabled"] is True and shown["templates"]["en"] == template
    # 2026-11-23 03:00 UTC is noon of a Tokyo holiday (Monday): the team opens on Tuesday at 09:00 JST.
    assert "Tuesday 24 November at 09:00" in shown["preview"]["en"]["closed"]

    answer = call(client, "PUT", "/admin/teams/support/away", boss, {"templates": {"en": "Back {next_opne}"}})
    assert answer.status_code == 400 and "next_opne" in answer.json_body["error"]
    assert client.http.get("/admin/teams/support/away", headers=boss).json_body["templates"]["en"] == template


def test_a_complaint_at_2350_tokyo_time_before_a_holiday_gets_the_away_message(client, app_module, team, clock):  # noqa: F811
    boss = team["boss"]
    assert call(client, "PUT", "/admin/teams/support/hours", boss, TOKYO).status_code in (200, 201)
    assert call(client, "PUT", "/admin/teams/support/away", boss, {"enabled": True}).status_code == 200
    assert call(client, "PUT", "/admin/sla", boss, {**QUICK, "business_hours": True}).status_code in (200, 201)
    clock["now"] = "2026-11-20T14:50:05.000000Z"   # Friday 23:50 in Tokyo; Monday 23 is a holiday
    case_id = open_case(app_module, mention("330", "@SoraAir my bag never arrived, this is a disgrace",
                                            author_id="n1", created_at="2026-11-20T14:50:00Z",
                                            addressed_to_brand=True))[0]["case_id"]
    detail = client.http.get(f"/cases/{case_id}", headers=boss).json_body
    away = [r for r in detail["replies"] if r.get("automatic")]
    assert len(away) == 1 and "Tuesday 24 November at 09:00" in away[0]["text"], detail["replies"]
    # Counted in business hours, the first response is due a minute after Tuesday's opening.
    assert sla_of(detail)["first_response_due"] == "2026-11-24T00:01:00.000000Z"


# ---- the SLA policy and the clocks on cases ----------------------------------------------------

def test_the_sla_policy_round_trips(client, team):  # noqa: F811
    boss = team["boss"]
    saved = call(client, "PUT", "/admin/sla", boss, QUICK)
    assert saved.status_code == 201, saved.body
    shown = client.http.get("/admin/sla", headers=boss).json_body
    assert shown["policy"] == saved.json_body["policy"] == validate_policy(QUICK).to_dict()
    assert call(client, "PUT", "/admin/sla", boss, {**QUICK, "warning_ratio": 0.8}).status_code == 200
    answer = call(client, "PUT", "/admin/sla", boss, {**QUICK, "warning_ratio": 1.5})
    assert answer.status_code == 400 and "warning_ratio" in answer.json_body["error"]
    assert client.http.get("/admin/sla", headers=boss).json_body["policy"]["warning_ratio"] == 0.8


def test_cases_carry_their_clocks_and_the_inbox_orders_and_filters_by_them(client, app_module, team, clock):  # noqa: F811
    boss = team["boss"]
    assert call(client, "PUT", "/admin/sla", boss, QUICK).status_code in (200, 201)
    clock["now"] = "2026-11-23T03:00:30.000000Z"
    recent = open_case(app_module, mention("300", "Lost my bag in Osaka, please help", author_id="a1",
                                           created_at="2026-11-23T03:00:00Z"))[0]["case_id"]
    older = open_case(app_module, mention("301", "Still no refund for my cancelled flight", author_id="a2",
                                          created_at="2026-11-23T02:00:00Z"))[0]["case_id"]

    detail = client.http.get(f"/cases/{recent}", headers=boss).json_body
    sla = sla_of(detail)
    # The clock starts when the customer posted, not when socialcare received it.
    assert sla["first_response_due"] == "2026-11-23T03:01:00.000000Z" and sla["state"] == "ok"
    assert sla_of(client.http.get(f"/cases/{older}", headers=boss).json_body)["state"] == "breached"

    def listed(query):
        answer = client.http.get("/cases?" + query, headers=boss)
        assert answer.status_code == 200, answer.body
        return [c["case_id"] for c in answer.json_body["cases"]]

    assert listed("order=newest") == [recent, older]
    assert listed("order=due") == [older, recent]
    assert listed("sla=breached") == [older]
    assert listed("sla=warning") == []
    clock["now"] = "2026-11-23T03:00:50.000000Z"   # past 80 % of the recent case's minute
    assert listed("sla=warning") == [recent]
    inbox_case = next(c for c in client.http.get("/cases", headers=boss).json_body["cases"] if c["case_id"] == recent)
    assert inbox_case["sla"]["state"] == "warning"
    answer = client.http.get("/cases?sla=bogus", headers=boss)
    assert answer.status_code == 400 and "sla" in answer.json_body["error"]


# ---- the scheduler and notifications ---------------------------------------------------------------

def test_sla_tick_fires_a_breach_once_and_it_reaches_the_people_concerned(client, app_module, team, clock):  # noqa: F811
    boss = team["boss"]
    assert call(client, "PUT", "/admin/sla", boss, QUICK).status_code in (200, 201)
    opened = open_case(app_module, mention("310", "Seat broken, nobody helps", author_id="b1",
                                           created_at="2026-11-23T03:00:00Z"))[0]
    case_id, assignee = opened["case_id"], opened["assignee"]
    assert tick(app_module)["crossings"] == 0
    assert feed(client, boss) == []      # nothing is due yet at 03:00:00

    clock["now"] = "2026-11-23T03:00:50.000000Z"   # past the warning (80 % of the minute), before the due time
    assert tick(app_module)["crossings"] == 1
    assert [n["reason"] for n in feed(client, boss)] == ["sla_warning"]
    clock["now"] = "2026-11-23T03:01:10.000000Z"
    assert tick(app_module)["crossings"] == 1
    assert tick(app_module)["crossings"] == 0   # a second run at the same moment fires nothing again
    mine = feed(client, boss)
    assert [n["reason"] for n in mine] == ["sla_breach", "sla_warning"]   # newest first
    assert {n["case_id"] for n in mine} == {case_id} and not any(n["read"] for n in mine)
    # The assignee hears of it too; an agent of another team does not.
    assert "sla_breach" in {n["reason"] for n in feed(client, team[assignee])}
    assert feed(client, team["mika"]) == []

    breach = next(n for n in mine if n["reason"] == "sla_breach")
    answer = call(client, "POST", "/notifications/read", boss, {"ids": [breach["notification_id"]]})
    assert answer.status_code == 200, answer.body
    assert [n["reason"] for n in feed(client, boss, "?unread=true")] == ["sla_warning"]
    assert next(n for n in feed(client, boss) if n["reason"] == "sla_breach")["read"] is True
    # Someone else's notification cannot be marked read through another feed.
    call(client, "POST", "/notifications/read", team["mika"], {"ids": [n["notification_id"] for n in mine]})
    assert [n["reason"] for n in feed(client, boss, "?unread=true")] == ["sla_warning"]


def test_notifications_refuse_what_they_cannot_use(client, team):  # noqa: F811
    boss = team["boss"]
    for body in [{"ids": "n_1"}, {"ids": ["n_1"] * 101}, {"ids": [7]}, ["n_1"]]:
        answer = call(client, "POST", "/notifications/read", boss, body)
        assert answer.status_code == 400 and len(answer.json_body["error"]) > 10, (body, answer.body)
    for query in ["?cursor=garbage", "?limit=0", "?unread=maybe"]:
        answer = client.http.get("/notifications" + query, headers=boss)
        assert answer.status_code == 400, (query, answer.body)


# ---- presence and the waiting queue --------------------------------------------------------------

def test_presence_is_set_and_shown_with_the_agents_load(client, team, clock):  # noqa: F811
    aiko = team["aiko"]
    me = client.http.get("/me", headers=aiko).json_body
    assert me["agent_id"] == "aiko" and me["presence"] == "online" and me["open_cases"] == 0
    assert me["takes_new_cases"] is True and me["free_slots"] == me["capacity"]

    answer = call(client, "PUT", "/me/presence", aiko, {"presence": "away"})
    assert answer.status_code == 200 and answer.json_body["presence"] == "away", answer.body
    me = client.http.get("/me", headers=aiko).json_body
    assert me["presence"] == "away" and me["takes_new_cases"] is False and me["free_slots"] == 0
    assert deps().settings.get_agent("aiko").presence_changed_at == T0

    answer = call(client, "PUT", "/me/presence", aiko, {"presence": "asleep"})
    assert answer.status_code == 400 and "online" in answer.json_body["error"]
    assert deps().settings.get_agent("aiko").presence == "away"

    # The supervisor sees the team's roster: who is in, their presence and their load.
    roster = call(client, "GET", "/teams/support/agents", team["boss"]).json_body
    by_id = {a["agent_id"]: a for a in roster["agents"]}
    assert set(by_id) == {"aiko", "ken"}
    assert by_id["aiko"]["presence"] == "away" and by_id["aiko"]["takes_new_cases"] is False
    assert by_id["ken"]["presence"] == "online" and by_id["ken"]["free_slots"] == by_id["ken"]["capacity"]


def test_a_case_nobody_can_take_waits_and_goes_to_the_first_agent_who_comes_online(client, app_module, team, clock):  # noqa: F811
    for name in ("aiko", "ken"):
        assert call(client, "PUT", "/me/presence", team[name], {"presence": "away"}).status_code == 200
    opened = open_case(app_module, mention("320", "My luggage is lost, please help", author_id="w1"))[0]
    assert opened["assignee"] is None

    waiting = client.http.get("/teams/support/waiting", headers=team["boss"])
    assert waiting.status_code == 200, waiting.body
    assert [c["case_id"] for c in waiting.json_body["cases"]] == [opened["case_id"]]

    answer = call(client, "PUT", "/me/presence", team["ken"], {"presence": "online"})
    assert answer.status_code == 200 and answer.json_body["assigned"] == [opened["case_id"]]
    assert deps().cases.get(opened["case_id"]).assignee == "ken"
    assert client.http.get("/teams/support/waiting", headers=team["boss"]).json_body["cases"] == []
    assert client.http.get("/me", headers=team["ken"]).json_body["open_cases"] == 1
