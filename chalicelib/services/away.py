"""Away messages: an automatic acknowledgement outside the team's hours (or while it is busy),
within the platforms' rules, at most once per customer per period and once per case.

The assignment stage calls ``maybe_acknowledge`` after a case opens or a follow-up joins, and
again when SQS redelivers its message. Exactly once rests on three steps, each safe to repeat:

1. claim the customer's period (``claim_away_message``): atomic, so two posts at once make one
   message; re-entrant for the same case, so a redelivery after a crash right after the claim
   still finishes the job instead of finding the claim taken and leaving the customer unanswered;
2. store the reply under an id derived from the case (``away_reply_id``): a second attempt finds
   it (``put_reply`` answers False) and makes no second message;
3. queue it like an agent's reply; a stored reply still ``queued`` is queued again by a
   redelivery (the sender's claim makes a repeated queue message harmless).

The sender delivers it as any reply; ``Reply.automatic`` keeps it from stopping SLA clocks.
"""
from __future__ import annotations

from datetime import tzinfo
from typing import Any, Dict, List, Optional

from chalicelib.domain import hours
from chalicelib.domain.agent import Agent, valid_team_name
from chalicelib.domain.away import (
    AGENT_ID,
    BUSY_VARIABLES,
    LANGS,
    VARIABLES,
    AwaySettings,
    away_channel,
    away_reply_id,
    away_values,
    message_lang,
    render,
    typical_reply_seconds,
    validate_away,
)
from chalicelib.domain.case import Case, ReplyTarget
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.hours import Calendar
from chalicelib.domain.mention import Mention
from chalicelib.domain.reply import Reply
from chalicelib.observability import count, logger
from chalicelib.ports import Deps


def maybe_acknowledge(case: Case, mention: Mention, deps: Deps, now: str) -> Optional[Reply]:
    """Queue an away message for the customer when the team is closed (or busy) and the platform allows it.

    Returns the reply this call queued (or queued again after an interrupted attempt), else None.
    Raises when the outbound queue cannot be reached; the reply stays stored as ``queued`` and the
    next call for the case (a redelivery, a follow-up) queues it.
    """
    settings = deps.settings.get_away_settings(case.team)
    if settings is None or not settings.enabled:
        return None  # no settings: the team never chose to send anything automatic
    if not case.active or case.category == "noise":
        return None  # nothing to acknowledge (a rule may still have opened a case for noise)
    existing = deps.cases.get_reply(case.case_id, away_reply_id(case.case_id))
    if existing is not None:  # one per case: a follow-up gets none, a redelivery finishes the first
        return _queue_again(existing, deps)
    at = parse_iso(now)
    calendar = deps.settings.get_team_calendar(case.team)
    closed = calendar is not None and not hours.is_open(calendar, at)  # no calendar: always open
    samples: List[int] = []
    if closed or settings.when == "closed_or_busy":
        samples = deps.settings.recent_first_responses(case.team)
    typical = typical_reply_seconds(samples)
    busy = (not closed and settings.when == "closed_or_busy" and typical is not None
            and typical > settings.busy_threshold_minutes * 60)
    if not closed and not busy:
        return None
    target = ReplyTarget.of(mention)  # the post that brought us here, not a later one
    mode, why = away_channel(target, customer_posted_at=mention.created_at or now, now=now)
    if mode is None:
        if closed:  # the log says why a customer who wrote out of hours heard nothing
            deps.cases.add_event(case.case_id, {"event": "away_message_skipped", "reason": why,
                                                "mention_id": mention.id}, at=now)
        return None
    not_since = to_iso(at - settings.period)
    claimed = deps.cases.claim_away_message(case.customer_key, case_id=case.case_id,
                                            at=now, not_since=not_since)
    if not claimed:
        return None  # this customer had one within the period
    lang = message_lang(case.lang)
    values = away_values(lang, next_open=hours.next_opening(calendar, at) if closed and calendar else None,
                         time_zone=_zone_of(calendar), now=at, first_responses=samples, customer=case.customer)
    reply = Reply(reply_id=away_reply_id(case.case_id), case_id=case.case_id,
                  text=render(settings, lang, values, busy=busy), mode=mode, agent_id=AGENT_ID,
                  created_at=now, target=target, automatic=True)
    if not deps.cases.put_reply(reply):  # a concurrent attempt stored it first
        stored = deps.cases.get_reply(case.case_id, reply.reply_id)
        return _queue_again(stored, deps) if stored else None
    deps.cases.add_event(case.case_id, {"event": "away_message_queued", "reply_id": reply.reply_id,
                                        "mode": mode, "because": "closed" if closed else "busy", "lang": lang,
                                        "mention_id": mention.id}, at=now)
    _enqueue(reply, deps)
    count("AwayMessagesQueued")
    return reply


