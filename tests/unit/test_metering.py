"""Metering: the meter's arithmetic, SQS chunks, X and WhatsApp priced kinds, the flush rule and what metering
costs (the "under 5 %" claim, computed from the price table), then the adapter: botocore hooks on moto, the
platform counter, the log counter and the invocation frame flushing to a cost store."""
from __future__ import annotations

import io
import json
import logging
import math

import pytest

from chalicelib.adapters import metering as adapter
from chalicelib.domain import metering as rules
from chalicelib.domain.cost import load_prices, price_usage
from chalicelib.domain.metering import FlushRule, UsageMeter, flush_share, graph_priced_kind, sqs_chunks, x_priced_kind
from tests.fakes import FakeCostStore

PRICES = load_prices("us-east-1", "arm64")


@pytest.fixture
def meter():
    """A fresh container meter for the adapter's module functions; the previous one is put back after."""
    previous = adapter.meter()
    fresh = adapter.reset()
    yield fresh
    adapter.reset(previous)


# ---- the arithmetic ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size, chunks", [(0, 1), (1, 1), (65_536, 1), (65_537, 2), (262_144, 4)])
def test_sqs_bills_each_64_kb_chunk_started(size, chunks):
    assert sqs_chunks(size) == chunks


def test_a_negative_payload_is_refused():
    with pytest.raises(ValueError):
        sqs_chunks(-1)


def test_an_invocation_adds_its_request_gb_seconds_rounded_up_to_the_ms_and_its_extras():
    meter = UsageMeter()
    meter.start("api", 1024, "arm64", http=True)
    meter.add(rules.DYNAMODB_READS, 2.5)
    added = meter.finish(100.2, traced=True)

    assert added[rules.LAMBDA_GB_SECONDS] == pytest.approx(0.101 * 1024 / 1024)  # 101 ms billed, 1 GB
    pending = meter.pending()[("api", rules.SHARED)]
    assert pending == pytest.approx({
        rules.LAMBDA_REQUESTS: 1, rules.LAMBDA_GB_SECONDS: 0.101, rules.APIGATEWAY_REQUESTS: 1,
        rules.XRAY_TRACES: 1, rules.DYNAMODB_READS: 2.5,
        rules.LOGS_INGESTED: rules.LAMBDA_PLATFORM_LOG_BYTES / 1024 ** 3})


def test_a_scheduled_invocation_counts_its_event_and_not_api_gateway():
    meter = UsageMeter()
    meter.start("fetch_mentions", 256, "arm64", scheduled=True)
    meter.finish(0.3)
    pending = meter.pending()[("fetch_mentions", rules.SHARED)]
    assert pending[rules.SCHEDULED_EVENTS] == 1
    assert rules.APIGATEWAY_REQUESTS not in pending
    assert pending[rules.LAMBDA_GB_SECONDS] == pytest.approx(0.001 * 256 / 1024)  # at least 1 ms


def test_usage_is_kept_per_function_and_channel():
    meter = UsageMeter()
    meter.start("triage_mentions", 256, "arm64")
    meter.add(rules.DYNAMODB_WRITES, 4, channel="x")
    meter.add(rules.DYNAMODB_WRITES, 1, channel="whatsapp")
    meter.add(rules.MENTIONS_PROCESSED, 1, channel="x")
    meter.finish(10)
    meter.start("send_replies", 256, "arm64")
    meter.add(rules.X_POSTS_CREATED, 1, channel="x")
    meter.finish(10)

    taken = {(f, c): u for f, c, u in meter.take()}
    assert taken[("triage_mentions", "x")] == {rules.DYNAMODB_WRITES: 4, rules.MENTIONS_PROCESSED: 1}
    assert taken[("triage_mentions", "whatsapp")] == {rules.DYNAMODB_WRITES: 1}
    assert taken[("send_replies", "x")] == {rules.X_POSTS_CREATED: 1}
    assert taken[("send_replies", rules.SHARED)][rules.LAMBDA_REQUESTS] == 1
    assert meter.pending() == {}


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_nonsense_quantities_are_refused(bad):
    with pytest.raises(ValueError):
        UsageMeter().add(rules.SQS_REQUESTS, bad)


