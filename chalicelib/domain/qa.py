"""QA audits of replies: the rubric as supervisor data, a review's score, and the weekly sample. Pure.

Rubric. Criteria (tone, accuracy, personalisation, brand voice, resolution,
or whatever the supervisors write), each with a weight and a scale of 1 to 10
points. A review scores every criterion from 0 to its points, or null when it
does not apply (resolution on a reply that only asks a question); its score is
the weighted share of the points of the criteria that apply, 0-100 %.

Sample. Each week every agent's replies are drawn at a rate: the base rate,
more for agents in their first weeks, and more (all, by default) for replies
on cases the customer rated low. A reply is drawn when a number derived from
a hash of the seed, the week and the reply id falls under its rate, so the
queue is the same however often it is drawn and in whatever order the
replies come; a reply's draw never depends on the other replies, except that
an agent gets at least ``min_per_agent`` replies (their lowest-numbered ones)
and at most ``max_per_agent`` (low CSAT first).
"""
from __future__ import annotations

import difflib
import hashlib
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from chalicelib.domain.errors import BadRequest
from chalicelib.domain.limits import text_problem

MAX_CRITERIA = 20
MAX_LABEL = 80
MAX_DESCRIPTION = 500
MAX_WEIGHT = 100
MAX_POINTS = 10
DEFAULT_POINTS = 4
MAX_COMMENT = 2000
_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
_CRITERION_FIELDS = ("key", "label", "weight", "points", "description")
_RUBRIC_EXAMPLE = ('e.g. {"criteria": [{"key": "tone", "label": "Tone", "weight": 2}, '
                   '{"key": "accuracy", "label": "Accuracy", "weight": 3, "points": 4}]}')
_REVIEW_FIELDS = ("scores", "comment", "comments")
SAMPLE_REASONS = ("low_csat", "new_agent", "rate", "minimum")
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")


# ---- the rubric ----------------------------------------------------------------------

@dataclass(frozen=True)
class Criterion:
    key: str
    label: str
    weight: float
    points: int = DEFAULT_POINTS
    description: str = ""


@dataclass(frozen=True)
class Rubric:
    criteria: Tuple[Criterion, ...]

    @property
    def keys(self) -> Tuple[str, ...]:
        return tuple(c.key for c in self.criteria)

    def to_dict(self) -> Dict[str, Any]:
        """As the API shows and stores it; ``validate_rubric`` reads it back unchanged."""
        return {"criteria": [asdict(c) for c in self.criteria]}


def validate_rubric(body: Any) -> Rubric:
    """A supervisor's rubric (``PUT /admin/qa/rubric``), or a BadRequest saying what to fix."""
    if not isinstance(body, dict) or set(body) != {"criteria"}:
        raise BadRequest(f"a rubric is a JSON object with one field, 'criteria', {_RUBRIC_EXAMPLE}")
    entries = body["criteria"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_CRITERIA:
        raise BadRequest(f"field 'criteria' must be a list of 1 to {MAX_CRITERIA} criteria, {_RUBRIC_EXAMPLE}")
    criteria: List[Criterion] = []
    for index, entry in enumerate(entries):
        criterion = _criterion(entry, f"criteria[{index}]")
        if criterion.key in {c.key for c in criteria}:
            raise BadRequest(f"criteria[{index}]: key '{criterion.key}' is used twice; give each criterion its own key")
        criteria.append(criterion)
    return Rubric(tuple(criteria))


def _criterion(entry: Any, where: str) -> Criterion:
    if not isinstance(entry, dict):
        raise BadRequest(f'{where} must be an object such as {{"key": "tone", "label": "Tone", "weight": 2}}')
    unknown = [name for name in entry if name not in _CRITERION_FIELDS]
    if unknown:
        raise BadRequest(f"{where}: unknown field {_quote(unknown[0])}; a criterion has {', '.join(_CRITERION_FIELDS)}")
    key = entry.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise BadRequest(f"{where}.key must be 1 to 40 lowercase letters, digits or underscores starting with a "
                         "letter, e.g. 'brand_voice'")
    label = entry.get("label", "")
    problem = text_problem(label, max_length=MAX_LABEL)
    if problem or not label.strip():
        raise BadRequest(f"{where}.label {problem or 'must not be empty'}: the name reviewers see, e.g. 'Brand voice'")
    weight = entry.get("weight")
    if (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight)
            or not 0 < weight <= MAX_WEIGHT):
        raise BadRequest(f"{where}.weight must be a number above 0 and at most {MAX_WEIGHT}: how much this "
                         "criterion counts against the others")
    points = entry.get("points", DEFAULT_POINTS)
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= MAX_POINTS:
        raise BadRequest(f"{where}.points must be a whole number from 1 to {MAX_POINTS}: the top score "
                         "(1 makes it pass or fail)")
    description = entry.get("description", "")
    problem = text_problem(description, max_length=MAX_DESCRIPTION, multiline=True)
    if problem:
        raise BadRequest(f"{where}.description {problem}")
    return Criterion(key=key, label=label, weight=weight, points=points, description=description)


