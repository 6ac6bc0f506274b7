"""Service levels: SLA policies as data, and the clocks they set on a case. Pure.

A policy (``PUT /admin/sla``) gives targets per priority for the first
response, the next response (after the customer writes again) and the
resolution; a team, a channel (platform), or both, may override any of them.
Each target counts business hours (the team's calendar, ``hours.py``) or
around the clock, and warns at a share of itself (0.8 by default).

``compute_clocks`` turns a case's moments (``CaseTimes``) into deadlines and
states as of an injected ``now``. Clocks start from the customer's post (not
from when we received it) and do not run while the case is pending. Moments
after ``now`` are treated as not yet happened, so the same history evaluates
correctly at any instant. ``next_deadline`` and ``crossings_reached`` let a
scheduler fire each warning and breach exactly once: it wakes at the next
deadline, fires every reached crossing whose ``key`` it has not stored yet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.domain.agent import MAX_TEAM_NAME, valid_team_name
from chalicelib.domain.case import PRIORITIES, Case
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.hours import ALWAYS_OPEN, Calendar, business_time_between, open_periods
from chalicelib.domain.mention import PLATFORMS

TARGET_KINDS = ("first_response", "next_response", "resolution")
STATES = ("ok", "warning", "breached", "met")
DEFAULT_PRIORITY = "normal"
DEFAULT_WARNING_RATIO = 0.8
# 90 days: beyond any service level we know of, and it bounds how far a
# business-hours clock walks the calendar (about a year at 8 hours a day).
MAX_TARGET_MINUTES = 90 * 24 * 60
MAX_OVERRIDES = 200
_POLICY_FIELDS = ("business_hours", "warning_ratio", "default", "overrides", "actions")
_TARGET_FIELDS = ("minutes", "business_hours", "warning_ratio")
_OVERRIDE_FIELDS = ("team", "platform", "targets", "actions")
LEVELS = ("warning", "breach")
# What a crossing does, as data: tell people, make the case more urgent, give it to another agent
# of the team with room, or move it to another team (e.g. an escalation team).
ACTION_KINDS = ("notify", "raise_priority", "reassign", "move_to_team")
MAX_ACTIONS = 10
_ACTIONS_EXAMPLE = ('e.g. {"warning": ["notify"], "breach": ["notify", "raise_priority", '
                    '{"move_to_team": "escalations"}]}')
_EXAMPLE = ('e.g. {"business_hours": true, "warning_ratio": 0.8, "default": {"urgent": {"first_response": 30, '
            '"resolution": {"minutes": 480, "business_hours": false}}}, "overrides": [{"team": "vip", '
            '"targets": {"urgent": {"first_response": 15}}}]}')
# Worst first: the state a case shows is that of its most urgent running clock.
_SEVERITY = {"breached": 0, "warning": 1, "ok": 2}


# ---- policy ----------------------------------------------------------------------

@dataclass(frozen=True)
class TargetSpec:
    """One target as the supervisor wrote it; None fields take the policy's value."""

    minutes: int
    business_hours: Optional[bool] = None
    warning_ratio: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"minutes": self.minutes}
        if self.business_hours is not None:
            data["business_hours"] = self.business_hours
        if self.warning_ratio is not None:
            data["warning_ratio"] = self.warning_ratio
        return data


@dataclass(frozen=True)
class Target:
    """A target in force for one case: how long, counted how, and when to warn."""

    kind: str
    minutes: int
    business_hours: bool
    warning_ratio: float

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.minutes)

    @property
    def warning_after(self) -> timedelta:
        # Whole seconds keep deadlines readable; never zero, so a warning never fires at the start.
        return timedelta(seconds=max(1, round(self.minutes * 60 * self.warning_ratio)))


@dataclass(frozen=True)
class Targets:
    """The targets that apply to one case; None where the policy sets none."""

    first_response: Optional[Target] = None
    next_response: Optional[Target] = None
    resolution: Optional[Target] = None

    def get(self, kind: str) -> Optional[Target]:
        if kind not in TARGET_KINDS:
            raise ValueError(f"unknown target {kind!r}")
        value: Optional[Target] = getattr(self, kind)
        return value


# priority -> target kind -> spec; only what was written.
TargetTable = Mapping[str, Mapping[str, TargetSpec]]


