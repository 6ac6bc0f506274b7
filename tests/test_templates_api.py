"""Templates and brand voice through the real Chalice app on moto: /admin/templates, /templates,
/admin/brand-voice, POST /cases/{id}/replies/check, and replies sent from a template or refused (409)
by a brand-voice rule unless overridden with a reason."""
from __future__ import annotations

import pytest

from chalicelib.bootstrap import deps
from tests.api import call
from tests.test_app import mention, open_case, team  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}
LOST_BAG = {"team": "support", "name": "Lost bag",
            "bodies": {"en": "Hi {customer.name|there}, sorry about your bag; we are on it (case {case.id}).",
                       "ja": "{customer.name}、ご迷惑をおかけし申し訳ございません。"},
            "tags": ["baggage"]}




@pytest.fixture
def clock(app_module):
    state = {"now": "2026-11-23T03:00:00.000000Z"}
    deps().now = lambda: state["now"]
    return state


# ---- supervisors: /admin/templates -----------------------------------------------------------------

def test_a_supervisor_creates_replaces_lists_and_deletes_templates(client, team):  # noqa: F811
    boss = team["boss"]
    created = call(client, "PUT", "/admin/templates/lost-bag", boss, LOST_BAG)
    assert created.status_code == 201, created.body
    assert created.json_body["variables"] == ["customer.name", "case.id"] and created.json_body["usage"] == 0
    replaced = call(client, "PUT", "/admin/templates/lost-bag", boss, {**LOST_BAG, "name": "Lost bag v2"})
    assert replaced.status_code == 200 and replaced.json_body["name"] == "Lost bag v2"
    for index in range(3):
        assert call(client, "PUT", f"/admin/templates/vip-{index}", boss,
                    {**LOST_BAG, "team": "vip", "bodies": {"en": "Hello"}}).status_code == 201

    first = client.http.get("/admin/templates?limit=2", headers=boss)
    assert first.status_code == 200
    assert [t["template_id"] for t in first.json_body["templates"]] == ["lost-bag", "vip-0"]
    second = client.http.get(f"/admin/templates?limit=2&cursor={first.json_body['next_cursor']}", headers=boss)
    assert [t["template_id"] for t in second.json_body["templates"]] == ["vip-1", "vip-2"]
    assert second.json_body["next_cursor"] is None
    japanese = client.http.get("/admin/templates?lang=ja", headers=boss).json_body["templates"]
    assert [t["template_id"] for t in japanese] == ["lost-bag"]
    vip = client.http.get("/admin/templates?team=vip&limit=10", headers=boss).json_body["templates"]
    assert len(vip) == 3 and vip[0]["team"] == "vip"

    assert call(client, "DELETE", "/admin/templates/vip-0", boss).json_body == {"deleted": "vip-0", "team": "vip"}
    gone = call(client, "DELETE", "/admin/templates/vip-0", boss)
    assert gone.status_code == 404 and "does not exist" in gone.json_body["error"]
    assert client.http.get("/admin/templates/vip-0", headers=boss).status_code == 404


def test_template_mistakes_are_400s_that_say_what_to_fix(client, team):  # noqa: F811
    boss = team["boss"]
    answer = call(client, "PUT", "/admin/templates/lost-bag", boss,
                  {**LOST_BAG, "bodies": {"en": "Hi {customer.nam}"}})
    assert answer.status_code == 400 and "did you mean {customer.name}?" in answer.json_body["error"]
    answer = call(client, "PUT", "/admin/templates/Lost%20Bag", boss, LOST_BAG)
    assert answer.status_code == 400 and "template id" in answer.json_body["error"]
    answer = call(client, "PUT", "/admin/templates/lost-bag", boss, ["not", "an", "object"])
    assert answer.status_code == 400 and "JSON object" in answer.json_body["error"]
    for query, words in (("?lang=fr", "'lang'"), ("?limit=0", "'limit'"), ("?cursor=garbage", "cursor"),
                         ("?team=a%23b", "'team'"), ("?sort=name", "unknown query parameter")):
        answer = client.http.get("/admin/templates" + query, headers=boss)
        assert answer.status_code == 400 and words in answer.json_body["error"], (query, answer.body)


