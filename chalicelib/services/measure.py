"""Measure the service: case changes into per-day KPI aggregates, and the KPI report read from them.

The rules are ``domain/kpi.py``; this module feeds them and guards who sees what.

- ``record_changes``: each stored change of a case (the cases table's stream) becomes deltas applied
  once per idempotency token (a redelivered change counts once); a new case also spoils the first-contact
  resolution of the customer's recently resolved cases. One failing change never loses the others: the
  caller gets the failures to hand back to the stream.
- ``kpi_report``: ``GET /reports/kpis``. Reads the aggregate items of one dimension (days x keys, never the
  cases) and the running backlog totals. Agents see their own agent row only; supervisors the rows of
  their teams and of the agents in them (a supervisor of every team sees every row); channel, category
  and day rows are brand-wide, for supervisors.
- ``note_view``: an agent opening a case leaves a ``viewed`` event (at most one per agent and case per
  idle cut), the moment handle time starts from.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

from chalicelib.domain import kpi
from chalicelib.domain.agent import Agent
from chalicelib.domain.case import Case
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import BadRequest, Forbidden
from chalicelib.domain.hours import zone
from chalicelib.observability import count, logger
from chalicelib.ports import CaseChange, CaseHistory, Deps, KpiStore

DAY_SECONDS = 24 * 3600
# A change token may come again as long as the stream keeps the record: 24 hours after it was written,
# and it is processed after it was written, so a marker kept 24 hours from now outlives every redelivery.
CHANGE_MARKER_SECONDS = DAY_SECONDS
# History items per read (the store's page) and how many pages of events are read at most: 1,000 events
# is far beyond a real case (views are one per agent per idle cut), and the cost of one change stays bounded.
HISTORY_PAGE = 50
MAX_HISTORY_PAGES = 20
# Earlier cases of a customer looked at when they come back: one read each. The ledger lists a customer's
# cases in id order (not by time), so a customer with more cases than this may have a recent one unread;
# real customers have a handful.
MAX_EARLIER_CASES = 20
# An agent re-opening a case within this long after their last recorded view adds no event. Equal to the
# idle cut on purpose: views alone (a screen left open and refreshed) never add up to handle time; only a
# view followed by an action within the cut counts.
VIEW_EVERY_SECONDS = kpi.DEFAULT_IDLE_CUT_SECONDS
# A report reaches back at most this far: the backlog at the start of a period is the running total minus
# every movement since, so the days from ``from`` to today are read (see ``_opening_backlog``).
MAX_LOOKBACK_DAYS = 2 * kpi.MAX_REPORT_DAYS

# Events that are an agent doing something on the case (they carry the agent's ``agent_id``), as the
# activity kinds of handle time. Automatic assignments carry no agent_id and are not work.
ACTIVITY_OF_EVENT = {
    "viewed": "opened",
    "reply_queued": "replied",
    "reply_retried": "replied",
    "status_changed": "status_changed",
    "note_added": "note",
    "assigned": "assigned",
    "reassigned": "assigned",
}


# ---- from the stream -------------------------------------------------------------------

def record_changes(changes: Sequence[CaseChange], deps: Deps) -> Dict[str, Any]:
    """Add each change's deltas to the aggregates, each token at most once.

    Returns counts and ``failed``: one entry per change that raised (its ``index`` in ``changes``, the case
    and the error), so the caller reports those records for another delivery; the others are done.
    Calendars and the SLA policy are read once for the batch (a failure there fails the whole batch).
    """
    store = _kpis(deps)
    brand_zone = deps.config.brand_time_zone
    window_days = deps.config.fcr_window_days
    calendars = deps.settings.team_calendars()
    policy = deps.settings.get_sla_policy()
    now = deps.now()
    applied = repeated = 0
    failed: List[Dict[str, Any]] = []
    for index, change in enumerate(changes):
        case = change.new or change.old
        try:
            activity = case_activity(change.new.case_id, deps) if _is_resolution(change) and change.new else []
            deltas = kpi.deltas_for_change(change.old, change.new, brand_zone=brand_zone, calendars=calendars,
                                           now=now, policy=policy, activity=activity, fcr_window_days=window_days)
            if change.old is None and change.new is not None:
                deltas += _return_spoilers(change.new, deps, brand_zone, window_days)
            fresh, again = _apply(store, deltas, window_days)
            applied, repeated = applied + fresh, repeated + again
        except Exception as err:  # noqa: BLE001 - one change must not lose the others; it is retried
            logger.exception("KPI deltas of a case change failed",
                             extra={"case_id": case.case_id if case else None, "index": index})
            failed.append({"index": index, "case_id": case.case_id if case else None,
                           "error": f"{type(err).__name__}: {str(err)[:300]}"})
    count("KpiTokensApplied", applied)
    if failed:
        count("KpiChangesFailed", len(failed))
    return {"changes": len(changes), "applied": applied, "repeated": repeated, "failed": failed}


def _kpis(deps: Deps) -> KpiStore:
    if deps.kpis is None:
        raise RuntimeError("no KPI store is configured (Deps.kpis); bootstrap must provide one")
    return deps.kpis


def _is_resolution(change: CaseChange) -> bool:
    """The change resolves the case (as ``kpi.deltas_for_change`` decides): only then is activity read."""
    old, new = change.old, change.new
    return (new is not None and bool(new.resolved_at) and not new.active
            and (old is None or old.resolved_at != new.resolved_at))


def _marker_seconds(token: str, window_days: int) -> int:
    # A spoiler may be found by any event within the FCR window after the resolution (a reopen, a second
    # response, the customer's return): its marker must outlive the window, plus the stream's day.
    if token.startswith("fcr_spoiled:"):
        return (window_days + 1) * DAY_SECONDS
    return CHANGE_MARKER_SECONDS


def _apply(store: KpiStore, deltas: Sequence[kpi.Delta], window_days: int) -> tuple[int, int]:
    by_token: Dict[str, List[kpi.Delta]] = defaultdict(list)
    for delta in deltas:
        by_token[delta.token].append(delta)
    fresh = again = 0
    for token, group in by_token.items():
        if store.apply_deltas(token, group, keep_marker_seconds=_marker_seconds(token, window_days)):
            fresh += 1
        else:
            again += 1  # applied before: a redelivery, or a spoiler another event found first
    return fresh, again


def _return_spoilers(new: Case, deps: Deps, brand_zone: str, window_days: int) -> List[kpi.Delta]:
    """The customer of a new case came back: spoil the FCR of their cases resolved within the window before."""
    returned_at = new.customer_posted_at or new.created_at
    page = deps.cases.customer_ledger(new.customer_key, limit=MAX_EARLIER_CASES + 1)
    deltas: List[kpi.Delta] = []
    for entry in page.entries:
        if entry.kind != "case":
            break  # cases are listed first: the rest are mentions
        if entry.id == new.case_id:
            continue
        previous = deps.cases.get(entry.id)
        if previous is not None:
            deltas += kpi.deltas_for_return(previous, returned_at, brand_zone=brand_zone, fcr_window_days=window_days)
    return deltas


def case_activity(case_id: str, deps: Deps) -> List[kpi.Activity]:
    """What agents did on the case, from its events (read in pages, at most MAX_HISTORY_PAGES of them)."""
    activity: List[kpi.Activity] = []
    after: Optional[str] = None
    for _page in range(MAX_HISTORY_PAGES):
        history = deps.cases.history(case_id, limit=HISTORY_PAGE, after=after)
        if history is None:
            return activity  # erased meanwhile: nobody's time is counted for it
        activity += activity_of(history.events)
        if not _more_events(history):
            return activity
        after = history.next_position
    logger.warning("handle time counts only the first events of a very long case", extra={"case_id": case_id})
    return activity


def _more_events(history: CaseHistory) -> bool:
    # Events come first in a case's history: a page that holds a post or a reply, or ends it, has the last.
    return bool(history.next_position) and not history.mentions and not history.replies


def activity_of(events: Sequence[Mapping[str, Any]]) -> List[kpi.Activity]:
    found: List[kpi.Activity] = []
    for event in events:
        kind = ACTIVITY_OF_EVENT.get(str(event.get("event")))
        agent, at = event.get("agent_id"), event.get("at")
        if kind and isinstance(agent, str) and agent and isinstance(at, str) and at:
            found.append((agent, at, kind))
    return found


# ---- views (handle time starts when an agent opens a case) ------------------------------

def note_view(agent: Agent, case_id: str, first_page: CaseHistory, deps: Deps) -> bool:
    """Record that ``agent`` opened the case, unless their latest view is less than VIEW_EVERY_SECONDS old.

    ``first_page``: the history page the request read from the start. The case's events come first in its
    history, so the page shows the latest view unless it holds nothing but events with more to come; then
    the following pages of events are read (bounded). True when an event was added.
    """
    now = deps.now()
    latest = _latest_view(agent.agent_id, first_page.events)
    history: Optional[CaseHistory] = first_page
    for _page in range(MAX_HISTORY_PAGES):
        if history is None or not _more_events(history):
            break
        history = deps.cases.history(case_id, limit=HISTORY_PAGE, after=history.next_position)
        if history is not None:
            latest = max(filter(None, [latest, _latest_view(agent.agent_id, history.events)]), default=None)
    if latest is not None and (parse_iso(now) - latest).total_seconds() < VIEW_EVERY_SECONDS:
        return False
    deps.cases.add_event(case_id, {"event": "viewed", "agent_id": agent.agent_id}, at=now)
    return True


def _latest_view(agent_id: str, events: Sequence[Mapping[str, Any]]) -> Optional[datetime]:
    moments = [parse_iso(str(e["at"])) for e in events
               if e.get("event") == "viewed" and e.get("agent_id") == agent_id and e.get("at")]
    return max(moments, default=None)


# ---- the report ------------------------------------------------------------------------

@dataclass
class KpiReport:
    """The report as JSON (``body``), or as CSV text (``csv``) with the file name to offer."""

    body: Dict[str, Any]
    csv: Optional[str] = None
    filename: str = ""


def kpi_report(agent: Agent, params: Mapping[str, Any], deps: Deps) -> KpiReport:
    """``GET /reports/kpis``: the rows ``agent`` may see, for the period and grouping asked."""
    query = kpi.report_query(params)
    brand_zone = deps.config.brand_time_zone
    window_days = deps.config.fcr_window_days
    now = deps.now()
    today = parse_iso(now).astimezone(zone(brand_zone)).date()
    first = date.fromisoformat(query.from_day)
    if (today - first).days > MAX_LOOKBACK_DAYS:
        raise BadRequest(f"parameter 'from' may be at most {MAX_LOOKBACK_DAYS} days ago "
                         f"(from {(today - timedelta(days=MAX_LOOKBACK_DAYS)).isoformat()} on)")
    visible = _visible_keys(agent, query.group_by, deps)
    dimension = "channel" if query.group_by == "day" else query.group_by
    store = _kpis(deps)
    # One read covers the period and the days after it up to today (what the opening backlog needs).
    last_read = max(query.to_day, today.isoformat())
    rows = [row for row in store.kpi_rows(dimension, query.from_day, last_read)
            if visible is None or str(row.get("key")) in visible]
    opening = _opening_backlog(rows, store.backlog_totals(dimension), query.from_day, dimension, visible)
    in_period = [row for row in rows if str(row.get("day")) <= query.to_day]
    result = kpi.report(in_period + opening, query.group_by, query.from_day, query.to_day, now=now,
                        brand_zone=brand_zone, fcr_window_days=window_days)
    body = {"group_by": query.group_by, "from": query.from_day, "to": query.to_day, "time_zone": brand_zone,
            "fcr_window_days": window_days, **result}
    if query.format == "csv":
        filename = f"kpis-{query.group_by}-{query.from_day}-{query.to_day}.csv"
        return KpiReport(body=body, csv=kpi.to_csv(result), filename=filename)
    return KpiReport(body=body)


def _opening_backlog(rows: Sequence[Mapping[str, Any]], totals: Mapping[str, int], from_day: str, dimension: str,
                     visible: Optional[Set[str]]) -> List[Dict[str, Any]]:
    """One row per key dated the day before ``from_day``: its backlog at that day's end.

    The running total (every movement ever) minus the movements dated ``from_day`` or later. ``rows`` must
    hold every row from ``from_day`` to today: bounded by MAX_LOOKBACK_DAYS x keys, and no read of the
    days before the period however long the brand has used socialcare. The totals and the rows are two
    reads: a change applied between them is off by its own movement until the next report.
    """
    since: Dict[str, int] = defaultdict(int)
    for row in rows:
        if str(row.get("day")) >= from_day:
            since[str(row.get("key"))] += int(row.get("backlog", 0) or 0)
    eve = (date.fromisoformat(from_day) - timedelta(days=1)).isoformat()
    opening = []
    for key in sorted(set(totals) | set(since)):
        if visible is not None and key not in visible:
            continue
        amount = int(totals.get(key, 0)) - since.get(key, 0)
        if amount:
            opening.append({"day": eve, "dimension": dimension, "key": key, "backlog": amount})
    return opening


def _visible_keys(agent: Agent, group_by: str, deps: Deps) -> Optional[Set[str]]:
    """The keys of ``group_by`` rows ``agent`` may see; None: every key. Forbidden when none."""
    if agent.role == "finance":
        return None  # finance reads the brand's figures whole (and nothing else: no case, no setting)
    if not agent.is_supervisor:
        if group_by != "agent":
            raise Forbidden(f"agents see only their own figures: ask with group_by=agent (group_by={group_by} "
                            f"shows other people's work and is for supervisors)")
        return {agent.agent_id}
    if group_by not in ("agent", "team"):
        return None  # channel, category and day rows are the brand's, for every supervisor
    teams = set(agent.teams)
    if teams >= set(deps.settings.teams()):
        return None  # a supervisor of every team sees every row, also of teams without members now
    if group_by == "team":
        return teams
    # The agents in their teams now (someone who left a team is shown to supervisors of their new one).
    return {member.agent_id for team in sorted(teams) for member in deps.settings.team_agents(team)} | {agent.agent_id}
