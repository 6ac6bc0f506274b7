"""QA audits of replies: the rubric and sampling settings, the weekly review queue, and reviews.

Every agent reply that reaches the platform is noted in the week it was sent
(``note_sent``, called by the sender; automatic replies are not an agent's
work and are left out). A supervisor's ``GET /qa/queue?week=`` draws that
week's sample (``domain.qa.sample_week``) over the whole pool, so the same
week gives the same sample however often it is drawn, and pages the sample
out with each reply's text, the customer's post it answered, the case's CSAT
score and its review. ``POST /qa/reviews`` scores a sent reply against the
rubric, once per reply, and adds the score to the KPI aggregates on the day
the reply was sent (``domain.kpi.qa_deltas``): the report's QA score per
agent and team.

What the queue reads, and why:

- the week's pool, every page: the sample of an agent depends on all their
  replies of the week (at least ``min_per_agent``, at most ``max_per_agent``);
- each case of the pool once, for its CSAT answer (low scores are drawn far
  more often) and to leave out replies of erased cases. A case whose survey
  has ended (answered, or not asked) cannot change its score any more, so
  this container remembers its score and does not read it again;
- who is a new agent: an agent has no start date, so an agent counts as new
  from the first week they sent a reply. The pools of the
  ``ceil(new_agent_days / 7)`` weeks before are read for their agents: one
  who sent nothing in any of them started in the earliest of those weeks in
  which they did send, or this week; one who sent in the oldest of them is
  not new. An agent back from a break longer than ``new_agent_days`` counts
  as new again: their first weeks back get the closer look too. Pools of
  weeks that have ended never change, so their agents are remembered per
  container.

Then per reply shown (``limit`` of them, and never more than fits an answer):
the reply, its customer post (one read of the mention record) and its review.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

from chalicelib.domain import kpi
from chalicelib.domain import qa as qa_rules
from chalicelib.domain.agent import Agent
from chalicelib.domain.case import Case
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import BadRequest, Conflict, Forbidden, InvalidCursor, NotFound, Unavailable
from chalicelib.domain.hours import zone
from chalicelib.domain.limits import id_problem, page_limit
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.qa import ReplyForReview, Rubric, SamplingPolicy
from chalicelib.domain.reply import Reply
from chalicelib.domain.retention import SECONDS_PER_DAY
from chalicelib.observability import logger
from chalicelib.ports import Deps, QaStore

# One page of the week's pool per read; a ReplyForReview is about 200 bytes stored.
POOL_PAGE = 500
QUEUE_DEFAULT_LIMIT = 20
QUEUE_MAX_LIMIT = 50
REVIEWS_DEFAULT_LIMIT = 50
REVIEWS_MAX_LIMIT = 100
# Lambda answers at most 6 MB; a page stops before its JSON (ASCII-escaped, as measured) passes this,
# whatever the limit asked for: one queue entry can hold a 10,000-character post and a long reply.
ANSWER_BUDGET_BYTES = 4_000_000
SEED_SECRET = "qa_sample_seed"   # the platform secret's key that seeds the draw (see ``_seed``)
_FINAL_CSAT = ("answered", "not_asked")   # a survey that can no longer change the case's score
_CSAT_CACHE = "qa_final_csat"
_AGENTS_CACHE = "qa_week_agents"
_CACHE_MAX = 50_000


def _qa(deps: Deps) -> QaStore:
    if deps.qa is None:
        raise Unavailable("QA audits are not set up in this deployment (no QA store)")
    return deps.qa


def require_supervisor(agent: Agent) -> None:
    if not agent.is_supervisor:
        raise Forbidden("only supervisors may see or change QA audits (rubric, sampling, queue, reviews)")


def brand_zone(deps: Deps) -> str:
    # Weeks and KPI days are the brand's, not UTC's: a reply at 08:00 Monday in Tokyo is Monday's work.
    return deps.config.brand_time_zone or "UTC"


def week_of_moment(moment: str, deps: Deps) -> str:
    return qa_rules.week_of(parse_iso(moment).astimezone(zone(brand_zone(deps))).date())


# ---- the sender's hook --------------------------------------------------------------

def note_sent(reply: Reply, sent_at: str, deps: Deps) -> None:
    """Put an agent's reply that reached the platform into its week's QA pool.

    Never raises: QA is bookkeeping beside a delivery that already happened, and
    a failure here must not turn a sent reply into a retried one (logged instead).
    """
    if reply.automatic or deps.qa is None:
        return
    try:
        deps.qa.note_sent_reply(week_of_moment(sent_at, deps), ReplyForReview(
            reply_id=reply.reply_id, agent_id=reply.agent_id, case_id=reply.case_id, sent_at=sent_at))
    except Exception as err:  # noqa: BLE001 - any failure: the send stands, the reply just misses the QA pool
        logger.warning("could not note a sent reply for QA", extra={"reply_id": reply.reply_id,
                                                                    "reason": str(err)[:300]})


# ---- settings (supervisors) ---------------------------------------------------------

def rubric(deps: Deps) -> Rubric:
    return deps.settings.get_qa_rubric() or qa_rules.DEFAULT_RUBRIC


def sampling(deps: Deps) -> SamplingPolicy:
    return deps.settings.get_qa_sampling() or SamplingPolicy()


def rubric_view(agent: Agent, deps: Deps) -> Dict[str, Any]:
    require_supervisor(agent)
    saved = deps.settings.get_qa_rubric()
    return {"rubric": (saved or qa_rules.DEFAULT_RUBRIC).to_dict(), "default": saved is None}


def save_rubric(agent: Agent, body: Any, deps: Deps) -> Tuple[Dict[str, Any], bool]:
    """A supervisor's rubric, validated whole; True when none was saved before (the default applied).
    Reviews already stored keep the scores and rubric they were made with."""
    require_supervisor(agent)
    new = qa_rules.validate_rubric(body)
    created = deps.settings.get_qa_rubric() is None
    deps.settings.put_qa_rubric(new, author=agent.agent_id, at=deps.now())
    return {"rubric": new.to_dict(), "default": False}, created


def sampling_view(agent: Agent, deps: Deps) -> Dict[str, Any]:
    require_supervisor(agent)
    saved = deps.settings.get_qa_sampling()
    return {"sampling": (saved or SamplingPolicy()).to_dict(), "default": saved is None}


def save_sampling(agent: Agent, body: Any, deps: Deps) -> Tuple[Dict[str, Any], bool]:
    """Sampling settings (fields left out take the defaults, not the previous values)."""
    require_supervisor(agent)
    new = qa_rules.validate_sampling_policy(body)
    created = deps.settings.get_qa_sampling() is None
    deps.settings.put_qa_sampling(new, author=agent.agent_id, at=deps.now())
    return {"sampling": new.to_dict(), "default": False}, created


# ---- the weekly queue -----------------------------------------------------------------

def queue(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    """``GET /qa/queue?week=YYYY-Www[&agent=][&limit=][&cursor=]``: the week's sample, a page at a time."""
    require_supervisor(agent)
    store = _qa(deps)
    week = _week(params)
    only_agent = params.get("agent") or None
    limit = _limit(params, QUEUE_DEFAULT_LIMIT, QUEUE_MAX_LIMIT)
    after = _cursor(params, week, only_agent)
    policy = sampling(deps)
    pool = _with_csat(_pool(store, week), deps)
    sample = qa_rules.sample_week(pool, week=week, policy=policy, agents_since=_agents_since(week, pool, policy, deps),
                                  seed=_seed(deps))
    by_id = {reply.reply_id: reply for reply in pool}
    remaining = sorted((s for s in sample if (only_agent is None or s.agent_id == only_agent)
                        and (after is None or _position(s) > after)), key=_position)
    items: List[Dict[str, Any]] = []
    used = 0
    shown_last: Optional[qa_rules.SampledReply] = None
    for sampled in remaining[:limit]:
        entry = _entry(sampled, by_id[sampled.reply_id], deps)
        if entry is None:
            shown_last = sampled   # erased since it was noted: nothing left to review
            continue
        size = _size(entry)
        if items and used + size > ANSWER_BUDGET_BYTES:
            break
        items.append(entry)
        used += size
        shown_last = sampled
    next_cursor = None
    if shown_last is not None and _position(shown_last) < _position(remaining[-1]):
        next_cursor = encode_cursor({"week": week, "agent": only_agent, "after": list(_position(shown_last))})
    return {"week": week, "sampled": len(sample), "pool": len(pool), "sampling": policy.to_dict(),
            "rubric": rubric(deps).to_dict(), "items": items, "next_cursor": next_cursor}


