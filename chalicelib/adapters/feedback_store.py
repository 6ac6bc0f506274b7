"""Triage corrections (issue 14) on DynamoDB (the settings table): labeled examples from the team's work.

Layout (settings table, which has no stream): pk ``TRIAGEFB``, sk ``<at>#<correction id>``, one item
per correction, its fields as one JSON attribute ``c`` (``before``/``after`` keep their JSON types:
a category string, a tag list, a boolean "case or not").

- Idempotent: the sort key is made of the correction itself (its time and ``correction_id``, a hash
  of what it says), so a retried request is a conditional put that fails and changes nothing.
- A period is one Query: ``sk BETWEEN "<since>" AND "<until>~"`` ('~' sorts after every character of
  an ISO time and a correction id, so ``until`` may be a day: all of it), oldest first, or newest first
  (``newest_first``: ``ScanIndexForward=False``, for a reader with a cap that must keep the latest), paged
  by the last sort key read (handed out as an opaque cursor that names its direction).
- One partition: corrections are people's actions (a few a minute on a busy day), far below
  DynamoDB's 1,000 writes a second per partition. Items are small (the post's text is at most a few
  KB) and kept: they are the training data.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.adapters.dynamo import ddb, unmarshal
from chalicelib.adapters.stores import put_if
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.feedback import Correction
from chalicelib.domain.paging import decode_cursor, encode_cursor

_PK = "TRIAGEFB"
_AFTER_ALL = "~"


class DynamoFeedbackStore:
    def __init__(self, table: str):
        self.table = table

    def record_correction(self, correction: Correction) -> bool:
        body = json.dumps(correction.to_dict(), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return put_if(self.table, {"pk": _PK, "sk": _sort_key(correction), "c": body}, "attribute_not_exists(pk)")

    def corrections(self, *, since: str = "", until: str = "", limit: int = 100,
                    after: Optional[str] = None,
                    newest_first: bool = False) -> Tuple[List[Correction], Optional[str]]:
        kwargs: Dict[str, Any] = dict(
            TableName=self.table, KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={":pk": {"S": _PK}, ":lo": {"S": since or " "},
                                       ":hi": {"S": (until or "\uffff") + _AFTER_ALL}},
            Limit=max(1, limit) + 1,  # one more: a next position only when there is more
            ScanIndexForward=not newest_first,
        )
        keys = {"sk", "newest"} if newest_first else {"sk"}
        if after is not None:
            state = decode_cursor(after)
            sk = state.get("sk")
            if set(state) != keys or not isinstance(sk, str) or "#" not in sk:
                raise InvalidCursor("not a position in the triage corrections; start again without it")
            kwargs["ExclusiveStartKey"] = {"pk": {"S": _PK}, "sk": {"S": sk}}
        items: List[Dict[str, Any]] = []
        while len(items) <= max(1, limit):
            page = ddb().query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        more = len(items) > max(1, limit)
        items = items[:max(1, limit)]
        found = [_correction(unmarshal(item)) for item in items]
        if not more:
            return found, None
        return found, encode_cursor({"sk": items[-1]["sk"]["S"], **({"newest": True} if newest_first else {})})


def _sort_key(correction: Correction) -> str:
    return f"{correction.at}#{correction.correction_id}"


def _correction(item: Dict[str, Any]) -> Correction:
    data = json.loads(item["c"])
    data.pop("correction_id", None)
    return Correction(**data)
