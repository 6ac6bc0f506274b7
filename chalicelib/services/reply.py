"""Replies: an agent's answer is stored, queued, and reaches the customer exactly once.

The API answers 202 only when the reply is stored and on the outbound queue.
The sender claims it with a conditional write (``queued``/``retrying`` ->
``sending``) before calling the platform, so two deliveries of one message
cannot both post. After the call:

- the platform gave an id: ``sent``;
- it refused (bad request, window closed): ``failed`` with its words;
- it failed before writing anything (rate limit, unreachable): ``retrying``,
  and the message comes back (after the platform's reset time), until the
  queue's last delivery, when the reply ends ``failed`` with the reason;
- the outcome is unclear (timeout after sending, 5xx, an answer without an
  id, a sender that died mid-send): socialcare asks the platform whether the
  reply is there; found, it is ``sent``; otherwise ``unknown``, and a person
  checks and retries it by hand. It is never posted again by itself.

A ``sending`` claim is stale after two thirds of the outbound queue's
visibility timeout, read from the queue itself: longer than any sender runs
(its Lambda timeout is far shorter), shorter than the time after which SQS
delivers the message again, so the redelivery that follows a crash finds the
claim stale and resolves it.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Dict, List, Optional

from chalicelib.domain import case as case_rules
from chalicelib.domain.case import Case, ReplyTarget
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import (
    AmbiguousOutcome,
    Conflict,
    NotFound,
    PermanentFailure,
    PlatformError,
    RateLimited,
    Refused,
    RetryLater,
    TransientFailure,
    Unavailable,
)
from chalicelib.domain.reply import Reply, new_reply, validate_reply_request
from chalicelib.domain.source import account_of
from chalicelib.observability import count, logger
from chalicelib.ports import Deps
from chalicelib.services import qa, reply_windows, sla
from chalicelib.services.case_updates import modify_case

RETRYABLE_BY_AGENT = ("queued", "failed", "unknown")
MAX_ERROR = 1000


# ---- the API side -----------------------------------------------------------------------

def request_reply(case: Case, body: Any, *, agent_id: str, deps: Deps) -> Dict[str, Any]:
    """Store and queue an agent's reply; the same idempotency key names the same reply."""
    # An image, the HUMAN_AGENT tag, a WhatsApp template; the platform's window (409): services/reply_windows.py.
    body, extras = reply_windows.prepare_reply(case, body, deps)
    # A template rendered into ``text``, brand-voice checks (409 unless ``override_reason``): services/brand_voice.py
    # (imported here: the sender, which loads this module too, never needs it).
    from chalicelib.services import brand_voice

    body, screened = brand_voice.screen_reply(case, body, agent_id=agent_id, deps=deps)
    request = validate_reply_request(body, case)
    now = deps.now()
    reply = replace(new_reply(case, request, agent_id=agent_id, now=now), **screened.reply_fields)
    reply = replace(reply, **extras) if extras else reply
    if not deps.cases.put_reply(reply):
        existing = deps.cases.get_reply(case.case_id, reply.reply_id)
        if existing is None:  # pragma: no cover - the store said it exists
            raise Conflict("that idempotency_key is in use; send the request again")
        if (existing.text, existing.mode) != (reply.text, reply.mode):
            raise Conflict("idempotency_key was already used for a different reply on this case; "
                           "use a new key for a new reply")
        if existing.delivery_status == "queued":
            _enqueue(existing, deps)  # stored earlier but perhaps never queued: queue it now
        return existing.public_view()
    _enqueue(reply, deps)
    deps.cases.add_event(case.case_id, {"event": "reply_queued", "reply_id": reply.reply_id, "agent_id": agent_id},
                         at=now)
    brand_voice.after_reply(reply, screened, deps)
    return reply.public_view()


