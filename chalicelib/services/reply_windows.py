"""What an agent may send now, and the reply options that go beyond plain text.

``reply_options`` answers ``GET /cases/{id}/reply-options``: per mode, whether it is allowed now and
until when (domain/windows.py), with the WhatsApp account's approved templates listed from
``GET /{waba-id}/message_templates`` (cached for a few minutes per container).

``prepare_reply`` runs when an agent asks for a reply (services/reply.request_reply): it checks the
``attachment``, ``tag`` and ``whatsapp_template`` fields and the platform's window, so a reply the
platform would refuse is a 409 naming what is possible, not a failure minutes later. It returns the
Reply fields to store. ``sender_kwargs`` gives the sender what the platform client needs.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from chalicelib.domain import windows
from chalicelib.domain.case import Case
from chalicelib.domain.errors import PlatformError
from chalicelib.domain.reply import PRIVATE_ONLY, Reply
from chalicelib.observability import logger
from chalicelib.ports import Deps
from chalicelib.services import media

TEMPLATES_CACHE_SECONDS = 300
_CACHE = "whatsapp_templates"


def approved_templates(deps: Deps) -> Tuple[Optional[List[Dict[str, Any]]], str]:
    """(the account's approved templates, or None when they could not be listed; why not)."""
    waba_id = deps.config.whatsapp_waba_id
    if not waba_id:
        return None, ("WHATSAPP_WABA_ID is not configured, so the account's templates cannot be listed; any "
                      "approved template may still be sent by name")
    now = deps.epoch()
    cached = deps.caches.get(_CACHE)
    if cached and cached[0] == waba_id and now - cached[1] < TEMPLATES_CACHE_SECONDS:
        return cached[2], ""
    try:
        templates = deps.platforms.graph().message_templates(waba_id)
    except PlatformError as err:
        logger.warning("WhatsApp templates not listed", extra={"reason": str(err)[:300]})
        return None, f"the templates could not be listed from WhatsApp just now ({str(err)[:200]})"
    deps.caches[_CACHE] = (waba_id, now, templates)
    return templates, ""


def reply_options(case: Case, deps: Deps) -> Dict[str, Any]:
    templates: Optional[List[Dict[str, Any]]] = None
    problem = ""
    if case.reply_target.platform == "whatsapp":
        templates, problem = approved_templates(deps)
    return {"case_id": case.case_id, **windows.reply_options(case, deps.now(), templates=templates,
                                                             templates_problem=problem)}


def prepare_reply(case: Case, body: Any, deps: Deps) -> Tuple[Any, Dict[str, Any]]:
    """(the request body, with a WhatsApp template's text filled in when none was given; the Reply
    fields to store: ``attachment``, ``tag``, ``template``, ``template_variables``). 400 for a misused
    field, 409 outside the platform's window without the tag or template it needs."""
    if not isinstance(body, dict):
        return body, {}
    target = case.reply_target
    mode = "private" if target.platform in PRIVATE_ONLY or target.is_dm else body.get("mode", "public")
    chosen = windows.parse_send_options(body, case)
    attachment = media.check_attachment(case, body, mode if isinstance(mode, str) else "public", deps)
    extras: Dict[str, Any] = {}
    if attachment:
        extras["attachment"] = attachment
    if chosen.get("tag"):
        extras["tag"] = chosen["tag"]
    template = chosen.get("whatsapp_template")
    if template:
        if attachment:
            from chalicelib.domain.errors import BadRequest

            raise BadRequest("a WhatsApp template goes alone: send the image in the window, or leave it out")
        listed, _problem = approved_templates(deps)
        found = windows.check_template(template, listed)
        if not (isinstance(body.get("text"), str) and body["text"].strip()):
            shown = windows.render_template(str(found.get("body") or ""), template["variables"]).strip()
            body = {**body, "text": shown or f"[WhatsApp template {template['name']} ({template['language']})]"}
        extras["template"] = {"name": template["name"], "language": template["language"]}
        if template["variables"]:
            extras["template_variables"] = list(template["variables"])
    if isinstance(mode, str):
        windows.check_send(case, mode, chosen, deps.now())
    return body, extras


def sender_kwargs(reply: Reply, deps: Deps) -> Dict[str, Any]:
    """What the platform client needs beyond text, buttons and template: only what this reply has, so a
    plain reply calls the client exactly as before."""
    kwargs: Dict[str, Any] = media.send_extras(reply.case_id, reply.attachment, deps)
    if reply.tag:
        kwargs["tag"] = reply.tag
    if reply.template_variables:
        kwargs["template_variables"] = list(reply.template_variables)
    return kwargs
