"""Measure (issue 13) in the stores: KPI aggregates applied once per token (however many items a token
touches), read by period and dimension, backlog totals; QA's weekly pool of sent replies and one review per
reply; a customer's survey awaiting an answer; the survey and QA settings. The same tests on the fakes and on
DynamoDB (moto, tables from infra/template.yaml); ``domain.kpi.apply_once`` is the reference."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml  # shipped with cfn-lint

from chalicelib.domain.csat import SurveySettings, validate_survey_settings
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.kpi import Delta, aggregate_rows, apply_once, histogram_counters
from chalicelib.domain.qa import DEFAULT_RUBRIC, ReplyForReview, validate_rubric, validate_sampling_policy

KEEP = 2 * 86_400
ROOT = Path(__file__).resolve().parent.parent.parent


def reference(*groups: List[Delta]) -> List[Dict[str, Any]]:
    aggregates: Dict[Any, Counter] = {}
    applied: set = set()
    for deltas in groups:
        apply_once(aggregates, applied, deltas)
    return aggregate_rows(aggregates)


def nonzero(rows):
    """Rows as a report reads them: counters that are 0 count as absent."""
    return [{k: v for k, v in row.items() if k in ("day", "dimension", "key") or v} for row in rows]


def rows_of(kpis, dimension, from_day="2026-01-01", to_day="2026-12-31"):
    return nonzero(kpis.kpi_rows(dimension, from_day, to_day))


def change(token, day="2026-11-23", team="support", agent="aiko", **counters):
    counters = counters or {"cases_opened": 1, "backlog": 1, "sentiment/negative": 1}
    keys = [("team", team), ("channel", "x"), ("category", "baggage"), ("agent", agent)]
    return [Delta(token=token, day=day, dimension=d, key=k, counters=dict(counters)) for d, k in keys]


# ---- KPI aggregates -----------------------------------------------------------------------------

def test_a_token_is_applied_once_and_a_second_delivery_changes_nothing(stores):
    kpis = stores["kpis"]
    opened = change("change:c_1:1")
    answered = change("change:c_1:2", **histogram_counters("first_response_seconds", 95),
                      **{"sla/first_response/met": 1})
    assert kpis.apply_deltas("change:c_1:1", opened, keep_marker_seconds=KEEP)
    assert kpis.apply_deltas("change:c_1:2", answered, keep_marker_seconds=KEEP)
    before = {d: rows_of(kpis, d) for d in ("team", "agent", "channel", "category")}
    assert not kpis.apply_deltas("change:c_1:1", opened, keep_marker_seconds=KEEP)  # the stream again
    assert not kpis.apply_deltas("change:c_1:2", answered, keep_marker_seconds=KEEP)
    assert {d: rows_of(kpis, d) for d in before} == before
    expected = nonzero(reference(opened, answered, opened))
    assert before["team"] == [r for r in expected if r["dimension"] == "team"]
    [team_row] = before["team"]
    assert team_row["cases_opened"] == 1 and team_row["first_response_seconds/n"] == 1
    assert team_row["first_response_seconds/sum"] == 95 and team_row["sla/first_response/met"] == 1


def test_a_token_without_deltas_is_marked_applied_too(stores):
    kpis = stores["kpis"]
    assert kpis.apply_deltas("change:c_9:3", [], keep_marker_seconds=KEEP)
    assert not kpis.apply_deltas("change:c_9:3", [], keep_marker_seconds=KEEP)


def test_deltas_of_another_token_are_refused(stores):
    with pytest.raises(ValueError, match="token"):
        stores["kpis"].apply_deltas("change:c_1:1", change("change:c_2:1"), keep_marker_seconds=KEEP)


def test_deltas_of_one_item_are_merged_and_movements_that_cancel_out_leave_no_counter(stores):
    kpis = stores["kpis"]
    token = "change:c_3:4"
    moved = [Delta(token, "2026-11-23", "team", "support", {"backlog": -1}),
             Delta(token, "2026-11-23", "team", "vip", {"backlog": 1}),
             Delta(token, "2026-11-23", "team", "vip", {"cases_reopened": 1}),
             Delta(token, "2026-11-24", "team", "vip", {"cases_resolved": 1})]
    assert kpis.apply_deltas(token, moved, keep_marker_seconds=KEEP)
    assert rows_of(kpis, "team") == nonzero(reference(moved))
    assert kpis.backlog_totals("team") == {"support": -1, "vip": 1}


def test_a_token_of_more_than_a_transaction_holds_is_applied_whole_and_once(stores):
    """Over 100 items (a transaction's limit): applied in parts, each behind its own marker, still once."""
    kpis = stores["kpis"]
    token = "change:c_big:7"
    deltas = [Delta(token, f"2026-11-{day:02d}", "agent", f"agent{n:03d}", {"cases_resolved": 1, "backlog": -1,
                                                                              "resolution_seconds/b40": 1})
              for day in (23, 24) for n in range(75)]  # 150 items and 75 backlog totals
    assert kpis.apply_deltas(token, deltas, keep_marker_seconds=KEEP)
    assert not kpis.apply_deltas(token, deltas, keep_marker_seconds=KEEP)
    assert not kpis.apply_deltas(token, deltas[:10], keep_marker_seconds=KEEP)  # recomputed smaller: still once
    assert rows_of(kpis, "agent") == nonzero(reference(deltas))
    totals = kpis.backlog_totals("agent")
    assert len(totals) == 75 and set(totals.values()) == {-2}


def test_rows_come_by_dimension_and_period_in_day_then_key_order(stores):
    kpis = stores["kpis"]
    groups = []
    for n, (day, team) in enumerate((("2026-10-31", "support"), ("2026-11-01", "vip"), ("2026-11-01", "support"),
                                     ("2026-11-15", "b2b"), ("2026-11-30", "support"), ("2026-12-01", "vip"))):
        deltas = change(f"change:c_{n}:1", day=day, team=team, agent=f"a{n}")
        groups.append(deltas)
        assert kpis.apply_deltas(f"change:c_{n}:1", deltas, keep_marker_seconds=KEEP)
    november = kpis.kpi_rows("team", "2026-11-01", "2026-11-30")
    assert [(r["day"], r["key"]) for r in november] == [("2026-11-01", "support"), ("2026-11-01", "vip"),
                                                        ("2026-11-15", "b2b"), ("2026-11-30", "support")]
    assert all(r["dimension"] == "team" and r["cases_opened"] == 1 for r in november)
    expected = [r for r in reference(*groups) if r["dimension"] == "team" and "2026-11-01" <= r["day"] <= "2026-11-30"]
    assert nonzero(november) == nonzero(expected)
    assert [r["key"] for r in kpis.kpi_rows("agent", "2026-11-15", "2026-11-15")] == ["a3"]
    assert kpis.kpi_rows("team", "2027-01-01", "2027-01-31") == []
    assert kpis.kpi_rows("nothing", "2026-01-01", "2026-12-31") == []


def test_backlog_totals_sum_every_movement_ever_per_key(stores):
    kpis = stores["kpis"]
    assert kpis.backlog_totals("team") == {}
    kpis.apply_deltas("change:c_1:1", change("change:c_1:1", day="2025-03-01"), keep_marker_seconds=KEEP)
    kpis.apply_deltas("change:c_2:1", change("change:c_2:1", team="vip"), keep_marker_seconds=KEEP)
    kpis.apply_deltas("change:c_3:1", change("change:c_3:1", day="2026-12-31"), keep_marker_seconds=KEEP)
    kpis.apply_deltas("change:c_3:1", change("change:c_3:1", day="2026-12-31"), keep_marker_seconds=KEEP)  # again
    assert kpis.backlog_totals("team") == {"support": 2, "vip": 1}
    # vip's case resolved: its total is 0, no active case, no entry.
    kpis.apply_deltas("change:c_2:2", change("change:c_2:2", team="vip", backlog=-1, cases_resolved=1),
                      keep_marker_seconds=KEEP)
    assert kpis.backlog_totals("team") == {"support": 2}
    assert kpis.backlog_totals("channel") == {"x": 2}
    # A token without backlog movement leaves the totals alone.
    kpis.apply_deltas("csat:answered:c_1", change("csat:answered:c_1", csat_responses=1, csat_score_sum=5),
                      keep_marker_seconds=KEEP)
    assert kpis.backlog_totals("team") == {"support": 2}


def test_a_large_token_interrupted_half_way_is_finished_by_its_redelivery_from_its_stored_plan(aws, monkeypatch):
    """DynamoDB only: the plan of a token applied in parts is stored first; a redelivery that computes other
    deltas (the SLA policy changed meanwhile) applies the stored plan, so no item counts twice or is lost."""
    from chalicelib.adapters import kpi_store
    from chalicelib.adapters.kpi_store import DynamoKpiStore

    kpis = DynamoKpiStore("socialcare-test-settings")
    token = "change:c_big:8"
    first = [Delta(token, "2026-11-23", "agent", f"agent{n:03d}", {"cases_resolved": 1}) for n in range(150)]
    real = DynamoKpiStore._transact
    calls = []

    def crash_on_second_part(self, items):
        calls.append(len(items))
        if len(calls) == 2:
            raise RuntimeError("the function timed out")
        return real(self, items)

    monkeypatch.setattr(DynamoKpiStore, "_transact", crash_on_second_part)
    with pytest.raises(RuntimeError):
        kpis.apply_deltas(token, first, keep_marker_seconds=KEEP)
    monkeypatch.setattr(DynamoKpiStore, "_transact", real)
    assert len(kpis.kpi_rows("agent", "2026-11-23", "2026-11-23")) == kpi_store.MAX_TRANSACTION_ITEMS - 1
    recomputed = [Delta(token, "2026-11-23", "agent", f"agent{n:03d}", {"cases_resolved": 1, "sla/resolution/met": 1})
                  for n in range(160)]
    assert kpis.apply_deltas(token, recomputed, keep_marker_seconds=KEEP)
    assert not kpis.apply_deltas(token, recomputed, keep_marker_seconds=KEEP)
    assert nonzero(kpis.kpi_rows("agent", "2026-11-23", "2026-11-23")) == nonzero(reference(first))


def test_markers_expire_with_the_table_ttl_after_keep_marker_seconds(aws):
    import boto3

    from chalicelib.adapters.kpi_store import DynamoKpiStore

    kpis = DynamoKpiStore("socialcare-test-settings", epoch=lambda: 1_000_000)
    kpis.apply_deltas("change:c_1:1", change("change:c_1:1"), keep_marker_seconds=86_400)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    # moto's CloudFormation does not turn TTL on; the template must.
    template = yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=yaml.BaseLoader)
    ttl = template["Resources"]["SettingsTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": "true"}
    marker = ddb.get_item(TableName="socialcare-test-settings",
                          Key={"pk": {"S": "KPIMARK#change:c_1:1"}, "sk": {"S": "MARK"}})["Item"]
    assert marker["expires_at"] == {"N": str(1_000_000 + 86_400)}


