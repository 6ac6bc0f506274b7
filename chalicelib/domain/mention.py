"""The platform-neutral Mention: every channel's post, comment or message.

Triage and routing only ever see this shape, never a platform payload, so a
new channel is a new normalizer and nothing else.

``Mention.from_dict`` is the one gate between the outside (a queue message, a
stored item, a normalizer's output) and the pipeline: it checks every field's
type, length and range and raises ``InvalidMention`` naming the field, so a
record that can never be processed is dead-lettered at once instead of being
retried until SQS gives up on it.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Union

from chalicelib.domain.media import InvalidMedia, MediaItem, parse_media_list

PLATFORMS = ("x", "facebook", "instagram", "messenger", "whatsapp")
KINDS = ("mention", "reply", "comment", "dm")
# An Instagram "mentions" notification carries only ids; the author and text
# need a Graph call before triage.
UNKNOWN_AUTHOR_ID = "unknown"
# Where a mention is in the pipeline (the mentions table's ``state``).
DONE_STATES = ("routed", "no_case")

# ---- limits (characters, i.e. Unicode code points) ----------------------------------
# The longest message any channel we read lets a customer write is an X direct
# message: 10,000 characters (the others are shorter: WhatsApp 4,096, Facebook
# comments 8,000, Instagram 2,200, Messenger 2,000; an X post is 280, or 25,000
# for a Premium long post, whose API ``text`` holds only the first 280). So
# 10,000 fits every message we answer, and bounds a queued mention well under
# SQS's 256 KiB: at most 6 bytes a character once JSON-escaped, about 60 KB.
# A Facebook Page visitor post may be longer (63,206); such a post is refused
# with its reason rather than queued.
MAX_TEXT_CHARS = 10_000
MAX_ID_CHARS = 128            # platform ids are at most ~40 characters; source ids add a prefix
MAX_NAME_CHARS = 200          # handles and display names
MAX_PERMALINK_CHARS = 2048    # the longest URL every browser and CDN accepts
MAX_LANG_CHARS = 16           # BCP 47 tags ("ja", "zh-Hant-TW"); X also sends "und", "qme"...
MAX_VERIFIED_TYPE_CHARS = 32  # "none", "blue", "business", "government"
MAX_TIMESTAMP_CHARS = 64
# What a tapped button sends back: a Messenger or Instagram quick reply's payload is at most 1,000
# characters, a WhatsApp reply button's id 256.
MAX_REPLY_PAYLOAD_CHARS = 1000
MAX_FOLLOWERS = 10 ** 10      # above anyone's follower count, below any integer overflow downstream
# No social post predates 2006 (Twitter's first post: March 2006); a time in
# the future beyond clock skew is a parsing error upstream.
EARLIEST_CREATED_AT = datetime(2006, 1, 1, tzinfo=timezone.utc)
MAX_CLOCK_SKEW = timedelta(days=1)
# The most a mention may take on a queue, as JSON in UTF-8. SQS carries 256 KiB;
# the triage stage forwards the mention wrapped with its triage decision, and a
# dead-lettered message carries its reason as attributes, so leave room for both.
MAX_QUEUED_BYTES = 200 * 1024

# ISO 8601 extended format with seconds optional, fractions and a zone required:
# "2026-11-23T03:00:00Z", "2026-11-23T03:00:00.000Z", "2026-11-23T18:20:00+09:00".
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})", re.ASCII)


class InvalidMention(ValueError):
    """A payload that can never become a Mention; retrying will not help."""


@dataclass
class Author:
    id: str
    handle: str = ""
    name: str = ""
    verified: bool = False
    verified_type: str = "none"
    followers: int = 0

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "author") -> "Author":
        """Parse an author; raises InvalidMention naming the bad field (``author.followers``...)."""
        if not isinstance(data, dict):
            raise InvalidMention(f"field '{where}' must be an object, not {_type_name(data)}")
        handle = _string(data, "handle", where, MAX_NAME_CHARS)
        author_id = _string(data, "id", where, MAX_ID_CHARS) or handle
        if not author_id:
            raise InvalidMention(f"field '{where}.id' is missing")
        if len(author_id) > MAX_ID_CHARS:  # a handle standing in for the id
            raise InvalidMention(f"field '{where}.id' is longer than {MAX_ID_CHARS} characters")
        return cls(
            id=author_id,
            handle=handle,
            name=_string(data, "name", where, MAX_NAME_CHARS),
            verified=_boolean(data, "verified", where, default=False),
            verified_type=_string(data, "verified_type", where, MAX_VERIFIED_TYPE_CHARS) or "none",
            followers=_integer(data, "followers", where, 0, MAX_FOLLOWERS),
        )


@dataclass
class Mention:
    platform: str
    kind: str
    platform_id: str
    author: Author
    text: str
    created_at: str
    source_id: str = ""
    lang: str = ""
    conversation_id: str = ""
    in_reply_to_id: str = ""
    permalink: str = ""
    # Whether the post tagged or quoted the brand account. X only lets an API
    # reply go to a post that summoned the brand, so search hits get a DM or
    # manual approach instead of a failing public reply.
    addressed_to_brand: bool = True
    # The payload of the button the customer tapped to send this message (a quick reply's payload, a
    # WhatsApp reply button's id); "" for a typed message. A survey answer is read from it.
    reply_payload: str = ""
    # Photos, videos, voice notes and documents sent with it (domain/media.py); their captions are
    # part of ``text``. Absent from the stored and queued shape when there are none.
    media: List[MediaItem] = field(default_factory=list)
    # The platform payload, for the parser that built this mention and its
    # tests only: it repeats the text, so it stays in memory and is never
    # queued or stored (to_dict leaves it out, from_dict ignores it).
    raw: Dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Globally unique id used for dedupe: platform ids only clash across platforms."""
        return f"{self.platform}:{self.platform_id}"

    @property
    def customer_key(self) -> str:
        return f"{self.platform}:{self.author.id}"

    def to_dict(self) -> Dict[str, Any]:
        """The mention as queued and stored: every field but ``raw``, plus ``id``."""
        data: Dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                                if f.name not in ("author", "raw", "media")}
        if self.media:
            data["media"] = [item.to_dict() for item in self.media]
        if not self.reply_payload:
            del data["reply_payload"]  # a typed message (nearly all) keeps the shape it always had
        data["author"] = asdict(self.author)
        data["id"] = self.id
        return data

    def validate(self, now: Union[datetime, str, None] = None) -> "Mention":
        """This mention, if it would survive the queue (``from_dict`` of its ``to_dict``); else InvalidMention."""
        Mention.from_dict(self.to_dict(), now=now)
        return self

    @classmethod
    def from_dict(cls, data: Any, now: Union[datetime, str, None] = None) -> "Mention":
        """Parse a queued or stored mention; raises InvalidMention naming the bad field.

        Every field is type-checked (no coercion: ``followers: "lots"`` and
        ``verified: 1`` are refused), strings are bounded (see the MAX_*
        limits) and must be valid Unicode, and ``created_at`` must be an ISO
        8601 time with a zone between 2006-01-01 and ``now`` + 1 day. ``now``
        (a datetime or ISO string) defaults to the current UTC time. Optional
        fields may be absent or null. ``raw`` is ignored; ``id``, when present,
        must agree with ``platform`` and ``platform_id``.
        """
        if not isinstance(data, dict):
            raise InvalidMention(f"mention must be a JSON object, not {_type_name(data)}")
        platform = _required(data, "platform", MAX_ID_CHARS)
        if platform not in PLATFORMS:
            raise InvalidMention(f"field 'platform' must be one of {', '.join(PLATFORMS)}")
        kind = _required(data, "kind", MAX_ID_CHARS)
        if kind not in KINDS:
            raise InvalidMention(f"field 'kind' must be one of {', '.join(KINDS)}")
        platform_id = _required(data, "platform_id", MAX_ID_CHARS)
        if data.get("text") is None:
            raise InvalidMention("field 'text' is missing or not a string")
        text = _string(data, "text", "", MAX_TEXT_CHARS)
        created_at = _required(data, "created_at", MAX_TIMESTAMP_CHARS)
        check_created_at(created_at, now)
        if "author" not in data:
            raise InvalidMention("field 'author' is missing")
        mention = cls(
            platform=platform,
            kind=kind,
            platform_id=platform_id,
            author=Author.from_dict(data["author"]),
            text=text,
            created_at=created_at,
            source_id=_string(data, "source_id", "", MAX_ID_CHARS),
            lang=_string(data, "lang", "", MAX_LANG_CHARS),
            conversation_id=_string(data, "conversation_id", "", MAX_ID_CHARS),
            in_reply_to_id=_string(data, "in_reply_to_id", "", MAX_ID_CHARS),
            permalink=_string(data, "permalink", "", MAX_PERMALINK_CHARS),
            addressed_to_brand=_boolean(data, "addressed_to_brand", "", default=True),
            reply_payload=_string(data, "reply_payload", "", MAX_REPLY_PAYLOAD_CHARS),
            media=_media(data.get("media")),
        )
        given_id = data.get("id")
        if given_id is not None and given_id != mention.id:
            raise InvalidMention(f"field 'id' must be '<platform>:<platform_id>' ({mention.id!r})")
        return mention


