"""Inbox filters: which cases of a listing an agent wants to see. Pure data and rules.

``GET /cases?assignee=me|<agent>|none&priority=&category=&platform=&lang=&tag=&escalated=true|false``
combines with ``status``, ``order`` and ``sla``. The store applies a filter where it reads (on the
small attributes its index entries carry) and checks it again on each case read from the table
(``matches``), so a page is full unless the listing ends, whatever the filter drops.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from chalicelib.domain.errors import BadRequest
from chalicelib.domain.limits import MAX_ID_LENGTH, id_problem

PRIORITIES = ("urgent", "high", "normal", "low")
PLATFORMS = ("x", "facebook", "instagram", "messenger", "whatsapp")
# Triage's vocabulary (chalicelib/triage/decide.py CATEGORIES; kept equal by a test): the domain
# imports nothing of triage.
CATEGORIES = ("complaint", "question", "product_feedback", "sales_lead", "praise", "industry_discussion", "noise")
# Tags as triage rules write them (chalicelib/triage/rules.py _TAG_RE): lower-case letters, digits, _ - :
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_:\-]{0,39}$")
LANG_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})?$")
UNASSIGNED = "none"  # assignee=none: waiting for an agent
# Query parameters GET /cases takes; any other is refused, so a typo is not a silently ignored filter.
FILTER_PARAMS = ("assignee", "priority", "category", "platform", "lang", "tag", "escalated")
LISTING_PARAMS = ("status", "order", "sla", "limit", "cursor", "team") + FILTER_PARAMS


@dataclass(frozen=True)
class InboxFilter:
    assignee: Optional[str] = None   # an agent id, or UNASSIGNED
    priority: Optional[str] = None
    category: Optional[str] = None
    platform: Optional[str] = None
    lang: Optional[str] = None
    tag: Optional[str] = None
    escalated: Optional[bool] = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in asdict(self).values())

    def matches(self, case: Any) -> bool:
        """Whether a case (domain.case.Case) passes every condition given."""
        if self.assignee == UNASSIGNED and case.assignee:
            return False
        if self.assignee not in (None, UNASSIGNED) and case.assignee != self.assignee:
            return False
        for name in ("priority", "category", "platform", "lang"):
            wanted = getattr(self, name)
            if wanted is not None and getattr(case, name) != wanted:
                return False
        if self.tag is not None and self.tag not in (case.tags or []):
            return False
        if self.escalated is not None and bool(case.escalated) != self.escalated:
            return False
        return True

    def conditions(self) -> Dict[str, Any]:
        """The given conditions by name (what a cursor is bound to)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def key(self) -> Tuple[Tuple[str, Any], ...]:
        return tuple(sorted(self.conditions().items()))


def parse_filter(params: Mapping[str, str], *, me: str) -> InboxFilter:
    """The filter in a listing's query (400 naming the parameter that is wrong)."""
    unknown = sorted(set(params) - set(LISTING_PARAMS))
    if unknown:
        raise BadRequest(f"unknown query parameter(s) {', '.join(unknown)}; GET /cases takes "
                         + ", ".join(LISTING_PARAMS))
    values: Dict[str, Any] = {}
    assignee = params.get("assignee")
    if assignee is not None:
        if assignee == "me":
            values["assignee"] = me
        elif assignee == UNASSIGNED:
            values["assignee"] = UNASSIGNED
        else:
            problem = id_problem(assignee, max_length=MAX_ID_LENGTH)
            if problem:
                raise BadRequest(f"query 'assignee' must be me, none or an agent id; it {problem}")
            values["assignee"] = assignee
    for name, allowed in (("priority", PRIORITIES), ("category", CATEGORIES), ("platform", PLATFORMS)):
        value = params.get(name)
        if value is not None:
            if value not in allowed:
                raise BadRequest(f"query '{name}' must be one of {', '.join(allowed)}")
            values[name] = value
    lang = params.get("lang")
    if lang is not None:
        if not LANG_PATTERN.match(lang):
            raise BadRequest("query 'lang' must be a language code such as en or ja")
        values["lang"] = lang
    tag = params.get("tag")
    if tag is not None:
        if not TAG_PATTERN.match(tag):
            raise BadRequest("query 'tag' must be a tag: 1 to 40 lower-case letters, digits, _ - or :")
        values["tag"] = tag
    escalated = params.get("escalated")
    if escalated is not None:
        if escalated not in ("true", "false"):
            raise BadRequest("query 'escalated' must be true or false")
        values["escalated"] = escalated == "true"
    return InboxFilter(**values)
