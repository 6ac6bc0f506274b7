"""Working a case: internal notes with @mentions, edits (status, priority, category, tags, escalated)
and hand-offs (claim, assign or transfer, unassign).

Everything here is recorded in the case's history (who, when, before, after) and never reaches the
customer. Edits of what triage decided (category, tags, priority) are also kept as triage feedback
(``deps.feedback``, domain/feedback.py), the labeled examples triage learns from.

Hand-offs, who may do what:
- ``claim``: any agent of the case's team (or a supervisor) takes an active case nobody has.
- ``assign`` (to an agent, to a team, or both): a supervisor; the case's assignee handing it on; or, for
  a case nobody has, any agent of its team (dispatching the queue). The receiving agent must be in the
  case's (new) team, enabled, online and below capacity; ``"override": true`` hands it over anyway
  (supervisors only, and the person claiming for themselves). A transfer to a team without an agent
  puts the case in that team's queue, which its agents with room take from at once.
- ``unassign``: a supervisor or the assignee; the case goes back to its team's queue.
Each is one ``CaseStore.assign`` transaction: the case, both agents' open-case counts and the event.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.domain import case as case_rules
from chalicelib.domain.agent import Agent
from chalicelib.domain.case import Case
from chalicelib.domain.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.domain.feedback import Correction
from chalicelib.domain.inbox_filter import CATEGORIES, PRIORITIES, TAG_PATTERN
from chalicelib.domain.limits import MAX_ID_LENGTH, id_problem, text_problem
from chalicelib.observability import logger
from chalicelib.ports import Deps
from chalicelib.services import inbox, notify, sla

MAX_NOTE = 4000            # characters of an internal note
MAX_HANDOFF_NOTE = 1000    # characters of the note that goes with a hand-off
MAX_TAGS = 20              # tags on a case
MAX_MENTIONS = 20          # colleagues one note may notify
MAX_ATTEMPTS = 3           # re-reads of a case that changed under an edit before it is a 409
EDITABLE = ("status", "priority", "category", "tags", "add_tags", "remove_tags", "escalated")
CORRECTED = ("category", "tags", "priority")  # what triage decided: edits are triage feedback
# @agent_id: anything up to a space or a bracket; a trailing sentence mark is not part of it.
_MENTION = re.compile(r"(?<![\w@])@([^\s@,;!?()\[\]{}<>\"']{1,128})")


# ---- notes ---------------------------------------------------------------------------

def add_note(agent: Agent, case_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """``POST /cases/{id}/notes {"text"}``: an internal note in the case's history, never sent.

    Colleagues named ``@agent_id`` who can see the case get a notification; names that are nobody,
    or people who cannot open the case, are reported in the answer (the note is kept either way).
    """
    case = inbox.load_case(agent, case_id, deps)
    if not isinstance(body, dict) or set(body) != {"text"}:
        raise BadRequest('body must be {"text": "..."}: the note, at most %d characters' % MAX_NOTE)
    text = body["text"]
    problem = text_problem(text, max_length=MAX_NOTE, multiline=True)
    if problem or not text.strip():
        raise BadRequest(f"field 'text' {problem or 'is empty'}; a note is 1 to {MAX_NOTE} characters")
    now = deps.now()
    mentioned, unknown, cannot_see = _mentions(text, case, agent, deps)
    note_id = "note_" + _short_id(case.case_id, agent.agent_id, now, text)
    event = {"event": "note_added", "note_id": note_id, "agent_id": agent.agent_id, "text": text,
             "mentions": mentioned}
    deps.cases.add_event(case.case_id, event, at=now)
    if mentioned:
        detail = f"{agent.name or agent.agent_id} mentioned you in a note on case {case.case_id}: {text}"
        try:
            notify.notify(case, "mention", detail, deps, key=f"note:{note_id}", now=now, recipients=mentioned)
        except Exception:  # noqa: BLE001 - the note is kept; say who was not reached instead of failing it
            logger.exception("note mention notifications failed", extra={"case_id": case.case_id})
            cannot_see += [{"agent_id": m, "reason": "the notification could not be stored; tell them"}
                           for m in mentioned]
            mentioned = []
    return {"note": {**event, "at": now, "case_id": case.case_id}, "notified": mentioned,
            "unknown_mentions": unknown, "not_notified": cannot_see}


def _mentions(text: str, case: Case, author: Agent, deps: Deps) -> Tuple[List[str], List[str], List[Dict[str, str]]]:
    names: List[str] = []
    for match in _MENTION.finditer(text):
        name = match.group(1)
        names.append(name)
    mentioned: List[str] = []
    unknown: List[str] = []
    cannot_see: List[Dict[str, str]] = []
    for name in list(dict.fromkeys(names))[:MAX_MENTIONS]:
        colleague = deps.settings.get_agent(name)
        stripped = name.rstrip(".:")
        if colleague is None and stripped and stripped != name:
            colleague = deps.settings.get_agent(stripped)
        if colleague is None:
            unknown.append(name)
        elif colleague.agent_id == author.agent_id:
            continue
        elif not (colleague.is_supervisor or case.team in colleague.teams) or colleague.role == "finance":
            cannot_see.append({"agent_id": colleague.agent_id,
                               "reason": f"not in team '{case.team}', so they cannot open this case"})
        elif colleague.agent_id not in mentioned:
            mentioned.append(colleague.agent_id)
    return mentioned, unknown, cannot_see


def _short_id(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:16]


# ---- edits -----------------------------------------------------------------------------

def parse_edits(body: Any) -> Dict[str, Any]:
    """The validated edits of a ``PATCH /cases/{id}`` body (400 naming what is wrong)."""
    if not isinstance(body, dict) or not body:
        raise BadRequest("body must be a JSON object with one or more of " + ", ".join(EDITABLE))
    unknown = sorted(set(body) - set(EDITABLE))
    if unknown:
        raise BadRequest(f"field(s) {', '.join(unknown)} cannot be changed here; a case's editable fields are "
                         + ", ".join(EDITABLE))
    edits: Dict[str, Any] = {}
    if "status" in body:
        if not isinstance(body["status"], str) or body["status"] not in case_rules.STATUSES:
            raise BadRequest("field 'status' is wrong: status must be one of " + ", ".join(case_rules.STATUSES))
        edits["status"] = body["status"]
    if "priority" in body:
        if body["priority"] not in PRIORITIES:
            raise BadRequest("field 'priority' must be one of " + ", ".join(PRIORITIES))
        edits["priority"] = body["priority"]
    if "category" in body:
        if body["category"] not in CATEGORIES:
            raise BadRequest("field 'category' must be one of " + ", ".join(CATEGORIES))
        edits["category"] = body["category"]
    if "escalated" in body:
        if not isinstance(body["escalated"], bool):
            raise BadRequest("field 'escalated' must be true or false")
        edits["escalated"] = body["escalated"]
    if "tags" in body and ("add_tags" in body or "remove_tags" in body):
        raise BadRequest("send 'tags' (the whole list) or 'add_tags'/'remove_tags', not both")
    for name in ("tags", "add_tags", "remove_tags"):
        if name in body:
            edits[name] = _tag_list(name, body[name])
    return edits


def _tag_list(name: str, value: Any) -> List[str]:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise BadRequest(f"field '{name}' must be a list of at most {MAX_TAGS} tags")
    for tag in value:
        if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
            shown = tag[:50] if isinstance(tag, str) else type(tag).__name__
            raise BadRequest(f"field '{name}': {shown!r} is not a tag; tags are 1 to 40 lower-case letters, "
                             "digits, _ - or :")
    return list(dict.fromkeys(value))


def _edited(case: Case, edits: Dict[str, Any], now: str) -> Tuple[Case, Dict[str, Dict[str, Any]]]:
    """The case with the edits applied, and per changed field its {"from", "to"}."""
    changed = case
    changes: Dict[str, Dict[str, Any]] = {}
    if "status" in edits and edits["status"] != case.status:
        try:
            case_rules.check_transition(case.status, edits["status"])
        except case_rules.InvalidTransition as err:
            raise Conflict(str(err)) from None
        changed = case_rules.with_status(changed, edits["status"], now)
        changes["status"] = {"from": case.status, "to": edits["status"]}
    for name in ("priority", "category", "escalated"):
        if name in edits and edits[name] != getattr(case, name):
            changed = replace(changed, **{name: edits[name]})
            changes[name] = {"from": getattr(case, name), "to": edits[name]}
    tags = list(case.tags)
    if "tags" in edits:
        tags = list(edits["tags"])
    tags = [t for t in tags if t not in set(edits.get("remove_tags", []))]
    tags += [t for t in edits.get("add_tags", []) if t not in tags]
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"a case holds at most {MAX_TAGS} tags; this change would give it {len(tags)}")
    if tags != list(case.tags):
        changed = replace(changed, tags=tags)
        changes["tags"] = {"from": list(case.tags), "to": tags}
    if changes:
        changed = replace(changed, updated_at=now)
    return changed, changes


def update_case(agent: Agent, case_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """``PATCH /cases/{id}``: one write (the case and one history event), re-applied over a concurrent change.

    The answer is the case as saved, with its live clocks and ``changes`` ({field: {from, to}}).
    """
    edits = parse_edits(body)
    case = inbox.load_case(agent, case_id, deps)
    for _attempt in range(MAX_ATTEMPTS):
        now = deps.now()
        changed, changes = _edited(case, edits, now)
        if not changes:
            return {**case.public_view(), "sla": sla.sla_view(case, deps, now), "changes": {}}
        # Priority picks the SLA targets, status pauses or stops the clocks: new marks, same write.
        changed = sla.refresh(changed, deps, now)
        if set(changes) == {"status"}:
            event: Dict[str, Any] = {"event": "status_changed", "from": case.status, "to": changed.status,
                                     "agent_id": agent.agent_id}
        else:
            event = {"event": "case_updated", "agent_id": agent.agent_id, "changes": changes}
            if "status" in changes:
                event.update({"from": case.status, "to": changed.status})
        # The case, the customer's active case and the assignee's load change together or not at all.
        if deps.cases.change_status(case, changed, event=event):
            break
        case = inbox.load_case(agent, case_id, deps)
    else:
        raise Conflict(f"case '{case_id}' kept changing while you were editing it; reload and try again")
    if case.assignee and case.active and not changed.active:
        inbox._fill(case.assignee, deps)  # the agent has room for one more: give them a waiting case
    _record_corrections(agent, case, changes, deps, now)
    if changes.get("escalated", {}).get("to") is True:
        _notify_escalation(agent, changed, deps, now)
    return {**changed.public_view(), "sla": sla.sla_view(changed, deps, now), "changes": changes}


def _record_corrections(agent: Agent, case: Case, changes: Dict[str, Dict[str, Any]], deps: Deps, now: str) -> None:
    """Edits of triage's decisions as labeled examples. The edit stands when this fails (logged)."""
    fields = [name for name in CORRECTED if name in changes]
    if not fields or deps.feedback is None:
        return
    try:
        text = _customer_words(case, deps)
        for name in fields:
            deps.feedback.record_correction(Correction(
                mention_id=case.first_mention_id or case.case_id, field=name, before=changes[name]["from"],
                after=changes[name]["to"], agent_id=agent.agent_id, at=now, case_id=case.case_id, text=text,
                lang=case.lang, platform=case.platform))
    except Exception:  # noqa: BLE001 - a lost example weakens training a little; a failed edit helps nobody
        logger.exception("recording a triage correction failed", extra={"case_id": case.case_id})


