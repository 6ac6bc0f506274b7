"""Brand-voice checks on a reply before it goes out: rules as data that supervisors edit. Pure.

``GET/PUT /admin/brand-voice`` keeps one document of rules; each rule has a severity, ``block``
(sending is refused with 409 unless the agent gives an override reason) or ``warn`` (shown, sent):

- ``banned``: words and phrases, English or Japanese, matched case-insensitively; English ones only
  as whole words ("hell" does not match "hello"), Japanese ones anywhere in the text;
- ``apology``: complaints and negative cases must apologise (EN "sorry", "apologize"...; JA
  申し訳, すみません, お詫び);
- ``signature``: the reply's last line must match a pattern, e.g. ``-\\w+$`` or ``— {agent.initials}``
  (``{agent.initials}`` and ``{agent.name}`` stand for the sending agent);
- ``emoji``: no emoji on a negative case;
- ``personal_data``: no phone number (international, North American and Japanese formats), e-mail
  address, card number (13 to 19 digits that pass the Luhn check and start like a card) or order
  number (a pattern the supervisor sets) in a public reply; ``allow`` lists what the brand itself
  publishes (its support line, its support address);
- ``length``: what the platform accepts (``domain.text_limits``), counted as the platform counts.

Full-width digits, letters and dashes (common in Japanese text) are read as their ASCII forms;
spans are character offsets ``[start, end)`` into the text as sent.

The two patterns (signature, order number) are supervisors' regular expressions run on every reply
check and send, so they are refused when saved if they could backtrack badly (``pattern_problem``)
and only ever see a bounded text: the order pattern the checked text (``MAX_CHECKED_CHARS``), the
signature pattern the last ``SIGNATURE_WINDOW`` characters of the last line.
"""
from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from chalicelib.domain.errors import BadRequest, Conflict
from chalicelib.domain.limits import text_problem
from chalicelib.domain.text_limits import MAX_INSTAGRAM_DM_BYTES, MAX_TEXT, X_MAX_DM_LENGTH, platform_length

SEVERITIES = ("block", "warn")
RULES = ("banned", "apology", "signature", "emoji", "personal_data", "length")
PERSONAL_KINDS = ("phone", "email", "card", "order")
MAX_BANNED = 500
MAX_PHRASE_CHARS = 100
MAX_NOTE_CHARS = 200
MAX_PATTERN_CHARS = 200
MAX_WORDS = 50
MAX_ALLOW = 50
MAX_OVERRIDE_REASON = 500
MAX_CHECKED_CHARS = 10_000
SIGNATURE_WINDOW = 300       # characters at the end of the last line the signature pattern reads
PATTERN_WORK_BUDGET = 30_000_000  # bound on the paths a pattern may try over the text it reads (see _paths)

DEFAULT_APOLOGY_EN = ("sorry", "apologize", "apologise", "apologies", "apology")
DEFAULT_APOLOGY_JA = ("申し訳", "すみません", "お詫び", "ごめんなさい")
_SECTION_FIELDS: Mapping[str, Tuple[str, ...]] = {
    "apology": ("enabled", "severity", "categories", "sentiments", "en", "ja"),
    "signature": ("enabled", "severity", "pattern"),
    "emoji": ("enabled", "severity"),
    "personal_data": ("enabled", "severity", "kinds", "order_pattern", "allow"),
    "length": ("enabled", "severity"),
}
_EXAMPLE = ('e.g. {"banned": [{"phrase": "calm down", "severity": "block", "note": "acknowledge the feeling '
            'instead"}], "apology": {"enabled": true, "severity": "warn"}, "signature": {"enabled": true, '
            '"severity": "warn", "pattern": "- {agent.initials}$"}, "personal_data": {"order_pattern": '
            '"SA-[0-9]{8}"}}')

