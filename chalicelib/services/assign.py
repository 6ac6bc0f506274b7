"""The assignment stage: join the customer's active case, or open one and
give it to the least-loaded agent of the team the rules choose."""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Dict, Optional, Tuple

from chalicelib.domain import case as case_rules
from chalicelib.domain.case import Case
from chalicelib.domain.errors import PermanentFailure
from chalicelib.domain.mention import InvalidMention, Mention
from chalicelib.domain.routing import choose_agent, choose_team
from chalicelib.ports import Deps


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
        return _finish(mention, own, "duplicate", deps, now)
    for _attempt in range(3):
        active = deps.cases.active_case_for_customer(mention.customer_key)
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
    result = deps.cases.open_case(case, opened_event={"event": "opened", "team": team, "why": case.why})
    if result.outcome == "customer_active":
        return None  # another post of this customer opened a case a moment ago: join it
    stored = deps.cases.get(case.case_id) or replace(case, assignee=result.assignee)
    return _finish(mention, stored, "opened" if result.outcome == "opened" else "duplicate", deps, now)


def _join_case(case_id: str, mention: Mention, triage: Dict[str, Any], deps: Deps,
               now: str) -> Optional[Dict[str, Any]]:
    priority = triage.get("priority") or "normal"
    for _attempt in range(5):
        case: Optional[Case] = deps.cases.get(case_id)
        if case is None or not case.active:
            return None
        changed = case_rules.with_follow_up(case, mention, priority, now)
        outcome = deps.cases.add_follow_up(changed, mention, at=now,
                                           event={"event": "follow_up", "mention_id": mention.id})
        if outcome == "stale":
            continue
        deps.mentions.update(mention.id, state="routed", case_id=case_id)
        shown = changed if outcome == "added" else case
        return _outcome(mention, shown, "joined" if outcome == "added" else "duplicate")
    raise RuntimeError(f"case {case_id} kept changing while {mention.id} joined it; the message will be retried")


def _finish(mention: Mention, case: Case, outcome: str, deps: Deps, now: str) -> Dict[str, Any]:
    """Attach the post that opened the case and mark the mention routed (both repeatable)."""
    deps.cases.add_mention(case.case_id, mention, at=mention.created_at or now)
    deps.mentions.update(mention.id, state="routed", case_id=case.case_id)
    return _outcome(mention, case, outcome)


def _outcome(mention: Mention, case: Case, outcome: str) -> Dict[str, Any]:
    return {"mention_id": mention.id, "case_id": case.case_id, "outcome": outcome,
            "team": case.team, "assignee": case.assignee, "priority": case.priority}
