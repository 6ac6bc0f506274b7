"""KPIs as code: what each stored change of a case adds to per-day aggregates, and the report read from them. Pure.

No report ever scans cases. Every stored change of a case (a DynamoDB stream
record: the old and the new image) becomes a few ``Delta``s, each adding
integer counters to one aggregate item keyed by (day in the brand's time zone,
dimension, key). A report for a month and 100 agents reads at most
days x keys such items, however many cases there were.

Dimensions and keys: ``agent`` (the case's assignee at the event; unassigned
cases have no agent row), ``team``, ``channel`` (the platform; it never changes,
so the channel rows of a day hold every case once and also answer
``group_by=day``) and ``category`` (triage's, ``(none)`` when it gave none).

Definitions (the README repeats them; durations are whole seconds):

- ``cases_opened``: cases created that day, under the keys at creation; the
  ``sentiment`` counts split them by triage's sentiment.
- ``cases_resolved``: resolutions that day: a case going from open or pending
  to resolved or closed. Resolved then closed is not a second resolution; a
  reopened case resolved again is.
- ``cases_reopened``: reopens that day.
- ``backlog``: active (open or pending) cases at the end of the day. Stored as
  movement dated at the change: +1 when a case becomes active under a key, -1
  when it stops being active or leaves the key (moved to another team, handed
  to another agent). The backlog at the end of a day is the sum of every
  earlier day's movement, so ``report`` takes rows dated before the period for
  it (an opening-balance row per key will do).
- ``first_response_seconds``: from the customer's first post (the platform's
  time) to our first response reaching the platform, counted on the
  response's day. ``..._business`` counts only the open hours of the team the
  case is with at that moment (its calendar). Pauses are not taken out: this is what the customer waited; the
  SLA attainment below is where pending time does not count.
- ``resolution_seconds``: from the customer's first post to each resolution.
- ``next_response_seconds``: per answered response cycle, from the customer's
  first message after our latest response to our next response (counted on
  that response's day). A follow-up still unanswered when the case is
  resolved is not a cycle.
- SLA attainment, per target, as ``sla.compute_clocks`` judges a clock when it
  stops (pauses excluded, business hours as the policy says): the first
  response once per case, at its first stop (our first response, or a
  resolution before any); the next response at each answered cycle; the
  resolution at each resolution. ``sla_met_rate`` = met / (met + breached).
- Handle time: see ``handle_seconds``. Counted at each resolution, for the
  agent actions since the previous reopen (all of them for a first
  resolution): per agent in the agent rows, the case's total elsewhere.
- CSAT (``csat_deltas``): surveys asked, not asked (the channel forbids it,
  or the customer opted out: ``csat.py``) and answered; ``satisfied`` is a
  score of 4 or 5.
- QA (``qa_deltas``): mean review score of the replies sent in the period.

Idempotency. A stream may deliver a change more than once, and a report must
count it once. Every delta carries a ``token``; all deltas of one token are
applied together and at most once: the caller writes, in one DynamoDB
transaction, a marker item for the token (``attribute_not_exists``) and one
ADD update per delta (one per aggregate item: deltas are merged per token and
item). A duplicate delivery fails the marker's condition and changes nothing.
Tokens: ``change:<case id>:<version>`` for a stored change (every save
increments ``version``, so a version names one change); ``fcr_spoiled:<case id>``
for the FCR spoiler (one per case, whichever event finds it first);
``csat:<event>:<case id>``; ``qa:<review id>``. A marker must outlive every
redelivery of its token: the stream's 24 hours for changes, the FCR window
for spoilers. ``apply_once`` is the reference semantics (the tests and the
in-memory fakes use it).

Honest first-contact resolution (FCR). A case is resolved at first contact
when its first resolution came with exactly one agent response, and within
the window after it (7 days by default) it was not reopened, got no second
response, and the customer did not come back (a new case from the same
customer after our response). Aggregated as it happens, deferred:

- at the first resolution, ``fcr_resolved`` +1 (the denominator: a case
  resolved without any response is in it, and is not FCR), and
  ``fcr_candidate`` +1 if the case has exactly one response; a response that
  reaches the platform after the resolution (a reply still in flight when the
  agent resolved) makes it a candidate then, if within the window;
- a spoiler within the window (a reopen, a second response, or the customer
  coming back: ``deltas_for_return``) adds ``fcr_spoiled`` +1 to the day and
  keys of the resolution, under the case's one spoiler token;
- the report counts a resolution day only once every window of that day has
  ended (the day's end plus the window is past): FCR rate = (candidates -
  spoiled) / resolved over those days. Resolutions of later days are reported
  as ``fcr_pending``. Events after the window change nothing, so a finished
  day's figure never changes.

Durations go into mergeable histograms: fixed log-scale buckets 5 % wide
(bucket 0 holds 0 s; bucket k >= 1 holds [1.05^(k-1), 1.05^k) seconds; up to
90 days, longer durations count as 90 days) with an exact count and sum. The
mean is exact (sum / count). A percentile is the nearest-rank value (rank
ceil(p x n)) estimated by the geometric middle of the whole seconds of its
bucket: within ``PERCENTILE_RELATIVE_ERROR`` (2.47 %) of the true value, and
exact below 21 seconds; reported to 0.1 s.
"""
from __future__ import annotations

