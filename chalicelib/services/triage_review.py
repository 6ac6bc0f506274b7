"""Reviewing what triage left without a case (issue 14): the list, promote, confirm, the daily digest.

- ``list_no_case``: ``GET /mentions?case=false``: the mentions triage decided need no case and nobody
  has reviewed yet, newest first, one UTC day at a time (``day=``) or walking back from today over the
  retention period; or, for one day, most negative first (``order=negative``); filterable by language,
  platform (the channel), sentiment and category; with the decision and its ``why``. Agents and
  supervisors (case workers) may read it: finding the complaint nobody routed is everyday work, and
  an agent who promotes one works it.
- ``promote``: opens a case through the normal path (the triaged queue; routed and assigned as
  usual), with the reviewer's overrides, tagged ``promoted`` and marked in ``why``; the mention leaves
  the list; a Correction ``case`` False -> True (and one per overridden field) is kept as a label.
- ``confirm``: the mention needed no case; it leaves the list; a Correction ``case`` False -> False.
- ``digest``: one day's negative no-case mentions counted by language, platform (the channel) and
  category with the most negative first, and the channels with at least ``TRIAGE_DIGEST_THRESHOLD``
  (config ``triage_digest_threshold``) of them; ``run_daily`` (the ``triage_daily`` schedule, app.py)
  puts it in every supervisor's feed (and the topic) once per day when a channel is over the threshold,
  naming those channels (the notification's id is the day's), and retrains once a week.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any, Dict, List, Mapping, Optional

from chalicelib.domain.agent import Agent
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import BadRequest, Conflict, NotFound
from chalicelib.domain.limits import page_limit
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.observability import count, logger
from chalicelib.ports import Deps, StoredMention

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_REASON = 500
DIGEST_TOP = 10
FILTERS = ("lang", "platform", "sentiment", "category")
CATEGORIES = ("complaint", "question", "product_feedback", "sales_lead", "praise", "industry_discussion", "noise")
PRIORITIES = ("urgent", "high", "normal", "low")
SENTIMENTS = ("negative", "neutral", "positive")
MAX_DAYS_BACK = 400        # the walk back never goes further than this, whatever the retention says
MAX_DAYS_PER_PAGE = 31     # days one request reads (one Query each) before it answers with what it found


def _require_store(deps: Deps) -> Any:
    if deps.review is None:
        raise NotFound("the no-case review list is not kept in this deployment")
    return deps.review


def _day(raw: Any, name: str = "day") -> str:
    if not isinstance(raw, str) or len(raw) != 10:
        raise BadRequest(f"query '{name}' must be a day, YYYY-MM-DD")
    try:
        parse_iso(f"{raw}T00:00:00Z")
    except ValueError:
        raise BadRequest(f"query '{name}' must be a day, YYYY-MM-DD") from None
    return raw


def _is_day(raw: str) -> bool:
    try:
        return _day(raw) == raw
    except BadRequest:
        return False


def _shift(day: str, days: int) -> str:
    return (parse_iso(f"{day}T00:00:00Z") + timedelta(days=days)).date().isoformat()


# ---- the list --------------------------------------------------------------------------------------

def mention_view(stored: StoredMention) -> Dict[str, Any]:
    mention, triage = stored.mention or {}, stored.triage or {}
    author = mention.get("author") or {}
    return {
        "mention_id": stored.mention_id, "platform": mention.get("platform") or stored.mention_id.split(":", 1)[0],
        "kind": mention.get("kind"), "lang": triage.get("lang") or mention.get("lang"),
        "text": mention.get("text", ""), "created_at": mention.get("created_at"), "url": mention.get("url"),
        "author": {k: author.get(k) for k in ("id", "handle", "name", "verified", "followers") if k in author},
        "triage": {k: triage.get(k) for k in ("sentiment", "sentiment_score", "category", "tags", "priority",
                                               "case", "case_reason", "why")},
    }


def list_no_case(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    from chalicelib.services.inbox import require_case_worker

    require_case_worker(agent)
    store = _require_store(deps)
    if params.get("case") != "false":
        raise BadRequest("query 'case' must be false: this lists mentions triage left without a case "
                         "(cases are GET /cases)")
    limit = page_limit(params["limit"], MAX_LIMIT) if "limit" in params else DEFAULT_LIMIT
    filters = {}
    for name, allowed in (("lang", None), ("platform", None), ("sentiment", SENTIMENTS), ("category", CATEGORIES)):
        value = params.get(name)
        if value is None:
            continue
        if allowed is not None and value not in allowed:
            raise BadRequest(f"query '{name}' must be one of {', '.join(allowed)}")
        if allowed is None and not 1 <= len(value) <= 32:
            raise BadRequest(f"query '{name}' must be 1 to 32 characters")
        filters[name] = value
    order = params.get("order", "newest")
    if order not in ("newest", "negative"):
        raise BadRequest("query 'order' must be newest or negative (most negative first, for one day)")
    if order == "negative":
        if "day" not in params:
            raise BadRequest("order=negative lists one day: add query 'day' (YYYY-MM-DD)")
        return _most_negative(_day(params["day"]), filters, limit, params.get("cursor"), deps)
    today = deps.now()[:10]
    if "day" in params:
        first = last = _day(params["day"])
    else:
        first = today
        last = _shift(today, -min(MAX_DAYS_BACK, int(deps.config.retention_mentions_days or 30)))
    day, position = first, None
    if params.get("cursor"):
        state = decode_cursor(params["cursor"])
        from chalicelib.domain.errors import InvalidCursor

        if (set(state) - {"day", "pos"} or not isinstance(state.get("day"), str) or not _is_day(state["day"])
                or not last <= state["day"] <= first):
            raise InvalidCursor("query 'cursor' is not one this list issued (with these filters); start again without it")
        day, position = state["day"], state.get("pos")
    found: List[Dict[str, Any]] = []
    days_read = 0
    while True:
        page, position = store.no_case_page(day, limit=limit - len(found), after=position, filters=filters)
        found.extend(mention_view(s) for s in page)
        if len(found) >= limit:
            break
        if position is None:
            days_read += 1
            if day <= last or days_read >= MAX_DAYS_PER_PAGE:  # a quiet month: the rest on the next page
                break
            day = _shift(day, -1)
    next_cursor = None
    if position is not None:
        next_cursor = encode_cursor({"day": day, "pos": position})
    elif day > last:
        next_cursor = encode_cursor({"day": _shift(day, -1)})
    return {"mentions": found, "next_cursor": next_cursor}


def _most_negative(day: str, filters: Mapping[str, str], limit: int, cursor: Optional[str],
                   deps: Deps) -> Dict[str, Any]:
    """One day's list, most negative first: the day's small index entries ranked, the page's mentions by key."""
    from chalicelib.domain.errors import InvalidCursor

    rows = [r for r in _require_store(deps).no_case_summaries(day)
            if all(r.get(name) == value for name, value in filters.items())]
    rows.sort(key=lambda r: (r["score"], r["at"], r["mention_id"]))
    start = 0
    if cursor:
        state = decode_cursor(cursor)
        if set(state) != {"day", "n"} or state["day"] != day or not isinstance(state["n"], int) or state["n"] < 0:
            raise InvalidCursor("query 'cursor' is not one this list issued (with these filters); start again without it")
        start = state["n"]
    page = rows[start:start + limit]
    found = [mention_view(s) for s in (deps.mentions.stored(r["mention_id"]) for r in page) if s is not None]
    more = start + len(page) < len(rows)
    return {"mentions": found, "next_cursor": encode_cursor({"day": day, "n": start + len(page)}) if more else None}


