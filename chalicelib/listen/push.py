"""Meta webhooks: verify, normalize, enqueue, answer fast.

The signature is checked before anything else, against the raw bytes; a
forged or unsigned request enqueues nothing. The heavy work (dedupe, triage,
Graph look-ups) happens behind the queue, so the route answers well inside
Meta's timeout. Meta repeats deliveries; dedupe by mention id in the triage
stage makes a repeat harmless.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from chalicelib.errors import BadRequest, Unauthorized
from chalicelib.listen.webhooks import answer_handshake, failed_sends, normalize_delivery, signature_is_valid


def handshake(params: Mapping[str, str], deps: Any) -> Optional[str]:
    return answer_handshake(params, deps.secrets().get("meta_verify_token", ""))


def receive_delivery(raw_body: bytes, signature: Optional[str], deps: Any) -> Dict[str, Any]:
    if not signature_is_valid(raw_body or b"", signature, deps.secrets().get("meta_app_secret", "")):
        raise Unauthorized("X-Hub-Signature-256 is missing or does not match the body; nothing was accepted")
    try:
        payload = json.loads(raw_body)
        mentions, skipped = normalize_delivery(payload, brand_ids=_brand_accounts(deps))
    except ValueError as err:
        raise BadRequest(f"not a Meta webhook delivery: {err}") from None
    from chalicelib.reply import report_late_failure

    late_failures = sum(report_late_failure(f["platform"], f["message_id"], f["errors"], deps)
                        for f in failed_sends(payload))
    switched_off = _disabled_accounts(deps)
    accepted = [m for m in mentions if (m.platform, _account(m.source_id)) not in switched_off]
    if accepted:
        deps.mentions_queue.send_batch(m.to_dict() for m in accepted)
    return {"enqueued": len(accepted), "failed_replies": late_failures, "skipped": skipped + [
        f"{m.id}: source switched off" for m in mentions if m not in accepted]}


def _account(source_id: str) -> str:
    from chalicelib.listen.sources import account_of

    return account_of(source_id)


def _brand_accounts(deps: Any) -> set:
    return {s["account_id"] for s in deps.settings.list_sources() if s["platform"] != "x"}


def _disabled_accounts(deps: Any) -> set:
    return {(s["platform"], s["account_id"]) for s in deps.settings.list_sources() if not s.get("enabled", True)}
