"""POST/GET /webhooks/meta through the Chalice test client, on moto."""
from __future__ import annotations

import hashlib
import hmac
import json

from tests.fakes import use_platforms
from tests.listen.test_fetch import queued_mention_ids
from tests.test_app import assign, triage

APP_SECRET = "app-secret"  # as stored in the test stack's platform secret (tests/conftest.py)


def whatsapp_delivery(message_id="wamid.HBgL001", text="荷物が届かないのですが、どうなっていますか？", timestamp="1795425600"):
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "81312345678", "phone_number_id": "PHONE1"},
        "contacts": [{"profile": {"name": "Haruka"}, "wa_id": "819012345678"}],
        "messages": [{"from": "819012345678", "id": message_id, "timestamp": timestamp, "type": "text",
                      "text": {"body": text}}]}}]}]}


def signed(payload, secret=APP_SECRET):
    raw = json.dumps(payload).encode()  # json.dumps escapes non-ASCII, as Meta does
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


def test_handshake_answers_the_challenge_only_for_our_verify_token(client):
    ok = client.http.get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
    assert ok.status_code == 200 and ok.body == b"1158201444"
    refused = client.http.get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")
    assert refused.status_code == 403


def test_unsigned_or_forged_deliveries_are_refused_and_enqueue_nothing(client, aws):
    raw, headers = signed(whatsapp_delivery())
    answer = client.http.post("/webhooks/meta", headers={"Content-Type": "application/json"}, body=raw)
    assert answer.status_code == 401
    _, forged = signed(whatsapp_delivery(), secret="not-the-secret")
    assert client.http.post("/webhooks/meta", headers=forged, body=raw).status_code == 401
    tampered = raw.replace(b"Haruka", b"Mallory")
    assert client.http.post("/webhooks/meta", headers=headers, body=tampered).status_code == 401
    assert queued_mention_ids() == []


def test_a_delivery_meta_repeats_makes_one_case(client, app_module):
    boss = app_module.agents.add("boss", ["leads"], role="supervisor")
    app_module.agents.add("aiko", ["support"])
    raw, headers = signed(whatsapp_delivery())
    for _ in range(2):
        answer = client.http.post("/webhooks/meta", headers=headers, body=raw)
        assert answer.status_code == 200 and answer.json_body["enqueued"] == 1
    triage(app_module)
    assign(app_module)
    cases = client.http.get("/cases", headers=boss).json_body["cases"]
    assert len(cases) == 1
    assert cases[0]["platform"] == "whatsapp" and cases[0]["customer"]["name"] == "Haruka"


def test_a_signed_body_that_is_not_a_delivery_is_a_clear_400(client):
    raw, headers = signed({"hello": "world"})
    answer = client.http.post("/webhooks/meta", headers=headers, body=raw)
    assert answer.status_code == 400 and "not a Meta webhook delivery" in answer.json_body["error"]


def test_a_whatsapp_reply_reported_failed_later_shows_as_failed(client, app_module):
    from chalicelib.bootstrap import deps

    boss = app_module.agents.add("boss", ["leads"], role="supervisor")
    app_module.agents.add("aiko", ["support"])
    # Written a minute ago: inside WhatsApp's 24-hour window, so a free-text reply may go out.
    raw, headers = signed(whatsapp_delivery(timestamp=str(int(deps().epoch()) - 60)))
    client.http.post("/webhooks/meta", headers=headers, body=raw)
    triage(app_module)
    case_id = assign(app_module)[0]["case_id"]

    class Graph:
        def send_message(self, platform, account_id, recipient_id, text, reply_to_message_id=None, **_options):
            return "wamid.OUT1"

    use_platforms(deps(), graph=Graph())
    queued = client.http.post(f"/cases/{case_id}/replies", headers={**boss, "Content-Type": "application/json"},
                              body=json.dumps({"text": "確認いたします。"}))
    assert queued.status_code == 202, queued.body
    from tests.test_app import send

    send(app_module)
    receipt = {"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "PHONE1"},
        "statuses": [{"id": "wamid.OUT1", "status": "failed", "recipient_id": "819012345678",
                      "errors": [{"code": 131047, "title": "Re-engagement message"}]}]}}]}]}
    raw, headers = signed(receipt)
    assert client.http.post("/webhooks/meta", headers=headers, body=raw).json_body["failed_replies"] == 1
    reply = client.http.get(f"/cases/{case_id}", headers=boss).json_body["replies"][0]
    assert reply["delivery_status"] == "failed" and "Re-engagement" in reply["error"]


