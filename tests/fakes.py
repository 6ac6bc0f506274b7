"""In-memory fakes of every port, and a ``Deps`` builder for service tests.

They behave as the DynamoDB and SQS adapters do (conditional writes, ordering,
paging), and ``tests/contract`` runs one suite against both, so a fake cannot
drift from the real thing.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import re
from datetime import date
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from chalicelib.config import settings
from chalicelib.domain.agent import Agent
from chalicelib.domain.away import AwaySettings
from chalicelib.domain.case import Case
from chalicelib.domain.csat import SurveySettings
from chalicelib.domain.errors import Conflict, InvalidCursor, MessageTooLarge
from chalicelib.domain.hours import Calendar
from chalicelib.domain.kpi import Aggregates, Delta, aggregate_rows, apply_once
from chalicelib.domain.mention import Author, Mention, MentionRecord
from chalicelib.domain.notification import Notification
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.qa import ReplyForReview, Rubric, SamplingPolicy, review_week
from chalicelib.domain.reply import Reply
from chalicelib.domain.retention import case_expires_at, mention_expires_at
from chalicelib.domain.sla import SlaPolicy
from chalicelib.ports import (
    CaseHistory,
    CasePage,
    DeliveryPolicy,
    Deps,
    ErasedCase,
    InboxPage,
    LedgerEntry,
    LedgerPage,
    NotificationPage,
    OpenResult,
    StoredMention,
)
from tests.fakes_customers import FakeCustomerStore
from tests.fakes_templates import FakeTemplateStore
from tests.fakes_triage import FakeFeedbackStore, FakeMentionReview, FakeModelStore


def _configured_days(kind: str) -> int:
    """The retention period (``RETENTION_CASES_DAYS``, ``RETENTION_MENTIONS_DAYS``) the adapters would use."""
    return int(getattr(settings(), f"retention_{kind}_days"))


class FakeCaseStore:
    def __init__(self, settings: Optional["FakeSettingsStore"] = None, retention_days: Optional[int] = None) -> None:
        self.settings = settings  # the agents whose load open_case and change_status move
        self.retention_days = retention_days if retention_days is not None else _configured_days("cases")
        self.active_by_customer: Dict[str, str] = {}
        # customer key -> {ledger sort key ("CASE#<id>", "MENTION#<id>"): expires_at or None}
        self.ledger: Dict[str, Dict[str, Optional[int]]] = {}
        self.pending_erasures: Dict[str, Dict[str, Any]] = {}
        self.finished_erasures: Dict[str, Dict[str, Any]] = {}  # by "<erasure id>#<finished at>"
        self.fail_erasing: List[str] = []  # case ids whose erasure raises (a crash half-way), once each
        self.cases: Dict[str, Case] = {}
        self.mentions: Dict[str, Dict[str, Mention]] = {}
        self.events: Dict[str, List[Dict[str, Any]]] = {}
        self.replies: Dict[Tuple[str, str], Reply] = {}
        self.deliveries: Dict[Tuple[str, str], Tuple[str, str]] = {}
        self.away_sent: Dict[str, str] = {}  # customer key -> when their latest away message was claimed
        self.surveys: Dict[str, Tuple[str, str]] = {}  # customer key -> (case id, until) of the survey awaiting an answer
        self._counter = itertools.count()

    def create(self, case: Case) -> bool:
        if case.case_id in self.cases:
            return False
        self.cases[case.case_id] = copy.deepcopy(case)
        return True

    def get(self, case_id: str) -> Optional[Case]:
        case = self.cases.get(case_id)
        return copy.deepcopy(case) if case else None

    def _load_fits(self, agent_id: str, delta: int) -> bool:
        agent = self.settings.agents.get(agent_id) if self.settings else None
        if agent is None:
            return False
        return agent.open_cases < agent.capacity if delta > 0 else agent.open_cases >= -delta

    def open_case(self, case: Case, *, opened_event: Dict[str, Any]) -> OpenResult:
        if case.case_id in self.cases:
            return OpenResult("exists", case.case_id, assignee=self.cases[case.case_id].assignee)
        active = self.active_by_customer.get(case.customer_key)
        if active:
            return OpenResult("customer_active", case.case_id, active_case_id=active)
        assignee = case.assignee if case.assignee and self._load_fits(case.assignee, +1) else None
        if assignee and self.settings:
            self.settings.adjust_open_cases(assignee, +1, at=case.created_at)
        stored = copy.deepcopy(case)
        stored.assignee = assignee
        self.cases[case.case_id] = stored
        self.active_by_customer[case.customer_key] = case.case_id
        self.ledger.setdefault(case.customer_key, {})[f"CASE#{case.case_id}"] = None
        self.add_event(case.case_id, {**opened_event, "assignee": assignee}, at=case.created_at)
        return OpenResult("opened", case.case_id, assignee=assignee)

    def change_status(self, before: Case, after: Case, *, event: Dict[str, Any]) -> bool:
        stored = self.cases.get(after.case_id)
        if stored is None or stored.version != before.version:
            return False
        holder = self.active_by_customer.get(after.customer_key)
        if after.active and not before.active and holder not in (None, after.case_id):
            raise Conflict(f"the customer already has an active case ('{holder}')")
        if before.assignee and before.active != after.active:
            delta = -1 if before.active else +1
            if self._load_fits(before.assignee, delta) and self.settings:
                self.settings.adjust_open_cases(before.assignee, delta, at=after.updated_at)
        if after.active:
            self.active_by_customer[after.customer_key] = after.case_id
        elif holder == after.case_id:
            del self.active_by_customer[after.customer_key]
        after.version = before.version + 1
        self.cases[after.case_id] = copy.deepcopy(after)
        self.add_event(after.case_id, event, at=after.updated_at)
        return True

    def add_follow_up(self, after: Case, mention: Mention, *, at: str, event: Dict[str, Any]) -> str:
        key = f"{mention.created_at or at}#{mention.id}"
        if key in self.mentions.get(after.case_id, {}):
            return "duplicate"
        stored = self.cases.get(after.case_id)
        if stored is None or stored.version != after.version:
            return "stale"
        self.mentions.setdefault(after.case_id, {})[key] = copy.deepcopy(mention)
        after.version += 1
        self.cases[after.case_id] = copy.deepcopy(after)
        self.add_event(after.case_id, event, at=at)
        return "added"

    def save(self, case: Case) -> bool:
        stored = self.cases.get(case.case_id)
        if stored is None or stored.version != case.version:
            return False
        case.version += 1
        self.cases[case.case_id] = copy.deepcopy(case)
        return True

    def history(self, case_id: str, *, limit: int = 50, after: Optional[str] = None) -> Optional[CaseHistory]:
        case = self.get(case_id)
        if case is None:
            return None
        # The same order as the table's sort keys: events, then mentions, then replies.
        keyed: List[Tuple[str, str, Any]] = []
        for event in self.events.get(case_id, []):
            keyed.append((f"EVENT#{event['at']}#{event['_n']:06d}", "event", event))
        for key, mention_item in self.mentions.get(case_id, {}).items():
            keyed.append((f"MENTION#{key}", "mention", mention_item))
        for (c, reply_id), reply_item in self.replies.items():
            if c == case_id:
                keyed.append((f"REPLY#{reply_id}", "reply", reply_item))
        keyed.sort(key=lambda entry: entry[0])
        if after:
            state = decode_cursor(after)
            if not isinstance(state.get("sk"), str) or state["sk"].split("#", 1)[0] not in ("EVENT", "MENTION", "REPLY"):
                raise InvalidCursor("query 'cursor' is not one this API issued for this case; start again without it")
            keyed = [entry for entry in keyed if entry[0] > state["sk"]]
        page, more = keyed[:limit], len(keyed) > limit
        history = CaseHistory(case=case, expires_at=self.expiry_of(case))
        for _key, kind, item in page:
            if kind == "event":
                history.events.append({k: v for k, v in item.items() if k != "_n"})
            elif kind == "mention":
                history.mentions.append(copy.deepcopy(item))
            else:
                history.replies.append(copy.deepcopy(item))
        history.replies.sort(key=lambda r: r.created_at)
        history.next_position = encode_cursor({"sk": page[-1][0]}) if more and page else None
        return history

    def add_mention(self, case_id: str, mention: Mention, *, at: str) -> bool:
        key = f"{at}#{mention.id}"
        attached = self.mentions.setdefault(case_id, {})
        if key in attached:
            return False
        attached[key] = copy.deepcopy(mention)
        return True

    def add_event(self, case_id: str, event: Dict[str, Any], *, at: str) -> None:
        self.events.setdefault(case_id, []).append({"at": at, **copy.deepcopy(event), "_n": next(self._counter)})

    def put_reply(self, reply: Reply) -> bool:
        key = (reply.case_id, reply.reply_id)
        if key in self.replies:
            return False
        self.replies[key] = copy.deepcopy(reply)
        return True

    def get_reply(self, case_id: str, reply_id: str) -> Optional[Reply]:
        reply = self.replies.get((case_id, reply_id))
        return copy.deepcopy(reply) if reply else None

    def update_reply(self, case_id: str, reply_id: str, fields: Dict[str, Any], *,
                     expect_status: Iterable[str]) -> bool:
        reply = self.replies.get((case_id, reply_id))
        if reply is None or reply.delivery_status not in set(expect_status):
            return False
        data = reply.to_dict()
        data.update(copy.deepcopy(fields))
        self.replies[(case_id, reply_id)] = Reply.from_dict(data)
        return True

    def record_delivery(self, platform: str, post_id: str, case_id: str, reply_id: str) -> None:
        if case_id in self.cases:  # not for a case erased meanwhile
            self.deliveries[(platform, post_id)] = (case_id, reply_id)

    def find_delivery(self, platform: str, post_id: str) -> Optional[Tuple[str, str]]:
        return self.deliveries.get((platform, post_id))

    def active_case_for_customer(self, customer_key: str) -> Optional[str]:
        case_id = self.active_by_customer.get(customer_key)
        if case_id and case_id in self.cases and self.cases[case_id].active:
            return case_id
        self.active_by_customer.pop(customer_key, None)
        return None

    def expiry_of(self, case: Case) -> Optional[int]:
        """What DynamoDB stores on every item of the case (domain/retention.py)."""
        return case_expires_at(case, self.retention_days, now_epoch=0)

    # the customer's ledger
    def note_customer_mention(self, customer_key: str, mention_id: str, *, expires_at: int) -> None:
        self.ledger.setdefault(customer_key, {})[f"MENTION#{mention_id}"] = expires_at

    def note_customer_case(self, customer_key: str, case_id: str) -> None:
        case = self.cases.get(case_id)
        self.ledger.setdefault(customer_key, {})[f"CASE#{case_id}"] = self.expiry_of(case) if case else None

    def customer_ledger(self, customer_key: str, *, limit: int, after: Optional[str] = None) -> LedgerPage:
        keys = sorted(self.ledger.get(customer_key, {}))
        if after:
            sk = decode_cursor(after).get("sk")
            if not isinstance(sk, str) or sk.split("#", 1)[0] not in ("CASE", "MENTION"):
                raise InvalidCursor("query 'cursor' is not one this API issued for this customer; start again without it")
            keys = [key for key in keys if key > sk]
        page = keys[:limit]
        entries = [LedgerEntry(kind="case" if key.startswith("CASE#") else "mention", id=key.split("#", 1)[1])
                   for key in page]
        return LedgerPage(entries=entries, positions=[encode_cursor({"sk": key}) for key in page],
                          more=len(keys) > limit)

    def forget_customer_entry(self, customer_key: str, entry: LedgerEntry) -> None:
        prefix = "CASE" if entry.kind == "case" else "MENTION"
        self.ledger.get(customer_key, {}).pop(f"{prefix}#{entry.id}", None)

    def case_mention_ids(self, case_id: str) -> List[str]:
        return [m.id for _key, m in sorted(self.mentions.get(case_id, {}).items())]

    def erase_case(self, case_id: str) -> ErasedCase:
        if case_id in self.fail_erasing:
            self.fail_erasing.remove(case_id)
            raise ConnectionError(f"DynamoDB is unreachable while erasing {case_id}")
        erased = ErasedCase(case_id=case_id)
        case = self.cases.pop(case_id, None)
        if case is not None:
            erased.case_removed, erased.items = True, 1
            if case.active and case.assignee and self._load_fits(case.assignee, -1) and self.settings:
                self.settings.adjust_open_cases(case.assignee, -1, at=case.updated_at)
                erased.released_agent = case.assignee
            if self.active_by_customer.get(case.customer_key) == case_id:
                del self.active_by_customer[case.customer_key]
        erased.items += len(self.mentions.pop(case_id, {})) + len(self.events.pop(case_id, []))
        for key in [key for key in self.replies if key[0] == case_id]:
            reply = self.replies.pop(key)
            erased.items += 1
            if reply.platform_post_id and self.deliveries.pop((reply.target.platform, reply.platform_post_id), None):
                erased.deliveries += 1
        return erased

    # erasure audit records
    def start_erasure(self, record: Dict[str, Any]) -> Dict[str, Any]:
        erasure_id = record["erasure_id"]
        if erasure_id not in self.pending_erasures:
            self.pending_erasures[erasure_id] = {**copy.deepcopy(record), "counts": {}}
        return copy.deepcopy(self.pending_erasures[erasure_id])

    def pending_erasure(self, erasure_id: str) -> Optional[Dict[str, Any]]:
        return copy.deepcopy(self.pending_erasures.get(erasure_id))

    def add_erasure_counts(self, erasure_id: str, counts: Mapping[str, int]) -> None:
        pending = self.pending_erasures.get(erasure_id)
        if pending is None:
            return
        for name, value in counts.items():
            if value:
                pending["counts"][name] = pending["counts"].get(name, 0) + int(value)

    def finish_erasure(self, erasure_id: str, *, finished_at: str) -> Optional[Dict[str, Any]]:
        pending = self.pending_erasures.pop(erasure_id, None)
        if pending is None:
            return None
        done = {**pending, "finished_at": finished_at}
        self.finished_erasures[f"{erasure_id}#{finished_at}"] = done
        return copy.deepcopy(done)

    def erasures(self, erasure_id: str) -> List[Dict[str, Any]]:
        return [copy.deepcopy(record) for key, record in sorted(self.finished_erasures.items())
                if key.startswith(erasure_id + "#")]

    def inbox_page(self, team: str, status: str, order: str, limit: int, after: Optional[str], *,
                   sla: Optional[str] = None, now: Optional[str] = None, where: Any = None) -> InboxPage:
        matching = [c for c in self.cases.values() if c.team == team and c.status == status]
        if sla:
            matching = [c for c in matching if c.sla_state_at(now or "") == sla]
        if where is not None:
            matching = [c for c in matching if where.matches(c)]
        return self._page(matching, lambda c: c.sort_key(order), descending=order == "newest", limit=limit,
                          after=after, what="inbox")

    def assignee_page(self, agent_id: str, status: str, order: str, limit: int, after: Optional[str], *,
                      teams: Iterable[str], sla: Optional[str] = None, now: Optional[str] = None,
                      where: Any = None) -> Optional[InboxPage]:
        allowed = set(teams)
        matching = [c for c in self.cases.values()
                    if c.assignee == agent_id and c.status == status and c.team in allowed
                    and (not sla or c.sla_state_at(now or "") == sla) and (where is None or where.matches(c))]
        return self._page(matching, lambda c: c.sort_key(order), descending=order == "newest", limit=limit,
                          after=after, what="inbox")

    def _page(self, matching: List[Case], key: Callable[[Case], Any], *, descending: bool, limit: int,
              after: Optional[str], what: str) -> InboxPage:
        matching.sort(key=key, reverse=descending)
        start = 0
        if after:
            state = decode_cursor(after)
            sort_key = state.get("k")
            if not isinstance(sort_key, list) or not isinstance(state.get("c"), str):
                raise InvalidCursor(f"query 'cursor' is not one this API issued for this {what}; start again without it")
            # Resume after the position, even when that case has since left this listing.
            position = tuple(sort_key)
            start = next((i for i, c in enumerate(matching)
                          if (key(c) < position if descending else key(c) > position)), len(matching))
        page = matching[start:start + limit]
        positions = [encode_cursor({"c": c.case_id, "k": list(key(c))}) for c in page]
        return InboxPage(cases=copy.deepcopy(page), positions=positions, more=start + limit < len(matching))

    def assign(self, before: Case, after: Case, *, event: Dict[str, Any], over_capacity: bool = False) -> str:
        stored = self.cases.get(after.case_id)
        if stored is None or stored.version != before.version:
            return "stale"
        if before.active and after.assignee and after.assignee != before.assignee:
            taker = self.settings.agents.get(after.assignee) if self.settings else None
            if over_capacity and taker is not None:
                taker.open_cases += 1  # a person decided: past capacity
                taker.last_assigned_at = after.updated_at
            elif not self._load_fits(after.assignee, +1):
                return "full"
            elif self.settings:
                self.settings.adjust_open_cases(after.assignee, +1, at=after.updated_at)
        if before.active and before.assignee and before.assignee != after.assignee:
            if self._load_fits(before.assignee, -1) and self.settings:
                self.settings.adjust_open_cases(before.assignee, -1, at=after.updated_at)
        after.version = before.version + 1
        self.cases[after.case_id] = copy.deepcopy(after)
        self.add_event(after.case_id, event, at=after.updated_at)
        return "assigned"

    def waiting_page(self, team: str, limit: int, after: Optional[str]) -> InboxPage:
        matching = [c for c in self.cases.values() if c.team == team and c.waiting_for_agent]
        return self._page(matching, lambda c: c.waiting_key, descending=False, limit=limit, after=after,
                          what="queue")

    def due_for_check(self, now: str, limit: int, after: Optional[str] = None) -> CasePage:
        due = sorted((c.sla_next_at, c.case_id) for c in self.cases.values() if c.sla_next_at and c.sla_next_at <= now)
        start = 0
        if after:
            state = decode_cursor(after)
            if not isinstance(state.get("k"), list):
                raise InvalidCursor("not a position of the due listing")
            start = next((i for i, k in enumerate(due) if list(k) > state["k"]), len(due))
        page = due[start:start + limit]
        return CasePage(case_ids=[c for _at, c in page], positions=[encode_cursor({"k": list(k)}) for k in page],
                        more=start + limit < len(due))

    def forget_away_message(self, customer_key: str) -> None:
        # The survey awaiting an answer is the customer's other small record keyed by their identity: an
        # erasure removes it with the away message, as the DynamoDB store does.
        self.away_sent.pop(customer_key, None)
        self.surveys.pop(customer_key, None)

    def await_survey_answer(self, customer_key: str, case_id: str, *, until: str) -> None:
        self.surveys[customer_key] = (case_id, until)  # one survey waits at a time: the latest asked

    def survey_awaiting(self, customer_key: str, *, now: str) -> Optional[str]:
        case_id, until = self.surveys.get(customer_key, ("", ""))
        return case_id if case_id and now < until else None

    def stop_awaiting_survey(self, customer_key: str, case_id: str) -> None:
        # Only that case's survey: a later survey (another case) asked meanwhile keeps waiting.
        if self.surveys.get(customer_key, ("", ""))[0] == case_id:
            del self.surveys[customer_key]

    def claim_away_message(self, customer_key: str, *, case_id: str, at: str, not_since: str) -> bool:
        # away_sent holds "<at>|<case id>". The same case may claim again (a redelivery after a crash
        # between the claim and its reply): the message goes out then, so the period counts from then.
        last_at, _, last_case = self.away_sent.get(customer_key, "").partition("|")
        if last_at and last_at >= not_since and last_case != case_id:
            return False
        self.away_sent[customer_key] = f"{at}|{case_id}"
        return True


class FakeMentionStore:
    def __init__(self, retention_days: Optional[int] = None) -> None:
        self.retention_days = retention_days if retention_days is not None else _configured_days("mentions")
        self.records: Dict[str, MentionRecord] = {}
        self.bodies: Dict[str, Dict[str, Any]] = {}  # mention id -> the mention as stored
        self.received: Dict[str, int] = {}  # mention id -> epoch it was claimed
        self.review_at: Dict[str, str] = {}  # mention id -> when triage left it without a case (unreviewed)

    def claim(self, mention: Mention, *, now_epoch: int,
              settled: Optional[Dict[str, Any]] = None) -> Optional[MentionRecord]:
        if mention.id in self.records:
            return copy.deepcopy(self.records[mention.id])
        self.records[mention.id] = MentionRecord(mention_id=mention.id)
        self.bodies[mention.id] = mention.to_dict()
        self.received[mention.id] = now_epoch
        if settled:
            self.update(mention.id, **settled)
        return None

    def update(self, mention_id: str, *, state: str, triage: Optional[Dict[str, Any]] = None,
               case_id: Optional[str] = None, review_at: Optional[str] = None) -> None:
        record = self.records.setdefault(mention_id, MentionRecord(mention_id=mention_id))
        record.state = state
        if triage is not None:
            record.triage = copy.deepcopy(triage)
        if case_id is not None:
            record.case_id = case_id
        if review_at is not None:  # on the day's review list (tests/fakes_triage.FakeMentionReview reads it)
            self.review_at[mention_id] = review_at

    def get(self, mention_id: str, *, consistent: bool = True) -> Optional[MentionRecord]:
        record = self.records.get(mention_id)
        return copy.deepcopy(record) if record else None

    def stored(self, mention_id: str) -> Optional[StoredMention]:
        record = self.records.get(mention_id)
        if record is None:
            return None
        received = self.received.get(mention_id)
        return StoredMention(mention_id=mention_id, state=record.state, mention=copy.deepcopy(self.bodies.get(mention_id, {})),
                             triage=copy.deepcopy(record.triage), case_id=record.case_id, received_epoch=received,
                             expires_at=mention_expires_at(received, self.retention_days) if received is not None else None)

    def delete(self, mention_id: str) -> bool:
        self.bodies.pop(mention_id, None)
        self.received.pop(mention_id, None)
        self.review_at.pop(mention_id, None)
        return self.records.pop(mention_id, None) is not None


class FakeSettingsStore:
    def __init__(self) -> None:
        self.sources: Dict[str, Dict[str, Any]] = {}
        self.cursors: Dict[str, Dict[str, Any]] = {}
        self.agents: Dict[str, Agent] = {}
        self.team_names: List[str] = []
        self.rule_versions: Dict[int, Dict[str, Any]] = {}
        self.current_rules = 0
        self.calendars: Dict[str, Calendar] = {}
        self.away: Dict[str, AwaySettings] = {}
        self.sla_policy: Optional[SlaPolicy] = None
        self.first_responses: Dict[str, List[int]] = {}
        self.runs: Dict[str, str] = {}
        self.survey: Optional[SurveySettings] = None
        self.qa_rubric: Optional[Rubric] = None
        self.qa_sampling: Optional[SamplingPolicy] = None

    # sources and cursors
    def list_sources(self) -> List[Dict[str, Any]]:
        return [copy.deepcopy(s) for _id, s in sorted(self.sources.items())]

    def get_source(self, source_id: str) -> Optional[Dict[str, Any]]:
        return copy.deepcopy(self.sources.get(source_id))

    def put_source(self, source: Dict[str, Any]) -> None:
        self.sources[source["source_id"]] = copy.deepcopy(source)

    def update_source_status(self, source_id: str, fields: Dict[str, Any]) -> None:
        self.sources.setdefault(source_id, {"source_id": source_id}).update(copy.deepcopy(fields))

    def get_cursor(self, source_id: str) -> Dict[str, Any]:
        return copy.deepcopy(self.cursors.get(source_id, {"version": 0}))

    def save_cursor(self, source_id: str, cursor: Dict[str, Any], *, expected_version: int) -> bool:
        if self.cursors.get(source_id, {"version": 0})["version"] != expected_version:
            return False
        self.cursors[source_id] = {**{k: v for k, v in cursor.items() if k != "version"},
                                   "version": expected_version + 1}
        return True

    # agents and teams
    def get_agent(self, agent_id: str) -> Optional[Agent]:
        agent = self.agents.get(agent_id)
        return copy.deepcopy(agent) if agent else None

    def signed_in_agent(self, agent_id: str) -> Optional[Agent]:
        return self.get_agent(agent_id)  # no cache here: tests change agents between requests

    def put_agent(self, agent: Agent) -> None:
        old = self.agents.get(agent.agent_id)
        stored = copy.deepcopy(agent)
        if old:  # the load belongs to assignment, the presence to the agent: a profile edit keeps both
            stored.open_cases, stored.last_assigned_at = old.open_cases, old.last_assigned_at
            stored.presence, stored.presence_changed_at = old.presence, old.presence_changed_at
        self.agents[agent.agent_id] = stored
        self.team_names = sorted(set(self.team_names) | set(agent.teams))

    def teams(self) -> List[str]:
        return list(self.team_names)

    def team_agents(self, team: str) -> List[Agent]:
        return [copy.deepcopy(a) for _id, a in sorted(self.agents.items()) if team in a.teams]

    def adjust_open_cases(self, agent_id: str, delta: int, *, at: str) -> bool:
        agent = self.agents.get(agent_id)
        if agent is None:
            return False
        if delta > 0 and agent.open_cases >= agent.capacity:
            return False
        if delta < 0 and agent.open_cases < -delta:
            return False
        agent.open_cases += delta
        if delta > 0:
            agent.last_assigned_at = at
        return True

    def set_presence(self, agent_id: str, presence: str, *, at: str) -> Optional[Agent]:
        agent = self.agents.get(agent_id)
        if agent is None:
            return None
        agent.presence, agent.presence_changed_at = presence, at
        return copy.deepcopy(agent)

    def supervisors(self) -> List[Agent]:
        return [copy.deepcopy(a) for _id, a in sorted(self.agents.items()) if a.is_supervisor]

    # team settings, the SLA policy, running facts
    def get_team_calendar(self, team: str) -> Optional[Calendar]:
        return self.calendars.get(team)

    def put_team_calendar(self, team: str, calendar: Calendar, *, author: str, at: str) -> None:
        self.calendars[team] = calendar

    def delete_team_calendar(self, team: str) -> bool:
        return self.calendars.pop(team, None) is not None

    def team_calendars(self) -> Dict[str, Calendar]:
        return dict(self.calendars)

    def get_away_settings(self, team: str) -> Optional[AwaySettings]:
        return self.away.get(team)

    def put_away_settings(self, team: str, away: AwaySettings, *, author: str, at: str) -> None:
        self.away[team] = away

    def get_sla_policy(self) -> Optional[SlaPolicy]:
        return self.sla_policy

    def put_sla_policy(self, policy: SlaPolicy, *, author: str, at: str) -> None:
        self.sla_policy = policy

    def record_first_response(self, team: str, seconds: int, *, at: str) -> None:
        self.first_responses[team] = ([int(seconds)] + self.first_responses.get(team, []))[:50]

    def recent_first_responses(self, team: str) -> List[int]:
        return list(self.first_responses.get(team, []))

    def get_survey_settings(self) -> Optional[SurveySettings]:
        return self.survey

    def put_survey_settings(self, survey: SurveySettings, *, author: str, at: str) -> None:
        self.survey = survey

    def get_qa_rubric(self) -> Optional[Rubric]:
        return self.qa_rubric

    def put_qa_rubric(self, rubric: Rubric, *, author: str, at: str) -> None:
        self.qa_rubric = rubric

    def get_qa_sampling(self) -> Optional[SamplingPolicy]:
        return self.qa_sampling

    def put_qa_sampling(self, policy: SamplingPolicy, *, author: str, at: str) -> None:
        self.qa_sampling = policy

    def last_run(self, name: str) -> Optional[str]:
        return self.runs.get(name)

    def record_run(self, name: str, at: str) -> None:
        # Only forward, as the DynamoDB store: a slow run finishing after a later one does not move it back.
        if name not in self.runs or self.runs[name] < at:
            self.runs[name] = at

    # rules
    def current_rules_version(self) -> int:
        return self.current_rules

    def get_rules_version(self, version: int) -> Optional[Dict[str, Any]]:
        return copy.deepcopy(self.rule_versions.get(version))

    def add_rules_version(self, document: Dict[str, Any], *, author: str, at: str) -> int:
        version = max(self.rule_versions, default=0) + 1
        self.rule_versions[version] = {"version": version, "document": copy.deepcopy(document),
                                       "saved_by": author, "saved_at": at}
        self.current_rules = max(self.current_rules, version)
        return version

    def list_rules_versions(self) -> List[Dict[str, Any]]:
        return [{k: v[k] for k in ("version", "saved_by", "saved_at")} for _n, v in sorted(self.rule_versions.items())]


class FakeNotificationStore:
    def __init__(self) -> None:
        self.feeds: Dict[str, Dict[str, Notification]] = {}  # recipient -> id -> notification

    def add_notification(self, recipient: str, notification: Notification) -> bool:
        feed = self.feeds.setdefault(recipient, {})
        if notification.notification_id in feed:
            return False
        feed[notification.notification_id] = copy.deepcopy(notification)
        return True

    def notifications_page(self, recipient: str, *, limit: int, after: Optional[str] = None,
                           unread_only: bool = False) -> NotificationPage:
        ordered = sorted(self.feeds.get(recipient, {}).values(), key=lambda n: (n.at, n.notification_id), reverse=True)
        if unread_only:
            ordered = [n for n in ordered if not n.read]
        start = 0
        if after:
            state = decode_cursor(after)
            if not isinstance(state.get("k"), list) or state.get("r") != recipient:
                raise InvalidCursor("query 'cursor' is not one this API issued for your notifications; start again without it")
            start = next((i for i, n in enumerate(ordered) if [n.at, n.notification_id] < state["k"]), len(ordered))
        page = ordered[start:start + limit]
        more = start + limit < len(ordered)
        position = encode_cursor({"r": recipient, "k": [page[-1].at, page[-1].notification_id]}) if page and more else None
        return NotificationPage(notifications=copy.deepcopy(page), next_position=position)

    def mark_read(self, recipient: str, notification_ids: Iterable[str], *, at: str) -> List[str]:
        feed = self.feeds.get(recipient, {})
        found = []
        for notification_id in notification_ids:
            if notification_id in feed:
                found.append(notification_id)
                if feed[notification_id].read_at is None:
                    feed[notification_id].read_at = at
        return found


class FakeKpiStore:
    """Per-day aggregates on ``domain.kpi.apply_once``, the reference semantics the DynamoDB store follows."""

    def __init__(self) -> None:
        self.aggregates: Aggregates = {}
        self.applied: Set[str] = set()  # tokens applied (markers never expire here: a test is shorter than a day)
        self.backlog: Dict[Tuple[str, str], int] = {}  # (dimension, key) -> every backlog movement ever
        self.fail = False  # True: apply_deltas raises, as DynamoDB would when throttled

    def apply_deltas(self, token: str, deltas: List[Delta], *, keep_marker_seconds: int) -> bool:
        if self.fail:
            raise RuntimeError("the KPI table is unreachable")
        wrong = [d.token for d in deltas if d.token != token]
        if wrong:
            raise ValueError(f"a delta of token {wrong[0]!r} given with token {token!r}")
        if token in self.applied:
            return False
        apply_once(self.aggregates, self.applied, deltas)
        self.applied.add(token)  # a token without deltas is applied too (its marker is written)
        for delta in deltas:
            amount = int(delta.counters.get("backlog", 0))
            if amount:
                key = (delta.dimension, delta.key)
                self.backlog[key] = self.backlog.get(key, 0) + amount
        return True

    def kpi_rows(self, dimension: str, from_day: str, to_day: str) -> List[Dict[str, Any]]:
        return aggregate_rows({item: counters for item, counters in self.aggregates.items()
                               if item[1] == dimension and from_day <= item[0] <= to_day})

    def backlog_totals(self, dimension: str) -> Dict[str, int]:
        # Keys whose movements cancelled out (no active case now) are left out, as the DynamoDB store does.
        return {key: total for (dim, key), total in sorted(self.backlog.items()) if dim == dimension and total}


class FakeQaStore:
    """The weekly pool of sent replies (in reply id order, as the DynamoDB store pages it) and one review per reply.

    A review names the ISO ``week`` its reply was sent in (``review["week"]``): that is how
    ``reviews_of_week`` finds it.
    """

    def __init__(self) -> None:
        self.sent: Dict[str, Dict[str, ReplyForReview]] = {}  # week -> reply id -> reply
        self.reviews: Dict[str, Dict[str, Any]] = {}  # reply id -> review

    def note_sent_reply(self, week: str, reply: ReplyForReview) -> None:
        self.sent.setdefault(week, {})[reply.reply_id] = reply

    def sent_replies(self, week: str, *, limit: int, after: Optional[str] = None
                     ) -> Tuple[List[ReplyForReview], Optional[str]]:
        ordered = [reply for _id, reply in sorted(self.sent.get(week, {}).items())]
        start = 0
        if after:
            state = decode_cursor(after)
            if state.get("w") != week or not isinstance(state.get("r"), str):
                raise InvalidCursor("not a position of this week's sent replies; start again without it")
            start = next((i for i, r in enumerate(ordered) if r.reply_id > state["r"]), len(ordered))
        page = ordered[start:start + limit]
        more = start + limit < len(ordered)
        return page, (encode_cursor({"w": week, "r": page[-1].reply_id}) if page and more else None)

    def put_review(self, review: Dict[str, Any]) -> bool:
        review_week(review)  # the check every QA store makes (domain/qa.py)
        if review["reply_id"] in self.reviews:
            return False
        self.reviews[review["reply_id"]] = copy.deepcopy(review)
        return True

    def get_review(self, reply_id: str) -> Optional[Dict[str, Any]]:
        return copy.deepcopy(self.reviews.get(reply_id))

    def reviews_of_week(self, week: str) -> List[Dict[str, Any]]:
        return [copy.deepcopy(r) for _id, r in sorted(self.reviews.items()) if r.get("week") == week]

    def forget_reply(self, week: str, reply_id: str) -> None:
        self.sent.get(week, {}).pop(reply_id, None)
        if (self.reviews.get(reply_id) or {}).get("week") == week:
            del self.reviews[reply_id]


class FakeNotifier:
    """Records what would go to the notifications topic."""

    def __init__(self) -> None:
        self.published: List[Tuple[Notification, List[str]]] = []
        self.fail = False

    def publish(self, notification: Notification, recipients: List[str]) -> None:
        if self.fail:
            raise RuntimeError("the topic is unreachable")
        self.published.append((copy.deepcopy(notification), list(recipients)))


class FakeQueue:
    """Records what was sent, as the JSON SQS would carry."""

    def __init__(self, name: str = "queue", *, visibility_seconds: int = 180, max_receives: int = 5) -> None:
        self.name = name
        self.bodies: List[str] = []
        self.dead: List[Dict[str, str]] = []
        self.fail_next_sends = 0
        self.policy = DeliveryPolicy(visibility_seconds=visibility_seconds, max_receives=max_receives)
        self.delays: List[Tuple[str, int]] = []

    def delivery_policy(self) -> DeliveryPolicy:
        return self.policy

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))

    def _check(self, body: Dict[str, Any], index: Optional[int] = None) -> None:
        """The same size rule as SQS: refused whole, nothing sent."""
        from chalicelib.adapters.queues import MAX_BODY_BYTES, encode_body

        size = len(encode_body(body).encode("utf-8"))
        if size > MAX_BODY_BYTES:
            raise MessageTooLarge(self.name, size, MAX_BODY_BYTES, index)

    def send(self, body: Dict[str, Any]) -> None:
        if self.fail_next_sends:
            self.fail_next_sends -= 1
            raise ConnectionError(f"{self.name}: SQS is unreachable")
        self._check(body)
        self.bodies.append(json.dumps(body, ensure_ascii=False))

    def send_batch(self, bodies: Iterable[Dict[str, Any]]) -> int:
        pending = list(bodies)
        for index, body in enumerate(pending):
            self._check(body, index)
        for body in pending:
            self.send(body)
        return len(pending)

    def dead_letter(self, body: str, reason: str, *, origin: str) -> None:
        self.dead.append({"body": body, "reason": reason, "origin": origin})

    def take(self) -> List[str]:
        """Everything queued so far, removed from the queue (what a consumer would receive)."""
        taken, self.bodies = self.bodies, []
        return taken


class FakeX:
    """The X API on the sending side: records posts, or raises what it is told to.

    ``errors`` are raised before anything is posted; ``lost_answers`` after the
    post is made (the platform wrote it, the answer never arrived).
    """

    def __init__(self) -> None:
        self.posted: List[Tuple[str, str, str]] = []
        self.errors: List[Exception] = []
        self.lost_answers: List[Exception] = []
        self.lookups = 0
        self.uploads: List[Tuple[str, bool]] = []                 # (image URL, for a DM)
        self.media_sent: List[Tuple[str, str, List[str]]] = []   # (reply | dm, target, media ids)

    def _maybe_fail(self) -> None:
        if self.errors:
            raise self.errors.pop(0)

    def _post(self, kind: str, target: str, text: str, prefix: str) -> str:
        self._maybe_fail()
        self.posted.append((kind, target, text))
        if self.lost_answers:
            raise self.lost_answers.pop(0)
        return f"{prefix}{len(self.posted):018d}"

    def reply(self, in_reply_to_tweet_id: str, text: str, *, media_ids: Optional[List[str]] = None) -> str:
        if media_ids:
            self.media_sent.append(("reply", in_reply_to_tweet_id, list(media_ids)))
        return self._post("reply", in_reply_to_tweet_id, text, "9")

    def send_dm(self, participant_id: str, text: str, *, media_id: Optional[str] = None) -> str:
        if media_id:
            self.media_sent.append(("dm", participant_id, [media_id]))
        return self._post("dm", participant_id, text, "dm")

    def upload_image_url(self, url: str, *, for_dm: bool = False) -> str:
        self._maybe_fail()
        self.uploads.append((url, for_dm))
        return f"77{len(self.uploads):017d}"

    def find_reply(self, brand_user_id: str, in_reply_to_tweet_id: str, text: str, since: str) -> Optional[str]:
        self.lookups += 1
        for index, posted in enumerate(self.posted, start=1):
            if posted == ("reply", in_reply_to_tweet_id, text):
                return f"9{index:018d}"
        return None

    def find_dm(self, participant_id: str, text: str, since: str, brand_user_id: str) -> Optional[str]:
        self.lookups += 1
        for index, posted in enumerate(self.posted, start=1):
            if posted == ("dm", participant_id, text):
                return f"dm{index:018d}"
        return None


class FakeGraph:
    def __init__(self) -> None:
        self.posted: List[Tuple[str, ...]] = []
        self.errors: List[Exception] = []
        self.profiles: Dict[str, Author] = {}
        self.mention_details: Dict[str, Mention] = {}
        # Issue 12: what went with messages (attachment, tag, template variables), WhatsApp media files by
        # id ((bytes, mime)), and the account's approved templates.
        self.extras: List[Dict[str, Any]] = []
        self.media_files: Dict[str, Tuple[bytes, str]] = {}
        self.templates: List[Dict[str, Any]] = []
        self.template_calls = 0

    def _maybe_fail(self) -> None:
        if self.errors:
            raise self.errors.pop(0)

    def _post(self, *what: str) -> str:
        self._maybe_fail()
        self.posted.append(what)
        return f"m_{len(self.posted)}"

    def reply_to_comment(self, platform: str, comment_id: str, text: str, *,
                         attachment_url: Optional[str] = None) -> str:
        if attachment_url:
            self.extras.append({"comment_id": comment_id, "attachment_url": attachment_url})
        return self._post("comment_reply", platform, comment_id, text)

    def reply_to_ig_mention(self, ig_user_id: str, media_id: str, text: str, *,
                            comment_id: Optional[str] = None) -> str:
        return self._post("ig_mention_reply", media_id, comment_id or "", text)

    def private_reply_to_comment(self, page_id: str, comment_id: str, text: str, *, platform: str = "facebook") -> str:
        return self._post("private_reply", platform, comment_id, text)

    def send_message(self, platform: str, account_id: str, recipient_id: str, text: str, *,
                     reply_to_message_id: Optional[str] = None, options: Optional[List[Dict[str, str]]] = None,
                     template: Optional[Dict[str, str]] = None, **extra: Any) -> str:
        if extra:
            self.extras.append({"recipient_id": recipient_id, "template": template, **extra})
        return self._post("message", platform, recipient_id, text)

    def media_file(self, media_id: str, *, max_bytes: int) -> Tuple[bytes, str]:
        from chalicelib.domain.errors import Refused

        self._maybe_fail()
        if media_id not in self.media_files:
            raise Refused(f"media {media_id} does not exist")
        data, mime = self.media_files[media_id]
        if len(data) > max_bytes:
            raise Refused(f"media {media_id} is {len(data)} bytes; at most {max_bytes}")
        return data, mime

    def message_templates(self, waba_id: str, *, limit: int = 100) -> List[Dict[str, Any]]:
        self._maybe_fail()
        self.template_calls += 1
        return [dict(t) for t in self.templates]

    def ig_mention_details(self, ig_user_id: str, media_id: str, comment_id: Optional[str] = None, *,
                           source_id: str = "") -> Mention:
        self._maybe_fail()
        return self.mention_details[comment_id or media_id]

    def messaging_profile(self, platform: str, user_id: str) -> Author:
        self._maybe_fail()
        return self.profiles[user_id]


class FakePlatforms:
    def __init__(self) -> None:
        self.fake_x = FakeX()
        self.fake_graph = FakeGraph()

    def x(self) -> FakeX:
        return self.fake_x

    def graph(self) -> FakeGraph:
        return self.fake_graph


class FakeMediaStore:
    """The media bucket in memory; URLs say which file and for how long."""

    def __init__(self) -> None:
        self.files: Dict[str, Tuple[bytes, str]] = {}
        self.fail_puts = 0

    @staticmethod
    def _ref(mention_id: str, index: int) -> str:
        import hashlib

        return f"inbound/{hashlib.sha256(mention_id.encode()).hexdigest()[:12]}/{index}"

    def put(self, mention_id: str, index: int, data: bytes, *, content_type: str) -> str:
        if self.fail_puts:
            from chalicelib.domain.errors import TransientFailure

            self.fail_puts -= 1
            raise TransientFailure("the media bucket is unavailable")
        ref = self._ref(mention_id, index)
        self.files[ref] = (bytes(data), content_type)
        return ref

    def find(self, mention_id: str, index: int) -> Optional[str]:
        ref = self._ref(mention_id, index)
        return ref if ref in self.files else None

    def forget(self, mention_id: str) -> None:
        prefix = self._ref(mention_id, 0)[:-1]
        for ref in [ref for ref in self.files if ref.startswith(prefix)]:
            del self.files[ref]

    def read(self, ref: str, *, max_bytes: int) -> bytes:
        if ref not in self.files:
            raise ValueError("not a media reference this store issued")
        data = self.files[ref][0]
        if len(data) > max_bytes:
            raise ValueError(f"the stored file is larger than {max_bytes} bytes")
        return data

    def url(self, ref: str, *, expires_in: int) -> str:
        if ref not in self.files:
            raise ValueError("not a media reference this store issued")
        return f"https://media.example/{ref}?expires_in={int(expires_in)}"


class FakeModels:
    def __init__(self, blobs: Optional[Mapping[str, bytes]] = None) -> None:
        self.blobs = dict(blobs or {})

    def load(self, uri: str) -> bytes:
        return self.blobs[uri]


class Clock:
    """An injected clock: ISO time for records, epoch for TTLs and rate limits."""

    def __init__(self, start: str = "2026-11-23T03:00:00.000000Z") -> None:
        from chalicelib.domain.clock import parse_iso

        self.moment = parse_iso(start)

    def now(self) -> str:
        from chalicelib.domain.clock import to_iso

        return to_iso(self.moment)

    def epoch(self) -> float:
        return self.moment.timestamp()

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.moment += timedelta(**delta)


def fake_deps(clock: Optional[Clock] = None, secrets: Optional[Dict[str, str]] = None,
              **overrides: Any) -> Deps:
    """A Deps of in-memory fakes; pass any port to replace its fake."""
    clock = clock or Clock()
    settings_store = overrides.pop("settings", None) or FakeSettingsStore()
    values: Dict[str, Any] = dict(
        config=settings(),
        cases=FakeCaseStore(settings_store), mentions=FakeMentionStore(), settings=settings_store,
        mentions_queue=FakeQueue("mentions"), triaged_queue=FakeQueue("triaged"), outbound_queue=FakeQueue("outbound"),
        dead_letters={"mentions": FakeQueue("mentions-dlq"), "triaged": FakeQueue("triaged-dlq"),
                      "outbound": FakeQueue("outbound-dlq")},
        secrets=lambda: dict(secrets or {}), platforms=FakePlatforms(), models=FakeModels(),
        notifications=FakeNotificationStore(), notifier=FakeNotifier(), kpis=FakeKpiStore(), qa=FakeQaStore(),
        costs=FakeCostStore(),
        feedback=FakeFeedbackStore(),
        customers=FakeCustomerStore(),
        templates=FakeTemplateStore(),
        media=FakeMediaStore(),
        now=clock.now, epoch=clock.epoch,
    )
    values.update(overrides)
    # Over the mention store and model source in use (a test may have replaced them).
    values.setdefault("review", FakeMentionReview(values["mentions"]))
    values.setdefault("triage_models", FakeModelStore(values["models"]))
    return Deps(**values)


def mention(platform_id: str = "100", text: str = "@SoraAir my bag is lost, please help", *, author_id: str = "42",
            platform: str = "x", kind: str = "mention", created_at: str = "2026-11-23T03:00:00Z",
            **extra: Any) -> Mention:
    """A customer's post, as the listen stage hands it on."""
    handle = extra.pop("handle", "kana_t")
    return Mention(platform=platform, kind=kind, platform_id=platform_id, text=text, created_at=created_at,
                   author=Author(id=author_id, handle=handle, name=handle, followers=extra.pop("followers", 120),
                                 verified=extra.pop("verified", False)),
                   source_id=extra.pop("source_id", "x:mentions:1500000000000000001"), lang=extra.pop("lang", "en"),
                   **extra)


