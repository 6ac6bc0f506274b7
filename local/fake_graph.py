"""A fake Graph API (Facebook Page, Messenger, Instagram, WhatsApp) for tests and the local demo.

It speaks the real shapes: ``{"data": [...], "paging": {"cursors": {"before",
"after"}, "next"}}`` with opaque cursors, ``{"error": {"message", "type",
"code", "error_subcode", "fbtrace_id"}}`` errors, the X-App-Usage and
X-Business-Use-Case-Usage headers, and JSON with non-ASCII and "/" escaped
as Graph writes it. It enforces what trips real integrations: the token,
the 24-hour messaging window (seven days with the HUMAN_AGENT tag), one
private reply per comment within seven days, and text limits.

Messenger and Instagram direct messages are kept in conversations served by
the Conversations API (``GET /{page-id}/conversations?platform=messenger|
instagram``, ``GET /{ig-user-id}/conversations``, ``GET /{conversation-id}
[/messages]``), most recently updated first, messages newest first, Instagram
with the details of its 20 newest messages only. Every DM is listed there:
those added with ``add_customer_message`` or released from the seed, those in
a delivery pushed with ``deliver``, and the brand's own answers. WhatsApp has
no such endpoint, as in the Cloud API.

Buttons: Messenger and Instagram messages may carry ``quick_replies`` (at
most 13; title 20 characters, payload 1,000), WhatsApp may send
``type: interactive`` reply buttons (at most 3; title 20, id 256, body 1,024)
and ``type: template`` messages (approved names only, any time: no 24-hour
window); anything beyond those limits is refused as Graph refuses it. The
fake plays the customer too: when it receives a message with buttons (a CSAT
survey) and ``answer_surveys`` is on (the default), it queues that
customer's tap, pushed as Meta's webhook (``message.quick_reply.payload``;
WhatsApp ``interactive.button_reply`` or, for a template, ``button``) on the
next ``release`` at least ``answer_delay_seconds`` later, or at once with
``answer_surveys_now``. Which button is tapped is deterministic:
``survey_taps`` lists option positions, used in turn (default: the first
option, the best score).

Media (issue 12): a WhatsApp customer's file is added with ``add_whatsapp_media`` (and pushed with
``whatsapp_media_delivery``); ``GET /{media-id}`` answers its short-lived ``url``, downloaded with the
same bearer token. Images go out by URL: Messenger and Instagram ``message.attachment`` (alone, no
text in the same message), WhatsApp ``type: image`` with a caption, Facebook comment replies with
``attachment_url``. ``GET /{waba-id}/message_templates`` lists the approved templates with their
body (``TEMPLATE_BODIES``), and a template send must fill exactly its {{n}} variables.

It can also play Meta's webhook sender: ``deliver`` signs a payload with
X-Hub-Signature-256 over the exact bytes it posts, and ``sample_deliveries``
builds one realistic delivery per channel. ``give_up_webhooks(n)`` makes it
give up on the next n deliveries as Meta does once its retries fail: they are
never posted, but what they carry stays listed for polling.

    python -m local.fake_graph --port 8082 --seed local/data/meta_stream.json \
        [--webhook-url http://127.0.0.1:8000/webhooks/meta --app-secret local-meta-app-secret]

Another process drives it through ``/_fake/...`` (see ``FakeGraphControl``):
GET posted | requests | state; POST fail {path_prefix, status, times, body,
method, regain_minutes} | add {type, ...add_* arguments} | usage {app, buc} |
release {n} | webhook {url, app_secret} | deliver {payload or sample, to_url,
app_secret} | give_up {times} | answer_surveys | reset.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

from local.fake_server import FakeControl, FakeServer

# SoraAir's accounts, the same brand as the fake X demo.
SORA_PAGE_ID = "104857600213455"
SORA_PAGE_NAME = "ソラ航空 SoraAir"
SORA_IG_USER_ID = "17841405822304911"
SORA_IG_USERNAME = "soraair"
SORA_PHONE_NUMBER_ID = "106540352242922"
SORA_WABA_ID = "102290129340398"
SORA_DISPLAY_PHONE = "+81 3-5555-0123"
GRAPH_VERSION = "v21.0"

MESSAGING_WINDOW_SECONDS = 24 * 3600
HUMAN_AGENT_WINDOW_SECONDS = 7 * 24 * 3600
PRIVATE_REPLY_WINDOW_SECONDS = 7 * 24 * 3600
TEXT_LIMITS = {"facebook": 8000, "instagram": 2200, "messenger": 2000, "whatsapp": 4096}
# Buttons (Send API quick replies; WhatsApp Cloud API interactive reply buttons).
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
QUICK_REPLY_PAYLOAD_MAX = 1000
QUICK_REPLY_TYPES = ("text", "user_phone_number", "user_email")
WHATSAPP_BUTTONS_MAX = 3
WHATSAPP_BUTTON_TITLE_MAX = 20
WHATSAPP_BUTTON_ID_MAX = 256
WHATSAPP_BODY_MAX = 1024
INVALID_PARAMETER_CODE = 131009     # WhatsApp: "Parameter value is not valid"
TEMPLATE_MISSING_CODE = 132001      # WhatsApp: the template does not exist (in that language)
INSTAGRAM_DM_MAX_BYTES = 1000
# Issue 12: images sent by URL (Send API attachments, WhatsApp image messages, comment replies).
WHATSAPP_CAPTION_MAX = 1024
TEMPLATE_PARAMETERS_CODE = 132000   # WhatsApp: the number of parameters does not match the template
# Approved template bodies ({{n}} are the variables), by (name, language): what message_templates lists.
TEMPLATE_BODIES = {
    ("csat_survey", "en"): "How did we do? Tap a score from 1 (poor) to 5 (great).",
    ("csat_survey", "ja"): "対応はいかがでしたか？1（悪い）から5（とても良い）でお選びください。",
    ("case_follow_up", "en"): "Hello {{1}}, there is news on your request {{2}}. Reply to this message to continue.",
    ("case_follow_up", "ja"): "{{1}}様、お問い合わせ {{2}} について新しいお知らせがあります。このメッセージに返信してください。",
}
MAX_LIMIT = 100
# Instagram's Conversations API details only a conversation's 20 newest messages.
INSTAGRAM_CONVERSATION_MESSAGES = 20
# What ``deliver`` answers for a delivery Meta gave up on (nothing was posted).
GAVE_UP = 0
APP_THROTTLE_CODES = (4, 17)
OBJECT_THROTTLE_CODES = (32, 613, 80001, 80002, 80006, 80007)

_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")
_EDGE_MODIFIER = re.compile(r"\.(\w+)\(([^)]*)\)")

ERROR_MESSAGES = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) This message is sent outside of allowed window.",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    104: "An access token is required to request this resource.",
    190: "Invalid OAuth access token - Cannot parse access token",
    200: "(#200) Permissions error",
    368: "The action attempted has been deemed abusive or is otherwise disallowed",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    10900: "Activity already replied to",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
    80002: "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again.",
    130429: "(#130429) Rate limit hit",
    131009: "(#131009) Parameter value is not valid",
    131047: "(#131047) Re-engagement message",
    132001: "(#132001) Template name does not exist in the translation",
    132000: "(#132000) Number of parameters does not match the expected number of params",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
}
DEFAULT_FAILURE_CODES = {400: 100, 401: 190, 403: 200, 429: 4, 500: 2, 502: 2, 503: 2}
REENGAGEMENT_DETAILS = ("Message failed to send because more than 24 hours have passed since the customer "
                        "last replied to this number.")


class GraphFault(Exception):
    """A Graph error answer: HTTP status and the ``error`` object."""

    def __init__(self, code: int, message: str = "", *, subcode: Optional[int] = None, status: int = 400,
                 error_type: str = "OAuthException", **extra: Any):
        super().__init__(message or ERROR_MESSAGES.get(code, f"(#{code}) Error"))
        self.status = status
        self.error: Dict[str, Any] = {"message": str(self), "type": error_type, "code": code, **extra}
        if subcode is not None:
            self.error["error_subcode"] = subcode
        self.headers: Dict[str, str] = {}


@dataclass
class _Failure:
    path_prefix: str
    status: int
    times: int
    body: Optional[Dict[str, Any]]
    method: Optional[str]
    regain_minutes: int


class FakeGraph(FakeServer):
    name = "fake-graph"

    def __init__(self, port: int = 0, access_token: str = "fake-meta-token", page_id: str = SORA_PAGE_ID,
                 ig_user_id: str = SORA_IG_USER_ID, phone_number_id: str = SORA_PHONE_NUMBER_ID, *,
                 waba_id: str = SORA_WABA_ID, page_name: str = SORA_PAGE_NAME,
                 ig_username: str = SORA_IG_USERNAME, display_phone_number: str = SORA_DISPLAY_PHONE,
                 host: str = "127.0.0.1", clock: Callable[[], float] = time.time, answer_surveys: bool = True,
                 answer_delay_seconds: float = 0.0, survey_taps: Sequence[int] = (0,),
                 approved_templates: Iterable[Tuple[str, str]] = (("csat_survey", "en"), ("csat_survey", "ja"),
                                                                  ("case_follow_up", "en"), ("case_follow_up", "ja"))):
        """``answer_surveys``: play the customer who taps a button of each message with buttons (see the
        module docstring); ``approved_templates``: the WhatsApp templates (name, language) that may be sent."""
        self.host = host
        self.port = port
        self.access_token = access_token
        self.page_id = page_id
        self.page_name = page_name
        self.ig_user_id = ig_user_id
        self.ig_username = ig_username
        self.phone_number_id = phone_number_id
        self.waba_id = waba_id
        self.display_phone_number = display_phone_number
        self._clock = clock
        super().__init__()
        self._counter = 0
        self._posts: Dict[str, Dict[str, Any]] = {}
        self._fb_comments: Dict[str, Dict[str, Any]] = {}
        self._media: Dict[str, Dict[str, Any]] = {}
        self._ig_comments: Dict[str, Dict[str, Any]] = {}
        self._tagged: Dict[str, Dict[str, Any]] = {}
        self._mentioned_comments: Dict[str, Dict[str, Any]] = {}
        self._last_inbound: Dict[Tuple[str, str], float] = {}
        self._private_replied: Dict[str, str] = {}
        # User Profile API answers, per (platform, scoped id) of customers who wrote a DM.
        self._profiles: Dict[str, Dict[str, Any]] = {}
        self._failures: List[_Failure] = []
        self._usage = {"app": {"call_count": 1, "total_cputime": 1, "total_time": 1},
                       "buc": {"call_count": 1, "total_cputime": 1, "total_time": 1,
                               "estimated_time_to_regain_access": 0}}
        self._pending: deque = deque()
        self._seed_keys: Dict[str, str] = {}
        self._webhook: Optional[Tuple[str, str, Optional[WebhookTransport]]] = None
        # Direct messages by conversation id; (platform, customer id) -> conversation id.
        self._conversations: Dict[str, Dict[str, Any]] = {}
        self._conversation_of: Dict[Tuple[str, str], str] = {}
        self._give_up = 0
        self._given_up: List[Dict[str, Any]] = []
        self.answer_surveys = answer_surveys
        self.answer_delay_seconds = float(answer_delay_seconds)
        self.survey_taps = tuple(int(tap) for tap in survey_taps) or (0,)
        self.approved_templates = {(str(name), str(lang)) for name, lang in approved_templates}
        # Taps the fake customers will send: (due at, platform, customer id, button, message tapped).
        self._answers: deque = deque()
        # WhatsApp media files customers sent: media id -> {"data", "mime_type", "sha256"} (GET /{media-id}).
        self._wa_media: Dict[str, Dict[str, Any]] = {}
        self._taps = 0

    # ---- lifecycle -----------------------------------------------------------------

    def encode(self, path: str, payload: Any) -> bytes:
        if isinstance(payload, bytes):  # a media download
            return payload
        if path.startswith("/_fake/"):
            return json.dumps(payload, ensure_ascii=False).encode("utf-8")
        # Graph escapes non-ASCII and "/" in its JSON; clients must not care.
        return json.dumps(payload, ensure_ascii=True).replace("/", "\\/").encode("ascii")

    # ---- data: Facebook Page ----------------------------------------------------------

    def add_page_post(self, message: str, *, created_time: Any = None) -> Dict[str, Any]:
        """A post by the Page itself (customers comment on these)."""
        return self._add_post(message, {"id": self.page_id, "name": self.page_name}, created_time)

    def add_visitor_post(self, message: str, *, author_id: Optional[str] = None, author_name: str = "",
                         created_time: Any = None) -> Dict[str, Any]:
        """A post a visitor wrote on the Page's feed."""
        sender = {"id": str(author_id or self._person_id()), "name": author_name or "Visitor"}
        return self._add_post(message, sender, created_time)

    def add_page_comment(self, message: str, *, post_id: Optional[str] = None, author_id: Optional[str] = None,
                         author_name: str = "", parent_id: Optional[str] = None,
                         created_time: Any = None) -> Dict[str, Any]:
        """A comment on a Page post (the newest Page post when ``post_id`` is None, created if needed).

        ``parent_id`` makes it a reply to that comment; ``author_id`` equal to
        the page id makes it the Page's own comment.
        """
        with self._lock:
            if parent_id:
                parent = self._fb_comments.get(str(parent_id))
                if parent is None:
                    raise ValueError(f"no comment {parent_id} to reply to")
                post_id = parent["post_id"]
                # Facebook threads two levels deep: a reply to a reply joins the top-level thread.
                parent_id = parent["parent_id"] or parent["id"]
            post_id = str(post_id or self._newest_page_post_id())
            if post_id not in self._posts:
                raise ValueError(f"no post {post_id}")
            is_page = str(author_id) == self.page_id
            sender = {"id": str(author_id or self._person_id()),
                      "name": self.page_name if is_page else (author_name or "Facebook user")}
            comment = {"id": f"{post_id.partition('_')[2]}_{self._next_number(1_100_000_000_000_000)}",
                       "message": message, "from": sender, "created": self._time(created_time),
                       "post_id": post_id, "parent_id": str(parent_id) if parent_id else None}
            self._fb_comments[comment["id"]] = comment
            return self._fb_comment_json(comment, with_parent=True)

    # ---- data: Instagram -------------------------------------------------------------

    def add_ig_media(self, caption: str, *, created_time: Any = None) -> Dict[str, Any]:
        """A post on the brand's Instagram account."""
        with self._lock:
            media_id = str(self._next_number(17_900_000_000_000_000))
            media = {"id": media_id, "caption": caption, "created": self._time(created_time),
                     "username": self.ig_username, "permalink": f"https://www.instagram.com/p/{_shortcode(media_id)}/"}
            self._media[media_id] = media
            return self._media_json(media, None)

    def add_ig_comment(self, text: str, *, username: str, user_id: Optional[str] = None,
                       media_id: Optional[str] = None, parent_id: Optional[str] = None,
                       created_time: Any = None) -> Dict[str, Any]:
        """A comment on the brand's media (the newest when ``media_id`` is None, created if needed)."""
        with self._lock:
            if parent_id:
                parent = self._ig_comments.get(str(parent_id))
                if parent is None:
                    raise ValueError(f"no Instagram comment {parent_id} to reply to")
                media_id = parent["media_id"]
                # Instagram threads one level deep.
                parent_id = parent["parent_id"] or parent["id"]
            media_id = str(media_id or self._newest_media_id())
            if media_id not in self._media:
                raise ValueError(f"no Instagram media {media_id}")
            is_brand = str(user_id) == self.ig_user_id or username == self.ig_username
            sender = {"id": self.ig_user_id if is_brand else str(user_id or self._person_id()),
                      "username": self.ig_username if is_brand else username}
            comment = {"id": str(self._next_number(18_000_000_000_000_000)), "text": text, "from": sender,
                       "created": self._time(created_time), "media_id": media_id,
                       "parent_id": str(parent_id) if parent_id else None}
            self._ig_comments[comment["id"]] = comment
            return self._ig_comment_json(comment, with_replies=False)

    def add_ig_mention(self, caption: str, *, username: str, created_time: Any = None,
                       in_comment: bool = False) -> Dict[str, Any]:
        """Someone else's media that tags or @mentions the brand (``in_comment``: a comment that does)."""
        with self._lock:
            created = self._time(created_time)
            media_id = str(self._next_number(17_900_000_000_000_000))
            media = {"id": media_id, "caption": "" if in_comment else caption, "created": created,
                     "username": username, "permalink": f"https://www.instagram.com/p/{_shortcode(media_id)}/"}
            if not in_comment:
                self._tagged[media_id] = media
                return self._tagged_json(media)
            comment = {"id": str(self._next_number(18_000_000_000_000_000)), "text": caption,
                       "username": username, "created": created, "media": media}
            self._mentioned_comments[comment["id"]] = comment
            return self._mentioned_comment_json(comment)

    # ---- data: direct messages ----------------------------------------------------------

    def add_customer_message(self, platform: str, user_id: str, text: str, *, name: str = "",
                             username: str = "", verified: bool = False, followers: int = 0,
                             created_time: Any = None) -> Dict[str, Any]:
        """A customer's DM (messenger, instagram or whatsapp): opens the reply window.

        Returns the webhook delivery Meta would send for it (``deliver`` pushes
        it). A Messenger or Instagram DM is listed at once by the
        Conversations API; WhatsApp has no endpoint listing received messages.
        Messaging a business consents to its profile look-up, so the sender's
        profile is served from then on (``GET /{scoped-id}``).
        """
        if platform not in ("messenger", "instagram", "whatsapp"):
            raise ValueError(f"unknown messaging platform {platform!r}")
        with self._lock:
            created = self._time(created_time)
            self._last_inbound[(platform, str(user_id))] = created
            if platform == "messenger":
                first, _, last = name.partition(" ")
                self._profiles[str(user_id)] = {"id": str(user_id), "first_name": first, "last_name": last}
            elif platform == "instagram":
                self._profiles[str(user_id)] = {"id": str(user_id), "name": name or None, "username": username,
                                                "is_verified_user": verified, "follower_count": int(followers)}
            if platform == "whatsapp":
                return whatsapp_delivery(self.waba_id, self.phone_number_id, wa_id=str(user_id), name=name,
                                         wamid=self._wamid(str(user_id)), text=text, timestamp=created,
                                         display_phone_number=self.display_phone_number)
            account_id = self.page_id if platform == "messenger" else self.ig_user_id
            mid = self._mid(platform)
            self._record_dm(platform, str(user_id), mid, text, created, from_brand=False)
            return messaging_delivery("page" if platform == "messenger" else "instagram", account_id,
                                      sender_id=str(user_id), mid=mid, text=text,
                                      timestamp_ms=int(created * 1000))

    # ---- seed stream ---------------------------------------------------------------------

    def add_whatsapp_media(self, data: bytes, mime_type: str = "image/jpeg") -> str:
        """A file a WhatsApp customer sent; its media id (GET /{media-id} gives a download URL)."""
        with self._lock:
            media_id = str(self._next_number(1_000_000_000_000_000))
            self._wa_media[media_id] = {"data": bytes(data), "mime_type": mime_type,
                                        "sha256": hashlib.sha256(data).hexdigest()}
            return media_id

    def load_seed(self, path: str) -> int:
        """Brand posts now, and a stream of items that ``release`` makes visible (see meta_stream.json)."""
        with open(path, encoding="utf-8") as handle:
            seed = json.load(handle)
        with self._lock:
            now = self._clock()
            for post in seed.get("brand_posts") or []:
                created = now - float(post.get("hours_ago", 24)) * 3600
                self._seed_keys[post["key"]] = self.add_page_post(post["message"], created_time=created)["id"]
            for media in seed.get("brand_media") or []:
                created = now - float(media.get("hours_ago", 24)) * 3600
                self._seed_keys[media["key"]] = self.add_ig_media(media["caption"], created_time=created)["id"]
            self._pending.extend(seed.get("stream") or [])
            return len(self._pending)

    def release(self, n: Optional[int] = None) -> List[Dict[str, Any]]:
        """Make the next ``n`` seed items (all when None) happen now.

        Each result has the item and the webhook ``delivery`` Meta would send;
        with ``set_webhook`` they are also delivered.
        """
        with self._lock:
            count = len(self._pending) if n is None else min(n, len(self._pending))
            released = [self._materialize(self._pending.popleft()) for _ in range(count)]
            released += self._due_answers(self._clock() - self.answer_delay_seconds)
            target = self._webhook
        for item in released:
            if target:
                if self._gives_up(item["delivery"]):
                    item["webhook_status"] = "given up"
                else:
                    item["webhook_status"] = _send(item["delivery"], target[0], target[1], target[2])
        return released

    def answer_surveys_now(self) -> List[Dict[str, Any]]:
        """Deliver every queued survey answer now (a customer tapping a button), as ``release`` does."""
        with self._lock:
            answers = self._due_answers(None)
            target = self._webhook
        for item in answers:
            if target:
                item["webhook_status"] = "given up" if self._gives_up(item["delivery"]) else _send(
                    item["delivery"], target[0], target[1], target[2])
        return answers

    @property
    def pending_answers(self) -> int:
        with self._lock:
            return len(self._answers)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # ---- webhooks -------------------------------------------------------------------------

    def set_webhook(self, url: Optional[str], app_secret: str = "", *,
                    transport: Optional[WebhookTransport] = None) -> None:
        """Where ``release`` (and ``deliver`` without a URL) send deliveries; None stops sending.

        ``transport(body, headers) -> status`` posts the signed bytes instead
        of HTTP (a test's in-process client, e.g. Chalice's test client).
        """
        with self._lock:
            self._webhook = (url, app_secret, transport) if url else None

    def deliver(self, payload: Dict[str, Any], to_url: Optional[str] = None,
                app_secret: Optional[str] = None) -> int:
        """Send a delivery like Meta; the customers' messages in it open their reply windows.

        Its Messenger and Instagram messages are listed by the Conversations
        API whether or not the delivery arrives. GAVE_UP (0) when Meta gives
        up on it (``give_up_webhooks``): nothing is posted.
        """
        with self._lock:
            self._note_inbound(payload)
            target = self._webhook or ("", "", None)
        url, secret = to_url or target[0], app_secret if app_secret is not None else target[1]
        if not url:
            raise ValueError("no webhook URL: pass to_url or call set_webhook first")
        if self._gives_up(payload):
            return GAVE_UP
        return _send(payload, url, secret, target[2] if not to_url else None)

    def give_up_webhooks(self, times: int = 1) -> None:
        """Give up on the next ``times`` deliveries (``deliver`` and ``release``), as Meta does after its retries
        fail: they are never posted, and what they carry is still served to polling. See ``given_up``."""
        with self._lock:
            self._give_up += int(times)

    @property
    def given_up(self) -> List[Dict[str, Any]]:
        """The deliveries given up on, oldest first."""
        with self._lock:
            return [json.loads(json.dumps(payload)) for payload in self._given_up]

    def _gives_up(self, payload: Dict[str, Any]) -> bool:
        with self._lock:
            if self._give_up <= 0:
                return False
            self._give_up -= 1
            self._given_up.append(payload)
            return True

    def sample_deliveries(self, now: Optional[float] = None) -> Dict[str, Dict[str, Any]]:
        return sample_deliveries(self.page_id, self.ig_user_id, self.phone_number_id,
                                 now=self._clock() if now is None else now, waba_id=self.waba_id)

    # ---- inspection and controls --------------------------------------------------------

    def fail_next(self, path_prefix: str, status: int, times: int = 1, body: Optional[Dict[str, Any]] = None,
                  *, method: Optional[str] = None, regain_minutes: int = 5) -> None:
        """Answer the next ``times`` requests under ``path_prefix`` (version optional) with an error.

        ``body`` is a full ``{"error": {...}}``, or a shorthand like
        ``{"code": 32}`` / ``{"code": 10, "error_subcode": 2018278}``; by
        default the status picks one (429: code 4 throttling, 500: transient
        code 2, 401: code 190...). Throttling answers carry 100% usage and
        ``regain_minutes`` in X-Business-Use-Case-Usage.
        """
        with self._lock:
            self._failures.append(_Failure(_VERSION_PREFIX.sub("", path_prefix), int(status), int(times), body,
                                           method.upper() if method else None, int(regain_minutes)))

    def set_usage(self, app: Optional[Dict[str, Any]] = None, buc: Optional[Dict[str, Any]] = None) -> None:
        """Usage reported from now on, e.g. ``set_usage(app={"call_count": 95})``."""
        with self._lock:
            self._usage["app"].update(app or {})
            self._usage["buc"].update(buc or {})

    def reset(self) -> None:
        """Forget requests, sent replies, injected failures and usage; keep the data."""
        with self._lock:
            super().reset()
            self._failures.clear()
            self._private_replied.clear()
            self._give_up = 0
            self._given_up.clear()
            self._answers.clear()
            self._usage["app"].update(call_count=1, total_cputime=1, total_time=1)
            self._usage["buc"].update(call_count=1, total_cputime=1, total_time=1, estimated_time_to_regain_access=0)

    def state(self) -> Dict[str, Any]:
        with self._lock:
            return {"url": self.url, "page_id": self.page_id, "ig_user_id": self.ig_user_id,
                    "phone_number_id": self.phone_number_id, "waba_id": self.waba_id,
                    "posts": len(self._posts), "comments": len(self._fb_comments), "ig_media": len(self._media),
                    "ig_comments": len(self._ig_comments), "ig_tagged": len(self._tagged),
                    "conversations": len(self._conversations), "given_up": len(self._given_up),
                    "pending": len(self._pending), "pending_answers": len(self._answers),
                    "posted": len(self._posted), "usage": json.loads(
                        json.dumps(self._usage)), "webhook": self._webhook[0] if self._webhook else None}

    # ---- request handling -----------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Tuple[int, Dict[str, str], Any]:
        """Answer one request: (status, extra headers, JSON body). Independent of the HTTP server."""
        url = urlsplit(raw_path)
        query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path.startswith("/_fake/"):
            return self._control(method, url.path, body)
        path = _VERSION_PREFIX.sub("", url.path)
        body_params, body_error = _body_params(headers, body)
        params = {**query, **body_params}
        with self._lock:
            self._requests.append({"method": method, "path": path, "query": query, "params": params,
                                   "auth": _auth_source(headers, params), "at": _graph_time(self._clock())})
            failure = self._take_failure(method, path)
            if failure is not None:
                return self._failure_answer(failure, path)
            try:
                if body_error is not None:
                    raise body_error
                self._check_token(headers, params)
                payload = self._route(method, path, query, params)
            except GraphFault as fault:
                fault.error.setdefault("fbtrace_id", self._trace_id())
                return fault.status, {**self._usage_headers(path), **fault.headers}, {"error": fault.error}
            return 200, self._usage_headers(path), payload

    def _route(self, method: str, path: str, query: Dict[str, str], params: Dict[str, Any]) -> Any:
        parts = [part for part in path.split("/") if part]
        if method == "GET" and len(parts) == 2 and parts[0] == "_media_download":
            return self._download(parts[1])
        node = self.page_id if parts and parts[0] == "me" else (parts[0] if parts else "")
        edge = parts[1] if len(parts) == 2 else ""
        if len(parts) > 2 or not node:
            raise GraphFault(2500, f"Unknown path components: {path}", error_type="OAuthException")
        handler = self._handler_for(method, node, edge)
        if handler is None:
            raise GraphFault(100, f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
                                  "cannot be loaded due to missing permissions, or does not support this operation. "
                                  "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                             subcode=33, error_type="GraphMethodException")
        return handler(node, query, params)

    def _handler_for(self, method: str, node: str, edge: str) -> Optional[Callable[..., Any]]:
        if method == "GET":
            table = {
                ("page", "feed"): self._serve_feed, ("post", "comments"): self._serve_post_comments,
                ("fb_comment", "comments"): self._serve_comment_replies, ("ig_user", "media"): self._serve_media,
                ("ig_user", "tags"): self._serve_tags, ("media", "comments"): self._serve_media_comments,
                ("ig_comment", "replies"): self._serve_ig_replies, ("ig_user", ""): self._serve_ig_user,
                ("page", ""): self._serve_page, ("phone", ""): self._serve_phone,
                ("customer", ""): self._serve_profile,
                ("page", "conversations"): self._serve_conversations,
                ("ig_user", "conversations"): self._serve_conversations,
                ("conversation", ""): self._serve_conversation,
                ("conversation", "messages"): self._serve_conversation_messages,
                ("wa_media", ""): self._serve_wa_media, ("waba", "message_templates"): self._serve_templates,
            }
        elif method == "POST":
            table = {
                ("fb_comment", "comments"): self._post_fb_reply, ("post", "comments"): self._post_fb_reply,
                ("ig_comment", "replies"): self._post_ig_reply, ("page", "messages"): self._post_page_message,
                ("ig_user", "messages"): self._post_ig_message, ("phone", "messages"): self._post_whatsapp,
                ("ig_user", "mentions"): self._post_mention_reply,
            }
        else:
            return None
        return table.get((self._node_kind(node), edge))

    def _node_kind(self, node: str) -> str:
        if node == self.page_id:
            return "page"
        if node == self.ig_user_id:
            return "ig_user"
        if node == self.phone_number_id:
            return "phone"
        if node == self.waba_id:
            return "waba"
        if node in self._wa_media:
            return "wa_media"
        if node in self._posts:
            return "post"
        if node in self._fb_comments:
            return "fb_comment"
        if node in self._media:
            return "media"
        if node in self._ig_comments:
            return "ig_comment"
        if node in self._conversations:
            return "conversation"
        if node in self._profiles:
            return "customer"
        return "unknown"

    # ---- GET: Facebook ------------------------------------------------------------------

    def _serve_page(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        return {"id": self.page_id, "name": self.page_name}

    def _serve_wa_media(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        """``GET /{media-id}``: a URL (valid minutes on Meta's side) that needs the same bearer token."""
        media = self._wa_media[node]
        return {"messaging_product": "whatsapp", "url": f"{self.url}/{GRAPH_VERSION}/_media_download/{node}",
                "mime_type": media["mime_type"], "sha256": media["sha256"], "file_size": len(media["data"]),
                "id": node}

    def _download(self, media_id: str) -> bytes:
        media = self._wa_media.get(media_id)
        if media is None:
            raise GraphFault(100, f"(#100) media {media_id} does not exist", status=404)
        return bytes(media["data"])

    def _serve_templates(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        """``GET /{waba-id}/message_templates``: the approved templates with their body component."""
        wanted = (query.get("status") or "").upper()
        items = []
        for index, (name, language) in enumerate(sorted(self.approved_templates)):
            if wanted and wanted != "APPROVED":
                continue
            body = TEMPLATE_BODIES.get((name, language), f"{name} ({language})")
            items.append({"name": name, "language": language, "status": "APPROVED", "category": "UTILITY",
                          "id": str(900_000 + index), "components": [{"type": "BODY", "text": body}]})
        return _listing(*self._paginate(items, query, scope=f"templates:{node}", path=f"/{node}/message_templates"))

    def _serve_profile(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        # Like Graph, only the fields asked for (and the id).
        profile = self._profiles[node]
        wanted = [f for f in (query.get("fields") or "").split(",") if f]
        return {"id": node, **{f: profile.get(f) for f in wanted if f in profile}}

    def _serve_feed(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        since, until = _time_param(query, "since"), _time_param(query, "until")
        posts = [post for post in _newest_first(self._posts.values())
                 if (since is None or post["created"] >= since) and (until is None or post["created"] <= until)]
        spec = _edge_spec(query.get("fields", ""), "comments")
        page, paging = self._paginate(posts, query, scope="feed", path=f"/{node}/feed")
        return _listing([self._post_json(post, spec) for post in page], paging)

    def _serve_post_comments(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        spec = {"filter": query.get("filter", "toplevel"), "order": query.get("order", "chronological")}
        comments = self._post_comments(node, spec)
        page, paging = self._paginate(comments, query, scope=f"comments:{node}", path=f"/{node}/comments")
        return _listing([self._fb_comment_json(c, with_parent=spec["filter"] == "stream") for c in page], paging)

    def _serve_comment_replies(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        replies = sorted((c for c in self._fb_comments.values() if c["parent_id"] == node),
                         key=lambda c: (c["created"], c["id"]))
        page, paging = self._paginate(replies, query, scope=f"replies:{node}", path=f"/{node}/comments")
        return _listing([self._fb_comment_json(c, with_parent=True) for c in page], paging)

    # ---- GET: Instagram ------------------------------------------------------------------

    def _serve_ig_user(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        fields = query.get("fields", "")
        answer: Dict[str, Any] = {"id": self.ig_user_id}
        media_match = re.search(r"mentioned_media\.media_id\((\w+)\)", fields)
        comment_match = re.search(r"mentioned_comment\.comment_id\((\w+)\)", fields)
        if media_match:
            media = self._tagged.get(media_match.group(1))
            if media is None:
                raise GraphFault(100, f"(#100) Media {media_match.group(1)} does not mention this account")
            answer["mentioned_media"] = self._tagged_json(media)
        if comment_match:
            comment = self._mentioned_comments.get(comment_match.group(1))
            if comment is None:
                raise GraphFault(100, f"(#100) Comment {comment_match.group(1)} does not mention this account")
            answer["mentioned_comment"] = self._mentioned_comment_json(comment)
        if not media_match and not comment_match:
            answer["username"] = self.ig_username
        return answer

    def _serve_media(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        since, until = _time_param(query, "since"), _time_param(query, "until")
        media = [item for item in _newest_first(self._media.values())
                 if (since is None or item["created"] >= since) and (until is None or item["created"] <= until)]
        spec = _edge_spec(query.get("fields", ""), "comments")
        page, paging = self._paginate(media, query, scope="media", path=f"/{node}/media")
        return _listing([self._media_json(item, spec) for item in page], paging)

    def _serve_media_comments(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        comments = self._top_level_ig_comments(node)
        page, paging = self._paginate(comments, query, scope=f"igcomments:{node}", path=f"/{node}/comments")
        with_replies = "replies" in query.get("fields", "")
        return _listing([self._ig_comment_json(c, with_replies=with_replies) for c in page], paging)

    def _serve_ig_replies(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        replies = self._ig_replies(node)
        page, paging = self._paginate(replies, query, scope=f"igreplies:{node}", path=f"/{node}/replies")
        return _listing([self._ig_comment_json(c, with_replies=False) for c in page], paging)

    def _serve_tags(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        page, paging = self._paginate(_newest_first(self._tagged.values()), query, scope="tags", path=f"/{node}/tags")
        return _listing([self._tagged_json(media) for media in page], paging)

    def _serve_phone(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        return {"id": self.phone_number_id, "display_phone_number": self.display_phone_number,
                "verified_name": self.page_name}

    # ---- GET: Conversations API (Messenger and Instagram direct messages) ------------------------

    def _serve_conversations(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        """A Page's conversations (``platform`` messenger or instagram), or the Instagram account's."""
        on_page = self._node_kind(node) == "page"
        platform = (query.get("platform") or ("messenger" if on_page else "instagram")).lower()
        if platform not in (("messenger", "instagram") if on_page else ("instagram",)):
            raise GraphFault(100, "(#100) Param platform must be one of {MESSENGER, INSTAGRAM}"
                             if on_page else "(#100) Param platform must be INSTAGRAM on an Instagram account")
        conversations = [c for c in self._conversations.values() if c["platform"] == platform
                         and (not query.get("user_id") or c["user_id"] == query["user_id"])]
        conversations.sort(key=lambda c: (_conversation_updated(c), c["id"]), reverse=True)
        spec = _edge_spec(query.get("fields", ""), "messages")
        page, paging = self._paginate(conversations, query, scope=f"conversations:{platform}",
                                      path=f"/{node}/conversations")
        return _listing([self._conversation_json(c, query.get("fields", ""), spec) for c in page], paging)

    def _serve_conversation(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        fields = query.get("fields") or "id,updated_time"
        return self._conversation_json(self._conversations[node], fields, _edge_spec(fields, "messages"))

    def _serve_conversation_messages(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        conversation = self._conversations[node]
        messages = self._listed_messages(conversation)
        page, paging = self._paginate(messages, query, scope=f"messages:{node}", path=f"/{node}/messages")
        wanted = _field_list(query.get("fields") or "id,created_time")
        return _listing([self._message_json(conversation, m, wanted) for m in page], paging)

    # ---- POST: public replies ---------------------------------------------------------------

    def _post_fb_reply(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        text = self._required_text(params.get("message"), "facebook", "message")
        attachment_url = params.get("attachment_url")
        if attachment_url is not None and not _is_url(attachment_url):
            raise GraphFault(100, "(#100) param attachment_url must be a valid URL")
        target = self._fb_comments.get(node)
        comment = self.add_page_comment(text, post_id=None if target else node, author_id=self.page_id,
                                        parent_id=node if target else None)
        self._record("comment_reply", "facebook", node, text, comment["id"], account_id=self.page_id,
                     attachment_url=attachment_url)
        return {"id": comment["id"]}

    def _post_ig_reply(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        text = self._required_text(params.get("message"), "instagram", "message")
        reply = self.add_ig_comment(text, username=self.ig_username, user_id=self.ig_user_id, parent_id=node)
        self._record("comment_reply", "instagram", node, text, reply["id"], account_id=self.ig_user_id)
        return {"id": reply["id"]}

    def _post_mention_reply(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        text = self._required_text(params.get("message"), "instagram", "message")
        media_id, comment_id = str(params.get("media_id") or ""), str(params.get("comment_id") or "")
        known = (comment_id in self._mentioned_comments if comment_id
                 else media_id in self._tagged)
        if not media_id or not known:
            raise GraphFault(100, "(#100) The media_id or comment_id does not mention this account")
        reply_id = str(self._next_number(18_000_000_000_000_000))
        self._record("mention_reply", "instagram", comment_id or media_id, text, reply_id, account_id=node)
        return {"id": reply_id}

    # ---- POST: messages -----------------------------------------------------------------------

    def _post_page_message(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        return self._send_message("messenger", node, params)

    def _post_ig_message(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        return self._send_message("instagram", node, params)

    def _send_message(self, platform: str, account_id: str, params: Dict[str, Any]) -> Dict[str, Any]:
        recipient, message = _json_param(params, "recipient"), _json_param(params, "message")
        if "attachment" in message:
            return self._send_attachment(platform, account_id, recipient, message, params)
        text = self._required_text(message.get("text"), platform if platform == "instagram" else "messenger",
                                   "message[text]")
        quick_replies = _quick_replies(message.get("quick_replies"))
        if platform == "instagram" and len(text.encode("utf-8")) > INSTAGRAM_DM_MAX_BYTES:
            raise GraphFault(100, f"(#100) Length of param message[text] must be less than or equal to "
                                  f"{INSTAGRAM_DM_MAX_BYTES}")
        if recipient.get("comment_id"):
            return self._private_reply(platform, account_id, str(recipient["comment_id"]), text)
        recipient_id = str(recipient.get("id") or "")
        if not recipient_id:
            raise GraphFault(100, "(#100) The parameter recipient is required")
        messaging_type, tag = params.get("messaging_type"), params.get("tag")
        if messaging_type not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            raise GraphFault(100, "(#100) The parameter messaging_type is required and must be RESPONSE, "
                                  "UPDATE or MESSAGE_TAG")
        self._check_window(platform, recipient_id, human_agent=messaging_type == "MESSAGE_TAG" and tag == "HUMAN_AGENT")
        mid = self._mid(platform)
        self._record_dm(platform, recipient_id, mid, text, self._clock(), from_brand=True)
        self._record("message", platform, recipient_id, text, mid, account_id=account_id,
                     messaging_type=messaging_type, tag=tag, quick_replies=quick_replies or None)
        buttons = [(qr["title"], qr["payload"]) for qr in quick_replies if qr["content_type"] == "text"]
        self._queue_answer(platform, account_id, recipient_id, buttons, mid, "quick_reply")
        return {"recipient_id": recipient_id, "message_id": mid}

    def _send_attachment(self, platform: str, account_id: str, recipient: Dict[str, Any], message: Dict[str, Any],
                         params: Dict[str, Any]) -> Dict[str, Any]:
        """An image by URL: ``message.attachment = {"type": "image", "payload": {"url", "is_reusable"}}`` (no text
        in the same message)."""
        attachment = message["attachment"] if isinstance(message.get("attachment"), dict) else {}
        payload = attachment["payload"] if isinstance(attachment.get("payload"), dict) else {}
        if message.get("text"):
            raise GraphFault(100, "(#100) Only one of text or attachment may be set in param message")
        if attachment.get("type") not in ("image", "video", "audio", "file"):
            raise GraphFault(100, "(#100) param message[attachment][type] must be image, video, audio or file")
        if not _is_url(payload.get("url")) and not payload.get("attachment_id"):
            raise GraphFault(100, "(#100) param message[attachment][payload][url] must be a valid URL")
        recipient_id = str(recipient.get("id") or "")
        if not recipient_id:
            raise GraphFault(100, "(#100) The parameter recipient is required")
        messaging_type, tag = params.get("messaging_type"), params.get("tag")
        self._check_window(platform, recipient_id, human_agent=messaging_type == "MESSAGE_TAG" and tag == "HUMAN_AGENT")
        mid = self._mid(platform)
        self._record_dm(platform, recipient_id, mid, "", self._clock(), from_brand=True)
        self._record("attachment", platform, recipient_id, "", mid, account_id=account_id,
                     messaging_type=messaging_type, tag=tag, attachment_type=attachment["type"],
                     attachment_url=payload.get("url"))
        return {"recipient_id": recipient_id, "message_id": mid, "attachment_id": str(self._next_number(5_000_000))}

    def _private_reply(self, platform: str, account_id: str, comment_id: str, text: str) -> Dict[str, Any]:
        comments = self._fb_comments if platform == "messenger" else self._ig_comments
        comment = comments.get(comment_id)
        if comment is None:
            raise GraphFault(100, f"(#100) Invalid comment_id {comment_id}", subcode=33)
        if comment_id in self._private_replied:
            raise GraphFault(10900, ERROR_MESSAGES[10900])
        if self._clock() - comment["created"] > PRIVATE_REPLY_WINDOW_SECONDS:
            raise GraphFault(10, subcode=2018278 if platform == "messenger" else 2534022)
        mid = self._mid(platform)
        self._private_replied[comment_id] = mid
        self._record("private_reply", "facebook" if platform == "messenger" else "instagram", comment_id, text,
                     mid, account_id=account_id)
        return {"recipient_id": comment["from"]["id"], "message_id": mid}

    def _post_whatsapp(self, node: str, query: Dict[str, str], params: Dict[str, Any]) -> Dict[str, Any]:
        if params.get("messaging_product") != "whatsapp":
            raise GraphFault(100, "(#100) The parameter messaging_product is required.")
        to = str(params.get("to") or "")
        if not to:
            raise GraphFault(100, "(#100) The parameter to is required.")
        kind = params.get("type", "text")
        extra: Dict[str, Any] = {}
        buttons: List[Tuple[str, str]] = []
        if kind == "text":
            text = self._required_text(_json_param(params, "text").get("body"), "whatsapp", "text.body")
        elif kind == "interactive":
            text, buttons = _reply_buttons(_json_param(params, "interactive"))
            extra["buttons"] = [{"id": button_id, "title": title} for title, button_id in buttons]
        elif kind == "template":
            template = _json_param(params, "template")
            name, lang, buttons = _template(template)
            if (name, lang) not in self.approved_templates:
                raise GraphFault(TEMPLATE_MISSING_CODE, error_data={
                    "messaging_product": "whatsapp", "details": f"template name ({name}) does not exist in {lang}"})
            variables = _template_variables(template)
            expected = len(set(re.findall(r"\{\{\s*(\d+)\s*\}\}", TEMPLATE_BODIES.get((name, lang), ""))))
            if len(variables) != expected:
                raise GraphFault(TEMPLATE_PARAMETERS_CODE, error_data={
                    "messaging_product": "whatsapp",
                    "details": f"body: number of localizable_params ({len(variables)}) does not match the expected "
                               f"number of params ({expected})"})
            text, extra["template"] = f"[template {name} ({lang})]", {"name": name, "language": lang}
            if variables:
                extra["template"]["variables"] = variables
        elif kind == "image":
            image = _json_param(params, "image")
            if not _is_url(image.get("link")) and not image.get("id"):
                raise _invalid("image.link must be a valid URL (or image.id an uploaded media id)")
            caption = image.get("caption")
            if caption is not None and (not isinstance(caption, str) or len(caption) > WHATSAPP_CAPTION_MAX):
                raise _invalid(f"image.caption must be at most {WHATSAPP_CAPTION_MAX} characters")
            text = str(caption or "")
            extra["image"] = {"link": image.get("link")}
        else:
            raise GraphFault(100, f"(#100) The fake sends text, image, interactive and template messages, not {kind!r}")
        if kind != "template":  # templates are the one thing a business may send outside the window
            self._check_window("whatsapp", to, human_agent=False)
        wamid = self._wamid(to)
        context = _json_param(params, "context")
        self._record("message", "whatsapp", to, text, wamid, account_id=node, type=kind,
                     context_message_id=context.get("message_id"), **extra)
        self._queue_answer("whatsapp", node, to, buttons, wamid,
                           "template_button" if kind == "template" else "button_reply")
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}]}

    # ---- the customer who answers a survey ---------------------------------------------------

    def _queue_answer(self, platform: str, account_id: str, customer_id: str, buttons: List[Tuple[str, str]],
                      message_id: str, kind: str) -> None:
        """The customer will tap one of ``buttons`` (title, payload) of the message we just accepted."""
        if not self.answer_surveys or not buttons:
            return
        with self._lock:
            position = self.survey_taps[self._taps % len(self.survey_taps)]
            self._taps += 1
            title, payload = buttons[max(0, min(position, len(buttons) - 1))]
            self._answers.append({"due": self._clock(), "platform": platform, "account_id": account_id,
                                  "customer_id": customer_id, "title": title, "payload": payload,
                                  "message_id": message_id, "kind": kind})

    def _due_answers(self, queued_by: Optional[float]) -> List[Dict[str, Any]]:
        """The taps queued at or before ``queued_by`` (None: all), happening now: what ``release`` reports."""
        items = []
        with self._lock:
            while self._answers and (queued_by is None or self._answers[0]["due"] <= queued_by):
                tap = self._answers.popleft()
                now = self._clock()
                if tap["platform"] == "whatsapp":
                    message_id = self._wamid(tap["customer_id"])
                    delivery = whatsapp_button_delivery(
                        self.waba_id, self.phone_number_id, wa_id=tap["customer_id"], wamid=message_id,
                        title=tap["title"], payload=tap["payload"], timestamp=now, context_id=tap["message_id"],
                        template=tap["kind"] == "template_button", display_phone_number=self.display_phone_number)
                else:
                    message_id = self._mid(tap["platform"])
                    delivery = messaging_delivery("page" if tap["platform"] == "messenger" else "instagram",
                                                  tap["account_id"], sender_id=tap["customer_id"], mid=message_id,
                                                  text=tap["title"], timestamp_ms=int(now * 1000),
                                                  quick_reply_payload=tap["payload"])
                # Listed for polling and opening the reply window, whether or not the webhook arrives.
                self._note_inbound(delivery)
                items.append({"channel": "survey_answer", "id": message_id, "who": tap["customer_id"],
                              "text": tap["title"], "delivery": delivery})
        return items

    def _check_window(self, platform: str, user_id: str, *, human_agent: bool) -> None:
        last = self._last_inbound.get((platform, user_id))
        if platform == "whatsapp":
            # The Cloud API often accepts the send and reports 131047 in a
            # "failed" status webhook instead; answering at once is simpler to test.
            if last is None or self._clock() - last > MESSAGING_WINDOW_SECONDS:
                raise GraphFault(131047, error_data={"messaging_product": "whatsapp",
                                                     "details": REENGAGEMENT_DETAILS})
            return
        if last is None:
            raise GraphFault(100, "(#100) No matching user found", subcode=2018001)
        allowed = HUMAN_AGENT_WINDOW_SECONDS if human_agent else MESSAGING_WINDOW_SECONDS
        if self._clock() - last > allowed:
            raise GraphFault(10, subcode=2018278 if platform == "messenger" else 2534022)

    def _required_text(self, value: Any, platform: str, name: str) -> str:
        text = str(value or "")
        if not text.strip():
            raise GraphFault(100, f"(#100) The parameter {name} is required")
        limit = TEXT_LIMITS[platform]
        if len(text) > limit:
            raise GraphFault(100, f"(#100) Length of param {name} must be less than or equal to {limit}")
        return text

    def _record(self, kind: str, platform: str, target_id: str, text: str, created_id: str, **extra: Any) -> None:
        self._posted.append({"kind": kind, "platform": platform, "target_id": target_id, "text": text,
                             "id": created_id, "at": _iso(self._clock()),
                             **{key: value for key, value in extra.items() if value is not None}})

    # ---- JSON shapes ----------------------------------------------------------------------------

    def _post_json(self, post: Dict[str, Any], comment_spec: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        item = {"id": post["id"], "created_time": _graph_time(post["created"]), "from": dict(post["from"]),
                "permalink_url": _fb_permalink(post["id"])}
        if post["message"]:
            item["message"] = post["message"]
        if comment_spec is not None:
            comments = self._post_comments(post["id"], comment_spec)
            limit = int(comment_spec.get("limit") or 25)
            shown = comments[:limit]
            if shown:
                edge: Dict[str, Any] = {"data": [self._fb_comment_json(
                    c, with_parent=comment_spec.get("filter") == "stream") for c in shown]}
                edge["paging"] = {"cursors": {"before": _cursor(f"comments:{post['id']}", shown[0]["id"]),
                                              "after": _cursor(f"comments:{post['id']}", shown[-1]["id"])}}
                if len(comments) > limit:
                    edge["paging"]["next"] = self._next_url(
                        f"/{post['id']}/comments", {"filter": comment_spec.get("filter", "toplevel"),
                                                    "order": comment_spec.get("order", "chronological"),
                                                    "limit": limit},
                        _cursor(f"comments:{post['id']}", shown[-1]["id"]))
                item["comments"] = edge
        return item

    def _post_comments(self, post_id: str, spec: Dict[str, Any]) -> List[Dict[str, Any]]:
        stream = spec.get("filter") == "stream"
        comments = [c for c in self._fb_comments.values()
                    if c["post_id"] == post_id and (stream or c["parent_id"] is None)]
        return sorted(comments, key=lambda c: (c["created"], c["id"]),
                      reverse=spec.get("order") == "reverse_chronological")

    def _fb_comment_json(self, comment: Dict[str, Any], *, with_parent: bool) -> Dict[str, Any]:
        item = {"id": comment["id"], "message": comment["message"], "from": dict(comment["from"]),
                "created_time": _graph_time(comment["created"]),
                "permalink_url": _fb_permalink(comment["post_id"], comment["id"])}
        if with_parent and comment["parent_id"]:
            item["parent"] = {"id": comment["parent_id"]}
        return item

    def _media_json(self, media: Dict[str, Any], comment_spec: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        item = {"id": media["id"], "caption": media["caption"], "media_type": "IMAGE",
                "permalink": media["permalink"], "timestamp": _graph_time(media["created"]),
                "username": media["username"]}
        if comment_spec is not None:
            comments = self._top_level_ig_comments(media["id"])
            limit = int(comment_spec.get("limit") or 25)
            shown = comments[:limit]
            if shown:
                scope = f"igcomments:{media['id']}"
                edge: Dict[str, Any] = {"data": [self._ig_comment_json(c, with_replies=comment_spec["replies"])
                                                 for c in shown],
                                        "paging": {"cursors": {"before": _cursor(scope, shown[0]["id"]),
                                                               "after": _cursor(scope, shown[-1]["id"])}}}
                if len(comments) > limit:
                    edge["paging"]["next"] = self._next_url(f"/{media['id']}/comments", {"limit": limit},
                                                            _cursor(scope, shown[-1]["id"]))
                item["comments"] = edge
        return item

    def _top_level_ig_comments(self, media_id: str) -> List[Dict[str, Any]]:
        return _newest_first(c for c in self._ig_comments.values()
                             if c["media_id"] == media_id and c["parent_id"] is None)

    def _ig_replies(self, comment_id: str) -> List[Dict[str, Any]]:
        return sorted((c for c in self._ig_comments.values() if c["parent_id"] == comment_id),
                      key=lambda c: (c["created"], c["id"]))

    def _ig_comment_json(self, comment: Dict[str, Any], *, with_replies: bool) -> Dict[str, Any]:
        item: Dict[str, Any] = {"id": comment["id"], "text": comment["text"],
                                "username": comment["from"]["username"], "timestamp": _graph_time(comment["created"]),
                                "from": dict(comment["from"])}
        if comment["parent_id"]:
            item["parent_id"] = comment["parent_id"]
        if with_replies:
            replies = self._ig_replies(comment["id"])
            if replies:
                item["replies"] = {"data": [self._ig_comment_json(r, with_replies=False) for r in replies]}
        return item

    def _tagged_json(self, media: Dict[str, Any]) -> Dict[str, Any]:
        return {"id": media["id"], "caption": media["caption"], "media_type": "IMAGE", "permalink": media["permalink"],
                "timestamp": _graph_time(media["created"]), "username": media["username"]}

    def _mentioned_comment_json(self, comment: Dict[str, Any]) -> Dict[str, Any]:
        return {"id": comment["id"], "text": comment["text"], "username": comment["username"],
                "timestamp": _graph_time(comment["created"]),
                "media": {"id": comment["media"]["id"], "permalink": comment["media"]["permalink"]}}

    def _conversation_json(self, conversation: Dict[str, Any], fields: str,
                           message_spec: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        item: Dict[str, Any] = {"id": conversation["id"]}
        if "updated_time" in _field_list(fields):
            item["updated_time"] = _graph_time(_conversation_updated(conversation))
        if message_spec is not None:
            messages = self._listed_messages(conversation)
            limit = int(message_spec.get("limit") or 25)
            shown = messages[:limit]
            if shown:
                scope = f"messages:{conversation['id']}"
                match = re.search(r"(?:^|,)messages(?:\.\w+\([^)]*\))*\{([^}]*)\}", fields)
                wanted = _field_list(match.group(1) if match else "id,created_time")
                edge: Dict[str, Any] = {"data": [self._message_json(conversation, m, wanted) for m in shown],
                                        "paging": {"cursors": {"before": _cursor(scope, shown[0]["id"]),
                                                               "after": _cursor(scope, shown[-1]["id"])}}}
                if len(messages) > limit:
                    edge["paging"]["next"] = self._next_url(f"/{conversation['id']}/messages", {"limit": limit},
                                                            _cursor(scope, shown[-1]["id"]))
                item["messages"] = edge
        return item

    def _listed_messages(self, conversation: Dict[str, Any]) -> List[Dict[str, Any]]:
        messages = _newest_first(conversation["messages"])
        if conversation["platform"] == "instagram":
            return messages[:INSTAGRAM_CONVERSATION_MESSAGES]
        return messages

    def _message_json(self, conversation: Dict[str, Any], message: Dict[str, Any],
                      wanted: List[str]) -> Dict[str, Any]:
        customer = self._participant(conversation["platform"], conversation["user_id"])
        brand = self._participant(conversation["platform"], None)
        sender, recipient = (brand, customer) if message["from_brand"] else (customer, brand)
        full = {"id": message["id"], "created_time": _graph_time(message["created"]), "from": sender,
                "to": {"data": [recipient]}, "message": message["text"]}
        return {key: value for key, value in full.items() if key == "id" or key in wanted}

    def _participant(self, platform: str, user_id: Optional[str]) -> Dict[str, str]:
        """How Graph names a participant: Messenger by name and e-mail, Instagram by username."""
        if platform == "messenger":
            if user_id is None:
                return {"name": self.page_name, "email": f"{self.page_id}@facebook.com", "id": self.page_id}
            profile = self._profiles.get(user_id) or {}
            name = " ".join(str(profile[part]) for part in ("first_name", "last_name") if profile.get(part))
            return {"name": name or "Facebook user", "email": f"{user_id}@facebook.com", "id": user_id}
        if user_id is None:
            return {"username": self.ig_username, "id": self.ig_user_id}
        profile = self._profiles.get(user_id) or {}
        return {"username": str(profile.get("username") or f"user{user_id[-6:]}"), "id": user_id}

    # ---- paging, auth, usage, failures ---------------------------------------------------------

    def _paginate(self, items: List[Dict[str, Any]], query: Dict[str, str], *, scope: str,
                  path: str) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
        limit = _limit_param(query)
        start = 0
        if query.get("after"):
            last_id = _decode_cursor(query["after"], scope)
            ids = [item["id"] for item in items]
            if last_id not in ids:
                raise GraphFault(100, "(#100) The after cursor is not valid for this edge")
            start = ids.index(last_id) + 1
        page = items[start:start + limit]
        if not page:
            return [], None
        paging: Dict[str, Any] = {"cursors": {"before": _cursor(scope, page[0]["id"]),
                                              "after": _cursor(scope, page[-1]["id"])}}
        if start + limit < len(items):
            keep = {key: value for key, value in query.items() if key not in ("after", "before", "access_token")}
            paging["next"] = self._next_url(path, {**keep, "limit": limit}, paging["cursors"]["after"])
        return page, paging

    def _next_url(self, path: str, params: Dict[str, Any], after: str) -> str:
        return f"{self.url}/{GRAPH_VERSION}{path}?{urlencode({**params, 'after': after})}"

    def _check_token(self, headers: Any, params: Dict[str, Any]) -> None:
        token = _bearer(headers) or str(params.get("access_token") or "")
        if not token:
            raise GraphFault(104)
        if not hmac.compare_digest(token.encode("utf-8"), self.access_token.encode("utf-8")):
            fault = GraphFault(190)
            fault.headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{ERROR_MESSAGES[190]}"'
            raise fault

    def _usage_headers(self, path: str, *, app_pct: Optional[int] = None, buc_pct: Optional[int] = None,
                       regain_minutes: Optional[int] = None) -> Dict[str, str]:
        app = dict(self._usage["app"])
        if app_pct is not None:
            app = {key: app_pct for key in app}
        headers = {"X-App-Usage": json.dumps(app), "x-fb-trace-id": self._trace_id(),
                   "facebook-api-version": GRAPH_VERSION}
        owner = next((part for part in path.split("/") if part), "")
        kind = {self.page_id: "pages", "me": "pages", self.ig_user_id: "instagram"}.get(owner)
        if kind:
            buc = dict(self._usage["buc"])
            if buc_pct is not None:
                buc.update(call_count=buc_pct, total_cputime=buc_pct, total_time=buc_pct)
            if regain_minutes is not None:
                buc["estimated_time_to_regain_access"] = regain_minutes
            business_id = self.page_id if owner == "me" else owner
            headers["X-Business-Use-Case-Usage"] = json.dumps({business_id: [{"type": kind, **buc}]})
        return headers

    def _take_failure(self, method: str, path: str) -> Optional[_Failure]:
        for failure in self._failures:
            if path.startswith(failure.path_prefix) and (failure.method in (None, method)):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _failure_answer(self, failure: _Failure, path: str) -> Tuple[int, Dict[str, str], Any]:
        body = failure.body or {}
        if isinstance(body.get("error"), dict):
            error = dict(body["error"])
        else:
            code = int(body.get("code") or DEFAULT_FAILURE_CODES.get(failure.status, 1))
            error = {"message": body.get("message") or ERROR_MESSAGES.get(code, f"(#{code}) Error"),
                     "type": body.get("type") or "OAuthException", "code": code,
                     **{key: value for key, value in body.items() if key not in ("code", "message", "type")}}
            if code in (1, 2):
                error.setdefault("is_transient", True)
        error.setdefault("fbtrace_id", self._trace_id())
        code = int(error.get("code") or 0)
        if code in APP_THROTTLE_CODES:
            headers = self._usage_headers(path, app_pct=100, regain_minutes=failure.regain_minutes)
        elif code in OBJECT_THROTTLE_CODES:
            headers = self._usage_headers(path, buc_pct=100, regain_minutes=failure.regain_minutes)
        else:
            headers = self._usage_headers(path)
        return failure.status, headers, {"error": error}

    # ---- HTTP control surface (/_fake/...) --------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Tuple[int, Dict[str, str], Any]:
        try:
            request = json.loads(body.decode("utf-8")) if body else {}
            return 200, {}, self._control_action(method, path, request if isinstance(request, dict) else {})
        except (ValueError, TypeError, KeyError) as err:
            return 400, {}, {"error": f"{type(err).__name__}: {err}"}
        except LookupError:
            return 404, {}, {"error": f"no control endpoint {method} {path}"}

    def _control_action(self, method: str, path: str, request: Dict[str, Any]) -> Any:
        if method == "GET" and path == "/_fake/posted":
            return {"posted": self.posted}
        if method == "GET" and path == "/_fake/requests":
            return {"requests": self.requests}
        if method == "GET" and path == "/_fake/state":
            return self.state()
        if method != "POST":
            raise LookupError(path)
        if path == "/_fake/fail":
            self.fail_next(request["path_prefix"], int(request["status"]), int(request.get("times", 1)),
                           request.get("body"), method=request.get("method"),
                           regain_minutes=int(request.get("regain_minutes", 5)))
            return {"ok": True}
        if path == "/_fake/add":
            return {"item": self._add_from_control(dict(request))}
        if path == "/_fake/usage":
            self.set_usage(request.get("app"), request.get("buc"))
            return {"usage": self.state()["usage"]}
        if path == "/_fake/release":
            return {"released": self.release(request.get("n")), "pending": self.pending}
        if path == "/_fake/webhook":
            self.set_webhook(request.get("url"), request.get("app_secret", ""))
            return {"ok": True}
        if path == "/_fake/deliver":
            payload = request.get("payload") or self.sample_deliveries()[request["sample"]]
            return {"status": self.deliver(payload, request.get("to_url"), request.get("app_secret"))}
        if path == "/_fake/answer_surveys":
            return {"answered": self.answer_surveys_now()}
        if path == "/_fake/give_up":
            self.give_up_webhooks(int(request.get("times", 1)))
            return {"ok": True}
        if path == "/_fake/reset":
            self.reset()
            return {"ok": True}
        raise LookupError(path)

    def _add_from_control(self, request: Dict[str, Any]) -> Dict[str, Any]:
        adders = {"page_post": self.add_page_post, "visitor_post": self.add_visitor_post,
                  "page_comment": self.add_page_comment, "ig_media": self.add_ig_media,
                  "ig_comment": self.add_ig_comment, "ig_mention": self.add_ig_mention,
                  "customer_message": self.add_customer_message}
        kind = request.pop("type")
        if kind not in adders:
            raise ValueError(f"type must be one of {', '.join(adders)}")
        return adders[kind](**request)

    # ---- internals ------------------------------------------------------------------------------

    def _add_post(self, message: str, sender: Dict[str, str], created_time: Any) -> Dict[str, Any]:
        with self._lock:
            post_id = f"{self.page_id}_{self._next_number(122_100_000_000_000_000)}"
            post = {"id": post_id, "message": message, "from": sender, "created": self._time(created_time)}
            self._posts[post_id] = post
            return self._post_json(post, None)

    def _materialize(self, item: Dict[str, Any]) -> Dict[str, Any]:
        """One seed item, happening now: the stored object and the webhook Meta would send for it."""
        channel = item["channel"]
        sender = item.get("from") or {}
        now = self._clock()
        if channel == "facebook_comment":
            parent = self._seed_keys.get(item.get("reply_to", ""))
            created = self.add_page_comment(item["message"], post_id=None if parent else self._seed_keys[item["post"]],
                                            author_id=sender.get("id"), author_name=sender.get("name", ""),
                                            parent_id=parent, created_time=now)
            stored = self._fb_comments[created["id"]]
            delivery = feed_comment_delivery(self.page_id, post_id=stored["post_id"], comment_id=created["id"],
                                             message=item["message"], sender=created["from"], created_time=now,
                                             parent_id=stored["parent_id"])
            text = item["message"]
        elif channel == "facebook_post":
            created = self.add_visitor_post(item["message"], author_id=sender.get("id"),
                                            author_name=sender.get("name", ""), created_time=now)
            delivery = feed_post_delivery(self.page_id, post_id=created["id"], message=item["message"],
                                          sender=created["from"], created_time=now)
            text = item["message"]
        elif channel == "instagram_comment":
            parent = self._seed_keys.get(item.get("reply_to", ""))
            created = self.add_ig_comment(item["text"], username=sender["username"], user_id=sender.get("id"),
                                          media_id=None if parent else self._seed_keys[item["media"]],
                                          parent_id=parent, created_time=now)
            stored = self._ig_comments[created["id"]]
            delivery = ig_comment_delivery(self.ig_user_id, comment_id=created["id"], media_id=stored["media_id"],
                                           text=item["text"], sender=created["from"], time_=now,
                                           parent_id=stored["parent_id"])
            text = item["text"]
        elif channel == "instagram_mention":
            created = self.add_ig_mention(item["text"], username=sender["username"], created_time=now,
                                          in_comment=bool(item.get("in_comment")))
            media_id = created["media"]["id"] if "media" in created else created["id"]
            delivery = ig_mention_delivery(self.ig_user_id, media_id=media_id, time_=now,
                                           comment_id=created["id"] if "media" in created else None)
            text = item["text"]
        elif channel in ("messenger_dm", "instagram_dm", "whatsapp"):
            platform = {"messenger_dm": "messenger", "instagram_dm": "instagram"}.get(channel, "whatsapp")
            user_id = str(sender.get("wa_id") or sender["id"])
            delivery = self.add_customer_message(platform, user_id, item["text"], name=sender.get("name", ""),
                                                 username=sender.get("username", ""),
                                                 verified=bool(sender.get("verified")),
                                                 followers=int(sender.get("followers") or 0), created_time=now)
            created = {"id": _delivery_message_id(delivery)}
            text = item["text"]
        else:
            raise ValueError(f"unknown seed channel {channel!r}")
        if item.get("key"):
            self._seed_keys[item["key"]] = created["id"]
        who = sender.get("name") or sender.get("username") or sender.get("id") or ""
        return {"channel": channel, "id": created["id"], "who": who, "text": text, "delivery": delivery}

    def _note_inbound(self, payload: Dict[str, Any]) -> None:
        for entry in payload.get("entry") or []:
            platform = "messenger" if payload.get("object") == "page" else "instagram"
            for event in entry.get("messaging") or []:
                message = event.get("message") or {}
                sender, recipient = (event.get("sender") or {}).get("id"), (event.get("recipient") or {}).get("id")
                if message.get("mid") and sender and recipient:
                    # What a delivery carries is on the Conversations API too (the brand's echoes included).
                    echo = bool(message.get("is_echo"))
                    self._record_dm(platform, str(recipient if echo else sender), str(message["mid"]),
                                    str(message.get("text") or ""), float(event["timestamp"]) / 1000, from_brand=echo)
                if message and not message.get("is_echo") and (event.get("sender") or {}).get("id"):
                    self._last_inbound[(platform, str(event["sender"]["id"]))] = float(event["timestamp"]) / 1000
            for change in entry.get("changes") or []:
                for message in (change.get("value") or {}).get("messages") or []:
                    self._last_inbound[("whatsapp", str(message["from"]))] = float(message["timestamp"])

    def _record_dm(self, platform: str, customer_id: str, mid: str, text: str, created: float, *,
                   from_brand: bool) -> None:
        """Add a message to the customer's conversation (created on the first message); once per mid."""
        with self._lock:
            conversation_id = self._conversation_of.get((platform, customer_id))
            if conversation_id is None:
                number = self._next_number(0)
                if platform == "messenger":
                    conversation_id = f"t_{10_000_000_000_000_000 + number}"
                else:
                    raw = f"ig_conversation:{self.ig_user_id}:{customer_id}:{number}"
                    conversation_id = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
                self._conversation_of[(platform, customer_id)] = conversation_id
                self._conversations[conversation_id] = {"id": conversation_id, "platform": platform,
                                                        "user_id": customer_id, "messages": []}
            conversation = self._conversations[conversation_id]
            if any(m["id"] == mid for m in conversation["messages"]):
                return
            conversation["messages"].append({"id": mid, "text": text, "created": float(created),
                                             "from_brand": from_brand})

    def _newest_page_post_id(self) -> str:
        own = [post for post in self._posts.values() if post["from"]["id"] == self.page_id]
        if own:
            return _newest_first(own)[0]["id"]
        return self.add_page_post("SoraAir からのお知らせ / News from SoraAir")["id"]

    def _newest_media_id(self) -> str:
        if self._media:
            return _newest_first(self._media.values())[0]["id"]
        return self.add_ig_media("Blue skies from SoraAir ✈️ #ソラ航空")["id"]

    def _next_number(self, base: int) -> int:
        with self._lock:
            self._counter += 1
            return base + self._counter

    def _person_id(self) -> str:
        return str(self._next_number(26_000_000_000_000_000))

    def _mid(self, platform: str) -> str:
        number = self._next_number(0)
        if platform == "instagram":
            raw = f"ig_item:1:IGMessageThread:{self.ig_user_id}:{number:020d}"
            return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        digest = hashlib.sha256(f"mid.{number}".encode()).digest()
        return "m_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _wamid(self, wa_id: str) -> str:
        number = self._next_number(0)
        raw = b"\x18\x0c" + wa_id.encode() + b"\x15\x02\x00\x11\x18\x12" + f"{number:018X}".encode()
        return "wamid." + base64.b64encode(raw).decode()

    def _trace_id(self) -> str:
        return base64.b64encode(hashlib.sha1(f"{self._clock()}:{self._counter}".encode()).digest()[:9]).decode()

    def _time(self, value: Any) -> float:
        return self._clock() if value is None else _epoch(value)


# ---- webhook deliveries (pure builders) ------------------------------------------------------------

def encode_delivery(payload: Dict[str, Any], app_secret: str) -> Tuple[bytes, Dict[str, str]]:
    """The exact bytes and headers Meta sends: compact JSON, non-ASCII and "/" escaped, HMAC-signed."""
    body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode("ascii")
    key = app_secret.encode("utf-8")
    return body, {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


# How a delivery reaches the webhook other than over HTTP: (signed body, headers) -> HTTP status.
WebhookTransport = Callable[[bytes, Dict[str, str]], int]


def _send(payload: Dict[str, Any], url: str, app_secret: str, transport: Optional[WebhookTransport]) -> int:
    if transport is None:
        return deliver(payload, url, app_secret)
    body, headers = encode_delivery(payload, app_secret)
    return int(transport(body, headers))


def deliver(payload: Dict[str, Any], to_url: str, app_secret: str, *, timeout: float = 5.0) -> int:
    """POST a signed delivery to a webhook URL like Meta does; returns the HTTP status."""
    body, headers = encode_delivery(payload, app_secret)
    request = urllib.request.Request(to_url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def feed_comment_delivery(page_id: str, *, post_id: str, comment_id: str, message: str, sender: Dict[str, str],
                          created_time: float, parent_id: Optional[str] = None, verb: str = "add") -> Dict[str, Any]:
    value = {"from": dict(sender),
             "post": {"status_type": "added_photos", "is_published": True, "updated_time": _graph_time(created_time),
                      "permalink_url": _fb_permalink(post_id), "promotion_status": "inactive", "id": post_id},
             "message": message, "post_id": post_id, "comment_id": comment_id, "created_time": int(created_time),
             "item": "comment", "parent_id": parent_id or post_id, "verb": verb}
    return _page_change(page_id, created_time, "feed", value)


def feed_post_delivery(page_id: str, *, post_id: str, message: str, sender: Dict[str, str],
                       created_time: float) -> Dict[str, Any]:
    value = {"from": dict(sender), "message": message, "post_id": post_id, "created_time": int(created_time),
             "item": "status", "published": 1, "verb": "add"}
    return _page_change(page_id, created_time, "feed", value)


def ig_comment_delivery(ig_user_id: str, *, comment_id: str, media_id: str, text: str, sender: Dict[str, str],
                        time_: float, parent_id: Optional[str] = None) -> Dict[str, Any]:
    value: Dict[str, Any] = {"from": dict(sender), "media": {"id": media_id, "media_product_type": "FEED"},
                             "id": comment_id, "text": text}
    if parent_id:
        value["parent_id"] = parent_id
    return {"object": "instagram",
            "entry": [{"id": ig_user_id, "time": int(time_), "changes": [{"field": "comments", "value": value}]}]}


def ig_mention_delivery(ig_user_id: str, *, media_id: str, time_: float,
                        comment_id: Optional[str] = None) -> Dict[str, Any]:
    value = {"media_id": media_id}
    if comment_id:
        value["comment_id"] = comment_id
    return {"object": "instagram",
            "entry": [{"id": ig_user_id, "time": int(time_), "changes": [{"field": "mentions", "value": value}]}]}


def messaging_delivery(object_: str, account_id: str, *, sender_id: str, mid: str, text: Optional[str],
                       timestamp_ms: int, attachments: Optional[List[Dict[str, Any]]] = None,
                       is_echo: bool = False, quick_reply_payload: Optional[str] = None) -> Dict[str, Any]:
    """A Messenger (object "page") or Instagram (object "instagram") direct message; with
    ``quick_reply_payload``, a tapped quick reply (its ``text`` is the title)."""
    message: Dict[str, Any] = {"mid": mid}
    if text is not None:
        message["text"] = text
    if quick_reply_payload is not None:
        message["quick_reply"] = {"payload": quick_reply_payload}
    if attachments:
        message["attachments"] = attachments
    if is_echo:
        message["is_echo"] = True
    sender, recipient = (account_id, sender_id) if is_echo else (sender_id, account_id)
    event = {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": int(timestamp_ms),
             "message": message}
    return {"object": object_, "entry": [{"id": account_id, "time": int(timestamp_ms), "messaging": [event]}]}


def whatsapp_delivery(waba_id: str, phone_number_id: str, *, wa_id: str, name: str, wamid: str, text: str,
                      timestamp: float, display_phone_number: str = SORA_DISPLAY_PHONE) -> Dict[str, Any]:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": display_phone_number.replace(" ", "").replace("-", "").lstrip("+"),
                          "phone_number_id": phone_number_id},
             "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
             "messages": [{"from": wa_id, "id": wamid, "timestamp": str(int(timestamp)), "type": "text",
                           "text": {"body": text}}]}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": value}]}]}


def whatsapp_media_delivery(waba_id: str, phone_number_id: str, *, wa_id: str, name: str, wamid: str,
                            media_id: str, kind: str = "image", mime_type: str = "image/jpeg",
                            caption: Optional[str] = None, filename: Optional[str] = None, voice: bool = False,
                            timestamp: float, display_phone_number: str = SORA_DISPLAY_PHONE) -> Dict[str, Any]:
    """A customer's photo, video, voice note, document or sticker: ``{"type": kind, kind: {"id", "mime_type",
    "sha256", "caption"?, "filename"?, "voice"?}}`` (the file itself is fetched with GET /{media-id})."""
    body: Dict[str, Any] = {"id": media_id, "mime_type": mime_type,
                            "sha256": hashlib.sha256(media_id.encode()).hexdigest()}
    if caption is not None:
        body["caption"] = caption
    if filename is not None:
        body["filename"] = filename
    if voice:
        body["voice"] = True
    delivery = whatsapp_delivery(waba_id, phone_number_id, wa_id=wa_id, name=name, wamid=wamid, text="",
                                 timestamp=timestamp, display_phone_number=display_phone_number)
    message = delivery["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update({"type": kind, kind: body})
    return delivery


def whatsapp_button_delivery(waba_id: str, phone_number_id: str, *, wa_id: str, wamid: str, title: str,
                             payload: str, timestamp: float, context_id: str, name: str = "", template: bool = False,
                             display_phone_number: str = SORA_DISPLAY_PHONE) -> Dict[str, Any]:
    """A customer's tap on a reply button (``type: interactive``) or on a template's quick-reply button
    (``type: button``) of the message ``context_id``."""
    display = display_phone_number.replace(" ", "").replace("-", "").lstrip("+")
    message: Dict[str, Any] = {"context": {"from": display, "id": context_id}, "from": wa_id, "id": wamid,
                               "timestamp": str(int(timestamp))}
    if template:
        message.update({"type": "button", "button": {"payload": payload, "text": title}})
    else:
        message.update({"type": "interactive",
                        "interactive": {"type": "button_reply", "button_reply": {"id": payload, "title": title}}})
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": display, "phone_number_id": phone_number_id},
             "contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": value}]}]}


def whatsapp_status_delivery(waba_id: str, phone_number_id: str, *, wamid: str, recipient_id: str,
                             timestamp: float, status: str = "delivered",
                             errors: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """A delivery receipt for a message we sent ("sent", "delivered", "read" or "failed")."""
    entry_status: Dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(timestamp)),
                                    "recipient_id": recipient_id}
    if errors:
        entry_status["errors"] = errors
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "81355550123", "phone_number_id": phone_number_id},
             "statuses": [entry_status]}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": value}]}]}


def sample_deliveries(page_id: str, ig_user_id: str, phone_number_id: str, *, now: Optional[float] = None,
                      waba_id: str = SORA_WABA_ID) -> Dict[str, Dict[str, Any]]:
    """One realistic delivery per channel, keyed facebook_comment, instagram_comment,
    instagram_mention, messenger_dm, instagram_dm and whatsapp_message."""
    now = time.time() if now is None else now
    post_id = f"{page_id}_122104857600213001"
    return {
        "facebook_comment": feed_comment_delivery(
            page_id, post_id=post_id, comment_id="122104857600213001_1187342265511094",
            message="羽田行きSA215、3時間遅延してます。乗り継ぎに間に合いません。どうしたらいいですか？",
            sender={"id": "26543219876543210", "name": "山田 花子"}, created_time=now),
        "instagram_comment": ig_comment_delivery(
            ig_user_id, comment_id="18012345678901234", media_id="17912345678901234",
            text="The new lounge at Haneda looks amazing! Is it open to economy passengers? 😍",
            sender={"id": "17841400000000042", "username": "mia_chen_sg"}, time_=now),
        "instagram_mention": ig_mention_delivery(
            ig_user_id, media_id="17987654321098765", comment_id="18098765432109876", time_=now),
        "messenger_dm": messaging_delivery(
            "page", page_id, sender_id="7301234567890123", mid="m_AG5Hz2Uq7tpwXv9lYdkHgj3qTz1",
            text="Hi, I booked SA102 to Singapore but my name is misspelled on the ticket. Can you fix it?",
            timestamp_ms=int(now * 1000)),
        "instagram_dm": messaging_delivery(
            "instagram", ig_user_id, sender_id="1122334455667788",
            mid="aWdfaXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTExOjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1",
            text="手荷物が届いていません。SA331で那覇に着きました。", timestamp_ms=int(now * 1000)),
        "whatsapp_message": whatsapp_delivery(
            waba_id, phone_number_id, wa_id="818012345678", name="佐藤 健",
            wamid="wamid.HBgMODE4MDEyMzQ1Njc4FQIAEhgUM0VCMDQ0RjkxRjg2QTE5MjNCRTQA",
            text="明日のSA501便、台風で欠航になりますか？", timestamp=now),
    }


def _page_change(page_id: str, time_: float, field: str, value: Dict[str, Any]) -> Dict[str, Any]:
    return {"object": "page", "entry": [{"id": page_id, "time": int(time_), "changes": [{"field": field,
                                                                                        "value": value}]}]}


def _delivery_message_id(delivery: Dict[str, Any]) -> str:
    entry = delivery["entry"][0]
    if "messaging" in entry:
        return entry["messaging"][0]["message"]["mid"]
    return entry["changes"][0]["value"]["messages"][0]["id"]


# ---- small helpers ----------------------------------------------------------------------------------

def _graph_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if text.isdigit():
        return float(text)
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text.replace("Z", "+00:00"))
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _time_param(query: Dict[str, str], name: str) -> Optional[float]:
    if not query.get(name):
        return None
    try:
        return _epoch(query[name])
    except ValueError:
        raise GraphFault(100, f"(#100) Param {name} must be a Unix timestamp or a date") from None


def _limit_param(query: Dict[str, str]) -> int:
    try:
        limit = int(query.get("limit") or 25)
    except ValueError:
        raise GraphFault(100, "(#100) Param limit must be an integer") from None
    if limit > MAX_LIMIT:
        raise GraphFault(100, f"(#100) The limit parameter cannot exceed {MAX_LIMIT}")
    return max(1, limit)


def _edge_spec(fields: str, edge: str) -> Optional[Dict[str, Any]]:
    """The modifiers of a nested edge in ``fields``: comments.filter(stream).limit(100){...}."""
    match = re.search(rf"(?:^|,){edge}((?:\.\w+\([^)]*\))*)(\{{)?", fields)
    if not match:
        return None
    spec: Dict[str, Any] = {name: value for name, value in _EDGE_MODIFIER.findall(match.group(1))}
    spec.setdefault("filter", "toplevel")
    spec.setdefault("order", "chronological")
    # Nested fields follow in braces; "replies" inside them asks for Instagram replies.
    spec["replies"] = bool(match.group(2)) and "replies" in fields[match.end():]
    return spec


def _field_list(fields: str) -> List[str]:
    """The top-level names in a ``fields`` parameter (nested braces and modifiers dropped)."""
    depth, current, names = 0, "", []
    for char in fields:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            names.append(current)
            current = ""
        elif depth == 0:
            current += char
    names.append(current)
    return [name.split(".")[0].strip() for name in names if name.strip()]


def _conversation_updated(conversation: Dict[str, Any]) -> float:
    return max((m["created"] for m in conversation["messages"]), default=0.0)


def _newest_first(items: Any) -> List[Dict[str, Any]]:
    return sorted(items, key=lambda item: (item["created"], item["id"]), reverse=True)


def _listing(data: List[Dict[str, Any]], paging: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    return {"data": data, "paging": paging} if paging else {"data": data}


def _cursor(scope: str, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{scope}|{item_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, scope: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise GraphFault(100, "(#100) The after cursor is not valid") from None
    cursor_scope, _, item_id = decoded.partition("|")
    if cursor_scope != scope:
        raise GraphFault(100, "(#100) The after cursor is not valid for this edge")
    return item_id


def _fb_permalink(post_id: str, comment_id: str = "") -> str:
    page, _, post = post_id.partition("_")
    link = f"https://www.facebook.com/{page}/posts/{post}"
    return link + (f"?comment_id={comment_id.rpartition('_')[2]}" if comment_id else "")


def _shortcode(media_id: str) -> str:
    return base64.urlsafe_b64encode(int(media_id).to_bytes(8, "big")).decode().rstrip("=")[:11]


def _bearer(headers: Any) -> str:
    value = str((headers.get("Authorization") if headers is not None else "") or "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") else ""


def _auth_source(headers: Any, params: Dict[str, Any]) -> str:
    if _bearer(headers):
        return "header"
    return "query" if params.get("access_token") else ""


def _body_params(headers: Any, body: bytes) -> Tuple[Dict[str, Any], Optional[GraphFault]]:
    """POST parameters from a JSON or form body, or the fault to answer for an unreadable body."""
    if not body:
        return {}, None
    content_type = str((headers.get("Content-Type") if headers is not None else "") or "")
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type:
        try:
            parsed = json.loads(text)
        except ValueError:
            return {}, GraphFault(100, "(#100) The request body is not valid JSON")
        return (parsed if isinstance(parsed, dict) else {}), None
    return {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}, None


def _quick_replies(value: Any) -> List[Dict[str, Any]]:
    """``message.quick_replies`` as the Send API takes it; a GraphFault for what it refuses."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise GraphFault(100, "(#100) param message[quick_replies] must be an array") from None
    if not isinstance(value, list) or not value:
        raise GraphFault(100, "(#100) param message[quick_replies] must be a non-empty array")
    if len(value) > QUICK_REPLIES_MAX:
        raise GraphFault(100, f"(#100) param message[quick_replies] must have at most {QUICK_REPLIES_MAX} elements")
    for index, item in enumerate(value):
        where = f"message[quick_replies][{index}]"
        if not isinstance(item, dict) or item.get("content_type") not in QUICK_REPLY_TYPES:
            raise GraphFault(100, f"(#100) param {where}[content_type] must be one of {', '.join(QUICK_REPLY_TYPES)}")
        if item["content_type"] != "text":
            continue
        title, payload = item.get("title"), item.get("payload")
        if not isinstance(title, str) or not title.strip():
            raise GraphFault(100, f"(#100) param {where}[title] is required for a text quick reply")
        if len(title) > QUICK_REPLY_TITLE_MAX:
            raise GraphFault(100, f"(#100) param {where}[title] must be at most {QUICK_REPLY_TITLE_MAX} characters")
        if not isinstance(payload, (str, int)) or str(payload) == "":
            raise GraphFault(100, f"(#100) param {where}[payload] is required for a text quick reply")
        if len(str(payload)) > QUICK_REPLY_PAYLOAD_MAX:
            raise GraphFault(100, f"(#100) param {where}[payload] must be at most {QUICK_REPLY_PAYLOAD_MAX} characters")
    return [dict(item, payload=str(item["payload"])) if item["content_type"] == "text" else dict(item)
            for item in value]


def _invalid(details: str) -> GraphFault:
    """WhatsApp's answer to a parameter it refuses (the details say which)."""
    return GraphFault(INVALID_PARAMETER_CODE, error_data={"messaging_product": "whatsapp", "details": details})


def _reply_buttons(interactive: Dict[str, Any]) -> Tuple[str, List[Tuple[str, str]]]:
    """(body text, [(title, id)]) of an interactive reply-button message; a GraphFault for what WhatsApp refuses."""
    if interactive.get("type") != "button":
        raise GraphFault(100, f"(#100) The fake sends interactive reply buttons only, not {interactive.get('type')!r}")
    body: Dict[str, Any] = interactive["body"] if isinstance(interactive.get("body"), dict) else {}
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _invalid("interactive.body.text is required")
    if len(text) > WHATSAPP_BODY_MAX:
        raise _invalid(f"interactive.body.text must be at most {WHATSAPP_BODY_MAX} characters")
    action: Dict[str, Any] = interactive["action"] if isinstance(interactive.get("action"), dict) else {}
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= WHATSAPP_BUTTONS_MAX:
        raise _invalid(f"interactive.action.buttons must hold 1 to {WHATSAPP_BUTTONS_MAX} buttons")
    found: List[Tuple[str, str]] = []
    for index, button in enumerate(buttons):
        reply = button.get("reply") if isinstance(button, dict) else None
        if not isinstance(button, dict) or button.get("type") != "reply" or not isinstance(reply, dict):
            raise _invalid(f"buttons[{index}] must be {{\"type\": \"reply\", \"reply\": {{\"id\", \"title\"}}}}")
        button_id, title = reply.get("id"), reply.get("title")
        if not isinstance(button_id, str) or not button_id or len(button_id) > WHATSAPP_BUTTON_ID_MAX:
            raise _invalid(f"buttons[{index}].reply.id must be 1 to {WHATSAPP_BUTTON_ID_MAX} characters")
        if not isinstance(title, str) or not title.strip() or len(title) > WHATSAPP_BUTTON_TITLE_MAX:
            raise _invalid(f"buttons[{index}].reply.title must be 1 to {WHATSAPP_BUTTON_TITLE_MAX} characters")
        found.append((title, button_id))
    if len({t for t, _ in found}) != len(found) or len({i for _, i in found}) != len(found):
        raise _invalid("button titles and ids must be unique")
    return text, found


def _template(template: Dict[str, Any]) -> Tuple[str, str, List[Tuple[str, str]]]:
    """(name, language, [(title, payload)] of its quick-reply buttons) of a template message."""
    name = template.get("name")
    language: Dict[str, Any] = template["language"] if isinstance(template.get("language"), dict) else {}
    if not isinstance(name, str) or not name:
        raise GraphFault(100, "(#100) The parameter template[name] is required.")
    if not isinstance(language.get("code"), str) or not language["code"]:
        raise GraphFault(100, "(#100) The parameter template[language][code] is required.")
    buttons: List[Tuple[str, str]] = []
    for component in template.get("components") or []:
        if not isinstance(component, dict) or component.get("type") != "button":
            continue
        if component.get("sub_type") != "quick_reply" or not str(component.get("index", "")).isdigit():
            raise _invalid("a button component needs sub_type quick_reply and a numeric index")
        payloads = [p.get("payload") for p in component.get("parameters") or []
                    if isinstance(p, dict) and p.get("type") == "payload"]
        if len(payloads) != 1 or not isinstance(payloads[0], str) or not payloads[0]:
            raise _invalid("a quick_reply button takes one parameter of type payload")
        # The approved button's title is the template's own; the fake names it by its position.
        buttons.append((f"button {component['index']}", payloads[0]))
    return name, language["code"], buttons


def _template_variables(template: Dict[str, Any]) -> List[str]:
    """The texts of a template's body parameters, in order."""
    found: List[str] = []
    for component in template.get("components") or []:
        if isinstance(component, dict) and component.get("type") == "body":
            for parameter in component.get("parameters") or []:
                if not isinstance(parameter, dict) or parameter.get("type") != "text" or not parameter.get("text"):
                    raise _invalid("a body parameter is {\"type\": \"text\", \"text\": \"...\"}")
                found.append(str(parameter["text"]))
    return found


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 2048


def _json_param(params: Dict[str, Any], name: str) -> Dict[str, Any]:
    """Graph takes object parameters as JSON objects, or as JSON strings in form posts."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise GraphFault(100, f"(#100) Param {name} must be a JSON object") from None
    return value if isinstance(value, dict) else {}


class FakeGraphControl(FakeControl):
    """Drives a FakeGraph running in another process through its /_fake endpoints."""

    def fail_next(self, path_prefix: str, status: int, times: int = 1, body: Optional[Dict[str, Any]] = None,
                  *, method: Optional[str] = None, regain_minutes: int = 5) -> None:
        self._call("POST", "/_fake/fail", {"path_prefix": path_prefix, "status": status, "times": times,
                                           "body": body, "method": method, "regain_minutes": regain_minutes})

    def add(self, type_: str, **fields: Any) -> Dict[str, Any]:
        """``add("page_comment", message=..., author_name=...)``; types as FakeGraph.add_*."""
        return self._call("POST", "/_fake/add", {"type": type_, **fields})["item"]

    def set_usage(self, app: Optional[Dict[str, Any]] = None, buc: Optional[Dict[str, Any]] = None) -> None:
        self._call("POST", "/_fake/usage", {"app": app, "buc": buc})

    def release(self, n: Optional[int] = None) -> Dict[str, Any]:
        return self._call("POST", "/_fake/release", {"n": n})

    def set_webhook(self, url: Optional[str], app_secret: str = "") -> None:
        self._call("POST", "/_fake/webhook", {"url": url, "app_secret": app_secret})

    def deliver(self, *, payload: Optional[Dict[str, Any]] = None, sample: Optional[str] = None,
                to_url: Optional[str] = None, app_secret: Optional[str] = None) -> int:
        return self._call("POST", "/_fake/deliver", {"payload": payload, "sample": sample, "to_url": to_url,
                                                     "app_secret": app_secret})["status"]

    def give_up_webhooks(self, times: int = 1) -> None:
        self._call("POST", "/_fake/give_up", {"times": times})

    def reset(self) -> None:
        self._call("POST", "/_fake/reset", {})



def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.fake_graph", description="Fake Meta Graph API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082, help="0 picks a free port")
    parser.add_argument("--seed", help="seed stream JSON, e.g. local/data/meta_stream.json")
    parser.add_argument("--access-token", default="fake-meta-token")
    parser.add_argument("--release-every", type=float, default=5.0,
                        help="seconds between releases of seed items; 0 releases everything at start")
    parser.add_argument("--release-batch", type=int, default=2, help="seed items per release")
    parser.add_argument("--release-initial", type=int, default=0, help="seed items released at start")
    parser.add_argument("--webhook-url", help="also deliver released items, signed, to this webhook URL")
    parser.add_argument("--app-secret", default="", help="app secret that signs webhook deliveries")
    args = parser.parse_args(argv)

    brand: Dict[str, Any] = {}
    if args.seed:
        with open(args.seed, encoding="utf-8") as handle:
            brand = json.load(handle).get("brand") or {}
    fake = FakeGraph(port=args.port, host=args.host, access_token=args.access_token,
                     page_id=brand.get("page_id", SORA_PAGE_ID), ig_user_id=brand.get("ig_user_id", SORA_IG_USER_ID),
                     phone_number_id=brand.get("phone_number_id", SORA_PHONE_NUMBER_ID),
                     waba_id=brand.get("waba_id", SORA_WABA_ID), page_name=brand.get("page_name", SORA_PAGE_NAME),
                     ig_username=brand.get("ig_username", SORA_IG_USERNAME),
                     display_phone_number=brand.get("display_phone_number", SORA_DISPLAY_PHONE))
    if args.seed:
        fake.load_seed(args.seed)
    if args.webhook_url:
        fake.set_webhook(args.webhook_url, args.app_secret)
    fake.start()
    print(f"fake Graph API on {fake.url}/{GRAPH_VERSION}  page {fake.page_id}  instagram {fake.ig_user_id}  "
          f"whatsapp phone {fake.phone_number_id}  {fake.pending} seed items pending", flush=True)
    _announce(fake.release(None if args.release_every <= 0 else args.release_initial))
    try:
        while True:
            time.sleep(args.release_every if args.release_every > 0 else 3600)
            if args.release_every > 0 and (fake.pending or fake.pending_answers):  # customers still answer surveys
                had_seed = fake.pending > 0
                _announce(fake.release(args.release_batch))
                if had_seed and not fake.pending:
                    print("seed stream fully released", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


def _announce(items: List[Dict[str, Any]]) -> None:
    for item in items:
        sent = f"  webhook {item['webhook_status']}" if "webhook_status" in item else ""
        print(f"released {item['channel']:<17} {item['id']} {item['who']}: {item['text'][:60]}{sent}", flush=True)


if __name__ == "__main__":
    main()
