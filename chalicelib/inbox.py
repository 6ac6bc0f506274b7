"""What agents do through the API: their inbox, a case, a status change.

Authorization is data: an agent (a Cognito user registered in settings) sees
the cases of the teams they belong to; a supervisor sees every team.
"""
from __future__ import annotations

import heapq
from typing import Any, Dict, List, Mapping, Optional

from chalicelib import cases as case_rules
from chalicelib.adapters.dynamo import decode_cursor, encode_cursor
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound

ORDERS = ("newest", "priority")


def agent_for(username: str, deps: Any) -> Dict[str, Any]:
    agent = deps.settings.get_agent(username)
    if not agent:
        raise Forbidden(f"user '{username}' is signed in but not registered as an agent; ask a supervisor to add them")
    return agent


def is_supervisor(agent: Dict[str, Any]) -> bool:
    return agent.get("role") == "supervisor"


def require_supervisor(agent: Dict[str, Any]) -> None:
    if not is_supervisor(agent):
        raise Forbidden("only supervisors may do this")


def visible_teams(agent: Dict[str, Any], deps: Any) -> List[str]:
    if is_supervisor(agent):
        return sorted(set(deps.settings.teams()) | set(agent.get("teams", [])))
    return list(agent.get("teams", []))


def load_case(agent: Dict[str, Any], case_id: str, deps: Any) -> Dict[str, Any]:
    case = deps.cases.get(case_id)
    if case is None:
        raise NotFound(f"case '{case_id}' does not exist")
    if not is_supervisor(agent) and case["team"] not in agent.get("teams", []):
        raise Forbidden(f"case '{case_id}' belongs to team '{case['team']}', which you are not in")
    return case


def list_inbox(agent: Dict[str, Any], params: Mapping[str, str], deps: Any) -> Dict[str, Any]:
    status = params.get("status", "open")
    if status not in case_rules.STATUSES:
        raise BadRequest(f"query 'status' must be one of {', '.join(case_rules.STATUSES)}")
    order = params.get("order", "newest")
    if order not in ORDERS:
        raise BadRequest("query 'order' must be 'newest' or 'priority'")
    try:
        limit = int(params.get("limit", "25"))
    except ValueError:
        raise BadRequest("query 'limit' must be a whole number from 1 to 100") from None
    if not 1 <= limit <= 100:
        raise BadRequest("query 'limit' must be a whole number from 1 to 100")
    teams = visible_teams(agent, deps)
    if "team" in params:
        if params["team"] not in teams:
            raise Forbidden(f"you are not in team '{params['team']}'")
        teams = [params["team"]]
    if params.get("assignee") == "me":
        assignee: Optional[str] = agent["agent_id"]
    else:
        assignee = None
    positions: Dict[str, Any] = {team: None for team in teams}
    if params.get("cursor"):
        try:
            state = decode_cursor(params["cursor"])
            if state["status"] != status or state["order"] != order:
                raise ValueError("cursor of another query")
            positions = {team: state["positions"][team] for team in teams if team in state["positions"]}
        except (ValueError, KeyError, TypeError):
            raise BadRequest("query 'cursor' is not one this API issued for this inbox") from None
    cases, next_positions = _merge_team_pages(positions, status, order, limit, deps)
    if assignee:
        cases = [c for c in cases if c.get("assignee") == assignee]
    next_cursor = encode_cursor({"positions": next_positions, "status": status, "order": order}) if next_positions else None
    return {"cases": [case_rules.public_view(c) for c in cases], "next_cursor": next_cursor}


def _merge_team_pages(positions: Dict[str, Any], status: str, order: str, limit: int, deps: Any):
    """Merge each team's index page in the requested order.

    The cursor holds, per team, the key of the last case handed out from that
    team ("done" once a team has no more), so a page never skips or repeats a
    case even when teams interleave.
    """
    sort_field = "inbox_priority_sk" if order == "priority" else "inbox_time_sk"
    newest_first = order != "priority"
    fetched: Dict[str, List[Dict[str, Any]]] = {}
    more: Dict[str, bool] = {}
    for team, start_after in positions.items():
        if start_after == "done":
            continue
        fetched[team], more[team] = deps.cases.inbox_page(team, status, order, limit, start_after)
    merged = heapq.merge(
        *[[(item[sort_field], team, item) for item in items] for team, items in fetched.items()],
        key=lambda entry: entry[0], reverse=newest_first,
    )
    page: List[Dict[str, Any]] = []
    last_taken: Dict[str, Dict[str, Any]] = {}
    taken_count: Dict[str, int] = {}
    for _sort, team, item in merged:
        if len(page) == limit:
            break
        page.append(item)
        last_taken[team] = item
        taken_count[team] = taken_count.get(team, 0) + 1
    next_positions: Dict[str, Any] = {team: "done" for team, v in positions.items() if v == "done"}
    for team, items in fetched.items():
        if taken_count.get(team, 0) == len(items) and not more[team]:
            next_positions[team] = "done"
        elif team in last_taken:
            item = last_taken[team]
            next_positions[team] = {"pk": item["pk"], "sk": item["sk"], "inbox_pk": item["inbox_pk"],
                                    sort_field: item[sort_field]}
        else:
            next_positions[team] = positions[team]
    if all(v == "done" for v in next_positions.values()):
        return page, None
    return page, next_positions


