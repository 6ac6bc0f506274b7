"""The deployed shape, end to end, over real HTTP.

moto's server is AWS (provisioned from infra/template.yaml by
CloudFormation), the fake X server is X, `chalice local` serves the agent
API, and Lambda-shaped events drive fetch -> triage -> assign -> reply -> send.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from local.stack import LocalDeployment


@pytest.fixture(scope="module")
def deployment():
    saved = dict(os.environ)
    stack = LocalDeployment(stage="e2e").start()
    try:
        yield stack
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        from tests.conftest import reset_caches

        reset_caches()


def call(deployment, method, path, body=None):
    request = urllib.request.Request(
        deployment.api_url + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {deployment.agent_token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def run_pipeline(deployment):
    outcomes = {"triaged": [], "assigned": [], "sent": [], "measured": []}
    for _ in range(5):
        turn = deployment.pump()
        for stage, results in turn.items():
            outcomes[stage].extend(results)
        if not any(turn.values()):
            break
    return outcomes


def all_open_cases(deployment):
    cases, cursor = [], None
    while True:
        status, page = call(deployment, "GET", "/cases?limit=50" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        cases.extend(page["cases"])
        cursor = page["next_cursor"]
        if not cursor:
            return cases


def test_mentions_become_assigned_cases_that_an_agent_answers(deployment):
    fetched = {r["source_id"].rsplit(":", 1)[0]: r for r in deployment.run_schedule()}
    assert all(r["outcome"] == "ok" for r in fetched.values()), fetched
    assert fetched["x:mentions"]["fetched"] > 10
    assert fetched["x:dm"]["fetched"] >= 1 and fetched["x:search"]["fetched"] >= 1
    assert fetched["facebook:feed"]["fetched"] >= 1 and fetched["instagram:comments"]["fetched"] >= 1
    outcomes = run_pipeline(deployment)
    decisions = [r for r in outcomes["triaged"] if r["outcome"] in ("triaged", "no_case")]
    assert any(r["outcome"] == "no_case" for r in decisions), "noise should not become cases"
    opened = [r for r in outcomes["assigned"] if r["outcome"] == "opened"]
    assert opened and all(r["assignee"] for r in opened)

    cases = all_open_cases(deployment)
    assert {c["case_id"] for c in cases} == {r["case_id"] for r in opened}
    assert any(c["team"] == "vip" for c in cases), "the verified account's post should reach the VIP team"
    assert any(c["lang"] == "ja" for c in cases), "Japanese posts should become cases too"

    complaint = next(c for c in cases if c["platform"] == "x" and c["category"] == "complaint"
                     and c["reply_target"]["addressed_to_brand"] and c["reply_target"]["kind"] != "dm")
    status, queued = call(deployment, "POST", f"/cases/{complaint['case_id']}/replies",
                          {"text": "We are sorry for the trouble. Please DM us your booking code."})
    assert status == 202, queued
    run_pipeline(deployment)
    posted = [p for p in deployment.fake_x.posted if p.get("kind", "reply") == "reply"]
    assert any(p.get("in_reply_to_tweet_id") == complaint["reply_target"]["platform_id"] for p in posted), posted
    status, detail = call(deployment, "GET", f"/cases/{complaint['case_id']}")
    assert detail["replies"][0]["delivery_status"] == "sent"
    assert detail["replies"][0]["platform_post_id"]
    assert detail["case"]["first_response_at"]

    status, resolved = call(deployment, "PATCH", f"/cases/{complaint['case_id']}", {"status": "resolved"})
    assert status == 200 and resolved["status"] == "resolved"

    # The next scheduled run finds nothing new: no mention is fetched or cased twice.
    again = deployment.run_schedule()
    assert all(r.get("fetched", 0) == 0 for r in again), again
    run_pipeline(deployment)
    assert len(all_open_cases(deployment)) == len(cases) - 1


def test_api_over_http_refuses_bad_input(deployment):
    assert call(deployment, "GET", "/cases/c_missing")[0] == 404
    request = urllib.request.Request(deployment.api_url + "/cases")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_every_meta_channel_reaches_a_case_and_comment_replies_go_back(deployment):
    from local.fake_graph import ig_mention_delivery

    graph = deployment.fake_graph
    samples = graph.sample_deliveries()
    # An Instagram @mention webhook carries only ids; make one the fake can answer the look-up for.
    tagged = graph.add_ig_mention("@soraair 那覇行きの機内食、とても美味しかったです！", username="okinawa_trip",
                                  in_comment=True)
    samples["instagram_mention"] = ig_mention_delivery(graph.ig_user_id, media_id=tagged["media"]["id"],
                                                       comment_id=tagged["id"], time_=time.time())
    # A DM names its sender by id only; the triage stage asks the User Profile API.
    samples["messenger_named"] = graph.add_customer_message("messenger", "7301234567890999",
                                                            "返金がまだ届きません。いつになりますか？",
                                                            name="Daniel Okafor")
    for name, delivery in samples.items():
        assert deployment.fake_graph.deliver(delivery) == 200, name
    run_pipeline(deployment)
    cases = all_open_cases(deployment)
    platforms = {c["platform"] for c in cases}
    assert {"facebook", "instagram", "messenger", "whatsapp"} <= platforms, platforms
    assert any(c["customer"]["name"] == "Daniel Okafor" for c in cases if c["platform"] == "messenger")
    assert any(c["platform"] == "instagram" and c["reply_target"]["kind"] == "mention" for c in cases)
    # A repeated delivery makes no second case.
    deployment.fake_graph.deliver(samples[next(iter(samples))])
    run_pipeline(deployment)
    assert len(all_open_cases(deployment)) == len(cases)

    comment = next(c for c in cases if c["platform"] == "facebook" and c["reply_target"]["kind"] in ("comment", "reply"))
    status, _ = call(deployment, "POST", f"/cases/{comment['case_id']}/replies", {"text": "ご不便をおかけして申し訳ありません。"})
    assert status == 202
    run_pipeline(deployment)
    status, detail = call(deployment, "GET", f"/cases/{comment['case_id']}")
    assert detail["replies"][0]["delivery_status"] == "sent", detail["replies"]
    assert any(p.get("text") == "ご不便をおかけして申し訳ありません。" for p in deployment.fake_graph.posted)
