"""Reply windows: what the platform lets an agent send now, and until when.

- Messenger and Instagram direct messages: a standard message within 24 hours of the customer's
  last message; after that a person's answer with the HUMAN_AGENT tag (``{"tag": "HUMAN_AGENT"}``)
  until 7 days after it; then nothing until the customer writes again.
- WhatsApp: free text within the 24-hour customer service window (refreshed by each customer
  message); outside it only an approved template (``{"whatsapp_template": {"name", "language",
  "variables"}}``), at any time.
- Facebook and Instagram comments: a public reply at any time; one private reply per comment within
  7 days of it.
- X: a public reply only under a post that mentioned the brand; a DM in a conversation the customer
  started.

``reply_options`` describes each mode for ``GET /cases/{id}/reply-options``; ``check_send`` refuses
at request time, with a 409 that names what is possible, what the platform would refuse later.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

from chalicelib.domain.case import Case
from chalicelib.domain.errors import BadRequest, Conflict

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
HUMAN_AGENT_TAG = "HUMAN_AGENT"
TAGGABLE = ("messenger", "instagram")
MAX_TEMPLATE_VARIABLES = 20
MAX_TEMPLATE_VARIABLE_CHARS = 1024
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_TEMPLATE_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")


def last_customer_message(case: Case) -> datetime:
    """When the customer last wrote in this case: the newest post replies go to, or (for a case stored
    before that was kept) the latest moment the case knows, never later than the real one."""
    target = case.reply_target.posted_at
    moments = [target, case.customer_posted_at or case.created_at, case.follow_up_at]
    moments += [cycle[0] for cycle in case.response_cycles if cycle]
    return max(_parse(m) for m in moments if m)


def is_messaging(case: Case) -> bool:
    target = case.reply_target
    return target.platform in ("messenger", "whatsapp") or target.is_dm


def reply_options(case: Case, now: str, *, templates: Optional[List[Dict[str, Any]]] = None,
                  templates_problem: str = "") -> Dict[str, Any]:
    """Every way to answer this case, each ``{"mode", "how", "allowed", "until", "why", "send_with"}``."""
    moment, last = _parse(now), last_customer_message(case)
    target = case.reply_target
    platform = target.platform
    options: List[Dict[str, Any]] = []

    def add(mode: str, how: str, allowed: bool, until: Optional[datetime], why: str, **send_with: Any) -> None:
        options.append({"mode": mode, "how": how, "allowed": allowed,
                        "until": _iso(until) if until else None, "why": why, "send_with": send_with})

    if platform == "x":
        if target.is_dm:
            add("private", "direct_message", True, None, "an X DM in a conversation the customer started")
        else:
            add("public", "reply", target.addressed_to_brand, None,
                "a reply under the post" if target.addressed_to_brand else
                "X accepts no API reply to a post that did not mention the brand: answer by DM or by hand on X")
            add("private", "direct_message", True, None, "a DM (the customer must accept DMs from the brand)")
    elif platform in ("messenger", "instagram") and is_messaging(case):
        standard_end, tagged_end = last + STANDARD_WINDOW, last + HUMAN_AGENT_WINDOW
        add("private", "standard", moment <= standard_end, standard_end,
            "a message within 24 hours of the customer's last message")
        add("private", "human_agent", moment <= tagged_end, tagged_end,
            "a person's answer with the HUMAN_AGENT tag, up to 7 days after the customer's last message",
            tag=HUMAN_AGENT_TAG)
    elif platform == "whatsapp":
        standard_end = last + STANDARD_WINDOW
        add("private", "standard", moment <= standard_end, standard_end,
            "free text within WhatsApp's 24-hour customer service window")
        listed = [{"name": t["name"], "language": t["language"], "variables": t.get("variables", 0),
                   "body": t.get("body", ""), "category": t.get("category", "")} for t in templates or []]
        option = {"mode": "private", "how": "whatsapp_template", "allowed": True, "until": None,
                  "why": "an approved template, at any time", "send_with": {
                      "whatsapp_template": {"name": "<name>", "language": "<language>", "variables": ["..."]}},
                  "templates": listed}
        if templates_problem:
            option["templates_problem"] = templates_problem
        options.append(option)
    else:  # Facebook and Instagram comments
        add("public", "reply", True, None, f"a public reply under the {platform} comment")
        private_end = _parse(target.posted_at or case.customer_posted_at or case.created_at) + PRIVATE_REPLY_WINDOW
        add("private", "private_reply", moment <= private_end, private_end,
            "one private message to the commenter, within 7 days of the comment")
    return {"platform": platform, "kind": target.kind, "last_customer_message_at": _iso(last),
            "now": _iso(moment), "options": options,
            "attachments": _attachments(platform, target.kind)}


def _attachments(platform: str, kind: str) -> Dict[str, Any]:
    if platform == "instagram" and kind != "dm":
        return {"public": False, "private": False,
                "why": "Instagram comment replies and private replies are text only"}
    if platform == "facebook":
        return {"public": True, "private": False, "why": "an image with the public reply; the private reply is text"}
    return {"public": platform == "x", "private": True, "why": "one JPEG or PNG image"}


def parse_send_options(body: Dict[str, Any], case: Case) -> Dict[str, Any]:
    """The ``tag`` and ``whatsapp_template`` of a reply request, checked (400 when misused)."""
    platform = case.reply_target.platform
    found: Dict[str, Any] = {}
    tag = body.get("tag")
    if tag is not None:
        if tag != HUMAN_AGENT_TAG:
            raise BadRequest(f"field 'tag' must be '{HUMAN_AGENT_TAG}' (a person's answer outside the 24-hour window)")
        if platform not in TAGGABLE or not is_messaging(case):
            raise BadRequest(f"the {HUMAN_AGENT_TAG} tag is for Messenger and Instagram direct messages, not a "
                             f"{platform} {case.reply_target.kind}")
        found["tag"] = tag
    template = body.get("whatsapp_template")
    if template is not None:
        if platform != "whatsapp":
            raise BadRequest(f"field 'whatsapp_template' is for WhatsApp conversations, not {platform}")
        if not isinstance(template, dict) or set(template) - {"name", "language", "variables"}:
            raise BadRequest("field 'whatsapp_template' must be {\"name\", \"language\", \"variables\": [...]}")
        name, language = template.get("name"), template.get("language")
        if not isinstance(name, str) or not _TEMPLATE_NAME.fullmatch(name):
            raise BadRequest("field 'whatsapp_template.name' is a template name: lowercase letters, digits and _")
        if not isinstance(language, str) or not _TEMPLATE_LANGUAGE.fullmatch(language):
            raise BadRequest("field 'whatsapp_template.language' is a language code such as 'en', 'ja' or 'en_US'")
        variables = template.get("variables", [])
        if (not isinstance(variables, list) or len(variables) > MAX_TEMPLATE_VARIABLES
                or not all(isinstance(v, str) and 0 < len(v.strip()) and len(v) <= MAX_TEMPLATE_VARIABLE_CHARS
                           for v in variables)):
            raise BadRequest(f"field 'whatsapp_template.variables' must be a list of at most "
                             f"{MAX_TEMPLATE_VARIABLES} non-empty strings of at most {MAX_TEMPLATE_VARIABLE_CHARS} "
                             "characters, filling {{1}}, {{2}}... in order")
        found["whatsapp_template"] = {"name": name, "language": language, "variables": list(variables)}
    return found


def check_template(chosen: Dict[str, Any], templates: Optional[List[Dict[str, Any]]]) -> Dict[str, Any]:
    """The listed template the request names (400 when it is not approved or its variables do not fit);
    None-checked: with no list (the account could not be asked) the platform has the last word."""
    if templates is None:
        return {}
    for template in templates:
        if (template["name"], template["language"]) == (chosen["name"], chosen["language"]):
            wanted = int(template.get("variables") or 0)
            if wanted != len(chosen["variables"]):
                raise BadRequest(f"template '{chosen['name']}' ({chosen['language']}) takes {wanted} variables; "
                                 f"{len(chosen['variables'])} were given")
            return template
    names = ", ".join(sorted({f"{t['name']} ({t['language']})" for t in templates})[:20]) or "none"
    raise BadRequest(f"'{chosen['name']}' in '{chosen['language']}' is not an approved template of this WhatsApp "
                     f"account; approved: {names}")


def check_send(case: Case, mode: str, chosen: Dict[str, Any], now: str) -> None:
    """409 when the platform would refuse this reply now, naming what is possible instead."""
    target = case.reply_target
    platform = target.platform
    moment, last = _parse(now), last_customer_message(case)
    age = moment - last
    since = f"the customer's last message was at {_iso(last)}"
    if platform in TAGGABLE and is_messaging(case):
        if age <= STANDARD_WINDOW:
            return
        if age <= HUMAN_AGENT_WINDOW:
            if chosen.get("tag") == HUMAN_AGENT_TAG:
                return
            raise Conflict(f"outside {platform.capitalize()}'s 24-hour window ({since}); a person may still answer "
                           f"until {_iso(last + HUMAN_AGENT_WINDOW)}: send the reply again with "
                           f"\"tag\": \"{HUMAN_AGENT_TAG}\" (GET /cases/{case.case_id}/reply-options)")
        raise Conflict(f"more than 7 days have passed since the customer's last message ({since}); "
                       f"{platform.capitalize()} accepts no message until the customer writes again")
    if platform == "whatsapp":
        if chosen.get("whatsapp_template") or age <= STANDARD_WINDOW:
            return
        raise Conflict(f"outside WhatsApp's 24-hour customer service window ({since}); only an approved template "
                       f"may be sent: send {{\"whatsapp_template\": {{\"name\", \"language\", \"variables\"}}}} "
                       f"(GET /cases/{case.case_id}/reply-options lists the account's templates)")
    if platform in ("facebook", "instagram") and mode == "private" and not target.is_dm:
        posted = _parse(target.posted_at or case.customer_posted_at or case.created_at)
        if moment - posted > PRIVATE_REPLY_WINDOW:
            raise Conflict(f"a private reply to a {platform} comment is allowed within 7 days of it (it was posted "
                           f"at {_iso(posted)}); reply publicly instead (mode 'public')")


def render_template(body: str, variables: List[str]) -> str:
    """A template's body with {{1}}, {{2}}... filled: what the customer reads, kept as the reply's text."""
    def fill(match: "re.Match[str]") -> str:
        index = int(match.group(1)) - 1
        return variables[index] if 0 <= index < len(variables) else match.group(0)

    return re.sub(r"\{\{\s*(\d{1,2})\s*\}\}", fill, body)


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
