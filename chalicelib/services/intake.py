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
from chalicelib.services import csat, customers, media
from chalicelib.services.rules import current_rules

if TYPE_CHECKING:  # the triage engine is imported when the first mention is classified
    from chalicelib.triage import Model

FORWARDED_OR_DONE = ("triaged", "routed", "no_case", csat.ANSWER_STATE)
# The mentions this container saw through to one of those states (or found there): a duplicate of one (Meta
# repeats a delivery, the poll brings what the webhook did, SQS delivers again) stops without the read of
# its record (issue 17). The states are final (a record only moves between them, or is erased), so the read
# would stop it too. Bounded: the duplicates come within minutes, and a container's memory is small.
SETTLED_KEPT = 5000
_SETTLED = "settled_mentions"


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
    return media.keep_inbound(mention, deps)  # WhatsApp files copied to the bucket: their URLs expire


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
    """The brand's learned triage model, loaded once per container; None when not configured.

    The version a supervisor activated (retrained from corrections, services/triage_models.py) wins
    over TRIAGE_MODEL_URI; which one is active is re-read at most once a minute."""
    from chalicelib.services.triage_models import active_model_uri

    uri = active_model_uri(deps) or deps.config.triage_model_uri
    if not uri:
        return None
    models = deps.caches.setdefault("models", {})
    if uri not in models:
        from chalicelib.triage import load_model

        models[uri] = load_model(deps.models.load(uri))
    return models[uri]


def _wordless_file_in_private(mention: Mention) -> bool:
    return bool(mention.media) and not mention.text.strip() and mention.kind == "dm"


def triage_message(body: str, deps: Deps) -> Dict[str, Any]:
    now = deps.now()
    parsed = parse_mention(body, now)
    settled_here: Dict[str, None] = deps.caches.setdefault(_SETTLED, {})
    if parsed.id in settled_here:
        return {"mention_id": parsed.id, "outcome": "duplicate"}
    result = _triage(parsed, now, deps)
    if result["outcome"] in ("duplicate", "no_case", "triaged", csat.ANSWER_STATE):
        settled_here[parsed.id] = None
        if len(settled_here) > SETTLED_KEPT:
            del settled_here[next(iter(settled_here))]  # the oldest
    return result


def _triage(parsed: Mention, now: str, deps: Deps) -> Dict[str, Any]:
    from chalicelib.triage import classify

    # Most duplicates (a webhook and the poll both bring Meta's items) stop here, on a half-price read,
    # before any write or Graph call; the claim below stays the one that decides.
    seen = deps.mentions.get(parsed.id, consistent=False)
    if seen is not None and seen.state in FORWARDED_OR_DONE:
        return {"mention_id": parsed.id, "outcome": "duplicate"}
    mention = complete(parsed, deps)
    try:
        mention.validate(now)  # what Graph filled in meets the same rules as what arrived
    except InvalidMention as err:
        raise PermanentFailure(f"not a valid mention after completing it from Graph: {err}") from err
    now_epoch = int(deps.epoch())
    # In the customer's ledger, so that an export or erasure finds it: before the claim, so that no
    # claimed mention is ever missing from it (repeatable; a redelivery that gets here writes it again).
    deps.cases.note_customer_mention(mention.customer_key, mention.id, expires_at=retention.mention_expires_at(
        now_epoch, deps.config.retention_mentions_days))
    decision = classify(mention.to_dict(), rules=current_rules(deps), model=current_model(deps)).to_dict()
    if not decision["case"] and _wordless_file_in_private(mention):
        # Triage reads words; a photo of a damaged bag sent alone in a DM has none, yet it is the
        # customer asking for something: an agent looks at it rather than nobody.
        decision = {**decision, "case": True,
                    "why": [*decision.get("why", []), "a file sent privately with no words: an agent looks at it"]}
    # A mention that opens no case and answers no survey is settled in the write that claims it (the
    # follow-up it may add to a case's history first: repeatable, as a redelivery would do it again).
    # Whether a survey awaits is read only for a message that rates something: no other can answer one.
    settled: Optional[Dict[str, Any]] = None
    if not decision["case"] and (not csat.could_answer(mention)
                                 or deps.cases.survey_awaiting(mention.customer_key, now=now) is None):
        attached = customers.attach_follow_up(mention, deps, now)
        settled = {"state": "no_case", "triage": decision,
                   **({"case_id": attached} if attached else {"review_at": now})}
    existing = deps.mentions.claim(mention, now_epoch=now_epoch, settled=settled)
    if existing and existing.state in FORWARDED_OR_DONE:
        # A redelivery: it was forwarded (or settled) already. A crash between forwarding and
        # recording it leaves "received", and the assign stage drops the second copy.
        return {"mention_id": mention.id, "outcome": "duplicate"}
    if settled is not None and existing is None:
        attached_to = {"case_id": settled["case_id"]} if "case_id" in settled else {}
        return {"mention_id": mention.id, "outcome": "no_case", "triage": decision, **attached_to}
    answer = csat.take_answer(mention, deps, now, redelivered=existing is not None)
    if answer is not None:
        return {"mention_id": mention.id, "outcome": csat.ANSWER_STATE, **answer}
    if decision["case"]:
        # When socialcare received the post: the case keeps it beside the customer's own time.
        deps.triaged_queue.send({"mention": mention.to_dict(), "triage": {**decision, "received_at": now}})
        state = "triaged"
    else:
        state = "no_case"
        # "thanks!" from a customer with an active or recently resolved case: into that case's history.
        attached = customers.attach_follow_up(mention, deps, now)
        if attached:
            deps.mentions.update(mention.id, state=state, triage=decision, case_id=attached)
            return {"mention_id": mention.id, "outcome": state, "triage": decision, "case_id": attached}
    # Left without a case: on that day's review list (issue 14, services/triage_review.py).
    deps.mentions.update(mention.id, state=state, triage=decision, review_at=now if state == "no_case" else None)
    return {"mention_id": mention.id, "outcome": state, "triage": decision}