@dataclass(frozen=True)
class Action:
    """One thing a warning or breach does; ``team`` for move_to_team."""

    kind: str
    team: Optional[str] = None

    def to_data(self) -> Any:
        return {"move_to_team": self.team} if self.kind == "move_to_team" else self.kind


# level (warning, breach) -> actions; only the levels written.
ActionTable = Mapping[str, Tuple[Action, ...]]
DEFAULT_ACTIONS: ActionTable = {"warning": (Action("notify"),), "breach": (Action("notify"),)}


@dataclass(frozen=True)
class Override:
    """Targets for one team, one channel, or one team on one channel; the rest comes from less specific levels."""

    team: Optional[str]
    platform: Optional[str]
    targets: TargetTable = field(hash=False)
    actions: ActionTable = field(hash=False, default_factory=dict)

    @property
    def specificity(self) -> int:
        # team and channel > team > channel: a team's promise is its own, a channel's is everyone's.
        return (2 if self.team else 0) + (1 if self.platform else 0)

    def matches(self, team: Optional[str], platform: Optional[str]) -> bool:
        return (self.team is None or self.team == team) and (self.platform is None or self.platform == platform)

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {}
        if self.team is not None:
            data["team"] = self.team
        if self.platform is not None:
            data["platform"] = self.platform
        data["targets"] = _table_to_dict(self.targets)
        if self.actions:
            data["actions"] = _actions_to_dict(self.actions)
        return data


@dataclass(frozen=True)
class SlaPolicy:
    default: TargetTable = field(hash=False)
    overrides: Tuple[Override, ...] = ()
    business_hours: bool = True
    warning_ratio: float = DEFAULT_WARNING_RATIO
    actions: ActionTable = field(hash=False, default_factory=lambda: dict(DEFAULT_ACTIONS))

    def actions_for(self, level: str, team: Optional[str] = None, platform: Optional[str] = None) -> Tuple[Action, ...]:
        """What a ``level`` crossing does for a case: the most specific override that says, else the policy's."""
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}")
        for override in sorted((o for o in self.overrides if o.matches(team, platform)), key=lambda o: -o.specificity):
            if level in override.actions:
                return override.actions[level]
        return tuple(self.actions.get(level, ()))

    @classmethod
    def from_dict(cls, data: Any) -> "SlaPolicy":
        return validate_policy(data)

    def targets_for(self, priority: str, team: Optional[str] = None, platform: Optional[str] = None) -> Targets:
        """The targets for a case: per target, the most specific level that sets it
        (team and channel, team, channel, then the default)."""
        if priority not in PRIORITIES:
            priority = DEFAULT_PRIORITY  # as the inbox ranks an unknown priority
        levels = [o.targets for o in sorted((o for o in self.overrides if o.matches(team, platform)),
                                             key=lambda o: -o.specificity)]
        levels.append(self.default)
        chosen: Dict[str, Optional[Target]] = {}
        for kind in TARGET_KINDS:
            spec = next((level[priority][kind] for level in levels
                         if kind in level.get(priority, {})), None)
            chosen[kind] = None if spec is None else Target(
                kind=kind, minutes=spec.minutes,
                business_hours=self.business_hours if spec.business_hours is None else spec.business_hours,
                warning_ratio=self.warning_ratio if spec.warning_ratio is None else spec.warning_ratio)
        return Targets(**chosen)

    def to_dict(self) -> Dict[str, Any]:
        """The policy as the API shows and stores it; ``validate_policy`` reads it back unchanged."""
        return {"business_hours": self.business_hours, "warning_ratio": self.warning_ratio,
                "default": _table_to_dict(self.default), "overrides": [o.to_dict() for o in self.overrides],
                "actions": _actions_to_dict(self.actions)}


def _table_to_dict(table: TargetTable) -> Dict[str, Any]:
    return {p: {k: table[p][k].to_dict() for k in TARGET_KINDS if k in table[p]} for p in PRIORITIES if p in table}


def _actions_to_dict(table: ActionTable) -> Dict[str, Any]:
    return {level: [a.to_data() for a in table[level]] for level in LEVELS if level in table}