# ---- QA audits ------------------------------------------------------------------------------------

def reply(n, agent="aiko", sent_at="2026-11-23T10:00:00.000000Z", csat=None):
    return ReplyForReview(reply_id=f"r_{n:03d}", agent_id=agent, case_id=f"c_{n}", sent_at=sent_at, csat_score=csat)


def all_sent(qa, week, limit):
    found, after = [], None
    while True:
        page, after = qa.sent_replies(week, limit=limit, after=after)
        assert page, "a page is never empty"
        found += page
        if after is None:
            return found
        assert len(page) == limit, "a page with more to come is full"


def test_the_weeks_sent_replies_page_in_a_stable_order_and_a_repeat_is_one_reply(stores):
    qa = stores["qa"]
    replies = [reply(n, agent="aiko" if n % 2 else "ken", csat=2 if n == 3 else None) for n in (5, 1, 4, 3, 2)]
    for r in replies:
        qa.note_sent_reply("2026-W48", r)
    qa.note_sent_reply("2026-W48", replies[0])  # a redelivered send notes it again
    qa.note_sent_reply("2026-W49", reply(9))
    expected = sorted(replies, key=lambda r: r.reply_id)
    for limit in (1, 2, 5, 50):
        assert all_sent(qa, "2026-W48", limit) == expected
    assert qa.sent_replies("2026-W47", limit=10) == ([], None)
    page, after = qa.sent_replies("2026-W48", limit=2)
    with pytest.raises(InvalidCursor):
        qa.sent_replies("2026-W49", limit=2, after=after)  # another week's position
    with pytest.raises(InvalidCursor):
        qa.sent_replies("2026-W48", limit=2, after="bm90LWEtcG9zaXRpb24")


