"""Ports: what the services need from the outside world, as ``typing.Protocol``s.

Adapters (``chalicelib.adapters``) implement them on DynamoDB, SQS, Secrets
Manager, S3 and the platform APIs; ``tests/fakes.py`` implements them in
memory. Stores take and return domain objects and own their keys: no
partition key, sort key, index name or position format leaves an adapter.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Tuple

from chalicelib.config import Settings
from chalicelib.domain.agent import Agent
from chalicelib.domain.case import Case
from chalicelib.domain.clock import now_iso
from chalicelib.domain.mention import Author, Mention, MentionRecord
from chalicelib.domain.reply import Reply

if TYPE_CHECKING:  # in annotations only: a handler that never needs the SLA, KPI or QA rules does not load them
    from chalicelib.domain.away import AwaySettings
    from chalicelib.domain.csat import SurveySettings
    from chalicelib.domain.customer import FieldDefinition, Identity, Profile
    from chalicelib.domain.feedback import Correction
    from chalicelib.domain.hours import Calendar
    from chalicelib.domain.inbox_filter import InboxFilter
    from chalicelib.domain.kpi import Delta
    from chalicelib.domain.notification import Notification
    from chalicelib.domain.qa import ReplyForReview, Rubric, SamplingPolicy
    from chalicelib.domain.sla import SlaPolicy
    from chalicelib.domain.templates import Template


@dataclass
class CaseHistory:
    """A case with what happened under it, oldest first."""

    case: Case
    mentions: List[Mention] = field(default_factory=list)
    events: List[Dict[str, Any]] = field(default_factory=list)
    replies: List[Reply] = field(default_factory=list)
    next_position: Optional[str] = None  # more history follows: pass it back as ``after``
    # When the case and all its items expire (epoch seconds); None while it is active (domain/retention.py).
    expires_at: Optional[int] = None


@dataclass
class InboxPage:
    """One team's cases in inbox order; ``positions[i]`` resumes the listing after ``cases[i]``."""

    cases: List[Case]
    positions: List[str]
    more: bool


@dataclass
class CasePage:
    """Case ids in some order; ``positions[i]`` resumes the listing after ``case_ids[i]``."""

    case_ids: List[str]
    positions: List[str]
    more: bool


@dataclass
class NotificationPage:
    """A person's notifications, newest first; ``next_position`` when more follow."""

    notifications: List[Notification]
    next_position: Optional[str]


@dataclass
class OpenResult:
    """What became of opening a case: ``opened``; ``exists`` (a repeated delivery);
    or ``customer_active`` (the customer already has ``active_case_id``: join it)."""

    outcome: str
    case_id: str
    assignee: Optional[str] = None
    active_case_id: Optional[str] = None


@dataclass(frozen=True)
class LedgerEntry:
    """One thing held about a customer identity: a ``case`` or a ``mention`` (by id)."""

    kind: str
    id: str


@dataclass
class LedgerPage:
    """A customer's ledger in key order; ``positions[i]`` resumes the listing after ``entries[i]``."""

    entries: List[LedgerEntry]
    positions: List[str]
    more: bool


@dataclass
class ErasedCase:
    """What erasing one case removed (all zero when a previous attempt removed it already)."""

    case_id: str
    case_removed: bool = False        # the case itself was deleted by this call
    items: int = 0                    # items of the case: the case, posts, events, replies
    deliveries: int = 0               # receipts mapping a sent message back to its reply
    released_agent: Optional[str] = None  # the assignee whose open-case count went down by one


@dataclass
class StoredMention:
    """A mention record as the mentions table holds it: the post, its triage, where it went."""

    mention_id: str
    state: str
    mention: Dict[str, Any]
    triage: Optional[Dict[str, Any]] = None
    case_id: Optional[str] = None
    received_epoch: Optional[int] = None
    expires_at: Optional[int] = None


