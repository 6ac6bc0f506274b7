"""CSAT surveys: when to ask, how each channel lets us ask, and what counts as an answer. Pure.

When. A case is asked once, some time (``delay_minutes``) after it is
resolved: not while it is open again, not for noise, never twice, never when
the customer opted out.

Where. Only over the conversation the customer is in, and only where the
platform lets a business write first:

- Messenger and Instagram direct messages: quick replies (one per score);
- WhatsApp: interactive reply buttons (WhatsApp allows three: good, OK, not
  good, scored 5, 3 and 1; a typed 1-5 is understood too). Outside the
  24-hour customer service window only an approved template may be sent: a
  template named in the settings, else it is not asked;
- X: a plain-text question, and only in a direct-message conversation the
  customer started (X's automation rules forbid unsolicited DMs; X DMs carry
  no quick replies);
- any other direct conversation: plain text;
- a public post or comment (Facebook, Instagram, X): not asked. A survey
  we may not send is counted as not asked (``SurveyDecision.counts_as_not_asked``),
  and so is one to a customer who opted out; a case that is not due one
  (noise, not resolved, already asked) is not counted at all.

The Messenger and Instagram windows are 24 hours after the customer's last
message, as the Send API allows standard messages; a survey is automated
content, so the human-agent tag does not stretch it.

Answers. A tap carries our payload (``csat:<case id>:<score>``). Typed
answers in English and Japanese are understood when the message starts with
the rating: a digit 1-5 (full-width too, ``4/5``, ``4点``, ``5 stars``), stars
(``⭐⭐⭐⭐``, ``★★★☆☆``) or words (``great``, ``not happy``, ``最高``, ``不満``,
``満足できませんでした``). Whatever follows after a separator is kept as the
comment. Anything else is not an answer (None) and is handled as an ordinary
message: a miss costs an agent a glance, a wrong score would skew the figures.
So words must stand alone or be followed by punctuation, a digit must not run
into a unit (``3 hours late``, ``3時間``), and a message asking something
(``great, but where is my refund?``) is not taken as a rating when the
rating is a word.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.domain.case import Case
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.errors import BadRequest

SCORES = (1, 2, 3, 4, 5)
SATISFIED_MIN_SCORE = 4
LANGUAGES = ("en", "ja")
STYLES = ("quick_replies", "reply_buttons", "text", "template")
# What the decision says; only "ask" sends something.
ACTIONS = ("ask", "wait", "not_asked", "skip")
NOISE_CATEGORIES = frozenset({"noise"})
DEFAULT_DELAY_MINUTES = 60
MAX_DELAY_MINUTES = 7 * 24 * 60
DEFAULT_ANSWER_WINDOW_HOURS = 72
MAX_ANSWER_WINDOW_HOURS = 14 * 24
MESSAGING_WINDOW = timedelta(hours=24)
# Platform limits on what a survey may carry (Meta's Send API and the WhatsApp Cloud API).
QUICK_REPLY_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
QUICK_REPLY_PAYLOAD_MAX = 1000
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
BUTTON_BODY_MAX = 1024
MAX_TEMPLATE_NAME = 512
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_SETTINGS_FIELDS = ("enabled", "delay_minutes", "answer_window_hours", "whatsapp_template")
_SETTINGS_EXAMPLE = '{"enabled": true, "delay_minutes": 60, "answer_window_hours": 72, "whatsapp_template": "csat_survey"}'
PAYLOAD_PREFIX = "csat"


# ---- settings ----------------------------------------------------------------------

@dataclass(frozen=True)
class SurveySettings:
    enabled: bool = True
    delay_minutes: int = DEFAULT_DELAY_MINUTES
    answer_window_hours: int = DEFAULT_ANSWER_WINDOW_HOURS  # how long after asking a message may be the answer
    whatsapp_template: Optional[str] = None  # an approved template with three quick-reply buttons, for late asks

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def validate_survey_settings(body: Any) -> SurveySettings:
    """A supervisor's survey settings, or a BadRequest saying what to fix."""
    if not isinstance(body, dict):
        raise BadRequest(f"survey settings must be a JSON object, e.g. {_SETTINGS_EXAMPLE}")
    unknown = [name for name in body if name not in _SETTINGS_FIELDS]
    if unknown:
        raise BadRequest(f"unknown field '{str(unknown[0])[:40]}'; survey settings have {', '.join(_SETTINGS_FIELDS)}")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest("field 'enabled' must be true or false")
    delay = _whole(body.get("delay_minutes", DEFAULT_DELAY_MINUTES), "delay_minutes", 0, MAX_DELAY_MINUTES,
                   "minutes after the resolution (at most 7 days)")
    window = _whole(body.get("answer_window_hours", DEFAULT_ANSWER_WINDOW_HOURS), "answer_window_hours", 1,
                    MAX_ANSWER_WINDOW_HOURS, "hours after asking (at most 14 days)")
    template = body.get("whatsapp_template")
    if template is not None and not (isinstance(template, str) and _TEMPLATE_NAME.fullmatch(template)):
        raise BadRequest("field 'whatsapp_template' must be the name of an approved WhatsApp template: lowercase "
                         "letters, digits and underscores, e.g. 'csat_survey' (or null for none)")
    return SurveySettings(enabled=enabled, delay_minutes=delay, answer_window_hours=window, whatsapp_template=template)


