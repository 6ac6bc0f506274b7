"""Text clean-up shared by the rule engine and the learned model.

Both must see the same text, or a model trained on one normalization would be
fed another at run time. Everything here is cheap: it runs on every mention.
"""
from __future__ import annotations

import re
import unicodedata
from typing import List, NamedTuple, Tuple

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
HANDLE_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?)")
LEADING_HANDLES_RE = re.compile(r"\s*(?:[.]?@[A-Za-z0-9_.]+[\s:,]*)+")
HASHTAG_RE = re.compile(r"#(\w+)")
# "Cancelled" and "cancelled"; "#NeverAgain" -> "Never Again" so hashtags read as words.
CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])")
# "soooo" and "sooo" are the same word; two letters are kept so "good" survives.
ELONGATION_RE = re.compile(r"([a-z])\1\1+")
CAPS_WORD_RE = re.compile(r"\b[A-Z][A-Z']{2,}\b")
UPPER_RE = re.compile(r"[A-Z]")
LETTER_RE = re.compile(r"[A-Za-z]")
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
        from html import unescape  # only posts with entities ("&amp;") pay for this import

        text = unescape(text)
    handles: Tuple[str, ...] = ()
    leading = 0
    if "@" in text:
        handles = tuple(h.lower() for h in HANDLE_RE.findall(text))
        opening = LEADING_HANDLES_RE.match(text)
        leading = opening.group().count("@") if opening else 0
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


def english_tokens(lower: str) -> List[str]:
    """Words and clause punctuation of lower-cased Latin-script text."""
    if ELONGATION_RE.search(lower):
        lower = ELONGATION_RE.sub(r"\1\1", lower)
    return EN_TOKEN_RE.findall(lower)


def is_shouting(text: str) -> bool:
    """Mostly upper-case words: a customer raising their voice."""
    # Cheap test first: almost no post has two all-caps words.
    if len(CAPS_WORD_RE.findall(text)) < 2:
        return False
    letters = len(LETTER_RE.findall(text))
    return letters >= 12 and len(UPPER_RE.findall(text)) / letters > 0.6