def case_detail(agent: Dict[str, Any], case_id: str, deps: Any) -> Dict[str, Any]:
    load_case(agent, case_id, deps)
    items = deps.cases.items(case_id)
    detail: Dict[str, Any] = {"mentions": [], "history": [], "replies": [], "notes": []}
    for item in items:
        kind = item["sk"].split("#", 1)[0]
        clean = {k: v for k, v in item.items() if k not in ("pk", "sk", "type")}
        if kind == "META":
            detail["case"] = case_rules.public_view(clean)
        elif kind == "MENTION":
            clean.pop("raw", None)
            detail["mentions"].append(clean)
        elif kind == "EVENT":
            detail["history"].append(clean)
        elif kind == "REPLY":
            detail["replies"].append(clean)
    detail["replies"].sort(key=lambda r: r["created_at"])
    detail["customer"] = detail["case"]["customer"]
    return detail


def change_status(agent: Dict[str, Any], case_id: str, body: Any, deps: Any) -> Dict[str, Any]:
    case = load_case(agent, case_id, deps)
    if not isinstance(body, dict) or "status" not in body:
        raise BadRequest("body must be a JSON object with 'status': one of " + ", ".join(case_rules.STATUSES))
    new_status = body["status"]
    try:
        case_rules.check_transition(case["status"], new_status)
    except case_rules.InvalidTransition as err:
        raise (BadRequest(str(err)) if new_status not in case_rules.STATUSES else Conflict(str(err))) from None
    if new_status == case["status"]:
        return case_rules.public_view(case)
    now = deps.now()
    fields = case_rules.status_change_fields(case, new_status, now)
    if not deps.cases.update(case_id, fields, expect_status=case["status"]):
        raise Conflict(f"case '{case_id}' changed while you were editing it; reload and try again")
    was_active = case["status"] in case_rules.ACTIVE_STATUSES
    is_active = new_status in case_rules.ACTIVE_STATUSES
    if case.get("assignee") and was_active != is_active:
        deps.settings.adjust_open_cases(case["assignee"], -1 if was_active else +1, at=now)
    deps.cases.add_event(case_id, {"event": "status_changed", "from": case["status"], "to": new_status,
                                   "agent_id": agent["agent_id"]}, at=now)
    return case_rules.public_view({**case, **fields})


def validate_agent(agent_id: str, body: Any, existing: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A supervisor's change to an agent: teams, capacity, availability, role."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object, e.g. {\"teams\": [\"support\"], \"capacity\": 20}")
    agent = dict(existing or {"agent_id": agent_id, "open_cases": 0})
    teams = body.get("teams", agent.get("teams"))
    if not isinstance(teams, list) or not teams or not all(isinstance(t, str) and t and "#" not in t for t in teams):
        raise BadRequest("field 'teams' must be a non-empty list of team names")
    capacity = body.get("capacity", agent.get("capacity", 20))
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 500:
        raise BadRequest("field 'capacity' must be a whole number of open cases from 1 to 500")
    available = body.get("available", agent.get("available", True))
    if not isinstance(available, bool):
        raise BadRequest("field 'available' must be true or false")
    role = body.get("role", agent.get("role", "agent"))
    if role not in ("agent", "supervisor"):
        raise BadRequest("field 'role' must be 'agent' or 'supervisor'")
    name = body.get("name", agent.get("name", agent_id))
    if not isinstance(name, str):
        raise BadRequest("field 'name' must be a string")
    agent.update(teams=sorted(set(teams)), capacity=capacity, available=available, role=role, name=name)
    return agent