import bisect
import csv
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from dataclasses import replace as replace_fields
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Dict, Iterable, List, Mapping, MutableMapping, MutableSet, Optional, Sequence, Tuple, Union

from chalicelib.domain.case import Case
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.csat import SATISFIED_MIN_SCORE
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.hours import ALWAYS_OPEN, Calendar, business_time_between, zone
from chalicelib.domain.sla import TARGET_KINDS, SlaPolicy, TargetClock, case_times, compute_clocks

DIMENSIONS = ("agent", "team", "channel", "category")
GROUP_BYS = DIMENSIONS + ("day",)
REPORT_FORMATS = ("json", "csv")
NO_CATEGORY = "(none)"
SENTIMENTS = ("negative", "neutral", "positive", "unknown")
DEFAULT_FCR_WINDOW_DAYS = 7
MAX_FCR_WINDOW_DAYS = 90
DEFAULT_IDLE_CUT_SECONDS = 300
MAX_REPORT_DAYS = 366
CSAT_EVENTS = ("asked", "not_asked", "answered")
# What an agent does on a case, as the activity log records it. Only the moments count;
# the kind says why the moment is there.
ACTIVITY_KINDS = ("opened", "typing", "replied", "status_changed", "note", "assigned")

# ---- histograms ------------------------------------------------------------------

BUCKET_GROWTH = 1.05
MAX_DURATION_SECONDS = 90 * 24 * 3600
PERCENTILE_RELATIVE_ERROR = math.sqrt(BUCKET_GROWTH) - 1
DURATION_METRICS = (
    "first_response_seconds", "first_response_seconds_business",
    "resolution_seconds", "resolution_seconds_business",
    "next_response_seconds", "next_response_seconds_business",
    "handle_seconds",
)


def _bucket_bounds() -> Tuple[float, ...]:
    bounds = [1.0]
    while bounds[-1] <= MAX_DURATION_SECONDS:
        bounds.append(BUCKET_GROWTH ** len(bounds))  # a power each time: no drift from repeated products
    return tuple(bounds)


# Bucket k >= 1 holds [_BOUNDS[k-1], _BOUNDS[k]); bucket 0 holds 0 (durations are whole seconds).
_BOUNDS = _bucket_bounds()
BUCKETS = len(_BOUNDS)


def _representative(index: int) -> float:
    """The geometric middle of the whole seconds a bucket holds: no whole second in it is further than 2.47 % away."""
    if index == 0:
        return 0.0
    lowest = math.ceil(_BOUNDS[index - 1])
    highest = math.ceil(_BOUNDS[index]) - 1
    if highest < lowest:  # a bucket narrower than a second holds no whole second; never filled
        return float(lowest)
    return math.sqrt(lowest * highest)


_REPRESENTATIVES = tuple(_representative(k) for k in range(BUCKETS))


def bucket_of(seconds: int) -> int:
    if seconds < 1:
        return 0
    return bisect.bisect_right(_BOUNDS, min(seconds, MAX_DURATION_SECONDS))


def histogram_counters(metric: str, seconds: int) -> Dict[str, int]:
    """The counters one observation adds: its bucket, the count and the sum."""
    seconds = max(0, int(seconds))
    return {f"{metric}/n": 1, f"{metric}/sum": seconds, f"{metric}/b{bucket_of(seconds)}": 1}


def histogram_stats(counters: Mapping[str, int], metric: str) -> Dict[str, Any]:
    """count, median, p90 (nearest rank, from the buckets) and mean (exact) of one metric's counters."""
    count = int(counters.get(f"{metric}/n", 0))
    if count <= 0:
        return {"count": 0, "median": None, "p90": None, "mean": None}
    buckets = sorted((int(name.rsplit("/b", 1)[1]), int(value)) for name, value in counters.items()
                     if name.startswith(f"{metric}/b") and value)
    return {"count": count, "median": round(_percentile(buckets, count, 0.5), 1),
            "p90": round(_percentile(buckets, count, 0.9), 1),
            "mean": round(int(counters.get(f"{metric}/sum", 0)) / count, 1)}


