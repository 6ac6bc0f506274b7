"""One customer, whole history (issue 12) through the real Chalice app on moto: profiles, supervisor-defined
fields, search, merge/unmerge across channels, follow-ups that land with their case, the reopen window,
and erasure of the profile with the customer.

Time is injected: ``deps().now`` is the clock every service reads.
"""
from __future__ import annotations

import pytest

from chalicelib.bootstrap import deps
from tests.api import call, frozen_clock
from tests.test_app import assign, mention, open_case, team, triage  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}
T0 = "2026-11-23T03:00:00.000000Z"


@pytest.fixture
def clock(app_module):
    return frozen_clock(T0)




def fb_comment(platform_id, text, *, created_at="2026-11-23T03:00:00Z"):
    return {"platform": "facebook", "kind": "comment", "platform_id": platform_id, "text": text,
            "created_at": created_at, "lang": "en", "source_id": "facebook:page:1", "conversation_id": "post_1",
            "author": {"id": "fb_7", "name": "Kana Tanaka"}}


def wa_message(platform_id, text, *, created_at="2026-11-23T03:10:00Z"):
    return {"platform": "whatsapp", "kind": "dm", "platform_id": platform_id, "text": text,
            "created_at": created_at, "lang": "en", "source_id": "whatsapp:1", "conversation_id": "819012345678",
            "author": {"id": "819012345678", "name": "Kana"}}


def detail(client, headers, case_id):
    answer = client.http.get(f"/cases/{case_id}", headers=headers)
    assert answer.status_code == 200, answer.body
    return answer.json_body


def profile(client, headers, customer_id, query=""):
    answer = client.http.get(f"/customers/{customer_id}{query}", headers=headers)
    assert answer.status_code == 200, answer.body
    return answer.json_body


def resolve(client, headers, case_id):
    answer = call(client, "PATCH", f"/cases/{case_id}", headers, {"status": "resolved"})
    assert answer.status_code == 200, answer.body


# ---- the profile ------------------------------------------------------------------------------------

def test_case_detail_names_the_customer_profile_which_gathers_their_cases_with_outcomes(client, app_module, team,  # noqa: F811
                                                                                         clock):
    first = open_case(app_module, mention("100", "My bag did not arrive in Osaka"))[0]
    resolve(client, team["aiko"], first["case_id"])
    clock["now"] = "2026-11-30T03:00:00.000000Z"  # past the reopen window: a new case
    second = open_case(app_module, mention("101", "Now my seat was double booked, terrible",
                                           created_at="2026-11-30T02:00:00Z"))[0]
    assert second["outcome"] == "opened" and second["case_id"] != first["case_id"]

    panel = detail(client, team["boss"], second["case_id"])["customer"]
    assert panel["customer_id"].startswith("cu_") and panel["handle"] == "kana_t"
    assert [c["case_id"] for c in panel["other_cases"]] == [first["case_id"]]
    assert panel["other_cases"][0]["status"] == "resolved" and panel["other_cases"][0]["resolved_at"]

    shown = profile(client, team["aiko"], panel["customer_id"])
    assert [i["customer_key"] for i in shown["identities"]] == ["x:42"] and shown["handles"] == ["kana_t"]
    assert {c["case_id"]: c["status"] for c in shown["cases"]} == {first["case_id"]: "resolved",
                                                                   second["case_id"]: "open"}
    # Paginated: one case a page, each once.
    page = profile(client, team["aiko"], panel["customer_id"], "?limit=1")
    rest = profile(client, team["aiko"], panel["customer_id"], f"?limit=1&cursor={page['next_cursor']}")
    assert {c["case_id"] for c in page["cases"] + rest["cases"]} == {first["case_id"], second["case_id"]}
    bad = client.http.get(f"/customers/{panel['customer_id']}?cursor=nonsense", headers=team["aiko"])
    assert bad.status_code == 400
    assert client.http.get("/customers/cu_0000000000000000", headers=team["aiko"]).status_code == 404
    assert client.http.get("/customers/not-an-id", headers=team["aiko"]).status_code == 404


