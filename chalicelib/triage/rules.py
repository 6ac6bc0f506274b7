"""Supervisor-editable triage rules: a JSON document, validated as a whole.

``RuleSet.from_dict`` checks every field of every rule and reports all
problems at once, naming the rule id and the field, so a supervisor can fix a
document in one go; nothing is half-applied because a RuleSet only exists
once the whole document is valid. ``to_dict`` gives the canonical document
(every section present) and round-trips.

Numbers may arrive as ``decimal.Decimal`` (DynamoDB); they are accepted.
"""
from __future__ import annotations

import collections
import functools
import importlib
import json
import math
import os
import re
import threading
import unicodedata
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Pattern, Sequence, Tuple

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
MAX_REGEX_LENGTH = 300   # text_matches; see check_text_pattern for what else is refused
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
        # Validated by check_text_pattern; compiled with a repeat at either end reduced to its minimum.
        self._regex = _compiled_text_pattern(pattern) if pattern else None

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
    _check_pattern_budget(result, problems)
    return result


def _check_pattern_budget(rules: List[Dict[str, Any]], problems: _Problems) -> None:
    """Each pattern fits the budget on its own; the enabled ones must also fit it together."""
    costs = []
    for rule in rules:
        pattern = rule["when"].get("text_matches")
        if rule["enabled"] and isinstance(pattern, str) and pattern:
            check = check_text_pattern(pattern)
            if not check.problems:
                costs.append((check.work, rule["id"]))
    total = sum(work for work, _ in costs)
    if total > REGEX_WORK_BUDGET:
        heaviest = ", ".join(f"'{rule_id}' ({100 * work / REGEX_WORK_BUDGET:.0f}%)"
                             for work, rule_id in sorted(costs, key=lambda c: -c[0])[:3])
        problems.add("rules", f"the text_matches patterns of the enabled rules together could take too long on a "
                              f"long post ({100 * total / REGEX_WORK_BUDGET:.0f}% of the allowed work; heaviest: "
                              f"{heaviest}). Simplify some of them, disable some rules, or use 'text_contains' "
                              "for lists of words.")


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
    for message in check_text_pattern(value).problems:
        if message.startswith(("invalid regular expression", "regular expression is longer")):
            problems.add(path, message)
        else:
            problems.add(path, f"regular expression {value!r} is not allowed: {message}")
    return value


def _compiled_text_pattern(pattern: str) -> Pattern:
    compiled = check_text_pattern(pattern).compiled
    return compiled if compiled is not None else re.compile(pattern, re.IGNORECASE)


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
        number = _number(item) if coerce_numbers else None
        if number is not None and number == int(number):
            item = str(int(number))
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


# --- text_matches: patterns that cannot hang triage -----------------------------------
#
# Python's ``re`` backtracks: (a+)+$ takes exponential time, and even a single repeat without
# an upper limit in the middle of a pattern ('refund.*order', '\w+x' unanchored) is retried
# from every position of a post: quadratic, 0.2-0.6 s on 5,000 characters. So a count of
# "dangerous quantifiers" cannot be the test. A pattern is accepted only if an upper bound on
# the engine's work for one post of REGEX_DESIGN_LENGTH characters fits REGEX_WORK_BUDGET
# (and all enabled patterns together fit it too). The bound is worked out on Python's own
# parse of the pattern (re._parser), never by reading the pattern text with another regex:
#
# * refused outright: back-references and conditional groups (their cost depends on what a
#   group captured), a repeated group that contains a repeat or a '|' choice (nested and
#   alternating quantifiers: exponential), verbose mode, more than MAX_REGEX_LENGTH chars;
# * everything else is costed by walking the tree and tracking, at each point of the
#   pattern, T = how many times the engine can arrive there over a whole search (every start
#   position, every backtracking path) and P = how many of those can share one text position.
#   A repeat that can end in c places multiplies them; optional parts and choices add up; a
#   literal word limits T to the places the word can occur (words cannot overlap closer than
#   their period); '^' limits T to P. A repeat of one character class C is "guarded" when
#   the character before it cannot be in C ('#\d+', '\b\w+', '\s\w+'): a run of C is then
#   entered only at its first character, whatever the start, so it costs linear, not
#   quadratic, time. Which characters two classes share is asked of ``re`` itself, with the
#   pattern's flags (case-insensitive included), never guessed.
# * a repeat at the very start or end of the pattern is reduced to its minimum before
#   compiling: search() looks everywhere, so '.*refund' finds exactly the posts 'refund'
#   finds, and '\d+ items' the posts '\d items' finds (a match with more repeats contains one
#   with fewer; rules only ask whether a pattern matches). Only one at each end: '.*.*x' and
#   '\d+\d+x' are refused like any other pair of repeats.
#
# A unit of work is one step of the engine (a character test, or a third of a backtrack into
# the rest of the pattern). Against adversarial posts for thousands of generated patterns the
# time per unit stayed under 18 ns (CPython 3.11, x86-64 server core), so the budget is at
# most ~18 ms of regular expressions per 5,000-character post; classifying such a post takes
# ~15 ms more. For an accepted pattern the bound grows in proportion to the post's length
# (an 8,000-character Facebook post: 1.6 times).
# tests/triage/test_rule_safety.py checks refusals and times accepted patterns.