def _pool(store: QaStore, week: str) -> List[ReplyForReview]:
    replies: List[ReplyForReview] = []
    position: Optional[str] = None
    while True:
        page, position = store.sent_replies(week, limit=POOL_PAGE, after=position)
        replies += page
        if position is None or not page:
            return replies


def _with_csat(pool: List[ReplyForReview], deps: Deps) -> List[ReplyForReview]:
    """Each reply with its case's CSAT score; replies of cases that are gone (erased) left out."""
    remembered: Dict[str, Optional[int]] = deps.caches.setdefault(_CSAT_CACHE, {})
    scores: Dict[str, Optional[int]] = {}
    gone: Set[str] = set()
    for case_id in sorted({reply.case_id for reply in pool}):
        if case_id in remembered:
            scores[case_id] = remembered[case_id]
            continue
        case = deps.cases.get(case_id)
        if case is None:
            gone.add(case_id)
            continue
        score = case.csat_score
        scores[case_id] = score
        if case.csat_status in _FINAL_CSAT:
            if len(remembered) >= _CACHE_MAX:
                remembered.clear()   # a bound on a warm container's memory; it only costs re-reads
            remembered[case_id] = score
    return [replace(reply, csat_score=scores[reply.case_id]) for reply in pool if reply.case_id not in gone]


