"""QA audits on fakes: sent replies enter their week's pool once, the weekly sample (stable, bigger for
low CSAT and new agents), reviews scored by the rubric's weights and counted in the KPI aggregates."""
from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, timedelta

import pytest

from chalicelib.domain import kpi
from chalicelib.domain import qa as qa_rules
from chalicelib.domain.agent import Agent
from chalicelib.domain.case import new_case
from chalicelib.domain.errors import BadRequest, Conflict, Forbidden, InvalidCursor, NotFound, Unavailable
from chalicelib.domain.reply import new_reply
from chalicelib.services import qa, reply
from tests.fakes import Clock, FakeQaStore, fake_deps, mention

WEEK = "2026-W48"                        # the clock's default week: Monday 2026-11-23
MONDAY = date(2026, 11, 23)
BOSS = Agent(agent_id="boss", teams=["leads"], role="supervisor")
AIKO = Agent(agent_id="aiko", teams=["support"])
# Only what a test is about is drawn: no base rate, no minimum.
NOTHING_BY_CHANCE = {"base_rate": 0.0, "min_per_agent": 0, "max_per_agent": 500}
_ids = itertools.count(1000)


@pytest.fixture
def clock():
    return Clock("2026-11-27T03:00:00.000000Z")   # Friday of WEEK


@pytest.fixture
def deps(clock):
    return fake_deps(clock, secrets={"qa_sample_seed": "s3cret"})


def open_case(deps, *, assignee="aiko", csat=None, text="@SoraAir my bag is lost, please help"):
    post = mention(str(next(_ids)), text, source_id="x:mentions:1500")
    deps.mentions.claim(post, now_epoch=int(deps.epoch()))
    case = new_case(post, {"priority": "normal", "category": "complaint"}, team="support", assignee=assignee,
                    now=deps.now())
    if csat is not None:
        case = replace(case, status="resolved", csat_status="answered", csat_score=csat)
    deps.cases.create(case)
    return case


def sent_reply(deps, case, *, agent="aiko", sent_at=None, text="Sorry, we are on it."):
    """A reply stored as sent and noted, as the sender leaves it (without calling the platform)."""
    at = sent_at or deps.now()
    answer = new_reply(case, {"text": text, "mode": "public", "idempotency_key": None}, agent_id=agent, now=at)
    answer = replace(answer, delivery_status="sent", sent_at=at, platform_post_id=str(next(_ids)))
    deps.cases.put_reply(answer)
    qa.note_sent(answer, at, deps)
    return answer


def sent_through_the_sender(deps, case, text="Sorry, we are on it."):
    queued = reply.request_reply(case, {"text": text}, agent_id="aiko", deps=deps)
    [message] = deps.outbound_queue.take()
    return queued, message


def full_queue(deps, week=WEEK, **params):
    """Every page of the queue, followed by cursor."""
    items, cursor = [], None
    while True:
        page = qa.queue(BOSS, {"week": week, **params, **({"cursor": cursor} if cursor else {})}, deps)
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def use_sampling(deps, **fields):
    qa.save_sampling(BOSS, fields, deps)


SCORES = {"tone": 4, "accuracy": 4, "personalisation": 4, "brand_voice": 4, "resolution": 4}


# ---- the pool: every agent reply that reached the platform, once ----------------------------

def test_a_sent_agent_reply_is_noted_once_in_the_week_it_was_sent(deps):
    case = open_case(deps)
    queued, message = sent_through_the_sender(deps, case)

    assert reply.deliver_reply(message, deps)["outcome"] == "sent"
    assert reply.deliver_reply(message, deps, receive_count=2)["outcome"] == "already_sent"

    page, more = deps.qa.sent_replies(WEEK, limit=10)
    assert more is None
    assert [(r.reply_id, r.agent_id, r.case_id, r.sent_at) for r in page] == [
        (queued["reply_id"], "aiko", case.case_id, deps.now())]


def test_the_week_is_the_brands_not_utcs(clock):
    # Sunday 20:00 UTC is already Monday in Tokyo: the reply belongs to the Tokyo week that starts then.
    clock.moment = clock.moment.replace(year=2026, month=11, day=29, hour=20)
    deps = fake_deps(clock)
    deps.config = replace(deps.config, brand_time_zone="Asia/Tokyo")
    case = open_case(deps)
    queued, message = sent_through_the_sender(deps, case)
    reply.deliver_reply(message, deps)
    assert list(deps.qa.sent) == ["2026-W49"]