# ---- promote and confirm ---------------------------------------------------------------------------

def _unreviewed(mention_id: str, deps: Deps) -> StoredMention:
    stored = deps.mentions.stored(mention_id)
    if stored is None:
        raise NotFound(f"no mention {mention_id} (it may have expired)")
    if stored.case_id or stored.state != "no_case":
        raise Conflict(f"mention {mention_id} is already part of a case ({stored.case_id or stored.state}); "
                       "see GET /cases")
    return stored


def _record(deps: Deps, stored: StoredMention, field: str, before: Any, after: Any, agent: Agent, now: str,
            case_id: Optional[str] = None) -> None:
    from chalicelib.domain.feedback import Correction

    if deps.feedback is None:
        return
    mention, triage = stored.mention or {}, stored.triage or {}
    deps.feedback.record_correction(Correction(
        mention_id=stored.mention_id, field=field, before=before, after=after, agent_id=agent.agent_id, at=now,
        case_id=case_id, text=str(mention.get("text") or ""), lang=str(triage.get("lang") or mention.get("lang") or ""),
        platform=str(mention.get("platform") or "")))


def _overrides(body: Any) -> Dict[str, Any]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object: {\"reason\"?, \"category\"?, \"priority\"?, \"sentiment\"?}")
    unknown = sorted(set(body) - {"reason", "category", "priority", "sentiment"})
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; allowed: reason, category, priority, sentiment")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise BadRequest(f"'reason' must be text of at most {MAX_REASON} characters")
    out: Dict[str, Any] = {"reason": reason.strip()}
    for name, allowed in (("category", CATEGORIES), ("priority", PRIORITIES), ("sentiment", SENTIMENTS)):
        if name in body:
            if body[name] not in allowed:
                raise BadRequest(f"'{name}' must be one of {', '.join(allowed)}")
            out[name] = body[name]
    return out


