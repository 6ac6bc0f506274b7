"""The Chalice handlers on moto, driven as Lambda and API Gateway would."""
from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.bootstrap import deps
from local.stack import deliver_queue
from tests.fakes import use_platforms

REGION = "us-east-1"


def mention(platform_id, text, *, author_id="42", handle="kana_t", verified=False, followers=120,
            created_at="2026-11-23T03:00:00Z", **extra):
    return {"platform": "x", "kind": "mention", "platform_id": platform_id, "text": text,
            "created_at": created_at, "lang": extra.pop("lang", "en"), "source_id": "x:mentions:1",
            "author": {"id": author_id, "handle": handle, "name": handle, "verified": verified,
                       "followers": followers}, **extra}


def queue(name):
    sqs = boto3.client("sqs", region_name=REGION)
    return sqs, sqs.get_queue_url(QueueName=f"socialcare-test-{name}")["QueueUrl"]


def triage(app_module, *bodies):
    """Deliver raw message bodies to the triage function as one SQS batch."""
    sqs, url = queue("mentions")
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body if isinstance(body, str) else json.dumps(body))
    return deliver_queue(sqs, "socialcare-test-mentions", app_module.triage_mentions, "triage")


def assign(app_module):
    sqs, _ = queue("triaged")
    return deliver_queue(sqs, "socialcare-test-triaged", app_module.assign_cases, "assign")


def send(app_module):
    sqs, _ = queue("outbound")
    return deliver_queue(sqs, "socialcare-test-outbound", app_module.send_replies, "send")


class RecordingX:
    """Stands in for XClient on the sending side: records, or refuses like X."""

    def __init__(self, refuse_with=None):
        self.posted = []
        self.refuse_with = refuse_with

    def reply(self, in_reply_to_tweet_id, text):
        if self.refuse_with:
            raise self.refuse_with
        self.posted.append(("reply", in_reply_to_tweet_id, text))
        return f"9{len(self.posted):018d}"

    def send_dm(self, participant_id, text):
        self.posted.append(("dm", participant_id, text))
        return f"dm{len(self.posted)}"


@pytest.fixture
def team(app_module):
    return {
        "aiko": app_module.agents.add("aiko", ["support"]),
        "ken": app_module.agents.add("ken", ["support"]),
        "mika": app_module.agents.add("mika", ["vip"]),
        "boss": app_module.agents.add("boss", ["leads"], role="supervisor"),
    }


def open_case(app_module, body):
    triage(app_module, body)
    return assign(app_module)


def test_health_needs_no_token(client):
    answer = client.http.get("/health")
    assert answer.status_code == 200 and answer.json_body["status"] == "ok"


def test_api_refuses_missing_and_forged_tokens(client, team):
    assert client.http.get("/cases").status_code == 401
    forged = team["aiko"]["Authorization"][:-6] + "AAAAAA"
    answer = client.http.get("/cases", headers={"Authorization": forged})
    assert answer.status_code == 401 and "signature" in answer.json_body["error"]


