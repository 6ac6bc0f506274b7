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
CONTRAST_BEFORE_GRIEVANCE = 0.35   # praise before a "but" that introduces a grievance
NEGATION_SCOPE = 3         # words after "not" that it still negates
# "?!" and "??": a customer past asking politely.
EXASPERATION = -1.2
INQUIRY_FACTOR = 0.4       # "is flight 12 delayed?": a situation, asked about calmly
HYPOTHETICAL_FACTOR = 0.3  # "would be great if": praise for what does not exist yet
SARCASTIC_WEIGHT = -0.8    # what "thanks for losing my bag" is worth
SARCASM_CUE = "(sarcasm)"  # the complaint cue a sarcastic post adds
SIGN_OFF_CUE = "(thanks closing a complaint)"
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
            # "Still, why is there no AC?": nevertheless.
            still = terms.get("still")
            terms["still ,"] = Term("still ,", still.sentiment if still else None, False, None, CONTRAST)
            # Words that say a problem was solved are looked for among the words the scan
            # finds anyway, rather than in every post.
            for word in _RESOLUTION | _FIXING:
                terms.setdefault(word, Term(word, None, False, None))
        self.sentiment_index = _index(terms.items(), self.spaced)
        # Single words, for finding the parts of run-on hashtags ("#rudestaff").
        self.words = {k: t.sentiment for k, t in terms.items()
                      if t.sentiment is not None and " " not in k and len(k) >= 4 and k.isalpha()}
        self.situational = frozenset(_key(t, self.spaced) for t in situational)
        self.sarcasm_openers = frozenset(_key(t, self.spaced) for t in sarcasm_openers)
        if self.spaced:
            # The first words of every praise that can turn sarcastic: without one, no irony check.
            self.irony_triggers = frozenset(
                key.split(" ")[0] for key in self.sarcasm_openers | _THANKS | _IRONY_CANDIDATES | _IRONIC_COMPANIONS
            ) - _COMMON_OPENING_WORDS
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
        else:
            self.sentiment_pairs, self.sentiment_singles = _pair_index(self.sentiment_index)
            self.cue_pairs, self.cue_singles = _pair_index(self.cue_index)


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


def _pair_index(index: Dict[str, list]) -> Tuple[Dict[str, list], Dict[str, list]]:
    """For unspaced text: first two characters -> entries, and first character -> one-character entries.

    Common kana (た, か, ま, お) open dozens of terms; looking them up by their first two
    characters tries only the few that can match, longest first, then the one-character term.
    """
    pairs: Dict[str, list] = {}
    singles: Dict[str, list] = {}
    for first, entries in index.items():
        single = [entry for entry in entries if len(entry[0]) == 1]
        if single:
            singles[first] = single
        for entry in entries:
            if len(entry[0]) > 1:
                pairs.setdefault(entry[0][:2], []).append(entry)
    for key, entries in pairs.items():
        entries.extend(singles.get(key[0], ()))   # already longest first; the single goes last
    return pairs, singles


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
    sentence_start = 0        # hits before the current sentence
    negator_at = -10          # position of the last negator still in scope
    intensity = 1.0
    clause_ends = 0
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
                if tokens[i] in _SENTENCE_END:
                    sentence_start = len(hits)
                continue
            if hits:
                # "The crew were lovely. My bag is still missing though": a closing "though"
                # turns its whole sentence against what came before.
                contrast_at = sentence_start if (following is None or following in _SENTENCE_END) else len(hits)
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
            intensity = 1.0
            negator_at = i if term.negator else -10
        elif term.negator:
            negator_at = i
        if term.intensity is not None:
            intensity = term.intensity
    lower = clean.lower
    # "is the return window 30 days?": a duration asked about, not a wait endured.
    time_spent = not inquiry and _time_spent(lower)
    # Both checks look at the words the scan found (a small set), not at every word.
    if hits and not _FIXING.isdisjoint(present):
        hits = _solved(hits, positions, tokens)
    if hits and not lexicon.irony_triggers.isdisjoint(present):
        hits, sarcastic = _irony(hits, positions, tokens, lexicon.sarcasm_openers, present)
        if sarcastic:
            # Praise said of a failure is a complaint, whatever its words.
            cues.pop("praise", None)
            cues.setdefault("complaint", []).append(SARCASM_CUE)
    if contrast_at > 0:
        # "Polite technician, thanks. Internet still drops though": when what follows the
        # contrast is a grievance, the courtesy before it is no verdict on the service.
        praise_before = CONTRAST_BEFORE
        if sum(w for _, w in hits[contrast_at:]) <= -GRIEVANCE_MIN:
            praise_before = CONTRAST_BEFORE_GRIEVANCE
        hits = [(t, w * ((praise_before if w > 0 else CONTRAST_BEFORE) if k < contrast_at else CONTRAST_AFTER))
                for k, (t, w) in enumerate(hits)]
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


