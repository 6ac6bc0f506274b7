"""Case rules: pure, no storage."""
import pytest

from chalicelib.domain import case as cases
from tests.fakes import mention


def test_same_mention_always_maps_to_the_same_case_id():
    assert cases.case_id_for("x:100") == cases.case_id_for("x:100")
    assert cases.case_id_for("x:100") != cases.case_id_for("facebook:100")


def test_new_case_carries_triage_customer_and_reply_target():
    case = cases.new_case(mention(handle="kana"), {"priority": "urgent", "category": "complaint", "tags": ["vip"]},
                          team="vip", assignee="mika", now="2026-11-23T03:00:01.000000Z")
    assert case.status == "open" and case.team == "vip" and case.assignee == "mika"
    assert case.customer["handle"] == "kana"
    assert case.reply_target.platform_id == "100"
    assert case.sort_key("priority")[0] == 0  # urgent sorts first
    assert "version" not in case.public_view()


def test_closed_case_cannot_be_reopened_but_resolved_can():
    cases.check_transition("resolved", "open")
    with pytest.raises(cases.InvalidTransition, match="closed case cannot become open"):
        cases.check_transition("closed", "open")
    with pytest.raises(cases.InvalidTransition, match="status must be one of"):
        cases.check_transition("open", "done")


def test_resolving_records_when_and_reopening_clears_it():
    case = cases.new_case(mention(), {"priority": "normal"}, team="support", assignee=None, now="t0")
    resolved = cases.with_status(case, "resolved", "t1")
    assert resolved.resolved_at == "t1" and not resolved.active
    reopened = cases.with_status(resolved, "open", "t2")
    assert reopened.resolved_at is None and reopened.active


def test_a_follow_up_moves_the_reply_target_raises_priority_and_reopens_pending():
    case = cases.new_case(mention("1"), {"priority": "normal"}, team="support", assignee="aiko", now="t0")
    pending = cases.with_status(case, "pending", "t1")
    followed = cases.with_follow_up(pending, mention("2", text="still waiting!"), "high", "t2")
    assert followed.reply_target.platform_id == "2"
    assert followed.priority == "high" and followed.status == "open" and followed.mention_count == 2
    calmer = cases.with_follow_up(followed, mention("3"), "low", "t3")
    assert calmer.priority == "high"  # a calmer post never lowers it
