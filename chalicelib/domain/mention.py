"""The platform-neutral Mention: every channel's post, comment or message.

Triage and routing only ever see this shape, never a platform payload, so a
new channel is a new normalizer and nothing else.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

PLATFORMS = ("x", "facebook", "instagram", "messenger", "whatsapp")
KINDS = ("mention", "reply", "comment", "dm")
# An Instagram "mentions" notification carries only ids; the author and text
# need a Graph call before triage.
UNKNOWN_AUTHOR_ID = "unknown"
# Where a mention is in the pipeline (the mentions table's ``state``).
DONE_STATES = ("routed", "no_case")


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
    def from_dict(cls, data: Dict[str, Any]) -> "Author":
        if not isinstance(data, dict):
            raise InvalidMention("author must be an object")
        author_id = str(data.get("id") or data.get("handle") or "")
        if not author_id:
            raise InvalidMention("author.id is missing")
        return cls(
            id=author_id,
            handle=str(data.get("handle") or ""),
            name=str(data.get("name") or ""),
            verified=bool(data.get("verified", False)),
            verified_type=str(data.get("verified_type") or "none"),
            followers=int(data.get("followers") or 0),
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
    raw: Dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Globally unique id used for dedupe: platform ids only clash across platforms."""
        return f"{self.platform}:{self.platform_id}"

    @property
    def customer_key(self) -> str:
        return f"{self.platform}:{self.author.id}"

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["id"] = self.id
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "Mention":
        """Parse a queued mention; raises InvalidMention naming the bad field."""
        if not isinstance(data, dict):
            raise InvalidMention("mention must be a JSON object")
        for name in ("platform", "kind", "platform_id", "text", "created_at"):
            value = data.get(name)
            if not isinstance(value, str) or (not value and name != "text"):
                raise InvalidMention(f"field '{name}' is missing or not a string")
        if data["platform"] not in PLATFORMS:
            raise InvalidMention(f"field 'platform' must be one of {', '.join(PLATFORMS)}")
        if data["kind"] not in KINDS:
            raise InvalidMention(f"field 'kind' must be one of {', '.join(KINDS)}")
        if "author" not in data:
            raise InvalidMention("field 'author' is missing")
        return cls(
            platform=data["platform"],
            kind=data["kind"],
            platform_id=data["platform_id"],
            author=Author.from_dict(data["author"]),
            text=data["text"],
            created_at=data["created_at"],
            source_id=str(data.get("source_id") or ""),
            lang=str(data.get("lang") or ""),
            conversation_id=str(data.get("conversation_id") or ""),
            in_reply_to_id=str(data.get("in_reply_to_id") or ""),
            permalink=str(data.get("permalink") or ""),
            addressed_to_brand=bool(data.get("addressed_to_brand", True)),
            raw=data.get("raw") or {},
        )


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