def _percentile(buckets: Sequence[Tuple[int, int]], count: int, share: float) -> float:
    rank = max(1, math.ceil(share * count))
    seen = 0
    for index, number in buckets:
        seen += number
        if seen >= rank:
            return _REPRESENTATIVES[index]
    return _REPRESENTATIVES[buckets[-1][0]] if buckets else 0.0


# ---- deltas ----------------------------------------------------------------------

Key = Tuple[str, str]  # (dimension, key)
ItemKey = Tuple[str, str, str]  # (day, dimension, key)


@dataclass(frozen=True)
class Delta:
    """Counters to add to one aggregate item, applied once per ``token`` (with the token's other deltas)."""

    token: str
    day: str          # YYYY-MM-DD in the brand's time zone
    dimension: str    # agent, team, channel or category
    key: str
    counters: Mapping[str, int] = field(hash=False)

    @property
    def item_key(self) -> ItemKey:
        return (self.day, self.dimension, self.key)


def change_token(case: Case) -> str:
    return f"change:{case.case_id}:{case.version}"


def fcr_spoiled_token(case_id: str) -> str:
    return f"fcr_spoiled:{case_id}"


def case_keys(case: Case) -> List[Key]:
    """The aggregate keys a case counts under now: its team, channel, category and (when assigned) agent."""
    keys: List[Key] = [("team", case.team), ("channel", case.platform), ("category", case.category or NO_CATEGORY)]
    if case.assignee:
        keys.append(("agent", case.assignee))
    return keys


class _Collector:
    """Deltas being built, merged per token and aggregate item."""

    def __init__(self, brand_zone: str) -> None:
        self._zone = zone(brand_zone)
        self._items: Dict[Tuple[str, str, str, str], Counter[str]] = defaultdict(Counter)

    def day(self, moment: Union[str, datetime]) -> str:
        at = parse_iso(moment) if isinstance(moment, str) else moment
        return at.astimezone(self._zone).date().isoformat()

    def add(self, token: str, moment: Union[str, datetime], keys: Iterable[Key], counters: Mapping[str, int]) -> None:
        day = self.day(moment)
        for dimension, key in keys:
            self._items[(token, day, dimension, key)].update(counters)

    def observe(self, token: str, moment: Union[str, datetime], keys: Iterable[Key], metric: str, seconds: int) -> None:
        self.add(token, moment, keys, histogram_counters(metric, seconds))

    def deltas(self) -> List[Delta]:
        found = []
        for (token, day, dimension, key), counters in sorted(self._items.items()):
            kept = {name: value for name, value in sorted(counters.items()) if value}
            if kept:
                found.append(Delta(token=token, day=day, dimension=dimension, key=key, counters=kept))
        return found


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def _business_seconds(calendar: Calendar, start: datetime, end: datetime) -> int:
    return max(0, int(business_time_between(calendar, start, end).total_seconds()))


