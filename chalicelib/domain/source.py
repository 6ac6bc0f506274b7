"""Sources: which accounts, pages, phone numbers and keywords a brand listens to.

Supervisors configure them through the admin API; they are data in the
settings table, validated here. Polled kinds have a cursor each; webhook-only
channels (Messenger, WhatsApp) are listed so they can be switched off.
"""
from __future__ import annotations

from typing import Any, Dict

from chalicelib.domain.errors import BadRequest

# kind -> (platform, how it arrives)
KINDS = {
    "x_mentions": ("x", "poll"),
    "x_search": ("x", "poll"),
    "x_dm": ("x", "poll"),
    "facebook_feed": ("facebook", "poll+push"),
    "instagram_comments": ("instagram", "poll+push"),
    "instagram_mentions": ("instagram", "poll+push"),
    "messenger": ("messenger", "push"),
    "instagram_dm": ("instagram", "push"),
    "whatsapp": ("whatsapp", "push"),
}
MAX_TERMS = 25


def source_id_for(kind: str, account_id: str) -> str:
    """'x:mentions:<account>', 'whatsapp:<phone number id>': the account id is always the last part."""
    platform = KINDS[kind][0]
    if "_" not in kind:
        return f"{platform}:{account_id}"
    return f"{platform}:{kind.split('_', 1)[1]}:{account_id}"


def account_of(source_id: str) -> str:
    return (source_id or "").rsplit(":", 1)[-1]


def validate_source(body: Any) -> Dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with 'kind' and 'account_id'")
    kind = body.get("kind")
    if kind not in KINDS:
        raise BadRequest(f"field 'kind' must be one of {', '.join(sorted(KINDS))}")
    account_id = body.get("account_id")
    if not isinstance(account_id, str) or not account_id.strip() or ":" in account_id:
        raise BadRequest("field 'account_id' must be the platform's id of the brand account, page or phone number")
    source = {
        "source_id": source_id_for(kind, account_id.strip()), "kind": kind, "platform": KINDS[kind][0],
        "delivery": KINDS[kind][1], "account_id": account_id.strip(), "enabled": body.get("enabled", True),
    }
    if not isinstance(source["enabled"], bool):
        raise BadRequest("field 'enabled' must be true or false")
    handle = body.get("handle", "")
    if not isinstance(handle, str):
        raise BadRequest("field 'handle' must be a string (the brand's @handle)")
    source["handle"] = handle.lstrip("@")
    if kind == "x_search":
        terms = body.get("terms")
        if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t.strip() for t in terms):
            raise BadRequest("field 'terms' must be a non-empty list of keywords or brand names to track")
        if len(terms) > MAX_TERMS:
            raise BadRequest(f"field 'terms' has {len(terms)} entries; at most {MAX_TERMS}")
        if not source["handle"]:
            raise BadRequest("field 'handle' is required for x_search, to leave out the brand's own posts")
        source["terms"] = [t.strip() for t in terms]
    return source


def status_view(source: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("source_id", "kind", "platform", "delivery", "account_id", "handle", "terms", "enabled", "state",
            "last_success_at", "last_fetched", "last_error", "last_error_at", "paused_until", "paused_reason")
    return {k: source[k] for k in keys if k in source}
