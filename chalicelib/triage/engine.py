"""classify(): the built-in decision, the optional learned model, then the rules."""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional

from . import decide
from .analyze import CHURN, QUESTION, REQUEST, Lexicon, Signals, analyze
from .lang import detect_language
from .rules import RuleSet, load_default_rules
from .text import CleanText, clean, english_tokens

WHY_LIMIT = 12
ACKNOWLEDGE = "acknowledge"
ACKNOWLEDGE_WHY = "acknowledge: praise worth a like or a thank-you"


class TriageResult:
    """The triage decision for one mention; ``to_dict()`` is what the pipeline stores."""

    __slots__ = ("sentiment", "sentiment_score", "category", "tags", "priority", "case", "case_reason",
                 "lang", "why", "escalate", "team")

    def __init__(self, sentiment: str, sentiment_score: float, category: str, tags: List[str], priority: str,
                 case: bool, case_reason: str, lang: str, why: Optional[List[str]] = None,
                 escalate: bool = False, team: Optional[str] = None):
        self.sentiment = sentiment
        self.sentiment_score = sentiment_score
        self.category = category
        self.tags = tags
        self.priority = priority
        self.case = case
        self.case_reason = case_reason
        self.lang = lang
        self.why = why if why is not None else []
        self.escalate = escalate
        self.team = team

    def to_dict(self) -> Dict[str, Any]:
        return {
            "sentiment": self.sentiment,
            "sentiment_score": self.sentiment_score,
            "category": self.category,
            "tags": list(self.tags),
            "priority": self.priority,
            "case": self.case,
            "case_reason": self.case_reason,
            "lang": self.lang,
            "why": list(self.why),
            "escalate": self.escalate,
            "team": self.team,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TriageResult) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return "TriageResult(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


class Prepared(NamedTuple):
    """What the rules see of a mention before any model or rule-set action."""

    cleaned: CleanText
    lang: str
    kind: str
    signals: Signals
    sentiment: str
    sentiment_score: float
    sentiment_why: List[str]
    noise: Optional[str]
    addressed: bool
    category: str
    category_why: List[str]


def prepare(mention: Mapping, rules: RuleSet) -> Prepared:
    """Clean, detect the language, analyse, and take the built-in decision."""
    raw_text = mention.get("text")
    cleaned = clean(raw_text if isinstance(raw_text, str) else str(raw_text or ""))
    hint = mention.get("lang")
    # Latin-script posts are tokenized once, for language detection and analysis.
    tokens = english_tokens(cleaned.lower) if cleaned.text.isascii() else None
    lang = detect_language(cleaned.text, hint if isinstance(hint, str) else None, tokens)
    signals = analyze_text(cleaned, lang, rules, tokens)
    sentiment, score, reasons = decide.decide_sentiment(signals)
    kind = str(mention.get("kind") or "mention")
    noise = decide.noise_reason(cleaned, mention, signals, sentiment, score, rules.brand_handles)
    addressed = bool(cleaned.handles) or kind in ("dm", "reply", "comment")
    category, category_why = decide.decide_category(signals, sentiment, score, noise, addressed)
    return Prepared(cleaned, lang, kind, signals, sentiment, score, reasons, noise, addressed, category,
                    category_why)


