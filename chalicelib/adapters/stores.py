"""DynamoDB stores. Every method uses a key or an index: no Scan anywhere.

They take and return domain objects; the keys, index attributes and position
tokens below are theirs alone. Layouts (see infra/template.yaml):
- cases:    pk CASE#<id>; sk META (the case), MENTION#<time>#<id>, EVENT#<time>#<n>, REPLY#<id>;
            pk POSTED#<platform>:<post id> maps a platform message to its reply;
            pk CUSTOMER#<customer key>, sk ACTIVE names the customer's one active case
            (claimed with a condition, so two posts arriving together make one case; released in the
            transaction that makes the case done; one naming a done case is cleared by whoever finds it);
            its other items are the customer's ledger: CASE#<case id> for each case opened for them,
            MENTION#<mention id> for each mention claimed (how an export or erasure finds them: no Scan);
            pk AUDIT#ERASURE: PENDING#<erasure id> while an erasure runs, ERASED#<erasure id>#<time> after
            (counts and keyed HMAC hashes of the identities only, no personal data).
            expires_at (TTL, epoch seconds; domain/retention.py): none while a case is active; once it is
            resolved or closed, every item of the case, the POSTED# receipts of its replies and its
            ledger entry carry the same one. Ledger mention entries expire with their mention record.
            Index attributes on META: inbox_pk (team#status) with inbox_time_sk, inbox_priority_sk and
            inbox_due_sk; waiting_pk/waiting_sk only while the case waits for an agent; sla_due_pk/
            sla_next_sk only while the scheduler must look at it (sparse: absent, not empty).
            pk CUSTOMER#<customer key>, sk AWAY: when the customer last got an away message (TTL).
            pk CUSTOMER#<customer key>, sk SURVEY: the case whose CSAT survey the customer's next message
            may answer, and until when (TTL a day after); an erasure deletes it with AWAY.
            pk NOTIFY#<recipient>: in-app notifications (chalicelib/adapters/notifications.py).
- mentions: mention_id -> dedupe state, the mention, the triage decision; expires_at (TTL).
- settings: SOURCES/<source id>, CURSOR#<source id>/CURSOR, AGENT#<id>/PROFILE,
            TEAM#<team>/AGENT#<id>, TEAMS/ALL, RULES/CURRENT and RULES/V#<n>;
            ROLE#supervisor/AGENT#<id> (who is a supervisor) and ROLE#supervisor/INDEXED (built once);
            CALENDARS/TEAM#<team> (a team's calendar: all of them are one Query), TEAM#<team>/AWAY,
            TEAM#<team>/FIRST_RESPONSES (the latest 50), SLA/POLICY, RUNS/<job name>,
            CSAT/SETTINGS (survey settings), QA/RUBRIC, QA/SAMPLING;
            KPI aggregates and QA audits (chalicelib/adapters/kpi_store.py).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import MISSING, replace
from dataclasses import fields as dataclass_fields
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from chalicelib.adapters.dynamo import (
    ddb,
    is_conditional_failure,
    marshal,
    marshal_values,
    query_all,
    query_page,
    unmarshal,
)
from chalicelib.config import settings
from chalicelib.domain.agent import Agent
from chalicelib.domain.away import AwaySettings
from chalicelib.domain.case import NO_DEADLINE, PRIORITY_RANK, SLA_FILTERS, Case, ReplyTarget
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.csat import SurveySettings, validate_survey_settings
from chalicelib.domain.errors import Conflict, InvalidCursor
from chalicelib.domain.hours import Calendar
from chalicelib.domain.inbox_filter import UNASSIGNED, InboxFilter
from chalicelib.domain.mention import Author, Mention, MentionRecord
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.qa import Rubric, SamplingPolicy, validate_rubric, validate_sampling_policy
from chalicelib.domain.reply import Reply
from chalicelib.domain.retention import case_expires_at, mention_expires_at
from chalicelib.domain.sla import SlaPolicy, validate_policy
from chalicelib.ports import (
    CaseHistory,
    CasePage,
    ErasedCase,
    InboxPage,
    LedgerEntry,
    LedgerPage,
    OpenResult,
    StoredMention,
)

_event_counter = itertools.count()
# A history item takes the expiry its case's META has (None while the case is active), read consistently
# just before the item is written (_case_expiry). Not remembered between writes: the sender reads the case,
# waits on the platform, then writes its receipt and event, and an agent's "reply and resolve" commits the
# resolution (and stamps the items that exist) in between; a remembered "active, no expiry" would then leave
# an item of a done case that never expires.
_HISTORY_KINDS = ("EVENT", "MENTION", "REPLY")
# order -> (index, its sort attribute, ascending, whether the index holds whole cases). No inbox index
# holds a copy of the case: every index write is billed by size, and a write that changes nothing an index
# projects costs that index nothing. inbox-time and inbox-priority project the keys and the few small
# attributes the inbox filters read (_FILTERED, domain/inbox_filter.py), so a filter runs in DynamoDB on
# tiny entries; inbox-by-due projects what the sla filters read. A page fetches its cases from the table
# (BatchGetItem, eventually consistent: half the units) and checks them again (the index lags the table).
# (inbox-time and inbox-priority replaced inbox-by-time and inbox-by-priority, which projected ALL: a
# projection cannot change in place; infra/deploy.py adds and removes indexes one per update.)
_INBOX_INDEX = {"newest": ("inbox-time", "inbox_time_sk", False, False),
                "priority": ("inbox-priority", "inbox_priority_sk", True, False),
                "due": ("inbox-by-due", "inbox_due_sk", True, False)}
# The attributes inbox-time and inbox-priority project besides the keys (infra/template.yaml: the same list).
_FILTERED = ("assignee", "priority", "category", "platform", "lang", "tags", "escalated")
# An agent's own cases (assignee=<agent>): sparse, only assigned cases, assignee_pk = <agent>#<status>, newest
# first by inbox_time_sk; it also projects the other orders' sort keys and the filtered attributes, so
# "my open cases, most urgent first" sorts the agent's few entries here instead of reading the team's inbox.
_ASSIGNEE_INDEX = "inbox-assignee"
_ASSIGNEE_SORT = {"newest": "inbox_time_sk", "priority": "inbox_priority_sk", "due": "inbox_due_sk"}
# Past this many entries in one agent's status, priority and due orders are not sorted here (None: the
# caller reads the team inboxes instead). Active statuses stay far below it (capacity is at most 500).
MAX_SORTED_ASSIGNED = 1000
_WAITING_INDEX = "waiting"
_SLA_DUE_INDEX = "sla-due"
# The sla-due index has this one hash key value: "every case the scheduler must look at, by when" is
# then one ordered Query (no Scan, no fan-out). The price is one partition: about 1,000 writes a second
# (a throttled index slows the table's writes too). A write reaches this index only when a case's
# sla_next_at changes: a few times in a case's life (opened, answered, warned, breached, resolved) and
# once an hour while it is active (services/sla.py RECHECK_AFTER), two index writes each. 10,000 active
# cases are ~6 writes a second: far below it. Were it ever near, the key would take a shard suffix
# (SLA#0..SLA#9, by case id) and the scheduler would query each shard.
_SLA_DUE_PK = "SLA"
# Sort keys hold "<ISO time>#<case id>". Every time has the same length (domain/clock.py), and '$' sorts
# just after '#', so "<t>#<anything>" < "<now>$" exactly when t <= now.
_AFTER_TIME = "$"


def _update_expression(fields: Dict[str, Any]) -> Tuple[str, Dict[str, str], Dict[str, Any]]:
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
    return "SET " + sets, names, values


def put_if(table: str, item: Dict[str, Any], condition: str, names: Optional[Dict[str, str]] = None,
           values: Optional[Dict[str, Any]] = None) -> bool:
    """Write an item when ``condition`` holds; False when it does not."""
    kwargs: Dict[str, Any] = {}
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if values:
        kwargs["ExpressionAttributeValues"] = marshal_values(values)
    try:
        ddb().put_item(TableName=table, Item=marshal(item), ConditionExpression=condition, **kwargs)
        return True
    except Exception as err:
        if is_conditional_failure(err):
            return False
        raise


def put_if_absent(table: str, item: Dict[str, Any], key_attribute: str) -> bool:
    """Write an item only if its key is new; False when it exists (a repeated delivery)."""
    return put_if(table, item, f"attribute_not_exists({key_attribute})")


def update_if(table: str, key: Dict[str, Any], fields: Dict[str, Any], condition: str,
              names: Optional[Dict[str, str]] = None, values: Optional[Dict[str, Any]] = None) -> bool:
    """SET ``fields`` when ``condition`` holds; False when it does not."""
    expression, field_names, field_values = _update_expression(fields)
    try:
        ddb().update_item(
            TableName=table, Key=marshal(key), UpdateExpression=expression, ConditionExpression=condition,
            ExpressionAttributeNames={**field_names, **(names or {})},
            ExpressionAttributeValues=marshal_values({**field_values, **(values or {})}),
        )
        return True
    except Exception as err:
        if is_conditional_failure(err):
            return False
        raise


def _filter_conditions(where: InboxFilter, names: Dict[str, str], values: Dict[str, Any]) -> List[str]:
    """A FilterExpression's conditions for an inbox filter, on the attributes the inbox indexes project."""
    conditions: List[str] = []
    if where.assignee == UNASSIGNED:
        names["#fa"] = "assignee"
        conditions.append("attribute_not_exists(#fa)")
    elif where.assignee is not None:
        names["#fa"], values[":fa"] = "assignee", where.assignee
        conditions.append("#fa = :fa")
    for short, name in (("fp", "priority"), ("fc", "category"), ("fl", "platform"), ("fg", "lang")):
        wanted = getattr(where, name)
        if wanted is not None:
            names[f"#{short}"], values[f":{short}"] = name, wanted
            conditions.append(f"#{short} = :{short}")
    if where.tag is not None:
        names["#ft"], values[":ft"] = "tags", where.tag
        conditions.append("contains(#ft, :ft)")
    if where.escalated is not None:
        names["#fe"], values[":fe"] = "escalated", where.escalated
        conditions.append("#fe = :fe" if where.escalated else "(attribute_not_exists(#fe) OR #fe = :fe)")
    return conditions


