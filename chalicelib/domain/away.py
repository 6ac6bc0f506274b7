"""Away messages: the automatic acknowledgement a customer gets outside the team's hours. Pure.

A supervisor keeps per team (``PUT /admin/teams/{team}/away``): whether it is on, when it goes
out (``closed``: outside the team's hours; ``closed_or_busy``: also while the typical wait is over
``busy_threshold_minutes``), how often a customer may get one (``period_hours``), and templates in
English and Japanese. Templates use ``{next_open}``, ``{typical_reply}`` and ``{customer_name}``
(``{{`` and ``}}`` write a literal brace); each variable has a fallback that reads well, so a
message never says "Hi ," or 「様」 alone.

Where the platform allows an automatic message at all is ``away_channel``: X's automation rules
(no unsolicited DMs, public replies only to posts that summoned the brand) and Meta's 24-hour
messaging windows.
"""
from __future__ import annotations

import difflib
import hashlib
import re
import statistics
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from chalicelib.domain.case import ReplyTarget
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.limits import text_problem
from chalicelib.domain.text_limits import MAX_INSTAGRAM_DM_BYTES, X_MAX_POST_LENGTH, weighted_length

LANGS = ("en", "ja")
WHEN = ("closed", "closed_or_busy")
VARIABLES = ("next_open", "typical_reply", "customer_name")
# A busy message goes out while the team is open: "when we open" would be wrong there.
BUSY_VARIABLES = ("typical_reply", "customer_name")
DEFAULT_PERIOD_HOURS = 24
MIN_PERIOD_HOURS, MAX_PERIOD_HOURS = 1, 720   # an hour to 30 days
DEFAULT_BUSY_THRESHOLD_MINUTES = 60
MIN_BUSY_THRESHOLD_MINUTES, MAX_BUSY_THRESHOLD_MINUTES = 1, 7 * 24 * 60
MAX_TEMPLATE_CHARS = 1000
# Meta lets a business send free-form messages only this long after the customer's last message.
MESSAGING_WINDOW = timedelta(hours=24)
# A display name longer than this (as X counts it) is left out rather than cut: a clipped name
# reads worse than "Hi there", and the limit is what lets every template be checked in advance.
NAME_BUDGET = 30
AGENT_ID = "socialcare"  # who an automatic reply is from, in the case history
_FIELDS = ("enabled", "when", "busy_threshold_minutes", "period_hours", "templates", "busy_templates")

DEFAULT_TEMPLATES: Mapping[str, str] = {
    "en": ("Hi {customer_name}, thanks for your message. Our team is away right now and back {next_open}; "
           "we'll reply then. Our typical reply time is {typical_reply}."),
    "ja": ("{customer_name}、お問い合わせありがとうございます。ただいま営業時間外のため、"
           "{next_open}以降に順番にご返信いたします。現在の返信の目安は{typical_reply}です。"),
}
DEFAULT_BUSY_TEMPLATES: Mapping[str, str] = {
    "en": ("Hi {customer_name}, thanks for your message. We're busier than usual: our typical reply time "
           "is {typical_reply} right now. We'll get back to you as soon as we can."),
    "ja": ("{customer_name}、お問い合わせありがとうございます。ただいま大変混み合っており、"
           "現在の返信の目安は{typical_reply}です。順番にご返信いたしますので、今しばらくお待ちください。"),
}
# What a variable says when its value is unknown: no calendar opening in sight, no first
# responses recorded yet, no usable name.
FALLBACKS: Mapping[str, Mapping[str, str]] = {
    "en": {"next_open": "on our next business day", "typical_reply": "within one business day",
           "customer_name": "there"},
    "ja": {"next_open": "次の営業日", "typical_reply": "1営業日以内", "customer_name": "お客様"},
}

