"""Graph API adapter for Facebook Pages, Messenger, Instagram and WhatsApp.

Reads (polling) back up the webhooks: a delivery Meta gave up on, or a
channel whose webhook is not set up yet, is still fetched. That covers the
Page feed, Instagram comments and tags, and Messenger and Instagram direct
messages (the Conversations API). WhatsApp cannot be backed up this way: the
Cloud API has no endpoint that lists received messages, so WhatsApp arrives
by webhook only. Writes answer comments publicly or privately and send
direct messages.

One client serves several sources polled at once from threads: the usage a
call reports is kept per thread (``last_usage``), so one source's page is
never paced by another's call.

Everything Graph-shaped stops here: callers get platform-neutral Mentions,
a ``Usage`` to pace the next call, and one of four errors whose type says
what to do next (wait, reconnect the account, retry later, or give up on
this one request).
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from chalicelib.adapters.platforms.http import HttpClient, HttpError, Response, TransportError
from chalicelib.adapters.platforms.meta_webhooks import epoch_seconds, facebook_permalink, guess_lang, iso_utc
from chalicelib.domain.errors import AmbiguousOutcome, AuthFailed, PlatformError, RateLimited, Refused, TransientFailure
from chalicelib.domain.media import MediaItem, bounded
from chalicelib.domain.mention import Author, Mention

# A comment's photo or video (``attachment``) and a message's files (``attachments``): polling keeps
# them as the webhooks do (meta_webhooks), whichever copy of the post arrives first.
COMMENT_FIELDS = "id,message,from,created_time,parent{id},permalink_url,attachment{type,media,url}"
# filter(stream) returns replies too (with their parent), newest first, so a
# post's comment pages can stop at the first comment older than the cursor.
FEED_FIELDS = ("id,message,from,created_time,permalink_url,"
               f"comments.filter(stream).order(reverse_chronological).limit(100){{{COMMENT_FIELDS}}}")
IG_COMMENT_FIELDS = "id,text,username,timestamp,from"
IG_MEDIA_FIELDS = ("id,caption,permalink,timestamp,username,"
                   f"comments.limit(50){{{IG_COMMENT_FIELDS},replies{{{IG_COMMENT_FIELDS}}}}}")
IG_TAG_FIELDS = "id,caption,username,timestamp,permalink"
# Conversations API (Messenger and Instagram direct messages): a Page's
# conversations, most recently updated first (the edge has no time-based
# paging), each with its newest messages, newest first. Instagram gives the
# details of a conversation's 20 newest messages only.
MESSAGE_FIELDS = "id,message,from,created_time,attachments{mime_type,name,size,image_data{url},video_data{url},file_url}"
CONVERSATION_MESSAGES = 20
CONVERSATION_FIELDS = f"id,updated_time,messages.limit({CONVERSATION_MESSAGES}){{{MESSAGE_FIELDS}}}"
CONVERSATION_PLATFORMS = ("messenger", "instagram")
MAX_MESSAGE_PAGES = 5
# Direct messages older than this are not polled: Meta retries a failed
# webhook delivery for hours, for 7 days at the very most, and an answer later
# than 7 days after the customer's message is refused even with the
# HUMAN_AGENT tag. It also keeps a new source from opening cases for its whole
# message history on its first run.
DM_LOOKBACK_SECONDS = 7 * 24 * 3600
# User Profile API: a DM webhook names its sender only by a page- or Instagram-scoped id.
MESSENGER_PROFILE_FIELDS = "first_name,last_name"
INSTAGRAM_PROFILE_FIELDS = "name,username,is_verified_user,follower_count"
PROFILE_CACHE_LIMIT = 10_000

GRAPH_MAX_LIMIT = 100  # Graph refuses limit > 100 on feed and media edges
# Per attempt of a read. Reads are retried twice (HttpClient), so a Graph that
# stops answering costs at most 3 x 5 s plus about 3 s of backoff: inside a
# polled source's time budget (FETCH_SOURCE_BUDGET_SECONDS, 20 s by default).
# Writes keep the longer default: a timed-out write has an unknown outcome.
READ_TIMEOUT_SECONDS = 5.0
MAX_TEXT = {"facebook": 8000, "instagram": 2200, "messenger": 2000, "whatsapp": 4096}
# Instagram direct messages are limited in UTF-8 bytes, not characters:
# about 330 characters of Japanese.
MAX_INSTAGRAM_DM_BYTES = 1000
# Buttons a customer taps (Send API quick replies; WhatsApp Cloud API reply buttons and template buttons).
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
QUICK_REPLY_PAYLOAD_MAX = 1000
WHATSAPP_BUTTONS_MAX = 3
WHATSAPP_BUTTON_TITLE_MAX = 20
WHATSAPP_BUTTON_ID_MAX = 256
WHATSAPP_BUTTON_BODY_MAX = 1024
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_TEMPLATE_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")
_TEMPLATE_VARIABLE = re.compile(r"\{\{\s*(\d{1,2})\s*\}\}")
WHATSAPP_CAPTION_MAX = 1024
DOWNLOAD_TIMEOUT_SECONDS = 10.0

# A new comment on a post older than this is left to the webhook: polling
# every old post each minute would spend the rate limit on nothing.
COMMENT_LOOKBACK_SECONDS = 7 * 24 * 3600
MAX_COMMENT_PAGES = 5

THROTTLE_CODES = frozenset({4, 17, 32, 613, 80007, 130429, 131048, 131056} | set(range(80000, 80015)))
TOKEN_CODES = frozenset({102, 190})
TRANSIENT_CODES = frozenset({1, 2})
WINDOW_SUBCODES = frozenset({2018278, 2534022})
WHATSAPP_REENGAGEMENT_CODE = 131047
ALREADY_REPLIED_CODE = 10900  # a comment gets one private reply
# Graph gives no reset time for app-level throttling (a rolling hour);
# five minutes lets usage drain without stalling a channel for long.
DEFAULT_THROTTLE_SECONDS = 300


@dataclass
class Usage:
    """Rate-limit usage from Graph's headers, in percent of the allowance."""
    app_pct: float = 0.0
    buc_pct: float = 0.0
    regain_seconds: int = 0

    def near_limit(self, threshold: float = 90) -> bool:
        return max(self.app_pct, self.buc_pct) >= threshold

    @classmethod
    def from_headers(cls, headers: Optional[Mapping[str, str]]) -> "Usage":
        lowered = {str(name).lower(): value for name, value in (headers or {}).items()}
        app = _json_object(lowered.get("x-app-usage"))
        buc_entries = [entry for entries in _json_object(lowered.get("x-business-use-case-usage")).values()
                       if isinstance(entries, list) for entry in entries if isinstance(entry, dict)]
        # X-Page-Usage has X-App-Usage's shape but counts one Page: it belongs with the per-object usage.
        page = _json_object(lowered.get("x-page-usage"))
        if page:
            buc_entries.append(page)
        regain_minutes = max((_number(entry.get("estimated_time_to_regain_access")) for entry in buc_entries),
                             default=0.0)
        return cls(
            app_pct=_usage_pct(app),
            buc_pct=max((_usage_pct(entry) for entry in buc_entries), default=0.0),
            regain_seconds=int(regain_minutes * 60),
        )


