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
INBOX_ORDERS = ("newest", "priority", "due")
SLA_FILTERS = ("warning", "breached")
NO_DEADLINE = "9999-12-31T23:59:59.999999Z"  # sorts after every real deadline


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
    # When the customer posted it: the platform's reply windows run from here (domain/windows.py).
    posted_at: str = ""

    @classmethod
    def of(cls, mention: Mention) -> "ReplyTarget":
        return cls(platform=mention.platform, kind=mention.kind, platform_id=mention.platform_id,
                   author_id=mention.author.id, conversation_id=mention.conversation_id,
                   source_id=mention.source_id, addressed_to_brand=mention.addressed_to_brand,
                   posted_at=mention.created_at)

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
    # The opening of the customer's first post, for the inbox list (the whole post is the mention's).
    excerpt: str = ""
    mention_count: int = 1
    # ---- honest timestamps (the SLA clocks and the KPIs read them) ----
    customer_posted_at: Optional[str] = None  # the platform's time of the first post: clocks start here
    received_at: Optional[str] = None         # when socialcare received that post
    assigned_at: Optional[str] = None         # when the current assignee got it
    first_response_at: Optional[str] = None   # our first reply that reached the platform (not automatic ones)
    last_response_at: Optional[str] = None
    response_count: int = 0
    # The customer's earliest message after our latest response (None when we spoke last), and our
    # first response after it: the current next-response cycle. Finished cycles move to response_cycles.
    follow_up_at: Optional[str] = None
    next_response_at: Optional[str] = None
    response_cycles: List[List[str]] = field(default_factory=list)   # [[follow_up_at, next_response_at], ...]
    pauses: List[List[Optional[str]]] = field(default_factory=list)  # [[start, end or None]]: clocks stand still
    resolved_at: Optional[str] = None
    reopened_at: Optional[str] = None
    reopen_count: int = 0
    # ---- customer satisfaction (services/csat.py): asked once, after resolution, where the channel allows ----
    csat_status: Optional[str] = None      # asked, not_asked (channel forbids / opted out), answered
    csat_asked_at: Optional[str] = None
    csat_score: Optional[int] = None       # 1..5
    csat_comment: Optional[str] = None
    csat_answered_at: Optional[str] = None
    csat_agent: Optional[str] = None       # the agent the answer rates (the assignee when it was asked)
    # ---- service levels, as last evaluated (services/sla.py); the store indexes them ----
    sla_state: str = "ok"
    sla_due_at: Optional[str] = None       # earliest due moment of a running clock: the inbox's "due first"
    sla_warning_at: Optional[str] = None   # earliest warning moment of a running clock
    sla_next_at: Optional[str] = None      # when the scheduler must look at this case next (None: never)
    sla_fired: List[str] = field(default_factory=list)  # crossings whose actions ran (Crossing.key)
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
        if order == "due":  # what is due first; cases without a running deadline last, oldest first
            return (self.sla_due_at or NO_DEADLINE, self.created_at, self.case_id)
        return (self.created_at, self.case_id)

    @property
    def waiting_key(self) -> Tuple[Any, ...]:
        """Which waiting case an agent with room gets first: SLA due first, then priority, then oldest."""
        return (self.sla_due_at or NO_DEADLINE, self.priority_rank, self.created_at, self.case_id)

    def sla_state_at(self, now: str) -> str:
        """The state its stored marks give at ``now`` (breached, warning or ok), between evaluations."""
        if self.sla_due_at and self.sla_due_at <= now:
            return "breached"
        if self.sla_warning_at and self.sla_warning_at <= now:
            return "warning"
        return "ok"

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["reply_target"] = self.reply_target.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Case":
        known = _known(cls, data)
        known["reply_target"] = ReplyTarget.from_dict(data["reply_target"])
        for name in ("tags", "why", "sla_fired"):
            known[name] = list(known.get(name) or [])
        known["pauses"] = [list(p) for p in known.get("pauses") or []]
        known["response_cycles"] = [list(c) for c in known.get("response_cycles") or []]
        for name in ("mention_count", "response_count", "reopen_count", "version", "csat_score"):
            if known.get(name) is not None:
                known[name] = int(known[name])  # DynamoDB gives numbers back as Decimal
        return cls(**known)

    @property
    def waiting_for_agent(self) -> bool:
        """Open with nobody on it: it waits in its team's queue for the next agent with room."""
        return self.status == "open" and not self.assignee

    @property
    def open_pause(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None

    def public_view(self) -> Dict[str, Any]:
        """The case as the API shows it (the live SLA clocks are added by the service)."""
        view = self.to_dict()
        for internal in ("version", "sla_next_at", "sla_fired", "sla_due_at", "sla_warning_at", "sla_state"):
            view.pop(internal, None)
        return view


def _known(cls: Any, data: Dict[str, Any]) -> Dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def case_id_for(mention_id: str) -> str:
    """Deterministic, so a mention processed twice can only ever make one case."""
    return "c_" + hashlib.sha256(mention_id.encode("utf-8")).hexdigest()[:16]


# A case keeps at most this many pauses and response cycles; past it the oldest are folded
# together (pauses: the gap between them then counts as paused too; said in the README).
MAX_PAUSES = 100
MAX_RESPONSE_CYCLES = 100


def new_case(mention: Mention, triage: Dict[str, Any], *, team: str, assignee: Optional[str], now: str) -> Case:
    received = triage.get("received_at")
    return Case(
        customer_posted_at=mention.created_at or now,
        received_at=received if isinstance(received, str) and received else now,
        assigned_at=now if assignee else None,
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
        excerpt=excerpt_of(mention.text),
        created_at=now,
        updated_at=now,
    )


EXCERPT_LENGTH = 140


def excerpt_of(text: str) -> str:
    """The first EXCERPT_LENGTH characters of a post on one line (an inbox row, not the record)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= EXCERPT_LENGTH else flat[:EXCERPT_LENGTH - 1] + "…"


def check_transition(current: str, new: str) -> None:
    if new not in STATUSES:
        raise InvalidTransition(f"status must be one of {', '.join(STATUSES)}")
    if new == current:
        return
    if new not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"a {current} case cannot become {new}")


def with_status(case: Case, new_status: str, now: str) -> Case:
    """The case after a status change (the transition is checked by the caller).

    Pending (waiting on the customer) pauses the clocks until the case is open
    again or resolved. Reopening clears ``resolved_at`` and adds the time the
    case spent resolved as a pause, so that time never counts against the team.
    """
    changed = replace(case, status=new_status, updated_at=now, pauses=[list(p) for p in case.pauses])
    if new_status == case.status:
        return changed
    if case.open_pause:
        changed.pauses[-1][1] = now
    if new_status in ("resolved", "closed"):
        if not case.resolved_at:
            changed.resolved_at = now
    elif not case.active:  # reopened: it is no longer resolved
        changed.resolved_at = None
        changed.reopened_at = now
        changed.reopen_count = case.reopen_count + 1
        if case.resolved_at:
            _add_pause(changed, case.resolved_at, now)
    if new_status == "pending":
        _add_pause(changed, now, None)
    return changed


def _add_pause(case: Case, start: str, end: Optional[str]) -> None:
    if case.pauses and case.pauses[-1][1] is not None and case.pauses[-1][1] >= start:
        case.pauses[-1][1] = end  # touches the previous pause: one pause
        return
    case.pauses.append([start, end])
    if len(case.pauses) > MAX_PAUSES:
        first, second = case.pauses[0], case.pauses[1]
        case.pauses[:2] = [[first[0], second[1]]]


def with_assignee(case: Case, assignee: Optional[str], now: str, *, team: Optional[str] = None) -> Case:
    """The case handed to ``assignee`` (None: back to the team's queue), optionally in another team."""
    return replace(case, assignee=assignee, team=team or case.team, updated_at=now,
                   assigned_at=now if assignee else None)


def with_response(case: Case, at: str) -> Case:
    """The case after one of our replies reached the platform at ``at`` (automatic ones do not count).

    The first response stops the first-response clock; a response after the
    customer wrote again stops the next-response clock.
    """
    changed = replace(case, last_response_at=max(at, case.last_response_at or at),
                      response_count=case.response_count + 1)
    if not case.first_response_at:
        changed.first_response_at = at
        changed.follow_up_at = None  # messages before our first response were all on the first-response clock
    elif case.follow_up_at and not case.next_response_at and at >= case.follow_up_at:
        changed.next_response_at = at
    return changed


def with_follow_up(case: Case, mention: Mention, priority: str, now: str) -> Case:
    """The case after the customer wrote again: replies go to the newest post,
    a more urgent post raises the priority, and a pending case opens again."""
    changed = replace(case, reply_target=ReplyTarget.of(mention), mention_count=case.mention_count + 1,
                      updated_at=now, response_cycles=[list(c) for c in case.response_cycles])
    posted = mention.created_at or now
    if case.first_response_at and posted >= (case.last_response_at or case.first_response_at):
        if case.follow_up_at and case.next_response_at:  # the last cycle was answered: a new one starts
            changed.response_cycles.append([case.follow_up_at, case.next_response_at])
            del changed.response_cycles[:-MAX_RESPONSE_CYCLES]
            changed.follow_up_at, changed.next_response_at = posted, None
        elif not case.follow_up_at:
            changed.follow_up_at = posted
        else:  # still unanswered: the earliest message keeps the deadline
            changed.follow_up_at = min(case.follow_up_at, posted)
    if PRIORITY_RANK.get(priority, 2) < case.priority_rank:
        changed.priority = priority
    if case.status == "pending":
        changed = with_status(changed, "open", now)
    return changed
