"""Brand voice: the rules supervisors keep, the check agents run, and the gate on every agent reply.

- ``GET/PUT /admin/brand-voice``: the rules document (``domain.brand_voice``), defaults where unset;
- ``POST /cases/{id}/replies/check`` with ``text`` or ``template_id``: the findings on the reply as
  it would go out, and the rendered text;
- ``POST /cases/{id}/replies``: ``screen_reply`` renders a template into ``text``, checks it, and
  refuses a reply with a blocking finding (409 naming each) unless ``override_reason`` says why it
  must go as is; the override is kept on the reply and in the case history (``after_reply``).

Cost: the rules are one GetItem per check or reply; the agent's profile one more, only when a
template or the signature rule needs the agent's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.domain.agent import Agent
from chalicelib.domain.brand_voice import (
    BrandVoiceBlocked,
    CheckContext,
    Finding,
    blocking,
    check,
    default_rules,
    effective_rules,
    validate_override_reason,
    validate_rules,
)
from chalicelib.domain.case import Case
from chalicelib.domain.errors import BadRequest, Forbidden
from chalicelib.domain.reply import MODES, PRIVATE_ONLY, Reply, validate_reply_request
from chalicelib.domain.templates import initials
from chalicelib.observability import logger
from chalicelib.ports import Deps

_CHECK_FIELDS = ("text", "template_id", "lang", "variables", "mode")


# ---- supervisors -------------------------------------------------------------------------

def rules(deps: Deps) -> Dict[str, Any]:
    stored = deps.templates.get_brand_voice() if deps.templates is not None else None
    return effective_rules(stored["rules"] if stored else None)


def view(agent: Agent, deps: Deps) -> Dict[str, Any]:
    if not agent.is_supervisor:
        raise Forbidden("only supervisors may read or change the brand-voice rules")
    stored = deps.templates.get_brand_voice() if deps.templates is not None else None
    return {"rules": effective_rules(stored["rules"] if stored else None), "configured": stored is not None,
            "updated_by": stored["updated_by"] if stored else None,
            "updated_at": stored["updated_at"] if stored else None, "defaults": default_rules()}


def save(agent: Agent, body: Any, deps: Deps) -> Tuple[Dict[str, Any], bool]:
    if not agent.is_supervisor:
        raise Forbidden("only supervisors may read or change the brand-voice rules")
    checked = validate_rules(body)
    if deps.templates is None:  # pragma: no cover - a wiring mistake
        raise BadRequest("brand-voice rules cannot be stored on this deployment")
    created = deps.templates.get_brand_voice() is None
    deps.templates.put_brand_voice(checked, author=agent.agent_id, at=deps.now())
    logger.info("brand-voice rules saved", extra={"banned": len(checked["banned"])})
    return view(agent, deps), created


# ---- checking a reply ------------------------------------------------------------------------

def reply_mode(case: Case, body: Mapping[str, Any]) -> str:
    mode = body.get("mode", "public")
    if mode not in MODES:
        raise BadRequest("field 'mode' must be 'public' (reply under the post) or 'private' (direct message)")
    target = case.reply_target
    if target.platform in PRIVATE_ONLY or target.is_dm:
        return "private"
    return str(mode)


def context_for(case: Case, mode: str, agent: Optional[Agent]) -> CheckContext:
    name = agent.name if agent else ""
    return CheckContext(platform=case.platform, mode=mode, category=case.category, sentiment=case.sentiment,
                        agent_name=name, agent_initials=initials(name))


def check_reply(agent: Agent, case: Case, body: Any, deps: Deps) -> Dict[str, Any]:
    """``POST /cases/{id}/replies/check``: the findings on the reply as it would be sent (nothing is stored)."""
    if not isinstance(body, dict):
        raise BadRequest('body must be a JSON object with "text" or "template_id" (and "mode", "lang", "variables")')
    unknown = [key for key in body if key not in _CHECK_FIELDS]
    if unknown:
        raise BadRequest(f"unknown field '{str(unknown[0])[:40]}'; a check takes {', '.join(_CHECK_FIELDS)}")
    answer: Dict[str, Any] = {}
    text = body.get("text")
    if body.get("template_id") is not None:
        from chalicelib.services import templates

        rendered, template, lang = templates.render_for_case(case, agent, body, deps)
        answer.update({"template_id": template.template_id, "lang": lang})
        if text is None:
            text = rendered
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("field 'text' (the reply to check, a non-empty string) or 'template_id' is required")
    if len(text) > 20_000:
        raise BadRequest(f"field 'text' is {len(text):,} characters; at most 20,000 can be checked")
    mode = reply_mode(case, body)
    findings = check(text, rules(deps), context_for(case, mode, agent))
    return {"findings": [f.to_dict() for f in findings], "ok": not blocking(findings), "rendered": text,
            "mode": mode, **answer}


# ---- the gate on POST /cases/{id}/replies ------------------------------------------------------

@dataclass
class Screened:
    """What the gate adds to a reply: the template it came from, warnings, an override."""

    template_id: Optional[str] = None
    template_team: Optional[str] = None
    warnings: List[Finding] = field(default_factory=list)
    override: Optional[Dict[str, Any]] = None

    @property
    def reply_fields(self) -> Dict[str, Any]:
        fields: Dict[str, Any] = {}
        if self.template_id:
            fields["template_id"] = self.template_id
        voice: Dict[str, Any] = {}
        if self.warnings:
            voice["warnings"] = [_short(f) for f in self.warnings]
        if self.override:
            voice["override"] = self.override
        if voice:
            fields["brand_voice"] = voice
        return fields


def screen_reply(case: Case, body: Any, *, agent_id: str, deps: Deps) -> Tuple[Any, Screened]:
    """The reply body with ``text`` (rendered from ``template_id`` when no text is given), and what the
    gate found; raises BrandVoiceBlocked (409) on a blocking finding without ``override_reason``."""
    screened = Screened()
    if not isinstance(body, dict):
        return body, screened  # validate_reply_request says what is wrong
    reason = validate_override_reason(body.get("override_reason"))
    agent: Optional[Agent] = None
    if body.get("template_id") is not None:
        from chalicelib.services import templates

        agent = _agent(agent_id, deps)
        rendered, template, _lang = templates.render_for_case(case, agent, body, deps)
        screened.template_id, screened.template_team = template.template_id, template.team
        if body.get("text") is None:
            body = {**body, "text": rendered}
    request = validate_reply_request(body, case)  # 400s (missing text, length, mode) before any 409
    current = rules(deps)
    if agent is None and current["signature"]["enabled"]:
        agent = _agent(agent_id, deps)
    findings = check(request["text"], current, context_for(case, request["mode"], agent))
    blocked = blocking(findings)
    if blocked and reason is None:
        raise BrandVoiceBlocked(findings)
    screened.warnings = [f for f in findings if f.severity != "block"]
    if blocked and reason is not None:
        screened.override = {"by": agent_id, "reason": reason, "findings": [_short(f) for f in blocked]}
    return body, screened


def after_reply(reply: Reply, screened: Screened, deps: Deps) -> None:
    """Once the reply is stored and queued: count the template's use, record an override in the history."""
    if screened.template_id and screened.template_team:
        from chalicelib.services import templates

        templates.count_use(screened.template_id, screened.template_team, deps)
    if screened.override:
        deps.cases.add_event(reply.case_id, {
            "event": "brand_voice_override", "reply_id": reply.reply_id, "agent_id": screened.override["by"],
            "reason": screened.override["reason"], "findings": screened.override["findings"],
        }, at=reply.created_at)
        logger.info("brand-voice override", extra={"reply_id": reply.reply_id,
                                                   "rules": [f["rule"] for f in screened.override["findings"]]})


def _short(finding: Finding) -> Dict[str, Any]:
    data = finding.to_dict()
    return {k: v for k, v in data.items() if v is not None}


def _agent(agent_id: str, deps: Deps) -> Agent:
    return deps.settings.get_agent(agent_id) or Agent(agent_id=agent_id, name="")