def validate_policy(body: Any) -> SlaPolicy:
    """A supervisor's SLA policy, or a BadRequest saying what to fix."""
    if not isinstance(body, dict):
        raise BadRequest(f"the SLA policy must be a JSON object, {_EXAMPLE}")
    _no_unknown_fields(body, _POLICY_FIELDS, "the SLA policy")
    if "default" not in body:
        raise BadRequest(f"field 'default' is required: the targets per priority, {_EXAMPLE}")
    business_hours = _flag(body.get("business_hours", True), "business_hours")
    ratio = _ratio(body.get("warning_ratio", DEFAULT_WARNING_RATIO), "warning_ratio")
    default = _table(body["default"], "default")
    overrides = body.get("overrides", [])
    if not isinstance(overrides, list):
        raise BadRequest('field \'overrides\' must be a list such as [{"team": "vip", "targets": {...}}]')
    if len(overrides) > MAX_OVERRIDES:
        raise BadRequest(f"field 'overrides' has {len(overrides)} entries; at most {MAX_OVERRIDES}")
    parsed: List[Override] = []
    seen: Dict[Tuple[Optional[str], Optional[str]], int] = {}
    for index, entry in enumerate(overrides):
        override = _override(entry, f"overrides[{index}]")
        selector = (override.team, override.platform)
        if selector in seen:
            raise BadRequest(f"overrides[{index}] is for the same team and channel as overrides[{seen[selector]}]; "
                             "merge them into one")
        seen[selector] = index
        parsed.append(override)
    actions = dict(DEFAULT_ACTIONS)
    if "actions" in body:
        actions = {**actions, **_actions(body["actions"], "actions")}
    return SlaPolicy(default=default, overrides=tuple(parsed), business_hours=business_hours, warning_ratio=ratio,
                     actions=actions)


def _actions(value: Any, where: str) -> Dict[str, Tuple[Action, ...]]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object of level to actions, {_ACTIONS_EXAMPLE}")
    _no_unknown_fields(value, LEVELS, where)
    table: Dict[str, Tuple[Action, ...]] = {}
    for level, entries in value.items():
        if not isinstance(entries, list) or len(entries) > MAX_ACTIONS:
            raise BadRequest(f"{where}.{level} must be a list of at most {MAX_ACTIONS} actions, {_ACTIONS_EXAMPLE}")
        parsed: List[Action] = []
        for index, entry in enumerate(entries):
            parsed.append(_action(entry, f"{where}.{level}[{index}]"))
        if len({a.kind for a in parsed}) != len(parsed):
            raise BadRequest(f"{where}.{level} names an action twice; each action once")
        if any(a.kind == "move_to_team" for a in parsed) and any(a.kind == "reassign" for a in parsed):
            raise BadRequest(f"{where}.{level} has both 'reassign' and 'move_to_team'; a case goes to one place")
        table[level] = tuple(parsed)
    return table


def _action(entry: Any, where: str) -> Action:
    if isinstance(entry, str) and entry in ("notify", "raise_priority", "reassign"):
        return Action(entry)
    if isinstance(entry, dict) and set(entry) == {"move_to_team"}:
        team = entry["move_to_team"]
        if not valid_team_name(team):
            raise BadRequest(f"{where}.move_to_team must be a team name of 1 to {MAX_TEAM_NAME} printable "
                             "characters without '#' or surrounding spaces")
        return Action("move_to_team", team=team)
    raise BadRequest(f"{where} must be \"notify\", \"raise_priority\", \"reassign\" or "
                     f"{{\"move_to_team\": \"<team>\"}}, not {_quote(entry)}")


def _override(entry: Any, where: str) -> Override:
    if not isinstance(entry, dict):
        raise BadRequest(f'{where} must be an object such as {{"team": "vip", "platform": "x", "targets": {{...}}}}')
    _no_unknown_fields(entry, _OVERRIDE_FIELDS, where)
    team, platform = entry.get("team"), entry.get("platform")
    if team is None and platform is None:
        raise BadRequest(f"{where} needs a 'team', a 'platform' or both (the default applies to everyone else)")
    if team is not None and not valid_team_name(team):
        raise BadRequest(f"{where}.team must be a team name of 1 to {MAX_TEAM_NAME} printable characters "
                         "without '#' or surrounding spaces")
    if platform is not None and platform not in PLATFORMS:
        raise BadRequest(f"{where}.platform must be one of {', '.join(PLATFORMS)}")
    if "targets" not in entry:
        raise BadRequest(f"{where}.targets is required: the targets per priority this override sets")
    actions = _actions(entry["actions"], f"{where}.actions") if "actions" in entry else {}
    return Override(team=team, platform=platform, targets=_table(entry["targets"], f"{where}.targets"),
                    actions=actions)


