"""Metered usage in the settings table: one item per day x stage x function x channel, added to atomically.

Keys: ``pk = COST#<YYYY-MM>``, ``sk = <YYYY-MM-DD>#<stage>#<function>#<channel>``.
A month is one partition and its days are the start of the sort key, so a
report of any period reads one Query per calendar month it touches (a
31-day period: one or two), with ``sk BETWEEN "<from>#" AND "<to>$"``
('$' sorts just after '#', so the last day's items are in). Writes are
rare (a container flushes at most once a minute, ``domain/metering.py``),
so one partition per month is far from DynamoDB's per-partition limits.

Each usage kind is an attribute, added to with ``ADD`` (atomic, and it
creates the item and the attribute on first use); kind names contain
dots, which an update expression would read as paths, so every name goes
through ``ExpressionAttributeNames``. Nothing else is stored on the item
(the day, stage, function and channel are in the sort key): the item stays
under 1 KB, so each flush's write costs 1 write unit.

Reads are eventually consistent (half the price): a report a second late
is fine. Items are kept: a month of them is about a megabyte.
"""
from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.adapters.dynamo import ddb, query_all

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEY_ATTRIBUTES = ("pk", "sk")


class DynamoCostStore:
    def __init__(self, table: str, stage: Optional[str] = None):
        self.table = table
        self._stage = stage

    @property
    def stage(self) -> str:
        if self._stage is None:
            from chalicelib.config import settings

            self._stage = settings().stage
        return self._stage

    def add_usage(self, day: str, function: str, channel: str, usage: Mapping[str, float]) -> None:
        _check_day(day)
        quantities = {kind: quantity for kind, quantity in usage.items() if quantity}
        if not quantities:
            return
        names = {f"#k{i}": kind for i, kind in enumerate(quantities)}
        values = {f":v{i}": {"N": _number(quantity)} for i, quantity in enumerate(quantities.values())}
        ddb().update_item(
            TableName=self.table,
            Key={"pk": {"S": f"COST#{day[:7]}"}, "sk": {"S": sort_key(day, self.stage, function, channel)}},
            UpdateExpression="ADD " + ", ".join(f"#k{i} :v{i}" for i in range(len(quantities))),
            ExpressionAttributeNames=names, ExpressionAttributeValues=values,
        )

    def usage_rows(self, from_day: str, to_day: str) -> List[Dict[str, Any]]:
        _check_day(from_day)
        _check_day(to_day)
        rows: List[Dict[str, Any]] = []
        for month in months(from_day, to_day):
            for item in query_all(
                TableName=self.table, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                ExpressionAttributeValues={":p": {"S": f"COST#{month}"}, ":a": {"S": f"{from_day}#"},
                                           ":b": {"S": f"{to_day}$"}},
            ):
                rows.append(_row(item))
        return rows


def sort_key(day: str, stage: str, function: str, channel: str) -> str:
    return "#".join([day, _part(stage), _part(function), _part(channel)])


def months(from_day: str, to_day: str) -> List[str]:
    """The calendar months (``YYYY-MM``) from ``from_day``'s to ``to_day``'s; none when from > to."""
    start, end = date.fromisoformat(from_day), date.fromisoformat(to_day)
    found: List[str] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _row(item: Mapping[str, Any]) -> Dict[str, Any]:
    day, stage, function, channel = _split(str(item["sk"]))
    usage = {str(k): float(v) for k, v in item.items() if k not in _KEY_ATTRIBUTES and isinstance(v, (int, float))}
    return {"day": day, "stage": stage, "function": function, "channel": channel, "usage": usage}


def _split(sk: str) -> Tuple[str, str, str, str]:
    parts = sk.split("#", 3)
    parts += [""] * (4 - len(parts))
    return parts[0], parts[1], parts[2], parts[3]


def _part(name: str) -> str:
    """A key part never holds '#' (it separates them); an empty one is named."""
    return (name or "-").replace("#", "_")


def _number(quantity: float) -> str:
    """DynamoDB's number text: exact decimal digits of the float, never an exponent."""
    if (isinstance(quantity, bool) or not isinstance(quantity, (int, float)) or not math.isfinite(quantity)
            or quantity < 0):
        raise ValueError(f"usage quantities are finite numbers, zero or more, not {quantity!r}")
    return format(Decimal(repr(quantity)), "f")


def _check_day(day: str) -> None:
    if not isinstance(day, str) or not _DAY.match(day):
        raise ValueError(f"a day is YYYY-MM-DD, not {day!r}")
    date.fromisoformat(day)