_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")
_WEEKDAYS_JA = "月火水木金土日"
_HONORIFICS_JA = ("様", "さま", "さん", "殿")
# "{{", "}}", a variable, or a brace left alone (an error).
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@dataclass(frozen=True)
class AwaySettings:
    enabled: bool = True
    when: str = "closed"
    busy_threshold_minutes: int = DEFAULT_BUSY_THRESHOLD_MINUTES
    period_hours: int = DEFAULT_PERIOD_HOURS
    # Only the languages the supervisor wrote; the others use the default templates, so an
    # improved default reaches every team that never changed it.
    templates: Mapping[str, str] = field(default_factory=dict, hash=False)
    busy_templates: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def period(self) -> timedelta:
        return timedelta(hours=self.period_hours)

    def template(self, lang: str, *, busy: bool = False) -> str:
        own, default = (self.busy_templates, DEFAULT_BUSY_TEMPLATES) if busy else (self.templates, DEFAULT_TEMPLATES)
        return own.get(lang) or default[lang]

    def to_dict(self) -> Dict[str, Any]:
        return {"enabled": self.enabled, "when": self.when, "busy_threshold_minutes": self.busy_threshold_minutes,
                "period_hours": self.period_hours, "templates": dict(self.templates),
                "busy_templates": dict(self.busy_templates)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AwaySettings":
        """Read back what ``to_dict`` stored (numbers may come back as Decimal; missing fields default)."""
        when = data.get("when")
        return cls(
            enabled=bool(data.get("enabled", True)),
            when=when if when in WHEN else "closed",
            busy_threshold_minutes=int(data.get("busy_threshold_minutes") or DEFAULT_BUSY_THRESHOLD_MINUTES),
            period_hours=int(data.get("period_hours") or DEFAULT_PERIOD_HOURS),
            templates={k: str(v) for k, v in dict(data.get("templates") or {}).items() if k in LANGS},
            busy_templates={k: str(v) for k, v in dict(data.get("busy_templates") or {}).items() if k in LANGS},
        )


# ---- validation ------------------------------------------------------------------

_EXAMPLE = ('e.g. {"enabled": true, "when": "closed", "period_hours": 24, '
            '"templates": {"en": "Hi {customer_name}, we are back {next_open}.", "ja": "..."}}')


def validate_away(body: Any) -> AwaySettings:
    """A supervisor's away settings (the whole of them: fields left out take their defaults), or a
    BadRequest saying what to fix."""
    if not isinstance(body, dict):
        raise BadRequest(f"the away settings must be a JSON object, {_EXAMPLE}")
    unknown = [key for key in body if key not in _FIELDS]
    if unknown:
        raise BadRequest(f"unknown field '{str(unknown[0])[:40]}'; away settings have {', '.join(_FIELDS)}")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest("field 'enabled' must be true or false")
    when = body.get("when", "closed")
    if when not in WHEN:
        raise BadRequest("field 'when' must be 'closed' (outside the team's hours) or 'closed_or_busy' "
                         "(also while the typical reply time is over busy_threshold_minutes)")
    threshold = _whole(body, "busy_threshold_minutes", DEFAULT_BUSY_THRESHOLD_MINUTES,
                       MIN_BUSY_THRESHOLD_MINUTES, MAX_BUSY_THRESHOLD_MINUTES, "minutes (a week at most)")
    period = _whole(body, "period_hours", DEFAULT_PERIOD_HOURS, MIN_PERIOD_HOURS, MAX_PERIOD_HOURS,
                    "hours: a customer gets at most one away message in that time (720 is 30 days)")
    return AwaySettings(enabled=enabled, when=when, busy_threshold_minutes=threshold, period_hours=period,
                        templates=_templates(body.get("templates", {}), "templates", VARIABLES),
                        busy_templates=_templates(body.get("busy_templates", {}), "busy_templates", BUSY_VARIABLES))


def _whole(body: Mapping[str, Any], name: str, default: int, low: int, high: int, unit: str) -> int:
    value = body.get(name, default)
    if type(value) is not int or not low <= value <= high:  # not a bool, not 24.0
        raise BadRequest(f"field '{name}' must be a whole number from {low} to {high}, in {unit}")
    return value


def _templates(value: Any, where: str, allowed: Sequence[str]) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise BadRequest(f"field '{where}' must be an object of language to template, "
                         '{"en": "...", "ja": "..."} (a language left out uses the default template)')
    result: Dict[str, str] = {}
    for lang, template in value.items():
        if lang not in LANGS:
            raise BadRequest(f"{where}: unknown language '{str(lang)[:16]}'; templates are 'en' and 'ja'")
        validate_template(template, f"{where}.{lang}", lang=lang, allowed=allowed)
        result[lang] = template
    return result


def validate_template(template: Any, where: str, *, lang: str, allowed: Sequence[str] = VARIABLES) -> None:
    """A template that renders, with any values, into a message every platform accepts."""
    problem = text_problem(template, max_length=MAX_TEMPLATE_CHARS, multiline=True)
    if problem:
        raise BadRequest(f"{where} {problem}")
    if not template.strip():
        raise BadRequest(f"{where} is empty; write the message, or leave the language out to use the default")
    for match in _TOKEN.finditer(template):
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            continue
        if name is None:
            raise BadRequest(f"{where} has an unbalanced '{token}' at position {match.start()}; variables are "
                             "written {next_open}, and a literal brace as {{ or }}")
        if name not in allowed:
            raise BadRequest(f"{where} uses an unknown variable {{{name[:40]}}}{_did_you_mean(name, allowed)}; "
                             f"it may use {', '.join('{' + v + '}' for v in allowed)}"
                             + (" ({next_open} is not known while the team is open)"
                                if name == "next_open" else ""))
    text = render_template(template, worst_case_values(lang))
    length = weighted_length(text)
    if length > X_MAX_POST_LENGTH:
        raise BadRequest(
            f"{where} can come to {length} characters as X counts them once its variables are filled in "
            f"(X counts each Japanese character as two); an away message must fit an X reply of "
            f"{X_MAX_POST_LENGTH}: shorten it by {length - X_MAX_POST_LENGTH}")
    # Instagram counts messages in UTF-8 bytes; within them a message fits every other channel too.
    size = len(text.encode("utf-8"))
    if size > MAX_INSTAGRAM_DM_BYTES:
        raise BadRequest(f"{where} can come to {size} bytes (UTF-8) once its variables are filled in; an "
                         f"Instagram message allows {MAX_INSTAGRAM_DM_BYTES}: shorten it")


def _did_you_mean(name: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(name.strip(), allowed, n=1)
    return f" (did you mean {{{close[0]}}}?)" if close else ""


# ---- rendering -------------------------------------------------------------------

def render(settings: AwaySettings, lang: str, values: Mapping[str, str], *, busy: bool = False) -> str:
    """The message in ``lang`` ("ja" or "en"); a variable missing from ``values`` takes its fallback."""
    lang = message_lang(lang)
    return render_template(settings.template(lang, busy=busy), {**FALLBACKS[lang], **values})


def render_template(template: str, values: Mapping[str, str]) -> str:
    """One pass: a value that itself contains "{next_open}" (a customer's name) stays as written."""
    def fill(match: "re.Match[str]") -> str:
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            return token[0]
        return values.get(name, "") if name is not None else token
    return _TOKEN.sub(fill, template)


def message_lang(lang: str) -> str:
    """The language of the message for a case's language: Japanese for "ja" (or "ja-JP"), else English."""
    return "ja" if (lang or "").lower().split("-")[0] == "ja" else "en"


def away_values(lang: str, *, next_open: Optional[datetime], time_zone: Optional[tzinfo], now: datetime,
                first_responses: Sequence[int], customer: Mapping[str, Any]) -> Dict[str, str]:
    """The variables' values for one message (fallbacks where nothing is known)."""
    lang = message_lang(lang)
    return {
        "next_open": (format_next_open(next_open.astimezone(time_zone or timezone.utc), lang, now=now)
                      if next_open else FALLBACKS[lang]["next_open"]),
        "typical_reply": format_duration(typical_reply_seconds(first_responses), lang),
        "customer_name": customer_name(customer, lang),
    }


def format_next_open(local: datetime, lang: str, *, now: datetime) -> str:
    """The opening in the team's own time zone, as a person of the language writes a date:
    "Tuesday 24 November at 09:00 (JST)" / 「11月24日(火) 9:00」. The year only when it is not this one."""
    other_year = local.year != now.astimezone(local.tzinfo).year
    label = _zone_label(local)
    if message_lang(lang) == "ja":
        year = f"{local.year}年" if other_year else ""
        zone_note = "" if label == "JST" else f" ({label})"  # Japanese readers assume Japan time
        return f"{year}{local.month}月{local.day}日({_WEEKDAYS_JA[local.weekday()]}) {local.hour}:{local.minute:02d}" \
               f"{zone_note}"
    year = f" {local.year}" if other_year else ""
    return (f"{_WEEKDAYS_EN[local.weekday()]} {local.day} {_MONTHS_EN[local.month - 1]}{year} "
            f"at {local.hour:02d}:{local.minute:02d} ({label})")


def _zone_label(local: datetime) -> str:
    name = local.tzname() or "UTC"
    # tzdata has no letters for many zones ("+07"): say it as an offset from UTC.
    return f"UTC{name}" if name[:1] in "+-" else name


def typical_reply_seconds(first_responses: Sequence[int]) -> Optional[float]:
    """The median of recent first-response times (one slow case does not move it); None without any."""
    samples = [s for s in first_responses if s >= 0]
    return float(statistics.median(samples)) if samples else None


def format_duration(seconds: Optional[float], lang: str) -> str:
    """A wait rounded the way a person says it: "about 20 minutes", "about 3 hours", 「約20分」."""
    ja = message_lang(lang) == "ja"
    if seconds is None:
        return FALLBACKS["ja" if ja else "en"]["typical_reply"]
    minutes = seconds / 60
    if minutes < 1.5:
        return "約1分" if ja else "about a minute"
    if minutes < 55:
        # Under ten minutes every minute matters; above, nobody believes "about 23 minutes".
        n = _round(minutes) if minutes < 10 else 5 * _round(minutes / 5)
        return f"約{n}分" if ja else f"about {n} minutes"
    hours = minutes / 60
    if hours < 1.5:
        return "約1時間" if ja else "about an hour"
    if hours < 23.5:
        n = _round(hours)
        return f"約{n}時間" if ja else f"about {n} hours"
    days = hours / 24
    if days < 1.5:
        return "約1日" if ja else "about a day"
    if days < 6.5:
        n = _round(days)
        return f"約{n}日" if ja else f"about {n} days"
    return "1週間以上" if ja else "a week or more"


def _round(value: float) -> int:
    return int(value + 0.5)  # half up, as people round (round() would make 2.5 hours "2")


def customer_name(customer: Mapping[str, Any], lang: str) -> str:
    """The customer's display name (with 様 in Japanese), or the fallback ("there", 「お客様」).

    A name that would tag someone (@) or carry a link in an automated public post, that hides
    text direction or control characters, or that is too long to check in advance, is left out.
    """
    ja = message_lang(lang) == "ja"
    raw = customer.get("name") or customer.get("handle") or ""
    name = " ".join(str(raw).split())
    usable = (bool(name) and weighted_length(name) <= NAME_BUDGET and "@" not in name and "://" not in name
              and "{" not in name and "}" not in name
              and all(unicodedata.category(c)[0] != "C" for c in name))
    if not usable:
        return FALLBACKS["ja" if ja else "en"]["customer_name"]
    if ja and not name.endswith(_HONORIFICS_JA):
        return name + "様"
    return name


def worst_case_values(lang: str) -> Dict[str, str]:
    """The longest each variable can render, so a template is checked once for every message it makes."""
    lang = message_lang(lang)
    longest_date = datetime(2026, 9, 30, 23, 30, tzinfo=timezone(timedelta(hours=5, minutes=45), "+0545"))
    candidates: Dict[str, List[str]] = {
        "next_open": [format_next_open(longest_date, lang, now=longest_date - timedelta(days=400)),
                      FALLBACKS[lang]["next_open"]],
        "typical_reply": [format_duration(s, lang) for s in (None, 60, 540, 3000, 80000, 500000, 10 ** 7)],
        # The longest name kept is NAME_BUDGET weighted; wide characters plus 様 weigh the most.
        "customer_name": ["W" * NAME_BUDGET, "名" * (NAME_BUDGET // 2) + ("様" if lang == "ja" else ""),
                          FALLBACKS[lang]["customer_name"]],
    }
    return {name: max(values, key=lambda v: (weighted_length(v), len(v.encode("utf-8"))))
            for name, values in candidates.items()}


# ---- where an automatic message may go -------------------------------------------

def away_channel(target: ReplyTarget, *, customer_posted_at: str, now: str) -> Tuple[Optional[str], str]:
    """How an automatic message may reach the customer: ("public" | "private", why), or (None, why not).

    X: publicly only under a post that mentioned the brand, by DM only in a conversation the
    customer started (X forbids unsolicited DMs). Messenger, Instagram DMs and WhatsApp: only
    within 24 hours of the customer's message. Facebook and Instagram comments: a public reply.
    """
    platform, kind = target.platform, target.kind
    if platform == "x":
        if kind == "dm":
            return "private", "X direct message in a conversation the customer started"
        if kind in ("mention", "reply") and target.addressed_to_brand:
            return "public", "X reply to a post that mentions the brand"
        return None, ("X post does not mention the brand: X accepts no automated reply to it, and an "
                      "unsolicited DM is against X's automation rules")
    if kind == "dm" or platform in ("messenger", "whatsapp"):
        channel = {"whatsapp": "WhatsApp's customer service window", "messenger": "Messenger's 24-hour window",
                   "instagram": "Instagram's 24-hour messaging window"}.get(platform, f"{platform}'s window")
        age = _parse(now) - _parse(customer_posted_at)
        if age > MESSAGING_WINDOW:
            hours = int(age.total_seconds() // 3600)
            return None, (f"outside {channel}: the customer's message is {hours} hours old and automated "
                          "messages are allowed only within 24 hours of it")
        return "private", f"direct message within {channel}"
    if platform in ("facebook", "instagram") and kind in ("comment", "reply", "mention"):
        return "public", f"public reply to the {platform.capitalize()} {'post' if kind == 'mention' else 'comment'}"
    return None, f"no automatic message is sent for a {platform} {kind}"


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def away_reply_id(case_id: str) -> str:
    """One away message per case, whatever redelivers: the same case always names the same reply."""
    return "r_" + hashlib.sha256(f"away|{case_id}".encode()).hexdigest()[:20]
