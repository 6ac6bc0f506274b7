"""Metering in production: botocore hooks on our boto3 clients, a byte-counting log stream, a platform call
counter, and the per-invocation frame that flushes to the cost store (``chalicelib.domain.metering`` holds
the arithmetic, the flush rule and what it costs).

- ``instrument(client)``: ``adapters/aws.py`` passes every client it creates
  through it. It counts every request per service (``requests.<service>``);
  DynamoDB's consumed capacity, asked for on every call that accepts
  ``ReturnConsumedCapacity`` (``INDEXES``: indexes included) and read from
  the answer; SQS requests by 64 KB chunk of the payload sent or received;
  SNS publishes by chunk; Secrets Manager calls; S3 requests by price class.
- ``platform_call(method, url, request_body, response)``: the platform HTTP
  client calls it for every answer; X by priced kind and resource (once per
  resource per UTC day in this container, as X bills), WhatsApp messages by
  category, other Graph calls as free requests.
- ``CountingStream`` / ``install_log_counter``: bytes of every log line and
  EMF metric written (CloudWatch Logs ingestion).
- ``invocation(...)`` frames one invocation (``start``/``finish``, then
  ``flush``); ``describe(event, stage)`` reads the function, memory, HTTP or
  schedule from a Chalice event; ``sqs_batch(event)`` counts what Lambda's
  poller did to hand the batch over (a receive of its payload and a delete:
  requests the function never makes itself, billed all the same).

Metering never fails the work it measures: every hook swallows its own
errors, and a flush that cannot write keeps the usage for the next one.
The flush's own DynamoDB writes are counted like any others and mirrored
under ``metering.<kind>`` (the report shows what metering costs); the few
milliseconds of Lambda time a flush takes after ``finish`` are not counted.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
import platform as host
import sys
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple
from urllib.parse import urlsplit

from chalicelib.domain import metering as rules
from chalicelib.domain.metering import UsageMeter
from chalicelib.observability import logger

if TYPE_CHECKING:  # annotations only: the middleware runs before anything needs the ports
    from chalicelib.ports import CostStore

_lock = threading.RLock()
_meter = UsageMeter()
# The channel the current work is for (set per queue message by ``attributed``); None: SHARED.
_channel: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("metering_channel", default=None)
# True while the meter writes its own usage: what those calls consume is metering's cost.
_own: contextvars.ContextVar[bool] = contextvars.ContextVar("metering_own", default=False)
# X bills a resource once per UTC day: (day, {(kind, id)}) of what this container has counted.
_x_seen: Dict[str, Any] = {"day": "", "ids": set()}
X_SEEN_LIMIT = 100_000   # beyond it the set starts again: a container counts more (an upper bound), never less
DEFAULT_MEMORY_MB = 128  # outside Lambda (chalice local, tests) when nothing says otherwise

DYNAMODB_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
DYNAMODB_REFUSED = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})
S3_FREE = ("Delete",)
S3_PUT_CLASS = ("Put", "Copy", "Post", "List", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                "RestoreObject")


# ---- the meter --------------------------------------------------------------------------------------

def meter() -> UsageMeter:
    return _meter


def reset(new: Optional[UsageMeter] = None) -> UsageMeter:
    """A fresh meter for this container (tests); returns it."""
    global _meter
    with _lock:
        _meter = new if new is not None else UsageMeter()
        _x_seen["day"], _x_seen["ids"] = "", set()
        return _meter


def add(kind: str, quantity: float = 1.0, channel: Optional[str] = None) -> None:
    """Add usage (or a counter) for the current function; ``channel`` defaults to the attributed one."""
    try:
        with _lock:
            if _own.get():
                _meter.add_own(kind, quantity)
            else:
                _meter.add(kind, quantity, channel=channel or _channel.get())
    except ValueError:  # a negative or infinite quantity from a malformed answer: counting nothing is safer
        pass


def count(kind: str, quantity: float = 1.0, channel: Optional[str] = None) -> None:
    """A counter the report divides by: ``mentions_processed``, ``cases_opened``."""
    add(kind, quantity, channel)


@contextlib.contextmanager
def attributed(channel: Optional[str]) -> Iterator[None]:
    """Usage inside the block is for ``channel`` (None: leave it as it was)."""
    token = _channel.set(channel or _channel.get())
    try:
        yield
    finally:
        _channel.reset(token)


def channel_of_message(body: str) -> Optional[str]:
    """The platform a queue message is about ({"platform"} or {"mention": {"platform"}}), when it says."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    nested = data.get("mention")
    source = nested if isinstance(nested, dict) else data
    value = source.get("platform")
    return value if isinstance(value, str) and value and "#" not in value else None


