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


def test_one_customer_on_facebook_and_whatsapp_linked_into_one_case(deployment):
    """Issue 12: a Facebook comment and a WhatsApp message from the same person, linked by an agent, join one
    case whose detail shows both."""
    from local.fake_graph import feed_comment_delivery

    graph = deployment.fake_graph
    comment = feed_comment_delivery(graph.page_id, post_id=f"{graph.page_id}_122104857600299001",
                                    comment_id="122104857600299001_1187342265599001",
                                    message="My suitcase arrived with a broken handle. Terrible!",
                                    sender={"id": "26543219876500001", "name": "Haruka Mori"}, created_time=time.time())
    assert graph.deliver(comment) == 200
    run_pipeline(deployment)
    [case] = [c for c in all_open_cases(deployment) if c["customer_key"] == "facebook:26543219876500001"]
    status, detail = call(deployment, "GET", f"/cases/{case['case_id']}")
    assert status == 200 and detail["customer"]["customer_id"].startswith("cu_"), detail
    facebook_id = detail["customer"]["customer_id"]

    # She writes on WhatsApp too; a thanks needs no case, but WhatsApp now knows her.
    assert graph.deliver(graph.add_customer_message("whatsapp", "819055500001", "Thanks! I will send you a photo here.",
                                                    name="Haruka")) == 200
    run_pipeline(deployment)
    status, found = call(deployment, "GET", "/customers?platform=whatsapp&platform_id=819055500001")
    assert status == 200 and len(found["customers"]) == 1, found
    whatsapp_id = found["customers"][0]["customer_id"]
    status, merged = call(deployment, "POST", f"/customers/{facebook_id}/merge", {"customer_id": whatsapp_id})
    assert status == 200, merged
    assert sorted(i["platform"] for i in merged["identities"]) == ["facebook", "whatsapp"]
    assert merged["audit"][0]["action"] == "merge"

    # Her WhatsApp photo of the broken handle joins the Facebook case; WhatsApp's URL expires, so the file
    # is copied to the stack's bucket as it arrives.
    from local.fake_graph import whatsapp_media_delivery

    photo = b"\xff\xd8\xff\xe0" + b"broken-handle-jpeg" * 64
    media_id = graph.add_whatsapp_media(photo, "image/jpeg")
    assert graph.deliver(whatsapp_media_delivery(
        graph.waba_id, graph.phone_number_id, wa_id="819055500001", name="Haruka", wamid="wamid.HBgLODE5MDU1NTAwMDAxFQIAEhgUM0E",
        media_id=media_id, caption="Here is a photo of the broken handle. When will you contact me?",
        timestamp=time.time())) == 200
    outcomes = run_pipeline(deployment)
    mine = [r for r in outcomes["assigned"] if r.get("mention_id", "").startswith("whatsapp:")]
    assert [(r["outcome"], r["case_id"]) for r in mine] == [("joined", case["case_id"])], outcomes
    status, detail = call(deployment, "GET", f"/cases/{case['case_id']}")
    assert status == 200
    assert [m["platform"] for m in detail["mentions"]] == ["facebook", "whatsapp"]
    assert detail["case"]["reply_target"]["platform"] == "whatsapp"  # the reply goes where she wrote last
    assert len(detail["customer"]["identities"]) == 2
    [image] = detail["media"]
    assert image["type"] == "image" and image["copied"] is True, image
    status, link = call(deployment, "GET", image["link"])
    assert status == 200 and link["source"] == "bucket", link
    with urllib.request.urlopen(link["url"], timeout=30) as answer:
        assert answer.read() == photo, "the bucket holds the customer's file, byte for byte"

    # A note to a colleague, never sent to her.
    status, note = call(deployment, "POST", f"/cases/{case['case_id']}/notes",
                        {"text": "@aiko she flew NRT-HND yesterday; handle broken on arrival, photo attached"})
    assert status == 201, note
    # A template reply, rendered with her name, sent on WhatsApp.
    status, templates = call(deployment, "PUT", "/admin/templates/handle-damage", {
        "team": detail["case"]["team"], "name": "Damaged bag",
        "bodies": {"en": "Hi {customer.name|there}, we're sorry about the damaged handle. Could you DM us your "
                         "booking reference? We'll arrange the repair.\n- {agent.initials}"}})
    assert status in (200, 201), templates
    sent_before = len(graph.posted)
    status, queued = call(deployment, "POST", f"/cases/{case['case_id']}/replies",
                          {"template_id": "handle-damage", "lang": "en"})
    assert status == 202, queued
    run_pipeline(deployment)
    status, detail = call(deployment, "GET", f"/cases/{case['case_id']}")
    [reply] = [r for r in detail["replies"] if r["reply_id"] == queued["reply_id"]]
    assert reply["delivery_status"] == "sent", reply
    assert reply["text"].startswith("Hi Haruka") and "damaged handle" in reply["text"]
    assert any("damaged handle" in str(p.get("text", "")) for p in graph.posted[sent_before:])
    assert any(n.get("text", "").startswith("@aiko") for n in detail["notes"]), detail["notes"]
