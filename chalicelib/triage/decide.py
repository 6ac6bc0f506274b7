"""The built-in decision: from signals to sentiment, category, tags, priority, case.

Small pure functions, each returning its answer and the reasons for it, so
``why`` always names what drove a decision.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .analyze import CHURN, QUESTION, REQUEST, Signals
from .text import CleanText

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


def author_of(mention: Mapping) -> Author:
    data = mention.get("author") or {}
    if not isinstance(data, Mapping):
        data = {}
    try:
        followers = int(data.get("followers") or 0)
    except (TypeError, ValueError):
        followers = 0
    handle = str(data.get("handle") or "").lstrip("@").lower()
    return Author(
        id=str(data.get("id") or ""),
        handle=handle,
        verified=data.get("verified") is True or str(data.get("verified")).lower() == "true",
        verified_type=str(data.get("verified_type") or "none").lower(),
        followers=followers,
    )


# --- sentiment -------------------------------------------------------------------

def decide_sentiment(signals: Signals) -> Tuple[str, float, List[str]]:
    positive, negative = signals.positive, signals.negative
    why: List[str] = []
    if signals.time_spent:
        negative += TIME_SPENT_WEIGHT
        why.append("time spent waiting")
    if CHURN in signals.cues:
        negative += CHURN_WEIGHT
        why.append(f"churn talk '{signals.cues[CHURN][0]}'")
    if signals.shouting and negative:
        negative *= SHOUTING_FACTOR
        why.append("shouting")
    if signals.exclaims >= 2:
        positive *= 1.1
        negative *= 1.1
    why.extend(_top_hits(signals.hits))
    if negative >= NEGATIVE_MIN.get(signals.lang, NEGATIVE_MIN_OTHER) and negative >= positive * NEGATIVE_DOMINANCE:
        label = "negative"
    elif positive >= POSITIVE_MIN and positive > negative:
        label = "positive"
    else:
        label = "neutral"
    net = positive - negative
    score = net / math.sqrt(net * net + SCORE_SCALE)
    return label, _consistent_score(label, score), why


def _consistent_score(label: str, score: float) -> float:
    """Keep the score's sign in line with the label so "negative, +0.2" never happens."""
    if label == "negative":
        score = min(score, -0.05)
    elif label == "positive":
        score = max(score, 0.05)
    else:
        score = max(-0.3, min(0.3, score))
    return round(score, 3)


def _top_hits(hits: Sequence[Tuple[str, float]], limit: int = 3) -> List[str]:
    strongest = sorted(hits, key=lambda hit: -abs(hit[1]))[:limit]
    return [f"lexicon '{text}' {weight:+.1f}" for text, weight in strongest]


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
    if tagged and short and not strong_cue and not upset:
        return "friend tagged"
    addressed = bool(brand_handles & set(clean.handles)) if brand_handles else bool(clean.handles)
    if (not addressed and kind != "dm" and sentiment != "negative" and not signals.question
            and not any(not label.startswith("_") for label in signals.cues) and REQUEST not in signals.cues
            and signals.word_count <= 12 and not (sentiment == "positive" and sentiment_score >= 0.5)):
        return "chatter not addressed to the brand"
    return None


def _tagged_friends(clean: CleanText, kind: str, brand_handles: frozenset) -> Tuple[str, ...]:
    """Handles that are someone other than the brand.

    With the brand's handles in the rule set this is exact. Without them, only
    a comment that opens with a handle is taken as tagging a friend: on X the
    brand's own handle can sit anywhere in a post.
    """
    if not clean.handles:
        return ()
    if brand_handles:
        return tuple(h for h in clean.handles if h not in brand_handles)
    if kind == "comment" and clean.leading_handles:
        return clean.handles
    return ()


# --- category --------------------------------------------------------------------------