def deltas_for_change(old: Optional[Case], new: Optional[Case], *, brand_zone: str, calendars: Mapping[str, Calendar],
                      now: str, policy: Optional[SlaPolicy] = None, activity: Sequence["Activity"] = (),
                      fcr_window_days: int = DEFAULT_FCR_WINDOW_DAYS,
                      idle_cut_seconds: int = DEFAULT_IDLE_CUT_SECONDS) -> List[Delta]:
    """What one stored change of a case (the stream's old and new image) adds to the aggregates.

    ``calendars``: team -> calendar (a team without one is open around the
    clock). ``policy``: the SLA policy (None: no SLA counts). ``activity``: the
    case's agent actions (``handle_seconds``), needed only when the change is
    a resolution. ``now``: when the change is processed; the deltas do not
    depend on it (clocks are judged as of the case's own latest moment or
    later), so a redelivery computes the same ones. A removed case (TTL,
    erasure) takes nothing back: the figures were true when they happened.
    """
    if new is None:
        return []
    out = _Collector(brand_zone)
    token = change_token(new)
    keys = case_keys(new)
    calendar = calendars.get(new.team) or ALWAYS_OPEN
    posted = parse_iso(new.customer_posted_at or new.created_at)
    window = timedelta(days=fcr_window_days)

    if old is None:
        out.add(token, new.created_at, keys, {"cases_opened": 1, f"sentiment/{_sentiment(new)}": 1})
    _backlog_movement(out, token, old, new)
    reopens = new.reopen_count - (old.reopen_count if old else 0)
    if reopens > 0 and new.reopened_at:
        out.add(token, new.reopened_at, keys, {"cases_reopened": reopens})

    if new.first_response_at and not (old and old.first_response_at):
        responded = parse_iso(new.first_response_at)
        out.observe(token, responded, keys, "first_response_seconds", _seconds(posted, responded))
        out.observe(token, responded, keys, "first_response_seconds_business",
                    _business_seconds(calendar, posted, responded))
    cycles = _new_cycles(old, new)
    for follow_up_text, answered_text in cycles:
        follow_up, answered = parse_iso(follow_up_text), parse_iso(answered_text)
        out.observe(token, answered, keys, "next_response_seconds", _seconds(follow_up, answered))
        out.observe(token, answered, keys, "next_response_seconds_business",
                    _business_seconds(calendar, follow_up, answered))

    resolved_now = bool(new.resolved_at) and not new.active and (old is None or old.resolved_at != new.resolved_at)
    if resolved_now and new.resolved_at:
        resolved = parse_iso(new.resolved_at)
        out.add(token, resolved, keys, {"cases_resolved": 1})
        out.observe(token, resolved, keys, "resolution_seconds", _seconds(posted, resolved))
        out.observe(token, resolved, keys, "resolution_seconds_business", _business_seconds(calendar, posted, resolved))
        _handle_time(out, token, new, activity, idle_cut_seconds)

    if policy is not None:
        _sla_counts(out, token, old, new, policy, calendar, cycles, resolved_now, now)
    _fcr(out, token, old, new, resolved_now, window)
    return out.deltas()


def _sentiment(case: Case) -> str:
    return case.sentiment if case.sentiment in SENTIMENTS else "unknown"


def _backlog_movement(out: _Collector, token: str, old: Optional[Case], new: Case) -> None:
    movement: Counter[Key] = Counter()
    if old is not None and old.active:
        movement.subtract(case_keys(old))
    if new.active:
        movement.update(case_keys(new))
    for key, amount in movement.items():
        if amount:
            out.add(token, new.updated_at, [key], {"backlog": amount})


def _cycles(case: Optional[Case]) -> Counter[Tuple[str, str]]:
    """Answered response cycles of a case: the finished ones and the current one if answered."""
    found: Counter[Tuple[str, str]] = Counter()
    if case is None:
        return found
    for cycle in case.response_cycles:
        if len(cycle) == 2 and cycle[0] and cycle[1]:
            found[(cycle[0], cycle[1])] += 1
    if case.follow_up_at and case.next_response_at:
        found[(case.follow_up_at, case.next_response_at)] += 1
    return found


def _new_cycles(old: Optional[Case], new: Case) -> List[Tuple[str, str]]:
    # The oldest cycles may be dropped from a long case (MAX_RESPONSE_CYCLES): only additions count.
    return sorted((_cycles(new) - _cycles(old)).elements())


def _first_stop(case: Optional[Case]) -> bool:
    """Whether the first-response clock has ever stopped: a response, or a resolution (a reopen implies one)."""
    if case is None:
        return False
    return bool(case.first_response_at) or case.reopen_count > 0 or (not case.active and bool(case.resolved_at))


def _sla_counts(out: _Collector, token: str, old: Optional[Case], new: Case, policy: SlaPolicy, calendar: Calendar,
                cycles: List[Tuple[str, str]], resolved_now: bool, now: str) -> None:
    targets = policy.targets_for(new.priority, new.team, new.platform)
    as_of = _as_of(now, new)
    times = case_times(new)
    keys = case_keys(new)
    first_stop_now = _first_stop(new) and not _first_stop(old)
    if (first_stop_now and targets.first_response) or (resolved_now and targets.resolution):
        clocks = compute_clocks(times, targets, calendar, now=as_of)
        if first_stop_now:
            _count_clock(out, token, keys, clocks.first_response)
        if resolved_now:
            _count_clock(out, token, keys, clocks.resolution)
    if targets.next_response:
        for follow_up, answered in cycles:
            # Each answered cycle on its own, stopped by its answer (a resolution after it does not matter).
            cycle_times = replace_fields(times, follow_up_at=parse_iso(follow_up), next_response_at=parse_iso(answered),
                                         resolved_at=None)
            _count_clock(out, token, keys, compute_clocks(cycle_times, targets, calendar, now=as_of).next_response)