def count_outcomes(results: Iterable[Mapping[str, Any]], kinds: Mapping[str, str]) -> None:
    """Counters from a batch's results: ``kinds`` maps an outcome ("triaged", "opened") to a counter; the
    channel is the platform in the result's ``mention_id`` ("x:123")."""
    for result in results:
        kind = kinds.get(str(result.get("outcome", "")))
        if kind:
            mention_id = str(result.get("mention_id") or "")
            count(kind, 1, mention_id.split(":", 1)[0] if ":" in mention_id else None)


# ---- one invocation ---------------------------------------------------------------------------------

def start(function: str, memory_mb: int, architecture: Optional[str] = None, *, http: bool = False,
          scheduled: bool = False) -> None:
    with _lock:
        _meter.start(function, memory_mb, architecture or current_architecture(), http=http, scheduled=scheduled)


def finish(duration_ms: float, *, traced: Optional[bool] = None) -> None:
    with _lock:
        _meter.finish(duration_ms, traced=sampled() if traced is None else traced,
                      platform_log_bytes=platform_log_bytes())


def platform_log_bytes() -> int:
    """Lambda's own START, END and REPORT lines of one invocation: none where the stage keeps only its WARN
    lines (``LAMBDA_SYSTEM_LOG_LEVEL``, the default; those few are not counted)."""
    from chalicelib.config import settings

    try:
        level = settings().lambda_system_log_level
    except ValueError:  # a setting the function refuses at its start: count the lines (an upper bound)
        return rules.LAMBDA_PLATFORM_LOG_BYTES
    return 0 if level == "WARN" else rules.LAMBDA_PLATFORM_LOG_BYTES


def flush(store: Optional[CostStore], day: Optional[str] = None, now: Optional[float] = None, *,
          scheduled: bool = False) -> bool:
    """Write what is pending when the flush rule says so; True when it wrote (or tried to).

    The stage is the store's (one per deployment). ``day`` defaults to the
    UTC day of ``now``. A write that fails keeps its usage for the next flush.
    """
    if store is None:
        return False
    moment = time.time() if now is None else now
    with _lock:
        if not _meter.flush_due(moment, scheduled=scheduled):
            return False
        entries = _meter.take()
        _meter.flushed(moment)  # before writing: a failing store is not retried on every request
    when = day or datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d")
    failed: List[Tuple[str, str, Dict[str, float]]] = []
    token = _own.set(True)
    try:
        for function, channel, usage in entries:
            try:
                store.add_usage(when, function, channel, usage)
            except Exception as err:  # noqa: BLE001 - metering must never fail the work it measures
                failed.append((function, channel, usage))
                logger.warning("cost metering could not write; kept for the next flush",
                               extra={"function": function, "channel": channel, "reason": str(err)[:300]})
    finally:
        _own.reset(token)
    if failed:
        with _lock:
            _meter.give_back(failed)
    return True


@contextlib.contextmanager
def invocation(function: str, memory_mb: int, architecture: Optional[str] = None, *, http: bool = False,
               scheduled: bool = False, store: Optional[Callable[[], Optional[CostStore]]] = None) -> Iterator[None]:
    """Frame one invocation: ``start``, the work, ``finish`` with the time it took, then ``flush``."""
    start(function, memory_mb, architecture, http=http, scheduled=scheduled)
    began = time.perf_counter()
    try:
        yield
    finally:
        finish((time.perf_counter() - began) * 1000)
        if store is not None:
            try:
                flush(store(), scheduled=scheduled)
            except Exception as err:  # noqa: BLE001 - building the store failed (bad config): never the caller's problem
                logger.warning("cost metering could not flush", extra={"reason": str(err)[:300]})


