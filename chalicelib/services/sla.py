"""Service levels: a case's SLA clocks, the marks the store indexes, and the scheduler that fires
warnings and breaches.

Every service that writes a case runs ``refresh`` on it first, so the case is saved with its marks
(``sla_state``, ``sla_due_at``, ``sla_warning_at``, ``sla_next_at``): the inbox orders and filters by
them and ``run_tick`` finds the cases it must look at through ``sla_next_at`` (an index, no Scan).

``run_tick`` runs once a minute. For each case whose ``sla_next_at`` has come it computes the clocks
again, fires each reached warning or breach whose key the case does not carry yet, and saves the case
over the version it read, with the crossing's key in ``sla_fired`` and the crossing's case-changing
actions (a raised priority, a new assignee or team) in the same write: a crossing fires at most once,
ever, even across crashes and concurrent writers. Notifications go out before that write; they are
idempotent by id (case + crossing key), so a crash after them only makes the retry find them sent.

Cost per case the tick looks at: one read (the case) and one conditional write (marks and fired
keys); a crossing adds, per notify action, one feed write per recipient and one SNS publish, and a
reassign or move is done by ``workload`` in that same write. A stale write (another writer saved
first) costs one more read and write. Per tick: one query page of ``due_for_check`` per
``PAGE_SIZE`` cases, the policy and every team calendar read once.

Policy and calendar changes: an active case's ``sla_next_at`` is never later than
``RECHECK_AFTER`` from its last evaluation (also without a policy), so every open or pending case is
evaluated again within that time, and a new policy or calendar reaches it then, or at its next
change, whichever comes first. That bound costs at most one read and one write per active case per
``RECHECK_AFTER`` when nothing else happens to it.
"""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from chalicelib.domain.agent import MAX_TEAM_NAME, Agent, valid_team_name
from chalicelib.domain.case import PRIORITIES, Case
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.csat import SurveySettings
from chalicelib.domain.errors import BadRequest, Forbidden
from chalicelib.domain.hours import Calendar, validate_calendar, zone
from chalicelib.domain.sla import (
    Action,
    Crossing,
    SlaClocks,
    SlaPolicy,
    TargetClock,
    case_times,
    compute_clocks,
    due_crossings,
    marks_for,
    validate_policy,
)
from chalicelib.observability import count, logger
from chalicelib.ports import Deps
from chalicelib.services import csat, notify, workload

# The longest an active case goes without being evaluated again: how soon a new policy or calendar
# reaches cases nothing else touches (see the module docstring for what it costs).
RECHECK_AFTER = timedelta(hours=1)
# The tick's Lambda has 60 s. Cases get at most this much of it; the rest is for ending shifts and
# filling queues, with a margin for a slow last case. What is left waits for the next minute.
TICK_BUDGET_SECONDS = 35.0
MAX_CASES_PER_TICK = 500
PAGE_SIZE = 50
# How far the tick counts the cases it left for the next run (one query of ids, only when it stops early).
REMAINING_COUNT_LIMIT = 1000
# Rounds of read, fire, write for one case: a stale write, a move (which fires up to it), or a raised
# priority that brings another crossing due at once; six crossings exist per clock start at most.
MAX_ROUNDS = 8
TARGET_NAMES = {"first_response": "first response", "next_response": "next response", "resolution": "resolution"}
CASE_MOVES = ("reassign", "move_to_team")


class _Unread:
    """Marks a policy argument that was not given: read it from the store (None means: no policy)."""


UNREAD = _Unread()
PolicyArg = Union[Optional[SlaPolicy], _Unread]
SurveyArg = Union[SurveySettings, _Unread]


# ---- reading the clocks ---------------------------------------------------------------

def policy(deps: Deps) -> Optional[SlaPolicy]:
    """The policy in force, read now (never cached: a supervisor's change applies at once)."""
    return deps.settings.get_sla_policy()


