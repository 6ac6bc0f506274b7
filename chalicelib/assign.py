"""The assignment stage: join the customer's active case, or open one and
give it to the least-loaded agent of the team the rules choose."""
from __future__ import annotations

import json
from typing import Any, Dict

from chalicelib import cases as case_rules
from chalicelib.errors import PermanentFailure
from chalicelib.mention import InvalidMention, Mention
from chalicelib.route import choose_agent, choose_team


def parse_triaged(body: str):
    try:
        data = json.loads(body)
        return Mention.from_dict(data["mention"]), dict(data["triage"])
    except (ValueError, KeyError, TypeError, InvalidMention) as err:
        raise PermanentFailure(f"not a triaged mention: {err}") from err


def assign_message(body: str, deps: Any) -> Dict[str, Any]:
    mention, triage = parse_triaged(body)
    now = deps.now()
    own_case_id = case_rules.case_id_for(mention.id)
    active = deps.cases.active_case_for_customer(mention.customer_key)
    if active and active != own_case_id:
        return _join_case(active, mention, triage, deps, now)
    return _open_case(mention, triage, deps, now)


def _open_case(mention: Mention, triage: Dict[str, Any], deps: Any, now: str) -> Dict[str, Any]:
    team = choose_team(triage, known_teams=deps.settings.teams() or None)
    agents = deps.settings.team_agents(team)
    agent = choose_agent(agents)
    case = case_rules.new_case(mention, triage, team=team, assignee=agent["agent_id"] if agent else None, now=now)
    created = deps.cases.create(case)
    if created:
        if agent and not deps.settings.adjust_open_cases(agent["agent_id"], +1, at=now):
            # Filled up between our read and now: leave the case in the team queue.
            deps.cases.update(case["case_id"], {"assignee": None})
            case["assignee"] = None
        deps.cases.add_event(case["case_id"], {
            "event": "opened", "team": team, "assignee": case["assignee"], "why": case["why"],
        }, at=now)
    else:
        case = deps.cases.get(case["case_id"]) or case
    deps.cases.add_mention(case["case_id"], mention.to_dict(), at=mention.created_at or now)
    deps.mentions.update(mention.id, {"state": "routed", "case_id": case["case_id"]})
    return {"mention_id": mention.id, "case_id": case["case_id"], "outcome": "opened" if created else "duplicate",
            "team": case["team"], "assignee": case.get("assignee"), "priority": case["priority"]}


def _join_case(case_id: str, mention: Mention, triage: Dict[str, Any], deps: Any, now: str) -> Dict[str, Any]:
    case = deps.cases.get(case_id)
    if case is None:  # index lag after a delete: treat as no active case
        return _open_case(mention, triage, deps, now)
    added = deps.cases.add_mention(case_id, mention.to_dict(), at=mention.created_at or now)
    if added:
        fields: Dict[str, Any] = {
            "reply_target": case_rules.reply_target(mention),
            "mention_count": int(case.get("mention_count", 1)) + 1,
            "updated_at": now,
        }
        new_priority = triage.get("priority", "normal")
        if case_rules.PRIORITY_RANK.get(new_priority, 2) < case_rules.PRIORITY_RANK.get(case["priority"], 2):
            case = {**case, "priority": new_priority}
            fields["priority"] = new_priority
        if case["status"] == "pending":
            fields.update(case_rules.status_change_fields(case, "open", now))
        else:
            fields.update(case_rules.inbox_keys(case["team"], case["status"], case["priority"], case["created_at"], case_id))
        deps.cases.update(case_id, fields)
        deps.cases.add_event(case_id, {"event": "follow_up", "mention_id": mention.id}, at=now)
    deps.mentions.update(mention.id, {"state": "routed", "case_id": case_id})
    return {"mention_id": mention.id, "case_id": case_id, "outcome": "joined" if added else "duplicate",
            "team": case["team"], "assignee": case.get("assignee"), "priority": case["priority"]}
