"""Working a case through the API on moto: notes with @mentions, edits, hand-offs and inbox filters."""
from __future__ import annotations

import json

import pytest

from chalicelib.bootstrap import deps
from chalicelib.domain.case import new_case
from tests.fakes import mention

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def team(app_module):
    return {
        "aiko": app_module.agents.add("aiko", ["support"]),
        "ken": app_module.agents.add("ken", ["support"]),
        "mika": app_module.agents.add("mika", ["vip"]),
        "boss": app_module.agents.add("boss", ["leads"], role="supervisor"),
    }


def a_case(n, *, team="support", assignee=None, **triage):
    """A case stored directly (the pipeline is tested elsewhere); the assignee's load follows."""
    post = mention(f"9{n:04d}", text=f"My bag {n} never arrived", author_id=f"c{n}",
                   created_at=f"2026-11-23T03:{n // 60:02d}:{n % 60:02d}Z")
    case = new_case(post, {"priority": "normal", "category": "complaint", "tags": ["baggage"], **triage},
                    team=team, assignee=None, now=f"2026-11-23T04:{n // 60:02d}:{n % 60:02d}.000000Z")
    deps().cases.create(case)
    if assignee:
        from chalicelib.domain.case import with_assignee

        stored = deps().cases.get(case.case_id)
        assert deps().cases.assign(stored, with_assignee(stored, assignee, stored.created_at),
                                   event={"event": "assigned"}) == "assigned"
    return case.case_id


def post(client, path, headers, body=None):
    return client.http.post(path, headers={**headers, **JSON}, body=json.dumps(body) if body is not None else b"")


def patch(client, path, headers, body):
    return client.http.patch(path, headers={**headers, **JSON}, body=json.dumps(body))


def history(client, case_id, headers):
    return client.http.get(f"/cases/{case_id}", headers=headers).json_body


def test_a_note_with_mentions_reaches_colleagues_and_stays_internal(client, team):
    case_id = a_case(1, assignee="aiko")
    answer = post(client, f"/cases/{case_id}/notes", team["aiko"], {"text": "@ken knows refunds; @zed who?"})
    assert answer.status_code == 201
    assert answer.json_body["notified"] == ["ken"] and answer.json_body["unknown_mentions"] == ["zed"]
    feed = client.http.get("/notifications", headers=team["ken"]).json_body["notifications"]
    assert [(n["reason"], n["case_id"]) for n in feed] == [("mention", case_id)]
    detail = history(client, case_id, team["ken"])
    assert [n["text"] for n in detail["notes"]] == ["@ken knows refunds; @zed who?"]
    assert detail["replies"] == []
    assert post(client, f"/cases/{case_id}/notes", team["aiko"], {"text": "x" * 4001}).status_code == 400
    assert post(client, f"/cases/{case_id}/notes", team["mika"], {"text": "hi"}).status_code == 403


def test_patch_edits_fields_records_who_and_refuses_unknown_ones(client, team):
    case_id = a_case(2, assignee="aiko")
    answer = patch(client, f"/cases/{case_id}", team["aiko"],
                   {"priority": "high", "category": "question", "add_tags": ["refund"]})
    assert answer.status_code == 200
    body = answer.json_body
    assert (body["priority"], body["category"], body["tags"]) == ("high", "question", ["baggage", "refund"])
    events = [e for e in history(client, case_id, team["boss"])["history"] if e.get("event") == "case_updated"]
    assert events[0]["agent_id"] == "aiko"
    assert events[0]["changes"]["priority"] == {"from": "normal", "to": "high"}
    corrections, _ = deps().feedback.corrections()
    assert sorted((c.field, c.after) for c in corrections if c.case_id == case_id) == [
        ("category", "question"), ("priority", "high"), ("tags", ["baggage", "refund"])]
    refused = patch(client, f"/cases/{case_id}", team["aiko"], {"assignee": "ken", "colour": "red"})
    assert refused.status_code == 400 and "assignee, colour" in refused.json_body["error"]
    assert patch(client, f"/cases/{case_id}", team["aiko"], {"priority": "critical"}).status_code == 400
    assert patch(client, f"/cases/{case_id}", team["aiko"], {"tags": ["Not A Tag"]}).status_code == 400
    listed = client.http.get("/cases?order=priority&priority=high", headers=team["aiko"]).json_body["cases"]
    assert [c["case_id"] for c in listed] == [case_id]