def describe(event: Any, stage: str) -> Dict[str, Any]:
    """``function``, ``memory_mb``, ``http`` and ``scheduled`` of a Chalice middleware event (a Request,
    an SQS or schedule event), for ``invocation(**describe(event, stage), store=...)``."""
    http = hasattr(event, "method") and hasattr(event, "lambda_context")
    context = getattr(event, "lambda_context", None) if http else getattr(event, "context", None)
    name = str(getattr(context, "function_name", "") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))
    memory = getattr(context, "memory_limit_in_mb", None) or os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    try:
        memory_mb = int(memory) if memory else DEFAULT_MEMORY_MB
    except (TypeError, ValueError):
        memory_mb = DEFAULT_MEMORY_MB
    raw: Any = {}
    if not http and hasattr(event, "to_dict"):
        try:
            raw = event.to_dict()
        except Exception:  # noqa: BLE001 - an event we cannot read is described as what we know
            raw = {}
    scheduled = isinstance(raw, dict) and raw.get("detail-type") == "Scheduled Event"
    path = str(getattr(event, "path", "") or "") if http else ""
    # Through the function URL (entrypoints/function_url.py marks the request's context) no API Gateway
    # request is billed: ``http`` says whether one is. The function keeps its name either way.
    request_context = getattr(event, "context", None) if http else None
    via_function_url = isinstance(request_context, Mapping) and request_context.get("front") == "function_url"
    return {"function": function_name(name, stage, path=path, http=http), "memory_mb": memory_mb,
            "http": http and not via_function_url, "scheduled": scheduled}


def function_name(lambda_name: str, stage: str, *, path: str = "", http: bool = False) -> str:
    """The function as the report names it: Chalice's ``socialcare-<stage>-triage_mentions`` is
    ``triage_mentions``; the API handler is ``api``, or ``webhooks`` for Meta's deliveries (they are
    listening, not the case lifecycle)."""
    if http or lambda_name in (f"socialcare-{stage}", "api_handler"):
        return "webhooks" if path.startswith("/webhooks/") else "api"
    name = lambda_name
    for prefix in (f"socialcare-{stage}-", "socialcare-"):  # the local runner names them without a stage
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name.replace("#", "_") or "local"


def current_architecture() -> str:
    return "arm64" if host.machine().lower() in ("aarch64", "arm64") else "x86_64"


def sampled() -> bool:
    """Whether X-Ray records this invocation's trace (Lambda sets ``_X_AMZN_TRACE_ID`` per invocation)."""
    return "Sampled=1" in os.environ.get("_X_AMZN_TRACE_ID", "")