DEFAULT_RUBRIC = validate_rubric({"criteria": [
    {"key": "tone", "label": "Tone", "weight": 2, "description": "Warm, calm and respectful; matches the customer's mood."},
    {"key": "accuracy", "label": "Accuracy", "weight": 3, "description": "Facts, policies and next steps are right."},
    {"key": "personalisation", "label": "Personalisation", "weight": 1,
     "description": "Speaks to this customer and their situation, not a form letter."},
    {"key": "brand_voice", "label": "Brand voice", "weight": 2,
     "description": "Follows the brand's written guidelines (see the brand-voice findings)."},
    {"key": "resolution", "label": "Resolution", "weight": 2,
     "description": "Solves the problem or says exactly what happens next."},
]})


# ---- a review -----------------------------------------------------------------------

@dataclass(frozen=True)
class ReviewScore:
    percent: float                          # 0-100, one decimal
    scores: Dict[str, Optional[int]]       # criterion -> points given, None where it does not apply
    comment: str = ""
    comments: Dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def score_review(rubric: Rubric, body: Any) -> ReviewScore:
    """A reviewer's scores against the rubric, weighted to a percentage; or a BadRequest naming what to fix.

    ``body``: ``{"scores": {criterion: points or null}, "comment": "...",
    "comments": {criterion: "..."}}``; every criterion must be scored (null
    when it does not apply), at least one with points.
    """
    if not isinstance(body, dict):
        raise BadRequest('a review is a JSON object such as {"scores": {"tone": 4, "resolution": null}, '
                         '"comment": "..."}')
    unknown = [name for name in body if name not in _REVIEW_FIELDS]
    if unknown:
        raise BadRequest(f"unknown field {_quote(unknown[0])}; a review has {', '.join(_REVIEW_FIELDS)}")
    scores = body.get("scores")
    if not isinstance(scores, dict):
        raise BadRequest(f"field 'scores' is required: an object of criterion to points ({', '.join(rubric.keys)})")
    for name in scores:
        _known_criterion(rubric, name, "scores")
    missing = [key for key in rubric.keys if key not in scores]
    if missing:
        raise BadRequest(f"scores: '{missing[0]}' is missing; score every criterion (null when it does not apply)")
    given: Dict[str, Optional[int]] = {}
    for criterion in rubric.criteria:
        value = scores[criterion.key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= criterion.points):
            raise BadRequest(f"scores.{criterion.key} must be a whole number from 0 to {criterion.points}, "
                             "or null when it does not apply")
        given[criterion.key] = value
    applicable = [c for c in rubric.criteria if given[c.key] is not None]
    if not applicable:
        raise BadRequest("score at least one criterion: every one is null (not applicable)")
    weight = sum(c.weight for c in applicable)
    earned = sum(c.weight * (given[c.key] or 0) / c.points for c in applicable)
    comment = body.get("comment", "")
    problem = text_problem(comment, max_length=MAX_COMMENT, multiline=True)
    if problem:
        raise BadRequest(f"field 'comment' {problem}")
    comments = body.get("comments", {})
    if not isinstance(comments, dict):
        raise BadRequest("field 'comments' must be an object of criterion to comment")
    for name, text in comments.items():
        _known_criterion(rubric, name, "comments")
        problem = text_problem(text, max_length=MAX_COMMENT, multiline=True)
        if problem:
            raise BadRequest(f"comments.{name} {problem}")
    return ReviewScore(percent=round(100 * earned / weight, 1), scores=given, comment=comment,
                       comments={k: v for k, v in comments.items() if v})


