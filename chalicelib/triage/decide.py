"""The built-in decision: from signals to sentiment, category, tags, priority, case.

Small pure functions, each returning its answer and the reasons for it, so
``why`` always names what drove a decision.
"""
from __future__ import annotations

import math
from operator import itemgetter
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .analyze import CHURN, QUESTION, REQUEST, Signals
from .text import CleanText, leading_handle_count

SENTIMENTS = ("negative", "neutral", "positive")
CATEGORIES = ("complaint", "question", "product_feedback", "sales_lead", "praise",
              "industry_discussion", "noise")
PRIORITIES = ("low", "normal", "high", "urgent")
VIP_VERIFIED_TYPES = frozenset(("blue", "business", "government"))

# Sentiment thresholds, in lexicon units (one clear complaint word is ~2).
# Customer-service posts lean negative: a little negative evidence outweighs
# a polite "thanks" ("thanks, but still no bag"), hence NEGATIVE_DOMINANCE < 1.
# The English lexicon gives small weights to the hedges of a complaint
# ("not", "told", "tried", "still") that should tip a post on their own; the
# Japanese one has no such weak entries, so it needs one real term.
NEGATIVE_MIN = {"en": 0.3, "ja": 1.0}
NEGATIVE_MIN_OTHER = 1.0
NEGATIVE_DOMINANCE = 0.75
POSITIVE_MIN = 1.0
TIME_SPENT_WEIGHT = 1.2      # "3 hours", "2時間": the customer is counting
CHURN_WEIGHT = 1.5
SHOUTING_FACTOR = 1.3
SCORE_SCALE = 6.0             # net evidence -> score via x / sqrt(x^2 + SCALE)


class Author(NamedTuple):
    id: str
    handle: str
    verified: bool
    verified_type: str
    followers: int


_NO_AUTHOR = Author("", "", False, "none", 0)


def author_of(mention: Mapping) -> Author:
    data = mention.get("author")
    if not data or type(data) is not dict and not isinstance(data, Mapping):
        return _NO_AUTHOR
    get = data.get
    followers = get("followers") or 0
    if type(followers) is not int:
        try:
            followers = int(followers)
        except (TypeError, ValueError):
            followers = 0
    handle = get("handle") or ""
    verified = get("verified")
    verified_type = get("verified_type") or "none"
    author_id = get("id") or ""
    return Author(
        author_id if type(author_id) is str else str(author_id),
        (handle if type(handle) is str else str(handle)).lstrip("@").lower(),
        verified is True or (type(verified) is str and verified.lower() == "true"),
        verified_type.lower() if type(verified_type) is str else "none",
        followers,
    )


# --- sentiment -------------------------------------------------------------------

def decide_sentiment(signals: Signals) -> Tuple[str, float, List[str]]:
    positive, negative = signals.positive, signals.negative
    why: List[str] = []
    if signals.time_spent:
        negative += TIME_SPENT_WEIGHT
        why.append("time spent waiting")
    cues = signals.cues
    if cues and CHURN in cues:
        negative += CHURN_WEIGHT
        why.append("churn talk '%s'" % cues[CHURN][0])
    if signals.shouting and negative:
        negative *= SHOUTING_FACTOR
        why.append("shouting")
    if signals.exclaims >= 2:
        positive *= 1.1
        negative *= 1.1
    hits = signals.hits
    if hits:
        strongest = _strongest(hits) if len(hits) > 1 else hits
        for hit in strongest:
            text = _HIT_TEXT.get(hit)
            if text is None:
                text = "'%s' %+.1f" % hit
                if len(_HIT_TEXT) < 50_000:  # the same few hundred terms recur; formatting them is not free
                    _HIT_TEXT[hit] = text
            why.append(text)
    if negative >= NEGATIVE_MIN.get(signals.lang, NEGATIVE_MIN_OTHER) and negative >= positive * NEGATIVE_DOMINANCE:
        label = "negative"
    elif positive >= POSITIVE_MIN and positive > negative:
        label = "positive"
    else:
        label = "neutral"
    net = positive - negative
    return label, consistent_score(label, net / math.sqrt(net * net + SCORE_SCALE)), why


_HIT_TEXT: Dict[Tuple[str, float], str] = {}
_WEIGHT = itemgetter(1)