def test_claim_assign_transfer_and_unassign_keep_the_counts_right(client, team):
    case_id = a_case(3)
    claimed = post(client, f"/cases/{case_id}/claim", team["ken"])
    assert claimed.status_code == 200 and claimed.json_body["assignee"] == "ken"
    assert post(client, f"/cases/{case_id}/claim", team["aiko"]).status_code == 409
    assert deps().settings.get_agent("ken").open_cases == 1
    handed = post(client, f"/cases/{case_id}/assign", team["ken"], {"agent_id": "aiko", "note": "yours"})
    assert handed.status_code == 200 and handed.json_body["assignee"] == "aiko"
    assert (deps().settings.get_agent("ken").open_cases, deps().settings.get_agent("aiko").open_cases) == (0, 1)
    feed = client.http.get("/notifications", headers=team["aiko"]).json_body["notifications"]
    assert feed[0]["reason"] == "assigned" and "yours" in feed[0]["detail"]
    assert post(client, f"/cases/{case_id}/assign", team["ken"], {"agent_id": "ken"}).status_code == 403
    moved = post(client, f"/cases/{case_id}/assign", team["boss"], {"team": "vip", "note": "contract"})
    assert moved.status_code == 200 and moved.json_body["team"] == "vip"
    assert moved.json_body["assignee"] == "mika"  # vip's agent with room took it
    assert deps().settings.get_agent("aiko").open_cases == 0
    out = post(client, f"/cases/{case_id}/unassign", team["mika"], {"note": "wrong desk"})
    assert out.status_code == 200 and out.json_body["assignee"] is None
    assert deps().settings.get_agent("mika").open_cases == 0
    kinds = [e.get("event") for e in history(client, case_id, team["boss"])["history"]]
    # claimed, handed to aiko, moved to vip, taken by mika (automatic), unassigned
    assert [k for k in kinds if k in ("assigned", "moved", "unassigned")] == [
        "assigned", "assigned", "moved", "assigned", "unassigned"]
    assert post(client, f"/cases/{case_id}/assign", team["boss"], {"agent_id": "ghost"}).status_code == 400
    assert post(client, f"/cases/{case_id}/assign", team["boss"], {"nobody": 1}).status_code == 400


def test_assignee_me_and_sparse_filters_page_fully(client, team):
    mine = set()
    for n in range(30):
        owner = "ken" if n % 7 == 0 else None
        case_id = a_case(10 + n, assignee=owner, priority="urgent" if n % 9 == 0 else "normal",
                         category="sales_lead" if n in (4, 22) else "complaint")
        if owner:
            mine.add(case_id)
    for order in ("newest", "priority", "due"):
        seen, cursor = [], None
        while True:
            query = f"/cases?assignee=me&limit=2&order={order}" + (f"&cursor={cursor}" if cursor else "")
            page = client.http.get(query, headers=team["ken"]).json_body
            assert page["cases"] or not page["next_cursor"], "an empty page with a cursor"
            seen += [c["case_id"] for c in page["cases"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert set(seen) == mine and len(seen) == len(mine) == 5
    leads = client.http.get("/cases?category=sales_lead&assignee=none&limit=1", headers=team["aiko"]).json_body
    assert len(leads["cases"]) == 1 and leads["next_cursor"]
    rest = client.http.get(f"/cases?category=sales_lead&assignee=none&limit=1&cursor={leads['next_cursor']}",
                           headers=team["aiko"]).json_body
    assert len(rest["cases"]) == 1 and rest["next_cursor"] is None
    other = client.http.get(f"/cases?category=complaint&cursor={leads['next_cursor']}", headers=team["aiko"])
    assert other.status_code == 400
    urgent_mine = client.http.get("/cases?assignee=ken&priority=urgent", headers=team["aiko"]).json_body["cases"]
    assert [c["assignee"] for c in urgent_mine] == ["ken"]  # n = 0: the only urgent one of ken's
    for bad in ("/cases?priority=meh", "/cases?escalated=maybe", "/cases?platform=myspace", "/cases?colour=red"):
        assert client.http.get(bad, headers=team["aiko"]).status_code == 400