# Full-width ASCII (Ｕ＋ＦＦ０１..) and the dashes and spaces Japanese text uses, read as ASCII,
# one character for one so that spans stay true.
_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_WIDTH.update({ord(c): ord("-") for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70"})
_WIDTH[0x3000] = ord(" ")


def _ascii_view(text: str) -> str:
    return text.translate(_WIDTH)


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    span: Optional[Tuple[int, int]] = None
    kind: Optional[str] = None  # personal_data: phone, email, card, order

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"rule": self.rule, "severity": self.severity, "message": self.message,
                                "span": list(self.span) if self.span else None}
        if self.kind:
            data["kind"] = self.kind
        return data


@dataclass(frozen=True)
class CheckContext:
    """What the rules need to know about the reply besides its text."""

    platform: str
    mode: str = "public"          # public reply or private message
    category: Optional[str] = None
    sentiment: Optional[str] = None
    agent_name: str = ""
    agent_initials: str = ""


class BrandVoiceBlocked(Conflict):
    """A reply with blocking findings, refused until the agent gives an override reason."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        blocking = [f for f in findings if f.severity == "block"]
        names = ", ".join(dict.fromkeys(f.rule for f in blocking))
        super().__init__(f"the reply breaks brand-voice rules ({names}): fix the text, or send it again with "
                         f"'override_reason' (at most {MAX_OVERRIDE_REASON} characters) saying why it must go as is")
        self.findings = list(findings)
        # Added to the JSON error body by the HTTP layer.
        self.extra: Dict[str, Any] = {"findings": [f.to_dict() for f in self.findings], "ok": False}


# ---- the rules document ------------------------------------------------------------

def default_rules() -> Dict[str, Any]:
    return {
        "banned": [],
        "apology": {"enabled": True, "severity": "warn", "categories": ["complaint"], "sentiments": ["negative"],
                    "en": list(DEFAULT_APOLOGY_EN), "ja": list(DEFAULT_APOLOGY_JA)},
        "signature": {"enabled": False, "severity": "warn", "pattern": ""},
        "emoji": {"enabled": True, "severity": "warn"},
        "personal_data": {"enabled": True, "severity": "block", "kinds": list(PERSONAL_KINDS), "order_pattern": None,
                          "allow": []},
        "length": {"enabled": True, "severity": "block"},
    }


def effective_rules(stored: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The stored document over the defaults (a section left out of it keeps its defaults)."""
    rules = default_rules()
    if not stored:
        return rules
    rules["banned"] = [dict(entry) for entry in stored.get("banned") or []]
    for section in _SECTION_FIELDS:
        given = stored.get(section)
        if isinstance(given, Mapping):
            rules[section] = {**rules[section], **{k: v for k, v in given.items() if k in _SECTION_FIELDS[section]}}
    return rules


def validate_rules(body: Any) -> Dict[str, Any]:
    """A supervisor's brand-voice document (sections left out take their defaults), or a BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest(f"the brand-voice rules must be a JSON object, {_EXAMPLE}")
    unknown = [key for key in body if key not in RULES]
    if unknown:
        raise BadRequest(f"unknown rule '{str(unknown[0])[:40]}'; the rules are {', '.join(RULES)}")
    rules = default_rules()
    rules["banned"] = _banned(body.get("banned", []))
    for section, fields in _SECTION_FIELDS.items():
        given = body.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise BadRequest(f"rule '{section}' must be an object with {', '.join(fields)}")
        extra = [key for key in given if key not in fields]
        if extra:
            raise BadRequest(f"{section}: unknown field '{str(extra[0])[:40]}'; it has {', '.join(fields)}")
        merged = {**rules[section], **given}
        if not isinstance(merged["enabled"], bool):
            raise BadRequest(f"{section}.enabled must be true or false")
        _severity(merged["severity"], f"{section}.severity")
        rules[section] = merged
    apology = rules["apology"]
    for name in ("categories", "sentiments", "en", "ja"):
        apology[name] = _words(apology[name], f"apology.{name}")
    signature = rules["signature"]
    pattern = signature["pattern"]
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_CHARS:
        raise BadRequest(f"signature.pattern must be a regular expression of at most {MAX_PATTERN_CHARS} characters")
    if signature["enabled"] and not pattern.strip():
        raise BadRequest("signature.pattern is empty; give the pattern a reply's last line must match, e.g. "
                         "'- {agent.initials}$' or '-\\w+$'")
    if pattern:
        _compile(_signature_regex(_ascii_view(pattern), "X", "XX"), "signature.pattern")
        _refuse_slow(_signature_regex(_ascii_view(pattern), "X", "XX"), "signature.pattern", SIGNATURE_WINDOW)
    personal = rules["personal_data"]
    kinds = personal["kinds"]
    if not isinstance(kinds, list) or any(k not in PERSONAL_KINDS for k in kinds):
        raise BadRequest(f"personal_data.kinds must be a list of {', '.join(PERSONAL_KINDS)}")
    personal["kinds"] = list(dict.fromkeys(kinds))
    order = personal["order_pattern"]
    if order is not None:
        if not isinstance(order, str) or not order.strip() or len(order) > MAX_PATTERN_CHARS:
            raise BadRequest(f"personal_data.order_pattern must be null or a regular expression of 1 to "
                             f"{MAX_PATTERN_CHARS} characters, e.g. 'SA-[0-9]{{8}}'")
        compiled = _compile(order, "personal_data.order_pattern")
        if compiled.search("") is not None:
            raise BadRequest("personal_data.order_pattern matches empty text, so it would flag every reply; "
                             "make it match an order number only")
        _refuse_slow(order, "personal_data.order_pattern", MAX_CHECKED_CHARS)
    personal["allow"] = _words(personal["allow"], "personal_data.allow", limit=MAX_ALLOW)
    return rules


def _banned(value: Any) -> List[Dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_BANNED:
        raise BadRequest(f"field 'banned' must be a list of at most {MAX_BANNED} entries such as "
                         '{"phrase": "calm down", "severity": "block"}')
    result: List[Dict[str, Any]] = []
    seen = set()
    for index, entry in enumerate(value):
        where = f"banned[{index}]"
        if isinstance(entry, str):
            entry = {"phrase": entry}
        if not isinstance(entry, dict) or any(k not in ("phrase", "severity", "note") for k in entry):
            raise BadRequest(f'{where} must be a phrase or an object {{"phrase", "severity"?, "note"?}}')
        phrase = entry.get("phrase")
        problem = text_problem(phrase, max_length=MAX_PHRASE_CHARS)
        if problem or not str(phrase).strip():
            raise BadRequest(f"{where}.phrase must be 1 to {MAX_PHRASE_CHARS} characters on one line"
                             + (f" (it {problem})" if problem else ""))
        severity = _severity(entry.get("severity", "block"), f"{where}.severity")
        note = entry.get("note")
        if note is not None and text_problem(note, max_length=MAX_NOTE_CHARS):
            raise BadRequest(f"{where}.note must be at most {MAX_NOTE_CHARS} characters on one line")
        phrase = str(phrase)
        key = " ".join(phrase.split()).casefold()
        if key in seen:
            raise BadRequest(f"{where}: '{phrase[:40]}' is listed twice; list each phrase once")
        seen.add(key)
        item: Dict[str, Any] = {"phrase": " ".join(phrase.split()), "severity": severity}
        if note:
            item["note"] = note
        result.append(item)
    return result


def _severity(value: Any, where: str) -> str:
    if value not in SEVERITIES:
        raise BadRequest(f"{where} must be 'block' (refused unless overridden with a reason) or 'warn' (shown only)")
    return str(value)


def _words(value: Any, where: str, *, limit: int = MAX_WORDS) -> List[str]:
    if not isinstance(value, list) or len(value) > limit:
        raise BadRequest(f"{where} must be a list of at most {limit} strings")
    for word in value:
        problem = text_problem(word, max_length=MAX_PHRASE_CHARS)
        if problem or not str(word).strip():
            raise BadRequest(f"each entry of {where} must be 1 to {MAX_PHRASE_CHARS} characters on one line")
    return [w.strip() for w in value]


def _compile(pattern: str, where: str) -> "re.Pattern[str]":
    try:
        return re.compile(pattern)
    except re.error as err:
        raise BadRequest(f"{where} is not a valid regular expression: {err}") from None


# ---- patterns that cannot pin the API ------------------------------------------------------
#
# Python's ``re`` backtracks: '(a+)+$' or '(\w|\w)*x' takes exponential time on a long reply, and
# '.*.*.*x' polynomial time of a high degree. A pattern is judged on Python's own parse of it
# (re._parser), never by reading its text with another regex:
#
# * refused outright: back-references and conditional groups (their cost depends on what a group
#   captured); a group repeated more than once whose body can match in more than one way: a
#   repeat or optional part of varying length inside it ('(x+)+', '(x*)*', '(ab?)+'), or a '|'
#   choice ('(?:a|a)*', '(cat|dog)+'), since the ways to split the text multiply per repeat;
# * then the paths the engine can try are bounded: each start position of the text it reads,
#   times, for every repeat, the number of counts it can take (a '|' choice adds its branches'
#   paths up, look-arounds multiply like any part). A pattern over PATTERN_WORK_BUDGET is refused.
#   '^' at the start (not multiline) leaves one start position.
#
# Look-arounds are allowed: (?<![A-Z]) and (?!\d) keep an order number from matching inside a
# longer one, and Python only allows fixed-width look-behinds; a look-ahead's repeats are counted.

try:  # Python's own regular-expression parser (re._parser since 3.11, sre_parse before)
    _sre_parse: Any = importlib.import_module("re._parser")
    _sre: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - Python < 3.11
    _sre_parse = importlib.import_module("sre_parse")
    _sre = importlib.import_module("sre_constants")

_REPEATS = tuple(op for op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None))
                 if op is not None)
_ATOMIC = getattr(_sre, "ATOMIC_GROUP", None)
_FIX = ("give repeats an upper limit (\\d{6,10} rather than \\d+), repeat a single character or class "
        "([A-Z0-9-]{4,12}) rather than a group, and use at most a couple of repeats")


class _Refused(Exception):
    pass


def _refuse_slow(pattern: str, where: str, length: int) -> None:
    problem = pattern_problem(pattern, length)
    if problem:
        raise BadRequest(f"{where} {problem}")


@functools.lru_cache(maxsize=256)
def pattern_problem(pattern: str, length: int) -> Optional[str]:
    """Why ``pattern`` could take too long on a text of ``length`` characters, or None when it cannot."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"is longer than {MAX_PATTERN_CHARS} characters"
    try:
        tree = _sre_parse.parse(pattern)
    except re.error as err:
        return f"is not a valid regular expression: {err}"
    items = list(tree.data)
    try:
        _structure(items, None)
        starts = float(length + 1)
        first = items[0] if items else None
        if first is not None and first[0] is _sre.AT and (
                first[1] is _sre.AT_BEGINNING_STRING
                or (first[1] is _sre.AT_BEGINNING and not tree.state.flags & re.MULTILINE)):
            starts = 1.0
        paths = starts * _paths(items, float(length))
    except _Refused as refused:
        return str(refused)
    except RecursionError:  # pragma: no cover - a pattern of 200 characters nests at most ~100 deep
        return "is nested too deeply to be checked; simplify it"
    if paths > PATTERN_WORK_BUDGET:
        return (f"could take too long on a long reply (its repeats can be tried in about {paths:.0e} ways on "
                f"{length:,} characters, at most {PATTERN_WORK_BUDGET:.0e} are allowed): {_FIX}")
    return None


def _render(node: Tuple[Any, Any]) -> str:
    """A short description of a parsed repeat, for messages."""
    op, (low, high, _body) = node
    top = "" if high is _sre.MAXREPEAT else str(high)
    return {(0, ""): "*", (1, ""): "+", (0, "1"): "?"}.get((low, top), f"{{{low},{top}}}")


def _structure(items: List[Tuple[Any, Any]], repeated: Optional[str]) -> None:
    """Raise _Refused for back-references, conditionals, and repeated groups that can match in several ways."""
    for op, av in items:
        if op is _sre.GROUPREF:
            raise _Refused("uses a back-reference (\\1 or (?P=name)); matching one can take very long. "
                           "Write the text out again instead")
        if op is _sre.GROUPREF_EXISTS:
            raise _Refused("uses a conditional group ((?(1)a|b)), which cannot be checked for speed; write it "
                           "without one")
        if op in _REPEATS:
            low, high, body = av
            if repeated is not None and low != high:
                raise _Refused(f"repeats a group that itself contains a repeat of varying length ('{_render((op, av))}' "
                               f"inside a group repeated with '{repeated}', like (a+)+ or (a*)*): nested repeats "
                               f"can take exponential time on a long reply. {_FIX[0].upper()}{_FIX[1:]}")
            inner = _render((op, av)) if high > 1 and repeated is None else repeated
            _structure(list(body), inner)
            width = body.getwidth()
            if inner is not None and width[0] != width[1]:
                raise _Refused(f"repeats with '{inner}' a group whose length varies: the ways to split a long "
                               f"reply between the repeats multiply exponentially. {_FIX[0].upper()}{_FIX[1:]}")
        elif op is _sre.BRANCH:
            if repeated is not None:
                raise _Refused(f"repeats with '{repeated}' a group containing a '|' choice (like (?:a|a)* or "
                               "(\\w|\\d)+): overlapping choices repeated can take exponential time on a long "
                               "reply. Use a class such as [a-z0-9]+ for single characters, or write the choice "
                               "once without repeating it")
            for alternative in av[1]:
                _structure(list(alternative), repeated)
        elif op is _sre.SUBPATTERN:
            _structure(list(av[3]), repeated)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            _structure(list(av[1]), repeated)
        elif _ATOMIC is not None and op is _ATOMIC:
            _structure(list(av), repeated)


def _paths(items: List[Tuple[Any, Any]], length: float) -> float:
    """An upper bound on the ways the engine can go through ``items`` from one start position."""
    total = 1.0
    for op, av in items:
        if op in _REPEATS:
            low, high, body = av
            counts = max(1.0, min(float(high), length) - low + 1)
            total *= counts if high > 1 else counts * _paths(list(body), length)  # nested ones are refused
        elif op is _sre.BRANCH:
            total *= sum(_paths(list(alternative), length) for alternative in av[1])
        elif op is _sre.SUBPATTERN:
            total *= _paths(list(av[3]), length)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            total *= _paths(list(av[1]), length)
        elif _ATOMIC is not None and op is _ATOMIC:
            total *= _paths(list(av), length)
        total = min(total, 1e30)
    return total


def validate_override_reason(value: Any) -> Optional[str]:
    if value is None:
        return None
    problem = text_problem(value, max_length=MAX_OVERRIDE_REASON, multiline=True)
    if problem or not str(value).strip():
        raise BadRequest(f"field 'override_reason' must say, in 1 to {MAX_OVERRIDE_REASON} characters, why the reply "
                         "must go out despite the brand-voice findings" + (f" (it {problem})" if problem else ""))
    return value.strip()


# ---- checking ------------------------------------------------------------------------

def check(text: str, rules: Mapping[str, Any], context: CheckContext) -> List[Finding]:
    """Every finding on ``text``, in the order of the text (findings without a span last)."""
    text = text[:MAX_CHECKED_CHARS]
    view = _ascii_view(text)
    findings: List[Finding] = []
    findings.extend(_banned_findings(view, rules.get("banned") or []))
    negative = context.sentiment == "negative"
    apology = rules["apology"]
    if apology["enabled"] and (context.category in apology["categories"] or context.sentiment in apology["sentiments"]):
        if not _apologises(view, apology["en"], apology["ja"]):
            why = f"a {context.category}" if context.category in apology["categories"] else "a negative case"
            findings.append(Finding("apology", apology["severity"],
                                    f"this is {why}: apologise (e.g. \"Sorry\", 「申し訳ございません」)"))
    signature = rules["signature"]
    if signature["enabled"] and signature["pattern"]:
        # Dashes read alike: "— KT", "- KT" and "ー KT" all sign a reply whose pattern has any of them.
        source = _signature_regex(_ascii_view(signature["pattern"]), context.agent_name, context.agent_initials)
        last = _last_line(text)
        # As when saved: a name put in is a literal, it adds no way to match. Rules stored before
        # patterns were checked for speed are not run.
        if pattern_problem(_signature_regex(_ascii_view(signature["pattern"]), "X", "XX"), SIGNATURE_WINDOW):
            findings.append(_unchecked("signature", "signature.pattern"))
        elif re.search(source, signature_tail(_ascii_view(last[1]))) is None:
            findings.append(Finding("signature", signature["severity"],
                                    f"the last line must be the signature (pattern {signature['pattern']!r})",
                                    span=(last[0], last[0] + len(last[1])) if last[1] else None))
    emoji = rules["emoji"]
    if emoji["enabled"] and negative:
        for start, end in emoji_spans(text):
            findings.append(Finding("emoji", emoji["severity"], "no emoji in a reply on a negative case",
                                    span=(start, end)))
    personal = rules["personal_data"]
    if personal["enabled"] and context.mode == "public":
        allowed = {_plain(a) for a in personal["allow"]}
        order_pattern = personal.get("order_pattern")
        if order_pattern and "order" in personal["kinds"] and pattern_problem(order_pattern, MAX_CHECKED_CHARS):
            findings.append(_unchecked("personal_data", "personal_data.order_pattern"))  # stored before the check
            order_pattern = None
        for kind, start, end in personal_data(view, personal["kinds"], order_pattern):
            if _plain(view[start:end]) in allowed:
                continue
            findings.append(Finding("personal_data", personal["severity"],
                                    f"{_KIND_NAMES[kind]} in a public reply: send it by private message instead",
                                    span=(start, end), kind=kind))
    length = rules["length"]
    if length["enabled"]:
        problem = length_problem(text, context.platform, context.mode)
        if problem:
            findings.append(Finding("length", length["severity"], problem))
    return sorted(findings, key=lambda f: (f.span is None, f.span or (0, 0)))


def _unchecked(rule: str, where: str) -> Finding:
    return Finding(rule, "warn", f"{where} is not checked: it could take too long on a long reply; a supervisor "
                                 "must save it again (PUT /admin/brand-voice says what to change)")


def signature_tail(line: str) -> str:
    """What the signature pattern reads of the last line: its last SIGNATURE_WINDOW characters."""
    return line[-SIGNATURE_WINDOW:]


def blocking(findings: Sequence[Finding]) -> List[Finding]:
    return [f for f in findings if f.severity == "block"]


_KIND_NAMES = {"phone": "a phone number", "email": "an e-mail address", "card": "a card number",
               "order": "an order number"}
_LATIN_EDGE = "A-Za-z0-9_"


def _phrase_regex(phrase: str) -> "re.Pattern[str]":
    words = _ascii_view(phrase).split()
    body = r"\s+".join(re.escape(w) for w in words)
    if re.fullmatch(r"[\x00-\x7f\u00c0-\u024f\s]+", phrase):  # English: whole words only
        return re.compile(rf"(?<![{_LATIN_EDGE}]){body}(?![{_LATIN_EDGE}])", re.IGNORECASE)
    return re.compile(body, re.IGNORECASE)


def _banned_findings(view: str, banned: Sequence[Mapping[str, Any]]) -> Iterator[Finding]:
    for entry in banned:
        phrase = str(entry["phrase"])
        for match in _phrase_regex(phrase).finditer(view):
            note = f"; {entry['note']}" if entry.get("note") else ""
            yield Finding("banned", str(entry.get("severity", "block")),
                          f"'{phrase}' is on the brand's banned list{note}", span=match.span())


def _apologises(view: str, english: Sequence[str], japanese: Sequence[str]) -> bool:
    for word in english:
        if re.search(rf"(?<![{_LATIN_EDGE}]){re.escape(_ascii_view(word))}", view, re.IGNORECASE):
            return True
    return any(word in view for word in japanese)


def _signature_regex(pattern: str, name: str, initials: str) -> str:
    return pattern.replace("{agent.initials}", re.escape(initials)).replace("{agent.name}", re.escape(name))


def _last_line(text: str) -> Tuple[int, str]:
    """(offset, the last non-empty line without trailing spaces)."""
    stripped = text.rstrip()
    start = stripped.rfind("\n") + 1
    line = stripped[start:]
    lead = len(line) - len(line.lstrip())
    return start + lead, line.strip()


def _plain(text: str) -> str:
    return "".join(c for c in _ascii_view(text).casefold() if c.isalnum())


# ---- emoji ---------------------------------------------------------------------------

_EMOJI_RANGES = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x2300, 0x23FF), (0xE0020, 0xE007F))
_EMOJI_SINGLES = frozenset((0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D, 0x3297, 0x3299, 0x00A9, 0x00AE))
_EMOJI_JOINERS = frozenset((0x200D, 0xFE0F, 0xFE0E, 0x20E3))
_EMOTICON = re.compile(r"(?<![\w:;])[:;]-?[)(DPp](?![\w)(])")


