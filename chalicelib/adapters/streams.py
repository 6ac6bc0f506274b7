"""The cases table's DynamoDB stream, read as stored changes of cases.

The stream (NEW_AND_OLD_IMAGES, infra/template.yaml) carries every write to
the cases table: the cases themselves (pk ``CASE#<id>``, sk ``META``) and
everything else the table holds (history, the customer's ledger, receipts,
notifications). Only the META items are changes of a case; the rest is
skipped here, so the key layout stays in the adapters.

A record of a new case (INSERT) has no old image; a removed case (REMOVE: TTL
or erasure) has no new image; a change of anything else of the item (MODIFY)
has both.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

from chalicelib.adapters.dynamo import unmarshal
from chalicelib.adapters.stores import case_from_item
from chalicelib.domain.case import Case
from chalicelib.ports import CaseChange


def _image(record: Mapping[str, Any], name: str) -> Optional[Case]:
    image: Optional[Dict[str, Any]] = (record.get("dynamodb") or {}).get(name)
    return case_from_item(unmarshal(image)) if image else None


def is_case_record(record: Mapping[str, Any]) -> bool:
    """Whether a stream record is a change of a case (its META item), judged by its keys alone."""
    keys = unmarshal((record.get("dynamodb") or {}).get("Keys") or {})
    return keys.get("sk") == "META" and str(keys.get("pk", "")).startswith("CASE#")


def case_change(record: Mapping[str, Any]) -> Optional[CaseChange]:
    """The change one stream record (Lambda's event shape) stores; None for a record of any other item."""
    if not is_case_record(record):
        return None
    old, new = _image(record, "OldImage"), _image(record, "NewImage")
    if old is None and new is None:  # a KEYS_ONLY view or a record without images: nothing to measure
        return None
    return CaseChange(old=old, new=new)


def case_changes(records: Iterable[Mapping[str, Any]]) -> List[CaseChange]:
    """The changes of cases among a batch of stream records, in stream order (the order of each case's writes)."""
    return [change for change in (case_change(record) for record in records) if change is not None]
