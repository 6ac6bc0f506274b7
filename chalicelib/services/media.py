"""Media: customers' files kept and shown in the case; images attached to replies.

Inbound (``keep_inbound``, called by intake.complete): a WhatsApp file is named by a media id whose
download URL lives about five minutes, so the triage stage copies it into the stack's bucket at
once (at most MAX_COPY_BYTES). A copy that fails never loses the message: the mention keeps the
platform reference and the reason, and opening the file later tries the copy again. X, Messenger,
Instagram and Facebook files are kept as their platform URLs.

Shown (``case_media``, ``media_link``): the case detail lists its files; ``GET
/cases/{id}/media/{media_id}`` answers a short-lived URL (the bucket's copy, or the platform's URL).

Outbound (``prepare_reply``, ``send_extras``): an agent's ``attachment`` is checked when the reply
is requested (image type, where the platform takes one, a file of this case) and resolved to a
URL when it is sent.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.domain.case import Case
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.errors import BadRequest, NotFound, PlatformError, Refused, Unavailable
from chalicelib.domain.media import (
    MAX_COPY_BYTES,
    InvalidMedia,
    MediaItem,
    attachment_refusal,
    is_media_id,
    media_id,
    validate_attachment,
)
from chalicelib.domain.mention import Mention
from chalicelib.observability import logger
from chalicelib.ports import Deps

COPIED_PLATFORMS = ("whatsapp",)   # whose media URLs expire: copied at intake
LINK_SECONDS = 300                 # how long a file link given to an agent lives
SEND_LINK_SECONDS = 3600           # how long a platform has to fetch an attached file
MAX_HISTORY_PAGES = 20             # a case's files are looked up through at most this many history pages
NO_BUCKET = "no media bucket is configured (MEDIA_BUCKET): the file is kept as the platform's reference"


# ---- inbound -------------------------------------------------------------------------

def keep_inbound(mention: Mention, deps: Deps) -> Mention:
    """The mention with its expiring files copied to the bucket; never raises for a failed copy."""
    if mention.platform not in COPIED_PLATFORMS or not any(
            item.platform_media_id and not item.stored for item in mention.media):
        return mention
    items = [_copied(mention.id, index, item, deps) if item.platform_media_id and not item.stored else item
             for index, item in enumerate(mention.media)]
    return replace(mention, media=items)


def _copied(mention_id: str, index: int, item: MediaItem, deps: Deps) -> MediaItem:
    if deps.media is None:
        return replace(item, error=NO_BUCKET)
    try:
        data, mime = deps.platforms.graph().media_file(item.platform_media_id, max_bytes=MAX_COPY_BYTES)
        ref = deps.media.put(mention_id, index, data, content_type=item.mime or mime)
    except (PlatformError, ValueError) as err:
        logger.warning("media not copied; the reference is kept", extra={"mention_id": mention_id, "index": index,
                                                                          "reason": str(err)[:300]})
        return replace(item, error=f"not copied: {err}"[:300])
    return replace(item, stored=ref, size=len(data), mime=item.mime or mime, error="")


def forget_files(mention_id: str, deps: Deps) -> None:
    """Erasure: the copies of a mention's files leave the bucket with it (repeatable)."""
    if deps.media is not None:
        deps.media.forget(mention_id)


# ---- shown in the case -----------------------------------------------------------------

def case_media(case_id: str, mentions: List[Mention]) -> List[Dict[str, Any]]:
    """The files of these posts as the case detail lists them (the link gives a short-lived URL)."""
    listed = []
    for mention in mentions:
        for index, item in enumerate(mention.media):
            mid = media_id(mention.id, index)
            listed.append({"media_id": mid, "mention_id": mention.id, "type": item.type, "mime": item.mime or None,
                           "caption": item.caption or None, "size": item.size or None,
                           "filename": item.filename or None, "copied": bool(item.stored),
                           "error": item.error or None, "link": f"/cases/{case_id}/media/{mid}"})
    return [{k: v for k, v in entry.items() if v is not None} for entry in listed]