def _table(value: Any, where: str) -> Dict[str, Dict[str, TargetSpec]]:
    if not isinstance(value, dict):
        raise BadRequest(f'{where} must be an object of priority to targets, e.g. {{"urgent": {{"first_response": 30}}}}')
    table: Dict[str, Dict[str, TargetSpec]] = {}
    for priority, targets in value.items():
        if priority not in PRIORITIES:
            raise BadRequest(f"{where}: unknown priority {_quote(priority)}; use {', '.join(PRIORITIES)}")
        if not isinstance(targets, dict):
            raise BadRequest(f"{where}.{priority} must be an object with any of {', '.join(TARGET_KINDS)}, "
                             'e.g. {"first_response": 60, "resolution": 1440}')
        _no_unknown_fields(targets, TARGET_KINDS, f"{where}.{priority}")
        table[priority] = {kind: _target(targets[kind], f"{where}.{priority}.{kind}")
                           for kind in TARGET_KINDS if kind in targets}
    return table


def _target(value: Any, where: str) -> TargetSpec:
    if isinstance(value, dict):
        _no_unknown_fields(value, _TARGET_FIELDS, where)
        if "minutes" not in value:
            raise BadRequest(f"{where}.minutes is required")
        return TargetSpec(
            minutes=_minutes(value["minutes"], f"{where}.minutes"),
            business_hours=None if "business_hours" not in value else _flag(value["business_hours"],
                                                                             f"{where}.business_hours"),
            warning_ratio=None if "warning_ratio" not in value else _ratio(value["warning_ratio"],
                                                                          f"{where}.warning_ratio"))
    if isinstance(value, int) and not isinstance(value, bool):
        return TargetSpec(minutes=_minutes(value, where))  # shorthand: just the minutes
    raise BadRequest(f'{where} must be a number of minutes or an object such as '
                     '{"minutes": 60, "business_hours": true, "warning_ratio": 0.8}')


