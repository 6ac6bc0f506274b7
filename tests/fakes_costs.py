"""An in-memory ``CostStore`` that behaves as ``adapters/cost_store.py`` does (tests/contract keeps them alike).

Kept apart from tests/fakes.py for now; ``fake_deps(costs=FakeCostStore())`` puts it in a Deps.
"""
from __future__ import annotations

import math
import re
from datetime import date
from typing import Any, Dict, List, Mapping, Tuple

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_day(day: str) -> None:
    if not isinstance(day, str) or not _DAY.match(day):
        raise ValueError(f"a day is YYYY-MM-DD, not {day!r}")
    date.fromisoformat(day)


def _part(name: str) -> str:
    return (name or "-").replace("#", "_")


class FakeCostStore:
    def __init__(self, stage: str = "test") -> None:
        self.stage = stage
        self.items: Dict[Tuple[str, str, str, str], Dict[str, float]] = {}
        self.writes = 0          # add_usage calls that wrote (an UpdateItem each)
        self.queries = 0         # Queries the Dynamo store would make (one per calendar month read)

    def add_usage(self, day: str, function: str, channel: str, usage: Mapping[str, float]) -> None:
        _check_day(day)
        quantities = {k: q for k, q in usage.items() if q}
        for quantity in quantities.values():
            if (isinstance(quantity, bool) or not isinstance(quantity, (int, float)) or not math.isfinite(quantity)
                    or quantity < 0):
                raise ValueError(f"usage quantities are finite numbers, zero or more, not {quantity!r}")
        if not quantities:
            return
        item = self.items.setdefault((day, _part(self.stage), _part(function), _part(channel)), {})
        for kind, quantity in quantities.items():
            item[kind] = item.get(kind, 0.0) + float(quantity)
        self.writes += 1

    def usage_rows(self, from_day: str, to_day: str) -> List[Dict[str, Any]]:
        _check_day(from_day)
        _check_day(to_day)
        start, end = date.fromisoformat(from_day), date.fromisoformat(to_day)
        if start <= end:
            self.queries += (end.year - start.year) * 12 + end.month - start.month + 1
        # In sort-key order, as DynamoDB returns them: "<day>#<stage>#<function>#<channel>".
        keys = sorted((k for k in self.items if from_day <= k[0] <= to_day), key=lambda k: "#".join(k))
        return [{"day": k[0], "stage": k[1], "function": k[2], "channel": k[3], "usage": dict(self.items[k])}
                for k in keys]