def _customer_words(case: Case, deps: Deps) -> str:
    if not case.first_mention_id:
        return ""
    stored = deps.mentions.stored(case.first_mention_id)
    text = (stored.mention or {}).get("text") if stored is not None else None
    return text if isinstance(text, str) else ""


def _notify_escalation(agent: Agent, case: Case, deps: Deps, now: str) -> None:
    detail = (f"Escalated by {agent.name or agent.agent_id}: {case.priority} {case.category or 'case'} on "
              f"{case.platform} for team {case.team}; case {case.case_id}.")
    try:
        notify.notify(case, "escalation", detail, deps, key=f"escalation:{agent.agent_id}:{now}", now=now)
    except Exception:  # noqa: BLE001 - the edit is saved; the flag shows in the inbox (escalated=true)
        logger.exception("escalation notification failed", extra={"case_id": case.case_id})


# ---- hand-offs ---------------------------------------------------------------------------

def _optional_note(body: Dict[str, Any]) -> Optional[str]:
    note = body.get("note")
    if note is None:
        return None
    problem = text_problem(note, max_length=MAX_HANDOFF_NOTE, multiline=True)
    if problem:
        raise BadRequest(f"field 'note' {problem}")
    return note or None


def _body(body: Any, allowed: Tuple[str, ...]) -> Dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with " + ", ".join(allowed))
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; this takes " + ", ".join(allowed))
    if "override" in body and not isinstance(body["override"], bool):
        raise BadRequest("field 'override' must be true or false")
    return body


