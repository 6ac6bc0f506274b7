"""Supervisor-edited triage rules: validated, versioned, kept behind the RuleStore port.

Saving validates the whole document first, so a bad rule is rejected and
never half-applied; every save is a new version, and the triage stage re-reads
the current one at most once a minute.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from chalicelib.domain.errors import BadRequest
from chalicelib.observability import count, logger
from chalicelib.ports import Deps, RuleStore

if TYPE_CHECKING:  # the triage engine loads on first use, not with every API handler
    from chalicelib.triage import RuleSet

RULES_TTL_SECONDS = 60


def current_rules(deps: Deps) -> "RuleSet":
    """The supervisors' current triage rules, re-read at most once a minute per container."""
    from chalicelib.triage import RuleError, RuleSet, load_default_rules

    cache = deps.caches.setdefault("rules", {})
    now_epoch = deps.epoch()
    if cache and now_epoch - cache["loaded_at"] < RULES_TTL_SECONDS:
        return cache["rules"]
    version = deps.settings.current_rules_version()
    stored = deps.settings.get_rules_version(version) if version else None
    try:
        rules = RuleSet.from_dict(stored["document"]) if stored else load_default_rules()
    except RuleError as err:
        # Saved under older, looser checks (a pattern now refused): triage must go on.
        # The built-in rules apply until a supervisor saves a version that passes.
        logger.error("stored triage rules no longer pass validation; using the built-in rules",
                     extra={"version": version, "reason": str(err)[:1000]})
        count("TriageRulesRejected")
        rules = load_default_rules()
    cache.update(rules=rules, loaded_at=now_epoch, version=version)
    return rules


def save_rules(store: RuleStore, document: Any, *, author: str, now: str) -> Dict[str, Any]:
    """Validate and store a new version; raises RuleError with the reason."""
    from chalicelib.triage import RuleSet

    rules = RuleSet.from_dict(document)  # raises RuleError before anything is written
    version = store.add_rules_version(rules.to_dict(), author=author, at=now)
    return {"version": version, "saved_by": author, "saved_at": now}


def save_validated(store: RuleStore, document: Any, *, author: str, now: str) -> Dict[str, Any]:
    """save_rules for the API: a rejected document is a 400 with the validator's message."""
    from chalicelib.triage import RuleError

    # A PUT replaces the whole rule set: a document without its rules (a truncated paste, the wrong
    # file, ``{}``) would silently remove every routing rule. Removing them all is said with "rules": [].
    if isinstance(document, dict) and "rules" not in document:
        raise BadRequest("rules rejected, nothing saved: field 'rules' is missing; a PUT replaces the whole rule "
                         "set (GET /admin/triage-rules, edit, PUT it back), and \"rules\": [] removes every rule")
    try:
        return save_rules(store, document, author=author, now=now)
    except RuleError as err:
        raise BadRequest(f"rules rejected, nothing saved: {err}") from None


def rules_view(store: RuleStore) -> Dict[str, Any]:
    from chalicelib.triage import load_default_rules

    version = store.current_rules_version()
    stored = store.get_rules_version(version) if version else None
    if not stored:
        return {"version": 0, "document": load_default_rules().to_dict(), "saved_by": None, "saved_at": None}
    return stored


def rule_versions(store: RuleStore) -> List[Dict[str, Any]]:
    return store.list_rules_versions()


def restore_version(store: RuleStore, version: int, *, author: str, now: str) -> Optional[Dict[str, Any]]:
    stored = store.get_rules_version(version)
    if not stored:
        return None
    return save_rules(store, stored["document"], author=author, now=now)
