"""No-case mentions to review (issue 14), on the mentions table's sparse index ``no-case-by-day``.

When triage leaves a mention without a case, the same UpdateItem that records its decision
(``DynamoMentionStore.update(review_at=...)``) sets the index keys and a few small attributes:

- ``rv_pk`` = ``NOCASE#<day>`` (UTC day the decision was made), ``rv_sk`` = ``<time>#<mention id>``:
  one partition per day, newest first by reading the sort key backwards;
- ``rv_lang``, ``rv_platform``, ``rv_sentiment``, ``rv_category``, ``rv_score`` (projected, INCLUDE):
  what the list filters on and the digest counts and ranks by, without reading the mention.

A review (promote or confirm) REMOVEs the keys in a conditional update, so the mention leaves the
index (sparse) and a second review of it is refused. The list reads one day's partition with a
filter, then the page's mentions by key (BatchGetItem, only the attributes the review shows):
the index holds no copy of a post. No Scan anywhere. Mentions expire with their TTL and leave
the index with them.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.adapters.dynamo import ddb, is_conditional_failure, marshal, unmarshal
from chalicelib.adapters.stores import full_mention
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.ports import StoredMention

INDEX = "no-case-by-day"
FILTERS = {"lang": "rv_lang", "platform": "rv_platform", "sentiment": "rv_sentiment", "category": "rv_category"}
_READ = ("mention_id", "#s", "mention", "triage", "case_id", "received_at_epoch", "expires_at")
MAX_BATCH_GET = 100


def review_fields(mention_id: str, triage: Mapping[str, Any], at: str) -> Dict[str, Any]:
    """The index attributes of a mention triage left without a case at ``at`` (ISO time)."""
    score = triage.get("sentiment_score")
    platform = mention_id.split(":", 1)[0]
    return {"rv_pk": f"NOCASE#{at[:10]}", "rv_sk": f"{at}#{mention_id}",
            "rv_lang": str(triage.get("lang") or ""), "rv_platform": platform,
            "rv_sentiment": str(triage.get("sentiment") or ""), "rv_category": str(triage.get("category") or ""),
            "rv_score": Decimal(str(round(float(score), 4))) if isinstance(score, (int, float)) else Decimal(0)}


MAX_QUERIES_PER_PAGE = 10


class DynamoMentionReview:
    def __init__(self, table: str):
        self.table = table

    def no_case_page(self, day: str, *, limit: int, after: Optional[str] = None,
                     filters: Optional[Mapping[str, str]] = None) -> Tuple[List[StoredMention], Optional[str]]:
        kwargs: Dict[str, Any] = dict(TableName=self.table, IndexName=INDEX, ScanIndexForward=False,
                                      KeyConditionExpression="rv_pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": f"NOCASE#{day}"}})
        wanted = {FILTERS[k]: v for k, v in (filters or {}).items() if k in FILTERS and v}
        if wanted:
            kwargs["FilterExpression"] = " AND ".join(f"#{name} = :{name}" for name in wanted)
            kwargs["ExpressionAttributeNames"] = {f"#{name}": name for name in wanted}
            kwargs["ExpressionAttributeValues"].update({f":{name}": {"S": value} for name, value in wanted.items()})
        if after is not None:
            state = decode_cursor(after)
            key = state.get("k")
            if (set(state) != {"d", "k"} or state["d"] != day or not isinstance(key, str) or len(key) > 300
                    or not key.partition("#")[2]):
                raise InvalidCursor("query 'cursor' is not a position in this day's review list; start again without it")
            kwargs["ExclusiveStartKey"] = {"rv_pk": {"S": f"NOCASE#{day}"}, "rv_sk": {"S": state["k"]},
                                           "mention_id": {"S": state["k"].split("#", 1)[1]}}
        # Full pages, and a cursor only when another entry exists: read on (a filter may drop most of a
        # day) until one entry past the page or the day's end. Index entries are ~100 bytes, so a read
        # of 25 or more costs what a read of one does.
        # A request reads at most MAX_QUERIES_PER_PAGE Queries (a few thousand entries of a busy day); a
        # filter that matches little there ends the page short, with a cursor where the reading stopped.
        keys: List[Dict[str, Any]] = []
        last: Optional[Dict[str, Any]] = None
        for _query in range(MAX_QUERIES_PER_PAGE):
            page = ddb().query(**kwargs, Limit=max(200, limit + 1 - len(keys)))
            keys.extend(page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if len(keys) > limit or not last:
                break
            kwargs["ExclusiveStartKey"] = last
        if len(keys) > limit:
            keys = keys[:limit]
            position: Optional[str] = encode_cursor({"d": day, "k": keys[-1]["rv_sk"]["S"]})
        else:
            position = encode_cursor({"d": day, "k": last["rv_sk"]["S"]}) if last else None
        return self._read([k["mention_id"]["S"] for k in keys]), position

    def _read(self, ids: List[str]) -> List[StoredMention]:
        found: Dict[str, Dict[str, Any]] = {}
        for start in range(0, len(ids), MAX_BATCH_GET):
            request = {self.table: {"Keys": [marshal({"mention_id": i}) for i in ids[start:start + MAX_BATCH_GET]],
                                    "ProjectionExpression": ", ".join(_READ),
                                    "ExpressionAttributeNames": {"#s": "state"}}}
            while request:
                answer = ddb().batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    data = unmarshal(item)
                    found[data["mention_id"]] = data
                request = answer.get("UnprocessedKeys") or {}
        return [StoredMention(mention_id=i, state=found[i].get("state", "no_case"),
                              mention=full_mention(found[i].get("mention") or {}, i),
                              triage=found[i].get("triage"), case_id=found[i].get("case_id"),
                              received_epoch=found[i].get("received_at_epoch"), expires_at=found[i].get("expires_at"))
                for i in ids if i in found]

    def no_case_summaries(self, day: str) -> List[Dict[str, Any]]:
        kwargs: Dict[str, Any] = dict(TableName=self.table, IndexName=INDEX, KeyConditionExpression="rv_pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": f"NOCASE#{day}"}})
        rows: List[Dict[str, Any]] = []
        while True:
            page = ddb().query(**kwargs)
            for item in page.get("Items", []):
                data = unmarshal(item)
                rows.append({"mention_id": data["mention_id"], "at": data["rv_sk"].split("#", 1)[0],
                             "lang": data.get("rv_lang", ""), "platform": data.get("rv_platform", ""),
                             "sentiment": data.get("rv_sentiment", ""), "category": data.get("rv_category", ""),
                             "score": float(data.get("rv_score", 0))})
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def settle_review(self, mention_id: str, *, outcome: str, by: str, at: str) -> bool:
        try:
            ddb().update_item(
                TableName=self.table, Key=marshal({"mention_id": mention_id}),
                UpdateExpression="SET review_outcome = :o, reviewed_by = :b, reviewed_at = :a "
                                 "REMOVE rv_pk, rv_sk, rv_lang, rv_platform, rv_sentiment, rv_category, rv_score",
                ConditionExpression="attribute_exists(rv_pk)",
                ExpressionAttributeValues=marshal({":o": outcome, ":b": by, ":a": at}))
        except Exception as err:
            if is_conditional_failure(err):
                return False
            raise
        return True
