"""The pipeline's services (triage, assign, send) on in-memory fakes: no AWS, milliseconds each."""
from __future__ import annotations

import json

import pytest

from chalicelib.adapters.platforms.x import XRateLimited, XRequestError
from chalicelib.domain.agent import Agent
from chalicelib.domain.errors import PermanentFailure, RetryLater
from chalicelib.services import assign, inbox, intake, reply
from tests.fakes import Clock, fake_deps, mention


@pytest.fixture
def deps():
    deps = fake_deps(Clock())
    deps.settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=2))
    deps.settings.put_agent(Agent(agent_id="ken", teams=["support"], capacity=2))
    deps.settings.put_agent(Agent(agent_id="boss", teams=["leads"], role="supervisor"))
    return deps


def run_pipeline(deps, *posts):
    """Triage each post, then assign whatever triage forwarded; returns the assign outcomes."""
    for post in posts:
        intake.triage_message(json.dumps(post.to_dict()), deps)
    return [assign.assign_message(body, deps) for body in deps.triaged_queue.take()]


def test_a_complaint_becomes_a_case_for_the_least_loaded_agent(deps):
    deps.settings.adjust_open_cases("aiko", +1, at="t0")
    [outcome] = run_pipeline(deps, mention("1", "@SoraAir my bag is lost and nobody answers, terrible"))
    assert outcome["outcome"] == "opened" and outcome["assignee"] == "ken"
    case = deps.cases.get(outcome["case_id"])
    assert case.team == "support" and case.sentiment == "negative"
    assert deps.settings.get_agent("ken").open_cases == 1
    assert deps.mentions.get("x:1").state == "routed"


def test_a_repeated_delivery_changes_nothing(deps):
    post = mention("2", "@SoraAir my flight was cancelled, what now?")
    run_pipeline(deps, post)
    again = intake.triage_message(json.dumps(post.to_dict()), deps)
    assert again["outcome"] == "duplicate"
    assert deps.triaged_queue.take() == []


def test_a_duplicate_of_a_mention_this_container_settled_costs_no_read_and_one_from_elsewhere_one(deps):
    # Issue 17: the container remembers what it saw through; another container (fresh caches) reads the record.
    reads = []
    get = deps.mentions.get
    deps.mentions.get = lambda mention_id, **kw: reads.append(mention_id) or get(mention_id, **kw)
    posts = [mention("6", "@SoraAir my flight was cancelled, what now?"), mention("7", "lol")]
    assert [intake.triage_message(json.dumps(p.to_dict()), deps)["outcome"] for p in posts] == ["triaged", "no_case"]
    assert reads == ["x:6", "x:7"]
    for post in posts:
        assert intake.triage_message(json.dumps(post.to_dict()), deps)["outcome"] == "duplicate"
    assert reads == ["x:6", "x:7"] and len(deps.triaged_queue.take()) == 1
    deps.caches.clear()  # a container that did not see them
    assert intake.triage_message(json.dumps(posts[0].to_dict()), deps)["outcome"] == "duplicate"
    assert reads == ["x:6", "x:7", "x:6"] and deps.triaged_queue.take() == []


def test_a_mention_whose_triage_stopped_midway_is_not_taken_for_a_duplicate_by_its_container(deps):
    post = mention("8", "@SoraAir my flight was cancelled, what now?")
    send = deps.triaged_queue.send

    def queue_down(_body):
        raise ConnectionError("SQS unreachable")

    deps.triaged_queue.send = queue_down
    with pytest.raises(ConnectionError):
        intake.triage_message(json.dumps(post.to_dict()), deps)
    deps.triaged_queue.send = send
    assert intake.triage_message(json.dumps(post.to_dict()), deps)["outcome"] == "triaged"  # SQS delivers it again
    assert len(deps.triaged_queue.take()) == 1 and deps.mentions.get("x:8").state == "triaged"


def test_chatter_needs_no_case(deps):
    outcome = intake.triage_message(json.dumps(mention("3", "lol").to_dict()), deps)
    assert outcome["outcome"] == "no_case"
    assert deps.triaged_queue.take() == [] and deps.mentions.get("x:3").state == "no_case"


def test_a_follow_up_joins_the_customers_active_case(deps):
    [first] = run_pipeline(deps, mention("4", "@SoraAir my bag is lost, please help"))
    [second] = run_pipeline(deps, mention("5", "@SoraAir still no answer about my bag!!", created_at="2026-11-23T03:10:00Z"))
    assert second["outcome"] == "joined" and second["case_id"] == first["case_id"]
    case = deps.cases.get(first["case_id"])
    assert case.mention_count == 2 and case.reply_target.platform_id == "5"


def test_bad_input_is_a_permanent_failure_with_its_reason(deps):
    with pytest.raises(PermanentFailure, match="not JSON"):
        intake.triage_message("{nope", deps)
    with pytest.raises(PermanentFailure, match="platform"):
        intake.triage_message(json.dumps({**mention("9").to_dict(), "platform": "myspace"}), deps)
    with pytest.raises(PermanentFailure, match="not a triaged mention"):
        assign.assign_message(json.dumps({"mention": {}}), deps)


def test_a_reply_is_sent_once_and_recorded(deps):
    [opened] = run_pipeline(deps, mention("6", "@SoraAir where is my refund?"))
    agent = deps.settings.get_agent("boss")
    case = inbox.load_case(agent, opened["case_id"], deps)
    queued = reply.request_reply(case, {"text": "Sorry, checking now."}, agent_id="boss", deps=deps)
    [message] = deps.outbound_queue.take()
    assert reply.deliver_reply(message, deps)["outcome"] == "sent"
    assert reply.deliver_reply(message, deps)["outcome"] == "already_sent"
    assert deps.platforms.x().posted == [("reply", "6", "Sorry, checking now.")]
    stored = deps.cases.get_reply(case.case_id, queued["reply_id"])
    assert stored.delivery_status == "sent" and stored.platform_post_id
    assert deps.cases.get(case.case_id).first_response_at


def test_a_platform_refusal_fails_the_reply_with_the_platforms_words(deps):
    [opened] = run_pipeline(deps, mention("7", "@SoraAir my seat was given away"))
    case = deps.cases.get(opened["case_id"])
    reply.request_reply(case, {"text": "We are sorry."}, agent_id="boss", deps=deps)
    deps.platforms.x().errors.append(XRequestError("You are not allowed to reply", status=403))
    [message] = deps.outbound_queue.take()
    outcome = reply.deliver_reply(message, deps)
    assert outcome["outcome"] == "failed" and "not allowed" in outcome["error"]


def test_a_rate_limited_send_is_retried_later_not_failed(deps):
    [opened] = run_pipeline(deps, mention("8", "@SoraAir my seat was given away"))
    case = deps.cases.get(opened["case_id"])
    queued = reply.request_reply(case, {"text": "We are sorry."}, agent_id="boss", deps=deps)
    deps.platforms.x().errors.append(XRateLimited("slow down", reset_at=2_000_000_000, status=429))
    [message] = deps.outbound_queue.take()
    with pytest.raises(RetryLater) as retry:
        reply.deliver_reply(message, deps)
    assert retry.value.delay_seconds > 0  # waits for X's reset time
    assert deps.cases.get_reply(case.case_id, queued["reply_id"]).delivery_status == "retrying"
    assert reply.deliver_reply(message, deps)["outcome"] == "sent"
    assert len(deps.platforms.x().posted) == 1
