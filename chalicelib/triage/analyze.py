"""Turn a mention's text into signals: sentiment evidence, cues and flags.

Two passes over the text, each a dictionary walk (no regex per term):

* sentiment: lexicon terms with negation, intensifiers and "but" contrast.
  Terms are consumed longest-first, so "can't wait" is never a negated "wait".
* cues: every keyword present, overlapping allowed. Category keywords come
  from the rule set; built-in grammar cues (questions, requests, churn talk)
  use labels that start with "_".

Lexicons are compiled once per rule set and language, on first use, so
importing this module costs nothing.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .text import CleanText, english_tokens, is_shouting

QUESTION = "_question"
REQUEST = "_request"
CHURN = "_churn"
# Weight of a negative hit relative to a positive one when both are present:
# a customer who says "thanks" and "still no bag" is not happy.
CONTRAST_BEFORE = 0.6
CONTRAST_AFTER = 1.3
NEGATION_SCOPE = 3
# "?!" and "??": a customer past asking politely.
EXASPERATION = -1.2
INQUIRY_FACTOR = 0.4
HYPOTHETICAL_FACTOR = 0.3
SARCASTIC_WEIGHT = -0.8
_INQUIRY_OPENERS = frozenset("""
is are am do does did can could will would should shall may might has have any anyone
was were what when where which who how
""".split())


class Term(NamedTuple):
    text: str
    sentiment: Optional[float]
    negator: bool
    intensity: Optional[float]


class Signals(NamedTuple):
    """Everything the decision needs to know about one text."""

    lang: str
    positive: float               # sum of positive evidence (>= 0)
    negative: float               # sum of negative evidence as a positive number
    hits: Tuple[Tuple[str, float], ...]
    cues: Dict[str, List[str]]    # label -> keywords found
    question: bool
    word_count: int               # words (EN) or letters/2 (JA): how much was said
    shouting: bool
    exclaims: int
    time_spent: bool              # "3 hours", "2時間": a wait or delay measured by the customer
    tokens: Optional[List[str]]   # words of a spaced language (None for Japanese): model features


class Lexicon:
    """Compiled sentiment terms and cue keywords for one language."""

    def __init__(self, lang: str, sentiment: Mapping[str, float], negators: Iterable[str],
                 intensifiers: Mapping[str, float], cues: Mapping[str, Iterable[str]],
                 situational: Iterable[str] = (), sarcasm_openers: Iterable[str] = ()):
        self.lang = lang
        self.spaced = lang not in NO_SPACE_LANGS
        terms: Dict[str, Term] = {}
        for text, weight in sentiment.items():
            terms[text] = Term(text, float(weight), False, None)
        for text in negators:
            old = terms.get(text)
            terms[text] = Term(text, old.sentiment if old else None, True, old.intensity if old else None)
        for text, factor in intensifiers.items():
            old = terms.get(text)
            terms[text] = Term(text, old.sentiment if old else None, old.negator if old else False, float(factor))
        self.sentiment_index = _index(terms.items(), self.spaced)
        # Single words, for finding the parts of run-on hashtags ("#rudestaff").
        self.words = {k: t.sentiment for k, t in terms.items()
                      if t.sentiment is not None and " " not in k and len(k) >= 4 and k.isalpha()}
        self.situational = frozenset(_key(t, self.spaced) for t in situational)
        self.sarcasm_openers = frozenset(_key(t, self.spaced) for t in sarcasm_openers)
        cue_labels: Dict[str, set] = {}
        for label, keywords in cues.items():
            for keyword in keywords:
                key = _key(keyword, self.spaced)
                if key:
                    cue_labels.setdefault(key, set()).add(label)
        self.cue_index = _index(((k, (k, tuple(sorted(v)))) for k, v in cue_labels.items()), self.spaced)
        self.cue_first_tokens = frozenset(self.cue_index)


NO_SPACE_LANGS = frozenset(("ja", "zh", "th"))


def _key(text: str, spaced: bool) -> str:
    """The form a term is matched in: lower-case, and for spaced languages the token sequence."""
    import unicodedata

    text = unicodedata.normalize("NFKC", text).lower().strip()
    if spaced:
        return " ".join(english_tokens(text))
    return text


def _index(items: Iterable[Tuple[str, object]], spaced: bool) -> Dict[str, list]:
    """First token (spaced) or first character -> [(key parts, value)], longest first."""
    index: Dict[str, list] = {}
    for raw_key, value in items:
        key = _key(raw_key, spaced)
        if not key:
            continue
        parts: Sequence[str] = tuple(key.split(" ")) if spaced else key
        index.setdefault(parts[0], []).append((parts, value))
    for entries in index.values():
        entries.sort(key=lambda entry: -len(entry[0]))
    return index


def analyze(clean: CleanText, lang: str, lexicon: Lexicon, tokens: Optional[List[str]],
            emoji: Mapping[str, float], emoticons: "re.Pattern[str] | None",
            emoticon_weights: Mapping[str, float]) -> Signals:
    """Signals for one text; ``tokens`` are its words (spaced languages only)."""
    if lexicon.spaced:
        if tokens is None:
            tokens = english_tokens(clean.lower)
        return _analyze_spaced(clean, lang, lexicon, tokens, emoji, emoticons, emoticon_weights)
    return _analyze_unspaced(clean, lang, lexicon, emoji)


# --- space-delimited languages ------------------------------------------------

_TIME_UNITS = frozenset("hour hours hr hrs min mins minute minutes day days week weeks".split())
_CLAUSE_END = frozenset(".!?,;")
_QUICK = frozenset(("in", "within", "under", "only", "just"))
# "would be great if", "I wish it had": praise for something that does not exist yet.
_HYPOTHETICAL = frozenset(("would", "if", "wish", "hoping", "could"))


def _analyze_spaced(clean: CleanText, lang: str, lexicon: Lexicon, tokens: List[str],
                    emoji: Mapping[str, float], emoticons, emoticon_weights) -> Signals:
    text = clean.text
    index = lexicon.sentiment_index
    # A question that opens like an enquiry ("is flight 12 delayed?") reports a
    # situation rather than a feeling: its words count for less.
    inquiry = "?" in text and bool(tokens) and tokens[0] in _INQUIRY_OPENERS
    situational = lexicon.situational
    hits: List[Tuple[str, float]] = []
    positions: List[int] = []
    contrast_at = -1
    negate_left = 0
    intensity = 1.0
    time_spent = False
    n = len(tokens)
    i = 0
    # The loop below runs for every word of every post: keep it flat.
    while i < n:
        token = tokens[i]
        entries = index.get(token)
        if entries is None:
            if token in _CLAUSE_END:
                negate_left = 0
                intensity = 1.0
            else:
                if negate_left:
                    negate_left -= 1
                if token in _CONTRAST and hits:
                    contrast_at = len(hits)
                elif token.isdigit() and i + 1 < n and tokens[i + 1] in _TIME_UNITS and (
                        i == 0 or tokens[i - 1] not in _QUICK):
                    time_spent = True
            i += 1
            continue
        term = None
        length = 1
        for parts, candidate in entries:
            length = len(parts)
            if length == 1 or tuple(tokens[i:i + length]) == parts:
                term = candidate
                break
        if term is None:
            if negate_left:
                negate_left -= 1
            i += 1
            continue
        weight = term.sentiment
        if weight is not None:
            weight *= intensity
            if negate_left and length == 1 and not term.negator:
                weight = weight * -0.9 if weight > 0 else 0.0
            if inquiry and (weight > 0 or term.text in situational):
                weight *= INQUIRY_FACTOR
            if weight > 0 and i and _HYPOTHETICAL.intersection(tokens[max(0, i - 3):i]):
                weight *= HYPOTHETICAL_FACTOR
            if weight:
                hits.append((term.text, weight))
                positions.append(i)
            intensity = 1.0
            negate_left = NEGATION_SCOPE if term.negator else 0
        elif term.negator:
            negate_left = NEGATION_SCOPE
        elif negate_left:
            negate_left -= 1
        if term.intensity is not None:
            intensity = term.intensity
        i += length
    if hits and lexicon.sarcasm_openers:
        hits = _sarcasm(hits, positions, tokens, lexicon.sarcasm_openers)
    if contrast_at > 0:
        hits = [(t, w * (CONTRAST_BEFORE if k < contrast_at else CONTRAST_AFTER)) for k, (t, w) in enumerate(hits)]
    for tag in clean.run_on_hashtags:
        hits.extend(_hashtag_parts(tag, lexicon.words))
    if not text.isascii():
        for ch in _EMOJI_CANDIDATE_RE.findall(text):
            weight = emoji.get(ch)
            if weight:
                hits.append((ch, weight))
    if emoticons is not None and _EMOTICON_HINT_RE.search(text):
        for found in emoticons.findall(" " + clean.lower + " "):
            hits.append((found, emoticon_weights[found]))
    exasperation = _exasperation(text)
    if exasperation:
        hits.append(exasperation)
    cues = _match_cues_spaced(lexicon, tokens)
    question = "?" in text or (n > 0 and tokens[0] in _QUESTION_STARTERS) or QUESTION in cues
    if question and QUESTION not in cues:
        cues[QUESTION] = ["?"]
    words = n - sum(1 for t in tokens if t in _CLAUSE_END) if n else 0
    return _signals(lang, hits, cues, question, words, is_shouting(text), text.count("!"), time_spent, tokens)


_CONTRAST = frozenset(("but", "however", "although", "though"))
_EMOJI_CANDIDATE_RE = re.compile(r"[\u2190-\u2BFF\U0001F000-\U0001FAFF]")
_EMOTICON_HINT_RE = re.compile(r"[:;=]|<3|\^|_|\):")


def _exasperation(text: str) -> Optional[Tuple[str, float]]:
    if "?!" in text or "!?" in text:
        return ("?!", EXASPERATION)
    if "??" in text:
        return ("??", EXASPERATION * 0.6)
    return None


def _sarcasm(hits: List[Tuple[str, float]], positions: List[int], tokens: List[str],
             openers: frozenset) -> List[Tuple[str, float]]:
    """"Thanks for losing my bag": thanks for a grievance, and no other praise.

    Only what is thanked for counts: "thanks for finding my lost bag" is real
    gratitude even though "lost" follows.
    """
    praise = [k for k, (t, w) in enumerate(hits) if w > 0]
    if len(praise) != 1 or hits[praise[0]][0] not in openers:
        return hits
    k = praise[0]
    after = positions[k] + len(hits[k][0].split())
    if after < len(tokens) and tokens[after] == "for":
        after += 1
    while after < len(tokens) and tokens[after] in _FILLER:
        after += 1
    if after >= len(tokens):
        return hits
    thanked_for = tokens[after]
    grievance = thanked_for in _SARCASTIC_OBJECTS or any(
        positions[j] == after and w <= -0.7 for j, (_, w) in enumerate(hits))
    if not grievance:
        return hits
    hits = list(hits)
    hits[k] = (hits[k][0] + " (sarcastic)", SARCASTIC_WEIGHT)
    return hits


_FILLER = frozenset(("the", "a", "an", "my", "our", "me", "us", "your", "all", "this", "that", "another"))
_SARCASTIC_OBJECTS = frozenset("""
making leaving losing ruining cancelling canceling delaying charging wasting nothing keeping stranding
ignoring forgetting breaking no not overbooking bumping
""".split())


def _hashtag_parts(tag: str, words: Mapping[str, float]) -> List[Tuple[str, float]]:
    """Sentiment words at either end of a run-on hashtag: #rudestaff, #usairwayssucks."""
    found: List[Tuple[str, float]] = []
    for size in range(len(tag) - 3, 3, -1):
        weight = words.get(tag[:size])
        if weight:
            found.append((tag[:size], weight))
            break
    prefix_end = len(found[0][0]) if found else 0
    for size in range(len(tag) - max(prefix_end, 3), 3, -1):
        weight = words.get(tag[-size:])
        if weight:
            found.append((tag[-size:], weight))
            break
    return found


