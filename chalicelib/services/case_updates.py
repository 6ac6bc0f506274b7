"""Changing a stored case without losing a concurrent change.

Read, change, save over the version read; when another writer saved first,
read again and re-apply the change. The change is a pure function of the
case, so applying it again is always safe.
"""
from __future__ import annotations

from typing import Callable, Optional

from chalicelib.domain.case import Case
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.ports import CaseStore

MAX_ATTEMPTS = 5


def modify_case(cases: CaseStore, case_id: str, change: Callable[[Case], Optional[Case]]) -> Optional[Case]:
    """Apply ``change`` and save; returns the saved case, or None when ``change`` returned None (nothing to do).

    Raises NotFound when the case does not exist and Conflict when it kept
    changing under us (a person may reload and try again).
    """
    for _attempt in range(MAX_ATTEMPTS):
        case = cases.get(case_id)
        if case is None:
            raise NotFound(f"case '{case_id}' does not exist")
        changed = change(case)
        if changed is None:
            return None
        if cases.save(changed):
            return changed
    raise Conflict(f"case '{case_id}' kept changing while it was being updated; reload and try again")