def _whole(value: Any, name: str, low: int, high: int, meaning: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    raise BadRequest(f"field '{name}' must be a whole number from {low} to {high:,}: {meaning}")


# ---- the message -------------------------------------------------------------------

@dataclass(frozen=True)
class SurveyOption:
    score: int
    title: str
    payload: str


@dataclass(frozen=True)
class SurveyMessage:
    """What to send, platform-neutral: the adapter turns it into quick replies, buttons, a template or text."""

    case_id: str
    platform: str
    style: str
    lang: str
    text: str
    options: Tuple[SurveyOption, ...] = ()
    template: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"case_id": self.case_id, "platform": self.platform, "style": self.style, "lang": self.lang,
                "text": self.text, "options": [asdict(o) for o in self.options], "template": self.template}


_SURVEY_TEXT = {
    ("en", "quick_replies"): "How did we do? Please rate our help from 1 (poor) to 5 (excellent). "
                             "You are welcome to add a comment.",
    ("ja", "quick_replies"): "今回の対応はいかがでしたか？1（不満）から5（とても満足）でお選びください。"
                             "ご意見もお気軽にお寄せください。",
    ("en", "reply_buttons"): "How did we do? Tap a button, or reply with a score from 1 (poor) to 5 (excellent) "
                             "and a comment if you like.",
    ("ja", "reply_buttons"): "今回の対応はいかがでしたか？ボタンを押すか、1（不満）から5（とても満足）の数字でお答えください。"
                             "ご意見もお気軽にどうぞ。",
    ("en", "text"): "How did we do? Reply with a number from 1 (poor) to 5 (excellent), and a comment if you like.",
    ("ja", "text"): "今回の対応はいかがでしたか？1（不満）から5（とても満足）の数字でお答えください。"
                    "ご意見もお気軽にどうぞ。",
}
_SURVEY_TEXT[("en", "template")] = _SURVEY_TEXT[("en", "reply_buttons")]
_SURVEY_TEXT[("ja", "template")] = _SURVEY_TEXT[("ja", "reply_buttons")]
_STARS = "⭐"
_SCORE_LABELS = {
    "en": {5: "Excellent", 4: "Good", 3: "OK", 2: "Poor", 1: "Very poor"},
    "ja": {5: "とても満足", 4: "満足", 3: "普通", 2: "不満", 1: "とても不満"},
}
# WhatsApp allows three buttons: the ends and the middle of the scale.
_BUTTONS = {
    "en": ((5, "😊 Good"), (3, "😐 OK"), (1, "😞 Not good")),
    "ja": ((5, "😊 満足"), (3, "😐 普通"), (1, "😞 不満")),
}