def _agents_since(week: str, pool: List[ReplyForReview], policy: SamplingPolicy, deps: Deps) -> Dict[str, date]:
    """When each new agent of the pool started (see the module docstring); agents who are not new are left out."""
    weeks_back = math.ceil(policy.new_agent_days / 7)
    if weeks_back == 0:
        return {}
    monday = qa_rules.week_start(week)
    since = {reply.agent_id: monday for reply in pool}
    for back in range(1, weeks_back + 1):
        earlier = monday - timedelta(weeks=back)
        for agent_id in _week_agents(qa_rules.week_of(earlier), deps) & set(since):
            since[agent_id] = earlier
    oldest = monday - timedelta(weeks=weeks_back)
    return {agent_id: started for agent_id, started in since.items() if started > oldest}


def _week_agents(week: str, deps: Deps) -> FrozenSet[str]:
    remembered: Dict[str, FrozenSet[str]] = deps.caches.setdefault(_AGENTS_CACHE, {})
    if week in remembered:
        return remembered[week]
    agents = frozenset(reply.agent_id for reply in _pool(_qa(deps), week))
    # Only a week that has ended is final: replies are noted in the week they are sent, i.e. now.
    if week < week_of_moment(deps.now(), deps):
        remembered[week] = agents
    return agents


def _seed(deps: Deps) -> str:
    """The draw's seed: the platform secret's ``qa_sample_seed``. Reply ids can be steered (an idempotency
    key names its reply), so with a known seed an agent could pick ids that are never drawn; without the
    key, one derived from the stage (anyone who knows the stage can compute the draw)."""
    try:
        secret = str(deps.secrets().get(SEED_SECRET) or "")
    except Exception as err:  # noqa: BLE001 - a fallback seed would silently change the week's sample
        logger.error("cannot read the QA sampling seed", extra={"reason": str(err)[:300]})
        raise Unavailable("the QA sample cannot be drawn right now (its seed could not be read); try again shortly"
                          ) from None
    return secret or f"socialcare-{deps.config.stage}-qa"


