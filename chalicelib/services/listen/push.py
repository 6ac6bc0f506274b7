"""Meta webhooks: accept what a verified delivery carried, answer fast.

The entry point checks the signature over the raw bytes and parses the
delivery (``chalicelib.adapters.platforms.meta_webhooks``) before this runs.
The heavy work (dedupe, triage, Graph look-ups) happens behind the queue, so
the route answers well inside Meta's timeout. Meta repeats deliveries;
dedupe by mention id in the triage stage makes a repeat harmless.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set, Tuple

from chalicelib.domain.mention import Mention
from chalicelib.domain.source import account_of
from chalicelib.ports import Deps
from chalicelib.services.reply import report_late_failure


def brand_accounts(deps: Deps) -> Set[str]:
    """The brand's own Meta accounts: their comments are ours, not customers'."""
    return {s["account_id"] for s in deps.settings.list_sources() if s["platform"] != "x"}


def accept_delivery(mentions: List[Mention], skipped: List[str], failed_sends: List[Dict[str, Any]],
                    deps: Deps) -> Dict[str, Any]:
    late_failures = sum(report_late_failure(f["platform"], f["message_id"], f["errors"], deps)
                        for f in failed_sends)
    switched_off = _disabled_accounts(deps)
    accepted = [m for m in mentions if (m.platform, account_of(m.source_id)) not in switched_off]
    if accepted:
        deps.mentions_queue.send_batch(m.to_dict() for m in accepted)
    return {"enqueued": len(accepted), "failed_replies": late_failures, "skipped": skipped + [
        f"{m.id}: source switched off" for m in mentions if m not in accepted]}


def _disabled_accounts(deps: Deps) -> Set[Tuple[str, str]]:
    return {(s["platform"], s["account_id"]) for s in deps.settings.list_sources() if not s.get("enabled", True)}