_QUESTION_STARTERS = frozenset("""
how what when where which who whom whose is are am do does did can could will would
should shall may might has have any anyone was were
""".split())


def _match_cues_spaced(lexicon: Lexicon, tokens: List[str]) -> Dict[str, List[str]]:
    """Every cue keyword in the tokens; overlapping matches all count."""
    cues: Dict[str, List[str]] = {}
    index = lexicon.cue_index
    starts = lexicon.cue_first_tokens.intersection(tokens)
    if not starts:
        return cues
    for i, token in enumerate(tokens):
        if token not in starts:
            continue
        for parts, (key, labels) in index[token]:
            if len(parts) == 1 or tuple(tokens[i:i + len(parts)]) == parts:
                for label in labels:
                    cues.setdefault(label, []).append(key)
    return cues


# --- Japanese and other unspaced scripts ------------------------------------------

_NEGATION_AFTER = re.compile("|".join(sorted(
    ("じゃない", "ではない", "じゃなかった", "ではなかった", "じゃありません", "ではありません",
     "できない", "できません", "できなかった", "しない", "しません", "しなかった", "していない",
     "してない", "してません", "らない", "らなかった", "はない", "はありません", "ない",
     "なかった", "ません", "なし", "無し", "なく"), key=len, reverse=True)))