def _strongest(hits: Sequence[Tuple[str, float]], limit: int = 3) -> List[Tuple[str, float]]:
    """The hits with the largest weights either way (sorted by a C key, then merged from both ends)."""
    ordered = sorted(hits, key=_WEIGHT)
    low, high = 0, len(ordered) - 1
    strongest: List[Tuple[str, float]] = []
    while len(strongest) < limit and low <= high:
        if -ordered[low][1] >= ordered[high][1]:
            strongest.append(ordered[low])
            low += 1
        else:
            strongest.append(ordered[high])
            high -= 1
    return strongest


def consistent_score(label: str, score: float) -> float:
    """Keep the score's sign in line with the label so "negative, +0.2" never happens."""
    if label == "negative":
        score = min(score, -0.05)
    elif label == "positive":
        score = max(score, 0.05)
    else:
        score = max(-0.3, min(0.3, score))
    return round(score, 3)


# --- noise by structure --------------------------------------------------------------

def noise_reason(clean: CleanText, mention: Mapping, signals: Signals, sentiment: str, sentiment_score: float,
                 brand_handles: frozenset) -> Optional[str]:
    """Why a post is noise by its shape alone, or None.

    Retweets repeat someone else; friend tags under a post talk to the friend,
    not the brand; an empty post after handles and links says nothing.
    """
    text = clean.text.lstrip()
    if text[:3].upper() == "RT " and "@" in text[:6]:
        return "retweet"
    if signals.word_count == 0 and not signals.hits:
        return "nothing but handles or links" if clean.handles or clean.url_count else "empty"
    strong_cue = any(label in signals.cues for label in ("complaint", "sales_lead"))
    upset = sentiment == "negative" and sentiment_score <= -0.5
    kind = str(mention.get("kind") or "mention")
    tagged = _tagged_friends(clean, kind, brand_handles)
    short = signals.word_count <= (12 if signals.lang in ("ja", "zh") else 8)
    if tagged and short and not strong_cue and not upset and (kind == "comment" or not signals.question):
        return "friend tagged"
    addressed = bool(brand_handles & set(clean.handles)) if brand_handles else bool(clean.handles)
    # Only for languages the lexicons read: a post we cannot read is never dismissed as chatter.
    if (not addressed and kind != "dm" and signals.lang in ("en", "ja") and sentiment != "negative" and not signals.question
            and not any(not label.startswith("_") for label in signals.cues) and REQUEST not in signals.cues
            and signals.word_count <= 12 and not (sentiment == "positive" and sentiment_score >= 0.5)):
        return "chatter not addressed to the brand"
    return None


def _tagged_friends(clean: CleanText, kind: str, brand_handles: frozenset) -> Tuple[str, ...]:
    """Handles that are someone other than the brand.

    With the brand's handles in the rule set this is exact. Without them, a
    comment that opens with a handle, or a post with two or more handles, is
    taken as tagging someone: on X the brand's own handle can sit anywhere.
    """
    if not clean.handles:
        return ()
    if brand_handles:
        return tuple(h for h in clean.handles if h not in brand_handles)
    if kind == "comment" and leading_handle_count(clean.text):
        return clean.handles
    # A post naming the brand and someone else, saying next to nothing ("@friend @brand
    # lol look at this"), is talking to the friend.
    if len(clean.handles) >= 2:
        return clean.handles
    return ()


# --- category --------------------------------------------------------------------------

