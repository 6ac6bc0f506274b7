"""Supervisor-editable triage rules: a JSON document, validated as a whole.

``RuleSet.from_dict`` checks every field of every rule and reports all
problems at once, naming the rule id and the field, so a supervisor can fix a
document in one go; nothing is half-applied because a RuleSet only exists
once the whole document is valid. ``to_dict`` gives the canonical document
(every section present) and round-trips.

Numbers may arrive as ``decimal.Decimal`` (DynamoDB); they are accepted.
"""
from __future__ import annotations

import json
import os
import re
import threading
import unicodedata
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .decide import CATEGORIES, PRIORITIES, SENTIMENTS

PLATFORMS = ("x", "facebook", "instagram", "messenger", "whatsapp")
KINDS = ("mention", "reply", "comment", "dm")
DEFAULT_INFLUENCER_THRESHOLD = 10000
DEFAULT_SOURCE_TAGS = ("tier1_customer", "employee", "competitor")
RESERVED_TAGS = ("vip", "influencer")

TOP_LEVEL_FIELDS = ("name", "description", "influencer_threshold", "brand_handles", "source_tags",
                    "keywords", "lexicon", "rules")
RULE_FIELDS = ("id", "description", "enabled", "when", "then")
CONDITIONS = ("platform", "kind", "lang", "text_contains", "text_matches", "category", "sentiment",
              "tags", "followers_at_least")
ACTIONS = ("set_category", "set_priority", "add_tags", "case", "escalate", "route_team")

_LANG_RE = re.compile(r"^(?:[a-z]{2,3}|\*)$")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_:\-]{0,39}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
# (a+)+ style patterns can take exponential time in Python's regex engine, and
# a rule runs on every mention: refuse them rather than stall the pipeline.
_NESTED_QUANTIFIER_RE = re.compile(r"\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)\s*(?:[+*]|\{\d*,)")
MAX_REGEX_LENGTH = 500
MAX_LEXICON_WEIGHT = 5.0


class RuleError(ValueError):
    """A rule set that cannot be used. ``problems`` lists every issue found.

    Each problem is a dict with ``rule_id`` (or None), ``field`` (a path such
    as ``rules[2].when.category``) and ``message``.
    """

    def __init__(self, problems: Sequence[Dict[str, Optional[str]]]):
        self.problems = list(problems)
        first = self.problems[0]
        self.rule_id = first.get("rule_id")
        self.field = first.get("field")
        lines = [_describe(p) for p in self.problems]
        more = f" (and {len(lines) - 1} more problem{'s' if len(lines) > 2 else ''}: " + "; ".join(lines[1:]) + ")" \
            if len(lines) > 1 else ""
        super().__init__(lines[0] + more)


def _describe(problem: Mapping[str, Optional[str]]) -> str:
    where = f"rule '{problem['rule_id']}' " if problem.get("rule_id") else ""
    return f"{where}{problem['field']}: {problem['message']}"


class Rule:
    """One validated rule: conditions (all must hold) and actions."""

    __slots__ = ("id", "description", "enabled", "when", "then", "document", "required_tags", "_choices",
                 "_followers", "_contains", "_ascii_contains", "_regex")

    def __init__(self, document: Dict[str, Any]):
        self.document = document
        self.id: str = document["id"]
        self.description: str = document.get("description", "")
        self.enabled: bool = document.get("enabled", True)
        self.when: Dict[str, Any] = document["when"]
        self.then: Dict[str, Any] = document["then"]
        # Conditions pre-compiled into cheap checks, cheapest first: rules run on every mention.
        self.required_tags = frozenset(self.when.get("tags") or ())
        self._choices = tuple((name, frozenset(self.when[name]))
                              for name in ("platform", "kind", "lang", "category", "sentiment") if name in self.when)
        self._followers = self.when.get("followers_at_least")
        self._contains = tuple(_normalize(s) for s in self.when.get("text_contains") or ())
        # An ASCII post cannot contain a Japanese phrase: skip those needles for it.
        self._ascii_contains = tuple(s for s in self._contains if s.isascii())
        pattern = self.when.get("text_matches")
        self._regex = re.compile(pattern, re.IGNORECASE) if pattern else None

    @property
    def uses_text(self) -> bool:
        return bool(self._contains) or self._regex is not None

    def matches(self, facts: Mapping[str, Any]) -> bool:
        if self.required_tags and not self.required_tags.issubset(facts["tags"]):
            return False
        for name, allowed in self._choices:
            if facts[name] not in allowed:
                return False
        if self._followers is not None and facts["followers"] < self._followers:
            return False
        if self._contains:
            text_lower = facts["text_lower"]
            for needle in (self._ascii_contains if facts.get("ascii") else self._contains):
                if needle in text_lower:
                    break
            else:
                return False
        if self._regex is not None and not self._regex.search(facts["text"]):
            return False
        return True