def _strip(item: Dict[str, Any], *extra: str) -> Dict[str, Any]:
    hidden = {"pk", "sk", "type", *extra}
    return {k: v for k, v in item.items() if k not in hidden}


def _defaults(cls: Any) -> Dict[str, Any]:
    """Each field's default value (fields without one are left out: always stored)."""
    found: Dict[str, Any] = {}
    for spec in dataclass_fields(cls):
        if spec.default is not MISSING:
            found[spec.name] = spec.default
        elif spec.default_factory is not MISSING:
            found[spec.name] = spec.default_factory()
    return found


_CASE_DEFAULTS = _defaults(Case)
_TARGET_DEFAULTS = _defaults(ReplyTarget)
_CASE_INDEX_ATTRIBUTES = ("inbox_pk", "inbox_time_sk", "inbox_priority_sk", "inbox_due_sk", "assignee_pk", "waiting_pk",
                          "waiting_sk", "sla_due_pk", "sla_next_sk", "customer_pk", "customer_sk")
# customer_pk/customer_sk: read from cases written before the CUSTOMER# pointer replaced the by-customer index.


def _stored_case(case: Case) -> Dict[str, Any]:
    """The case as META holds it: without the fields that hold their empty default (no time yet, no
    list, 0, "", false), which ``Case.from_dict`` gives back. Every write of META is billed by its size
    (each index entry too), so names of empty fields are not stored. The attributes the inbox indexes
    filter on (_FILTERED) are always kept."""
    data = case.to_dict()
    compact = {k: v for k, v in data.items()
               if k in _FILTERED or k not in _CASE_DEFAULTS or not _is_default(v, _CASE_DEFAULTS[k])}
    compact["reply_target"] = {k: v for k, v in data["reply_target"].items()
                               if k not in _TARGET_DEFAULTS or not _is_default(v, _TARGET_DEFAULTS[k])}
    return compact


def _is_default(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default  # 0.0 is not None, False is not 0


def _case_item(case: Case, expires_at: Optional[int] = None) -> Dict[str, Any]:
    """The META item of a case: the case, the attributes its indexes read, and its expiry (TTL)."""
    item = {
        "pk": f"CASE#{case.case_id}", "sk": "META", **_stored_case(case),
        "inbox_pk": f"{case.team}#{case.status}",
        "inbox_time_sk": f"{case.created_at}#{case.case_id}",
        "inbox_priority_sk": f"{case.priority_rank}#{case.created_at}#{case.case_id}",
        # The same order as Case.sort_key("due"): what is due first, cases without a deadline last.
        "inbox_due_sk": f"{case.sla_due_at or NO_DEADLINE}#{case.created_at}#{case.case_id}",
        "expires_at": expires_at,  # None (left out): an active case never expires
    }
    # Sparse indexes: the key attributes exist only while the case belongs in the index (DynamoDB refuses
    # a null key attribute, and every META write is a whole Put, so a case leaves them when it stops).
    if case.waiting_for_agent:
        waiting_key = case.waiting_key  # (due, priority rank, created, id): one digit of rank
        item["waiting_pk"] = case.team
        item["waiting_sk"] = "#".join(str(part) for part in waiting_key)
    if case.sla_next_at:
        item["sla_due_pk"] = _SLA_DUE_PK
        item["sla_next_sk"] = f"{case.sla_next_at}#{case.case_id}"
    if case.assignee:
        item["assignee_pk"] = f"{case.assignee}#{case.status}"
    return item


def _case_from(item: Dict[str, Any]) -> Case:
    return Case.from_dict(_strip(item, *_CASE_INDEX_ATTRIBUTES, "expires_at"))


def case_from_item(item: Dict[str, Any]) -> Optional[Case]:
    """The case an (unmarshalled) item of the cases table holds; None for any other item
    (history, ledger, notifications). The cases table's stream (adapters/streams.py) reads its images so."""
    if item.get("sk") != "META" or not str(item.get("pk", "")).startswith("CASE#"):
        return None
    return _case_from(item)


def _expiring(item: Dict[str, Any], expires_at: Optional[int]) -> Dict[str, Any]:
    return {**item, "expires_at": expires_at} if expires_at is not None else item


_LEDGER_KINDS = {"CASE": "case", "MENTION": "mention"}
_AUDIT_PK = "AUDIT#ERASURE"
_COUNT_PREFIX = "count_"


def _delete_keys(table: str, keys: List[Dict[str, Any]]) -> None:
    """Delete items by key, 25 a request, until DynamoDB has processed every one."""
    for start in range(0, len(keys), 25):
        request: Dict[str, Any] = {table: [{"DeleteRequest": {"Key": marshal(key)}} for key in keys[start:start + 25]]}
        for attempt in range(10):
            request = ddb().batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2 ** attempt, 2.0))  # throttled: back off, then send the rest again
        else:
            raise RuntimeError(f"DynamoDB left {len(request.get(table, []))} deletions unprocessed; try again")


def _audit_view(item: Dict[str, Any]) -> Dict[str, Any]:
    counts = {k[len(_COUNT_PREFIX):]: int(v) for k, v in item.items() if k.startswith(_COUNT_PREFIX)}
    view = {k: v for k, v in _strip(item).items() if not k.startswith(_COUNT_PREFIX)}
    view["counts"] = counts
    return view


def _cancellation_codes(err: Exception) -> List[str]:
    """Per item of a cancelled transaction, why ("ConditionalCheckFailed", "None", ...)."""
    from botocore.exceptions import ClientError

    if not isinstance(err, ClientError) or err.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise err
    reasons = err.response.get("CancellationReasons") or []
    codes = [str(reason.get("Code") or "None") for reason in reasons]
    if not codes:  # some SDKs give the reasons only in the message: "[None, ConditionalCheckFailed]"
        message = err.response.get("Error", {}).get("Message", "")
        inside = message[message.find("[") + 1:message.rfind("]")] if "[" in message else ""
        codes = [code.strip() for code in inside.split(",") if code.strip()]
    return codes