def _queue_again(reply: Reply, deps: Deps) -> Optional[Reply]:
    if reply.delivery_status != "queued":
        return None  # on its way or delivered already
    _enqueue(reply, deps)
    return reply


def _enqueue(reply: Reply, deps: Deps) -> None:
    # The same message an agent's reply puts on the outbound queue (services/reply.py).
    try:
        deps.outbound_queue.send({"case_id": reply.case_id, "reply_id": reply.reply_id})
    except Exception:
        # Stored and still "queued": the next call for this case (a redelivery, a follow-up) queues it,
        # and an agent can send it with POST /cases/{id}/replies/{reply_id}/retry.
        logger.error("away message stored but not queued", extra={"reply_id": reply.reply_id,
                                                                   "case_id": reply.case_id})
        raise


def _zone_of(calendar: Optional[Calendar]) -> Optional[tzinfo]:
    return hours.zone(calendar.time_zone) if calendar else None


# ---- supervisors: PUT/GET /admin/teams/{team}/away ------------------------------------

def away_view(team: str, deps: Deps) -> Dict[str, Any]:
    """A team's away settings as they apply (default templates where none was written), with a
    preview of each message as it would go out now to a customer whose name is unknown."""
    _check_team(team)
    stored = deps.settings.get_away_settings(team)
    settings = stored or AwaySettings(enabled=False)  # no settings: no away message
    calendar = deps.settings.get_team_calendar(team)
    now = parse_iso(deps.now())
    samples = deps.settings.recent_first_responses(team)
    view: Dict[str, Any] = {"team": team, "configured": stored is not None, **settings.to_dict()}
    view["templates"] = {lang: settings.template(lang) for lang in LANGS}
    view["busy_templates"] = {lang: settings.template(lang, busy=True) for lang in LANGS}
    view["custom"] = {"templates": sorted(settings.templates), "busy_templates": sorted(settings.busy_templates)}
    view["variables"] = {"templates": list(VARIABLES), "busy_templates": list(BUSY_VARIABLES)}
    next_open = hours.next_opening_after_close(calendar, now)
    preview: Dict[str, Any] = {}
    for lang in LANGS:
        values = away_values(lang, next_open=next_open, time_zone=_zone_of(calendar), now=now,
                             first_responses=samples, customer={})
        preview[lang] = {"closed": render(settings, lang, values)}
        if settings.when == "closed_or_busy":
            preview[lang]["busy"] = render(settings, lang, values, busy=True)
    view["preview"] = preview
    view["notes"] = _notes(settings, calendar, samples, team)
    return view


def save_away(agent: Agent, team: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """Replace a team's away settings (the route checks that ``agent`` is a supervisor)."""
    _check_team(team)
    settings = validate_away(body)
    deps.settings.put_away_settings(team, settings, author=agent.agent_id, at=deps.now())
    logger.info("away settings saved", extra={"team": team, "enabled": settings.enabled, "when": settings.when})
    return away_view(team, deps)


def _check_team(team: str) -> None:
    if not valid_team_name(team):
        raise BadRequest("the team name in the path must be 1 to 64 printable characters without '#'")




def _notes(settings: AwaySettings, calendar: Optional[Calendar], samples: List[int], team: str) -> List[str]:
    notes: List[str] = []
    if calendar is None:
        notes.append(f"team '{team}' has no calendar (PUT /admin/teams/{team}/hours), so it is always open: "
                     + ("away messages go out only while it is busy" if settings.when == "closed_or_busy"
                        else "no away message goes out"))
    if not samples:
        notes.append("no first responses recorded yet: {typical_reply} reads as its fallback")
    return notes
