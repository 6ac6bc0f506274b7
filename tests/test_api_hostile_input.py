"""Hostile input through the real Chalice app on moto: a 4xx that says what to fix, never a 5xx, nothing written.

Each test sets up the stack once and sends many bad requests to every route
that takes them; failures are collected so one run names every offender.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date, timedelta

import pytest

from chalicelib.bootstrap import deps
from tests.test_app import mention, open_case, queue, team  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}
LONG_ID = "c" * 10_000

# Raw JSON literals a field's value is replaced with; each must be refused whatever the field.
HOSTILE_LITERALS = {
    "lone surrogate": '"\\ud800"',
    "lone low surrogate inside text": '"abc\\udc00def"',
    "float overflow 1e400": "1e400",
    "int 10**400": "1" + "0" * 400,
    "int of 39 digits": "9" * 39,
    "tiny float 1e-300": "1e-300",
    "NaN": "NaN",
    "-Infinity": "-Infinity",
    "nesting 100000 deep": "[" * 100_000,
    "objects nested 50000 deep": '{"a":' * 50_000,
    "nesting 40 deep (parses, but past the limit)": "[" * 40 + "]" * 40,
    "300 KiB string": '"' + "x" * (300 * 1024) + '"',
    "30000 values": "[" + ",".join(["0"] * 30_000) + "]",
}
# Whole bodies, not fields.
HOSTILE_BODIES = {
    "empty": b"",
    "not UTF-8": b'{"name": "\xff\xfe\xc3("}',
    "UTF-16": json.dumps({"name": "x"}).encode("utf-16"),
    "nesting 100000 deep": b"[" * 100_000,
    "300 KiB of spaces around a valid object": b" " * (300 * 1024) + b"{}",
    "duplicate keys": b'{"status": "pending", "status": "closed"}',
    "truncated": b'{"status": "pen',
    "a bare number": b"1e400",
}


def with_field(base, field, literal):
    """``base`` as JSON text with ``field`` set to the raw literal (once: duplicates are refused anyway)."""
    rest = json.dumps({k: v for k, v in base.items() if k != field})
    return (rest[:-1] + (", " if len(rest) > 2 else "") + json.dumps(field) + ": " + literal + "}").encode()


def problems_of(answer, what):
    """Why ``answer`` is not an acceptable refusal, or []."""
    if not 400 <= answer.status_code < 500:
        return [f"{what}: status {answer.status_code} {answer.body[:200]!r}"]
    try:
        message = answer.json_body["error"]
    except (ValueError, KeyError, TypeError):
        return [f"{what}: {answer.status_code} without a JSON error: {answer.body[:200]!r}"]
    if not isinstance(message, str) or len(message) < 10:
        return [f"{what}: unhelpful error {message!r}"]
    return []


@pytest.fixture
def case_id(app_module, team):  # noqa: F811
    results = open_case(app_module, mention("100", "3 hours on hold and still no bag. Worst airline ever"))
    return results[0]["case_id"]


def body_routes(case_id):
    """(method, path, a valid body, the field to poison) for every route with a JSON body."""
    from chalicelib.triage import load_default_rules

    return [
        ("PATCH", f"/cases/{case_id}", {"status": "pending"}, "status"),
        ("POST", f"/cases/{case_id}/replies", {"text": "We are so sorry; a DM is on its way", "mode": "private"},
         "text"),
        ("PUT", "/admin/sources", {"kind": "x_search", "account_id": "1500000000000000001", "handle": "SoraAir",
                                   "terms": ["Sora Air"]}, "handle"),
        ("PUT", "/admin/agents/newbie", {"teams": ["support"], "capacity": 5, "name": "New Bie"}, "name"),
        ("PUT", "/admin/triage-rules", load_default_rules().to_dict(), "name"),
        ("PUT", "/admin/teams/support/hours", {"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "18:00"]]}},
         "time_zone"),
        ("PUT", "/admin/teams/support/away", {"enabled": True}, "enabled"),
        ("PUT", "/admin/sla", {"default": {"normal": {"first_response": 60}}}, "default"),
        ("PUT", "/me/presence", {"presence": "away"}, "presence"),
        ("POST", "/notifications/read", {"ids": ["n_00000000000000000000"]}, "ids"),
    ]


def assert_nothing_written(client, team, case_id):  # noqa: F811
    settings = deps().settings
    assert settings.get_agent("newbie") is None
    assert settings.list_sources() == []
    assert settings.current_rules_version() == 0
    assert settings.get_team_calendar("support") is None and settings.get_away_settings("support") is None
    assert settings.get_sla_policy() is None
    assert settings.get_agent("boss").presence == "online"
    detail = client.http.get(f"/cases/{case_id}", headers=team["boss"]).json_body
    assert detail["case"]["status"] == "open"
    assert detail["replies"] == []
    assert [e["event"] for e in detail["history"]] == ["opened"]
    sqs, url = queue("outbound")
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_hostile_fields_get_a_400_on_every_route_and_nothing_is_written(client, team, case_id):  # noqa: F811
    found = []
    for method, path, base, field in body_routes(case_id):
        for name, literal in HOSTILE_LITERALS.items():
            answer = client.http.request(method, path, headers={**team["boss"], **JSON},
                                         body=with_field(base, field, literal))
            found += problems_of(answer, f"{method} {path} {field}={name}")
    assert found == []
    assert_nothing_written(client, team, case_id)


def test_hostile_bodies_get_a_400_on_every_route_and_nothing_is_written(client, team, case_id):  # noqa: F811
    found = []
    for method, path, _base, _field in body_routes(case_id):
        for name, body in HOSTILE_BODIES.items():
            answer = client.http.request(method, path, headers={**team["boss"], **JSON}, body=body)
            found += problems_of(answer, f"{method} {path} body {name}")
    assert found == []
    assert_nothing_written(client, team, case_id)


def test_refusals_say_what_to_fix(client, team, case_id):  # noqa: F811
    def error(method, path, body):
        answer = client.http.request(method, path, headers={**team["boss"], **JSON}, body=body)
        assert answer.status_code == 400, answer.body
        return answer.json_body["error"]

    agent = {"teams": ["support"], "capacity": 5}
    too_big = client.http.request("PUT", "/admin/agents/newbie", headers={**team["boss"], **JSON},
                                  body=b" " * (300 * 1024) + b"{}")
    assert too_big.status_code == 413 and "256 KiB" in too_big.json_body["error"]  # Payload Too Large, with the limit
    assert "32 levels" in error("PUT", "/admin/agents/newbie", b"[" * 100_000)
    assert "surrogate" in error("PUT", "/admin/agents/newbie", with_field(agent, "name", '"\\ud800"'))
    assert "38" in error("PUT", "/admin/agents/newbie", with_field(agent, "capacity", "1" + "0" * 400))
    assert "too large" in error("PUT", "/admin/agents/newbie", with_field(agent, "capacity", "1e400"))
    assert "UTF-8" in error("PATCH", f"/cases/{case_id}", b'{"status": "\xff"}')
    assert "more than once" in error("PATCH", f"/cases/{case_id}", b'{"status": "open", "status": "closed"}')
    assert_nothing_written(client, team, case_id)


def test_agents_sources_and_names_outside_their_limits_are_refused(client, team, case_id):  # noqa: F811
    found = []
    agent = {"teams": ["support"], "capacity": 5}
    for name, body in {
        "capacity true": {**agent, "capacity": True},
        "capacity 20.0": {**agent, "capacity": 20.0},
        "capacity 10**30": {**agent, "capacity": 10**30},
        "name a number": {**agent, "name": 12},
        "name with a control character": {**agent, "name": "Ken\x07"},
        "name with a line break": {**agent, "name": "Ken\nSato"},
        "name too long": {**agent, "name": "k" * 201},
        "role a list": {**agent, "role": ["supervisor"]},
        "role an object": {**agent, "role": {"supervisor": True}},
        "teams a string": {**agent, "teams": "support"},
        "51 teams": {**agent, "teams": [f"t{n}" for n in range(51)]},
        "team with #": {**agent, "teams": ["a#b"]},
        "available a string": {**agent, "available": "yes"},
    }.items():
        answer = client.http.put("/admin/agents/newbie", headers={**team["boss"], **JSON}, body=json.dumps(body))
        found += problems_of(answer, f"agent {name}")
    source = {"kind": "x_search", "account_id": "1500000000000000001", "handle": "SoraAir", "terms": ["Sora Air"]}
    for name, body in {
        "account id too long": {**source, "account_id": "1" * 65},
        "account id with :": {**source, "account_id": "1:2"},
        "account id with #": {**source, "account_id": "1#2"},
        "account id a number": {**source, "account_id": 1500000000000000001},
        "X handle too long": {**source, "handle": "h" * 16},
        "X handle with a space": {**source, "handle": "Sora Air"},
        "Meta handle too long": {"kind": "facebook_feed", "account_id": "104857600213455", "handle": "p" * 51},
        "Meta handle with a control character": {"kind": "facebook_feed", "account_id": "1", "handle": "a\x00b"},
        "kind a list": {**source, "kind": ["x_search"]},
        "enabled a string": {**source, "enabled": "true"},
        "26 terms": {**source, "terms": [f"term {n}" for n in range(26)]},
        "term too long": {**source, "terms": ["t" * 101]},
        "term of quotes only": {**source, "terms": ['""']},
        "term with a line break": {**source, "terms": ["Sora\nAir"]},
        "term a number": {**source, "terms": [7]},
        "terms too long for X's 512": {**source, "terms": [f"{n:02d} " + "ソラ航空の予約変更" * 9 for n in range(8)]},
    }.items():
        answer = client.http.put("/admin/sources", headers={**team["boss"], **JSON}, body=json.dumps(body))
        found += problems_of(answer, f"source {name}")
    assert found == []
    assert_nothing_written(client, team, case_id)


def test_service_level_bodies_outside_their_limits_are_refused(client, team, case_id):  # noqa: F811
    found = []
    calendar = {"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "18:00"]]}}
    policy = {"default": {"normal": {"first_response": 60}}}
    for method, path, base, changes in [
        ("PUT", "/admin/teams/support/hours", calendar, {
            "weekly a list": {"weekly": [["09:00", "18:00"]]},
            "11 shifts a day": {"weekly": {"mon": [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(11)]}},
            "a time as a number": {"weekly": {"mon": [[900, 1800]]}},
            "time zone of 65 characters": {"time_zone": "Asia/" + "T" * 60},
            "time zone with a control character": {"time_zone": "Asia/Tok\x00yo"},
            "367 holidays": {"holidays": [(date(2027, 1, 1) + timedelta(days=n)).isoformat() for n in range(367)]},
            "holiday in year 0226": {"holidays": ["0226-12-31"]},
            "unknown field": {"timezone": "UTC"},
        }),
        ("PUT", "/admin/sla", policy, {
            "0 minutes": {"default": {"normal": {"first_response": 0}}},
            "minutes as text": {"default": {"normal": {"first_response": "60"}}},
            "minutes past 90 days": {"default": {"normal": {"first_response": 90 * 24 * 60 + 1}}},
            "minutes 10**30": {"default": {"normal": {"first_response": 10**30}}},
            "ratio 0": {"warning_ratio": 0},
            "unknown priority": {"default": {"critical": {"first_response": 60}}},
            "201 overrides": {"overrides": [{"team": f"t{n}", "targets": {}} for n in range(201)]},
            "unknown action": {"actions": {"breach": ["page_the_ceo"]}},
            "move to a team with #": {"actions": {"breach": [{"move_to_team": "a#b"}]}},
        }),
        ("PUT", "/admin/teams/support/away", {"enabled": True}, {
            "template of 1,001 characters": {"templates": {"en": "x" * 1001}},
            "template with a control character": {"templates": {"en": "Hi\x07 there"}},
            "template in French": {"templates": {"fr": "Bonjour"}},
            "unknown variable": {"templates": {"en": "Back {tomorrow}"}},
            "unbalanced brace": {"templates": {"en": "Back {next_open"}},
            "when always": {"when": "always"}, "period 0 hours": {"period_hours": 0},
            "period 24.0": {"period_hours": 24.0}, "enabled a string": {"enabled": "yes"},
        }),
        ("PUT", "/me/presence", {"presence": "away"}, {
            "presence a list": {"presence": ["away"]}, "presence busy": {"presence": "busy"},
            "an extra field": {"presence": "away", "until": "tomorrow"},
        }),
        ("POST", "/notifications/read", {"ids": []}, {
            "ids a string": {"ids": "n_1"}, "101 ids": {"ids": [f"n_{n}" for n in range(101)]},
            "an id a number": {"ids": [7]}, "an id of 10,000 characters": {"ids": ["n" * 10_000]},
        }),
    ]:
        for name, change in changes.items():
            answer = client.http.request(method, path, headers={**team["boss"], **JSON},
                                         body=json.dumps({**base, **change}))
            found += problems_of(answer, f"{method} {path} {name}")
    assert found == []
    assert_nothing_written(client, team, case_id)


def test_an_x_search_query_over_512_characters_is_refused_when_saved(client, team):  # noqa: F811
    terms = [f"{n:02d} " + "ソラ航空の予約変更" * 9 for n in range(8)]  # 8 terms of 84 characters
    body = {"kind": "x_search", "account_id": "1500000000000000001", "handle": "SoraAir", "terms": terms}
    answer = client.http.put("/admin/sources", headers={**team["boss"], **JSON}, body=json.dumps(body))
    assert answer.status_code == 400
    assert "512" in answer.json_body["error"] and "characters" in answer.json_body["error"]
    assert deps().settings.list_sources() == []
    body["terms"] = terms[:5]
    assert client.http.put("/admin/sources", headers={**team["boss"], **JSON}, body=json.dumps(body)).status_code == 201


def test_hostile_paths_and_queries_get_a_4xx(client, team, case_id):  # noqa: F811
    boss = team["boss"]
    found = []
    for method, path in [
        ("GET", f"/cases/{LONG_ID}"), ("PATCH", f"/cases/{LONG_ID}"), ("POST", f"/cases/{LONG_ID}/replies"),
        ("GET", "/cases/a%00b"), ("GET", "/cases/a\x01b"), ("GET", "/cases/a b"),
        ("PUT", f"/admin/agents/{LONG_ID}"), ("PUT", "/admin/agents/new\x7fbie"), ("PUT", "/admin/agents/new bie"),
        ("PUT", "/admin/agents/new\u3000bie"), ("PUT", "/admin/agents/new\u200bbie"),
        ("GET", f"/admin/teams/{LONG_ID}/hours"), ("PUT", f"/admin/teams/{LONG_ID}/hours"),
        ("DELETE", f"/admin/teams/{LONG_ID}/hours"),
        ("PUT", "/admin/teams/" + "t" * 65 + "/hours"), ("PUT", "/admin/teams/sup\x00port/away"),
        ("GET", "/admin/teams/sup port/away"), ("PUT", "/admin/teams/" + "t" * 65 + "/away"),
        ("GET", f"/teams/{LONG_ID}/waiting"), ("GET", "/teams/" + "t" * 65 + "/waiting"),
        ("GET", "/teams/sup\u200bport/waiting"),
    ]:
        # A body the route would accept, so that only the path can be the reason for a refusal.
        body = json.dumps({"time_zone": "UTC", "weekly": {"mon": [["09:00", "18:00"]]}} if path.endswith("/hours")
                          else {"enabled": False} if path.endswith("/away")
                          else {"status": "pending", "text": "hi", "teams": ["support"]})
        answer = client.http.request(method, path, headers={**boss, **JSON}, body=body)
        found += problems_of(answer, f"{method} {path[:40]}")
    long_value = "v" * 3000
    for path in [
        "/cases?cursor=" + "A" * 5000, "/cases?status=" + long_value, "/cases?team=" + long_value,
        "/cases?order=" + long_value, "/cases?limit=" + "9" * 3000, "/cases?limit=1e400", "/cases?limit=-1",
        "/cases?assignee=" + long_value, "/sources?anything=" + long_value, "/admin/triage-rules?x=" + long_value,
        "/admin/triage-rules/versions?x=" + long_value, "/cases?" + "&".join(f"p{n}=1" for n in range(30)),
        "/cases?status=open&status=closed", "/cases?status=open%0d%0a", "/cases?" + "k" * 3000 + "=1",
        "/cases?sla=" + long_value, "/cases?sla=bogus", "/cases?order=due&sla=warning%00",
        "/notifications?cursor=" + "A" * 5000, "/notifications?cursor=!!!", "/notifications?limit=1e400",
        "/notifications?limit=-1", "/notifications?unread=" + long_value, "/notifications?unread=yes%0a",
        "/teams/support/waiting?cursor=garbage", "/teams/support/waiting?limit=" + "9" * 3000,
        "/admin/sla?x=" + long_value, "/admin/teams/support/hours?x=" + long_value, "/me?x=" + long_value,
    ]:
        answer = client.http.get(path, headers=boss)
        found += problems_of(answer, f"GET {path[:50]}")
    assert found == []
    assert deps().settings.get_agent("new bie") is None and deps().settings.get_agent("new\u3000bie") is None


def encoded(state):
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def test_tampered_cursors_get_a_400(client, team, case_id):  # noqa: F811
    boss = team["boss"]
    listing = {"status": "open", "order": "newest"}
    found = []
    for name, cursor in {
        "not base64": "!!!",
        "base64 of garbage": base64.urlsafe_b64encode(b"\xff\x00garbage").decode(),
        "a JSON list": encoded([]),
        "a JSON number": encoded(1e300),
        "nested deep": base64.urlsafe_b64encode(b"[" * 5000).decode(),
        "1e400": base64.urlsafe_b64encode(b'{"positions": 1e400}').decode(),
        "positions a list": encoded({**listing, "positions": []}),
        "position a number": encoded({**listing, "positions": {"support": 5}}),
        "position garbage": encoded({**listing, "positions": {"support": "garbage"}}),
        "position of the wrong shape": encoded({**listing, "positions": {"support": encoded({"c": 5, "s": []})}}),
        "position of another case": encoded({**listing, "positions": {"support": encoded({"c": "x", "s": "y#z"})}}),
        "position with a huge id": encoded({**listing, "positions": {"support": encoded({"c": "x" * 3000,
                                                                                          "s": "1#" + "x" * 3000})}}),
        "another listing": encoded({"status": "closed", "order": "newest", "positions": {"support": "start"}}),
        "5000 characters": "A" * 5000,
    }.items():
        answer = client.http.get(f"/cases?cursor={cursor}", headers=boss)
        found += problems_of(answer, f"cursor {name}")
    assert found == []


def signed(raw, secret="app-secret"):
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


def whatsapp(text_literal='"hello"', timestamp_literal='"1795425600"'):
    return ('{"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", '
            '"value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "PHONE1"}, '
            '"contacts": [{"profile": {"name": "Haruka"}, "wa_id": "819012345678"}], '
            '"messages": [{"from": "819012345678", "id": "wamid.1", "timestamp": ' + timestamp_literal + ', '
            '"type": "text", "text": {"body": ' + text_literal + '}}]}}]}]}').encode()


def test_signed_webhook_deliveries_with_hostile_json_never_get_a_5xx(client, aws):
    found = []
    for name, raw in {
        "nesting 100000 deep": b"[" * 100_000,
        "objects nested 50000 deep": b'{"a":' * 50_000,
        "not UTF-8": b'{"object": "\xff"}',
        "1e400": b'{"object": 1e400, "entry": []}',
        "NaN": b'{"object": NaN, "entry": []}',
        "lone surrogate": whatsapp(text_literal='"\\ud800"'),
    }.items():
        answer = client.http.post("/webhooks/meta", headers=signed(raw), body=raw)
        if answer.status_code >= 500:
            found.append(f"webhook {name}: {answer.status_code} {answer.body[:200]!r}")
        elif answer.status_code >= 400:
            found += problems_of(answer, f"webhook {name}")
    assert found == []


def test_a_webhook_item_with_an_impossible_timestamp_is_skipped_not_a_5xx(client, aws):
    found = []
    for name, literal in {"1e400": "1e400", "10**400": "1" + "0" * 400, "1e20": "1e20",
                          "-1e20": "-1e20", "9999 digits": '"' + "9" * 9999 + '"'}.items():
        raw = whatsapp(timestamp_literal=literal)
        answer = client.http.post("/webhooks/meta", headers=signed(raw), body=raw)
        # One malformed item is skipped with a reason (Meta would retry a refused delivery for hours).
        if answer.status_code != 200 or answer.json_body["enqueued"] != 0 or not answer.json_body["skipped"]:
            found.append(f"timestamp {name}: {answer.status_code} {answer.body[:200]!r}")
    assert found == []


def test_an_empty_app_client_id_refuses_every_signed_in_request(client, team, monkeypatch):  # noqa: F811
    from chalicelib.config import settings
    from chalicelib.entrypoints import http as http_api

    for name, value in [("USER_POOL_CLIENT_ID", ""), ("USER_POOL_ID", ""),
                        ("USER_POOL_CLIENT_ID", "REPLACE_WITH_STACK_OUTPUT_UserPoolClientId")]:
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            settings.cache_clear()
            settings()  # read here: inside a request the test client applies .chalice/config.json's stage
            http_api._verifier.clear()
            for method, path in [("GET", "/cases"), ("GET", "/sources"), ("PUT", "/admin/agents/newbie")]:
                answer = client.http.request(method, path, headers={**team["boss"], **JSON},
                                             body=json.dumps({"teams": ["support"]}))
                assert answer.status_code == 503, (name, value, method, path, answer.body)
                assert name in answer.json_body["error"]
        settings.cache_clear()
    assert deps().settings.get_agent("newbie") is None
    assert client.http.get("/health").status_code == 200
