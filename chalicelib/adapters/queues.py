"""SQS adapter: batched sends, and dead-lettering with the reason attached."""
from __future__ import annotations

import functools
import json
from typing import Any, Dict, Iterable, List

from chalicelib.adapters.aws import client


@functools.lru_cache(maxsize=None)
def queue_url(name: str) -> str:
    return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


class QueueSendError(Exception):
    pass


class SqsQueue:
    def __init__(self, name: str):
        self.name = name

    def send(self, body: Dict[str, Any]) -> None:
        client("sqs").send_message(QueueUrl=queue_url(self.name), MessageBody=json.dumps(body, ensure_ascii=False))

    def send_batch(self, bodies: Iterable[Dict[str, Any]]) -> int:
        """Send all or raise: the caller only moves its cursor after this returns."""
        pending: List[Dict[str, Any]] = [
            {"Id": str(i), "MessageBody": json.dumps(body, ensure_ascii=False)} for i, body in enumerate(bodies)
        ]
        sent = 0
        for start in range(0, len(pending), 10):
            chunk = pending[start:start + 10]
            for _attempt in range(3):
                answer = client("sqs").send_message_batch(QueueUrl=queue_url(self.name), Entries=chunk)
                sent += len(answer.get("Successful", []))
                failed_ids = {f["Id"] for f in answer.get("Failed", [])}
                chunk = [entry for entry in chunk if entry["Id"] in failed_ids]
                if not chunk:
                    break
            if chunk:
                raise QueueSendError(f"{len(chunk)} messages could not be sent to {self.name}")
        return sent

    def dead_letter(self, body: str, reason: str, *, origin: str) -> None:
        """Park a message that can never succeed, with why, for a person to look at."""
        client("sqs").send_message(
            QueueUrl=queue_url(self.name), MessageBody=body,
            MessageAttributes={
                "failure_reason": {"DataType": "String", "StringValue": reason[:1000]},
                "origin_queue": {"DataType": "String", "StringValue": origin},
            },
        )
