"""SQS adapter: batched sends within SQS's limits, and dead-lettering with the reason attached.

SQS limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html):
a message is at most 256 KiB, body and attributes together; a SendMessageBatch
request holds at most 10 messages and 256 KiB in all; a body may only hold the
characters #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
"""
from __future__ import annotations

import functools
import json
import re
from typing import Any, Dict, Iterable, List

from chalicelib.adapters.aws import client
from chalicelib.domain.errors import MessageTooLarge
from chalicelib.ports import DeliveryPolicy

MAX_REQUEST_BYTES = 256 * 1024     # one message, and one SendMessageBatch request
MAX_BATCH_ENTRIES = 10
# A message that later fails is dead-lettered with its reason (up to 1,000
# characters) and origin as attributes, which count towards the same 256 KiB:
# keep room for them, or the message could never be parked with its reason.
ATTRIBUTE_ALLOWANCE = 8 * 1024
MAX_BODY_BYTES = MAX_REQUEST_BYTES - ATTRIBUTE_ALLOWANCE
# What JSON leaves raw but SQS refuses: lone surrogates and the two non-characters.
_NOT_FOR_SQS = re.compile("[\ud800-\udfff\ufffe\uffff]")


@functools.lru_cache(maxsize=None)
def queue_url(name: str) -> str:
    return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


class QueueSendError(Exception):
    pass


def encode_body(body: Dict[str, Any]) -> str:
    """JSON that SQS accepts: UTF-8 as is, characters SQS refuses escaped (still the same JSON value)."""
    text = json.dumps(body, ensure_ascii=False)
    return _NOT_FOR_SQS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def body_size(encoded: str) -> int:
    return len(encoded.encode("utf-8"))


@functools.lru_cache(maxsize=None)
def _delivery_policy(name: str) -> DeliveryPolicy:
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=queue_url(name), AttributeNames=["VisibilityTimeout", "RedrivePolicy"])["Attributes"]
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    return DeliveryPolicy(visibility_seconds=int(attributes.get("VisibilityTimeout", 30)),
                          max_receives=int(redrive.get("maxReceiveCount", 0)) or 1_000_000)


class SqsQueue:
    def __init__(self, name: str):
        self.name = name

    def delivery_policy(self) -> DeliveryPolicy:
        """Read once per container from the queue itself (infra/template.yaml is the one place it is set)."""
        return _delivery_policy(self.name)

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Show a received message again after ``seconds`` (SQS allows up to 12 hours)."""
        client("sqs").change_message_visibility(QueueUrl=queue_url(self.name), ReceiptHandle=receipt_handle,
                                                VisibilityTimeout=max(0, min(int(seconds), 43_200)))

    def send(self, body: Dict[str, Any]) -> None:
        encoded = encode_body(body)
        size = body_size(encoded)
        if size > MAX_BODY_BYTES:
            raise MessageTooLarge(self.name, size, MAX_BODY_BYTES)
        client("sqs").send_message(QueueUrl=queue_url(self.name), MessageBody=encoded)

    def send_batch(self, bodies: Iterable[Dict[str, Any]]) -> int:
        """Send all or raise: the caller only moves its cursor after this returns.

        Every body is checked before anything is sent, so a MessageTooLarge
        leaves the queue untouched. Requests hold at most 10 messages and
        256 KiB, so many large messages go in more, smaller requests.
        """
        pending: List[Dict[str, Any]] = []
        for index, body in enumerate(bodies):
            encoded = encode_body(body)
            size = body_size(encoded)
            if size > MAX_BODY_BYTES:
                raise MessageTooLarge(self.name, size, MAX_BODY_BYTES, index=index)
            pending.append({"Id": str(index), "MessageBody": encoded, "size": size})
        sent = 0
        for chunk in _requests(pending):
            sent += self._send_request([{"Id": e["Id"], "MessageBody": e["MessageBody"]} for e in chunk])
        return sent

    def _send_request(self, entries: List[Dict[str, str]]) -> int:
        sent = 0
        for _attempt in range(3):
            answer = client("sqs").send_message_batch(QueueUrl=queue_url(self.name), Entries=entries)
            sent += len(answer.get("Successful", []))
            failed = answer.get("Failed", [])
            refused = [f for f in failed if f.get("SenderFault")]
            if refused:  # our fault (invalid contents...): sending it again will not help
                first = refused[0]
                raise QueueSendError(f"{self.name} refused {len(refused)} messages: "
                                     f"{first.get('Code')}: {first.get('Message', '')}")
            failed_ids = {f["Id"] for f in failed}
            entries = [entry for entry in entries if entry["Id"] in failed_ids]
            if not entries:
                return sent
        raise QueueSendError(f"{len(entries)} messages could not be sent to {self.name}")

    def dead_letter(self, body: str, reason: str, *, origin: str) -> None:
        """Park a message that can never succeed, with why, for a person to look at."""
        client("sqs").send_message(
            QueueUrl=queue_url(self.name), MessageBody=body,
            MessageAttributes={
                "failure_reason": {"DataType": "String", "StringValue": _NOT_FOR_SQS.sub("\ufffd", reason[:1000])},
                "origin_queue": {"DataType": "String", "StringValue": origin},
            },
        )


def _requests(entries: List[Dict[str, Any]]) -> Iterable[List[Dict[str, Any]]]:
    """Entries grouped in order into SendMessageBatch requests: at most 10, at most 256 KiB each."""
    chunk: List[Dict[str, Any]] = []
    chunk_bytes = 0
    for entry in entries:
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or chunk_bytes + entry["size"] > MAX_REQUEST_BYTES):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append(entry)
        chunk_bytes += entry["size"]
    if chunk:
        yield chunk
