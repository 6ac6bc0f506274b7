"""The assignment stage: join the customer's active case, or open one and
give it to the least-loaded agent of the team the rules choose.

A case is written with its SLA marks (``sla.refresh``). When no agent has room it is opened without
an assignee: it waits in its team's queue, which ``workload`` fills as agents free up or come online.
After the case is settled, an escalation notifies the team's people (once per case: the key makes
it idempotent, so a redelivery adds nothing) and the customer may get an away message.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Dict, Optional, Tuple

from chalicelib.domain import case as case_rules
from chalicelib.domain.case import Case
from chalicelib.domain.errors import PermanentFailure
from chalicelib.domain.mention import InvalidMention, Mention
from chalicelib.domain.routing import choose_agent, choose_team
from chalicelib.observability import logger
from chalicelib.ports import Deps
from chalicelib.services import away, customers, notify, sla

ESCALATION_KEY = "escalation"


def parse_triaged(body: str) -> Tuple[Mention, Dict[str, Any]]:
    try:
        data = json.loads(body)
        return Mention.from_dict(data["mention"]), dict(data["triage"])
    except (ValueError, KeyError, TypeError, InvalidMention) as err:
        raise PermanentFailure(f"not a triaged mention: {err}") from err


def assign_message(body: str, deps: Deps) -> Dict[str, Any]:
    """Idempotent across crashes and redeliveries: each step is all-or-nothing and safe to repeat."""
    mention, triage = parse_triaged(body)
    now = deps.now()
    own = deps.cases.get(case_rules.case_id_for(mention.id))
    if own is not None:  # a redelivery after this mention opened its case: finish the remaining steps
        return _finish(mention, own, "duplicate", deps, now, triage)
    for _attempt in range(3):
        # The active case of any identity linked to the customer, else their case resolved within the
        # reopen window, reopened (services/customers.py); else a new case.
        active = customers.active_case_for(mention, deps) or customers.reopen_recent(mention, deps, now)
        if active:
            joined = _join_case(active, mention, triage, deps, now)
            if joined is not None:
                return joined
            continue  # the case stopped being active meanwhile: look again
        opened = _open_case(mention, triage, deps, now)
        if opened is not None:
            return opened
    raise RuntimeError(f"could not settle which case {mention.id} belongs to; the message will be retried")


def _open_case(mention: Mention, triage: Dict[str, Any], deps: Deps, now: str) -> Optional[Dict[str, Any]]:
    team = choose_team(triage, known_teams=deps.settings.teams() or None)
    agent = choose_agent(deps.settings.team_agents(team))
    case = case_rules.new_case(mention, triage, team=team, assignee=agent.agent_id if agent else None, now=now)
    case = sla.refresh(case, deps, now)  # written with the case: the inbox and the tick find it by them
    result = deps.cases.open_case(case, opened_event={"event": "opened", "team": team, "why": case.why})
    if result.outcome == "customer_active":
        return None  # another post of this customer opened a case a moment ago: join it
    stored = deps.cases.get(case.case_id) or replace(case, assignee=result.assignee)
    return _finish(mention, stored, "opened" if result.outcome == "opened" else "duplicate", deps, now, triage)


def _join_case(case_id: str, mention: Mention, triage: Dict[str, Any], deps: Deps,
               now: str) -> Optional[Dict[str, Any]]:
    priority = triage.get("priority") or "normal"
    for _attempt in range(5):
        case: Optional[Case] = deps.cases.get(case_id)
        if case is None or not case.active:
            return None
        # The follow-up may start the next-response clock, raise the priority or end a pause: new marks.
        changed = sla.refresh(case_rules.with_follow_up(case, mention, priority, now), deps, now)
        outcome = deps.cases.add_follow_up(changed, mention, at=now,
                                           event={"event": "follow_up", "mention_id": mention.id})
        if outcome == "stale":
            continue
        deps.mentions.update(mention.id, state="routed", case_id=case_id)
        shown = changed if outcome == "added" else case
        # Also on a duplicate: a crash may have come between the join and these (both repeatable).
        if triage.get("escalate"):
            _escalate(shown, deps, now)
        _acknowledge(shown, mention, deps, now)
        return _outcome(mention, shown, "joined" if outcome == "added" else "duplicate")
    raise RuntimeError(f"case {case_id} kept changing while {mention.id} joined it; the message will be retried")


def _finish(mention: Mention, case: Case, outcome: str, deps: Deps, now: str,
            triage: Dict[str, Any]) -> Dict[str, Any]:
    """Attach the post that opened the case, mark the mention routed, notify an escalation and maybe
    acknowledge the customer (all repeatable: a redelivery finishes what a crash left)."""
    deps.cases.add_mention(case.case_id, mention, at=mention.created_at or now)
    deps.mentions.update(mention.id, state="routed", case_id=case.case_id)
    customers.note_case(mention, case, deps, now)  # the identity, linked to its profile; its newest case
    if case.escalated or triage.get("escalate"):
        _escalate(case, deps, now)
    _acknowledge(case, mention, deps, now)
    return _outcome(mention, case, outcome)


def _escalate(case: Case, deps: Deps, now: str) -> None:
    """Triage said a person must look at this: tell the assignee and the team's supervisors, once per case.

    A failure here fails the message, which SQS delivers again: the notification must not be lost,
    and repeating it is harmless (its id is the case's and the key's).
    """
    who = "a verified account's " if case.customer.get("verified") else ""
    detail = (f"Escalated by triage: {who}{case.priority} {case.category or 'case'} on {case.platform} "
              f"for team {case.team}; case {case.case_id}, "
              + (f"assigned to {case.assignee}." if case.assignee else "waiting for an agent with room."))
    notify.notify(case, "escalation", detail, deps, key=ESCALATION_KEY, now=now)


def _acknowledge(case: Case, mention: Mention, deps: Deps, now: str) -> None:
    """The customer may get an away message. A courtesy: it never fails or delays the assignment."""
    try:
        away.maybe_acknowledge(case, mention, deps, now)
    except Exception:  # noqa: BLE001 - the case is settled; a missing acknowledgement is only logged
        logger.exception("away message failed", extra={"case_id": case.case_id, "mention_id": mention.id})


def _outcome(mention: Mention, case: Case, outcome: str) -> Dict[str, Any]:
    return {"mention_id": mention.id, "case_id": case.case_id, "outcome": outcome,
            "team": case.team, "assignee": case.assignee, "priority": case.priority}