def _count_clock(out: _Collector, token: str, keys: List[Key], clock: Optional[TargetClock]) -> None:
    if clock is None or clock.stopped_at is None or clock.state not in ("met", "breached"):
        return
    out.add(token, clock.stopped_at, keys, {f"sla/{clock.kind}/{clock.state}": 1})


def _as_of(now: str, case: Case) -> datetime:
    """A moment at or after everything the case records: a stopped clock's verdict no longer changes then."""
    moments = [now, case.created_at, case.updated_at, case.customer_posted_at, case.received_at, case.first_response_at,
               case.last_response_at, case.follow_up_at, case.next_response_at, case.resolved_at, case.reopened_at]
    moments += [moment for pause in case.pauses for moment in pause]
    moments += [moment for cycle in case.response_cycles for moment in cycle]
    return max(parse_iso(m) for m in moments if m)


def _first_resolved(case: Optional[Case]) -> bool:
    """Resolved (or closed) for the first time and not reopened since: its FCR window is what counts."""
    return case is not None and not case.active and bool(case.resolved_at) and case.reopen_count == 0


def _fcr(out: _Collector, token: str, old: Optional[Case], new: Case, resolved_now: bool, window: timedelta) -> None:
    spoiled = fcr_spoiled_token(new.case_id)
    if resolved_now and new.reopen_count == 0 and new.resolved_at:
        counters = {"fcr_resolved": 1, "fcr_candidate": 1 if new.response_count == 1 else 0}
        out.add(token, new.resolved_at, case_keys(new), counters)
        return
    if old is None or not _first_resolved(old) or not old.resolved_at:
        return
    resolved = parse_iso(old.resolved_at)

    def within_window(moment: Optional[str]) -> bool:
        return moment is not None and parse_iso(moment) - resolved <= window

    if _first_resolved(new) and new.resolved_at == old.resolved_at and new.response_count > old.response_count:
        if old.response_count == 0 and new.response_count == 1 and within_window(new.last_response_at):
            out.add(token, resolved, case_keys(new), {"fcr_candidate": 1})  # the reply landed after the resolution
        elif old.response_count == 1 and within_window(new.last_response_at):
            out.add(spoiled, resolved, case_keys(old), {"fcr_spoiled": 1})  # a second response
    elif new.reopen_count > old.reopen_count and old.response_count == 1 and within_window(new.reopened_at):
        out.add(spoiled, resolved, case_keys(old), {"fcr_spoiled": 1})


def deltas_for_return(previous: Case, returned_at: str, *, brand_zone: str,
                      fcr_window_days: int = DEFAULT_FCR_WINDOW_DAYS) -> List[Delta]:
    """The FCR spoiler when the customer of ``previous`` comes back (a new case of theirs opened at ``returned_at``).

    Call it when a new case is stored, for each of the customer's cases resolved
    within the window before (their ledger names them), as read then. It spoils
    a candidate: first resolved, one response, and the return after that
    response and within the window. Under the case's spoiler token, so a
    reopen or second response that also spoils it counts once in all.
    """
    if not _first_resolved(previous) or previous.response_count != 1 or not previous.resolved_at:
        return []
    resolved, returned = parse_iso(previous.resolved_at), parse_iso(returned_at)
    responded = parse_iso(previous.first_response_at or previous.last_response_at or previous.resolved_at)
    if not (resolved <= returned <= resolved + timedelta(days=fcr_window_days)) or returned < responded:
        return []
    out = _Collector(brand_zone)
    out.add(fcr_spoiled_token(previous.case_id), resolved, case_keys(previous), {"fcr_spoiled": 1})
    return out.deltas()


# ---- handle time -----------------------------------------------------------------

Activity = Tuple[str, Union[str, datetime], str]  # (agent id, when, kind: one of ACTIVITY_KINDS)


def handle_seconds(activity: Iterable[Activity], idle_cut_seconds: int = DEFAULT_IDLE_CUT_SECONDS) -> Dict[str, int]:
    """Time each agent spent on a case, in whole seconds, measured from what they did.

    An agent's actions on the case (opened it, typed or sent a reply, changed
    its status, added a note, ...) are put in time order; every gap between
    two consecutive actions of the same agent that is shorter than
    ``idle_cut_seconds`` counts, longer gaps count nothing (the agent was
    elsewhere). A lone action counts 0: opening a case and leaving it is not
    work on it. Agents with actions appear with their total, 0 included.
    """
    if idle_cut_seconds <= 0:
        raise ValueError("idle_cut_seconds must be positive")
    moments: Dict[str, List[datetime]] = defaultdict(list)
    for agent, at, _kind in activity:
        moments[agent].append(parse_iso(at) if isinstance(at, str) else at)
    totals: Dict[str, int] = {}
    for agent, times in moments.items():
        times.sort()
        spent = sum(((later - earlier).total_seconds() for earlier, later in zip(times, times[1:])
                     if (later - earlier).total_seconds() < idle_cut_seconds), 0.0)
        totals[agent] = int(spent)
    return totals


