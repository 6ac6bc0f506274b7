"""Text clean-up shared by the rule engine and the learned model.

Both must see the same text, or a model trained on one normalization would be
fed another at run time. Everything here is cheap: it runs on every mention.
"""
from __future__ import annotations

import re
import unicodedata
from html import unescape
from typing import List, NamedTuple, Tuple

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
HANDLE_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_][A-Za-z0-9_.]*)")
HASHTAG_RE = re.compile(r"#(\w+)")
# "Cancelled" and "cancelled"; "#NeverAgain" -> "Never Again" so hashtags read as words.
CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])")
# "soooo" and "sooo" are the same word; two letters are kept so "good" survives.
ELONGATION_RE = re.compile(r"([a-z])\1{2,}")
# Words, numbers with units ("2hrs" -> "2", "hrs") and the punctuation that ends a clause.
EN_TOKEN_RE = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.:]\d+)?|[.!?,;]")
APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


class CleanText(NamedTuple):
    """A mention's text in the forms the analysers need."""

    text: str            # NFKC, entities decoded, case kept
    lower: str           # ``text`` lower-cased, URLs and @handles removed
    handles: Tuple[str, ...]
    url_count: int
    leading_handles: int  # handles before the first word: the reply chain on X
    run_on_hashtags: Tuple[str, ...] = ()  # "#horriblecustomerservice": words without a case change


def clean(raw: str) -> CleanText:
    text = raw or ""
    if not text.isascii():
        # Full-width "ＲＴ", "？" and half-width katakana become their usual forms.
        text = unicodedata.normalize("NFKC", text).translate(APOSTROPHES)
    if "&" in text:
        text = unescape(text)
    handles: Tuple[str, ...] = ()
    leading = 0
    if "@" in text:
        found = HANDLE_RE.findall(text)
        handles = tuple(h.rstrip(".").lower() for h in found)
        leading = _count_leading_handles(text)
        text_wo_handles = HANDLE_RE.sub(" ", text)
    else:
        text_wo_handles = text
    url_count = 0
    if "http" in text_wo_handles or "www." in text_wo_handles:
        text_wo_handles, url_count = URL_RE.subn(" ", text_wo_handles)
    run_on: Tuple[str, ...] = ()
    if "#" in text_wo_handles:
        run_on = tuple(tag.lower() for tag in HASHTAG_RE.findall(text_wo_handles)
                       if len(tag) >= 7 and (tag.islower() or tag.isupper()) and tag.isalpha())
        text_wo_handles = HASHTAG_RE.sub(_hashtag_words, text_wo_handles)
    return CleanText(text, text_wo_handles.lower(), handles, url_count, leading, run_on)


def _hashtag_words(match: "re.Match[str]") -> str:
    return " " + CAMEL_RE.sub(" ", match.group(1)) + " "


def _count_leading_handles(text: str) -> int:
    count = 0
    for word in text.split():
        if word.startswith("@"):
            count += 1
        else:
            break
    return count


def english_tokens(lower: str) -> List[str]:
    """Words and clause punctuation of lower-cased Latin-script text."""
    if "'" not in lower and not lower.isascii():
        lower = lower.translate(APOSTROPHES)
    tokens = EN_TOKEN_RE.findall(lower)
    if any(len(t) > 3 for t in tokens):
        # Elongation is rare; only pay for the regex when a long word exists.
        tokens = [ELONGATION_RE.sub(r"\1\1", t) if len(t) > 3 else t for t in tokens]
    return tokens


def is_shouting(text: str) -> bool:
    """Mostly upper-case words: a customer raising their voice."""
    letters = [c for c in text if c.isalpha() and c.isascii()]
    if len(letters) < 12:
        return False
    upper = sum(1 for c in letters if c.isupper())
    return upper / len(letters) > 0.6
