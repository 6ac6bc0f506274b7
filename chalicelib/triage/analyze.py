"""Turn a mention's text into signals: sentiment evidence, cues and flags.

English (and other spaced scripts): one scan over the words that are in a
lexicon, found by a set intersection. Japanese: one walk over the characters
with a first-character index. No regular expression per term either way.

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
import unicodedata
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .text import CleanText, english_tokens, is_shouting

QUESTION = "_question"
REQUEST = "_request"
CHURN = "_churn"
# "Thanks, but still no bag": what follows "but" (けど) is the customer's point.
CONTRAST_BEFORE = 0.6
CONTRAST_AFTER = 1.3
NEGATION_SCOPE = 3         # words after "not" that it still negates
# "?!" and "??": a customer past asking politely.
EXASPERATION = -1.2
INQUIRY_FACTOR = 0.4       # "is flight 12 delayed?": a situation, asked about calmly
HYPOTHETICAL_FACTOR = 0.3  # "would be great if": praise for what does not exist yet
SARCASTIC_WEIGHT = -0.8    # what "thanks for losing my bag" is worth
_INQUIRY_OPENERS = frozenset("""
is are am do does did can could will would should shall may might has have any anyone
was were what when where which who how
""".split())


class Term(NamedTuple):
    text: str
    sentiment: Optional[float]
    negator: bool
    intensity: Optional[float]
    role: int = 0      # CLAUSE_END or CONTRAST for the few words that steer the scan


CLAUSE_END = 1
CONTRAST = 2


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
        self.emoji: Optional[Dict[str, float]] = None  # set when the rule set adds emoji
        terms: Dict[str, Term] = {}
        for text, weight in sentiment.items():
            terms[text] = Term(text, float(weight), False, None)
        for text in negators:
            old = terms.get(text)
            terms[text] = Term(text, old.sentiment if old else None, True, old.intensity if old else None)
        for text, factor in intensifiers.items():
            old = terms.get(text)
            terms[text] = Term(text, old.sentiment if old else None, old.negator if old else False, float(factor))
        if self.spaced:
            # Clause ends and "but" live in the same index so the scan has one lookup per word.
            for mark in ".!?,;":
                terms.setdefault(mark, Term(mark, None, False, None, CLAUSE_END))
            for word in ("but", "however", "although", "though"):
                old = terms.get(word)
                terms[word] = Term(word, old.sentiment if old else None, False, None, CONTRAST)
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
        if self.spaced:
            self.scan_index = _scan_index(self.sentiment_index, self.cue_index)
            self.scan_keys = frozenset(self.scan_index)


NO_SPACE_LANGS = frozenset(("ja", "zh", "th"))


def _scan_index(sentiment_index: Dict[str, list], cue_index: Dict[str, list]) -> Dict[str, tuple]:
    """word -> (term, phrases by next word, cue, cue phrases by next word).

    One lookup per word finds everything that can start there; a phrase is
    only compared in full when the next word already fits.
    """
    def split(entries):
        single: object = None
        by_next: Optional[Dict[str, List[Tuple[List[str], object]]]] = None
        for parts, value in entries or ():
            if len(parts) == 1:
                single = value
            else:
                by_next = by_next or {}
                by_next.setdefault(parts[1], []).append((list(parts), value))
        return single, by_next

    scan = {}
    for token in set(sentiment_index) | set(cue_index):
        term, phrases = split(sentiment_index.get(token))
        cue, cue_phrases = split(cue_index.get(token))
        scan[token] = (term, phrases, cue, cue_phrases)
    return scan


def _key(text: str, spaced: bool) -> str:
    """The form a term is matched in: lower-case, and for spaced languages the token sequence."""
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

# "would be great if", "I wish it had": praise for something that does not exist yet.
_HYPOTHETICAL = frozenset(("would", "if", "wish", "hoping", "could"))


def _analyze_spaced(clean: CleanText, lang: str, lexicon: Lexicon, tokens: List[str],
                    emoji: Mapping[str, float], emoticons, emoticon_weights) -> Signals:
    text = clean.text
    # A question that opens like an enquiry ("is flight 12 delayed?") reports a
    # situation rather than a feeling: its words count for less.
    inquiry = "?" in text and bool(tokens) and tokens[0] in _INQUIRY_OPENERS
    situational = lexicon.situational
    hits: List[Tuple[str, float]] = []
    positions: List[int] = []
    cues: Dict[str, List[str]] = {}
    contrast_at = -1
    negator_at = -10          # position of the last negator still in scope
    intensity = 1.0
    clause_ends = 0
    sarcasm_opener = False
    openers = lexicon.sarcasm_openers
    scan = lexicon.scan_index
    n = len(tokens)
    # Only words in a lexicon are visited: a set intersection (in C) finds which
    # occur, and one pass over the words finds where. Negation scope is then a
    # distance between positions rather than a counter carried word by word.
    present = lexicon.scan_keys.intersection(tokens)
    stops = [i for i, token in enumerate(tokens) if token in present] if present else ()
    consumed_until = -1
    for i in stops:
        if i < consumed_until:
            continue
        term, phrases, cue, cue_phrases = scan[tokens[i]]
        following = tokens[i + 1] if i + 1 < n else None
        if cue is not None or cue_phrases is not None:
            _cues_at(cue, cue_phrases, tokens, i, following, cues)
        length = 1
        if phrases is not None and following in phrases:
            for parts, candidate in phrases[following]:
                if tokens[i:i + len(parts)] == parts:
                    term = candidate
                    length = len(parts)
                    for j in range(i + 1, i + length):
                        inner = scan.get(tokens[j])
                        if inner is not None and (inner[2] is not None or inner[3] is not None):
                            _cues_at(inner[2], inner[3], tokens, j, tokens[j + 1] if j + 1 < n else None, cues)
                    break
        if term is None:
            continue
        consumed_until = i + length
        if term.role:
            if term.role == CLAUSE_END:
                negator_at = -10
                intensity = 1.0
                clause_ends += 1
                continue
            if hits:
                contrast_at = len(hits)
        weight = term.sentiment
        if weight is not None:
            weight *= intensity
            if i - negator_at <= NEGATION_SCOPE and length == 1 and not term.negator:
                weight = weight * -0.9 if weight > 0 else 0.0
            if inquiry and (weight > 0 or term.text in situational):
                weight *= INQUIRY_FACTOR
            if weight > 0 and i and _HYPOTHETICAL.intersection(tokens[max(0, i - 3):i]):
                weight *= HYPOTHETICAL_FACTOR
            if weight:
                hits.append((term.text, weight))
                positions.append(i)
                if term.text in openers:
                    sarcasm_opener = True
            intensity = 1.0
            negator_at = i if term.negator else -10
        elif term.negator:
            negator_at = i
        if term.intensity is not None:
            intensity = term.intensity
    lower = clean.lower
    time_spent = _time_spent(lower)
    if sarcasm_opener:
        hits = _sarcasm(hits, positions, tokens, openers)
    if contrast_at > 0:
        hits = [(t, w * (CONTRAST_BEFORE if k < contrast_at else CONTRAST_AFTER)) for k, (t, w) in enumerate(hits)]
    for tag in clean.run_on_hashtags:
        hits.extend(_hashtag_parts(tag, lexicon.words))
    if not text.isascii():
        for ch in _EMOJI_CANDIDATE_RE.findall(text):
            weight = emoji.get(ch)
            if weight:
                hits.append((ch, weight))
    if emoticons is not None and (":" in lower or ";" in lower or "<3" in lower or "^" in lower or "=" in lower
                                  or "-_-" in lower):
        for found in emoticons.findall(" " + lower + " "):
            hits.append((found, emoticon_weights[found]))
    exasperation = _exasperation(text)
    if exasperation:
        hits.append(exasperation)
    question = "?" in text or (n > 0 and tokens[0] in _QUESTION_STARTERS) or QUESTION in cues
    if question and QUESTION not in cues:
        cues[QUESTION] = ["?"]
    # Shouting only matters for how angry a complaint is: skip the check otherwise.
    shouting = is_shouting(text) if any(w < 0 for _, w in hits) else False
    return _signals(lang, hits, cues, question, n - clause_ends, shouting, text.count("!"), time_spent, tokens)


# "3 hours", "2+ hrs", "45 min" measured by the customer; not "fixed in 5 minutes".
_TIME_SPENT_RE = re.compile(r"\d\+? ?(?:hours?|hrs?|mins?|minutes?|days?|weeks?)\b")
_QUICK = ("in ", "within ", "under ", "only ", "just ")
_EMOJI_CANDIDATE_RE = re.compile(r"[\u2190-\u2BFF\U0001F000-\U0001FAFF]")


def _time_spent(lower: str) -> bool:
    found = _TIME_SPENT_RE.search(lower)
    while found is not None:
        start = found.start()
        while start and lower[start - 1].isdigit():
            start -= 1
        if not lower[max(0, start - 7):start].endswith(_QUICK):
            return True
        found = _TIME_SPENT_RE.search(lower, found.end())
    return False


def _exasperation(text: str) -> Optional[Tuple[str, float]]:
    if "?!" in text or "!?" in text:
        return ("?!", EXASPERATION)
    if "??" in text:
        return ("??", EXASPERATION * 0.6)
    return None


def _sarcasm(hits: List[Tuple[str, float]], positions: List[int], tokens: List[str],
             openers: frozenset) -> List[Tuple[str, float]]:
    """What a "thanks for ..." thanks for decides what it means.

    "Thanks for losing my bag" (a grievance, no other praise) is sarcasm: the
    thanks turns negative. "Thanks for finding my lost bag" (a helping verb)
    is gratitude for a fix: the problem words in that sentence count for less.
    """
    praise = [k for k, (t, w) in enumerate(hits) if w > 0]
    if not praise or hits[praise[0]][0] not in openers:
        return hits
    k = praise[0]
    start = positions[k] + len(hits[k][0].split())
    if start >= len(tokens) or tokens[start] != "for":
        return hits
    after = start + 1
    while after < len(tokens) and tokens[after] in _FILLER:
        after += 1
    if after >= len(tokens):
        return hits
    thanked_for = tokens[after]
    hits = list(hits)
    if len(praise) == 1 and (thanked_for in _SARCASTIC_OBJECTS or any(
            positions[j] == after and w <= -0.7 for j, (_, w) in enumerate(hits))):
        hits[k] = (hits[k][0] + " (sarcastic)", SARCASTIC_WEIGHT)
    elif thanked_for.endswith("ing") or thanked_for in _HELP_NOUNS:
        end = next((p for p in range(after, len(tokens)) if tokens[p] in (".", "!", "?")), len(tokens))
        hits = [(t, w * RESOLVED_FACTOR if w < 0 and after <= positions[j] < end else w)
                for j, (t, w) in enumerate(hits)]
    return hits


_HELP_NOUNS = frozenset(("help", "assistance", "support", "refund", "update", "upgrade", "reply", "response",
                         "quick", "fast", "prompt", "patience", "understanding"))
RESOLVED_FACTOR = 0.3


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


def _cues_at(cue: Optional[tuple], cue_phrases: Optional[dict], tokens: List[str], i: int,
             following: Optional[str], cues: Dict[str, List[str]]) -> None:
    """Record every cue keyword that starts at token ``i``."""
    found = [cue] if cue is not None else []
    if cue_phrases is not None and following in cue_phrases:
        found.extend(value for parts, value in cue_phrases[following] if tokens[i:i + len(parts)] == parts)
    for key, labels in found:
        for label in labels:
            keys = cues.get(label)
            if keys is None:
                cues[label] = [key]
            else:
                keys.append(key)


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
# Verb negations the lexicon does not list; "ませんか" is a polite request, not a complaint.
_JA_NEGATION_RE = re.compile(r"ませんでした|ませんか|ません|なかった|なくて|ないです|ない")
JA_NEGATION_WEIGHT = -0.6
JA_DESPITE_WEIGHT = -0.8
# "あったら嬉しい", "もらえると助かります": praise for something that does not exist yet.
_JA_HYPOTHETICAL = ("たら", "れば", "ると", "えると", "だと", "なら")
# "神アプデ()", "最高(棒)": praise followed by one of these means the opposite (after NFKC).
_JA_SARCASM_MARKERS = ("()", "(棒)", "(白目)", "(震え声)")
# A grievance after "さすが" ("さすが○○、今日も遅延ですね") weighs at least this much.
_JA_SARCASM_GRIEVANCE = -1.0


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
    despite = False
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
            if ch in "なませの":
                # A negated verb outside the lexicon ("返事ない", "眠れませんでした") is the
                # quiet Japanese complaint; "のに" ("予約したのに") is its sigh.
                negation = _JA_NEGATION_RE.match(text, i)
                if negation is not None:
                    weight = 0.0 if negation.group().endswith("か") else JA_NEGATION_WEIGHT
                    if weight:
                        hits.append((negation.group(), weight * (INQUIRY_FACTOR if inquiry else 1.0)))
                    i = negation.end()
                    continue
                if text.startswith("のに", i) and not text.startswith(("のに便利", "のに使", "のに必要"), i):
                    hits.append(("のに", JA_DESPITE_WEIGHT))
                    despite = True
            if ch in "けのしでただと" and hits and text.startswith(_JA_CONTRAST, i):
                contrast_at = len(hits) - (1 if hits[-1][0] == "のに" else 0)
            i += 1
            continue
        end = i + length
        if matched.sentiment:
            weight = matched.sentiment
            if _NEGATION_AFTER.match(text, end) and not matched.text.endswith(("ない", "なし", "ません")):
                weight = weight * -0.9 if weight > 0 else weight * -0.2
            if weight > 0 and text[max(0, i - 3):i].endswith(_JA_HYPOTHETICAL):
                weight *= HYPOTHETICAL_FACTOR
            if weight > 0 and text.startswith(_JA_SARCASM_MARKERS, end):
                hits.append((matched.text + " (sarcastic)", -weight))
                i = end
                continue
            if inquiry and weight < 0 and matched.text in situational:
                weight *= INQUIRY_FACTOR
            hits.append((matched.text, weight))
        letters += length - 1
        i = end
    if lexicon.sarcasm_openers and hits:
        hits = _ja_sarcasm(hits, lexicon.sarcasm_openers)
    if contrast_at > 0:
        hits = [(t, w * (CONTRAST_BEFORE if k < contrast_at else CONTRAST_AFTER)) for k, (t, w) in enumerate(hits)]
    if despite:
        # "予約したのに", "払ってるのに": the sigh of a customer let down, a complaint in itself.
        cues.setdefault("complaint", []).append("のに")
    exasperation = _exasperation(text)
    if exasperation:
        hits.append(exasperation)
    time_spent = bool(_JA_TIME.search(text)) if any(c.isdigit() for c in text) else False
    return _signals(lang, hits, cues, question, max(1, letters // 2), False, text.count("!"), time_spent, None)


def _ja_sarcasm(hits: List[Tuple[str, float]], openers: frozenset) -> List[Tuple[str, float]]:
    """"さすが○○、今日も遅延ですね": praise followed by a grievance and no more praise is sarcasm.

    "遅延で困ったけど、さすが○○、すぐ振替してくれた" keeps its praise: the
    grievance comes first, and praise follows the opener.
    """
    for k, (term, weight) in enumerate(hits):
        if weight > 0 and term in openers:
            after = hits[k + 1:]
            grievance = sum(w for _, w in after if w < 0)
            praise = sum(w for _, w in after if w > 0)
            if grievance <= _JA_SARCASM_GRIEVANCE and praise < -grievance:
                hits = list(hits)
                hits[k] = (term + " (sarcastic)", SARCASTIC_WEIGHT)
            break
    return hits


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
    positive = negative = 0.0
    for _, weight in hits:
        if weight > 0:
            positive += weight
        else:
            negative -= weight
    return Signals(lang, positive, negative, tuple(hits), cues, question, words, shouting, exclaims, time_spent,
                   tokens)
