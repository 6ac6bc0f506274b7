"""CSAT through the real Chalice app on moto: supervisors set how surveys are asked (GET/PUT /admin/csat),
and a resolved case's customer is asked by the tick and answers in their DM, all on the DynamoDB stores.

Time is injected: ``deps().now`` is the clock every service reads.
"""
from __future__ import annotations

import json

import pytest

from chalicelib.bootstrap import deps
from chalicelib.domain.csat import SurveySettings
from tests.api import frozen_clock
from tests.fakes import use_platforms
from tests.test_app import RecordingX, mention, open_case, send, team, triage  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}
REGION = "us-east-1"
T0 = "2026-11-23T03:00:00.000000Z"


@pytest.fixture
def clock(app_module):
    return frozen_clock(T0)


def put(client, headers, body):
    return client.http.put("/admin/csat", headers={**headers, **JSON},
                           body=body if isinstance(body, str) else json.dumps(body))


def tick(app_module):
    from local.lambda_events import LambdaContext, scheduled_event

    return app_module.sla_tick(scheduled_event("sla", REGION), LambdaContext("sla", REGION))


def test_a_supervisor_reads_the_defaults_then_replaces_the_settings(client, team):  # noqa: F811
    shown = client.http.get("/admin/csat", headers=team["boss"])
    assert shown.status_code == 200, shown.body
    assert (shown.json_body["configured"], shown.json_body["enabled"], shown.json_body["delay_minutes"]) == (
        False, True, 60)

    saved = put(client, team["boss"], {"delay_minutes": 15, "answer_window_hours": 48,
                                       "whatsapp_template": "csat_survey"})

    assert saved.status_code == 200, saved.body
    assert (saved.json_body["configured"], saved.json_body["delay_minutes"]) == (True, 15)
    assert deps().settings.get_survey_settings() == SurveySettings(delay_minutes=15, answer_window_hours=48,
                                                                   whatsapp_template="csat_survey")
    again = put(client, team["boss"], {"enabled": False})  # replaced whole: what is left out is the default
    assert again.status_code == 200
    assert client.http.get("/admin/csat", headers=team["boss"]).json_body["delay_minutes"] == 60
    assert deps().settings.get_survey_settings() == SurveySettings(enabled=False)


@pytest.mark.parametrize("body, says", [
    ({"delay_minutes": -1}, "delay_minutes"),
    ({"delay_minutes": 60 * 24 * 8}, "at most 7 days"),
    ({"answer_window_hours": 0}, "answer_window_hours"),
    ({"enabled": "yes"}, "true or false"),
    ({"whatsapp_template": "CSAT Survey!"}, "whatsapp_template"),
    ({"delay": 5}, "unknown field 'delay'"),
    ([1, 2], "JSON object"),
    ("not json", "JSON"),
])
def test_bad_settings_are_refused_with_the_reason_and_change_nothing(client, team, body, says):  # noqa: F811
    answer = put(client, team["boss"], body)
    assert answer.status_code == 400 and says in answer.json_body["error"], answer.body
    assert deps().settings.get_survey_settings() is None


def test_agents_may_not_read_or_change_the_settings_and_strangers_are_not_let_in(client, team):  # noqa: F811
    assert client.http.get("/admin/csat", headers=team["aiko"]).status_code == 403
    assert put(client, team["aiko"], {"enabled": False}).status_code == 403
    assert client.http.get("/admin/csat").status_code == 401
    assert deps().settings.get_survey_settings() is None


def test_a_resolved_x_dm_case_is_surveyed_by_the_tick_and_the_customers_answer_lands_on_it(
        client, app_module, team, clock):  # noqa: F811
    x = RecordingX()
    use_platforms(deps(), x=x)
    assert put(client, team["boss"], {"delay_minutes": 5}).status_code == 200
    dm = mention("dm-100", "My refund for SA215 has not arrived after two weeks, can you check?", author_id="77",
                 kind="dm", source_id="x:dms:1")
    [opened] = open_case(app_module, dm)
    case_id = opened["case_id"]
    boss = {**team["boss"], **JSON}
    clock["now"] = "2026-11-23T03:10:00.000000Z"
    assert client.http.patch(f"/cases/{case_id}", headers=boss,
                             body=json.dumps({"status": "resolved"})).status_code == 200

    clock["now"] = "2026-11-23T03:14:00.000000Z"
    assert tick(app_module)["surveys"]["asked"] == 0
    clock["now"] = "2026-11-23T03:15:00.000000Z"
    assert tick(app_module)["surveys"]["asked"] == 1
    assert tick(app_module)["surveys"]["asked"] == 0  # once
    assert [r["outcome"] for r in send(app_module)] == ["sent"]
    [(kind, to, text)] = x.posted
    assert (kind, to) == ("dm", "77") and text.startswith("How did we do?")

    clock["now"] = "2026-11-23T03:20:00.000000Z"
    [answered] = triage(app_module, mention("dm-101", "4 - quick, thanks", author_id="77", kind="dm",
                                            source_id="x:dms:1", created_at="2026-11-23T03:19:00Z"))
    assert (answered["outcome"], answered["case_id"], answered["score"]) == ("csat_answer", case_id, 4)
    detail = client.http.get(f"/cases/{case_id}", headers=team["boss"]).json_body["case"]
    assert (detail["csat_status"], detail["csat_score"], detail["csat_comment"]) == ("answered", 4, "quick, thanks")
    assert detail["csat_agent"] == opened["assignee"]
    # It opened no case: the customer still has none active, and the triaged queue is empty.
    assert deps().cases.active_case_for_customer("x:77") is None
    assert client.http.get("/cases?status=open", headers=team["boss"]).json_body["cases"] == []