def calendar_for(team: str, deps: Deps) -> Optional[Calendar]:
    """The team's calendar; None: open around the clock."""
    return deps.settings.get_team_calendar(team)


def _policy(deps: Deps, given: PolicyArg) -> Optional[SlaPolicy]:
    return policy(deps) if isinstance(given, _Unread) else given


def _calendar(team: str, deps: Deps, calendars: Optional[Mapping[str, Calendar]]) -> Optional[Calendar]:
    # ``calendars`` is every team's (``team_calendars()``): a team missing from it has none.
    return calendars.get(team) if calendars is not None else calendar_for(team, deps)


def clocks_for(case: Case, deps: Deps, now: str, *, policy: PolicyArg = UNREAD,
               calendars: Optional[Mapping[str, Calendar]] = None) -> Optional[SlaClocks]:
    """The case's clocks as of ``now``; None when no policy is set. Pass ``policy`` and ``calendars``
    when evaluating many cases, so they are read once."""
    chosen = _policy(deps, policy)
    if chosen is None:
        return None
    targets = chosen.targets_for(case.priority, case.team, case.platform)
    return compute_clocks(case_times(case), targets, _calendar(case.team, deps, calendars), now=parse_iso(now))


def refresh(case: Case, deps: Deps, now: str, *, policy: PolicyArg = UNREAD,
            calendars: Optional[Mapping[str, Calendar]] = None, surveys: SurveyArg = UNREAD) -> Case:
    """The case with its SLA marks recomputed as of ``now`` (not saved).

    Without a policy the marks are cleared (state ``ok``, no deadlines), but an active case keeps a
    ``sla_next_at`` RECHECK_AFTER ahead: that is how a policy set later reaches it.

    A resolved case whose CSAT survey is still to be decided has no running clock; its next look is
    its survey moment (``csat.survey_moment``), when ``run_tick`` decides the survey. Pass
    ``surveys`` (the survey settings) when evaluating many cases, so they are read once.
    """
    clocks = clocks_for(case, deps, now, policy=policy, calendars=calendars)
    recheck = to_iso(parse_iso(now) + RECHECK_AFTER) if case.active else None
    survey = _survey_look(case, deps, surveys)
    if clocks is None:
        return replace(case, sla_state="ok", sla_due_at=None, sla_warning_at=None,
                       sla_next_at=_earliest(recheck, survey))
    marks = marks_for(clocks, case.sla_fired)
    return replace(case, sla_state=marks.state, sla_due_at=marks.due_at, sla_warning_at=marks.warning_at,
                   sla_next_at=_earliest(marks.next_at, recheck, survey))


def _survey_look(case: Case, deps: Deps, surveys: SurveyArg) -> Optional[str]:
    if case.active or not case.resolved_at or case.csat_status is not None:
        return None  # the common case answers without reading the settings
    chosen = csat.survey_settings(deps) if isinstance(surveys, _Unread) else surveys
    return csat.survey_moment(case, chosen)


def _earliest(*moments: Optional[str]) -> Optional[str]:
    return min((m for m in moments if m is not None), default=None)


def sla_view(case: Case, deps: Deps, now: str, *, policy: PolicyArg = UNREAD,
             calendars: Optional[Mapping[str, Calendar]] = None) -> Optional[Dict[str, Any]]:
    """The case's ``sla`` as the API shows it, live as of ``now``; None when no policy is set.

    ``met`` lists the targets met and with how much counted time to spare; ``breached`` those
    missed (or overdue and still running) and by how much, in seconds.
    """
    clocks = clocks_for(case, deps, now, policy=policy, calendars=calendars)
    if clocks is None:
        return None
    details = clocks.to_dict()
    met: List[Dict[str, Any]] = []
    breached: List[Dict[str, Any]] = []
    for clock in clocks.clocks:
        if clock.met:
            spare = clock.target.duration - clock.elapsed
            met.append({"target": clock.kind, "by_seconds": max(0, int(spare.total_seconds()))})
        elif clock.breached and clock.overdue_by is not None:
            breached.append({"target": clock.kind, "by_seconds": int(clock.overdue_by.total_seconds())})
    return {
        "state": clocks.state,
        "first_response_due": _iso(clocks.first_response_due),
        "next_response_due": _iso(clocks.next_response_due),
        "resolution_due": _iso(clocks.resolution_due),
        "first_response": details.get("first_response"),
        "next_response": details.get("next_response"),
        "resolution": details.get("resolution"),
        "met": met,
        "breached": breached,
    }