class RuleSet:
    """A validated rule set. Build with ``from_dict``; never mutate."""

    def __init__(self, document: Dict[str, Any]):
        # Only from_dict calls this, with a document it has validated and canonicalized.
        self._document = document
        self.name: str = document["name"]
        self.influencer_threshold: int = document["influencer_threshold"]
        self.brand_handles = frozenset(h.lstrip("@").lower() for h in document["brand_handles"])
        # Empty lists are left out: most rule sets list nobody, and every mention checks these.
        self.source_lists: Dict[str, Tuple[frozenset, frozenset]] = {
            tag: (frozenset(h.lstrip("@").lower() for h in lists["handles"]), frozenset(lists["ids"]))
            for tag, lists in document["source_tags"].items() if lists["handles"] or lists["ids"]
        }
        self.keywords: Dict[str, Dict[str, List[str]]] = document["keywords"]
        self.lexicon_additions: Dict[str, Dict[str, float]] = document["lexicon"]
        self.rules: Tuple[Rule, ...] = tuple(Rule(r) for r in document["rules"])
        self.enabled_rules: Tuple[Rule, ...] = tuple(r for r in self.rules if r.enabled)
        self.needs_text = any(r.uses_text for r in self.rules)
        self._compiled: Dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_dict(cls, document: Any) -> "RuleSet":
        """Validate ``document``; raise RuleError listing every problem."""
        problems: List[Dict[str, Optional[str]]] = []
        canonical = _validate_document(document, problems)
        if problems:
            raise RuleError(problems)
        return cls(canonical)

    def to_dict(self) -> Dict[str, Any]:
        return json.loads(json.dumps(self._document))

    def compiled(self, key: str, build) -> Any:
        """Per-rule-set cache of compiled lexicons (built on first use, thread-safe)."""
        found = self._compiled.get(key)
        if found is None:
            with self._lock:
                found = self._compiled.get(key)
                if found is None:
                    found = build()
                    self._compiled[key] = found
        return found

    def __repr__(self) -> str:
        return f"RuleSet(name={self.name!r}, rules={len(self.rules)})"


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


# --- validation ---------------------------------------------------------------------

class _Problems:
    def __init__(self, sink: List[Dict[str, Optional[str]]], rule_id: Optional[str] = None):
        self.sink = sink
        self.rule_id = rule_id

    def add(self, field: str, message: str) -> None:
        self.sink.append({"rule_id": self.rule_id, "field": field, "message": message})


