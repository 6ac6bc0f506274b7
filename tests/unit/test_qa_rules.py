"""QA rules: the rubric as data, a review's weighted score, and a weekly sample that is the same every time."""
import random
from datetime import date

import pytest

from chalicelib.domain import qa
from chalicelib.domain.errors import BadRequest

RUBRIC = qa.validate_rubric({"criteria": [
    {"key": "tone", "label": "Tone", "weight": 1},
    {"key": "accuracy", "label": "Accuracy", "weight": 3, "points": 4},
    {"key": "resolution", "label": "Resolution", "weight": 2, "points": 1, "description": "Solved, or next step"},
]})
WEEK = "2026-W49"


# ---- rubric and reviews ---------------------------------------------------------------

def test_the_rubric_round_trips_and_the_default_has_the_usual_criteria():
    assert qa.validate_rubric(RUBRIC.to_dict()) == RUBRIC
    assert qa.DEFAULT_RUBRIC.keys == ("tone", "accuracy", "personalisation", "brand_voice", "resolution")
    assert RUBRIC.criteria[0].points == qa.DEFAULT_POINTS


@pytest.mark.parametrize("scores,percent", [
    ({"tone": 4, "accuracy": 4, "resolution": 1}, 100.0),
    ({"tone": 0, "accuracy": 0, "resolution": 0}, 0.0),
    ({"tone": 2, "accuracy": 3, "resolution": 1}, round(100 * (1 * 0.5 + 3 * 0.75 + 2 * 1) / 6, 1)),   # 79.2
    ({"tone": 4, "accuracy": 2, "resolution": None}, round(100 * (1 * 1 + 3 * 0.5) / 4, 1)),          # n/a left out
])
def test_a_review_is_the_weighted_share_of_the_points_of_the_criteria_that_apply(scores, percent):
    review = qa.score_review(RUBRIC, {"scores": scores, "comment": "Warm, but the refund date was wrong.",
                                      "comments": {"accuracy": "Refunds take 7 days, not 3."}})
    assert review.percent == percent and review.scores == scores
    assert review.comments == {"accuracy": "Refunds take 7 days, not 3."}


@pytest.mark.parametrize("body,message", [
    ([], "JSON object"),
    ({"scores": {"tone": 4, "accuracy": 4, "resolution": 1}, "score": 3}, "unknown field 'score'"),
    ({}, "'scores' is required.*tone, accuracy, resolution"),
    ({"scores": {"tone": 4, "accuracy": 4}}, "'resolution' is missing; score every criterion"),
    ({"scores": {"tone": 4, "acuracy": 4, "accuracy": 4, "resolution": 1}}, "did you mean 'accuracy'"),
    ({"scores": {"tone": 5, "accuracy": 4, "resolution": 1}}, r"scores.tone must be a whole number from 0 to 4"),
    ({"scores": {"tone": 4, "accuracy": 4, "resolution": 2}}, r"scores.resolution .* from 0 to 1"),
    ({"scores": {"tone": 3.5, "accuracy": 4, "resolution": 1}}, "scores.tone"),
    ({"scores": {"tone": True, "accuracy": 4, "resolution": 1}}, "scores.tone"),
    ({"scores": {"tone": None, "accuracy": None, "resolution": None}}, "at least one criterion"),
    ({"scores": {"tone": 4, "accuracy": 4, "resolution": 1}, "comment": "x" * 2001}, "'comment' is 2,001 characters"),
    ({"scores": {"tone": 4, "accuracy": 4, "resolution": 1}, "comments": {"speed": "slow"}}, "unknown criterion"),
])
def test_a_bad_review_says_what_to_fix(body, message):
    with pytest.raises(BadRequest, match=message):
        qa.score_review(RUBRIC, body)


@pytest.mark.parametrize("body,message", [
    ({"criteria": []}, "1 to 20 criteria"),
    ({"criteria": [{"key": "tone", "label": "Tone", "weight": 1}] * 2}, "'tone' is used twice"),
    ({"criteria": [{"key": "Tone", "label": "Tone", "weight": 1}]}, "lowercase letters"),
    ({"criteria": [{"key": "tone", "label": "", "weight": 1}]}, "label must not be empty"),
    ({"criteria": [{"key": "tone", "label": "Tone", "weight": 0}]}, "weight must be a number above 0"),
    ({"criteria": [{"key": "tone", "label": "Tone", "weight": "2"}]}, "weight"),
    ({"criteria": [{"key": "tone", "label": "Tone", "weight": 1, "points": 11}]}, "points must be a whole number"),
    ({"criteria": [{"key": "tone", "label": "Tone", "weight": 1, "colour": "red"}]}, "unknown field 'colour'"),
    ({"criteria": [{"key": "tone", "label": "Tone\x00", "weight": 1}]}, "label contains the character U\\+0000"),
    ({"rubric": []}, "one field, 'criteria'"),
])
def test_a_bad_rubric_says_what_to_fix(body, message):
    with pytest.raises(BadRequest, match=message):
        qa.validate_rubric(body)


# ---- the weekly sample -------------------------------------------------------------------