def decide_category(signals: Signals, sentiment: str, sentiment_score: float,
                    noise: Optional[str], addressed: bool = True) -> Tuple[str, List[str]]:
    """Score each category from its keywords and the sentiment; the best wins.

    Ties go to the category listed first below (complaint first): when in
    doubt, treat a post as the one that needs the most care.
    """
    cues = signals.cues
    if "noise" in cues:
        return "noise", ["spam cue '%s'" % cues["noise"][0]]
    if noise:
        return "noise", ["noise: " + noise]
    complaint = len(set(cues["complaint"])) if "complaint" in cues else 0
    question_cues = len(set(cues["question"])) if "question" in cues else 0
    sales = len(set(cues["sales_lead"])) if "sales_lead" in cues else 0
    feedback = len(set(cues["product_feedback"])) if "product_feedback" in cues else 0
    praise = len(set(cues["praise"])) if "praise" in cues else 0
    industry = len(set(cues["industry_discussion"])) if "industry_discussion" in cues else 0
    request = REQUEST in cues
    asked = signals.question
    strength = min(1.0, abs(sentiment_score) * 1.5)
    complaint_score = 1.5 * complaint
    praise_score = 1.0 * praise
    if sentiment == "negative":
        complaint_score += 1.2 + strength + (0.5 if not complaint and not feedback else 0.0)
    elif sentiment == "positive":
        praise_score += 1.0 + strength
    scores = (
        ("complaint", complaint_score),
        # A price or stock question is a sale waiting to happen, not just a question
        # (and wins a tie with one).
        ("sales_lead", 2.0 * sales + (1.0 if asked else 0.0)) if sales else ("sales_lead", 0.0),
        ("question", 1.0 * question_cues + (1.5 if asked else 0.0) + (0.5 if request else 0.0)),
        # Reviews carry an opinion; a suggestion carries a request.
        ("product_feedback", 1.8 * feedback + (0.5 if sentiment != "neutral" else 0.0)
         + (0.5 if request else 0.0)) if feedback else ("product_feedback", 0.0),
        ("praise", praise_score),
        # Talk about the market that does not address the brand.
        ("industry_discussion", 1.8 * industry + (-0.5 if addressed else 0.7)) if industry
        else ("industry_discussion", 0.0),
    )
    best, best_score = "question", 0.0
    for category, score in scores:
        if score > best_score:
            best, best_score = category, score
    if best_score <= 0:
        # Nothing stands out: something addressed to the brand that may need an answer.
        return "question", ["no category cue: treated as an enquiry"]
    keywords = cues.get(best) or (cues.get(QUESTION) if best == "question" else None)
    if keywords:
        return best, ["%s cue '%s'" % (best, keywords[0])]
    if best == "complaint" or best == "praise":
        return best, ["%s: %s sentiment" % (best, sentiment)]
    return best, [best]


# --- tags, priority, case ------------------------------------------------------------

def decide_tags(author: Author, platform: str, influencer_threshold: int,
                source_lists: Mapping[str, Tuple[frozenset, frozenset]]) -> Tuple[List[str], List[str]]:
    """Tags from the author's profile and the rule set's lists (only non-empty lists are passed)."""
    tags: List[str] = []
    why: List[str] = []
    if author.verified or author.verified_type in VIP_VERIFIED_TYPES:
        tags.append("vip")
        why.append("vip: verified" if author.verified else "vip: verified_type " + author.verified_type)
    if author.followers >= influencer_threshold:
        tags.append("influencer")
        why.append("influencer: %d followers >= %d" % (author.followers, influencer_threshold))
    if source_lists:
        qualified_id = platform + ":" + author.id if author.id else ""
        for tag, (handles, ids) in source_lists.items():
            if (author.handle and author.handle in handles) or (
                    author.id and (author.id in ids or qualified_id in ids)):
                tags.append(tag)
                why.append(tag + ": on the rule set's list")
    return tags, why


_BASE_LEVEL = {"complaint": 1, "question": 1, "sales_lead": 1, "product_feedback": 1,
               "praise": 0, "industry_discussion": 0, "noise": 0}


def decide_priority(category: str, sentiment: str, sentiment_score: float, tags: Sequence[str],
                    signals: Signals) -> Tuple[str, List[str]]:
    if category == "noise":
        return "low", []
    level = _BASE_LEVEL[category]
    why: List[str] = []
    negative = sentiment == "negative"
    if category == "complaint" and sentiment_score <= -0.6:
        level = 2
        why.append("strongly negative complaint")
    if negative and CHURN in signals.cues:
        level = 2 if level < 2 else level
        why.append("customer may leave")
    if tags:
        reach = [t for t in ("vip", "influencer") if t in tags]
        if reach and negative:
            level = 3
            why.append("negative post from " + " and ".join(reach))
        elif reach:
            level = min(2, level + 1)
            why.append("reach: " + " and ".join(reach))
        if "tier1_customer" in tags and level < 3:
            level = min(3 if negative else 2, level + 1)
            why.append("tier 1 customer")
    return PRIORITIES[level], why


_CASE_REASONS = {category: (True, category.replace("_", " ") + " needs an answer") for category in CATEGORIES}
_CASE_REASONS.update({
    "noise": (False, "noise: nothing to answer"),
    "praise": (False, "plain praise: no reply needed"),
    "industry_discussion": (False, "industry discussion: monitor only"),
})


def decide_case(category: str, signals: Signals, kind: str) -> Tuple[bool, str]:
    if category == "praise" and signals.question:
        return True, "praise with a question"
    return _CASE_REASONS[category]