def _entry(sampled: qa_rules.SampledReply, pooled: ReplyForReview, deps: Deps) -> Optional[Dict[str, Any]]:
    reply = deps.cases.get_reply(sampled.case_id, sampled.reply_id)
    if reply is None:
        return None
    review = _qa(deps).get_review(sampled.reply_id)
    return {
        "reply_id": reply.reply_id, "case_id": reply.case_id, "agent_id": reply.agent_id, "reason": sampled.reason,
        "sent_at": reply.sent_at or pooled.sent_at, "platform": reply.target.platform, "mode": reply.mode,
        "text": reply.text, "customer_post": _customer_post(reply, deps), "csat_score": pooled.csat_score,
        "review": _review_summary(review) if review else None,
    }


def _customer_post(reply: Reply, deps: Deps) -> Optional[Dict[str, Any]]:
    """The post the reply answered: its target when the reply was written (the customer's latest post then)."""
    stored = deps.mentions.stored(f"{reply.target.platform}:{reply.target.platform_id}")
    if stored is None:
        return None   # the mention record expired or was erased
    post = stored.mention
    given = post.get("author")
    author: Dict[str, Any] = given if isinstance(given, dict) else {}
    return {"text": post.get("text"), "created_at": post.get("created_at"), "kind": post.get("kind"),
            "author": {"handle": author.get("handle"), "name": author.get("name")},
            "permalink": post.get("permalink") or None, "lang": post.get("lang") or None}


def _review_summary(review: Mapping[str, Any]) -> Dict[str, Any]:
    # The full comments are at GET /qa/reviews; the queue says only whether and how it was scored.
    return {name: review.get(name) for name in ("review_id", "percent", "reviewer", "reviewed_at")}


# ---- reviews --------------------------------------------------------------------------

def review(agent: Agent, body: Any, deps: Deps) -> Dict[str, Any]:
    """``POST /qa/reviews``: a supervisor scores one sent reply against the rubric, once.

    Stored first, then added to the KPI aggregates under the review's token. A second
    review of the same reply is a 409; it also applies the stored review's deltas again
    (idempotent by token), so a review whose KPI update failed earlier is counted then.
    """
    require_supervisor(agent)
    store = _qa(deps)
    if not isinstance(body, dict):
        raise BadRequest('a review is a JSON object such as {"reply_id": "r_…", "case_id": "c_…", '
                         '"scores": {"tone": 4, "resolution": null}, "comment": "…"}')
    ids: Dict[str, str] = {}
    for name in ("reply_id", "case_id"):
        problem = id_problem(body.get(name))
        if problem:
            raise BadRequest(f"field '{name}' {problem}: the reply to review, as GET /qa/queue lists it")
        ids[name] = str(body[name])
    the_rubric = rubric(deps)
    score = qa_rules.score_review(the_rubric, {k: v for k, v in body.items() if k not in ids})
    reply = deps.cases.get_reply(ids["case_id"], ids["reply_id"])
    case = deps.cases.get(ids["case_id"])
    if reply is None or case is None:
        raise NotFound(f"reply '{ids['reply_id']}' does not exist on case '{ids['case_id']}'")
    if reply.delivery_status != "sent" or not reply.sent_at:
        raise Conflict(f"reply '{reply.reply_id}' is {reply.delivery_status}; only a sent reply can be reviewed")
    if reply.automatic:
        raise Conflict(f"reply '{reply.reply_id}' was sent automatically, not by an agent; there is nothing to review")
    now = deps.now()
    record = {
        "review_id": review_id(reply.reply_id), "reply_id": reply.reply_id, "case_id": reply.case_id,
        "agent_id": reply.agent_id, "week": week_of_moment(reply.sent_at, deps), "sent_at": reply.sent_at,
        "reviewer": agent.agent_id, "reviewed_at": now, **score.to_dict(),
        # The rubric as it was: a later edit must not change what this score meant.
        "rubric": [{"key": c.key, "weight": c.weight, "points": c.points} for c in the_rubric.criteria],
    }
    if not store.put_review(record):
        earlier = store.get_review(reply.reply_id)
        if earlier is not None:
            _count(case, earlier, deps)
        by = f" by {earlier.get('reviewer')} at {earlier.get('reviewed_at')}" if earlier else ""
        raise Conflict(f"reply '{reply.reply_id}' was reviewed already{by}; a reply is reviewed once "
                       "(its score is in the KPI report)")
    _count(case, record, deps)
    return record