def _handle_time(out: _Collector, token: str, case: Case, activity: Sequence[Activity], idle_cut_seconds: int) -> None:
    if not activity or not case.resolved_at:
        return
    resolved = parse_iso(case.resolved_at)
    since = parse_iso(case.reopened_at) if case.reopen_count and case.reopened_at else None
    worked = [(agent, moment, kind) for agent, moment, kind in
              ((a, parse_iso(at) if isinstance(at, str) else at, k) for a, at, k in activity)
              if moment <= resolved and (since is None or moment > since)]
    per_agent = handle_seconds(worked, idle_cut_seconds)
    if not per_agent:
        return
    for agent, seconds in sorted(per_agent.items()):
        out.observe(token, resolved, [("agent", agent)], "handle_seconds", seconds)
    case_wide = [key for key in case_keys(case) if key[0] != "agent"]
    out.observe(token, resolved, case_wide, "handle_seconds", sum(per_agent.values()))


# ---- CSAT and QA -----------------------------------------------------------------

def csat_deltas(case: Case, *, event: str, at: str, brand_zone: str, score: Optional[int] = None,
                rated_agent: Optional[str] = None) -> List[Delta]:
    """A survey asked, not asked (``csat.py`` says which) or answered with ``score`` (1-5), on ``at``'s day.

    The agent rows count it for ``rated_agent`` (the agent the answer rates;
    default the case's assignee). Once per case and event (token
    ``csat:<event>:<case id>``): a second answer to the same survey is not a
    second response.
    """
    if event not in CSAT_EVENTS:
        raise ValueError(f"event must be one of {', '.join(CSAT_EVENTS)}")
    counters: Dict[str, int]
    if event == "answered":
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise ValueError("an answered survey needs a score from 1 to 5")
        counters = {"csat_responses": 1, "csat_score_sum": score, "csat_satisfied": int(score >= SATISFIED_MIN_SCORE)}
    else:
        counters = {f"csat_{event}": 1}
    keys = [key for key in case_keys(case) if key[0] != "agent"]
    agent = rated_agent or case.assignee
    if agent:
        keys.append(("agent", agent))
    out = _Collector(brand_zone)
    out.add(f"csat:{event}:{case.case_id}", at, keys, counters)
    return out.deltas()


def qa_deltas(case: Case, *, review_id: str, agent: str, score_percent: float, replied_at: str,
              brand_zone: str) -> List[Delta]:
    """A QA review of ``agent``'s reply (``qa.py`` scores it), counted on the day the reply was sent:
    the report shows the quality of the work done in the period, whenever it was reviewed."""
    if not 0 <= score_percent <= 100:
        raise ValueError("score_percent must be from 0 to 100")
    keys = [key for key in case_keys(case) if key[0] != "agent"] + [("agent", agent)]
    out = _Collector(brand_zone)
    out.add(f"qa:{review_id}", replied_at, keys,
            {"qa_reviews": 1, "qa_score_hundredths": int(round(score_percent * 100))})
    return out.deltas()


# ---- applying (reference semantics for the store and the fakes) ------------------

Aggregates = MutableMapping[ItemKey, Counter[str]]


def apply_once(aggregates: Aggregates, applied: MutableSet[str], deltas: Iterable[Delta]) -> int:
    """Add the deltas of every token not applied yet, all of a token at once; returns how many tokens were new."""
    by_token: Dict[str, List[Delta]] = defaultdict(list)
    for delta in deltas:
        by_token[delta.token].append(delta)
    fresh = 0
    for token, group in by_token.items():
        if token in applied:
            continue
        for delta in group:
            aggregates.setdefault(delta.item_key, Counter()).update(delta.counters)
        applied.add(token)
        fresh += 1
    return fresh


def aggregate_rows(aggregates: Mapping[ItemKey, Mapping[str, int]]) -> List[Dict[str, Any]]:
    """Aggregate items as the store returns them: day, dimension, key and the counters."""
    return [{"day": day, "dimension": dimension, "key": key, **dict(counters)}
            for (day, dimension, key), counters in sorted(aggregates.items())]


# ---- the report ------------------------------------------------------------------

