"""The most a client may send, and a JSON parser that holds to it.

Everything a request carries is bounded before any of it is used: the body's
size, how deeply its JSON nests, how many values it holds, how large its
numbers are, and that its text is real Unicode. Input past a limit is a
``BadRequest`` naming the limit, raised before anything is written, so a
refusal never leaves half a change behind and never surfaces as a 5xx.

The numbers follow from where the data goes: DynamoDB refuses items over
400 KB, keys over 1 KB (sort) or 2 KB (partition), numbers with more than 38
significant digits or outside 1e-130..1e126, and strings that are not valid
UTF-8 (a JSON ``"\\ud800"`` escape decodes to a lone surrogate that cannot be
encoded). Python's own JSON decoder recurses once per nesting level.

Pure standard library: entry points parse request bodies with ``parse_json``;
anything else that decodes client-controlled JSON (webhook deliveries,
pagination cursors) can use it too.
"""
from __future__ import annotations

import json
import math
import unicodedata
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from chalicelib.domain.errors import BadRequest, PayloadTooLarge

# ---- bodies ----------------------------------------------------------------------

# Far more than any request needs (a full triage rule set is about 13 KB), and
# small enough that the largest body, stored whole, stays under DynamoDB's
# 400 KB item limit.
MAX_BODY_BYTES = 256 * 1024
MAX_CURSOR_LENGTH = 4096
MAX_JSON_DEPTH = 32
# Values of every kind (objects, arrays, strings, numbers, ...) in one body.
MAX_JSON_VALUES = 20_000
# DynamoDB numbers: 38 significant digits, magnitude within 1e-130..1e126.
MAX_INT_DIGITS = 38
MAX_NUMBER_MAGNITUDE = 1e125
MIN_NUMBER_MAGNITUDE = 1e-130

# ---- path and query --------------------------------------------------------------

# Case ids, agent ids (Cognito usernames are at most 128 characters) and any
# other id in a path. 128 characters are at most 512 UTF-8 bytes: well inside
# DynamoDB's key limits.
MAX_ID_LENGTH = 128
MAX_QUERY_PARAMS = 20
MAX_QUERY_NAME_LENGTH = 64
MAX_QUERY_VALUE_LENGTH = 2048
# Parameters allowed to be longer: a pagination cursor carries a position per team.
QUERY_VALUE_LENGTHS = {"cursor": MAX_CURSOR_LENGTH}

# Unicode categories that are never text a person meant to type: control
# characters, surrogates, line and paragraph separators.
_NOT_TEXT = ("Cc", "Cs", "Zl", "Zp")
# Allowed in an id: letters, marks, numbers, punctuation and symbols (the
# characters Cognito allows in a username); no spaces, no invisible formatting.
_ID_CATEGORIES = ("L", "M", "N", "P", "S")


# ---- JSON ------------------------------------------------------------------------

def parse_json(raw: Union[bytes, str, None], *, what: str = "request body",
               max_bytes: int = MAX_BODY_BYTES) -> Any:
    """The JSON value in ``raw`` (UTF-8 bytes), or a BadRequest that says what to fix.

    Refuses, before the value reaches any rule or store: an empty or
    oversized body, bytes that are not UTF-8, invalid JSON, duplicate keys,
    nesting deeper than MAX_JSON_DEPTH, more than MAX_JSON_VALUES values,
    NaN and Infinity, numbers DynamoDB cannot store, and strings holding
    lone surrogates.
    """
    if raw is None or len(raw) == 0:
        raise BadRequest(f"{what} is empty; send a JSON object")
    if isinstance(raw, str):
        if not is_unicode(raw):
            raise BadRequest(f"{what} is not valid UTF-8 text; send JSON encoded as UTF-8")
        raw = raw.encode("utf-8")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"{what} is {len(raw):,} bytes; at most {max_bytes:,} bytes "
                         f"({max_bytes // 1024} KiB) are accepted")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(f"{what} is not valid UTF-8 (byte {err.start}); send JSON encoded as UTF-8") from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_parse_constant, object_pairs_hook=_object_without_duplicates)
    except RecursionError:
        raise BadRequest(f"{what} nests arrays or objects too deeply; at most {MAX_JSON_DEPTH} levels") from None
    except _Refused as err:
        raise BadRequest(f"{what}: {err}") from None
    except ValueError as err:  # JSONDecodeError
        raise BadRequest(f"{what} is not valid JSON: {err}") from None
    problem = _structure_problem(value)
    if problem:
        raise BadRequest(f"{what}: {problem}")
    return value


class _Refused(ValueError):
    """A value the JSON decoder met that we do not accept; the message says which and why."""


def _parse_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"a number has {digits} digits; at most {MAX_INT_DIGITS} are accepted")
    return int(literal)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER_MAGNITUDE:
        raise _Refused(f"the number {_clip(literal)} is too large; numbers must be within "
                       f"±{MAX_NUMBER_MAGNITUDE:g}")
    if value and abs(value) < MIN_NUMBER_MAGNITUDE:
        raise _Refused(f"the number {_clip(literal)} is too close to zero; use 0 or a number of at least "
                       f"{MIN_NUMBER_MAGNITUDE:g}")
    return value


