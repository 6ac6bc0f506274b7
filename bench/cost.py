"""What socialcare costs to run, measured: a realistic mix through the whole pipeline, every AWS request counted.

    .venv/bin/python bench/cost.py [--mentions 500] [--waves 5] [--region us-east-1] [--arch arm64]
                                   [--front function_url | --front rest]
                                   [--profile chalicelib/domain/usage_profile.json | --no-profile]

AWS is moto, in process, provisioned from infra/template.yaml; the platforms
are the fake X and Graph servers of local/. A mix of mentions on every channel
(``MIX``) is released in waves: Meta pushes its items by webhook (through the
Chalice app's route, signed as Meta signs) and repeats some deliveries; the
scheduled fetch polls every source, so Meta items arrive twice; triage and
assignment run from the queues as Lambda would run them; 20 % of the mentions
are worded to become cases, and for each case its assignee lists their inbox,
opens the case, answers (the reply is sent) and resolves it: four agent API
calls. Then the schedules run with nothing new, to measure the fixed cost of
listening. Agents and Meta reach the API through the front the stage deploys:
the API handler's function URL (``--front function_url``, the default: each
call is a function URL event, payload 2.0, and costs no API Gateway request),
or the REST API (``--front rest``: $3.50 a million requests, the old figure).

Counted, per request, through botocore's event hooks (no change to the code
under test): SQS requests by 64 KB chunk; DynamoDB read and write units,
computed from item sizes (moto reports a constant ``ConsumedCapacity``, not
one based on sizes or indexes, so it is not asked for): the larger of the item
before and after a write, twice in a transaction, and a write to every global
secondary index the item enters, leaves or changes in; Secrets Manager and S3
calls. Per invocation: Lambda requests and GB-seconds, API Gateway requests
(agent calls; webhooks apart; none through a function URL), log bytes written, Lambda's own
START, END and REPORT lines (none where the ``prod`` stage's ``LAMBDA_SYSTEM_LOG_LEVEL`` is WARN,
the default), X-Ray traces (where the ``prod``
stage of .chalice/config.json turns active tracing on). Platform API
calls are counted by priced kind. ``chalicelib.domain.cost`` prices all of it.

Measured locally, so some of it is a model, named where it is used: the time
AWS and the platforms take to answer (``LATENCY_MS``), the CPU a function gets
for its memory, the lines Lambda writes per invocation. A function's own time is
its thread's CPU time less what moto and the fake platforms spent inside its
calls (not wall time: on a busy machine that also counts waiting for a CPU). The figures go to
bench/COST.md; the usage profile is what ``python -m chalicelib.cost estimate``
prices.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import math
import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REGION = "us-east-1"
STAGE = "bench"
PROFILE_PATH = ROOT / "chalicelib" / "domain" / "usage_profile.json"
COMMAND = ".venv/bin/python bench/cost.py"

# The mix released, as shares of all mentions: an airline brand's week, by channel and source.
MIX = {
    "x_mention": 0.30, "x_search": 0.10, "x_dm": 0.05,
    "facebook_comment": 0.15, "instagram_comment": 0.15, "instagram_mention": 0.05,
    "messenger_dm": 0.07, "instagram_dm": 0.05, "whatsapp": 0.08,
}
PLATFORM_OF = {"x_mention": "x", "x_search": "x", "x_dm": "x", "facebook_comment": "facebook",
               "instagram_comment": "instagram", "instagram_mention": "instagram", "messenger_dm": "messenger",
               "instagram_dm": "instagram", "whatsapp": "whatsapp"}
PUSHED = {"facebook_comment", "instagram_comment", "instagram_mention", "messenger_dm", "instagram_dm", "whatsapp"}
CASE_RATE = 0.20
WEBHOOK_REPEAT_RATE = 0.10   # Meta delivers again what it thinks failed; duplicates are normal

# ---- the models (not measured here) --------------------------------------------------------------
# Round trips as a function in the same region sees them, and a platform's HTTPS API from AWS.
LATENCY_MS = {"dynamodb": 6.0, "dynamodb:transact": 12.0, "sqs": 10.0, "secretsmanager": 15.0, "s3": 20.0,
              "other": 10.0, "platform": 150.0}
# Lambda gives a function CPU in proportion to its memory; 1,769 MB is one full vCPU.
FULL_VCPU_MB = 1769
# START, END and REPORT lines (with the X-Ray trace id) that Lambda writes for every invocation, unless the
# stage keeps only its WARN lines (LAMBDA_SYSTEM_LOG_LEVEL, chalicelib/config.py; WARN by default).
LAMBDA_PLATFORM_LOG_BYTES = 420
# The fetch function's container reads the platform secret again when Powertools' 5-minute cache expires.
SECRET_CACHE_SECONDS = 300
BYTES_PER_GB = 1024 ** 3
SQS_CHUNK = 64 * 1024

AGENT_CALLS = ("list", "open", "answer", "resolve")
# The deployed stage whose settings (X-Ray tracing, Lambda's own log lines, per function) the bench prices.
TRACING_STAGE = "prod"
# How agents and Meta reach the API handler: its function URL (what infra/deploy.py and the package deploy as
# the stage's address) or the REST API Chalice deploys beside it (API Gateway, billed per request).
FRONTS = ("function_url", "rest")


# ---- counting ------------------------------------------------------------------------------------

@dataclass
class Invocation:
    function: str
    phase: str
    started: float
    # CPU time of the invocation's own thread: what the function's code used, without the waiting that a
    # busy machine adds to wall time; the CPU moto and the fake platforms use inside calls is left out.
    thread: int = 0
    cpu_started: float = 0.0
    cpu_in_calls: float = 0.0
    intervals: List[Tuple[float, float]] = field(default_factory=list)
    modeled_ms: Dict[int, float] = field(default_factory=lambda: defaultdict(float))
    log_bytes: int = 0


class Meter:
    """Everything the run consumed, by phase: listen, webhook (API Gateway only), case, idle, token."""

    def __init__(self, memory_mb: Mapping[str, int], tracing: Optional[Mapping[str, bool]] = None,
                 platform_log_bytes: Optional[Mapping[str, int]] = None):
        self.memory_mb = dict(memory_mb)
        self.tracing = dict(tracing or {})   # function -> X-Ray active tracing on (as the stage deploys it)
        # function -> bytes of Lambda's own lines per invocation (as the stage's LAMBDA_SYSTEM_LOG_LEVEL keeps them)
        self.platform_log_bytes = dict(platform_log_bytes or {})
        self.phase = "setup"
        self.function = "setup"
        self.usage: Dict[str, Counter] = defaultdict(Counter)
        self.requests: Dict[str, Counter] = defaultdict(Counter)          # phase -> service -> API requests
        self.detail: Dict[str, Counter] = defaultdict(Counter)            # phase -> (what) -> units
        self.empty_receives = 0
        self.invocation: Optional[Invocation] = None
        self.x_seen: set = set()   # X bills a resource once per UTC day: the run is one day
        self.metrics: set = set()
        self._lock = threading.RLock()

    @property
    def counting(self) -> bool:
        return self.phase != "setup"

    def add(self, phase: str, key: str, quantity: float) -> None:
        with self._lock:
            self.usage[phase][key] += quantity

    def note(self, what: Tuple[str, ...], units: float, phase: Optional[str] = None) -> None:
        with self._lock:
            self.detail[phase or self.phase][what] += units

    def request(self, service: str, phase: Optional[str] = None) -> None:
        with self._lock:
            self.requests[phase or self.phase][service] += 1

    def spent(self, start: float, end: float, latency_ms: float, cpu: float = 0.0) -> None:
        """A call to AWS or a platform from inside the current invocation: its local time (``cpu``: the
        thread's CPU seconds inside it) is left out of the function's duration and the modeled round trip
        put in instead."""
        with self._lock:
            if self.invocation is not None:
                self.invocation.intervals.append((start, end))
                self.invocation.modeled_ms[threading.get_ident()] += latency_ms
                if threading.get_ident() == self.invocation.thread:
                    self.invocation.cpu_in_calls += cpu

    def log(self, size: int) -> None:
        with self._lock:
            if self.invocation is not None:
                self.invocation.log_bytes += size

    @contextlib.contextmanager
    def doing(self, phase: str, function: str) -> Iterator[None]:
        saved = self.phase, self.function
        self.phase, self.function = phase, function
        try:
            yield
        finally:
            self.phase, self.function = saved

    @contextlib.contextmanager
    def invoke(self, function: str, phase: str) -> Iterator[None]:
        """One Lambda invocation: its requests, GB-seconds, logs and trace."""
        log = CountingStream(self)
        with self.doing(phase, function), contextlib.redirect_stdout(log):
            self.invocation = Invocation(function=function, phase=phase, started=time.perf_counter(),
                                         thread=threading.get_ident(), cpu_started=time.thread_time())
            try:
                yield
            finally:
                invocation, self.invocation = self.invocation, None
                self._bill(invocation, time.perf_counter())

    def _bill(self, invocation: Invocation, ended: float) -> None:
        # The function's own CPU (its thread's CPU time less that spent inside AWS and platform calls): wall
        # time less the calls would also count the time this process waited for a CPU on a busy machine.
        local = max(0.0, time.thread_time() - invocation.cpu_started - invocation.cpu_in_calls)
        memory = self.memory_mb[invocation.function]
        cpu_ms = local * 1000 * max(1.0, FULL_VCPU_MB / memory)
        main = threading.get_ident()
        own = invocation.modeled_ms.get(main, 0.0)
        others = [ms for thread, ms in invocation.modeled_ms.items() if thread != main]
        # Worker threads wait on the network side by side: the longest one is the run's critical path.
        billed_ms = math.ceil(cpu_ms + own + (max(others) if others else 0.0))
        phase = invocation.phase
        self.add(phase, "lambda.requests", 1)
        self.add(phase, "lambda.gb_seconds", billed_ms / 1000 * memory / 1024)
        if self.tracing.get(invocation.function):
            self.add(phase, "xray.traces_recorded", 1)  # an upper bound: X-Ray's default rule samples some away
        logged = invocation.log_bytes + self.platform_log_bytes.get(invocation.function, LAMBDA_PLATFORM_LOG_BYTES)
        self.add(phase, "logs.ingested_gb", logged / BYTES_PER_GB)
        self.request("lambda", phase)
        self.note(("lambda", invocation.function, "invocations"), 1, phase)
        self.note(("lambda", invocation.function, "billed ms"), billed_ms, phase)
        self.note(("logs", invocation.function, "bytes"), logged, phase)


class CountingStream:
    """Where an invocation's log lines and EMF metrics go: counted, not shown."""

    def __init__(self, meter: Meter):
        self.meter = meter

    def write(self, text: str) -> int:
        self.meter.log(len(text.encode("utf-8")))
        if '"CloudWatchMetrics"' in text:
            self._note_metrics(text)
        return len(text)

    def flush(self) -> None:
        pass

    def _note_metrics(self, text: str) -> None:
        for line in text.splitlines():
            try:
                directive = json.loads(line)["_aws"]["CloudWatchMetrics"]
            except (ValueError, KeyError, TypeError):
                continue
            for entry in directive:
                dimensions = tuple(tuple(d) for d in entry.get("Dimensions", []))
                for metric in entry.get("Metrics", []):
                    self.meter.metrics.add((metric.get("Name"), dimensions))


# ---- DynamoDB units from item sizes ----------------------------------------------------------------

def value_size(value: Mapping[str, Any]) -> int:
    """DynamoDB's size of an attribute value (low-level form), as its documentation counts it."""
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        digits = data.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in data)
    if kind == "NS":
        return sum(value_size({"N": n}) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in data.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Optional[Mapping[str, Any]]) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int) -> int:
    return max(1, math.ceil(size / 4096))