def _iso(moment: Optional[datetime]) -> Optional[str]:
    return to_iso(moment) if moment is not None else None


# ---- the once-a-minute tick -------------------------------------------------------------

def run_tick(deps: Deps, *, log: Any = None, max_cases: int = MAX_CASES_PER_TICK,
             budget_seconds: float = TICK_BUDGET_SECONDS,
             clock: Callable[[], float] = time.monotonic) -> Dict[str, Any]:
    """Fire the warnings and breaches that have come, end the shifts that ended, fill the queues.

    Stops looking at cases after ``max_cases`` or ``budget_seconds`` (``clock``: monotonic seconds)
    and leaves the rest, still due, to the next run. One case failing never stops the others.
    Returns counts for the log.
    """
    started = clock()
    now = deps.now()
    chosen = policy(deps)
    calendars = deps.settings.team_calendars()
    surveys = csat.survey_settings(deps)
    totals: Dict[str, Any] = {"checked": 0, "crossings": 0, "notified": 0, "errors": 0,
                              "actions": {kind: 0 for kind in ("notify", "raise_priority") + CASE_MOVES},
                              "surveys": {"asked": 0, "not_asked": 0},
                              "remaining": 0, "stopped_early": False}
    after: Optional[str] = None
    while True:
        page = deps.cases.due_for_check(now, PAGE_SIZE, after)
        for index, case_id in enumerate(page.case_ids):
            if totals["checked"] >= max_cases or clock() - started >= budget_seconds:
                totals["stopped_early"] = True
                break
            try:
                _check_case(case_id, deps, now, chosen, calendars, totals, log, surveys)
            except Exception:  # noqa: BLE001 - one case must not stop the others; it stays due
                totals["errors"] += 1
                logger.exception("SLA check of a case failed; the next run tries again", extra={"case_id": case_id})
            totals["checked"] += 1
            after = page.positions[index]
        if totals["stopped_early"] or not page.more:
            break
    if totals["stopped_early"]:
        rest = deps.cases.due_for_check(now, REMAINING_COUNT_LIMIT, after)
        totals["remaining"] = len(rest.case_ids)
        totals["remaining_more"] = rest.more  # more than counted
        logger.warning("SLA tick stopped early; the rest waits for the next run",
                       extra={"checked": totals["checked"], "remaining": totals["remaining"]})
    count("SlaCasesChecked", totals["checked"])
    if totals["crossings"]:
        count("SlaCrossingsFired", totals["crossings"])
    if totals["errors"]:
        count("SlaCheckErrors", totals["errors"])
    totals.update(_workload(deps, now))
    return totals


def _workload(deps: Deps, now: str) -> Dict[str, Any]:
    """End the shifts that ended since the last run, then give waiting cases to agents with room."""
    result: Dict[str, Any] = {"went_offline": 0, "assigned": 0}
    shifts_done = False
    try:
        ended = workload.end_shifts(deps, since=deps.settings.last_run("sla_tick"), now=now)
        result["went_offline"] = len(ended)
        shifts_done = True
    except Exception:  # noqa: BLE001 - the queues still get filled; the shifts are looked at again next run
        logger.exception("ending shifts failed; the next run covers the same time again")
    for team in deps.settings.teams():
        try:
            result["assigned"] += len(workload.assign_waiting(team, deps))
        except Exception:  # noqa: BLE001 - one team's queue must not keep the others waiting
            logger.exception("filling a team's queue failed", extra={"team": team})
    if shifts_done:
        # Only after the shifts were ended: the next run starts its window where this one ended.
        deps.settings.record_run("sla_tick", now)
    return result


