"""The triage stage: dedupe a queued mention, classify it, forward cases.

Idempotent by design: SQS delivers at least once and a failed batch is
retried whole, so running this twice for one mention must change nothing.
"""
from __future__ import annotations

import json
from typing import Any, Dict

from chalicelib.errors import PermanentFailure
from chalicelib.mention import InvalidMention, Mention

DONE_STATES = ("routed", "no_case")


def parse_mention(body: str) -> Mention:
    try:
        data = json.loads(body)
    except ValueError as err:
        raise PermanentFailure(f"message body is not JSON: {err}") from err
    try:
        return Mention.from_dict(data)
    except InvalidMention as err:
        raise PermanentFailure(f"not a valid mention: {err}") from err


def complete(mention: Mention, deps: Any) -> Mention:
    """Fill in what a webhook leaves out before triage reads the mention.

    An Instagram @mention arrives as ids only: its author and text are
    fetched, and a failure is final. A Messenger or Instagram DM names its
    sender only by id: the profile (name; for Instagram also the handle,
    verified badge and followers, which triage tags read) is looked up, and a
    failure (no consent, a blocked business) leaves the DM unnamed rather than
    holding up the customer's message.
    """
    from chalicelib.listen.webhooks import needs_lookup, needs_profile

    if needs_lookup(mention):
        return _instagram_mention(mention, deps)
    if needs_profile(mention):
        return _with_profile(mention, deps)
    return mention


def _instagram_mention(mention: Mention, deps: Any) -> Mention:
    from chalicelib.listen.sources import account_of
    from chalicelib.platforms.meta import MetaRequestError

    media_id = mention.conversation_id or mention.platform_id
    comment_id = mention.platform_id if mention.platform_id != media_id else None
    try:
        return deps.graph_client().ig_mention_details(account_of(mention.source_id), media_id, comment_id,
                                                      source_id=mention.source_id)
    except MetaRequestError as err:  # gone, or not ours: asking again will not change the answer
        raise PermanentFailure(f"Instagram mention {mention.platform_id} could not be looked up: {err}") from err


def _with_profile(mention: Mention, deps: Any) -> Mention:
    from dataclasses import replace

    from chalicelib.observability import logger
    from chalicelib.platforms.meta import MetaError

    try:
        author = deps.graph_client().messaging_profile(mention.platform, mention.author.id)
    except MetaError as err:
        logger.warning("sender profile unavailable; the DM goes on unnamed",
                       extra={"mention_id": mention.id, "reason": str(err)})
        return mention
    return replace(mention, author=author)


def triage_message(body: str, deps: Any) -> Dict[str, Any]:
    from chalicelib.triage import classify

    mention = complete(parse_mention(body), deps)
    existing = deps.mentions.claim(mention.to_dict(), now_epoch=int(deps.epoch()))
    if existing and existing.get("state") in DONE_STATES:
        return {"mention_id": mention.id, "outcome": "duplicate"}
    decision = classify(mention.to_dict(), rules=deps.rules(), model=deps.model()).to_dict()
    if decision["case"]:
        deps.triaged_queue.send({"mention": mention.to_dict(), "triage": decision})
        state = "triaged"
    else:
        state = "no_case"
    deps.mentions.update(mention.id, {"state": state, "triage": decision})
    return {"mention_id": mention.id, "outcome": state, "triage": decision}
