"""X API v2 adapter: read mentions, keyword search and DMs; reply and send DMs.

Everything X-shaped stops here: callers get platform-neutral ``Mention``s, a
``RateLimit`` to pace the next poll, and one of four errors whose type says
what to do next (wait, disable the source, retry later, or give up on this
one request).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.adapters.platforms.http import HttpClient, HttpError, Response, TransportError
from chalicelib.domain.errors import AmbiguousOutcome, AuthFailed, PlatformError, RateLimited, Refused, TransientFailure
from chalicelib.domain.media import MAX_ATTACHMENT_BYTES, MediaItem, bounded
from chalicelib.domain.mention import KINDS, Author, Mention
from chalicelib.domain.source import X_MAX_QUERY_LENGTH, x_search_query
from chalicelib.domain.text_limits import X_MAX_DM_LENGTH, X_MAX_POST_LENGTH, weighted_length

TWEET_FIELDS = "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,lang,entities,attachments"
USER_FIELDS = "verified,verified_type,public_metrics,username,name"
DM_EVENT_FIELDS = "id,event_type,text,sender_id,dm_conversation_id,created_at,attachments"
# Media attached to a post come as ``attachments.media_keys`` with the files in ``includes.media``.
MEDIA_FIELDS = "media_key,type,url,preview_image_url,alt_text"
TWEET_PARAMS = {"tweet.fields": TWEET_FIELDS, "expansions": "author_id,attachments.media_keys",
                "user.fields": USER_FIELDS, "media.fields": MEDIA_FIELDS}
# X's media types, as socialcare names them (domain/media.py).
X_MEDIA_TYPES = {"photo": "image", "video": "video", "animated_gif": "gif"}
# Images a reply may carry (POST /2/media/upload, simple upload: images up to 5 MB).
UPLOAD_IMAGE_TYPES = ("image/jpeg", "image/png")
DM_PARAMS = {
    "dm_event.fields": DM_EVENT_FIELDS,
    "event_types": "MessageCreate",
    "expansions": "sender_id,attachments.media_keys",
    "media.fields": MEDIA_FIELDS,
    "user.fields": USER_FIELDS,
}

MAX_POST_LENGTH = X_MAX_POST_LENGTH
MAX_DM_LENGTH = X_MAX_DM_LENGTH
MAX_QUERY_LENGTH = X_MAX_QUERY_LENGTH
VERIFIED_TYPES = ("blue", "business", "government")
# A usage cap (monthly post quota) carries no reset header; an hour is a
# polite guess that keeps the poller from hammering a capped project.
USAGE_CAP_BACKOFF_SECONDS = 3600
# 403s with these problem types mean the token or app lacks access, not that
# this one post was refused.
ACCESS_PROBLEMS = ("client-forbidden", "unsupported-authentication", "not-authorized-for-resource")


@dataclass
class RateLimit:
    remaining: Optional[int] = None
    reset_at: Optional[int] = None  # unix seconds
    limit: Optional[int] = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "RateLimit":
        lowered = {str(k).lower(): v for k, v in (headers or {}).items()}

        def number(name: str) -> Optional[int]:
            try:
                return int(lowered[name])
            except (KeyError, TypeError, ValueError):
                return None

        return cls(
            remaining=number("x-rate-limit-remaining"),
            reset_at=number("x-rate-limit-reset"),
            limit=number("x-rate-limit-limit"),
        )

    def exhausted(self, reserve: int = 1, now: Optional[float] = None) -> bool:
        """True when at most ``reserve`` calls are left in a window that has not reset yet.

        Keeping a reserve leaves room for an operator's manual fetch; a stored
        RateLimit whose window has passed is never exhausted.
        """
        if self.remaining is None:
            return False
        if self.reset_at is not None and self.reset_at <= (time.time() if now is None else now):
            return False
        return self.remaining <= reserve


@dataclass
class Page:
    mentions: List[Mention]
    newest_id: Optional[str]
    next_token: Optional[str]
    rate_limit: RateLimit
    result_count: int


class XError(PlatformError):
    platform = "x"

    def __init__(self, message: str, *, status: Optional[int] = None,
                 rate_limit: Optional[RateLimit] = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.rate_limit = rate_limit or RateLimit()
        self.body = body


class XRateLimited(XError, RateLimited):
    """Wait until ``reset_at`` (unix seconds) before calling this endpoint again."""

    def __init__(self, message: str, *, reset_at: int, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.reset_at = reset_at


class XAuthError(XError, AuthFailed):
    """The token is bad or revoked: permanent for this source until someone reconnects it."""


class XTransientError(XError, TransientFailure):
    """X is failing or unreachable (after retries); try again later."""


class XRequestError(XError, Refused):
    """X refused this request (bad parameter, duplicate text, reply not allowed...)."""

    @property
    def duplicate(self) -> bool:
        """X already has this exact post: after a lost response, our earlier attempt went through."""
        return "duplicate content" in str(self).lower()


class XAmbiguous(XError, AmbiguousOutcome):
    """A post or DM whose outcome is unknown: X may have it. Look before writing again."""


class XClient:
    """One X account's API access.

    Reads use the app bearer token; replies, DMs and DM reads act as the brand
    and use ``user_token`` (an OAuth 2.0 user-context bearer) when given.
    ``http`` lets tests pass a client with their own retry/sleep settings; it
    must point at ``base_url``. Posts and DMs are sent once, never retried
    here: a timed-out send may have gone through, and a blind retry would
    post twice.
    """

    def __init__(self, base_url: str, bearer_token: str, user_token: Optional[str] = None,
                 http: Optional[HttpClient] = None):
        self.base_url = base_url
        self._app_token = bearer_token
        self._user_token = user_token or bearer_token
        # 5 s reads: three attempts with backoff stay inside a source's fetch budget (20 s).
        self._http = http if http is not None else HttpClient(base_url=base_url, timeout=5.0)
        self._write_http = (dataclasses.replace(self._http, retries=0, timeout=max(self._http.timeout, 10.0))
                            if isinstance(self._http, HttpClient) else self._http)
        self.last_rate_limit = RateLimit()

    def mentions_page(self, user_id: str, *, since_id: Optional[str] = None,
                      pagination_token: Optional[str] = None, max_results: int = 100,
                      source_id: str = "") -> Page:
        params = {**TWEET_PARAMS, "max_results": max_results, "since_id": since_id,
                  "pagination_token": pagination_token}
        body, rate_limit = self._call("GET", f"/2/users/{user_id}/mentions", self._app_token, params=params)
        return _tweet_page(body, rate_limit, brand_user_id=user_id, source_id=source_id, kind_hint="mention")

    def search_recent_page(self, query: str, *, since_id: Optional[str] = None,
                           next_token: Optional[str] = None, max_results: int = 100,
                           brand_user_id: str = "", source_id: str = "") -> Page:
        if len(query) > MAX_QUERY_LENGTH:
            raise XRequestError(f"search query is {len(query)} characters; X allows {MAX_QUERY_LENGTH}")
        params = {**TWEET_PARAMS, "query": query, "max_results": max_results, "since_id": since_id,
                  "next_token": next_token}
        body, rate_limit = self._call("GET", "/2/tweets/search/recent", self._app_token, params=params)
        return _tweet_page(body, rate_limit, brand_user_id=brand_user_id, source_id=source_id,
                           kind_hint="mention")

    def dm_events_page(self, *, since_id: Optional[str] = None, pagination_token: Optional[str] = None,
                       brand_user_id: str = "", source_id: str = "") -> Page:
        """A page of DMs, newest first; skips the brand's own messages.

        /2/dm_events has no since_id, so it is applied here: older events are
        dropped and paging stops once the page reaches ``since_id``, which
        gives DM polling the same cursor contract as mentions.
        """
        # DMs are private to the brand account, so this read needs user context.
        params = {**DM_PARAMS, "max_results": 100, "pagination_token": pagination_token}
        body, rate_limit = self._call("GET", "/2/dm_events", self._user_token, params=params)
        users_by_id = _users_by_id(body)
        events = body.get("data") or []
        newer = [event for event in events if not since_id or _id_after(event.get("id"), since_id)]
        mentions = [
            normalize_dm_event(event, users_by_id, source_id=source_id, media_by_key=_media_by_key(body))
            for event in newer
            if event.get("event_type", "MessageCreate") == "MessageCreate"
            and str(event.get("sender_id", "")) != brand_user_id
        ]
        meta = body.get("meta") or {}
        reached_since = len(newer) < len(events)
        return Page(
            mentions=mentions,
            newest_id=str(newer[0]["id"]) if newer else None,
            next_token=None if reached_since else meta.get("next_token"),
            rate_limit=rate_limit,
            result_count=int(meta.get("result_count", len(events))),
        )

    def upload_image(self, data: bytes, mime: str, *, for_dm: bool = False) -> str:
        """Upload one image (``POST /2/media/upload``, JSON with the bytes in base64) and return its media id."""
        import base64

        if mime not in UPLOAD_IMAGE_TYPES:
            raise XRequestError(f"X takes JPEG or PNG images here, not {mime!r}")
        if not data or len(data) > MAX_ATTACHMENT_BYTES:
            raise XRequestError(f"the image is {len(data)} bytes; X takes images of 1 byte to {MAX_ATTACHMENT_BYTES}")
        payload = {"media": base64.b64encode(data).decode("ascii"), "media_type": mime,
                   "media_category": "dm_image" if for_dm else "tweet_image"}
        try:
            body, _ = self._call("POST", "/2/media/upload", self._user_token, json_body=payload)
        except XAmbiguous as err:
            # An upload posts nothing the customer sees: it is safe to call again.
            raise XTransientError(f"the image upload had no clear answer; it will be tried again: {err}") from err
        return _created_id(body, "id")

    def upload_image_url(self, url: str, *, for_dm: bool = False) -> str:
        """Fetch an attached image (an https URL: a platform's, or a presigned link to the media bucket)
        and upload it; its media id."""
        from chalicelib.adapters.platforms.meta import download

        try:
            data = download(url, max_bytes=MAX_ATTACHMENT_BYTES)
        except Refused as err:
            raise XRequestError(f"the attached image could not be used: {err}") from None
        except TransientFailure as err:
            raise XTransientError(f"the attached image could not be fetched yet: {err}") from None
        return self.upload_image(data, _image_type(data), for_dm=for_dm)

    def reply(self, in_reply_to_tweet_id: str, text: str, *, media_ids: Optional[List[str]] = None) -> str:
        """Post a public reply (with up to 4 uploaded images) and return the new post's id."""
        length = weighted_length(text)
        if length > MAX_POST_LENGTH:
            raise XRequestError(
                f"reply is {length} characters as X counts them (CJK and emoji count 2); "
                f"X allows {MAX_POST_LENGTH}. Shorten it or send a DM instead."
            )
        payload: Dict[str, Any] = {"text": text, "reply": {"in_reply_to_tweet_id": str(in_reply_to_tweet_id)}}
        if media_ids:
            payload["media"] = {"media_ids": [str(m) for m in media_ids[:4]]}
        body, _ = self._call("POST", "/2/tweets", self._user_token, json_body=payload)
        return _created_id(body, "id")

    def send_dm(self, participant_id: str, text: str, *, media_id: Optional[str] = None) -> str:
        """Send a one-to-one DM (with at most one uploaded image) and return its dm_event_id."""
        if len(text) > MAX_DM_LENGTH:
            raise XRequestError(f"DM is {len(text)} characters; X allows {MAX_DM_LENGTH}")
        message: Dict[str, Any] = {"text": text}
        if media_id:
            message["attachments"] = [{"media_id": str(media_id)}]
        body, _ = self._call("POST", f"/2/dm_conversations/with/{participant_id}/messages",
                             self._user_token, json_body=message)
        return _created_id(body, "dm_event_id")

    def _call(self, method: str, path: str, token: str, *, params: Optional[Dict[str, Any]] = None,
              json_body: Any = None) -> Tuple[Dict[str, Any], RateLimit]:
        http = self._http if method == "GET" else self._write_http
        try:
            response = http.request(method, path, params=params, json_body=json_body,
                                    headers={"Authorization": f"Bearer {token}"})
        except HttpError as err:
            self.last_rate_limit = RateLimit.from_headers(err.response.headers)
            write = method != "GET"
            if write and err.response.status >= 500:
                raise XAmbiguous(f"X answered {err.response.status} to a write; it may have been carried out",
                                 status=err.response.status, body=err.response.body) from err
            raise _error_from(err.response, write=write) from err
        except TransportError as err:
            if method != "GET" and err.maybe_sent:
                raise XAmbiguous(f"no answer from X after sending: {err}") from err
            raise XTransientError(f"X unreachable: {err}") from err
        # Sources share one client across threads: return this call's own rate limit.
        rate_limit = RateLimit.from_headers(response.headers)
        self.last_rate_limit = rate_limit
        body = response.body if isinstance(response.body, dict) else {}
        return body, rate_limit

    # ---- did an earlier write go through? -------------------------------------------

    def find_reply(self, brand_user_id: str, in_reply_to_tweet_id: str, text: str, since: str) -> Optional[str]:
        """The id of the brand's reply with this text to that post, posted at or after ``since``; else None."""
        body, _ = self._call("GET", f"/2/users/{brand_user_id}/tweets", self._app_token, params={
            "start_time": _x_time(since), "max_results": 100, "tweet.fields": "created_at,referenced_tweets"})
        for tweet in body.get("data") or []:
            replied_to = {ref.get("id") for ref in tweet.get("referenced_tweets") or []
                          if isinstance(ref, dict) and ref.get("type") == "replied_to"}
            if str(in_reply_to_tweet_id) in replied_to and tweet.get("text") == text:
                return str(tweet["id"])
        return None

    def find_dm(self, participant_id: str, text: str, since: str, brand_user_id: str) -> Optional[str]:
        """The id of the brand's DM with this text to ``participant_id`` sent at or after ``since``; else None."""
        body, _ = self._call("GET", "/2/dm_events", self._user_token, params={
            "dm_event.fields": DM_EVENT_FIELDS, "event_types": "MessageCreate", "max_results": 100})
        for event in body.get("data") or []:
            if (event.get("sender_id") == brand_user_id and event.get("text") == text
                    and str(participant_id) in str(event.get("dm_conversation_id", "")).split("-")
                    and str(event.get("created_at", "")) >= _x_time(since)):
                return str(event["id"])
        return None


def build_search_query(terms: List[str], brand_handle: str, exclude_retweets: bool = True) -> str:
    """``("a" OR "b") -from:brand -is:retweet``; the rule lives in the domain (sources are checked
    against it when saved), trailing terms dropped to stay within X's 512 characters."""
    return x_search_query(terms, brand_handle, exclude_retweets, max_length=MAX_QUERY_LENGTH)


def normalize_tweet(tweet: Dict[str, Any], users_by_id: Dict[str, Dict[str, Any]], *, brand_user_id: str,
                    source_id: str, kind_hint: str, brand_handle: str = "",
                    media_by_key: Optional[Dict[str, Dict[str, Any]]] = None) -> Mention:
    """One X post (v2 shape, with authors from includes.users) as a Mention."""
    tweet_id = str(tweet["id"])
    author = _author(str(tweet.get("author_id", "")), users_by_id)
    replied_to = next((str(ref["id"]) for ref in tweet.get("referenced_tweets") or []
                       if ref.get("type") == "replied_to"), "")
    kind = "reply" if replied_to else (kind_hint if kind_hint in KINDS else "mention")
    return Mention(
        platform="x",
        kind=kind,
        platform_id=tweet_id,
        author=author,
        text=tweet.get("text", ""),
        created_at=tweet.get("created_at", ""),
        source_id=source_id,
        lang=tweet.get("lang", ""),
        conversation_id=str(tweet.get("conversation_id", "")),
        in_reply_to_id=replied_to,
        permalink=f"https://x.com/{author.handle or 'i/web'}/status/{tweet_id}",
        addressed_to_brand=_addresses_brand(tweet, brand_user_id, brand_handle),
        media=tweet_media(tweet, media_by_key or {}),
        raw=tweet,
    )


def tweet_media(tweet: Dict[str, Any], media_by_key: Dict[str, Dict[str, Any]]) -> List[MediaItem]:
    """A post's photos, videos and GIFs: ``attachments.media_keys`` looked up in ``includes.media``
    (a photo has ``url``; a video or GIF only ``preview_image_url``, its frame)."""
    attachments = tweet.get("attachments") if isinstance(tweet.get("attachments"), dict) else {}
    items: List[MediaItem] = []
    for key in attachments.get("media_keys") or []:
        media = media_by_key.get(str(key))
        if not isinstance(media, dict) or media.get("type") not in X_MEDIA_TYPES:
            continue
        url = media.get("url") or media.get("preview_image_url") or ""
        if not isinstance(url, str) or not url.startswith("https://"):
            continue
        alt = media.get("alt_text")
        items.append(MediaItem(type=X_MEDIA_TYPES[media["type"]], url=url,
                               caption=alt if isinstance(alt, str) else ""))
    return bounded(items)


def normalize_dm_event(event: Dict[str, Any], users_by_id: Dict[str, Dict[str, Any]], *,
                       source_id: str, media_by_key: Optional[Dict[str, Dict[str, Any]]] = None) -> Mention:
    """One MessageCreate DM event as a Mention of kind "dm"."""
    conversation_id = str(event.get("dm_conversation_id", ""))
    return Mention(
        platform="x",
        kind="dm",
        platform_id=str(event["id"]),
        author=_author(str(event.get("sender_id", "")), users_by_id),
        text=event.get("text", ""),
        created_at=event.get("created_at", ""),
        source_id=source_id,
        conversation_id=conversation_id,
        permalink=f"https://x.com/messages/{conversation_id}" if conversation_id else "",
        addressed_to_brand=True,
        media=tweet_media(event, media_by_key or {}),
        raw=event,
    )


def _tweet_page(body: Dict[str, Any], rate_limit: RateLimit, *, brand_user_id: str, source_id: str,
                kind_hint: str) -> Page:
    users_by_id = _users_by_id(body)
    media_by_key = _media_by_key(body)
    brand_handle = (users_by_id.get(brand_user_id) or {}).get("username", "")
    tweets = body.get("data") or []
    meta = body.get("meta") or {}
    return Page(
        mentions=[normalize_tweet(tweet, users_by_id, brand_user_id=brand_user_id, source_id=source_id,
                                  kind_hint=kind_hint, brand_handle=brand_handle, media_by_key=media_by_key)
                  for tweet in tweets],
        newest_id=meta.get("newest_id"),
        next_token=meta.get("next_token"),
        rate_limit=rate_limit,
        result_count=int(meta.get("result_count", len(tweets))),
    )


def _media_by_key(body: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """``includes.media`` by media key (photos, videos and GIFs attached to posts and DMs)."""
    return {str(m["media_key"]): m for m in (body.get("includes") or {}).get("media") or []
            if isinstance(m, dict) and m.get("media_key")}


def _id_after(candidate: Any, since_id: str) -> bool:
    try:
        return int(candidate) > int(since_id)
    except (TypeError, ValueError):
        return True


def _users_by_id(body: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {str(user["id"]): user for user in (body.get("includes") or {}).get("users") or [] if "id" in user}


def _author(user_id: str, users_by_id: Dict[str, Dict[str, Any]]) -> Author:
    user = users_by_id.get(user_id) or {}
    verified_type = user.get("verified_type") or "none"
    return Author(
        id=user_id or "unknown",
        handle=user.get("username", ""),
        name=user.get("name", ""),
        verified=bool(user.get("verified")) or verified_type in VERIFIED_TYPES,
        verified_type=verified_type,
        followers=int((user.get("public_metrics") or {}).get("followers_count") or 0),
    )


def _addresses_brand(tweet: Dict[str, Any], brand_user_id: str, brand_handle: str) -> bool:
    if brand_user_id and str(tweet.get("in_reply_to_user_id", "")) == brand_user_id:
        return True
    for mention in (tweet.get("entities") or {}).get("mentions") or []:
        if brand_user_id and str(mention.get("id", "")) == brand_user_id:
            return True
        if brand_handle and str(mention.get("username", "")).lower() == brand_handle.lstrip("@").lower():
            return True
    return False


def _created_id(body: Dict[str, Any], key: str) -> str:
    created = (body.get("data") or {}).get(key)
    if not created:
        raise XAmbiguous(f"X answered without data.{key}; the write may have been carried out: {str(body)[:200]}",
                         body=body)
    return str(created)


def _image_type(data: bytes) -> str:
    """JPEG or PNG by their first bytes (a URL's name or header may say otherwise)."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    raise XRequestError("the attached file is not a JPEG or PNG image")


def _x_time(iso: str) -> str:
    """X's start_time format (seconds, Z), a second early so the attempt's own second is included."""
    from datetime import datetime, timedelta, timezone

    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")) - timedelta(seconds=1)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_from(response: Response, *, write: bool) -> XError:
    rate_limit = RateLimit.from_headers(response.headers)
    body = response.body if isinstance(response.body, dict) else {}
    status = response.status
    problem = str(body.get("type", "")).rsplit("/", 1)[-1]
    message = f"X {status}: {_problem_message(body) or response.text[:300] or 'no details'}"
    details = {"status": status, "rate_limit": rate_limit, "body": response.body}
    if status == 429 or problem == "usage-capped":
        reset_at = rate_limit.reset_at or int(time.time()) + USAGE_CAP_BACKOFF_SECONDS
        return XRateLimited(message, reset_at=reset_at, **details)
    if status == 401 or (status == 403 and (problem in ACCESS_PROBLEMS or not write)):
        return XAuthError(message, **details)
    if status >= 500:
        return XTransientError(message, **details)
    return XRequestError(message, **details)


def _problem_message(body: Dict[str, Any]) -> str:
    """X's own words: the specific errors[] messages if any, else the problem detail/title."""
    specific = [str(err.get("message") or err.get("detail")) for err in body.get("errors") or []
                if isinstance(err, dict) and (err.get("message") or err.get("detail"))]
    if specific:
        return "; ".join(specific)
    return str(body.get("detail") or body.get("title") or "")