def test_an_automatic_reply_is_not_put_up_for_review(deps):
    case = open_case(deps)
    automatic = replace(new_reply(case, {"text": "Thanks, an agent will answer soon.", "mode": "public",
                                         "idempotency_key": "away"}, agent_id="socialcare", now=deps.now()),
                        automatic=True)
    deps.cases.put_reply(automatic)
    assert reply.deliver_reply('{"case_id": "%s", "reply_id": "%s"}' % (case.case_id, automatic.reply_id),
                               deps)["outcome"] == "sent"
    assert deps.qa.sent == {}


def test_a_failing_qa_store_never_fails_the_send(deps):
    class Broken(FakeQaStore):
        def note_sent_reply(self, week, reply_for_review):
            raise RuntimeError("QA table unreachable")

    deps.qa = Broken()
    case = open_case(deps)
    queued, message = sent_through_the_sender(deps, case)

    assert reply.deliver_reply(message, deps)["outcome"] == "sent"
    assert deps.cases.get(case.case_id).response_count == 1   # the rest of the send went on
    assert len(deps.platforms.x().posted) == 1


# ---- the weekly sample ------------------------------------------------------------------------

def test_the_sample_is_the_same_however_often_and_however_paged(deps):
    for agent in ("aiko", "ken", "mika"):
        for _ in range(40):
            sent_reply(deps, open_case(deps, assignee=agent), agent=agent)
    use_sampling(deps, base_rate=0.2, min_per_agent=2, max_per_agent=25)

    whole = full_queue(deps, limit="50")
    paged = full_queue(deps, limit="3")
    again = full_queue(deps, limit="50")

    ids = [item["reply_id"] for item in whole]
    assert ids == [item["reply_id"] for item in paged] == [item["reply_id"] for item in again]
    assert len(ids) == len(set(ids))
    per_agent = {agent: sum(1 for item in whole if item["agent_id"] == agent) for agent in ("aiko", "ken", "mika")}
    assert all(2 <= n <= 25 for n in per_agent.values()), per_agent
    # About a fifth of 40; far from all of them.
    assert sum(per_agent.values()) < 60


def test_low_csat_cases_are_all_drawn_and_others_at_the_base_rate(deps):
    unhappy = [sent_reply(deps, open_case(deps, csat=1)).reply_id for _ in range(30)]
    happy = [sent_reply(deps, open_case(deps, csat=5)).reply_id for _ in range(30)]
    use_sampling(deps, base_rate=0.1, min_per_agent=0, max_per_agent=100)

    drawn = {item["reply_id"]: item for item in full_queue(deps)}

    assert set(unhappy) <= set(drawn)
    assert {drawn[r]["reason"] for r in unhappy} == {"low_csat"}
    assert {drawn[r]["csat_score"] for r in unhappy} == {1}
    assert len(set(happy) & set(drawn)) < 15


def test_new_agents_get_a_closer_look_than_agents_who_started_before(deps):
    def first_week(agent, weeks_ago):
        sent_reply(deps, open_case(deps, assignee=agent), agent=agent,
                   sent_at=f"{MONDAY - timedelta(weeks=weeks_ago)}T10:00:00.000000Z")

    first_week("veteran", 5)    # 35 days before the week: past new_agent_days (30)
    first_week("fourth_week", 4)  # 28 days: still new
    first_week("second_week", 1)
    for agent in ("veteran", "fourth_week", "second_week", "rookie"):
        for _ in range(5):
            sent_reply(deps, open_case(deps, assignee=agent), agent=agent)
    use_sampling(deps, **NOTHING_BY_CHANCE, new_agent_rate=1.0, new_agent_days=30)

    drawn = full_queue(deps)

    by_agent = {}
    for item in drawn:
        by_agent.setdefault(item["agent_id"], []).append(item["reason"])
    assert by_agent == {agent: ["new_agent"] * 5 for agent in ("fourth_week", "second_week", "rookie")}