def _check_case(case_id: str, deps: Deps, now: str, chosen: Optional[SlaPolicy],
                calendars: Mapping[str, Calendar], totals: Dict[str, Any], log: Any,
                surveys: SurveyArg = UNREAD) -> None:
    """Fire the case's due crossings and save its marks, in as few writes as its actions allow; for
    a resolved case whose survey moment has come, decide its survey in that same write."""
    for _round in range(MAX_ROUNDS):
        case = deps.cases.get(case_id)
        if case is None or case.sla_next_at is None or case.sla_next_at > now:
            return  # gone, or another writer evaluated it since the listing
        clocks = clocks_for(case, deps, now, policy=chosen, calendars=calendars)
        due = due_crossings(clocks, case.sla_fired) if clocks is not None and case.active else []
        firing, move = _up_to_first_move(due, chosen, case) if chosen is not None else ([], None)
        changed = _apply(case, firing, now)
        if not case.active:
            # Its look may be its survey moment (see refresh): the survey's status lands in this write,
            # which ends the looks; until then a failed step leaves the look, and the next run repeats it.
            changed = csat.survey_case(changed, deps, now, settings=None if isinstance(surveys, _Unread) else surveys)
        changed = refresh(changed, deps, now, policy=chosen, calendars=calendars, surveys=surveys)
        sent = 0
        for crossing, actions in firing:
            if any(a.kind == "notify" for a in actions):
                notify.notify(changed, "sla_warning" if crossing.level == "warning" else "sla_breach",
                              _detail(crossing, clocks, changed, calendars, now), deps, key=crossing.key, now=now)
                sent += 1
        saved = _write(changed, move, firing, deps, now, chosen, calendars)
        if saved is None:
            continue  # another writer saved first: read again and decide again
        totals["crossings"] += len(firing)
        totals["notified"] += sent
        if saved.csat_status in totals["surveys"] and saved.csat_status != case.csat_status:
            totals["surveys"][saved.csat_status] += 1
        for crossing, actions in firing:
            for action in actions:
                totals["actions"][action.kind] += 1
            if log is not None:
                log.info("SLA crossing fired", extra={"case_id": case_id, "crossing": crossing.key,
                                                      "actions": [a.kind for a in actions]})
        if not firing:
            return
    raise RuntimeError(f"case {case_id} kept changing while its SLA crossings fired; the next run tries again")


def _up_to_first_move(due: List[Crossing], chosen: SlaPolicy,
                      case: Case) -> Tuple[List[Tuple[Crossing, Tuple[Action, ...]]], Optional[Action]]:
    """The crossings to fire in one write: in order, up to and including the first that moves the case
    (a move is its own write, by ``workload``; the crossings after it wait for the next round).

    A warning whose own clock's breach is due too (the first look came late: a policy just set, a
    run missed) is recorded without its actions: warning of what has already happened helps nobody,
    and the breach's actions run.
    """
    breaches = {(c.kind, c.clock_started_at) for c in due if c.level == "breach"}
    firing: List[Tuple[Crossing, Tuple[Action, ...]]] = []
    for crossing in due:
        superseded = crossing.level == "warning" and (crossing.kind, crossing.clock_started_at) in breaches
        actions = () if superseded else chosen.actions_for(crossing.level, case.team, case.platform)
        firing.append((crossing, actions))
        move = next((a for a in actions if a.kind in CASE_MOVES), None)
        if move is not None:
            return firing, move
    return firing, None