try:  # Python's own regular-expression parser and compiler (re._parser since 3.11, sre_parse before)
    _sre_parse: Any = importlib.import_module("re._parser")
    _sre_compile: Any = importlib.import_module("re._compiler")
    _sre: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - Python < 3.11
    _sre_parse = importlib.import_module("sre_parse")
    _sre_compile = importlib.import_module("sre_compile")
    _sre = importlib.import_module("sre_constants")

REGEX_DESIGN_LENGTH = 5000          # characters: the post length the budget is for
REGEX_WORK_BUDGET = 200 * REGEX_DESIGN_LENGTH   # engine steps, for all enabled text_matches rules together
_UNBOUNDED = _sre.MAXREPEAT
_REPEATS = tuple(op for op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None))
                 if op is not None)
_POSSESSIVE = getattr(_sre, "POSSESSIVE_REPEAT", None)
_ATOMIC = getattr(_sre, "ATOMIC_GROUP", None)
_CHAR_OPS = (_sre.LITERAL, _sre.NOT_LITERAL, _sre.IN, _sre.ANY)
_BIG = 1e30
_HOW_TO_FIX = ("Give repeats an upper limit (for example .{0,40} instead of .*, \\d{1,10} instead of \\d+), "
               "or use 'text_contains' for a list of words.")


class _RegexCheck(NamedTuple):
    problems: Tuple[str, ...]   # messages for a supervisor; empty when the pattern is accepted
    work: float                 # upper bound on engine steps for one post of REGEX_DESIGN_LENGTH
    compiled: Optional[Pattern]


