"""Replies: an agent's answer is stored, queued, and sent exactly once.

The API stores the reply as ``queued`` and puts its id on the outbound queue.
The sender claims it with a conditional write (``queued``/``retrying`` ->
``sending``) before calling the platform, so a repeated SQS delivery cannot
post it twice; a platform refusal becomes ``failed`` with the platform's
words, a passing fault ``retrying`` and the message goes back to SQS.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any, Dict, Optional

from chalicelib.clock import parse_iso
from chalicelib.errors import BadRequest, Conflict, PermanentFailure

MODES = ("public", "private")
# Characters per message; platforms refuse longer ones, so say so before queuing.
MAX_TEXT = {"x": 280, "facebook": 8000, "instagram": 2200, "messenger": 2000, "whatsapp": 4096}
PRIVATE_ONLY = ("messenger", "whatsapp")
STALE_SENDING = timedelta(minutes=5)


def validate_reply_request(body: Any, case: Dict[str, Any]) -> Dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with a 'text' field")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("field 'text' is required: the reply to send, a non-empty string")
    mode = body.get("mode", "public")
    if mode not in MODES:
        raise BadRequest("field 'mode' must be 'public' (reply under the post) or 'private' (direct message)")
    target = case["reply_target"]
    platform = target["platform"]
    if platform in PRIVATE_ONLY or target.get("kind") == "dm":
        mode = "private"  # a conversation in a messaging channel is private by nature
    limit = MAX_TEXT.get(platform, 280)
    length = _platform_length(platform, text)
    if length > limit:
        raise BadRequest(f"field 'text' counts {length} characters on {platform}, which allows {limit}; shorten it"
                         + (" or answer by DM" if platform == "x" else ""))
    if platform == "x" and mode == "public" and not target.get("addressed_to_brand", True):
        raise Conflict("X does not accept an API reply to a post that did not mention the brand; "
                       "answer with mode 'private' (a DM) or reply by hand on X")
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 128):
        raise BadRequest("field 'idempotency_key' must be a string of 1 to 128 characters")
    return {"text": text, "mode": mode, "idempotency_key": key}


def _platform_length(platform: str, text: str) -> int:
    if platform == "x":
        from chalicelib.platforms.x import weighted_length  # X counts CJK and emoji as two, URLs as 23

        return weighted_length(text)
    return len(text)


def new_reply(case: Dict[str, Any], request: Dict[str, Any], *, agent_id: str, now: str) -> Dict[str, Any]:
    if request["idempotency_key"]:
        # The same key from a double click or a client retry names the same reply.
        digest = hashlib.sha256(f"{case['case_id']}|{request['idempotency_key']}".encode()).hexdigest()
        reply_id = "r_" + digest[:20]
    else:
        reply_id = "r_" + uuid.uuid4().hex[:20]
    return {
        "reply_id": reply_id, "case_id": case["case_id"], "text": request["text"], "mode": request["mode"],
        "agent_id": agent_id, "created_at": now, "delivery_status": "queued", "attempts": 0,
        "target": case["reply_target"],
    }


def request_reply(case: Dict[str, Any], body: Any, *, agent_id: str, deps: Any) -> Dict[str, Any]:
    request = validate_reply_request(body, case)
    now = deps.now()
    reply = new_reply(case, request, agent_id=agent_id, now=now)
    if not deps.cases.put_reply(reply):
        return deps.cases.get_reply(case["case_id"], reply["reply_id"])  # same idempotency key: same reply
    deps.outbound_queue.send({"case_id": case["case_id"], "reply_id": reply["reply_id"]})
    deps.cases.add_event(case["case_id"], {"event": "reply_queued", "reply_id": reply["reply_id"], "agent_id": agent_id}, at=now)
    return reply


class TransientDeliveryError(Exception):
    """The platform may accept the reply later: let SQS deliver the message again."""


def deliver_reply(body: str, deps: Any) -> Dict[str, Any]:
    try:
        message = json.loads(body)
        case_id, reply_id = message["case_id"], message["reply_id"]
    except (ValueError, KeyError, TypeError) as err:
        raise PermanentFailure(f"not an outbound reply message: {err}") from err
    reply = deps.cases.get_reply(case_id, reply_id)
    if reply is None:
        raise PermanentFailure(f"reply {reply_id} of case {case_id} does not exist")
    status = reply["delivery_status"]
    now = deps.now()
    if status in ("sent", "failed"):
        return {"reply_id": reply_id, "outcome": "already_" + status}
    if status == "sending":
        if parse_iso(now) - parse_iso(reply.get("sending_since", now)) < STALE_SENDING:
            return {"reply_id": reply_id, "outcome": "in_progress"}
        # A sender died mid-call: the post may or may not exist. Never guess by posting again.
        _fail(deps, reply, "delivery outcome unknown (the sender stopped mid-send); check the platform before re-sending", now,
              expect=("sending",))
        return {"reply_id": reply_id, "outcome": "failed"}
    claimed = deps.cases.update_reply(case_id, reply_id, {
        "delivery_status": "sending", "sending_since": now, "attempts": int(reply.get("attempts", 0)) + 1,
    }, expect_status=("queued", "retrying"))
    if not claimed:
        return {"reply_id": reply_id, "outcome": "in_progress"}
    try:
        post_id = send_via_platform(reply["target"], reply["mode"], reply["text"], deps)
    except Exception as err:
        if getattr(err, "duplicate", False) and int(reply.get("attempts", 0)) >= 1:
            # X refuses identical text it already posted: our earlier attempt went through.
            deps.cases.update_reply(case_id, reply_id, {"delivery_status": "sent", "sent_at": now,
                                                        "note": "the platform reports this text as already posted"},
                                    expect_status=("sending",))
            deps.cases.add_event(case_id, {"event": "reply_sent", "reply_id": reply_id}, at=now)
            return {"reply_id": reply_id, "outcome": "sent", "platform_post_id": None}
        if is_transient(err):
            deps.cases.update_reply(case_id, reply_id, {"delivery_status": "retrying", "last_error": str(err)[:500]},
                                    expect_status=("sending",))
            raise TransientDeliveryError(str(err)) from err
        _fail(deps, reply, str(err), now, expect=("sending",))
        return {"reply_id": reply_id, "outcome": "failed", "error": str(err)}
    deps.cases.update_reply(case_id, reply_id, {"delivery_status": "sent", "platform_post_id": post_id, "sent_at": now},
                            expect_status=("sending",))
    if post_id:
        deps.cases.record_delivery(reply["target"]["platform"], post_id, case_id, reply_id)
    case = deps.cases.get(case_id) or {}
    if not case.get("first_response_at"):
        deps.cases.update(case_id, {"first_response_at": now})
    deps.cases.add_event(case_id, {"event": "reply_sent", "reply_id": reply_id, "platform_post_id": post_id}, at=now)
    return {"reply_id": reply_id, "outcome": "sent", "platform_post_id": post_id}


def _fail(deps: Any, reply: Dict[str, Any], error: str, now: str, *, expect) -> None:
    deps.cases.update_reply(reply["case_id"], reply["reply_id"],
                            {"delivery_status": "failed", "error": error[:1000], "failed_at": now}, expect_status=expect)
    deps.cases.add_event(reply["case_id"], {"event": "reply_failed", "reply_id": reply["reply_id"], "error": error[:1000]}, at=now)


def is_transient(err: Exception) -> bool:
    return type(err).__name__ in {
        "XRateLimited", "XTransientError", "MetaRateLimited", "MetaTransientError", "TransportError",
    }


def send_via_platform(target: Dict[str, Any], mode: str, text: str, deps: Any) -> str:
    platform = target["platform"]
    if platform == "x":
        client = deps.x_client()
        if mode == "private" or target.get("kind") == "dm":
            return client.send_dm(target["author_id"], text)
        return client.reply(target["platform_id"], text)
    graph = deps.graph_client()
    account_id = _account_id(target)
    if platform in ("messenger", "whatsapp") or target.get("kind") == "dm":
        return graph.send_message(platform, account_id, target["author_id"], text,
                                  reply_to_message_id=target["platform_id"] if platform == "whatsapp" else None)
    if mode == "private":
        # One private message to the commenter, the way Meta allows it.
        return graph.private_reply_to_comment(account_id, target["platform_id"], text, platform=platform)
    if platform == "instagram" and target.get("kind") == "mention":
        media_id = target.get("conversation_id") or target["platform_id"]
        comment_id = target["platform_id"] if target["platform_id"] != media_id else None
        return graph.reply_to_ig_mention(account_id, media_id, text, comment_id=comment_id)
    return graph.reply_to_comment(platform, target["platform_id"], text)


def _account_id(target: Dict[str, Any]) -> Optional[str]:
    from chalicelib.listen.sources import account_of

    return account_of(target.get("source_id") or "")


def report_late_failure(platform: str, message_id: str, errors: Any, deps: Any) -> bool:
    """A platform accepted a message, then reported it undelivered (WhatsApp's 24-hour window)."""
    known = deps.cases.find_delivery(platform, message_id)
    if not known:
        return False
    detail = "; ".join(str(e.get("title") or e.get("message") or e.get("code")) for e in errors if isinstance(e, dict))
    reply = {"case_id": known["case_id"], "reply_id": known["reply_id"]}
    _fail(deps, reply, f"{platform} reported the message undelivered: {detail or 'no reason given'}", deps.now(),
          expect=("sent",))
    return True