def test_an_architecture_we_cannot_price_is_refused():
    with pytest.raises(ValueError):
        UsageMeter().start("api", 1024, "sparc")


def test_every_priced_kind_has_a_price_in_every_region_and_counters_are_not_priced():
    for region in ("us-east-1", "ap-northeast-1"):
        table = load_prices(region, "arm64")
        assert [k for k in rules.PRICED_KINDS if k not in table.prices] == []
    assert all(rules.is_priced(k) for k in rules.PRICED_KINDS)
    assert not any(rules.is_priced(k) for k in rules.COUNTERS + ("requests.sqs", "metering.sqs.requests"))


# ---- platforms --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, status, kind", [
    ("GET", "/2/users/1500/mentions?since_id=9", 200, rules.X_OWNED_READS),
    ("GET", "/2/users/1500/tweets", 200, rules.X_OWNED_READS),
    ("GET", "/2/tweets/search/recent", 200, rules.X_POST_READS),
    ("GET", "/2/tweets/123", 200, rules.X_POST_READS),
    ("GET", "/2/dm_events", 200, rules.X_DM_EVENT_READS),
    ("GET", "/2/dm_conversations/with/42/dm_events", 200, rules.X_DM_EVENT_READS),
    ("GET", "/2/users/me", 200, rules.X_USER_READS),
    ("GET", "/2/users/by/username/kana_t", 200, rules.X_USER_READS),
    ("POST", "/2/tweets", 201, rules.X_POSTS_CREATED),
    ("POST", "/2/dm_conversations/with/42/messages", 201, rules.X_DMS_SENT),
    ("POST", "/2/oauth2/token", 200, None),
    ("GET", "/2/users/1500/mentions", 429, None),
    ("POST", "/2/tweets", 403, None),
    ("DELETE", "/2/tweets/123", 200, None),
])
def test_x_calls_are_priced_by_kind(method, path, status, kind):
    assert x_priced_kind(method, path, status) == kind


def test_an_x_post_with_a_link_is_priced_apart():
    assert rules.x_post_created_kind("see https://sora.example/help") == rules.X_POSTS_CREATED_WITH_URL
    assert rules.x_post_created_kind("Sorry about this, we are on it.") == rules.X_POSTS_CREATED


WA_TEXT = {"messaging_product": "whatsapp", "to": "819012345678", "type": "text", "text": {"body": "hi"}}


