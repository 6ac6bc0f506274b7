"""Meta webhooks: accept what a verified delivery carried, answer fast.

The entry point checks the signature over the raw bytes and parses the
delivery (``chalicelib.adapters.platforms.meta_webhooks``) before this runs.
The heavy work (dedupe, triage, Graph look-ups) happens behind the queue, so
the route answers well inside Meta's timeout. Meta repeats deliveries;
dedupe by mention id in the triage stage makes a repeat harmless.

One bad item never costs the others: a mention that is invalid or too big
for the queue is left out with its reason, and the rest are enqueued. Meta
retries any delivery not answered 2xx for hours, and a retry would carry the
same bad item.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set, Tuple

from chalicelib.domain.mention import MAX_QUEUED_BYTES, InvalidMention, Mention, queued_size
from chalicelib.domain.source import account_of
from chalicelib.ports import Deps
from chalicelib.services.reply import report_late_failure

# The answer lists this many reasons at most (a delivery of thousands of bad
# items must not make an answer bigger than Lambda may return).
MAX_LISTED_SKIPS = 100


# The sources as the webhook sees them: read at most once a minute per container (as triage reads its rules,
# services/rules.py), where every delivery read them twice (issue 17). A source a supervisor adds, changes or
# switches off reaches the webhook within SOURCES_TTL_SECONDS: until then a source just switched off still
# enqueues its items, and a brand account just added is not yet told from a customer when it comments on
# another of the brand's accounts (on its own account it always is: the delivery names that account).
SOURCES_TTL_SECONDS = 60
_SOURCES_CACHE = "webhook_sources"


def _sources(deps: Deps) -> List[Dict[str, Any]]:
    cache = deps.caches.setdefault(_SOURCES_CACHE, {})
    now_epoch = deps.epoch()
    if cache and 0 <= now_epoch - cache["loaded_at"] < SOURCES_TTL_SECONDS:
        return cache["sources"]
    sources = deps.settings.list_sources()
    cache.update(sources=sources, loaded_at=now_epoch)
    return sources


def forget_sources(deps: Deps) -> None:
    """After a supervisor saved a source: the next delivery this container takes reads them again."""
    deps.caches.pop(_SOURCES_CACHE, None)


def brand_accounts(deps: Deps) -> Set[str]:
    """The brand's own Meta accounts: their comments are ours, not customers'."""
    return {s["account_id"] for s in _sources(deps) if s["platform"] != "x"}


def accept_delivery(mentions: List[Mention], skipped: List[str], failed_sends: List[Dict[str, Any]],
                    deps: Deps) -> Dict[str, Any]:
    late_failures = sum(report_late_failure(f["platform"], f["message_id"], f["errors"], deps)
                        for f in failed_sends)
    switched_off = _disabled_accounts(deps)
    now = deps.now()
    accepted: List[Mention] = []
    left_out = list(skipped)
    for mention in mentions:
        reason = _why_not_queued(mention, switched_off, now)
        if reason:
            left_out.append(f"{mention.id[:200]}: {reason}")
        else:
            accepted.append(mention)
    if accepted:
        deps.mentions_queue.send_batch(m.to_dict() for m in accepted)
    listed = left_out[:MAX_LISTED_SKIPS]
    if len(left_out) > MAX_LISTED_SKIPS:
        listed.append(f"... and {len(left_out) - MAX_LISTED_SKIPS} more")
    return {"enqueued": len(accepted), "failed_replies": late_failures, "skipped_count": len(left_out),
            "skipped": listed}


def _why_not_queued(mention: Mention, switched_off: Set[Tuple[str, str]], now: str) -> str:
    if (mention.platform, account_of(mention.source_id)) in switched_off:
        return "source switched off"
    try:
        mention.validate(now)
    except InvalidMention as err:
        return f"invalid ({err})"
    size = queued_size(mention)
    if size > MAX_QUEUED_BYTES:
        return f"too large to queue ({size} bytes; at most {MAX_QUEUED_BYTES})"
    return ""


def _disabled_accounts(deps: Deps) -> Set[Tuple[str, str]]:
    return {(s["platform"], s["account_id"]) for s in _sources(deps) if not s.get("enabled", True)}
