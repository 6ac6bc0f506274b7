"""Meta webhooks: the subscription handshake, the signature check, and
deliveries (Page feed, Messenger, Instagram, WhatsApp) turned into Mentions.

Pure and standard library only: the webhook route runs this before it pays
for any AWS client, so a forged or unsigned request costs almost nothing.

One delivery batches many entries and changes. A malformed, invalid,
oversized or uninteresting item is skipped with a reason and never sinks the
rest: Meta retries a failed delivery for hours, and a retry of the same bad
item would fail the same way. Every field read is type-checked (no ``str()``
of a number where text belongs) and every Mention built passes the same
checks as a queued one (``Mention.validate``), so what this returns can be
queued and triaged.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from chalicelib.domain.media import MediaItem, bounded, captions
from chalicelib.domain.mention import MAX_REPLY_PAYLOAD_CHARS, UNKNOWN_AUTHOR_ID, Author, InvalidMention, Mention

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Feed items a visitor publishes on the Page; likes, reactions and shares are
# not messages to answer.
FEED_POST_ITEMS = ("post", "status", "photo", "video")
FEED_COMMENT_ITEMS = ("comment", "reply")
INSTAGRAM_COMMENT_FIELDS = ("comments", "live_comments")
# WhatsApp messages read as text: typed text, a tapped reply button or list row, a tapped template button.
WHATSAPP_MESSAGE_TYPES = ("text", "interactive", "button")
# WhatsApp media messages: the file is named by a media id (GET /{media-id} gives a URL for minutes).
WHATSAPP_MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "document": "file",
                        "sticker": "sticker"}
# Messenger and Instagram attachments that are files (shares, reels, stories and fallbacks are links, not media).
MESSAGING_MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "file": "file"}

# Kana only appears in Japanese; kanji alone could be Chinese, so it is not
# enough to call a text Japanese.
_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
# Graph writes offsets without a colon ("+0000").
_COLONLESS_OFFSET = re.compile(r"([+-]\d\d)(\d\d)$")
# Messenger and Instagram messaging timestamps are in milliseconds, the rest in
# seconds; anything this large cannot be seconds (year 5138).
_MILLISECONDS_FROM = 100_000_000_000
_MAX_TIMESTAMP_CHARS = 64
# Meta documents deliveries of up to 3 MB (WhatsApp Cloud API, "Webhooks");
# anything bigger is not Meta's. Its payloads nest about 10 levels deep.
MAX_DELIVERY_BYTES = 3 * 1024 * 1024
MAX_DELIVERY_DEPTH = 32
# A skip reason names the item and why, never the item's content at length.
_MAX_REASON_CHARS = 300


# ---- handshake and signature ----------------------------------------------------

def answer_handshake(params: Mapping[str, str], verify_token: str) -> Optional[str]:
    """The challenge to echo back when Meta subscribes with our verify token, else None (answer 403)."""
    if not verify_token or params.get("hub.mode") != "subscribe":
        return None
    offered = str(params.get("hub.verify_token") or "")
    if not hmac.compare_digest(offered.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return str(params.get("hub.challenge") or "") or None


def signature_is_valid(raw_body: bytes, header_value: Optional[str], app_secret: str) -> bool:
    """Check ``X-Hub-Signature-256: sha256=<hex>`` against the body exactly as received.

    Meta signs its own serialization (non-ASCII and "/" escaped); parsing and
    re-encoding the JSON changes the bytes, so only the raw body verifies.
    """
    if not app_secret or not header_value:
        return False
    scheme, _, offered = header_value.strip().partition("=")
    if scheme.strip().lower() != "sha256" or not offered:
        return False
    if isinstance(raw_body, str):  # a framework that decoded the body for us; Meta sends UTF-8
        raw_body = raw_body.encode("utf-8")
    expected = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), offered.strip().lower().encode("utf-8"))


# ---- deliveries -> Mentions ------------------------------------------------------

def parse_delivery(raw_body: Union[bytes, str]) -> Dict[str, Any]:
    """The JSON object a signed delivery carries; ValueError (answer 400) when it is not one.

    Refused: more than MAX_DELIVERY_BYTES, invalid UTF-8 or JSON (NaN and
    Infinity included), nesting deeper than MAX_DELIVERY_DEPTH, anything but
    an object at the top.
    """
    if isinstance(raw_body, str):
        raw_body = raw_body.encode("utf-8", "surrogatepass")
    if len(raw_body) > MAX_DELIVERY_BYTES:
        raise ValueError(f"body is {len(raw_body)} bytes; a Meta delivery is at most {MAX_DELIVERY_BYTES}")
    try:
        payload = json.loads(raw_body, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"JSON nests deeper than {MAX_DELIVERY_DEPTH} levels") from None
    except ValueError as err:  # includes UnicodeDecodeError
        raise ValueError(f"body is not valid JSON: {err}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(payload)}")
    if _nests_deeper_than(payload, MAX_DELIVERY_DEPTH):
        raise ValueError(f"JSON nests deeper than {MAX_DELIVERY_DEPTH} levels")
    return payload


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _nests_deeper_than(value: Any, limit: int) -> bool:
    stack: List[Tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class _Skip(Exception):
    """An item deliberately left out; the message says why."""


@dataclass
class _Collected:
    mentions: List[Mention] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    now: Any = None  # validation's "now" (None: the current time)

    def run(self, where: str, build: Callable[[], Mention]) -> None:
        try:
            mention = build().validate(self.now)
        except _Skip as reason:
            self.note(where, str(reason))
        except InvalidMention as err:
            self.note(where, f"invalid ({err})")
        except Exception as err:  # noqa: BLE001 - any bad content skips its item, never the delivery
            self.malformed(where, err)
        else:
            self.mentions.append(mention)

    def malformed(self, where: str, err: BaseException) -> None:
        self.note(where, f"malformed ({type(err).__name__}: {err})")

    def note(self, where: str, reason: str) -> None:
        text = f"{where}: {reason}"
        self.skipped.append(text if len(text) <= _MAX_REASON_CHARS else text[:_MAX_REASON_CHARS - 1] + "…")


def normalize_delivery(payload: Any, *, brand_ids: Iterable[str] = frozenset(), now: Any = None
                       ) -> Tuple[List[Mention], List[str]]:
    """Mentions in one webhook delivery, and a reason for every item left out.

    ``brand_ids`` are the brand's other accounts (pages, Instagram accounts)
    whose comments are ours, not customers'. Every mention returned passes
    ``Mention.validate(now)`` (``now``: a datetime or ISO string, None for the
    current time). Raises ValueError only when the payload is not a Meta
    delivery at all.
    """
    if (not isinstance(payload, dict) or not isinstance(payload.get("object"), str) or not payload["object"]
            or not isinstance(payload.get("entry"), list)):
        raise ValueError("not a Meta webhook delivery: expected a JSON object with 'object' and an 'entry' list")
    handle_entry = _ENTRY_HANDLERS.get(payload["object"])
    collected = _Collected(now=now)
    if handle_entry is None:
        collected.note("delivery", f"object '{payload['object']}' is not a channel socialcare listens to")
        return collected.mentions, collected.skipped
    brand = frozenset(str(brand_id) for brand_id in brand_ids)
    for index, entry in enumerate(payload["entry"]):
        where = f"entry[{index}]"
        if not isinstance(entry, dict) or not _is_id(entry.get("id")):
            collected.note(where, "malformed (not an object with an id)")
            continue
        try:
            handle_entry(entry, where, brand, collected)
        except Exception as err:  # noqa: BLE001 - a bad entry is skipped; the others go on
            collected.malformed(where, err)
    return collected.mentions, collected.skipped


def failed_sends(payload: Any) -> List[Dict[str, Any]]:
    """WhatsApp messages we sent that Meta later reported as failed.

    The Cloud API accepts a send and reports some refusals (131047: the
    24-hour window had closed) only afterwards, as a "failed" status, so this
    is how a reply learns it never arrived.
    """
    failures: List[Dict[str, Any]] = []
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return failures
    for entry in _list(payload, "entry"):
        for change in _list(entry, "changes"):
            value = change.get("value") if isinstance(change, dict) else None
            for status in _list(value, "statuses"):
                if isinstance(status, dict) and status.get("status") == "failed" and _is_id(status.get("id")):
                    failures.append({
                        "platform": "whatsapp",
                        "message_id": str(status["id"]),
                        "recipient_id": str(status["recipient_id"]) if _is_id(status.get("recipient_id")) else "",
                        "errors": [error for error in _list(status, "errors") if isinstance(error, dict)],
                    })
    return failures


# ---- per object ------------------------------------------------------------------

def _page_entry(entry: Dict[str, Any], where: str, brand: frozenset, collected: _Collected) -> None:
    page_id = str(entry["id"])
    for index, change in enumerate(_list(entry, "changes")):
        collected.run(f"{where}.changes[{index}]",
                      lambda change=change: _feed_change(change, page_id, entry.get("time"), brand))
    _messaging_events(entry, where, "messenger", brand, collected)


def _instagram_entry(entry: Dict[str, Any], where: str, brand: frozenset, collected: _Collected) -> None:
    ig_user_id = str(entry["id"])
    for index, change in enumerate(_list(entry, "changes")):
        collected.run(f"{where}.changes[{index}]",
                      lambda change=change: _instagram_change(change, ig_user_id, entry.get("time"), brand))
    _messaging_events(entry, where, "instagram", brand, collected)


def _whatsapp_entry(entry: Dict[str, Any], where: str, brand: frozenset, collected: _Collected) -> None:
    for index, change in enumerate(_list(entry, "changes")):
        change_where = f"{where}.changes[{index}]"
        if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
            collected.note(change_where, "malformed (no value object)")
            continue
        if change.get("field") != "messages":
            collected.note(change_where, f"field '{change.get('field')}' is not handled")
            continue
        value = change["value"]
        # Delivery receipts (value.statuses) are not customer messages; see failed_sends.
        for error in _list(value, "errors"):
            collected.note(change_where, f"WhatsApp reported an error: {error}")
        if value.get("messages") is not None and not isinstance(value["messages"], list):
            collected.note(change_where, "malformed (value.messages is not a list)")
            continue
        messages = _list(value, "messages")
        if messages:
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            phone_number_id = str(metadata["phone_number_id"]) if _is_id(metadata.get("phone_number_id")) else ""
            names = _whatsapp_names(_list(value, "contacts"))
            for position, message in enumerate(messages):
                collected.run(f"{change_where}.messages[{position}]",
                              lambda message=message, phone_number_id=phone_number_id, names=names: _whatsapp_message(
                                  message, phone_number_id, names, brand))


_ENTRY_HANDLERS: Dict[str, Callable[[Dict[str, Any], str, frozenset, _Collected], None]] = {
    "page": _page_entry,
    "instagram": _instagram_entry,
    "whatsapp_business_account": _whatsapp_entry,
}


# ---- Facebook Page feed ----------------------------------------------------------

def _feed_change(change: Any, page_id: str, entry_time: Any, brand: frozenset) -> Mention:
    value = _value(change, expected_fields=("feed",))
    item, verb = value.get("item"), value.get("verb")
    if verb == "remove":
        raise _Skip(f"{item} was removed")
    if verb not in ("add", "edited"):
        raise _Skip(f"feed verb '{verb}' is not a new message")
    if item not in FEED_COMMENT_ITEMS + FEED_POST_ITEMS:
        raise _Skip(f"feed item '{item}' is not a customer message")
    author = _author(value.get("from"), name_key="name")
    if author.id == page_id or author.id in brand:
        raise _Skip(f"{item} by the brand itself")
    post_id = _id(value, "post_id")
    created_at = _time(value.get("created_time") or entry_time, "created_time")
    text = _text(value, "message")
    common = dict(platform="facebook", author=author, text=text, created_at=created_at, lang=guess_lang(text),
                  source_id=f"facebook:{page_id}", conversation_id=post_id, media=feed_media(value), raw=change)
    if item in FEED_COMMENT_ITEMS:
        comment_id = _id(value, "comment_id")
        parent_id = _id(value, "parent_id", required=False) or post_id
        return Mention(kind="reply" if parent_id != post_id else "comment", platform_id=comment_id,
                       in_reply_to_id=parent_id, permalink=facebook_permalink(post_id, comment_id), **common)
    return Mention(kind="mention", platform_id=post_id, permalink=facebook_permalink(post_id), **common)


# ---- Instagram comments and mentions ---------------------------------------------

def _instagram_change(change: Any, ig_user_id: str, entry_time: Any, brand: frozenset) -> Mention:
    value = _value(change, expected_fields=INSTAGRAM_COMMENT_FIELDS + ("mentions",))
    source_id = f"instagram:{ig_user_id}"
    if change["field"] == "mentions":
        return _instagram_mention(change, value, entry_time, source_id)
    author = _author(value.get("from"), name_key="name", handle_key="username")
    if author.id == ig_user_id or author.id in brand:
        raise _Skip("comment by the brand itself")
    if not isinstance(value.get("media"), dict):
        raise ValueError("'media' is missing or not an object")
    media_id = _id(value["media"], "id", "media.id")
    parent_id = _id(value, "parent_id", required=False)
    text = _text(value, "text")
    return Mention(
        platform="instagram", kind="reply" if parent_id else "comment", platform_id=_id(value, "id"),
        author=author, text=text, created_at=_time(value.get("timestamp") or entry_time, "timestamp"),
        source_id=source_id, lang=guess_lang(text), conversation_id=media_id,
        in_reply_to_id=parent_id or media_id, raw=change,
    )


def _instagram_mention(change: Dict[str, Any], value: Dict[str, Any], entry_time: Any, source_id: str) -> Mention:
    media_id = _id(value, "media_id")
    comment_id = _id(value, "comment_id", required=False)
    sender = value.get("from") if isinstance(value.get("from"), dict) else {}
    author = (_author(sender, name_key="name", handle_key="username") if sender.get("id")
              else Author(id=UNKNOWN_AUTHOR_ID))
    text = _text(value, "text") or _text(value, "caption")
    return Mention(
        platform="instagram", kind="mention", platform_id=comment_id or media_id, author=author, text=text,
        created_at=_time(value.get("timestamp") or entry_time, "timestamp"), source_id=source_id,
        lang=guess_lang(text),
        conversation_id=media_id, in_reply_to_id=media_id if comment_id else "", raw=change,
    )


# ---- Messenger and Instagram direct messages -------------------------------------

def _messaging_events(entry: Dict[str, Any], where: str, platform: str, brand: frozenset,
                      collected: _Collected) -> None:
    account_id = str(entry["id"])
    for index, event in enumerate(_list(entry, "messaging")):
        collected.run(f"{where}.messaging[{index}]",
                      lambda event=event: _direct_message(event, platform, account_id, brand))


def _direct_message(event: Any, platform: str, account_id: str, brand: frozenset) -> Mention:
    if not isinstance(event, dict):
        raise TypeError("messaging event is not an object")
    message = event.get("message")
    if not isinstance(message, dict):
        kinds = [key for key in ("delivery", "read", "postback", "reaction", "referral", "optin") if key in event]
        raise _Skip(f"{kinds[0] if kinds else 'non-message'} event, not a message")
    if message.get("is_echo"):
        raise _Skip("echo of a message the business sent")
    if not isinstance(event.get("sender"), dict):
        raise ValueError("'sender' is missing or not an object")
    sender_id = _id(event["sender"], "id", "sender.id")
    if sender_id == account_id or sender_id in brand:
        raise _Skip("message sent by the brand itself")
    if message.get("is_deleted"):
        raise _Skip("message was deleted by its sender")
    text = _text(message, "text", "message.text")
    media = messaging_media(message)
    if not text and not media:
        kinds = [str(att.get("type")) for att in _list(message, "attachments") if isinstance(att, dict)]
        raise _Skip("message has no text" + (f" (attachments: {', '.join(kinds)})" if kinds else ""))
    reply_to = message.get("reply_to") if isinstance(message.get("reply_to"), dict) else {}
    # A tapped quick reply: the text is its title, the payload says which one it was.
    quick_reply: Dict[str, Any] = message["quick_reply"] if isinstance(message.get("quick_reply"), dict) else {}
    return Mention(
        platform=platform, kind="dm", platform_id=_id(message, "mid", "message.mid"), author=Author(id=sender_id),
        text=text, created_at=_time(event.get("timestamp"), "timestamp"), source_id=f"{platform}:{account_id}",
        lang=guess_lang(text),
        # One thread per customer: every message from this sender is the same conversation.
        conversation_id=sender_id, in_reply_to_id=_id(reply_to, "mid", "reply_to.mid", required=False),
        reply_payload=_payload(_text(quick_reply, "payload", "message.quick_reply.payload")), media=media,
        raw=event,
    )


# ---- WhatsApp ----------------------------------------------------------------------

def _whatsapp_names(contacts: List[Any]) -> Dict[str, str]:
    """wa_id -> profile name; a malformed contact only costs its message the name."""
    names: Dict[str, str] = {}
    for contact in contacts:
        if isinstance(contact, dict) and _is_id(contact.get("wa_id")):
            profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
            names[str(contact["wa_id"])] = _display(profile.get("name"))
    return names


def _whatsapp_message(message: Any, phone_number_id: str, names: Dict[str, str], brand: frozenset) -> Mention:
    if not isinstance(message, dict):
        raise TypeError("message is not an object")
    if not phone_number_id:
        # Replies go to POST /{phone-number-id}/messages; without it the message cannot be answered.
        raise ValueError("value.metadata.phone_number_id is missing")
    kind = message.get("type")
    if kind not in WHATSAPP_MESSAGE_TYPES and kind not in WHATSAPP_MEDIA_TYPES:
        raise _Skip(f"'{kind}' message, neither text nor media")
    wa_id = _id(message, "from")
    if wa_id in brand:
        raise _Skip("message sent by the brand itself")
    media: List[MediaItem] = []
    if kind in WHATSAPP_MEDIA_TYPES:
        media = whatsapp_media(message, str(kind))
        text, payload = captions(media), ""
    else:
        text, payload = _whatsapp_text(message, str(kind))
        if not text:
            raise _Skip("message has no text")
    context = message.get("context") if isinstance(message.get("context"), dict) else {}
    return Mention(
        platform="whatsapp", kind="dm", platform_id=_id(message, "id"),
        author=Author(id=wa_id, name=names.get(wa_id, "")), text=text,
        created_at=_time(message.get("timestamp"), "timestamp"),
        source_id=f"whatsapp:{phone_number_id}", lang=guess_lang(text), conversation_id=wa_id,
        in_reply_to_id=_id(context, "id", "context.id", required=False), reply_payload=_payload(payload),
        media=media, raw=message,
    )


def whatsapp_media(message: Dict[str, Any], kind: str) -> List[MediaItem]:
    """The file of a WhatsApp media message: ``{"id", "mime_type", "sha256", "caption"?, "filename"?}``
    (an audio recorded in the app has ``voice: true``)."""
    body = message.get(kind)
    if not isinstance(body, dict):
        raise ValueError(f"'{kind}' is missing or not an object")
    media_type = WHATSAPP_MEDIA_TYPES[kind]
    if kind == "audio" and body.get("voice") is True:
        media_type = "voice"
    item = MediaItem(type=media_type, platform_media_id=_id(body, "id", f"{kind}.id"),
                     mime=_display(body.get("mime_type")), caption=_display(body.get("caption")),
                     filename=_display(body.get("filename")))
    return bounded([item])


def messaging_media(message: Dict[str, Any]) -> List[MediaItem]:
    """Messenger and Instagram ``message.attachments[]``: ``{"type", "payload": {"url", ...}}``; a sticker
    is an image with ``payload.sticker_id``. Links (shares, reels, stories, fallbacks) are not kept."""
    items: List[MediaItem] = []
    for attachment in _list(message, "attachments"):
        if not isinstance(attachment, dict) or attachment.get("type") not in MESSAGING_MEDIA_TYPES:
            continue
        payload = attachment.get("payload") if isinstance(attachment.get("payload"), dict) else {}
        url = payload.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            continue
        kind = MESSAGING_MEDIA_TYPES[str(attachment["type"])]
        if kind == "image" and payload.get("sticker_id") is not None:
            kind = "sticker"
        items.append(MediaItem(type=kind, url=url, filename=_display(payload.get("name"))))
    return bounded(items)


def feed_media(value: Dict[str, Any]) -> List[MediaItem]:
    """A Page feed comment or post with a photo or video: ``value.photo`` / ``value.video`` (URLs)."""
    items = [MediaItem(type=kind, url=value[key]) for key, kind in (("photo", "image"), ("video", "video"))
             if isinstance(value.get(key), str) and value[key].startswith(("https://", "http://"))]
    return bounded(items)


def _whatsapp_text(message: Dict[str, Any], kind: str) -> Tuple[str, str]:
    """(text, payload of the tapped button) of a text message, a tapped reply button or list row
    (``interactive``), or a tapped template quick-reply button (``button``): a tap's text is its title."""
    if kind == "text":
        if not isinstance(message.get("text"), dict):
            raise ValueError("'text' is missing or not an object")
        return _text(message["text"], "body", "text.body"), ""
    if kind == "button":
        if not isinstance(message.get("button"), dict):
            raise ValueError("'button' is missing or not an object")
        return _text(message["button"], "text", "button.text"), _text(message["button"], "payload", "button.payload")
    interactive = message.get("interactive")
    if not isinstance(interactive, dict):
        raise ValueError("'interactive' is missing or not an object")
    answer_type = interactive.get("type")
    if answer_type not in ("button_reply", "list_reply") or not isinstance(interactive.get(answer_type), dict):
        raise _Skip(f"interactive '{answer_type}' message, not a tapped button")
    tapped = interactive[answer_type]
    return (_text(tapped, "title", f"interactive.{answer_type}.title"),
            _id(tapped, "id", f"interactive.{answer_type}.id"))