def check_created_at(value: str, now: Union[datetime, str, None] = None) -> datetime:
    """The moment ``value`` names; InvalidMention unless it is ISO 8601 with a zone, 2006-01-01..now+1 day."""
    if not _ISO_TIME.fullmatch(value):
        raise InvalidMention("field 'created_at' must be an ISO 8601 time with a timezone, "
                             "such as 2026-11-23T03:00:00Z")
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidMention(f"field 'created_at' is not a real time: {err}") from None
    latest = _moment(now) + MAX_CLOCK_SKEW
    if not EARLIEST_CREATED_AT <= moment <= latest:
        raise InvalidMention(f"field 'created_at' must lie between {EARLIEST_CREATED_AT:%Y-%m-%d} and "
                             f"{latest:%Y-%m-%dT%H:%M:%SZ} (now + 1 day)")
    return moment


def queued_size(mention: Mention) -> int:
    """Bytes the mention takes as a queue message (JSON, UTF-8); compare with MAX_QUEUED_BYTES."""
    return len(json.dumps(mention.to_dict(), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def needs_lookup(mention: Mention) -> bool:
    """True for an Instagram @mention whose author and text must still be fetched from Graph."""
    return mention.platform == "instagram" and mention.kind == "mention" and mention.author.id == UNKNOWN_AUTHOR_ID


def needs_profile(mention: Mention) -> bool:
    """True for a Messenger or Instagram DM whose sender is known only by id (the webhook sends no name)."""
    return (mention.kind == "dm" and mention.platform in ("messenger", "instagram")
            and not mention.author.name and not mention.author.handle)


@dataclass
class MentionRecord:
    """What the pipeline remembers of a mention: where it got to, and triage's decision."""

    mention_id: str
    state: str = "received"
    triage: Optional[Dict[str, Any]] = None
    case_id: Optional[str] = None

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES


# ---- field checks ------------------------------------------------------------------

def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _label(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _required(data: Dict[str, Any], name: str, max_chars: int) -> str:
    value = _string(data, name, "", max_chars)
    if not value:
        raise InvalidMention(f"field '{name}' is missing or not a string")
    return value


def _string(data: Dict[str, Any], name: str, prefix: str, max_chars: int) -> str:
    """An optional string field: "" when absent or null; InvalidMention when of another type or too long."""
    value = data.get(name)
    label = _label(prefix, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidMention(f"field '{label}' must be a string, not {_type_name(value)}")
    if len(value) > max_chars:
        raise InvalidMention(f"field '{label}' is {len(value)} characters; at most {max_chars} are allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMention(f"field '{label}' is not valid Unicode (a lone surrogate)") from None
    return value


def _boolean(data: Dict[str, Any], name: str, prefix: str, *, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidMention(f"field '{_label(prefix, name)}' must be true or false, not {_type_name(value)}")
    return value


def _integer(data: Dict[str, Any], name: str, prefix: str, low: int, high: int) -> int:
    value = data.get(name)
    label = _label(prefix, name)
    if value is None:
        return low
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMention(f"field '{label}' must be an integer, not {_type_name(value)}")
    if not low <= value <= high:
        raise InvalidMention(f"field '{label}' must be between {low} and {high}")
    return value


def _media(value: Any) -> List[MediaItem]:
    try:
        return parse_media_list(value)
    except InvalidMedia as err:
        raise InvalidMention(str(err)) from None


def _moment(now: Union[datetime, str, None]) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, str):
        now = datetime.fromisoformat(now.upper().replace("Z", "+00:00"))
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)