def messenger_delivery(sender_id, mid, text="返金はいつになりますか？まだ連絡がありません"):
    from local.fake_graph import messaging_delivery

    return messaging_delivery("page", "PAGE1", sender_id=sender_id, mid=mid, text=text, timestamp_ms=1795425600000)


class ProfileGraph:
    """The User Profile API as the triage stage sees it: one customer has consented, one has not."""

    def __init__(self):
        self.asked = []

    def messaging_profile(self, platform, user_id):
        from chalicelib.adapters.platforms.meta import MetaRequestError
        from chalicelib.domain.mention import Author

        self.asked.append((platform, user_id))
        if user_id != "7301234567890123":
            raise MetaRequestError("(#2018218) User consent is required to access user profile")
        return Author(id=user_id, name="Daniel Okafor")


def test_a_dm_sender_is_named_from_their_profile_and_a_refused_lookup_loses_nothing(client, app_module):
    from chalicelib.bootstrap import deps

    boss = app_module.agents.add("boss", ["leads"], role="supervisor")
    app_module.agents.add("aiko", ["support"])
    graph = ProfileGraph()
    use_platforms(deps(), graph=graph)
    for sender, mid in (("7301234567890123", "m_001"), ("7300000000000001", "m_002")):
        raw, headers = signed(messenger_delivery(sender, mid))
        assert client.http.post("/webhooks/meta", headers=headers, body=raw).status_code == 200
    triage(app_module)
    assign(app_module)

    cases = client.http.get("/cases", headers=boss).json_body["cases"]
    names = {c["customer"]["id"]: c["customer"]["name"] for c in cases}
    assert names == {"7301234567890123": "Daniel Okafor", "7300000000000001": ""}
    assert sorted(graph.asked) == [("messenger", "7300000000000001"), ("messenger", "7301234567890123")]


def test_the_webhook_reads_the_sources_once_a_minute_and_honours_a_switch_off_within_it():
    # Issue 17: each delivery read the sources twice. They are kept a minute per container now: a source a
    # supervisor switches off (or adds) reaches the webhook within SOURCES_TTL_SECONDS, not at once.
    from chalicelib.domain.source import validate_source
    from chalicelib.services.listen import push
    from tests.fakes import Clock, fake_deps, mention

    clock = Clock()
    deps = fake_deps(clock)
    deps.settings.put_source(validate_source({"kind": "messenger", "account_id": "PAGE1"}))
    listed = []
    list_sources = deps.settings.list_sources
    deps.settings.list_sources = lambda: listed.append(1) or list_sources()

    def deliver(n):
        dm = mention(f"mid.{n}", "where is my bag?", platform="messenger", kind="dm", author_id="psid-1",
                     source_id="messenger:PAGE1", created_at=clock.now())
        assert push.brand_accounts(deps) == {"PAGE1"}
        return push.accept_delivery([dm], [], [], deps)

    assert [deliver(n)["enqueued"] for n in range(3)] == [1, 1, 1] and len(listed) == 1
    deps.settings.put_source(validate_source({"kind": "messenger", "account_id": "PAGE1", "enabled": False}))
    clock.advance(seconds=push.SOURCES_TTL_SECONDS - 1)
    assert deliver(3)["enqueued"] == 1 and len(listed) == 1  # within the minute: as it was
    clock.advance(seconds=1)
    switched_off = deliver(4)
    assert switched_off["enqueued"] == 0 and switched_off["skipped"] == ["messenger:mid.4: source switched off"]
    assert len(listed) == 2 and len(deps.mentions_queue.bodies) == 4


def test_a_source_a_supervisor_switches_off_stops_this_containers_webhook_at_once(client, app_module):
    """The webhook keeps the sources a minute, but not past a change saved through the same container."""
    boss = app_module.agents.add("boss", ["leads"], role="supervisor")
    raw, headers = signed(whatsapp_delivery("wamid.before"))
    assert client.http.post("/webhooks/meta", headers=headers, body=raw).json_body["enqueued"] == 1  # sources read
    switch_off = {"kind": "whatsapp", "account_id": "PHONE1", "enabled": False}
    saved = client.http.put("/admin/sources", headers={**boss, "Content-Type": "application/json"},
                             body=json.dumps(switch_off))
    assert saved.status_code in (200, 201), saved.json_body
    raw, headers = signed(whatsapp_delivery("wamid.after"))
    answer = client.http.post("/webhooks/meta", headers=headers, body=raw).json_body
    assert answer["enqueued"] == 0 and "switched off" in answer["skipped"][0]