@functools.lru_cache(maxsize=512)
def check_text_pattern(pattern: str) -> _RegexCheck:
    """Decide whether ``pattern`` may be a ``text_matches`` condition, and compile it for search."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return _RegexCheck((f"regular expression is longer than {MAX_REGEX_LENGTH} characters; use a shorter "
                            "pattern, several rules, or 'text_contains' for a list of words",), 0.0, None)
    try:
        re.compile(pattern, re.IGNORECASE)
        tree = _sre_parse.parse(pattern, re.IGNORECASE)
    except re.error as err:
        return _RegexCheck((f"invalid regular expression {pattern!r}: {err}",), 0.0, None)
    problems = _structure_problems(tree)
    if _repeated_alternation(pattern):
        problems.append(_REPEATED_CHOICE)
    if problems:
        return _RegexCheck(tuple(dict.fromkeys(problems)), 0.0, None)
    try:
        tree = _sre_parse.SubPattern(tree.state, _trim(list(tree.data), True, True, tree.state))
        cost = _Cost(REGEX_DESIGN_LENGTH)
        cost.sequence(list(tree.data), _start(REGEX_DESIGN_LENGTH), tree.state.flags | re.IGNORECASE)
        compiled = _sre_compile.compile(tree, re.IGNORECASE)
    except Exception:  # a construct this check does not know: refuse rather than guess
        return _RegexCheck((f"it uses a construct that cannot be checked for speed; simplify it. {_HOW_TO_FIX}",),
                           0.0, None)
    work = cost.work + REGEX_DESIGN_LENGTH   # search() tries every start position
    if work > REGEX_WORK_BUDGET:
        return _RegexCheck((_too_slow_message(work, cost.blame),), work, None)
    return _RegexCheck((), work, compiled)


def _too_slow_message(work: float, blame: List[Tuple[float, str]]) -> str:
    ratio = work / REGEX_WORK_BUDGET
    times = "far more than" if ratio > 100 else f"about {ratio:.1f} times" if ratio < 10 else f"about {ratio:.0f} times"
    message = (f"it could take too long on a long post ({times} the work allowed for all text_matches patterns "
               f"together on a {REGEX_DESIGN_LENGTH:,}-character post). ")
    parts = list(dict.fromkeys(part for _, part in sorted(blame, key=lambda b: -b[0])))[:2]
    if parts:
        message += "The slow part: " + "; ".join(parts) + ". "
    else:
        message += ("It is tried at almost every position of a post, and its length, optional parts (?) and "
                    "choices (|) multiply that work. ")
    return message + _HOW_TO_FIX


# Structure: what is refused whatever the numbers.

_REPEATED_CHOICE = ("a repeated group contains a '|' choice, as in (a|ab)+ or (yes|no)*: repeating a choice can take "
                    "exponential time on a long post. For single characters use a class such as [ab]+; for words, "
                    "write the choice once without repeating it, or use 'text_contains'.")
_VERBOSE = "verbose mode (?x) cannot be used in text_matches; write the pattern without it."


def _structure_problems(tree) -> List[str]:
    problems: List[str] = []
    if tree.state.flags & re.VERBOSE:
        problems.append(_VERBOSE)
    _walk_structure(list(tree.data), None, problems)
    return problems


def _walk_structure(items: List[Tuple[Any, Any]], repeated: Optional[Tuple[Any, Any]], problems: List[str]):
    for op, av in items:
        if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
            if op is _sre.GROUPREF:
                problems.append("back-references such as \\1 or (?P=name) are not allowed: matching them can be "
                                "very slow. Write the words out again, or use 'text_contains'.")
            else:
                problems.append("conditional groups such as (?(1)a|b) are not allowed; write two rules instead.")
            continue
        if op in _REPEATS:
            low, high, body = av
            if repeated is not None:
                problems.append(f"'{_render([repeated])}' repeats a repeated group ('{_render([(op, av)])}' inside a "
                                f"repeat, like (a+)+): nested repeats can take exponential time on a long post. "
                                "Repeat a single character or class instead (for example [a-z ]{1,30}), write a "
                                "short group out in full (\\d{1,3}\\.\\d{1,3} rather than (\\d{1,3}\\.){2}), or "
                                "use 'text_contains' for a list of words.")
                continue
            _walk_structure(list(body), (op, av) if high > 1 else None, problems)
        elif op is _sre.BRANCH:
            if repeated is not None:
                problems.append(_REPEATED_CHOICE)
                continue
            for alternative in av[1]:
                _walk_structure(list(alternative), repeated, problems)
        elif op is _sre.SUBPATTERN:
            if av[1] & re.VERBOSE:
                problems.append(_VERBOSE)
            _walk_structure(list(av[3]), repeated, problems)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            _walk_structure(list(av[1]), repeated, problems)
        elif _ATOMIC is not None and op is _ATOMIC:
            _walk_structure(list(av), repeated, problems)


def _repeated_alternation(pattern: str) -> bool:
    """Whether a group containing '|' is repeated more than once (Python's parser turns (a|b) into [ab],
    so this is read from the pattern's tokens: escapes, classes and comments are skipped)."""
    stack: List[bool] = []
    i, size = 0, len(pattern)
    while i < size:
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i += 1
            if i < size and pattern[i] == "^":
                i += 1
            if i < size and pattern[i] == "]":
                i += 1
            while i < size and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
            continue
        if char == "(":
            if pattern.startswith("(?#", i):
                i += 3
                while i < size and pattern[i] != ")":
                    i += 2 if pattern[i] == "\\" else 1
                i += 1
                continue
            stack.append(False)
        elif char == "|" and stack:
            stack[-1] = True
        elif char == ")" and stack:
            has_choice = stack.pop()
            if has_choice and _repeats_more_than_once(pattern, i + 1):
                return True
            if has_choice and stack:
                stack[-1] = True
        i += 1
    return False


def _repeats_more_than_once(pattern: str, i: int) -> bool:
    if i >= len(pattern):
        return False
    if pattern[i] in "*+":
        return True
    match = re.match(r"\{(\d*)(,?)(\d*)\}", pattern[i:])
    if not match or match.group(0) == "{}":
        return False
    low, comma, high = match.groups()
    if not comma:
        return int(low or 0) > 1
    return not high or int(high) > 1


# Trimming: a repeat at the very start or end of the pattern only needs its minimum (see above).

def _trim(items: List[Tuple[Any, Any]], lead: bool, trail: bool, state) -> List[Tuple[Any, Any]]:
    if len(items) <= 1:
        return _trim_node(items[0], lead, trail, state) if items else items
    first = _trim_node(items[0], True, False, state) if lead else items[:1]
    last = _trim_node(items[-1], False, True, state) if trail else items[-1:]
    return first + items[1:-1] + last


def _trim_node(node: Tuple[Any, Any], lead: bool, trail: bool, state) -> List[Tuple[Any, Any]]:
    op, av = node
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):   # not possessive: 'a++b' never matches, 'ab' can
        low, high, body = av
        if high > low:
            return [] if low == 0 else [(op, (low, low, body))]
        return [node]
    if op is _sre.SUBPATTERN:
        group, add, remove, body = av
        return [(op, (group, add, remove, _sre_parse.SubPattern(state, _trim(list(body), lead, trail, state))))]
    if op is _sre.BRANCH:
        return [(op, (av[0], [_sre_parse.SubPattern(state, _trim(list(alt), lead, trail, state)) for alt in av[1]]))]
    return [node]


# Cost.

class _State(NamedTuple):
    arrivals: float   # T: arrivals at this point of the pattern, over all starts and paths
    peak: float       # P: most arrivals at any one text position
    before: tuple     # facts about the character just before this point (see _guarded)
    spreads: tuple    # ((base, width), ...): arrivals come from `base` entries, each spread over
    #                   `width` consecutive positions; so a set of positions d apart gets at
    #                   most base * ceil(width / d) of them


_WORD = (_sre.IN, [(_sre.CATEGORY, _sre.CATEGORY_WORD)])


