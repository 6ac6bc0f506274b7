"""Supervisor-edited triage rules: validated, versioned, stored in settings.

Layout: pk RULES, sk CURRENT -> {"version": n}; sk V#<000000n> -> the
document, who saved it and when. Saving validates the whole document first,
so a bad rule is rejected and never half-applied.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

RULES_TTL_SECONDS = 60


def current_rules(settings_store: Any, cache: Dict[str, Any], now_epoch: float):
    from chalicelib.triage import RuleSet, load_default_rules

    if cache and now_epoch - cache["loaded_at"] < RULES_TTL_SECONDS:
        return cache["rules"]
    pointer = settings_store.get("RULES", "CURRENT")
    if pointer:
        stored = settings_store.get("RULES", version_key(pointer["version"]))
        rules = RuleSet.from_dict(stored["document"])
    else:
        rules = load_default_rules()
    cache.update(rules=rules, loaded_at=now_epoch, version=(pointer or {}).get("version", 0))
    return rules


def version_key(version: int) -> str:
    return f"V#{version:09d}"


def save_rules(settings_store: Any, document: Any, *, author: str, now: str) -> Dict[str, Any]:
    """Validate and store a new version; raises RuleError with the reason."""
    from chalicelib.triage import RuleSet

    rules = RuleSet.from_dict(document)  # raises RuleError before anything is written
    pointer = settings_store.get("RULES", "CURRENT") or {"version": 0}
    version = int(pointer["version"]) + 1
    settings_store.put("RULES", version_key(version), {
        "version": version, "document": rules.to_dict(), "saved_by": author, "saved_at": now,
    })
    settings_store.put("RULES", "CURRENT", {"version": version})
    return {"version": version, "saved_by": author, "saved_at": now}


def rules_view(settings_store: Any) -> Dict[str, Any]:
    from chalicelib.triage import load_default_rules

    pointer = settings_store.get("RULES", "CURRENT")
    if not pointer:
        return {"version": 0, "document": load_default_rules().to_dict(), "saved_by": None, "saved_at": None}
    stored = settings_store.get("RULES", version_key(pointer["version"]))
    return {k: stored[k] for k in ("version", "document", "saved_by", "saved_at")}


def rule_versions(settings_store: Any) -> List[Dict[str, Any]]:
    return [
        {k: item[k] for k in ("version", "saved_by", "saved_at")}
        for item in settings_store.query("RULES", "V#")
    ]


def restore_version(settings_store: Any, version: int, *, author: str, now: str) -> Optional[Dict[str, Any]]:
    stored = settings_store.get("RULES", version_key(version))
    if not stored:
        return None
    return save_rules(settings_store, stored["document"], author=author, now=now)


def save_validated(settings_store: Any, document: Any, *, author: str, now: str) -> Dict[str, Any]:
    """save_rules for the API: a rejected document is a 400 with the validator's message."""
    from chalicelib.errors import BadRequest
    from chalicelib.triage import RuleError

    try:
        return save_rules(settings_store, document, author=author, now=now)
    except RuleError as err:
        raise BadRequest(f"rules rejected, nothing saved: {err}") from None