@dataclass
class TableShape:
    keys: Tuple[str, ...]
    indexes: Dict[str, Tuple[Tuple[str, ...], str, Tuple[str, ...]]]  # name -> (keys, projection, included)

    def key_of(self, item: Mapping[str, Any]) -> Dict[str, Any]:
        return {k: item[k] for k in self.keys}

    def projected(self, index: str, item: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
        """The item's entry in ``index`` (None when it lacks the index's keys, so it is not in it)."""
        if not item:
            return None
        keys, projection, included = self.indexes[index]
        if any(k not in item for k in keys):
            return None
        if projection == "ALL":
            return dict(item)
        wanted = set(self.keys) | set(keys) | (set(included) if projection == "INCLUDE" else set())
        return {k: v for k, v in item.items() if k in wanted}


class DynamoUnits:
    """Read and write units of each call, from the items as moto holds them before and after it.

    ``shadow`` is a client outside the metered session: its look-ups cost nothing here.
    """

    WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
    READS = ("GetItem", "BatchGetItem", "Query", "TransactGetItems", "Scan")

    def __init__(self, shadow: Any):
        self.shadow = shadow
        self._shapes: Dict[str, TableShape] = {}

    def shape(self, table: str) -> TableShape:
        if table not in self._shapes:
            described = self.shadow.describe_table(TableName=table)["Table"]
            indexes = {}
            for index in described.get("GlobalSecondaryIndexes", []):
                projection = index.get("Projection", {})
                indexes[index["IndexName"]] = (tuple(k["AttributeName"] for k in index["KeySchema"]),
                                               projection.get("ProjectionType", "ALL"),
                                               tuple(projection.get("NonKeyAttributes", ())))
            self._shapes[table] = TableShape(keys=tuple(k["AttributeName"] for k in described["KeySchema"]),
                                             indexes=indexes)
        return self._shapes[table]

    def get(self, table: str, key: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        """The item as moto holds it, read from its backend: no request, no serialization (moto's is slow)."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        item = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_item(table, dict(key))
        return item.to_json()["Attributes"] if item is not None else None

    # -- writes
    def targets(self, operation: str, params: Mapping[str, Any]) -> List[Tuple[str, str, Dict[str, Any], Any]]:
        """(kind, table, key, request) of each item a write touches."""
        found: List[Tuple[str, str, Dict[str, Any], Any]] = []
        if operation == "PutItem":
            table = params["TableName"]
            found.append(("Put", table, self.shape(table).key_of(params["Item"]), params["Item"]))
        elif operation in ("UpdateItem", "DeleteItem"):
            found.append((operation[:-4], params["TableName"], dict(params["Key"]), None))
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        found.append(("Put", table, self.shape(table).key_of(item), item))
                    else:
                        found.append(("Delete", table, dict(request["DeleteRequest"]["Key"]), None))
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                table = body["TableName"]
                key = self.shape(table).key_of(body["Item"]) if kind == "Put" else dict(body["Key"])
                found.append((kind, table, key, body.get("Item")))
        return found

    def before_write(self, operation: str, params: Mapping[str, Any]) -> List[Tuple[str, str, Dict[str, Any], Any, Any]]:
        return [(kind, table, key, request, self.get(table, key)) for kind, table, key, request in
                self.targets(operation, params)]

    def after_write(self, operation: str, touched: List[Tuple[str, str, Dict[str, Any], Any, Any]],
                    failed: bool) -> List[Tuple[str, float]]:
        """(table or table/index, write units) of the call."""
        transaction = operation == "TransactWriteItems"
        units: List[Tuple[str, float]] = []
        for kind, table, key, request, old in touched:
            if failed:
                # A refused condition still costs the item's size; a cancelled transaction its prepare phase.
                units.append((table, write_units(max(item_size(old), item_size(request)))))
                continue
            if kind == "ConditionCheck":
                units.append((table, 2 * write_units(item_size(old))))
                continue
            new = self.get(table, key)
            base = write_units(max(item_size(old), item_size(new)))
            units.append((table, base * (2 if transaction else 1)))
            shape = self.shape(table)
            for index in shape.indexes:
                before, after = shape.projected(index, old), shape.projected(index, new)
                index_keys = shape.indexes[index][0]
                if before is None and after is None:
                    continue
                if before is None or after is None:
                    units.append((f"{table}/{index}", write_units(item_size(after or before))))
                elif any(before.get(k) != after.get(k) for k in index_keys):
                    units.append((f"{table}/{index}", write_units(item_size(before)) + write_units(item_size(after))))
                elif before != after:
                    units.append((f"{table}/{index}", write_units(item_size(after))))
        return units

    # -- reads
    def read(self, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> List[Tuple[str, float]]:
        if operation == "GetItem":
            table = params["TableName"]
            item = parsed.get("Item")
            if params.get("ProjectionExpression") and item is not None:
                item = self.get(table, params["Key"])
            return [(table, read_units(item_size(item)) * self._consistency(params))]
        if operation == "BatchGetItem":
            units = []
            for table, request in params["RequestItems"].items():
                factor = 1.0 if request.get("ConsistentRead") else 0.5
                for key in request["Keys"]:
                    units.append((table, read_units(item_size(self.get(table, key))) * factor))
            return units
        if operation == "TransactGetItems":
            return [(e["Get"]["TableName"], 2 * read_units(item_size(self.get(e["Get"]["TableName"], e["Get"]["Key"]))))
                    for e in params["TransactItems"]]
        if operation in ("Query", "Scan"):
            table = params["TableName"]
            target = f"{table}/{params['IndexName']}" if params.get("IndexName") else table
            evaluated = self._evaluated(operation, params, parsed)
            # A query reads the items its key condition reached (before any filter), summed, then rounded.
            return [(target, read_units(sum(item_size(i) for i in evaluated)) * self._consistency(params))]
        return []

    def _evaluated(self, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> List[Dict[str, Any]]:
        if not (params.get("FilterExpression") or params.get("ProjectionExpression") or params.get("Select")):
            return list(parsed.get("Items", []))
        # Ask again for whole items, without the filter: what DynamoDB read to answer.
        condition = params.get("KeyConditionExpression", "")
        shadow_params = {k: params[k] for k in ("TableName", "IndexName", "KeyConditionExpression", "Limit",
                                                "ExclusiveStartKey", "ScanIndexForward", "ConsistentRead")
                         if k in params}
        names = {k: v for k, v in (params.get("ExpressionAttributeNames") or {}).items() if k in condition}
        values = {k: v for k, v in (params.get("ExpressionAttributeValues") or {}).items() if k in condition}
        if names:
            shadow_params["ExpressionAttributeNames"] = names
        if values:
            shadow_params["ExpressionAttributeValues"] = values
        call = self.shadow.query if operation == "Query" else self.shadow.scan
        return list(call(**shadow_params).get("Items", []))

    @staticmethod
    def _consistency(params: Mapping[str, Any]) -> float:
        return 1.0 if params.get("ConsistentRead") else 0.5

    def stored_bytes(self, table: str) -> Tuple[int, int, int]:
        """(items, bytes of the table, bytes of its indexes), with the 100 bytes DynamoDB adds to each entry."""
        shape = self.shape(table)
        items, table_bytes, index_bytes = 0, 0, 0
        for page in self.shadow.get_paginator("scan").paginate(TableName=table):
            for item in page.get("Items", []):
                items += 1
                table_bytes += item_size(item) + 100
                for index in shape.indexes:
                    entry = shape.projected(index, item)
                    if entry is not None:
                        index_bytes += item_size(entry) + 100
        return items, table_bytes, index_bytes


# ---- botocore hooks ---------------------------------------------------------------------------------

def _sqs_chunks(operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> int:
    """SQS bills each 64 KB of a request's payload as one request."""
    def attributes(entry: Mapping[str, Any]) -> int:
        return sum(len(name) + len(str(v.get("DataType", ""))) + len(str(v.get("StringValue", "") or v.get("BinaryValue", "")))
                   for name, v in (entry.get("MessageAttributes") or {}).items())

    if operation == "SendMessage":
        size = len(params.get("MessageBody", "").encode("utf-8")) + attributes(params)
    elif operation == "SendMessageBatch":
        size = sum(len(e.get("MessageBody", "").encode("utf-8")) + attributes(e) for e in params.get("Entries", []))
    elif operation == "ReceiveMessage":
        size = sum(len(m.get("Body", "").encode("utf-8")) + attributes(m) for m in parsed.get("Messages", []))
    else:
        size = 0
    return max(1, math.ceil(size / SQS_CHUNK))


def install_hooks(session: Any, meter: Meter, units: DynamoUnits) -> None:
    """Count every call made through ``session`` (the one the app's clients come from)."""

    def remember_params(params: Mapping[str, Any], context: Dict[str, Any], **_: Any) -> None:
        context["bench_params"] = dict(params)

    def before(model: Any, context: Dict[str, Any], **_: Any) -> None:
        if not meter.counting:
            return
        # From here to the end of ``after``, the time is moto's and ours: the model's latency replaces it.
        context["bench_started"] = time.perf_counter()
        context["bench_cpu"] = time.thread_time()
        operation = model.name
        if model.service_model.service_name == "dynamodb" and operation in DynamoUnits.WRITES:
            context["bench_touched"] = units.before_write(operation, context.get("bench_params", {}))

    def after(http_response: Any, parsed: Mapping[str, Any], model: Any, context: Dict[str, Any], **_: Any) -> None:
        if not meter.counting or "bench_started" not in context:
            return
        service, operation = model.service_model.service_name, model.name
        params = context.get("bench_params", {})
        failed = http_response.status_code >= 400
        function = meter.function
        if service == "sqs":
            queue = str(params.get("QueueUrl", params.get("QueueName", ""))).rsplit("/", 1)[-1].replace(f"socialcare-{STAGE}-", "")
            if operation == "ReceiveMessage" and not parsed.get("Messages"):
                # Lambda long-polls an idle queue all the time: part of the fixed cost, modeled in the estimate.
                meter.empty_receives += 1
            else:
                chunks = _sqs_chunks(operation, params, parsed)
                meter.add(meter.phase, "sqs.requests", chunks)
                meter.request("sqs")
                meter.note(("sqs", function, operation, queue), chunks)
        elif service == "dynamodb":
            meter.request("dynamodb")
            if operation in DynamoUnits.WRITES:
                for target, wru in units.after_write(operation, context.get("bench_touched", []), failed):
                    meter.add(meter.phase, "dynamodb.write_request_units", wru)
                    meter.note(("dynamodb", function, operation, target, "WRU"), wru)
            elif not failed:
                for target, rru in units.read(operation, params, parsed):
                    meter.add(meter.phase, "dynamodb.read_request_units", rru)
                    meter.note(("dynamodb", function, operation, target, "RRU"), rru)
            meter.note(("dynamodb", function, operation, str(params.get("TableName", "batch")).replace(f"socialcare-{STAGE}-", ""),
                        "requests"), 1)
        elif service == "secretsmanager":
            meter.add(meter.phase, "secretsmanager.api_calls", 1)
            meter.request("secretsmanager")
            meter.note(("secretsmanager", function, operation), 1)
        elif service == "s3":
            meter.add(meter.phase, "s3.get_requests" if operation.startswith(("Get", "Head")) else "s3.put_requests", 1)
            meter.request("s3")
            meter.note(("s3", function, operation), 1)
        else:
            meter.request(service)
            meter.note((service, function, operation), 1)
        latency = LATENCY_MS["dynamodb:transact"] if operation.startswith("Transact") else LATENCY_MS.get(service, LATENCY_MS["other"])
        meter.spent(context["bench_started"], time.perf_counter(), latency, time.thread_time() - context["bench_cpu"])

    session.events.register("provide-client-params.*.*", remember_params)
    session.events.register("before-call.*.*", before)
    session.events.register("after-call.*.*", after)


# ---- platform calls ---------------------------------------------------------------------------------

def install_platform_recorder(meter: Meter, x_url: str) -> Callable[[], None]:
    """Count platform API calls by priced kind; returns the undo."""
    from chalicelib.adapters.platforms import http as platform_http

    original = platform_http.HttpClient._send

    def recording_send(client: Any, method: str, url: str, data: Optional[bytes], headers: Dict[str, str]) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        response = original(client, method, url, data, headers)
        meter.spent(started, time.perf_counter(), LATENCY_MS["platform"], time.thread_time() - cpu)
        if meter.counting and response.status < 400:
            with meter._lock:
                _record_platform(meter, method, url, data, response, is_x=url.startswith(x_url))
        return response

    platform_http.HttpClient._send = recording_send  # type: ignore[method-assign]
    return lambda: setattr(platform_http.HttpClient, "_send", original)


def _record_platform(meter: Meter, method: str, url: str, data: Optional[bytes], response: Any, *, is_x: bool) -> None:
    from local.stack import BRAND_X_USER_ID

    path = url.split("?", 1)[0]
    body = response.body if isinstance(response.body, dict) else {}
    channel = "x" if is_x else _graph_channel(path)
    usage: Counter = Counter()     # (phase, kind) -> resources billed

    def read(kind: str, resources_: List[Dict[str, Any]], own: Callable[[Dict[str, Any]], bool] = lambda r: False) -> None:
        for resource in resources_:
            if (kind, resource.get("id")) not in meter.x_seen:  # once per UTC day
                meter.x_seen.add((kind, resource.get("id")))
                # Reading back what the brand itself sent is the cost of a reply, not of listening.
                usage[("case" if own(resource) else meter.phase, kind)] += 1

    if is_x:
        users = (body.get("includes") or {}).get("users") or []

        def brand_user(resource: Dict[str, Any]) -> bool:
            return str(resource.get("id")) == BRAND_X_USER_ID

        if method == "GET" and (path.endswith("/mentions") or path.endswith("/tweets")):
            read("x.owned_reads", body.get("data") or [])
            read("x.user_reads", users, brand_user)
        elif method == "GET" and path.endswith("/search/recent"):
            read("x.post_reads", body.get("data") or [])
            read("x.user_reads", users, brand_user)
        elif method == "GET" and path.endswith("/dm_events"):
            events = body.get("data") or []
            read("x.dm_event_reads", events, lambda r: str(r.get("sender_id")) == BRAND_X_USER_ID)
            read("x.user_reads", users, brand_user)
            meter.note(("x", meter.function, "DM events returned"), len(events))
            meter.note(("x", meter.function, "DM users returned"), len(users))
        elif method == "POST" and path.endswith("/2/tweets"):
            sent = json.loads(data or b"{}")
            usage[(meter.phase, "x.posts_created_with_url" if "http" in str(sent.get("text", "")) else "x.posts_created")] += 1
        elif method == "POST" and "/dm_conversations/" in path:
            usage[(meter.phase, "x.dms_sent")] += 1
    else:
        usage[(meter.phase, "meta.graph_requests")] += 1
        if channel == "whatsapp" and method == "POST":
            usage[(meter.phase, "whatsapp.service_messages")] += 1
    for (phase, key), quantity in usage.items():
        meter.add(phase, f"platform:{channel}:{key}", quantity)
    meter.request("x API" if is_x else "Graph API")
    meter.note(("platform", meter.function, "X" if is_x else "Graph", method, _path_shape(path)), 1)


def _graph_channel(path: str) -> str:
    """WhatsApp's sends are priced; the rest of Graph is free, whichever Meta channel it serves."""
    from local.fake_graph import SORA_PHONE_NUMBER_ID

    return "whatsapp" if f"/{SORA_PHONE_NUMBER_ID}/" in path else "meta"


def _path_shape(path: str) -> str:
    parts = path.split("/")[3:]
    return "/" + "/".join("{id}" if any(ch.isdigit() for ch in p) and len(p) > 6 else p for p in parts)


# ---- the workload -----------------------------------------------------------------------------------

CASE_TEXTS = {
    "en": ["my bag never arrived on SA{n} and nobody answers the phone. Where is it?",
           "flight SA{n} cancelled two hours before departure, no rebooking offered. Terrible.",
           "I was charged twice for seat selection on booking {code}. Please refund.",
           "how do I change the name on my ticket {code}? It is misspelled.",
           "still waiting for my refund for cancelled booking {code}, 5 weeks now"],
    "ja": ["SA{n}便の荷物がまだ届きません。どうなっていますか？",
           "SA{n}便が欠航になったのに振替の案内がありません。ひどいです。",
           "予約{code}の返金がまだです。いつになりますか？",
           "座席指定料金が二重に請求されています。予約番号{code}です。"],
}
OTHER_TEXTS = {
    "en": ["thanks for the smooth flight to Osaka today, great crew!", "lol look at this seat map 😂",
           "Shoutout to the ground staff at Kansai, rebooked me in 5 minutes. Thank you!",
           "best in-flight meal I've had this year, thank you!"],
    "ja": ["昨日の札幌便のCAさん、本当にありがとうございました✈️", "来月これで行こう笑",
           "機内から見た富士山がきれいでした", "今日のフライトも快適でした。ありがとうございます！"],
}
PREFIX = {"x_mention": {"en": "@SoraAir ", "ja": "@SoraAir "}, "x_search": {"en": "SoraAir ", "ja": "ソラ航空の"},
          "instagram_mention": {"en": "@soraair ", "ja": "@soraair "}}
KIND = {"x_mention": ("x", "mention"), "x_search": ("x", "mention"), "x_dm": ("x", "dm"),
        "facebook_comment": ("facebook", "comment"), "instagram_comment": ("instagram", "comment"),
        "instagram_mention": ("instagram", "mention"), "messenger_dm": ("messenger", "dm"),
        "instagram_dm": ("instagram", "dm"), "whatsapp": ("whatsapp", "dm")}
REPLY_TEXT = {"en": "Sorry about this. We are looking into it and will update you here.",
              "ja": "ご不便をおかけして申し訳ありません。確認してこちらでご連絡いたします。"}


@dataclass
class Item:
    number: int
    channel: str
    lang: str
    text: str
    wants_case: bool

    @property
    def platform(self) -> str:
        return PLATFORM_OF[self.channel]

    @property
    def author(self) -> str:
        return f"c{self.number:06d}"

    @property
    def author_id(self) -> str:
        return str(7_300_000_000_000_000 + self.number)


def texts_that_triage_as(channel: str, wants_case: bool) -> List[Tuple[str, str]]:
    """The texts of the pools that the triage rules decide as wanted on this channel: so 20 % become cases."""
    from chalicelib.triage import classify

    platform, kind = KIND[channel]
    pool = CASE_TEXTS if wants_case else OTHER_TEXTS
    chosen = []
    for lang, texts in pool.items():
        for template in texts:
            text = PREFIX.get(channel, {}).get(lang, "") + template.format(n=215, code="QX7P2L")
            decision = classify({"platform": platform, "kind": kind, "text": text, "lang": lang,
                                 "author": {"id": "1", "handle": "a", "verified": False, "followers": 10}})
            if bool(decision.case) == wants_case:
                chosen.append((lang, text))
    if not chosen:
        raise RuntimeError(f"no text in the pools triages as case={wants_case} on {channel}: extend the pools")
    return chosen


def workload(mentions: int, seed: int, first_number: int = 1, case_rate: float = CASE_RATE) -> List[Item]:
    rng = random.Random(seed)
    channels = [c for c in MIX for _ in range(round(MIX[c] * 1000))]
    pools = {(c, want): texts_that_triage_as(c, want) for c in MIX for want in (True, False)}
    items = []
    for number in range(first_number, first_number + mentions):
        channel = rng.choice(channels)
        wants_case = rng.random() < case_rate
        lang, text = rng.choice(pools[(channel, wants_case)])
        items.append(Item(number=number, channel=channel, lang=lang, text=f"{text} #{number}", wants_case=wants_case))
    return items


# ---- the run ----------------------------------------------------------------------------------------

@dataclass
class Run:
    items: List[Item]
    meter: Meter
    cases: Dict[str, str]                    # case id -> platform
    outcomes: Counter
    wave_fetch_runs: int
    idle_runs: int
    token_runs: int
    idle_dm_events: int
    storage: Dict[str, Tuple[int, int, int]]
    alarms: int
    agent_calls: Counter
    duration_s: float
    front: str = "function_url"


def _memory_by_function() -> Dict[str, int]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return {name: int(spec["lambda_memory_size"]) for name, spec in config["lambda_functions"].items()}


def _tracing_by_function(stage: str = TRACING_STAGE) -> Dict[str, bool]:
    """Whether each function runs with X-Ray active tracing in ``stage``, as Chalice resolves .chalice/config.json
    (the stage's ``xray``, or a function's own)."""
    from infra.policies import stage_settings

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return {name: stage_settings(stage, name, config)[1] for name in config["lambda_functions"]}


def _platform_log_bytes_by_function(stage: str = TRACING_STAGE) -> Dict[str, int]:
    """Bytes of Lambda's own START, END and REPORT lines per invocation of each function in ``stage``: none where
    its ``LAMBDA_SYSTEM_LOG_LEVEL`` (as Chalice resolves .chalice/config.json; WARN when unset) keeps WARN lines only."""
    from chalicelib.config import system_log_level
    from infra.policies import stage_settings

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    levels = {name: system_log_level(stage_settings(stage, name, config)[0].get("LAMBDA_SYSTEM_LOG_LEVEL", ""))
              for name in config["lambda_functions"]}
    return {name: 0 if level == "WARN" else LAMBDA_PLATFORM_LOG_BYTES for name, level in levels.items()}


def _reset_caches() -> None:
    from chalicelib.adapters import aws, queues
    from chalicelib.bootstrap import deps
    from chalicelib.config import settings
    from chalicelib.entrypoints import http as http_api

    settings.cache_clear()
    aws.reset_clients()
    queues.queue_url.cache_clear()
    queues._delivery_policy.cache_clear()
    deps.cache_clear()
    http_api._verifier.clear()


def _moto_public_jwks() -> Dict[str, Any]:
    data = resources.files("moto.cognitoidp").joinpath("resources/jwks-public.json.gz").read_bytes()
    return json.loads(gzip.decompress(data))


@contextlib.contextmanager
def bench_environment(x_url: str, graph_url: str) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)  # EMF lines are log bytes the bill counts
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "SOCIALCARE_STAGE": STAGE,
        "SQS_REPORT_BATCH_ITEM_FAILURES": "true", "POWERTOOLS_LOG_LEVEL": "INFO",  # as .chalice/config.json deploys
        "POWERTOOLS_SERVICE_NAME": "socialcare", "POWERTOOLS_METRICS_NAMESPACE": "socialcare",
        "X_API_BASE_URL": x_url, "GRAPH_API_BASE_URL": graph_url + "/v21.0",
        "X_BRAND_USER_ID": "1500000000000000001",
    })
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run(mentions: int = 500, waves: int = 5, idle_runs: int = 5, token_runs: int = 2, seed: int = 7,
        warm_up: int = 10, case_rate: float = CASE_RATE, progress: Callable[[str], None] = lambda line: None,
        front: str = "function_url") -> Run:
    """Release ``mentions`` in ``waves`` and take each case through its lifecycle, counting everything.

    ``warm_up`` mentions go through first, uncounted, so that each function's
    first-call work (imports, the triage lexicons, cached clients and queue
    URLs) is not charged to the measured mentions: cold starts are left out.
    ``front``: how agents and Meta reach the API handler (``FRONTS``).
    """
    if front not in FRONTS:
        raise ValueError(f"front must be one of {', '.join(FRONTS)}, not {front!r}")
    import logging
    import warnings

    import boto3
    from chalice.test import Client
    from moto import mock_aws

    from local.fake_graph import FakeGraph
    from local.fake_x import FakeX
    from local.lambda_events import LambdaContext, scheduled_event
    from local.stack import (
        BRAND_X_HANDLE,
        BRAND_X_USER_ID,
        DEMO_AGENTS,
        DEMO_PASSWORD,
        DEMO_SOURCES,
        META_APP_SECRET,
        META_TOKEN,
        META_VERIFY_TOKEN,
        X_BEARER,
        X_USER_TOKEN,
        deliver_queue,
        load_app,
    )

    # moto names each resource type its CloudFormation skips (Cognito, Secrets Manager, alarms).
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse")
    started = time.monotonic()
    items = workload(mentions, seed, case_rate=case_rate)
    warm_items = workload(warm_up, seed + 99, first_number=900_001) if warm_up else []
    fake_x = FakeX(bearer_token=X_BEARER, brand_user_id=BRAND_X_USER_ID, brand_handle=BRAND_X_HANDLE,
                   user_token=X_USER_TOKEN, rate_limits={e: 10**9 for e in ("mentions", "search", "dm_events", "post",
                                                                              "dm_send", "user_tweets")}).start()
    graph = FakeGraph(access_token=META_TOKEN).start()
    meter = Meter(_memory_by_function(), _tracing_by_function(), _platform_log_bytes_by_function())
    undo_platform = install_platform_recorder(meter, fake_x.url)
    try:
        with bench_environment(fake_x.url, graph.url), mock_aws():
            from chalicelib import observability
            from chalicelib.bootstrap import deps
            from chalicelib.domain.agent import Agent
            from chalicelib.domain.source import validate_source
            from chalicelib.entrypoints import http as http_api
            from chalicelib.entrypoints.auth import TokenVerifier, cognito_issuer
            from local.cognito import create_demo_pool, issue_token

            boto3.setup_default_session(region_name=REGION)
            units = DynamoUnits(boto3.session.Session(region_name=REGION).client("dynamodb"))
            install_hooks(boto3.DEFAULT_SESSION, meter, units)

            # -- the stack, as make deploy creates it (not counted)
            boto3.client("cloudformation").create_stack(
                StackName=f"socialcare-{STAGE}", TemplateBody=(ROOT / "infra" / "template.yaml").read_text(),
                Parameters=[{"ParameterKey": "Stage", "ParameterValue": STAGE}])
            boto3.client("secretsmanager").create_secret(Name=f"socialcare-{STAGE}/platforms", SecretString=json.dumps({
                "x_bearer_token": X_BEARER, "x_user_token": X_USER_TOKEN, "meta_access_token": META_TOKEN,
                "meta_app_secret": META_APP_SECRET, "meta_verify_token": META_VERIFY_TOKEN}))
            cognito = boto3.client("cognito-idp")
            pool_id, client_id = create_demo_pool(cognito, f"socialcare-{STAGE}-agents")
            os.environ.update(USER_POOL_ID=pool_id, USER_POOL_CLIENT_ID=client_id)
            _reset_caches()
            http_api._verifier["v"] = TokenVerifier(
                jwks_url="http://moto.invalid/jwks.json", issuer=cognito_issuer(REGION, pool_id), client_id=client_id,
                fetch_jwks=lambda url: _moto_public_jwks())
            app = load_app()
            level = observability.logger.log_level
            observability.logger.setLevel("INFO")
            handler = observability.logger.logger_handler
            saved_stream = handler.setStream(CountingStream(meter))  # type: ignore[attr-defined]
            try:
                store = deps().settings
                for agent in DEMO_AGENTS:
                    store.put_agent(Agent.from_dict(agent))
                for source in DEMO_SOURCES:
                    store.put_source(validate_source(source))
                tokens = {a["agent_id"]: issue_token(cognito, pool_id, client_id, a["agent_id"], DEMO_PASSWORD)
                          for a in DEMO_AGENTS}
                world = World(app=app, meter=meter, client=Client(app.app, stage_name="prod", project_dir=str(ROOT)),
                              sqs=boto3.client("sqs"), tokens=tokens, fake_x=fake_x, graph=graph,
                              post_id=graph.add_page_post("Typhoon advisory: flights on Nov 24 may change.")["id"],
                              media_id=graph.add_ig_media("Our new Haneda lounge opens tomorrow")["id"],
                              rng=random.Random(seed + 1), deliver_queue=deliver_queue, front=front,
                              url_context=LambdaContext(f"socialcare-{STAGE}", REGION),
                              schedule=lambda name: (scheduled_event(f"socialcare-{STAGE}-{name}", REGION),
                                                     LambdaContext(f"socialcare-{STAGE}-{name}", REGION)))
                graph.set_webhook("http://bench.invalid/webhooks/meta", META_APP_SECRET, transport=world.webhook)
                if warm_items:
                    progress(f"  warm-up: {len(warm_items)} mentions, not counted")
                    world.wave(warm_items, counted=False)
                before = {name: units.stored_bytes(getattr(app.config, f"{name}_table")) for name in TABLES}
                size = math.ceil(len(items) / max(1, waves))
                for start in range(0, len(items), size):
                    progress(f"  wave {start // size + 1}: {len(items[start:start + size])} mentions")
                    world.wave(items[start:start + size], counted=True)
                # -- the schedules with nothing new: the fixed cost of listening
                for _ in range(idle_runs):
                    with meter.invoke("fetch_mentions", "idle"):
                        app.fetch_mentions(*world.schedule("fetch_mentions"))
                for _ in range(token_runs):
                    with meter.invoke("refresh_x_token", "token"):
                        app.refresh_x_token(*world.schedule("refresh_x_token"))
                after = {name: units.stored_bytes(getattr(app.config, f"{name}_table")) for name in TABLES}
            finally:
                handler.setStream(saved_stream)  # type: ignore[attr-defined]
                observability.logger.setLevel(level)
                _reset_caches()
    finally:
        undo_platform()
        fake_x.stop()
        graph.stop()
    returned = meter.detail["idle"].get(("x", "fetch_mentions", "DM events returned"), 0)
    return Run(items=items, meter=meter, cases=world.cases, outcomes=world.outcomes, wave_fetch_runs=world.fetch_runs,
               idle_runs=idle_runs, token_runs=token_runs, idle_dm_events=int(returned / max(1, idle_runs)),
               storage={name: tuple(a - b for a, b in zip(after[name], before[name])) for name in TABLES},
               alarms=(ROOT / "infra" / "template.yaml").read_text().count("Type: AWS::CloudWatch::Alarm"),
               agent_calls=world.agent_calls, duration_s=time.monotonic() - started, front=front)


