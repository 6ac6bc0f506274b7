"""One bad record never punishes its batch-mates (entrypoints/sqs.py, with Lambda's event shape)."""
from __future__ import annotations

import pytest

from chalicelib.domain.errors import PermanentFailure, RetryLater
from chalicelib.entrypoints.sqs import BatchRetry, process_sqs_batch
from local.lambda_events import sqs_event
from tests.fakes import FakeQueue


def event(*bodies, receive_count="1"):
    messages = [{"MessageId": f"m{i}", "ReceiptHandle": f"h{i}", "Body": body,
                 "Attributes": {"ApproximateReceiveCount": receive_count}} for i, body in enumerate(bodies)]
    return sqs_event(messages, "socialcare-test-mentions", "us-east-1")


def handler(seen):
    def handle(body, receive_count):
        seen.append((body, receive_count))
        if body == "bad":
            raise PermanentFailure("field 'followers' must be a whole number")
        if body == "later":
            raise RetryLater("X resets at 12:00", delay_seconds=600)
        if body == "flaky":
            raise ConnectionError("DynamoDB throttled")
        return {"outcome": "ok", "body": body}
    return handle


def run(*bodies, report=True, receive_count="1"):
    seen, dead, queue = [], FakeQueue("dlq"), FakeQueue("mentions")
    response = process_sqs_batch(event(*bodies, receive_count=receive_count), handler(seen), dead_letter=dead,
                                 queue=queue, origin="socialcare-test-mentions", metric="Done",
                                 report_item_failures=report)
    return response, seen, dead, queue


def test_only_failed_records_are_reported_and_good_ones_are_done_once():
    response, seen, dead, queue = run("good-1", "flaky", "bad", "later", "good-2")
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert [body for body, _ in seen] == ["good-1", "flaky", "bad", "later", "good-2"]
    assert [r.get("outcome") for r in response.results] == ["ok", "retry", "dead_lettered", "retry_later", "ok"]
    assert dead.dead == [{"body": "bad", "reason": "field 'followers' must be a whole number",
                          "origin": "socialcare-test-mentions"}]
    assert queue.delays == [("h3", 600)]  # comes back after the platform's reset, not at once


def test_the_lambda_answer_is_only_the_item_failures():
    import json

    response, *_ = run("good-1", "flaky")
    assert json.loads(json.dumps(response)) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_without_item_failure_reporting_a_failure_retries_the_whole_batch():
    with pytest.raises(BatchRetry, match="1 of 2"):
        run("good-1", "flaky", report=False)
    response, *_ = run("good-1", "bad", report=False)  # dead-lettering is not a failure
    assert response == {"batchItemFailures": []}


def test_every_record_failing_is_still_an_answer_not_a_crash():
    response, *_ = run("flaky", "flaky")
    assert len(response["batchItemFailures"]) == 2


def test_handlers_see_how_often_sqs_delivered_the_record():
    _response, seen, *_ = run("good-1", receive_count="4")
    assert seen == [("good-1", 4)]