def sqs_batch(event: Mapping[str, Any]) -> None:
    """What Lambda's poller did to deliver this batch, which the function never sees as calls: one receive
    of the batch's payload (by 64 KB chunk) and one batch delete. A model of the poller, from the batch."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records:
        return
    size = sum(len(str(r.get("body", "")).encode("utf-8")) + _attribute_bytes(r.get("messageAttributes"))
               for r in records if isinstance(r, Mapping))
    add(rules.SQS_REQUESTS, rules.sqs_chunks(size) + 1)


# ---- AWS: botocore hooks ----------------------------------------------------------------------------

def instrument(client: Any) -> Any:
    """Count every call ``client`` makes (registered once per client); returns the client."""
    events = client.meta.events
    events.register("provide-client-params.*.*", _before_call, unique_id="socialcare-metering-params")
    events.register("after-call.*.*", _after_call, unique_id="socialcare-metering-usage")
    return client


def _before_call(params: Dict[str, Any], model: Any, context: Dict[str, Any], **_: Any) -> None:
    try:
        context["metering_params"] = params
        members = getattr(getattr(model, "input_shape", None), "members", {}) or {}
        if (model.service_model.service_name == "dynamodb" and "ReturnConsumedCapacity" in members
                and params.get("ReturnConsumedCapacity") in (None, "NONE")):
            # INDEXES: the units of every index the call touched are in the total, as they are in the bill.
            params["ReturnConsumedCapacity"] = "INDEXES"
    except Exception:  # noqa: BLE001,S110 - a hook must never break the call
        pass


def _after_call(http_response: Any, parsed: Mapping[str, Any], model: Any, context: Dict[str, Any], **_: Any) -> None:
    try:
        usage = call_usage(model.service_model.service_name, model.name, getattr(http_response, "status_code", 0),
                           context.get("metering_params") or {}, parsed or {})
        for kind, quantity in usage.items():
            add(kind, quantity)
    except Exception:  # noqa: BLE001,S110 - a hook must never break the call
        pass


def call_usage(service: str, operation: str, status: int, params: Mapping[str, Any],
               parsed: Mapping[str, Any]) -> Dict[str, float]:
    """The priced usage of one AWS call, and its ``requests.<service>`` count."""
    usage: Dict[str, float] = {rules.REQUESTS_PREFIX + service: 1.0}
    failed = not 200 <= status < 300
    if service == "dynamodb":
        reads, writes = dynamodb_units(operation, parsed.get("ConsumedCapacity"))
        if failed and _error_code(parsed) in DYNAMODB_REFUSED and not writes:
            # A refused condition consumes write units, but DynamoDB reports none: one per item, a floor.
            writes = float(len(params.get("TransactItems") or ()) or 1)
        if reads:
            usage[rules.DYNAMODB_READS] = reads
        if writes:
            usage[rules.DYNAMODB_WRITES] = writes
    elif service == "sqs":
        usage[rules.SQS_REQUESTS] = float(rules.sqs_chunks(_sqs_payload_bytes(operation, params, parsed)))
    elif service == "sns":
        if operation == "Publish":
            usage[rules.SNS_PUBLISHES] = float(rules.sqs_chunks(_sns_bytes(params)))
        elif operation == "PublishBatch":
            entries = params.get("PublishBatchRequestEntries") or []
            usage[rules.SNS_PUBLISHES] = float(sum(rules.sqs_chunks(_sns_bytes(e)) for e in entries))
    elif service == "secretsmanager":
        usage[rules.SECRETS_CALLS] = 1.0
    elif service == "s3" and not operation.startswith(S3_FREE):
        usage[rules.S3_PUTS if operation.startswith(S3_PUT_CLASS) else rules.S3_GETS] = 1.0
    return usage


def dynamodb_units(operation: str, consumed: Any) -> Tuple[float, float]:
    """(read units, write units) of a ``ConsumedCapacity`` answer (one entry, or one per table)."""
    entries = consumed if isinstance(consumed, list) else [consumed] if isinstance(consumed, Mapping) else []
    reads = writes = 0.0
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        read, write = entry.get("ReadCapacityUnits"), entry.get("WriteCapacityUnits")
        if read is None and write is None:
            total = float(entry.get("CapacityUnits") or 0)
            if operation in DYNAMODB_READS:
                reads += total
            else:
                writes += total
        else:
            reads += float(read or 0)
            writes += float(write or 0)
    return reads, writes


def _error_code(parsed: Mapping[str, Any]) -> str:
    error = parsed.get("Error")
    return str(error.get("Code", "")) if isinstance(error, Mapping) else ""


def _attribute_bytes(attributes: Any) -> int:
    """Message attributes count toward the payload: names, types and values."""
    if not isinstance(attributes, Mapping):
        return 0
    size = 0
    for name, value in attributes.items():
        size += len(str(name).encode("utf-8"))
        if isinstance(value, Mapping):
            size += len(str(value.get("DataType") or value.get("dataType") or ""))
            data = (value.get("StringValue") or value.get("stringValue") or value.get("BinaryValue")
                    or value.get("binaryValue") or "")
            size += len(data) if isinstance(data, (bytes, bytearray)) else len(str(data).encode("utf-8"))
    return size


def _sqs_payload_bytes(operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> int:
    def one(entry: Mapping[str, Any], body_key: str = "MessageBody") -> int:
        return len(str(entry.get(body_key, "")).encode("utf-8")) + _attribute_bytes(entry.get("MessageAttributes"))

    if operation == "SendMessage":
        return one(params)
    if operation == "SendMessageBatch":
        return sum(one(e) for e in params.get("Entries") or [])
    if operation == "ReceiveMessage":
        return sum(one(m, "Body") for m in parsed.get("Messages") or [])
    return 0


def _sns_bytes(entry: Mapping[str, Any]) -> int:
    return len(str(entry.get("Message", "")).encode("utf-8")) + _attribute_bytes(entry.get("MessageAttributes"))


# ---- platforms --------------------------------------------------------------------------------------

def platform_call(method: str, url: str, request_body: Optional[bytes], response: Any) -> None:
    """Count one platform API answer (the platform HTTP client calls this for every response)."""
    try:
        _platform_call(method, url, request_body, response)
    except Exception:  # noqa: BLE001,S110 - a counter must never break a platform call
        pass


def _platform_call(method: str, url: str, request_body: Optional[bytes], response: Any) -> None:
    status = int(getattr(response, "status", 0) or 0)
    body = getattr(response, "body", None)
    path = urlsplit(url).path
    payload = _json_object(request_body)
    if _is_x(url):
        add(rules.REQUESTS_PREFIX + "x", 1, "x")
        for kind, quantity in x_usage(method, path, status, payload, body, seen=_seen_today).items():
            add(kind, quantity, "x")
        return
    add(rules.REQUESTS_PREFIX + "graph", 1)
    graph_kind = rules.graph_priced_kind(method, path, status, payload)
    if graph_kind:
        add(graph_kind, 1, rules.channel_of_kind(graph_kind))


def x_usage(method: str, path: str, status: int, payload: Mapping[str, Any], body: Any,
            seen: Callable[[str, str], bool] = lambda kind, resource: False) -> Dict[str, float]:
    """X's priced usage of one answer: resources returned (those ``seen`` today left out) or created."""
    kind = rules.x_priced_kind(method, path, status)
    if kind is None:
        return {}
    if kind in (rules.X_POSTS_CREATED, rules.X_DMS_SENT):
        text = str(payload.get("text", "")) if kind == rules.X_POSTS_CREATED else ""
        return {rules.x_post_created_kind(text) if kind == rules.X_POSTS_CREATED else kind: 1.0}
    answer = body if isinstance(body, Mapping) else {}
    usage: Dict[str, float] = {}

    def read(read_kind: str, resources: Any) -> None:
        items = resources if isinstance(resources, list) else [resources] if isinstance(resources, Mapping) else []
        fresh = sum(1 for item in items if not (isinstance(item, Mapping) and item.get("id") is not None
                                                and seen(read_kind, str(item["id"]))))
        if fresh:
            usage[read_kind] = usage.get(read_kind, 0.0) + fresh

    read(kind, answer.get("data"))
    users_kind = rules.x_included_users_kind(kind)
    includes = answer.get("includes")
    if users_kind and isinstance(includes, Mapping):
        read(users_kind, includes.get("users"))
    return usage