def _irony(hits: List[Tuple[str, float]], positions: List[int], tokens: List[str],
           openers: frozenset, present: frozenset) -> Tuple[List[Tuple[str, float]], bool]:
    """Praise that means the opposite; returns the hits and whether the post is sarcastic.

    Customers praise a failure in a few fixed shapes, and each needs the failure next to it:

    * "thanks for <something bad>": "thanks for losing my bag" (a grievance thanked for);
      "thanks for <unknown>ing my bill, really appreciate it" (an unknown act, with more praise
      or a grievance around it); "thanks for the update that broke the app".
    * ironic praise next to a grievance: "well done", "great job", "love how", "as always".
    * an interjection opening a sentence: "great, another delay", "oh good, cancelled again".

    A post that says the problem was solved ("fixed", "found", "refunded") is gratitude, not
    sarcasm, and "thanks for <helping>" is gratitude for a fix: the problem words in that
    sentence then count for less. In a sarcastic post every praise word is turned.
    """
    praised = [t for t, w in hits if w > 0]
    if not praised:
        return hits, False
    grievance = -sum(w for _, w in hits if w < 0)
    if grievance < GRIEVANCE_MIN and _THANKS.isdisjoint(praised):
        return hits, False    # every shape below needs a grievance or a "thanks for"
    n = len(tokens)
    resolved = not _RESOLUTION.isdisjoint(present)
    sarcastic = False
    for k, (term, weight) in enumerate(hits):
        if weight <= 0 or term not in _THANKS:
            continue
        start = positions[k] + len(term.split())
        if start >= n or tokens[start] != "for":
            break
        after = start + 1
        while after < n and tokens[after] in _FILLER:
            after += 1
        if after >= n:
            break
        thanked_for = tokens[after]
        end = next((p for p in range(after, n) if tokens[p] in _SENTENCE_END), n)
        grievance_at = any(after <= positions[j] <= after + 1 and w <= -0.7 for j, (_, w) in enumerate(hits))
        helped = thanked_for in _HELP_NOUNS or thanked_for in _HELP_VERBS
        if thanked_for in _SARCASTIC_OBJECTS or (grievance_at and not helped):
            sarcastic = True
        elif helped:
            # "thanks for the update that broke the app": what the thing thanked for did.
            if thanked_for in _HELP_NOUNS and _caused_grievance(hits, positions, tokens, after, end):
                sarcastic = True
            else:
                hits = [(t, w * RESOLVED_FACTOR if w < 0 and after <= positions[j] < end else w)
                        for j, (t, w) in enumerate(hits)]
                return hits, False
        elif thanked_for.endswith("ing") and not resolved:
            # An act the lexicon does not know: what it did ("making my favorite game"), or
            # else the rest of the post ("..., really appreciate it"), says what it was.
            praised_act = any(w > 0 and after <= positions[j] < end for j, (_, w) in enumerate(hits))
            others = [t for j, (t, w) in enumerate(hits) if w > 0 and j != k]
            if not praised_act and (grievance >= GRIEVANCE_MIN or any(t in _IRONIC_COMPANIONS for t in others)):
                sarcastic = True
        break
    if (not sarcastic and not resolved and grievance >= GRIEVANCE_MIN
            and not (_IRONY_CANDIDATES.isdisjoint(praised) and openers.isdisjoint(praised))):
        for k, (term, weight) in enumerate(hits):
            if weight <= 0:
                continue
            if term in _IRONIC_PRAISE or (term in openers and term not in _THANKS):
                sarcastic = True
                break
            p = positions[k]
            follows = tokens[p + len(term.split())] if p + len(term.split()) < n else ""
            if (term in _INTERJECTIONS and follows in _INTERJECTION_ENDS
                    and (p == 0 or tokens[p - 1] in _SENTENCE_END or tokens[p - 1] in _INTERJECTION_OPENERS)):
                sarcastic = True
                break
            if term in _PRAISE_AS_ALWAYS and "as always" in " ".join(tokens[p + 1:p + 6]):
                sarcastic = True
                break
    if sarcastic:
        hits = [(t + " (sarcastic)", SARCASTIC_WEIGHT) if w > 0 else (t, w) for t, w in hits]
    return hits, sarcastic