def is_emoji(char: str) -> bool:
    code = ord(char)
    return code in _EMOJI_SINGLES or any(low <= code <= high for low, high in _EMOJI_RANGES)


def emoji_spans(text: str) -> List[Tuple[int, int]]:
    """Runs of emoji (with their joiners and variation selectors), and ASCII smileys such as ':)'."""
    spans: List[Tuple[int, int]] = []
    index = 0
    while index < len(text):
        if is_emoji(text[index]):
            end = index + 1
            while end < len(text) and (is_emoji(text[end]) or ord(text[end]) in _EMOJI_JOINERS):
                end += 1
            spans.append((index, end))
            index = end
        else:
            index += 1
    spans.extend(m.span() for m in _EMOTICON.finditer(text))
    return sorted(spans)


# ---- personal data -------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![A-Za-z0-9_.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9_-])")
_PHONES = (
    # International: +81 90-1234-5678, +1 (415) 555-0100, +44 20 7946 0958
    re.compile(r"(?<![A-Za-z0-9_+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\d)"),
    # Japanese with separators: 03-1234-5678, 090-1234-5678, 0120-123-456, (03)1234-5678
    re.compile(r"(?<![A-Za-z0-9_-])\(?0\d{1,4}\)?[ -]?\d{1,4}-\d{3,4}(?![A-Za-z0-9_-])"),
    # Japanese without separators: 09012345678, 0312345678
    re.compile(r"(?<![A-Za-z0-9_-])0\d{9,10}(?![A-Za-z0-9_-])"),
    # North American: (415) 555-0100, 415-555-0100, 415.555.0100
    re.compile(r"(?<![A-Za-z0-9_-])(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![A-Za-z0-9_-])"),
)
# 13 to 19 digits, in groups separated by single spaces or hyphens.
_CARD = re.compile(r"(?<![A-Za-z0-9_-])\d(?:[ -]?\d){12,18}(?![A-Za-z0-9_-])")