def _start(length: int) -> "_State":
    return _State(length + 1.0, 1.0, (), ((length + 1.0, 1.0),))


class _Cost:
    def __init__(self, length: int):
        self.n = float(length)
        self.work = 0.0
        self.blame: List[Tuple[float, str]] = []

    def sequence(self, items: List[Tuple[Any, Any]], state: _State, flags: int) -> _State:
        i, previous = 0, ""
        while i < len(items):
            words, end = _literal_run(items, i)
            if words is not None:
                state = self.literal(words, state, flags)
                previous, i = _render(items[i:end]), end
                continue
            state = self.node(items[i], state, flags, previous)
            previous, i = _render(items[i:i + 1]), i + 1
        return state

    def add(self, amount: float) -> None:
        self.work = min(_BIG, self.work + amount)

    def spaced(self, state: _State, spacing: float) -> float:
        """Most arrivals at a set of positions at least `spacing` apart."""
        bound = min(state.arrivals, state.peak * (self.n / spacing + 1))
        for base, width in state.spreads:
            bound = min(bound, base * math.ceil(width / spacing))
        return bound

    def literal(self, words: List[str], state: _State, flags: int) -> _State:
        arrivals, peak, before, _ = state
        stats = _word_stats(tuple(words))
        work = arrivals * len(words)     # every word's first character is tried
        for share, spacing in stats.deeper:
            work += share * self.spaced(state, spacing)
        self.add(work)
        out = min(arrivals * stats.at_start, stats.at_start * self.spaced(state, stats.spacing))
        out_peak = min(peak * stats.at_end, out)
        lasts = "".join(sorted({_set_chars.get(w[-1], w[-1]) for w in words if w}))
        facts: tuple = ((("in", (_sre.IN, [(_sre.LITERAL, ord(c)) for c in lasts]), flags),),)
        if _ANY_CASE in lasts or not lasts:   # a NUL or a private-use character: say nothing
            facts = ()
        if "" in words:
            facts = _union(before, facts)
        return _State(out, out_peak, facts, ((out, 1.0),))

    def node(self, node: Tuple[Any, Any], state: _State, flags: int, previous: str) -> _State:
        op, av = node
        arrivals, peak, before, spreads = state
        n = self.n
        if op in _CHAR_OPS:
            self.add(arrivals)
            return _State(arrivals, peak, ((("in", node, flags),),), spreads)
        if op is _sre.AT:
            self.add(arrivals)
            multiline = flags & re.MULTILINE
            if av is _sre.AT_BEGINNING_STRING or (av is _sre.AT_BEGINNING and not multiline):
                return _State(min(arrivals, peak), peak, ((("start",),),), ((min(arrivals, peak), 1.0),))
            if av is _sre.AT_BEGINNING:
                newline = ("in", (_sre.LITERAL, 10), flags)
                return state._replace(before=before + ((newline, ("start",)),))
            if av is _sre.AT_END_STRING:
                return state._replace(arrivals=min(arrivals, peak))
            if av is _sre.AT_END and not multiline:
                return state._replace(arrivals=min(arrivals, 2 * peak))
            if av is _sre.AT_BOUNDARY:
                return state._replace(before=before + ((("notin", _WORD, flags & ~re.IGNORECASE, True),),))
            return state
        if op is _sre.SUBPATTERN:
            group, add, remove, body = av
            self.add(arrivals)
            return self.sequence(list(body), state, _combine_flags(flags, add, remove))
        if op is _sre.BRANCH:
            ends = [self.sequence(list(alt), state, flags) for alt in av[1]]
            return _merge(ends, n)
        if op in _REPEATS:
            return self.repeat(node, state, flags, previous)
        if _ATOMIC is not None and op is _ATOMIC:
            end = self.sequence(list(av), state, flags)
            out = min(arrivals, end.arrivals)
            return _State(out, min(end.peak, out), end.before, ((out, 1.0),))
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            direction, body = av
            inner = _Cost(int(n))
            end = inner.sequence(list(body), _State(1.0, 1.0, before if direction > 0 else (), ((1.0, 1.0),)),
                                 flags)
            self.add(arrivals * (inner.work + 1))
            for weight, part in inner.blame:
                self.blame.append((weight * arrivals, part + " inside a look-ahead or look-behind"))
            if direction < 0 and op is _sre.ASSERT:
                return state._replace(before=before + end.before)
            single = _single_char(list(body), flags)
            if direction < 0 and single is not None:
                return state._replace(before=before + ((("notin", single[0], single[1], False),),))
            return state
        raise ValueError(f"unsupported regular expression construct {op}")

    def repeat(self, node: Tuple[Any, Any], state: _State, flags: int, previous: str) -> _State:
        op, (low, high, body) = node
        arrivals, peak, before, spreads = state
        n = self.n
        body = list(body)
        if high <= 1:
            if high == 0:
                return state
            end = self.sequence(body, state, flags)
            if low >= 1:
                return end
            return _merge([state, end], n)     # optional: the body or nothing
        single = _single_char(body, flags)
        if single is not None:
            top = n if high is _UNBOUNDED else min(float(high), n)
            counts = max(1.0, top - low + 1)
            guarded = _guarded(single, low, before)
            # Guarded: a run of the class is entered only at its start, so an end has one start (two with
            # zero repeats) and the runs scanned from different entries do not overlap.
            ends_at_one_position = (1.0 if low >= 1 else 2.0) if guarded else counts
            out_peak = min(peak * ends_at_one_position, arrivals)
            scan = min(arrivals * (low + counts), n * peak * (ends_at_one_position if guarded else top + 1))
            end_facts = ((("in", single[0], single[1]),),)
            # Python counts a run of a case-insensitive class with letters in it ([a-z]+) by its slow path.
            node_op, node_av = single[0]
            count_cost = 2.0 if node_op is _sre.IN and single[1] & re.IGNORECASE and any(
                kind in (_sre.LITERAL, _sre.RANGE) for kind, _ in node_av) else 1.0
        else:
            inner = _Cost(int(n))
            end = inner.sequence(body, _State(1.0, 1.0, (), ((1.0, 1.0),)), flags)
            width = float(_sre_parse.SubPattern(_sre_parse.State(), body).getwidth()[0])
            most = n / width + 1 if width else n + 1
            top = most if high is _UNBOUNDED else min(float(high), most)
            counts = max(1.0, top - low + 1)
            guarded = False
            out_peak = min(peak * counts, arrivals * (1.0 if width else counts))
            scan = arrivals * (low + counts) * (inner.work + 1)
            end_facts = end.before
            count_cost = 1.0
        out = min(arrivals * counts, n * out_peak)
        if op is _POSSESSIVE:
            out = min(out, arrivals)
        self.add(scan * count_cost + 3 * out)   # backtracking into the rest of the pattern costs ~3 steps
        if guarded:
            out_spreads = ((out, 1.0),)
        else:
            out_spreads = tuple((base, width_ + counts - 1) for base, width_ in spreads)[:2] + ((arrivals, counts),)
        if not guarded and counts > 1:
            what = f"'{_render([node])}'" + (f" after '{previous}'" if previous else "")
            self.blame.append((out, what + (" (a repeat without an upper limit is retried from almost every "
                                            "position)" if high is _UNBOUNDED or top >= n else "")))
        return _State(out, out_peak, end_facts if low >= 1 else _union(before, end_facts), out_spreads)