def _validate_document(document: Any, sink: List[Dict[str, Optional[str]]]) -> Dict[str, Any]:
    problems = _Problems(sink)
    if not isinstance(document, Mapping):
        problems.add("(document)", f"must be a JSON object, got {_type_name(document)}")
        return {}
    for key in document:
        if key not in TOP_LEVEL_FIELDS:
            problems.add(str(key), f"unknown field; expected one of {', '.join(TOP_LEVEL_FIELDS)}")
    canonical: Dict[str, Any] = {
        "name": _string(document.get("name", "custom"), "name", problems, allow_empty=True),
        "description": _string(document.get("description", ""), "description", problems, allow_empty=True),
        "influencer_threshold": _integer(document.get("influencer_threshold", DEFAULT_INFLUENCER_THRESHOLD),
                                         "influencer_threshold", problems, minimum=1),
        "brand_handles": _string_list(document.get("brand_handles", []), "brand_handles", problems),
        "source_tags": _validate_source_tags(document.get("source_tags", {}), problems),
        "keywords": _validate_keywords(document.get("keywords", {}), problems),
        "lexicon": _validate_lexicon(document.get("lexicon", {}), problems),
        "rules": _validate_rules(document.get("rules", []), sink),
    }
    return canonical


def _validate_source_tags(value: Any, problems: _Problems) -> Dict[str, Any]:
    result: Dict[str, Any] = {tag: {"handles": [], "ids": []} for tag in DEFAULT_SOURCE_TAGS}
    if not isinstance(value, Mapping):
        problems.add("source_tags", f"must be an object of tag -> {{handles, ids}}, got {_type_name(value)}")
        return result
    for tag, lists in value.items():
        field = f"source_tags.{tag}"
        if not isinstance(tag, str) or not _TAG_RE.match(tag):
            problems.add(field, "tag names are lower-case letters, digits, _ - or : (at most 40)")
            continue
        if tag in RESERVED_TAGS:
            problems.add(field, f"'{tag}' is set from the author's profile and cannot be listed")
            continue
        if not isinstance(lists, Mapping):
            problems.add(field, f"must be an object with 'handles' and/or 'ids', got {_type_name(lists)}")
            continue
        for key in lists:
            if key not in ("handles", "ids"):
                problems.add(f"{field}.{key}", "unknown field; expected 'handles' or 'ids'")
        result[tag] = {
            "handles": _string_list(lists.get("handles", []), f"{field}.handles", problems),
            "ids": _string_list(lists.get("ids", []), f"{field}.ids", problems, coerce_numbers=True),
        }
    return result


def _validate_keywords(value: Any, problems: _Problems) -> Dict[str, Dict[str, List[str]]]:
    result: Dict[str, Dict[str, List[str]]] = {}
    if not isinstance(value, Mapping):
        problems.add("keywords", f"must be an object of category -> language -> [phrases], got {_type_name(value)}")
        return result
    for category, by_lang in value.items():
        field = f"keywords.{category}"
        if category not in CATEGORIES:
            problems.add(field, f"unknown category '{category}'; expected one of {', '.join(CATEGORIES)}")
            continue
        if not isinstance(by_lang, Mapping):
            problems.add(field, f"must be an object of language -> [phrases], got {_type_name(by_lang)}")
            continue
        result[category] = {}
        for lang, phrases in by_lang.items():
            if not isinstance(lang, str) or not _LANG_RE.match(lang):
                problems.add(f"{field}.{lang}", "language must be a 2-3 letter code such as 'en' or 'ja', or '*'")
                continue
            result[category][lang] = _string_list(phrases, f"{field}.{lang}", problems)
    return result


def _validate_lexicon(value: Any, problems: _Problems) -> Dict[str, Dict[str, float]]:
    result: Dict[str, Dict[str, float]] = {}
    if not isinstance(value, Mapping):
        problems.add("lexicon", f"must be an object of language -> {{term: weight}}, got {_type_name(value)}")
        return result
    for lang, terms in value.items():
        field = f"lexicon.{lang}"
        if not isinstance(lang, str) or not _LANG_RE.match(lang) or lang == "*":
            problems.add(field, "language must be a 2-3 letter code such as 'en' or 'ja'")
            continue
        if not isinstance(terms, Mapping):
            problems.add(field, f"must be an object of term -> weight, got {_type_name(terms)}")
            continue
        result[lang] = {}
        for term, weight in terms.items():
            if not isinstance(term, str) or not term.strip():
                problems.add(field, "terms must be non-empty strings")
                continue
            number = _number(weight)
            if number is None or abs(number) > MAX_LEXICON_WEIGHT:
                problems.add(f"{field}.{term}", f"weight must be a number from -{MAX_LEXICON_WEIGHT:g} "
                                                f"(very negative) to {MAX_LEXICON_WEIGHT:g} (very positive), got {weight!r}")
                continue
            result[lang][term] = number
    return result