def claim(agent: Agent, case_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """``POST /cases/{id}/claim``: an active case nobody has becomes the caller's (409 if someone has it)."""
    fields = _body(body, ("note", "override"))
    note = _optional_note(fields)
    case = inbox.load_case(agent, case_id, deps)
    if not agent.is_supervisor and case.team not in agent.teams:
        raise Forbidden(f"case '{case_id}' belongs to team '{case.team}', which you are not in")
    return _hand_over(agent, case, agent.agent_id, None, deps, note=note, override=bool(fields.get("override")),
                      how="claim")


def assign(agent: Agent, case_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """``POST /cases/{id}/assign {"agent_id"?, "team"?, "note"?, "override"?}``."""
    fields = _body(body, ("agent_id", "team", "note", "override"))
    if "agent_id" not in fields and "team" not in fields:
        raise BadRequest('body must name "agent_id" (hand it to a person), "team" (transfer it), or both')
    note = _optional_note(fields)
    override = bool(fields.get("override"))
    for name in ("agent_id", "team"):
        if name in fields:
            problem = id_problem(fields[name], max_length=MAX_ID_LENGTH if name == "agent_id" else 64)
            if problem or "#" in fields[name]:
                raise BadRequest(f"field '{name}' {problem or 'must not contain #'}")
    if override and not agent.is_supervisor:
        raise Forbidden("only supervisors may hand a case to someone offline, away or at capacity (override)")
    case = inbox.load_case(agent, case_id, deps)
    may = (agent.is_supervisor or (case.assignee == agent.agent_id)
           or (not case.assignee and case.team in agent.teams))
    if not may:
        raise Forbidden(f"case '{case_id}' is {case.assignee}'s; only they or a supervisor may hand it on")
    team = fields.get("team")
    if team is not None and team != case.team and team not in deps.settings.teams():
        raise BadRequest(f"there is no team '{team}'; teams: {', '.join(deps.settings.teams())}")
    return _hand_over(agent, case, fields.get("agent_id"), team, deps, note=note, override=override,
                      how="assign")


def unassign(agent: Agent, case_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """``POST /cases/{id}/unassign {"note"?}``: back to the team's queue (supervisors or the assignee)."""
    fields = _body(body, ("note",))
    note = _optional_note(fields)
    case = inbox.load_case(agent, case_id, deps)
    if case.assignee and not (agent.is_supervisor or case.assignee == agent.agent_id):
        raise Forbidden(f"case '{case_id}' is {case.assignee}'s; only they or a supervisor may unassign it")
    return _hand_over(agent, case, None, None, deps, note=note, override=False, how="unassign")


def _check_receiver(receiver: Optional[Agent], agent_id: str, team: str, override: bool) -> Agent:
    if receiver is None:
        raise BadRequest(f"there is no agent '{agent_id}'")
    if receiver.role == "finance" or (team not in receiver.teams and not receiver.is_supervisor):
        raise BadRequest(f"agent '{agent_id}' is not in team '{team}'; transfer the case to one of their teams "
                         f"({', '.join(receiver.teams) or 'none'}) or add them to '{team}'")
    if override:
        return receiver
    if not receiver.available:
        raise Conflict(f"agent '{agent_id}' is not taking cases (disabled by a supervisor); a supervisor may "
                       'override with "override": true')
    if receiver.presence != "online":
        raise Conflict(f"agent '{agent_id}' is {receiver.presence}; hand it to someone online, or a supervisor "
                       'may override with "override": true')
    return receiver


def _hand_over(actor: Agent, case: Case, assignee: Optional[str], team: Optional[str], deps: Deps, *,
               note: Optional[str], override: bool, how: str) -> Dict[str, Any]:
    case_id = case.case_id
    for _attempt in range(MAX_ATTEMPTS):
        new_team = team or case.team
        target = assignee
        if how == "claim":
            if not case.active:
                raise Conflict(f"case '{case_id}' is {case.status}; reopen it before claiming it")
            if case.assignee and case.assignee != actor.agent_id:
                raise Conflict(f"case '{case_id}' is already {case.assignee}'s; ask them or a supervisor to "
                               "hand it to you")
        if how == "assign" and not case.active and target:
            raise Conflict(f"case '{case_id}' is {case.status}; reopen it before handing it to someone")
        if target is not None:
            receiver = deps.settings.get_agent(target)
            if how == "claim":
                receiver = receiver or actor
                if receiver.presence != "online" and not override:
                    raise Conflict(f"you are {receiver.presence}; go online (PUT /me/presence) to take cases, or "
                                   'claim with "override": true')
            else:
                _check_receiver(receiver, target, new_team, override)
        if case.assignee == target and case.team == new_team:
            return _answer(case, deps, changed=False)
        now = deps.now()
        after = sla.refresh(case_rules.with_assignee(case, target, now, team=new_team), deps, now)
        event: Dict[str, Any] = {
            "event": "unassigned" if target is None and new_team == case.team else
                     "assigned" if target is not None else "moved",
            "agent_id": actor.agent_id, "by": actor.agent_id, "how": how, "from": case.assignee, "to": target,
            "assignee": target}
        if new_team != case.team:
            event.update({"from_team": case.team, "to_team": new_team})
        if note:
            event["note"] = note
        if override:
            event["override"] = True
        outcome = deps.cases.assign(case, after, event=event, over_capacity=override)
        if outcome == "assigned":
            return _after_hand_over(actor, case, after, deps, note=note, now=now)
        if outcome == "full":
            who = "you are" if target == actor.agent_id else f"agent '{target}' is"
            raise Conflict(f"{who} at capacity; finish or hand on a case first"
                           + ('' if how != "claim" else ', or claim with "override": true')
                           + ('' if how == "claim" else ' (a supervisor may override with "override": true)'))
        fresh = deps.cases.get(case_id)  # stale: changed meanwhile; decide again on the case as it is
        if fresh is None:
            raise NotFound(f"case '{case_id}' does not exist")
        case = fresh
    raise Conflict(f"case '{case_id}' kept changing while it was being handed over; reload and try again")


def _after_hand_over(actor: Agent, before: Case, after: Case, deps: Deps, *, note: Optional[str],
                     now: str) -> Dict[str, Any]:
    if after.assignee and after.assignee != actor.agent_id:
        who = actor.name or actor.agent_id
        detail = f"{who} handed you case {after.case_id} ({after.priority} {after.category or 'case'} on " \
                 f"{after.platform})" + (f": {note}" if note else ".")
        try:
            notify.notify(after, "assigned", detail, deps, key=f"assigned:{after.version}:{after.assignee}",
                          now=now, recipients=[after.assignee])
        except Exception:  # noqa: BLE001 - the hand-off is saved; the case shows in their inbox anyway
            logger.exception("hand-off notification failed", extra={"case_id": after.case_id})
    if after.active and not after.assignee and after.team != before.team:
        _fill_team(after.team, deps)  # a transfer: the new team's agents with room take it
    return _answer(after, deps, changed=True)


def _fill_team(team: str, deps: Deps) -> None:
    from chalicelib.services import workload

    try:
        workload.assign_waiting(team, deps)
    except Exception:  # noqa: BLE001 - the once-a-minute sweep hands it out anyway
        logger.exception("handing out a transferred case failed", extra={"team": team})


def _answer(case: Case, deps: Deps, *, changed: bool) -> Dict[str, Any]:
    stored = deps.cases.get(case.case_id) or case
    return {**stored.public_view(), "sla": sla.sla_view(stored, deps, deps.now()), "changed": changed}
