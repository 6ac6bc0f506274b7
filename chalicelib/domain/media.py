"""Media: the photos, videos, voice notes and documents customers send, and images agents attach.

Inbound, a Mention carries a bounded list of ``MediaItem``s (``Mention.media``): what it is
(``type``, ``mime``), what the customer wrote with it (``caption``, which triage reads as text),
and where the file is: a platform URL (X, Messenger, Instagram, Facebook), a platform media id
(WhatsApp: its URLs expire within minutes, so the file is copied to the stack's bucket when the
message arrives, ``stored``), its size when known, and why a copy failed (``error``). The file
itself never travels on a queue.

Outbound, ``validate_attachment`` checks the one image an agent may attach to a reply
(``{"url": "https://..."}`` or ``{"media_id": <a file of this case>}``) and ``attachment_refusal``
says where a platform does not take one.

Standard library only: every mention imports this.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

# X photo/video/animated_gif; Meta image/video/audio/file (+ sticker); WhatsApp image/video/audio/
# voice/document/sticker. Normalized to these.
MEDIA_TYPES = ("image", "video", "gif", "audio", "voice", "file", "sticker")
MAX_MEDIA_PER_MENTION = 10     # X: 4 photos; Messenger: up to 10 attachments per message
MAX_CAPTION_CHARS = 1024       # WhatsApp's caption limit, the longest of the channels
MAX_URL_CHARS = 2048
MAX_MEDIA_ID_CHARS = 128
MAX_MIME_CHARS = 100
MAX_FILENAME_CHARS = 240
MAX_STORED_KEY_CHARS = 512
MAX_ERROR_CHARS = 300
MAX_SIZE_BYTES = 2 ** 40
# The most socialcare copies into its bucket: WhatsApp allows 16 MB for audio and video (100 MB
# for documents, which are kept as a reference beyond this).
MAX_COPY_BYTES = 16 * 1024 * 1024

# What an agent may attach to a reply: images the channels all take.
ATTACHABLE_MIME = ("image/jpeg", "image/png")
ATTACHABLE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Messenger takes images by URL up to 8 MB; WhatsApp images 5 MB; X photos 5 MB: the smallest holds everywhere.
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024

_MIME = re.compile(r"[a-z]+/[a-z0-9.+-]+(?:\s*;.*)?", re.IGNORECASE)
_OUR_MEDIA_ID = re.compile(r"md_[0-9a-f]{16}")


class InvalidMedia(ValueError):
    """A media list or attachment that breaks a rule; the message names the field."""


@dataclass
class MediaItem:
    type: str
    mime: str = ""
    caption: str = ""
    url: str = ""                 # the platform's URL (may expire)
    platform_media_id: str = ""   # WhatsApp's media id (GET /{media-id} gives a short-lived URL)
    size: int = 0                 # bytes, 0 when unknown
    filename: str = ""
    stored: str = ""              # the key of socialcare's copy in the media bucket
    error: str = ""               # why the copy failed (the reference is kept)

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", 0) or k == "type"}

    @classmethod
    def from_dict(cls, data: Any, where: str = "media") -> "MediaItem":
        if not isinstance(data, dict):
            raise InvalidMedia(f"field '{where}' must be an object")
        kind = data.get("type")
        if kind not in MEDIA_TYPES:
            raise InvalidMedia(f"field '{where}.type' must be one of {', '.join(MEDIA_TYPES)}")
        size = data.get("size", 0)
        if size is None:
            size = 0
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE_BYTES:
            raise InvalidMedia(f"field '{where}.size' must be a whole number of bytes")
        item = cls(
            type=kind, mime=_text(data, "mime", where, MAX_MIME_CHARS),
            caption=_text(data, "caption", where, MAX_CAPTION_CHARS),
            url=_text(data, "url", where, MAX_URL_CHARS),
            platform_media_id=_text(data, "platform_media_id", where, MAX_MEDIA_ID_CHARS),
            size=size, filename=_text(data, "filename", where, MAX_FILENAME_CHARS),
            stored=_text(data, "stored", where, MAX_STORED_KEY_CHARS),
            error=_text(data, "error", where, MAX_ERROR_CHARS),
        )
        if item.url and not item.url.lower().startswith(("https://", "http://")):
            raise InvalidMedia(f"field '{where}.url' must be an http(s) URL")
        if not (item.url or item.platform_media_id or item.stored):
            raise InvalidMedia(f"field '{where}' needs a url, a platform_media_id or a stored copy")
        return item


def parse_media_list(value: Any) -> List[MediaItem]:
    """A mention's ``media``: absent/null is none; more than MAX_MEDIA_PER_MENTION is refused."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidMedia("field 'media' must be a list")
    if len(value) > MAX_MEDIA_PER_MENTION:
        raise InvalidMedia(f"field 'media' holds {len(value)} items; at most {MAX_MEDIA_PER_MENTION} are kept")
    return [MediaItem.from_dict(item, f"media[{index}]") for index, item in enumerate(value)]


