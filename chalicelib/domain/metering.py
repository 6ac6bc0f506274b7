"""Metering: what each function consumed, counted where the work happens, in the units it is billed in.

A container keeps one ``UsageMeter``. Each invocation is framed by ``start``
and ``finish`` (Lambda requests, GB-seconds, API Gateway requests, the
platform's own log lines, X-Ray traces); in between, the adapters add what
the code consumed (DynamoDB units, SQS chunks, Secrets Manager, S3 and SNS
calls, log bytes, platform API calls by priced kind). Usage is kept per
(function, channel): ``channel`` is the platform a piece of work was for
where that is known ("x", "whatsapp", ...), ``SHARED`` otherwise (an
invocation's own Lambda request serves its whole batch).

Every usage kind is a key of the price table (``domain/prices.py``), so
``domain.cost.price_usage`` prices what was stored without a translation
table; the only other kinds are counters the report divides by or shows
beside the bill (``COUNTERS``, ``requests.<service>``, ``metering.<kind>``),
which ``is_priced`` tells apart.

The flush rule, and what metering costs
---------------------------------------
Usage is written to the cost store (one atomic ADD per (function, channel)
item of the day) at most once every ``FlushRule.every_seconds`` (60) per
container, and at the end of every scheduled invocation. Not per request,
because the write would cost too much of what it measures. In us-east-1 at
list prices (arm64; X-Ray left out, as tracing may be sampled away):

* a flush writes one item per (function, channel) touched since the last
  one; items stay under 1 KB (a contract test holds every kind in one), so
  each write is 1 WRU = $0.000000625;
* an agent API request that only reads costs at least $0.0000012 through the
  function URL (the stage's front since 2026-12-02): the Lambda request
  $0.0000002, 1,024 MB for 50 ms = 0.05 GB-s x $0.0000133334 = $0.00000067,
  about 3 read units $0.000000375 (Lambda's own log lines are off). A write
  per request would add 0.625 / 1.25 = 50 %. Once a minute, a container
  serving n requests a minute pays 50 % / n: under 5 % from 11 a minute.
  Through API Gateway REST (and 420 bytes of Lambda's log lines) the request
  costs $0.0000049 and the share is under 5 % from 3 a minute
  (``tests/unit/test_metering.py`` computes both from the price table);
* listening and triage cost $0.0000033 a mention (bench/cost.py, bench/COST.md,
  2026-12-02); a triage flush writes two items (the batch's shared one and the
  mention's channel), $0.00000125: under 5 % from 8 mentions a minute per
  container, 38 % when every mention comes alone;
* an idle poll run costs $0.0000072 (measured, X-Ray and Lambda's own log lines
  off), so flushing on every scheduled run adds 9 % (one item) to 17 % (two, when
  X was polled): $0.027 to $0.054 a month per schedule.

So the meter costs under 5 % of what it measures once a container is busy
(a few invocations a minute), more when traffic is sparse, where it is
bounded in dollars instead: at most 1,440 flushes a day per container, $0.027
a month per item. ``every_seconds`` trades that cost against what a reaped
container loses (below): 300 s on the scheduled functions, whose containers
are invoked every minute and rarely reaped, cuts their share by five.

The meter counts its own writes like any others (its DynamoDB units, through
the same hooks) and mirrors them under ``metering.<kind>``, so the report
says what metering costs; they reach the store with the next flush, in the
invocation's ``SHARED`` item, which every flush writes anyway (the Lambda
request is always there), so metering its own cost adds no write.

What is lost
------------
Usage not yet flushed dies with its container. The first invocation of a
container flushes, so what is lost is at most what one container did in the
``every_seconds`` (60 s) before it went idle for good: under steady traffic,
60 s of a container lifetime of hours (under 1 %); after a burst, up to 60 s
of work for each container the burst scaled to. Also never counted: an
invocation killed by its timeout or by running out of memory (the frame's
end never runs; its usage and the container's pending usage are lost), the
INIT phase of a cold start (billed since 2025-08-01, invisible from the
handler), the runtime's own time around the handler (billed duration is a
little longer than the handler's), the write units of a refused conditional
write beyond the first (DynamoDB reports no capacity for it), Lambda's SQS
pollers at rest (the receive and delete of each delivered batch are modeled
from the batch), and fixed costs (storage, alarms, metrics, the secret): the
report shows the last ones apart. Every one of these makes the meter count
low, never high, but two: X bills a resource once per UTC day and the meter
deduplicates within a container, so a container started later that day
counts again what another one read; and a WhatsApp message is counted when
Meta accepts it, billed only when delivered.

Pure: no clock, no I/O. The adapters (``chalicelib.adapters.metering``) own
the hooks, the lock and the time.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

Usage = Dict[str, float]

# ---- usage kinds: the price table's keys -----------------------------------------------------------
LAMBDA_REQUESTS = "lambda.requests"
LAMBDA_GB_SECONDS = "lambda.gb_seconds"   # priced by architecture (the report's price table chooses)
DYNAMODB_READS = "dynamodb.read_request_units"
DYNAMODB_WRITES = "dynamodb.write_request_units"
SQS_REQUESTS = "sqs.requests"
APIGATEWAY_REQUESTS = "apigateway.rest_requests"
LOGS_INGESTED = "logs.ingested_gb"
SECRETS_CALLS = "secretsmanager.api_calls"
S3_GETS = "s3.get_requests"
S3_PUTS = "s3.put_requests"
SNS_PUBLISHES = "sns.publishes"
XRAY_TRACES = "xray.traces_recorded"
SCHEDULED_EVENTS = "eventbridge.scheduled_events"
X_OWNED_READS = "x.owned_reads"
X_POST_READS = "x.post_reads"
X_USER_READS = "x.user_reads"
X_DM_EVENT_READS = "x.dm_event_reads"
X_POSTS_CREATED = "x.posts_created"
X_POSTS_CREATED_WITH_URL = "x.posts_created_with_url"
X_DMS_SENT = "x.dms_sent"
GRAPH_REQUESTS = "meta.graph_requests"
WHATSAPP_SERVICE = "whatsapp.service_messages"
WHATSAPP_MARKETING = "whatsapp.marketing_templates"
WHATSAPP_UTILITY = "whatsapp.utility_templates"
WHATSAPP_AUTHENTICATION = "whatsapp.authentication_templates"

PRICED_KINDS = (
    LAMBDA_REQUESTS, LAMBDA_GB_SECONDS, DYNAMODB_READS, DYNAMODB_WRITES, SQS_REQUESTS, APIGATEWAY_REQUESTS,
    LOGS_INGESTED, SECRETS_CALLS, S3_GETS, S3_PUTS, SNS_PUBLISHES, XRAY_TRACES, SCHEDULED_EVENTS,
    X_OWNED_READS, X_POST_READS, X_USER_READS, X_DM_EVENT_READS, X_POSTS_CREATED, X_POSTS_CREATED_WITH_URL,
    X_DMS_SENT, GRAPH_REQUESTS, WHATSAPP_SERVICE, WHATSAPP_MARKETING, WHATSAPP_UTILITY, WHATSAPP_AUTHENTICATION,
)

# ---- counters: not priced; the report divides by them or shows them beside the bill ----------------
MENTIONS_PROCESSED = "mentions_processed"   # triaged (a case or not); duplicates are not counted
CASES_OPENED = "cases_opened"
COUNTERS = (MENTIONS_PROCESSED, CASES_OPENED)
REQUESTS_PREFIX = "requests."    # requests.<service>: every AWS and platform request, for checking
METERING_PREFIX = "metering."    # metering.<priced kind>: the part of that kind the meter itself caused

SHARED = "shared"                # usage of no one channel (an invocation's Lambda request, the agent API)
ARCHITECTURES = ("arm64", "x86_64")

SQS_CHUNK_BYTES = 64 * 1024      # SQS and SNS bill each 64 KB of a request's payload as one request
BYTES_PER_GB = 1024 ** 3         # CloudWatch Logs bills ingestion in binary gigabytes
# START, END and REPORT lines (with the X-Ray trace id) Lambda writes for every invocation; the handler
# never sees them. Measured by bench/cost.py; a model, not a count.
LAMBDA_PLATFORM_LOG_BYTES = 420
STORED_DIGITS = 10               # significant digits kept per flush: 1e-10 relative, and items stay small


def is_priced(kind: str) -> bool:
    """A kind the price table prices (not a counter, a request count or metering's mirror)."""
    return not (kind in COUNTERS or kind.startswith(REQUESTS_PREFIX) or kind.startswith(METERING_PREFIX))


def sqs_chunks(size: int) -> int:
    """Billed requests for a payload of ``size`` bytes: one per 64 KB started, and at least one."""
    if size < 0:
        raise ValueError("a payload size is zero or more bytes")
    return max(1, math.ceil(size / SQS_CHUNK_BYTES))


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the millisecond (at least 1 ms)."""
    if not math.isfinite(duration_ms) or duration_ms < 0:
        raise ValueError("a duration is zero or more milliseconds")
    return max(1, math.ceil(duration_ms))


def gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """GB-seconds of one invocation: billed seconds x memory in (binary) GB, as Lambda computes them."""
    if memory_mb <= 0:
        raise ValueError("memory is a positive number of MB")
    return billed_ms(duration_ms) / 1000 * memory_mb / 1024


def stored_quantity(value: float) -> float:
    """``value`` to ``STORED_DIGITS`` significant digits: what a flush writes."""
    return float(f"{value:.{STORED_DIGITS}g}")


# ---- platforms: which calls are priced, and as what --------------------------------------------------

_X_USER_TIMELINES = ("mentions", "tweets")
_URL = re.compile(r"https?://|\bwww\.", re.IGNORECASE)


def x_priced_kind(method: str, path: str, status: int) -> Optional[str]:
    """What an X API v2 call is billed as, per resource it returns or creates; None when it is not billed.

    ``path`` is the URL's path (``/2/users/123/mentions``; a query string is
    ignored). X bills what it returns or creates, so an error answer (4xx,
    5xx) is not billed. Reads of the brand's own timelines
    (``/2/users/{id}/mentions``, ``/tweets``) are owned reads; socialcare reads
    no other account's timeline. The users an answer includes
    (``expansions=author_id``) are user reads on top: ``x_included_users_kind``.
    A post created with a link is priced apart: ``x_post_created_kind``.
    """
    if not 200 <= status < 300:
        return None
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if "2" in parts:
        parts = parts[parts.index("2") + 1:]
    if not parts or parts[0] == "oauth2":
        return None
    verb = method.upper()
    if verb == "GET":
        if parts[0] == "users":
            if len(parts) == 3 and parts[2] in _X_USER_TIMELINES:
                return X_OWNED_READS
            if len(parts) <= 2 or parts[1] == "by" or parts[-1] in ("followers", "following"):
                return X_USER_READS
            return X_POST_READS if parts[-1] == "liked_tweets" else None
        if parts[0] == "tweets":
            return X_POST_READS
        if parts[0] == "dm_events" or (parts[0] == "dm_conversations" and parts[-1] == "dm_events"):
            return X_DM_EVENT_READS
        return None
    if verb == "POST":
        if parts == ["tweets"]:
            return X_POSTS_CREATED
        if parts[0] == "dm_conversations" and (parts[-1] == "messages" or len(parts) == 1):
            return X_DMS_SENT
    return None


def x_post_created_kind(text: str) -> str:
    """A post with a link costs more than one without."""
    return X_POSTS_CREATED_WITH_URL if _URL.search(text or "") else X_POSTS_CREATED


def x_included_users_kind(kind: Optional[str]) -> Optional[str]:
    """Users X returns with a read (``includes.users``) are billed as user reads (an upper bound: whether
    expansions are billed is not documented); none come with a write."""
    return X_USER_READS if kind in (X_OWNED_READS, X_POST_READS, X_DM_EVENT_READS, X_USER_READS) else None


TEMPLATE_CATEGORIES = {"marketing": WHATSAPP_MARKETING, "utility": WHATSAPP_UTILITY,
                       "authentication": WHATSAPP_AUTHENTICATION}


def graph_priced_kind(method: str, path: str, status: int, payload: Optional[Mapping[str, Any]] = None,
                      template_category: Optional[str] = None) -> Optional[str]:
    """What a Graph API call is billed as: WhatsApp messages by category, everything else free.

    A WhatsApp send (``POST /{phone-number-id}/messages`` with
    ``messaging_product: whatsapp``) is priced per delivered message since
    2025-07-01: a template by its category (``template_category``; the send
    names only the template, and socialcare's templates are utility ones, so
    utility unless told), any other message (text, buttons, media) is a
    free-form reply, which WhatsApp allows only in the 24-hour customer
    service window: a service message. Service messages were free from
    2024-11; from 2026-10-01 they are reported charged after 1,000 a month
    (``../shared/platforms.md``, ``domain/prices.py``): the price table says
    what they cost, the meter only counts them. A read receipt
    (``status: read``) is not a message. Counted on acceptance (2xx), so a
    message never delivered is counted too (an upper bound). Every other
    Graph call is a ``meta.graph_requests`` (free, shown for checking); an
    error answer is not billed.
    """
    if not 200 <= status < 300:
        return None
    body = payload or {}
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if (method.upper() == "POST" and parts and parts[-1] == "messages" and body.get("messaging_product") == "whatsapp"):
        if body.get("status") == "read" or not body.get("to"):
            return None
        if body.get("type") == "template":
            return TEMPLATE_CATEGORIES.get((template_category or "utility").lower(), WHATSAPP_UTILITY)
        return WHATSAPP_SERVICE
    return GRAPH_REQUESTS


def channel_of_kind(kind: str) -> Optional[str]:
    """The channel a platform kind belongs to, when the kind alone says (X's and WhatsApp's)."""
    service = kind.split(".", 1)[0]
    return service if service in ("x", "whatsapp") else None


# ---- the flush rule ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlushRule:
    """When a container writes what it metered: see the module's docstring for the arithmetic."""

    every_seconds: float = 60.0
    on_schedule: bool = True

    def due(self, *, now: float, last_flush: Optional[float], scheduled: bool = False) -> bool:
        if last_flush is None or (scheduled and self.on_schedule):
            return True
        # A clock that went back (a container thawed on another host) must not stop flushing.
        return now - last_flush >= self.every_seconds or now < last_flush