# ---- shared helpers (also used by the Graph client, chalicelib.adapters.platforms.meta) --------------------------

def iso_utc(value: Any) -> str:
    """Any Meta timestamp (Unix seconds or ms, "+0000" ISO strings) as "2026-11-23T09:00:00Z".

    ValueError for anything else: other types, NaN, times before year 1000
    or after 9999 (whether a time is plausible is ``Mention.from_dict``'s call).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or value == "":
        raise ValueError(f"not a timestamp: {_short(value)}")
    if isinstance(value, str) and len(value) > _MAX_TIMESTAMP_CHARS:
        raise ValueError(f"not a timestamp: a string of {len(value)} characters")
    try:
        if isinstance(value, (int, float)) or value.strip().isdecimal():
            seconds = float(value)
            if not math.isfinite(seconds):
                raise ValueError(f"not a timestamp: {value!r}")
            if seconds >= _MILLISECONDS_FROM:
                seconds /= 1000
            moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
        else:
            text = _COLONLESS_OFFSET.sub(r"\1:\2", value.strip().replace("Z", "+00:00"))
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"not a timestamp: {_short(value)}") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
        moment = moment.astimezone(timezone.utc)
    except (OverflowError, OSError) as err:  # out of the platform's or datetime's range
        raise ValueError(f"not a timestamp: {_short(value)} ({err})") from None
    if moment.year < 1000:
        raise ValueError(f"not a timestamp: {_short(value)} (year {moment.year})")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_seconds(value: Any) -> int:
    """The inverse of iso_utc: Unix seconds for any Meta timestamp or ISO string."""
    return int(datetime.fromisoformat(iso_utc(value).replace("Z", "+00:00")).timestamp())


def facebook_permalink(post_id: str, comment_id: str = "") -> str:
    """Page post ids are "<page id>_<post id>"; comment ids "<post id>_<comment id>"."""
    page_part, _, post_part = post_id.partition("_")
    if not post_part:
        return f"https://www.facebook.com/{post_id}"
    link = f"https://www.facebook.com/{page_part}/posts/{post_part}"
    if comment_id:
        link += f"?comment_id={comment_id.rpartition('_')[2]}"
    return link


def guess_lang(text: str) -> str:
    """"ja" when the text has kana; Meta sends no language, and Japanese routing needs one."""
    return "ja" if _KANA.search(text or "") else ""


def _value(change: Any, *, expected_fields: Tuple[str, ...]) -> Dict[str, Any]:
    if not isinstance(change, dict):
        raise TypeError("change is not an object")
    if change.get("field") not in expected_fields:
        raise _Skip(f"field '{change.get('field')}' is not handled")
    value = change.get("value")
    if not isinstance(value, dict):
        raise TypeError("change.value is not an object")
    return value


def _author(sender: Any, *, name_key: str, handle_key: str = "") -> Author:
    if not isinstance(sender, dict) or not sender.get("id"):
        raise ValueError("'from.id' is missing")
    return Author(id=_id(sender, "id", "from.id"), name=_display(sender.get(name_key)),
                  handle=_display(sender.get(handle_key)) if handle_key else "")


def _list(container: Any, key: str) -> List[Any]:
    items = container.get(key) if isinstance(container, dict) else None
    return items if isinstance(items, list) else []


def _is_id(value: Any) -> bool:
    """Graph ids are strings; a few payloads send them as JSON numbers."""
    return (isinstance(value, str) and value != "") or (isinstance(value, int) and not isinstance(value, bool))


def _id(container: Any, key: str, label: str = "", *, required: bool = True) -> str:
    """An id field as a string: TypeError for another type, ValueError when required and missing."""
    value = container.get(key) if isinstance(container, dict) else None
    if value is None or value == "":
        if required:
            raise ValueError(f"'{label or key}' is missing")
        return ""
    if not _is_id(value):
        raise TypeError(f"'{label or key}' must be a string id, not {type(value).__name__}")
    return str(value)


def _text(container: Dict[str, Any], key: str, label: str = "") -> str:
    """A text field: "" when absent or null, TypeError for anything but a string (a number is not text)."""
    value = container.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"'{label or key}' must be a string, not {type(value).__name__}")
    return value


def _payload(value: str) -> str:
    """A tapped button's payload; one longer than any platform allows is not ours, and is dropped
    rather than losing the customer's message with it."""
    return value if len(value) <= MAX_REPLY_PAYLOAD_CHARS else ""


def _display(value: Any) -> str:
    """A display name or handle; one of another type is left out rather than losing the message."""
    return value if isinstance(value, str) else ""


def _time(value: Any, label: str) -> str:
    try:
        return iso_utc(value)
    except ValueError as err:
        raise ValueError(f"'{label}' is {err}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
