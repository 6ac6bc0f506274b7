"""What agents do through the API: their inbox, a case, a status change.

Authorization is data: an agent (a Cognito user registered in settings) sees
the cases of the teams they belong to; a supervisor sees every team.

Every case shown carries its live SLA clocks (``sla``), computed with the policy
and calendars read once per request; every case written carries fresh SLA marks.
"""
from __future__ import annotations

import heapq
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.domain import case as case_rules
from chalicelib.domain.agent import Agent, validate_agent
from chalicelib.domain.case import Case
from chalicelib.domain.errors import BadRequest, Conflict, Forbidden, InvalidCursor, NotFound
from chalicelib.domain.inbox_filter import UNASSIGNED, InboxFilter, parse_filter
from chalicelib.domain.limits import page_limit
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.observability import logger
from chalicelib.ports import CaseHistory, Deps, InboxPage
from chalicelib.services import customers, measure, media, sla, workload

MAX_LIMIT = 100
# History items per page of GET /cases/{id}: a post is at most 10,000 characters
# (60 KB as escaped JSON), so 50 stay well inside Lambda's 6 MB answer.
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 50
MAX_ID_LENGTH = 128


FINANCE_ONLY = "the finance role sees the cost and KPI reports (/reports/costs, /reports/kpis) and nothing else"


def require_case_worker(agent: Agent) -> None:
    """Cases and customers are for agents and supervisors; finance reads reports only."""
    if agent.role == "finance":
        raise Forbidden(FINANCE_ONLY)


def agent_for(username: str, deps: Deps) -> Agent:
    agent = deps.settings.signed_in_agent(username)  # may be 30 s old (AGENT_CACHE_SECONDS): not for load
    if not agent:
        raise Forbidden(f"user '{username}' is signed in but not registered as an agent; ask a supervisor to add them")
    return agent


def require_supervisor(agent: Agent) -> None:
    if not agent.is_supervisor:
        raise Forbidden("only supervisors may do this")


def visible_teams(agent: Agent, deps: Deps) -> List[str]:
    if agent.is_supervisor:
        return sorted(set(deps.settings.teams()) | set(agent.teams))
    return list(agent.teams)


def load_case(agent: Agent, case_id: str, deps: Deps) -> Case:
    require_case_worker(agent)
    if not isinstance(case_id, str) or not 0 < len(case_id) <= MAX_ID_LENGTH:
        raise NotFound("case id is not one this API issued")
    case = deps.cases.get(case_id)
    if case is None:
        raise NotFound(f"case '{case_id}' does not exist")
    if not agent.is_supervisor and case.team not in agent.teams:
        raise Forbidden(f"case '{case_id}' belongs to team '{case.team}', which you are not in")
    return case


