"""QA audits through the real Chalice app on moto: settings, the weekly queue, reviews and who may use them."""
from __future__ import annotations

import pytest

from chalicelib.bootstrap import deps
from chalicelib.domain import qa as qa_rules
from tests.api import call, frozen_clock
from tests.fakes import use_platforms
from tests.test_app import RecordingX, mention, open_case, send, team  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}
T0 = "2026-11-23T03:00:00.000000Z"   # Monday of ISO week 2026-W48
WEEK = "2026-W48"
SCORES = {"tone": 4, "accuracy": 3, "personalisation": 2, "brand_voice": 4, "resolution": None}


@pytest.fixture
def clock(app_module):
    return frozen_clock(T0)




def answered_case(client, app_module, team, platform_id="300", text="My bag never arrived in Osaka"):  # noqa: F811
    """A case whose assignee's reply reached X: (case id, reply id, assignee)."""
    opened = open_case(app_module, mention(platform_id, text))[0]
    use_platforms(deps(), x=RecordingX())
    posted = call(client, "POST", f"/cases/{opened['case_id']}/replies", team[opened["assignee"]],
                  {"text": "So sorry! Please DM us your bag tag number."})
    assert posted.status_code == 202, posted.body
    send(app_module)
    return opened["case_id"], posted.json_body["reply_id"], opened["assignee"]


def test_a_supervisor_draws_the_week_reviews_a_reply_once_and_it_counts_for_the_agent(client, app_module, team,  # noqa: F811
                                                                                    clock):
    boss = team["boss"]
    case_id, reply_id, agent = answered_case(client, app_module, team)
    saved = call(client, "PUT", "/admin/qa/sampling", boss, {"base_rate": 1.0})
    assert saved.status_code == 201 and saved.json_body["sampling"]["base_rate"] == 1.0

    listed = client.http.get(f"/qa/queue?week={WEEK}", headers=boss)
    assert listed.status_code == 200, listed.body
    [entry] = listed.json_body["items"]
    assert (entry["reply_id"], entry["case_id"], entry["agent_id"]) == (reply_id, case_id, agent)
    assert entry["text"] == "So sorry! Please DM us your bag tag number."
    assert entry["customer_post"]["text"] == "My bag never arrived in Osaka"
    assert entry["review"] is None and listed.json_body["next_cursor"] is None

    reviewed = call(client, "POST", "/qa/reviews", boss,
                    {"reply_id": reply_id, "case_id": case_id, "scores": SCORES, "comment": "Warm, but ask less."})
    assert reviewed.status_code == 201, reviewed.body
    # Default rubric: tone 2 x 4/4, accuracy 3 x 3/4, personalisation 1 x 2/4, brand voice 2 x 4/4; no resolution.
    assert reviewed.json_body["percent"] == round(100 * (2 + 2.25 + 0.5 + 2) / 8, 1)
    assert reviewed.json_body["reviewer"] == "boss" and reviewed.json_body["scores"]["resolution"] is None

    again = call(client, "POST", "/qa/reviews", boss, {"reply_id": reply_id, "case_id": case_id, "scores": SCORES})
    assert again.status_code == 409 and "reviewed already" in again.json_body["error"]

    shown = client.http.get(f"/qa/reviews?week={WEEK}", headers=boss).json_body["reviews"]
    assert [(r["reply_id"], r["comment"]) for r in shown] == [(reply_id, "Warm, but ask less.")]
    assert client.http.get(f"/qa/queue?week={WEEK}", headers=boss).json_body["items"][0]["review"]["reviewer"] == "boss"
    day = T0[:10]
    [row] = [r for r in deps().kpis.kpi_rows("agent", day, day) if r["key"] == agent]
    assert row["qa_reviews"] == 1 and row["qa_score_hundredths"] == int(reviewed.json_body["percent"] * 100)


def test_the_rubric_is_the_default_until_a_supervisor_saves_one(client, team):  # noqa: F811
    boss = team["boss"]
    shown = client.http.get("/admin/qa/rubric", headers=boss).json_body
    assert shown == {"rubric": qa_rules.DEFAULT_RUBRIC.to_dict(), "default": True}
    mine = {"criteria": [{"key": "tone", "label": "Tone", "weight": 1},
                         {"key": "accuracy", "label": "Accuracy", "weight": 3, "points": 1}]}

    first = call(client, "PUT", "/admin/qa/rubric", boss, mine)
    second = call(client, "PUT", "/admin/qa/rubric", boss, mine)

    assert (first.status_code, second.status_code) == (201, 200)
    assert client.http.get("/admin/qa/rubric", headers=boss).json_body == {
        "rubric": qa_rules.validate_rubric(mine).to_dict(), "default": False}


@pytest.mark.parametrize("method, path, body, words", [
    ("PUT", "/admin/qa/rubric", {"criteria": [{"key": "Tone!", "label": "Tone", "weight": 1}]}, "key"),
    ("PUT", "/admin/qa/rubric", "{oops", "JSON"),
    ("PUT", "/admin/qa/sampling", {"base_rate": 5}, "base_rate"),
    ("GET", "/qa/queue", None, "week"),
    ("GET", "/qa/queue?week=2026-13", None, "ISO week"),
    ("GET", f"/qa/queue?week={WEEK}&limit=5000", None, "limit"),
    ("GET", "/qa/reviews?week=W48", None, "ISO week"),
    ("POST", "/qa/reviews", {"reply_id": "r_1", "case_id": "c_1", "scores": {"tone": 4, "grace": 2}}, "grace"),
    ("POST", "/qa/reviews", {"case_id": "c_1", "scores": SCORES}, "reply_id"),
])
def test_bad_input_is_a_400_that_says_what_to_fix(client, team, method, path, body, words):  # noqa: F811
    answer = call(client, method, path, team["boss"], body)
    assert answer.status_code == 400 and words in answer.json_body["error"], answer.body


def test_a_review_of_a_reply_that_does_not_exist_is_a_404(client, app_module, team, clock):  # noqa: F811
    case_id, _, _ = answered_case(client, app_module, team, platform_id="301")
    answer = call(client, "POST", "/qa/reviews", team["boss"], {"reply_id": "r_nope", "case_id": case_id,
                                                                "scores": SCORES})
    assert answer.status_code == 404


def test_agents_get_a_403_on_every_qa_route(client, app_module, team, clock):  # noqa: F811
    case_id, reply_id, agent = answered_case(client, app_module, team, platform_id="302")
    found = []
    for method, path, body in [
        ("GET", "/admin/qa/rubric", None), ("PUT", "/admin/qa/rubric", qa_rules.DEFAULT_RUBRIC.to_dict()),
        ("GET", "/admin/qa/sampling", None), ("PUT", "/admin/qa/sampling", {"base_rate": 1.0}),
        ("GET", f"/qa/queue?week={WEEK}", None), ("GET", f"/qa/reviews?week={WEEK}", None),
        ("POST", "/qa/reviews", {"reply_id": reply_id, "case_id": case_id, "scores": SCORES}),
    ]:
        answer = call(client, method, path, team[agent], body)
        if answer.status_code != 403 or "only supervisors" not in answer.json_body.get("error", ""):
            found.append(f"{method} {path}: {answer.status_code} {answer.body[:120]!r}")
    assert found == []
    assert deps().qa.get_review(reply_id) is None and deps().settings.get_qa_sampling() is None