def review_id(reply_id: str) -> str:
    # One review per reply: the reply names it, and with it the KPI token ``qa:<review id>``.
    return "qa_" + reply_id


def _count(case: Case, record: Mapping[str, Any], deps: Deps) -> None:
    if deps.kpis is None:
        logger.warning("no KPI store: the QA score is not counted", extra={"review_id": record["review_id"]})
        return
    deltas = kpi.qa_deltas(case, review_id=str(record["review_id"]), agent=str(record["agent_id"]),
                           score_percent=float(record["percent"]), replied_at=str(record["sent_at"]),
                           brand_zone=brand_zone(deps))
    # A repeated POST may re-apply it as long as the reply exists, which is at most the case's retention.
    try:
        deps.kpis.apply_deltas(f"qa:{record['review_id']}", deltas,
                               keep_marker_seconds=deps.config.retention_cases_days * SECONDS_PER_DAY)
    except Exception as err:  # noqa: BLE001 - any store failure: the review is saved, the client must retry
        logger.error("QA review saved but not counted", extra={"review_id": record["review_id"],
                                                                "reason": str(err)[:300]})
        raise Unavailable(f"the review of reply '{record['reply_id']}' is saved, but its score could not be added "
                          "to the KPI report yet; send the same request again (it answers 409 once counted)"
                          ) from None


def reviews(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    """``GET /qa/reviews?week=YYYY-Www[&agent=][&limit=][&cursor=]``: the reviews of replies sent that week."""
    require_supervisor(agent)
    week = _week(params)
    only_agent = params.get("agent") or None
    limit = _limit(params, REVIEWS_DEFAULT_LIMIT, REVIEWS_MAX_LIMIT)
    after = _cursor(params, week, only_agent)
    found = sorted((r for r in _qa(deps).reviews_of_week(week)
                    if only_agent is None or r.get("agent_id") == only_agent), key=_review_position)
    remaining = [r for r in found if after is None or _review_position(r) > after]
    items: List[Dict[str, Any]] = []
    used = 0
    for record in remaining[:limit]:
        size = _size(record)
        if items and used + size > ANSWER_BUDGET_BYTES:
            break
        items.append(record)
        used += size
    more = len(items) < len(remaining)
    next_cursor = (encode_cursor({"week": week, "agent": only_agent, "after": list(_review_position(items[-1]))})
                   if more else None)
    return {"week": week, "reviews": items, "next_cursor": next_cursor}


# ---- input -----------------------------------------------------------------------------

def _week(params: Mapping[str, str]) -> str:
    week = params.get("week")
    if not week:
        raise BadRequest("query 'week' is required: an ISO week such as 2026-W49")
    qa_rules.week_start(week)
    return week


def _limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    return page_limit(params.get("limit", str(default)), maximum)


def _cursor(params: Mapping[str, str], week: str, only_agent: Optional[str]) -> Optional[Tuple[str, ...]]:
    """Where the previous page stopped: a position in the listing's order, so a reply added to the week
    meanwhile neither repeats nor shifts what follows."""
    if not params.get("cursor"):
        return None
    state = decode_cursor(params["cursor"])
    after = state.get("after")
    if state.get("week") != week or state.get("agent") != only_agent:
        raise InvalidCursor("query 'cursor' belongs to another listing; start again without it")
    if not isinstance(after, list) or len(after) != 3 or not all(isinstance(part, str) for part in after):
        raise InvalidCursor("query 'cursor' is not one this API issued; start again without it")
    return tuple(after)


def _position(sampled: qa_rules.SampledReply) -> Tuple[str, ...]:
    # sample_week's own order (agent, then draw); the draw as fixed-width text sorts as the number does.
    return (sampled.agent_id, f"{sampled.draw:.17f}", sampled.reply_id)


def _review_position(record: Mapping[str, Any]) -> Tuple[str, ...]:
    return (str(record.get("agent_id")), str(record.get("sent_at")), str(record.get("reply_id")))


def _size(document: Any) -> int:
    return len(json.dumps(document, default=str))
