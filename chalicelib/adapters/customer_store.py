"""Customer profiles and linked identities on DynamoDB (the ``CustomerStore`` port). No Scan: keys only.

They live in the **settings table**: not the cases table, whose stream invokes the KPI consumer for
every write (adapters/streams.py), and these are written as cases open. One table keeps a merge a single
all-or-nothing transaction; an erasure or export of a customer reaches them through services/privacy.py
(``forget_identity``). Layout (pk / sk):

- ``IDENTITY#<customer key>`` / ``IDENTITY``: the identity as last seen: ``customer_id`` (the profile it is
  linked to), ``handle``, ``name``, ``handles`` (a string set of every normalized handle seen),
  ``first_seen_at``, ``last_case_id``/``last_case_at`` (its newest case: the reopen window reads it).
  Written when a case opens for it (one UpdateItem: created the first time, else its handle, name and
  newest case), never per message.
- ``PROFILE#<customer id>`` / ``META``: tags, notes, fields, ``merged_into``, ``version``.
  ``PROFILE#<customer id>`` / ``KEY#<customer key>``: an identity linked to the profile (a link, not a copy).
  ``PROFILE#<customer id>`` / ``AUDIT#<time>#<n>``: a merge or unmerge (who, when, which identities).
- ``HANDLE#<normalized handle>`` / ``KEY#<customer key>``: find customers by handle (one Query, optionally
  narrowed to a platform with ``begins_with(sk, 'KEY#<platform>:')``).
- ``CUSTOMER_FIELDS`` / ``DEFINITIONS``: the fields supervisors define.

Profiles do not expire: tags and notes outlive a case on purpose; erasure removes them.
"""
from __future__ import annotations

import itertools
import time
from typing import Any, Dict, List, Optional

from chalicelib.adapters.dynamo import ddb, is_conditional_failure, marshal, marshal_values, query_all, unmarshal
from chalicelib.domain.customer import MAX_IDENTITIES, FieldDefinition, Identity, Profile, normal_handle

_counter = itertools.count()
_FIELDS_KEY = {"pk": "CUSTOMER_FIELDS", "sk": "DEFINITIONS"}


def _identity_key(customer_key: str) -> Dict[str, str]:
    return {"pk": f"IDENTITY#{customer_key}", "sk": "IDENTITY"}


def _link_key(customer_id: str, customer_key: str) -> Dict[str, str]:
    return {"pk": f"PROFILE#{customer_id}", "sk": f"KEY#{customer_key}"}


def _meta_key(customer_id: str) -> Dict[str, str]:
    return {"pk": f"PROFILE#{customer_id}", "sk": "META"}


def _handle_key(handle: str, customer_key: str) -> Dict[str, str]:
    return {"pk": f"HANDLE#{handle}", "sk": f"KEY#{customer_key}"}


def _cancellation_codes(err: Exception) -> List[str]:
    from botocore.exceptions import ClientError

    if not isinstance(err, ClientError) or err.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise err
    reasons = err.response.get("CancellationReasons") or []
    codes = [str(reason.get("Code") or "None") for reason in reasons]
    if not codes:
        message = err.response.get("Error", {}).get("Message", "")
        inside = message[message.find("[") + 1:message.rfind("]")] if "[" in message else ""
        codes = [code.strip() for code in inside.split(",") if code.strip()]
    return codes


