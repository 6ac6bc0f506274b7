"""A reply reaches the customer exactly once: every unclear outcome, on fakes with an injected clock."""
from __future__ import annotations

import json

import pytest

from chalicelib.adapters.platforms.meta import MetaAmbiguous, MetaTransientError
from chalicelib.adapters.platforms.x import XAmbiguous, XRateLimited, XRequestError, XTransientError
from chalicelib.domain.case import new_case
from chalicelib.domain.errors import Conflict, NotFound, RetryLater, Unavailable
from chalicelib.services import reply
from tests.fakes import Clock, FakeQueue, fake_deps, mention


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deps(clock):
    return fake_deps(clock, outbound_queue=FakeQueue("outbound", visibility_seconds=180, max_receives=5))


def open_case(deps, platform="x", kind="mention", platform_id="100"):
    post = mention(platform_id, platform=platform, kind=kind,
                   source_id={"x": "x:mentions:1500", "facebook": "facebook:PAGE1",
                              "whatsapp": "whatsapp:PHONE1"}[platform])
    case = new_case(post, {"priority": "normal"}, team="support", assignee="aiko", now=deps.now())
    deps.cases.create(case)
    return case


def queue_reply(deps, case, text="Sorry, we are on it.", **extra):
    queued = reply.request_reply(case, {"text": text, **extra}, agent_id="aiko", deps=deps)
    [message] = deps.outbound_queue.take()
    return queued, message


def status(deps, case, queued):
    return deps.cases.get_reply(case.case_id, queued["reply_id"])


# ---- unclear outcomes are resolved by looking, never by posting again ---------------------

def test_a_lost_answer_after_posting_is_confirmed_on_the_platform_and_never_reposted(deps):
    case = open_case(deps)
    queued, message = queue_reply(deps, case)
    deps.platforms.x().lost_answers.append(XAmbiguous("timed out after sending"))

    outcome = reply.deliver_reply(message, deps)

    assert outcome["outcome"] == "sent" and outcome["platform_post_id"]
    assert status(deps, case, queued).delivery_status == "sent"
    assert reply.deliver_reply(message, deps, receive_count=2)["outcome"] == "already_sent"
    assert len(deps.platforms.x().posted) == 1


@pytest.mark.parametrize("unclear", [XAmbiguous("X answered 503 to a write"),
                                     XAmbiguous("X answered without data.id")])
def test_an_unclear_answer_without_the_post_on_x_becomes_unknown(deps, unclear):
    case = open_case(deps)
    queued, message = queue_reply(deps, case)
    deps.platforms.x().errors.append(unclear)  # raised before anything is recorded as posted

    outcome = reply.deliver_reply(message, deps)

    stored = status(deps, case, queued)
    assert outcome["outcome"] == "unknown" and stored.delivery_status == "unknown"
    assert "check the conversation on x" in stored.error and "retry" in stored.error
    assert reply.deliver_reply(message, deps, receive_count=2)["outcome"] == "already_unknown"
    assert deps.platforms.x().posted == []


def test_meta_replies_whose_outcome_is_unclear_are_unknown_never_reposted(deps):
    case = open_case(deps, platform="facebook", kind="comment")
    queued, message = queue_reply(deps, case)
    deps.platforms.graph().errors.append(MetaAmbiguous("no answer from Graph after sending"))
    assert reply.deliver_reply(message, deps)["outcome"] == "unknown"
    assert reply.deliver_reply(message, deps, receive_count=2)["outcome"] == "already_unknown"
    assert deps.platforms.graph().posted == []


def test_a_sender_that_died_mid_send_is_recovered_by_the_next_delivery(deps, clock):
    case = open_case(deps)
    queued, message = queue_reply(deps, case)
    # A sender claimed it and posted, then its Lambda died before recording the id.
    deps.cases.update_reply(case.case_id, queued["reply_id"], {"delivery_status": "sending",
                                                              "sending_since": deps.now(), "attempts": 1},
                            expect_status=("queued",))
    deps.platforms.x().posted.append(("reply", "100", "Sorry, we are on it."))

    with pytest.raises(RetryLater) as early:  # too soon: the claim may belong to a live sender
        reply.deliver_reply(message, deps, receive_count=2)
    policy = deps.outbound_queue.delivery_policy()
    assert 0 < early.value.delay_seconds <= policy.visibility_seconds
    clock.advance(seconds=policy.visibility_seconds)  # SQS shows the message again after its visibility timeout

    assert reply.deliver_reply(message, deps, receive_count=2)["outcome"] == "sent"
    assert len(deps.platforms.x().posted) == 1


@pytest.mark.parametrize("visibility", [30, 180, 900])
def test_the_stale_window_is_derived_from_the_queue_and_shorter_than_its_visibility(clock, visibility):
    deps = fake_deps(clock, outbound_queue=FakeQueue("outbound", visibility_seconds=visibility))
    case = open_case(deps)
    queued, message = queue_reply(deps, case)
    deps.cases.update_reply(case.case_id, queued["reply_id"], {"delivery_status": "sending",
                                                              "sending_since": deps.now()},
                            expect_status=("queued",))
    clock.advance(seconds=visibility - 1)  # a redelivery can come no sooner than the visibility timeout
    assert reply.deliver_reply(message, deps, receive_count=2)["outcome"] == "unknown"


