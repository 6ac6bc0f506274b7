"""Who works which case now: presence, the teams' waiting queues, hand-offs by rule.

Nobody waits forever: a case that found every agent full waits unassigned in its team's queue
(``CaseStore.waiting_page``, most urgent first) and goes to the first agent with room, when that
agent comes online (``set_presence``), frees a slot (``fill_agent``, called by whoever freed it)
or, at the latest, at the once-a-minute sweep (``assign_waiting``). Every hand-off is one
``CaseStore.assign`` transaction: the case, both agents' loads and the event, or nothing.
"""
from __future__ import annotations

import heapq
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

from chalicelib.domain.agent import Agent, valid_team_name, validate_presence
from chalicelib.domain.case import Case, with_assignee
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.errors import BadRequest, InvalidCursor, NotFound
from chalicelib.domain.hours import is_open
from chalicelib.domain.limits import page_limit
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.routing import choose_agent
from chalicelib.domain.workload import shift_end_between
from chalicelib.ports import Deps

# Module imports (not names): sla and inbox import this module too, and a module import
# resolves at call time whichever of them is imported first.
from chalicelib.services import inbox as inbox_service
from chalicelib.services import sla as sla_service

# One call hands out at most this many cases: an API request or a sweep stays short, and
# whatever is left goes at the next sweep.
MAX_PER_CALL = 25
# Re-reads of one case that keeps changing under us before we leave it for the next sweep.
MAX_ATTEMPTS = 3
QUEUE_DEFAULT_LIMIT = 25
QUEUE_MAX_LIMIT = 100


# ---- presence ------------------------------------------------------------------

def set_presence(agent: Agent, body: Any, deps: Deps) -> Dict[str, Any]:
    """``PUT /me/presence``: the agent's own presence; coming online takes waiting cases at once."""
    presence = validate_presence(body)
    changed = deps.settings.set_presence(agent.agent_id, presence, at=deps.now())
    if changed is None:
        raise NotFound(f"agent '{agent.agent_id}' is not set up; ask a supervisor to add you to a team")
    assigned = fill_agent(agent.agent_id, deps) if presence == "online" else []
    # Re-read so the answer shows the load the cases just taken added.
    current = deps.settings.get_agent(agent.agent_id) or changed
    return {**current.public_view(), "assigned": assigned}


def fill_agent(agent_id: str, deps: Deps) -> List[str]:
    """Give an agent with room the most urgent waiting cases of their teams; the case ids assigned."""
    agent = deps.settings.get_agent(agent_id)  # the caller's copy may predate the change that freed a slot
    if agent is None or not agent.has_room or not agent.teams:
        return []
    budget = min(agent.free_slots, MAX_PER_CALL)
    teams = set(agent.teams)
    assigned: List[str] = []
    looked = 0
    for case in _most_urgent_first(sorted(teams), budget, deps):
        # Cases that stopped waiting between the read and the write are skipped; bound the
        # looking too, so a burst of such races cannot keep one call busy.
        looked += 1
        if len(assigned) == budget or looked > budget + MAX_PER_CALL:
            break
        outcome = _hand_out(case, agent_id, deps, reason="agent_has_room", may_take=lambda c: c.team in teams)
        if outcome == "full":
            break  # the agent's last slot went elsewhere meanwhile
        if outcome == "assigned":
            assigned.append(case.case_id)
    return assigned


def _most_urgent_first(teams: List[str], page_size: int, deps: Deps) -> Iterator[Case]:
    """The waiting cases of several teams merged by ``Case.waiting_key``, read a page per team at a time.

    The merge reads each team's head once up front and a further page only when it reaches the
    end of one, so an agent who takes two cases costs one page read per team.
    """
    return heapq.merge(*(_team_queue(team, page_size, deps) for team in teams), key=lambda c: c.waiting_key)


def _team_queue(team: str, page_size: int, deps: Deps) -> Iterator[Case]:
    after: Optional[str] = None
    while True:
        page = deps.cases.waiting_page(team, page_size, after)
        yield from page.cases
        if not page.more or not page.cases:
            return
        after = page.positions[-1]


