"""Meta webhooks: the subscription handshake, the signature check, and
deliveries (Page feed, Messenger, Instagram, WhatsApp) turned into Mentions.

Pure and standard library only: the webhook route runs this before it pays
for any AWS client, so a forged or unsigned request costs almost nothing.

One delivery batches many entries and changes. A malformed or uninteresting
item is skipped with a reason and never sinks the rest: Meta retries a
failed delivery for hours, and a retry of the same bad item would fail the
same way.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from chalicelib.domain.mention import UNKNOWN_AUTHOR_ID, Author, Mention

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Feed items a visitor publishes on the Page; likes, reactions and shares are
# not messages to answer.
FEED_POST_ITEMS = ("post", "status", "photo", "video")
FEED_COMMENT_ITEMS = ("comment", "reply")
INSTAGRAM_COMMENT_FIELDS = ("comments", "live_comments")

# Kana only appears in Japanese; kanji alone could be Chinese, so it is not
# enough to call a text Japanese.
_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
# Graph writes offsets without a colon ("+0000").
_COLONLESS_OFFSET = re.compile(r"([+-]\d\d)(\d\d)$")
# Messenger and Instagram messaging timestamps are in milliseconds, the rest in
# seconds; anything this large cannot be seconds (year 5138).
_MILLISECONDS_FROM = 100_000_000_000


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

class _Skip(Exception):
    """An item deliberately left out; the message says why."""


@dataclass
class _Collected:
    mentions: List[Mention] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)

    def run(self, where: str, build: Callable[[], Mention]) -> None:
        try:
            mention = build()
        except _Skip as reason:
            self.skipped.append(f"{where}: {reason}")
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            self.skipped.append(f"{where}: malformed ({type(err).__name__}: {err})")
        else:
            self.mentions.append(mention)

    def note(self, where: str, reason: str) -> None:
        self.skipped.append(f"{where}: {reason}")


def normalize_delivery(payload: Any, *, brand_ids: Iterable[str] = frozenset()
                       ) -> Tuple[List[Mention], List[str]]:
    """Mentions in one webhook delivery, and a reason for every item left out.

    ``brand_ids`` are the brand's other accounts (pages, Instagram accounts)
    whose comments are ours, not customers'. Raises ValueError only when the
    payload is not a Meta delivery at all.
    """
    if not isinstance(payload, dict) or not payload.get("object") or not isinstance(payload.get("entry"), list):
        raise ValueError("not a Meta webhook delivery: expected a JSON object with 'object' and an 'entry' list")
    handle_entry = _ENTRY_HANDLERS.get(payload["object"])
    collected = _Collected()
    if handle_entry is None:
        collected.note("delivery", f"object '{payload['object']}' is not a channel socialcare listens to")
        return collected.mentions, collected.skipped
    brand = frozenset(str(brand_id) for brand_id in brand_ids)
    for index, entry in enumerate(payload["entry"]):
        where = f"entry[{index}]"
        if not isinstance(entry, dict) or not entry.get("id"):
            collected.note(where, "malformed (not an object with an id)")
            continue
        handle_entry(entry, where, brand, collected)
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
    for entry in payload.get("entry") or []:
        for change in (entry.get("changes") if isinstance(entry, dict) else None) or []:
            value = change.get("value") if isinstance(change, dict) else None
            for status in (value.get("statuses") if isinstance(value, dict) else None) or []:
                if isinstance(status, dict) and status.get("status") == "failed":
                    failures.append({
                        "platform": "whatsapp",
                        "message_id": str(status.get("id", "")),
                        "recipient_id": str(status.get("recipient_id", "")),
                        "errors": status.get("errors") or [],
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
        for error in value.get("errors") or []:
            collected.note(change_where, f"WhatsApp reported an error: {error}")
        messages = value.get("messages") or []
        if messages:
            phone_number_id = str((value.get("metadata") or {}).get("phone_number_id") or "")
            names = _whatsapp_names(value.get("contacts") or [])
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
    post_id = str(value["post_id"])
    created_at = iso_utc(value.get("created_time") or entry_time)
    text = str(value.get("message") or "")
    common = dict(platform="facebook", author=author, text=text, created_at=created_at, lang=guess_lang(text),
                  source_id=f"facebook:{page_id}", conversation_id=post_id, raw=change)
    if item in FEED_COMMENT_ITEMS:
        comment_id = str(value["comment_id"])
        parent_id = str(value.get("parent_id") or post_id)
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
    media_id = str(value["media"]["id"])
    parent_id = str(value.get("parent_id") or "")
    text = str(value.get("text") or "")
    return Mention(
        platform="instagram", kind="reply" if parent_id else "comment", platform_id=str(value["id"]),
        author=author, text=text, created_at=iso_utc(value.get("timestamp") or entry_time),
        source_id=source_id, lang=guess_lang(text), conversation_id=media_id,
        in_reply_to_id=parent_id or media_id, raw=change,
    )


def _instagram_mention(change: Dict[str, Any], value: Dict[str, Any], entry_time: Any, source_id: str) -> Mention:
    media_id = str(value["media_id"])
    comment_id = str(value.get("comment_id") or "")
    sender = value.get("from") if isinstance(value.get("from"), dict) else {}
    author = (_author(sender, name_key="name", handle_key="username") if sender.get("id")
              else Author(id=UNKNOWN_AUTHOR_ID))
    text = str(value.get("text") or value.get("caption") or "")
    return Mention(
        platform="instagram", kind="mention", platform_id=comment_id or media_id, author=author, text=text,
        created_at=iso_utc(value.get("timestamp") or entry_time), source_id=source_id, lang=guess_lang(text),
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
    sender_id = str(event["sender"]["id"])
    if sender_id == account_id or sender_id in brand:
        raise _Skip("message sent by the brand itself")
    if message.get("is_deleted"):
        raise _Skip("message was deleted by its sender")
    text = message.get("text")
    if not text:
        kinds = [str(att.get("type")) for att in message.get("attachments") or [] if isinstance(att, dict)]
        raise _Skip("message has no text" + (f" (attachments: {', '.join(kinds)})" if kinds else ""))
    reply_to = message.get("reply_to") if isinstance(message.get("reply_to"), dict) else {}
    return Mention(
        platform=platform, kind="dm", platform_id=str(message["mid"]), author=Author(id=sender_id),
        text=str(text), created_at=iso_utc(event["timestamp"]), source_id=f"{platform}:{account_id}",
        lang=guess_lang(str(text)),
        # One thread per customer: every message from this sender is the same conversation.
        conversation_id=sender_id, in_reply_to_id=str(reply_to.get("mid") or ""), raw=event,
    )


# ---- WhatsApp ----------------------------------------------------------------------

def _whatsapp_names(contacts: List[Any]) -> Dict[str, str]:
    return {str(contact.get("wa_id")): str((contact.get("profile") or {}).get("name") or "")
            for contact in contacts if isinstance(contact, dict) and contact.get("wa_id")}


def _whatsapp_message(message: Any, phone_number_id: str, names: Dict[str, str], brand: frozenset) -> Mention:
    if not isinstance(message, dict):
        raise TypeError("message is not an object")
    if not phone_number_id:
        # Replies go to POST /{phone-number-id}/messages; without it the message cannot be answered.
        raise ValueError("value.metadata.phone_number_id is missing")
    if message.get("type") != "text":
        raise _Skip(f"'{message.get('type')}' message, not text")
    wa_id = str(message["from"])
    if wa_id in brand:
        raise _Skip("message sent by the brand itself")
    text = str(message["text"]["body"])
    context = message.get("context") if isinstance(message.get("context"), dict) else {}
    return Mention(
        platform="whatsapp", kind="dm", platform_id=str(message["id"]),
        author=Author(id=wa_id, name=names.get(wa_id, "")), text=text, created_at=iso_utc(message["timestamp"]),
        source_id=f"whatsapp:{phone_number_id}", lang=guess_lang(text), conversation_id=wa_id,
        in_reply_to_id=str(context.get("id") or ""), raw=message,
    )


# ---- shared helpers (also used by the Graph client, chalicelib.adapters.platforms.meta) --------------------------

def iso_utc(value: Any) -> str:
    """Any Meta timestamp (Unix seconds or ms, "+0000" ISO strings) as "2026-11-23T09:00:00Z"."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        seconds = float(value)
        if seconds >= _MILLISECONDS_FROM:
            seconds /= 1000
        moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    else:
        text = _COLONLESS_OFFSET.sub(r"\1:\2", str(value).strip().replace("Z", "+00:00"))
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    return Author(id=str(sender["id"]), name=str(sender.get(name_key) or ""),
                  handle=str(sender.get(handle_key) or "") if handle_key else "")


def _list(container: Dict[str, Any], key: str) -> List[Any]:
    items = container.get(key)
    return items if isinstance(items, list) else []