class CustomerLedger(Protocol):
    """Everything held about a customer identity (``<platform>:<author id>``), found without a Scan:
    each mention claimed and each case opened for them is noted under their key. Erasure audit
    records (no personal data) live beside it."""

    def note_customer_mention(self, customer_key: str, mention_id: str, *, expires_at: int) -> None:
        """Note a mention of this customer (repeatable); the note expires with the mention record."""

    def note_customer_case(self, customer_key: str, case_id: str) -> None:
        """Note a case of this customer (repeatable). ``open_case`` notes the cases it opens itself."""

    def customer_ledger(self, customer_key: str, *, limit: int, after: Optional[str] = None) -> LedgerPage:
        """Up to ``limit`` entries (cases, then mentions) after the position ``after``
        (raises InvalidCursor for a position this store did not issue for that customer)."""

    def forget_customer_entry(self, customer_key: str, entry: LedgerEntry) -> None:
        """Remove one entry from the ledger (repeatable)."""

    def case_mention_ids(self, case_id: str) -> List[str]:
        """The ids of the posts attached to a case, even when the case itself is already gone."""

    def erase_case(self, case_id: str) -> ErasedCase:
        """Delete a case and every item under it, the receipts of its sent replies and the customer's
        active-case pointer to it; an active assigned case gives its agent one open case back (with the
        case's deletion, all or nothing). Repeatable: finishes what an interrupted call left."""

    def start_erasure(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """Record that erasure ``record["erasure_id"]`` began; returns the one in progress when there is one."""

    def pending_erasure(self, erasure_id: str) -> Optional[Dict[str, Any]]: ...

    def add_erasure_counts(self, erasure_id: str, counts: Mapping[str, int]) -> None:
        """Add to the running counts of an erasure in progress."""

    def finish_erasure(self, erasure_id: str, *, finished_at: str) -> Optional[Dict[str, Any]]:
        """All or nothing: the erasure in progress becomes a finished audit record (returned);
        None when none was in progress (another request finished it)."""

    def erasures(self, erasure_id: str) -> List[Dict[str, Any]]:
        """The finished audit records of one erasure id, oldest first."""


class CaseStore(CustomerLedger, Protocol):
    def create(self, case: Case) -> bool:
        """Store a new case as it is (no customer claim, no load change); False when it exists."""

    def open_case(self, case: Case, *, opened_event: Dict[str, Any]) -> OpenResult:
        """All or nothing: the case, the customer's one active case, the ``opened`` event, the case in the
        customer's ledger, and one more open case for its assignee (without an assignee when the agent
        filled up meanwhile)."""

    def change_status(self, before: Case, after: Case, *, event: Dict[str, Any]) -> bool:
        """All or nothing: the case (over ``before.version``), the customer's active case when the case
        becomes active or done, the assignee's load, and the event. False when the case changed
        meanwhile; raises Conflict when reopening it would give the customer two active cases.
        Every item of the case then carries the expiry of its new status (domain/retention.py)."""

    def add_follow_up(self, after: Case, mention: Mention, *, at: str, event: Dict[str, Any]) -> str:
        """All or nothing: the customer's post under the case, the case as changed by it, and the
        event. ``added``; ``duplicate`` (the post is attached already); ``stale`` (re-read the case)."""

    def get(self, case_id: str) -> Optional[Case]: ...

    def save(self, case: Case) -> bool:
        """Store a changed case over the version it was read at (``case.version``);
        False when someone saved a newer version meanwhile."""

    def history(self, case_id: str, *, limit: int = 50, after: Optional[str] = None) -> Optional[CaseHistory]:
        """The case and up to ``limit`` items of its history (events, then posts, then replies, each
        oldest first), after the position ``after``; ``next_position`` when more follow."""

    def add_mention(self, case_id: str, mention: Mention, *, at: str) -> bool:
        """Attach a customer post; False if it was attached before."""

    def add_event(self, case_id: str, event: Dict[str, Any], *, at: str) -> None: ...

    def put_reply(self, reply: Reply) -> bool:
        """Store a new reply; False when a reply with its id exists."""

    def get_reply(self, case_id: str, reply_id: str) -> Optional[Reply]: ...

    def update_reply(self, case_id: str, reply_id: str, fields: Dict[str, Any], *,
                     expect_status: Iterable[str]) -> bool:
        """Change a reply only while its delivery status is one of ``expect_status``."""

    def record_delivery(self, platform: str, post_id: str, case_id: str, reply_id: str) -> None: ...

    def find_delivery(self, platform: str, post_id: str) -> Optional[Tuple[str, str]]:
        """(case_id, reply_id) of the reply a platform message id belongs to."""

    def active_case_for_customer(self, customer_key: str) -> Optional[str]: ...

    def inbox_page(self, team: str, status: str, order: str, limit: int, after: Optional[str], *,
                   sla: Optional[str] = None, now: Optional[str] = None,
                   where: Optional["InboxFilter"] = None) -> InboxPage:
        """Up to ``limit`` cases of a team in one status, after the position ``after``
        (raises InvalidCursor for a position this store did not issue for that query).

        ``order``: ``newest``, ``priority``, or ``due`` (earliest ``sla_due_at`` first; cases without one
        last, oldest first). ``sla``: only cases whose clocks are ``breached`` (``sla_due_at`` <= ``now``)
        or in ``warning`` (``sla_warning_at`` <= ``now`` < ``sla_due_at``), as of ``now``. A page holds
        ``limit`` cases unless the listing ends (no short page with more to come). ``where``: only the cases
        it matches (domain/inbox_filter.py), still in full pages."""

    def assignee_page(self, agent_id: str, status: str, order: str, limit: int, after: Optional[str], *,
                      teams: Iterable[str], sla: Optional[str] = None, now: Optional[str] = None,
                      where: Optional["InboxFilter"] = None) -> Optional[InboxPage]:
        """One agent's cases in one status and in ``teams``, as ``inbox_page`` lists a team's (same orders,
        filters, full pages), read from the agent's own entries. None when the agent has too many cases in
        that status to sort by priority or due (read the team inboxes with ``where`` instead)."""

    def assign(self, before: Case, after: Case, *, event: Dict[str, Any], over_capacity: bool = False) -> str:
        """All or nothing: the case (over ``before.version``) with its new assignee and team, one open case
        less for ``before.assignee`` and one more for ``after.assignee`` (below their capacity) while the
        case is active, and the event. ``assigned``; ``stale`` (the case changed: re-read it); ``full``
        (the new assignee has no room; ``over_capacity``: a person decided to give it anyway)."""

    def waiting_page(self, team: str, limit: int, after: Optional[str]) -> InboxPage:
        """A team's open cases with no assignee, most urgent first: earliest ``sla_due_at`` (none last),
        then priority, then oldest. The queue an agent with room takes from."""

    def due_for_check(self, now: str, limit: int, after: Optional[str] = None) -> CasePage:
        """Ids of cases whose ``sla_next_at`` is at or before ``now``, earliest first (no Scan)."""

    def claim_away_message(self, customer_key: str, *, case_id: str, at: str, not_since: str) -> bool:
        """Record that the customer gets an away message for ``case_id`` at ``at``, unless they got one at or
        after ``not_since`` for another case (then False). Atomic: two posts at once make one message; the
        same case may claim again (a retry after a crash between the claim and storing the reply)."""

    def await_survey_answer(self, customer_key: str, case_id: str, *, until: str) -> None:
        """The customer's next message until ``until`` may answer the survey of ``case_id``."""

    def survey_awaiting(self, customer_key: str, *, now: str) -> Optional[str]:
        """The case whose survey the customer's message may answer now; None when none waits."""

    def stop_awaiting_survey(self, customer_key: str, case_id: str) -> None:
        """Answered (or given up): later messages are ordinary messages again (repeatable)."""

    def forget_away_message(self, customer_key: str) -> None:
        """Remove the records of the customer's latest away message and awaited survey (erasure; repeatable)."""


@dataclass
class CaseChange:
    """One stored change of a case, as the cases table's stream reports it (None: not there before/after)."""

    old: Optional[Case]
    new: Optional[Case]


class KpiStore(Protocol):
    """Per-day KPI aggregates (domain/kpi.py), added to as cases change; a report reads few small items."""

    def apply_deltas(self, token: str, deltas: List[Delta], *, keep_marker_seconds: int) -> bool:
        """All or nothing, once per ``token``: every delta's counters added to its (day, dimension, key)
        item, and the running backlog total of each key moved by its ``backlog`` counter. False when the
        token was applied before (its marker, kept ``keep_marker_seconds``, is still there)."""

    def kpi_rows(self, dimension: str, from_day: str, to_day: str) -> List[Dict[str, Any]]:
        """The aggregate items of one dimension for the days in [from_day, to_day], as
        ``domain.kpi.aggregate_rows`` shapes them (day, dimension, key and the counters)."""

    def backlog_totals(self, dimension: str) -> Dict[str, int]:
        """Per key, the sum of every backlog movement ever (the active cases now): with the movements after
        a day it gives the backlog at that day's end, without reading the days before a period."""


class CostStore(Protocol):
    """Metered usage, aggregated as it happens: one item per day x stage x function x channel."""

    def add_usage(self, day: str, function: str, channel: str, usage: Mapping[str, float]) -> None:
        """Atomically add ``usage`` (priced kind -> quantity) to that day's item (repeatable only as a sum)."""

    def usage_rows(self, from_day: str, to_day: str) -> List[Dict[str, Any]]:
        """The items of the days in [from_day, to_day]: {"day", "stage", "function", "channel", "usage": {...}}."""


class QaStore(Protocol):
    """QA audits: the replies sent each week (the pool a sample is drawn from) and their reviews."""

    def note_sent_reply(self, week: str, reply: ReplyForReview) -> None:
        """Remember an agent's reply in the week it was sent (repeatable)."""

    def sent_replies(self, week: str, *, limit: int, after: Optional[str] = None) -> Tuple[List[ReplyForReview], Optional[str]]:
        """The week's sent replies in a stable order, and the position of the next page (None: no more)."""

    def put_review(self, review: Dict[str, Any]) -> bool:
        """Store a review of ``review["reply_id"]``; False when that reply was reviewed already."""

    def get_review(self, reply_id: str) -> Optional[Dict[str, Any]]: ...

    def reviews_of_week(self, week: str) -> List[Dict[str, Any]]: ...

    def forget_reply(self, week: str, reply_id: str) -> None:
        """Remove a reply from its week's pool and its review, if any (a customer's erasure; repeatable)."""


class CustomerStore(Protocol):
    """Customer profiles and their linked identities (domain/customer.py), found by key, never by a Scan:
    by identity (``<platform>:<user id>``), by profile (``customer_id``), by handle."""

    def identity(self, customer_key: str, *, consistent: bool = True) -> Optional[Identity]:
        """The identity as last recorded; None when it was never recorded (it is then linked to its home profile).
        ``consistent=False``: half the price, and possibly a second behind the latest write."""

    def record_identity(self, seen: Identity, *, case_id: Optional[str] = None, at: str) -> bool:
        """Remember an identity seen on a post. New: linked to its home profile and findable by its handle
        (all or nothing; True). Known: only its handle, name and, given ``case_id``, its newest case change
        (False). Never moves an identity to another profile."""

    def identities(self, customer_id: str) -> List[Identity]:
        """The identities linked to a profile (at most domain.customer.MAX_IDENTITIES)."""

    def profile(self, customer_id: str) -> Optional[Profile]:
        """Tags, notes, fields and ``merged_into`` of a profile; None when none were ever kept."""

    def save_profile(self, profile: Profile) -> bool:
        """Tags, notes, fields over ``profile.version`` (0: none saved yet), never ``merged_into``;
        False when someone saved a newer version meanwhile."""

    def link(self, target_id: str, other_id: str, identities: List[Identity], *, audit: Dict[str, Any]) -> bool:
        """All or nothing (a merge): each identity, linked to ``other_id`` now, linked to ``target_id``; the
        ``other_id`` profile marked ``merged_into`` ``target_id``; ``audit`` on both. False when an identity
        moved meanwhile."""

    def unlink(self, identity: Identity, *, audit: Dict[str, Any]) -> bool:
        """All or nothing (an unmerge): the identity, linked to ``identity.customer_id`` now, back to its home
        profile, which is then not merged; ``audit`` on both. False when it moved meanwhile."""

    def audit_trail(self, customer_id: str, *, limit: int) -> List[Dict[str, Any]]:
        """The merges and unmerges recorded on a profile, newest first."""

    def keys_by_handle(self, handle: str, *, platform: Optional[str] = None, limit: int) -> List[str]:
        """Customer keys ever recorded with this handle (domain.customer.normal_handle), optionally of one platform."""

    def field_definitions(self) -> List[FieldDefinition]:
        """The customer fields supervisors defined (none: an empty list)."""

    def put_field_definitions(self, definitions: List[FieldDefinition], *, author: str, at: str) -> None: ...

    def forget_identity(self, customer_key: str) -> int:
        """Erase an identity: its record, links and handle entries, a profile it leaves without identities
        (with its notes and audit), and the audit entries naming it elsewhere. Items deleted; repeatable."""


class TemplateStore(Protocol):
    """Canned replies per team (``domain.templates``) and the brand-voice rules document."""

    def get_template(self, template_id: str) -> Optional["Template"]: ...

    def put_template(self, template: "Template") -> bool:
        """Create or replace it (its usage count is kept, also when it moves to another team); True when new."""

    def delete_template(self, template_id: str) -> Optional["Template"]:
        """The template as it was; None when there was none."""

    def templates_page(self, team: str, *, lang: Optional[str] = None, limit: int = 50,
                       after: Optional[str] = None) -> Tuple[List["Template"], Optional[str]]:
        """A team's templates by id (only those with a ``lang`` body when given), and the position of the
        next page (None: no more); raises InvalidCursor for a position it did not issue."""

    def template_teams(self) -> List[str]:
        """Every team that has (or had) a template, sorted."""

    def count_use(self, template_id: str, team: str) -> None:
        """Add one to its usage counter (an atomic add; nothing when the template is gone)."""

    def get_brand_voice(self) -> Optional[Dict[str, Any]]:
        """``{"rules", "updated_by", "updated_at"}`` as last saved; None when never saved."""

    def put_brand_voice(self, rules: Dict[str, Any], *, author: str, at: str) -> None: ...


class TriageFeedbackStore(Protocol):
    """Agents' corrections of triage, kept as labeled examples (issue 14 extends this)."""

    def record_correction(self, correction: "Correction") -> bool:
        """Keep it; False when this very correction (same ``correction_id``) was kept before."""

    def corrections(self, *, since: str = "", until: str = "", limit: int = 100,
                    after: Optional[str] = None, newest_first: bool = False) -> Tuple[List["Correction"], Optional[str]]:
        """Corrections made at ``since`` <= at <= ``until`` (ISO times or their prefix, such as a day: all of
        it; empty: no bound), oldest first (newest first with ``newest_first``), and the position of the next
        page (None: no more); raises InvalidCursor for a position it did not issue (or issued for the other order)."""


class MentionReviewStore(Protocol):
    """Mentions triage left without a case, per day (UTC), for people to review (issue 14)."""

    def no_case_page(self, day: str, *, limit: int, after: Optional[str] = None,
                     filters: Optional[Mapping[str, str]] = None) -> Tuple[List[StoredMention], Optional[str]]:
        """The day's unreviewed no-case mentions, newest first, matching ``filters`` (``lang``, ``platform``,
        ``sentiment``, ``category``: equal to); raises InvalidCursor for a position it did not issue."""

    def no_case_summaries(self, day: str) -> List[Dict[str, Any]]:
        """Every unreviewed no-case mention of the day, small: ``mention_id``, ``at``, ``lang``, ``platform``,
        ``sentiment``, ``category``, ``score`` (the sentiment score)."""

    def settle_review(self, mention_id: str, *, outcome: str, by: str, at: str) -> bool:
        """Take it off the review list (``promoted`` or ``confirmed``); False when it is not on it (any more)."""


class TriageModelStore(Protocol):
    """Learned triage models, versioned (bytes in the model bucket, figures beside them), and which is active."""

    def add_version(self, version: Dict[str, Any], blob: bytes) -> Optional[Dict[str, Any]]:
        """Store a model under ``version["version"]`` (with its figures); returns it with its ``uri``
        (what ModelSource.load reads), or None when that version exists already."""

    def get_version(self, version: str) -> Optional[Dict[str, Any]]: ...

    def list_versions(self) -> List[Dict[str, Any]]:
        """Every version, newest first."""

    def active(self) -> Optional[Dict[str, Any]]:
        """The active version's record (None: no learned model is active)."""

    def activate(self, version: str, *, by: str, at: str) -> None: ...


class NotificationStore(Protocol):
    def add_notification(self, recipient: str, notification: Notification) -> bool:
        """Put it in ``recipient``'s feed; False when it is there already (same ``notification_id``)."""

    def notifications_page(self, recipient: str, *, limit: int, after: Optional[str] = None,
                           unread_only: bool = False) -> NotificationPage:
        """Newest first; raises InvalidCursor for a position this store did not issue for that person."""

    def mark_read(self, recipient: str, notification_ids: Iterable[str], *, at: str) -> List[str]:
        """Mark them read (those not read yet); returns the ids that exist in the feed."""


class Notifier(Protocol):
    def publish(self, notification: Notification, recipients: List[str]) -> None:
        """Send it on for e-mail or chat integrations (an SNS topic); at least once."""


class MentionStore(Protocol):
    def claim(self, mention: Mention, *, now_epoch: int,
              settled: Optional[Dict[str, Any]] = None) -> Optional[MentionRecord]:
        """Record a new mention; None if it is new, else what was recorded before (left as it was).
        ``settled``: ``update``'s keyword arguments, written with the claim (one write, not two)."""

    def update(self, mention_id: str, *, state: str, triage: Optional[Dict[str, Any]] = None,
               case_id: Optional[str] = None, review_at: Optional[str] = None) -> None:
        """``review_at``: triage left it without a case at this time; it joins that day's review list."""

    def get(self, mention_id: str, *, consistent: bool = True) -> Optional[MentionRecord]:
        """``consistent=False``: may miss a write of the last second (half the price; a pre-check only)."""

    def stored(self, mention_id: str) -> Optional[StoredMention]:
        """Everything the record holds, for a customer's export."""

    def delete(self, mention_id: str) -> bool:
        """Remove a mention record; False when there was none."""


class SourceStore(Protocol):
    def list_sources(self) -> List[Dict[str, Any]]: ...

    def get_source(self, source_id: str) -> Optional[Dict[str, Any]]: ...

    def put_source(self, source: Dict[str, Any]) -> None: ...

    def update_source_status(self, source_id: str, fields: Dict[str, Any]) -> None: ...

    def get_cursor(self, source_id: str) -> Dict[str, Any]:
        """The source's cursor, with its ``version`` (0 when it has none yet)."""

    def save_cursor(self, source_id: str, cursor: Dict[str, Any], *, expected_version: int) -> bool:
        """Move the cursor only over ``expected_version``; False when another run moved it first."""


class AgentStore(Protocol):
    def get_agent(self, agent_id: str) -> Optional[Agent]: ...

    def signed_in_agent(self, agent_id: str) -> Optional[Agent]:
        """The profile as authorization reads it on every request: it may be up to
        ``AGENT_CACHE_SECONDS`` (adapters/stores.py) old, so a removed or changed agent's access follows
        within that time. Not for their load or presence: ``get_agent`` reads those fresh."""

    def put_agent(self, agent: Agent) -> None: ...

    def teams(self) -> List[str]: ...

    def team_agents(self, team: str) -> List[Agent]: ...

    def adjust_open_cases(self, agent_id: str, delta: int, *, at: str) -> bool:
        """Atomic counter; an increment only succeeds below the agent's capacity."""

    def set_presence(self, agent_id: str, presence: str, *, at: str) -> Optional[Agent]:
        """Change only the agent's presence (not their profile or load); None when there is no such agent."""

    def supervisors(self) -> List[Agent]: ...


class TeamSettingsStore(Protocol):
    """Per team: its calendar and away message; for everyone: the SLA policy; and small running facts."""

    def get_team_calendar(self, team: str) -> Optional[Calendar]: ...

    def put_team_calendar(self, team: str, calendar: Calendar, *, author: str, at: str) -> None: ...

    def delete_team_calendar(self, team: str) -> bool:
        """False when the team had none (it was open around the clock already)."""

    def team_calendars(self) -> Dict[str, Calendar]:
        """Every team's calendar (teams without one are open around the clock)."""

    def get_away_settings(self, team: str) -> Optional[AwaySettings]: ...

    def put_away_settings(self, team: str, away: AwaySettings, *, author: str, at: str) -> None: ...

    def get_sla_policy(self) -> Optional[SlaPolicy]:
        """The policy in force; None when none was set (no clocks)."""

    def put_sla_policy(self, policy: SlaPolicy, *, author: str, at: str) -> None: ...

    def record_first_response(self, team: str, seconds: int, *, at: str) -> None:
        """Keep the team's recent first-response times (the latest 50) for the typical reply time."""

    def recent_first_responses(self, team: str) -> List[int]:
        """Seconds, newest first."""

    def get_survey_settings(self) -> Optional[SurveySettings]:
        """How CSAT surveys are asked (None: the defaults of domain/csat.py)."""

    def put_survey_settings(self, survey: SurveySettings, *, author: str, at: str) -> None: ...

    def get_qa_rubric(self) -> Optional[Rubric]:
        """The QA rubric (None: the default of domain/qa.py)."""

    def put_qa_rubric(self, rubric: Rubric, *, author: str, at: str) -> None: ...

    def get_qa_sampling(self) -> Optional[SamplingPolicy]: ...

    def put_qa_sampling(self, policy: SamplingPolicy, *, author: str, at: str) -> None: ...

    def last_run(self, name: str) -> Optional[str]:
        """When a scheduled job named ``name`` last finished (for work that depends on the time since)."""

    def record_run(self, name: str, at: str) -> None: ...


class RuleStore(Protocol):
    def current_rules_version(self) -> int:
        """The version in force; 0 while the built-in rules apply."""

    def get_rules_version(self, version: int) -> Optional[Dict[str, Any]]:
        """{"version", "document", "saved_by", "saved_at"} of one saved version."""

    def add_rules_version(self, document: Dict[str, Any], *, author: str, at: str) -> int:
        """Save a new version and make it current; concurrent savers each get their own version."""

    def list_rules_versions(self) -> List[Dict[str, Any]]: ...


class SettingsStore(SourceStore, AgentStore, RuleStore, TeamSettingsStore, Protocol):
    """Everything a supervisor configures, kept in one table."""


@dataclass(frozen=True)
class DeliveryPolicy:
    """How a queue redelivers: after ``visibility_seconds``, at most ``max_receives`` times, then its DLQ."""

    visibility_seconds: int
    max_receives: int


class Queue(Protocol):
    def send(self, body: Dict[str, Any]) -> None: ...

    def delivery_policy(self) -> DeliveryPolicy:
        """Read from the queue itself (infra/template.yaml is the one place it is set)."""

    def send_batch(self, bodies: Iterable[Dict[str, Any]]) -> int:
        """Send all or raise: the caller moves its cursor only after this returns."""


class DeadLetterQueue(Protocol):
    def dead_letter(self, body: str, reason: str, *, origin: str) -> None: ...


class XApi(Protocol):
    def reply(self, in_reply_to_tweet_id: str, text: str, *, media_ids: Optional[List[str]] = None) -> str: ...

    def send_dm(self, participant_id: str, text: str, *, media_id: Optional[str] = None) -> str: ...

    def upload_image_url(self, url: str, *, for_dm: bool = False) -> str:
        """Fetch a JPEG or PNG image from ``url`` and upload it; its media id, for ``reply`` or ``send_dm``."""

    def find_reply(self, brand_user_id: str, in_reply_to_tweet_id: str, text: str, since: str) -> Optional[str]:
        """The id of the brand's reply with ``text`` to that post since ``since``, if X has one."""

    def find_dm(self, participant_id: str, text: str, since: str, brand_user_id: str) -> Optional[str]:
        """The id of the brand's DM with ``text`` to that person since ``since``, if X has one."""


class GraphApi(Protocol):
    def reply_to_comment(self, platform: str, comment_id: str, text: str, *,
                         attachment_url: Optional[str] = None) -> str: ...

    def reply_to_ig_mention(self, ig_user_id: str, media_id: str, text: str, *,
                            comment_id: Optional[str] = None) -> str: ...

    def private_reply_to_comment(self, page_id: str, comment_id: str, text: str, *, platform: str = ...) -> str: ...

    def send_message(self, platform: str, account_id: str, recipient_id: str, text: str, *,
                     reply_to_message_id: Optional[str] = None,
                     options: Optional[List[Dict[str, str]]] = None,
                     template: Optional[Dict[str, str]] = None, tag: Optional[str] = None,
                     template_variables: Optional[List[str]] = None,
                     attachment: Optional[Dict[str, str]] = None) -> str:
        """A direct message. ``options`` (``[{"id", "title"}]``): buttons to tap, as quick replies on
        Messenger and Instagram and reply buttons on WhatsApp (the id comes back with the tap).
        ``template`` (``{"name", "language"}``): an approved WhatsApp template instead of free text, its
        quick-reply buttons carrying the options' ids. Refused (``Refused``) when the platform's limits
        on them are not met. ``tag="HUMAN_AGENT"``: a person's answer on Messenger or Instagram up to 7 days
        after the customer's last message; ``template_variables`` fill a template's body; ``attachment``
        (``{"url"}``): an image sent with the text."""

    def media_file(self, media_id: str, *, max_bytes: int) -> Tuple[bytes, str]:
        """A WhatsApp media file: (bytes, mime type). Refused above ``max_bytes`` or when gone."""

    def message_templates(self, waba_id: str, *, limit: int = ...) -> List[Dict[str, Any]]:
        """The account's approved WhatsApp templates: ``{"name", "language", "category", "body", "variables"}``."""

    def ig_mention_details(self, ig_user_id: str, media_id: str, comment_id: Optional[str] = None, *,
                           source_id: str = "") -> Mention: ...

    def messaging_profile(self, platform: str, user_id: str) -> Author: ...


class PlatformClients(Protocol):
    def x(self) -> XApi: ...

    def graph(self) -> GraphApi: ...


class CredentialStore(Protocol):
    def read(self) -> Mapping[str, Any]:
        """The credentials as stored now, never a cached copy."""

    def update(self, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the stored credentials (other values untouched)."""


class TokenGrant(Protocol):
    @property
    def access_token(self) -> str: ...

    @property
    def refresh_token(self) -> str: ...

    @property
    def expires_in(self) -> int: ...


class TokenRefresher(Protocol):
    def refresh(self, refresh_token: str, *, client_id: str, client_secret: str = "") -> TokenGrant:
        """Raises AuthFailed when the platform refuses, TransientFailure when it could not answer."""


class MediaStore(Protocol):
    """Customers' media files in the stack's private bucket, named by (mention id, position)."""

    def put(self, mention_id: str, index: int, data: bytes, *, content_type: str) -> str:
        """Store a file (repeatable); returns the opaque reference to keep. TransientFailure when it cannot."""

    def find(self, mention_id: str, index: int) -> Optional[str]:
        """The reference of the file stored for this mention and position, else None."""

    def read(self, ref: str, *, max_bytes: int) -> bytes:
        """A stored file's bytes; ValueError above ``max_bytes``."""

    def forget(self, mention_id: str) -> None:
        """Delete every file stored for this mention (repeatable)."""

    def url(self, ref: str, *, expires_in: int) -> str:
        """A short-lived GET URL for a stored file."""


class ModelSource(Protocol):
    def load(self, uri: str) -> bytes:
        """The bytes of a learned triage model (``s3://bucket/key``)."""


@dataclass
class FetchedPage:
    """One page of a polled source, newest first."""

    mentions: List[Mention]
    newest: Optional[str]          # newest marker on this page (id or time)
    next_token: Optional[str]      # None: nothing older left in this sweep
    rate_limit_reset_at: Optional[int] = None  # set when the platform says to stop until then


# Fetch one page: (since marker, page token) -> page.
Fetcher = Callable[[Optional[str], Optional[str]], FetchedPage]
# A source's fetcher, built on the platform clients.
FetcherFactory = Callable[[Dict[str, Any], "Deps"], Fetcher]


@dataclass
class Deps:
    """Everything a service may use; built once per container by ``chalicelib.bootstrap``."""

    config: Settings
    cases: CaseStore
    mentions: MentionStore
    settings: SettingsStore
    mentions_queue: Queue
    triaged_queue: Queue
    outbound_queue: Queue
    dead_letters: Mapping[str, DeadLetterQueue]
    secrets: Callable[[], Mapping[str, str]]
    platforms: PlatformClients
    models: ModelSource
    notifications: Optional[NotificationStore] = None  # per-person in-app feeds
    kpis: Optional[KpiStore] = None                    # per-day KPI aggregates
    costs: Optional[CostStore] = None                  # metered usage per day, function and channel
    qa: Optional[QaStore] = None                       # QA audits
    notifier: Optional[Notifier] = None                # the notifications topic (SNS)
    # ---- the agent's workspace (issue 12) and triage learning (issue 14); each helper types its own ----
    customers: Optional[CustomerStore] = None  # profiles, linked identities, supervisor-defined fields
    templates: Optional[TemplateStore] = None  # canned replies per team and brand-voice rules
    media: Optional[MediaStore] = None  # inbound media copied to the stack's bucket (None: no bucket configured)
    feedback: Optional[TriageFeedbackStore] = None  # triage corrections as labeled examples
    review: Optional[MentionReviewStore] = None     # no-case mentions to review (issue 14)
    triage_models: Optional[TriageModelStore] = None  # learned model versions and the active one (issue 14)
    credentials: Optional[CredentialStore] = None   # the platform secret, read fresh, for token refresh
    x_tokens: Optional[TokenRefresher] = None        # X's OAuth 2.0 token endpoint
    now: Callable[[], str] = now_iso
    epoch: Callable[[], float] = time.time
    # Per-container caches of services (rules, learned model), kept with the ports they came from.
    caches: Dict[str, Any] = field(default_factory=dict)