def _known_criterion(rubric: Rubric, name: Any, where: str) -> None:
    if name in rubric.keys:
        return
    close = difflib.get_close_matches(str(name), rubric.keys, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise BadRequest(f"{where}: unknown criterion {_quote(str(name))}; {hint}the rubric has {', '.join(rubric.keys)}")


# ---- the weekly sample ---------------------------------------------------------------

@dataclass(frozen=True)
class SamplingPolicy:
    base_rate: float = 0.05
    new_agent_rate: float = 0.25
    new_agent_days: int = 30           # an agent is new for this many days after starting
    low_csat_rate: float = 1.0
    low_csat_max_score: int = 2        # CSAT of 1 or 2 is low
    min_per_agent: int = 2
    max_per_agent: int = 25

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


_SAMPLING_FIELDS = tuple(SamplingPolicy.__dataclass_fields__)


def validate_sampling_policy(body: Any) -> SamplingPolicy:
    """A supervisor's sampling settings (fields left out keep their defaults), or a BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest('sampling settings are a JSON object, e.g. {"base_rate": 0.05, "new_agent_rate": 0.25}')
    unknown = [name for name in body if name not in _SAMPLING_FIELDS]
    if unknown:
        raise BadRequest(f"unknown field {_quote(str(unknown[0]))}; sampling has {', '.join(_SAMPLING_FIELDS)}")
    defaults = SamplingPolicy()
    values: Dict[str, Any] = {}
    for name in ("base_rate", "new_agent_rate", "low_csat_rate"):
        value = body.get(name, getattr(defaults, name))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise BadRequest(f"field '{name}' must be a share from 0 to 1, e.g. 0.05 for 5 % of the replies")
        values[name] = float(value)
    for name, low, high in (("new_agent_days", 0, 365), ("low_csat_max_score", 0, 5), ("min_per_agent", 0, 100),
                            ("max_per_agent", 1, 500)):
        value = body.get(name, getattr(defaults, name))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadRequest(f"field '{name}' must be a whole number from {low} to {high}")
        values[name] = value
    if values["min_per_agent"] > values["max_per_agent"]:
        raise BadRequest(f"min_per_agent ({values['min_per_agent']}) is above max_per_agent "
                         f"({values['max_per_agent']})")
    return SamplingPolicy(**values)


@dataclass(frozen=True)
class ReplyForReview:
    reply_id: str
    agent_id: str
    case_id: str
    sent_at: str
    csat_score: Optional[int] = None   # the case's CSAT answer, if any


@dataclass(frozen=True)
class SampledReply:
    reply_id: str
    agent_id: str
    case_id: str
    reason: str    # low_csat, new_agent, rate or minimum
    draw: float    # the reply's number in [0, 1): drawn when under its rate


def week_of(day: date) -> str:
    """The ISO week a day belongs to, e.g. '2026-W49' (weeks start on Monday)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str) -> date:
    """The Monday of an ISO week 'YYYY-Www', or a BadRequest."""
    match = _WEEK.fullmatch(week) if isinstance(week, str) else None
    if match:
        try:
            return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            pass
    raise BadRequest(f"week {_quote(str(week))} is not an ISO week; write it as YYYY-Www, e.g. 2026-W49")


