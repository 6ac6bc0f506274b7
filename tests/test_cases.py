import pytest

from chalicelib import cases
from chalicelib.mention import Author, Mention


def mention(**overrides):
    values = dict(platform="x", kind="mention", platform_id="100", text="lost my bag",
                  created_at="2026-11-23T03:00:00Z", author=Author(id="42", handle="kana"))
    values.update(overrides)
    return Mention(**values)


def test_same_mention_always_maps_to_the_same_case_id():
    assert cases.case_id_for("x:100") == cases.case_id_for("x:100")
    assert cases.case_id_for("x:100") != cases.case_id_for("facebook:100")


def test_new_case_carries_triage_customer_and_inbox_keys():
    case = cases.new_case(mention(), {"priority": "urgent", "category": "complaint", "tags": ["vip"]},
                          team="vip", assignee="mika", now="2026-11-23T03:00:01.000000Z")
    assert case["status"] == "open" and case["team"] == "vip" and case["assignee"] == "mika"
    assert case["customer"]["handle"] == "kana"
    assert case["inbox_pk"] == "vip#open"
    assert case["inbox_priority_sk"].startswith("0#")  # urgent sorts first
    assert case["customer_sk"].startswith("active#")
    assert case["reply_target"]["platform_id"] == "100"


def test_closed_case_cannot_be_reopened_but_resolved_can():
    cases.check_transition("resolved", "open")
    with pytest.raises(cases.InvalidTransition, match="closed case cannot become open"):
        cases.check_transition("closed", "open")
    with pytest.raises(cases.InvalidTransition, match="status must be one of"):
        cases.check_transition("open", "done")


def test_resolving_moves_the_case_out_of_the_active_inbox():
    case = cases.new_case(mention(), {"priority": "normal"}, team="support", assignee=None, now="t0")
    fields = cases.status_change_fields(case, "resolved", "t1")
    assert fields["inbox_pk"] == "support#resolved"
    assert fields["customer_sk"].startswith("done#")
    assert fields["resolved_at"] == "t1"