def retry_reply(case: Case, reply_id: str, *, agent_id: str, deps: Deps) -> Dict[str, Any]:
    """An agent sends a failed or unknown reply again, after checking the platform."""
    reply = deps.cases.get_reply(case.case_id, reply_id)
    if reply is None:
        raise NotFound(f"reply '{reply_id}' does not exist on case '{case.case_id}'")
    if reply.delivery_status not in RETRYABLE_BY_AGENT:
        raise Conflict(f"reply '{reply_id}' is {reply.delivery_status}; only a queued, failed or unknown reply "
                       "can be sent again")
    now = deps.now()
    if reply.delivery_status != "queued":
        requeued = deps.cases.update_reply(case.case_id, reply_id, {
            "delivery_status": "queued", "error": None, "failed_at": None, "sending_since": None,
            "retried_by": agent_id, "retried_at": now,
        }, expect_status=(reply.delivery_status,))
        if not requeued:
            raise Conflict(f"reply '{reply_id}' changed meanwhile; reload and try again")
        deps.cases.add_event(case.case_id, {"event": "reply_retried", "reply_id": reply_id, "agent_id": agent_id,
                                            "was": reply.delivery_status}, at=now)
    _enqueue(reply, deps)
    updated = deps.cases.get_reply(case.case_id, reply_id)
    return (updated or reply).public_view()


def _enqueue(reply: Reply, deps: Deps) -> None:
    try:
        deps.outbound_queue.send({"case_id": reply.case_id, "reply_id": reply.reply_id})
    except Exception as err:  # any failure to queue: the reply is stored, the client must know it is not queued
        logger.error("reply stored but not queued", extra={"reply_id": reply.reply_id, "reason": str(err)[:300]})
        raise Unavailable(
            f"reply '{reply.reply_id}' is saved but could not be queued for sending; send the same request again "
            f"(same idempotency_key), or POST /cases/{reply.case_id}/replies/{reply.reply_id}/retry"
        ) from None


# ---- the sender ---------------------------------------------------------------------------

def parse_outbound(body: str) -> Dict[str, str]:
    try:
        message = json.loads(body)
        case_id, reply_id = message["case_id"], message["reply_id"]
    except (ValueError, KeyError, TypeError) as err:
        raise PermanentFailure(f"not an outbound reply message: {err}") from err
    if not (isinstance(case_id, str) and isinstance(reply_id, str) and 0 < len(case_id) <= 128
            and 0 < len(reply_id) <= 128):
        raise PermanentFailure("not an outbound reply message: case_id and reply_id must be short strings")
    return {"case_id": case_id, "reply_id": reply_id}


def deliver_reply(body: str, deps: Deps, *, receive_count: int = 1) -> Dict[str, Any]:
    """Send one queued reply; ``receive_count`` is how often SQS has delivered this message."""
    ids = parse_outbound(body)
    case_id, reply_id = ids["case_id"], ids["reply_id"]
    reply = deps.cases.get_reply(case_id, reply_id)
    if reply is None:
        raise PermanentFailure(f"reply {reply_id} of case {case_id} does not exist")
    status = reply.delivery_status
    now = deps.now()
    policy = deps.outbound_queue.delivery_policy()
    stale_after = policy.visibility_seconds * 2 // 3
    if status in ("sent", "failed", "unknown"):
        return {"reply_id": reply_id, "outcome": "already_" + status}
    if status == "sending":
        age = (parse_iso(now) - parse_iso(reply.sending_since or now)).total_seconds()
        if age < stale_after:
            # Another delivery is sending it now: look again once that sender must have finished.
            raise RetryLater(f"reply {reply_id} is being sent by another delivery",
                             delay_seconds=int(stale_after - age) + 1)
        return _resolve_unclear(reply, "the sender stopped mid-send", deps, now)
    last_chance = receive_count >= policy.max_receives
    # Build the platform client before claiming: a passing AWS fault here (the
    # secret, a throttled call) leaves the reply queued for the next delivery.
    client = _client_for(reply.target, deps)
    claimed = deps.cases.update_reply(case_id, reply_id, {
        "delivery_status": "sending", "sending_since": now, "attempts": reply.attempts + 1,
    }, expect_status=("queued", "retrying"))
    if not claimed:
        raise RetryLater(f"reply {reply_id} was claimed by another delivery", delay_seconds=stale_after)
    claimed_reply = replace(reply, delivery_status="sending", sending_since=now, attempts=reply.attempts + 1)
    try:
        post_id = send_via_platform(reply.target, reply.mode, reply.text, client, options=reply.options,
                                    template=reply.template, **reply_windows.sender_kwargs(reply, deps))
    except Refused as err:
        if err.duplicate and reply.attempts >= 1:
            # X refuses text it already posted: an earlier attempt of ours went through.
            return _resolve_unclear(claimed_reply, f"the platform reports this text as already posted ({err})",
                                    deps, now)
        _fail(deps, case_id, reply_id, str(err), now, expect=("sending",))
        return {"reply_id": reply_id, "outcome": "failed", "error": str(err)}
    except AmbiguousOutcome as err:
        return _resolve_unclear(claimed_reply, str(err), deps, now)
    except (RateLimited, TransientFailure) as err:
        # Nothing was written: safe to send again later, unless this was the last delivery.
        if last_chance:
            _fail(deps, case_id, reply_id, f"gave up after {receive_count} attempts; last error: {err}", now,
                  expect=("sending",))
            return {"reply_id": reply_id, "outcome": "failed", "error": str(err)}
        deps.cases.update_reply(case_id, reply_id, {"delivery_status": "retrying", "last_error": str(err)[:500]},
                                expect_status=("sending",))
        delay = (err.resume_at(int(deps.epoch())) - int(deps.epoch())) if isinstance(err, RateLimited) else 0
        raise RetryLater(f"reply {reply_id} not sent yet: {err}", delay_seconds=delay) from err
    except Exception as err:  # noqa: BLE001 - anything else after the claim: it may have been written
        logger.exception("unexpected error while sending a reply", extra={"reply_id": reply_id})
        return _resolve_unclear(claimed_reply, f"unexpected error while sending: {type(err).__name__}", deps, now)
    _mark_sent(deps, claimed_reply, post_id, now)
    return {"reply_id": reply_id, "outcome": "sent", "platform_post_id": post_id, "automatic": reply.automatic}