def _seen_today(kind: str, resource: str) -> bool:
    """True when this container counted ``resource`` today already (X bills it once per UTC day)."""
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    with _lock:
        ids: Set[Tuple[str, str]] = _x_seen["ids"]
        if _x_seen["day"] != day or len(ids) >= X_SEEN_LIMIT:
            _x_seen["day"], ids = day, set()
            _x_seen["ids"] = ids
        if (kind, resource) in ids:
            return True
        ids.add((kind, resource))
        return False


def _is_x(url: str) -> bool:
    from chalicelib.config import settings

    base = settings().x_api_base_url.rstrip("/")
    host_name = urlsplit(url).hostname or ""
    return url.startswith(base + "/") or host_name.endswith(("x.com", "twitter.com"))


def _json_object(data: Optional[bytes]) -> Mapping[str, Any]:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except (TypeError, ValueError):  # a form-encoded body: nothing priced depends on it
        return {}
    return value if isinstance(value, dict) else {}


# ---- logs -------------------------------------------------------------------------------------------

class CountingStream:
    """A text stream that counts the UTF-8 bytes written through it as CloudWatch Logs ingestion."""

    def __init__(self, stream: Any):
        self._stream = stream

    @property
    def wrapped(self) -> Any:
        return self._stream

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        add(rules.LOGS_INGESTED, len(text.encode("utf-8", errors="replace")) / rules.BYTES_PER_GB)
        return written

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_log_counter(*handlers: Any) -> None:
    """Count what reaches stdout (EMF metrics are printed there) and what ``handlers`` (the Powertools
    logger's ``registered_handler``) write; repeatable, and nothing is counted twice."""
    if not isinstance(sys.stdout, CountingStream):
        sys.stdout = CountingStream(sys.stdout)
    stdout: Any = sys.stdout
    for handler in handlers:
        stream = getattr(handler, "stream", None)
        if stream is None or isinstance(stream, CountingStream):
            continue
        handler.setStream(stdout if stream is stdout.wrapped else CountingStream(stream))