TABLES = ("mentions", "cases", "settings")


@dataclass
class World:
    """The app, its queues and API, the fake platforms: what one wave drives."""
    app: Any
    meter: Meter
    client: Any
    sqs: Any
    tokens: Dict[str, str]
    fake_x: Any
    graph: Any
    post_id: str
    media_id: str
    rng: random.Random
    deliver_queue: Callable[..., List[Dict[str, Any]]]
    schedule: Callable[[str], Tuple[Dict[str, Any], Any]]
    front: str = "function_url"
    url_context: Any = None                                   # the API handler's Lambda context (function URL events)
    counted: bool = True
    fetch_runs: int = 0
    cases: Dict[str, str] = field(default_factory=dict)        # case id -> platform
    outcomes: Counter = field(default_factory=Counter)
    agent_calls: Counter = field(default_factory=Counter)      # HTTP status -> calls

    def phase(self, name: str) -> str:
        return name if self.counted else "setup"

    def wave(self, wave: List[Item], *, counted: bool) -> None:
        self.counted = counted
        outcomes: Counter = Counter()
        with self.meter.doing(self.phase("listen"), "platform"):
            for item in wave:
                release(item, self.fake_x, self.graph, self.post_id, self.media_id, self.rng)
        with self.meter.invoke("fetch_mentions", self.phase("listen")):
            self.app.fetch_mentions(*self.schedule("fetch_mentions"))
        self.fetch_runs += counted
        for result in self.pump(self.app.config.mentions_queue, "triage_mentions", "listen"):
            outcomes[result.get("outcome", "?")] += 1
        opened = []
        for result in self.pump(self.app.config.triaged_queue, "assign_cases", "case"):
            outcomes["assign:" + result.get("outcome", "?")] += 1
            if result.get("outcome") == "opened":
                opened.append(result)
        answered = []
        for result in opened:
            agent = result.get("assignee") or "demo"  # the supervisor takes what is left in a team's queue
            self.agent_api(agent, "GET", "/cases?limit=25")
            case = self.agent_api(agent, "GET", f"/cases/{result['case_id']}").json_body["case"]
            # X takes no API reply to a post that did not tag the brand: the agent answers by DM.
            mode = "private" if case["platform"] == "x" and not case["reply_target"]["addressed_to_brand"] else "public"
            # X refuses a post whose text it has seen before: each answer names its case.
            text = f"{REPLY_TEXT.get(case.get('lang'), REPLY_TEXT['en'])} ({result['case_id'][-6:]})"
            self.agent_api(agent, "POST", f"/cases/{result['case_id']}/replies", {"text": text, "mode": mode})
            answered.append((agent, result["case_id"], case["platform"]))
        for result in self.pump(self.app.config.outbound_queue, "send_replies", "case"):
            outcomes["send:" + str(result.get("outcome", "?"))] += 1
        for agent, case_id, platform in answered:
            self.agent_api(agent, "PATCH", f"/cases/{case_id}", {"status": "resolved"})
            if counted:
                self.cases[case_id] = platform
        if counted:
            self.outcomes.update(outcomes)

    def pump(self, queue: str, name: str, phase: str) -> List[Dict[str, Any]]:
        function = getattr(self.app, name)

        def handle(event: Any, context: Any) -> Any:
            with self.meter.invoke(name, self.phase(phase)):
                return function(event, context)

        with self.meter.doing(self.phase(phase), name):  # Lambda's pollers receive and delete for the function
            return self.deliver_queue(self.sqs, queue, handle, name, max_batches=10_000)

    def webhook(self, body: bytes, headers: Dict[str, str]) -> int:
        """Meta's delivery through the stage's front to the API function (API Gateway, if any, counted apart)."""
        return int(self.request("POST", "/webhooks/meta", headers, body, usage_phase="webhook",
                                phase="listen").status_code)

    def agent_api(self, agent: str, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[agent]}", "Content-Type": "application/json"}
        answer = self.request(method, path, headers, json.dumps(body).encode() if body is not None else b"",
                              usage_phase="case", phase="case")
        if self.counted:
            self.agent_calls[f"{method} {answer.status_code}"] += 1
        return answer

    def request(self, method: str, path: str, headers: Dict[str, str], body: bytes, *, usage_phase: str,
                phase: str) -> Any:
        """One HTTP request to the API function: through its function URL (an event of payload 2.0, which
        chalicelib/entrypoints/function_url.py turns into the one Chalice routes; no API Gateway request), or
        through the REST API (Chalice's own event; one API Gateway request, under ``usage_phase``)."""
        if self.front == "rest" and self.counted:
            self.meter.add(usage_phase, "apigateway.rest_requests", 1)
            self.meter.request("apigateway", usage_phase)
        with self.meter.invoke("api_handler", self.phase(phase)):
            if self.front == "rest" or not FUNCTION_URL_EVENTS.exists():
                return getattr(self.client.http, method.lower())(path, headers=headers, body=body)
            return url_response(self.app.app(function_url_event(method, path, headers, body), self.url_context))


