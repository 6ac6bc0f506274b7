"""CSAT: each resolved case's customer is asked once how it went, over the conversation they are in,
and their answer is stored on the case. The rules (when, over which channel, what counts as an
answer) are ``domain/csat.py``; this module runs them on the stores.

Asking, without a Scan. ``sla.refresh`` gives a resolved case whose survey is still undecided its
survey moment (resolution + ``delay_minutes``, ``survey_moment``) as its next look (``sla_next_at``),
so the once-a-minute tick finds it through the index it already reads. When the moment has come
the tick calls ``survey_case`` and saves what it returns in its own write, with the case's marks:
``csat_status`` (``asked`` or ``not_asked``) ends the looks. A case the decision would skip (surveys
off, noise, asked already) gets no survey moment at all, so the tick never comes back to it for a
survey that will not be sent.

Asked once. Before that write, each step safe to repeat:

1. the survey is stored as an automatic reply under an id derived from the case
   (``survey_reply_id``): a second attempt finds it and makes no second message;
2. it is queued like any reply; one still ``queued`` is queued again by a repeat (the sender's
   claim makes a repeated queue message harmless, and it is never posted twice);
3. the customer's messages may answer it until the answer window ends
   (``await_survey_answer``), and it is counted once (KPI token ``csat:asked:<case id>``).

A crash, a failed queue or a concurrent writer before the write leaves the look in place, and the
next tick repeats the steps. The stored reply is the proof the customer was asked: a repeat that
finds it records the case as asked, whatever else changed meanwhile, and never asks again.

Answers. The triage stage hands every customer message to ``take_answer`` before classifying it.
While a survey awaits the customer's answer, a message ``parse_answer`` understands (a tapped
button, ``5``, ``⭐⭐⭐⭐``, ``最高``...) and written after the survey was asked is stored on the case
(score, comment, when) over the version read, counted once (``csat:answered:<case id>``), attached
to the case's history, and settled as ``csat_answer``: it never opens a case. The first answer
wins; anything else is an ordinary message and goes to triage as ever.

Opting out. A case tagged ``no_survey`` (a triage rule can tag a customer's posts) is not asked,
and is counted as not asked, as ``domain/csat.py`` counts an opted-out customer.

Cost per case surveyed: on the tick, one reply read and write, one queue message, one small
write (the awaited answer) and one KPI transaction, in the write the tick makes anyway. Per
customer message: one read (``survey_awaiting``); an answer adds a case read and write, a post,
a KPI transaction and the mention's update.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from typing import Any, Dict, List, Optional

from chalicelib.domain.agent import Agent
from chalicelib.domain.away import AGENT_ID
from chalicelib.domain.case import Case
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.csat import (
    MAX_ANSWER_WINDOW_HOURS,
    SurveyMessage,
    SurveySettings,
    parse_answer,
    survey_decision,
    validate_survey_settings,
)
from chalicelib.domain.errors import NotFound
from chalicelib.domain.kpi import csat_deltas
from chalicelib.domain.mention import Mention
from chalicelib.domain.reply import Reply
from chalicelib.observability import count, logger
from chalicelib.ports import Deps
from chalicelib.services.case_updates import modify_case

OPT_OUT_TAG = "no_survey"
ANSWER_STATE = "csat_answer"  # what a mention that answered a survey settles as
# A survey's KPI token may be applied again by a tick that repeats the asking (minutes later) or by a
# redelivered answer (within the answer window): its marker outlives both.
KPI_MARKER_SECONDS = (MAX_ANSWER_WINDOW_HOURS + 24) * 3600
# Platform clocks and ours differ by a little: an answer stamped this much before the survey was
# asked may still be its answer (the customer cannot have answered before being asked, by more).
CLOCK_SKEW = timedelta(minutes=1)


def survey_settings(deps: Deps) -> SurveySettings:
    """The settings in force, read now; the defaults of ``domain/csat.py`` until a supervisor saves some."""
    return deps.settings.get_survey_settings() or SurveySettings()


def survey_reply_id(case_id: str) -> str:
    """One survey per case, however often it is attempted: the same case always names the same reply."""
    return "r_" + hashlib.sha256(f"csat|{case_id}".encode()).hexdigest()[:20]


def opted_out(case: Case) -> bool:
    return OPT_OUT_TAG in case.tags


def survey_moment(case: Case, settings: SurveySettings) -> Optional[str]:
    """When the tick must decide this case's survey; None when there is nothing to decide."""
    if case.active or not case.resolved_at or case.csat_status is not None:
        return None
    # Why ``survey_decision`` skips (turned off, noise, asked already) does not depend on the moment:
    # asked as of the resolution, a case it would skip gets no look, so no look is ever wasted on it.
    if survey_decision(case, settings=settings, now=case.resolved_at, asked_at=case.csat_asked_at,
                       opted_out=opted_out(case)).action == "skip":
        return None
    return to_iso(parse_iso(case.resolved_at) + timedelta(minutes=settings.delay_minutes))