def _merge(ends: List[_State], n: float) -> _State:
    """The state after one of several paths."""
    out_peak = sum(e.peak for e in ends)
    out = min(sum(e.arrivals for e in ends), n * out_peak)
    facts = ends[0].before
    for e in ends[1:]:
        facts = _union(facts, e.before)
    return _State(out, out_peak, facts, ((out, 1.0),))


def _combine_flags(flags: int, add: int, remove: int) -> int:
    if add & (re.ASCII | re.UNICODE):
        flags &= ~(re.ASCII | re.UNICODE)
    return (flags | add) & ~remove


def _single_char(body: List[Tuple[Any, Any]], flags: int) -> Optional[Tuple[Tuple[Any, Any], int]]:
    """The one-character matcher a repeat body consists of (through plain groups), with its flags."""
    while len(body) == 1 and body[0][0] is _sre.SUBPATTERN:
        group, add, remove, inner = body[0][1]
        flags = _combine_flags(flags, add, remove)
        body = list(inner)
    if len(body) == 1 and body[0][0] in _CHAR_OPS:
        return body[0], flags
    return None


def _union(a: tuple, b: tuple) -> tuple:
    """Facts true after one path or the other: each fact holds if either side's fact does."""
    return tuple(x + y for x in a for y in b)[:8]


# Literal words: where they can occur and how many can match at one position.

class _WordStats(NamedTuple):
    deeper: Tuple[Tuple[int, int], ...]   # for j = 1, 2, ...: (words sharing a j-character start, spacing of
    #                                       the positions where j-character starts can occur)
    at_start: int     # words that can match at one position
    at_end: int       # words that can end at one position
    spacing: int      # smallest distance between two positions where words can start


def _literal_run(items: List[Tuple[Any, Any]], i: int) -> Tuple[Optional[List[str]], int]:
    words: Optional[List[str]] = None
    j = i
    while j < len(items):
        more = _words(items[j])
        if more is None:
            break
        combined = [a + b for a in (words or [""]) for b in more]
        if len(combined) > _MAX_WORDS or sum(map(len, combined)) > 4000:
            break
        words, j = combined, j + 1
    return words, j