def _mark_sent(deps: Deps, reply: Reply, post_id: Optional[str], now: str, note: Optional[str] = None) -> None:
    fields: Dict[str, Any] = {"delivery_status": "sent", "platform_post_id": post_id, "sent_at": now}
    if note:
        fields["note"] = note
    deps.cases.update_reply(reply.case_id, reply.reply_id, fields, expect_status=("sending",))
    if post_id:
        deps.cases.record_delivery(reply.target.platform, post_id, reply.case_id, reply.reply_id)
    deps.cases.add_event(reply.case_id, {"event": "reply_sent", "reply_id": reply.reply_id,
                                         "platform_post_id": post_id, "automatic": reply.automatic}, at=now)
    if reply.automatic:
        return  # an acknowledgement is not a response: the clocks keep running
    # Into the week's QA pool before the case is touched; note_sent never raises, so QA cannot fail a send.
    qa.note_sent(reply, now, deps)
    updated = modify_case(deps.cases, reply.case_id,
                          lambda c: sla.refresh(case_rules.with_response(c, now), deps, now))
    if updated is not None and updated.first_response_at == now and updated.response_count == 1:
        waited = (parse_iso(now) - parse_iso(updated.customer_posted_at or updated.created_at)).total_seconds()
        deps.settings.record_first_response(updated.team, max(0, int(waited)), at=now)


def _resolve_unclear(reply: Reply, why: str, deps: Deps, now: str) -> Dict[str, Any]:
    """Ask the platform whether the reply is there; never post it again by guess."""
    since = reply.sending_since or reply.created_at
    try:
        found = look_for_sent(reply.target, reply.mode, reply.text, since, deps)
    except PlatformError as err:
        logger.warning("could not look for an unclear reply", extra={"reply_id": reply.reply_id, "reason": str(err)})
        found = None
    if found:
        _mark_sent(deps, reply, found, now, note=f"confirmed on the platform after an unclear answer ({why})"[:MAX_ERROR])
        return {"reply_id": reply.reply_id, "outcome": "sent", "platform_post_id": found}
    platform = reply.target.platform
    message = (f"delivery outcome unknown: {why}. socialcare could not confirm that the customer received it; "
               f"check the conversation on {platform} and, if the reply is missing, retry it from the case.")
    deps.cases.update_reply(reply.case_id, reply.reply_id, {"delivery_status": "unknown", "error": message[:MAX_ERROR],
                                                            "failed_at": now}, expect_status=("sending",))
    deps.cases.add_event(reply.case_id, {"event": "reply_unknown", "reply_id": reply.reply_id,
                                         "error": message[:MAX_ERROR]}, at=now)
    count("RepliesFailed")  # an alarm watches it: a person must check this reply
    return {"reply_id": reply.reply_id, "outcome": "unknown", "error": message}


