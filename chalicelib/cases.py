"""The Case: what an agent works on. Pure domain rules, no storage.

A case starts from one mention that triage said deserves an answer; the
customer's follow-ups join it while it is active. Keys for the inbox indexes
are derived here so the store never has to know what "newest" or "most
urgent" means.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, Iterable, Optional

from chalicelib.mention import Mention

STATUSES = ("open", "pending", "resolved", "closed")
ACTIVE_STATUSES = ("open", "pending")
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
# Which status changes an agent may make: a closed case stays closed, a new
# message from the customer opens a new case instead.
ALLOWED_TRANSITIONS = {
    "open": {"pending", "resolved", "closed"},
    "pending": {"open", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": set(),
}


class InvalidTransition(ValueError):
    pass


def case_id_for(mention_id: str) -> str:
    """Deterministic, so a mention processed twice can only ever make one case."""
    return "c_" + hashlib.sha256(mention_id.encode("utf-8")).hexdigest()[:16]


def inbox_keys(team: str, status: str, priority: str, created_at: str, case_id: str) -> Dict[str, str]:
    rank = PRIORITY_RANK.get(priority, PRIORITY_RANK["normal"])
    return {
        "inbox_pk": f"{team}#{status}",
        "inbox_time_sk": f"{created_at}#{case_id}",
        "inbox_priority_sk": f"{rank}#{created_at}#{case_id}",
    }


def customer_sort_key(status: str, created_at: str) -> str:
    return ("active" if status in ACTIVE_STATUSES else "done") + "#" + created_at


def new_case(mention: Mention, triage: Dict[str, Any], *, team: str, assignee: Optional[str], now: str) -> Dict[str, Any]:
    case_id = case_id_for(mention.id)
    case = {
        "case_id": case_id,
        "status": "open",
        "team": team,
        "assignee": assignee,
        "priority": triage.get("priority", "normal"),
        "category": triage.get("category"),
        "sentiment": triage.get("sentiment"),
        "sentiment_score": triage.get("sentiment_score"),
        "tags": list(triage.get("tags") or []),
        "lang": triage.get("lang") or mention.lang,
        "escalated": bool(triage.get("escalate")),
        "why": list(triage.get("why") or []),
        "platform": mention.platform,
        "customer_key": mention.customer_key,
        "customer": {
            "platform": mention.platform,
            "id": mention.author.id,
            "handle": mention.author.handle,
            "name": mention.author.name,
            "verified": mention.author.verified,
            "followers": mention.author.followers,
        },
        # Where a reply goes: the customer's latest post in the case.
        "reply_target": reply_target(mention),
        "first_mention_id": mention.id,
        "mention_count": 1,
        "created_at": now,
        "updated_at": now,
    }
    case.update(inbox_keys(team, "open", case["priority"], now, case_id))
    case["customer_pk"] = mention.customer_key
    case["customer_sk"] = customer_sort_key("open", now)
    return case


def reply_target(mention: Mention) -> Dict[str, Any]:
    return {
        "platform": mention.platform,
        "kind": mention.kind,
        "platform_id": mention.platform_id,
        "author_id": mention.author.id,
        "conversation_id": mention.conversation_id,
        "source_id": mention.source_id,
        "addressed_to_brand": mention.addressed_to_brand,
    }


def check_transition(current: str, new: str) -> None:
    if new not in STATUSES:
        raise InvalidTransition(f"status must be one of {', '.join(STATUSES)}")
    if new == current:
        return
    if new not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"a {current} case cannot become {new}")


def status_change_fields(case: Dict[str, Any], new_status: str, now: str) -> Dict[str, Any]:
    """Attributes to write when a case changes status, inbox keys included."""
    fields: Dict[str, Any] = {"status": new_status, "updated_at": now}
    fields.update(inbox_keys(case["team"], new_status, case["priority"], case["created_at"], case["case_id"]))
    fields["customer_sk"] = customer_sort_key(new_status, case["created_at"])
    if new_status in ("resolved", "closed") and not case.get("resolved_at"):
        fields["resolved_at"] = now
    return fields


def public_view(case: Dict[str, Any]) -> Dict[str, Any]:
    """The case as the API shows it: index keys are storage detail."""
    hidden = {"pk", "sk", "inbox_pk", "inbox_time_sk", "inbox_priority_sk", "customer_pk", "customer_sk"}
    return {k: v for k, v in case.items() if k not in hidden}


def strip_keys(items: Iterable[Dict[str, Any]]) -> list:
    return [{k: v for k, v in item.items() if k not in ("pk", "sk")} for item in items]
