"""Lambda event and context shapes, as AWS delivers them, for local runs.

The local runner and the end-to-end test feed the very handlers Lambda would
call with these, so no handler has a local-only branch.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List

ACCOUNT = "123456789012"


class LambdaContext:
    def __init__(self, function_name: str, region: str, timeout_s: int = 30, memory_mb: int = 256):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = datetime.now(timezone.utc).strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def scheduled_event(rule_name: str, region: str) -> Dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": ACCOUNT, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule_name}"], "detail": {},
    }


def sqs_event(messages: List[Dict[str, Any]], queue_name: str, region: str) -> Dict[str, Any]:
    """The event Lambda builds from SQS ReceiveMessage output."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append({
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attributes.get("SenderId", ACCOUNT),
                "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))),
            },
            "messageAttributes": {
                name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                       "stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "String")}
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{region}:{ACCOUNT}:{queue_name}",
            "awsRegion": region,
        })
    return {"Records": records}


def dynamodb_event(records: List[Dict[str, Any]], stream_arn: str, region: str) -> Dict[str, Any]:
    """The event Lambda builds from DynamoDB Streams GetRecords output (its event source mapping's batch)."""
    shaped = []
    for record in records:
        stream = dict(record.get("dynamodb", {}))
        created = stream.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):  # boto3 parses it; Lambda hands on epoch seconds
            stream["ApproximateCreationDateTime"] = int(created.timestamp())
        shaped.append({
            "eventID": record.get("eventID") or uuid.uuid4().hex,
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", region),
            "dynamodb": stream,
            "eventSourceARN": stream_arn,
        })
    return {"Records": shaped}
