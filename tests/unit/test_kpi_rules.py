"""KPI rules: deltas of stored case changes, applied once, give the report a recount of the raw histories gives.

The property test builds random case histories with the real case rules
(opened, assigned, moved, responded, follow-ups, pending, resolved, closed,
reopened, replies landing after the resolution, customers coming back) over
three weeks that cross daylight saving changes, turns every stored change into
deltas as the stream would (duplicates included, in any order), and compares
the report with figures counted straight from the histories.
"""
import csv
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Dict, List, Optional, Tuple

import pytest

from chalicelib.domain import hours, kpi
from chalicelib.domain.case import PRIORITIES, Case, new_case, with_assignee, with_follow_up, with_response, with_status
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.mention import Author, Mention
from chalicelib.domain.sla import validate_policy

UTC = timezone.utc
WINDOW = timedelta(days=kpi.DEFAULT_FCR_WINDOW_DAYS)
TARGETS = {"first_response": 60, "next_response": 120, "resolution": 1440}  # minutes, around the clock
POLICY = validate_policy({"business_hours": False, "default": {p: dict(TARGETS) for p in PRIORITIES}})
CALENDARS = {
    "support": hours.validate_calendar({"time_zone": "Europe/London", "weekly": {
        d: [["09:00", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}}),
    "jp": hours.validate_calendar({"time_zone": "Asia/Tokyo", "weekly": {
        d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
        "holidays": ["2026-11-03"]}),
    "us": hours.validate_calendar({"time_zone": "America/New_York", "weekly": {
        d: [["00:00", "02:00"], ["08:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}),
}  # "vip" has no calendar: open around the clock
AGENTS = {"support": ["a1", "a2", "a3"], "jp": ["j1", "j2"], "us": ["u1", "u2"], "vip": ["v1"]}
CHANNELS = [("x", "mention"), ("x", "dm"), ("facebook", "comment"), ("instagram", "dm"), ("messenger", "dm"),
            ("whatsapp", "dm")]
CATEGORIES = ["complaint", "question", "product_feedback", None]
SENTIMENTS = ["negative", "neutral", "positive", None]
# London leaves summer time on 2026-10-25, New York on 2026-11-01: both inside.
BASE = datetime(2026, 10, 21, 6, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return to_iso(moment)


# ---- random histories ------------------------------------------------------------

@dataclass
class Step:
    kind: str
    at: datetime
    case: Case                       # the case as stored after the step
    posted: Optional[datetime] = None  # a follow-up's platform time


@dataclass
class History:
    customer: str
    posted: datetime
    steps: List[Step] = field(default_factory=list)
    activity: List[Tuple[str, str, str]] = field(default_factory=list)
    returns: List[datetime] = field(default_factory=list)  # this customer's later cases, opened at


def _gap(rng: random.Random) -> timedelta:
    roll = rng.random()
    if roll < 0.45:
        seconds = rng.uniform(20, 3600)
    elif roll < 0.8:
        seconds = rng.uniform(3600, 14 * 3600)
    elif roll < 0.95:
        seconds = rng.uniform(14 * 3600, 3 * 86400)
    else:
        seconds = rng.uniform(3 * 86400, 9 * 86400)  # past the FCR window now and then
    return timedelta(seconds=seconds)


def make_history(rng: random.Random, number: int, customer: str, start: datetime) -> History:
    platform, kind = rng.choice(CHANNELS)
    team = rng.choice(sorted(AGENTS))
    posted = start - timedelta(seconds=rng.uniform(0, 1800))
    mention = Mention(platform=platform, kind=kind, platform_id=f"p{number}", author=Author(id=customer), text="help",
                      created_at=iso(posted))
    triage = {"category": rng.choice(CATEGORIES), "sentiment": rng.choice(SENTIMENTS),
              "priority": rng.choice(PRIORITIES)}
    assignee = rng.choice(AGENTS[team] + [None])
    case = replace(new_case(mention, triage, team=team, assignee=assignee, now=iso(start)), version=1)
    history = History(customer=customer, posted=posted, steps=[Step("opened", start, case)])
    at = start
    for _ in range(rng.randint(1, 13)):
        at = at + _gap(rng)
        choices = _choices(case)
        if not choices:
            break
        action = rng.choices([name for name, _ in choices], [weight for _, weight in choices])[0]
        if action == "stop":
            break
        actor = case.assignee or rng.choice(AGENTS[case.team])
        step_posted = None
        if action == "respond":
            if rng.random() < 0.6:
                history.activity.append((actor, iso(at - timedelta(seconds=rng.uniform(0, 900))), "opened"))
            history.activity.append((actor, iso(at - timedelta(seconds=rng.uniform(0, 400))), "typing"))
            history.activity.append((actor, iso(at), "replied"))
            changed = with_response(case, iso(at))
        elif action == "follow_up":
            step_posted = at - timedelta(seconds=rng.uniform(0, 600))
            follow = replace(mention, platform_id=f"p{number}-{len(history.steps)}", created_at=iso(step_posted))
            changed = with_follow_up(case, follow, rng.choice(PRIORITIES), iso(at))
        elif action == "assign":
            agent = rng.choice(AGENTS[case.team])
            history.activity.append((agent, iso(at), "assigned"))
            changed = with_assignee(case, agent, iso(at))
        elif action == "move":
            changed = with_assignee(case, None, iso(at), team=rng.choice([t for t in AGENTS if t != case.team]))
        else:  # a status change
            history.activity.append((actor, iso(at), "status_changed"))
            changed = with_status(case, action, iso(at))
        case = replace(changed, version=case.version + 1)
        history.steps.append(Step(action, at, case, step_posted))
    return history


def _choices(case: Case) -> List[Tuple[str, float]]:
    if case.status == "open":
        return [("respond", 4), ("follow_up", 2), ("assign", 1), ("move", 0.5), ("pending", 1), ("resolved", 2.5),
                ("closed", 0.5)]
    if case.status == "pending":
        return [("respond", 1), ("follow_up", 1), ("open", 1), ("resolved", 2), ("closed", 0.5)]
    if case.status == "resolved":  # late replies and a customer's "thanks" happen after the resolution too
        return [("open", 1.2), ("closed", 0.6), ("respond", 0.6), ("follow_up", 0.3), ("stop", 2)]
    return [("respond", 0.2), ("stop", 3)]


def make_histories(rng: random.Random, count: int) -> List[History]:
    histories: List[History] = []
    customers = [f"cust{n}" for n in range(count * 2 // 3)]
    number = 0
    for customer in customers:
        start = BASE + timedelta(seconds=rng.uniform(0, 12 * 86400))
        mine: List[History] = []
        while number < count:
            history = make_history(rng, number, customer, start)
            number += 1
            for earlier in mine:
                earlier.returns.append(history.steps[0].at)
            mine.append(history)
            last = history.steps[-1]
            # The next case of this customer only once this one is over (a follow-up would join an active one).
            if last.case.active or rng.random() < 0.6:
                break
            start = last.at + timedelta(seconds=rng.uniform(600, 10 * 86400))
        histories.extend(mine)
        if number >= count:
            break
    return histories


# ---- applying them as the stream would ---------------------------------------------

@dataclass
class Feed:
    """What the stream and the other services fed besides case changes: survey answers and QA reviews."""

    deliveries: List[List[kpi.Delta]] = field(default_factory=list)
    surveys: List[Tuple[History, datetime, int]] = field(default_factory=list)           # answered at, score
    reviews: List[Tuple[History, datetime, str, int]] = field(default_factory=list)     # replied at, agent, 1/100 %


def stream(rng: random.Random, histories: List[History], brand_zone: str) -> Feed:
    feed = Feed()

    def deliver(deltas: List[kpi.Delta], *times: int) -> None:
        feed.deliveries.extend([deltas] * rng.choice(times or (1,)))

    for history in histories:
        old: Optional[Case] = None
        for step in history.steps:
            processed = iso(step.at + timedelta(seconds=rng.uniform(0, 30)))
            deliver(kpi.deltas_for_change(old, step.case, brand_zone=brand_zone, calendars=CALENDARS, now=processed,
                                          policy=POLICY, activity=history.activity), 1, 1, 1, 2, 3)
            old = step.case
        final = history.steps[-1].case
        for returned in history.returns:  # a later case of the same customer was stored
            deliver(kpi.deltas_for_return(final, iso(returned), brand_zone=brand_zone), 1, 2)
        if not final.active and rng.random() < 0.5:
            answered = history.steps[-1].at + timedelta(hours=rng.uniform(1, 60))
            score = rng.randint(1, 5)
            deliver(kpi.csat_deltas(final, event="asked", at=iso(answered - timedelta(minutes=30)),
                                    brand_zone=brand_zone))
            deliver(kpi.csat_deltas(final, event="answered", at=iso(answered), brand_zone=brand_zone, score=score), 1, 2)
            feed.surveys.append((history, answered, score))
        for agent, at, kind in history.activity:
            if kind == "replied" and rng.random() < 0.3:
                hundredths = rng.randint(0, 10000)
                deliver(kpi.qa_deltas(final, review_id=f"rv-{final.case_id}-{at}", agent=agent,
                                      score_percent=hundredths / 100, replied_at=at, brand_zone=brand_zone), 1, 2)
                feed.reviews.append((history, parse_iso(at), agent, hundredths))
    rng.shuffle(feed.deliveries)  # the stream keeps order per case only; the aggregates must not care
    return feed


# ---- the brute force: figures counted straight from the histories -----------------------

def keys_of(case: Case) -> List[Tuple[str, str]]:
    found = [("team", case.team), ("channel", case.platform), ("category", case.category or "(none)")]
    if case.assignee:
        found.append(("agent", case.assignee))
    return found


def overlap(pauses: List[Tuple[datetime, datetime]], start: datetime, end: datetime) -> timedelta:
    total = timedelta(0)
    for begin, finish in pauses:
        low, high = max(begin, start), min(finish, end)
        if high > low:
            total += high - low
    return total


class Expected:
    def __init__(self, brand_zone: str, from_day: str, to_day: str, now: datetime) -> None:
        self.tz = hours.zone(brand_zone)
        self.from_day, self.to_day, self.now = from_day, to_day, now
        self.counts: Dict[str, Dict[str, Counter]] = {g: defaultdict(Counter) for g in kpi.GROUP_BYS}
        self.values: Dict[str, Dict[str, Dict[str, List[int]]]] = {
            g: defaultdict(lambda: defaultdict(list)) for g in kpi.GROUP_BYS}
        self.backlog: Dict[str, Counter] = {g: Counter() for g in kpi.GROUP_BYS}

    def day(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).date().isoformat()

    def settled(self, day: str) -> bool:
        midnight = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), tzinfo=self.tz)
        return midnight + WINDOW <= self.now

    def groups(self, moment: datetime, keys: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
        day = self.day(moment)
        if not self.from_day <= day <= self.to_day:
            return []
        groups = list(keys)
        if any(dimension == "channel" for dimension, _ in keys):
            groups.append(("day", day))
        return groups

    def count(self, moment: datetime, keys: List[Tuple[str, str]], name: str, amount: int = 1) -> None:
        for group_by, key in self.groups(moment, keys):
            self.counts[group_by][key][name] += amount

    def value(self, moment: datetime, keys: List[Tuple[str, str]], metric: str, seconds: float) -> None:
        for group_by, key in self.groups(moment, keys):
            self.values[group_by][key][metric].append(max(0, int(seconds)))


def brute_force(histories: List[History], expected: Expected) -> None:
    end_of_period = datetime.combine(date.fromisoformat(expected.to_day) + timedelta(days=1), time(),
                                     tzinfo=expected.tz)
    for history in histories:
        _recount(history, expected, end_of_period)


def _recount(history: History, expected: Expected, end_of_period: datetime) -> None:
    posted = history.posted
    created = history.steps[0]
    expected.count(created.at, keys_of(created.case), "cases_opened")
    expected.count(created.at, keys_of(created.case), f"sentiment/{created.case.sentiment or 'unknown'}")
    team_calendar = lambda case: CALENDARS.get(case.team, hours.ALWAYS_OPEN)  # noqa: E731
    status = "open"
    pauses: List[Tuple[datetime, datetime]] = []
    pending_since: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    first_resolution: Optional[Tuple[datetime, Case]] = None
    reopened_at: Optional[datetime] = None
    reopens: List[datetime] = []
    responses: List[datetime] = []
    last_response: Optional[datetime] = None
    cycle_start: Optional[datetime] = None
    first_stop_seen = False

    def sla(kind: str, start: datetime, stop: datetime, case: Case) -> None:
        ongoing = [(pending_since, stop)] if pending_since else []  # still pending: the clock stands still
        counted = (stop - start) - overlap(pauses + ongoing, start, stop)
        verdict = "met" if counted <= timedelta(minutes=TARGETS[kind]) else "breached"
        expected.count(stop, keys_of(case), f"sla/{kind}/{verdict}")

    for step in history.steps[1:]:
        case, at = step.case, step.at
        if step.kind == "respond":
            if not responses:
                expected.value(at, keys_of(case), "first_response_seconds", (at - posted).total_seconds())
                expected.value(at, keys_of(case), "first_response_seconds_business",
                               hours.business_time_between(team_calendar(case), posted, at).total_seconds())
                cycle_start = None
            elif cycle_start is not None and at >= cycle_start:
                expected.value(at, keys_of(case), "next_response_seconds", (at - cycle_start).total_seconds())
                expected.value(at, keys_of(case), "next_response_seconds_business",
                               hours.business_time_between(team_calendar(case), cycle_start, at).total_seconds())
                sla("next_response", cycle_start, at, case)
                cycle_start = None
            if not first_stop_seen:
                sla("first_response", posted, at, case)
                first_stop_seen = True
            responses.append(at)
            last_response = max(last_response or at, at)
        elif step.kind == "follow_up":
            assert step.posted is not None
            if responses and last_response is not None and step.posted >= last_response:
                cycle_start = step.posted if cycle_start is None else min(cycle_start, step.posted)
            if pending_since:  # the customer wrote: the case is open again
                pauses.append((pending_since, at))
                pending_since, status = None, "open"
        elif step.kind in ("pending", "open", "resolved", "closed"):
            if pending_since:
                pauses.append((pending_since, at))
                pending_since = None
            if step.kind == "pending":
                pending_since = at
            elif step.kind == "open" and status == "resolved":
                pauses.append((resolved_at, at))
                reopens.append(at)
                reopened_at = at
                expected.count(at, keys_of(case), "cases_reopened")
            elif step.kind in ("resolved", "closed") and status in ("open", "pending"):
                resolved_at = at
                expected.count(at, keys_of(case), "cases_resolved")
                expected.value(at, keys_of(case), "resolution_seconds", (at - posted).total_seconds())
                expected.value(at, keys_of(case), "resolution_seconds_business",
                               hours.business_time_between(team_calendar(case), posted, at).total_seconds())
                sla("resolution", posted, at, case)
                if not first_stop_seen:
                    sla("first_response", posted, at, case)
                    first_stop_seen = True
                if first_resolution is None:
                    first_resolution = (at, case)
                _recount_handle_time(history, expected, case, reopened_at, at)
            status = step.kind
    # Backlog: cases active at the end of each day (by day) and of the period (by key).
    for group_by in kpi.DIMENSIONS:
        state = _as_of(history, end_of_period)
        if state is not None and state.active:
            for dimension, key in keys_of(state):
                if dimension == group_by:
                    expected.backlog[group_by][key] += 1
    day = date.fromisoformat(expected.from_day)
    while day.isoformat() <= expected.to_day:
        state = _as_of(history, datetime.combine(day + timedelta(days=1), time(), tzinfo=expected.tz))
        if state is not None and state.active:
            expected.backlog["day"][day.isoformat()] += 1
        day += timedelta(days=1)
    _recount_fcr(history, expected, first_resolution, responses, reopens)


def _as_of(history: History, moment: datetime) -> Optional[Case]:
    state = None
    for step in history.steps:
        if step.at < moment:
            state = step.case
    return state


def _recount_handle_time(history: History, expected: Expected, case: Case, since: Optional[datetime],
                         resolved: datetime) -> None:
    per_agent: Dict[str, List[datetime]] = defaultdict(list)
    for agent, at, _kind in history.activity:
        moment = parse_iso(at)
        if moment <= resolved and (since is None or moment > since):
            per_agent[agent].append(moment)
    if not per_agent:
        return
    total = 0
    for agent, moments in per_agent.items():
        moments.sort()
        spent = 0.0
        for earlier, later in zip(moments, moments[1:]):
            if (later - earlier).total_seconds() < 300:
                spent += (later - earlier).total_seconds()
        expected.value(resolved, [("agent", agent)], "handle_seconds", spent)
        total += int(spent)
    expected.value(resolved, [k for k in keys_of(case) if k[0] != "agent"], "handle_seconds", total)


def _recount_fcr(history: History, expected: Expected, first_resolution: Optional[Tuple[datetime, Case]],
                 responses: List[datetime], reopens: List[datetime]) -> None:
    if first_resolution is None:
        return
    resolved, case = first_resolution
    keys = keys_of(case)
    if not expected.settled(expected.day(resolved)):
        expected.count(resolved, keys, "fcr_pending")
        return
    window_end = resolved + WINDOW
    answered = [at for at in responses if at <= window_end]
    first_contact = (len(answered) == 1 and not any(at <= window_end for at in reopens)
                     and not any(max(resolved, answered[0]) <= at <= window_end for at in history.returns))
    expected.count(resolved, keys, "fcr_resolved")
    expected.count(resolved, keys, "fcr_first_contact", int(first_contact))


def expected_row(expected: Expected, group_by: str, key: str, extra: Counter) -> Dict[str, object]:
    counts = expected.counts[group_by].get(key, Counter()) + extra
    values = expected.values[group_by].get(key, {})
    met = sum(counts[f"sla/{k}/met"] for k in TARGETS)
    judged = met + sum(counts[f"sla/{k}/breached"] for k in TARGETS)
    row: Dict[str, object] = {
        "key": key, "cases_opened": counts["cases_opened"], "cases_resolved": counts["cases_resolved"],
        "cases_reopened": counts["cases_reopened"], "backlog": expected.backlog[group_by].get(key, 0),
        "sla_met_rate": round(met / judged, 4) if judged else None,
        "fcr_rate": round(counts["fcr_first_contact"] / counts["fcr_resolved"], 4) if counts["fcr_resolved"] else None,
        "fcr_resolved": counts["fcr_resolved"], "fcr_pending": counts["fcr_pending"],
        "sentiment": {s: counts[f"sentiment/{s}"] for s in kpi.SENTIMENTS},
        "csat_responses": counts["csat_responses"], "csat_score_sum": counts["csat_score_sum"],
        "csat_satisfied": counts["csat_satisfied"], "csat_asked": counts["csat_asked"],
        "qa_reviews": counts["qa_reviews"], "qa_hundredths": counts["qa_hundredths"],
    }
    for kind in TARGETS:
        row[f"sla/{kind}"] = (counts[f"sla/{kind}/met"], counts[f"sla/{kind}/breached"])
    for metric in kpi.DURATION_METRICS:
        row[metric] = sorted(values.get(metric, []))
    return row


def assert_row_matches(actual: Dict[str, object], wanted: Dict[str, object], where: str) -> None:
    for name in ("cases_opened", "cases_resolved", "cases_reopened", "backlog", "sla_met_rate", "fcr_rate",
                 "fcr_resolved", "fcr_pending", "sentiment", "qa_reviews"):
        assert actual[name] == wanted[name], f"{where}: {name}"
    for kind in TARGETS:
        sla = actual["sla"][kind]
        assert (sla["met"], sla["breached"]) == wanted[f"sla/{kind}"], f"{where}: sla {kind}"
    csat = actual["csat"]
    responses = wanted["csat_responses"]
    assert csat["responses"] == responses and csat["asked"] == wanted["csat_asked"], where
    assert csat["average"] == (round(wanted["csat_score_sum"] / responses, 2) if responses else None), where
    assert csat["satisfied_share"] == (round(wanted["csat_satisfied"] / responses, 4) if responses else None), where
    reviews = wanted["qa_reviews"]
    assert actual["qa_score"] == (round(wanted["qa_hundredths"] / 100 / reviews, 1) if reviews else None), where
    for metric in kpi.DURATION_METRICS:
        values: List[int] = wanted[metric]
        stats = actual[metric]
        assert stats["count"] == len(values), f"{where}: {metric} count"
        if not values:
            assert stats == {"count": 0, "median": None, "p90": None, "mean": None}, where
            continue
        assert stats["mean"] == round(sum(values) / len(values), 1), f"{where}: {metric} mean"
        for name, share in (("median", 0.5), ("p90", 0.9)):
            true = values[max(1, math.ceil(share * len(values))) - 1]
            bound = true * kpi.PERCENTILE_RELATIVE_ERROR + 0.05 + 1e-9  # the bucket, and rounding to 0.1 s
            assert abs(stats[name] - true) <= bound, f"{where}: {metric} {name} {stats[name]} vs {true}"


def survey_and_review_counts(feed: Feed, expected: Expected) -> Dict[str, Dict[str, Counter]]:
    """CSAT answers and QA reviews as fed: events of their own, not of the case history."""
    extras: Dict[str, Dict[str, Counter]] = {g: defaultdict(Counter) for g in kpi.GROUP_BYS}
    for history, answered, score in feed.surveys:
        keys = keys_of(history.steps[-1].case)
        for group_by, key in expected.groups(answered - timedelta(minutes=30), keys):
            extras[group_by][key]["csat_asked"] += 1
        for group_by, key in expected.groups(answered, keys):
            extras[group_by][key].update({"csat_responses": 1, "csat_score_sum": score,
                                          "csat_satisfied": int(score >= 4)})
    for history, replied, agent, hundredths in feed.reviews:
        keys = [k for k in keys_of(history.steps[-1].case) if k[0] != "agent"] + [("agent", agent)]
        for group_by, key in expected.groups(replied, keys):
            extras[group_by][key].update({"qa_reviews": 1, "qa_hundredths": hundredths})
    return extras


def wanted_keys(expected: Expected, group_by: str, extras: Dict[str, Dict[str, Counter]]) -> List[str]:
    if group_by == "day":
        first, last = date.fromisoformat(expected.from_day), date.fromisoformat(expected.to_day)
        return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    keys = set(expected.counts[group_by]) | set(expected.values[group_by]) | set(extras[group_by])
    keys |= {key for key, amount in expected.backlog[group_by].items() if amount}
    return sorted(keys)


@pytest.mark.parametrize("seed,brand_zone", [(1, "America/New_York"), (2, "Asia/Tokyo"), (3, "Europe/London")])
def test_the_report_from_stream_deltas_equals_a_recount_of_the_raw_histories(seed, brand_zone):
    rng = random.Random(seed)
    histories = make_histories(rng, 150)
    feed = stream(rng, histories, brand_zone)
    aggregates: kpi.Aggregates = {}
    applied: set = set()
    for deltas in feed.deliveries:
        kpi.apply_once(aggregates, applied, deltas)
    rows = kpi.aggregate_rows(aggregates)

    from_day, to_day = "2026-10-24", "2026-11-04"
    now = BASE + timedelta(days=17)
    expected = Expected(brand_zone, from_day, to_day, now)
    brute_force(histories, expected)
    extras = survey_and_review_counts(feed, expected)

    for group_by in kpi.GROUP_BYS:
        result = kpi.report(rows, group_by, from_day, to_day, now=iso(now), brand_zone=brand_zone)
        actual = {row["key"]: row for row in result["rows"]}
        keys = wanted_keys(expected, group_by, extras)
        assert sorted(actual) == keys, group_by
        for key in keys:
            wanted = expected_row(expected, group_by, key, extras[group_by].get(key, Counter()))
            assert_row_matches(actual[key], wanted, f"{brand_zone} {group_by}={key}")
    # The histories are rich enough for the comparison to mean something.
    days = kpi.report(rows, "day", from_day, to_day, now=iso(now), brand_zone=brand_zone)["rows"]
    assert sum(r["cases_reopened"] for r in days) > 5 and sum(r["backlog"] for r in days) > 50
    assert sum(r["fcr_pending"] for r in days) > 5 and sum(r["fcr_resolved"] for r in days) > 20
    assert 0 < sum(r["fcr_rate"] or 0 for r in days)
    for kind in TARGETS:
        assert sum(r["sla"][kind]["met"] for r in days) > 0 and sum(r["sla"][kind]["breached"] for r in days) > 0
    assert sum(r["handle_seconds"]["count"] for r in days) > 20


# ---- the rules one at a time -----------------------------------------------------------

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # Tuesday 10:00 in Tokyo
TOKYO = "Asia/Tokyo"


def a_case(**triage) -> Case:
    mention = Mention(platform="messenger", kind="dm", platform_id="m1", author=Author(id="cust"), text="help",
                      created_at=iso(T0))
    case = new_case(mention, {"category": "complaint", "sentiment": "negative", **triage}, team="support",
                    assignee="a1", now=iso(T0 + timedelta(minutes=1)))
    return replace(case, version=1)


def run(*changes, applied: Optional[set] = None, **options) -> Tuple[List[Case], kpi.Aggregates]:
    """Store each change in turn (a new version each) and apply every delta as the stream would."""
    cases = [a_case()]
    for change in changes:
        cases.append(replace(change(cases[-1]), version=cases[-1].version + 1))
    aggregates: kpi.Aggregates = {}
    applied = set() if applied is None else applied
    for old, new in zip([None] + cases[:-1], cases):
        kpi.apply_once(aggregates, applied, kpi.deltas_for_change(old, new, brand_zone=TOKYO, calendars=CALENDARS,
                                                                  now=new.updated_at, **options))
    return cases, aggregates


def respond(after: timedelta):
    return lambda case: with_response(case, iso(T0 + after))


def status(new_status: str, after: timedelta):
    return lambda case: with_status(case, new_status, iso(T0 + after))


def team_row(aggregates: kpi.Aggregates, now: datetime, *, first="2026-11-01", last="2026-12-31") -> Dict:
    [row] = kpi.report(kpi.aggregate_rows(aggregates), "team", first, last, now=iso(now), brand_zone=TOKYO)["rows"]
    return row


H = timedelta(hours=1)
D = timedelta(days=1)


def test_percentiles_stay_within_the_stated_bound_and_the_mean_is_exact():
    rng = random.Random(7)
    assert kpi.PERCENTILE_RELATIVE_ERROR < 0.025
    for size in (1, 2, 3, 10, 999):
        values = [int(rng.lognormvariate(7, 2.5)) for _ in range(size)]
        counters: Counter = Counter()
        for value in values:
            counters.update(kpi.histogram_counters("resolution_seconds", value))
        stats = kpi.histogram_stats(counters, "resolution_seconds")
        ordered = sorted(min(v, kpi.MAX_DURATION_SECONDS) for v in values)
        assert stats["count"] == size and stats["mean"] == round(sum(values) / size, 1)
        for name, share in (("median", 0.5), ("p90", 0.9)):
            true = ordered[math.ceil(share * size) - 1]
            assert abs(stats[name] - true) <= true * kpi.PERCENTILE_RELATIVE_ERROR + 0.05
    # Short durations are exact; the longest count as 90 days in percentiles (not in the mean).
    assert kpi.histogram_stats(Counter(kpi.histogram_counters("x", 17)), "x")["median"] == 17
    huge = Counter(kpi.histogram_counters("x", 400 * 86400))
    assert abs(kpi.histogram_stats(huge, "x")["median"] - kpi.MAX_DURATION_SECONDS) <= 0.025 * kpi.MAX_DURATION_SECONDS
    assert kpi.histogram_stats(huge, "x")["mean"] == 400 * 86400


def test_a_change_delivered_twice_counts_once_and_so_does_a_case_spoiled_twice():
    case = a_case()
    opened = kpi.deltas_for_change(None, case, brand_zone=TOKYO, calendars={}, now=case.created_at)
    aggregates: kpi.Aggregates = {}
    applied: set = set()
    assert kpi.apply_once(aggregates, applied, opened) == 1
    assert kpi.apply_once(aggregates, applied, opened) == 0
    assert aggregates[("2026-12-01", "team", "support")]["cases_opened"] == 1
    # A reopen and the customer's return both spoil the same FCR candidate: one spoiler in all.
    applied = set()
    cases, aggregates = run(respond(H), status("resolved", 2 * H), status("open", D), applied=applied)
    back = kpi.deltas_for_return(cases[2], iso(T0 + 20 * H), brand_zone=TOKYO)
    assert back and {d.token for d in back} == {kpi.fcr_spoiled_token(cases[2].case_id)}
    assert kpi.apply_once(aggregates, applied, back) == 0
    assert aggregates[("2026-12-01", "team", "support")]["fcr_spoiled"] == 1


def test_fcr_counts_a_resolution_only_once_its_window_has_ended():
    _, aggregates = run(respond(H), status("resolved", 2 * H))
    inside = team_row(aggregates, T0 + 5 * D)
    assert (inside["fcr_rate"], inside["fcr_resolved"], inside["fcr_pending"]) == (None, 0, 1)
    # Resolved on 2026-12-01 (Tokyo): every window of that day has ended at 2026-12-09 00:00 Tokyo.
    day_over = datetime(2026, 12, 9, tzinfo=hours.zone(TOKYO))
    assert team_row(aggregates, day_over - timedelta(seconds=1))["fcr_pending"] == 1
    after = team_row(aggregates, day_over)
    assert (after["fcr_rate"], after["fcr_resolved"], after["fcr_pending"]) == (1.0, 1, 0)


@pytest.mark.parametrize("changes,rate", [
    ((respond(H), status("resolved", 2 * H), status("open", 3 * D)), 0.0),        # reopened within the window
    ((respond(H), status("resolved", 2 * H), status("open", 8 * D)), 1.0),        # reopened after it: still FCR
    ((respond(H), status("resolved", 2 * H), respond(2 * D)), 0.0),               # a second response
    ((respond(H), respond(90 * timedelta(minutes=1)), status("resolved", 2 * H)), 0.0),  # two responses
    ((status("resolved", 2 * H),), 0.0),                                          # resolved without a response
    ((status("resolved", 2 * H), respond(2 * H + timedelta(seconds=5))), 1.0),    # the reply landed just after
    ((status("resolved", 2 * H), respond(9 * D)), 0.0),                           # ...but not days later
    ((respond(H), status("pending", 2 * H), status("closed", 3 * H)), 1.0),
])
def test_first_contact_resolution_is_one_response_and_no_comeback_within_the_window(changes, rate):
    _, aggregates = run(*changes)
    row = team_row(aggregates, T0 + 30 * D)
    assert (row["fcr_rate"], row["fcr_resolved"]) == (rate, 1)


def test_a_customer_coming_back_spoils_only_within_the_window_and_after_our_response():
    cases, _ = run(respond(H), status("resolved", 2 * H))
    resolved = cases[-1]
    assert kpi.deltas_for_return(resolved, iso(T0 + 6 * D), brand_zone=TOKYO)
    assert not kpi.deltas_for_return(resolved, iso(T0 + 8 * D), brand_zone=TOKYO)
    assert kpi.deltas_for_return(resolved, iso(T0 + 8 * D), brand_zone=TOKYO, fcr_window_days=10)
    assert not kpi.deltas_for_return(cases[1], iso(T0 + 3 * H), brand_zone=TOKYO)  # not resolved: nothing to spoil
    late_reply = with_response(with_status(cases[0], "resolved", iso(T0 + 2 * H)), iso(T0 + 5 * H))
    assert not kpi.deltas_for_return(late_reply, iso(T0 + 4 * H), brand_zone=TOKYO)  # wrote before our answer


def test_durations_count_on_their_day_around_the_clock_and_in_business_hours():
    # Posted Tuesday 10:00 Tokyo; first response Wednesday 10:00; the jp team works 09-12 and 13-18.
    def to_jp(case: Case) -> Case:
        return with_assignee(case, "j1", iso(T0 + H), team="jp")
    _, aggregates = run(to_jp, respond(D), status("resolved", D + H))
    [row] = kpi.report(kpi.aggregate_rows(aggregates), "day", "2026-12-02", "2026-12-02", now=iso(T0 + 2 * D),
                       brand_zone=TOKYO)["rows"]
    assert row["first_response_seconds"]["mean"] == 86400
    assert row["first_response_seconds_business"]["mean"] == 8 * 3600  # 10-12, 13-18, then 09-10
    assert row["resolution_seconds_business"]["mean"] == 9 * 3600
    assert row["cases_resolved"] == 1 and row["cases_opened"] == 0 and row["backlog"] == 0


def test_sla_attainment_is_counted_once_per_clock_where_it_stops():
    _, aggregates = run(respond(2 * H), status("resolved", 3 * H), status("open", D), status("resolved", D + 10 * H),
                        policy=POLICY)
    row = team_row(aggregates, T0 + 30 * D)
    assert row["sla"]["first_response"] == {"met": 0, "breached": 1, "met_rate": 0.0}  # 2 h against 1 h, once
    # Resolved twice, each judged: 3 h, then 3 h + 10 h (the time it spent resolved does not count) against 24 h.
    assert row["sla"]["resolution"] == {"met": 2, "breached": 0, "met_rate": 1.0}
    assert row["sla_met_rate"] == round(2 / 3, 4) and row["cases_resolved"] == 2 and row["cases_reopened"] == 1


def test_backlog_moves_with_the_case_and_is_summed_from_before_the_period():
    def move(case: Case) -> Case:
        return with_assignee(case, None, iso(T0 + 2 * D), team="vip")
    _, aggregates = run(move, status("resolved", 4 * D))
    rows = kpi.aggregate_rows(aggregates)
    by_team = kpi.report(rows, "team", "2026-12-04", "2026-12-04", now=iso(T0 + 9 * D), brand_zone=TOKYO)["rows"]
    assert {r["key"]: r["backlog"] for r in by_team} == {"vip": 1}  # support's move happened before the period
    by_day = kpi.report(rows, "day", "2026-12-01", "2026-12-05", now=iso(T0 + 9 * D), brand_zone=TOKYO)["rows"]
    assert [r["backlog"] for r in by_day] == [1, 1, 1, 1, 0]
    by_agent = kpi.report(rows, "agent", "2026-12-01", "2026-12-05", now=iso(T0 + 9 * D), brand_zone=TOKYO)["rows"]
    assert [(r["key"], r["backlog"], r["cases_opened"]) for r in by_agent] == [("a1", 0, 1)]


def test_rows_carry_store_attributes_and_decimals_that_the_report_ignores_or_reads():
    from decimal import Decimal
    rows = [{"pk": "KPI#team#support", "sk": "2026-12-01", "day": "2026-12-01", "dimension": "team", "key": "support",
             "cases_opened": Decimal(3), "backlog": Decimal(2), "expires_at": Decimal(1_900_000_000), "version": 4}]
    [row] = kpi.report(rows, "team", "2026-12-01", "2026-12-01", now=iso(T0), brand_zone=TOKYO)["rows"]
    assert (row["cases_opened"], row["backlog"]) == (3, 2)


def test_deltas_do_not_depend_on_when_the_change_is_processed_and_a_removal_takes_nothing_back():
    cases, _ = run(respond(H), status("resolved", 2 * H))
    old, new = cases[-2], cases[-1]
    early = kpi.deltas_for_change(old, new, brand_zone=TOKYO, calendars=CALENDARS, now=iso(T0), policy=POLICY)
    late = kpi.deltas_for_change(old, new, brand_zone=TOKYO, calendars=CALENDARS, now=iso(T0 + 60 * D), policy=POLICY)
    assert early == late and early
    assert {d.token for d in early} == {f"change:{new.case_id}:{new.version}"}
    assert kpi.deltas_for_change(new, None, brand_zone=TOKYO, calendars=CALENDARS, now=iso(T0)) == []


def test_handle_time_sums_each_agents_gaps_shorter_than_the_idle_cut():
    activity = [
        ("a1", iso(T0), "opened"), ("a1", iso(T0 + timedelta(seconds=120)), "typing"),
        ("a1", iso(T0 + timedelta(seconds=200)), "replied"),
        ("a1", iso(T0 + timedelta(seconds=200 + 301)), "note"),     # back after more than 5 minutes: not counted
        ("a1", iso(T0 + timedelta(seconds=200 + 301 + 60)), "status_changed"),
        ("a2", iso(T0 + timedelta(seconds=150)), "opened"),          # one look: 0
    ]
    assert kpi.handle_seconds(activity) == {"a1": 260, "a2": 0}
    assert kpi.handle_seconds(activity, idle_cut_seconds=600) == {"a1": 561, "a2": 0}
    assert kpi.handle_seconds(list(reversed(activity))) == {"a1": 260, "a2": 0}  # order of the log does not matter
    assert kpi.handle_seconds([]) == {}
    with pytest.raises(ValueError):
        kpi.handle_seconds(activity, idle_cut_seconds=0)


def test_handle_time_is_counted_at_resolution_per_agent_and_per_case():
    activity = [("a1", iso(T0 + H), "opened"), ("a1", iso(T0 + H + timedelta(seconds=90)), "replied"),
                ("a2", iso(T0 + 2 * H - timedelta(seconds=30)), "note"), ("a2", iso(T0 + 2 * H), "status_changed"),
                ("a2", iso(T0 + 3 * H), "note")]  # after the resolution: not part of it
    _, aggregates = run(respond(H), status("resolved", 2 * H), activity=activity)
    rows = kpi.aggregate_rows(aggregates)
    agents = kpi.report(rows, "agent", "2026-12-01", "2026-12-01", now=iso(T0 + D), brand_zone=TOKYO)["rows"]
    assert {r["key"]: r["handle_seconds"]["mean"] for r in agents} == {"a1": 90, "a2": 30}
    case_wide = team_row(aggregates, T0 + D)["handle_seconds"]
    assert (case_wide["count"], case_wide["mean"]) == (1, 120)
    assert abs(case_wide["median"] - 120) <= 120 * kpi.PERCENTILE_RELATIVE_ERROR


def test_csat_and_qa_figures():
    case = with_status(a_case(), "resolved", iso(T0 + H))
    deltas = []
    for score in (5, 4, 2):
        deltas += kpi.csat_deltas(replace(case, case_id=f"c{score}"), event="answered", at=iso(T0 + 2 * H),
                                  brand_zone=TOKYO, score=score)
    deltas += kpi.csat_deltas(case, event="not_asked", at=iso(T0 + 2 * H), brand_zone=TOKYO)
    deltas += kpi.qa_deltas(case, review_id="r1", agent="a2", score_percent=87.5, replied_at=iso(T0), brand_zone=TOKYO)
    deltas += kpi.qa_deltas(case, review_id="r2", agent="a2", score_percent=100, replied_at=iso(T0), brand_zone=TOKYO)
    aggregates: kpi.Aggregates = {}
    kpi.apply_once(aggregates, set(), deltas)
    row = team_row(aggregates, T0 + D)
    assert row["csat"] == {"asked": 0, "not_asked": 1, "responses": 3, "average": 3.67, "satisfied_share": 0.6667}
    assert (row["qa_score"], row["qa_reviews"]) == (93.8, 2)
    agents = kpi.report(kpi.aggregate_rows(aggregates), "agent", "2026-12-01", "2026-12-01", now=iso(T0 + D),
                        brand_zone=TOKYO)["rows"]
    assert {r["key"]: (r["csat"]["responses"], r["qa_reviews"]) for r in agents} == {"a1": (3, 0), "a2": (0, 2)}
    with pytest.raises(ValueError):
        kpi.csat_deltas(case, event="answered", at=iso(T0), brand_zone=TOKYO, score=6)
    with pytest.raises(ValueError):
        kpi.csat_deltas(case, event="liked", at=iso(T0), brand_zone=TOKYO)


@pytest.mark.parametrize("params,message", [
    ({"from": "2026-12-01", "to": "2026-12-31", "group_by": "region"}, "group_by"),
    ({"to": "2026-12-31"}, "'from' is required"),
    ({"from": "2026-12-01", "to": "2026-02-30"}, "real day"),
    ({"from": "2026-12-31", "to": "2026-12-01"}, "before"),
    ({"from": "2025-01-01", "to": "2026-12-31"}, "at most 366 days"),
    ({"from": "2026-12-01", "to": "2026-12-31", "format": "xlsx"}, "format"),
])
def test_report_parameters_are_checked_with_messages_that_say_what_to_fix(params, message):
    with pytest.raises(BadRequest, match=message):
        kpi.report_query(params)


def test_report_parameters_default_to_days_in_json():
    query = kpi.report_query({"from": "2026-12-01", "to": "2026-12-31"})
    assert query == kpi.ReportQuery(group_by="day", from_day="2026-12-01", to_day="2026-12-31", format="json")
    with pytest.raises(ValueError):
        kpi.report([], "region", "2026-12-01", "2026-12-01", now=iso(T0), brand_zone=TOKYO)


def test_csv_has_one_line_per_row_with_flattened_figures_and_no_formulas():
    _, aggregates = run(respond(H), status("resolved", 2 * H))
    result = kpi.report(kpi.aggregate_rows(aggregates), "team", "2026-12-01", "2026-12-01", now=iso(T0 + 30 * D),
                        brand_zone=TOKYO)
    result["rows"].append({**result["rows"][0], "key": "=HYPERLINK(\"x\")"})
    lines = kpi.to_csv(result).splitlines()
    header = lines[0].split(",")
    assert header[:5] == ["key", "cases_opened", "cases_resolved", "cases_reopened", "backlog"]
    assert len(lines) == 3 and all(len(csv_row) == len(header) for csv_row in csv.reader(lines))
    first = dict(zip(header, lines[1].split(",")))
    assert first["key"] == "support" and first["first_response_seconds_mean"] == "3600.0"
    assert first["fcr_rate"] == "1.0" and first["csat_average"] == ""
    assert lines[2].startswith("\"'=HYPERLINK")

