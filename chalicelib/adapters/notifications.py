"""Notifications: each person's in-app feed (DynamoDB, the cases table) and the SNS topic that carries
them on to e-mail or chat integrations.

Feed layout (cases table):
- pk NOTIFY#<recipient>, sk <at>#<notification id>: the notification, newest last in key order (a page
  reads backwards); ``read_at`` once read.
- pk NOTIFYID#<recipient>, sk <notification id>: the feed item's sort key, so ``mark_read`` finds an item
  by id with a GetItem (no Scan), and the same id is never added twice whatever its ``at``.
Both expire 90 days after the notification (``expires_at``, TTL).
"""
from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterable, List, Optional

from chalicelib.adapters.aws import client
from chalicelib.adapters.dynamo import ddb, is_conditional_failure, marshal, marshal_values, unmarshal
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.notification import Notification
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.observability import logger
from chalicelib.ports import NotificationPage

RETENTION_SECONDS = 90 * 86_400
MAX_SUBJECT = 99  # SNS: "less than 100 characters"
_FEED = "NOTIFY#"
_BY_ID = "NOTIFYID#"


def _expires_at(notification: Notification) -> int:
    try:
        moment = parse_iso(notification.at).timestamp()
    except ValueError:
        moment = time.time()
    return int(moment) + RETENTION_SECONDS


class DynamoNotificationStore:
    def __init__(self, table: str):
        self.table = table

    def add_notification(self, recipient: str, notification: Notification) -> bool:
        """Both items or neither, each only if new: the id item refuses the same notification raised again
        at another moment; the feed item's key comes from the notification itself, so a retry lands on it."""
        sk = f"{notification.at}#{notification.notification_id}"
        expires_at = _expires_at(notification)
        feed_item = {"pk": _FEED + recipient, "sk": sk, **notification.to_dict(), "expires_at": expires_at}
        id_item = {"pk": _BY_ID + recipient, "sk": notification.notification_id, "feed_sk": sk,
                   "expires_at": expires_at}
        try:
            ddb().transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table, "Item": marshal(id_item),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self.table, "Item": marshal(feed_item),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
            return True
        except Exception as err:
            if is_conditional_failure(err):
                return False
            raise

    def notifications_page(self, recipient: str, *, limit: int, after: Optional[str] = None,
                           unread_only: bool = False) -> NotificationPage:
        pk = _FEED + recipient
        query: Dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "pk = :pk",
                                 "ScanIndexForward": False, "ConsistentRead": True,
                                 "ExpressionAttributeValues": marshal_values({":pk": pk})}
        if unread_only:
            query["FilterExpression"] = "attribute_not_exists(read_at)"
        if after:
            state = decode_cursor(after)
            sk = state.get("s")
            if state.get("r") != recipient or not isinstance(sk, str) or "#" not in sk or len(sk) > 200:
                raise InvalidCursor("query 'cursor' is not one this API issued for your notifications; "
                                    "start again without it")
            query["ExclusiveStartKey"] = marshal({"pk": pk, "sk": sk})
        # One past the page: a page with more to come is full, and the last one is never empty.
        found: List[Dict[str, Any]] = []
        while len(found) <= limit:
            query["Limit"] = limit + 1 - len(found) if not unread_only else max(limit + 1 - len(found), 25)
            answer = ddb().query(**query)
            found.extend(unmarshal(item) for item in answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                break
            query["ExclusiveStartKey"] = last
        page = found[:limit]
        position = encode_cursor({"r": recipient, "s": page[-1]["sk"]}) if len(found) > limit and page else None
        return NotificationPage(notifications=[_notification(item) for item in page], next_position=position)

    def mark_read(self, recipient: str, notification_ids: Iterable[str], *, at: str) -> List[str]:
        ids = list(notification_ids)
        feed_keys: Dict[str, str] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 100):
            request: Dict[str, Any] = {self.table: {
                "Keys": [marshal({"pk": _BY_ID + recipient, "sk": n}) for n in unique[start:start + 100]],
                "ConsistentRead": True}}
            for attempt in range(10):
                answer = ddb().batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    data = unmarshal(item)
                    feed_keys[data["sk"]] = data["feed_sk"]
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))  # throttled: back off, then ask for the rest
            else:
                raise RuntimeError("DynamoDB left notifications unread after 10 attempts; try again")
        for feed_sk in feed_keys.values():
            try:  # only unread ones, and never bring back an item that expired meanwhile
                ddb().update_item(TableName=self.table, Key=marshal({"pk": _FEED + recipient, "sk": feed_sk}),
                                  UpdateExpression="SET read_at = :at",
                                  ConditionExpression="attribute_exists(pk) AND attribute_not_exists(read_at)",
                                  ExpressionAttributeValues=marshal_values({":at": at}))
            except Exception as err:
                if not is_conditional_failure(err):
                    raise
        return [n for n in ids if n in feed_keys]


def _notification(item: Dict[str, Any]) -> Notification:
    return Notification.from_dict({k: v for k, v in item.items() if k not in ("pk", "sk", "expires_at")})


def _subject(notification: Notification) -> str:
    """SNS subjects: under 100 characters, no line breaks or control characters; ASCII for any mail client."""
    words = notification.reason.replace("_", " ")
    text = f"socialcare: {words} on case {notification.case_id} ({notification.team})"
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text[:MAX_SUBJECT]


class SnsNotifier:
    """Publishes each notification to the notifications topic as JSON; subscribers filter on the
    ``reason``, ``team`` and ``priority`` message attributes (SNS subscription filter policies)."""

    def __init__(self, topic_arn: str):
        self.topic_arn = topic_arn

    def publish(self, notification: Notification, recipients: List[str]) -> None:
        message = {**notification.public_view(), "recipients": list(recipients)}
        attributes = {name: {"DataType": "String", "StringValue": str(value)}
                      for name, value in (("reason", notification.reason), ("team", notification.team),
                                          ("priority", notification.priority)) if value}  # SNS refuses empty values
        client("sns").publish(TopicArn=self.topic_arn, Subject=_subject(notification),
                              Message=json.dumps(message, ensure_ascii=False), MessageAttributes=attributes)


class LogOnlyNotifier:
    """Where no topic is configured (a local run without one): the in-app feed still has every notification."""

    def publish(self, notification: Notification, recipients: List[str]) -> None:
        logger.info("notification not published: NOTIFICATIONS_TOPIC_ARN is not set",
                    extra={"notification_id": notification.notification_id, "reason": notification.reason,
                           "case_id": notification.case_id, "recipients": len(recipients)})
