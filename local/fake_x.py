"""A fake X API v2 for tests and the local demo.

It speaks the real shapes (fields selected by ``tweet.fields`` and friends,
``includes.users``, ``meta`` with opaque pagination tokens, RFC 7807 problem
bodies, rate-limit headers with 15-minute windows) so the adapter is tested
against the contract, not against itself. Seed posts are released over time
so the demo shows mentions arriving the way a poller sees them.

Media (issue 12): posts and DMs may carry photos, videos and GIFs (``add_post(media=...)``), served
as ``attachments.media_keys`` and ``includes.media``; ``POST /2/media/upload`` takes an image in
base64 JSON and gives a media id that a reply (``media.media_ids``, 1-4) or a DM (``attachments``,
one) may then carry; an id it never issued is refused.

    python -m local.fake_x --port 8081 --seed local/data/x_stream.json --release-every 5

Tests can drive a fake in another process through ``/_fake/...`` (see
``FakeXControl``).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from chalicelib.domain.text_limits import X_MAX_POST_LENGTH as MAX_POST_LENGTH
from chalicelib.domain.text_limits import weighted_length
from local.fake_server import FakeControl, FakeServer

SORA_AIR_ID = "1610469134802145281"
SORA_AIR_HANDLE = "SoraAir"
TWITTER_EPOCH_MS = 1288834974657
WINDOW_SECONDS = 15 * 60
TOKEN_PATH = "/2/oauth2/token"
OAUTH_ACCESS_TOKEN_TTL = 7200  # X's user access tokens last two hours
# Per 15-minute window, from the platform notes; DM reads are not listed
# there, so that one is a generous guess.
DEFAULT_LIMITS = {"mentions": 450, "user_tweets": 900, "search": 450, "dm_events": 300, "post": 100, "dm_send": 15,
                  "media_upload": 500}
USER_CONTEXT_ENDPOINTS = ("dm_events", "post", "dm_send", "media_upload")
# POST /2/media/upload (simple upload, JSON with the file in base64): images up to 5 MB.
UPLOAD_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
UPLOAD_IMAGE_MAX_BYTES = 5 * 1024 * 1024
MEDIA_CATEGORIES = ("tweet_image", "dm_image", "tweet_gif", "dm_gif", "tweet_video", "dm_video", "subtitles")
# Media attached to seeded or added posts (add_post(media=[...])): X's types and fields.
MEDIA_TYPES = ("photo", "video", "animated_gif")
DEFAULT_TWEET_FIELDS = ("id", "text", "edit_history_tweet_ids")
DEFAULT_USER_FIELDS = ("id", "name", "username")
DEFAULT_DM_FIELDS = ("id", "event_type", "text")
REPLY_NOT_ALLOWED = ("Reply to this conversation is not allowed because you have not been mentioned or "
                     "otherwise engaged by the author of the post you are replying to.")
REPLY_TARGET_MISSING = "You attempted to reply to a Tweet that is deleted or not visible to you."
DUPLICATE_CONTENT = "You are not allowed to create a Tweet with duplicate content."
DM_NOT_ALLOWED = "You cannot send messages to this user."
_HANDLE_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")

ROUTES = (
    ("GET", re.compile(r"^/2/users/(?P<user_id>\d+)/mentions$"), "mentions"),
    ("GET", re.compile(r"^/2/users/(?P<user_id>\d+)/tweets$"), "user_tweets"),
    ("GET", re.compile(r"^/2/tweets/search/recent$"), "search"),
    ("GET", re.compile(r"^/2/dm_events$"), "dm_events"),
    ("POST", re.compile(r"^/2/tweets$"), "post"),
    ("POST", re.compile(r"^/2/dm_conversations/with/(?P<participant_id>\d+)/messages$"), "dm_send"),
    ("POST", re.compile(r"^/2/media/upload$"), "media_upload"),
)


class BadRequest(Exception):
    """A 400 with X's invalid-request problem body."""

    def __init__(self, message: str, parameter: str = "", value: str = ""):
        super().__init__(message)
        self.parameter = parameter
        self.value = value


@dataclass
class _Failure:
    path_prefix: str
    status: int
    times: int
    reset_in: int
    body: Optional[Dict[str, Any]]
    method: Optional[str]
    # The request is carried out, then answered with the failure: a response
    # lost after X wrote the post (the case a sender must never retry blindly).
    after_write: bool = False


@dataclass
class _Window:
    started: float
    used: int = 0


def problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any) -> Dict[str, Any]:
    problem_type = kind if kind == "about:blank" else f"https://api.twitter.com/2/problems/{kind}"
    return {"title": title, "detail": detail, "type": problem_type, "status": status, **extra}


def usage_capped_problem() -> Dict[str, Any]:
    """The body X sends when the project's monthly post cap is used up."""
    return problem(429, "UsageCapExceeded", "Usage cap exceeded: Monthly product cap", "usage-capped",
                   period="Monthly", scope="Product")


DEFAULT_FAILURE_BODIES = {
    401: problem(401, "Unauthorized", "Unauthorized"),
    403: problem(403, "Forbidden", "Forbidden"),
    429: problem(429, "Too Many Requests", "Too Many Requests"),
    500: problem(500, "Internal Server Error", "Internal Server Error"),
    503: problem(503, "Service Unavailable", "Service Unavailable"),
}


