"""Replies: an agent's answer is stored, queued, and sent exactly once.

The API stores the reply as ``queued`` and puts its id on the outbound queue.
The sender claims it with a conditional write (``queued``/``retrying`` ->
``sending``) before calling the platform, so a repeated SQS delivery cannot
post it twice; a platform refusal becomes ``failed`` with the platform's
words, a passing fault ``retrying`` and the message goes back to SQS.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any, Dict

from chalicelib.domain.case import Case, ReplyTarget
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import PermanentFailure, RateLimited, Refused, TransientFailure
from chalicelib.domain.reply import new_reply, validate_reply_request
from chalicelib.domain.source import account_of
from chalicelib.ports import Deps
from chalicelib.services.case_updates import modify_case

STALE_SENDING = timedelta(minutes=5)


def request_reply(case: Case, body: Any, *, agent_id: str, deps: Deps) -> Dict[str, Any]:
    request = validate_reply_request(body, case)
    now = deps.now()
    reply = new_reply(case, request, agent_id=agent_id, now=now)
    if not deps.cases.put_reply(reply):
        existing = deps.cases.get_reply(case.case_id, reply.reply_id)  # same idempotency key: same reply
        return existing.public_view() if existing else reply.public_view()
    deps.outbound_queue.send({"case_id": case.case_id, "reply_id": reply.reply_id})
    deps.cases.add_event(case.case_id, {"event": "reply_queued", "reply_id": reply.reply_id, "agent_id": agent_id},
                         at=now)
    return reply.public_view()


class TransientDeliveryError(Exception):
    """The platform may accept the reply later: let SQS deliver the message again."""


def deliver_reply(body: str, deps: Deps) -> Dict[str, Any]:
    try:
        message = json.loads(body)
        case_id, reply_id = message["case_id"], message["reply_id"]
    except (ValueError, KeyError, TypeError) as err:
        raise PermanentFailure(f"not an outbound reply message: {err}") from err
    reply = deps.cases.get_reply(case_id, reply_id)
    if reply is None:
        raise PermanentFailure(f"reply {reply_id} of case {case_id} does not exist")
    status = reply.delivery_status
    now = deps.now()
    if status in ("sent", "failed"):
        return {"reply_id": reply_id, "outcome": "already_" + status}
    if status == "sending":
        if parse_iso(now) - parse_iso(reply.sending_since or now) < STALE_SENDING:
            return {"reply_id": reply_id, "outcome": "in_progress"}
        # A sender died mid-call: the post may or may not exist. Never guess by posting again.
        _fail(deps, case_id, reply_id, "delivery outcome unknown (the sender stopped mid-send); check the platform before re-sending", now,
              expect=("sending",))
        return {"reply_id": reply_id, "outcome": "failed"}
    claimed = deps.cases.update_reply(case_id, reply_id, {
        "delivery_status": "sending", "sending_since": now, "attempts": reply.attempts + 1,
    }, expect_status=("queued", "retrying"))
    if not claimed:
        return {"reply_id": reply_id, "outcome": "in_progress"}
    try:
        post_id = send_via_platform(reply.target, reply.mode, reply.text, deps)
    except Refused as err:
        if err.duplicate and reply.attempts >= 1:
            # X refuses identical text it already posted: our earlier attempt went through.
            deps.cases.update_reply(case_id, reply_id, {"delivery_status": "sent", "sent_at": now,
                                                        "note": "the platform reports this text as already posted"},
                                    expect_status=("sending",))
            deps.cases.add_event(case_id, {"event": "reply_sent", "reply_id": reply_id}, at=now)
            return {"reply_id": reply_id, "outcome": "sent", "platform_post_id": None}
        _fail(deps, case_id, reply_id, str(err), now, expect=("sending",))
        return {"reply_id": reply_id, "outcome": "failed", "error": str(err)}
    except (RateLimited, TransientFailure) as err:
        if True:
            deps.cases.update_reply(case_id, reply_id, {"delivery_status": "retrying", "last_error": str(err)[:500]},
                                    expect_status=("sending",))
            raise TransientDeliveryError(str(err)) from err
    deps.cases.update_reply(case_id, reply_id, {"delivery_status": "sent", "platform_post_id": post_id, "sent_at": now},
                            expect_status=("sending",))
    if post_id:
        deps.cases.record_delivery(reply.target.platform, post_id, case_id, reply_id)
    modify_case(deps.cases, case_id, lambda c: None if c.first_response_at else replace(c, first_response_at=now))
    deps.cases.add_event(case_id, {"event": "reply_sent", "reply_id": reply_id, "platform_post_id": post_id}, at=now)
    return {"reply_id": reply_id, "outcome": "sent", "platform_post_id": post_id}


def _fail(deps: Deps, case_id: str, reply_id: str, error: str, now: str, *, expect: Any) -> None:
    deps.cases.update_reply(case_id, reply_id,
                            {"delivery_status": "failed", "error": error[:1000], "failed_at": now}, expect_status=expect)
    deps.cases.add_event(case_id, {"event": "reply_failed", "reply_id": reply_id, "error": error[:1000]}, at=now)


def send_via_platform(target: ReplyTarget, mode: str, text: str, deps: Deps) -> str:
    platform = target.platform
    if platform == "x":
        x = deps.platforms.x()
        if mode == "private" or target.is_dm:
            return x.send_dm(target.author_id, text)
        return x.reply(target.platform_id, text)
    graph = deps.platforms.graph()
    account_id = account_of(target.source_id)
    if platform in ("messenger", "whatsapp") or target.is_dm:
        return graph.send_message(platform, account_id, target.author_id, text,
                                  reply_to_message_id=target.platform_id if platform == "whatsapp" else None)
    if mode == "private":
        # One private message to the commenter, the way Meta allows it.
        return graph.private_reply_to_comment(account_id, target.platform_id, text, platform=platform)
    if platform == "instagram" and target.kind == "mention":
        media_id = target.conversation_id or target.platform_id
        comment_id = target.platform_id if target.platform_id != media_id else None
        return graph.reply_to_ig_mention(account_id, media_id, text, comment_id=comment_id)
    return graph.reply_to_comment(platform, target.platform_id, text)


def report_late_failure(platform: str, message_id: str, errors: Any, deps: Deps) -> bool:
    """A platform accepted a message, then reported it undelivered (WhatsApp's 24-hour window)."""
    known = deps.cases.find_delivery(platform, message_id)
    if not known:
        return False
    detail = "; ".join(str(e.get("title") or e.get("message") or e.get("code")) for e in errors if isinstance(e, dict))
    case_id, reply_id = known
    _fail(deps, case_id, reply_id, f"{platform} reported the message undelivered: {detail or 'no reason given'}", deps.now(),
          expect=("sent",))
    return True