def test_a_queue_entry_shows_what_the_reviewer_needs(deps):
    case = open_case(deps, csat=2, text="@SoraAir you lost my bag AGAIN")
    sent = sent_reply(deps, case, text="So sorry! DM us your tag number and we will trace it.")
    use_sampling(deps, base_rate=1.0)

    [entry] = full_queue(deps)

    assert entry["reply_id"] == sent.reply_id and entry["case_id"] == case.case_id and entry["agent_id"] == "aiko"
    assert entry["text"] == "So sorry! DM us your tag number and we will trace it."
    assert entry["customer_post"]["text"] == "@SoraAir you lost my bag AGAIN"
    assert entry["csat_score"] == 2 and entry["reason"] == "low_csat" and entry["review"] is None
    qa.review(BOSS, {"reply_id": sent.reply_id, "case_id": case.case_id, "scores": SCORES}, deps)
    [entry] = full_queue(deps)
    assert entry["review"]["reviewer"] == "boss" and entry["review"]["percent"] == 100.0


def test_replies_of_an_erased_case_leave_the_queue(deps):
    kept = sent_reply(deps, open_case(deps))
    erased_case = open_case(deps)
    sent_reply(deps, erased_case)
    deps.cases.erase_case(erased_case.case_id)
    use_sampling(deps, base_rate=1.0)

    assert [item["reply_id"] for item in full_queue(deps)] == [kept.reply_id]


def test_a_queue_page_never_outgrows_an_answer(deps, monkeypatch):
    for _ in range(6):
        sent_reply(deps, open_case(deps))
    use_sampling(deps, base_rate=1.0)
    monkeypatch.setattr(qa, "ANSWER_BUDGET_BYTES", 2500)   # about two entries

    page = qa.queue(BOSS, {"week": WEEK, "limit": "50"}, deps)

    assert 1 <= len(page["items"]) < 6 and page["next_cursor"]
    assert len(full_queue(deps, limit="50")) == 6


@pytest.mark.parametrize("params, words", [
    ({}, "week"), ({"week": "2026-48"}, "ISO week"), ({"week": WEEK, "limit": "0"}, "limit"),
    ({"week": WEEK, "cursor": "garbage"}, "cursor"),
])
def test_bad_queue_parameters_are_a_400_that_says_what_to_fix(deps, params, words):
    with pytest.raises(BadRequest) as refused:
        qa.queue(BOSS, params, deps)
    assert words in str(refused.value)


def test_a_cursor_of_another_week_is_refused(deps):
    for _ in range(3):
        sent_reply(deps, open_case(deps))
    use_sampling(deps, base_rate=1.0)
    cursor = qa.queue(BOSS, {"week": WEEK, "limit": "1"}, deps)["next_cursor"]
    with pytest.raises(InvalidCursor):
        qa.queue(BOSS, {"week": "2026-W47", "cursor": cursor}, deps)


# ---- reviews ------------------------------------------------------------------------------------

def test_a_review_is_scored_by_the_rubrics_weights_and_is_the_agents_qa_score_in_the_kpis(deps):
    qa.save_rubric(BOSS, {"criteria": [{"key": "tone", "label": "Tone", "weight": 1},
                                       {"key": "accuracy", "label": "Accuracy", "weight": 3},
                                       {"key": "resolution", "label": "Resolution", "weight": 1}]}, deps)
    case = open_case(deps)
    sent = sent_reply(deps, case)

    # tone 4/4 (weight 1), accuracy 2/4 (weight 3), resolution does not apply: (1 + 1.5) / 4 = 62.5 %
    saved = qa.review(BOSS, {"reply_id": sent.reply_id, "case_id": case.case_id, "comment": "Check the policy.",
                             "scores": {"tone": 4, "accuracy": 2, "resolution": None}}, deps)

    assert saved["percent"] == 62.5 and saved["reviewer"] == "boss" and saved["agent_id"] == "aiko"
    assert saved["week"] == WEEK and saved["comment"] == "Check the policy."
    day = deps.now()[:10]
    by_agent = kpi.report(deps.kpis.kpi_rows("agent", day, day), "agent", day, day, now=deps.now(),
                          brand_zone="UTC")["rows"]
    by_team = kpi.report(deps.kpis.kpi_rows("team", day, day), "team", day, day, now=deps.now(),
                         brand_zone="UTC")["rows"]
    assert [(r["key"], r["qa_score"], r["qa_reviews"]) for r in by_agent] == [("aiko", 62.5, 1)]
    assert [(r["key"], r["qa_score"], r["qa_reviews"]) for r in by_team] == [("support", 62.5, 1)]
    assert [r["reply_id"] for r in qa.reviews(BOSS, {"week": WEEK}, deps)["reviews"]] == [sent.reply_id]


