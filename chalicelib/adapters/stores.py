"""DynamoDB stores. Every method uses a key or an index: no Scan anywhere.

They take and return domain objects; the keys, index attributes and position
tokens below are theirs alone. Layouts (see infra/template.yaml):
- cases:    pk CASE#<id>; sk META (the case), MENTION#<time>#<id>, EVENT#<time>#<n>, REPLY#<id>;
            pk POSTED#<platform>:<post id> maps a platform message to its reply.
            Index attributes on META: inbox_pk (team#status) with inbox_time_sk
            and inbox_priority_sk; customer_pk/customer_sk (active# or done#).
- mentions: mention_id -> dedupe state, the mention, the triage decision.
- settings: SOURCES/<source id>, CURSOR#<source id>/CURSOR, AGENT#<id>/PROFILE,
            TEAM#<team>/AGENT#<id>, TEAMS/ALL, RULES/CURRENT and RULES/V#<n>.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, Iterable, List, Optional, Tuple

from chalicelib.adapters.dynamo import (
    ddb,
    is_conditional_failure,
    marshal,
    marshal_values,
    query_all,
    query_page,
    unmarshal,
)
from chalicelib.domain.agent import Agent
from chalicelib.domain.case import ACTIVE_STATUSES, Case
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.mention import Mention, MentionRecord
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.reply import Reply
from chalicelib.ports import CaseHistory, InboxPage

_event_counter = itertools.count()
_INBOX_INDEX = {"newest": ("inbox-by-time", "inbox_time_sk", False),
                "priority": ("inbox-by-priority", "inbox_priority_sk", True)}


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


def _strip(item: Dict[str, Any], *extra: str) -> Dict[str, Any]:
    hidden = {"pk", "sk", "type", *extra}
    return {k: v for k, v in item.items() if k not in hidden}


_CASE_INDEX_ATTRIBUTES = ("inbox_pk", "inbox_time_sk", "inbox_priority_sk", "customer_pk", "customer_sk")


def _case_item(case: Case) -> Dict[str, Any]:
    """The META item of a case: the case and the attributes its indexes read."""
    return {
        "pk": f"CASE#{case.case_id}", "sk": "META", **case.to_dict(),
        "inbox_pk": f"{case.team}#{case.status}",
        "inbox_time_sk": f"{case.created_at}#{case.case_id}",
        "inbox_priority_sk": f"{case.priority_rank}#{case.created_at}#{case.case_id}",
        "customer_pk": case.customer_key,
        "customer_sk": ("active" if case.status in ACTIVE_STATUSES else "done") + "#" + case.created_at,
    }


def _case_from(item: Dict[str, Any]) -> Case:
    return Case.from_dict(_strip(item, *_CASE_INDEX_ATTRIBUTES))


class DynamoCaseStore:
    def __init__(self, table: str):
        self.table = table

    def create(self, case: Case) -> bool:
        return put_if_absent(self.table, _case_item(case), "pk")

    def get(self, case_id: str) -> Optional[Case]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"CASE#{case_id}", "sk": "META"}),
                              ConsistentRead=True).get("Item")
        return _case_from(unmarshal(item)) if item else None

    def save(self, case: Case) -> bool:
        expected = case.version
        saved = Case.from_dict({**case.to_dict(), "version": expected + 1})
        condition = "attribute_exists(pk) AND "
        condition += "(#version = :expected OR attribute_not_exists(#version))" if expected == 0 else "#version = :expected"
        if put_if(self.table, _case_item(saved), condition, {"#version": "version"}, {":expected": expected}):
            case.version = expected + 1
            return True
        return False

    def history(self, case_id: str) -> Optional[CaseHistory]:
        items = list(query_all(
            TableName=self.table, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=marshal_values({":pk": f"CASE#{case_id}"}), ConsistentRead=True,
        ))
        meta = next((item for item in items if item["sk"] == "META"), None)
        if meta is None:
            return None
        history = CaseHistory(case=_case_from(meta))
        for item in items:
            kind = item["sk"].split("#", 1)[0]
            if kind == "MENTION":
                history.mentions.append(Mention.from_dict(_strip(item, "id")))
            elif kind == "EVENT":
                history.events.append(_strip(item))
            elif kind == "REPLY":
                history.replies.append(Reply.from_dict(_strip(item)))
        history.replies.sort(key=lambda reply: reply.created_at)
        return history

    def add_mention(self, case_id: str, mention: Mention, *, at: str) -> bool:
        # The key holds the post's own time and id, so a re-delivery lands on the same item.
        item = {"pk": f"CASE#{case_id}", "sk": f"MENTION#{at}#{mention.id}", "type": "mention", **mention.to_dict()}
        return put_if_absent(self.table, item, "sk")

    def add_event(self, case_id: str, event: Dict[str, Any], *, at: str) -> None:
        sk = f"EVENT#{at}#{next(_event_counter):06d}"
        item = {"pk": f"CASE#{case_id}", "sk": sk, "type": "event", "at": at, **event}
        ddb().put_item(TableName=self.table, Item=marshal(item))

    def put_reply(self, reply: Reply) -> bool:
        item = {"pk": f"CASE#{reply.case_id}", "sk": f"REPLY#{reply.reply_id}", "type": "reply", **reply.to_dict()}
        return put_if_absent(self.table, item, "sk")

    def get_reply(self, case_id: str, reply_id: str) -> Optional[Reply]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": f"CASE#{case_id}", "sk": f"REPLY#{reply_id}"}),
                              ConsistentRead=True).get("Item")
        return Reply.from_dict(_strip(unmarshal(item))) if item else None

    def update_reply(self, case_id: str, reply_id: str, fields: Dict[str, Any], *, expect_status: Iterable[str]) -> bool:
        """Conditional on the current delivery status: how a reply is never sent twice."""
        allowed = list(expect_status)
        values = {f":expected{i}": status for i, status in enumerate(allowed)}
        return update_if(self.table, {"pk": f"CASE#{case_id}", "sk": f"REPLY#{reply_id}"}, fields,
                         f"#delivery IN ({', '.join(values)})", {"#delivery": "delivery_status"}, values)

    def record_delivery(self, platform: str, post_id: str, case_id: str, reply_id: str) -> None:
        """Remember which reply a platform message id belongs to, for receipts that arrive later."""
        ddb().put_item(TableName=self.table, Item=marshal({
            "pk": f"POSTED#{platform}:{post_id}", "sk": "REPLY", "case_id": case_id, "reply_id": reply_id}))

    def find_delivery(self, platform: str, post_id: str) -> Optional[Tuple[str, str]]:
        item = ddb().get_item(TableName=self.table,
                              Key=marshal({"pk": f"POSTED#{platform}:{post_id}", "sk": "REPLY"})).get("Item")
        if not item:
            return None
        known = unmarshal(item)
        return known["case_id"], known["reply_id"]

    def active_case_for_customer(self, customer_key: str) -> Optional[str]:
        page = ddb().query(
            TableName=self.table, IndexName="by-customer",
            KeyConditionExpression="customer_pk = :c AND begins_with(customer_sk, :active)",
            ExpressionAttributeValues=marshal_values({":c": customer_key, ":active": "active#"}),
            ScanIndexForward=False, Limit=1,
        )
        items = page.get("Items", [])
        return unmarshal(items[0])["pk"].split("#", 1)[1] if items else None

    def inbox_page(self, team: str, status: str, order: str, limit: int, after: Optional[str]) -> InboxPage:
        index, sort_attribute, forward = _INBOX_INDEX[order]
        inbox_pk = f"{team}#{status}"
        start_key = self._start_key(after, inbox_pk, sort_attribute) if after else None
        items, last = query_page(
            limit, start_key, TableName=self.table, IndexName=index,
            KeyConditionExpression="inbox_pk = :p", ExpressionAttributeValues=marshal_values({":p": inbox_pk}),
            ScanIndexForward=forward,
        )
        positions = [encode_cursor({"c": item["pk"][5:], "s": item[sort_attribute]}) for item in items]
        return InboxPage(cases=[_case_from(item) for item in items], positions=positions, more=last is not None)

    @staticmethod
    def _start_key(position: str, inbox_pk: str, sort_attribute: str) -> Dict[str, Any]:
        """The index key a position token stands for; refuses one issued for another inbox."""
        state = decode_cursor(position)
        case_id, sort_value = state.get("c"), state.get("s")
        if (not isinstance(case_id, str) or not isinstance(sort_value, str) or not 0 < len(case_id) <= 64
                or not sort_value.endswith("#" + case_id) or len(sort_value) > 200):
            raise InvalidCursor("query 'cursor' is not one this API issued for this inbox; start again without it")
        return marshal({"pk": f"CASE#{case_id}", "sk": "META", "inbox_pk": inbox_pk, sort_attribute: sort_value})


class DynamoMentionStore:
    """Dedupe by platform id: the first writer of a mention id owns it."""

    def __init__(self, table: str, retention_days: int = 400):
        self.table = table
        self.retention_seconds = retention_days * 86400

    def claim(self, mention: Mention, *, now_epoch: int) -> Optional[MentionRecord]:
        item = {
            "mention_id": mention.id, "state": "received", "mention": mention.to_dict(),
            "received_at_epoch": now_epoch, "expires_at": now_epoch + self.retention_seconds,
        }
        if put_if_absent(self.table, item, "mention_id"):
            return None
        return self.get(mention.id)

    def update(self, mention_id: str, *, state: str, triage: Optional[Dict[str, Any]] = None,
               case_id: Optional[str] = None) -> None:
        fields: Dict[str, Any] = {"state": state}
        if triage is not None:
            fields["triage"] = triage
        if case_id is not None:
            fields["case_id"] = case_id
        expression, names, values = _update_expression(fields)
        ddb().update_item(
            TableName=self.table, Key=marshal({"mention_id": mention_id}), UpdateExpression=expression,
            ExpressionAttributeNames=names, ExpressionAttributeValues=marshal_values(values),
        )

    def get(self, mention_id: str) -> Optional[MentionRecord]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"mention_id": mention_id}),
                              ConsistentRead=True).get("Item")
        if not item:
            return None
        data = unmarshal(item)
        return MentionRecord(mention_id=data["mention_id"], state=data.get("state", "received"),
                             triage=data.get("triage"), case_id=data.get("case_id"))


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

    def put_agent(self, agent: Agent) -> None:
        old = self.get_agent(agent.agent_id)
        profile = agent.to_dict()
        if old:  # the counter belongs to the assignment stage; a profile edit must not reset it
            profile.pop("open_cases")
            profile.pop("last_assigned_at")
            self._update(f"AGENT#{agent.agent_id}", "PROFILE", profile)
        else:
            self._put(f"AGENT#{agent.agent_id}", "PROFILE", profile)
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
        members = self._query(f"TEAM#{team}", "AGENT#")
        if not members:
            return []
        profiles: List[Agent] = []
        keys = [marshal({"pk": f"AGENT#{m['agent_id']}", "sk": "PROFILE"}) for m in members]
        for start in range(0, len(keys), 100):
            request = {self.table: {"Keys": keys[start:start + 100], "ConsistentRead": True}}
            while request:
                answer = ddb().batch_get_item(RequestItems=request)
                profiles.extend(Agent.from_dict(_strip(unmarshal(i))) for i in answer["Responses"].get(self.table, []))
                request = answer.get("UnprocessedKeys") or {}
        return sorted(profiles, key=lambda agent: agent.agent_id)

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


def _rules_key(version: int) -> str:
    return f"V#{version:09d}"