def personal_data(view: str, kinds: Sequence[str], order_pattern: Optional[str]) -> List[Tuple[str, int, int]]:
    """(kind, start, end) of each piece of personal data; a span is reported once, as its likeliest kind."""
    found: List[Tuple[str, int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if not any(start < e and s < end for _, s, e in found):
            found.append((kind, start, end))

    if "email" in kinds:
        for match in _EMAIL.finditer(view):
            add("email", *match.span())
    if "card" in kinds:
        for match in _CARD.finditer(view):
            if is_card_number(match.group(0)):
                add("card", *match.span())
    if "order" in kinds and order_pattern:
        for match in re.finditer(order_pattern, view[:MAX_CHECKED_CHARS]):
            if match.end() > match.start():
                add("order", *match.span())
    if "phone" in kinds:
        for regex in _PHONES:
            for match in regex.finditer(view):
                digits = sum(c.isdigit() for c in match.group(0))
                if 9 <= digits <= 15 and not _looks_like_date(match.group(0)):
                    add("phone", *match.span())
    return sorted(found, key=lambda item: item[1])


def is_card_number(text: str) -> bool:
    """13 to 19 digits, starting as a payment card does (2-6), passing the Luhn check."""
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19 or digits[0] not in (2, 3, 4, 5, 6):
        return False
    return luhn_ok(digits)


def luhn_ok(digits: Sequence[int]) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _looks_like_date(text: str) -> bool:
    return re.fullmatch(r"\(?\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\)?", text.strip()) is not None


# ---- length ----------------------------------------------------------------------------

def length_problem(text: str, platform: str, mode: str) -> Optional[str]:
    """What the platform would refuse about the text's length, or None."""
    if platform == "instagram" and mode == "private":
        size = len(text.encode("utf-8"))
        if size > MAX_INSTAGRAM_DM_BYTES:
            return (f"{size} bytes (UTF-8); an Instagram message allows {MAX_INSTAGRAM_DM_BYTES} "
                    "(about 330 Japanese characters): shorten it")
        return None
    limit = X_MAX_DM_LENGTH if platform == "x" and mode == "private" else MAX_TEXT.get(platform, 280)
    length = platform_length(platform, text) if mode == "public" else len(text)
    if length > limit:
        counted = " as X counts them (Japanese characters and emoji count two)" if platform == "x" else ""
        return f"{length} characters{counted}; {platform} allows {limit}: shorten it by {length - limit}"
    return None
