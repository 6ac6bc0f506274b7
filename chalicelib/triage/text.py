"""Text clean-up shared by the rule engine and the learned model.

Both must see the same text, or a model trained on one normalization would be
fed another at run time. Everything here is cheap: it runs on every mention.
"""
from __future__ import annotations

import re
import unicodedata
from typing import List, NamedTuple, Tuple

URL_RE = re.compile(r"https?://\S+|www\.\S+")
# No look-behind: a pattern that starts with a literal "@" is scanned in C at full speed.
HANDLE_RE = re.compile(r"@([A-Za-z0-9_](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?)")
LEADING_HANDLES_RE = re.compile(r"\s*(?:[.]?@[A-Za-z0-9_.]+[\s:,]*)+")
HASHTAG_RE = re.compile(r"#(\w+)")
# "Cancelled" and "cancelled"; "#NeverAgain" -> "Never Again" so hashtags read as words.
CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])")
# Words, numbers with units ("2hrs" -> "2", "hrs") and the punctuation that ends a clause.
APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


class CleanText(NamedTuple):
    """A mention's text in the forms the analysers need."""

    text: str            # NFKC, entities decoded, case kept
    lower: str           # ``text`` lower-cased, URLs and @handles removed
    handles: Tuple[str, ...]
    url_count: int
    run_on_hashtags: Tuple[str, ...] = ()  # "#horriblecustomerservice": words without a case change


def clean(raw: str) -> CleanText:
    text = raw or ""
    if not text.isascii():
        # Full-width "ＲＴ", "？" and half-width katakana become their usual forms.
        text = unicodedata.normalize("NFKC", text).translate(APOSTROPHES)
    if "&" in text:
        from html import unescape  # only posts with entities ("&amp;") pay for this import

        text = unescape(text)
    handles: Tuple[str, ...] = ()
    body = text
    if "@" in text:
        # pieces alternate text and handle; patterns that open with a literal are fast to scan.
        pieces = HANDLE_RE.split(text)
        handles = tuple(h.lower() for h in pieces[1::2])
        body = " ".join(pieces[0::2])
    url_count = 0
    if "http" in body or "www." in body:
        body, url_count = URL_RE.subn(" ", body)
    text_wo_handles = body
    run_on: Tuple[str, ...] = ()
    if "#" in text_wo_handles:
        run_on = tuple(tag.lower() for tag in HASHTAG_RE.findall(text_wo_handles)
                       if len(tag) >= 7 and (tag.islower() or tag.isupper()) and tag.isalpha())
        text_wo_handles = HASHTAG_RE.sub(_hashtag_words, text_wo_handles)
    return CleanText(text, text_wo_handles.lower(), handles, url_count, run_on)


def leading_handle_count(text: str) -> int:
    """Handles before the first word: on X, the accounts a reply answers."""
    opening = LEADING_HANDLES_RE.match(text)
    return opening.group().count("@") if opening else 0


def _hashtag_words(match: "re.Match[str]") -> str:
    return " " + CAMEL_RE.sub(" ", match.group(1)) + " "


# Bytes kept by the tokenizer: letters, digits, apostrophes and the clause marks
# (spaced out beforehand); everything else, including non-ASCII, becomes a space.
_TOKEN_BYTES = set(b"abcdefghijklmnopqrstuvwxyz0123456789'.!?,;")
_TOKEN_TABLE = bytes(c if c in _TOKEN_BYTES else 32 for c in range(256))


def english_tokens(lower: str) -> List[str]:
    """Words and clause punctuation of lower-cased Latin-script text.

    str.replace and bytes.translate run in C: four times faster than a
    tokenizing regex, and this runs on every post.
    """
    if "." in lower:
        lower = lower.replace(".", " . ")
    if "!" in lower:
        lower = lower.replace("!", " ! ")
    if "?" in lower:
        lower = lower.replace("?", " ? ")
    if "," in lower:
        lower = lower.replace(",", " , ")
    if ";" in lower:
        lower = lower.replace(";", " ; ")
    if "'" in lower:
        # Quotes are not apostrophes: 'great' -> great, but don't stays don't.
        lower = lower.replace(" '", " ").replace("' ", " ")
        lower = lower.strip("'")
    return lower.encode("utf-8").translate(_TOKEN_TABLE).decode("ascii").split()


_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = b"abcdefghijklmnopqrstuvwxyz"


def is_shouting(text: str) -> bool:
    """Mostly upper-case letters: a customer raising their voice."""
    # bytes.translate with deletion runs in C: far cheaper than a loop over characters.
    data = text.encode("utf-8")
    size = len(data)
    upper = size - len(data.translate(None, _UPPER))
    if upper < 12:
        return False
    lower = size - len(data.translate(None, _LOWER))
    return upper / (upper + lower) > 0.6
