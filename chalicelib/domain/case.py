"""The Case: what an agent works on. Pure domain rules, no storage.

A case starts from one mention that triage said deserves an answer; the
customer's follow-ups join it while it is active. Every change makes a new
``Case`` (``dataclasses.replace``); the store saves it only if nobody else
saved a newer version meanwhile (``version``), so two writers never lose
each other's change.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.domain.mention import Mention

STATUSES = ("open", "pending", "resolved", "closed")
ACTIVE_STATUSES = ("open", "pending")
PRIORITIES = ("urgent", "high", "normal", "low")
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
# Which status changes an agent may make: a closed case stays closed, a new
# message from the customer opens a new case instead.
ALLOWED_TRANSITIONS = {
    "open": {"pending", "resolved", "closed"},
    "pending": {"open", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": set(),
}
INBOX_ORDERS = ("newest", "priority")


class InvalidTransition(ValueError):
    pass


@dataclass
class ReplyTarget:
    """Where a reply goes: the customer's latest post in the case."""

    platform: str
    kind: str
    platform_id: str
    author_id: str
    conversation_id: str = ""
    source_id: str = ""
    addressed_to_brand: bool = True

    @classmethod
    def of(cls, mention: Mention) -> "ReplyTarget":
        return cls(platform=mention.platform, kind=mention.kind, platform_id=mention.platform_id,
                   author_id=mention.author.id, conversation_id=mention.conversation_id,
                   source_id=mention.source_id, addressed_to_brand=mention.addressed_to_brand)

    @property
    def is_dm(self) -> bool:
        return self.kind == "dm"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ReplyTarget":
        return cls(**_known(cls, data))


@dataclass
class Case:
    case_id: str
    team: str
    platform: str
    customer_key: str
    customer: Dict[str, Any]
    reply_target: ReplyTarget
    created_at: str
    updated_at: str
    status: str = "open"
    assignee: Optional[str] = None
    priority: str = "normal"
    category: Optional[str] = None
    sentiment: Optional[str] = None
    sentiment_score: Optional[float] = None
    tags: List[str] = field(default_factory=list)
    lang: str = ""
    escalated: bool = False
    why: List[str] = field(default_factory=list)
    first_mention_id: str = ""
    mention_count: int = 1
    resolved_at: Optional[str] = None
    first_response_at: Optional[str] = None
    # Optimistic concurrency: the store saves a case only over the version it was read at.
    version: int = 0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def priority_rank(self) -> int:
        return PRIORITY_RANK.get(self.priority, PRIORITY_RANK["normal"])

    def sort_key(self, order: str) -> Tuple[Any, ...]:
        """How the inbox orders cases: newest first, or most urgent (then oldest) first."""
        if order == "priority":
            return (self.priority_rank, self.created_at, self.case_id)
        return (self.created_at, self.case_id)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["reply_target"] = self.reply_target.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Case":
        known = _known(cls, data)
        known["reply_target"] = ReplyTarget.from_dict(data["reply_target"])
        known["tags"] = list(known.get("tags") or [])
        known["why"] = list(known.get("why") or [])
        return cls(**known)

    def public_view(self) -> Dict[str, Any]:
        """The case as the API shows it."""
        view = self.to_dict()
        view.pop("version", None)
        return view


def _known(cls: Any, data: Dict[str, Any]) -> Dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def case_id_for(mention_id: str) -> str:
    """Deterministic, so a mention processed twice can only ever make one case."""
    return "c_" + hashlib.sha256(mention_id.encode("utf-8")).hexdigest()[:16]


def new_case(mention: Mention, triage: Dict[str, Any], *, team: str, assignee: Optional[str], now: str) -> Case:
    return Case(
        case_id=case_id_for(mention.id),
        team=team,
        assignee=assignee,
        priority=triage.get("priority") or "normal",
        category=triage.get("category"),
        sentiment=triage.get("sentiment"),
        sentiment_score=triage.get("sentiment_score"),
        tags=list(triage.get("tags") or []),
        lang=triage.get("lang") or mention.lang,
        escalated=bool(triage.get("escalate")),
        why=list(triage.get("why") or []),
        platform=mention.platform,
        customer_key=mention.customer_key,
        customer={
            "platform": mention.platform,
            "id": mention.author.id,
            "handle": mention.author.handle,
            "name": mention.author.name,
            "verified": mention.author.verified,
            "followers": mention.author.followers,
        },
        reply_target=ReplyTarget.of(mention),
        first_mention_id=mention.id,
        created_at=now,
        updated_at=now,
    )


def check_transition(current: str, new: str) -> None:
    if new not in STATUSES:
        raise InvalidTransition(f"status must be one of {', '.join(STATUSES)}")
    if new == current:
        return
    if new not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"a {current} case cannot become {new}")


def with_status(case: Case, new_status: str, now: str) -> Case:
    """The case after a status change (the transition is checked by the caller)."""
    changed = replace(case, status=new_status, updated_at=now)
    if new_status in ("resolved", "closed") and not case.resolved_at:
        changed.resolved_at = now
    if new_status in ACTIVE_STATUSES:
        changed.resolved_at = None  # reopened: it is no longer resolved
    return changed


def with_follow_up(case: Case, mention: Mention, priority: str, now: str) -> Case:
    """The case after the customer wrote again: replies go to the newest post,
    a more urgent post raises the priority, and a pending case opens again."""
    changed = replace(case, reply_target=ReplyTarget.of(mention), mention_count=case.mention_count + 1,
                      updated_at=now)
    if PRIORITY_RANK.get(priority, 2) < case.priority_rank:
        changed.priority = priority
    if case.status == "pending":
        changed = with_status(changed, "open", now)
    return changed
