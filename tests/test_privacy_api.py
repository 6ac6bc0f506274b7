"""A supervisor exports and erases a customer through the API, on moto: every table and index checked."""
from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.bootstrap import deps
from tests.fakes import use_platforms
from tests.test_app import RecordingX, mention, open_case, send, team, triage  # noqa: F401  (team is a fixture)

AUTHOR = "9183746501"
CUSTOMER = f"x:{AUTHOR}"
HANDLE = "mika_suzuki_88"
COMPLAINT = "3 hours on hold at Haneda and still no bag. Worst airline ever"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(app_module, team):  # noqa: F811
    """The app's test client; app.py registers the privacy routes."""
    from chalice.test import Client

    assert "/admin/customers/{customer_key}/erase" in app_module.app.routes
    with Client(app_module.app) as test_client:
        yield test_client


def customer_post(platform_id, text, **extra):
    return mention(platform_id, text, author_id=AUTHOR, handle=HANDLE, **extra)


def a_customer(app_module, api, team):  # noqa: F811
    """A case with a sent reply and a follow-up, a post that needed no case; another customer's case."""
    triage(app_module, customer_post("102", "lol"))  # before the case: later it would join the case's history
    [opened] = open_case(app_module, customer_post("100", COMPLAINT))
    open_case(app_module, customer_post("101", "Still nothing about my bag!!", created_at="2026-11-23T03:10:00Z"))
    use_platforms(deps(), x=RecordingX())
    answer = api.http.post(f"/cases/{opened['case_id']}/replies", headers={**team["aiko"], **JSON},
                           body=json.dumps({"text": "Sorry, we are on it"}))
    assert answer.status_code == 202
    send(app_module)
    [other] = open_case(app_module, mention("200", "My flight was cancelled and nobody helps", author_id="555"))
    return opened["case_id"], other["case_id"]


