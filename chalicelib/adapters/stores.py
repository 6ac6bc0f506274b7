"""DynamoDB stores. Every method uses a key or an index: no Scan anywhere.

Layouts (see infra/template.yaml):
- cases:    pk CASE#<id>; sk META (the case), MENTION#<time>#<id>, EVENT#<time>#<n>, REPLY#<id>
- mentions: mention_id -> dedupe state, raw payload, triage decision
- settings: pk/sk for sources, cursors, agents, team membership, rule versions
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, Iterable, List, Optional, Tuple

from chalicelib.adapters.dynamo import (
    ddb, is_conditional_failure, marshal, marshal_values, query_all, query_page, unmarshal,
)

_event_counter = itertools.count()


def _update_expression(fields: Dict[str, Any]) -> Tuple[str, Dict[str, str], Dict[str, Any]]:
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
    return "SET " + sets, names, values


def put_if_absent(table: str, item: Dict[str, Any], key_attribute: str) -> bool:
    """Write an item only if its key is new; False when it exists (a repeated delivery)."""
    try:
        ddb().put_item(TableName=table, Item=marshal(item), ConditionExpression=f"attribute_not_exists({key_attribute})")
        return True
    except Exception as err:
        if is_conditional_failure(err):
            return False
        raise


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


class CaseStore:
    def __init__(self, table: str):
        self.table = table

    @staticmethod
    def _key(case_id: str, sk: str = "META") -> Dict[str, Any]:
        return marshal({"pk": f"CASE#{case_id}", "sk": sk})

    def create(self, case: Dict[str, Any]) -> bool:
        """False when the case exists already (a repeated delivery)."""
        return put_if_absent(self.table, {"pk": f"CASE#{case['case_id']}", "sk": "META", **case}, "pk")

    def get(self, case_id: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=self._key(case_id), ConsistentRead=True).get("Item")
        return unmarshal(item) if item else None

    def items(self, case_id: str) -> List[Dict[str, Any]]:
        """The case and everything under it (mentions, events, replies), in key order."""
        return list(query_all(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=marshal_values({":pk": f"CASE#{case_id}"}),
            ConsistentRead=True,
        ))

    def update(self, case_id: str, fields: Dict[str, Any], *, expect_status: Optional[str] = None) -> bool:
        condition, names, values = "attribute_exists(pk)", {}, {}
        if expect_status is not None:
            condition += " AND #status_expected = :status_expected"
            names, values = {"#status_expected": "status"}, {":status_expected": expect_status}
        return update_if(self.table, {"pk": f"CASE#{case_id}", "sk": "META"}, fields, condition, names, values)

    def add_mention(self, case_id: str, mention: Dict[str, Any], *, at: str) -> bool:
        """Attach a customer post to the case; False if it was attached before."""
        # The key holds the post's own time and id, so a re-delivery lands on the same item.
        item = {"pk": f"CASE#{case_id}", "sk": f"MENTION#{at}#{mention['id']}", "type": "mention", **mention}
        return put_if_absent(self.table, item, "sk")

    def add_event(self, case_id: str, event: Dict[str, Any], *, at: str) -> None:
        sk = f"EVENT#{at}#{next(_event_counter):06d}"
        item = {"pk": f"CASE#{case_id}", "sk": sk, "type": "event", "at": at, **event}
        ddb().put_item(TableName=self.table, Item=marshal(item))

    def put_reply(self, reply: Dict[str, Any]) -> bool:
        item = {"pk": f"CASE#{reply['case_id']}", "sk": f"REPLY#{reply['reply_id']}", "type": "reply", **reply}
        return put_if_absent(self.table, item, "sk")

    def get_reply(self, case_id: str, reply_id: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=self._key(case_id, f"REPLY#{reply_id}"), ConsistentRead=True).get("Item")
        return unmarshal(item) if item else None

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

    def find_delivery(self, platform: str, post_id: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=self._key_raw(f"POSTED#{platform}:{post_id}", "REPLY")).get("Item")
        return unmarshal(item) if item else None

    @staticmethod
    def _key_raw(pk: str, sk: str) -> Dict[str, Any]:
        return marshal({"pk": pk, "sk": sk})

    def active_case_for_customer(self, customer_key: str) -> Optional[str]:
        page = ddb().query(
            TableName=self.table, IndexName="by-customer",
            KeyConditionExpression="customer_pk = :c AND begins_with(customer_sk, :active)",
            ExpressionAttributeValues=marshal_values({":c": customer_key, ":active": "active#"}),
            ScanIndexForward=False, Limit=1,
        )
        items = page.get("Items", [])
        return unmarshal(items[0])["pk"].split("#", 1)[1] if items else None

    def inbox_page(self, team: str, status: str, order: str, limit: int,
                   start_after: Optional[Dict[str, str]]) -> Tuple[List[Dict[str, Any]], bool]:
        """A team's cases in one status: newest first, or most urgent (then oldest) first.

        ``start_after`` is the key of the last case already seen (plain strings);
        returns the items and whether more may follow.
        """
        index, forward = ("inbox-by-priority", True) if order == "priority" else ("inbox-by-time", False)
        items, last = query_page(
            limit, marshal(start_after) if start_after else None, TableName=self.table, IndexName=index,
            KeyConditionExpression="inbox_pk = :p",
            ExpressionAttributeValues=marshal_values({":p": f"{team}#{status}"}),
            ScanIndexForward=forward,
        )
        return items, last is not None


class MentionStore:
    """Dedupe by platform id: the first writer of a mention id owns it."""

    def __init__(self, table: str, retention_days: int = 400):
        self.table = table
        self.retention_seconds = retention_days * 86400

    def claim(self, mention: Dict[str, Any], *, now_epoch: int) -> Optional[Dict[str, Any]]:
        """Record a mention; returns None if new, else the existing record."""
        item = {
            "mention_id": mention["id"], "state": "received", "mention": mention,
            "received_at_epoch": now_epoch, "expires_at": now_epoch + self.retention_seconds,
        }
        if put_if_absent(self.table, item, "mention_id"):
            return None
        existing = ddb().get_item(TableName=self.table, Key=marshal({"mention_id": mention["id"]}), ConsistentRead=True)
        return unmarshal(existing["Item"]) if "Item" in existing else None

    def update(self, mention_id: str, fields: Dict[str, Any]) -> None:
        expression, names, values = _update_expression(fields)
        ddb().update_item(
            TableName=self.table, Key=marshal({"mention_id": mention_id}), UpdateExpression=expression,
            ExpressionAttributeNames=names, ExpressionAttributeValues=marshal_values(values),
        )

    def get(self, mention_id: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"mention_id": mention_id})).get("Item")
        return unmarshal(item) if item else None


class SettingsStore:
    def __init__(self, table: str):
        self.table = table

    # generic -----------------------------------------------------------
    def get(self, pk: str, sk: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": pk, "sk": sk}), ConsistentRead=True).get("Item")
        return unmarshal(item) if item else None

    def put(self, pk: str, sk: str, item: Dict[str, Any]) -> None:
        ddb().put_item(TableName=self.table, Item=marshal({**item, "pk": pk, "sk": sk}))

    def query(self, pk: str, prefix: str = "") -> List[Dict[str, Any]]:
        if prefix:
            return list(query_all(
                TableName=self.table, KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                ExpressionAttributeValues=marshal_values({":p": pk, ":s": prefix}),
            ))
        return list(query_all(
            TableName=self.table, KeyConditionExpression="pk = :p",
            ExpressionAttributeValues=marshal_values({":p": pk}),
        ))

    def update(self, pk: str, sk: str, fields: Dict[str, Any]) -> None:
        expression, names, values = _update_expression(fields)
        ddb().update_item(
            TableName=self.table, Key=marshal({"pk": pk, "sk": sk}), UpdateExpression=expression,
            ExpressionAttributeNames=names, ExpressionAttributeValues=marshal_values(values),
        )

    # cursors -----------------------------------------------------------
    def get_cursor(self, source_id: str) -> Dict[str, Any]:
        return self.get(f"CURSOR#{source_id}", "CURSOR") or {"version": 0}

    def save_cursor(self, source_id: str, cursor: Dict[str, Any], *, expected_version: int) -> bool:
        """Optimistic write: False when another run moved the cursor first."""
        item = {k: v for k, v in cursor.items() if k != "version"}
        item.update(pk=f"CURSOR#{source_id}", sk="CURSOR", version=expected_version + 1)
        condition = "attribute_not_exists(pk)" if expected_version == 0 else "version = :expected"
        kwargs: Dict[str, Any] = {}
        if expected_version:
            kwargs["ExpressionAttributeValues"] = marshal_values({":expected": expected_version})
        try:
            ddb().put_item(TableName=self.table, Item=marshal(item), ConditionExpression=condition, **kwargs)
            return True
        except Exception as err:
            if is_conditional_failure(err):
                return False
            raise

    # sources -----------------------------------------------------------
    def list_sources(self) -> List[Dict[str, Any]]:
        return self.query("SOURCES")

    def get_source(self, source_id: str) -> Optional[Dict[str, Any]]:
        return self.get("SOURCES", source_id)

    def put_source(self, source: Dict[str, Any]) -> None:
        self.put("SOURCES", source["source_id"], source)

    def update_source_status(self, source_id: str, fields: Dict[str, Any]) -> None:
        self.update("SOURCES", source_id, fields)

    # agents and teams --------------------------------------------------
    def get_agent(self, agent_id: str) -> Optional[Dict[str, Any]]:
        return self.get(f"AGENT#{agent_id}", "PROFILE")

    def put_agent(self, agent: Dict[str, Any]) -> None:
        agent = {"open_cases": 0, "capacity": 20, "available": True, **agent}
        old = self.get_agent(agent["agent_id"])
        self.put(f"AGENT#{agent['agent_id']}", "PROFILE", agent)
        for team in set((old or {}).get("teams", [])) - set(agent["teams"]):
            ddb().delete_item(TableName=self.table, Key=marshal({"pk": f"TEAM#{team}", "sk": f"AGENT#{agent['agent_id']}"}))
        for team in agent["teams"]:
            self.put(f"TEAM#{team}", f"AGENT#{agent['agent_id']}", {"agent_id": agent["agent_id"]})
        self.put("TEAMS", "ALL", {"teams": sorted(set(self.teams()) | set(agent["teams"]))})

    def teams(self) -> List[str]:
        item = self.get("TEAMS", "ALL")
        return list(item["teams"]) if item else []

    def team_agents(self, team: str) -> List[Dict[str, Any]]:
        members = self.query(f"TEAM#{team}", "AGENT#")
        if not members:
            return []
        profiles: List[Dict[str, Any]] = []
        keys = [marshal({"pk": f"AGENT#{m['agent_id']}", "sk": "PROFILE"}) for m in members]
        for start in range(0, len(keys), 100):
            request = {self.table: {"Keys": keys[start:start + 100], "ConsistentRead": True}}
            while request:
                answer = ddb().batch_get_item(RequestItems=request)
                profiles.extend(unmarshal(i) for i in answer["Responses"].get(self.table, []))
                request = answer.get("UnprocessedKeys") or {}
        return profiles

    def adjust_open_cases(self, agent_id: str, delta: int, *, at: str) -> bool:
        """Atomic counter; an increment only succeeds below the agent's capacity."""
        names = {"#open": "open_cases", "#cap": "capacity", "#last": "last_assigned_at"}
        fields = "#open = if_not_exists(#open, :zero) + :delta"
        values: Dict[str, Any] = {":delta": delta, ":zero": 0}
        condition = "attribute_exists(pk)"
        if delta > 0:
            fields += ", #last = :at"
            values[":at"] = at
            condition += " AND (attribute_not_exists(#open) OR #open < #cap)"
        else:
            del names["#last"]
            del names["#cap"]
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