def test_signed_in_user_who_is_not_an_agent_gets_403(client, app_module):
    from local.cognito import issue_token

    token = issue_token(app_module.agents.cognito, app_module.agents.pool_id, app_module.agents.client_id,
                        "stranger", "Test-passw0rd!")
    answer = client.http.get("/cases", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403 and "not registered as an agent" in answer.json_body["error"]


def test_complaint_becomes_a_case_for_the_least_loaded_support_agent(client, app_module, team):
    deps().settings.adjust_open_cases("aiko", +2, at="2026-11-23T00:00:00Z")
    results = open_case(app_module, mention("100", "3 hours on hold and still no bag. Worst airline ever"))
    assert results[0]["outcome"] == "opened" and results[0]["team"] == "support"
    assert results[0]["assignee"] == "ken"
    inbox = client.http.get("/cases", headers=team["ken"]).json_body
    assert [c["case_id"] for c in inbox["cases"]] == [results[0]["case_id"]]
    case = inbox["cases"][0]
    assert case["category"] == "complaint" and case["sentiment"] == "negative"
    detail = client.http.get(f"/cases/{case['case_id']}", headers=team["ken"]).json_body
    assert detail["mentions"][0]["text"].startswith("3 hours on hold")
    assert detail["customer"]["handle"] == "kana_t"
    assert [e["event"] for e in detail["history"]] == ["opened"]


def test_verified_author_goes_to_the_vip_team(client, app_module, team):
    results = open_case(app_module, mention("101", "My flight was cancelled and nobody at the desk can help",
                                            verified=True, followers=250000, handle="famous"))
    assert results[0]["team"] == "vip" and results[0]["assignee"] == "mika"
    assert client.http.get(f"/cases/{results[0]['case_id']}", headers=team["aiko"]).status_code == 403


def test_noise_makes_no_case(app_module, team):
    results = triage(app_module, mention("102", "@friend_jun @SoraAir lol look at this"))
    assert results[0]["outcome"] == "no_case"
    assert assign(app_module) == []


def test_the_same_mention_twice_makes_one_case(client, app_module, team):
    body = mention("103", "Where is my refund? Still waiting after 3 weeks")
    first = triage(app_module, body, body)
    assert sorted(r["outcome"] for r in first)[0] in ("duplicate", "triaged")
    assign(app_module)
    triage(app_module, body)
    assign(app_module)
    cases = client.http.get("/cases", headers=team["boss"]).json_body["cases"]
    assert len(cases) == 1


def test_a_customers_follow_up_joins_their_open_case(client, app_module, team):
    first = open_case(app_module, mention("104", "My bag did not arrive in Osaka"))[0]
    second = open_case(app_module, mention("105", "Still no news about the bag, this is terrible",
                                           created_at="2026-11-23T04:00:00Z"))[0]
    assert second["outcome"] == "joined" and second["case_id"] == first["case_id"]
    detail = client.http.get(f"/cases/{first['case_id']}", headers=team["boss"]).json_body
    assert len(detail["mentions"]) == 2 and detail["case"]["mention_count"] == 2


def test_a_malformed_mention_goes_to_the_dead_letter_queue_and_the_rest_go_on(app_module, team):
    results = triage(app_module, "{not json", {"platform": "x", "kind": "mention"},
                     mention("106", "Lost my luggage, please help"))
    outcomes = sorted(r["outcome"] for r in results)
    assert outcomes == ["dead_lettered", "dead_lettered", "triaged"]
    sqs, url = queue("mentions-dlq")
    parked = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    reasons = sorted(m["MessageAttributes"]["failure_reason"]["StringValue"] for m in parked)
    assert "not JSON" in reasons[0] and "platform_id" in reasons[1]


def test_reply_is_sent_once_and_shows_as_sent(client, app_module, team):
    case_id = open_case(app_module, mention("107", "My flight is delayed 5 hours, no info at the gate"))[0]["case_id"]
    fake_x = RecordingX()
    use_platforms(deps(), x=fake_x)
    answer = client.http.post(f"/cases/{case_id}/replies", headers={**team["boss"], "Content-Type": "application/json"},
                              body=json.dumps({"text": "We are sorry. Please DM us your booking code.",
                                               "idempotency_key": "k1"}))
    assert answer.status_code == 202 and answer.json_body["delivery_status"] == "queued"
    again = client.http.post(f"/cases/{case_id}/replies", headers={**team["boss"], "Content-Type": "application/json"},
                             body=json.dumps({"text": "We are sorry. Please DM us your booking code.",
                                              "idempotency_key": "k1"}))
    assert again.json_body["reply_id"] == answer.json_body["reply_id"]
    send(app_module)
    # A repeated delivery of the outbound message must not post again.
    sqs, url = queue("outbound")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"case_id": case_id, "reply_id": answer.json_body["reply_id"]}))
    send(app_module)
    assert fake_x.posted == [("reply", "107", "We are sorry. Please DM us your booking code.")]
    detail = client.http.get(f"/cases/{case_id}", headers=team["boss"]).json_body
    assert detail["replies"][0]["delivery_status"] == "sent"
    assert detail["replies"][0]["platform_post_id"] == "9000000000000000001"
    assert detail["case"]["first_response_at"]


def test_platform_refusal_marks_the_reply_failed_with_the_platforms_words(client, app_module, team):
    from chalicelib.adapters.platforms.x import XRequestError

    case_id = open_case(app_module, mention("108", "Refund please, the seat was broken"))[0]["case_id"]
    use_platforms(deps(), x=RecordingX(refuse_with=XRequestError("You are not allowed to reply", status=403)))
    client.http.post(f"/cases/{case_id}/replies", headers={**team["boss"], "Content-Type": "application/json"},
                     body=json.dumps({"text": "Sorry!"}))
    send(app_module)
    reply = client.http.get(f"/cases/{case_id}", headers=team["boss"]).json_body["replies"][0]
    assert reply["delivery_status"] == "failed" and "not allowed to reply" in reply["error"]


def test_an_agent_sends_a_failed_reply_again_through_the_api(client, app_module, team):
    from chalicelib.adapters.platforms.x import XRequestError

    case_id = open_case(app_module, mention("118", "My refund never came"))[0]["case_id"]
    headers = {**team["boss"], "Content-Type": "application/json"}
    use_platforms(deps(), x=RecordingX(refuse_with=XRequestError("Service temporarily refused", status=403)))
    reply_id = client.http.post(f"/cases/{case_id}/replies", headers=headers,
                                body=json.dumps({"text": "Checking now."})).json_body["reply_id"]
    send(app_module)
    fake_x = RecordingX()
    use_platforms(deps(), x=fake_x)

    answer = client.http.post(f"/cases/{case_id}/replies/{reply_id}/retry", headers=headers)
    assert answer.status_code == 202 and answer.json_body["delivery_status"] == "queued"
    send(app_module)

    reply = client.http.get(f"/cases/{case_id}", headers=team["boss"]).json_body["replies"][0]
    assert reply["delivery_status"] == "sent" and fake_x.posted == [("reply", "118", "Checking now.")]
    again = client.http.post(f"/cases/{case_id}/replies/{reply_id}/retry", headers=headers)
    assert again.status_code == 409 and "sent" in again.json_body["error"]