# ---- asking (called by the tick, sla._check_case) ---------------------------------------------

def survey_case(case: Case, deps: Deps, now: str, *, settings: Optional[SurveySettings] = None) -> Case:
    """The case with its survey decided as of ``now``, for the tick to save with its marks.

    Unchanged until the survey moment. Then: asked (the survey stored, queued, awaited and
    counted first, see the module docstring), or not asked (counted), as ``survey_decision``
    says. Raises when the queue or the KPI store cannot be reached: the case keeps its look and
    the next tick repeats what was not done.
    """
    chosen = settings if settings is not None else survey_settings(deps)
    moment = survey_moment(case, chosen)
    if moment is None or moment > now:
        return case
    stored = deps.cases.get_reply(case.case_id, survey_reply_id(case.case_id))
    if stored is not None:  # asked by an earlier attempt that did not get to save the case
        return _asked(case, stored, deps, chosen)
    decision = survey_decision(case, settings=chosen, now=now, asked_at=case.csat_asked_at,
                               opted_out=opted_out(case))
    if decision.action == "not_asked":
        _count(case, "not_asked", now, deps)
        deps.cases.add_event(case.case_id, {"event": "csat_not_asked", "reason": decision.reason}, at=now)
        count("CsatNotAsked")
        return replace(case, csat_status="not_asked")
    if decision.action != "ask" or decision.message is None:
        # "wait": the moment moved (a longer delay was saved since); refresh gives the case that look.
        return case
    reply = _survey_reply(case, decision.message, now)
    if not deps.cases.put_reply(reply):  # a concurrent attempt stored it first
        reply = deps.cases.get_reply(case.case_id, reply.reply_id) or reply
    else:
        deps.cases.add_event(case.case_id, {"event": "csat_survey_queued", "reply_id": reply.reply_id,
                                            "style": decision.message.style, "lang": decision.message.lang},
                             at=now)
        count("CsatSurveysQueued")
    return _asked(case, reply, deps, chosen)


def _survey_reply(case: Case, message: SurveyMessage, now: str) -> Reply:
    options = [{"id": option.payload, "title": option.title} for option in message.options]
    template = {"name": message.template, "language": message.lang} if message.template else None
    # Private: only direct conversations are surveyed (survey_style), and a survey is never posted publicly.
    return Reply(reply_id=survey_reply_id(case.case_id), case_id=case.case_id, text=message.text, mode="private",
                 agent_id=AGENT_ID, created_at=now, target=case.reply_target, automatic=True, options=options,
                 template=template)


def _asked(case: Case, reply: Reply, deps: Deps, settings: SurveySettings) -> Case:
    """Finish asking with ``reply`` (queued again while still queued) and return the case as asked."""
    if reply.delivery_status == "queued":
        # The message an agent's reply puts on the outbound queue (services/reply.py). Raises when the
        # queue cannot be reached: the reply stays stored and queued, and the next tick queues it.
        deps.outbound_queue.send({"case_id": reply.case_id, "reply_id": reply.reply_id})
    asked_at = reply.created_at
    until = to_iso(parse_iso(asked_at) + timedelta(hours=settings.answer_window_hours))
    deps.cases.await_survey_answer(case.customer_key, case.case_id, until=until)
    asked = replace(case, csat_status="asked", csat_asked_at=asked_at, csat_agent=case.assignee)
    _count(asked, "asked", asked_at, deps)
    return asked


# ---- answers (called by the triage stage, intake.triage_message) -------------------------------

def could_answer(mention: Mention) -> bool:
    """Whether ``mention`` reads as a survey answer at all (a rating, a tapped button): no read. Triage asks
    whether a survey awaits the customer only for one that does: most messages rate nothing, and for them
    the answer would change nothing (``take_answer`` returns None for them whatever awaits)."""
    return parse_answer(mention.text, mention.reply_payload or None) is not None


