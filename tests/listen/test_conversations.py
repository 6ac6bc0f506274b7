"""Messenger and Instagram DMs reconciled by polling the Graph Conversations API.

The webhook brings a direct message at once; polling the conversations
endpoints picks up one whose delivery Meta gave up on. Both make the same
mention (the same id), so a message that arrives both ways is one case.
Client tests run against the fake Graph API over HTTP; the end-to-end ones
add moto in-process and the Chalice test client, the fake pushing its
webhooks to the app's route.
"""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.adapters.platforms.http import HttpClient
from chalicelib.adapters.platforms.meta import GraphClient
from chalicelib.adapters.platforms.meta_webhooks import normalize_delivery
from chalicelib.bootstrap import deps
from chalicelib.config import settings
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.source import KINDS, validate_source
from local.fake_graph import GAVE_UP, FakeGraph, FakeGraphControl, messaging_delivery
from local.lambda_events import LambdaContext, scheduled_event
from tests.listen.test_push import APP_SECRET
from tests.test_app import assign, triage

TOKEN = "m"  # the test stack's meta_access_token (tests/conftest.py)
HOUR = 3600


@pytest.fixture
def fake():
    server = FakeGraph(access_token=TOKEN).start()
    yield server
    server.stop()


def client_for(fake: FakeGraph) -> GraphClient:
    base_url = fake.url + "/v21.0"
    return GraphClient(base_url, TOKEN, http=HttpClient(base_url=base_url, sleep=lambda seconds: None, timeout=5))


def ago(hours: float) -> float:
    return time.time() - hours * HOUR


def everything(client, node, **kwargs):
    mentions, after, pages = [], None, 0
    while True:
        page = client.conversations_page(node, after=after, **kwargs)
        mentions.extend(page.mentions)
        pages += 1
        after = page.next_after
        if not after:
            return mentions, pages, page


# ---- the client against the fake Graph API ---------------------------------------------------

def test_polled_dms_are_the_mentions_their_webhooks_make(fake):
    messenger = fake.add_customer_message("messenger", "7301234567890123", "Where is my refund for SA102?",
                                          name="Daniel Okafor", created_time=ago(2))
    instagram = fake.add_customer_message("instagram", "1122334455667788", "手荷物が届いていません。SA331です。",
                                          username="haruka_mama_", followers=52000, created_time=ago(1))
    client = client_for(fake)

    polled_messenger = client.conversations_page(fake.page_id, platform="messenger").mentions
    polled_instagram = client.conversations_page(fake.page_id, platform="instagram",
                                                 brand_id=fake.ig_user_id).mentions

    [pushed_messenger], _ = normalize_delivery(messenger)
    [pushed_instagram], _ = normalize_delivery(instagram)
    assert [m.to_dict() for m in polled_messenger] == [pushed_messenger.to_dict()]
    assert [m.to_dict() for m in polled_instagram] == [pushed_instagram.to_dict()]
    # Named by id only, like the webhook: the triage stage asks the User Profile API for both alike.
    assert polled_instagram[0].author.handle == "" and polled_instagram[0].lang == "ja"
    # The Instagram account's own conversations edge lists the same messages.
    assert client.conversations_page(fake.ig_user_id, platform="instagram").mentions == polled_instagram
    request = next(r for r in fake.requests if r["path"] == f"/{fake.page_id}/conversations")
    assert request["query"]["platform"] == "messenger" and "since" not in request["query"]  # no time paging here
    assert "messages.limit(20){id,message,from,created_time,attachments{" in request["query"]["fields"]


def test_the_brands_answers_and_messages_without_text_are_left_out(fake):
    client = client_for(fake)
    fake.add_customer_message("messenger", "7301234567890123", "Is my flight on time?", created_time=ago(0.1))
    client.send_message("messenger", fake.page_id, "7301234567890123", "Yes, SA102 leaves on time.")
    sticker = messaging_delivery("page", fake.page_id, sender_id="7301234567890123", mid="m_sticker_1", text=None,
                                 timestamp_ms=int((time.time() + 60) * 1000),
                                 attachments=[{"type": "image", "payload": {"url": "https://example.invalid/s.png"}}])
    fake.set_webhook("http://in-process/webhooks/meta", "secret", transport=lambda body, headers: 200)
    assert fake.deliver(sticker) == 200

    page = client.conversations_page(fake.page_id, platform="messenger")

    assert [m.text for m in page.mentions] == ["Is my flight on time?"]
    raw = HttpClient(base_url=fake.url + "/v21.0").request(
        "GET", f"/{fake.page_id}/conversations", params={"platform": "messenger", "fields": "messages{message,from}"},
        headers={"Authorization": f"Bearer {TOKEN}"}).body
    listed = raw["data"][0]["messages"]["data"]
    assert [(m["from"]["id"], m["message"]) for m in listed] == [
        ("7301234567890123", ""), (fake.page_id, "Yes, SA102 leaves on time."),
        ("7301234567890123", "Is my flight on time?")]