class DynamoCaseStore:
    """Cases, their history and replies; with the settings table for the assignee's load, so that
    a case and the load it puts on an agent change together or not at all."""

    def __init__(self, table: str, settings_table: str = "", retention_days: Optional[int] = None):
        self.table = table
        self.settings_table = settings_table
        self.retention_days = retention_days if retention_days is not None else settings().retention_cases_days

    def _expires(self, case: Case) -> Optional[int]:
        return case_expires_at(case, self.retention_days, now_epoch=time.time())

    def create(self, case: Case) -> bool:
        return put_if_absent(self.table, _case_item(case, self._expires(case)), "pk")

    # ---- changes that must happen together (TransactWriteItems) -------------------------
    def _pointer(self, customer_key: str) -> Dict[str, Any]:
        return {"pk": f"CUSTOMER#{customer_key}", "sk": "ACTIVE"}

    def _event_item(self, case_id: str, at: str, event: Dict[str, Any], event_id: str) -> Dict[str, Any]:
        return {"pk": f"CASE#{case_id}", "sk": f"EVENT#{at}#{event_id}", "type": "event", "at": at, **event}

    def _load_change(self, agent_id: str, delta: int, at: str, *, over_capacity: bool = False) -> Dict[str, Any]:
        names = {"#open": "open_cases"}
        values: Dict[str, Any] = {":delta": delta, ":zero": 0}
        expression = "SET #open = if_not_exists(#open, :zero) + :delta"
        if delta > 0:
            names.update({"#last": "last_assigned_at"})
            expression += ", #last = :at"
            values[":at"] = at
            condition = "attribute_exists(pk)"
            if not over_capacity:
                names["#cap"] = "capacity"
                condition += " AND (attribute_not_exists(#open) OR #open < #cap)"
        else:
            condition = "attribute_exists(pk) AND #open >= :floor"
            values[":floor"] = -delta
        return {"Update": {"TableName": self.settings_table,
                           "Key": marshal({"pk": f"AGENT#{agent_id}", "sk": "PROFILE"}),
                           "UpdateExpression": expression, "ConditionExpression": condition,
                           "ExpressionAttributeNames": names, "ExpressionAttributeValues": marshal_values(values)}}

    def open_case(self, case: Case, *, opened_event: Dict[str, Any]) -> OpenResult:
        attempts = [case.assignee, None] if case.assignee else [None]
        for assignee in attempts:
            candidate = replace(case, assignee=assignee)
            items: List[Dict[str, Any]] = [
                {"Put": {"TableName": self.table, "Item": marshal(_case_item(candidate)),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self.table,
                         "Item": marshal({**self._pointer(case.customer_key), "case_id": case.case_id}),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self.table, "Item": marshal(self._event_item(
                    case.case_id, case.created_at, {**opened_event, "assignee": assignee}, "opened"))}},
                {"Put": {"TableName": self.table, "Item": marshal(self._ledger_case_item(case.customer_key, case.case_id))}},
            ]
            if assignee:
                items.append(self._load_change(assignee, +1, case.created_at))
            try:
                ddb().transact_write_items(TransactItems=items)
                return OpenResult("opened", case.case_id, assignee=assignee)
            except Exception as err:
                codes = _cancellation_codes(err) + ["None"] * len(items)
            if codes[0] == "ConditionalCheckFailed":
                existing = self.get(case.case_id)
                return OpenResult("exists", case.case_id, assignee=existing.assignee if existing else None)
            if codes[1] == "ConditionalCheckFailed":
                return OpenResult("customer_active", case.case_id, active_case_id=self._pointer_case(case.customer_key))
            if not (assignee and codes[4] == "ConditionalCheckFailed"):
                raise RuntimeError(f"opening case {case.case_id} was cancelled: {codes[:len(items)]}")
            # The agent filled up since routing read their load: the case waits in the team queue.
        raise RuntimeError(f"opening case {case.case_id} failed")  # pragma: no cover - the loop returns

    def change_status(self, before: Case, after: Case, *, event: Dict[str, Any]) -> bool:
        saved = replace(after, version=before.version + 1)
        expires_at = self._expires(saved)
        stamped: Set[Tuple[str, str]] = set()
        if expires_at is not None:
            # Stamped before the change commits: a crash after the commit leaves no item of a done case
            # without its expiry (a failed change puts back what the stored case says, below).
            stamped = self._stamp(after.case_id, after.customer_key, expires_at)
        try:
            changed = self._change_status(before, after, saved, expires_at, event)
        except Exception:
            if expires_at is not None:
                self._settle_expiry(after.case_id)
            raise
        if changed and (expires_at is not None or not before.active):
            # Items written while the change was under way (not those stamped a moment ago); for a reopened
            # case, the expiry comes off.
            self._stamp(after.case_id, after.customer_key, expires_at, done=stamped)
        elif expires_at is not None:
            self._settle_expiry(after.case_id)
        return changed

    def _change_status(self, before: Case, after: Case, saved: Case, expires_at: Optional[int],
                       event: Dict[str, Any]) -> bool:
        version_condition = ("attribute_exists(pk) AND (#version = :expected OR attribute_not_exists(#version))"
                             if before.version == 0 else "attribute_exists(pk) AND #version = :expected")
        items: List[Dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": marshal(_case_item(saved, expires_at)),
                     "ConditionExpression": version_condition, "ExpressionAttributeNames": {"#version": "version"},
                     "ExpressionAttributeValues": marshal_values({":expected": before.version})}},
            {"Put": {"TableName": self.table, "Item": marshal(_expiring(self._event_item(
                after.case_id, after.updated_at, event, f"status:{before.version + 1}"), expires_at))}},
        ]
        pointer_index = release_index = load_index = None
        me = marshal_values({":me": after.case_id})
        if after.active and not before.active:
            pointer_index = len(items)
            items.append({"Put": {"TableName": self.table,
                                  "Item": marshal({**self._pointer(after.customer_key), "case_id": after.case_id}),
                                  "ConditionExpression": "attribute_not_exists(pk) OR case_id = :me",
                                  "ExpressionAttributeValues": me}})
        elif before.active and not after.active:
            # Released in the same transaction (a release after the commit could delete the pointer a reopen
            # claimed meanwhile: two active cases). No read first: the condition says whether it names this case.
            release_index = len(items)
            items.append({"Delete": {"TableName": self.table, "Key": marshal(self._pointer(after.customer_key)),
                                     "ConditionExpression": "attribute_not_exists(pk) OR case_id = :me",
                                     "ExpressionAttributeValues": me}})
        if before.assignee and before.active != after.active and self.settings_table:
            load_index = len(items)
            items.append(self._load_change(before.assignee, -1 if before.active else +1, after.updated_at))
        for _attempt in range(3):
            try:
                ddb().transact_write_items(TransactItems=items)
            except Exception as err:
                codes = _cancellation_codes(err) + ["None"] * len(items)
            else:
                after.version = saved.version
                return True
            if codes[0] == "ConditionalCheckFailed":
                return False
            if release_index is not None and codes[release_index] == "ConditionalCheckFailed":
                # The pointer names another case: not this one's to release.
                items.pop(release_index)
                if load_index is not None and load_index > release_index:
                    load_index -= 1
                release_index = None
                continue
            if pointer_index is not None and codes[pointer_index] == "ConditionalCheckFailed":
                other = self._pointer_case(after.customer_key)
                found = self.get(other) if other is not None and other != after.case_id else None
                if other != after.case_id and (found is None or not found.active):
                    if other is not None:
                        self._clear_pointer(after.customer_key, other)  # left behind by a done case
                    continue
                raise Conflict(f"the customer already has an active case ('{other}'); continue there, or resolve it "
                               "before reopening this one")
            if load_index is not None and codes[load_index] == "ConditionalCheckFailed":
                # The agent's count could not move (at capacity, or already 0): the status still changes.
                items.pop(load_index)
                load_index = None
                continue
            raise RuntimeError(f"status change of case {after.case_id} was cancelled: {codes[:len(items)]}")
        return False

    def add_follow_up(self, after: Case, mention: Mention, *, at: str, event: Dict[str, Any]) -> str:
        saved = replace(after, version=after.version + 1)
        version_condition = ("(#version = :expected OR attribute_not_exists(#version))"
                             if after.version == 0 else "#version = :expected")
        items = [
            {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(sk)",
                     "Item": marshal({"pk": f"CASE#{after.case_id}", "sk": f"MENTION#{mention.created_at or at}#{mention.id}",
                                      "type": "mention", **mention.to_dict()})}},
            {"Put": {"TableName": self.table, "Item": marshal(_case_item(saved)),
                     "ConditionExpression": "attribute_exists(pk) AND " + version_condition,
                     "ExpressionAttributeNames": {"#version": "version"},
                     "ExpressionAttributeValues": marshal_values({":expected": after.version})}},
            {"Put": {"TableName": self.table, "Item": marshal(self._event_item(
                after.case_id, at, event, f"follow_up:{mention.id}"))}},
        ]
        try:
            ddb().transact_write_items(TransactItems=items)
        except Exception as err:
            codes = _cancellation_codes(err) + ["None"] * 3
            if codes[0] == "ConditionalCheckFailed":
                return "duplicate"
            if codes[1] == "ConditionalCheckFailed":
                return "stale"
            raise
        after.version = saved.version
        return "added"

    # ---- retention: every item of a case carries the case's expiry ---------------------------
    def _expiry_of(self, case_id: str) -> Optional[int]:
        """The expiry the case's items carry now: None while it is active (or when there is no such case)."""
        return self._case_expiry(case_id)[1]

    def _case_expiry(self, case_id: str) -> Tuple[bool, Optional[int]]:
        """(whether the case exists, the expiry its items carry)."""
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"CASE#{case_id}", "sk": "META"}),
                              ProjectionExpression="pk, expires_at", ConsistentRead=True).get("Item")
        return bool(item), (int(unmarshal(item)["expires_at"]) if item and "expires_at" in item else None)

    def _settle_expiry(self, case_id: str) -> None:
        """Give every item the expiry the stored case has (after a status change that did not happen)."""
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"CASE#{case_id}", "sk": "META"}),
                              ConsistentRead=True).get("Item")
        if item:
            data = unmarshal(item)
            self._stamp(case_id, data["customer_key"], data.get("expires_at"))

    def _stamp(self, case_id: str, customer_key: str, expires_at: Optional[int],
               done: Optional[Set[Tuple[str, str]]] = None) -> Set[Tuple[str, str]]:
        """Set (or, for None, remove) ``expires_at`` on every item of the case but META, on the receipts
        of its sent replies and on its ledger entry. Items deleted meanwhile are not brought back.
        Each write is billed: items already carrying it are skipped (the case's own, as the query reads
        them; the receipts and the ledger entry named in ``done``). Returns the latter, as stamped."""
        outside: List[Dict[str, Any]] = [{"pk": f"CUSTOMER#{customer_key}", "sk": f"CASE#{case_id}"}]
        for item in query_all(TableName=self.table, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                              ProjectionExpression="pk, sk, expires_at, platform_post_id, #target",
                              ExpressionAttributeNames={"#target": "target"},
                              ExpressionAttributeValues=marshal_values({":pk": f"CASE#{case_id}"})):
            if item["sk"].startswith("REPLY#") and item.get("platform_post_id"):
                platform = (item.get("target") or {}).get("platform", "")
                outside.append({"pk": f"POSTED#{platform}:{item['platform_post_id']}", "sk": "REPLY"})
            if item["sk"] != "META" and item.get("expires_at") != expires_at:
                self._set_expiry({"pk": item["pk"], "sk": item["sk"]}, expires_at)
        stamped = set(done or ())
        for key in outside:
            if (key["pk"], key["sk"]) not in stamped:
                self._set_expiry(key, expires_at)
                stamped.add((key["pk"], key["sk"]))
        return stamped

    def _set_expiry(self, key: Dict[str, Any], expires_at: Optional[int]) -> None:
        kwargs: Dict[str, Any] = {"UpdateExpression": "REMOVE expires_at"}
        if expires_at is not None:
            kwargs = {"UpdateExpression": "SET expires_at = :e",
                      "ExpressionAttributeValues": marshal_values({":e": expires_at})}
        try:
            ddb().update_item(TableName=self.table, Key=marshal(key), ConditionExpression="attribute_exists(pk)",
                              **kwargs)
        except Exception as err:
            if not is_conditional_failure(err):
                raise

    def _pointer_case(self, customer_key: str) -> Optional[str]:
        item = ddb().get_item(TableName=self.table, Key=marshal(self._pointer(customer_key)),
                              ConsistentRead=True).get("Item")
        return unmarshal(item)["case_id"] if item else None

    def get(self, case_id: str) -> Optional[Case]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"CASE#{case_id}", "sk": "META"}),
                              ConsistentRead=True).get("Item")
        return _case_from(unmarshal(item)) if item else None

    def save(self, case: Case) -> bool:
        expected = case.version
        saved = Case.from_dict({**case.to_dict(), "version": expected + 1})
        condition = "attribute_exists(pk) AND "
        condition += "(#version = :expected OR attribute_not_exists(#version))" if expected == 0 else "#version = :expected"
        if put_if(self.table, _case_item(saved, self._expires(saved)), condition, {"#version": "version"},
                  {":expected": expected}):
            case.version = expected + 1
            return True
        return False

    def history(self, case_id: str, *, limit: int = 50, after: Optional[str] = None) -> Optional[CaseHistory]:
        start_key = None
        if after:
            state = decode_cursor(after)
            sk = state.get("sk")
            if not isinstance(sk, str) or len(sk) > 1100 or sk.split("#", 1)[0] not in _HISTORY_KINDS:
                raise InvalidCursor("query 'cursor' is not one this API issued for this case; start again without it")
            start_key = marshal({"pk": f"CASE#{case_id}", "sk": sk})
        # META sorts among the history (EVENT# < META < MENTION#), and a Query bills what it reads before any
        # filter: the page takes the case from its own (consistent) read when META is in it, as it is on the
        # first page of most cases, instead of a GetItem more. One item past the page says whether more follow.
        found, last = query_page(
            limit + 1, start_key, TableName=self.table, KeyConditionExpression="pk = :pk", ConsistentRead=True,
            ExpressionAttributeValues=marshal_values({":pk": f"CASE#{case_id}"}),
        )
        meta_item = next((item for item in found if item["sk"] == "META"), None)
        if meta_item is None:
            meta = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"CASE#{case_id}", "sk": "META"}),
                                  ConsistentRead=True).get("Item")
            meta_item = unmarshal(meta) if meta else None
        if meta_item is None:
            return None
        case = _case_from(meta_item)
        items = [item for item in found if item["sk"] != "META"]
        more = last is not None or len(items) > limit
        items = items[:limit]
        history = CaseHistory(case=case, expires_at=meta_item.get("expires_at"))
        for item in items:
            kind = item["sk"].split("#", 1)[0]
            if kind == "MENTION":
                history.mentions.append(Mention.from_dict(_strip(item, "id", "expires_at")))
            elif kind == "EVENT":
                history.events.append(_strip(item, "expires_at"))
            elif kind == "REPLY":
                history.replies.append(Reply.from_dict(_strip(item, "expires_at")))
        history.replies.sort(key=lambda reply: reply.created_at)
        if more and items:
            history.next_position = encode_cursor({"sk": items[-1]["sk"]})
        return history

    def add_mention(self, case_id: str, mention: Mention, *, at: str) -> bool:
        # The key holds the post's own time and id, so a re-delivery lands on the same item.
        item = {"pk": f"CASE#{case_id}", "sk": f"MENTION#{at}#{mention.id}", "type": "mention", **mention.to_dict()}
        return put_if_absent(self.table, _expiring(item, self._expiry_of(case_id)), "sk")

    def add_event(self, case_id: str, event: Dict[str, Any], *, at: str) -> None:
        sk = f"EVENT#{at}#{next(_event_counter):06d}"
        item = {"pk": f"CASE#{case_id}", "sk": sk, "type": "event", "at": at, **event}
        ddb().put_item(TableName=self.table, Item=marshal(_expiring(item, self._expiry_of(case_id))))

    def put_reply(self, reply: Reply) -> bool:
        item = {"pk": f"CASE#{reply.case_id}", "sk": f"REPLY#{reply.reply_id}", "type": "reply", **reply.to_dict()}
        return put_if_absent(self.table, _expiring(item, self._expiry_of(reply.case_id)), "sk")

    def get_reply(self, case_id: str, reply_id: str) -> Optional[Reply]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"CASE#{case_id}", "sk": f"REPLY#{reply_id}"}),
                              ConsistentRead=True).get("Item")
        return Reply.from_dict(_strip(unmarshal(item), "expires_at")) if item else None

    def update_reply(self, case_id: str, reply_id: str, fields: Dict[str, Any], *, expect_status: Iterable[str]) -> bool:
        """Conditional on the current delivery status: how a reply is never sent twice."""
        allowed = list(expect_status)
        values = {f":expected{i}": status for i, status in enumerate(allowed)}
        return update_if(self.table, {"pk": f"CASE#{case_id}", "sk": f"REPLY#{reply_id}"}, fields,
                         f"#delivery IN ({', '.join(values)})", {"#delivery": "delivery_status"}, values)

    def record_delivery(self, platform: str, post_id: str, case_id: str, reply_id: str) -> None:
        """Remember which reply a platform message id belongs to, for receipts that arrive later
        (not for a case erased meanwhile: nothing would ever delete the receipt)."""
        exists, expires_at = self._case_expiry(case_id)
        if exists:
            ddb().put_item(TableName=self.table, Item=marshal(_expiring({
                "pk": f"POSTED#{platform}:{post_id}", "sk": "REPLY", "case_id": case_id, "reply_id": reply_id},
                expires_at)))

    def find_delivery(self, platform: str, post_id: str) -> Optional[Tuple[str, str]]:
        item = ddb().get_item(TableName=self.table,
                              Key=marshal({"pk": f"POSTED#{platform}:{post_id}", "sk": "REPLY"})).get("Item")
        if not item:
            return None
        known = unmarshal(item)
        return known["case_id"], known["reply_id"]

    def active_case_for_customer(self, customer_key: str) -> Optional[str]:
        """The customer's one active case: a consistent read of their pointer, checked against the case."""
        case_id = self._pointer_case(customer_key)
        if case_id is None:
            return None
        case = self.get(case_id)
        if case is not None and case.active:
            return case_id
        # A pointer left behind (the case is gone or done): clear it, so the next post opens a case.
        self._clear_pointer(customer_key, case_id)
        return None

    def inbox_page(self, team: str, status: str, order: str, limit: int, after: Optional[str], *,
                   sla: Optional[str] = None, now: Optional[str] = None,
                   where: Optional[InboxFilter] = None) -> InboxPage:
        index, sort_attribute, forward, whole = _INBOX_INDEX[order]
        inbox_pk = f"{team}#{status}"
        start_key = self._start_key(after, {"inbox_pk": inbox_pk}, sort_attribute, "inbox") if after else None
        query: Dict[str, Any] = {"TableName": self.table, "IndexName": index, "ScanIndexForward": forward}
        condition = "inbox_pk = :p"
        names: Dict[str, str] = {}
        values: Dict[str, Any] = {":p": inbox_pk}
        filters: List[str] = []
        if sla is not None:
            if sla not in SLA_FILTERS:
                raise ValueError(f"unknown sla filter {sla!r}")
            moment = now or ""
            if order == "due":
                # On the due index the deadline leads the sort key: breached is a range of it, warning the
                # rest of it narrowed by a filter on the projected warning moment.
                names["#s"] = sort_attribute
                values[":bound"] = moment + _AFTER_TIME
                condition += " AND #s < :bound" if sla == "breached" else " AND #s > :bound"
                if sla == "warning":
                    names["#warn"], values[":now"] = "sla_warning_at", moment
                    filters.append("#warn <= :now")
            # On inbox-time and inbox-priority the SLA moments are not projected: the cases read from the
            # table are checked (belongs). order=due is the cheap way to list by SLA.
        if where is not None and order == "priority" and where.priority is not None:
            names["#s"] = sort_attribute  # the rank leads this index's sort key: a range, not a filter
            values[":rank"] = f"{PRIORITY_RANK[where.priority]}#"
            condition += " AND begins_with(#s, :rank)"
        if where is not None and order != "due":
            filters += _filter_conditions(where, names, values)
        query.update(KeyConditionExpression=condition, ExpressionAttributeValues=marshal_values(values))
        if names:
            query["ExpressionAttributeNames"] = names
        if filters:
            query["FilterExpression"] = " AND ".join(filters)

        def belongs(case: Case) -> bool:  # read from the table: the index may be behind it
            return (case.team == team and case.status == status
                    and (sla is None or case.sla_state_at(now or "") == sla)
                    and (where is None or where.matches(case)))

        found, more = self._index_page(query, limit, start_key, sort_attribute, whole=whole,
                                       keep=None if whole else belongs)
        return InboxPage(cases=[case for case, _ in found],
                         positions=[encode_cursor({"c": case.case_id, "s": s}) for case, s in found], more=more)

    def assignee_page(self, agent_id: str, status: str, order: str, limit: int, after: Optional[str], *,
                      teams: Iterable[str], sla: Optional[str] = None, now: Optional[str] = None,
                      where: Optional[InboxFilter] = None) -> Optional[InboxPage]:
        hash_value = f"{agent_id}#{status}"
        allowed = set(teams)
        sort_attribute = _ASSIGNEE_SORT[order]

        def belongs(case: Case) -> bool:  # read from the table: the index may be behind it
            return (case.assignee == agent_id and case.status == status and case.team in allowed
                    and (sla is None or case.sla_state_at(now or "") == sla)
                    and (where is None or where.matches(case)))

        names: Dict[str, str] = {}
        values: Dict[str, Any] = {":a": hash_value}
        filters = _filter_conditions(replace(where, assignee=None), names, values) if where is not None else []
        if 0 < len(allowed) <= 100:
            names["#team"] = "team"
            team_values = {f":team{i}": team for i, team in enumerate(sorted(allowed))}
            values.update(team_values)
            filters.append(f"#team IN ({', '.join(team_values)})")
        query: Dict[str, Any] = {"TableName": self.table, "IndexName": _ASSIGNEE_INDEX,
                                 "KeyConditionExpression": "assignee_pk = :a",
                                 "ExpressionAttributeValues": marshal_values(values)}
        if names:
            query["ExpressionAttributeNames"] = names
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
        if order == "newest":
            start_key = (self._start_key(after, {"assignee_pk": hash_value}, sort_attribute, "inbox")
                         if after else None)
            found, more = self._index_page({**query, "ScanIndexForward": False}, limit, start_key, sort_attribute,
                                           whole=False, keep=belongs)
        else:
            after_value = None
            if after:
                start = unmarshal(self._start_key(after, {}, sort_attribute, "inbox"))
                after_value = start[sort_attribute]
            entries: List[Dict[str, Any]] = []
            for item in query_all(**query):
                entries.append(item)
                if len(entries) > MAX_SORTED_ASSIGNED:
                    return None
            entries.sort(key=lambda entry: entry[sort_attribute])
            if after_value is not None:
                entries = [entry for entry in entries if entry[sort_attribute] > after_value]
            found = []
            while entries and len(found) <= limit:
                chunk, entries = entries[:limit + 1 - len(found)], entries[limit + 1 - len(found):]
                cases = self._cases([entry["pk"][len("CASE#"):] for entry in chunk], consistent=False)
                for entry in chunk:
                    case = cases.get(entry["pk"][len("CASE#"):])
                    if case is not None and belongs(case):
                        found.append((case, entry[sort_attribute]))
            more = len(found) > limit
            found = found[:limit]
        return InboxPage(cases=[case for case, _ in found],
                         positions=[encode_cursor({"c": case.case_id, "s": s}) for case, s in found], more=more)

    def waiting_page(self, team: str, limit: int, after: Optional[str]) -> InboxPage:
        start_key = self._start_key(after, {"waiting_pk": team}, "waiting_sk", "queue") if after else None
        query = {"TableName": self.table, "IndexName": _WAITING_INDEX, "ScanIndexForward": True,
                 "KeyConditionExpression": "waiting_pk = :t", "ExpressionAttributeValues": marshal_values({":t": team})}
        # KEYS_ONLY: the index says which cases and in what order; the cases come from the table, checked
        # again, because the index lags the table (an assigned case can still be listed for a moment).
        found, more = self._index_page(query, limit, start_key, "waiting_sk", whole=False,
                                       keep=lambda case: case.team == team and case.waiting_for_agent)
        return InboxPage(cases=[case for case, _ in found],
                         positions=[encode_cursor({"c": case.case_id, "s": s}) for case, s in found], more=more)

    def due_for_check(self, now: str, limit: int, after: Optional[str] = None) -> CasePage:
        start_key = self._start_key(after, {"sla_due_pk": _SLA_DUE_PK}, "sla_next_sk", "due listing") if after else None
        query = {"TableName": self.table, "IndexName": _SLA_DUE_INDEX, "ScanIndexForward": True,
                 "KeyConditionExpression": "sla_due_pk = :p AND sla_next_sk < :bound",
                 "ExpressionAttributeValues": marshal_values({":p": _SLA_DUE_PK, ":bound": now + _AFTER_TIME})}
        items, more = self._index_entries(query, limit, start_key)
        case_ids = [item["pk"][len("CASE#"):] for item in items]
        return CasePage(case_ids=case_ids, more=more,
                        positions=[encode_cursor({"c": c, "s": item["sla_next_sk"]}) for c, item in zip(case_ids, items)])

    # ---- paging over indexes ---------------------------------------------------------------
    def _index_entries(self, query: Dict[str, Any], limit: int,
                       start_key: Optional[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], bool]:
        """Up to ``limit`` index entries and whether more follow (one entry past the page is read to know:
        a page with more to come is always full, and no listing ends with an empty page)."""
        entries, last = query_page(limit + 1, start_key, **query)
        return entries[:limit], len(entries) > limit

    def _index_page(self, query: Dict[str, Any], limit: int, start_key: Optional[Dict[str, Any]],
                    sort_attribute: str, *, whole: bool,
                    keep: Optional[Callable[[Case], bool]] = None) -> Tuple[List[Tuple[Case, str]], bool]:
        """Up to ``limit`` (case, index sort value) in index order, and whether more follow.

        ``whole``: the index projects whole cases (read them from it); otherwise the cases are fetched
        from the table in index order, eventually consistent, and ``keep`` checks each against the listing
        (the index lags the table). Reads on until the page is full or the index ends, and confirms one more
        case past the page before it says that more follow.
        """
        found: List[Tuple[Case, str]] = []
        pending: List[Dict[str, Any]] = []
        if start_key:
            query["ExclusiveStartKey"] = start_key
        ended = False
        while len(found) <= limit:
            wanted = limit + 1 - len(found)
            if not pending:
                if ended:
                    break
                # Whole cases are billed by size: read what the page needs. Entries of a keys-only index
                # are tiny: read a few more, fewer round trips when the table drops some of them, and
                # many more under a filter (Limit counts the entries read, before the filter drops any).
                query["Limit"] = (wanted if whole and "FilterExpression" not in query
                                  else max(wanted, 200 if "FilterExpression" in query else 25))
                answer = ddb().query(**query)
                pending = [unmarshal(item) for item in answer.get("Items", [])]
                last = answer.get("LastEvaluatedKey")
                ended = last is None
                if last is not None:
                    query["ExclusiveStartKey"] = last
                continue
            chunk, pending = pending[:wanted], pending[wanted:]
            if whole:
                rows = [(_case_from(item), item[sort_attribute]) for item in chunk]
            else:
                cases = self._cases([item["pk"][len("CASE#"):] for item in chunk], consistent=False)
                rows = [(cases[item["pk"][len("CASE#"):]], item[sort_attribute]) for item in chunk
                        if item["pk"][len("CASE#"):] in cases]
            found.extend(row for row in rows if keep is None or keep(row[0]))
        return found[:limit], len(found) > limit

    def _cases(self, case_ids: List[str], *, consistent: bool = True) -> Dict[str, Case]:
        """The cases with these ids that exist (BatchGetItem, 100 keys a request).

        The listings (inbox, an agent's own cases, the waiting queue) read them eventually consistent: half
        the units of the largest read of the case lifecycle (a page reads up to 26 cases). They list from an
        index that lags the table anyway and check each case again (``keep``); what an agent then opens
        (``get``, ``history``) and every change (a version condition) read or check the case consistently,
        so a case a second out of date in a list is never acted on as it was."""
        found: Dict[str, Case] = {}
        keys = [marshal({"pk": f"CASE#{case_id}", "sk": "META"}) for case_id in dict.fromkeys(case_ids)]
        for start in range(0, len(keys), 100):
            request: Dict[str, Any] = {self.table: {"Keys": keys[start:start + 100], "ConsistentRead": consistent}}
            for attempt in range(10):
                answer = ddb().batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    case = _case_from(unmarshal(item))
                    found[case.case_id] = case
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))  # throttled: back off, then ask for the rest
            else:
                raise RuntimeError("DynamoDB left cases unread after 10 attempts; try again")
        return found

    @staticmethod
    def _start_key(position: str, hash_key: Dict[str, str], sort_attribute: str, what: str) -> Dict[str, Any]:
        """The index key a position token stands for; refuses one issued for another listing."""
        state = decode_cursor(position)
        case_id, sort_value = state.get("c"), state.get("s")
        if (not isinstance(case_id, str) or not isinstance(sort_value, str) or not 0 < len(case_id) <= 64
                or not sort_value.endswith("#" + case_id) or len(sort_value) > 200):
            raise InvalidCursor(f"query 'cursor' is not one this API issued for this {what}; start again without it")
        return marshal({"pk": f"CASE#{case_id}", "sk": "META", **hash_key, sort_attribute: sort_value})

    # ---- assignment --------------------------------------------------------------------------
    def assign(self, before: Case, after: Case, *, event: Dict[str, Any], over_capacity: bool = False) -> str:
        saved = replace(after, version=before.version + 1)
        expires_at = self._expires(saved)
        version_condition = ("attribute_exists(pk) AND (#version = :expected OR attribute_not_exists(#version))"
                             if before.version == 0 else "attribute_exists(pk) AND #version = :expected")
        items: List[Dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": marshal(_case_item(saved, expires_at)),
                     "ConditionExpression": version_condition, "ExpressionAttributeNames": {"#version": "version"},
                     "ExpressionAttributeValues": marshal_values({":expected": before.version})}},
            {"Put": {"TableName": self.table, "Item": marshal(_expiring(self._event_item(
                after.case_id, after.updated_at, event, f"assign:{before.version + 1}"), expires_at))}},
        ]
        taking = releasing = None
        moving = before.active and before.assignee != after.assignee and bool(self.settings_table)
        if moving and after.assignee:
            taking = len(items)
            items.append(self._load_change(after.assignee, +1, after.updated_at, over_capacity=over_capacity))
        if moving and before.assignee:
            releasing = len(items)
            items.append(self._load_change(before.assignee, -1, after.updated_at))
        for _attempt in range(2):
            try:
                ddb().transact_write_items(TransactItems=items)
                after.version = saved.version
                return "assigned"
            except Exception as err:
                codes = _cancellation_codes(err) + ["None"] * len(items)
            if codes[0] == "ConditionalCheckFailed":
                return "stale"
            if taking is not None and codes[taking] == "ConditionalCheckFailed":
                return "full"  # at capacity (or no such agent)
            if releasing is not None and codes[releasing] == "ConditionalCheckFailed":
                # The previous assignee's count is 0 already (it drifted): the case still moves.
                items.pop(releasing)
                releasing = None
                continue
            if "TransactionConflict" in codes:
                return "stale"  # another write to the case or a load was under way: read again and retry
            raise RuntimeError(f"assigning case {after.case_id} was cancelled: {codes[:len(items)]}")
        return "stale"  # pragma: no cover - the loop returns

    # ---- away messages -----------------------------------------------------------------------
    def claim_away_message(self, customer_key: str, *, case_id: str, at: str, not_since: str) -> bool:
        """One conditional Put on the customer's AWAY item: two posts at once make one message; the same case
        may claim again (its reply was not stored yet). The item expires a day after the period it guards
        (``at - not_since``), when it can no longer refuse anything: it names the customer, so it is kept
        no longer than it is needed, and an erasure deletes it (``forget_away_message``)."""
        period = max(0.0, (parse_iso(at) - parse_iso(not_since)).total_seconds())
        expires_at = int(parse_iso(at).timestamp() + period) + 86_400
        return put_if(self.table, {"pk": f"CUSTOMER#{customer_key}", "sk": "AWAY", "last_at": at, "case_id": case_id,
                                   "expires_at": expires_at},
                      "attribute_not_exists(pk) OR #last < :not_since OR #case = :case",
                      {"#last": "last_at", "#case": "case_id"}, {":not_since": not_since, ":case": case_id})

    def forget_away_message(self, customer_key: str) -> None:
        # The customer's other small record keyed by their identity, the survey awaiting an answer, goes too:
        # an erasure calls this one (services/privacy.py), and both name the customer.
        _delete_keys(self.table, [{"pk": f"CUSTOMER#{customer_key}", "sk": "AWAY"},
                                  {"pk": f"CUSTOMER#{customer_key}", "sk": _SURVEY}])

    # ---- CSAT surveys awaiting an answer -----------------------------------------------------
    def await_survey_answer(self, customer_key: str, case_id: str, *, until: str) -> None:
        """One item per customer (the latest survey asked wins); it expires a day after ``until``, so it is
        kept no longer than it can matter (DynamoDB's TTL is late by up to days: reads check ``until``)."""
        ddb().put_item(TableName=self.table, Item=marshal({
            "pk": f"CUSTOMER#{customer_key}", "sk": _SURVEY, "case_id": case_id, "until": until,
            "expires_at": int(parse_iso(until).timestamp()) + 86_400}))

    def survey_awaiting(self, customer_key: str, *, now: str) -> Optional[str]:
        # Read for every mention triaged: eventually consistent, half the price. A survey is asked minutes
        # before any answer; an answer taken a second ago is refused again by the case itself (csat.py).
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"CUSTOMER#{customer_key}", "sk": _SURVEY}),
                              ConsistentRead=False).get("Item")
        if not item:
            return None
        data = unmarshal(item)
        return str(data["case_id"]) if now < str(data.get("until", "")) else None

    def stop_awaiting_survey(self, customer_key: str, case_id: str) -> None:
        # Only that case's survey: one asked for a later case meanwhile keeps waiting.
        try:
            ddb().delete_item(TableName=self.table, Key=marshal({"pk": f"CUSTOMER#{customer_key}", "sk": _SURVEY}),
                              ConditionExpression="#case = :case", ExpressionAttributeNames={"#case": "case_id"},
                              ExpressionAttributeValues=marshal_values({":case": case_id}))
        except Exception as err:
            if not is_conditional_failure(err):
                raise

    # ---- the customer's ledger ------------------------------------------------------------
    @staticmethod
    def _ledger_case_item(customer_key: str, case_id: str) -> Dict[str, Any]:
        return {"pk": f"CUSTOMER#{customer_key}", "sk": f"CASE#{case_id}", "case_id": case_id}

    def note_customer_mention(self, customer_key: str, mention_id: str, *, expires_at: int) -> None:
        ddb().put_item(TableName=self.table, Item=marshal({
            "pk": f"CUSTOMER#{customer_key}", "sk": f"MENTION#{mention_id}", "mention_id": mention_id,
            "expires_at": expires_at}))

    def note_customer_case(self, customer_key: str, case_id: str) -> None:
        item = _expiring(self._ledger_case_item(customer_key, case_id), self._expiry_of(case_id))
        ddb().put_item(TableName=self.table, Item=marshal(item))

    def customer_ledger(self, customer_key: str, *, limit: int, after: Optional[str] = None) -> LedgerPage:
        pk = f"CUSTOMER#{customer_key}"
        start_key = None
        if after:
            sk = decode_cursor(after).get("sk")
            if not isinstance(sk, str) or len(sk) > 300 or sk.split("#", 1)[0] not in _LEDGER_KINDS:
                raise InvalidCursor("query 'cursor' is not one this API issued for this customer; start again without it")
            start_key = marshal({"pk": pk, "sk": sk})
        # Between "CASE#" and "MENTION$": the cases and mentions, not the ACTIVE pointer.
        items, last = query_page(
            limit, start_key, TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues=marshal_values({":pk": pk, ":first": "CASE#", ":last": "MENTION$"}),
        )
        entries = []
        for item in items:
            kind, _, entry_id = item["sk"].partition("#")
            entries.append(LedgerEntry(kind=_LEDGER_KINDS[kind], id=entry_id))
        positions = [encode_cursor({"sk": item["sk"]}) for item in items]
        return LedgerPage(entries=entries, positions=positions, more=last is not None)

    def forget_customer_entry(self, customer_key: str, entry: LedgerEntry) -> None:
        prefix = "CASE" if entry.kind == "case" else "MENTION"
        ddb().delete_item(TableName=self.table, Key=marshal({"pk": f"CUSTOMER#{customer_key}",
                                                             "sk": f"{prefix}#{entry.id}"}))

    def case_mention_ids(self, case_id: str) -> List[str]:
        items = query_all(TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :m)",
                          ConsistentRead=True, ProjectionExpression="sk, #id", ExpressionAttributeNames={"#id": "id"},
                          ExpressionAttributeValues=marshal_values({":pk": f"CASE#{case_id}", ":m": "MENTION#"}))
        return [item.get("id") or item["sk"].split("#", 2)[2] for item in items]

    # ---- erasure --------------------------------------------------------------------------
    def erase_case(self, case_id: str) -> ErasedCase:
        erased = ErasedCase(case_id=case_id)
        meta_key = {"pk": f"CASE#{case_id}", "sk": "META"}
        customer_key: Optional[str] = None
        release_load = True
        for _attempt in range(5):
            item = ddb().get_item(TableName=self.table, Key=marshal(meta_key), ConsistentRead=True).get("Item")
            if not item:
                break
            case = _case_from(unmarshal(item))
            customer_key = case.customer_key
            version = ("attribute_exists(pk) AND (#version = :v OR attribute_not_exists(#version))"
                       if case.version == 0 else "attribute_exists(pk) AND #version = :v")
            items: List[Dict[str, Any]] = [{"Delete": {
                "TableName": self.table, "Key": marshal(meta_key), "ConditionExpression": version,
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": marshal_values({":v": case.version})}}]
            releasing = bool(release_load and case.active and case.assignee and self.settings_table)
            if releasing and case.assignee:
                items.append(self._load_change(case.assignee, -1, case.updated_at))
            try:
                ddb().transact_write_items(TransactItems=items)
            except Exception as err:
                codes = _cancellation_codes(err) + ["None"] * len(items)
                if codes[0] == "ConditionalCheckFailed":
                    continue  # the case changed meanwhile: read it again
                if releasing and codes[1] == "ConditionalCheckFailed":
                    release_load = False  # the agent's count is 0 already (or the agent is gone)
                    continue
                raise
            erased.case_removed = True
            erased.released_agent = case.assignee if releasing else None
            break
        else:
            raise RuntimeError(f"case {case_id} kept changing while it was being erased; try again")
        if customer_key:
            self._clear_pointer(customer_key, case_id)
        rest = list(query_all(TableName=self.table, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                              ExpressionAttributeValues=marshal_values({":pk": f"CASE#{case_id}"})))
        for item in rest:  # the receipts first: they are found through the replies
            if item["sk"].startswith("REPLY#") and item.get("platform_post_id"):
                platform = (item.get("target") or {}).get("platform", "")
                answer = ddb().delete_item(TableName=self.table, ReturnValues="ALL_OLD", Key=marshal(
                    {"pk": f"POSTED#{platform}:{item['platform_post_id']}", "sk": "REPLY"}))
                erased.deliveries += 1 if answer.get("Attributes") else 0
        _delete_keys(self.table, [{"pk": item["pk"], "sk": item["sk"]} for item in rest])
        erased.items = len(rest) + (1 if erased.case_removed else 0)
        return erased

    def _clear_pointer(self, customer_key: str, case_id: str) -> None:
        try:
            ddb().delete_item(TableName=self.table, Key=marshal(self._pointer(customer_key)),
                              ConditionExpression="case_id = :me", ExpressionAttributeValues=marshal_values({":me": case_id}))
        except Exception as err:
            if not is_conditional_failure(err):
                raise

    def start_erasure(self, record: Dict[str, Any]) -> Dict[str, Any]:
        erasure_id = record["erasure_id"]
        item = {**{k: v for k, v in record.items() if k != "counts"}, "pk": _AUDIT_PK, "sk": f"PENDING#{erasure_id}"}
        if put_if_absent(self.table, item, "pk"):
            return _audit_view(item)
        return self.pending_erasure(erasure_id) or _audit_view(item)

    def pending_erasure(self, erasure_id: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": _AUDIT_PK, "sk": f"PENDING#{erasure_id}"}),
                              ConsistentRead=True).get("Item")
        return _audit_view(unmarshal(item)) if item else None

    def add_erasure_counts(self, erasure_id: str, counts: Mapping[str, int]) -> None:
        counts = {name: int(n) for name, n in counts.items() if n}
        if not counts:
            return
        names = {f"#c{i}": _COUNT_PREFIX + name for i, name in enumerate(counts)}
        values = {f":c{i}": n for i, n in enumerate(counts.values())}
        try:
            ddb().update_item(TableName=self.table, Key=marshal({"pk": _AUDIT_PK, "sk": f"PENDING#{erasure_id}"}),
                              UpdateExpression="ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counts))),
                              ConditionExpression="attribute_exists(pk)", ExpressionAttributeNames=names,
                              ExpressionAttributeValues=marshal_values(values))
        except Exception as err:
            if not is_conditional_failure(err):
                raise

    def finish_erasure(self, erasure_id: str, *, finished_at: str) -> Optional[Dict[str, Any]]:
        pending_key = {"pk": _AUDIT_PK, "sk": f"PENDING#{erasure_id}"}
        item = ddb().get_item(TableName=self.table, Key=marshal(pending_key), ConsistentRead=True).get("Item")
        if not item:
            return None
        done = {**unmarshal(item), "sk": f"ERASED#{erasure_id}#{finished_at}", "finished_at": finished_at}
        try:
            ddb().transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table, "Item": marshal(done), "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Delete": {"TableName": self.table, "Key": marshal(pending_key), "ConditionExpression": "attribute_exists(pk)"}},
            ])
        except Exception as err:
            if "ConditionalCheckFailed" in _cancellation_codes(err):  # another request finished it first
                return None
            raise
        return _audit_view(done)

    def erasures(self, erasure_id: str) -> List[Dict[str, Any]]:
        items = query_all(TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :id)",
                          ConsistentRead=True,
                          ExpressionAttributeValues=marshal_values({":pk": _AUDIT_PK, ":id": f"ERASED#{erasure_id}#"}))
        return [_audit_view(item) for item in items]