def _words(node: Tuple[Any, Any]) -> Optional[List[str]]:
    """The strings a node of literal characters can match, one per path the engine can take (so
    'a?a?' gives 'aa', 'a', 'a', '': the engine tries each path), or None."""
    op, av = node
    if op is _sre.LITERAL:
        return [chr(av) if av < _SET_FIRST else _ANY_CASE]
    if op is _sre.IN and av and all(kind in (_sre.LITERAL, _sre.RANGE) for kind, _ in av):
        size = sum(1 if kind is _sre.LITERAL else code[1] - code[0] + 1 for kind, code in av)
        if size > 32:
            return None
        chars = "".join(chr(code) if kind is _sre.LITERAL else "".join(map(chr, range(code[0], code[1] + 1)))
                        for kind, code in av)
        return [_set_placeholder(chars)]    # one test, whichever character it is
    if op is _sre.SUBPATTERN:
        return _words_of(list(av[3]))
    if op is _sre.BRANCH:
        found: List[str] = []
        for alt in av[1]:
            more = _words_of(list(alt))
            if more is None or len(found) + len(more) > _MAX_WORDS:
                return None
            found.extend(more)
        return found
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[1] <= 3:
        inner = _words_of(list(av[2]))
        if inner is None:
            return None
        found = []
        for count in range(av[0], av[1] + 1):
            layer = [""]
            for _ in range(count):
                layer = [a + b for a in layer for b in inner]
                if len(layer) > _MAX_WORDS:
                    return None
            found.extend(layer)
        return found if len(found) <= _MAX_WORDS else None
    return None


def _words_of(items: List[Tuple[Any, Any]]) -> Optional[List[str]]:
    words = [""]
    for item in items:
        more = _words(item)
        if more is None:
            return None
        words = [a + b for a in words for b in more]
        if len(words) > _MAX_WORDS:
            return None
    return words


_MAX_WORDS = 64


_ANY_CASE = "\x00"   # stands for a character whose case variants are not worked out here
# A class of a few characters ([ae], or (?:a|e) which Python turns into one) is one test: it stands in
# a word as one placeholder character from a private-use plane (literal characters there become _ANY_CASE).
_SET_FIRST = 0xF0000
_set_placeholders: Dict[str, str] = {}
_set_chars: Dict[str, str] = {}
_set_keys: Dict[str, frozenset] = {}
_set_lock = threading.Lock()


def _set_placeholder(chars: str) -> str:
    chars = "".join(sorted(set(chars)))
    found = _set_placeholders.get(chars)
    if found is None:
        with _set_lock:
            found = _set_placeholders.get(chars)
            if found is None:
                found = chr(_SET_FIRST + len(_set_placeholders)) if len(_set_placeholders) < 0xFFFF else _ANY_CASE
                if found != _ANY_CASE:
                    _set_chars[found] = chars
                    _set_keys[found] = frozenset(_case_key(c) for c in chars)
                    _set_placeholders[chars] = found
    return found


def _case_key(text: str) -> str:
    """Characters that can match the same post character (case-insensitively) get the same key."""
    out = []
    for c in text:
        if c.isascii():
            out.append(c.lower())
        elif c >= "\U000f0000" or (c.lower() == c and c.upper() == c and c.casefold() == c):
            out.append(c)      # a placeholder, or uncased (kana, kanji, digits...): matches only itself
        else:
            out.append(_ANY_CASE)
    return "".join(out)


def _special(key: str) -> bool:
    return _ANY_CASE in key or (bool(key) and max(key) >= "\U000f0000")


def _compatible(x: str, y: str) -> bool:
    if x == y or _ANY_CASE in (x, y):
        return True
    keys_x, keys_y = _set_keys.get(x, frozenset(x)), _set_keys.get(y, frozenset(y))
    return _ANY_CASE in keys_x or _ANY_CASE in keys_y or bool(keys_x & keys_y)


def _same(a: str, b: str) -> bool:
    """Whether one post text can match both (equal-length) keys."""
    if a == b:
        return True
    if not _special(a) and not _special(b):
        return False
    return all(_compatible(x, y) for x, y in zip(a, b))


@functools.lru_cache(maxsize=512)
def _word_stats(words: Tuple[str, ...]) -> _WordStats:
    keys = [_case_key(w) for w in words]
    longest = max(map(len, keys))
    deeper = []
    spacing = 1
    for j in range(1, longest):
        prefixes = [k[:j] for k in keys if len(k) > j]
        plain = collections.Counter(p for p in prefixes if not _special(p))
        share = max(plain.values(), default=0) + sum(1 for p in prefixes if _special(p))
        if j & (j - 1) == 0:    # spacing only grows with j: work it out at 1, 2, 4, 8...
            spacing = _spacing(sorted(set(prefixes)))
        deeper.append((share, spacing))
    at_start = max(sum(1 for b in keys if _same(a[:len(b)], b[:len(a)])) for a in keys)
    at_end = max(sum(1 for b in keys if _same(a[len(a) - min(len(a), len(b)):], b[len(b) - min(len(a), len(b)):]))
                 for a in keys)
    return _WordStats(tuple(deeper), at_start, at_end, _spacing(sorted(set(keys))))