def test_a_reply_is_reviewed_once_and_found_by_id_and_by_week(stores):
    qa = stores["qa"]
    review = {"review_id": "qr_1", "reply_id": "r_001", "week": "2026-W48", "case_id": "c_1", "agent_id": "aiko",
              "reviewer": "boss", "percent": 87.5, "scores": {"tone": 4, "resolution": None}, "comment": "",
              "comments": {}, "reviewed_at": "2026-11-30T09:00:00.000000Z"}
    assert qa.get_review("r_001") is None
    assert qa.put_review(review)
    assert not qa.put_review({**review, "review_id": "qr_2", "reviewer": "ken", "percent": 10.0})
    assert qa.get_review("r_001") == review
    assert qa.put_review({**review, "review_id": "qr_3", "reply_id": "r_002", "percent": 80.0})
    assert qa.put_review({**review, "review_id": "qr_4", "reply_id": "r_003", "week": "2026-W49"})
    assert [r["review_id"] for r in qa.reviews_of_week("2026-W48")] == ["qr_1", "qr_3"]
    assert qa.reviews_of_week("2026-W48")[0] == review  # null scores and fractions come back as written
    assert [r["review_id"] for r in qa.reviews_of_week("2026-W49")] == ["qr_4"]
    assert qa.reviews_of_week("2026-W50") == []
    with pytest.raises(ValueError, match="week"):
        qa.put_review({"reply_id": "r_004", "percent": 50.0})