Handler = Callable[[str, Deps], Dict[str, Any]]


class StaticPlatforms:
    """Platform clients with some replaced by the test's own (the rest as before)."""

    def __init__(self, base: Any, *, x: Any = None, graph: Any = None) -> None:
        self.base, self._x, self._graph = base, x, graph

    def x(self) -> Any:
        return self._x if self._x is not None else self.base.x()

    def graph(self) -> Any:
        return self._graph if self._graph is not None else self.base.graph()


def use_platforms(deps: Deps, *, x: Any = None, graph: Any = None) -> None:
    deps.platforms = StaticPlatforms(deps.platforms, x=x, graph=graph)


# ---- costs ----------------------------------------------------------------------------------------------

_COST_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _cost_check_day(day: str) -> None:
    if not isinstance(day, str) or not _COST_DAY.match(day):
        raise ValueError(f"a day is YYYY-MM-DD, not {day!r}")
    date.fromisoformat(day)


def _cost_part(name: str) -> str:
    return (name or "-").replace("#", "_")


class FakeCostStore:
    """An in-memory ``CostStore`` that behaves as ``adapters/cost_store.py`` does (tests/contract keeps them alike)."""

    def __init__(self, stage: str = "test") -> None:
        self.stage = stage
        self.items: Dict[Tuple[str, str, str, str], Dict[str, float]] = {}
        self.writes = 0          # add_usage calls that wrote (an UpdateItem each)
        self.queries = 0         # Queries the Dynamo store would make (one per calendar month read)

    def add_usage(self, day: str, function: str, channel: str, usage: Mapping[str, float]) -> None:
        _cost_check_day(day)
        quantities = {k: q for k, q in usage.items() if q}
        for quantity in quantities.values():
            if (isinstance(quantity, bool) or not isinstance(quantity, (int, float)) or not math.isfinite(quantity)
                    or quantity < 0):
                raise ValueError(f"usage quantities are finite numbers, zero or more, not {quantity!r}")
        if not quantities:
            return
        item = self.items.setdefault((day, _cost_part(self.stage), _cost_part(function), _cost_part(channel)), {})
        for kind, quantity in quantities.items():
            item[kind] = item.get(kind, 0.0) + float(quantity)
        self.writes += 1

    def usage_rows(self, from_day: str, to_day: str) -> List[Dict[str, Any]]:
        _cost_check_day(from_day)
        _cost_check_day(to_day)
        start, end = date.fromisoformat(from_day), date.fromisoformat(to_day)
        if start <= end:
            self.queries += (end.year - start.year) * 12 + end.month - start.month + 1
        # In sort-key order, as DynamoDB returns them: "<day>#<stage>#<function>#<channel>".
        keys = sorted((k for k in self.items if from_day <= k[0] <= to_day), key=lambda k: "#".join(k))
        return [{"day": k[0], "stage": k[1], "function": k[2], "channel": k[3], "usage": dict(self.items[k])}
                for k in keys]
