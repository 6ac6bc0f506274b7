"""The triage stage: dedupe a queued mention, classify it, forward cases.

Idempotent by design: SQS delivers at least once, so running this twice for
one mention must change nothing.

Before classifying, a message from a customer whose CSAT survey awaits an
answer is offered to ``csat.take_answer``: an answer is stored on the
surveyed case and settles the mention as ``csat_answer``; it never opens a
case and is never triaged.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Dict, Optional

from chalicelib.domain import retention
from chalicelib.domain.errors import PermanentFailure, PlatformError, Refused
from chalicelib.domain.mention import InvalidMention, Mention, needs_lookup, needs_profile
from chalicelib.domain.source import account_of
from chalicelib.observability import logger
from chalicelib.ports import Deps
from chalicelib.services import csat
from chalicelib.services.rules import current_rules

if TYPE_CHECKING:  # the triage engine is imported when the first mention is classified
    from chalicelib.triage import Model

FORWARDED_OR_DONE = ("triaged", "routed", "no_case", csat.ANSWER_STATE)


def parse_mention(body: str, now: Optional[str] = None) -> Mention:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise PermanentFailure(f"message body is not JSON: {str(err)[:200]}") from err
    try:
        return Mention.from_dict(data, now=now)
    except InvalidMention as err:
        raise PermanentFailure(f"not a valid mention: {err}") from err


def complete(mention: Mention, deps: Deps) -> Mention:
    """Fill in what a webhook leaves out before triage reads the mention.

    An Instagram @mention arrives as ids only: its author and text are
    fetched, and a refusal is final. A Messenger or Instagram DM names its
    sender only by id: the profile (name; for Instagram also the handle,
    verified badge and followers, which triage tags read) is looked up, and a
    failure (no consent, a blocked business) leaves the DM unnamed rather than
    holding up the customer's message.
    """
    if needs_lookup(mention):
        return _instagram_mention(mention, deps)
    if needs_profile(mention):
        return _with_profile(mention, deps)
    return mention


def _instagram_mention(mention: Mention, deps: Deps) -> Mention:
    media_id = mention.conversation_id or mention.platform_id
    comment_id = mention.platform_id if mention.platform_id != media_id else None
    try:
        return deps.platforms.graph().ig_mention_details(account_of(mention.source_id), media_id, comment_id,
                                                         source_id=mention.source_id)
    except Refused as err:  # gone, or not ours: asking again will not change the answer
        raise PermanentFailure(f"Instagram mention {mention.platform_id} could not be looked up: {err}") from err


def _with_profile(mention: Mention, deps: Deps) -> Mention:
    try:
        author = deps.platforms.graph().messaging_profile(mention.platform, mention.author.id)
        return replace(mention, author=author).validate(deps.now())
    except (PlatformError, InvalidMention) as err:
        logger.warning("sender profile unavailable; the DM goes on unnamed",
                       extra={"mention_id": mention.id, "reason": str(err)[:300]})
        return mention


def current_model(deps: Deps) -> Optional["Model"]:
    """The brand's learned triage model, loaded once per container; None when not configured."""
    uri = deps.config.triage_model_uri
    if not uri:
        return None
    models = deps.caches.setdefault("models", {})
    if uri not in models:
        from chalicelib.triage import load_model

        models[uri] = load_model(deps.models.load(uri))
    return models[uri]


def triage_message(body: str, deps: Deps) -> Dict[str, Any]:
    from chalicelib.triage import classify

    now = deps.now()
    mention = complete(parse_mention(body, now), deps)
    try:
        mention.validate(now)  # what Graph filled in meets the same rules as what arrived
    except InvalidMention as err:
        raise PermanentFailure(f"not a valid mention after completing it from Graph: {err}") from err
    now_epoch = int(deps.epoch())
    existing = deps.mentions.claim(mention, now_epoch=now_epoch)
    # In the customer's ledger, so that an export or erasure finds it (also for a redelivery: repeatable).
    deps.cases.note_customer_mention(mention.customer_key, mention.id, expires_at=retention.mention_expires_at(
        now_epoch, deps.config.retention_mentions_days))
    if existing and existing.state in FORWARDED_OR_DONE:
        # A redelivery: it was forwarded (or settled) already. A crash between forwarding and
        # recording it leaves "received", and the assign stage drops the second copy.
        return {"mention_id": mention.id, "outcome": "duplicate"}
    answer = csat.take_answer(mention, deps, now, redelivered=existing is not None)
    if answer is not None:
        return {"mention_id": mention.id, "outcome": csat.ANSWER_STATE, **answer}
    decision = classify(mention.to_dict(), rules=current_rules(deps), model=current_model(deps)).to_dict()
    if decision["case"]:
        # When socialcare received the post: the case keeps it beside the customer's own time.
        deps.triaged_queue.send({"mention": mention.to_dict(), "triage": {**decision, "received_at": now}})
        state = "triaged"
    else:
        state = "no_case"
    deps.mentions.update(mention.id, state=state, triage=decision)
    return {"mention_id": mention.id, "outcome": state, "triage": decision}