# ---- passing failures retry, then end failed with the reason -----------------------------

def test_rate_limits_wait_for_the_reset_and_the_last_delivery_ends_failed(deps, clock):
    case = open_case(deps)
    queued, message = queue_reply(deps, case)
    reset_at = int(clock.epoch()) + 900
    for attempt in range(1, 5):
        deps.platforms.x().errors.append(XRateLimited("Too Many Requests", reset_at=reset_at, status=429))
        with pytest.raises(RetryLater) as later:
            reply.deliver_reply(message, deps, receive_count=attempt)
        assert later.value.delay_seconds == 900
        assert status(deps, case, queued).delivery_status == "retrying"
    deps.platforms.x().errors.append(XTransientError("X is down"))

    outcome = reply.deliver_reply(message, deps, receive_count=5)

    stored = status(deps, case, queued)
    assert outcome["outcome"] == "failed" and stored.delivery_status == "failed"
    assert "gave up after 5 attempts" in stored.error and "X is down" in stored.error


def test_a_passing_aws_fault_before_the_platform_call_leaves_the_reply_queued(deps):
    case = open_case(deps)
    queued, message = queue_reply(deps, case)

    class ThrottledSecrets:
        def x(self):
            raise ConnectionError("Secrets Manager: ThrottlingException")

        def graph(self):
            raise ConnectionError("Secrets Manager: ThrottlingException")

    real = deps.platforms
    deps.platforms = ThrottledSecrets()
    with pytest.raises(ConnectionError):
        reply.deliver_reply(message, deps)
    assert status(deps, case, queued).delivery_status == "queued"  # not failed, not stuck in sending
    deps.platforms = real
    assert reply.deliver_reply(message, deps, receive_count=2)["outcome"] == "sent"


def test_a_refusal_fails_at_once_with_the_platforms_words(deps):
    case = open_case(deps)
    queued, message = queue_reply(deps, case)
    deps.platforms.x().errors.append(XRequestError("You are not allowed to reply to this post", status=403))
    assert reply.deliver_reply(message, deps)["outcome"] == "failed"
    assert "not allowed" in status(deps, case, queued).error


def test_a_graph_transient_failure_before_writing_is_retried(deps):
    case = open_case(deps, platform="whatsapp", kind="dm")
    queued, message = queue_reply(deps, case)
    deps.platforms.graph().errors.append(MetaTransientError("Graph unreachable"))
    with pytest.raises(RetryLater):
        reply.deliver_reply(message, deps)
    assert reply.deliver_reply(message, deps, receive_count=2)["outcome"] == "sent"
    assert len(deps.platforms.graph().posted) == 1


# ---- the API side: stored and queued, or told so --------------------------------------------

def test_a_reply_that_cannot_be_queued_is_a_503_and_the_same_key_queues_it_later(deps):
    case = open_case(deps)
    deps.outbound_queue.fail_next_sends = 1
    with pytest.raises(Unavailable, match="saved but could not be queued"):
        reply.request_reply(case, {"text": "On it", "idempotency_key": "k-1"}, agent_id="aiko", deps=deps)
    again = reply.request_reply(case, {"text": "On it", "idempotency_key": "k-1"}, agent_id="aiko", deps=deps)
    assert again["delivery_status"] == "queued"
    assert [json.loads(b)["reply_id"] for b in deps.outbound_queue.take()] == [again["reply_id"]]


def test_the_same_key_with_other_text_is_a_conflict(deps):
    case = open_case(deps)
    reply.request_reply(case, {"text": "On it", "idempotency_key": "k-2"}, agent_id="aiko", deps=deps)
    with pytest.raises(Conflict, match="different reply"):
        reply.request_reply(case, {"text": "Something else", "idempotency_key": "k-2"}, agent_id="aiko", deps=deps)


def test_responses_carry_no_storage_keys(deps):
    case = open_case(deps)
    queued = reply.request_reply(case, {"text": "On it"}, agent_id="aiko", deps=deps)
    assert not {"pk", "sk", "type"} & set(queued)


def test_an_agent_retries_an_unknown_reply_after_checking(deps):
    case = open_case(deps)
    queued, message = queue_reply(deps, case)
    deps.platforms.x().errors.append(XAmbiguous("X answered 502 to a write"))
    reply.deliver_reply(message, deps)

    retried = reply.retry_reply(case, queued["reply_id"], agent_id="aiko", deps=deps)

    assert retried["delivery_status"] == "queued"
    [again] = deps.outbound_queue.take()
    assert reply.deliver_reply(again, deps)["outcome"] == "sent"
    with pytest.raises(Conflict, match="is sent"):
        reply.retry_reply(case, queued["reply_id"], agent_id="aiko", deps=deps)
    with pytest.raises(NotFound):
        reply.retry_reply(case, "r_missing", agent_id="aiko", deps=deps)