_MENTION_DEFAULTS = {k: v for k, v in _defaults(Mention).items() if k != "raw"}
_AUTHOR_DEFAULTS = _defaults(Author)
# The fields Mention.to_dict always shows (it leaves out some, such as reply_payload, when they are empty).
_MENTION_ALWAYS = frozenset(Mention(platform="x", kind="dm", platform_id="1", author=Author(id="1"), text="",
                                    created_at="").to_dict())


def stored_mention(mention: Mention) -> Dict[str, Any]:
    """The post as a mention record holds it: without ``id`` (the record's key) and the fields that hold
    their default (no permalink, not verified...). Every write of the record is billed by its size, and
    most are just under or over 1 KB. ``full_mention`` (and ``Mention.from_dict``) read it back whole."""
    data = mention.to_dict()
    data.pop("id", None)
    compact = {k: v for k, v in data.items()
               if k == "author" or k not in _MENTION_DEFAULTS or not _is_default(v, _MENTION_DEFAULTS[k])}
    compact["author"] = {k: v for k, v in data["author"].items()
                         if k == "id" or k not in _AUTHOR_DEFAULTS or not _is_default(v, _AUTHOR_DEFAULTS[k])}
    return compact


def full_mention(stored: Mapping[str, Any], mention_id: str) -> Dict[str, Any]:
    """A mention record's post in the shape of ``Mention.to_dict`` (records written before
    ``stored_mention`` are whole already)."""
    if not stored:
        return {}
    data = {k: v for k, v in _MENTION_DEFAULTS.items() if k in _MENTION_ALWAYS}
    data.update(stored)
    data["author"] = {**_AUTHOR_DEFAULTS, **(stored.get("author") or {})}
    data["id"] = mention_id
    return data