def _caused_grievance(hits, positions, tokens, after, end) -> bool:
    """"the update that made the game crash": a grievance inside a clause about what it did."""
    for p in range(after + 1, min(end, after + 4)):
        if tokens[p] in ("that", "which"):
            return any(p < positions[j] < end and w <= -0.7 for j, (_, w) in enumerate(hits))
    return False


# Negative evidence this large (one failure word, or two hedges) is something that went wrong.
GRIEVANCE_MIN = 1.0
_SENTENCE_END = frozenset((".", "!", "?"))
_THANKS = frozenset(("thanks", "thank", "thank you", "thankyou", "thx", "ty", "thanx", "tysm"))
_HELP_NOUNS = frozenset(("help", "assistance", "support", "refund", "update", "upgrade", "reply", "response",
                         "quick", "fast", "prompt", "patience", "understanding", "replacement", "apology",
                         "info", "information", "heads", "tip", "advice", "answer", "follow", "call", "free",
                         "great", "amazing", "wonderful", "excellent", "lovely", "kind", "best", "speedy"))
# What customers thank a company for doing (other "-ing" words are read from the rest of the post).
_HELP_VERBS = frozenset("""
helping fixing finding sorting resolving solving getting delivering holding waiting replying responding
reaching looking taking being having letting offering providing refunding reversing explaining listening
following checking upgrading accommodating organizing organising rebooking bringing returning caring
answering updating supporting covering giving sharing choosing hosting welcoming coming showing
saving rescuing stopping catching replacing shipping arranging recovering restoring treating hooking
sponsoring including reading flying serving feeding cooking baking working
""".split())
RESOLVED_FACTOR = 0.3
# Said of a problem, these praise words are irony ("well done, delayed again").
_IRONIC_PRAISE = frozenset((
    "great job", "good job", "nice job", "well done", "nice work", "great work", "good work", "amazing work",
    "top work", "nailed it", "bravo", "way to go", "keep it up", "love how", "gotta love", "love that",
    "thanks a lot", "so much for", "yay for", "oh great",
))
# After "thanks for <an act the lexicon does not know>", these say the thanks is ironic
# ("thanks for doubling my bill, really appreciate it"); alone they are usually sincere.
_IRONIC_COMPANIONS = _IRONIC_PRAISE | frozenset(("appreciate", "appreciated", "helpful", "thoughtful", "so kind"))
# "Great, another delay": one praise word, alone, opening a sentence.
_INTERJECTIONS = frozenset(("great", "perfect", "wonderful", "brilliant", "awesome", "fantastic", "lovely",
                            "nice", "good", "amazing", "excellent", "cool", "super", "terrific", "superb",
                            "wow", "yay", "love", "splendid", "marvelous", "marvellous", "fabulous"))
_INTERJECTION_ENDS = frozenset((",", ".", "!", "", "another", "again", "more", "yet"))
_INTERJECTION_OPENERS = frozenset(("oh", "ah", "wow", "just", "well", "so", "how", "really", "very"))
# "Brilliant customer service as always" next to a grievance.
_PRAISE_AS_ALWAYS = frozenset(("great", "brilliant", "amazing", "excellent", "fantastic", "wonderful",
                               "awesome", "superb", "outstanding", "stellar", "great service",
                               "excellent service", "good service", "perfect"))