def replies(count, agent="a1", csat=None, start=0):
    return [qa.ReplyForReview(reply_id=f"r{agent}{n}", agent_id=agent, case_id=f"c{n}", sent_at="2026-12-01T00:00:00Z",
                              csat_score=csat) for n in range(start, start + count)]


POLICY = qa.SamplingPolicy(min_per_agent=0, max_per_agent=10_000)  # no floor or cap: the rates alone


def test_the_sample_is_the_same_every_time_and_whatever_the_order():
    pool = replies(300, "a1") + replies(300, "a2")
    first = qa.sample_week(pool, week=WEEK, policy=qa.SamplingPolicy(), agents_since={})
    shuffled = list(pool)
    random.Random(3).shuffle(shuffled)
    assert qa.sample_week(shuffled, week=WEEK, policy=qa.SamplingPolicy(), agents_since={}) == first
    other_week = qa.sample_week(pool, week="2026-W50", policy=qa.SamplingPolicy(), agents_since={})
    assert {s.reply_id for s in other_week} != {s.reply_id for s in first}
    assert qa.sample_week(pool, week=WEEK, policy=qa.SamplingPolicy(), agents_since={}, seed="brand-secret") != first


def test_each_reply_is_drawn_at_its_rate_more_for_new_agents_and_low_csat():
    pool = replies(4000, "veteran") + replies(4000, "newcomer") + replies(400, "veteran", csat=1, start=5000)
    pool += replies(400, "veteran", csat=4, start=6000)
    sample = qa.sample_week(pool, week=WEEK, policy=POLICY,
                            agents_since={"newcomer": date(2026, 11, 20), "veteran": date(2024, 1, 1)})
    reasons = {(s.agent_id, s.reason) for s in sample}
    counted = {key: sum(1 for s in sample if (s.agent_id, s.reason) == key) for key in reasons}
    assert 150 <= counted[("veteran", "rate")] <= 290            # 5 % of 4,400 (the good-CSAT ones included)
    assert 850 <= counted[("newcomer", "new_agent")] <= 1150     # 25 % of 4,000
    assert counted[("veteran", "low_csat")] == 400               # every reply the customer rated 1 or 2
    assert ("newcomer", "rate") not in reasons
    assert all(s.draw < {"rate": 0.05, "new_agent": 0.25, "low_csat": 1.0}[s.reason] for s in sample)


def test_an_agent_is_new_for_the_first_days_only():
    pool = replies(2000, "a1")
    since_29_days = qa.sample_week(pool, week=WEEK, policy=POLICY, agents_since={"a1": date(2026, 11, 1)})
    since_31_days = qa.sample_week(pool, week=WEEK, policy=POLICY, agents_since={"a1": date(2026, 10, 30)})
    assert {s.reason for s in since_29_days} == {"new_agent"} and {s.reason for s in since_31_days} == {"rate"}


def test_a_reply_drawn_stays_drawn_when_more_replies_arrive():
    early = qa.sample_week(replies(500), week=WEEK, policy=POLICY, agents_since={})
    later = qa.sample_week(replies(900), week=WEEK, policy=POLICY, agents_since={})
    assert {s.reply_id for s in early} <= {s.reply_id for s in later}


def test_every_agent_gets_a_minimum_and_no_more_than_the_maximum_low_csat_first():
    policy = qa.SamplingPolicy(base_rate=0.0, min_per_agent=2, max_per_agent=3)
    quiet = qa.sample_week(replies(5, "quiet"), week=WEEK, policy=policy, agents_since={})
    assert [s.reason for s in quiet] == ["minimum", "minimum"]
    assert qa.sample_week(replies(1, "rare"), week=WEEK, policy=policy, agents_since={})[0].reason == "minimum"
    busy = replies(10, "busy", csat=1) + replies(10, "busy", csat=5, start=100)
    drawn = qa.sample_week(busy, week=WEEK, policy=qa.SamplingPolicy(base_rate=1.0, max_per_agent=3),
                           agents_since={})
    assert len(drawn) == 3 and {s.reason for s in drawn} == {"low_csat"}


def test_weeks_are_iso_weeks():
    assert qa.week_of(date(2026, 12, 3)) == WEEK and qa.week_start(WEEK) == date(2026, 11, 30)
    assert qa.week_of(date(2027, 1, 1)) == "2026-W53"
    for bad in ("2026-49", "2026-W54", "W49", None):
        with pytest.raises(BadRequest, match="ISO week"):
            qa.week_start(bad)


def test_sampling_settings_are_checked():
    assert qa.validate_sampling_policy({}) == qa.SamplingPolicy()
    assert qa.validate_sampling_policy(qa.SamplingPolicy().to_dict()) == qa.SamplingPolicy()
    for body, message in (({"base_rate": 5}, "share from 0 to 1"), ({"rate": 0.1}, "unknown field 'rate'"),
                          ({"min_per_agent": 30, "max_per_agent": 10}, "above max_per_agent"),
                          ({"new_agent_days": -1}, "new_agent_days")):
        with pytest.raises(BadRequest, match=message):
            qa.validate_sampling_policy(body)