def _spacing(keys: List[str]) -> int:
    """Smallest distance between two positions of a text where (case keys of) words can start."""
    if "" in keys or len(keys) * sum(map(len, keys)) > 20000:
        return 1
    spacing = max(map(len, keys))
    for a in keys:
        spacing = min(spacing, len(a))
        for b in keys:
            for shift in range(1, spacing):
                overlap = min(len(a) - shift, len(b))
                if _same(a[shift:shift + overlap], b[:overlap]):
                    spacing = shift
                    break
    return max(1, spacing)


# Guards: can the character before a repeat of class C be in C?

def _guarded(single: Tuple[Tuple[Any, Any], int], low: int, before: tuple) -> bool:
    return any(all(_excludes(atom, single, low) for atom in fact) for fact in before)


def _excludes(atom: tuple, single: Tuple[Tuple[Any, Any], int], low: int) -> bool:
    if atom[0] == "start":
        return True
    if atom[0] == "in":
        return _disjoint(single, (atom[1], atom[2]))
    _, node, flags, needs_first = atom    # "notin": the character before is not in node
    if needs_first and low < 1:
        return False
    complement = _complement(node, flags)
    return complement is not None and (complement == "nothing" or _disjoint(single, (complement, flags)))


def _complement(node: Tuple[Any, Any], flags: int):
    op, av = node
    if op is _sre.LITERAL:
        return (_sre.NOT_LITERAL, av)
    if op is _sre.NOT_LITERAL:
        return (_sre.LITERAL, av)
    if op is _sre.ANY:
        return "nothing" if flags & re.DOTALL else (_sre.LITERAL, 10)
    if op is _sre.IN:
        if av and av[0][0] is _sre.NEGATE:
            return (_sre.IN, list(av[1:]))
        if len(av) == 1 and av[0][0] is _sre.CATEGORY and av[0][1] in _OPPOSITE:
            return (_sre.IN, [(_sre.CATEGORY, _OPPOSITE[av[0][1]])])
        return (_sre.IN, [(_sre.NEGATE, None)] + list(av))
    return None


_OPPOSITE = {_sre.CATEGORY_DIGIT: _sre.CATEGORY_NOT_DIGIT, _sre.CATEGORY_NOT_DIGIT: _sre.CATEGORY_DIGIT,
             _sre.CATEGORY_WORD: _sre.CATEGORY_NOT_WORD, _sre.CATEGORY_NOT_WORD: _sre.CATEGORY_WORD,
             _sre.CATEGORY_SPACE: _sre.CATEGORY_NOT_SPACE, _sre.CATEGORY_NOT_SPACE: _sre.CATEGORY_SPACE}
# Unicode (and ASCII-mode) facts: digits are word characters, spaces are not; each class and its
# \D \W \S opposite share nothing. Case-insensitive matching does not change \d \w \s (tested).
_DISJOINT = {frozenset(pair) for pair in (
    (_sre.CATEGORY_DIGIT, _sre.CATEGORY_NOT_DIGIT), (_sre.CATEGORY_WORD, _sre.CATEGORY_NOT_WORD),
    (_sre.CATEGORY_SPACE, _sre.CATEGORY_NOT_SPACE), (_sre.CATEGORY_DIGIT, _sre.CATEGORY_SPACE),
    (_sre.CATEGORY_WORD, _sre.CATEGORY_SPACE), (_sre.CATEGORY_DIGIT, _sre.CATEGORY_NOT_WORD))}


_disjoint_memo: Dict[Tuple[str, int, str, int], bool] = {}


def _disjoint(a: Tuple[Tuple[Any, Any], int], b: Tuple[Tuple[Any, Any], int]) -> bool:
    key = (repr(a[0]), a[1], repr(b[0]), b[1])
    found = _disjoint_memo.get(key)
    if found is None:
        found = _disjoint_uncached(a, b)
        if len(_disjoint_memo) < 4096:
            _disjoint_memo[key] = found
    return found


def _disjoint_uncached(a: Tuple[Tuple[Any, Any], int], b: Tuple[Tuple[Any, Any], int]) -> bool:
    """No post character can match both one-character matchers (each with its own flags)."""
    for one, other in ((a, b), (b, a)):
        chars = _possible_chars(one)
        if chars is not None:
            test = _matcher(other)
            return not any(test(c) for c in chars)
    cats_a, cats_b = _categories(a[0]), _categories(b[0])
    if cats_a is not None and cats_b is not None and (a[1] & re.ASCII) == (b[1] & re.ASCII):
        return all(frozenset((x, y)) in _DISJOINT for x in cats_a for y in cats_b)
    return False


def _categories(node: Tuple[Any, Any]) -> Optional[List[Any]]:
    op, av = node
    if op is _sre.IN and av and all(kind is _sre.CATEGORY and code in _OPPOSITE for kind, code in av):
        return [code for _, code in av]
    return None