def _parse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number; send a finite number")


def _object_without_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"field {_quote(key)} appears more than once in one object; send it once")
        result[key] = value
    return result


def _structure_problem(value: Any) -> Optional[str]:
    """Depth, count and Unicode of a decoded value, without recursion."""
    count = 0
    stack: List[Tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_JSON_VALUES:
            return f"holds more than {MAX_JSON_VALUES:,} values; send less at once"
        if isinstance(item, dict):
            if depth > MAX_JSON_DEPTH:
                return f"nests arrays or objects too deeply; at most {MAX_JSON_DEPTH} levels"
            for key, child in item.items():
                if not is_unicode(key):
                    return f"a field name is not valid Unicode text ({_describe_bad_unicode(key)})"
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_JSON_DEPTH:
                return f"nests arrays or objects too deeply; at most {MAX_JSON_DEPTH} levels"
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and not is_unicode(item):
            return f"a string is not valid Unicode text ({_describe_bad_unicode(item)})"
    return None


# ---- text ------------------------------------------------------------------------

def is_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate: it cannot be encoded, stored or sent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe_bad_unicode(text: str) -> str:
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            return f"lone surrogate \\u{ord(char):04x}; escape characters outside the BMP as a surrogate pair"
    return "it cannot be encoded as UTF-8"


def text_problem(value: Any, *, max_length: int, multiline: bool = False) -> Optional[str]:
    """Why ``value`` is not acceptable text of at most ``max_length`` characters, or None.

    Tabs and line breaks are allowed only in multi-line text; other control
    characters, lone surrogates and Unicode line/paragraph separators never.
    """
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > max_length:
        return f"is {len(value):,} characters; at most {max_length:,}"
    for position, char in enumerate(value):
        if multiline and char in "\t\n\r":
            continue
        if unicodedata.category(char) in _NOT_TEXT:
            return (f"contains the character U+{ord(char):04X} at position {position}; "
                    + ("control characters" if ord(char) < 0xD800 or ord(char) > 0xDFFF else "lone surrogates")
                    + " are not allowed")
    return None


def id_problem(value: Any, *, max_length: int = MAX_ID_LENGTH) -> Optional[str]:
    """Why ``value`` is not an id (1 to max_length letters, digits, punctuation or symbols), or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > max_length:
        return f"is {len(value):,} characters; at most {max_length}"
    for position, char in enumerate(value):
        if unicodedata.category(char)[0] not in _ID_CATEGORIES:
            return (f"contains U+{ord(char):04X} at position {position}; ids are letters, digits, "
                    "punctuation and symbols, without spaces or control characters")
    return None


# ---- path and query --------------------------------------------------------------

def check_path_params(params: Optional[Mapping[str, Any]]) -> None:
    """Every id in a request path: 1 to MAX_ID_LENGTH printable characters without spaces."""
    for name, value in (params or {}).items():
        problem = id_problem(value)
        if problem:
            raise BadRequest(f"the {name.replace('_', ' ')} in the path {problem}")


def check_query_params(params: Optional[Mapping[str, Any]]) -> None:
    """At most MAX_QUERY_PARAMS parameters, each given once, each value at most
    MAX_QUERY_VALUE_LENGTH characters of text (QUERY_VALUE_LENGTHS for the few longer ones)."""
    if not params:
        return
    names = list(params)
    if len(names) > MAX_QUERY_PARAMS:
        raise BadRequest(f"the query string has {len(names)} parameters; at most {MAX_QUERY_PARAMS}")
    getlist = getattr(params, "getlist", None)
    for name in names:
        problem = text_problem(name, max_length=MAX_QUERY_NAME_LENGTH)
        if problem:
            raise BadRequest(f"a query parameter name {problem}")
        values = getlist(name) if getlist else [params[name]]
        if len(values) > 1:
            raise BadRequest(f"query parameter '{name}' is given {len(values)} times; give it once")
        for value in values:
            problem = text_problem(value, max_length=QUERY_VALUE_LENGTHS.get(name, MAX_QUERY_VALUE_LENGTH))
            if problem:
                raise BadRequest(f"query parameter '{name}' {problem}")


# ---- messages --------------------------------------------------------------------

def _clip(text: str, length: int = 40) -> str:
    return text if len(text) <= length else text[:length] + "…"


def _quote(text: str) -> str:
    return "'" + _clip(text).encode("utf-8", "backslashreplace").decode("utf-8") + "'"


def page_limit(raw: Any, maximum: int) -> int:
    """A list endpoint's ``limit`` query: a whole number from 1 to ``maximum``, or a 400 saying so."""
    try:
        limit = int(raw) if isinstance(raw, str) and len(raw) <= 4 else 0
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        raise BadRequest(f"query 'limit' must be a whole number from 1 to {maximum}")
    return limit
