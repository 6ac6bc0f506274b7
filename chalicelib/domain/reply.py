"""A Reply: an agent's answer, and the rules of its delivery.

Delivery statuses:
- ``queued``: stored and on the outbound queue;
- ``sending``: a sender claimed it (conditional write) and is calling the platform;
- ``retrying``: the platform failed before anything was written; SQS delivers it again;
- ``sent``: the platform gave it an id;
- ``failed``: the platform refused it, or passing failures ran out of attempts;
- ``unknown``: the platform may or may not have it (timeout after sending); a
  person checks and retries by hand. Never posted again by itself.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from chalicelib.domain.case import Case, ReplyTarget
from chalicelib.domain.errors import BadRequest, Conflict
from chalicelib.domain.limits import text_problem
from chalicelib.domain.text_limits import MAX_TEXT, X_MAX_DM_LENGTH, platform_length

MODES = ("public", "private")
PRIVATE_ONLY = ("messenger", "whatsapp")
DELIVERY_STATUSES = ("queued", "sending", "retrying", "sent", "failed", "unknown")
MAX_IDEMPOTENCY_KEY = 128


@dataclass
class Reply:
    reply_id: str
    case_id: str
    text: str
    mode: str
    agent_id: str
    created_at: str
    target: ReplyTarget
    delivery_status: str = "queued"
    attempts: int = 0
    idempotency_key: Optional[str] = None
    sending_since: Optional[str] = None
    platform_post_id: Optional[str] = None
    sent_at: Optional[str] = None
    failed_at: Optional[str] = None
    error: Optional[str] = None
    last_error: Optional[str] = None
    note: Optional[str] = None
    # Sent by socialcare itself (an away message, a survey), not by an agent: it never stops an SLA clock.
    automatic: bool = False
    # Buttons the customer may tap instead of typing (a CSAT survey): ``[{"id", "title"}]``, the id
    # coming back with the tap. Messenger and Instagram show them as quick replies, WhatsApp as reply
    # buttons; X DMs cannot carry them, so there the text must stand on its own.
    options: List[Dict[str, str]] = field(default_factory=list)
    # An approved WhatsApp template (``{"name", "language"}``) sent instead of free text: the only
    # message WhatsApp lets a business start outside the 24-hour window. Its buttons are ``options``.
    template: Optional[Dict[str, str]] = None
    # The canned reply (domain/templates.py) the text came from, and what the brand-voice gate said:
    # ``{"warnings": [finding], "override": {"by", "reason", "findings"}}`` (services/brand_voice.py).
    template_id: Optional[str] = None
    brand_voice: Optional[Dict[str, Any]] = None
    # Issue 12, replies with media and outside the window (services/reply_windows.py): an image
    # (``{"url"}`` or ``{"media_id"}`` of a file of the case), the HUMAN_AGENT tag (Messenger and
    # Instagram, up to 7 days), and the values of a WhatsApp template's {{1}}, {{2}}...
    attachment: Optional[Dict[str, str]] = None
    tag: Optional[str] = None
    template_variables: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["target"] = self.target.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Reply":
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        known["target"] = ReplyTarget.from_dict(data["target"])
        known["options"] = [{"id": str(o["id"]), "title": str(o["title"])} for o in known.get("options") or []]
        if known.get("template") is not None:
            known["template"] = {k: str(v) for k, v in dict(known["template"]).items()}
        return cls(**known)

    def public_view(self) -> Dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if v is not None and v != []}


def validate_reply_request(body: Any, case: Case) -> Dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with a 'text' field")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("field 'text' is required: the reply to send, a non-empty string")
    mode = body.get("mode", "public")
    if mode not in MODES:
        raise BadRequest("field 'mode' must be 'public' (reply under the post) or 'private' (direct message)")
    target = case.reply_target
    platform = target.platform
    if platform in PRIVATE_ONLY or target.is_dm:
        mode = "private"  # a conversation in a messaging channel is private by nature
    limit = X_MAX_DM_LENGTH if platform == "x" and mode == "private" else MAX_TEXT.get(platform, 280)
    problem = text_problem(text, max_length=max(limit, len(text)), multiline=True)
    if problem:
        raise BadRequest(f"field 'text' {problem}")
    length = platform_length(platform, text) if mode == "public" else len(text)
    if length > limit:
        raise BadRequest(f"field 'text' counts {length} characters on {platform}, which allows {limit}; shorten it"
                         + (" or answer by DM" if platform == "x" else ""))
    if platform == "x" and mode == "public" and not target.addressed_to_brand:
        raise Conflict("X does not accept an API reply to a post that did not mention the brand; "
                       "answer with mode 'private' (a DM) or reply by hand on X")
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY):
        raise BadRequest(f"field 'idempotency_key' must be a string of 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return {"text": text, "mode": mode, "idempotency_key": key}


def reply_id_for(case_id: str, idempotency_key: Optional[str]) -> str:
    if idempotency_key:
        # The same key from a double click or a client retry names the same reply.
        digest = hashlib.sha256(f"{case_id}|{idempotency_key}".encode()).hexdigest()
        return "r_" + digest[:20]
    return "r_" + uuid.uuid4().hex[:20]


def new_reply(case: Case, request: Dict[str, Any], *, agent_id: str, now: str) -> Reply:
    return Reply(
        reply_id=reply_id_for(case.case_id, request["idempotency_key"]), case_id=case.case_id,
        text=request["text"], mode=request["mode"], agent_id=agent_id, created_at=now,
        target=case.reply_target, idempotency_key=request["idempotency_key"],
    )
