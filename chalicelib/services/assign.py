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
from chalicelib.services.case_updates import modify_case


def parse_triaged(body: str) -> Tuple[Mention, Dict[str, Any]]:
    try:
        data = json.loads(body)
        return Mention.from_dict(data["mention"]), dict(data["triage"])
    except (ValueError, KeyError, TypeError, InvalidMention) as err:
        raise PermanentFailure(f"not a triaged mention: {err}") from err


def assign_message(body: str, deps: Deps) -> Dict[str, Any]:
    mention, triage = parse_triaged(body)
    now = deps.now()
    own_case_id = case_rules.case_id_for(mention.id)
    active = deps.cases.active_case_for_customer(mention.customer_key)
    if active and active != own_case_id:
        return _join_case(active, mention, triage, deps, now)
    return _open_case(mention, triage, deps, now)


def _open_case(mention: Mention, triage: Dict[str, Any], deps: Deps, now: str) -> Dict[str, Any]:
    team = choose_team(triage, known_teams=deps.settings.teams() or None)
    agent = choose_agent(deps.settings.team_agents(team))
    case = case_rules.new_case(mention, triage, team=team, assignee=agent.agent_id if agent else None, now=now)
    created = deps.cases.create(case)
    if created:
        if agent and not deps.settings.adjust_open_cases(agent.agent_id, +1, at=now):
            # Filled up between our read and now: leave the case in the team queue.
            saved = modify_case(deps.cases, case.case_id, lambda c: replace(c, assignee=None))
            case = saved or case
        deps.cases.add_event(case.case_id, {
            "event": "opened", "team": team, "assignee": case.assignee, "why": case.why,
        }, at=now)
    else:
        case = deps.cases.get(case.case_id) or case
    deps.cases.add_mention(case.case_id, mention, at=mention.created_at or now)
    deps.mentions.update(mention.id, state="routed", case_id=case.case_id)
    return _outcome(mention, case, "opened" if created else "duplicate")


def _join_case(case_id: str, mention: Mention, triage: Dict[str, Any], deps: Deps, now: str) -> Dict[str, Any]:
    case: Optional[Case] = deps.cases.get(case_id)
    if case is None:  # index lag after a delete: treat as no active case
        return _open_case(mention, triage, deps, now)
    added = deps.cases.add_mention(case_id, mention, at=mention.created_at or now)
    if added:
        priority = triage.get("priority") or "normal"
        case = modify_case(deps.cases, case_id, lambda c: case_rules.with_follow_up(c, mention, priority, now)) or case
        deps.cases.add_event(case_id, {"event": "follow_up", "mention_id": mention.id}, at=now)
    deps.mentions.update(mention.id, state="routed", case_id=case_id)
    return _outcome(mention, case, "joined" if added else "duplicate")


def _outcome(mention: Mention, case: Case, outcome: str) -> Dict[str, Any]:
    return {"mention_id": mention.id, "case_id": case.case_id, "outcome": outcome,
            "team": case.team, "assignee": case.assignee, "priority": case.priority}