def decide_category(signals: Signals, sentiment: str, sentiment_score: float,
                    noise: Optional[str], addressed: bool = True) -> Tuple[str, List[str]]:
    cues = signals.cues
    if "noise" in cues:
        return "noise", [f"spam cue '{cues['noise'][0]}'"]
    if noise:
        return "noise", [f"noise: {noise}"]
    counts = {c: len(set(cues.get(c, ()))) for c in CATEGORIES}
    strength = min(1.0, abs(sentiment_score) * 1.5)
    negative = sentiment == "negative"
    positive = sentiment == "positive"
    opinion = 0.5 if sentiment != "neutral" else 0.0
    scores: Dict[str, float] = {
        "complaint": 1.5 * counts["complaint"] + ((1.2 + strength) if negative else 0.0),
        "question": 1.0 * counts["question"] + (1.5 if signals.question else 0.0)
        + (0.5 if REQUEST in cues else 0.0),
        # A price or stock question is a sale waiting to happen, not just a question.
        "sales_lead": 2.0 * counts["sales_lead"] + (1.0 if signals.question and counts["sales_lead"] else 0.0),
        # Reviews carry an opinion; a suggestion carries a request.
        "product_feedback": 1.8 * counts["product_feedback"]
        + ((opinion + (0.5 if REQUEST in cues else 0.0)) if counts["product_feedback"] else 0.0),
        "praise": 1.0 * counts["praise"] + ((1.0 + strength) if positive else 0.0),
        # Talk about the market that does not address the brand.
        "industry_discussion": 1.8 * counts["industry_discussion"]
        + ((0.7 if not addressed else -0.5) if counts["industry_discussion"] else 0.0),
    }
    if negative and counts["complaint"] == 0 and counts["product_feedback"] == 0:
        scores["complaint"] += 0.5
    best = max(scores, key=lambda c: (scores[c], -CATEGORIES.index(c)))
    why: List[str] = []
    if scores[best] <= 0:
        # Nothing stands out: something addressed to the brand that may need an answer.
        return "question", ["no category cue: treated as an enquiry"]
    keywords = cues.get(best) or (cues.get(QUESTION) if best == "question" else None)
    if keywords:
        why.append(f"{best} cue '{keywords[0]}'")
    elif best in ("complaint", "praise"):
        why.append(f"{best}: {sentiment} sentiment")
    else:
        why.append(best)
    return best, why


# --- tags, priority, case ------------------------------------------------------------

def decide_tags(author: Author, platform: str, influencer_threshold: int,
                source_lists: Mapping[str, Tuple[frozenset, frozenset]]) -> Tuple[List[str], List[str]]:
    tags: List[str] = []
    why: List[str] = []
    if author.verified or author.verified_type in VIP_VERIFIED_TYPES:
        tags.append("vip")
        why.append("vip: verified" if author.verified else f"vip: verified_type {author.verified_type}")
    if author.followers >= influencer_threshold:
        tags.append("influencer")
        why.append(f"influencer: {author.followers} followers >= {influencer_threshold}")
    qualified_id = f"{platform}:{author.id}" if author.id else ""
    for tag, (handles, ids) in source_lists.items():
        if (author.handle and author.handle in handles) or (author.id and (author.id in ids or qualified_id in ids)):
            tags.append(tag)
            why.append(f"{tag}: on the rule set's list")
    return tags, why


def decide_priority(category: str, sentiment: str, sentiment_score: float, tags: Sequence[str],
                    signals: Signals) -> Tuple[str, List[str]]:
    level = {"complaint": 1, "question": 1, "sales_lead": 1, "product_feedback": 1,
             "praise": 0, "industry_discussion": 0, "noise": 0}[category]
    why: List[str] = []
    if category == "noise":
        return "low", why
    if category == "complaint" and sentiment_score <= -0.6:
        level = 2
        why.append("strongly negative complaint")
    if CHURN in signals.cues and sentiment == "negative":
        level = max(level, 2)
        why.append("customer may leave")
    reach = [t for t in ("vip", "influencer") if t in tags]
    if reach and sentiment == "negative":
        level = 3
        why.append(f"negative post from {' and '.join(reach)}")
    elif reach:
        level = min(2, level + 1)
        why.append(f"reach: {' and '.join(reach)}")
    if "tier1_customer" in tags and level < 3:
        level = min(3 if sentiment == "negative" else 2, level + 1)
        why.append("tier 1 customer")
    return PRIORITIES[level], why


def decide_case(category: str, signals: Signals, kind: str) -> Tuple[bool, str]:
    if category == "noise":
        return False, "noise: nothing to answer"
    if category == "praise":
        if signals.question:
            return True, "praise with a question"
        return False, "plain praise: no reply needed"
    if category == "industry_discussion":
        return False, "industry discussion: monitor only"
    return True, f"{category.replace('_', ' ')} needs an answer"