_OUR_TITLES = {unicodedata.normalize("NFKC", title): score for lang in LANGUAGES for score, title in
               [(n, f"{_STARS * n} {_SCORE_LABELS[lang][n]}") for n in SCORES] + list(_BUTTONS[lang])}


def survey_language(case: Case) -> str:
    return "ja" if (case.lang or "").lower().startswith("ja") else "en"


def survey_payload(case_id: str, score: int) -> str:
    return f"{PAYLOAD_PREFIX}:{case_id}:{score}"


def survey_message(case: Case, style: str, *, template: Optional[str] = None) -> SurveyMessage:
    """The survey for a case in the customer's language (Japanese for ``ja``, else English) in ``style``."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}")
    lang = survey_language(case)
    options: Tuple[SurveyOption, ...] = ()
    if style == "quick_replies":
        options = tuple(SurveyOption(score, f"{_STARS * score} {_SCORE_LABELS[lang][score]}",
                                     survey_payload(case.case_id, score)) for score in reversed(SCORES))
    elif style in ("reply_buttons", "template"):
        options = tuple(SurveyOption(score, title, survey_payload(case.case_id, score))
                        for score, title in _BUTTONS[lang])
    return SurveyMessage(case_id=case.case_id, platform=case.platform, style=style, lang=lang,
                         text=_SURVEY_TEXT[(lang, style)], options=options,
                         template=template if style == "template" else None)


def message_problems(message: SurveyMessage) -> List[str]:
    """What a platform would refuse in a survey message (empty when it fits): the limits, checked."""
    problems = []
    if message.style == "quick_replies":
        limits = (QUICK_REPLY_MAX, QUICK_REPLY_TITLE_MAX, QUICK_REPLY_PAYLOAD_MAX)
    elif message.style in ("reply_buttons", "template"):
        limits = (BUTTONS_MAX, BUTTON_TITLE_MAX, BUTTON_ID_MAX)
        if len(message.text) > BUTTON_BODY_MAX:
            problems.append(f"body is {len(message.text)} characters; at most {BUTTON_BODY_MAX}")
    else:
        limits = (0, 0, 0)
    most, title_max, payload_max = limits
    if len(message.options) > most:
        problems.append(f"{len(message.options)} options; {message.style} allows {most}")
    for option in message.options:
        if len(option.title) > title_max:
            problems.append(f"title {option.title!r} is {len(option.title)} characters; at most {title_max}")
        if len(option.payload) > payload_max:
            problems.append(f"payload of {option.title!r} is {len(option.payload)} characters; at most {payload_max}")
    if len({o.title for o in message.options}) != len(message.options):
        problems.append("option titles must differ")
    if message.platform == "instagram" and len(message.text.encode("utf-8")) > 1000:
        problems.append("Instagram direct messages carry at most 1,000 bytes of text")
    return problems


# ---- when and how to ask --------------------------------------------------------------

@dataclass(frozen=True)
class SurveyDecision:
    """``ask`` (``message`` says what), ``wait`` (ask again at ``ask_at``), ``not_asked`` (counted as such)
    or ``skip`` (no survey is due; not counted)."""

    action: str
    reason: str
    ask_at: Optional[str] = None
    message: Optional[SurveyMessage] = field(default=None)

    @property
    def counts_as_not_asked(self) -> bool:
        return self.action == "not_asked"


def survey_style(case: Case) -> Optional[str]:
    """How this conversation can carry a survey; None for a public post or comment, where we may not ask."""
    target = case.reply_target
    if not target.is_dm and case.platform not in ("messenger", "whatsapp"):
        return None  # a public post: on X, Facebook and Instagram the customer has not written to us privately
    if case.platform in ("messenger", "instagram"):
        return "quick_replies"
    if case.platform == "whatsapp":
        return "reply_buttons"
    return "text"  # X direct messages (the customer's own conversation) and anything else private


def survey_decision(case: Case, *, settings: SurveySettings, now: str, asked_at: Optional[str], opted_out: bool,
                    last_customer_message_at: Optional[str] = None) -> SurveyDecision:
    """Whether to survey the customer of ``case`` now, and how.

    ``asked_at``: when this case was surveyed (None: never). ``opted_out``: the
    customer asked not to get surveys. ``last_customer_message_at``: the
    customer's latest message; without it the latest moment the case records
    is used, which is never later than the real one, so a window is never
    assumed open when it is not.
    """
    if not settings.enabled:
        return SurveyDecision("skip", "surveys are turned off")
    if case.active or not case.resolved_at:
        return SurveyDecision("skip", "the case is not resolved")
    if asked_at:
        return SurveyDecision("skip", "already asked: once per case")
    if case.category in NOISE_CATEGORIES:
        return SurveyDecision("skip", "noise gets no survey")
    if opted_out:
        return SurveyDecision("not_asked", "the customer opted out of surveys")
    style = survey_style(case)
    if style is None:
        why = ("on X only a DM conversation the customer started may get one (no unsolicited DMs)"
               if case.platform == "x" else "a public post or comment; the platform gives no private way to ask")
        return SurveyDecision("not_asked", why)
    ask_at = parse_iso(case.resolved_at) + timedelta(minutes=settings.delay_minutes)
    moment = parse_iso(now)
    if moment < ask_at:
        return SurveyDecision("wait", f"{settings.delay_minutes} minutes after the resolution", ask_at=to_iso(ask_at))
    if case.platform in ("messenger", "instagram", "whatsapp"):
        last = parse_iso(last_customer_message_at) if last_customer_message_at else _latest_customer_moment(case)
        if moment - last > MESSAGING_WINDOW:
            if case.platform == "whatsapp" and settings.whatsapp_template:
                message = survey_message(case, "template", template=settings.whatsapp_template)
                return SurveyDecision("ask", "outside the 24-hour window: the approved template", message=message)
            return SurveyDecision("not_asked", "the platform's 24-hour window after the customer's last message "
                                               "has closed")
    return SurveyDecision("ask", f"resolved, due, and {style.replace('_', ' ')} fit this conversation",
                          message=survey_message(case, style))


def _latest_customer_moment(case: Case) -> datetime:
    moments = [case.customer_posted_at or case.created_at, case.follow_up_at]
    moments += [cycle[0] for cycle in case.response_cycles if cycle]
    return max(parse_iso(m) for m in moments if m)


def awaiting_answer(asked_at: Optional[str], now: str, settings: SurveySettings) -> bool:
    """Whether a customer's message may still be the answer to the survey asked at ``asked_at``."""
    if not asked_at:
        return False
    asked = parse_iso(asked_at)
    return asked <= parse_iso(now) <= asked + timedelta(hours=settings.answer_window_hours)