@pytest.mark.parametrize("payload, status, category, kind", [
    (WA_TEXT, 200, None, rules.WHATSAPP_SERVICE),
    ({**WA_TEXT, "type": "interactive"}, 200, None, rules.WHATSAPP_SERVICE),
    ({**WA_TEXT, "type": "template"}, 200, None, rules.WHATSAPP_UTILITY),
    ({**WA_TEXT, "type": "template"}, 200, "MARKETING", rules.WHATSAPP_MARKETING),
    ({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.1"}, 200, None, None),
    (WA_TEXT, 400, None, None),
    ({"recipient": {"id": "psid"}, "message": {"text": "hi"}}, 200, None, rules.GRAPH_REQUESTS),
])
def test_graph_calls_whatsapp_messages_by_category_the_rest_free(payload, status, category, kind):
    assert graph_priced_kind("POST", "/v21.0/1234567890/messages", status, payload, category) == kind


def test_x_reads_count_resources_and_included_users_once_per_day_in_the_container():
    seen: set = set()

    def seen_before(kind, resource):
        if (kind, resource) in seen:
            return True
        seen.add((kind, resource))
        return False

    page = {"data": [{"id": "1"}, {"id": "2"}], "includes": {"users": [{"id": "u1"}]}}
    assert adapter.x_usage("GET", "/2/users/9/mentions", 200, {}, page, seen_before) == {
        rules.X_OWNED_READS: 2, rules.X_USER_READS: 1}
    again = {"data": [{"id": "2"}, {"id": "3"}], "includes": {"users": [{"id": "u1"}, {"id": "u2"}]}}
    assert adapter.x_usage("GET", "/2/users/9/mentions", 200, {}, again, seen_before) == {
        rules.X_OWNED_READS: 1, rules.X_USER_READS: 1}
    assert adapter.x_usage("POST", "/2/tweets", 201, {"text": "https://x.example"}, {"data": {"id": "7"}}) == {
        rules.X_POSTS_CREATED_WITH_URL: 1}


# ---- the flush rule and what metering costs --------------------------------------------------------------

def test_a_container_flushes_first_then_at_most_once_a_minute_and_on_every_schedule():
    rule = FlushRule()
    assert rule.due(now=1000.0, last_flush=None)
    assert not rule.due(now=1059.9, last_flush=1000.0)
    assert rule.due(now=1060.0, last_flush=1000.0)
    assert rule.due(now=1001.0, last_flush=1000.0, scheduled=True)
    assert not FlushRule(on_schedule=False).due(now=1001.0, last_flush=1000.0, scheduled=True)
    assert rule.due(now=900.0, last_flush=1000.0)  # the clock went back


def test_nothing_pending_is_never_due():
    assert not UsageMeter().flush_due(1000.0, scheduled=True)


def _invocation_usd(function, memory_mb, duration_ms, *, http=False, scheduled=False, platform_log_bytes=420, **usage):
    meter = UsageMeter()
    meter.start(function, memory_mb, "arm64", http=http, scheduled=scheduled)
    for kind, quantity in usage.items():
        meter.add(kind.replace("__", "."), quantity)
    meter.finish(duration_ms, platform_log_bytes=platform_log_bytes)
    (entry,) = meter.take()
    return price_usage(entry[2], PRICES).total_usd


def test_one_write_per_request_would_cost_more_than_5_percent_and_once_a_minute_less_from_3_requests():
    write = PRICES.price(rules.DYNAMODB_WRITES).unit_usd
    api = _invocation_usd("api", 1024, 50, http=True, dynamodb__read_request_units=3)
    assert api == pytest.approx(0.0000049, rel=0.03)   # the docstring's figure
    per_request = flush_share(items_per_flush=1, invocations_per_flush=1, invocation_usd=api, write_unit_usd=write)
    assert 0.12 < per_request < 0.14
    assert flush_share(items_per_flush=1, invocations_per_flush=3, invocation_usd=api, write_unit_usd=write) < 0.05
    assert flush_share(items_per_flush=1, invocations_per_flush=2, invocation_usd=api, write_unit_usd=write) > 0.05
    # Through the function URL there is no API Gateway request: the same read costs a quarter, and the meter's
    # once-a-minute write weighs under 5 % only from 11 requests a minute (the docstring's figures).
    url = _invocation_usd("api", 1024, 50, platform_log_bytes=0, dynamodb__read_request_units=3)
    assert url == pytest.approx(0.00000125, rel=0.03)
    assert flush_share(items_per_flush=1, invocations_per_flush=11, invocation_usd=url, write_unit_usd=write) < 0.05
    assert flush_share(items_per_flush=1, invocations_per_flush=10, invocation_usd=url, write_unit_usd=write) > 0.05


def test_metering_triage_and_idle_polling_costs_what_the_docstring_says():
    write = PRICES.price(rules.DYNAMODB_WRITES).unit_usd
    profile = json.loads((__import__("pathlib").Path(rules.__file__).parent / "usage_profile.json").read_text())
    mention = price_usage({k: v for k, v in profile["per_mention"].items() if k != rules.XRAY_TRACES}, PRICES).total_usd
    assert mention == pytest.approx(0.0000033, rel=0.05)
    assert flush_share(items_per_flush=2, invocations_per_flush=8, invocation_usd=mention, write_unit_usd=write) < 0.05
    assert flush_share(items_per_flush=2, invocations_per_flush=1, invocation_usd=mention,
                       write_unit_usd=write) == pytest.approx(0.38, abs=0.01)
    idle = price_usage({k: v for k, v in profile["idle_poll_run"].items() if k != rules.XRAY_TRACES}, PRICES).total_usd
    assert flush_share(items_per_flush=1, invocations_per_flush=1, invocation_usd=idle,
                       write_unit_usd=write) == pytest.approx(0.09, abs=0.01)
    # The sum is bounded anyway: a flush a minute per item and container.
    assert 1440 * 30 * write == pytest.approx(0.027, abs=0.001)


# ---- the adapter: frame, flush, own writes ------------------------------------------------------------

def test_the_frame_flushes_the_first_invocation_then_waits_a_minute(meter):
    store = FakeCostStore()
    adapter.start("api", 1024, "arm64", http=True)
    adapter.finish(12.0, traced=False)
    assert adapter.flush(store, now=1_000_000.0)
    adapter.start("api", 1024, "arm64", http=True)
    adapter.finish(12.0, traced=False)
    assert not adapter.flush(store, now=1_000_030.0)
    assert store.writes == 1
    assert adapter.flush(store, now=1_000_060.0)

    (row,) = store.usage_rows("1970-01-12", "1970-01-12")
    assert row["usage"][rules.LAMBDA_REQUESTS] == 2
    assert row["usage"][rules.APIGATEWAY_REQUESTS] == 2
    assert (row["function"], row["channel"]) == ("api", rules.SHARED)


def test_a_scheduled_invocation_flushes_even_within_the_minute(meter):
    store = FakeCostStore()
    for now in (1_000_000.0, 1_000_010.0):
        adapter.start("sla_tick", 256, "arm64", scheduled=True)
        adapter.finish(5.0, traced=False)
        assert adapter.flush(store, now=now, scheduled=True)
    assert store.writes == 2


class SelfCountingStore(FakeCostStore):
    """Each write reports its unit, as the DynamoDB hook does for the real store's UpdateItem."""

    def add_usage(self, day, function, channel, usage):
        super().add_usage(day, function, channel, usage)
        adapter.add(rules.DYNAMODB_WRITES, 1.0)


def test_metering_counts_its_own_writes_apart_without_adding_a_write(meter):
    store = SelfCountingStore()
    adapter.start("triage_mentions", 256, "arm64")
    adapter.add(rules.DYNAMODB_WRITES, 4, channel="x")
    adapter.finish(40.0, traced=False)
    adapter.flush(store, now=1_000_000.0)
    assert store.writes == 2                      # the shared item and x's
    adapter.start("triage_mentions", 256, "arm64")
    adapter.add(rules.DYNAMODB_WRITES, 4, channel="x")
    adapter.finish(40.0, traced=False)
    adapter.flush(store, now=1_000_100.0)
    assert store.writes == 4                      # still two: the meter's own units went into the shared item

    rows = {r["channel"]: r["usage"] for r in store.usage_rows("1970-01-12", "1970-01-12")}
    assert rows[rules.SHARED]["metering.dynamodb.write_request_units"] == 2
    assert rows[rules.SHARED][rules.DYNAMODB_WRITES] == 2   # counted as usage too: it is on the bill
    assert rows["x"][rules.DYNAMODB_WRITES] == 8


class FailingStore(FakeCostStore):
    def __init__(self):
        super().__init__()
        self.fail = True

    def add_usage(self, day, function, channel, usage):
        if self.fail:
            raise ConnectionError("DynamoDB unreachable")
        super().add_usage(day, function, channel, usage)


def test_a_flush_that_cannot_write_keeps_the_usage_for_the_next_one(meter):
    store = FailingStore()
    adapter.start("api", 1024, "arm64", http=True)
    adapter.finish(10.0, traced=False)
    adapter.flush(store, now=1_000_000.0)         # never raises
    store.fail = False
    adapter.start("api", 1024, "arm64", http=True)
    adapter.finish(10.0, traced=False)
    adapter.flush(store, now=1_000_060.0)
    (row,) = store.usage_rows("1970-01-12", "1970-01-12")
    assert row["usage"][rules.LAMBDA_REQUESTS] == 2


def test_outcomes_count_mentions_and_cases_by_the_mention_s_platform(meter):
    meter.start("triage_mentions", 256, "arm64")
    adapter.count_outcomes([{"outcome": "triaged", "mention_id": "x:1"}, {"outcome": "no_case", "mention_id": "x:2"},
                            {"outcome": "duplicate", "mention_id": "x:3"}, {"outcome": "triaged", "mention_id": "whatsapp:9"}],
                           {"triaged": rules.MENTIONS_PROCESSED, "no_case": rules.MENTIONS_PROCESSED})
    pending = meter.pending()
    assert pending[("triage_mentions", "x")] == {rules.MENTIONS_PROCESSED: 2}
    assert pending[("triage_mentions", "whatsapp")] == {rules.MENTIONS_PROCESSED: 1}


def test_work_is_attributed_to_the_message_s_channel(meter):
    meter.start("triage_mentions", 256, "arm64")
    body = json.dumps({"mention": {"platform": "instagram", "platform_id": "5"}})
    with adapter.attributed(adapter.channel_of_message(body)):
        adapter.add(rules.DYNAMODB_WRITES, 3)
    adapter.add(rules.DYNAMODB_WRITES, 1)
    assert meter.pending()[("triage_mentions", "instagram")] == {rules.DYNAMODB_WRITES: 3}
    assert meter.pending()[("triage_mentions", rules.SHARED)] == {rules.DYNAMODB_WRITES: 1}


def test_an_sqs_batch_counts_the_poller_s_receive_by_chunk_and_its_delete(meter):
    meter.start("triage_mentions", 256, "arm64")
    adapter.sqs_batch({"Records": [{"body": "x" * 40_000}, {"body": "y" * 40_000}]})
    assert meter.pending()[("triage_mentions", rules.SHARED)] == {rules.SQS_REQUESTS: 3}


def test_describe_reads_a_chalice_event():
    class Context:
        function_name = "socialcare-prod-triage_mentions"
        memory_limit_in_mb = "256"

    class SqsEvent:
        context = Context()

        def to_dict(self):
            return {"Records": []}

    class Schedule(SqsEvent):
        def to_dict(self):
            return {"detail-type": "Scheduled Event"}

    class Request:
        method, path = "POST", "/webhooks/meta"
        lambda_context = type("C", (), {"function_name": "socialcare-prod", "memory_limit_in_mb": 1024})()

    assert adapter.describe(SqsEvent(), "prod") == {"function": "triage_mentions", "memory_mb": 256, "http": False,
                                                    "scheduled": False}
    assert adapter.describe(Schedule(), "prod")["scheduled"] is True
    assert adapter.function_name("socialcare-fetch_mentions", "local") == "fetch_mentions"   # the local runner's
    assert adapter.function_name("api_handler", "local") == "api"                           # chalice local's
    assert adapter.describe(Request(), "prod") == {"function": "webhooks", "memory_mb": 1024, "http": True,
                                                   "scheduled": False}


def test_log_bytes_are_counted_once_through_the_stream_and_the_handler(meter, monkeypatch):
    target = io.StringIO()
    monkeypatch.setattr("sys.stdout", target)
    handler = logging.StreamHandler(target)
    other = logging.StreamHandler(io.StringIO())
    adapter.install_log_counter(handler, other)
    adapter.install_log_counter(handler, other)   # repeatable: nothing wrapped twice
    meter.start("api", 1024, "arm64")
    print("ab", end="")
    handler.stream.write("ソラ")                  # 6 bytes in UTF-8
    other.stream.write("z")
    assert target.getvalue() == "abソラ"
    assert meter.pending()[("api", rules.SHARED)][rules.LOGS_INGESTED] * 1024 ** 3 == pytest.approx(9)


# ---- the adapter on moto: botocore hooks --------------------------------------------------------------

def test_the_hooks_count_aws_usage_per_service(aws, meter):
    import boto3

    from chalicelib.adapters.aws import client

    ddb = adapter.instrument(client("dynamodb"))
    sqs = adapter.instrument(client("sqs"))
    secrets = adapter.instrument(client("secretsmanager"))
    meter.start("send_replies", 256, "arm64")
    table = "socialcare-test-settings"
    ddb.put_item(TableName=table, Item={"pk": {"S": "T"}, "sk": {"S": "1"}})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=table, Item={"pk": {"S": "T"}, "sk": {"S": "1"}},
                     ConditionExpression="attribute_not_exists(pk)")
    answer = ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "T"}})
    assert "ConsumedCapacity" in answer           # asked for on the caller's behalf
    ddb.describe_table(TableName=table)           # no capacity parameter: untouched
    url = sqs.get_queue_url(QueueName="socialcare-test-mentions")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m" * 70_000)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "b" * 10} for i in range(3)])
    secrets.get_secret_value(SecretId="socialcare-test/platforms")
    boto3.client("sqs", region_name="us-east-1").get_queue_url(QueueName="socialcare-test-mentions")  # not ours

    usage = meter.pending()[("send_replies", rules.SHARED)]
    assert usage["requests.dynamodb"] == 4
    assert usage[rules.DYNAMODB_WRITES] == 1 + 1  # moto's constant 1.0 for the put, the refused one's floor of 1
    assert usage[rules.DYNAMODB_READS] == 1.0     # moto's constant
    assert usage[rules.SQS_REQUESTS] == 1 + 2 + 1  # get_queue_url, 70 KB = 2 chunks, a small batch
    assert usage["requests.sqs"] == 3
    assert usage[rules.SECRETS_CALLS] == 1