def test_a_second_review_of_a_reply_is_a_409_and_counts_once(deps):
    case = open_case(deps)
    sent = sent_reply(deps, case)
    body = {"reply_id": sent.reply_id, "case_id": case.case_id, "scores": SCORES}
    qa.review(BOSS, body, deps)

    with pytest.raises(Conflict) as refused:
        qa.review(BOSS, {**body, "scores": {**SCORES, "tone": 0}}, deps)

    assert "reviewed already by boss" in str(refused.value)
    assert deps.qa.get_review(sent.reply_id)["scores"]["tone"] == 4
    day = deps.now()[:10]
    assert [r["qa_reviews"] for r in kpi.report(deps.kpis.kpi_rows("agent", day, day), "agent", day, day,
                                                now=deps.now(), brand_zone="UTC")["rows"]] == [1]


def test_a_review_whose_kpi_update_failed_is_counted_when_it_is_sent_again(deps):
    case = open_case(deps)
    sent = sent_reply(deps, case)
    body = {"reply_id": sent.reply_id, "case_id": case.case_id, "scores": SCORES}
    deps.kpis.fail = True
    with pytest.raises(Unavailable, match="send the same request again"):
        qa.review(BOSS, body, deps)
    deps.kpis.fail = False

    with pytest.raises(Conflict):
        qa.review(BOSS, body, deps)

    assert deps.kpis.applied == {f"qa:{qa.review_id(sent.reply_id)}"}


def test_only_a_sent_agent_reply_can_be_reviewed(deps):
    case = open_case(deps)
    queued, _ = sent_through_the_sender(deps, case)   # queued, never sent
    with pytest.raises(Conflict, match="only a sent reply"):
        qa.review(BOSS, {"reply_id": queued["reply_id"], "case_id": case.case_id, "scores": SCORES}, deps)
    with pytest.raises(NotFound):
        qa.review(BOSS, {"reply_id": "r_nope", "case_id": case.case_id, "scores": SCORES}, deps)
    assert deps.qa.reviews == {}


@pytest.mark.parametrize("change, words", [
    ({"scores": {**SCORES, "tone": 9}}, "scores.tone"),
    ({"scores": {"tone": 4}}, "missing"),
    ({"reply_id": None}, "reply_id"),
    ({"grade": "A"}, "unknown field 'grade'"),
])
def test_a_bad_review_is_a_400_that_says_what_to_fix(deps, change, words):
    case = open_case(deps)
    sent = sent_reply(deps, case)
    with pytest.raises(BadRequest) as refused:
        qa.review(BOSS, {"reply_id": sent.reply_id, "case_id": case.case_id, "scores": SCORES, **change}, deps)
    assert words in str(refused.value)
    assert deps.qa.reviews == {} and deps.kpis.applied == set()


# ---- settings and who may do what -----------------------------------------------------------

def test_the_rubric_and_sampling_start_at_the_defaults_and_are_saved_whole(deps):
    assert qa.rubric_view(BOSS, deps) == {"rubric": qa_rules.DEFAULT_RUBRIC.to_dict(), "default": True}
    assert qa.sampling_view(BOSS, deps)["sampling"] == qa_rules.SamplingPolicy().to_dict()

    _, created = qa.save_sampling(BOSS, {"base_rate": 0.5}, deps)
    saved, again = qa.save_sampling(BOSS, {"base_rate": 0.25}, deps)

    assert (created, again) == (True, False)
    assert saved["sampling"]["base_rate"] == 0.25 and deps.settings.get_qa_sampling().base_rate == 0.25
    with pytest.raises(BadRequest, match="min_per_agent"):
        qa.save_sampling(BOSS, {"min_per_agent": 9, "max_per_agent": 3}, deps)


def test_agents_are_refused_everywhere(deps):
    case = open_case(deps)
    sent = sent_reply(deps, case)
    calls = [
        lambda: qa.rubric_view(AIKO, deps), lambda: qa.save_rubric(AIKO, qa_rules.DEFAULT_RUBRIC.to_dict(), deps),
        lambda: qa.sampling_view(AIKO, deps), lambda: qa.save_sampling(AIKO, {}, deps),
        lambda: qa.queue(AIKO, {"week": WEEK}, deps), lambda: qa.reviews(AIKO, {"week": WEEK}, deps),
        lambda: qa.review(AIKO, {"reply_id": sent.reply_id, "case_id": case.case_id, "scores": SCORES}, deps),
    ]
    for call in calls:
        with pytest.raises(Forbidden, match="only supervisors"):
            call()
    assert deps.qa.reviews == {} and deps.settings.get_qa_sampling() is None
