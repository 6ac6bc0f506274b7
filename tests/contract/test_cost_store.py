"""The cost store's contract, on the in-memory fake and on DynamoDB (moto, from infra/template.yaml) alike:
atomic adds per day x stage x function x channel, kinds with dots, a period read with one Query per month."""
from __future__ import annotations

import math

import pytest

from chalicelib.domain.metering import COUNTERS, DYNAMODB_WRITES, METERING_PREFIX, PRICED_KINDS, REQUESTS_PREFIX
from tests.fakes import FakeCostStore

TABLE = "socialcare-test-settings"


class QueryCounter:
    """Queries the DynamoDB store makes (the fake counts its own)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, **_: object) -> None:
        self.count += 1


@pytest.fixture(params=["fake", "dynamo"])
def costs(request):
    if request.param == "fake":
        store = FakeCostStore(stage="test")
        store.query_count = lambda: store.queries  # type: ignore[attr-defined]
        return store
    request.getfixturevalue("aws")
    from chalicelib.adapters.aws import client
    from chalicelib.adapters.cost_store import DynamoCostStore

    counter = QueryCounter()
    client("dynamodb").meta.events.register("before-call.dynamodb.Query", counter)
    store = DynamoCostStore(TABLE)
    store.query_count = lambda: counter.count  # type: ignore[attr-defined]
    return store


def test_adds_accumulate_per_item_and_kinds_with_dots_come_back(costs):
    costs.add_usage("2026-12-01", "triage_mentions", "x", {"lambda.requests": 1, "dynamodb.write_request_units": 4.5})
    costs.add_usage("2026-12-01", "triage_mentions", "x", {"lambda.requests": 2, "logs.ingested_gb": 3.9e-07})
    costs.add_usage("2026-12-01", "triage_mentions", "whatsapp", {"whatsapp.service_messages": 1})

    rows = costs.usage_rows("2026-12-01", "2026-12-01")

    assert [(r["day"], r["stage"], r["function"], r["channel"]) for r in rows] == [
        ("2026-12-01", "test", "triage_mentions", "whatsapp"), ("2026-12-01", "test", "triage_mentions", "x")]
    x = rows[1]["usage"]
    assert x["lambda.requests"] == 3
    assert x["dynamodb.write_request_units"] == 4.5
    assert math.isclose(x["logs.ingested_gb"], 3.9e-07, rel_tol=1e-12)
    assert rows[0]["usage"] == {"whatsapp.service_messages": 1}


def test_a_period_is_inclusive_in_day_order_across_months(costs):
    for day in ("2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02", "2027-01-01"):
        costs.add_usage(day, "fetch_mentions", "shared", {"lambda.requests": 1})

    assert [r["day"] for r in costs.usage_rows("2026-11-30", "2026-12-01")] == ["2026-11-30", "2026-12-01"]
    assert [r["day"] for r in costs.usage_rows("2026-11-01", "2027-01-31")] == [
        "2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02", "2027-01-01"]
    assert costs.usage_rows("2026-12-03", "2026-12-31") == []
    assert costs.usage_rows("2026-12-02", "2026-12-01") == []


def test_a_month_is_one_query_and_any_31_days_at_most_two(costs):
    costs.add_usage("2026-12-15", "api", "shared", {"apigateway.rest_requests": 1})
    before = costs.query_count()
    costs.usage_rows("2026-12-01", "2026-12-31")
    assert costs.query_count() - before == 1
    before = costs.query_count()
    costs.usage_rows("2026-11-16", "2026-12-16")
    assert costs.query_count() - before == 2


def test_names_holding_the_separator_cannot_shift_the_key(costs):
    costs.add_usage("2026-12-01", "send#replies", "x#y", {"x.dms_sent": 1})
    (row,) = costs.usage_rows("2026-12-01", "2026-12-01")
    assert (row["function"], row["channel"], row["stage"]) == ("send_replies", "x_y", "test")


@pytest.mark.parametrize("day, usage", [
    ("2026-12-32", {"lambda.requests": 1}), ("01-12-2026", {"lambda.requests": 1}),
    ("2026-12-01", {"lambda.requests": -1}), ("2026-12-01", {"lambda.requests": float("inf")}),
])
def test_bad_days_and_quantities_are_refused(costs, day, usage):
    with pytest.raises(ValueError):
        costs.add_usage(day, "api", "shared", usage)


def test_nothing_to_add_writes_nothing(costs):
    costs.add_usage("2026-12-01", "api", "shared", {"lambda.requests": 0})
    assert costs.usage_rows("2026-12-01", "2026-12-01") == []


# ---- the DynamoDB item itself ------------------------------------------------------------------------

def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def _item_size(item: dict) -> int:
    """DynamoDB's item size (names + values), as its documentation counts it, for S and N attributes."""
    size = 0
    for name, value in item.items():
        (kind, data), = value.items()
        size += len(name.encode("utf-8")) + (len(data.encode("utf-8")) if kind == "S" else _number_size(data))
    return size


def test_an_item_holding_every_kind_stays_under_1_kb_so_a_flush_write_is_one_unit(aws):
    """The flush rule's arithmetic (domain/metering.py) takes 1 WRU per item written."""
    from chalicelib.adapters.aws import client
    from chalicelib.adapters.cost_store import DynamoCostStore
    from chalicelib.domain.metering import stored_quantity

    worst = {kind: stored_quantity(1234.567891234 / 3) for kind in PRICED_KINDS + COUNTERS}
    worst.update({REQUESTS_PREFIX + s: 12345.0 for s in ("dynamodb", "sqs", "secretsmanager", "sns", "s3", "graph", "x")})
    worst[METERING_PREFIX + DYNAMODB_WRITES] = 123.0
    worst[METERING_PREFIX + REQUESTS_PREFIX + "dynamodb"] = 123.0
    DynamoCostStore(TABLE, stage="production").add_usage("2026-12-01", "triage_mentions", "instagram", worst)

    (item,) = client("dynamodb").query(TableName=TABLE, KeyConditionExpression="pk = :p",
                                       ExpressionAttributeValues={":p": {"S": "COST#2026-12"}})["Items"]
    assert len(item) == len(worst) + 2
    assert _item_size(item) < 1024, _item_size(item)