def list_inbox(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    require_case_worker(agent)
    status = params.get("status", "open")
    if status not in case_rules.STATUSES:
        raise BadRequest(f"query 'status' must be one of {', '.join(case_rules.STATUSES)}")
    order = params.get("order", "newest")
    if order not in case_rules.INBOX_ORDERS:
        raise BadRequest("query 'order' must be one of " + ", ".join(case_rules.INBOX_ORDERS))
    sla_filter: Optional[str] = params.get("sla") or None
    if sla_filter is not None and sla_filter not in case_rules.SLA_FILTERS:
        raise BadRequest("query 'sla' must be one of " + ", ".join(case_rules.SLA_FILTERS))
    limit = _limit(params.get("limit", "25"))
    teams = visible_teams(agent, deps)
    if "team" in params:
        if params["team"] not in teams:
            raise Forbidden(f"you are not in team '{params['team']}'")
        teams = [params["team"]]
    # assignee, priority, category, platform, lang, tag, escalated: applied by the store as it reads, so
    # pages stay full (domain/inbox_filter.py); unknown parameters are refused, not ignored.
    where = parse_filter(params, me=agent.agent_id)
    bound = where.conditions()
    positions: Dict[str, Optional[str]] = {team: None for team in teams}
    mine: Optional[str] = None  # the position in one agent's own listing (assignee=<agent>)
    if params.get("cursor"):
        state = decode_cursor(params["cursor"])
        saved = state.get("positions")
        if (state.get("status") != status or state.get("order") != order or state.get("sla") != sla_filter
                or (state.get("where") or {}) != bound or not isinstance(saved, dict)):
            raise InvalidCursor("query 'cursor' belongs to another listing (other status, order or filters); "
                                "start again without it")
        if not all(isinstance(v, str) for v in saved.values()):
            raise InvalidCursor("query 'cursor' is not one this API issued; start again without it")
        if "_assignee" in saved:
            mine = saved["_assignee"]
        positions = {team: None if saved[team] == "start" else saved[team] for team in teams if team in saved}
    now = deps.now()
    filtered = None if where.empty else where
    cases: List[Case] = []
    next_positions: Optional[Dict[str, str]] = None
    own = (deps.cases.assignee_page(where.assignee, status, order, limit, mine, teams=teams, sla=sla_filter,
                                    now=now, where=where)
           if where.assignee not in (None, UNASSIGNED) else None)
    if own is not None:  # the agent's own entries, not a read through the teams' inboxes
        cases = own.cases
        next_positions = {"_assignee": own.positions[-1]} if own.more and own.cases else None
    elif mine is not None:
        raise InvalidCursor("query 'cursor' no longer fits this listing; start again without it")
    else:
        cases, next_positions = _merge_team_pages(positions, status, order, limit, deps, sla=sla_filter, now=now,
                                                  where=filtered)
    cursor_state: Dict[str, Any] = {"positions": next_positions, "status": status, "order": order, "sla": sla_filter}
    if bound:
        cursor_state["where"] = bound
    next_cursor = encode_cursor(cursor_state) if next_positions else None
    # Read once for the whole page, not per case.
    policy = sla.policy(deps)
    calendars = deps.settings.team_calendars() if policy is not None and cases else {}
    return {"cases": [_shown(c, deps, now, policy, calendars) for c in cases], "next_cursor": next_cursor}


def _shown(case: Case, deps: Deps, now: str, policy: Any, calendars: Mapping[str, Any]) -> Dict[str, Any]:
    view = case.public_view()
    view["sla"] = sla.sla_view(case, deps, now, policy=policy, calendars=calendars)
    return view


def _limit(raw: str, maximum: int = MAX_LIMIT) -> int:
    return page_limit(raw, maximum)


def _merge_team_pages(positions: Dict[str, Optional[str]], status: str, order: str, limit: int,
                      deps: Deps, *, sla: Optional[str] = None, now: Optional[str] = None,
                      where: Optional[InboxFilter] = None) -> Tuple[List[Case], Optional[Dict[str, str]]]:
    """Merge each team's page in the requested order.

    The cursor holds, per team, the store's position after the last case
    handed out from that team ("done" once a team has no more), so a page
    never skips or repeats a case even when teams interleave.
    """
    newest_first = order == "newest"  # priority and due: most urgent first, ascending
    fetched: Dict[str, InboxPage] = {}
    for team, after in positions.items():
        if after == "done":
            continue
        fetched[team] = (deps.cases.inbox_page(team, status, order, limit, after, sla=sla, now=now, where=where)
                         if where is not None else
                         deps.cases.inbox_page(team, status, order, limit, after, sla=sla, now=now))
    merged = heapq.merge(
        *[[(case.sort_key(order), team, index) for index, case in enumerate(page.cases)]
          for team, page in fetched.items()],
        key=lambda entry: entry[0], reverse=newest_first,
    )
    page_cases: List[Case] = []
    taken: Dict[str, int] = {}
    for _sort, team, index in merged:
        if len(page_cases) == limit:
            break
        page_cases.append(fetched[team].cases[index])
        taken[team] = index + 1
    next_positions: Dict[str, str] = {}
    for team, after in positions.items():
        team_page = fetched.get(team)
        count = taken.get(team, 0)
        if team_page is None or (count == len(team_page.cases) and not team_page.more):
            next_positions[team] = "done"
        elif count:
            next_positions[team] = team_page.positions[count - 1]
        else:
            next_positions[team] = after or "start"
    if all(v == "done" for v in next_positions.values()):
        return page_cases, None
    return page_cases, next_positions


def case_detail(agent: Agent, case_id: str, deps: Deps, params: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The case with a page of its history; ``next_cursor`` fetches the next page (``?cursor=``).

    At most HISTORY_MAX_LIMIT items a page, each bounded in size, keeps the
    answer far below Lambda's 6 MB response limit however long the case.
    """
    params = params or {}
    load_case(agent, case_id, deps)
    limit = _limit(params.get("limit", str(HISTORY_DEFAULT_LIMIT)), HISTORY_MAX_LIMIT)
    history = deps.cases.history(case_id, limit=limit, after=params.get("cursor") or None)
    if history is None:
        raise NotFound(f"case '{case_id}' does not exist")
    if not params.get("cursor"):
        _note_view(agent, case_id, history, deps)
    case = history.case.public_view()
    case["sla"] = sla.sla_view(history.case, deps, deps.now())
    return {
        "case": case,
        "customer": customers.panel(history.case, case["customer"], deps),  # profile id, tags, other cases
        "mentions": [m.to_dict() for m in history.mentions],
        "media": media.case_media(case_id, history.mentions),  # this page's files; GET .../media/{id} opens one
        "history": history.events,
        "replies": [r.public_view() for r in history.replies],
        "notes": [e for e in history.events if e.get("event") == "note_added"],  # this page's notes
        "next_cursor": history.next_position,
    }


def _note_view(agent: Agent, case_id: str, history: CaseHistory, deps: Deps) -> None:
    """Opening a case is where handle time starts (services/measure.py); the next pages of the same
    history are the same look. Best effort: the agent gets the case even when the event is not written."""
    try:
        measure.note_view(agent, case_id, history, deps)
    except Exception:  # noqa: BLE001 - a missing view shortens a handle time; a failed GET helps nobody
        logger.exception("recording a case view failed", extra={"case_id": case_id})


def change_status(agent: Agent, case_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """The status-only change (kept for callers of old); ``PATCH /cases/{id}`` uses services/case_work.py."""
    case = load_case(agent, case_id, deps)
    if not isinstance(body, dict) or "status" not in body:
        raise BadRequest("body must be a JSON object with 'status': one of " + ", ".join(case_rules.STATUSES))
    new_status = body["status"]
    if not isinstance(new_status, str) or new_status not in case_rules.STATUSES:
        raise BadRequest("field 'status' is wrong: status must be one of " + ", ".join(case_rules.STATUSES))
    try:
        case_rules.check_transition(case.status, new_status)
    except case_rules.InvalidTransition as err:
        raise Conflict(str(err)) from None
    now = deps.now()
    if new_status == case.status:
        return {**case.public_view(), "sla": sla.sla_view(case, deps, now)}
    # Pending pauses the clocks, resolving stops them, reopening restarts them: new marks, same write.
    changed = sla.refresh(case_rules.with_status(case, new_status, now), deps, now)
    # The case, the customer's active case and the assignee's load change together or not at all.
    event = {"event": "status_changed", "from": case.status, "to": new_status, "agent_id": agent.agent_id}
    if not deps.cases.change_status(case, changed, event=event):
        raise Conflict(f"case '{case_id}' changed while you were editing it; reload and try again")
    if case.assignee and case.active and not changed.active:
        _fill(case.assignee, deps)  # the agent has room for one more: give them a waiting case
    view = changed.public_view()
    view["sla"] = sla.sla_view(changed, deps, now)
    return view


def _fill(agent_id: str, deps: Deps) -> None:
    """Give an agent with room waiting cases. After the change it follows is saved, so a failure here
    is only logged: the once-a-minute tick fills the queues anyway."""
    try:
        workload.fill_agent(agent_id, deps)
    except Exception:  # noqa: BLE001 - the caller's change stands; the tick catches up
        logger.exception("filling an agent from the queue failed", extra={"agent_id": agent_id})


def save_agent(agent_id: str, body: Any, deps: Deps) -> Tuple[Agent, bool]:
    """A supervisor creates or changes an agent; True when it is new."""
    if not isinstance(agent_id, str) or not 0 < len(agent_id) <= MAX_ID_LENGTH or "#" in agent_id:
        raise BadRequest(f"agent id must be 1 to {MAX_ID_LENGTH} characters without '#'")
    existing = deps.settings.get_agent(agent_id)
    agent = validate_agent(agent_id, body, existing)
    deps.settings.put_agent(agent)
    if existing is None or (existing.capacity, existing.available, existing.teams) != (
            agent.capacity, agent.available, agent.teams):
        _fill(agent_id, deps)  # more room, back at work or new teams: waiting cases may fit now
    return replace(agent), existing is None