def test_a_hook_that_fails_never_breaks_the_call(aws, meter, monkeypatch):
    from chalicelib.adapters.aws import client

    monkeypatch.setattr(adapter, "call_usage", lambda *a, **k: 1 / 0)
    ddb = adapter.instrument(client("dynamodb"))
    assert ddb.describe_table(TableName="socialcare-test-settings")["Table"]["TableName"] == "socialcare-test-settings"


def test_platform_answers_are_counted_by_channel(meter):
    from chalicelib.adapters.platforms.http import Response

    meter.start("send_replies", 256, "arm64")
    adapter.platform_call("POST", "https://api.x.com/2/tweets", json.dumps({"text": "Sorry!"}).encode(),
                          Response(status=201, headers={}, body={"data": {"id": "9"}}))
    adapter.platform_call("POST", "https://graph.facebook.com/v21.0/123/messages", json.dumps(WA_TEXT).encode(),
                          Response(status=200, headers={}, body={"messages": [{"id": "wamid.1"}]}))
    adapter.platform_call("POST", "https://graph.facebook.com/v21.0/456/comments", b"message=hi",
                          Response(status=200, headers={}, body={"id": "c"}))
    adapter.platform_call("GET", "https://api.x.com/2/users/1/mentions", None, object())  # unreadable: ignored
    pending = meter.pending()
    assert pending[("send_replies", "x")] == {rules.X_POSTS_CREATED: 1, "requests.x": 2}
    assert pending[("send_replies", "whatsapp")] == {rules.WHATSAPP_SERVICE: 1}
    assert pending[("send_replies", rules.SHARED)] == {"requests.graph": 2, rules.GRAPH_REQUESTS: 1}
    assert math.isclose(sum(pending[("send_replies", "x")].values()), 3)