def _hand_out(case: Case, agent_id: str, deps: Deps, *, reason: str, may_take: Callable[[Case], bool]) -> str:
    """Assign a waiting case to ``agent_id``: ``assigned``, ``full`` (no room), or ``gone`` (no longer waits)."""
    for _attempt in range(MAX_ATTEMPTS):
        if not case.waiting_for_agent or not may_take(case):
            return "gone"
        now = deps.now()
        after = sla_service.refresh(with_assignee(case, agent_id, now), deps, now)
        outcome = deps.cases.assign(case, after, event={"event": "assigned", "assignee": agent_id, "by": "auto",
                                                        "reason": reason})
        if outcome != "stale":
            return outcome
        fresh = deps.cases.get(case.case_id)  # changed meanwhile: it may have been taken, moved or closed
        if fresh is None:
            return "gone"
        case = fresh
    return "gone"  # it keeps changing: the next sweep finds it if it still waits


# ---- the team's queue ----------------------------------------------------------

def assign_waiting(team: str, deps: Deps, *, limit: int = MAX_PER_CALL) -> List[str]:
    """Give a team's waiting cases to its agents with room, most urgent first; the case ids assigned.

    Runs every minute for every team: when nobody waits it costs one small queue read, and only
    then are the team's agents read.
    """
    page = deps.cases.waiting_page(team, max(1, limit), None)
    if not page.cases:
        return []
    agents = deps.settings.team_agents(team)
    assigned: List[str] = []
    for case in page.cases:
        while True:
            agent = choose_agent(agents)
            if agent is None:
                return assigned  # everyone is full, away or offline: the rest keep waiting
            outcome = _hand_out(case, agent.agent_id, deps, reason="queue", may_take=lambda c: c.team == team)
            if outcome == "full":
                agent.open_cases = agent.capacity  # our copy was behind; try the next agent
                continue
            if outcome == "assigned":
                # Keep the local copy in step, so the next case goes to the next least-loaded agent.
                agent.open_cases += 1
                agent.last_assigned_at = deps.now()
                assigned.append(case.case_id)
            break
    return assigned


