"""The scheduled fetch against the fake X over HTTP, with moto in-process."""
from __future__ import annotations

import json
import time

import boto3
import pytest

from chalicelib.bootstrap import deps
from chalicelib.config import settings
from local.fake_x import FakeX
from local.lambda_events import LambdaContext, scheduled_event
from local.stack import deliver_queue

BRAND_ID = "1500000000000000001"


@pytest.fixture
def fake_x(app_module, monkeypatch):
    fake = FakeX(port=0, bearer_token="t", brand_user_id=BRAND_ID, brand_handle="SoraAir").start()
    monkeypatch.setenv("X_API_BASE_URL", fake.url)
    settings.cache_clear()
    deps.cache_clear()
    for i in range(5):
        fake.add_user(f"cust{i}", followers=10 * i)
        fake.add_post(f"cust{i}", f"@SoraAir my bag {i} is lost, please help")
    fake.add_post("cust1", "SoraAir lost my bag again, no one answers")  # untagged: only search finds it
    fake.release()
    yield fake
    fake.stop()


def add_sources(client, headers):
    for body in ({"kind": "x_mentions", "account_id": BRAND_ID, "handle": "SoraAir"},
                 {"kind": "x_search", "account_id": BRAND_ID, "handle": "SoraAir", "terms": ["SoraAir"]}):
        answer = client.http.put("/admin/sources", headers={**headers, "Content-Type": "application/json"},
                                 body=json.dumps(body))
        assert answer.status_code == 201, answer.json_body


def fetch(app_module):
    return {r["source_id"].split(":")[1]: r for r in
            app_module.fetch_mentions(scheduled_event("fetch", "us-east-1"), LambdaContext("fetch", "us-east-1"))}


def queued_mention_ids():
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="socialcare-test-mentions")["QueueUrl"]
    ids = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return ids
        for message in messages:
            ids.append(json.loads(message["Body"])["id"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def boss(app_module):
    return app_module.agents.add("boss", ["leads"], role="supervisor")


def test_mentions_and_untagged_posts_are_fetched_once(app_module, client, fake_x, boss):
    add_sources(client, boss)
    results = fetch(app_module)
    assert results["mentions"]["fetched"] == 5 and results["search"]["fetched"] == 1
    assert len(set(queued_mention_ids())) == 6
    fake_x.add_post("cust2", "@SoraAir any news?")
    fake_x.release()
    results = fetch(app_module)
    assert results["mentions"]["fetched"] == 1 and results["search"]["fetched"] == 0
    assert len(queued_mention_ids()) == 1


def test_one_failing_source_does_not_stop_the_others_and_shows_on_sources(app_module, client, fake_x, boss):
    add_sources(client, boss)
    fake_x.fail_next("/2/tweets/search/recent", 401)
    results = fetch(app_module)
    assert results["mentions"]["outcome"] == "ok" and results["search"]["outcome"] == "error"
    status = {s["kind"]: s for s in client.http.get("/sources", headers=boss).json_body["sources"]}
    assert "XAuthError" in status["x_search"]["last_error"] and status["x_search"]["state"] == "needs_attention"
    assert status["x_mentions"]["last_success_at"] and status["x_mentions"]["state"] == "ok"


def test_rate_limited_source_waits_for_the_reset(app_module, client, fake_x, boss):
    add_sources(client, boss)
    fake_x.fail_next(f"/2/users/{BRAND_ID}/mentions", 429, reset_in=600)
    results = fetch(app_module)
    assert results["mentions"]["outcome"] == "error"
    paused_until = deps().settings.get_source(f"x:mentions:{BRAND_ID}")["paused_until"]
    assert time.time() + 500 < paused_until <= time.time() + 700
    calls_before = len([r for r in fake_x.requests if r["path"].endswith("/mentions")])
    assert fetch(app_module)["mentions"]["outcome"] == "paused"
    assert len([r for r in fake_x.requests if r["path"].endswith("/mentions")]) == calls_before


def test_crash_before_or_after_enqueue_loses_nothing_and_makes_no_duplicate(app_module, client, fake_x, boss,
                                                                          monkeypatch):
    add_sources(client, boss)
    app_module.agents.add("aiko", ["support"])
    store, queue = deps().settings, deps().mentions_queue
    # 1. The queue is down: nothing is enqueued and the cursor stays put.
    monkeypatch.setattr(queue, "send_batch", lambda bodies: (_ for _ in ()).throw(ConnectionError("SQS down")))
    assert fetch(app_module)["mentions"]["outcome"] == "error"
    monkeypatch.undo()
    # 2. The function dies after enqueueing but before saving the cursor.
    monkeypatch.setattr(store, "save_cursor", lambda *a, **k: (_ for _ in ()).throw(TimeoutError("Lambda timed out")))
    assert fetch(app_module)["mentions"]["outcome"] == "error"
    monkeypatch.undo()
    # 3. The next run fetches the same posts again; they are enqueued twice in all.
    assert fetch(app_module)["mentions"]["fetched"] == 5
    sqs = boto3.client("sqs", region_name="us-east-1")
    deliver_queue(sqs, "socialcare-test-mentions", app_module.triage_mentions, "triage")
    deliver_queue(sqs, "socialcare-test-triaged", app_module.assign_cases, "assign")
    cases = client.http.get("/cases?limit=100", headers=boss).json_body["cases"]
    details = [client.http.get(f"/cases/{c['case_id']}", headers=boss).json_body for c in cases]
    mention_ids = [m["id"] for d in details for m in d["mentions"]]
    assert len(mention_ids) == 6 and len(set(mention_ids)) == 6  # every post once, none twice


def test_sources_are_validated_when_saved(client, boss):
    headers = {**boss, "Content-Type": "application/json"}
    answer = client.http.put("/admin/sources", headers=headers, body=json.dumps({"kind": "myspace", "account_id": "1"}))
    assert answer.status_code == 400 and "kind" in answer.json_body["error"]
    answer = client.http.put("/admin/sources", headers=headers,
                             body=json.dumps({"kind": "x_search", "account_id": "1", "handle": "SoraAir"}))
    assert answer.status_code == 400 and "terms" in answer.json_body["error"]