# ---- answers ----------------------------------------------------------------------

@dataclass(frozen=True)
class SurveyAnswer:
    score: int
    comment: str = ""
    via: str = "text"               # "button" or "text"
    case_id: Optional[str] = None   # from a button's payload


_PAYLOAD = re.compile(rf"{PAYLOAD_PREFIX}:([^:\s]{{1,128}}):([1-5])")
# Between a rating and its comment.
_SEPARATOR = r"[\s\-–—:;.,!、。，)）~〜/|]"
_FILLED_STARS = "⭐★🌟"
_STARS_AT_START = re.compile(r"((?:[⭐★🌟]\ufe0f?){1,10})((?:[☆]\ufe0f?)*)")
_NUMBER_AT_START = re.compile(
    r"(?:星\s*)?(\d+(?:[.,]\d+)?)(?:\s*(/\s*5|out of 5|点|つ星|つ|stars?)(?![a-z]))?", re.IGNORECASE)
# Polite endings that are not a comment: "5です", "最高でした".
_POLITE = re.compile(r"(です|でした|だった|だ|かな|ですね|です!|でした!)(?=$|" + _SEPARATOR + ")")
# Japanese negation after a positive word: 満足できない, 満足していません, 良くない ...
_JA_NEGATION = re.compile(r"(?:で(?:は|き)|じゃ|してい|して|し|できてい|でき|く)?(?:ない|なかった|ません|ず)")
_ASKS_SOMETHING = re.compile(r"[?？]")
_WORD_TAIL = re.compile(r"(?:\s+(?:service|support|help|job|work|experience|at all))?", re.IGNORECASE)