def _validate_rules(value: Any, sink: List[Dict[str, Optional[str]]]) -> List[Dict[str, Any]]:
    problems = _Problems(sink)
    if not isinstance(value, list):
        problems.add("rules", f"must be a list of rules, got {_type_name(value)}")
        return []
    seen: Dict[str, int] = {}
    result = []
    for position, rule in enumerate(value):
        field = f"rules[{position}]"
        if not isinstance(rule, Mapping):
            problems.add(field, f"each rule must be an object, got {_type_name(rule)}")
            continue
        rule_id = rule.get("id")
        if not isinstance(rule_id, str) or not _ID_RE.match(rule_id):
            problems.add(f"{field}.id", "every rule needs an id: letters, digits, _ . : - (at most 64)")
            rule_id = None
        elif rule_id in seen:
            problems.add(f"{field}.id", f"duplicate id '{rule_id}' (also rules[{seen[rule_id]}])")
        else:
            seen[rule_id] = position
        result.append(_validate_rule(rule, field, _Problems(sink, rule_id)))
    return result


def _validate_rule(rule: Mapping[str, Any], field: str, problems: _Problems) -> Dict[str, Any]:
    for key in rule:
        if key not in RULE_FIELDS:
            problems.add(f"{field}.{key}", f"unknown field; expected one of {', '.join(RULE_FIELDS)}")
    canonical: Dict[str, Any] = {"id": rule.get("id"),
                                 "description": _string(rule.get("description", ""), f"{field}.description",
                                                        problems, allow_empty=True)}
    enabled = rule.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.add(f"{field}.enabled", f"must be true or false, got {enabled!r}")
    canonical["enabled"] = enabled is not False
    canonical["when"] = _validate_when(rule.get("when", {}), f"{field}.when", problems)
    canonical["then"] = _validate_then(rule.get("then"), f"{field}.then", problems)
    return canonical


def _validate_when(when: Any, field: str, problems: _Problems) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    if not isinstance(when, Mapping):
        problems.add(field, f"must be an object of conditions, got {_type_name(when)}")
        return result
    for name, value in when.items():
        path = f"{field}.{name}"
        if name not in CONDITIONS:
            problems.add(path, f"unknown condition; expected one of {', '.join(CONDITIONS)}")
        elif name in ("platform", "kind", "category", "sentiment"):
            allowed = {"platform": PLATFORMS, "kind": KINDS, "category": CATEGORIES, "sentiment": SENTIMENTS}[name]
            result[name] = _choice_list(value, path, allowed, problems)
        elif name == "lang":
            langs = _string_list(value, path, problems, single_ok=True, non_empty=True)
            for lang in langs:
                if not _LANG_RE.match(lang) or lang == "*":
                    problems.add(path, f"'{lang}' is not a language code such as 'en' or 'ja'")
            result[name] = langs
        elif name == "text_contains":
            result[name] = _string_list(value, path, problems, single_ok=True, non_empty=True)
        elif name == "text_matches":
            result[name] = _regex(value, path, problems)
        elif name == "tags":
            tags = _string_list(value, path, problems, single_ok=True, non_empty=True)
            result[name] = tags
        elif name == "followers_at_least":
            result[name] = _integer(value, path, problems, minimum=0)
    return result