def test_agents_cannot_manage_templates_and_list_only_their_teams(client, team):  # noqa: F811
    boss, aiko = team["boss"], team["aiko"]
    assert call(client, "PUT", "/admin/templates/lost-bag", aiko, LOST_BAG).status_code == 403
    assert client.http.get("/admin/templates", headers=aiko).status_code == 403
    call(client, "PUT", "/admin/templates/lost-bag", boss, LOST_BAG)
    call(client, "PUT", "/admin/templates/vip-hello", boss, {**LOST_BAG, "team": "vip"})
    mine = client.http.get("/templates", headers=aiko)
    assert mine.status_code == 200 and [t["template_id"] for t in mine.json_body["templates"]] == ["lost-bag"]
    assert mine.json_body["templates"][0]["bodies"]["ja"].startswith("{customer.name}")
    other = client.http.get("/templates?team=vip", headers=aiko)
    assert other.status_code == 403 and "not in team 'vip'" in other.json_body["error"]


# ---- replies from templates --------------------------------------------------------------------------

def test_a_reply_from_a_template_is_rendered_sent_and_counted(client, app_module, team, clock):  # noqa: F811
    boss = team["boss"]
    call(client, "PUT", "/admin/templates/lost-bag", boss, LOST_BAG)
    case_id = open_case(app_module, mention("300", "My bag is lost, terrible service", handle="kana_t"))[0]["case_id"]

    preview = call(client, "POST", f"/cases/{case_id}/replies/check", boss, {"template_id": "lost-bag"})
    assert preview.status_code == 200, preview.body
    expected = f"Hi kana_t, sorry about your bag; we are on it (case {case_id})."
    assert preview.json_body["rendered"] == expected and preview.json_body["ok"] is True
    assert client.http.get("/admin/templates/lost-bag", headers=boss).json_body["usage"] == 0

    sent = call(client, "POST", f"/cases/{case_id}/replies", boss, {"template_id": "lost-bag"})
    assert sent.status_code == 202, sent.body
    assert sent.json_body["text"] == expected and sent.json_body["template_id"] == "lost-bag"
    listed = client.http.get("/admin/templates?team=support", headers=boss).json_body["templates"]
    assert listed[0]["usage"] == 1
    detail = client.http.get(f"/cases/{case_id}", headers=boss).json_body
    assert detail["replies"][0]["template_id"] == "lost-bag"

    missing = call(client, "POST", f"/cases/{case_id}/replies", boss, {"template_id": "nope"})
    assert missing.status_code == 404 and "template 'nope'" in missing.json_body["error"]
    no_ja = call(client, "POST", f"/cases/{case_id}/replies", boss,
                 {"template_id": "lost-bag", "lang": "ja", "variables": {"order": "1"}})
    assert no_ja.status_code == 400 and "unknown variable 'order'" in no_ja.json_body["error"]


# ---- brand voice -------------------------------------------------------------------------------------

def test_a_supervisor_edits_the_brand_voice_rules(client, team):  # noqa: F811
    boss, aiko = team["boss"], team["aiko"]
    shown = client.http.get("/admin/brand-voice", headers=boss)
    assert shown.status_code == 200 and shown.json_body["configured"] is False
    assert shown.json_body["rules"]["personal_data"]["severity"] == "block"
    rules = {"banned": [{"phrase": "calm down", "severity": "block"}, {"phrase": "仕方ない", "severity": "warn"}],
             "personal_data": {"order_pattern": "SA-[0-9]{8}"}}
    saved = call(client, "PUT", "/admin/brand-voice", boss, rules)
    assert saved.status_code == 201, saved.body
    assert saved.json_body["configured"] is True and saved.json_body["updated_by"] == "boss"
    assert saved.json_body["rules"]["personal_data"]["order_pattern"] == "SA-[0-9]{8}"
    assert call(client, "PUT", "/admin/brand-voice", boss, rules).status_code == 200
    bad = call(client, "PUT", "/admin/brand-voice", boss, {"personal_data": {"order_pattern": "(oops"}})
    assert bad.status_code == 400 and "not a valid regular expression" in bad.json_body["error"]
    slow = call(client, "PUT", "/admin/brand-voice", boss, {"personal_data": {"order_pattern": "(a+)+$"}})
    assert slow.status_code == 400 and "personal_data.order_pattern" in slow.json_body["error"]
    assert "nested repeats" in slow.json_body["error"]
    assert client.http.get("/admin/brand-voice", headers=aiko).status_code == 403
    assert call(client, "PUT", "/admin/brand-voice", aiko, rules).status_code == 403