# The app's translation of function URL events (payload 2.0) into the REST events Chalice routes.
FUNCTION_URL_EVENTS = ROOT / "chalicelib" / "entrypoints" / "function_url.py"
URL_DOMAIN = "bench0000000000000000000000000000.lambda-url.us-east-1.on.aws"


def function_url_event(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Dict[str, Any]:
    """The event Lambda gives a function for a request to its function URL (payload format 2.0): header names
    in lower case, the query string raw and parsed, a text body as text (anything else base64)."""
    from urllib.parse import parse_qsl

    raw_path, _, query = path.partition("?")
    now = time.time()
    lowered = {name.lower(): value for name, value in headers.items()}
    lowered.update({"host": URL_DOMAIN, "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7",
                    "user-agent": "bench/cost.py"})
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    event: Dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": query, "headers": lowered,
        "requestContext": {
            "accountId": "anonymous", "apiId": URL_DOMAIN.split(".")[0], "domainName": URL_DOMAIN,
            "domainPrefix": URL_DOMAIN.split(".")[0],
            "http": {"method": method.upper(), "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "bench/cost.py"},
            "requestId": f"bench-{int(now * 1e6)}", "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000)},
        "isBase64Encoded": encoded}
    if query:
        event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
    if body:
        event["body"] = text
    return event


def url_response(answer: Mapping[str, Any]) -> Any:
    """The function's answer to a function URL event, as chalice.test's HTTPResponse (``status_code``,
    ``json_body``)."""
    from chalice.test import HTTPResponse

    raw = answer.get("body") or ""
    body = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode("utf-8")
    return HTTPResponse(body=body, headers=dict(answer.get("headers") or {}), status_code=int(answer["statusCode"]))


def release(item: Item, fake_x: Any, graph: Any, post_id: str, media_id: str, rng: random.Random) -> None:
    """Make the item happen on its platform; Meta pushes it (and now and then pushes it again)."""
    from local.fake_graph import feed_comment_delivery, ig_comment_delivery, ig_mention_delivery

    now = time.time()
    if item.channel in ("x_mention", "x_search"):
        fake_x.add_post(item.author, item.text, lang=item.lang)
        return
    if item.channel == "x_dm":
        fake_x.add_dm(item.author, item.text)
        return
    if item.channel == "facebook_comment":
        created = graph.add_page_comment(item.text, post_id=post_id, author_id=item.author_id, author_name=item.author)
        delivery = feed_comment_delivery(graph.page_id, post_id=post_id, comment_id=created["id"], message=item.text,
                                         sender=created["from"], created_time=now)
    elif item.channel == "instagram_comment":
        created = graph.add_ig_comment(item.text, username=item.author, user_id=item.author_id, media_id=media_id)
        delivery = ig_comment_delivery(graph.ig_user_id, comment_id=created["id"], media_id=media_id, text=item.text,
                                       sender=created["from"], time_=now)
    elif item.channel == "instagram_mention":
        created = graph.add_ig_mention(item.text, username=item.author)
        delivery = ig_mention_delivery(graph.ig_user_id, media_id=created["id"], time_=now)
    else:
        platform = {"messenger_dm": "messenger", "instagram_dm": "instagram"}.get(item.channel, "whatsapp")
        user_id = ("81" + str(item.number).zfill(9)) if platform == "whatsapp" else item.author_id
        delivery = graph.add_customer_message(platform, user_id, item.text, name=f"Customer {item.number}",
                                              username=item.author)
    graph.deliver(delivery)
    if rng.random() < WEBHOOK_REPEAT_RATE:
        graph.deliver(delivery)


# ---- the figures --------------------------------------------------------------------------------------

@dataclass
class Figures:
    mentions: int
    cases: int
    per_mention: Dict[str, float]
    webhook_per_pushed_mention: Dict[str, float]
    per_case: Dict[str, float]
    idle_poll_run: Dict[str, float]
    token_refresh_run: Dict[str, float]
    platform_per_mention: Dict[str, Dict[str, float]]
    platform_per_case: Dict[str, Dict[str, float]]
    channel_share: Dict[str, float]
    pushed_share: Dict[str, float]
    requests_per_mention: Dict[str, float]
    requests_per_case: Dict[str, float]
    stored_bytes_per_mention: float
    stored_bytes_per_case: float


def _aws(usage: Mapping[str, float]) -> Dict[str, float]:
    return {k: v for k, v in usage.items() if not k.startswith("platform:")}


def _platform(usage: Mapping[str, float], channel: str) -> Dict[str, float]:
    prefix = f"platform:{channel}:"
    return {k[len(prefix):]: v for k, v in usage.items() if k.startswith(prefix)}


def figures(result: Run) -> Figures:
    from chalicelib.domain.cost import add_usage, scale_usage, usage_per

    meter = result.meter
    mentions = len(result.items)
    cases = max(1, len(result.cases))
    idle_runs = max(1, result.idle_runs)
    idle = usage_per(meter.usage["idle"], idle_runs)
    # The wave runs of fetch_mentions did, besides fetching, what an idle run does: that part is fixed cost.
    listen = {k: max(0.0, v) for k, v in add_usage(meter.usage["listen"],
                                                   scale_usage(idle, -result.wave_fetch_runs)).items()}
    # The fetch container reads the secret again every 5 minutes: a fifth of the runs at one a minute.
    idle_aws = _aws(idle)
    idle_aws["secretsmanager.api_calls"] = max(idle_aws.get("secretsmanager.api_calls", 0.0), 60 / SECRET_CACHE_SECONDS)
    by_channel = Counter(item.platform for item in result.items)
    pushed = sum(1 for item in result.items if item.channel in PUSHED)
    pushed_by_platform = Counter(item.platform for item in result.items if item.channel in PUSHED)
    cases_by_platform = Counter(result.cases.values())
    meta_channels = ("facebook", "instagram", "messenger")
    meta_mentions = sum(by_channel[c] for c in meta_channels) or 1
    meta_cases = sum(cases_by_platform[c] for c in meta_channels) or 1
    platform_per_mention: Dict[str, Dict[str, float]] = {}
    platform_per_case: Dict[str, Dict[str, float]] = {}
    for channel in ("x", "facebook", "instagram", "messenger", "whatsapp"):
        own = _platform(listen, channel)
        shared = _platform(listen, "meta") if channel in meta_channels else {}
        platform_per_mention[channel] = add_usage(usage_per(own, by_channel[channel]) if by_channel[channel] else {},
                                                  usage_per(shared, meta_mentions))
        own_cases = _platform(meter.usage["case"], channel)
        shared_cases = _platform(meter.usage["case"], "meta") if channel in meta_channels else {}
        platform_per_case[channel] = add_usage(
            usage_per(own_cases, cases_by_platform[channel]) if cases_by_platform[channel] else {},
            usage_per(shared_cases, meta_cases))
    storage = result.storage
    mention_bytes = sum(storage["mentions"][1:]) / mentions
    case_bytes = sum(storage["cases"][1:]) / cases
    return Figures(
        mentions=mentions, cases=len(result.cases),
        per_mention=usage_per(_aws(listen), mentions),
        webhook_per_pushed_mention=usage_per(meter.usage["webhook"], max(1, pushed)),
        per_case=usage_per(_aws(meter.usage["case"]), cases),
        idle_poll_run=add_usage(idle_aws, *(_platform(idle, c) for c in ("x", "meta", "whatsapp"))),
        token_refresh_run=usage_per(_aws(meter.usage["token"]), max(1, result.token_runs)),
        platform_per_mention=platform_per_mention, platform_per_case=platform_per_case,
        channel_share={c: n / mentions for c, n in sorted(by_channel.items())},
        pushed_share={c: pushed_by_platform[c] / n for c, n in sorted(by_channel.items())},
        requests_per_mention={s: max(0.0, n - meter.requests["idle"][s] / idle_runs * result.wave_fetch_runs) / mentions
                              for s, n in meter.requests["listen"].items() if not s.endswith(" API")},
        requests_per_case={s: n / cases for s, n in meter.requests["case"].items() if not s.endswith(" API")},
        stored_bytes_per_mention=mention_bytes, stored_bytes_per_case=case_bytes,
    )


def profile(result: Run, numbers: Figures, command: str) -> Dict[str, Any]:
    from chalicelib.domain.cost import UsageProfile

    by_channel = Counter(item.channel for item in result.items)
    x_dms = by_channel["x_dm"]
    x_mentions = sum(n for channel, n in by_channel.items() if PLATFORM_OF[channel] == "x")
    dm_replies = result.meter.usage["case"].get("platform:x:x.dms_sent", 0)
    idle = result.meter.detail["idle"]
    events_listed = idle.get(("x", "fetch_mentions", "DM events returned"), 0)
    users_listed = idle.get(("x", "fetch_mentions", "DM users returned"), 0)
    return UsageProfile(
        measured=date.today().isoformat(), command=command, architecture="arm64 (prices choose; GB-seconds do not)",
        per_mention=numbers.per_mention, webhook_per_pushed_mention=numbers.webhook_per_pushed_mention,
        per_case=numbers.per_case, channel_share=numbers.channel_share, pushed_share=numbers.pushed_share,
        platform_per_mention=numbers.platform_per_mention, platform_per_case=numbers.platform_per_case,
        idle_poll_run=numbers.idle_poll_run, token_refresh_run=numbers.token_refresh_run,
        stored_bytes_per_mention=numbers.stored_bytes_per_mention, stored_bytes_per_case=numbers.stored_bytes_per_case,
        custom_metrics=len(result.meter.metrics), alarms=result.alarms,
        agent_api_calls_per_case=len(AGENT_CALLS),
        x_dm_events_per_x_mention=(x_dms + dm_replies) / max(1, x_mentions),
        x_users_per_dm_event=users_listed / max(1, events_listed),
        notes=(
            "usage of moto in process: DynamoDB units computed from item sizes (moto's ConsumedCapacity is a constant)",
            f"modeled: round trips {json.dumps(LATENCY_MS)} ms; CPU scaled by {FULL_VCPU_MB} MB / memory; "
            f"{LAMBDA_PLATFORM_LOG_BYTES} bytes of Lambda platform log lines per invocation where the stage keeps "
            f"them ({_platform_note(result.meter)})",
            _front_note(result.front),
            "X reads are counted once per resource (X bills a resource once per UTC day; the run is one day); "
            "users returned by expansions are counted as billed user reads (an upper bound)",
            f"X DM polling re-reads the newest DM events every run: {result.idle_dm_events} per idle run here "
            f"(billed again each UTC day); {x_dms} X DMs in the mix",
        ),
        workload={"mentions": numbers.mentions, "cases": numbers.cases, "mix": MIX,
                  "webhook_repeat_rate": WEBHOOK_REPEAT_RATE, "waves": result.wave_fetch_runs,
                  "outcomes": dict(sorted(result.outcomes.items())),
                  "agent_call_statuses": {str(k): v for k, v in sorted(result.agent_calls.items())}},
    ).to_dict()


def _platform_note(meter: Meter) -> str:
    kept = sorted(name for name, size in meter.platform_log_bytes.items() if size)
    return ("LAMBDA_SYSTEM_LOG_LEVEL WARN: none kept" if not kept
            else "kept for " + ", ".join(kept) + " (LAMBDA_SYSTEM_LOG_LEVEL DEBUG or INFO)")


def _front_note(front: str) -> str:
    if front == "rest":
        return "agents and Meta through the REST API: one API Gateway request per call and delivery"
    how = ("function URL events (payload 2.0) through chalicelib/entrypoints/function_url.py"
           if FUNCTION_URL_EVENTS.exists() else "REST events (chalicelib/entrypoints/function_url.py not there)")
    return f"agents and Meta through the API handler's function URL: no API Gateway request; driven as {how}"


def render(result: Run, numbers: Figures, region: str, architecture: str) -> str:
    from chalicelib.domain.cost import load_prices, price_usage, scale_usage

    prices = load_prices(region, architecture)
    million = 1_000_000
    lines = []
    triaged = {k: v for k, v in result.outcomes.items() if not k.startswith(("assign:", "send:"))}
    lines.append(f"socialcare cost bench: {numbers.mentions:,} mentions, {numbers.cases:,} cases "
                 f"({numbers.cases / numbers.mentions:.1%}); {region}, {architecture}, list prices checked {prices.checked}; "
                 f"{result.duration_s:.0f} s")
    lines.append(f"  triage outcomes: {dict(sorted(triaged.items()))}; webhook repeats {WEBHOOK_REPEAT_RATE:.0%}")
    lines.append(f"  front: {_front_note(result.front)}")
    lines.append(f"  Lambda's own START/END/REPORT lines: {_platform_note(result.meter)}")
    lines.append("  mix: " + ", ".join(f"{c} {s:.0%}" for c, s in numbers.channel_share.items()))

    def table(title: str, usage: Mapping[str, float], requests: Mapping[str, float], target: Optional[float]) -> None:
        bill = price_usage(scale_usage(usage, million), prices)
        lines.append("")
        lines.append(title)
        lines.append(f"  {'service':<15}{'AWS requests':>14}  {'units':<44}{'cost':>10}")
        units: Dict[str, List[str]] = defaultdict(list)
        for row in bill.rows:
            units[row.price.service].append(f"{_short(row.quantity)} {row.price.unit}")
        for service, cost in sorted(bill.by_service().items(), key=lambda kv: -kv[1]):
            count = requests.get(service, 0.0) * million
            shown = f"{_short(count)}" if count else "-"
            lines.append(f"  {service:<15}{shown:>14}  {'; '.join(units[service])[:44]:<44}{'$' + format(cost, ',.2f'):>10}")
        verdict = "" if target is None else (f"  (target <= ${target:.2f}: " + ("met)" if bill.total_usd <= target else "NOT met)"))
        lines.append(f"  {'total':<15}{_short(sum(requests.values()) * million):>14}  {'':<44}"
                     f"{'$' + format(bill.total_usd, ',.2f'):>10}{verdict}")

    table("Listen + triage, per million mentions (API Gateway for webhooks apart)", numbers.per_mention,
          numbers.requests_per_mention, 1.50)
    webhook = price_usage(scale_usage(numbers.webhook_per_pushed_mention, million), prices)
    if result.front == "rest":
        lines.append(f"  webhooks, apart: {_short(numbers.webhook_per_pushed_mention.get('apigateway.rest_requests', 0) * million)} "
                     f"API Gateway requests per million pushed mentions: ${webhook.total_usd:,.2f}")
    else:
        lines.append(f"  webhooks, apart: through the function URL, no API Gateway request: ${webhook.total_usd:,.2f} "
                     f"per million pushed mentions (--front rest: one each, $3.50 a million)")
    table(f"Case lifecycle, per million cases ({len(AGENT_CALLS)} agent API calls each: list, open, answer, resolve)",
          numbers.per_case, numbers.requests_per_case, 25.00)
    lines.append("")
    lines.append("Platform APIs, per million mentions and per million cases, by channel")
    for channel in numbers.platform_per_mention:
        reading = price_usage(scale_usage(numbers.platform_per_mention[channel], million), prices).total_usd
        replying = price_usage(scale_usage(numbers.platform_per_case.get(channel, {}), million), prices).total_usd
        lines.append(f"  {channel:<11} reading ${reading:>10,.2f}   replying ${replying:>10,.2f}")
    idle = price_usage(scale_usage(numbers.idle_poll_run, 30 * 1440), prices)
    token = price_usage(scale_usage(numbers.token_refresh_run, 30 * 48), prices)
    lines.append("")
    lines.append(f"Fixed: one idle poll run ${idle.total_usd / (30 * 1440) * million:,.2f} per million runs; "
                 f"polling every minute ${idle.total_usd:,.2f} a month; X token refresh ${token.total_usd:,.2f} a month")
    lines.append(f"Stored: {numbers.stored_bytes_per_mention:,.0f} bytes per mention, "
                 f"{numbers.stored_bytes_per_case:,.0f} bytes per case (indexes and 100-byte overheads included)")
    lines.append("")
    lines.append("Where the cost goes")
    lines.extend(_where(result, numbers, prices))
    return "\n".join(lines)


def _where(result: Run, numbers: Figures, prices: Any) -> List[str]:
    meter = result.meter
    lines = []
    for phase, per, label in (("listen", numbers.mentions, "mention"), ("case", max(1, numbers.cases), "case")):
        price = {"WRU": prices.price("dynamodb.write_request_units").unit_usd,
                 "RRU": prices.price("dynamodb.read_request_units").unit_usd}
        rows = []
        for what, quantity in meter.detail[phase].items():
            if what[0] == "dynamodb" and what[-1] in price:
                rows.append((quantity * price[what[-1]] / per * 1_000_000, what, quantity / per))
            elif what[0] == "sqs":
                rows.append((quantity * prices.price("sqs.requests").unit_usd / per * 1_000_000, what, quantity / per))
            elif what[0] == "lambda" and what[-1] == "billed ms":
                memory = meter.memory_mb[what[1]]
                gbs = quantity / 1000 * memory / 1024
                rows.append((gbs * prices.price("lambda.gb_seconds").unit_usd / per * 1_000_000, what, quantity / per))
            elif what[0] == "logs":
                rows.append((quantity / BYTES_PER_GB * prices.price("logs.ingested_gb").unit_usd / per * 1_000_000,
                             what, quantity / per))
        rows.sort(key=lambda r: -r[0])
        lines.append(f"  per million {label}s, the largest items (before subtracting idle polling):")
        for cost, what, quantity in rows[:int(os.environ.get("BENCH_COST_ROWS") or 15)]:  # more: BENCH_COST_ROWS=60
            shown = " ".join(str(w).replace(f"socialcare-{STAGE}-", "") for w in what)
            lines.append(f"    ${cost:>8,.2f}  {quantity:>8.2f} per {label}  {shown}")
    return lines


def _short(value: float) -> str:
    if value >= 1e9:
        return f"{value / 1e9:,.2f} G"
    if value >= 1e6:
        return f"{value / 1e6:,.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:,.1f} k"
    return f"{value:,.2f}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/cost.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=500, help="mentions released (default 500)")
    parser.add_argument("--waves", type=int, default=5, help="released in this many waves (default 5)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--region", default="us-east-1", help="prices of this region (default us-east-1)")
    parser.add_argument("--arch", default="arm64", choices=("arm64", "x86_64"))
    parser.add_argument("--front", default="function_url", choices=FRONTS,
                        help="how agents and Meta reach the API: the function URL the stage deploys (default), "
                             "or the REST API beside it (API Gateway billed per request: the old figure)")
    parser.add_argument("--profile", default=str(PROFILE_PATH), help="where to write the usage profile")
    parser.add_argument("--no-profile", action="store_true", help="do not write the usage profile")
    args = parser.parse_args(argv)
    result = run(args.mentions, args.waves, seed=args.seed, progress=lambda line: print(line, file=sys.stderr),
                 front=args.front)
    numbers = figures(result)
    print(render(result, numbers, args.region, args.arch))
    if not args.no_profile:
        command = COMMAND + (f" --mentions {args.mentions}" if args.mentions != 500 else "") + \
            (f" --waves {args.waves}" if args.waves != 5 else "") + (" --front rest" if args.front == "rest" else "")
        Path(args.profile).write_text(json.dumps(profile(result, numbers, command), indent=2, ensure_ascii=False) + "\n")
        print(f"\nusage profile written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