def _validate_then(then: Any, field: str, problems: _Problems) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    if not isinstance(then, Mapping) or not then:
        problems.add(field, "a rule needs at least one action: " + ", ".join(ACTIONS))
        return result
    for name, value in then.items():
        path = f"{field}.{name}"
        if name not in ACTIONS:
            problems.add(path, f"unknown action; expected one of {', '.join(ACTIONS)}")
        elif name == "set_category":
            if value not in CATEGORIES:
                problems.add(path, f"unknown category {value!r}; expected one of {', '.join(CATEGORIES)}")
            result[name] = value
        elif name == "set_priority":
            if value not in PRIORITIES:
                problems.add(path, f"unknown priority {value!r}; expected one of {', '.join(PRIORITIES)}")
            result[name] = value
        elif name == "add_tags":
            tags = _string_list(value, path, problems, single_ok=True, non_empty=True)
            for tag in tags:
                if not _TAG_RE.match(tag):
                    problems.add(path, f"tag '{tag}': lower-case letters, digits, _ - or : (at most 40)")
            result[name] = tags
        elif name in ("case", "escalate"):
            if not isinstance(value, bool):
                problems.add(path, f"must be true or false, got {value!r}")
            result[name] = value
        elif name == "route_team":
            result[name] = _string(value, path, problems, max_length=64)
    return result


def _choice_list(value: Any, path: str, allowed: Sequence[str], problems: _Problems) -> List[str]:
    items = _string_list(value, path, problems, single_ok=True, non_empty=True)
    for item in items:
        if item not in allowed:
            problems.add(path, f"unknown value '{item}'; expected one of {', '.join(allowed)}")
    return items


def _regex(value: Any, path: str, problems: _Problems) -> str:
    if not isinstance(value, str) or not value:
        problems.add(path, f"must be a regular expression string, got {value!r}")
        return ""
    if len(value) > MAX_REGEX_LENGTH:
        problems.add(path, f"regular expression is longer than {MAX_REGEX_LENGTH} characters")
        return value
    try:
        re.compile(value, re.IGNORECASE)
    except re.error as err:
        problems.add(path, f"invalid regular expression {value!r}: {err}")
        return value
    if _NESTED_QUANTIFIER_RE.search(value):
        problems.add(path, f"regular expression {value!r} repeats a repeated group (like (a+)+), which can "
                           "make matching extremely slow; simplify it")
    return value


def _string(value: Any, path: str, problems: _Problems, allow_empty: bool = False, max_length: int = 2000) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        problems.add(path, f"must be {'a' if allow_empty else 'a non-empty'} string, got {value!r}")
        return ""
    if len(value) > max_length:
        problems.add(path, f"is longer than {max_length} characters")
    return value


def _string_list(value: Any, path: str, problems: _Problems, single_ok: bool = False, non_empty: bool = False,
                 coerce_numbers: bool = False) -> List[str]:
    if single_ok and isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        problems.add(path, f"must be a list of strings, got {_type_name(value)}")
        return []
    result = []
    for item in value:
        if coerce_numbers and _number(item) is not None and _number(item) == int(_number(item)):
            item = str(int(_number(item)))
        if not isinstance(item, str) or not item.strip():
            problems.add(path, f"must contain only non-empty strings, found {item!r}")
            continue
        result.append(item)
    if non_empty and not result and not any(p["field"] == path for p in problems.sink):
        problems.add(path, "must not be empty")
    return result


def _integer(value: Any, path: str, problems: _Problems, minimum: int) -> int:
    number = _number(value)
    if number is None or number != int(number) or number < minimum:
        problems.add(path, f"must be a whole number >= {minimum}, got {value!r}")
        return minimum
    return int(number)


def _number(value: Any) -> Optional[float]:
    from decimal import Decimal  # DynamoDB's numbers; imported here to keep cold starts light

    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number == int(number) and not isinstance(value, float) else number


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), type(value).__name__)


# --- the default rule set -------------------------------------------------------------

_default: Optional[RuleSet] = None
_default_lock = threading.Lock()


def load_default_rules() -> RuleSet:
    """The rule set shipped with the code (cached; RuleSets are immutable)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_rules.json")
                with open(path, encoding="utf-8") as handle:
                    _default = RuleSet.from_dict(json.load(handle))
    return _default