def _minutes(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TARGET_MINUTES:
        return value
    raise BadRequest(f"{where} must be a whole number of minutes from 1 to {MAX_TARGET_MINUTES:,} (90 days)")


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise BadRequest(f"{where} must be true (count business hours only) or false (count around the clock)")


def _ratio(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    raise BadRequest(f"{where} must be a number between 0 and 1 (exclusive): the share of the target "
                     "after which to warn, e.g. 0.8")


def _no_unknown_fields(value: Dict[Any, Any], known: Tuple[str, ...], where: str) -> None:
    for key in value:
        if key not in known:
            raise BadRequest(f"{where}: unknown field {_quote(key)}; expected {', '.join(known)}")


def _quote(value: Any, length: int = 40) -> str:
    text = str(value)
    clipped = text if len(text) <= length else text[:length] + "…"
    return "'" + clipped.encode("ascii", "backslashreplace").decode("ascii") + "'"


# ---- clocks ----------------------------------------------------------------------

@dataclass(frozen=True)
class Pause:
    """A time the clocks stand still, [start, end): the case was pending (waiting on the customer).

    ``end`` None: still pending. After a reopen, a service may pass the time
    the case spent resolved as a pause too, so that it does not count.
    """

    start: datetime
    end: Optional[datetime] = None

    def __post_init__(self) -> None:
        _require_aware(self.start, "pause start")
        if self.end is not None:
            _require_aware(self.end, "pause end")
            if self.end < self.start:
                raise ValueError("a pause cannot end before it starts")


@dataclass(frozen=True)
class CaseTimes:
    """The moments of a case that drive its clocks; a service builds this from the case's history.

    - ``customer_posted_at``: when the customer posted (the platform's time, not our receipt).
    - ``first_response_at``: our first response.
    - ``follow_up_at``: the customer's *earliest* message after our latest response (None when we
      spoke last); it starts the next-response clock. The earliest, so that a customer writing
      again while waiting does not push the deadline out.
    - ``next_response_at``: our first response after ``follow_up_at``.
    - ``resolved_at``: when resolved; None while open (a reopen clears it).
    - ``pauses``: when the case was pending; the clocks do not run then.
    """

    customer_posted_at: datetime
    first_response_at: Optional[datetime] = None
    follow_up_at: Optional[datetime] = None
    next_response_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    pauses: Tuple[Pause, ...] = ()

    def __post_init__(self) -> None:
        for name in ("customer_posted_at", "first_response_at", "follow_up_at", "next_response_at", "resolved_at"):
            value = getattr(self, name)
            if value is not None:
                _require_aware(value, name)
        if self.follow_up_at is not None and self.first_response_at is None:
            raise ValueError("follow_up_at needs first_response_at: before our first response, "
                             "the customer's messages are all on the first-response clock")
        if self.next_response_at is not None and self.follow_up_at is None:
            raise ValueError("next_response_at needs follow_up_at: it answers a follow-up")
        ongoing = [p for p in self.pauses if p.end is None]
        if len(ongoing) > 1 or (ongoing and max(p.start for p in self.pauses) != ongoing[0].start):
            raise ValueError("only the latest pause may be ongoing")


@dataclass(frozen=True)
class Crossing:
    """A warning or breach moment of one clock.

    ``key`` names it for good: the clock and its start (a next-response clock
    restarts with each follow-up), so a scheduler that stores the keys it
    fired fires each crossing once, even if a pause moved it before it came.
    """

    kind: str          # first_response, next_response or resolution
    level: str         # warning or breach
    at: datetime
    clock_started_at: datetime

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.level}:{to_iso(self.clock_started_at)}"


@dataclass(frozen=True)
class TargetClock:
    """One target's clock on one case, as of ``now``.

    ``elapsed`` is the time counted so far (business hours for a business-hours
    target; pauses never count), up to the stop or ``now``. ``due_at`` and
    ``warning_at`` are None while a pause holds the clock before reaching them.
    """

    target: Target
    started_at: datetime
    stopped_at: Optional[datetime]
    warning_at: Optional[datetime]
    due_at: Optional[datetime]
    elapsed: timedelta
    state: str
    paused: bool
    now: datetime

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    @property
    def met(self) -> bool:
        return self.state == "met"

    @property
    def breached(self) -> bool:
        return self.state == "breached"

    @property
    def overdue_by(self) -> Optional[timedelta]:
        """How late: from the due moment to the response (or to now, still unanswered); None if not breached."""
        if self.state != "breached" or self.due_at is None:
            return None
        return (self.stopped_at or self.now) - self.due_at

    @property
    def remaining(self) -> Optional[timedelta]:
        """Counted time left before the breach, for a running clock not yet breached."""
        if not self.running or self.state == "breached":
            return None
        return self.target.duration - self.elapsed

    def crossings(self) -> Tuple[Crossing, ...]:
        """Its warning and breach moments, as far as they are known (passed or to come)."""
        found = []
        if self.warning_at is not None:
            found.append(Crossing(self.kind, "warning", self.warning_at, self.started_at))
        if self.due_at is not None:
            found.append(Crossing(self.kind, "breach", self.due_at, self.started_at))
        return tuple(found)


@dataclass(frozen=True)
class SlaClocks:
    """Every clock of a case as of ``now``, and the state the case shows.

    ``state`` is the worst of the running clocks (breached, warning, ok): what
    needs attention now. With none running, ``met`` if every target was met,
    else ``breached``; ``ok`` when no target applies.
    """

    now: datetime
    first_response: Optional[TargetClock]
    next_response: Optional[TargetClock]
    resolution: Optional[TargetClock]
    state: str

    @property
    def clocks(self) -> Tuple[TargetClock, ...]:
        return tuple(c for c in (self.first_response, self.next_response, self.resolution) if c is not None)

    @property
    def first_response_due(self) -> Optional[datetime]:
        return self.first_response.due_at if self.first_response else None

    @property
    def next_response_due(self) -> Optional[datetime]:
        return self.next_response.due_at if self.next_response else None

    @property
    def resolution_due(self) -> Optional[datetime]:
        return self.resolution.due_at if self.resolution else None

    def to_dict(self) -> Dict[str, Any]:
        """For the API: per target its deadlines, state and margins (ISO times, seconds)."""
        def view(clock: TargetClock) -> Dict[str, Any]:
            overdue, remaining = clock.overdue_by, clock.remaining
            return {
                "state": clock.state, "minutes": clock.target.minutes, "business_hours": clock.target.business_hours,
                "started_at": to_iso(clock.started_at),
                "stopped_at": to_iso(clock.stopped_at) if clock.stopped_at else None,
                "warning_at": to_iso(clock.warning_at) if clock.warning_at else None,
                "due_at": to_iso(clock.due_at) if clock.due_at else None,
                "paused": clock.paused, "elapsed_seconds": int(clock.elapsed.total_seconds()),
                "remaining_seconds": None if remaining is None else int(remaining.total_seconds()),
                "overdue_seconds": None if overdue is None else int(overdue.total_seconds()),
            }
        return {"state": self.state, **{c.kind: view(c) for c in self.clocks}}


def compute_clocks(times: CaseTimes, targets: Targets, calendar: Optional[Calendar] = None, *,
                   now: datetime) -> SlaClocks:
    """The case's SLA clocks as of ``now``; ``calendar`` is the team's (None: open around the clock)."""
    now = _require_aware(now, "now").astimezone(timezone.utc)
    hours = calendar or ALWAYS_OPEN

    def happened(moment: Optional[datetime]) -> Optional[datetime]:
        # Whatever lies after now has not happened yet, as of now.
        if moment is None:
            return None
        moment = moment.astimezone(timezone.utc)
        return moment if moment <= now else None

    posted = times.customer_posted_at.astimezone(timezone.utc)
    responded, resolved = happened(times.first_response_at), happened(times.resolved_at)
    follow_up = happened(times.follow_up_at) if responded else None
    answered = happened(times.next_response_at) if follow_up else None
    pauses = [(p.start.astimezone(timezone.utc), None if p.end is None else p.end.astimezone(timezone.utc))
              for p in times.pauses]

    def clock(target: Optional[Target], start: Optional[datetime], *stops: Optional[datetime]) -> Optional[TargetClock]:
        if target is None or start is None:
            return None
        # Resolving stops every clock, as a response would: nothing is left to answer.
        stop = min((s for s in stops if s is not None), default=None)
        return _target_clock(target, start, stop, pauses, hours, now)

    first = clock(targets.first_response, posted, responded, resolved)
    following = clock(targets.next_response, follow_up, answered, resolved)
    resolution = clock(targets.resolution, posted, resolved)
    clocks = [c for c in (first, following, resolution) if c is not None]
    running = [c for c in clocks if c.running]
    if running:
        state = min((c.state for c in running), key=lambda s: _SEVERITY[s])
    elif clocks:
        state = "breached" if any(c.breached for c in clocks) else "met"
    else:
        state = "ok"
    return SlaClocks(now=now, first_response=first, next_response=following, resolution=resolution, state=state)


def next_deadline(clocks: SlaClocks) -> Optional[Crossing]:
    """The earliest warning or breach still to come (after ``clocks.now``), for a scheduler to wake at; None if none.

    A paused clock has none: its deadlines are unknown until the pause ends,
    and the service computes the clocks again when the case changes.
    """
    upcoming = [x for c in clocks.clocks if c.running for x in c.crossings() if x.at > clocks.now]
    return min(upcoming, key=lambda x: x.at, default=None)


def crossings_reached(clocks: SlaClocks) -> List[Crossing]:
    """Every warning and breach reached by ``clocks.now`` (a response before the moment prevents it)."""
    reached = []
    for c in clocks.clocks:
        for crossing in c.crossings():
            if crossing.at <= clocks.now and (c.stopped_at is None or crossing.at < c.stopped_at):
                reached.append(crossing)
    return sorted(reached, key=lambda x: x.at)


# ---- counting --------------------------------------------------------------------

Segment = Tuple[datetime, Optional[datetime]]


def _target_clock(target: Target, start: datetime, stop: Optional[datetime],
                  pauses: List[Tuple[datetime, Optional[datetime]]], calendar: Calendar, now: datetime) -> TargetClock:
    counting = calendar if target.business_hours else ALWAYS_OPEN
    # A stopped clock ignores pauses after its stop; a running one knows pauses only up to now.
    horizon = stop if stop is not None else now
    segments = _running_segments(start, pauses, horizon, ongoing_allowed=stop is None)
    warning_at, due_at = _moments_when(counting, segments, [target.warning_after, target.duration])
    elapsed = _counted(counting, segments, horizon)
    if stop is not None:
        state = "met" if due_at is None or stop <= due_at else "breached"
    elif due_at is not None and now >= due_at:
        state = "breached"
    elif warning_at is not None and now >= warning_at:
        state = "warning"
    else:
        state = "ok"
    # Held by a pause: the segments end before forever (or never began).
    paused = stop is None and (not segments or segments[-1][1] is not None)
    return TargetClock(target=target, started_at=start, stopped_at=stop, warning_at=warning_at, due_at=due_at,
                       elapsed=elapsed, state=state, paused=paused, now=now)


def _running_segments(start: datetime, pauses: List[Tuple[datetime, Optional[datetime]]], horizon: datetime,
                      *, ongoing_allowed: bool) -> List[Segment]:
    """[start, forever) without the pauses known by ``horizon``, as [from, to) segments.

    The last segment is open-ended (to None) unless a pause still holds the
    clock at the horizon, in which case nothing after it is known.
    """
    clipped: List[Tuple[datetime, Optional[datetime]]] = []
    for begin, end in pauses:
        if begin > horizon:
            continue  # not begun yet (one that begins now holds the clock now)
        if end is None or end > horizon:
            end = None if ongoing_allowed else horizon
        clipped.append((begin, end))
    clipped.sort(key=lambda p: p[0])
    segments: List[Segment] = []
    cursor: Optional[datetime] = start
    for begin, end in clipped:
        if cursor is None:
            break  # held by an ongoing pause already
        if end is not None and end <= cursor:
            continue  # over before the clock got here
        if begin > cursor:
            segments.append((cursor, begin))
        cursor = end if end is None or end > cursor else cursor
    if cursor is not None:
        segments.append((cursor, None))
    return segments


def _moments_when(calendar: Calendar, segments: List[Segment], amounts: List[timedelta]) -> List[Optional[datetime]]:
    """When each amount (ascending) of counted time has run along the segments, in one walk of the calendar;
    None for those a pause (or a calendar that stops opening) holds back."""
    found: List[Optional[datetime]] = []
    counted = timedelta(0)
    for begin, end in segments:
        for opens, closes in open_periods(calendar, begin):
            if end is not None:
                if opens >= end:
                    break
                closes = min(closes, end)
            while len(found) < len(amounts) and counted + (closes - opens) >= amounts[len(found)]:
                found.append(opens + (amounts[len(found)] - counted))
            if len(found) == len(amounts):
                return found
            counted += closes - opens
    return found + [None] * (len(amounts) - len(found))


def _counted(calendar: Calendar, segments: List[Segment], until: datetime) -> timedelta:
    total = timedelta(0)
    for begin, end in segments:
        if begin >= until:
            break
        total += business_time_between(calendar, begin, until if end is None else min(end, until))
    return total


def _require_aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment


# ---- a case's clocks, and what the scheduler keeps on it ------------------------------

def case_times(case: Case) -> CaseTimes:
    """The moments of a stored case, as the clocks read them (the case keeps them honestly: domain/case.py)."""
    def moment(text: Optional[str]) -> Optional[datetime]:
        return parse_iso(text) if text else None

    first = moment(case.first_response_at)
    follow_up = moment(case.follow_up_at) if first else None
    return CaseTimes(
        customer_posted_at=parse_iso(case.customer_posted_at or case.created_at),
        first_response_at=first,
        follow_up_at=follow_up,
        next_response_at=moment(case.next_response_at) if follow_up else None,
        resolved_at=moment(case.resolved_at) if not case.active else None,
        pauses=tuple(Pause(parse_iso(start), moment(end)) for start, end in case.pauses if start),
    )


@dataclass(frozen=True)
class SlaMarks:
    """What a case carries so the store can index it: its state, earliest due and warning moments
    of running clocks (the inbox orders and filters by them) and when the scheduler looks next."""

    state: str
    due_at: Optional[str]
    warning_at: Optional[str]
    next_at: Optional[str]


def due_crossings(clocks: SlaClocks, fired: Any) -> List[Crossing]:
    """Crossings reached on running clocks whose actions have not run yet (``fired``: their keys)."""
    running = {c.kind for c in clocks.clocks if c.running}
    return [x for x in crossings_reached(clocks) if x.kind in running and x.key not in fired]


def marks_for(clocks: SlaClocks, fired: Any) -> SlaMarks:
    running = [c for c in clocks.clocks if c.running]
    due = min((c.due_at for c in running if c.due_at is not None), default=None)
    warning = min((c.warning_at for c in running if c.warning_at is not None), default=None)
    pending = due_crossings(clocks, fired)
    upcoming = next_deadline(clocks)
    moments = [x.at for x in pending] + ([upcoming.at] if upcoming else [])
    look = min(moments, default=None)
    return SlaMarks(state=clocks.state, due_at=to_iso(due) if due else None,
                    warning_at=to_iso(warning) if warning else None, next_at=to_iso(look) if look else None)
