"""Canned replies and brand-voice rules on DynamoDB (the settings table). Every read is a key or a Query.

Layout (settings table):
- pk TPL#<team>, sk T#<template id>: the template (name, bodies, tags, ``usage``): a team's list is one
  Query, in id order, with ``?lang=`` as a filter on ``bodies.<lang>`` (pages are filled past it).
- pk TPLID#<template id>, sk TEAM: which team holds it, so ``/admin/templates/{id}`` finds it by id.
- pk TPLTEAMS, sk <team>: teams with templates, for a list over every team (one small Query).
- pk BRANDVOICE, sk RULES: the rules document (JSON), with who saved it and when.

A save writes the template, its pointer and its team entry in one transaction; the usage counter is
never overwritten by a save (``if_not_exists``), and moves with the template when its team changes.
A use is one UpdateItem with ADD.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.adapters.dynamo import ddb, is_conditional_failure, marshal, marshal_values, unmarshal
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.templates import LANGS, MAX_TEMPLATE_ID, Template

_TEAM, _POINTER, _TEAMS = "TPL#", "TPLID#", "TPLTEAMS"
_SK = "T#"
_BRAND = ("BRANDVOICE", "RULES")
_FIELDS = ("template_id", "team", "name", "bodies", "tags", "updated_at", "updated_by")


class DynamoTemplateStore:
    def __init__(self, table: str) -> None:
        self.table = table

    # ---- templates ----------------------------------------------------------------------

    def _get(self, pk: str, sk: str, projection: Optional[str] = None) -> Optional[Dict[str, Any]]:
        kwargs: Dict[str, Any] = {"TableName": self.table, "Key": marshal({"pk": pk, "sk": sk}), "ConsistentRead": True}
        if projection:
            kwargs["ProjectionExpression"] = projection
        item = ddb().get_item(**kwargs).get("Item")
        return unmarshal(item) if item else None

    def _team_of(self, template_id: str) -> Optional[str]:
        pointer = self._get(_POINTER + template_id, "TEAM", "team")
        return str(pointer["team"]) if pointer else None

    def get_template(self, template_id: str) -> Optional[Template]:
        team = self._team_of(template_id)
        if team is None:
            return None
        item = self._get(_TEAM + team, _SK + template_id)
        return Template.from_dict(item) if item else None

    def put_template(self, template: Template) -> bool:
        old_team = self._team_of(template.template_id)
        key = {"pk": _TEAM + template.team, "sk": _SK + template.template_id}
        others = [
            {"Put": {"TableName": self.table, "Item": marshal({"pk": _POINTER + template.template_id, "sk": "TEAM",
                                                                "team": template.team})}},
            {"Put": {"TableName": self.table, "Item": marshal({"pk": _TEAMS, "sk": template.team,
                                                                "team": template.team})}},
        ]
        data = template.to_dict()
        if old_team is not None and old_team != template.team:
            old = self._get(_TEAM + old_team, _SK + template.template_id)
            usage = int(old.get("usage") or 0) if old else 0
            writes: List[Dict[str, Any]] = [
                {"Delete": {"TableName": self.table,
                            "Key": marshal({"pk": _TEAM + old_team, "sk": _SK + template.template_id})}},
                {"Put": {"TableName": self.table, "Item": marshal({**key, **data, "usage": usage})}},
            ]
        else:
            names = {f"#f{i}": name for i, name in enumerate(_FIELDS)}
            values = {f":v{i}": data[name] for i, name in enumerate(_FIELDS)}
            sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(_FIELDS)))
            writes = [{"Update": {
                "TableName": self.table, "Key": marshal(key),
                "UpdateExpression": f"SET {sets}, #usage = if_not_exists(#usage, :zero)",
                "ExpressionAttributeNames": {**names, "#usage": "usage"},
                "ExpressionAttributeValues": marshal_values({**values, ":zero": 0}),
            }}]
        ddb().transact_write_items(TransactItems=writes + others)
        return old_team is None

    def delete_template(self, template_id: str) -> Optional[Template]:
        team = self._team_of(template_id)
        if team is None:
            return None
        item = self._get(_TEAM + team, _SK + template_id)
        ddb().transact_write_items(TransactItems=[
            {"Delete": {"TableName": self.table, "Key": marshal({"pk": _TEAM + team, "sk": _SK + template_id})}},
            {"Delete": {"TableName": self.table, "Key": marshal({"pk": _POINTER + template_id, "sk": "TEAM"})}},
        ])
        return Template.from_dict(item) if item else None

    def templates_page(self, team: str, *, lang: Optional[str] = None, limit: int = 50,
                       after: Optional[str] = None) -> Tuple[List[Template], Optional[str]]:
        pk = _TEAM + team
        query: Dict[str, Any] = {"TableName": self.table, "ConsistentRead": True,
                                 "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
                                 "ExpressionAttributeValues": marshal_values({":pk": pk, ":sk": _SK})}
        if lang is not None:
            if lang not in LANGS:
                raise ValueError(f"unknown language {lang!r}")
            query["FilterExpression"] = "attribute_exists(bodies.#lang)"
            query["ExpressionAttributeNames"] = {"#lang": lang}
        if after:
            state = decode_cursor(after)
            last = state.get("i")
            if state.get("t") != team or not isinstance(last, str) or not 0 < len(last) <= MAX_TEMPLATE_ID:
                raise InvalidCursor("query 'cursor' is not one this API issued for these templates; "
                                    "start again without it")
            query["ExclusiveStartKey"] = marshal({"pk": pk, "sk": _SK + last})
        # One past the page: a page with more to come is full, and the last one is never empty.
        found: List[Dict[str, Any]] = []
        while len(found) <= limit:
            query["Limit"] = max(limit + 1 - len(found), 25 if lang else 1)
            answer = ddb().query(**query)
            found.extend(unmarshal(item) for item in answer.get("Items", []))
            last_key = answer.get("LastEvaluatedKey")
            if not last_key:
                break
            query["ExclusiveStartKey"] = last_key
        page = [Template.from_dict(item) for item in found[:limit]]
        position = encode_cursor({"t": team, "i": page[-1].template_id}) if len(found) > limit and page else None
        return page, position

    def template_teams(self) -> List[str]:
        answer = ddb().query(TableName=self.table, KeyConditionExpression="pk = :pk",
                             ExpressionAttributeValues=marshal_values({":pk": _TEAMS}),
                             ProjectionExpression="sk", ConsistentRead=True)
        teams = [unmarshal(item)["sk"] for item in answer.get("Items", [])]
        while answer.get("LastEvaluatedKey"):  # pragma: no cover - a team name is small: 1 MB is ~10,000 teams
            answer = ddb().query(TableName=self.table, KeyConditionExpression="pk = :pk",
                                 ExpressionAttributeValues=marshal_values({":pk": _TEAMS}), ProjectionExpression="sk",
                                 ConsistentRead=True, ExclusiveStartKey=answer["LastEvaluatedKey"])
            teams.extend(unmarshal(item)["sk"] for item in answer.get("Items", []))
        return sorted(str(t) for t in teams)

    def count_use(self, template_id: str, team: str) -> None:
        try:
            ddb().update_item(TableName=self.table, Key=marshal({"pk": _TEAM + team, "sk": _SK + template_id}),
                              UpdateExpression="ADD #usage :one", ConditionExpression="attribute_exists(pk)",
                              ExpressionAttributeNames={"#usage": "usage"},
                              ExpressionAttributeValues=marshal_values({":one": 1}))
        except Exception as err:
            if not is_conditional_failure(err):
                raise

    # ---- brand voice ----------------------------------------------------------------------

    def get_brand_voice(self) -> Optional[Dict[str, Any]]:
        item = self._get(*_BRAND)
        if not item:
            return None
        return {"rules": json.loads(item["rules"]), "updated_by": item.get("updated_by", ""),
                "updated_at": item.get("updated_at", "")}

    def put_brand_voice(self, rules: Dict[str, Any], *, author: str, at: str) -> None:
        ddb().put_item(TableName=self.table, Item=marshal({
            "pk": _BRAND[0], "sk": _BRAND[1], "rules": json.dumps(rules, ensure_ascii=False, separators=(",", ":")),
            "updated_by": author, "updated_at": at}))