class DynamoMentionStore:
    """Dedupe by platform id: the first writer of a mention id owns it."""

    def __init__(self, table: str, retention_days: Optional[int] = None):
        self.table = table
        self.retention_days = retention_days if retention_days is not None else settings().retention_mentions_days

    def claim(self, mention: Mention, *, now_epoch: int,
              settled: Optional[Dict[str, Any]] = None) -> Optional[MentionRecord]:
        item = {
            "mention_id": mention.id, "state": "received", "mention": stored_mention(mention),
            "received_at_epoch": now_epoch, "expires_at": mention_expires_at(now_epoch, self.retention_days),
        }
        if settled:  # settled in the write that claims it: one write instead of a claim and an update
            item.update(self._fields(mention.id, **settled))
        if put_if_absent(self.table, item, "mention_id"):
            return None
        return self.get(mention.id)

    def update(self, mention_id: str, *, state: str, triage: Optional[Dict[str, Any]] = None,
               case_id: Optional[str] = None, review_at: Optional[str] = None) -> None:
        fields = self._fields(mention_id, state=state, triage=triage, case_id=case_id, review_at=review_at)
        expression, names, values = _update_expression(fields)
        ddb().update_item(
            TableName=self.table, Key=marshal({"mention_id": mention_id}), UpdateExpression=expression,
            ExpressionAttributeNames=names, ExpressionAttributeValues=marshal_values(values),
        )

    @staticmethod
    def _fields(mention_id: str, *, state: str, triage: Optional[Dict[str, Any]] = None,
                case_id: Optional[str] = None, review_at: Optional[str] = None) -> Dict[str, Any]:
        """The attributes ``update`` sets (and a settled ``claim`` writes)."""
        fields: Dict[str, Any] = {"state": state}
        if triage is not None:
            fields["triage"] = triage
        if case_id is not None:
            fields["case_id"] = case_id
        if review_at is not None:  # the no-case review index's keys, in the same write (adapters/review_store.py)
            from chalicelib.adapters.review_store import review_fields

            fields.update(review_fields(mention_id, triage or {}, review_at))
        return fields

    def _item(self, mention_id: str, consistent: bool = True) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"mention_id": mention_id}),
                              ConsistentRead=consistent).get("Item")
        return unmarshal(item) if item else None

    def get(self, mention_id: str, *, consistent: bool = True) -> Optional[MentionRecord]:
        data = self._item(mention_id, consistent)
        if data is None:
            return None
        return MentionRecord(mention_id=data["mention_id"], state=data.get("state", "received"),
                             triage=data.get("triage"), case_id=data.get("case_id"))

    def stored(self, mention_id: str) -> Optional[StoredMention]:
        data = self._item(mention_id)
        if data is None:
            return None
        return StoredMention(mention_id=data["mention_id"], state=data.get("state", "received"),
                             mention=full_mention(data.get("mention") or {}, data["mention_id"]),
                             triage=data.get("triage"), case_id=data.get("case_id"),
                             received_epoch=data.get("received_at_epoch"), expires_at=data.get("expires_at"))

    def delete(self, mention_id: str) -> bool:
        answer = ddb().delete_item(TableName=self.table, Key=marshal({"mention_id": mention_id}), ReturnValues="ALL_OLD")
        return bool(answer.get("Attributes"))