def find_media(case_id: str, wanted: str, deps: Deps) -> Tuple[Mention, int, MediaItem]:
    """The post, position and file a ``media_id`` names in this case; NotFound otherwise."""
    if not is_media_id(wanted):
        raise NotFound(f"media '{str(wanted)[:40]}' is not an id this API issued (md_ and 16 hex digits)")
    after: Optional[str] = None
    for _page in range(MAX_HISTORY_PAGES):
        history = deps.cases.history(case_id, limit=50, after=after)
        if history is None:
            raise NotFound(f"case '{case_id}' does not exist")
        for mention in history.mentions:
            for index, item in enumerate(mention.media):
                if media_id(mention.id, index) == wanted:
                    return mention, index, item
        after = history.next_position
        if not after:
            break
    raise NotFound(f"case '{case_id}' has no media '{wanted}'")


def media_link(case: Case, wanted: str, deps: Deps) -> Dict[str, Any]:
    """A short-lived URL for one of the case's files: the bucket's copy when there is one (a WhatsApp file
    not copied yet is copied now), else the platform's own URL."""
    mention, index, item = find_media(case.case_id, wanted, deps)
    now = parse_iso(deps.now())
    answer = {"media_id": wanted, "type": item.type, "mime": item.mime or None, "caption": item.caption or None}
    ref = item.stored or _late_copy(mention, index, item, deps)
    if ref and deps.media is not None:
        return _clean({**answer, "source": "bucket", "url": deps.media.url(ref, expires_in=LINK_SECONDS),
                       "expires_at": to_iso(now + timedelta(seconds=LINK_SECONDS))})
    if item.url:
        return _clean({**answer, "source": "platform", "url": item.url, "expires_at": None,
                       "note": f"the {mention.platform} URL as the platform gave it; it may expire"})
    raise Unavailable(f"the file could not be fetched from {mention.platform}: {item.error or NO_BUCKET}; "
                      "try again later (WhatsApp keeps a file for 7 days)")


def _late_copy(mention: Mention, index: int, item: MediaItem, deps: Deps) -> str:
    if deps.media is None or not item.platform_media_id:
        return ""
    try:
        found = deps.media.find(mention.id, index)
        if found:
            return found
        data, mime = deps.platforms.graph().media_file(item.platform_media_id, max_bytes=MAX_COPY_BYTES)
        return deps.media.put(mention.id, index, data, content_type=item.mime or mime)
    except (PlatformError, ValueError) as err:
        logger.warning("media copy on demand failed", extra={"mention_id": mention.id, "reason": str(err)[:300]})
        return ""


def _clean(data: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None or k == "expires_at"}


# ---- outbound: an image attached to a reply ----------------------------------------------

def check_attachment(case: Case, body: Dict[str, Any], mode: str, deps: Deps) -> Optional[Dict[str, str]]:
    """The reply's ``attachment``, checked: 400 for a bad one or where the platform takes none."""
    try:
        attachment = validate_attachment(body.get("attachment"))
    except InvalidMedia as err:
        raise BadRequest(str(err)) from None
    if attachment is None:
        return None
    target = case.reply_target
    refusal = attachment_refusal(target.platform, target.kind, mode)
    if refusal:
        raise BadRequest(f"no image can go with this reply: {refusal}")
    if "media_id" in attachment:
        try:
            _mention, _index, item = find_media(case.case_id, attachment["media_id"], deps)
        except NotFound as err:
            raise BadRequest(f"field 'attachment.media_id': {err}") from None
        if item.type != "image":
            raise BadRequest(f"field 'attachment.media_id' names a {item.type}; only images can be attached")
    return attachment


def send_extras(case_id: str, attachment: Optional[Dict[str, str]], deps: Deps) -> Dict[str, Any]:
    """``{"attachment": {"url", "mime"?}}`` for the sender: a file of the case becomes a URL the platform can
    fetch for an hour. Refused (the reply fails with the reason) when the file is gone."""
    if not attachment:
        return {}
    if "url" in attachment:
        return {"attachment": dict(attachment)}
    try:
        mention, index, item = find_media(case_id, attachment["media_id"], deps)
    except NotFound as err:
        raise Refused(f"the attached file is gone: {err}") from None
    ref = item.stored or _late_copy(mention, index, item, deps)
    if ref and deps.media is not None:
        url = deps.media.url(ref, expires_in=SEND_LINK_SECONDS)
    elif item.url.startswith("https://"):
        url = item.url
    else:
        raise Refused(f"the attached file could not be fetched: {item.error or NO_BUCKET}")
    return {"attachment": {"url": url, **({"mime": item.mime} if item.mime else {})}}