def _possible_chars(single: Tuple[Tuple[Any, Any], int]) -> Optional[str]:
    """Every character the matcher can match, when it is a short explicit list (and case variants)."""
    (op, av), flags = single
    if op is _sre.LITERAL:
        explicit = chr(av)
    elif op is _sre.IN and av and all(kind in (_sre.LITERAL, _sre.RANGE) for kind, _ in av):
        size = sum(1 if kind is _sre.LITERAL else code[1] - code[0] + 1 for kind, code in av)
        if size > 2000:
            return None
        explicit = "".join(chr(code) if kind is _sre.LITERAL else "".join(map(chr, range(code[0], code[1] + 1)))
                           for kind, code in av)
    else:
        return None
    if flags & re.IGNORECASE:
        # A character can only match another case-insensitively if it has case (tested).
        explicit += "".join(_compile_single(single).findall(_cased_characters()))
    return explicit


@functools.lru_cache(maxsize=1)
def _cased_characters() -> str:
    return "".join(c for c in map(chr, range(_CASED_LIMIT)) if c.lower() != c or c.upper() != c or c.casefold() != c)


_CASED_LIMIT = 0x20000   # no character above this has case (tested)


def _matcher(single: Tuple[Tuple[Any, Any], int]):
    return _compile_single(single).fullmatch


def _compile_single(single: Tuple[Tuple[Any, Any], int]) -> Pattern:
    node, flags = single
    state = _sre_parse.State()
    state.flags = flags
    return _sre_compile.compile(_sre_parse.SubPattern(state, [node]), flags)


# Rendering parts of a pattern back for messages.

_CATEGORY_TEXT = {_sre.CATEGORY_DIGIT: "\\d", _sre.CATEGORY_NOT_DIGIT: "\\D", _sre.CATEGORY_WORD: "\\w",
                  _sre.CATEGORY_NOT_WORD: "\\W", _sre.CATEGORY_SPACE: "\\s", _sre.CATEGORY_NOT_SPACE: "\\S"}
_AT_TEXT = {_sre.AT_BEGINNING: "^", _sre.AT_BEGINNING_STRING: "\\A", _sre.AT_END: "$", _sre.AT_END_STRING: "\\Z",
            _sre.AT_BOUNDARY: "\\b", _sre.AT_NON_BOUNDARY: "\\B"}


def _render(items: List[Tuple[Any, Any]], limit: int = 40) -> str:
    text = "".join(_render_node(op, av) for op, av in items)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _char_text(code: int, in_class: bool = False) -> str:
    c = chr(code)
    if c == "\n":
        return "\\n"
    if c.isalnum() or c in " _'\"@#%&,;:<>=!~`/" or (in_class and c not in "\\]^-["):
        return c
    return "\\" + c


def _render_node(op, av) -> str:
    if op is _sre.LITERAL:
        return _char_text(av)
    if op is _sre.NOT_LITERAL:
        return f"[^{_char_text(av, True)}]"
    if op is _sre.ANY:
        return "."
    if op is _sre.IN:
        if len(av) == 1 and av[0][0] is _sre.CATEGORY:
            return _CATEGORY_TEXT.get(av[0][1], "[…]")
        parts = []
        for kind, code in av:
            if kind is _sre.NEGATE:
                parts.append("^")
            elif kind is _sre.LITERAL:
                parts.append(_char_text(code, True))
            elif kind is _sre.RANGE:
                parts.append(f"{_char_text(code[0], True)}-{_char_text(code[1], True)}")
            elif kind is _sre.CATEGORY:
                parts.append(_CATEGORY_TEXT.get(code, "…"))
        return "[" + "".join(parts) + "]"
    if op in _REPEATS:
        low, high, body = av
        body = list(body)
        inner = _render(body, 1000)
        if not (len(body) == 1 and (body[0][0] in _CHAR_OPS or body[0][0] is _sre.SUBPATTERN)):
            inner = f"(?:{inner})"
        if (low, high) == (0, _UNBOUNDED):
            quantifier = "*"
        elif (low, high) == (1, _UNBOUNDED):
            quantifier = "+"
        elif (low, high) == (0, 1):
            quantifier = "?"
        elif high is _UNBOUNDED:
            quantifier = f"{{{low},}}"
        elif low == high:
            quantifier = f"{{{low}}}"
        else:
            quantifier = f"{{{low},{high}}}"
        if op is _sre.MIN_REPEAT:
            quantifier += "?"
        elif op is _POSSESSIVE:
            quantifier += "+"
        return inner + quantifier
    if op is _sre.SUBPATTERN:
        return ("(" if av[0] else "(?:") + _render(list(av[3]), 1000) + ")"
    if op is _sre.BRANCH:
        return "|".join(_render(list(alt), 1000) for alt in av[1])
    if op is _sre.AT:
        return _AT_TEXT.get(av, "")
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        kind = {(_sre.ASSERT, 1): "?=", (_sre.ASSERT, -1): "?<=", (_sre.ASSERT_NOT, 1): "?!",
                (_sre.ASSERT_NOT, -1): "?<!"}[(op, av[0])]
        return f"({kind}{_render(list(av[1]), 1000)})"
    if _ATOMIC is not None and op is _ATOMIC:
        return f"(?>{_render(list(av), 1000)})"
    return "…"


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