# Longest first; English matched as whole words, case-insensitively. Words marked alone=True count only when
# they are the whole message ("ok" alone rates; "ok, I'll try that" does not).
_EN_WORDS: Dict[str, Tuple[int, bool]] = {
    "excellent": (5, False), "perfect": (5, False), "amazing": (5, False), "awesome": (5, False),
    "fantastic": (5, False), "outstanding": (5, False), "superb": (5, False), "great": (5, False),
    "very good": (5, False), "really good": (5, False), "very satisfied": (5, False), "very happy": (5, False),
    "loved it": (5, False), "love it": (5, False),
    "good": (4, False), "satisfied": (4, False), "happy": (4, False), "nice": (4, False), "pretty good": (4, False),
    "not bad": (3, False), "average": (3, False), "so-so": (3, False), "so so": (3, False), "meh": (3, False),
    "ok": (3, True), "okay": (3, True), "fine": (3, True), "alright": (3, True), "all right": (3, True),
    "not good": (2, False), "not great": (2, False), "not happy": (2, False), "not satisfied": (2, False),
    "not very good": (2, False), "unhappy": (2, False), "unsatisfied": (2, False), "dissatisfied": (2, False),
    "disappointed": (2, False), "disappointing": (2, False), "bad": (2, False), "poor": (2, False),
    "very bad": (1, False), "very poor": (1, False), "very disappointed": (1, False), "very unhappy": (1, False),
    "terrible": (1, False), "awful": (1, False), "horrible": (1, False), "worst": (1, False), "the worst": (1, False),
    "useless": (1, False),
}
_JA_WORDS: Dict[str, int] = {
    "最高": 5, "大満足": 5, "とても満足": 5, "大変満足": 5, "非常に満足": 5, "すごく満足": 5, "とても良い": 5,
    "とても良かった": 5, "素晴らしい": 5, "すばらしい": 5, "完璧": 5,
    "満足": 4, "良い": 4, "良かった": 4, "よかった": 4,
    "普通": 3, "ふつう": 3, "まあまあ": 3, "まぁまぁ": 3,
    "不満": 2, "やや不満": 2, "少し不満": 2, "不満足": 2, "悪い": 2, "いまいち": 2, "イマイチ": 2, "残念": 2,
    "良くない": 2, "よくない": 2,
    "とても不満": 1, "大変不満": 1, "非常に不満": 1, "最悪": 1, "ひどい": 1, "酷い": 1,
}
_EN_BY_LENGTH = sorted(_EN_WORDS, key=len, reverse=True)
_JA_BY_LENGTH = sorted(_JA_WORDS, key=len, reverse=True)


def parse_payload(payload: Optional[str]) -> Optional[Tuple[str, int]]:
    """(case id, score) from one of our buttons' payloads; None for anything else."""
    if not isinstance(payload, str):
        return None
    match = _PAYLOAD.fullmatch(payload.strip())
    return (match.group(1), int(match.group(2))) if match else None


def parse_answer(text: Optional[str], payload: Optional[str] = None) -> Optional[SurveyAnswer]:
    """The score (1-5) and comment in a customer's message, or None when it is not an answer.

    ``payload``: the quick reply's payload or the WhatsApp button's id, when
    the customer tapped one (it wins over the text, which is then the
    button's title).
    """
    tapped = parse_payload(payload)
    if tapped:
        return SurveyAnswer(score=tapped[1], via="button", case_id=tapped[0])
    if not isinstance(text, str):
        return None
    clean = unicodedata.normalize("NFKC", text).strip()
    if not clean:
        return None
    if clean in _OUR_TITLES:  # a button's title typed back or sent without its payload
        return SurveyAnswer(score=_OUR_TITLES[clean])
    for parse in (_stars, _number, _words):
        found = parse(clean)
        if found is not None:
            score, rest = found
            if score not in SCORES:
                return None
            return SurveyAnswer(score=score, comment=_comment(rest))
    return None