def test_the_check_route_returns_findings_with_spans(client, app_module, team):  # noqa: F811
    boss, aiko = team["boss"], team["aiko"]
    call(client, "PUT", "/admin/brand-voice", boss, {"banned": ["calm down"]})
    case_id = open_case(app_module, mention("301", "Where is my refund?? This is terrible"))[0]["case_id"]
    text = "Please calm down, call 03-1234-5678 😡"
    answer = call(client, "POST", f"/cases/{case_id}/replies/check", boss, {"text": text})
    assert answer.status_code == 200, answer.body
    body = answer.json_body
    assert body["ok"] is False and body["rendered"] == text and body["mode"] == "public"
    assert [(f["rule"], f["severity"], text[f["span"][0]:f["span"][1]]) for f in body["findings"] if f["span"]] == [
        ("banned", "block", "calm down"), ("personal_data", "block", "03-1234-5678"), ("emoji", "warn", "😡")]
    assert any(f["rule"] == "apology" for f in body["findings"])
    assert call(client, "POST", "/cases/c_nope/replies/check", boss, {"text": "hi"}).status_code == 404
    for bad, words in (({}, "'text'"), ({"text": "hi", "mode": "loud"}, "'mode'"), ({"txt": "hi"}, "unknown field")):
        answer = call(client, "POST", f"/cases/{case_id}/replies/check", boss, bad)
        assert answer.status_code == 400 and words in answer.json_body["error"], answer.body
    assert call(client, "POST", f"/cases/{case_id}/replies/check", team["mika"], {"text": "hi"}).status_code == 403
    assert call(client, "POST", f"/cases/{case_id}/replies/check", aiko, {"text": "Sorry!"}).json_body["ok"] is True


def test_a_blocked_reply_is_a_409_naming_each_finding_until_overridden_with_a_reason(client, app_module, team):  # noqa: F811,E501
    boss = team["boss"]
    case_id = open_case(app_module, mention("302", "My card was charged twice, awful"))[0]["case_id"]
    text = "Sorry! Please email refunds@example.com with card 4111 1111 1111 1111"
    refused = call(client, "POST", f"/cases/{case_id}/replies", boss, {"text": text})
    assert refused.status_code == 409, refused.body
    body = refused.json_body
    assert "override_reason" in body["error"] and "personal_data" in body["error"] and body["ok"] is False
    assert [(f["rule"], f["kind"], f["severity"]) for f in body["findings"]] == [
        ("personal_data", "email", "block"), ("personal_data", "card", "block")]
    assert client.http.get(f"/cases/{case_id}", headers=boss).json_body["replies"] == []

    too_long = call(client, "POST", f"/cases/{case_id}/replies", boss, {"text": text, "override_reason": "x" * 501})
    assert too_long.status_code == 400 and "override_reason" in too_long.json_body["error"]
    sent = call(client, "POST", f"/cases/{case_id}/replies", boss,
                {"text": text, "override_reason": "test card from the payment provider's docs"})
    assert sent.status_code == 202, sent.body
    override = sent.json_body["brand_voice"]["override"]
    assert override["by"] == "boss" and [f["kind"] for f in override["findings"]] == ["email", "card"]
    detail = client.http.get(f"/cases/{case_id}", headers=boss).json_body
    [event] = [e for e in detail["history"] if e["event"] == "brand_voice_override"]
    assert event["agent_id"] == "boss" and event["reason"] == "test card from the payment provider's docs"
    assert [f["rule"] for f in event["findings"]] == ["personal_data", "personal_data"]
    assert detail["replies"][0]["brand_voice"]["override"]["reason"].startswith("test card")


def test_the_demos_templates_and_rules_load_and_serve(client, app_module, team):  # noqa: F811
    from local.demo_templates import seed_templates

    seed_templates()
    listed = client.http.get("/templates?lang=ja", headers=team["aiko"]).json_body["templates"]
    assert sorted(t["template_id"] for t in listed) == ["back-soon", "lost-bag"]
    case_id = open_case(app_module, mention("303", "Lost my bag at Haneda, awful"))[0]["case_id"]
    answer = call(client, "POST", f"/cases/{case_id}/replies/check", team["aiko"],
                  {"text": "Please calm down, your order SA-12345678 is fine"})
    assert [(f["rule"], f.get("kind")) for f in answer.json_body["findings"] if f["severity"] == "block"] == [
        ("banned", None), ("personal_data", "order")]
