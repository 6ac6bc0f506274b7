"""KPI aggregates and QA audits on DynamoDB (the settings table). Every read is a key or a Query: no Scan.

Why the settings table and not the cases table: the cases table has a stream, and the
stream's function (measure_changes) writes these items; written to the cases table, every
aggregate update would come back as a stream record of its own (ignored, but each one a
Lambda invocation and a read of the stream, for nothing). The settings table has no stream.

Layout (settings table; ``expires_at`` is its TTL attribute):
- pk KPI#<dimension>, sk <day>#<key>: one aggregate item (day in the brand's time zone, YYYY-MM-DD),
  with ``day``, ``dimension``, ``key`` and one number attribute per counter (``domain.kpi.is_counter``;
  names such as ``first_response_seconds/b12`` go through ExpressionAttributeNames). A period of one
  dimension is one Query: sk BETWEEN "<from>#" AND "<to>$" ('$' sorts just after '#').
- pk KPITOTAL#<dimension>, sk <key>: ``backlog``, every backlog movement of the key ever (one Query).
- pk KPIMARK#<token>, sk MARK: the token was applied (or is being applied in parts, see below);
  sk PART#<n>: part n of a large token was applied. Both expire ``keep_marker_seconds`` after writing.
- pk QA#<week>, sk REPLY#<reply id>: an agent's reply sent that ISO week (the pool a sample is drawn
  from), expiring with the case retention period after it was sent.
- pk QA#<week>, sk REVIEW#<reply id> and pk QAREVIEW#<reply id>, sk REVIEW: a review (as JSON), twice in
  one transaction: by week for ``reviews_of_week``, by reply for ``get_review`` and "once per reply".
  Reviews do not expire: they are the audit record of an agent's work, and name no customer.

Cost of applying a token (one stored case change, typically): one TransactWriteItems with the marker
Put, one Update per (day, dimension, key) the change touches (3-4 keys: team, channel, category and the
agent; usually one day, up to four when a change's moments fall on different days, double the keys when
a case moves between teams or agents) and one Update per key whose backlog moved. Transactional writes
cost two write units per KB of each item (an Update is billed on the larger of the item before and
after), and a busy day's item with its histograms is a few KB.
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from chalicelib.adapters.dynamo import ddb, is_conditional_failure, marshal, marshal_values, query_all, unmarshal
from chalicelib.adapters.stores import _cancellation_codes, put_if
from chalicelib.config import settings
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.kpi import Delta, is_counter
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.qa import ReplyForReview, review_week

MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit for one TransactWriteItems
# A transaction that meets another one on the same item (two shards' batches adding to one day's team
# item) is cancelled with TransactionConflict and changed nothing: try again a few times, then let the
# stream redeliver (the marker makes the redelivery safe).
CONFLICT_ATTEMPTS = 5
MAX_PLAN_BYTES = 300_000  # the plan of a large token lives in its marker item (DynamoDB: 400 KB an item)
_AFTER_DAY = "$"          # "<day>#<any key>" < "<day>$"
_MARK, _PART = "MARK", "PART#"

# One aggregate write: (pk, sk, attributes set as they are, counters added).
Write = Tuple[str, str, Dict[str, str], Dict[str, int]]


def _writes(deltas: Sequence[Delta]) -> List[Write]:
    """The token's deltas merged per aggregate item, then the backlog total per key that moved."""
    items: Dict[Tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    totals: Counter[Tuple[str, str]] = Counter()
    for delta in deltas:
        items[delta.item_key].update({name: int(value) for name, value in delta.counters.items()})
        totals[(delta.dimension, delta.key)] += int(delta.counters.get("backlog", 0))
    writes: List[Write] = []
    for (day, dimension, key), counters in sorted(items.items()):
        kept = {name: value for name, value in sorted(counters.items()) if value}
        if kept:
            writes.append((f"KPI#{dimension}", f"{day}#{key}", {"day": day, "dimension": dimension, "key": key}, kept))
    for (dimension, key), amount in sorted(totals.items()):
        if amount:
            writes.append((f"KPITOTAL#{dimension}", key, {"dimension": dimension, "key": key}, {"backlog": amount}))
    return writes


def _update(table: str, write: Write) -> Dict[str, Any]:
    pk, sk, fixed, counters = write
    names: Dict[str, str] = {}
    values: Dict[str, Any] = {}
    sets, adds = [], []
    for i, (name, value) in enumerate(fixed.items()):
        names[f"#s{i}"], values[f":s{i}"] = name, value
        sets.append(f"#s{i} = :s{i}")
    for i, (name, amount) in enumerate(counters.items()):
        # Counter names hold "/" (first_response_seconds/b12): only a placeholder can name them.
        names[f"#c{i}"], values[f":c{i}"] = name, amount
        adds.append(f"#c{i} :c{i}")
    return {"Update": {"TableName": table, "Key": marshal({"pk": pk, "sk": sk}),
                       "UpdateExpression": "SET " + ", ".join(sets) + " ADD " + ", ".join(adds),
                       "ExpressionAttributeNames": names, "ExpressionAttributeValues": marshal_values(values)}}


class DynamoKpiStore:
    """Per-day KPI aggregates; ``apply_deltas`` follows ``domain.kpi.apply_once`` (the fakes use it)."""

    def __init__(self, table: str, *, epoch: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.table = table
        self._epoch = epoch
        self._sleep = sleep

    def apply_deltas(self, token: str, deltas: List[Delta], *, keep_marker_seconds: int) -> bool:
        wrong = [d.token for d in deltas if d.token != token]
        if wrong:
            raise ValueError(f"a delta of token {wrong[0]!r} given with token {token!r}")
        writes = _writes(deltas)
        expires_at = int(self._epoch()) + int(keep_marker_seconds)
        mark = {"pk": f"KPIMARK#{token}", "sk": _MARK, "expires_at": expires_at}
        if len(writes) + 1 > MAX_TRANSACTION_ITEMS:
            return self._apply_in_parts(token, writes, expires_at)
        items = [{"Put": {"TableName": self.table, "Item": marshal(mark),
                          "ConditionExpression": "attribute_not_exists(pk)"}}]
        items += [_update(self.table, write) for write in writes]
        if self._transact(items):
            return True
        # Applied before, as a whole; or a first delivery planned it in parts and stopped half-way (it had
        # more items then: the SLA policy or a calendar changed in between), which this call finishes.
        return self._resume(token)

    def _transact(self, items: List[Dict[str, Any]]) -> bool:
        """True when written; False when the first item (the marker) exists already."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                ddb().transact_write_items(TransactItems=items)
                return True
            except Exception as err:
                if not is_conditional_failure(err):
                    raise
                codes = _cancellation_codes(err)
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            if "TransactionConflict" not in codes or attempt == CONFLICT_ATTEMPTS - 1:
                raise RuntimeError(f"applying KPI deltas was cancelled: {codes[:3]}...")
            self._sleep(min(0.05 * 2 ** attempt, 1.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply_in_parts(self, token: str, writes: List[Write], expires_at: int) -> bool:
        """A token of more than 99 writes: parts of 99 behind their own markers, planned once.

        The plan (every write, in parts) is stored in the token's marker before any part is applied,
        and a redelivery applies the stored plan, not the deltas it computed again: so each aggregate
        item is in exactly one part whatever the redelivery computes, and a part applied before is
        skipped by its marker. Nothing counts twice, and a crash half-way is finished by the next try.
        """
        size = MAX_TRANSACTION_ITEMS - 1
        parts = [writes[start:start + size] for start in range(0, len(writes), size)]
        plan = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
        if len(plan.encode("utf-8")) > MAX_PLAN_BYTES:
            raise ValueError(f"KPI token {token!r} has too many deltas to apply once ({len(writes)} writes)")
        mark = {"pk": f"KPIMARK#{token}", "sk": _MARK, "plan": plan, "parts": len(parts), "expires_at": expires_at}
        if put_if(self.table, mark, "attribute_not_exists(pk)"):
            return self._run_plan(token, parts, expires_at) or True
        return self._resume(token)

    def _resume(self, token: str) -> bool:
        """Finish the stored plan of a token applied in parts; False when the token was applied before."""
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"KPIMARK#{token}", "sk": _MARK}),
                              ConsistentRead=True).get("Item")
        stored = unmarshal(item) if item else {}
        if not stored.get("plan") or stored.get("done"):
            return False
        parts = [[(pk, sk, dict(fixed), {k: int(v) for k, v in counters.items()})
                  for pk, sk, fixed, counters in part] for part in json.loads(stored["plan"])]
        return self._run_plan(token, parts, int(stored.get("expires_at") or 0))

    def _run_plan(self, token: str, parts: List[List[Write]], expires_at: int) -> bool:
        applied = False
        for number, part in enumerate(parts):
            marker = {"pk": f"KPIMARK#{token}", "sk": f"{_PART}{number}", "expires_at": expires_at}
            items = [{"Put": {"TableName": self.table, "Item": marshal(marker),
                              "ConditionExpression": "attribute_not_exists(pk)"}}]
            applied = self._transact(items + [_update(self.table, write) for write in part]) or applied
        # Done: a later delivery answers from the marker alone (it keeps its expiry).
        ddb().update_item(TableName=self.table, Key=marshal({"pk": f"KPIMARK#{token}", "sk": _MARK}),
                          UpdateExpression="SET #done = :yes", ExpressionAttributeNames={"#done": "done"},
                          ExpressionAttributeValues=marshal_values({":yes": True}))
        return applied

    def kpi_rows(self, dimension: str, from_day: str, to_day: str) -> List[Dict[str, Any]]:
        # Eventually consistent: a report may miss the last second's changes, at half the read price.
        items = query_all(TableName=self.table, KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                          ExpressionAttributeValues=marshal_values({":pk": f"KPI#{dimension}", ":lo": f"{from_day}#",
                                                                    ":hi": f"{to_day}{_AFTER_DAY}"}))
        return [{"day": item["day"], "dimension": item["dimension"], "key": item["key"],
                 **{name: int(value) for name, value in item.items() if is_counter(name)}} for item in items]

    def backlog_totals(self, dimension: str) -> Dict[str, int]:
        items = query_all(TableName=self.table, KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues=marshal_values({":pk": f"KPITOTAL#{dimension}"}))
        # A key whose movements cancelled out keeps its item at 0: no active case, no entry.
        return {item["key"]: int(item.get("backlog", 0)) for item in items if int(item.get("backlog", 0))}


# ---- QA audits ----------------------------------------------------------------------------------

_REPLY_FIELDS = ("reply_id", "agent_id", "case_id", "sent_at", "csat_score")


class DynamoQaStore:
    """The weekly pool of sent replies (paged in reply id order) and one review per reply.

    A review names the ISO ``week`` its reply was sent in (``review["week"]``): that is where
    ``reviews_of_week`` finds it.
    """

    def __init__(self, table: str, *, retention_days: Optional[int] = None):
        self.table = table
        self.retention_days = retention_days if retention_days is not None else settings().retention_cases_days

    def note_sent_reply(self, week: str, reply: ReplyForReview) -> None:
        # A whole Put: noting again (a redelivered send) writes the same item.
        try:
            sent = int(parse_iso(reply.sent_at).timestamp())
        except ValueError:
            sent = int(time.time())
        item = {"pk": f"QA#{week}", "sk": f"REPLY#{reply.reply_id}",
                **{name: getattr(reply, name) for name in _REPLY_FIELDS},
                # The pool names cases and agents, no customer: kept as long as the cases it samples.
                "expires_at": sent + self.retention_days * 86_400}
        ddb().put_item(TableName=self.table, Item=marshal(item))

    def sent_replies(self, week: str, *, limit: int, after: Optional[str] = None
                     ) -> Tuple[List[ReplyForReview], Optional[str]]:
        pk = f"QA#{week}"
        query: Dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :pk AND begins_with(sk, :s)",
            "ExpressionAttributeValues": marshal_values({":pk": pk, ":s": "REPLY#"})}
        if after:
            state = decode_cursor(after)
            reply_id = state.get("r")
            if state.get("w") != week or not isinstance(reply_id, str) or not reply_id or len(reply_id) > 300:
                raise InvalidCursor("not a position of this week's sent replies; start again without it")
            query["ExclusiveStartKey"] = marshal({"pk": pk, "sk": f"REPLY#{reply_id}"})
        # One past the page: a page with more to come is full, and "more" is never a false promise.
        found: List[Dict[str, Any]] = []
        while len(found) <= limit:
            query["Limit"] = limit + 1 - len(found)
            answer = ddb().query(**query)
            found.extend(unmarshal(item) for item in answer.get("Items", []))
            if not answer.get("LastEvaluatedKey"):
                break
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        page = [_reply_for_review(item) for item in found[:limit]]
        more = len(found) > limit
        return page, (encode_cursor({"w": week, "r": page[-1].reply_id}) if page and more else None)

    def put_review(self, review: Dict[str, Any]) -> bool:
        week = review_week(review)
        reply_id = review["reply_id"]
        # Kept as JSON: a criterion scored null (not applicable) must come back null, and a score as written
        # (marshal drops None inside maps and turns 80.0 into 80).
        body = {"reply_id": reply_id, "week": week, "review": json.dumps(review, ensure_ascii=False)}
        try:
            ddb().transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table, "Item": marshal({**body, "pk": f"QAREVIEW#{reply_id}", "sk": "REVIEW"}),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self.table, "Item": marshal({**body, "pk": f"QA#{week}", "sk": f"REVIEW#{reply_id}"}),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
            return True
        except Exception as err:
            if is_conditional_failure(err):
                return False
            raise

    def get_review(self, reply_id: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"QAREVIEW#{reply_id}", "sk": "REVIEW"}),
                              ConsistentRead=True).get("Item")
        return _review(unmarshal(item)) if item else None

    def forget_reply(self, week: str, reply_id: str) -> None:
        for key in ({"pk": f"QA#{week}", "sk": f"REPLY#{reply_id}"}, {"pk": f"QA#{week}", "sk": f"REVIEW#{reply_id}"},
                    {"pk": f"QAREVIEW#{reply_id}", "sk": "REVIEW"}):
            ddb().delete_item(TableName=self.table, Key=marshal(key))

    def reviews_of_week(self, week: str) -> List[Dict[str, Any]]:
        items = query_all(TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
                          ExpressionAttributeValues=marshal_values({":pk": f"QA#{week}", ":s": "REVIEW#"}))
        return [_review(item) for item in items]


def _reply_for_review(item: Mapping[str, Any]) -> ReplyForReview:
    score = item.get("csat_score")
    return ReplyForReview(reply_id=str(item["reply_id"]), agent_id=str(item["agent_id"]), case_id=str(item["case_id"]),
                          sent_at=str(item["sent_at"]), csat_score=int(score) if score is not None else None)


def _review(item: Mapping[str, Any]) -> Dict[str, Any]:
    review: Dict[str, Any] = json.loads(item["review"])
    return review