# Authorization reads the caller's profile on every API request: a container keeps it this long, read
# eventually consistent (about 1 s behind a write). So an agent removed, demoted or moved to another team
# keeps their old access for at most this long (plus that second) in a container that served them just
# before; a change made through this container's own API is seen at once (put_agent forgets it).
AGENT_CACHE_SECONDS = 30.0
_signed_in: Dict[Tuple[str, str], Tuple[float, Agent, Any]] = {}  # (table, agent id) -> (when, profile, client)


class DynamoSettingsStore:
    def __init__(self, table: str):
        self.table = table

    # generic (private: callers speak in sources, agents and rules) -----------
    def _get(self, pk: str, sk: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": pk, "sk": sk}), ConsistentRead=True).get("Item")
        return _strip(unmarshal(item)) if item else None

    def _put(self, pk: str, sk: str, item: Dict[str, Any]) -> None:
        ddb().put_item(TableName=self.table, Item=marshal({**item, "pk": pk, "sk": sk}))

    def _query(self, pk: str, prefix: str = "") -> List[Dict[str, Any]]:
        condition, values = "pk = :p", {":p": pk}
        if prefix:
            condition, values = "pk = :p AND begins_with(sk, :s)", {":p": pk, ":s": prefix}
        return [_strip(item) for item in query_all(TableName=self.table, KeyConditionExpression=condition,
                                                   ExpressionAttributeValues=marshal_values(values))]

    def _update(self, pk: str, sk: str, fields: Dict[str, Any]) -> None:
        expression, names, values = _update_expression(fields)
        ddb().update_item(
            TableName=self.table, Key=marshal({"pk": pk, "sk": sk}), UpdateExpression=expression,
            ExpressionAttributeNames=names, ExpressionAttributeValues=marshal_values(values),
        )

    # cursors -----------------------------------------------------------
    def get_cursor(self, source_id: str) -> Dict[str, Any]:
        return self._get(f"CURSOR#{source_id}", "CURSOR") or {"version": 0}

    def save_cursor(self, source_id: str, cursor: Dict[str, Any], *, expected_version: int) -> bool:
        item = {k: v for k, v in cursor.items() if k != "version"}
        item.update(pk=f"CURSOR#{source_id}", sk="CURSOR", version=expected_version + 1)
        if expected_version == 0:
            return put_if(self.table, item, "attribute_not_exists(pk)")
        return put_if(self.table, item, "version = :expected", values={":expected": expected_version})

    # sources -----------------------------------------------------------
    def list_sources(self) -> List[Dict[str, Any]]:
        return self._query("SOURCES")

    def get_source(self, source_id: str) -> Optional[Dict[str, Any]]:
        return self._get("SOURCES", source_id)

    def put_source(self, source: Dict[str, Any]) -> None:
        self._put("SOURCES", source["source_id"], source)

    def update_source_status(self, source_id: str, fields: Dict[str, Any]) -> None:
        self._update("SOURCES", source_id, fields)

    # agents and teams --------------------------------------------------
    def get_agent(self, agent_id: str) -> Optional[Agent]:
        item = self._get(f"AGENT#{agent_id}", "PROFILE")
        return Agent.from_dict(item) if item else None

    def signed_in_agent(self, agent_id: str) -> Optional[Agent]:
        key, now, client = (self.table, agent_id), time.monotonic(), ddb()
        cached = _signed_in.get(key)
        # Kept per client too: a new client (tests switch accounts) starts afresh.
        if cached is None or now - cached[0] >= AGENT_CACHE_SECONDS or cached[2] is not client:
            item = client.get_item(TableName=self.table, Key=marshal({"pk": f"AGENT#{agent_id}", "sk": "PROFILE"})).get("Item")
            if not item:  # not cached: an agent added a moment ago gets in on their next request
                _signed_in.pop(key, None)
                return None
            cached = _signed_in[key] = (now, Agent.from_dict(_strip(unmarshal(item))), client)
        return Agent.from_dict(cached[1].to_dict())  # a copy: callers may change theirs

    def put_agent(self, agent: Agent) -> None:
        _signed_in.pop((self.table, agent.agent_id), None)
        old = self.get_agent(agent.agent_id)
        profile = agent.to_dict()
        if old:
            # The counter belongs to the assignment stage and the presence to the agent (and the shift
            # calendar): a profile edit must reset neither. SET only the profile's own fields.
            for kept in ("open_cases", "last_assigned_at", "presence", "presence_changed_at"):
                profile.pop(kept)
            self._update(f"AGENT#{agent.agent_id}", "PROFILE", profile)
        else:
            self._put(f"AGENT#{agent.agent_id}", "PROFILE", profile)
        if self._get(_SUPERVISORS, "INDEXED") is None:
            self._index_supervisors()  # once per table, by whoever saves a profile first (it may write)
        supervisor_key = {"pk": _SUPERVISORS, "sk": f"AGENT#{agent.agent_id}"}
        if agent.is_supervisor:
            self._put(supervisor_key["pk"], supervisor_key["sk"], {"agent_id": agent.agent_id})
        elif old and old.is_supervisor:
            ddb().delete_item(TableName=self.table, Key=marshal(supervisor_key))
        for team in set(old.teams if old else []) - set(agent.teams):
            ddb().delete_item(TableName=self.table, Key=marshal({"pk": f"TEAM#{team}", "sk": f"AGENT#{agent.agent_id}"}))
        for team in agent.teams:
            self._put(f"TEAM#{team}", f"AGENT#{agent.agent_id}", {"agent_id": agent.agent_id})
        known = set(self.teams())
        if not set(agent.teams) <= known:
            self._put("TEAMS", "ALL", {"teams": sorted(known | set(agent.teams))})

    def teams(self) -> List[str]:
        item = self._get("TEAMS", "ALL")
        return list(item["teams"]) if item else []

    def team_agents(self, team: str) -> List[Agent]:
        return self._profiles(m["agent_id"] for m in self._query(f"TEAM#{team}", "AGENT#"))

    def _profiles(self, agent_ids: Iterable[str]) -> List[Agent]:
        """The profiles of these agents that exist, by id (BatchGetItem, consistent, 100 keys a request)."""
        profiles: List[Agent] = []
        keys = [marshal({"pk": f"AGENT#{agent_id}", "sk": "PROFILE"}) for agent_id in dict.fromkeys(agent_ids)]
        for start in range(0, len(keys), 100):
            request: Dict[str, Any] = {self.table: {"Keys": keys[start:start + 100], "ConsistentRead": True}}
            for attempt in range(10):
                answer = ddb().batch_get_item(RequestItems=request)
                profiles.extend(Agent.from_dict(_strip(unmarshal(i))) for i in answer["Responses"].get(self.table, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))  # throttled: back off, then ask for the rest
            else:
                raise RuntimeError("DynamoDB left agent profiles unread after 10 attempts; try again")
        return sorted(profiles, key=lambda agent: agent.agent_id)

    def set_presence(self, agent_id: str, presence: str, *, at: str) -> Optional[Agent]:
        try:
            answer = ddb().update_item(
                TableName=self.table, Key=marshal({"pk": f"AGENT#{agent_id}", "sk": "PROFILE"}),
                UpdateExpression="SET #presence = :presence, #changed = :at", ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#presence": "presence", "#changed": "presence_changed_at"},
                ExpressionAttributeValues=marshal_values({":presence": presence, ":at": at}), ReturnValues="ALL_NEW")
        except Exception as err:
            if is_conditional_failure(err):
                return None
            raise
        return Agent.from_dict(_strip(unmarshal(answer["Attributes"])))

    def supervisors(self) -> List[Agent]:
        """Everyone whose role is supervisor: one Query of the membership items put_agent keeps, then their
        profiles (the role is checked on the profile: a membership item can outlive a demotion)."""
        members = self._query(_SUPERVISORS)
        if not any(m.get("done") for m in members):  # profiles saved before the items were kept: read them all
            return [agent for agent in self._everyone() if agent.is_supervisor]
        return [agent for agent in self._profiles(m["agent_id"] for m in members if "agent_id" in m)
                if agent.is_supervisor]

    def _everyone(self) -> List[Agent]:
        """Every agent's profile without a Scan: every agent has a team, so the teams' members are everyone."""
        return self._profiles({m["agent_id"] for team in self.teams() for m in self._query(f"TEAM#{team}", "AGENT#")})

    def _index_supervisors(self) -> None:
        """Membership items for supervisors saved before they were kept, then the mark that they are all there.
        Done by a profile save (whose callers may write), never by a reader such as a notification."""
        for agent in self._everyone():
            if agent.is_supervisor:
                self._put(_SUPERVISORS, f"AGENT#{agent.agent_id}", {"agent_id": agent.agent_id})
        self._put(_SUPERVISORS, "INDEXED", {"done": True})

    def adjust_open_cases(self, agent_id: str, delta: int, *, at: str) -> bool:
        names = {"#open": "open_cases", "#cap": "capacity", "#last": "last_assigned_at"}
        fields = "#open = if_not_exists(#open, :zero) + :delta"
        values: Dict[str, Any] = {":delta": delta, ":zero": 0}
        condition = "attribute_exists(pk)"
        if delta > 0:
            fields += ", #last = :at"
            values[":at"] = at
            condition += " AND (attribute_not_exists(#open) OR #open < #cap)"
        else:
            # Never below zero: a counter that drifted must not hide capacity.
            del names["#last"]
            del names["#cap"]
            condition += " AND #open >= :floor"
            values[":floor"] = -delta
        try:
            ddb().update_item(
                TableName=self.table, Key=marshal({"pk": f"AGENT#{agent_id}", "sk": "PROFILE"}),
                UpdateExpression="SET " + fields, ConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=marshal_values(values),
            )
            return True
        except Exception as err:
            if is_conditional_failure(err):
                return False
            raise

    # team settings, the SLA policy, running facts -----------------------------
    def get_team_calendar(self, team: str) -> Optional[Calendar]:
        item = self._get(_CALENDARS, f"TEAM#{team}")
        return Calendar.from_dict(item["calendar"]) if item else None

    def put_team_calendar(self, team: str, calendar: Calendar, *, author: str, at: str) -> None:
        # All calendars in one partition: the scheduler reads every team's with one Query.
        self._put(_CALENDARS, f"TEAM#{team}", {"team": team, "calendar": calendar.to_dict(), "saved_by": author,
                                                 "saved_at": at})

    def delete_team_calendar(self, team: str) -> bool:
        answer = ddb().delete_item(TableName=self.table, Key=marshal({"pk": _CALENDARS, "sk": f"TEAM#{team}"}),
                                   ReturnValues="ALL_OLD")
        return bool(answer.get("Attributes"))

    def team_calendars(self) -> Dict[str, Calendar]:
        return {item["team"]: Calendar.from_dict(item["calendar"]) for item in self._query(_CALENDARS, "TEAM#")}

    def get_away_settings(self, team: str) -> Optional[AwaySettings]:
        item = self._get(f"TEAM#{team}", "AWAY")
        return AwaySettings.from_dict(item["away"]) if item else None

    def put_away_settings(self, team: str, away: AwaySettings, *, author: str, at: str) -> None:
        self._put(f"TEAM#{team}", "AWAY", {"away": away.to_dict(), "saved_by": author, "saved_at": at})

    def get_sla_policy(self) -> Optional[SlaPolicy]:
        item = self._get("SLA", "POLICY")
        # Numbers come back from DynamoDB as Decimal; unmarshal makes 0.8 the float 0.8 again.
        return validate_policy(item["policy"]) if item else None

    def put_sla_policy(self, policy: SlaPolicy, *, author: str, at: str) -> None:
        self._put("SLA", "POLICY", {"policy": policy.to_dict(), "saved_by": author, "saved_at": at})

    def get_survey_settings(self) -> Optional[SurveySettings]:
        item = self._get("CSAT", "SETTINGS")
        return validate_survey_settings(item["survey"]) if item else None

    def put_survey_settings(self, survey: SurveySettings, *, author: str, at: str) -> None:
        self._put("CSAT", "SETTINGS", {"survey": survey.to_dict(), "saved_by": author, "saved_at": at})

    def get_qa_rubric(self) -> Optional[Rubric]:
        item = self._get("QA", "RUBRIC")
        return validate_rubric(item["rubric"]) if item else None

    def put_qa_rubric(self, rubric: Rubric, *, author: str, at: str) -> None:
        self._put("QA", "RUBRIC", {"rubric": rubric.to_dict(), "saved_by": author, "saved_at": at})

    def get_qa_sampling(self) -> Optional[SamplingPolicy]:
        item = self._get("QA", "SAMPLING")
        return validate_sampling_policy(item["sampling"]) if item else None

    def put_qa_sampling(self, policy: SamplingPolicy, *, author: str, at: str) -> None:
        self._put("QA", "SAMPLING", {"sampling": policy.to_dict(), "saved_by": author, "saved_at": at})

    def record_first_response(self, team: str, seconds: int, *, at: str) -> None:
        """One item per team holds the latest 50, written over its version. A writer that loses the race
        three times in a row drops its sample: the list feeds a typical reply time, where one sample less
        does not matter, and the reply that produced it must not fail for it."""
        for _attempt in range(3):
            item = self._get(f"TEAM#{team}", _FIRST_RESPONSES) or {}
            version = int(item.get("version") or 0)
            samples = [int(seconds)] + [int(s) for s in item.get("seconds") or []]
            new = {"pk": f"TEAM#{team}", "sk": _FIRST_RESPONSES, "seconds": samples[:_KEPT_FIRST_RESPONSES],
                   "version": version + 1, "updated_at": at}
            if version == 0:
                written = put_if(self.table, new, "attribute_not_exists(pk)")
            else:
                written = put_if(self.table, new, "#v = :v", {"#v": "version"}, {":v": version})
            if written:
                return

    def recent_first_responses(self, team: str) -> List[int]:
        item = self._get(f"TEAM#{team}", _FIRST_RESPONSES)
        return [int(s) for s in (item or {}).get("seconds") or []]

    def last_run(self, name: str) -> Optional[str]:
        item = self._get("RUNS", name)
        return str(item["at"]) if item else None

    def record_run(self, name: str, at: str) -> None:
        # Only forward: a slow run finishing after a later one must not make the next run redo its window.
        put_if(self.table, {"pk": "RUNS", "sk": name, "at": at}, "attribute_not_exists(pk) OR #at < :at",
               {"#at": "at"}, {":at": at})

    # triage rules --------------------------------------------------------
    def current_rules_version(self) -> int:
        pointer = self._get("RULES", "CURRENT")
        return int(pointer["version"]) if pointer else 0

    def get_rules_version(self, version: int) -> Optional[Dict[str, Any]]:
        stored = self._get("RULES", _rules_key(version))
        return {k: stored.get(k) for k in ("version", "document", "saved_by", "saved_at")} if stored else None

    def add_rules_version(self, document: Dict[str, Any], *, author: str, at: str) -> int:
        """Each saver claims the next free version number with a conditional put, so
        two supervisors saving at once get two versions; the pointer only moves forward."""
        version = max(self.current_rules_version(), self._latest_rules_version()) + 1
        while not put_if_absent(self.table, {"pk": "RULES", "sk": _rules_key(version), "version": version,
                                             "document": document, "saved_by": author, "saved_at": at}, "sk"):
            version += 1
        put_if(self.table, {"pk": "RULES", "sk": "CURRENT", "version": version},
               "attribute_not_exists(pk) OR version < :mine", values={":mine": version})
        return version

    def _latest_rules_version(self) -> int:
        page = ddb().query(TableName=self.table, KeyConditionExpression="pk = :p AND begins_with(sk, :v)",
                           ExpressionAttributeValues=marshal_values({":p": "RULES", ":v": "V#"}),
                           ScanIndexForward=False, Limit=1, ProjectionExpression="version", ConsistentRead=True)
        items = page.get("Items", [])
        return int(unmarshal(items[0])["version"]) if items else 0

    def list_rules_versions(self) -> List[Dict[str, Any]]:
        items = query_all(TableName=self.table, KeyConditionExpression="pk = :p AND begins_with(sk, :v)",
                          ExpressionAttributeValues=marshal_values({":p": "RULES", ":v": "V#"}),
                          ProjectionExpression="version, saved_by, saved_at")
        return [{k: item.get(k) for k in ("version", "saved_by", "saved_at")} for item in items]


_SUPERVISORS = "ROLE#supervisor"
_SURVEY = "SURVEY"
_CALENDARS = "CALENDARS"
_FIRST_RESPONSES = "FIRST_RESPONSES"
_KEPT_FIRST_RESPONSES = 50


def _rules_key(version: int) -> str:
    return f"V#{version:09d}"