class FakeX(FakeServer):
    name = "fake-x"

    def __init__(self, port: int = 0, bearer_token: str = "fake-bearer-token",
                 brand_user_id: str = SORA_AIR_ID, brand_handle: str = SORA_AIR_HANDLE, *,
                 user_token: Optional[str] = None, rate_limits: Optional[Dict[str, int]] = None,
                 host: str = "127.0.0.1", clock: Callable[[], float] = time.time,
                 oauth_client_id: Optional[str] = None, oauth_client_secret: Optional[str] = None,
                 access_token_ttl: int = OAUTH_ACCESS_TOKEN_TTL):
        """``user_token``, when set, is also accepted, and is then required for DMs and posting.

        ``oauth_client_id`` turns on the OAuth 2.0 token endpoint (``POST /2/oauth2/token``):
        access tokens it issues act as the brand until ``access_token_ttl`` seconds pass, and
        each refresh rotates the refresh token (a spent one is refused with ``invalid_grant``).
        With ``oauth_client_secret`` the client is confidential and must use Basic auth.
        """
        self.host = host
        self.port = port
        self.bearer_token = bearer_token
        self.user_token = user_token
        self.brand_user_id = brand_user_id
        self.brand_handle = brand_handle
        self.limits = {**DEFAULT_LIMITS, **(rate_limits or {})}
        self._clock = clock
        super().__init__()
        self._last_id = 0
        self._users: Dict[str, Dict[str, Any]] = {}
        self._tweets: Dict[str, Dict[str, Any]] = {}
        self._dm_events: List[Dict[str, Any]] = []
        self._pending: deque = deque()
        self._seed_ids: Dict[str, str] = {}
        self._failures: List[_Failure] = []
        self._windows: Dict[str, _Window] = {}
        # Uploaded media (id -> {"media_key", "type", "size", "category"}) and media attached to posts (by key).
        self._uploads: Dict[str, Dict[str, Any]] = {}
        self._media: Dict[str, Dict[str, Any]] = {}
        self.oauth_client_id = oauth_client_id
        self.oauth_client_secret = oauth_client_secret
        self.access_token_ttl = access_token_ttl
        self._refresh_tokens: Dict[str, bool] = {}    # refresh token -> still usable
        self._access_tokens: Dict[str, float] = {}    # access token -> expiry (clock seconds)
        self._codes: Dict[str, Dict[str, str]] = {}   # authorization code -> redirect_uri, code_challenge
        self.add_user(brand_handle, id=brand_user_id, name=brand_handle, verified_type="business")

    # ---- data ------------------------------------------------------------

    def add_user(self, username: str, *, id: Optional[str] = None, name: str = "", verified: bool = False,
                 verified_type: str = "none", followers: int = 0, following: int = 0,
                 tweets: int = 0) -> Dict[str, Any]:
        with self._lock:
            existing = self._user_by_handle(username)
            user_id = str(id or (existing or {}).get("id") or self._next_id())
            user = {
                "id": user_id,
                "name": name or username,
                "username": username,
                "verified": bool(verified),
                "verified_type": verified_type or "none",
                "public_metrics": {"followers_count": int(followers), "following_count": int(following),
                                   "tweet_count": int(tweets), "listed_count": 0},
            }
            self._users[user_id] = user
            return dict(user)

    def add_post(self, author: str, text: str, *, in_reply_to: Optional[str] = None, lang: str = "",
                 created_at: Optional[str] = None, media: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
        """Publish a post now; ``author`` is a username or user id (unknown usernames are created).

        ``media``: ``[{"type": "photo"|"video"|"animated_gif", "alt_text"?}]``, served as
        ``attachments.media_keys`` and, with ``expansions=attachments.media_keys``, ``includes.media``."""
        with self._lock:
            author_user = self._resolve_user(author)
            parent = self._tweets.get(str(in_reply_to)) if in_reply_to else None
            if in_reply_to and parent is None:
                raise ValueError(f"no visible post {in_reply_to} to reply to")
            tweet_id = self._next_id()
            tweet: Dict[str, Any] = {
                "id": tweet_id,
                "text": text,
                "edit_history_tweet_ids": [tweet_id],
                "created_at": created_at or self._now_iso(),
                "author_id": author_user["id"],
                "conversation_id": parent["conversation_id"] if parent else tweet_id,
                "lang": lang or ("ja" if _CJK.search(text) else "en"),
            }
            if parent:
                tweet["in_reply_to_user_id"] = parent["author_id"]
                tweet["referenced_tweets"] = [{"type": "replied_to", "id": parent["id"]}]
            mentions = self._mention_entities(text)
            if mentions:
                tweet["entities"] = {"mentions": mentions}
            keys = [self._add_media(tweet_id, index, spec) for index, spec in enumerate(media or [])]
            if keys:
                tweet["attachments"] = {"media_keys": keys}
            self._tweets[tweet_id] = tweet
            return dict(tweet)

    def _add_media(self, tweet_id: str, index: int, spec: Dict[str, Any]) -> str:
        kind = spec.get("type", "photo")
        if kind not in MEDIA_TYPES:
            raise ValueError(f"media type {kind!r} is not one of {', '.join(MEDIA_TYPES)}")
        prefix = {"photo": "3", "video": "7", "animated_gif": "16"}[kind]
        key = f"{prefix}_{tweet_id}{index}"
        item: Dict[str, Any] = {"media_key": key, "type": kind, "width": 1200, "height": 900}
        if kind == "photo":
            item["url"] = f"https://pbs.twimg.com/media/F{tweet_id}{index}.jpg"
        else:
            item["preview_image_url"] = f"https://pbs.twimg.com/ext_tw_video_thumb/{tweet_id}/pu/img/{index}.jpg"
        if spec.get("alt_text"):
            item["alt_text"] = str(spec["alt_text"])
        self._media[key] = item
        return key

    def add_dm(self, sender: str, text: str, *, created_at: Optional[str] = None,
               media: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
        """A DM from ``sender`` (username or id) to the brand; ``media`` as for ``add_post`` (X allows one)."""
        with self._lock:
            sender_user = self._resolve_user(sender)
            event = self._record_dm(sender_user["id"], self.brand_user_id, text, created_at)
            keys = [self._add_media(event["id"], index, spec) for index, spec in enumerate((media or [])[:1])]
            if keys:
                event["attachments"] = {"media_keys": keys}
            return dict(event)

    def load_seed(self, path: str) -> int:
        """Queue a seed stream (see local/data/x_stream.json); ``release`` makes it visible."""
        with open(path, encoding="utf-8") as handle:
            seed = json.load(handle)
        brand = seed.get("brand") or {}
        if brand.get("username") and brand["username"].lower() != self.brand_handle.lower():
            raise ValueError(f"seed is for @{brand['username']}, this fake serves @{self.brand_handle}")
        with self._lock:
            if brand:
                self._apply_profile(self.brand_user_id, brand)
            for user in seed.get("users") or []:
                self.add_user(user["username"], id=user.get("id"), name=user.get("name", ""),
                              verified=user.get("verified", False),
                              verified_type=user.get("verified_type", "none"),
                              followers=user.get("followers", 0), following=user.get("following", 0),
                              tweets=user.get("tweets", 0))
            self._pending.extend(seed.get("stream") or [])
            return len(self._pending)

    def release(self, n: Optional[int] = None) -> List[Dict[str, Any]]:
        """Make the next ``n`` seed items (all when None) visible, with fresh ids and times."""
        with self._lock:
            count = len(self._pending) if n is None else min(n, len(self._pending))
            return [self._materialize(self._pending.popleft()) for _ in range(count)]

    def username_of(self, user_id: str) -> str:
        with self._lock:
            return (self._users.get(str(user_id)) or {}).get("username", str(user_id))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # ---- failure and limit controls ---------------------------------------

    def fail_next(self, path_prefix: str, status: int, times: int = 1, reset_in: int = 60,
                  body: Optional[Dict[str, Any]] = None, method: Optional[str] = None,
                  after_write: bool = False) -> None:
        """Answer the next ``times`` matching requests with ``status`` (429 carries reset now+reset_in);
        with ``after_write`` the request is carried out first and only its answer is lost."""
        default = DEFAULT_FAILURE_BODIES.get(status) or problem(status, "Error", f"Injected {status}")
        with self._lock:
            self._failures.append(_Failure(path_prefix, int(status), int(times), int(reset_in),
                                           body or default, method.upper() if method else None, bool(after_write)))

    def set_limit(self, endpoint: str, limit: int) -> None:
        if endpoint not in DEFAULT_LIMITS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(DEFAULT_LIMITS)}")
        with self._lock:
            self.limits[endpoint] = int(limit)

    def reset(self) -> None:
        """Forget requests, posts sent, injected failures and rate windows; keep the data."""
        with self._lock:
            super().reset()
            self._failures.clear()
            self._windows.clear()

    def state(self) -> Dict[str, Any]:
        with self._lock:
            return {"url": self.url, "brand": {"id": self.brand_user_id, "username": self.brand_handle},
                    "posts": len(self._tweets), "dm_events": len(self._dm_events),
                    "pending": len(self._pending), "posted": len(self._posted), "limits": dict(self.limits)}

    # ---- request handling --------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Tuple[int, Dict[str, str], Any]:
        """Answer one request: (status, extra headers, JSON body). Independent of the HTTP server."""
        url = urlsplit(raw_path)
        query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path.startswith("/_fake/"):
            return self._control(method, url.path, query, body)
        if url.path == TOKEN_PATH:
            return self._token_endpoint(method, headers, body)
        with self._lock:
            auth = self._auth_kind(headers.get("Authorization") or "")
            entry = {"method": method, "path": url.path, "query": query, "auth": auth}
            self._requests.append(entry)
            status, extra_headers, payload = self._answer(method, url.path, query, auth, body)
            entry["status"] = status
            return status, extra_headers, payload

    def _answer(self, method: str, path: str, query: Dict[str, str], auth: str,
                body: bytes) -> Tuple[int, Dict[str, str], Any]:
        route = self._route(method, path)
        if route is None:
            return 404, {}, problem(404, "Not Found Error", f"No route for {method} {path}")
        endpoint, path_params = route
        window = self._window(endpoint)
        failure = self._take_failure(method, path)
        if failure is not None and failure.after_write:
            try:
                getattr(self, f"_serve_{endpoint}")(query, path_params, body)
            except BadRequest:
                pass
            return failure.status, self._limit_headers(endpoint, window), failure.body
        if failure is not None:
            if failure.status == 429:
                reset_at = int(self._clock()) + failure.reset_in
                return 429, self._limit_headers(endpoint, window, remaining=0, reset_at=reset_at), failure.body
            return failure.status, self._limit_headers(endpoint, window), failure.body
        if auth in ("missing", "invalid"):
            return 401, self._limit_headers(endpoint, window), DEFAULT_FAILURE_BODIES[401]
        if auth == "app" and (self.user_token or self.oauth_client_id) and endpoint in USER_CONTEXT_ENDPOINTS:
            detail = ("Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint. "
                      "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].")
            return 403, self._limit_headers(endpoint, window), problem(
                403, "Unsupported Authentication", detail, "unsupported-authentication")
        if window.used >= self.limits[endpoint]:
            return 429, self._limit_headers(endpoint, window), DEFAULT_FAILURE_BODIES[429]
        window.used += 1
        try:
            status, payload = getattr(self, f"_serve_{endpoint}")(query, path_params, body)
        except BadRequest as err:
            status, payload = 400, _invalid_request(err)
        return status, self._limit_headers(endpoint, window), payload

    def _serve_mentions(self, query: Dict[str, str], params: Dict[str, str], body: bytes) -> Tuple[int, Any]:
        user_id = params["user_id"]
        max_results = _int_param(query, "max_results", 10, 5, 100)
        tweets = [tweet for tweet in self._newest_first(self._tweets.values())
                  if tweet["author_id"] != user_id and user_id in _mentioned_ids(tweet)]
        tweets = _id_window(tweets, query)
        page, next_token = _paginate(tweets, max_results, query.get("pagination_token"), "mentions")
        return 200, self._tweets_body(page, query, next_token)

    def _serve_search(self, query: Dict[str, str], params: Dict[str, str], body: bytes) -> Tuple[int, Any]:
        text = query.get("query", "")
        if not text.strip():
            raise BadRequest("The `query` query parameter can not be empty", "query", text)
        if len(text) > 512:
            raise BadRequest(f"There were errors processing your request: Query length ({len(text)}) exceeds "
                             "the maximum of 512 characters", "query", text)
        max_results = _int_param(query, "max_results", 10, 10, 100)
        matches = parse_search_query(text)
        tweets = [tweet for tweet in self._newest_first(self._tweets.values())
                  if matches(tweet, self._users.get(tweet["author_id"]) or {})]
        tweets = _id_window(tweets, query)
        token = query.get("next_token") or query.get("pagination_token")
        page, next_token = _paginate(tweets, max_results, token, "search")
        return 200, self._tweets_body(page, query, next_token)

    def _serve_dm_events(self, query: Dict[str, str], params: Dict[str, str], body: bytes) -> Tuple[int, Any]:
        max_results = _int_param(query, "max_results", 100, 1, 100)
        wanted_types = _csv(query.get("event_types")) or ["MessageCreate"]
        events = [event for event in self._newest_first(self._dm_events) if event["event_type"] in wanted_types]
        page, next_token = _paginate(events, max_results, query.get("pagination_token"), "dm_events")
        if not page:
            return 200, {"meta": {"result_count": 0}}
        fields = DEFAULT_DM_FIELDS + tuple(_csv(query.get("dm_event.fields")))
        response: Dict[str, Any] = {"data": [_select(event, fields) for event in page]}
        if "sender_id" in _csv(query.get("expansions")):
            response["includes"] = {"users": self._users_for({event["sender_id"] for event in page}, query)}
        keys = [key for event in page for key in (event.get("attachments") or {}).get("media_keys", [])]
        if keys and "attachments.media_keys" in _csv(query.get("expansions")):
            wanted = ("media_key", "type") + tuple(_csv(query.get("media.fields")))
            response.setdefault("includes", {})["media"] = [_select(self._media[key], wanted)
                                                            for key in keys if key in self._media]
        response["meta"] = _meta(page, next_token, with_ids=False)
        return 200, response

    def _serve_user_tweets(self, query: Dict[str, str], params: Dict[str, str], body: bytes) -> Tuple[int, Any]:
        """GET /2/users/:id/tweets: the user's own posts and replies, newest first, from ``start_time``."""
        user_id = params["user_id"]
        max_results = _int_param(query, "max_results", 10, 5, 100)
        start_time = query.get("start_time") or ""
        own = [t for t in self._tweets.values() if t["author_id"] == user_id
               and (not start_time or t["created_at"] >= start_time)]
        return 200, self._tweets_body(self._newest_first(own)[:max_results], query, None)

    def _serve_post(self, query: Dict[str, str], params: Dict[str, str], body: bytes) -> Tuple[int, Any]:
        request = _json_body(body)
        text = request.get("text")
        if not isinstance(text, str) or not text:
            raise BadRequest("The `text` field is required", "text", "")
        length = weighted_length(text)
        if length > MAX_POST_LENGTH:
            raise BadRequest(f"Your Tweet text is too long ({length} > {MAX_POST_LENGTH} weighted characters)",
                             "text", text)
        target_id = str((request.get("reply") or {}).get("in_reply_to_tweet_id") or "")
        target = self._tweets.get(target_id) if target_id else None
        if target_id and target is None:
            return 403, problem(403, "Forbidden", REPLY_TARGET_MISSING)
        if target is not None and not self._summoned_brand(target):
            return 403, problem(403, "Forbidden", REPLY_NOT_ALLOWED)
        if any(item.get("text") == text and item["kind"] in ("reply", "post") for item in self._posted):
            return 403, problem(403, "Forbidden", DUPLICATE_CONTENT)
        media_ids = self._attached_media((request.get("media") or {}).get("media_ids"), "media.media_ids", most=4)
        tweet = self.add_post(self.brand_user_id, text, in_reply_to=target_id or None)
        self._posted.append({"kind": "reply" if target else "post", "id": tweet["id"], "text": text,
                             "in_reply_to_tweet_id": target_id, "to_user_id": (target or {}).get("author_id", ""),
                             "created_at": tweet["created_at"], **({"media_ids": media_ids} if media_ids else {})})
        return 201, {"data": {"id": tweet["id"], "text": text, "edit_history_tweet_ids": [tweet["id"]]}}

    def _serve_dm_send(self, query: Dict[str, str], params: Dict[str, str], body: bytes) -> Tuple[int, Any]:
        participant_id = params["participant_id"]
        request = _json_body(body)
        text = request.get("text")
        if not isinstance(text, str) or not text:
            raise BadRequest("The `text` field is required", "text", "")
        attachments = request.get("attachments")
        media_ids = self._attached_media(
            [a.get("media_id") for a in attachments if isinstance(a, dict)] if isinstance(attachments, list)
            else attachments, "attachments", most=1)
        if participant_id not in self._users or participant_id == self.brand_user_id:
            return 403, problem(403, "Forbidden", DM_NOT_ALLOWED)
        event = self._record_dm(self.brand_user_id, participant_id, text, None)
        self._posted.append({"kind": "dm", "dm_event_id": event["id"], "participant_id": participant_id,
                             "dm_conversation_id": event["dm_conversation_id"], "text": text,
                             "created_at": event["created_at"], **({"media_ids": media_ids} if media_ids else {})})
        return 201, {"data": {"dm_conversation_id": event["dm_conversation_id"], "dm_event_id": event["id"]}}

    def _serve_media_upload(self, query: Dict[str, str], params: Dict[str, str], body: bytes) -> Tuple[int, Any]:
        """``POST /2/media/upload`` with ``{"media": <base64>, "media_category", "media_type"}``."""
        request = _json_body(body)
        category, media_type = request.get("media_category", "tweet_image"), request.get("media_type")
        if category not in MEDIA_CATEGORIES:
            raise BadRequest(f"The `media_category` value [{category}] is not one of {', '.join(MEDIA_CATEGORIES)}",
                             "media_category", str(category))
        if media_type not in UPLOAD_IMAGE_TYPES:
            raise BadRequest(f"The `media_type` value [{media_type}] is not a supported image type",
                             "media_type", str(media_type))
        try:
            data = base64.b64decode(str(request.get("media") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("The `media` field must be the file's bytes in base64", "media", "") from None
        if not data or len(data) > UPLOAD_IMAGE_MAX_BYTES:
            raise BadRequest(f"The image must be 1 to {UPLOAD_IMAGE_MAX_BYTES} bytes", "media", "")
        media_id = self._next_id()
        self._uploads[media_id] = {"media_key": f"3_{media_id}", "type": media_type, "size": len(data),
                                   "category": category}
        self._posted.append({"kind": "media_upload", "id": media_id, "media_type": media_type, "size": len(data),
                             "media_category": category, "created_at": self._now_iso()})
        return 200, {"data": {"id": media_id, "media_key": f"3_{media_id}", "size": len(data),
                              "expires_after_secs": 86400, "image": {"image_type": media_type}}}

    def _attached_media(self, value: Any, field: str, *, most: int) -> List[str]:
        """Media ids a post or DM names: each uploaded here, at most ``most``."""
        if value is None:
            return []
        if not isinstance(value, list) or not value or len(value) > most:
            raise BadRequest(f"The `{field}` field must list 1 to {most} media ids", field, "")
        ids = [str(item) for item in value]
        unknown = [media_id for media_id in ids if media_id not in self._uploads]
        if unknown:
            raise BadRequest(f"Your media IDs are invalid: {', '.join(unknown)}", field, unknown[0])
        return ids

    # ---- OAuth 2.0 (POST /2/oauth2/token) ------------------------------------

    def issue_refresh_token(self) -> str:
        """A refresh token as if the brand had authorized the app with offline.access."""
        with self._lock:
            token = f"rt-{secrets.token_urlsafe(12)}"
            self._refresh_tokens[token] = True
            return token

    def authorize(self, redirect_uri: str, code_challenge: str) -> str:
        """The code X would hand to ``redirect_uri`` once the brand authorizes the app (PKCE, S256)."""
        with self._lock:
            code = f"code-{secrets.token_urlsafe(12)}"
            self._codes[code] = {"redirect_uri": redirect_uri, "code_challenge": code_challenge}
            return code

    def _token_endpoint(self, method: str, headers: Any, body: bytes) -> Tuple[int, Dict[str, str], Any]:
        form = {key: values[-1] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        with self._lock:
            entry = {"method": method, "path": TOKEN_PATH, "query": {}, "auth": "oauth",
                     "grant_type": form.get("grant_type", "")}
            self._requests.append(entry)
            status, payload = self._token_answer(method, headers, form)
            entry["status"] = status
            return status, {"Cache-Control": "no-store"}, payload

    def _token_answer(self, method: str, headers: Any, form: Dict[str, str]) -> Tuple[int, Any]:
        def oauth_error(status: int, error: str, description: str) -> Tuple[int, Any]:
            return status, {"error": error, "error_description": description}

        if method != "POST" or not self.oauth_client_id:
            return 404, problem(404, "Not Found Error", f"No route for {method} {TOKEN_PATH}")
        failure = self._take_failure(method, TOKEN_PATH)
        if failure is not None:
            return failure.status, failure.body or DEFAULT_FAILURE_BODIES.get(failure.status, {})
        if form.get("client_id") != self.oauth_client_id:
            return oauth_error(400, "invalid_request", "Missing required parameter [client_id].")
        if self.oauth_client_secret:
            expected = base64.b64encode(f"{self.oauth_client_id}:{self.oauth_client_secret}".encode()).decode()
            if (headers.get("Authorization") or "") != f"Basic {expected}":
                return oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            token = form.get("refresh_token", "")
            if not self._refresh_tokens.get(token):
                return oauth_error(400, "invalid_grant", "Value passed for the token was invalid.")
            self._refresh_tokens[token] = False  # rotated: the old refresh token is spent
        elif grant_type == "authorization_code":
            grant = self._codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri") or grant["code_challenge"] != challenge:
                return oauth_error(400, "invalid_grant", "Value passed for the authorization code was invalid.")
        else:
            return oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        access_token = f"at-{secrets.token_urlsafe(16)}"
        self._access_tokens[access_token] = self._clock() + self.access_token_ttl
        refresh_token = f"rt-{secrets.token_urlsafe(12)}"
        self._refresh_tokens[refresh_token] = True
        return 200, {"token_type": "bearer", "expires_in": self.access_token_ttl, "access_token": access_token,
                     "scope": "tweet.read tweet.write users.read dm.read dm.write offline.access",
                     "refresh_token": refresh_token}

    # ---- HTTP control surface (/_fake/...) ---------------------------------

    def _control(self, method: str, path: str, query: Dict[str, str], body: bytes) -> Tuple[int, Dict[str, str], Any]:
        try:
            request = _json_body(body) if body else {}
            status, payload = self._control_action(method, path.rstrip("/"), request)
        except (BadRequest, ValueError, KeyError, TypeError) as err:
            return 400, {}, {"error": str(err)}
        return status, {}, payload

    def _control_action(self, method: str, path: str, request: Dict[str, Any]) -> Tuple[int, Any]:
        if method == "GET" and path == "/_fake/posted":
            return 200, {"posted": self.posted}
        if method == "GET" and path == "/_fake/requests":
            return 200, {"requests": self.requests}
        if method == "GET" and path == "/_fake/state":
            return 200, self.state()
        if method != "POST":
            return 404, {"error": f"no control {method} {path}"}
        if path == "/_fake/release":
            released = self.release(request.get("n"))
            return 200, {"released": [item["id"] for item in released], "pending": self.pending}
        if path == "/_fake/fail":
            self.fail_next(request["path_prefix"], request["status"], request.get("times", 1),
                           request.get("reset_in", 60), request.get("body"), request.get("method"),
                           bool(request.get("after_write")))
            return 200, {"ok": True}
        if path == "/_fake/limits":
            for endpoint, limit in request.items():
                self.set_limit(endpoint, limit)
            return 200, {"limits": dict(self.limits)}
        if path == "/_fake/reset":
            self.reset()
            return 200, {"ok": True}
        if path == "/_fake/seed":
            return 200, {"pending": self.load_seed(request["path"])}
        if path == "/_fake/users":
            return 201, self.add_user(**request)
        if path == "/_fake/posts":
            return 201, self.add_post(**request)
        if path == "/_fake/dms":
            return 201, self.add_dm(**request)
        return 404, {"error": f"no control {method} {path}"}

    # ---- helpers -----------------------------------------------------------

    def _next_id(self) -> str:
        # Snowflake layout (ms since X's epoch << 22), forced strictly increasing.
        candidate = (int(self._clock() * 1000) - TWITTER_EPOCH_MS) << 22
        self._last_id = max(candidate, self._last_id + 1)
        return str(self._last_id)

    def _now_iso(self) -> str:
        moment = datetime.fromtimestamp(self._clock(), tz=timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def _user_by_handle(self, handle: str) -> Optional[Dict[str, Any]]:
        wanted = handle.lstrip("@").lower()
        return next((user for user in self._users.values() if user["username"].lower() == wanted), None)

    def _resolve_user(self, who: str) -> Dict[str, Any]:
        who = str(who)
        return self._users.get(who) or self._user_by_handle(who) or self.add_user(who.lstrip("@"))

    def _apply_profile(self, user_id: str, profile: Dict[str, Any]) -> None:
        user = self._users[user_id]
        user["name"] = profile.get("name") or user["name"]
        user["verified_type"] = profile.get("verified_type") or user["verified_type"]
        user["verified"] = bool(profile.get("verified", user["verified"]))
        user["public_metrics"]["followers_count"] = int(profile.get("followers", 0))

    def _mention_entities(self, text: str) -> List[Dict[str, Any]]:
        entities = []
        for match in _HANDLE_MENTION.finditer(text):
            entity: Dict[str, Any] = {"start": match.start(), "end": match.end(), "username": match.group(1)}
            user = self._user_by_handle(match.group(1))
            if user:
                entity["id"] = user["id"]
            entities.append(entity)
        return entities

    def _summoned_brand(self, tweet: Dict[str, Any]) -> bool:
        """Self-serve X only lets the API reply where the author tagged or answered the brand."""
        return (self.brand_user_id in _mentioned_ids(tweet)
                or tweet.get("in_reply_to_user_id") == self.brand_user_id
                or tweet["author_id"] == self.brand_user_id)

    def _record_dm(self, sender_id: str, recipient_id: str, text: str, created_at: Optional[str]) -> Dict[str, Any]:
        low, high = sorted((sender_id, recipient_id), key=int)
        event = {
            "id": self._next_id(),
            "event_type": "MessageCreate",
            "text": text,
            "sender_id": sender_id,
            "dm_conversation_id": f"{low}-{high}",
            "participant_ids": [low, high],
            "created_at": created_at or self._now_iso(),
        }
        self._dm_events.append(event)
        return event

    def _materialize(self, item: Dict[str, Any]) -> Dict[str, Any]:
        if item.get("type") == "dm":
            return self.add_dm(item["from"], item["text"])
        parent_key = item.get("reply_to")
        parent_id = self._seed_ids.get(parent_key) if parent_key else None
        tweet = self.add_post(item["author"], item["text"], in_reply_to=parent_id, lang=item.get("lang", ""))
        if item.get("key"):
            self._seed_ids[item["key"]] = tweet["id"]
        return tweet

    def _newest_first(self, items: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return sorted(items, key=lambda item: int(item["id"]), reverse=True)

    def _tweets_body(self, page: List[Dict[str, Any]], query: Dict[str, str],
                     next_token: Optional[str]) -> Dict[str, Any]:
        if not page:
            return {"meta": {"result_count": 0}}
        fields = DEFAULT_TWEET_FIELDS + tuple(_csv(query.get("tweet.fields")))
        response: Dict[str, Any] = {"data": [_select(tweet, fields) for tweet in page]}
        if "author_id" in _csv(query.get("expansions")):
            response["includes"] = {"users": self._users_for({tweet["author_id"] for tweet in page}, query)}
        if "attachments.media_keys" in _csv(query.get("expansions")):
            keys = [key for tweet in page for key in (tweet.get("attachments") or {}).get("media_keys", [])]
            wanted = ("media_key", "type") + tuple(_csv(query.get("media.fields")))
            if keys:
                response.setdefault("includes", {})["media"] = [_select(self._media[key], wanted)
                                                                for key in keys if key in self._media]
        response["meta"] = _meta(page, next_token, with_ids=True)
        return response

    def _users_for(self, user_ids: Iterable[str], query: Dict[str, str]) -> List[Dict[str, Any]]:
        fields = DEFAULT_USER_FIELDS + tuple(_csv(query.get("user.fields")))
        return [_select(self._users[user_id], fields) for user_id in sorted(user_ids) if user_id in self._users]

    def _auth_kind(self, header: str) -> str:
        if not header.startswith("Bearer "):
            return "missing"
        token = header[len("Bearer "):].strip()
        if token == self.bearer_token:
            return "app"
        if self.user_token and token == self.user_token:
            return "user"
        if self._access_tokens.get(token, 0) > self._clock():
            return "user"
        return "invalid"

    def _route(self, method: str, path: str) -> Optional[Tuple[str, Dict[str, str]]]:
        for route_method, pattern, endpoint in ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                return endpoint, match.groupdict()
        return None

    def _take_failure(self, method: str, path: str) -> Optional[_Failure]:
        for failure in self._failures:
            if path.startswith(failure.path_prefix) and failure.method in (None, method):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _window(self, endpoint: str) -> _Window:
        now = self._clock()
        window = self._windows.get(endpoint)
        if window is None or now >= window.started + WINDOW_SECONDS:
            window = self._windows[endpoint] = _Window(started=now)
        return window

    def _limit_headers(self, endpoint: str, window: _Window, remaining: Optional[int] = None,
                       reset_at: Optional[int] = None) -> Dict[str, str]:
        limit = self.limits[endpoint]
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(0, limit - window.used) if remaining is None else remaining),
            "x-rate-limit-reset": str(int(window.started + WINDOW_SECONDS) if reset_at is None else reset_at),
        }


# ---- search query language (the subset our builder and people use) ---------

_QUERY_TOKEN = re.compile(r'-?\(|\)|-?"[^"]*"|[^\s()]+')
Predicate = Callable[[Dict[str, Any], Dict[str, Any]], bool]


def parse_search_query(query: str) -> Predicate:
    """Compile ``a "b c" OR (d -e) -from:x -is:retweet lang:ja`` into a predicate on (tweet, author).

    Adjacent terms AND, ``OR`` binds looser than AND, ``-`` negates, terms
    match case-insensitively anywhere in the text.
    """
    tokens = _QUERY_TOKEN.findall(query)
    position = 0

    def parse_or() -> Predicate:
        alternatives = [parse_and()]
        while position < len(tokens) and tokens[position] == "OR":
            advance()
            alternatives.append(parse_and())
        return lambda tweet, user: any(alt(tweet, user) for alt in alternatives)

    def parse_and() -> Predicate:
        parts: List[Predicate] = []
        while position < len(tokens) and tokens[position] not in (")", "OR"):
            parts.append(parse_unary())
        if not parts:
            raise BadRequest(f"There were errors processing your request: empty clause in query {query!r}",
                             "query", query)
        return lambda tweet, user: all(part(tweet, user) for part in parts)

    def parse_unary() -> Predicate:
        token = advance()
        negated = token.startswith("-") and len(token) > 1
        body = token[1:] if negated else token
        if body == "(":
            inner = parse_or()
            if position >= len(tokens) or advance() != ")":
                raise BadRequest("There were errors processing your request: unbalanced parentheses",
                                 "query", query)
        else:
            inner = _operator(body)
        return (lambda tweet, user: not inner(tweet, user)) if negated else inner

    def advance() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    predicate = parse_or()
    if position != len(tokens):
        raise BadRequest("There were errors processing your request: unbalanced parentheses", "query", query)
    return predicate


def _operator(token: str) -> Predicate:
    name, _, value = token.partition(":")
    if token.startswith('"'):
        phrase = token.strip('"').lower()
        return lambda tweet, user: phrase in tweet["text"].lower()
    if name == "from" and value:
        return lambda tweet, user: user.get("username", "").lower() == value.lstrip("@").lower()
    if name == "lang" and value:
        return lambda tweet, user: tweet.get("lang") == value
    if name == "is" and value in ("retweet", "reply", "quote"):
        kind = {"retweet": "retweeted", "reply": "replied_to", "quote": "quoted"}[value]
        return lambda tweet, user: any(ref["type"] == kind for ref in tweet.get("referenced_tweets") or [])
    word = token.lower()
    return lambda tweet, user: word in tweet["text"].lower()


# ---- response shaping ---------------------------------------------------------

def _select(item: Dict[str, Any], fields: Iterable[str]) -> Dict[str, Any]:
    return {name: item[name] for name in dict.fromkeys(fields) if name in item}


def _csv(value: Optional[str]) -> List[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _mentioned_ids(tweet: Dict[str, Any]) -> List[str]:
    return [str(entity.get("id")) for entity in (tweet.get("entities") or {}).get("mentions") or []]


def _meta(page: List[Dict[str, Any]], next_token: Optional[str], *, with_ids: bool) -> Dict[str, Any]:
    meta: Dict[str, Any] = {}
    if with_ids:
        meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
    meta["result_count"] = len(page)
    if next_token:
        meta["next_token"] = next_token
    return meta


def _int_param(query: Dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadRequest(f"The `{name}` query parameter value [{raw}] is not between {low} and {high}", name, raw)
    return value


def _id_window(items: List[Dict[str, Any]], query: Dict[str, str]) -> List[Dict[str, Any]]:
    for name in ("since_id", "until_id"):
        if query.get(name) and not query[name].isdigit():
            raise BadRequest(f"The `{name}` query parameter value [{query[name]}] is not valid", name, query[name])
    since = int(query.get("since_id") or 0)
    until = int(query["until_id"]) if query.get("until_id") else None
    return [item for item in items if int(item["id"]) > since and (until is None or int(item["id"]) < until)]


def _paginate(items: List[Dict[str, Any]], max_results: int, token: Optional[str],
              scope: str) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """Items are newest first; a token is an opaque encoding of 'older than this id'."""
    if token:
        before = _decode_token(token, scope)
        items = [item for item in items if int(item["id"]) < before]
    page = items[:max_results]
    has_more = len(items) > max_results
    return page, (_encode_token(scope, page[-1]["id"]) if has_more else None)


def _encode_token(scope: str, last_id: str) -> str:
    return base64.b32encode(f"{scope}:{last_id}".encode()).decode().rstrip("=").lower()


def _decode_token(token: str, scope: str) -> int:
    try:
        padded = token.upper() + "=" * (-len(token) % 8)
        token_scope, _, last_id = base64.b32decode(padded).decode().partition(":")
        if token_scope == scope and last_id.isdigit():
            return int(last_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadRequest(f"The `pagination_token` query parameter value [{token}] is not valid",
                     "pagination_token", token)


def _json_body(body: bytes) -> Dict[str, Any]:
    try:
        parsed = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("Request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequest("Request body must be a JSON object")
    return parsed


def _invalid_request(err: BadRequest) -> Dict[str, Any]:
    detail = "One or more parameters to your request was invalid."
    error: Dict[str, Any] = {"message": str(err)}
    if err.parameter:
        error["parameters"] = {err.parameter: [err.value]}
    return problem(400, "Invalid Request", detail, "invalid-request", errors=[error])


class FakeXControl(FakeControl):
    """Drives a FakeX running in another process through its /_fake endpoints."""

    def release(self, n: Optional[int] = None) -> Dict[str, Any]:
        return self._call("POST", "/_fake/release", {"n": n})

    def fail_next(self, path_prefix: str, status: int, times: int = 1, reset_in: int = 60,
                  body: Optional[Dict[str, Any]] = None, method: Optional[str] = None,
                  after_write: bool = False) -> None:
        self._call("POST", "/_fake/fail", {"path_prefix": path_prefix, "status": status, "times": times,
                                           "reset_in": reset_in, "body": body, "method": method,
                                           "after_write": after_write})

    def set_limits(self, **limits: int) -> Dict[str, Any]:
        return self._call("POST", "/_fake/limits", limits)

    def reset(self) -> None:
        self._call("POST", "/_fake/reset", {})

    def add_user(self, username: str, **profile: Any) -> Dict[str, Any]:
        return self._call("POST", "/_fake/users", {"username": username, **profile})

    def add_post(self, author: str, text: str, **options: Any) -> Dict[str, Any]:
        return self._call("POST", "/_fake/posts", {"author": author, "text": text, **options})

    def add_dm(self, sender: str, text: str) -> Dict[str, Any]:
        return self._call("POST", "/_fake/dms", {"sender": sender, "text": text})



def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.fake_x", description="Fake X API v2 server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--seed", help="seed stream JSON, e.g. local/data/x_stream.json")
    parser.add_argument("--release-every", type=float, default=5.0,
                        help="seconds between releases of seed items; 0 releases everything at start")
    parser.add_argument("--release-batch", type=int, default=2, help="seed items per release")
    parser.add_argument("--release-initial", type=int, default=0, help="seed items visible at start")
    parser.add_argument("--bearer-token", default="fake-bearer-token")
    parser.add_argument("--user-token", default=None,
                        help="also accepted; when set, DMs and posting require it, as on real X")
    parser.add_argument("--brand-user-id", default=None, help="default: the seed's brand, else SoraAir")
    parser.add_argument("--brand-handle", default=None, help="default: the seed's brand, else SoraAir")
    parser.add_argument("--limit", action="append", default=[], metavar="ENDPOINT=N",
                        help=f"requests per 15 min; endpoints: {', '.join(DEFAULT_LIMITS)}")
    args = parser.parse_args(argv)

    seed_brand: Dict[str, Any] = {}
    if args.seed:
        with open(args.seed, encoding="utf-8") as handle:
            seed_brand = json.load(handle).get("brand") or {}
    limits = {name: int(value) for name, _, value in (item.partition("=") for item in args.limit)}
    fake = FakeX(port=args.port, host=args.host, bearer_token=args.bearer_token, user_token=args.user_token,
                 brand_user_id=args.brand_user_id or seed_brand.get("id") or SORA_AIR_ID,
                 brand_handle=args.brand_handle or seed_brand.get("username") or SORA_AIR_HANDLE,
                 rate_limits=limits)
    if args.seed:
        fake.load_seed(args.seed)
    fake.start()
    print(f"fake X API v2 on {fake.url}  brand @{fake.brand_handle} id {fake.brand_user_id}  "
          f"{fake.pending} seed items pending", flush=True)
    _announce(fake, fake.release(None if args.release_every <= 0 else args.release_initial))
    try:
        while True:
            time.sleep(args.release_every if args.release_every > 0 else 3600)
            if args.release_every > 0 and fake.pending:
                _announce(fake, fake.release(args.release_batch))
                if not fake.pending:
                    print("seed stream fully released", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


def _announce(fake: FakeX, items: List[Dict[str, Any]]) -> None:
    for item in items:
        kind = "DM  " if "event_type" in item else "post"
        who = fake.username_of(item.get("author_id") or item.get("sender_id") or "")
        print(f"released {kind} {item['id']} @{who}: {item['text'][:70]}", flush=True)


if __name__ == "__main__":
    main()