@dataclass
class Page:
    mentions: List[Mention]
    next_after: Optional[str]
    newest_time: Optional[str]  # ISO 8601 UTC of the newest item seen; pass back as ``since``
    usage: Usage
    skipped: List[str] = field(default_factory=list)


class MetaError(PlatformError):
    platform = "meta"

    def __init__(self, message: str, *, status: Optional[int] = None, code: Optional[int] = None,
                 subcode: Optional[int] = None, fbtrace_id: str = "", usage: Optional[Usage] = None,
                 body: Any = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.usage = usage or Usage()
        self.body = body


class MetaRateLimited(MetaError, RateLimited):
    """Stop calling Graph for this account for ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class MetaAuthError(MetaError, AuthFailed):
    """The token is invalid, expired or lacks a permission: someone must reconnect the account."""


class MetaTransientError(MetaError, TransientFailure):
    """Graph is failing or unreachable (after retries); try again later."""


class MetaRequestError(MetaError, Refused):
    """Graph refused this one request (bad parameter, reply window closed, already answered...)."""

    def __init__(self, message: str, *, window_closed: bool = False, **kwargs: Any):
        super().__init__(message, **kwargs)
        # A closed window is not fixed by retrying: the customer must write
        # again, or the reply must go as a template / HUMAN_AGENT message.
        self.window_closed = window_closed


class MetaAmbiguous(MetaError, AmbiguousOutcome):
    """A comment or message whose outcome is unknown: Graph may have it. Look before writing again."""


class GraphClient:
    """One Meta access token's Graph API access (a Page token also covers its Instagram account).

    ``http`` lets tests pass a client with their own retry/sleep settings; it
    must point at ``base_url`` (which includes the version, e.g. ".../v21.0").
    """

    def __init__(self, base_url: str, access_token: str, http: Optional[HttpClient] = None):
        self.base_url = base_url
        self._token = access_token
        self._http = http if http is not None else HttpClient(base_url=base_url)
        self._read_http = http if http is not None else HttpClient(base_url=base_url, timeout=READ_TIMEOUT_SECONDS)
        self._local = threading.local()
        self._profiles: Dict[Tuple[str, str], Author] = {}

    @property
    def last_usage(self) -> Usage:
        """The usage Graph reported to this thread's last call."""
        usage = getattr(self._local, "usage", None)
        return usage if isinstance(usage, Usage) else Usage()

    @last_usage.setter
    def last_usage(self, usage: Usage) -> None:
        self._local.usage = usage

    # ---- polling ---------------------------------------------------------------

    def page_feed_page(self, page_id: str, *, since: Any = None, after: Optional[str] = None,
                       limit: int = 50, source_id: str = "") -> Page:
        """Visitor posts (kind "mention") and comments/replies on the Page's feed, newer than ``since``.

        ``since`` is Unix seconds or an ISO string (a previous ``newest_time``)
        and is exclusive, like X's since_id: an item that shows up late with a
        time at or before it is left to the webhook, Meta's primary path.
        Posts from up to a week before ``since`` are read so new comments on
        them are found too; the Page's own posts and comments are left out.
        """
        threshold = _threshold(since)
        params = {"fields": FEED_FIELDS, "limit": _clamp(limit), "after": after,
                  "since": _post_window_start(threshold)}
        body = self._call("GET", f"/{page_id}/feed", params=params)
        source_id = source_id or f"facebook:{page_id}"
        collected = _Collected(threshold)
        for post in _data(body):
            self._collect_feed_post(post, page_id, source_id, collected)
        return self._page(body, collected)

    def ig_comments_page(self, ig_user_id: str, *, since: Any = None, after: Optional[str] = None,
                         limit: int = 50, source_id: str = "") -> Page:
        """Comments and replies on the account's recent media, newer than ``since``."""
        threshold = _threshold(since)
        params = {"fields": IG_MEDIA_FIELDS, "limit": _clamp(limit), "after": after,
                  "since": _post_window_start(threshold)}
        body = self._call("GET", f"/{ig_user_id}/media", params=params)
        source_id = source_id or f"instagram:{ig_user_id}"
        collected = _Collected(threshold)
        for media in _data(body):
            self._collect_ig_media(media, ig_user_id, source_id, collected)
        return self._page(body, collected)

    def ig_mentions_page(self, ig_user_id: str, *, since: Any = None, after: Optional[str] = None,
                         limit: int = 50, source_id: str = "") -> Page:
        """Media the account is tagged in, newest first; paging stops once it passes ``since``."""
        threshold = _threshold(since)
        params = {"fields": IG_TAG_FIELDS, "limit": _clamp(limit), "after": after}
        body = self._call("GET", f"/{ig_user_id}/tags", params=params)
        source_id = source_id or f"instagram:{ig_user_id}"
        collected = _Collected(threshold)
        for media in _data(body):
            collected.add(f"tagged media {media.get('id')}",
                          lambda media=media: _tagged_media_mention(media, source_id), media.get("timestamp"))
        page = self._page(body, collected)
        if collected.reached_threshold:
            page.next_after = None
        return page

    def conversations_page(self, node_id: str, *, platform: str, brand_id: str = "", since: Any = None,
                           after: Optional[str] = None, limit: int = 25, not_before: Optional[int] = None,
                           source_id: str = "") -> Page:
        """Customers' direct messages newer than ``since``, from the Conversations API.

        ``node_id`` is the Page (``platform="messenger"``, or ``"instagram"``
        for the Instagram account linked to it) or the Instagram account;
        ``brand_id`` is who the brand's own messages come from (the Page, or
        the Instagram account), left out like webhook echoes; default
        ``node_id``. Each message becomes the Mention the webhook makes of it
        (same id, sender and thread), so one that arrives both ways is one
        mention once deduped. ``since`` is exclusive, as for the feed;
        ``not_before`` (Unix seconds) bounds how far back a first sweep reads.
        Conversations come most recently updated first, so paging stops at
        the first one not updated since the threshold. That order changes as
        customers write: a sweep continued over several runs can pass over a
        conversation that moved up meanwhile, and its older new messages are
        then left to their webhook.
        """
        if platform not in CONVERSATION_PLATFORMS:
            raise ValueError(f"no conversations to poll on {platform!r}")
        threshold = _threshold(since)
        if not_before is not None:
            threshold = not_before if threshold is None else max(threshold, int(not_before))
        params = {"platform": platform, "fields": CONVERSATION_FIELDS, "limit": _clamp(limit), "after": after}
        body = self._call("GET", f"/{node_id}/conversations", params=params)
        brand_id = str(brand_id or node_id)
        source_id = source_id or f"{platform}:{brand_id}"
        collected = _Collected(threshold)
        reached_older = False
        for conversation in _data(body):
            updated = _epoch_or_none(conversation.get("updated_time"))
            if threshold is not None and updated is not None and updated <= threshold:
                reached_older = True  # and so is every conversation after it
                break
            for message in self._conversation_messages(conversation, platform, threshold):
                self._collect_message(message, platform, brand_id, source_id, collected)
        page = self._page(body, collected)
        if reached_older:
            page.next_after = None
        return page

    def ig_mention_details(self, ig_user_id: str, media_id: str, comment_id: Optional[str] = None,
                           source_id: str = "") -> Mention:
        """The caption or comment behind an Instagram "mentions" webhook, which carries only ids."""
        if comment_id:
            edge = "mentioned_comment"
            fields = f"mentioned_comment.comment_id({comment_id}){{id,text,username,timestamp,media{{id,permalink}}}}"
        else:
            edge = "mentioned_media"
            fields = f"mentioned_media.media_id({media_id}){{id,caption,username,timestamp,permalink}}"
        body = self._call("GET", f"/{ig_user_id}", params={"fields": fields})
        found = body.get(edge)
        if not isinstance(found, dict) or not found.get("id"):
            raise MetaRequestError(f"Graph returned no {edge} for {comment_id or media_id}", body=body)
        source_id = source_id or f"instagram:{ig_user_id}"
        if comment_id:
            media = found.get("media") if isinstance(found.get("media"), dict) else {}
            return _ig_mention(found, str(found.get("text") or ""), source_id,
                               media_id=str(media.get("id") or media_id), permalink=str(media.get("permalink") or ""))
        return _tagged_media_mention(found, source_id)

    def messaging_profile(self, platform: str, user_id: str) -> Author:
        """Who sent a Messenger or Instagram DM, from the User Profile API.

        Cached per container: a customer writing several messages costs one call.
        """
        key = (platform, str(user_id))
        cached = self._profiles.get(key)
        if cached is not None:
            return cached
        if platform == "messenger":
            body = self._call("GET", f"/{user_id}", params={"fields": MESSENGER_PROFILE_FIELDS})
            name = " ".join(str(body[part]) for part in ("first_name", "last_name") if body.get(part))
            author = Author(id=str(user_id), name=name)
        elif platform == "instagram":
            body = self._call("GET", f"/{user_id}", params={"fields": INSTAGRAM_PROFILE_FIELDS})
            verified = bool(body.get("is_verified_user"))
            author = Author(id=str(user_id), handle=str(body.get("username") or ""), name=str(body.get("name") or ""),
                            verified=verified, verified_type="blue" if verified else "none",
                            followers=_int(body.get("follower_count")))
        else:
            raise ValueError(f"no messaging profile on {platform!r}")
        if len(self._profiles) >= PROFILE_CACHE_LIMIT:
            self._profiles.clear()
        self._profiles[key] = author
        return author

    # ---- replies -----------------------------------------------------------------

    def reply_to_comment(self, platform: str, comment_id: str, text: str, *,
                         attachment_url: Optional[str] = None) -> str:
        """A public reply under a Facebook or Instagram comment; returns the new comment's id.

        ``attachment_url``: an image shown with a Facebook reply (Instagram replies are text only)."""
        _check_length(platform, text)
        if attachment_url and platform != "facebook":
            raise MetaRequestError("Instagram comment replies are text only; send the image by direct message")
        if platform == "facebook":
            form = {"message": text}
            if attachment_url:
                form["attachment_url"] = attachment_url
            body = self._call("POST", f"/{comment_id}/comments", form=form)
        elif platform == "instagram":
            # Instagram threads one level deep: a reply to a reply lands under the top-level comment.
            body = self._call("POST", f"/{comment_id}/replies", form={"message": text})
        else:
            raise MetaRequestError(f"{platform} has no public comments to reply to; send a message instead")
        return _created_id(body, "id")

    def reply_to_ig_mention(self, ig_user_id: str, media_id: str, text: str,
                            comment_id: Optional[str] = None) -> str:
        """A public reply to a caption or comment that @mentioned the account on someone else's media."""
        _check_length("instagram", text)
        form = {"media_id": media_id, "message": text}
        if comment_id:
            form["comment_id"] = comment_id
        body = self._call("POST", f"/{ig_user_id}/mentions", form=form)
        return _created_id(body, "id")

    def private_reply_to_comment(self, page_id: str, comment_id: str, text: str, *,
                                 platform: str = "facebook") -> str:
        """One private message to a commenter (once per comment, within 7 days); returns its message id.

        ``page_id`` is the Page for Facebook comments, or the Instagram
        account (with ``platform="instagram"``) for Instagram comments.
        """
        _check_length("instagram" if platform == "instagram" else "messenger", text)
        if platform == "instagram":
            _check_instagram_dm(text)
        payload = {"recipient": {"comment_id": comment_id}, "message": {"text": text}}
        try:
            body = self._call("POST", f"/{page_id}/messages", json_body=payload)
        except MetaRequestError as err:
            if err.window_closed:
                raise _restated(err, "Meta refused the private reply: private replies are allowed only within "
                                     f"7 days of the comment. ({err})") from err
            if err.code == ALREADY_REPLIED_CODE:
                raise _restated(err, "this comment already has its one private reply; continue in the inbox "
                                     f"once the customer answers. ({err})") from err
            raise
        return _created_id(body, "message_id")

    def send_message(self, platform: str, account_id: str, recipient_id: str, text: str,
                     reply_to_message_id: Optional[str] = None, *, tag: Optional[str] = None,
                     options: Optional[List[Dict[str, str]]] = None,
                     template: Optional[Dict[str, str]] = None,
                     template_variables: Optional[List[str]] = None,
                     attachment: Optional[Dict[str, str]] = None) -> str:
        """A direct message; returns its id ("m_..." / "aWdf..." / "wamid...").

        Messenger and Instagram answer within 24 hours of the customer's last
        message; ``tag="HUMAN_AGENT"`` (an approved permission) stretches that
        to 7 days for a person's answer. WhatsApp free text has the same 24
        hours and ``reply_to_message_id`` quotes the customer's message.

        ``options`` (``[{"id", "title"}]``) become quick replies on Messenger
        and Instagram and reply buttons (``type: interactive``) on WhatsApp;
        ``template`` (``{"name", "language"}``) sends an approved WhatsApp
        template, whose quick-reply buttons carry the options' ids, instead of
        free text. Their limits are checked here, before anything is sent: a
        message Graph would refuse is refused without a call. ``template_variables``
        fill the template body's {{1}}, {{2}}... in order.

        ``attachment`` (``{"url"}``, an https image) goes first as its own message (Messenger and
        Instagram take an attachment or text, not both; a WhatsApp image carries the text as its
        caption when it fits in 1,024 characters), then the text: an image refused sends nothing.
        """
        _check_length(platform, text)
        choices = list(options or [])
        if template is not None and platform != "whatsapp":
            raise MetaRequestError(f"templates are WhatsApp's; {platform} has none")
        if attachment is not None and (template is not None or choices):
            raise MetaRequestError("an image goes with a plain message, not with a template or buttons")
        if platform == "whatsapp":
            payload: Dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                       "to": recipient_id}
            if attachment is not None:
                image: Dict[str, Any] = {"link": str(attachment["url"])}
                captioned = len(text) <= WHATSAPP_CAPTION_MAX
                if captioned:
                    image["caption"] = text
                sent = self._whatsapp_send(account_id, {**payload, "type": "image", "image": image},
                                           reply_to_message_id)
                if captioned:
                    return sent
                return _after_image(sent, lambda: self._whatsapp_send(
                    account_id, {**payload, "type": "text", "text": {"preview_url": False, "body": text}}, None))
            if template is not None:
                payload.update(_whatsapp_template(template, choices, template_variables))
            elif choices:
                _check_choices(choices, most=WHATSAPP_BUTTONS_MAX, title_max=WHATSAPP_BUTTON_TITLE_MAX,
                               id_max=WHATSAPP_BUTTON_ID_MAX, what="WhatsApp reply buttons")
                if len(text) > WHATSAPP_BUTTON_BODY_MAX:
                    raise MetaRequestError(f"the message is {len(text)} characters; WhatsApp allows "
                                           f"{WHATSAPP_BUTTON_BODY_MAX} above reply buttons")
                payload.update({"type": "interactive", "interactive": {
                    "type": "button", "body": {"text": text},
                    "action": {"buttons": [{"type": "reply", "reply": {"id": c["id"], "title": c["title"]}}
                                           for c in choices]}}})
            else:
                payload.update({"type": "text", "text": {"preview_url": False, "body": text}})
            return self._whatsapp_send(account_id, payload, reply_to_message_id)
        if platform not in ("messenger", "instagram"):
            raise MetaRequestError(f"{platform} has no direct messages through the Graph API")
        if platform == "instagram":
            _check_instagram_dm(text)
        kind = {"messaging_type": "MESSAGE_TAG", "tag": tag} if tag else {"messaging_type": "RESPONSE"}
        image_id = None
        if attachment is not None:
            image_id = _created_id(self._call("POST", f"/{account_id}/messages", json_body={
                "recipient": {"id": recipient_id}, **kind,
                "message": {"attachment": {"type": "image", "payload": {"url": str(attachment["url"]),
                                                                        "is_reusable": False}}}}), "message_id")
        message: Dict[str, Any] = {"text": text}
        if choices:
            _check_choices(choices, most=QUICK_REPLIES_MAX, title_max=QUICK_REPLY_TITLE_MAX,
                           id_max=QUICK_REPLY_PAYLOAD_MAX, what="quick replies")
            message["quick_replies"] = [{"content_type": "text", "title": c["title"], "payload": c["id"]}
                                        for c in choices]
        payload = {"recipient": {"id": recipient_id}, "message": message}
        payload.update(kind)
        if image_id is not None:
            return _after_image(image_id, lambda: _created_id(
                self._call("POST", f"/{account_id}/messages", json_body=payload), "message_id"))
        body = self._call("POST", f"/{account_id}/messages", json_body=payload)
        return _created_id(body, "message_id")

    def _whatsapp_send(self, phone_number_id: str, payload: Dict[str, Any], reply_to: Optional[str]) -> str:
        if reply_to:
            payload = {**payload, "context": {"message_id": reply_to}}
        body = self._call("POST", f"/{phone_number_id}/messages", json_body=payload)
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        return _created_id(messages[0] if messages and isinstance(messages[0], dict) else {}, "id")

    # ---- media and templates -------------------------------------------------------

    def media_file(self, media_id: str, *, max_bytes: int) -> Tuple[bytes, str]:
        """A WhatsApp media file (bytes, mime type): ``GET /{media-id}`` gives a URL valid for about five
        minutes, which is downloaded with the same bearer token. Refused when larger than ``max_bytes``."""
        info = self._call("GET", f"/{media_id}")
        url, mime = info.get("url"), str(info.get("mime_type") or "application/octet-stream")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise MetaRequestError(f"Graph gave no download URL for media {media_id}", body=info)
        size = _int(info.get("file_size"))
        if size > max_bytes:
            raise MetaRequestError(f"media {media_id} is {size} bytes; socialcare copies at most {max_bytes}")
        return download(url, max_bytes=max_bytes, token=self._token), mime

    def message_templates(self, waba_id: str, *, limit: int = 100) -> List[Dict[str, Any]]:
        """The WhatsApp Business Account's approved templates (``GET /{waba-id}/message_templates``), each
        ``{"name", "language", "category", "body", "variables"}``: ``variables`` counts the body's {{n}}."""
        body = self._call("GET", f"/{waba_id}/message_templates", params={
            "fields": "name,status,category,language,components", "status": "APPROVED", "limit": _clamp(limit)})
        templates = []
        for item in _data(body):
            if str(item.get("status") or "").upper() != "APPROVED" or not isinstance(item.get("name"), str):
                continue
            components = [c for c in item.get("components") or [] if isinstance(c, dict)]
            text = next((str(c.get("text") or "") for c in components if str(c.get("type")).upper() == "BODY"), "")
            templates.append({"name": item["name"], "language": str(item.get("language") or ""),
                              "category": str(item.get("category") or ""), "body": text[:1024],
                              "variables": len(set(_TEMPLATE_VARIABLE.findall(text)))})
        return templates

    # ---- internals -----------------------------------------------------------------

    def _call(self, method: str, path: str, *, params: Optional[Dict[str, Any]] = None,
              json_body: Any = None, form: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        # The header keeps the token out of URLs, and so out of access logs.
        headers = {"Authorization": f"Bearer {self._token}"}
        http = self._read_http if method == "GET" else self._http
        try:
            response = http.request(method, path, params=params, json_body=json_body, form=form, headers=headers)
        except HttpError as err:
            self.last_usage = Usage.from_headers(err.response.headers)
            mapped = error_from_response(err.response)
            if method != "GET" and isinstance(mapped, MetaTransientError):
                raise MetaAmbiguous(f"Graph failed after a write was sent; it may have been carried out: {mapped}",
                                    status=mapped.status, code=mapped.code, body=mapped.body) from err
            raise mapped from err
        except TransportError as err:
            if method != "GET" and err.maybe_sent:
                raise MetaAmbiguous(f"no answer from Graph after sending: {err}") from err
            raise MetaTransientError(f"Graph API unreachable: {err}") from err
        self.last_usage = Usage.from_headers(response.headers)
        body = response.body if isinstance(response.body, dict) else {}
        if isinstance(body.get("error"), dict):
            raise error_from_response(response)
        return body

    def _page(self, body: Dict[str, Any], collected: "_Collected") -> Page:
        return Page(mentions=collected.mentions, next_after=_next_after(body),
                    newest_time=iso_utc(collected.newest) if collected.newest is not None else None,
                    usage=self.last_usage, skipped=collected.skipped)

    def _collect_feed_post(self, post: Dict[str, Any], page_id: str, source_id: str,
                           collected: "_Collected") -> None:
        post_id = str(post.get("id") or "")
        author = post.get("from") if isinstance(post.get("from"), dict) else {}
        if author.get("id") and str(author["id"]) != page_id:
            collected.add(f"post {post_id}", lambda: _visitor_post_mention(post, source_id), post.get("created_time"))
        for comment in self._feed_comments(post, post_id, collected.threshold):
            sender = comment.get("from") if isinstance(comment.get("from"), dict) else {}
            where = f"comment {comment.get('id')}"
            if not sender.get("id"):
                # Graph hides commenters from tokens without pages_read_user_content.
                collected.skip(where, "has no 'from' (the token may lack pages_read_user_content)",
                               comment.get("created_time"))
            elif str(sender["id"]) == page_id:
                collected.skip(where, None, comment.get("created_time"))
            else:
                collected.add(where, lambda comment=comment: _feed_comment_mention(comment, post_id, source_id),
                              comment.get("created_time"))

    def _feed_comments(self, post: Dict[str, Any], post_id: str, threshold: Optional[int]) -> List[Dict[str, Any]]:
        edge = post.get("comments") if isinstance(post.get("comments"), dict) else {}
        comments = _data(edge)
        pages = 1
        # Newest first: once a page ends before the threshold, older pages hold nothing new.
        while _next_after(edge) and pages < MAX_COMMENT_PAGES and not _ends_before(comments, threshold):
            edge = self._call("GET", f"/{post_id}/comments", params={
                "fields": COMMENT_FIELDS, "filter": "stream", "order": "reverse_chronological",
                "limit": GRAPH_MAX_LIMIT, "after": _next_after(edge)})
            comments.extend(_data(edge))
            pages += 1
        return comments

    def _collect_ig_media(self, media: Dict[str, Any], ig_user_id: str, source_id: str,
                          collected: "_Collected") -> None:
        media_id = str(media.get("id") or "")
        permalink = str(media.get("permalink") or "")
        brand_username = str(media.get("username") or "")
        for comment in self._ig_comments(media, media_id):
            for item, parent_id in [(comment, "")] + [(reply, str(comment.get("id") or ""))
                                                       for reply in _data(comment.get("replies"))]:
                where = f"instagram comment {item.get('id')}"
                sender = item.get("from") if isinstance(item.get("from"), dict) else {}
                if str(sender.get("id") or "") == ig_user_id or (
                        brand_username and item.get("username") == brand_username):
                    collected.skip(where, None, item.get("timestamp"))
                    continue
                collected.add(where, lambda item=item, parent_id=parent_id: _ig_comment_mention(
                    item, media_id, parent_id, permalink, source_id), item.get("timestamp"))

    def _conversation_messages(self, conversation: Dict[str, Any], platform: str,
                               threshold: Optional[int]) -> List[Dict[str, Any]]:
        """A conversation's messages newer than the threshold can reach, newest first."""
        edge = conversation.get("messages") if isinstance(conversation.get("messages"), dict) else {}
        messages = _data(edge)
        pages = 1
        conversation_id = str(conversation.get("id") or "")
        # Instagram has no details for older messages; Messenger pages on, newest first.
        while (platform == "messenger" and conversation_id and _next_after(edge) and pages < MAX_MESSAGE_PAGES
               and not _ends_before(messages, threshold)):
            edge = self._call("GET", f"/{conversation_id}/messages", params={
                "fields": MESSAGE_FIELDS, "limit": GRAPH_MAX_LIMIT, "after": _next_after(edge)})
            messages.extend(_data(edge))
            pages += 1
        return messages

    def _collect_message(self, message: Dict[str, Any], platform: str, brand_id: str, source_id: str,
                         collected: "_Collected") -> None:
        sender = message.get("from") if isinstance(message.get("from"), dict) else {}
        where = f"{platform} message {message.get('id')}"
        created = message.get("created_time")
        if not sender.get("id"):
            collected.skip(where, "has no 'from'", created)
        elif str(sender["id"]) == brand_id:
            collected.skip(where, None, created)  # the brand's own message (a webhook echo)
        elif not message.get("message"):
            collected.skip(where, None, created)  # a sticker, image or reaction: no text to triage
        else:
            collected.add(where, lambda: _direct_message_mention(message, platform, source_id), created)

    def _ig_comments(self, media: Dict[str, Any], media_id: str) -> List[Dict[str, Any]]:
        edge = media.get("comments") if isinstance(media.get("comments"), dict) else {}
        comments = _data(edge)
        pages = 1
        while _next_after(edge) and pages < MAX_COMMENT_PAGES:
            edge = self._call("GET", f"/{media_id}/comments", params={
                "fields": f"{IG_COMMENT_FIELDS},replies{{{IG_COMMENT_FIELDS}}}", "limit": 50,
                "after": _next_after(edge)})
            comments.extend(_data(edge))
            pages += 1
        return comments


# ---- page assembly -------------------------------------------------------------------

class _Collected:
    """Mentions of one page, the newest time seen, and why items were left out."""

    def __init__(self, threshold: Optional[int]):
        self.threshold = threshold
        self.mentions: List[Mention] = []
        self.skipped: List[str] = []
        self.newest: Optional[int] = None
        self.reached_threshold = False

    def add(self, where: str, build: Any, created: Any) -> None:
        if not self._is_new(created, where):
            return
        try:
            self.mentions.append(build())
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            self.skipped.append(f"{where}: malformed ({type(err).__name__}: {err})")

    def skip(self, where: str, reason: Optional[str], created: Any) -> None:
        """Leave an item out; ``reason`` None for expected ones (the brand's own comments)."""
        if self._is_new(created, where) and reason:
            self.skipped.append(f"{where}: {reason}")

    def _is_new(self, created: Any, where: str) -> bool:
        try:
            seconds = epoch_seconds(created)
        except (TypeError, ValueError):
            self.skipped.append(f"{where}: malformed (no usable time: {created!r})")
            return False
        self.newest = seconds if self.newest is None else max(self.newest, seconds)
        if self.threshold is not None and seconds <= self.threshold:
            self.reached_threshold = True
            return False
        return True


def _visitor_post_mention(post: Dict[str, Any], source_id: str) -> Mention:
    post_id = str(post["id"])
    text = str(post.get("message") or "")
    return Mention(
        platform="facebook", kind="mention", platform_id=post_id, author=_graph_author(post["from"]),
        text=text, created_at=iso_utc(post["created_time"]), source_id=source_id, lang=guess_lang(text),
        conversation_id=post_id, permalink=str(post.get("permalink_url") or facebook_permalink(post_id)), raw=post,
    )


def _feed_comment_mention(comment: Dict[str, Any], post_id: str, source_id: str) -> Mention:
    comment_id = str(comment["id"])
    parent = comment.get("parent") if isinstance(comment.get("parent"), dict) else {}
    parent_id = str(parent.get("id") or post_id)
    text = str(comment.get("message") or "")
    return Mention(
        platform="facebook", kind="reply" if parent_id != post_id else "comment", platform_id=comment_id,
        author=_graph_author(comment["from"]), text=text, created_at=iso_utc(comment["created_time"]),
        source_id=source_id, lang=guess_lang(text), conversation_id=post_id, in_reply_to_id=parent_id,
        permalink=str(comment.get("permalink_url") or facebook_permalink(post_id, comment_id)), raw=comment,
        media=polled_comment_media(comment),
    )


def _ig_comment_mention(comment: Dict[str, Any], media_id: str, parent_id: str, permalink: str,
                        source_id: str) -> Mention:
    text = str(comment.get("text") or "")
    return Mention(
        platform="instagram", kind="reply" if parent_id else "comment", platform_id=str(comment["id"]),
        author=_ig_author(comment), text=text, created_at=iso_utc(comment["timestamp"]), source_id=source_id,
        lang=guess_lang(text), conversation_id=media_id, in_reply_to_id=parent_id or media_id,
        permalink=permalink, raw=comment,
    )


def _tagged_media_mention(media: Dict[str, Any], source_id: str) -> Mention:
    return _ig_mention(media, str(media.get("caption") or ""), source_id, media_id=str(media["id"]),
                       permalink=str(media.get("permalink") or ""))


def _ig_mention(item: Dict[str, Any], text: str, source_id: str, *, media_id: str, permalink: str) -> Mention:
    item_id = str(item["id"])
    return Mention(
        platform="instagram", kind="mention", platform_id=item_id, author=_ig_author(item), text=text,
        created_at=iso_utc(item["timestamp"]), source_id=source_id, lang=guess_lang(text),
        conversation_id=media_id, in_reply_to_id=media_id if media_id != item_id else "",
        permalink=permalink, raw=item,
    )


def _direct_message_mention(message: Dict[str, Any], platform: str, source_id: str) -> Mention:
    """A polled direct message as the webhook makes it (meta_webhooks._direct_message): the same id,
    sender, time and thread. The sender is named by id only, as in a webhook, so the triage stage
    completes both alike from the User Profile API (an Instagram sender's followers and badge too)."""
    sender_id = str(message["from"]["id"])
    media = polled_message_media(message)
    # A photo sent alone comes with an empty (or no) text; a message with neither is not one.
    text = message.get("message", "" if media else None)
    if not isinstance(text, str):
        raise TypeError(f"'message' must be a string, not {type(text).__name__}")
    return Mention(
        platform=platform, kind="dm", platform_id=str(message["id"]), author=Author(id=sender_id), text=text,
        created_at=iso_utc(message["created_time"]), source_id=source_id, lang=guess_lang(text),
        # One thread per customer: every message from this sender is the same conversation.
        conversation_id=sender_id, raw=message, media=media,
    )


def _after_image(image_id: str, send_text: Callable[[], str]) -> str:
    """The text that follows an image already delivered. If it fails, the customer has half the reply:
    a retry would send the image again, so the outcome is ambiguous (the reply is marked unknown for an
    agent to look at), never "nothing was sent"."""
    try:
        return send_text()
    except AmbiguousOutcome:
        raise
    except Exception as err:  # noqa: BLE001 - any failure after the image reached the customer
        raise MetaAmbiguous(f"the image was sent (message {image_id}) but its text was not: {err}") from err


def _https(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else ""


def polled_message_media(message: Dict[str, Any]) -> List[MediaItem]:
    """A polled message's ``attachments.data[]``: ``image_data.url``, ``video_data.url`` or ``file_url``."""
    edge = message.get("attachments")
    items: List[MediaItem] = []
    for attachment in (edge.get("data") if isinstance(edge, dict) and isinstance(edge.get("data"), list) else []):
        if not isinstance(attachment, dict):
            continue
        mime = attachment.get("mime_type") if isinstance(attachment.get("mime_type"), str) else ""
        image, video = attachment.get("image_data"), attachment.get("video_data")
        if isinstance(image, dict) and _https(image.get("url")):
            kind, url = "image", _https(image.get("url"))
        elif isinstance(video, dict) and _https(video.get("url")):
            kind, url = "video", _https(video.get("url"))
        elif _https(attachment.get("file_url")):
            kind, url = ("audio" if mime.startswith("audio/") else "file"), _https(attachment.get("file_url"))
        else:
            continue
        name = attachment.get("name") if isinstance(attachment.get("name"), str) else ""
        raw_size = attachment.get("size")
        size = raw_size if isinstance(raw_size, int) and raw_size > 0 else 0
        items.append(MediaItem(type=kind, url=url, mime=mime[:100], filename=name[:200], size=size))
    return bounded(items)


def polled_comment_media(comment: Dict[str, Any]) -> List[MediaItem]:
    """A polled comment's ``attachment``: a photo (``media.image.src``) or a video (``url``); stickers
    and shared links are not files a customer sent."""
    attachment = comment.get("attachment")
    if not isinstance(attachment, dict):
        return []
    kind = attachment.get("type")
    media = attachment.get("media") if isinstance(attachment.get("media"), dict) else {}
    image = media.get("image") if isinstance(media.get("image"), dict) else {}
    if kind == "photo" and _https(image.get("src")):
        return bounded([MediaItem(type="image", url=_https(image.get("src")))])
    if kind in ("video_inline", "video") and _https(media.get("source") or attachment.get("url")):
        return bounded([MediaItem(type="video", url=_https(media.get("source") or attachment.get("url")))])
    return []


def _graph_author(sender: Any) -> Author:
    if not isinstance(sender, dict) or not sender.get("id"):
        raise ValueError("'from.id' is missing")
    return Author(id=str(sender["id"]), name=str(sender.get("name") or ""))


def _ig_author(item: Dict[str, Any]) -> Author:
    """Instagram-scoped id when Graph gives one; tags and mentions only give the username."""
    sender = item.get("from") if isinstance(item.get("from"), dict) else {}
    username = str(item.get("username") or sender.get("username") or "")
    author_id = str(sender.get("id") or username)
    if not author_id:
        raise ValueError("neither 'from.id' nor 'username' is present")
    return Author(id=author_id, handle=username)


# ---- errors --------------------------------------------------------------------------

def error_from_response(response: Response) -> MetaError:
    """The MetaError for a Graph error answer ({"error": {"message", "type", "code", ...}})."""
    body = response.body if isinstance(response.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    usage = Usage.from_headers(response.headers)
    details = {"status": response.status, "code": code, "subcode": subcode,
               "fbtrace_id": str(error.get("fbtrace_id") or ""), "usage": usage, "body": response.body}
    said = str(error.get("error_user_msg") or error.get("message") or response.text[:300] or "no details")
    message = f"Graph {response.status} (code {code}{f'/{subcode}' if subcode else ''}): {said}"
    if (code == 10 and subcode in WINDOW_SUBCODES) or code == WHATSAPP_REENGAGEMENT_CODE:
        return MetaRequestError(
            "Meta refused the message: it is outside the 24-hour window since the customer's last message. "
            f"Wait for the customer to write again, or use an approved template or tag. ({message})",
            window_closed=True, **details)
    if response.status == 429 or code in THROTTLE_CODES:
        return MetaRateLimited(message, retry_after=usage.regain_seconds or DEFAULT_THROTTLE_SECONDS, **details)
    if code in TOKEN_CODES or response.status == 401 or code == 10 or 200 <= code <= 299:
        return MetaAuthError(message, **details)
    if response.status >= 500 or code in TRANSIENT_CODES or error.get("is_transient") is True:
        return MetaTransientError(message, **details)
    return MetaRequestError(message, **details)


def _restated(err: MetaRequestError, message: str) -> MetaRequestError:
    return MetaRequestError(message, window_closed=err.window_closed, status=err.status, code=err.code,
                            subcode=err.subcode, fbtrace_id=err.fbtrace_id, usage=err.usage, body=err.body)


def _check_length(platform: str, text: str) -> None:
    if not text or not text.strip():
        raise MetaRequestError("the reply text is empty")
    limit = MAX_TEXT.get(platform)
    if limit is None:
        raise MetaRequestError(f"unknown Meta platform '{platform}'")
    if len(text) > limit:
        raise MetaRequestError(f"the reply is {len(text)} characters; {platform} allows {limit}")


def _check_choices(choices: List[Dict[str, str]], *, most: int, title_max: int, id_max: int, what: str) -> None:
    """Graph refuses the whole message when one button breaks a limit; say which, before sending."""
    if len(choices) > most:
        raise MetaRequestError(f"{len(choices)} {what}; Meta allows at most {most}")
    for choice in choices:
        title, choice_id = choice.get("title"), choice.get("id")
        if not isinstance(title, str) or not title.strip() or len(title) > title_max:
            raise MetaRequestError(f"{what}: the title {str(title)[:40]!r} must be 1 to {title_max} characters")
        if not isinstance(choice_id, str) or not choice_id or len(choice_id) > id_max:
            raise MetaRequestError(f"{what}: the id of {title!r} must be 1 to {id_max} characters")
    if len({c["title"] for c in choices}) != len(choices):
        raise MetaRequestError(f"{what}: titles must differ (a customer could not tell them apart)")


def _whatsapp_template(template: Dict[str, str], choices: List[Dict[str, str]],
                       variables: Optional[List[str]] = None) -> Dict[str, Any]:
    """A template message whose quick-reply buttons (approved with the template) carry our ids."""
    name, language = template.get("name"), template.get("language")
    if not isinstance(name, str) or not _TEMPLATE_NAME.fullmatch(name):
        raise MetaRequestError("a WhatsApp template name is lowercase letters, digits and underscores")
    if not isinstance(language, str) or not _TEMPLATE_LANGUAGE.fullmatch(language):
        raise MetaRequestError(f"{str(language)[:20]!r} is not a template language code such as 'en' or 'ja'")
    _check_choices(choices, most=WHATSAPP_BUTTONS_MAX, title_max=WHATSAPP_BUTTON_TITLE_MAX,
                   id_max=WHATSAPP_BUTTON_ID_MAX, what="template buttons")
    components: List[Dict[str, Any]] = []
    if variables:
        components.append({"type": "body", "parameters": [{"type": "text", "text": str(v)} for v in variables]})
    components += [{"type": "button", "sub_type": "quick_reply", "index": str(index),
                    "parameters": [{"type": "payload", "payload": choice["id"]}]}
                   for index, choice in enumerate(choices)]
    body: Dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        body["components"] = components
    return {"type": "template", "template": body}


def _check_instagram_dm(text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > MAX_INSTAGRAM_DM_BYTES:
        raise MetaRequestError(f"the Instagram message is {size} bytes in UTF-8; Instagram allows "
                               f"{MAX_INSTAGRAM_DM_BYTES} (about 330 Japanese characters)")


# ---- small helpers -------------------------------------------------------------------

def download(url: str, *, max_bytes: int, token: str = "", timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> bytes:
    """The bytes at ``url`` (at most ``max_bytes``; more is refused, not cut), with a bearer token when
    given. A platform CDN answers quickly or not at all: failures are transient, except 4xx (gone)."""
    import urllib.error
    import urllib.request

    if not url.startswith(("https://", "http://")):
        raise MetaRequestError("only http(s) URLs are downloaded")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers={"User-Agent": "socialcare", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as raw:  # noqa: S310 - http(s) only, checked above
            data = raw.read(max_bytes + 1)
    except urllib.error.HTTPError as err:
        if 400 <= err.code < 500:
            raise MetaRequestError(f"the file is not available (HTTP {err.code})", status=err.code) from None
        raise MetaTransientError(f"the file could not be downloaded (HTTP {err.code})", status=err.code) from None
    except (urllib.error.URLError, OSError) as err:
        raise MetaTransientError(f"the file could not be downloaded: {err}") from None
    if len(data) > max_bytes:
        raise MetaRequestError(f"the file is larger than {max_bytes} bytes")
    return data


def _threshold(since: Any) -> Optional[int]:
    """Items at or before this Unix second are not new."""
    if since is None or since == "":
        return None
    return epoch_seconds(since)


def _epoch_or_none(value: Any) -> Optional[int]:
    try:
        return epoch_seconds(value)
    except (TypeError, ValueError):
        return None


def _post_window_start(threshold: Optional[int]) -> Optional[int]:
    return None if threshold is None else threshold - COMMENT_LOOKBACK_SECONDS


def _ends_before(items: List[Dict[str, Any]], threshold: Optional[int]) -> bool:
    if threshold is None or not items:
        return False
    try:
        return epoch_seconds(items[-1].get("created_time")) <= threshold
    except (TypeError, ValueError):
        return False


def _clamp(limit: int) -> int:
    return max(1, min(int(limit), GRAPH_MAX_LIMIT))


def _data(edge: Any) -> List[Dict[str, Any]]:
    items = edge.get("data") if isinstance(edge, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _next_after(body: Any) -> Optional[str]:
    """The ``after`` cursor, only when Graph says there is a next page (``paging.next``)."""
    paging = body.get("paging") if isinstance(body, dict) else None
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    after = (paging.get("cursors") or {}).get("after")
    return str(after) if after else None


def _created_id(body: Dict[str, Any], key: str) -> str:
    created = body.get(key) if isinstance(body, dict) else None
    if not created:
        raise MetaAmbiguous(f"Graph answered without '{key}'; the write may have been carried out: {str(body)[:200]}",
                            body=body)
    return str(created)


def _json_object(raw: Any) -> Dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _usage_pct(entry: Dict[str, Any]) -> float:
    return max((_number(entry.get(key)) for key in ("call_count", "total_cputime", "total_time")), default=0.0)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