def classify(mention: Mapping, rules: Optional[RuleSet] = None, model: Any = None) -> TriageResult:
    """Triage one mention (``Mention.to_dict()`` or the CLI's shape: at least ``text``)."""
    if type(mention) is not dict and not isinstance(mention, Mapping):
        to_dict = getattr(mention, "to_dict", None)
        if to_dict is None:
            raise TypeError("mention must be a mapping (Mention.to_dict()) or a Mention")
        mention = to_dict()
    if rules is None:
        rules = load_default_rules()
    p = prepare(mention, rules)
    sentiment, score, category, category_why = p.sentiment, p.sentiment_score, p.category, p.category_why
    why = ["sentiment %s (%s)" % (sentiment, "; ".join(p.sentiment_why) or "no sentiment words")]

    if model is not None:
        prediction = model.predict(p.cleaned, p.signals, p.sentiment, p.category)
        if prediction is not None:
            sentiment, category, category_why = _use_prediction(prediction, p, mention, rules, why)
            score = prediction.sentiment_score if prediction.sentiment else score
    why.extend(category_why)

    author = decide.author_of(mention)
    platform = mention.get("platform") or ""
    tags, tag_why = decide.decide_tags(author, platform, rules.influencer_threshold, rules.source_lists)
    if tag_why:
        why.extend(tag_why)

    state = _RuleState(category, tags)
    applied = _apply_rules(rules, state, p.cleaned, p.lang, sentiment, author, platform, p.kind) \
        if rules.enabled_rules else ()
    category, tags = state.category, state.tags

    priority, priority_why = decide.decide_priority(category, sentiment, score, tags, p.signals)
    case, case_reason = decide.decide_case(category, p.signals, p.kind)
    if priority_why:
        why.extend(priority_why)
    if applied:
        for rule_id, then in applied:
            why.append("rule %s: %s" % (rule_id, ", ".join("%s=%s" % (k, _short(v)) for k, v in then.items())))
        if state.priority is not None:
            priority = state.priority
        if state.case is not None:
            case = state.case
            case_reason = "rule %s: case %s" % (state.case_rule, "opened" if case else "not needed")
        elif state.escalate and not case:
            case, case_reason = True, "rule %s: escalated" % state.escalate_rule
    if category == "praise" and not case and ACKNOWLEDGE not in tags:
        # No case, but a like or a thank-you keeps a fan: the tag, stored with the mention, marks it.
        tags = tags + [ACKNOWLEDGE]
        why.append(ACKNOWLEDGE_WHY)
    return TriageResult(sentiment, score, category, tags, priority, case, case_reason, p.lang,
                        why if len(why) <= WHY_LIMIT else why[:WHY_LIMIT], state.escalate, state.team)


def _use_prediction(prediction: Any, p: "Prepared", mention: Mapping, rules: RuleSet, why: List[str]):
    """Take the model's sentiment (and category where it knows the rules' answer)."""
    sentiment, category, category_why = p.sentiment, p.category, p.category_why
    if prediction.sentiment:
        sentiment = prediction.sentiment
        why.append("model: %s (p=%.2f)" % (sentiment, prediction.sentiment_confidence))
        if sentiment != p.sentiment:
            # The category follows the sentiment the model settled on.
            noise = decide.noise_reason(p.cleaned, mention, p.signals, sentiment, prediction.sentiment_score,
                                        rules.brand_handles)
            category, category_why = decide.decide_category(p.signals, sentiment, prediction.sentiment_score,
                                                             noise, p.addressed)
    if (prediction.category and category != "noise" and category in prediction.category_labels
            and not _supervisor_keyword(p.signals, category)):
        if prediction.category != category:
            category_why = ["model: %s (p=%.2f; rules said %s)" % (
                prediction.category, prediction.category_confidence, category)]
        category = prediction.category
    return sentiment, category, category_why


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "+".join(value)
    return str(value)


def _supervisor_keyword(signals: Signals, category: str) -> bool:
    """A category chosen from the rule set's keywords is the supervisor's word, not a guess."""
    return bool(signals.cues.get(category)) and category not in ("question", "praise", "complaint")


# --- rules ---------------------------------------------------------------------------

class _RuleState:
    __slots__ = ("category", "tags", "priority", "case", "case_rule", "escalate", "escalate_rule", "team")

    def __init__(self, category: str, tags: List[str]):
        self.category = category
        self.tags = tags
        self.priority: Optional[str] = None
        self.case: Optional[bool] = None
        self.case_rule = ""
        self.escalate = False
        self.escalate_rule = ""
        self.team: Optional[str] = None