def everything_stored():
    """Every item of every table, as text (a Scan: fine in a test, never on a request path)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = []
    for table in ("cases", "mentions", "settings"):
        for page in client.get_paginator("scan").paginate(TableName=f"socialcare-test-{table}"):
            items += page["Items"]
    return json.dumps(items, ensure_ascii=False)


def test_a_supervisor_exports_a_customers_data_and_agents_may_not(api, app_module, team):  # noqa: F811
    case_id, other_id = a_customer(app_module, api, team)
    path = f"/admin/customers/{CUSTOMER}/export"
    assert api.http.get(path).status_code == 401
    refused = api.http.get(path, headers=team["aiko"])
    assert refused.status_code == 403 and "supervisors" in refused.json_body["error"]

    answer = api.http.get(path, headers=team["boss"])
    assert answer.status_code == 200
    export = answer.json_body
    assert [c["case_id"] for c in export["cases"]] == [case_id]  # not the other customer's
    [case] = export["cases"]
    assert case["case"]["customer"]["handle"] == HANDLE and case["retained_until"] is None
    assert [m["text"] for m in case["mentions"]] == [COMPLAINT, "Still nothing about my bag!!"]
    assert [(r["text"], r["delivery_status"]) for r in case["replies"]] == [("Sorry, we are on it", "sent")]
    assert sorted(m["mention_id"] for m in export["mentions"]) == ["x:100", "x:101", "x:102"]
    lol = next(m for m in export["mentions"] if m["mention_id"] == "x:102")
    assert lol["mention"]["text"] == "lol" and lol["state"] == "no_case" and lol["retained_until"]
    assert export["next_cursor"] is None

    missing = api.http.get("/admin/customers/x:404/export", headers=team["boss"])
    assert missing.status_code == 404 and "nothing is held about this customer" in missing.json_body["error"]


def test_erasure_removes_the_customer_from_every_table_and_index_and_keeps_an_audit_record(api, app_module, team):  # noqa: F811
    case_id, other_id = a_customer(app_module, api, team)
    assert HANDLE in everything_stored() and "Haneda" in everything_stored()
    assert api.http.post(f"/admin/customers/{CUSTOMER}/erase", headers=team["aiko"]).status_code == 403

    answer = api.http.post(f"/admin/customers/{CUSTOMER}/erase", headers=team["boss"])
    assert answer.status_code == 200, answer.json_body
    erased = answer.json_body
    assert erased["status"] == "erased" and erased["counts"]["cases"] == 1
    assert erased["counts"]["mention_records"] == 3 and erased["counts"]["deliveries"] == 1
    assert erased["counts"]["open_cases_released"] == 1 and erased["items_deleted"] > 10

    stored = everything_stored()
    for personal in (AUTHOR, HANDLE, "Haneda", "Still nothing", "Sorry, we are on it", case_id, "x:100", "x:102"):
        assert personal not in stored, personal
    assert "My flight was cancelled" in stored  # the other customer keeps everything
    assert api.http.get(f"/cases/{case_id}", headers=team["boss"]).status_code == 404
    inbox = api.http.get("/cases?team=support", headers=team["boss"]).json_body
    assert [c["case_id"] for c in inbox["cases"]] == [other_id]  # gone from the inbox indexes too
    assert sum(deps().settings.get_agent(a).open_cases for a in ("aiko", "ken")) == 1

    [record] = deps().cases.erasures(erased["erasure_id"])
    assert record["requested_by"] == "boss" and record["counts"] == erased["counts"]
    assert len(record["identity_hashes"]) == 1 and len(record["identity_hashes"][0]) == 64

    again = api.http.post(f"/admin/customers/{CUSTOMER}/erase", headers=team["boss"])
    assert again.status_code == 404 and f"erased at {erased['finished_at']}" in again.json_body["error"]
    assert api.http.get(f"/admin/customers/{CUSTOMER}/export", headers=team["boss"]).status_code == 404
    # The customer writes again: handled like anyone new.
    [reopened] = open_case(app_module, customer_post("103", "My bag is still lost, terrible"))
    assert reopened["outcome"] == "opened"


def test_several_identities_of_one_person_are_exported_and_erased_together(api, app_module, team):  # noqa: F811
    a_customer(app_module, api, team)
    [on_facebook] = open_case(app_module, {**customer_post("fb_1", "Lost my bag, terrible"), "platform": "facebook",
                                           "kind": "comment", "source_id": "facebook:feed:1",
                                           "author": {"id": "77001", "name": "Mika S."}})
    export = api.http.get(f"/admin/customers/{CUSTOMER}/export?also=facebook:77001", headers=team["boss"]).json_body
    assert on_facebook["case_id"] in [c["case_id"] for c in export["cases"]] and len(export["cases"]) == 2
    answer = api.http.post(f"/admin/customers/{CUSTOMER}/erase", headers={**team["boss"], **JSON},
                           body=json.dumps({"also": ["facebook:77001"]}))
    assert answer.status_code == 200 and answer.json_body["counts"]["cases"] == 2
    assert "Mika S." not in everything_stored()


BAD_REQUESTS = [
    ("GET", "/admin/customers/tiktok:42/export", None),
    ("GET", "/admin/customers/9183746501/export", None),
    ("GET", f"/admin/customers/{CUSTOMER}/export?also=nope", None),
    ("GET", f"/admin/customers/{CUSTOMER}/export?cursor=not-a-cursor", None),
    ("POST", "/admin/customers/x:/erase", None),
    ("POST", f"/admin/customers/{CUSTOMER}/erase", '{"also": "x:1"}'),
    ("POST", f"/admin/customers/{CUSTOMER}/erase", '{"everything": true}'),
    ("POST", f"/admin/customers/{CUSTOMER}/erase", '{"also": ["x:1", '),
    ("POST", f"/admin/customers/{CUSTOMER}/erase", '{"also": ["\\ud800"]}'),
    ("POST", f"/admin/customers/{CUSTOMER}/erase", '{"also": ["x:1", "x:2", "x:3", "x:4", "x:5", "x:6", "x:7", "x:8", "x:9", "x:10"]}'),
]


def test_bad_requests_say_what_to_fix_and_erase_nothing(api, app_module, team):  # noqa: F811
    case_id, _other = a_customer(app_module, api, team)
    headers = {**team["boss"], **JSON}
    problems = []
    for method, path, body in BAD_REQUESTS:
        answer = (api.http.get(path, headers=headers) if method == "GET"
                  else api.http.post(path, headers=headers, body=body or ""))
        if answer.status_code != 400 or len(answer.json_body.get("error", "")) < 20:
            problems.append(f"{method} {path} {body}: {answer.status_code} {answer.body[:200]!r}")
    assert problems == []
    assert deps().cases.get(case_id) is not None and deps().mentions.get("x:102") is not None