def flush_share(*, items_per_flush: int, invocations_per_flush: float, invocation_usd: float,
                write_unit_usd: float, units_per_item: int = 1) -> float:
    """What metering costs as a share of what it measures: one flush's writes over the invocations it covers."""
    if invocations_per_flush <= 0 or invocation_usd <= 0:
        raise ValueError("a flush covers at least one invocation that cost something")
    return items_per_flush * units_per_item * write_unit_usd / (invocations_per_flush * invocation_usd)


# ---- the meter --------------------------------------------------------------------------------------

@dataclass
class Invocation:
    function: str
    memory_mb: int
    architecture: str
    http: bool = False
    scheduled: bool = False


@dataclass
class UsageMeter:
    """What a container consumed since its last flush, per (function, channel); see the module docstring.

    Not thread-safe by itself: the adapter that feeds it from several
    threads holds a lock around every call.
    """

    rule: FlushRule = field(default_factory=FlushRule)
    # The last function started: usage between invocations is its own; before the first one (a cold
    # start's imports, a script's set-up), "init".
    function: str = "init"
    invocation: Optional[Invocation] = None
    last_flush: Optional[float] = None
    _pending: Dict[Tuple[str, str], Usage] = field(default_factory=dict)

    def start(self, function: str, memory_mb: int, architecture: str, *, http: bool = False,
              scheduled: bool = False) -> None:
        if not function:
            raise ValueError("an invocation names its function")
        if memory_mb <= 0:
            raise ValueError("memory is a positive number of MB")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture is one of {', '.join(ARCHITECTURES)}, not {architecture!r}")
        self.function = function
        self.invocation = Invocation(function=function, memory_mb=memory_mb, architecture=architecture,
                                     http=http, scheduled=scheduled)

    def add(self, kind: str, quantity: float = 1.0, *, channel: Optional[str] = None) -> None:
        """Add ``quantity`` of ``kind`` for the current function and ``channel`` (``SHARED`` when unknown)."""
        if not math.isfinite(quantity) or quantity < 0:
            raise ValueError(f"usage {kind!r} must be a finite number, zero or more, not {quantity!r}")
        if not quantity:
            return
        usage = self._pending.setdefault((self.function, channel or SHARED), {})
        usage[kind] = usage.get(kind, 0.0) + float(quantity)

    def add_own(self, kind: str, quantity: float) -> None:
        """Usage the meter itself caused (its writes): counted as usage, mirrored under ``metering.``."""
        self.add(kind, quantity)
        self.add(METERING_PREFIX + kind, quantity)

    def finish(self, duration_ms: float, *, traced: bool = False,
               platform_log_bytes: int = LAMBDA_PLATFORM_LOG_BYTES) -> Usage:
        """Close the invocation: its Lambda request and GB-seconds (billed duration rounded up to 1 ms),
        API Gateway's request for an HTTP one, the schedule's event, the trace if sampled, Lambda's own
        log lines. Returns what was added (nothing when no invocation was started)."""
        invocation, self.invocation = self.invocation, None
        if invocation is None:
            return {}
        added: Usage = {LAMBDA_REQUESTS: 1.0, LAMBDA_GB_SECONDS: gb_seconds(duration_ms, invocation.memory_mb),
                        LOGS_INGESTED: platform_log_bytes / BYTES_PER_GB}
        if invocation.http:
            added[APIGATEWAY_REQUESTS] = 1.0
        if invocation.scheduled:
            added[SCHEDULED_EVENTS] = 1.0
        if traced:
            added[XRAY_TRACES] = 1.0
        for kind, quantity in added.items():
            self.add(kind, quantity)
        return added

    def flush_due(self, now: float, *, scheduled: bool = False) -> bool:
        """Whether to write now, at the end of an invocation (``scheduled``: a schedule's)."""
        return bool(self._pending) and self.rule.due(now=now, last_flush=self.last_flush, scheduled=scheduled)

    def pending(self) -> Dict[Tuple[str, str], Usage]:
        return {key: dict(usage) for key, usage in self._pending.items()}

    def take(self) -> List[Tuple[str, str, Usage]]:
        """Everything pending, as (function, channel, usage) rounded for storage, and forget it."""
        taken = [(function, channel, {k: stored_quantity(v) for k, v in sorted(usage.items()) if v})
                 for (function, channel), usage in sorted(self._pending.items())]
        self._pending = {}
        return [entry for entry in taken if entry[2]]

    def give_back(self, entries: List[Tuple[str, str, Usage]]) -> None:
        """Entries a flush could not write: kept for the next one (added to what came meanwhile)."""
        for function, channel, usage in entries:
            pending = self._pending.setdefault((function, channel), {})
            for kind, quantity in usage.items():
                pending[kind] = pending.get(kind, 0.0) + quantity

    def flushed(self, now: float) -> None:
        self.last_flush = now