def test_supervisors_define_fields_and_agents_edit_tags_notes_and_fields_within_them(client, app_module, team):  # noqa: F811
    case = open_case(app_module, mention("100", "My bag did not arrive in Osaka"))[0]
    customer_id = detail(client, team["aiko"], case["case_id"])["customer"]["customer_id"]
    fields = {"fields": [{"name": "membership_number", "label": "Membership number", "type": "string",
                          "max_length": 10},
                         {"name": "miles", "label": "Miles", "type": "number", "max_length": 1}]}
    assert call(client, "PUT", "/admin/customer-fields", team["aiko"], fields).status_code == 403
    assert call(client, "PUT", "/admin/customer-fields", team["boss"], fields).status_code == 200
    assert client.http.get("/admin/customer-fields", headers=team["aiko"]).json_body == fields
    bad_definition = {"fields": [{"name": "Membership Number", "label": "x"}]}
    assert call(client, "PUT", "/admin/customer-fields", team["boss"], bad_definition).status_code == 400

    edit = {"tags": ["tier-1", "VIP"], "notes": "Gold member since 2019.\nPrefers Japanese.",
            "fields": {"membership_number": "SA-1234", "miles": 120500}}
    changed = call(client, "PATCH", f"/customers/{customer_id}", team["aiko"], edit)
    assert changed.status_code == 200, changed.body
    shown = profile(client, team["ken"], customer_id)
    assert (shown["tags"], shown["notes"], shown["fields"]) == (edit["tags"], edit["notes"], edit["fields"])
    assert shown["updated_by"] == "aiko"
    assert detail(client, team["ken"], case["case_id"])["customer"]["tags"] == ["tier-1", "VIP"]

    for wrong, says in (({"fields": {"seat": "12A"}}, "not a defined customer field"),
                        ({"fields": {"membership_number": "SA-123456789"}}, "at most 10"),
                        ({"fields": {"miles": "lots"}}, "must be a number"),
                        ({"tags": "VIP"}, "must be a list"),
                        ({"notes": "x" * 4001}, "at most 4,000"),
                        ({"status": "vip"}, "body must be")):
        refused = call(client, "PATCH", f"/customers/{customer_id}", team["aiko"], wrong)
        assert refused.status_code == 400 and says in refused.json_body["error"], (wrong, refused.body)
    removed = call(client, "PATCH", f"/customers/{customer_id}", team["aiko"], {"fields": {"miles": None}})
    assert removed.json_body["fields"] == {"membership_number": "SA-1234"}


def test_customers_are_found_by_handle_or_platform_id_with_their_cases(client, app_module, team):  # noqa: F811
    case = open_case(app_module, mention("100", "My bag did not arrive in Osaka"))[0]
    by_handle = client.http.get("/customers?handle=@KANA_T", headers=team["aiko"])
    assert by_handle.status_code == 200
    [found] = by_handle.json_body["customers"]
    assert [c["case_id"] for c in found["cases"]] == [case["case_id"]]
    by_id = client.http.get("/customers?platform=x&platform_id=42", headers=team["aiko"]).json_body["customers"]
    assert [c["customer_id"] for c in by_id] == [found["customer_id"]]
    assert client.http.get("/customers?handle=nobody", headers=team["aiko"]).json_body == {"customers": []}
    assert client.http.get("/customers?platform=x&platform_id=999", headers=team["aiko"]).json_body == {"customers": []}
    assert client.http.get("/customers", headers=team["aiko"]).status_code == 400
    assert client.http.get("/customers?handle=kana_t&platform=myspace", headers=team["aiko"]).status_code == 400


# ---- linking channels ------------------------------------------------------------------------------------

def test_a_linked_whatsapp_identity_joins_the_facebook_case_and_unmerging_undoes_it(client, app_module, team, clock):  # noqa: F811
    fb_case = open_case(app_module, fb_comment("c_1", "My bag did not arrive in Osaka"))[0]
    assert fb_case["outcome"] == "opened"
    # The same person says hello on WhatsApp: no case (nothing written), but a look-up by platform id finds them.
    hello = triage(app_module, wa_message("wamid.1", "thanks!"))[0]
    assert hello["outcome"] == "no_case" and "case_id" not in hello
    fb_id = detail(client, team["aiko"], fb_case["case_id"])["customer"]["customer_id"]
    [wa] = client.http.get("/customers?platform=whatsapp&platform_id=819012345678",
                           headers=team["aiko"]).json_body["customers"]
    assert wa["customer_id"] != fb_id and wa["cases"] == []

    for wrong, status in (({"customer_id": fb_id}, 400), ({"customer_id": "cu_0000000000000000"}, 404),
                          ({"other": wa["customer_id"]}, 400)):
        assert call(client, "POST", f"/customers/{fb_id}/merge", team["aiko"], wrong).status_code == status
    merged = call(client, "POST", f"/customers/{fb_id}/merge", team["aiko"], {"customer_id": wa["customer_id"]})
    assert merged.status_code == 200, merged.body
    assert sorted(i["platform"] for i in merged.json_body["identities"]) == ["facebook", "whatsapp"]
    [entry] = merged.json_body["audit"]
    assert (entry["action"], entry["by"], entry["customer_keys"]) == ("merge", "aiko", ["whatsapp:819012345678"])
    assert profile(client, team["aiko"], wa["customer_id"])["merged_into"] == fb_id

    joined = open_case(app_module, wa_message("wamid.2", "Here is a photo of the damaged bag, any news?",
                                              created_at="2026-11-23T03:20:00Z"))[0]
    assert joined["outcome"] == "joined" and joined["case_id"] == fb_case["case_id"]
    shown = detail(client, team["aiko"], fb_case["case_id"])
    assert [m["platform"] for m in shown["mentions"]] == ["facebook", "whatsapp"]
    assert len(shown["customer"]["identities"]) == 2

    # A native identity cannot be unmerged; the linked one can, and then stands alone again.
    native = call(client, "POST", f"/customers/{fb_id}/unmerge", team["aiko"], {"customer_key": "facebook:fb_7"})
    assert native.status_code == 409
    undone = call(client, "POST", f"/customers/{fb_id}/unmerge", team["ken"],
                  {"platform": "whatsapp", "platform_id": "819012345678"})
    assert undone.status_code == 200, undone.body
    assert [i["platform"] for i in undone.json_body["identities"]] == ["facebook"]
    assert [a["action"] for a in undone.json_body["audit"]] == ["unmerge", "merge"]
    alone = open_case(app_module, wa_message("wamid.3", "The handle of my suitcase is broken too",
                                             created_at="2026-11-23T03:30:00Z"))[0]
    assert alone["outcome"] == "opened" and alone["case_id"] != fb_case["case_id"]