def _fail(deps: Deps, case_id: str, reply_id: str, error: str, now: str, *, expect: Any) -> None:
    deps.cases.update_reply(case_id, reply_id,
                            {"delivery_status": "failed", "error": error[:MAX_ERROR], "failed_at": now},
                            expect_status=expect)
    deps.cases.add_event(case_id, {"event": "reply_failed", "reply_id": reply_id, "error": error[:MAX_ERROR]}, at=now)
    count("RepliesFailed")


def _client_for(target: ReplyTarget, deps: Deps) -> Any:
    return deps.platforms.x() if target.platform == "x" else deps.platforms.graph()


def send_via_platform(target: ReplyTarget, mode: str, text: str, client: Any, *,
                      options: Optional[List[Dict[str, str]]] = None,
                      template: Optional[Dict[str, str]] = None,
                      attachment: Optional[Dict[str, str]] = None, tag: Optional[str] = None,
                      template_variables: Optional[List[str]] = None) -> str:
    """Send one reply; ``options`` (buttons to tap) and ``template`` go with a direct message only.

    X DMs carry no buttons: the text is sent alone, and a survey's text says how to answer in
    words. A survey is its own message, so on WhatsApp it does not quote the customer's last one.
    """
    platform = target.platform
    if platform == "x":
        private = mode == "private" or target.is_dm
        # An image is uploaded first (nothing the customer sees), then goes with the post or DM.
        media = client.upload_image_url(attachment["url"], for_dm=private) if attachment else None
        if private:
            return str(client.send_dm(target.author_id, text, media_id=media) if media
                       else client.send_dm(target.author_id, text))
        return str(client.reply(target.platform_id, text, media_ids=[media]) if media
                   else client.reply(target.platform_id, text))
    account_id = account_of(target.source_id)
    if platform in ("messenger", "whatsapp") or target.is_dm:
        interactive = bool(options) or template is not None
        # Only when there are any: a plain message calls the client exactly as before.
        extra: Dict[str, Any] = {"options": list(options)} if options else {}
        if template is not None:
            extra["template"] = dict(template)
        # Issue 12: an image, the HUMAN_AGENT tag, a template's variables (each only when there is one).
        extra.update({k: v for k, v in (("attachment", attachment), ("tag", tag),
                                         ("template_variables", template_variables)) if v})
        quoted = target.platform_id if platform == "whatsapp" and not interactive else None
        return str(client.send_message(platform, account_id, target.author_id, text,
                                       reply_to_message_id=quoted, **extra))
    if mode == "private":
        # One private message to the commenter, the way Meta allows it.
        return str(client.private_reply_to_comment(account_id, target.platform_id, text, platform=platform))
    if platform == "instagram" and target.kind == "mention":
        media_id = target.conversation_id or target.platform_id
        comment_id = target.platform_id if target.platform_id != media_id else None
        return str(client.reply_to_ig_mention(account_id, media_id, text, comment_id=comment_id))
    if attachment:  # where it is allowed (a Facebook comment): services/reply_windows.py checked it
        return str(client.reply_to_comment(platform, target.platform_id, text, attachment_url=attachment["url"]))
    return str(client.reply_to_comment(platform, target.platform_id, text))


def look_for_sent(target: ReplyTarget, mode: str, text: str, since: str, deps: Deps) -> Optional[str]:
    """The platform id of our reply if the platform shows it; None when it cannot be confirmed.

    X shows the brand's own posts and DMs. Graph offers no reliable look-up
    of one sent message, so Meta replies stay unconfirmed (``unknown``).
    """
    if target.platform != "x":
        return None
    brand_id = account_of(target.source_id)
    x = deps.platforms.x()
    if mode == "private" or target.is_dm:
        return x.find_dm(target.author_id, text, since, brand_id)
    return x.find_reply(brand_id, target.platform_id, text, since)


def report_late_failure(platform: str, message_id: str, errors: Any, deps: Deps) -> bool:
    """A platform accepted a message, then reported it undelivered (WhatsApp's 24-hour window)."""
    known = deps.cases.find_delivery(platform, message_id)
    if not known:
        return False
    detail = "; ".join(str(e.get("title") or e.get("message") or e.get("code")) for e in errors if isinstance(e, dict))
    case_id, reply_id = known
    _fail(deps, case_id, reply_id, f"{platform} reported the message undelivered: {detail or 'no reason given'}",
          deps.now(), expect=("sent",))
    return True