def test_bad_requests_say_what_is_wrong(client, app_module, team):
    case_id = open_case(app_module, mention("109", "Why was my flight cancelled?"))[0]["case_id"]
    headers = {**team["boss"], "Content-Type": "application/json"}
    answer = client.http.post(f"/cases/{case_id}/replies", headers=headers, body=json.dumps({"txt": "hi"}))
    assert answer.status_code == 400 and "'text'" in answer.json_body["error"]
    answer = client.http.post(f"/cases/{case_id}/replies", headers=headers, body=json.dumps({"text": "x" * 300}))
    assert answer.status_code == 400 and "280" in answer.json_body["error"]
    answer = client.http.patch(f"/cases/{case_id}", headers=headers, body=json.dumps({"status": "done"}))
    assert answer.status_code == 400 and "status must be one of" in answer.json_body["error"]
    assert client.http.get("/cases/c_nope", headers=headers).status_code == 404
    assert client.http.get("/cases?status=lost", headers=headers).status_code == 400
    assert client.http.get("/cases?cursor=garbage", headers=headers).status_code == 400
    answer = client.http.patch(f"/cases/{case_id}", headers=headers, body="{oops")
    assert answer.status_code == 400 and "not valid JSON" in answer.json_body["error"]


def test_status_changes_move_cases_between_inboxes_and_free_the_agent(client, app_module, team):
    result = open_case(app_module, mention("110", "The app crashes when I check in, cannot board"))[0]
    headers = {**team["boss"], "Content-Type": "application/json"}
    assert client.http.patch(f"/cases/{result['case_id']}", headers=headers,
                             body=json.dumps({"status": "resolved"})).json_body["status"] == "resolved"
    assert client.http.get("/cases", headers=headers).json_body["cases"] == []
    resolved = client.http.get("/cases?status=resolved", headers=headers).json_body["cases"]
    assert [c["case_id"] for c in resolved] == [result["case_id"]]
    assert deps().settings.get_agent(result["assignee"]).open_cases == 0
    client.http.patch(f"/cases/{result['case_id']}", headers=headers, body=json.dumps({"status": "closed"}))
    answer = client.http.patch(f"/cases/{result['case_id']}", headers=headers, body=json.dumps({"status": "open"}))
    assert answer.status_code == 409


def test_inbox_pages_across_teams_without_skips_or_repeats(client, app_module, team):
    for i in range(7):
        open_case(app_module, mention(f"2{i:02d}", f"Lost my bag number {i}, nobody answers",
                                      author_id=f"c{i}", created_at=f"2026-11-23T0{i}:00:00Z",
                                      verified=(i % 3 == 0), followers=500000 if i % 3 == 0 else 10))
    seen, cursor = [], None
    while True:
        query = "/cases?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.http.get(query, headers=team["boss"]).json_body
        seen.extend(c["case_id"] for c in page["cases"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 7 and len(set(seen)) == 7
    created = [c for c in seen]
    assert created == sorted(created, key=lambda cid: deps().cases.get(cid).created_at, reverse=True)


def test_supervisor_changes_triage_rules_through_the_api(client, app_module, team):
    headers = {**team["boss"], "Content-Type": "application/json"}
    current = client.http.get("/admin/triage-rules", headers=headers).json_body
    assert current["version"] == 0
    bad = json.loads(json.dumps(current["document"]))
    bad.setdefault("rules", []).append({"id": "broken", "when": {"text_matches": "("}, "then": {"set_priority": "urgent"}})
    answer = client.http.put("/admin/triage-rules", headers=headers, body=json.dumps(bad))
    assert answer.status_code == 400 and "broken" in answer.json_body["error"]
    # A document without its rules (an empty object, a truncated paste) would wipe them: refused.
    answer = client.http.put("/admin/triage-rules", headers=headers, body=json.dumps({}))
    assert answer.status_code == 400 and "'rules' is missing" in answer.json_body["error"]
    assert client.http.get("/admin/triage-rules", headers=headers).json_body["version"] == 0
    good = json.loads(json.dumps(current["document"]))
    good.setdefault("rules", []).append({"id": "wifi-to-product", "when": {"text_contains": ["wifi"]},
                                         "then": {"route_team": "product", "set_priority": "high"}})
    answer = client.http.put("/admin/triage-rules", headers=headers, body=json.dumps(good))
    assert answer.status_code == 201 and answer.json_body["version"] == 1
    app_module.agents.add("priya", ["product"])
    deps().caches.clear()
    result = open_case(app_module, mention("111", "The wifi on board never works"))[0]
    assert result["team"] == "product" and result["priority"] == "high"
    assert client.http.put("/admin/triage-rules", headers={**team["aiko"], "Content-Type": "application/json"},
                           body=json.dumps(good)).status_code == 403