# ---- follow-ups ------------------------------------------------------------------------------------------

def test_thanks_after_resolution_lands_in_the_case_history_without_reopening_it(client, app_module, team, clock):  # noqa: F811
    case = open_case(app_module, mention("100", "My bag did not arrive in Osaka"))[0]
    resolve(client, team["aiko"], case["case_id"])
    clock["now"] = "2026-11-23T05:00:00.000000Z"
    thanks = triage(app_module, mention("101", "@SoraAir thanks!", created_at="2026-11-23T04:59:00Z"))[0]
    assert thanks["outcome"] == "no_case" and thanks["case_id"] == case["case_id"]
    assert assign(app_module) == []
    shown = detail(client, team["aiko"], case["case_id"])
    assert shown["case"]["status"] == "resolved" and shown["case"]["reopen_count"] == 0
    assert [m["platform_id"] for m in shown["mentions"]] == ["100", "101"]
    assert any(e.get("event") == "customer_follow_up" for e in shown["history"])
    # Long after the window a "thanks" is just a thanks.
    clock["now"] = "2026-12-01T05:00:00.000000Z"
    late = triage(app_module, mention("102", "@SoraAir thanks again!", created_at="2026-12-01T04:59:00Z"))[0]
    assert late["outcome"] == "no_case" and "case_id" not in late


def test_a_complaint_within_the_reopen_window_reopens_the_resolved_case_and_its_agent_gets_it_back(
        client, app_module, team, clock):  # noqa: F811
    case = open_case(app_module, mention("100", "My bag did not arrive in Osaka"))[0]
    agent = case["assignee"]
    resolve(client, team["aiko"], case["case_id"])
    assert deps().settings.get_agent(agent).open_cases == 0
    clock["now"] = "2026-11-24T03:00:00.000000Z"  # 24 hours later: within 72
    again = open_case(app_module, mention("101", "The bag you delivered is broken, terrible",
                                          created_at="2026-11-24T02:59:00Z"))[0]
    assert again["outcome"] == "joined" and again["case_id"] == case["case_id"]
    shown = detail(client, team["aiko"], case["case_id"])["case"]
    assert shown["status"] == "open" and shown["reopen_count"] == 1 and shown["reopened_at"] == clock["now"]
    assert shown["resolved_at"] is None and shown["assignee"] == agent
    assert deps().settings.get_agent(agent).open_cases == 1

    resolve(client, team["aiko"], case["case_id"])
    clock["now"] = "2026-11-28T03:00:00.000000Z"  # 96 hours after: a new case
    later = open_case(app_module, mention("102", "Another bag lost, terrible service",
                                          created_at="2026-11-28T02:59:00Z"))[0]
    assert later["outcome"] == "opened" and later["case_id"] != case["case_id"]


# ---- privacy -------------------------------------------------------------------------------------------

def test_erasing_a_customer_erases_their_profile_and_an_export_includes_it(client, app_module, team):  # noqa: F811
    case = open_case(app_module, mention("100", "My bag did not arrive in Osaka"))[0]
    customer_id = detail(client, team["aiko"], case["case_id"])["customer"]["customer_id"]
    call(client, "PATCH", f"/customers/{customer_id}", team["aiko"], {"tags": ["VIP"], "notes": "allergic to nuts"})
    exported = client.http.get("/admin/customers/x:42/export", headers=team["boss"])
    assert exported.status_code == 200, exported.body
    [held] = exported.json_body["customer_profiles"]
    assert held["customer_id"] == customer_id and held["notes"] == "allergic to nuts"

    erased = client.http.post("/admin/customers/x:42/erase", headers=team["boss"])
    assert erased.status_code == 200 and erased.json_body["status"] == "erased", erased.body
    assert erased.json_body["counts"]["customer_profile_items"] >= 3
    assert client.http.get(f"/customers/{customer_id}", headers=team["aiko"]).status_code == 404
    assert client.http.get("/customers?handle=kana_t", headers=team["aiko"]).json_body == {"customers": []}