class DynamoCustomerStore:
    def __init__(self, table: str):
        self.table = table

    # ---- identities ------------------------------------------------------------------------------
    def identity(self, customer_key: str, *, consistent: bool = True) -> Optional[Identity]:
        item = ddb().get_item(TableName=self.table, Key=marshal(_identity_key(customer_key)),
                              ConsistentRead=consistent).get("Item")
        return Identity.from_dict(unmarshal(item)) if item else None

    def record_identity(self, seen: Identity, *, case_id: Optional[str] = None, at: str) -> bool:
        # One UpdateItem whether new or known (no transaction, no read first): a new identity gets its home
        # profile and first sighting (if_not_exists), a known one keeps them; ALL_OLD says which. Only a
        # new one then adds its link, and only a handle not seen before its handle item: 3 writes the first
        # time (1 KB each), 1 afterwards. (A crash between them leaves the home link unwritten; the identity
        # still routes and is found by platform id.)
        if case_id:
            seen.last_case_id, seen.last_case_at = case_id, at
        values: Dict[str, Any] = {":k": seen.customer_key, ":id": seen.home_customer_id,
                                  ":first": seen.first_seen_at or at, ":h": seen.handle, ":n": seen.name}
        expression = ("SET customer_key = :k, customer_id = if_not_exists(customer_id, :id), "
                      "first_seen_at = if_not_exists(first_seen_at, :first), handle = :h, #name = :n")
        if case_id:
            expression += ", last_case_id = :c, last_case_at = :at"
            values.update({":c": case_id, ":at": at})
        if seen.handles:
            expression += " ADD handles :hs"
            values[":hs"] = set(seen.handles)
        answer = ddb().update_item(TableName=self.table, Key=marshal(_identity_key(seen.customer_key)),
                                   UpdateExpression=expression, ExpressionAttributeNames={"#name": "name"},
                                   ExpressionAttributeValues=marshal_values(values), ReturnValues="ALL_OLD")
        before = unmarshal(answer.get("Attributes") or {})
        new = "customer_id" not in before
        if new:
            ddb().put_item(TableName=self.table, Item=marshal({**_link_key(seen.home_customer_id, seen.customer_key),
                                                                "customer_key": seen.customer_key, "linked_at": at}))
        for handle in sorted(set(seen.handles) - set(before.get("handles") or [])):
            ddb().put_item(TableName=self.table, Item=marshal({**_handle_key(handle, seen.customer_key),
                                                                "customer_key": seen.customer_key}))
        return new

    def identities(self, customer_id: str) -> List[Identity]:
        links = query_all(TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :k)",
                          ConsistentRead=True, ProjectionExpression="sk",
                          ExpressionAttributeValues=marshal_values({":pk": f"PROFILE#{customer_id}", ":k": "KEY#"}))
        keys = [link["sk"][len("KEY#"):] for link in itertools.islice(links, MAX_IDENTITIES * 2)]
        if not keys:
            return []
        found: Dict[str, Identity] = {}
        request: Dict[str, Any] = {self.table: {"Keys": [marshal(_identity_key(k)) for k in keys],
                                                "ConsistentRead": True}}
        for attempt in range(10):
            answer = ddb().batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self.table, []):
                identity = Identity.from_dict(unmarshal(item))
                found[identity.customer_key] = identity
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2 ** attempt, 2.0))
        else:
            raise RuntimeError("DynamoDB left identities unread after 10 attempts; try again")
        # A link whose identity was never recorded (recorded before this store kept identities): its home.
        return [found.get(k) or Identity(customer_key=k, customer_id=customer_id) for k in keys]

    def keys_by_handle(self, handle: str, *, platform: Optional[str] = None, limit: int) -> List[str]:
        handle = normal_handle(handle)
        if not handle:
            return []
        prefix = f"KEY#{platform}:" if platform else "KEY#"
        answer = ddb().query(TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
                             ProjectionExpression="sk", Limit=limit,
                             ExpressionAttributeValues=marshal_values({":pk": f"HANDLE#{handle}", ":p": prefix}))
        return [unmarshal(item)["sk"][len("KEY#"):] for item in answer.get("Items", [])]

    # ---- profiles ----------------------------------------------------------------------------------
    def profile(self, customer_id: str) -> Optional[Profile]:
        item = ddb().get_item(TableName=self.table, Key=marshal(_meta_key(customer_id)),
                              ConsistentRead=True).get("Item")
        return Profile.from_dict({**unmarshal(item), "customer_id": customer_id}) if item else None

    def save_profile(self, profile: Profile) -> bool:
        condition = ("attribute_not_exists(#version) OR #version = :expected" if profile.version == 0
                     else "#version = :expected")
        values = {":tags": profile.tags, ":notes": profile.notes, ":fields": profile.fields,
                  ":at": profile.updated_at, ":by": profile.updated_by, ":expected": profile.version,
                  ":next": profile.version + 1, ":id": profile.customer_id}
        try:
            ddb().update_item(TableName=self.table, Key=marshal(_meta_key(profile.customer_id)),
                              UpdateExpression="SET customer_id = :id, tags = :tags, notes = :notes, "
                                               "#fields = :fields, updated_at = :at, updated_by = :by, "
                                               "#version = :next",
                              ConditionExpression=condition,
                              ExpressionAttributeNames={"#version": "version", "#fields": "fields"},
                              ExpressionAttributeValues=marshal_values(values))
        except Exception as err:
            if is_conditional_failure(err):
                return False
            raise
        profile.version += 1
        return True

    def _audit_put(self, customer_id: str, audit: Dict[str, Any]) -> Dict[str, Any]:
        sk = f"AUDIT#{audit['at']}#{next(_counter):06d}{int(time.time() * 1000) % 1000:03d}"
        return {"Put": {"TableName": self.table, "Item": marshal({"pk": f"PROFILE#{customer_id}", "sk": sk,
                                                                   **audit})}}

    def _move(self, identity: Identity, to_id: str, at: str) -> List[Dict[str, Any]]:
        """The writes that link one identity to another profile, if it is still where it was."""
        return [
            {"Update": {"TableName": self.table, "Key": marshal(_identity_key(identity.customer_key)),
                        "UpdateExpression": "SET customer_id = :to, customer_key = :key",
                        "ConditionExpression": "attribute_not_exists(pk) OR customer_id = :from",
                        "ExpressionAttributeValues": marshal_values({":to": to_id, ":from": identity.customer_id,
                                                                     ":key": identity.customer_key})}},
            {"Delete": {"TableName": self.table, "Key": marshal(_link_key(identity.customer_id, identity.customer_key))}},
            {"Put": {"TableName": self.table, "Item": marshal({**_link_key(to_id, identity.customer_key),
                                                                "customer_key": identity.customer_key,
                                                                "linked_at": at})}},
        ]

    def _transact(self, items: List[Dict[str, Any]]) -> bool:
        try:
            ddb().transact_write_items(TransactItems=items)
            return True
        except Exception as err:  # noqa: BLE001 - the codes say which; anything else is raised again
            if "ConditionalCheckFailed" in _cancellation_codes(err):
                return False
            raise

    def link(self, target_id: str, other_id: str, identities: List[Identity], *, audit: Dict[str, Any]) -> bool:
        items: List[Dict[str, Any]] = []
        for identity in identities:
            items += self._move(identity, target_id, audit["at"])
        items.append({"Update": {"TableName": self.table, "Key": marshal(_meta_key(other_id)),
                                 "UpdateExpression": "SET merged_into = :t, customer_id = :o",
                                 "ExpressionAttributeValues": marshal_values({":t": target_id, ":o": other_id})}})
        items += [self._audit_put(target_id, audit), self._audit_put(other_id, audit)]
        return self._transact(items)

    def unlink(self, identity: Identity, *, audit: Dict[str, Any]) -> bool:
        home = identity.home_customer_id
        items = self._move(identity, home, audit["at"])
        items.append({"Update": {"TableName": self.table, "Key": marshal(_meta_key(home)),
                                 "UpdateExpression": "SET customer_id = :h REMOVE merged_into",
                                 "ExpressionAttributeValues": marshal_values({":h": home})}})
        items += [self._audit_put(identity.customer_id, audit), self._audit_put(home, audit)]
        return self._transact(items)

    def audit_trail(self, customer_id: str, *, limit: int) -> List[Dict[str, Any]]:
        answer = ddb().query(TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
                             ScanIndexForward=False, Limit=limit, ConsistentRead=True,
                             ExpressionAttributeValues=marshal_values({":pk": f"PROFILE#{customer_id}", ":a": "AUDIT#"}))
        return [{k: v for k, v in unmarshal(item).items() if k not in ("pk", "sk")} for item in answer.get("Items", [])]

    # ---- supervisor-defined fields ---------------------------------------------------------------------
    def field_definitions(self) -> List[FieldDefinition]:
        item = ddb().get_item(TableName=self.table, Key=marshal(_FIELDS_KEY), ConsistentRead=True).get("Item")
        return [FieldDefinition.from_dict(d) for d in unmarshal(item).get("fields") or []] if item else []

    def put_field_definitions(self, definitions: List[FieldDefinition], *, author: str, at: str) -> None:
        ddb().put_item(TableName=self.table, Item=marshal({**_FIELDS_KEY, "fields": [d.to_dict() for d in definitions],
                                                           "saved_by": author, "saved_at": at}))

    # ---- erasure ---------------------------------------------------------------------------------------
    def forget_identity(self, customer_key: str) -> int:
        identity = self.identity(customer_key)
        home = Identity(customer_key=customer_key, customer_id="").home_customer_id
        profiles = {home} | ({identity.customer_id} if identity else set())
        deleted = 0
        keys = [_identity_key(customer_key)] + [_link_key(p, customer_key) for p in profiles]
        keys += [_handle_key(h, customer_key) for h in (identity.handles if identity else [])]
        for key in keys:
            deleted += self._delete(key)
        for customer_id in profiles:
            items = list(query_all(TableName=self.table, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                                   ExpressionAttributeValues=marshal_values({":pk": f"PROFILE#{customer_id}"})))
            orphan = not any(item["sk"].startswith("KEY#") for item in items)
            for item in items:
                names_it = customer_key in (item.get("customer_keys") or [])
                if orphan or (item["sk"].startswith("AUDIT#") and names_it):
                    deleted += self._delete({"pk": item["pk"], "sk": item["sk"]})
        return deleted

    def _delete(self, key: Dict[str, str]) -> int:
        answer = ddb().delete_item(TableName=self.table, Key=marshal(key), ReturnValues="ALL_OLD")
        return 1 if answer.get("Attributes") else 0