_IRONY_CANDIDATES = _IRONIC_PRAISE | _INTERJECTIONS | _PRAISE_AS_ALWAYS
# Words that open one of the phrases above but say nothing on their own ("so much for" is a
# grievance in the lexicon, not praise).
_COMMON_OPENING_WORDS = frozenset(("so",))
_FILLER = frozenset(("the", "a", "an", "my", "our", "me", "us", "your", "all", "this", "that", "another", "half",
                     "both", "every", "each", "his", "her", "their", "so", "such"))
# Acts nobody thanks a company for: "thanks for losing my bag". Acts that can go either way
# ("making", "keeping", "leaving", "freezing" a card, "blocking" a charge) are read from the rest of the post.
_SARCASTIC_OBJECTS = frozenset("""
losing ruining cancelling canceling delaying charging wasting nothing stranding ignoring forgetting breaking
no not overbooking bumping overcharging doubling deleting wiping crashing bricking damaging misplacing
skipping raising hiking spamming kicking lying
""".split())
# Words that say the problem in the post was solved: gratitude, never sarcasm.
_RESOLUTION = frozenset("""
fixed fixing resolved resolving sorted solved solving found finding restored recovered refunded reversed
reversing rescued replaced rebooked compensated compensating credited gesture goodwill
""".split())
# Of these, the ones that take the problem as their object: "fixing the loot bug", "found my lost bag".
_FIXING = frozenset("""
fixed fixing fix resolved resolving sorted solved solving found finding restored restoring recovered
reversed reversing replaced replacing stopped blocked caught prevented
""".split())