def _stars(text: str) -> Optional[Tuple[int, str]]:
    match = _STARS_AT_START.match(text)
    if not match:
        return None
    filled = sum(1 for char in match.group(1) if char in _FILLED_STARS)
    rest = text[match.end():]
    # Stars may run straight into a comment ("⭐⭐⭐⭐⭐ fast"); more than five is not a rating.
    return (filled if filled <= 5 else 0), rest


def _number(text: str) -> Optional[Tuple[int, str]]:
    match = _NUMBER_AT_START.match(text)
    if not match:
        return None
    number, unit = match.group(1), match.group(2)
    rest = text[match.end():]
    if not number.isdigit():
        return 0, rest  # 4.5 or 5,000: not a 1-5 rating
    if unit is None and text[:1] == "星":
        unit = "星"
    if unit is None and rest and not _separated(rest):
        return None  # "3 hours late", "3時間待った": a number, not a rating
    if unit == "つ" and text[:1] != "星":
        return None  # "2つ質問" (two questions), but 星5つ is a rating
    return int(number), rest


def _separated(rest: str) -> bool:
    """Whether what follows a rating is set apart from it: the end, punctuation then no digit, or a polite ending."""
    if not rest:
        return True
    if _POLITE.match(rest) or rest[0] == "\n":
        return True
    stripped = rest.lstrip()
    if not stripped:
        return True
    first = stripped[0]
    if re.match(_SEPARATOR, first) and not first.isspace():
        after = stripped[1:].lstrip()
        return not after[:1].isdigit()
    return unicodedata.category(first).startswith("S")  # an emoji after the rating: "5 😊"


def _words(text: str) -> Optional[Tuple[int, str]]:
    lowered = text.casefold()
    for phrase in _EN_BY_LENGTH:
        if lowered.startswith(phrase) and not lowered[len(phrase):len(phrase) + 1].isalnum():
            score, alone = _EN_WORDS[phrase]
            rest = text[len(phrase):]
            tail = _WORD_TAIL.match(rest)
            rest = rest[tail.end():] if tail else rest
            if alone and rest.strip(" !.。！"):
                return None
            if not _separated_words(rest) or _ASKS_SOMETHING.search(text):
                return None
            return score, rest
    for phrase in _JA_BY_LENGTH:
        if text.startswith(phrase):
            score, rest = _JA_WORDS[phrase], text[len(phrase):]
            negation = _JA_NEGATION.match(rest)
            if negation and score >= 3:
                score, rest = 2, rest[negation.end():]
                polite = re.match(r"(?:でした|です)", rest)
                rest = rest[polite.end():] if polite else rest
            if not _separated_words(rest) or _ASKS_SOMETHING.search(text):
                return None
            return score, rest
    return None


def _separated_words(rest: str) -> bool:
    """After a word rating: the end, punctuation, an emoji, a polite ending or thanks; not more words."""
    if not rest.strip():
        return True
    if _POLITE.match(rest):
        return True
    stripped = rest.lstrip()
    if stripped.casefold().startswith(("thanks", "thank you", "thx", "ありがとう")):
        return True
    first = stripped[0]
    return (bool(re.match(_SEPARATOR, first)) and not first.isspace()) or unicodedata.category(first).startswith("S")


def _comment(rest: str) -> str:
    rest = rest.strip()
    polite = _POLITE.match(rest)
    if polite:
        rest = rest[polite.end():]
    comment = re.sub(rf"^(?:{_SEPARATOR})+", "", rest).strip()
    # Only emoji and punctuation ("5 ⭐", "great!!"): nothing to keep.
    if all(unicodedata.category(char)[0] in "PSZ" or char in "\ufe0f\u200d" for char in comment):
        return ""
    return comment