@dataclass(frozen=True)
class ReportQuery:
    group_by: str
    from_day: str
    to_day: str
    format: str = "json"


def report_query(params: Mapping[str, Any]) -> ReportQuery:
    """``GET /reports/kpis`` parameters, or a BadRequest saying what to fix."""
    group_by = params.get("group_by", "day")
    if group_by not in GROUP_BYS:
        raise BadRequest(f"parameter 'group_by' must be one of {', '.join(GROUP_BYS)}")
    first = _day_param(params.get("from"), "from")
    last = _day_param(params.get("to"), "to")
    if last < first:
        raise BadRequest(f"parameter 'to' ({last.isoformat()}) is before 'from' ({first.isoformat()})")
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise BadRequest(f"a report covers at most {MAX_REPORT_DAYS} days; ask for a shorter period")
    form = params.get("format", "json")
    if form not in REPORT_FORMATS:
        raise BadRequest(f"parameter 'format' must be one of {', '.join(REPORT_FORMATS)}")
    return ReportQuery(group_by=str(group_by), from_day=first.isoformat(), to_day=last.isoformat(), format=str(form))


def _day_param(value: Any, name: str) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise BadRequest(f"parameter '{name}' is required: a day as YYYY-MM-DD, e.g. 2026-12-01")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"parameter '{name}' must be a real day as YYYY-MM-DD, e.g. 2026-12-01") from None


_PLAIN_COUNTERS = ("cases_opened", "cases_resolved", "cases_reopened", "backlog", "fcr_resolved", "fcr_candidate",
                   "fcr_spoiled", "csat_asked", "csat_not_asked", "csat_responses", "csat_score_sum", "csat_satisfied",
                   "qa_reviews", "qa_score_hundredths")
_COUNTER_PREFIXES = tuple(f"{metric}/" for metric in DURATION_METRICS) + ("sla/", "sentiment/")
_FCR_COUNTERS = ("fcr_resolved", "fcr_candidate", "fcr_spoiled")


def is_counter(name: str) -> bool:
    """Whether an attribute of an aggregate item is one of ours (a store adds its keys, expiry and so on)."""
    return name in _PLAIN_COUNTERS or name.startswith(_COUNTER_PREFIXES)


def report(rows: Iterable[Mapping[str, Any]], group_by: str, from_day: str, to_day: str, *, now: str, brand_zone: str,
           fcr_window_days: int = DEFAULT_FCR_WINDOW_DAYS) -> Dict[str, Any]:
    """The KPI report of [from_day, to_day] grouped by agent, team, channel, category or day: ``{"rows": [...]}``.

    ``rows``: aggregate items (``aggregate_rows``), at least those of the
    period in the grouped dimension (``day`` reads the channel rows); rows
    dated before the period count only towards the backlog. ``now`` decides
    which resolution days are past their FCR window; the others are reported
    as ``fcr_pending``. Rows are sorted by key (by day for ``day``).
    """
    if group_by not in GROUP_BYS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_BYS)}")
    source = "channel" if group_by == "day" else group_by
    tz = zone(brand_zone)
    moment = parse_iso(now)
    window = timedelta(days=fcr_window_days)
    settled: Dict[str, bool] = {}

    def is_settled(day: str) -> bool:
        if day not in settled:
            next_midnight = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), tzinfo=tz)
            settled[day] = next_midnight.astimezone(timezone.utc) + window <= moment
        return settled[day]

    totals: Dict[str, Counter[str]] = defaultdict(Counter)
    pending: Counter[str] = Counter()
    backlog: Counter[str] = Counter()  # by key; for day grouping by day, summed up below
    for row in rows:
        if row.get("dimension") != source:
            continue
        day = str(row.get("day"))
        if day > to_day:
            continue
        counters = {name: int(value) for name, value in row.items() if is_counter(name) and value}
        group = day if group_by == "day" else str(row.get("key"))
        backlog[group] += counters.get("backlog", 0)
        if day < from_day:
            continue
        if not is_settled(day):
            if counters.get("fcr_resolved"):
                pending[group] += counters["fcr_resolved"]
            counters = {name: value for name, value in counters.items() if name not in _FCR_COUNTERS}
        if counters:  # an item whose movements cancelled out makes no row of its own
            totals[group].update(counters)

    if group_by == "day":
        first, last = date.fromisoformat(from_day), date.fromisoformat(to_day)
        running = sum(amount for day, amount in backlog.items() if day < from_day)
        result = []
        for offset in range((last - first).days + 1):
            day = (first + timedelta(days=offset)).isoformat()
            running += backlog.get(day, 0)
            result.append(_report_row(day, totals.get(day, Counter()), running, pending.get(day, 0)))
        return {"rows": result}
    keys = sorted(set(totals) | set(pending) | {key for key, amount in backlog.items() if amount})
    return {"rows": [_report_row(key, totals.get(key, Counter()), backlog.get(key, 0), pending.get(key, 0))
                     for key in keys]}


