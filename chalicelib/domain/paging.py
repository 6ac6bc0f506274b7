"""Pagination cursors as the API hands them out: opaque, URL-safe strings.

A cursor packs a small JSON state (per team, the store's own position token).
What a position means is the store's business; a cursor that does not decode,
or decodes to something else than this API issued, is an ``InvalidCursor``.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict

from chalicelib.domain.errors import BadRequest, InvalidCursor
from chalicelib.domain.limits import MAX_CURSOR_LENGTH, parse_json


def encode_cursor(state: Dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Dict[str, Any]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("query 'cursor' is not one this API issued; start again without it")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # The same strict JSON rules as request bodies: no lone surrogates, no deep nesting, no huge numbers.
        state = parse_json(base64.urlsafe_b64decode(padded.encode("ascii")), what="cursor",
                           max_bytes=MAX_CURSOR_LENGTH)
    except (BadRequest, ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor("query 'cursor' is not one this API issued; start again without it") from None
    if not isinstance(state, dict):
        raise InvalidCursor("query 'cursor' is not one this API issued; start again without it")
    return state