def _apply(case: Case, firing: List[Tuple[Crossing, Tuple[Action, ...]]], now: str) -> Case:
    """The case with the crossings recorded as fired and their in-place actions (a raised priority) done."""
    if not firing:
        return case
    priority = case.priority
    for _crossing, actions in firing:
        if any(a.kind == "raise_priority" for a in actions):
            priority = more_urgent(priority)
    return replace(case, sla_fired=list(case.sla_fired) + [c.key for c, _a in firing], priority=priority,
                   updated_at=now if priority != case.priority else case.updated_at)


def more_urgent(priority: str) -> str:
    """One step more urgent: low -> normal -> high -> urgent (urgent stays urgent)."""
    order = list(reversed(PRIORITIES))  # low, normal, high, urgent
    if priority not in order:
        priority = "normal"
    return order[min(order.index(priority) + 1, len(order) - 1)]


def _write(changed: Case, move: Optional[Action], firing: List[Tuple[Crossing, Tuple[Action, ...]]], deps: Deps,
           now: str, chosen: Optional[SlaPolicy], calendars: Mapping[str, Calendar]) -> Optional[Case]:
    """Save the case over the version read (with its move, when a crossing moves it); None when stale."""
    if move is None:
        return changed if deps.cases.save(changed) else None
    crossing = firing[-1][0]
    reason = f"sla_{crossing.level}:{crossing.kind}"
    # ``workload`` writes the case as given (fired keys, priority, marks) plus the new assignee or team,
    # over its version, in one write: the move and its crossing's key land together.
    if move.kind == "reassign":
        moved = workload.reassign(changed, deps, reason=reason)
    else:
        moved = workload.move_to_team(changed, move.team or changed.team, deps, reason=reason)
    if moved is None:
        # Nobody could take it, or the case changed meanwhile: the save tells which. A crossing whose
        # move found nobody is still fired; the notifications went out and the queue holds the case.
        if not deps.cases.save(changed):
            return None
        logger.info("SLA action found nobody to take the case", extra={"case_id": changed.case_id,
                                                                      "action": move.kind})
        return changed
    if moved.version <= changed.version:
        # Nothing was written (e.g. the case is in that team already): save the rest of the crossing.
        # Should the move have been written without saying so, this save is stale and the next round
        # reads what it wrote.
        return changed if deps.cases.save(changed) else None
    keys = [c.key for c, _a in firing]
    if not all(key in moved.sla_fired for key in keys):
        # Not the one write agreed on (workload saved its own copy): record the keys at once, so the
        # move never runs twice.
        logger.error("a case move did not carry the SLA crossing's key; recorded after it",
                     extra={"case_id": changed.case_id})
        moved = _record_keys(moved.case_id, keys, deps, now, chosen, calendars) or moved
    # In another team the calendar and targets may differ: keep the marks true to where the case is now.
    remarked = refresh(moved, deps, now, policy=chosen, calendars=calendars)
    if _marks(remarked) != _marks(moved) and deps.cases.save(remarked):
        return remarked
    return moved


def _record_keys(case_id: str, keys: List[str], deps: Deps, now: str, chosen: Optional[SlaPolicy],
                 calendars: Mapping[str, Calendar]) -> Optional[Case]:
    for _attempt in range(MAX_ROUNDS):
        case = deps.cases.get(case_id)
        if case is None:
            return None
        changed = refresh(replace(case, sla_fired=list(case.sla_fired) + [k for k in keys if k not in case.sla_fired]),
                          deps, now, policy=chosen, calendars=calendars)
        if deps.cases.save(changed):
            return changed
    return None


def _marks(case: Case) -> Tuple[Any, ...]:
    return (case.sla_state, case.sla_due_at, case.sla_warning_at, case.sla_next_at)


# ---- what a notification says -------------------------------------------------------------