# ---- surveys awaiting an answer ---------------------------------------------------------------------

def test_a_customers_message_may_answer_the_survey_until_its_time_is_up(stores):
    cases = stores["cases"]
    assert cases.survey_awaiting("x:42", now="2026-11-23T10:00:00.000000Z") is None
    cases.await_survey_answer("x:42", "c_1", until="2026-11-25T10:00:00.000000Z")
    assert cases.survey_awaiting("x:42", now="2026-11-23T10:00:00.000000Z") == "c_1"
    assert cases.survey_awaiting("x:42", now="2026-11-25T09:59:59.999999Z") == "c_1"
    assert cases.survey_awaiting("x:42", now="2026-11-25T10:00:00.000000Z") is None  # time is up
    assert cases.survey_awaiting("x:7", now="2026-11-23T10:00:00.000000Z") is None  # someone else
    # A later survey (another case) replaces it; stopping the earlier one leaves the later one waiting.
    cases.await_survey_answer("x:42", "c_2", until="2026-11-26T10:00:00.000000Z")
    cases.stop_awaiting_survey("x:42", "c_1")
    assert cases.survey_awaiting("x:42", now="2026-11-24T10:00:00.000000Z") == "c_2"
    cases.stop_awaiting_survey("x:42", "c_2")
    cases.stop_awaiting_survey("x:42", "c_2")  # repeatable
    assert cases.survey_awaiting("x:42", now="2026-11-24T10:00:00.000000Z") is None


def test_erasing_a_customer_forgets_the_survey_awaiting_their_answer(stores):
    cases = stores["cases"]
    cases.await_survey_answer("x:42", "c_1", until="2026-11-25T10:00:00.000000Z")
    cases.forget_away_message("x:42")
    assert cases.survey_awaiting("x:42", now="2026-11-23T10:00:00.000000Z") is None
    cases.forget_away_message("x:42")  # repeatable


def test_the_survey_item_is_not_in_the_customers_ledger(stores):
    cases = stores["cases"]
    cases.note_customer_case("x:42", "c_1")
    cases.await_survey_answer("x:42", "c_1", until="2026-11-25T10:00:00.000000Z")
    page = cases.customer_ledger("x:42", limit=10)
    assert [(e.kind, e.id) for e in page.entries] == [("case", "c_1")] and not page.more


# ---- settings -------------------------------------------------------------------------------------

def test_survey_and_qa_settings_round_trip(stores):
    settings = stores["settings"]
    assert settings.get_survey_settings() is None
    assert settings.get_qa_rubric() is None
    assert settings.get_qa_sampling() is None
    survey = validate_survey_settings({"enabled": True, "delay_minutes": 30, "answer_window_hours": 48,
                                       "whatsapp_template": "csat_survey"})
    settings.put_survey_settings(survey, author="boss", at="2026-11-23T10:00:00.000000Z")
    assert settings.get_survey_settings() == survey
    settings.put_survey_settings(SurveySettings(enabled=False), author="boss", at="2026-11-23T11:00:00.000000Z")
    assert settings.get_survey_settings() == SurveySettings(enabled=False)
    settings.put_qa_rubric(DEFAULT_RUBRIC, author="boss", at="2026-11-23T10:00:00.000000Z")
    assert settings.get_qa_rubric() == DEFAULT_RUBRIC
    rubric = validate_rubric({"criteria": [{"key": "tone", "label": "Tone", "weight": 2.5, "points": 1},
                                           {"key": "accuracy", "label": "正確さ", "weight": 3, "description": ""}]})
    settings.put_qa_rubric(rubric, author="boss", at="2026-11-23T12:00:00.000000Z")
    assert settings.get_qa_rubric() == rubric
    sampling = validate_sampling_policy({"base_rate": 0.1, "low_csat_rate": 1, "min_per_agent": 0,
                                         "max_per_agent": 10})
    settings.put_qa_sampling(sampling, author="boss", at="2026-11-23T10:00:00.000000Z")
    assert settings.get_qa_sampling() == sampling