def promote(agent: Agent, mention_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    from chalicelib.domain.case import case_id_for
    from chalicelib.services.inbox import require_case_worker

    require_case_worker(agent)
    store = _require_store(deps)
    overrides = _overrides(body)
    stored = _unreviewed(mention_id, deps)
    now = deps.now()
    if not store.settle_review(mention_id, outcome="promoted", by=agent.agent_id, at=now):
        raise Conflict(f"mention {mention_id} is not on the review list any more (promoted or confirmed already)")
    triage = dict(stored.triage or {})
    before = {name: triage.get(name) for name in ("category", "priority", "sentiment")}
    note = f"promoted from review by {agent.agent_id}" + (f": {overrides['reason']}" if overrides["reason"] else "")
    triage.update({name: overrides[name] for name in ("category", "priority", "sentiment") if name in overrides})
    triage.update(case=True, case_reason=note, received_at=now, promoted_by=agent.agent_id,
                  tags=list(dict.fromkeys(list(triage.get("tags") or []) + ["promoted"])),
                  why=list(triage.get("why") or []) + [note])
    try:
        deps.triaged_queue.send({"mention": stored.mention, "triage": triage})
    except Exception:
        # Nothing was opened: back on the list, so that someone can try again.
        deps.mentions.update(mention_id, state="no_case", review_at=now)
        raise
    deps.mentions.update(mention_id, state="triaged", triage=triage)
    case_id = case_id_for(mention_id)
    _record(deps, stored, "case", False, True, agent, now, case_id)
    for name in ("category", "priority", "sentiment"):
        if name in overrides and overrides[name] != before[name]:
            _record(deps, stored, name, before[name], overrides[name], agent, now, case_id)
    count("MentionsPromoted")
    active = None
    customer_key = _customer_key(stored)
    if customer_key:
        active = deps.cases.active_case_for_customer(customer_key)
    return {"mention_id": mention_id, "status": "queued",
            "case_id": active or case_id, "joins_active_case": bool(active),
            "triage": {k: triage.get(k) for k in ("category", "priority", "sentiment", "tags", "case_reason")}}


def _customer_key(stored: StoredMention) -> Optional[str]:
    mention = stored.mention or {}
    author = mention.get("author") or {}
    if mention.get("platform") and author.get("id"):
        return f"{mention['platform']}:{author['id']}"
    return None


def confirm(agent: Agent, mention_id: str, deps: Deps) -> Dict[str, Any]:
    from chalicelib.services.inbox import require_case_worker

    require_case_worker(agent)
    store = _require_store(deps)
    stored = _unreviewed(mention_id, deps)
    now = deps.now()
    if not store.settle_review(mention_id, outcome="confirmed", by=agent.agent_id, at=now):
        raise Conflict(f"mention {mention_id} is not on the review list any more (promoted or confirmed already)")
    _record(deps, stored, "case", False, False, agent, now)
    return {"mention_id": mention_id, "confirmed": True, "confirmed_by": agent.agent_id, "confirmed_at": now}


# ---- the daily digest ------------------------------------------------------------------------------

def digest(day: str, deps: Deps) -> Dict[str, Any]:
    store = _require_store(deps)
    rows = store.no_case_summaries(day)
    negative = [r for r in rows if r["sentiment"] == "negative"]
    top = sorted(negative, key=lambda r: (r["score"], r["at"]))[:DIGEST_TOP]
    by_platform = dict(Counter(r["platform"] or "unknown" for r in negative).most_common())
    threshold = int(deps.config.triage_digest_threshold)
    shown = []
    for row in top:
        stored = deps.mentions.stored(row["mention_id"])
        shown.append({**row, "text": ((stored.mention or {}).get("text", "") if stored else "")[:280]})
    return {"day": day, "no_case": len(rows), "negative": len(negative),
            "by_lang": dict(Counter(r["lang"] or "unknown" for r in negative).most_common()),
            "by_platform": by_platform,
            "by_category": dict(Counter(r["category"] or "unknown" for r in negative).most_common()),
            "top": shown, "threshold": threshold,
            "over_threshold": {k: v for k, v in by_platform.items() if v >= threshold}}


def digest_report(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    from chalicelib.services.inbox import require_supervisor

    require_supervisor(agent)
    day = _day(params["day"]) if "day" in params else _shift(deps.now()[:10], -1)
    return digest(day, deps)


def notify_digest(day: str, deps: Deps) -> Dict[str, Any]:
    """The day's digest to every supervisor's feed (and the topic), once: the notification's id is the day's."""
    from chalicelib.domain.notification import new_notification

    report = digest(day, deps)
    surging = report["over_threshold"]
    if not surging:
        return {"day": day, "negative": report["negative"], "channels": {}, "notified": []}
    parts = ", ".join(f"{k} {v}" for k, v in list(surging.items())[:10])
    detail = (f"{report['negative']} negative mention(s) on {day} were left without a case; at or over the "
              f"threshold of {report['threshold']} a channel: {parts}. "
              f"Review them: GET /mentions?case=false&sentiment=negative&day={day}")
    notification = new_notification("", "", "triage_digest", detail, key=f"triage-digest|{day}", at=deps.now(),
                                    priority="high" if max(surging.values()) >= 10 * report["threshold"]
                                    else "normal")
    recipients = [s.agent_id for s in deps.settings.supervisors()]
    added = [r for r in recipients
             if deps.notifications is not None and deps.notifications.add_notification(r, notification)]
    if deps.notifier is not None and (added or not recipients):
        try:
            deps.notifier.publish(notification, recipients)
        except Exception as err:  # noqa: BLE001 - the feeds hold it; the topic is best effort
            count("NotificationsNotPublished")
            logger.error("triage digest not published to the topic", extra={"day": day, "error": str(err)[:300]})
    return {"day": day, "negative": report["negative"], "channels": surging, "notified": added}


def run_daily(deps: Deps) -> Dict[str, Any]:
    """The ``triage_daily`` schedule: yesterday's digest (repeatable: a second run adds nothing), and the
    weekly retraining, which the first run of each ISO week does (later runs that week find its version)."""
    from chalicelib.services import triage_models

    today = deps.now()[:10]
    return {"digest": notify_digest(_shift(today, -1), deps), "retrain": triage_models.run_weekly(deps)}
