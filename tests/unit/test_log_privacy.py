"""No customer's personal data in the logs: what the handlers log, read back as CloudWatch would get it.

The lines are captured from the Powertools logger's own handler (its stream swapped for a buffer), so
they are exactly what Lambda writes to stdout: JSON, after the formatter has had its say.
"""
from __future__ import annotations

import io
import json

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.entrypoints.sqs import process_sqs_batch
from chalicelib.observability import logger, start_invocation
from chalicelib.services import assign, intake
from tests.fakes import Clock, FakeQueue, fake_deps, mention

HANDLE = "mika_suzuki_88"
AUTHOR_ID = "9183746501"
TEXT = "@SoraAir my bag is lost at Haneda, terrible service. Call me on 090-1234-5678"


@pytest.fixture
def log_lines():
    """The JSON lines the logger writes from now on, at INFO (as every stage but local runs)."""
    handler = logger.registered_handler
    buffer = io.StringIO()
    previous_stream, previous_level = handler.setStream(buffer), logger.log_level
    logger.setLevel("INFO")
    start_invocation("test")
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    handler.setStream(previous_stream)
    logger.setLevel(previous_level)
    start_invocation("test")


def sqs_event(*bodies):
    return {"Records": [{"messageId": f"m-{i}", "receiptHandle": f"r-{i}", "body": body,
                         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1",
                         "md5OfBody": "", "receiptHandle_": ""}
                        for i, body in enumerate(bodies)]}


def assert_no_personal_data(lines):
    written = json.dumps(lines, ensure_ascii=False)
    for personal in (HANDLE, AUTHOR_ID, "Haneda", "090-1234-5678", "terrible", "bag is lost", '"why"', '"text"'):
        assert personal not in written, f"{personal!r} was logged: {written[:2000]}"


def test_a_batch_logs_one_summary_line_at_info_and_each_record_only_at_debug(log_lines):
    deps = fake_deps(Clock())
    posts = [mention(str(n), TEXT, author_id=AUTHOR_ID + str(n), handle=HANDLE) for n in (1, 2, 3)]
    process_sqs_batch(sqs_event(*(json.dumps(p.to_dict()) for p in posts)),
                      lambda body, _n: intake.triage_message(body, deps), dead_letter=FakeQueue(), queue=FakeQueue(),
                      origin="mentions", metric="MentionsTriaged", report_item_failures=True)
    lines = log_lines()
    assert [line["message"] for line in lines] == ["MentionsTriaged batch"]  # log bytes are billed
    [summary] = lines
    assert summary["records"] == 3 and summary["failed"] == 0 and summary["outcomes"] == {"triaged": 3}
    assert "message_id" not in summary and summary.get("correlation_id") is None  # not the last record's ids
    assert_no_personal_data(lines)


def test_the_triage_and_assign_handlers_log_ids_and_outcomes_but_no_personal_data(log_lines):
    logger.setLevel("DEBUG")  # each record's line is at DEBUG
    deps = fake_deps(Clock())
    deps.settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    post = mention("1", TEXT, author_id=AUTHOR_ID, handle=HANDLE)
    process_sqs_batch(sqs_event(json.dumps(post.to_dict())), lambda body, _n: intake.triage_message(body, deps),
                      dead_letter=FakeQueue(), queue=FakeQueue(), origin="mentions", metric="MentionsTriaged",
                      report_item_failures=True)
    process_sqs_batch(sqs_event(*deps.triaged_queue.take()), lambda body, _n: assign.assign_message(body, deps),
                      dead_letter=FakeQueue(), queue=FakeQueue(), origin="triaged", metric="CasesAssigned",
                      report_item_failures=True)
    lines = log_lines()
    triaged = next(line for line in lines if line["message"] == "MentionsTriaged done")
    assigned = next(line for line in lines if line["message"] == "CasesAssigned done")
    # What people need to follow a mention is all there...
    assert triaged["mention_id"] == "x:1" and triaged["outcome"] == "triaged"
    assert triaged["triage"]["category"] == "complaint" and triaged["triage"]["priority"]
    assert triaged["correlation_id"] == "x:1" and triaged["message_id"] == "m-0"
    assert assigned["case_id"].startswith("c_") and assigned["assignee"] == "aiko"
    # ...and nothing the customer wrote or is called (triage's "why" quotes the post).
    assert_no_personal_data(lines)


def test_a_dead_lettered_mention_is_logged_without_its_body(log_lines):
    body = json.dumps({**mention("2", TEXT, author_id=AUTHOR_ID, handle=HANDLE).to_dict(), "created_at": "yesterday"})
    dead = FakeQueue()
    process_sqs_batch(sqs_event(body), lambda b, _n: intake.triage_message(b, fake_deps(Clock())), dead_letter=dead,
                      queue=FakeQueue(), origin="mentions", metric="MentionsTriaged", report_item_failures=True)
    [line] = [line for line in log_lines() if line["message"] == "message dead-lettered"]
    assert "created_at" in line["reason"] and dead.dead[0]["body"] == body  # kept in the DLQ, not in the log
    assert_no_personal_data(log_lines())


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_personal_keys_and_secrets_are_dropped_at_any_depth_and_level(log_lines, level):
    logger.setLevel("DEBUG")
    getattr(logger, level)("something happened", extra={
        "mention_id": "x:1", "case_id": "c_1",
        "author": {"id": AUTHOR_ID, "handle": HANDLE}, "customer_key": f"x:{AUTHOR_ID}",
        "results": [{"source_id": "x:mentions:1", "text": TEXT, "profile": {"Name": "Mika Suzuki"}}],
        "triage": {"category": "complaint", "why": ["'terrible' -2.0"]},
        "x_bearer_token": "AAAA-secret", "Authorization": "Bearer eyJ", "meta_app_secret": "s3cret",
    })
    [line] = log_lines()
    assert line["mention_id"] == "x:1" and line["case_id"] == "c_1"
    assert line["results"] == [{"source_id": "x:mentions:1"}] and line["triage"] == {"category": "complaint"}
    written = json.dumps(line)
    assert_no_personal_data([line])
    for secret in ("AAAA-secret", "eyJ", "s3cret", "Mika Suzuki"):
        assert secret not in written


def test_the_logger_writes_through_the_privacy_formatter():
    from chalicelib.observability import PrivacyFormatter

    assert isinstance(logger.registered_formatter, PrivacyFormatter)