def take_answer(mention: Mention, deps: Deps, now: str, *, redelivered: bool) -> Optional[Dict[str, Any]]:
    """Store ``mention`` as the answer to the customer's awaited survey when it is one; None otherwise
    (the message goes on to triage). ``redelivered``: the mention was claimed before (SQS delivers at
    least once), so an answer already stored may be this very message's."""
    answer = parse_answer(mention.text, mention.reply_payload or None)
    if answer is None:
        return None  # no rating in it: whatever survey awaits, this is not its answer (and no read is spent)
    case_id = deps.cases.survey_awaiting(mention.customer_key, now=now)
    if case_id is None or (answer.case_id is not None and answer.case_id != case_id):
        return None  # no survey awaits, or a tap on another case's old survey: an ordinary message
    stored_now: List[bool] = []

    def store(case: Case) -> Optional[Case]:
        stored_now.clear()
        if case.customer_key != mention.customer_key or case.csat_status == "answered":
            return None
        if not case.csat_asked_at or parse_iso(mention.created_at) < parse_iso(case.csat_asked_at) - CLOCK_SKEW:
            return None  # written before we asked: whatever it rates, it is not this survey's answer
        stored_now.append(True)
        return replace(case, csat_status="answered", csat_score=answer.score, csat_comment=answer.comment or None,
                       csat_answered_at=now)

    try:
        case = modify_case(deps.cases, case_id, store)
    except NotFound:  # erased meanwhile: nothing left to rate
        deps.cases.stop_awaiting_survey(mention.customer_key, case_id)
        return None
    if case is None:  # not stored by this call: answered before, or not an answer to this survey
        current = deps.cases.get(case_id)
        answered = current is not None and current.csat_status == "answered"
        if not (answered and redelivered and current is not None and current.customer_key == mention.customer_key):
            if current is None or answered:
                # Gone, or answered by an earlier message (a crash kept it awaited): no longer awaited.
                deps.cases.stop_awaiting_survey(mention.customer_key, case_id)
            return None
        case = current  # this message's own answer, stored before a crash stopped it: finish settling it
    # In the case's history (an agent sees the comment; an export or erasure of the customer finds it).
    deps.cases.add_mention(case_id, mention, at=mention.created_at)
    if stored_now:
        deps.cases.add_event(case_id, {"event": "csat_answered", "score": case.csat_score, "via": answer.via,
                                       "mention_id": mention.id, "agent_id": case.csat_agent}, at=now)
        count("CsatAnswers")
    _count(case, "answered", case.csat_answered_at or now, deps, score=case.csat_score, agent=case.csat_agent)
    deps.mentions.update(mention.id, state=ANSWER_STATE, case_id=case_id)
    # Last: until the mention is settled, a redelivery must still find the survey awaiting it.
    deps.cases.stop_awaiting_survey(mention.customer_key, case_id)
    # No comment here: this is logged, and the comment is the customer's own words (it is on the case).
    return {"case_id": case_id, "score": case.csat_score, "via": answer.via}


# ---- counting --------------------------------------------------------------------------------

def _count(case: Case, event: str, at: str, deps: Deps, *, score: Optional[int] = None,
           agent: Optional[str] = None) -> None:
    """Add the survey's event to the KPI aggregates, once per case and event (the token says so)."""
    if deps.kpis is None:
        logger.warning("no KPI store: a CSAT event is not counted", extra={"case_id": case.case_id, "event": event})
        return
    deltas = csat_deltas(case, event=event, at=at, brand_zone=deps.config.brand_time_zone, score=score,
                         rated_agent=agent)
    deps.kpis.apply_deltas(deltas[0].token, deltas, keep_marker_seconds=KPI_MARKER_SECONDS)


# ---- supervisors: GET/PUT /admin/csat ---------------------------------------------------------

def settings_view(deps: Deps) -> Dict[str, Any]:
    """The survey settings as they apply (the defaults until some are saved), with what they mean."""
    stored = deps.settings.get_survey_settings()
    settings = stored or SurveySettings()
    return {"configured": stored is not None, **settings.to_dict(), "notes": _notes(settings)}


def save_settings(agent: Agent, body: Any, deps: Deps) -> Dict[str, Any]:
    """Replace the survey settings (validated whole; fields left out take their defaults). The route
    checks that ``agent`` is a supervisor."""
    settings = validate_survey_settings(body)
    deps.settings.put_survey_settings(settings, author=agent.agent_id, at=deps.now())
    logger.info("survey settings saved", extra={"enabled": settings.enabled, "delay_minutes": settings.delay_minutes})
    return settings_view(deps)


def _notes(settings: SurveySettings) -> List[str]:
    notes = []
    if not settings.enabled:
        notes.append("surveys are off: cases resolved while they are off are never asked, even after they are "
                     "turned on again")
    notes.append("a case is looked at for its survey at the moment set when it was resolved; a new delay "
                 "applies to cases resolved from now on, and a longer one also holds back those already waiting")
    if not settings.whatsapp_template:
        notes.append("no whatsapp_template: a WhatsApp customer whose 24-hour window has closed is not asked "
                     "(counted as not asked)")
    notes.append(f"customers are not asked on public posts and comments, nor when their case is tagged "
                 f"'{OPT_OUT_TAG}'")
    return notes