def _detail(crossing: Crossing, clocks: Optional[SlaClocks], case: Case, calendars: Mapping[str, Calendar],
            now: str) -> str:
    """For a person: which target, of which case, due when (in the team's time), how long left or how late."""
    target = TARGET_NAMES.get(crossing.kind, crossing.kind)
    clock: Optional[TargetClock] = getattr(clocks, crossing.kind, None) if clocks is not None else None
    due = clock.due_at if clock is not None else None
    moment = parse_iso(now)
    about = f"case {case.case_id} ({case.priority}, team {case.team}, {case.platform})"
    when = _when(due, calendars.get(case.team)) if due is not None else "at an unknown time (paused)"
    if crossing.level == "warning":
        if due is not None and due > moment:
            left = f"{_duration(due - moment)} left"
        elif due is not None:
            left = f"already {_duration(moment - due)} late"
        else:
            left = "paused"
        return f"SLA warning: the {target} of {about} is due {when}; {left}."
    late = _duration(moment - due) if due is not None and moment > due else "0 min"
    return f"SLA breached: the {target} of {about} was due {when}; {late} late."


def _when(moment: datetime, calendar: Optional[Calendar]) -> str:
    utc = moment.strftime("%Y-%m-%d %H:%M UTC")
    if calendar is None or calendar.time_zone == "UTC":
        return utc
    local = moment.astimezone(zone(calendar.time_zone))
    return f"{local.strftime('%a %Y-%m-%d %H:%M')} {calendar.time_zone} ({utc})"


def _duration(span: timedelta) -> str:
    if span.total_seconds() < 60:
        return "under a minute"
    minutes = max(0, int(span.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes or not (days or hours) else ""]
    return " ".join(p for p in parts if p)


# ---- supervisors' settings ----------------------------------------------------------------

def _require_supervisor(agent: Agent) -> None:
    if not agent.is_supervisor:
        raise Forbidden("only supervisors may do this")


def _team(team: Any) -> str:
    if not valid_team_name(team):
        raise BadRequest(f"the team must be a team name of 1 to {MAX_TEAM_NAME} printable characters "
                         "without '#' or surrounding spaces")
    return str(team)


def policy_view(deps: Deps) -> Dict[str, Any]:
    chosen = policy(deps)
    return {"policy": chosen.to_dict() if chosen is not None else None}


def save_policy(agent: Agent, body: Any, deps: Deps) -> Tuple[Dict[str, Any], bool]:
    """A supervisor sets the SLA policy (validated whole first); True when there was none before.

    Cases already open are not evaluated here: each picks the new policy up at its next change or
    at its next tick, at most RECHECK_AFTER away (an active case always has a ``sla_next_at``, also
    while no policy is set), so the API answers at once however many cases are open.
    """
    _require_supervisor(agent)
    new = validate_policy(body)
    created = policy(deps) is None
    deps.settings.put_sla_policy(new, author=agent.agent_id, at=deps.now())
    return {"policy": new.to_dict()}, created


def calendar_view(team: str, deps: Deps) -> Dict[str, Any]:
    calendar = calendar_for(_team(team), deps)
    return {"team": team, "calendar": calendar.to_dict() if calendar is not None else None,
            "always_open": calendar is None}


def save_calendar(agent: Agent, team: str, body: Any, deps: Deps) -> Tuple[Dict[str, Any], bool]:
    """A supervisor sets a team's business hours; True when the team had none (it was always open).
    Open cases follow it at their next change or tick, as for the policy."""
    _require_supervisor(agent)
    team = _team(team)
    calendar = validate_calendar(body)
    created = calendar_for(team, deps) is None
    deps.settings.put_team_calendar(team, calendar, author=agent.agent_id, at=deps.now())
    return {"team": team, "calendar": calendar.to_dict(), "always_open": False}, created


def delete_calendar(agent: Agent, team: str, deps: Deps) -> Dict[str, Any]:
    """The team is open around the clock again."""
    _require_supervisor(agent)
    team = _team(team)
    deleted = deps.settings.delete_team_calendar(team)
    return {"team": team, "calendar": None, "always_open": True, "deleted": deleted}