def _rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole > 0 else None


def _report_row(key: str, counters: Mapping[str, int], backlog: int, fcr_pending: int) -> Dict[str, Any]:
    def get(name: str) -> int:
        return int(counters.get(name, 0))

    sla: Dict[str, Dict[str, Any]] = {}
    for kind in TARGET_KINDS:
        kind_met, kind_breached = get(f"sla/{kind}/met"), get(f"sla/{kind}/breached")
        sla[kind] = {"met": kind_met, "breached": kind_breached, "met_rate": _rate(kind_met, kind_met + kind_breached)}
    met = sum(get(f"sla/{kind}/met") for kind in TARGET_KINDS)
    judged = met + sum(get(f"sla/{kind}/breached") for kind in TARGET_KINDS)
    responses = get("csat_responses")
    reviews = get("qa_reviews")
    return {
        "key": key,
        "cases_opened": get("cases_opened"),
        "cases_resolved": get("cases_resolved"),
        "cases_reopened": get("cases_reopened"),
        "backlog": backlog,
        **{metric: histogram_stats(counters, metric) for metric in DURATION_METRICS},
        "sla_met_rate": _rate(met, judged),
        "sla": sla,
        "fcr_rate": _rate(get("fcr_candidate") - get("fcr_spoiled"), get("fcr_resolved")),
        "fcr_resolved": get("fcr_resolved"),
        "fcr_pending": fcr_pending,
        "csat": {"asked": get("csat_asked"), "not_asked": get("csat_not_asked"), "responses": responses,
                 "average": round(get("csat_score_sum") / responses, 2) if responses else None,
                 "satisfied_share": _rate(get("csat_satisfied"), responses)},
        "sentiment": {name: get(f"sentiment/{name}") for name in SENTIMENTS},
        "qa_score": round(get("qa_score_hundredths") / 100 / reviews, 1) if reviews else None,
        "qa_reviews": reviews,
    }


_STAT_FIELDS = ("median", "p90", "mean", "count")
CSV_COLUMNS: Tuple[str, ...] = (
    ("key", "cases_opened", "cases_resolved", "cases_reopened", "backlog")
    + tuple(f"{metric}_{stat}" for metric in DURATION_METRICS for stat in _STAT_FIELDS)
    + ("sla_met_rate",) + tuple(f"sla_{kind}_{part}" for kind in TARGET_KINDS for part in ("met", "breached"))
    + ("fcr_rate", "fcr_resolved", "fcr_pending", "csat_asked", "csat_not_asked", "csat_responses", "csat_average",
       "csat_satisfied_share")
    + tuple(f"sentiment_{name}" for name in SENTIMENTS) + ("qa_score", "qa_reviews")
)


def to_csv(result: Mapping[str, Any]) -> str:
    """The report as CSV, one line per row, nested figures flattened (``first_response_seconds_median``...).

    A key that a spreadsheet would read as a formula (it starts with = + - @)
    is written with a leading apostrophe: keys come from agent ids and
    categories, which are not ours to trust.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in result.get("rows", []):
        flat: Dict[str, Any] = {name: row.get(name) for name in ("key", "cases_opened", "cases_resolved",
                                                                 "cases_reopened", "backlog", "sla_met_rate",
                                                                 "fcr_rate", "fcr_resolved", "fcr_pending",
                                                                 "qa_score", "qa_reviews")}
        for metric in DURATION_METRICS:
            for stat in _STAT_FIELDS:
                flat[f"{metric}_{stat}"] = row[metric][stat]
        for kind in TARGET_KINDS:
            for part in ("met", "breached"):
                flat[f"sla_{kind}_{part}"] = row["sla"][kind][part]
        for part in ("asked", "not_asked", "responses", "average", "satisfied_share"):
            flat[f"csat_{part}"] = row["csat"][part]
        for name in SENTIMENTS:
            flat[f"sentiment_{name}"] = row["sentiment"][name]
        key = str(flat["key"])
        flat["key"] = "'" + key if key[:1] in ("=", "+", "-", "@") else key
        writer.writerow(["" if flat[column] is None else flat[column] for column in CSV_COLUMNS])
    return buffer.getvalue()