def _solved(hits: List[Tuple[str, float]], positions: List[int], tokens: List[str]) -> List[Tuple[str, float]]:
    """Problem words right after a fixing verb ("fixed the outage") report a solved problem."""
    solved = []
    for j, (_, weight) in enumerate(hits):
        p = positions[j]
        if weight < 0 and any(t in _FIXING for t in tokens[max(0, p - 3):p]):
            solved.append(j)
    if not solved:
        return hits
    hits = list(hits)
    for j in solved:
        hits[j] = (hits[j][0], hits[j][1] * RESOLVED_FACTOR)
    return hits


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
_JA_CONTRAST = ("けど", "けれど", "のに", "しかし", "でも", "ただ", "だが", "ところ、", "ですが", "ましたが", "でしたが")
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
    pairs, singles = lexicon.sentiment_pairs, lexicon.sentiment_singles
    cues = _match_cues_unspaced(lexicon.cue_pairs, lexicon.cue_singles, text)
    question = QUESTION in cues
    # "欠航になる可能性はありますか": a question about a situation, not a grievance.
    inquiry = question and "!" not in text
    situational = lexicon.situational
    hits: List[Tuple[str, float]] = []
    starts: List[int] = []    # where each lexicon hit starts, for the sarcasm check
    contrast_at = -1
    contrast_pos = -1
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
            starts.append(i)
            i += 1
            continue
        entries = pairs.get(text[i:i + 2])
        if entries is None:
            entries = singles.get(ch)
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
                        starts.append(i)
                    i = negation.end()
                    continue
                if text.startswith("のに", i) and not text.startswith(("のに便利", "のに使", "のに必要"), i):
                    hits.append(("のに", JA_DESPITE_WEIGHT))
                    starts.append(i)
                    despite = True
            if ch in "けのしでただとま" and hits and text.startswith(_JA_CONTRAST, i):
                contrast_at = len(hits) - (1 if hits[-1][0] == "のに" else 0)
                contrast_pos = i
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
                starts.append(i)
                i = end
                continue
            if inquiry and weight < 0 and matched.text in situational:
                weight *= INQUIRY_FACTOR
            hits.append((matched.text, weight))
            starts.append(i)
        letters += length - 1
        i = end
    if hits and ("修正" in text or "復旧" in text or "解決し" in text or "直っ" in text or "直り" in text):
        hits = _ja_solved(hits, starts, text)
    if len(hits) > 1:
        hits, turned = _ja_irony(hits, starts, text, lexicon.sarcasm_openers)
        if turned:
            # Sarcasm, or thanks that only close a complaint: its praise words are no praise.
            cues.pop("praise", None)
            cues.setdefault("complaint", []).append(turned)
    if contrast_at > 0:
        if _JA_REPROACH_RE.search(text, contrast_pos) and any(w > 0 for _, w in hits[:contrast_at]):
            # "丁寧に案内してくれたのは感謝してます。でも案内表示くらい出しておいてほしい":
            # thanks, then what should have been done; the reproach is the point.
            hits.append(("(reproach after thanks)", JA_REPROACH_WEIGHT))
        hits = [(t, w * (CONTRAST_BEFORE if k < contrast_at else CONTRAST_AFTER)) for k, (t, w) in enumerate(hits)]
    if despite:
        # "予約したのに", "払ってるのに": the sigh of a customer let down, a complaint in itself.
        cues.setdefault("complaint", []).append("のに")
    exasperation = _exasperation(text)
    if exasperation:
        hits.append(exasperation)
    time_spent = bool(_JA_TIME.search(text)) if any(c.isdigit() for c in text) else False
    return _signals(lang, hits, cues, question, max(1, letters // 2), False, text.count("!"), time_spent, None)


def _ja_irony(hits: List[Tuple[str, float]], starts: List[int], text: str,
              openers: frozenset) -> Tuple[List[Tuple[str, float]], str]:
    """Praise that means the opposite in Japanese; returns the hits and what turned them
    (``SARCASM_CUE``, ``SIGN_OFF_CUE`` or "").

    * "さすが○○、今日も遅延ですね": an opener (さすが, 安定の) followed by a grievance and no
      more praise, or by a repetition (また, 今日も, 3回目) and no more praise.
    * "ありがとう、また壊れました", "素晴らしいですね、また違う商品が届きました": thanks or
      praise followed by a repetition and a grievance outweighing any later praise.
    * "アップデートありがとう。おかげでアプリが開かなくなりました": おかげで followed by a
      grievance and no praise.
    * "…と言いたいところですが": the speaker takes the praise back.

    "遅延で困ったけど、さすが○○、すぐ振替してくれた" keeps its praise: the grievance comes
    first, and praise follows the opener. In a sarcastic post every praise word is turned.
    A thank-you that closes a complaint ("…切れました。ありがとうございました") is a sign-off,
    not a verdict: it counts for less (``_ja_sign_off``).
    """
    sarcastic = False
    retract = text.find("と言いたい")
    if retract > 0 and any(w > 0 and starts[k] < retract for k, (_, w) in enumerate(hits)):
        sarcastic = any(w < 0 and starts[k] > retract for k, (_, w) in enumerate(hits))
    for k, (term, weight) in enumerate(hits):
        if sarcastic:
            break
        if weight <= 0:
            continue
        opener = term in openers
        if not opener and term not in _JA_IRONIC_PRAISE:
            continue
        after = hits[k + 1:]
        grievance = -sum(w for _, w in after if w < 0)
        # "さすが○○、今日も安定の1時間遅れ": a second opener is more of the same irony, not praise.
        praise = sum(w for t, w in after if w > 0 and t not in openers)
        if term == "おかげで":
            sarcastic = grievance > 0 and praise == 0
            continue
        end = starts[k] + len(term)
        repeated = _JA_REPEAT_RE.search(text, end) is not None
        if opener:
            sarcastic = (grievance >= -_JA_SARCASM_GRIEVANCE and praise < grievance) or (repeated and praise == 0)
        elif repeated:
            sarcastic = grievance > 0 and praise < grievance
        elif _JA_KNOWING_RE.match(text, end):
            # "最高のサービスですね。注文した覚えのない商品が届きました": a knowing "…ですね"
            # before a grievance.
            sarcastic = grievance >= -_JA_SARCASM_GRIEVANCE and praise < grievance
    if sarcastic:
        return [(t + " (sarcastic)", SARCASTIC_WEIGHT) if w > 0 else (t, w) for t, w in hits], SARCASM_CUE
    return _ja_sign_off(hits, starts, text)


def _ja_sign_off(hits: List[Tuple[str, float]], starts: List[int], text: str) -> Tuple[List[Tuple[str, float]], str]:
    """Thanks that close a complaint: "…切れました。ありがとうございました", "…寝ます。素敵な夜をありがとう".

    A thank-you whose sentence follows only grievances, with no help told before it, is a
    sign-off (polite or pointed), not a verdict: the praise of that sentence counts for little.
    Returns the hits and ``SIGN_OFF_CUE`` if a sign-off was found, else "".
    """
    for k, (term, weight) in enumerate(hits):
        if k == 0 or weight <= 0 or term not in _JA_THANKS:
            continue
        if _JA_HELPED_RE.search(text, 0, starts[k]):
            break
        sentence = max(text.rfind("。", 0, starts[k]), text.rfind("!", 0, starts[k]), text.rfind("?", 0, starts[k]))
        before = [w for j, (_, w) in enumerate(hits) if starts[j] < sentence]
        closing = bool(before) and max(before) <= 0 and -sum(before) >= -_JA_SARCASM_GRIEVANCE
        if not closing and hits[k - 1][1] > -1.0:
            break
        cut = sentence if closing else starts[k] - 1
        return [(t + " (sign-off)", w * SIGN_OFF_FACTOR) if w > 0 and starts[j] > cut else (t, w)
                for j, (t, w) in enumerate(hits)], SIGN_OFF_CUE
    return hits, ""


def _ja_solved(hits: List[Tuple[str, float]], starts: List[int], text: str) -> List[Tuple[str, float]]:
    """"不具合を報告したら半日で修正されて": a problem followed in its sentence by its fix is solved."""
    fixed = _JA_FIXED_RE.search(text)
    if fixed is None:
        return hits
    sentence_start = max(text.rfind("。", 0, fixed.start()), text.rfind("!", 0, fixed.start()))
    return [(t, w * RESOLVED_FACTOR if w < 0 and sentence_start < starts[k] < fixed.start() else w)
            for k, (t, w) in enumerate(hits)]


# "修正されて", "復旧しました", "直りました"; not "直してください" (a request) nor "直らない".
_JA_FIXED_RE = re.compile(r"修正され|修正して(?:くれ|くださ|いただ)|修正済|復旧し|解決し(?!て(?:ほし|くだ))|直っ(?!てな)|直りました")
SIGN_OFF_FACTOR = 0.2
JA_REPROACH_WEIGHT = -2.0
_JA_REPROACH_RE = re.compile(r"てほしい|て欲しい|べき|てください|て下さい|てくれない")
# "最高のサービスですね", "素晴らしいですね": praise closed by a knowing "ですね".
_JA_KNOWING_RE = re.compile(r"[^。!?、\s]{0,8}?(?:ですね|だね|ですなあ)")
_JA_THANKS = frozenset(("ありがとう", "ありがとうございます", "ありがとうございました", "有難う", "感謝",
                        "感謝です", "ありがとー", "サンキュー", "どうも"))
# Praise that is sarcastic when a repetition and a grievance follow it.
_JA_IRONIC_PRAISE = _JA_THANKS | frozenset(("素晴らしい", "すばらしい", "最高", "素敵", "すてき", "お見事", "見事",
                                            "親切", "神対応", "完璧", "おかげで", "さすが", "流石", "優秀"))
# "また", "今日も", "3回目": the same failure again.
_JA_REPEAT_RE = re.compile(r"また(?!のご|お願い|よろしく)|今日も|今回も|今月も|今週も|今年も|毎回|毎度|相変わらず"
                           r"|\d+回目|何回目|何度目|いつものように")
# Help given before a thank-you: then the thanks is for that help.
_JA_HELPED_RE = re.compile(r"てくれ|てくださ|て下さ|ていただ|て頂|てもら|助か|解決|直り|直っ|対応して|おかげ")


def _match_cues_unspaced(pairs: Dict[str, list], singles: Dict[str, list], text: str) -> Dict[str, List[str]]:
    cues: Dict[str, List[str]] = {}
    for i, ch in enumerate(text):
        entries = pairs.get(text[i:i + 2])
        if entries is None:
            entries = singles.get(ch)
            if entries is None:
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