# "困っていたところ、…" opens the story of a problem someone then solved.
_JA_CONTRAST = ("けど", "けれど", "のに", "しかし", "でも", "ただ", "だが", "ところ、")
# "3時間も", "2週間経つのに", "1時間半待って": a wait the customer measured.
_JA_TIME = re.compile(r"\d+\s*(?:時間|分|日|週間|ヶ月|か月|カ月)半?(?:以上|も|待|近く|経|かか|たっ|放置|遅れ)")
# "あったら嬉しい", "もらえると助かります": praise for something that does not exist yet.
_JA_HYPOTHETICAL = ("たら", "れば", "ると", "えると", "だと", "なら")


def _analyze_unspaced(clean: CleanText, lang: str, lexicon: Lexicon, emoji: Mapping[str, float]) -> Signals:
    text = clean.lower
    index = lexicon.sentiment_index
    cues = _match_cues_unspaced(lexicon.cue_index, text)
    question = QUESTION in cues
    # "欠航になる可能性はありますか": a question about a situation, not a grievance.
    inquiry = question and "!" not in text
    situational = lexicon.situational
    hits: List[Tuple[str, float]] = []
    contrast_at = -1
    i = 0
    n = len(text)
    letters = 0
    while i < n:
        ch = text[i]
        if ch.isalnum():
            letters += 1
        weight = emoji.get(ch)
        if weight:
            hits.append((ch, weight))
            i += 1
            continue
        entries = index.get(ch)
        matched = None
        length = 0
        if entries:
            for parts, term in entries:
                if text.startswith(parts, i):
                    matched = term
                    length = len(parts)
                    break
        if matched is None:
            if ch in "けのしでただと" and hits and text.startswith(_JA_CONTRAST, i):
                contrast_at = len(hits)
            i += 1
            continue
        end = i + length
        if matched.sentiment:
            weight = matched.sentiment
            if _NEGATION_AFTER.match(text, end) and not matched.text.endswith(("ない", "なし", "ません")):
                weight = weight * -0.9 if weight > 0 else weight * -0.2
            if weight > 0 and text[max(0, i - 3):i].endswith(_JA_HYPOTHETICAL):
                weight *= HYPOTHETICAL_FACTOR
            if inquiry and weight < 0 and matched.text in situational:
                weight *= INQUIRY_FACTOR
            hits.append((matched.text, weight))
        letters += length - 1
        i = end
    if contrast_at > 0:
        hits = [(t, w * (CONTRAST_BEFORE if k < contrast_at else CONTRAST_AFTER)) for k, (t, w) in enumerate(hits)]
    exasperation = _exasperation(text)
    if exasperation:
        hits.append(exasperation)
    time_spent = bool(_JA_TIME.search(text)) if any(c.isdigit() for c in text) else False
    return _signals(lang, hits, cues, question, max(1, letters // 2), False, text.count("!"), time_spent, None)


def _match_cues_unspaced(index: Dict[str, list], text: str) -> Dict[str, List[str]]:
    cues: Dict[str, List[str]] = {}
    for i, ch in enumerate(text):
        entries = index.get(ch)
        if not entries:
            continue
        for parts, (key, labels) in entries:
            if text.startswith(parts, i):
                for label in labels:
                    cues.setdefault(label, []).append(key)
    return cues


def _signals(lang, hits, cues, question, words, shouting, exclaims, time_spent, tokens) -> Signals:
    positive = sum(w for _, w in hits if w > 0)
    negative = -sum(w for _, w in hits if w < 0)
    return Signals(lang, positive, negative, tuple(hits), cues, question, words, shouting, exclaims, time_spent,
                   tokens)
