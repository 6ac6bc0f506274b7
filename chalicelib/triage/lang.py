"""Language detection good enough to pick a lexicon.

Script decides most cases (kana means Japanese, hangul Korean...). Latin text
is English unless another language's function words clearly outnumber
English ones. The platform's own language tag only breaks ties: X tags many
short Japanese posts "und" and some English ones "ja".
"""
from __future__ import annotations

import re
from typing import Dict, FrozenSet, Optional, Sequence

_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")
_ASCII_LETTER_RE = re.compile(r"[A-Za-z]")

# Characters common in Chinese but absent or rare in Japanese writing.
_CHINESE_ONLY = frozenset("的了是这们么吗没为说个还对么给让")

_FUNCTION_WORDS: Dict[str, FrozenSet[str]] = {
    "en": frozenset("the and is are you your my i to of it this that for with was have not but on in at be".split()),
    "es": frozenset("el la los las que de y es por para con una un mi su pero muy gracias no lo".split()),
    "fr": frozenset("le la les des est et pour avec une un mon votre pas je vous merci mais très".split()),
    "de": frozenset("der die das und ist nicht mit ein eine ich sie für danke aber sehr mein".split()),
    "pt": frozenset("o os as que de e é para com uma um meu não obrigado obrigada mas muito".split()),
    "it": frozenset("il lo gli che di e è per con una un mio non grazie ma molto sono".split()),
}


def detect_language(text: str, hint: Optional[str] = None, words: Optional[Sequence[str]] = None) -> str:
    """A two-letter code for ``text`` (already NFKC-normalized), 'und' if no letters.

    ``words``: the text's lower-case words if the caller has them (saves a split).
    """
    hint = (hint or "").lower()[:2] if hint and hint.lower() not in ("und", "zxx", "qme", "qht") else ""
    if text.isascii():
        # Telling English from Spanish by function words is weaker than the
        # platform's own detector: trust its tag for Latin-script text.
        if hint in _LATIN_LANGS:
            return hint
        return _latin_language(text, hint, words)
    kana = han = hangul = latin = cyrillic = arabic = thai = 0
    chinese_only = False
    # Only the non-ASCII characters need a look; ASCII letters are counted once, below.
    for ch in _NON_ASCII_RE.findall(text):
        code = ord(ch)
        if 0x3040 <= code <= 0x30FF:
            kana += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
            han += 1
            if ch in _CHINESE_ONLY:
                chinese_only = True
        elif 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
            hangul += 1
        elif 0x0400 <= code <= 0x04FF:
            cyrillic += 1
        elif 0x0600 <= code <= 0x06FF:
            arabic += 1
        elif 0x0E00 <= code <= 0x0E7F:
            thai += 1
        elif ch.isalpha():
            latin += 1
    if kana:
        return "ja"
    if han:
        # Kanji-only posts ("欠航。返金希望") are common in Japanese.
        if hint in ("zh", "ja"):
            return hint
        return "zh" if chinese_only else "ja"
    scripts = {"ko": hangul, "ru": cyrillic, "ar": arabic, "th": thai}
    best = max(scripts, key=scripts.__getitem__)
    if scripts[best] and scripts[best] >= latin + len(_ASCII_LETTER_RE.findall(text)):
        if best == "ru" and hint in ("uk", "bg", "sr"):
            return hint
        return best
    return _latin_language(text, hint, words)


_ENGLISH = _FUNCTION_WORDS["en"]
_LATIN_LANGS = frozenset(("en", "es", "fr", "de", "pt", "it", "nl", "id", "ms", "tl", "sv", "da", "no", "fi",
                          "pl", "ro", "tr", "ca", "cs", "hu", "vi"))
_OTHERS = [(lang, vocab) for lang, vocab in _FUNCTION_WORDS.items() if lang != "en"]


def _latin_language(text: str, hint: str, words: Optional[Sequence[str]]) -> str:
    if words is None:
        words = [w.strip(".,!?;:\"'()").lower() for w in text.split() if not w.startswith(("@", "http", "#"))]
    present = set(words)
    if not any(w[:1].isalpha() for w in present):
        return hint or "und"
    english = len(_ENGLISH.intersection(present))
    if english >= 3:
        return "en"
    counts = {lang: len(vocab.intersection(present)) for lang, vocab in _OTHERS}
    other = max(counts, key=counts.__getitem__)
    if counts[other] >= 2 and counts[other] > english:
        return other
    if english == 0 and hint and hint != "en" and hint not in ("ja", "zh", "ko"):
        return hint
    return "en"
