"""SQS's limits, kept by the queue adapter and its fake alike: a SendMessageBatch request holds at most
10 messages and 256 KiB; one message over the limit is refused by type, and nothing of it is sent.

moto accepts 1 MiB (SQS's newer ceiling); here it is held to the classic 256 KiB, so a request
the real service could refuse is refused on moto too.
"""
from __future__ import annotations

import json

import pytest

from chalicelib.adapters import queues
from chalicelib.adapters.queues import MAX_BATCH_ENTRIES, MAX_REQUEST_BYTES, SqsQueue
from chalicelib.domain.errors import MessageTooLarge, PermanentFailure
from tests.fakes import FakeQueue

KIB = 1024
QUEUE = "socialcare-test-mentions"


class RecordingSqs:
    """The real (moto) client, noting every SendMessageBatch request it carries."""

    def __init__(self, real):
        self.real = real
        self.requests = []

    def send_message_batch(self, **kwargs):
        self.requests.append(kwargs["Entries"])
        return self.real.send_message_batch(**kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def classic_sqs(aws, monkeypatch):
    """moto with SQS's 256 KiB limits, and a record of the batch requests the adapter made."""
    import boto3
    import moto.sqs.models

    monkeypatch.setattr(moto.sqs.models, "MAXIMUM_MESSAGE_LENGTH", MAX_REQUEST_BYTES)
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": str(MAX_REQUEST_BYTES)})
    recorder = RecordingSqs(queues.client("sqs"))
    real_client = queues.client
    monkeypatch.setattr(queues, "client", lambda service: recorder if service == "sqs" else real_client(service))
    return sqs, url, recorder


def received(sqs, url):
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(params=["sqs", "fake"])
def queue(request):
    """(queue, what a consumer now receives, the batch requests made or None)."""
    if request.param == "fake":
        fake = FakeQueue("mentions")
        return fake, lambda: [json.loads(body) for body in fake.take()], None
    sqs, url, recorder = request.getfixturevalue("classic_sqs")
    return SqsQueue(QUEUE), lambda: received(sqs, url), recorder.requests


def message(n, kib):
    return {"n": n, "text": "荷" * (kib * KIB // 3)}  # three bytes a character in UTF-8


def test_thirty_messages_of_60_kib_are_all_sent_in_requests_within_the_limits(queue):
    target, consume, requests = queue
    bodies = [message(n, 60) for n in range(30)]

    assert target.send_batch(iter(bodies)) == 30

    assert sorted(b["n"] for b in consume()) == list(range(30))
    if requests is not None:
        assert len(requests) >= 8  # four 60 KiB messages per request at most, not ten
        assert [e["MessageBody"] for r in requests for e in r] == [json.dumps(b, ensure_ascii=False) for b in bodies]
        for request in requests:
            assert len(request) <= MAX_BATCH_ENTRIES
            assert sum(len(e["MessageBody"].encode("utf-8")) for e in request) <= MAX_REQUEST_BYTES


def test_small_messages_still_go_ten_to_a_request(queue):
    target, consume, requests = queue
    assert target.send_batch({"n": n} for n in range(23)) == 23
    assert len(consume()) == 23
    if requests is not None:
        assert [len(r) for r in requests] == [10, 10, 3]


@pytest.mark.parametrize("queue", ["sqs", "fake"], indirect=True)
def test_a_300_kib_message_is_refused_by_type_and_nothing_of_the_batch_is_sent(queue):
    target, consume, requests = queue
    batch = [message(0, 10), message(1, 300), message(2, 10)]

    with pytest.raises(MessageTooLarge) as refused:
        target.send_batch(batch)

    assert isinstance(refused.value, PermanentFailure)  # a stage that cannot queue its output dead-letters its input
    assert "message 1" in str(refused.value) and str(MAX_REQUEST_BYTES // KIB) in str(refused.value)
    assert consume() == []
    if requests is not None:
        assert requests == []
    with pytest.raises(MessageTooLarge):
        target.send(message(3, 300))
    assert consume() == []


def test_a_message_just_under_the_limit_is_sent(queue):
    target, consume, _ = queue
    assert target.send_batch([message(0, 240)]) == 1
    assert [b["n"] for b in consume()] == [0]


def test_characters_sqs_refuses_are_escaped_and_come_back_the_same(classic_sqs):
    sqs, url, _ = classic_sqs
    odd = {"text": "non-characters \ufffe\uffff, and a lone \ud800 surrogate"}
    SqsQueue(QUEUE).send_batch([odd])
    assert received(sqs, url) == [odd]