def test_conversations_page_newest_first_and_stop_at_the_first_not_updated_since(fake):
    client = client_for(fake)
    for index, hours in enumerate((5, 4, 3)):
        fake.add_customer_message("messenger", f"73000000000000{index}", f"question {index}", created_time=ago(hours))

    first, pages, _ = everything(client, fake.page_id, platform="messenger", limit=2)
    assert [m.text for m in first] == ["question 2", "question 1", "question 0"] and pages == 2

    page = client.conversations_page(fake.page_id, platform="messenger", limit=2)
    fake.add_customer_message("messenger", "730000000000000", "any news?", created_time=ago(1))
    again, pages, last = everything(client, fake.page_id, platform="messenger", since=page.newest_time, limit=2)
    assert [m.text for m in again] == ["any news?"] and pages == 1 and last.next_after is None


def test_long_messenger_conversations_are_paged_and_instagram_gives_its_20_newest(fake):
    client = client_for(fake)
    for minute in range(25):
        fake.add_customer_message("messenger", "7301234567890123", f"part {minute}", created_time=ago(2) + minute * 60)
        fake.add_customer_message("instagram", "1122334455667788", f"部分 {minute}", created_time=ago(2) + minute * 60)

    messenger = client.conversations_page(fake.page_id, platform="messenger").mentions
    instagram = client.conversations_page(fake.ig_user_id, platform="instagram").mentions

    assert len(messenger) == 25 and len({m.id for m in messenger}) == 25
    assert any(r["path"].endswith("/messages") for r in fake.requests)
    assert [m.text for m in instagram] == [f"部分 {minute}" for minute in range(24, 4, -1)]


def test_a_first_sweep_reads_back_a_week_only(fake):
    client = client_for(fake)
    fake.add_customer_message("messenger", "7301234567890123", "from last month", created_time=ago(24 * 30))
    fake.add_customer_message("messenger", "7300000000000001", "from this morning", created_time=ago(3))

    page = client.conversations_page(fake.page_id, platform="messenger", not_before=int(ago(24 * 7)))

    assert [m.text for m in page.mentions] == ["from this morning"] and page.next_after is None


def test_what_a_delivery_carries_is_listed_even_when_meta_gives_up_on_it(fake):
    sent = []
    fake.set_webhook("http://in-process/webhooks/meta", "secret",
                     transport=lambda body, headers: sent.append((body, headers)) or 200)
    pushed = messaging_delivery("page", fake.page_id, sender_id="7301234567890123", mid="m_pushed_1",
                                text="Can I change my seat?", timestamp_ms=int(ago(0.5) * 1000))
    dropped = messaging_delivery("instagram", fake.ig_user_id, sender_id="1122334455667788", mid="aWdfZAGgiven_up",
                                 text="座席を変更できますか？", timestamp_ms=int(ago(0.2) * 1000))

    assert fake.deliver(pushed) == 200
    FakeGraphControl(fake.url).give_up_webhooks(1)
    assert fake.deliver(dropped) == GAVE_UP

    assert len(sent) == 1 and b"m_pushed_1" in sent[0][0] and "X-Hub-Signature-256" in sent[0][1]
    assert [d["entry"][0]["messaging"][0]["message"]["mid"] for d in fake.given_up] == ["aWdfZAGgiven_up"]
    client = client_for(fake)
    assert [m.platform_id for m in client.conversations_page(fake.page_id, platform="messenger").mentions] == [
        "m_pushed_1"]
    assert [m.platform_id for m in client.conversations_page(fake.ig_user_id, platform="instagram").mentions] == [
        "aWdfZAGgiven_up"]


def test_instagram_dm_sources_may_name_the_linked_page_and_dm_kinds_poll_and_push():
    source = validate_source({"kind": "instagram_dm", "account_id": "17841405822304911",
                              "page_id": "104857600213455"})
    assert source["page_id"] == "104857600213455" and source["delivery"] == "poll+push"
    assert "page_id" not in validate_source({"kind": "instagram_dm", "account_id": "17841405822304911"})
    with pytest.raises(BadRequest):
        validate_source({"kind": "instagram_dm", "account_id": "17841405822304911", "page_id": "PAGE#1"})
    assert KINDS["messenger"][1] == KINDS["instagram_dm"][1] == "poll+push"
    assert KINDS["whatsapp"][1] == "push"  # the Cloud API has no endpoint listing received messages


# ---- end to end: webhook, poll, triage queue ------------------------------------------------------

@pytest.fixture
def graph(app_module, client, monkeypatch):
    server = FakeGraph(access_token=TOKEN).start()
    monkeypatch.setenv("GRAPH_API_BASE_URL", server.url + "/v21.0")
    settings.cache_clear()
    deps.cache_clear()
    # Meta's deliveries reach the app's webhook route through the Chalice test client.
    server.set_webhook("http://in-process/webhooks/meta", APP_SECRET, transport=lambda body, headers: (
        client.http.post("/webhooks/meta", headers=headers, body=body).status_code))
    yield server
    server.stop()