def waiting_view(agent: Agent, team: str, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    """The unassigned queue of a team, most urgent first, for supervisors: ``{"cases", "next_cursor"}``."""
    inbox_service.require_supervisor(agent)
    if not valid_team_name(team):
        raise BadRequest("team name must be 1 to 64 printable characters without '#'")
    limit = _limit(params.get("limit", str(QUEUE_DEFAULT_LIMIT)))
    after: Optional[str] = None
    if params.get("cursor"):
        state = decode_cursor(params["cursor"])
        # Bound to the team: a cursor of another team's queue would resume at a meaningless place.
        if state.get("queue") != team or not isinstance(state.get("p"), str):
            raise InvalidCursor("query 'cursor' belongs to another listing; start again without it")
        after = state["p"]
    page = deps.cases.waiting_page(team, limit, after)
    next_cursor = (encode_cursor({"queue": team, "p": page.positions[-1]})
                   if page.more and page.cases else None)
    # Each case with its live clocks, as the inbox shows it; the policy and calendars read once a page.
    now = deps.now()
    policy = sla_service.policy(deps)
    calendars = deps.settings.team_calendars() if policy is not None and page.cases else {}
    return {"cases": [{**c.public_view(), "sla": sla_service.sla_view(c, deps, now, policy=policy, calendars=calendars)}
                      for c in page.cases],
            "next_cursor": next_cursor}


# A team's roster is read whole (one index item lists its members); the answer is bounded anyway.
MAX_ROSTER = 500


def team_roster(agent: Agent, team: str, deps: Deps) -> Dict[str, Any]:
    """``GET /teams/{team}/agents``: who is in the team, their presence and load, for supervisors."""
    inbox_service.require_supervisor(agent)
    if not valid_team_name(team):
        raise BadRequest("team name must be 1 to 64 printable characters without '#'")
    members = sorted(deps.settings.team_agents(team), key=lambda member: member.agent_id)[:MAX_ROSTER]
    return {"team": team, "agents": [
        {"agent_id": m.agent_id, "name": m.name, "role": m.role, "presence": m.presence,
         "open_cases": m.open_cases, "capacity": m.capacity, "free_slots": m.free_slots, "takes_new_cases": m.has_room}
        for m in members]}


def _limit(raw: str) -> int:
    return page_limit(raw, QUEUE_MAX_LIMIT)


# ---- hand-offs by rule (SLA actions) ---------------------------------------------

def reassign(case: Case, deps: Deps, *, reason: str) -> Optional[Case]:
    """Hand the case to another agent of its team with room, the least loaded, writing the case as given
    (with the new assignee) over its version; the case as saved.

    None when nobody else has room (the case stays with its agent), when it is no longer active, or
    when it changed since it was read: a rule that decided on the old copy must read it again and
    decide again (the agent may have answered meanwhile), so a stale case is never retried here.
    """
    for _attempt in range(MAX_ATTEMPTS):
        if not case.active:
            return None
        # Read every attempt: a "full" answer means our view of the loads was behind.
        others = [a for a in deps.settings.team_agents(case.team) if a.agent_id != case.assignee]
        agent = choose_agent(others)
        if agent is None:
            return None
        now = deps.now()
        after = sla_service.refresh(with_assignee(case, agent.agent_id, now), deps, now)
        outcome = deps.cases.assign(case, after, event={
            "event": "reassigned", "from": case.assignee, "to": agent.agent_id, "assignee": agent.agent_id,
            "by": "auto", "reason": reason})
        if outcome == "assigned":
            return after
        if outcome == "stale":
            return None
    return None


def move_to_team(case: Case, team: str, deps: Deps, *, reason: str) -> Optional[Case]:
    """Move the case to another team's queue (unassigned), then let that team's agents take it.

    One write, the case as given over its version: the new team, no assignee, the old assignee's load
    one less. Returns the case as stored afterwards (with an assignee if an agent there took it); the
    case unchanged when it is in ``team`` already; None when it is no longer active or changed since
    it was read (read it again and decide again, as for ``reassign``).
    """
    if not case.active:
        return None
    if case.team == team:
        return case  # nothing to move, and its agent keeps it
    now = deps.now()
    after = sla_service.refresh(with_assignee(case, None, now, team=team), deps, now)
    outcome = deps.cases.assign(case, after, event={
        "event": "moved", "from_team": case.team, "to_team": team, "from": case.assignee, "by": "auto",
        "reason": reason})
    if outcome != "assigned":
        return None  # stale ("full" cannot happen: nobody gains a case)
    assign_waiting(team, deps)
    return deps.cases.get(case.case_id) or after


# ---- shifts ----------------------------------------------------------------------

def end_shifts(deps: Deps, *, since: Optional[str], now: str) -> List[str]:
    """Set offline the agents whose team's shift ended in (since, now]; the agent ids set offline.

    Only an ending signs someone off: on the first run (``since`` None) nothing is known to have
    ended, and an agent who went online after the shift ended chose to work late. An agent stays
    on while another of their teams is open (a team without a calendar is always open). Agents
    set offline keep their cases; they take no new ones.
    """
    if since is None:
        return []
    calendars = deps.settings.team_calendars()
    start, end = parse_iso(since), parse_iso(now)
    ended: Dict[str, str] = {}
    for team, calendar in calendars.items():
        closed_at = shift_end_between(calendar, start, end)
        if closed_at is not None:
            ended[team] = to_iso(closed_at)
    if not ended:
        return []
    offline: List[str] = []
    seen = set()
    for team in sorted(ended):
        for agent in deps.settings.team_agents(team):
            if agent.agent_id in seen:
                continue
            seen.add(agent.agent_id)
            if agent.presence == "offline":
                continue
            # Their latest shift end: a presence chosen after it is the agent's own decision.
            last_end = max(ended[t] for t in agent.teams if t in ended)
            if agent.presence_changed_at and agent.presence_changed_at >= last_end:
                continue
            if any(t not in calendars or is_open(calendars[t], end) for t in agent.teams if t not in ended):
                continue
            if deps.settings.set_presence(agent.agent_id, "offline", at=now) is not None:
                offline.append(agent.agent_id)
    return offline