def bounded(items: List[MediaItem]) -> List[MediaItem]:
    """What a parser keeps: the first MAX_MEDIA_PER_MENTION items, captions and URLs cut to their limits."""
    kept = []
    for item in items[:MAX_MEDIA_PER_MENTION]:
        if len(item.url) > MAX_URL_CHARS:
            item.url = ""  # a longer URL is not one a browser follows; keep the rest
        if not (item.url or item.platform_media_id):
            continue
        item.caption = item.caption[:MAX_CAPTION_CHARS]
        item.mime = item.mime[:MAX_MIME_CHARS] if _MIME.fullmatch(item.mime or "") else ""
        item.filename = item.filename[:MAX_FILENAME_CHARS]
        item.platform_media_id = item.platform_media_id[:MAX_MEDIA_ID_CHARS]
        kept.append(item)
    return kept


def captions(items: List[MediaItem]) -> str:
    """The captions, one per line: what triage reads when a message is only media with words."""
    return "\n".join(item.caption for item in items if item.caption.strip())


def media_id(mention_id: str, index: int) -> str:
    """A file's id within its case: stable, short, and the same for every reader."""
    return "md_" + hashlib.sha256(f"{mention_id}#{index}".encode("utf-8")).hexdigest()[:16]


def is_media_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_OUR_MEDIA_ID.fullmatch(value))


def _text(data: Dict[str, Any], name: str, where: str, limit: int) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidMedia(f"field '{where}.{name}' must be a string")
    if len(value) > limit:
        raise InvalidMedia(f"field '{where}.{name}' is longer than {limit} characters")
    return value


# ---- reply attachments ------------------------------------------------------------------

def validate_attachment(value: Any) -> Optional[Dict[str, str]]:
    """An agent's ``attachment``: ``{"url": "https://...jpg|png"}`` or ``{"media_id": "md_..."}`` (a file
    of this case), with an optional ``mime``; None when absent. InvalidMedia names what is wrong."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise InvalidMedia("field 'attachment' must be an object: {\"url\": \"https://...\"} or {\"media_id\": \"md_...\"}")
    unknown = sorted(set(value) - {"url", "media_id", "mime"})
    if unknown:
        raise InvalidMedia(f"field 'attachment' has unknown fields: {', '.join(unknown)}")
    url, ref = value.get("url"), value.get("media_id")
    if (url is None) == (ref is None):
        raise InvalidMedia("field 'attachment' takes exactly one of 'url' or 'media_id'")
    mime = value.get("mime")
    if mime is not None and mime not in ATTACHABLE_MIME:
        raise InvalidMedia(f"field 'attachment.mime' must be one of {', '.join(ATTACHABLE_MIME)}: only JPEG and "
                           "PNG images go out on every channel")
    if ref is not None:
        if not is_media_id(ref):
            raise InvalidMedia("field 'attachment.media_id' must be the id of a file of this case (md_ and 16 hex "
                               "digits, as GET /cases/{id} lists them)")
        return {"media_id": ref, **({"mime": mime} if mime else {})}
    if not isinstance(url, str) or not url.startswith("https://") or len(url) > MAX_URL_CHARS or any(
            c.isspace() for c in url):
        raise InvalidMedia(f"field 'attachment.url' must be an https:// URL of at most {MAX_URL_CHARS} characters")
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    if mime is None and not path.endswith(ATTACHABLE_EXTENSIONS):
        raise InvalidMedia("field 'attachment.url' must name a .jpg or .png image, or give 'attachment.mime' "
                           "(image/jpeg or image/png)")
    return {"url": url, **({"mime": mime} if mime else {})}


def attachment_refusal(platform: str, kind: str, mode: str) -> Optional[str]:
    """Why this kind of reply cannot carry an image; None when it can."""
    if platform == "instagram" and mode == "public":
        return ("Instagram comment replies are text only; answer by direct message (mode 'private') to send "
                "the image")
    if platform in ("facebook", "instagram") and mode == "private" and kind != "dm":
        return (f"the private reply to a {platform} comment is text only (one message per comment); send the "
                "image once the customer answers in the inbox")
    return None


def attachable_mime(mime: str) -> bool:
    return mime.split(";", 1)[0].strip().lower() in ATTACHABLE_MIME