def _apply_rules(rules: RuleSet, state: _RuleState, cleaned: CleanText, lang: str,
                 sentiment: str, author: decide.Author, platform: str, kind: str):
    """Apply matching rules in order; later rules see earlier rules' category and tags."""
    facts: Optional[Dict[str, Any]] = None
    applied = []
    for rule in rules.enabled_rules:
        # Most rules name tags and most posts have none: the cheapest test comes first.
        if rule.required_tags and (not state.tags or not rule.required_tags.issubset(state.tags)):
            continue
        if facts is None:
            text = cleaned.text
            facts = {"platform": platform, "kind": kind, "lang": lang, "sentiment": sentiment,
                     "followers": author.followers, "text": text, "ascii": text.isascii(),
                     "text_lower": text.lower() if rules.needs_text else ""}
        facts["category"] = state.category
        facts["tags"] = state.tags
        if not rule.matches(facts):
            continue
        then = rule.then
        if "set_category" in then:
            state.category = then["set_category"]
        if "add_tags" in then:
            state.tags = state.tags + [t for t in then["add_tags"] if t not in state.tags]
        if "set_priority" in then:
            state.priority = then["set_priority"]
        if "case" in then:
            state.case, state.case_rule = then["case"], rule.id
        if "escalate" in then:
            state.escalate = then["escalate"]
            state.escalate_rule = rule.id
        if "route_team" in then:
            state.team = then["route_team"]
        applied.append((rule.id, then))
    return applied


# --- lexicons per rule set and language -------------------------------------------------

def analyze_text(cleaned: CleanText, lang: str, rules: RuleSet, tokens: Optional[List[str]] = None) -> Signals:
    lexicon = rules._compiled.get(lang) or rules.compiled(lang, lambda: _build_lexicon(rules, lang))
    resources = _resources or _shared_resources()
    return analyze(cleaned, lang, lexicon, tokens, lexicon.emoji or resources["emoji"], resources["emoticons"],
                   resources["emoticon_weights"])


_resources: Dict[str, Any] = {}


def _shared_resources() -> Dict[str, Any]:
    if not _resources:
        from . import lexicon_en

        weights = {k.lower(): v for k, v in lexicon_en.EMOTICONS.items()}
        by_length = sorted(weights, key=len, reverse=True)
        after_space = "|".join(re.escape(e) for e in by_length)
        after_word = "|".join(re.escape(e) for e in by_length if e[0] in ":;=")
        _resources.update(
            emoji=dict(lexicon_en.EMOJI),
            # Emoticons that start with punctuation may follow a word ("you bet:)").
            emoticons=re.compile(r"(?:(?<=\s)(?:" + after_space + r")|(?<=[a-z0-9])(?:" + after_word + r"))(?=\s|[.!?,])"),
            emoticon_weights=weights,
        )
    return _resources


def _build_lexicon(rules: RuleSet, lang: str) -> Lexicon:
    if lang in ("ja", "zh"):
        from . import lexicon_ja as ja

        base_sentiment: Mapping[str, float] = ja.SENTIMENT
        negators: Iterable[str] = ()
        intensifiers: Mapping[str, float] = {}
        grammar: Dict[str, Iterable[str]] = {QUESTION: ja.QUESTION_PHRASES, REQUEST: ja.REQUEST_PHRASES,
                                             CHURN: ja.CHURN_PHRASES}
        extras: Dict[str, Iterable[str]] = {"situational": ja.SITUATIONAL, "sarcasm_openers": ja.SARCASM_OPENERS}
    else:
        from . import lexicon_en as en

        base_sentiment = en.SENTIMENT
        negators, intensifiers = en.NEGATORS, en.INTENSIFIERS
        grammar = {REQUEST: en.REQUEST_PHRASES, CHURN: en.CHURN_PHRASES}
        extras = {"situational": en.SITUATIONAL, "sarcasm_openers": en.SARCASM_OPENERS}
    sentiment = dict(base_sentiment)
    additions = rules.lexicon_additions.get(lang, {})
    sentiment.update(additions)
    # A supervisor's emoji ("🙄": -2) joins the emoji table, which is looked up per character.
    emoji_additions = {key.replace("\ufe0f", ""): weight for key, weight in additions.items()
                       if len(key.replace("\ufe0f", "")) == 1 and not key.isalnum()}
    cues: Dict[str, List[str]] = {label: list(phrases) for label, phrases in grammar.items()}
    for category, by_lang in rules.keywords.items():
        phrases = list(by_lang.get(lang, ())) + list(by_lang.get("*", ()))
        if phrases:
            cues.setdefault(category, []).extend(phrases)
    lexicon = Lexicon(lang, sentiment, negators, intensifiers, cues, **extras)
    if emoji_additions:
        lexicon.emoji = {**_shared_resources()["emoji"], **emoji_additions}
    return lexicon