def draw(reply_id: str, week: str, seed: str = "") -> float:
    """The reply's number for the week, uniform in [0, 1) and the same every time."""
    digest = hashlib.sha256(f"{seed}|{week}|{reply_id}".encode("utf-8")).hexdigest()
    return int(digest[:13], 16) / 16 ** 13


def sample_week(replies: Iterable[ReplyForReview], *, week: str, policy: SamplingPolicy,
                agents_since: Mapping[str, date], seed: str = "") -> List[SampledReply]:
    """The replies to review for ``week`` (the caller passes that week's replies), by agent, in draw order.

    ``agents_since``: when each agent started (an agent missing from it is not
    new). ``seed``: a brand-wide secret or constant, so agents cannot predict
    which replies are drawn from the reply ids alone.
    """
    monday = week_start(week)
    by_agent: Dict[str, List[Tuple[int, float, str, ReplyForReview]]] = {}
    for reply in replies:
        number = draw(reply.reply_id, week, seed)
        rate, reason = _rate(reply, policy, agents_since, monday)
        # Lower rank first when an agent has too many: low CSAT, then new agent, then the rest.
        rank = SAMPLE_REASONS.index(reason) if number < rate else len(SAMPLE_REASONS)
        by_agent.setdefault(reply.agent_id, []).append((rank, number, reason, reply))
    sample: List[SampledReply] = []
    for agent in sorted(by_agent):
        ordered = sorted(by_agent[agent], key=lambda entry: (entry[0], entry[1], entry[3].reply_id))
        chosen = [(reason, number, reply) for rank, number, reason, reply in ordered if rank < len(SAMPLE_REASONS)]
        chosen = chosen[:policy.max_per_agent]
        if len(chosen) < policy.min_per_agent:
            extra = [(number, reply) for rank, number, _, reply in ordered if rank == len(SAMPLE_REASONS)]
            chosen += [("minimum", number, reply) for number, reply in extra[:policy.min_per_agent - len(chosen)]]
        sample += sorted((SampledReply(reply_id=reply.reply_id, agent_id=agent, case_id=reply.case_id, reason=reason,
                                       draw=number) for reason, number, reply in chosen),
                         key=lambda s: (s.draw, s.reply_id))
    return sample


def _rate(reply: ReplyForReview, policy: SamplingPolicy, agents_since: Mapping[str, date],
          monday: date) -> Tuple[float, str]:
    rates = [(policy.base_rate, "rate")]
    started = agents_since.get(reply.agent_id)
    if started is not None and (monday - started) < timedelta(days=policy.new_agent_days):
        rates.append((policy.new_agent_rate, "new_agent"))
    if reply.csat_score is not None and reply.csat_score <= policy.low_csat_max_score:
        rates.append((policy.low_csat_rate, "low_csat"))
    # The highest rate applies; on a tie the more specific reason names it.
    return max(rates, key=lambda pair: (pair[0], -SAMPLE_REASONS.index(pair[1])))


def _quote(text: str, length: int = 40) -> str:
    clipped = text if len(text) <= length else text[:length] + "…"
    return "'" + clipped.encode("ascii", "backslashreplace").decode("ascii") + "'"


def review_week(review: Mapping[str, Any]) -> str:
    """The week a review is filed under, checked as every QA store checks it before storing: the
    review names its reply and the week that reply was sent in."""
    if not isinstance(review.get("reply_id"), str) or not review["reply_id"]:
        raise ValueError("a review needs the 'reply_id' of the reply it reviews")
    week = review.get("week")
    if not isinstance(week, str) or not week:
        raise ValueError("a review needs the 'week' its reply was sent in (as note_sent_reply had it)")
    return week