def fetch(app_module):
    return {r["source_id"]: r for r in
            app_module.fetch_mentions(scheduled_event("fetch", "us-east-1"), LambdaContext("fetch", "us-east-1"))}


def test_a_dm_whose_webhook_meta_gave_up_on_is_polled_into_its_case_and_none_twice(app_module, client, graph):
    boss = app_module.agents.add("boss", ["leads"], role="supervisor")
    app_module.agents.add("aiko", ["support"])
    for body in ({"kind": "messenger", "account_id": graph.page_id},
                 {"kind": "instagram_dm", "account_id": graph.ig_user_id, "page_id": graph.page_id},
                 {"kind": "whatsapp", "account_id": graph.phone_number_id}):
        answer = client.http.put("/admin/sources", headers={**boss, "Content-Type": "application/json"},
                                 body=json.dumps(body))
        assert answer.status_code == 201, answer.json_body

    delivered = graph.add_customer_message("messenger", "7301234567890123", "My refund has not arrived. Any update?",
                                           name="Daniel Okafor")
    assert graph.deliver(delivered) == 200
    graph.give_up_webhooks(2)
    lost_messenger = graph.add_customer_message("messenger", "7309876543210987",
                                                "I was charged twice for SA215, please help", name="Lena Vogel")
    lost_instagram = graph.add_customer_message("instagram", "1122334455667788", "預けた荷物が壊れていました。",
                                                username="haruka_mama_", name="Haruka")
    assert graph.deliver(lost_messenger) == graph.deliver(lost_instagram) == GAVE_UP
    triage(app_module)
    assert len(assign(app_module)) == 1  # only the delivered message has reached socialcare

    results = fetch(app_module)
    assert results[f"messenger:{graph.page_id}"] == {
        "source_id": f"messenger:{graph.page_id}", "outcome": "ok", "fetched": 2, "pages": 1, "complete": True}
    assert results[f"instagram:dm:{graph.ig_user_id}"]["fetched"] == 1
    assert f"whatsapp:{graph.phone_number_id}" not in results  # webhook-only: nothing to poll
    triaged = {r["mention_id"]: r["outcome"] for r in triage(app_module)}
    assert triaged[f"messenger:{_mid(delivered)}"] == "duplicate"  # arrived both ways: one mention
    assign(app_module)

    cases = client.http.get("/cases?limit=100", headers=boss).json_body["cases"]
    assert sorted((c["platform"], c["customer"]["name"]) for c in cases) == [
        ("instagram", "Haruka"), ("messenger", "Daniel Okafor"), ("messenger", "Lena Vogel")]
    details = [client.http.get(f"/cases/{c['case_id']}", headers=boss).json_body for c in cases]
    mention_ids = sorted(m["id"] for d in details for m in d["mentions"])
    assert mention_ids == sorted(f"{p}:{_mid(d)}" for p, d in (
        ("messenger", delivered), ("messenger", lost_messenger), ("instagram", lost_instagram)))
    # The Instagram source names its Page: Instagram conversations are read there.
    assert any(r["path"] == f"/{graph.page_id}/conversations" and r["query"]["platform"] == "instagram"
               for r in graph.requests)

    assert all(r["fetched"] == 0 for r in fetch(app_module).values())
    assert triage(app_module) == []
    sources = {s["kind"]: s for s in client.http.get("/sources", headers=boss).json_body["sources"]}
    assert sources["messenger"]["delivery"] == sources["instagram_dm"]["delivery"] == "poll+push"
    assert sources["whatsapp"]["delivery"] == "push" and sources["messenger"]["state"] == "ok"


def test_a_graph_outage_on_dms_fails_that_source_alone(app_module, client, graph):
    boss = app_module.agents.add("boss", ["leads"], role="supervisor")
    for body in ({"kind": "messenger", "account_id": graph.page_id},
                 {"kind": "instagram_dm", "account_id": graph.ig_user_id}):
        client.http.put("/admin/sources", headers={**boss, "Content-Type": "application/json"}, body=json.dumps(body))
    graph.add_customer_message("instagram", "1122334455667788", "Is the lounge open?", created_time=ago(0.1))
    graph.fail_next(f"/{graph.page_id}/conversations", 401)

    results = fetch(app_module)

    assert results[f"messenger:{graph.page_id}"]["outcome"] == "error"
    assert results[f"instagram:dm:{graph.ig_user_id}"]["fetched"] == 1  # no page_id: the account's own edge
    status = {s["kind"]: s for s in client.http.get("/sources", headers=boss).json_body["sources"]}
    assert status["messenger"]["state"] == "needs_attention" and "MetaAuthError" in status["messenger"]["last_error"]


def _mid(delivery):
    return delivery["entry"][0]["messaging"][0]["message"]["mid"]
