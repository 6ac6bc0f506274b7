"""How long a message may be on each platform, counted the way the platform counts.

A reply that the platform would refuse is refused before it is queued, with
the count the platform would make.
"""
from __future__ import annotations

import re
import unicodedata

X_MAX_POST_LENGTH = 280
X_MAX_DM_LENGTH = 10_000
# Characters per message; platforms refuse longer ones.
MAX_TEXT = {"x": X_MAX_POST_LENGTH, "facebook": 8000, "instagram": 2200, "messenger": 2000, "whatsapp": 4096}
# Instagram direct messages are limited in UTF-8 bytes, not characters:
# about 330 characters of Japanese.
MAX_INSTAGRAM_DM_BYTES = 1000

_URL = re.compile(r"(https?://\S+)")
# Code point ranges twitter-text weighs as 1; everything else weighs 2.
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def weighted_length(text: str) -> int:
    """Post length as X counts it (twitter-text v3): CJK and emoji count 2, URLs 23.

    Each emoji code point counts 2, so skin-tone and ZWJ sequences come out a
    little long: this may refuse a borderline post but never lets X refuse one.
    """
    text = unicodedata.normalize("NFC", text)
    length = 0
    for part in _URL.split(text):
        if _URL.fullmatch(part):
            length += 23
        else:
            length += sum(1 if _is_light(ord(char)) else 2 for char in part)
    return length


def _is_light(code_point: int) -> bool:
    return any(low <= code_point <= high for low, high in _LIGHT_RANGES)


def platform_length(platform: str, text: str) -> int:
    """The length the platform counts for ``text``."""
    if platform == "x":
        return weighted_length(text)
    return len(text)
