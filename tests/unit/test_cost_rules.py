"""Cost arithmetic: priced rows a person can check, adding up; the price table as data; the month projected;
a planned month with its fixed costs apart. Pure: no AWS, no files."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest

from chalicelib.domain.cost import (
    CASE_LIFECYCLE,
    LISTEN,
    Plan,
    PriceError,
    UsageProfile,
    add_usage,
    cost_per,
    estimate_month,
    load_prices,
    merge_prices,
    price_usage,
    project_month,
    scale_usage,
    usage_per,
)
from chalicelib.domain.prices import PRICES

US, ARM = "us-east-1", "arm64"

# A counted workload: what 10,000 mentions (2,000 of them cases, each answered on X) consumed, counted call by call.
COUNTED = {
    "lambda.requests": 30_000,               # invocations
    "lambda.gb_seconds": 1_500,              # billed ms x memory
    "sqs.requests": 25_000,                  # 64 KB chunks
    "dynamodb.write_request_units": 420_000,
    "dynamodb.read_request_units": 180_000,
    "apigateway.rest_requests": 8_000,       # 4 agent calls per case
    "logs.ingested_gb": 0.8,
    "xray.traces_recorded": 30_000,
    "secretsmanager.api_calls": 2_000,
    "x.owned_reads": 6_000,                  # posts read from the brand's mentions
    "x.posts_created": 2_000,                # replies
}


def test_a_counted_workload_is_priced_as_a_hand_calculation_from_the_list_prices():
    # The list prices, us-east-1, arm64, written out from the pricing pages:
    #   Lambda        $0.20 per million requests; $0.0000133334 per GB-second (arm64)
    #   SQS           $0.40 per million requests
    #   DynamoDB      $0.625 per million write request units; $0.125 per million read request units
    #   API Gateway   $3.50 per million REST requests
    #   CloudWatch    $0.50 per GB of logs ingested
    #   X-Ray         $5.00 per million traces recorded
    #   Secrets Mgr   $0.05 per 10,000 API calls
    #   X API         $0.001 per owned read; $0.015 per post created
    hand = (30_000 * 0.20 / 1e6          # 0.006
            + 1_500 * 0.0000133334       # 0.0200001
            + 25_000 * 0.40 / 1e6        # 0.01
            + 420_000 * 0.625 / 1e6      # 0.2625
            + 180_000 * 0.125 / 1e6      # 0.0225
            + 8_000 * 3.50 / 1e6         # 0.028
            + 0.8 * 0.50                 # 0.40
            + 30_000 * 5.00 / 1e6        # 0.15
            + 2_000 * 0.05 / 10_000      # 0.01
            + 6_000 * 0.001              # 6.00
            + 2_000 * 0.015)             # 30.00
    assert hand == pytest.approx(36.9090001)
    bill = price_usage(COUNTED, load_prices(US, ARM))
    assert abs(bill.total_usd - hand) <= 0.10 * hand  # the bar; in fact the same to the cent:
    assert bill.total_usd == pytest.approx(hand, abs=1e-9)
    assert bill.platform_usd == pytest.approx(36.00)
    assert bill.aws_usd == pytest.approx(hand - 36.00)


def test_each_row_shows_its_usage_and_unit_price_and_the_rows_add_up_to_the_total():
    bill = price_usage(COUNTED, load_prices(US, ARM))
    assert [row.key for row in bill.rows] == sorted(COUNTED)
    writes = next(row for row in bill.rows if row.key == "dynamodb.write_request_units")
    shown = writes.to_dict()
    assert shown["quantity"] == 420_000 and shown["unit_usd"] == pytest.approx(0.625e-6)
    assert shown["price"] == "$0.625 per 1,000,000 write request units"
    assert shown["cost_usd"] == pytest.approx(0.2625) and shown["source"].startswith("https://")
    assert math.fsum(row.cost_usd for row in bill.rows) == bill.total_usd
    assert bill.by_service()["dynamodb"] == pytest.approx(0.285)


def test_rounded_rows_still_add_up_to_the_rounded_total():
    bill = price_usage({"lambda.requests": 1, "sqs.requests": 1, "dynamodb.read_request_units": 1,
                        "x.owned_reads": 3, "x.posts_created": 1}, load_prices(US, ARM))
    for places in (2, 4, 6):
        rows, total = bill.rounded(places)
        assert round(sum(rows), places) == total == round(bill.total_usd, places)
        assert all(abs(shown - row.cost_usd) < 10 ** -places for shown, row in zip(rows, bill.rows))


def test_architecture_and_region_change_the_price_of_the_same_usage():
    usage = {"lambda.gb_seconds": 1_000_000, "dynamodb.write_request_units": 1_000_000}
    arm = price_usage(usage, load_prices(US, "arm64")).total_usd
    x86 = price_usage(usage, load_prices(US, "x86_64")).total_usd
    tokyo = price_usage(usage, load_prices("ap-northeast-1", "arm64")).total_usd
    assert arm == pytest.approx(13.3334 + 0.625)
    assert x86 == pytest.approx(16.6667 + 0.625)
    assert tokyo == pytest.approx(13.3334 + 0.715)


def test_usage_nobody_priced_or_negative_usage_is_refused_not_dropped():
    prices = load_prices(US, ARM)
    with pytest.raises(PriceError, match="no price for 'dynamodb.scans'"):
        price_usage({"dynamodb.scans": 1}, prices)
    with pytest.raises(PriceError, match="negative"):
        price_usage({"sqs.requests": -1}, prices)
    assert price_usage({"sqs.requests": 0}, prices).rows == ()


def test_every_price_names_its_source_and_date_and_the_table_is_plain_json():
    assert json.loads(json.dumps(PRICES)) == PRICES
    entries = [*PRICES["platforms"].items()]
    for region in PRICES["aws"].values():
        entries += region.items()
    for market in PRICES["whatsapp"].values():
        entries += market.items()
    for key, entry in entries:
        assert entry["source"] and len(entry["as_of"]) == 10, key
        assert entry.get("estimate") is not True or entry.get("note"), f"{key}: an estimate says what it rests on"


def test_each_region_and_market_prices_the_same_kinds_of_usage():
    regions = PRICES["aws"]
    assert {"us-east-1", "ap-northeast-1"} <= set(regions)
    assert len({frozenset(r) for r in regions.values()}) == 1
    assert len({frozenset(m) for m in PRICES["whatsapp"].values()}) == 1


def test_an_override_replaces_whole_entries_and_may_add_a_region():
    override = {"aws": {US: {"dynamodb.write_request_units": {
        "usd": 1.25, "per": 1_000_000, "unit": "write request units", "source": "negotiated", "as_of": "2026-12-01"}},
        "eu-west-1": {**PRICES["aws"][US]}}}
    prices = load_prices(US, ARM, override=json.dumps(override))
    assert prices.price("dynamodb.write_request_units").unit_usd == pytest.approx(1.25e-6)
    assert prices.price("dynamodb.write_request_units").source == "negotiated"
    assert prices.price("dynamodb.read_request_units").unit_usd == pytest.approx(0.125e-6)  # untouched
    assert load_prices("eu-west-1", ARM, override=override).region == "eu-west-1"
    assert PRICES["aws"][US]["dynamodb.write_request_units"]["usd"] == 0.625  # the shipped table is not changed


@pytest.mark.parametrize("override, problem", [
    ("{not json", "not JSON"),
    ("[]", "JSON object"),
    ({"aws": {US: {"sqs.requests": {"usd": 0.5, "per": 1_000_000, "unit": "requests"}}}}, "lacks source, as_of"),
    ({"aws": {US: {"sqs.requests": {"usd": -1, "per": 1, "unit": "r", "source": "s", "as_of": "d"}}}}, "zero or more"),
    ({"aws": {US: {"sqs.requests": {"usd": 1, "per": 0, "unit": "r", "source": "s", "as_of": "d"}}}}, "positive"),
    ({"discounts": {}}, "unknown section"),
    ({"currency": "JPY"}, "USD"),
])
def test_a_bad_override_is_refused_with_its_reason(override, problem):
    with pytest.raises(PriceError, match=problem):
        load_prices(US, ARM, override=override)


def test_unknown_region_market_or_architecture_is_refused():
    with pytest.raises(PriceError, match="region 'mars-1'"):
        load_prices("mars-1", ARM)
    with pytest.raises(PriceError, match="market 'FR'"):
        load_prices(US, ARM, whatsapp_market="FR")
    with pytest.raises(PriceError, match="architecture"):
        load_prices(US, "sparc")
    assert "eu-west-1" in merge_prices(PRICES, {"aws": {"eu-west-1": {}}})["aws"]


def test_usage_per_mention_and_per_case():
    per_mention = usage_per({"sqs.requests": 25_000, "lambda.requests": 30_000}, 10_000)
    assert per_mention == {"sqs.requests": 2.5, "lambda.requests": 3.0}
    assert scale_usage(per_mention, 1_000_000)["sqs.requests"] == 2_500_000
    assert add_usage({"sqs.requests": 1}, {"sqs.requests": 2, "lambda.requests": 1}) == {"sqs.requests": 3,
                                                                                        "lambda.requests": 1}
    assert cost_per(12.0, 4_000) == pytest.approx(0.003)
    assert cost_per(12.0, 0) is None
    with pytest.raises(ValueError):
        usage_per(per_mention, 0)


def test_the_month_is_projected_from_the_days_elapsed():
    # 2026-11-10 12:00 UTC: 9.5 of November's 30 days; $19 of per-use cost so far; $6 of fixed cost a month.
    projection = project_month(19.0, datetime(2026, 11, 10, 12, tzinfo=timezone.utc), fixed_month_usd=6.0)
    assert projection.days_elapsed == pytest.approx(9.5) and projection.days_in_month == 30
    assert projection.projected_usd == pytest.approx(19.0 / 9.5 * 30 + 6.0)  # 66.00
    assert projection.month_to_date_usd == pytest.approx(19.0 + 6.0 * 9.5 / 30)
    february = project_month(28.0, datetime(2027, 2, 15))  # naive times are UTC; 14 of 28 days
    assert february.projected_usd == pytest.approx(56.0)
    first_minute = project_month(0.01, datetime(2026, 12, 1, 0, 0, 30, tzinfo=timezone.utc))
    assert math.isfinite(first_minute.projected_usd)
    in_tokyo = project_month(10.0, datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc).astimezone())
    assert in_tokyo.days_elapsed == pytest.approx(8 / 24)


PROFILE = UsageProfile(
    measured="2026-12-01", command="bench", architecture="arm64",
    per_mention={"lambda.requests": 1.0, "dynamodb.write_request_units": 4.0},
    webhook_per_pushed_mention={"apigateway.rest_requests": 1.0},
    per_case={"apigateway.rest_requests": 4.0, "dynamodb.write_request_units": 40.0},
    channel_share={"x": 0.5, "facebook": 0.5}, pushed_share={"x": 0.0, "facebook": 1.0},
    platform_per_mention={"x": {"x.owned_reads": 1.0}, "facebook": {"meta.graph_requests": 1.0}},
    platform_per_case={"x": {"x.posts_created": 1.0}, "facebook": {"meta.graph_requests": 1.0}},
    idle_poll_run={"lambda.requests": 1.0, "dynamodb.write_request_units": 8.0},
    token_refresh_run={"secretsmanager.api_calls": 1.0},
    stored_bytes_per_mention=1_000.0, stored_bytes_per_case=10_000.0, custom_metrics=6, alarms=19,
    x_dm_events_per_x_mention=0.1, x_users_per_dm_event=1.0,
)


def test_a_planned_month_is_priced_from_the_usage_per_mention_and_per_case():
    prices = load_prices(US, ARM)
    estimate = estimate_month(PROFILE, Plan(mentions_per_day=1_000, case_rate=0.2, agents=10,
                                            channels=("x", "facebook")), prices)
    parts = {part.label: part for part in estimate.parts}
    # 30,000 mentions, 6,000 cases; half the mentions pushed by Meta.
    assert (estimate.mentions, estimate.cases) == (30_000, 6_000)
    assert parts[LISTEN].bill.usage == {"lambda.requests": 30_000, "dynamodb.write_request_units": 120_000}
    assert parts[LISTEN].bill.total_usd == pytest.approx(30_000 * 0.20e-6 + 120_000 * 0.625e-6)
    assert parts["Meta webhooks: API Gateway"].bill.usage == {"apigateway.rest_requests": 15_000}
    assert parts[CASE_LIFECYCLE].bill.total_usd == pytest.approx(24_000 * 3.5e-6 + 240_000 * 0.625e-6)
    assert parts["platform APIs: reading"].bill.usage == {"x.owned_reads": 15_000, "meta.graph_requests": 15_000}
    assert parts["platform APIs: replies"].bill.usage == {"x.posts_created": 3_000, "meta.graph_requests": 3_000}
    # Fixed costs stand apart: a run of the schedule every minute, the secret, the alarms...
    fixed = {part.label: part.bill for part in estimate.parts if part.fixed}
    assert fixed["polling every minute, nothing new"].usage["lambda.requests"] == 43_200
    assert fixed["platform secret"].total_usd == pytest.approx(0.40)
    assert fixed["alarms"].total_usd == pytest.approx(1.90)
    assert fixed["agents' sign-ins"].usage == {"cognito.monthly_active_users": 10}
    # X lists the newest DM events every minute and bills them again each UTC day: 500 X mentions a day make
    # 50 DM events a day, 1,500 in X's 30-day window, of which the page holds 100: 100 x 30 days.
    assert fixed["X DMs read again each UTC day"].usage == {"x.dm_event_reads": 3_000, "x.user_reads": 3_000}
    assert estimate.total_usd == pytest.approx(estimate.per_use_usd + estimate.fixed_usd)
    assert estimate.total_usd == pytest.approx(estimate.aws_usd + estimate.platform_usd)
    assert estimate.per_agent_usd == pytest.approx(estimate.total_usd / 10)
    assert estimate.per_case_usd == pytest.approx(
        (parts[CASE_LIFECYCLE].bill.total_usd + parts["platform APIs: replies"].bill.total_usd) / 6_000)


def test_channels_left_out_cost_nothing_and_shares_are_rescaled():
    prices = load_prices(US, ARM)
    meta_only = estimate_month(PROFILE, Plan(mentions_per_day=1_000, case_rate=0.2, agents=2, channels=("facebook",)),
                               prices)
    keys = set(meta_only.usage())
    assert not any(key.startswith("x.") for key in keys)
    assert meta_only.usage()["apigateway.rest_requests"] == pytest.approx(30_000 + 6_000 * 4)  # every mention pushed
    assert "X DMs read again each UTC day" not in {part.label for part in meta_only.parts}
    nothing = estimate_month(PROFILE, Plan(mentions_per_day=0, case_rate=0.2, agents=1), prices)
    assert nothing.per_use_usd == pytest.approx(0) and nothing.fixed_usd > 0 and nothing.per_mention_usd is None


@pytest.mark.parametrize("plan", [
    dict(mentions_per_day=-1, case_rate=0.2, agents=1),
    dict(mentions_per_day=10, case_rate=1.2, agents=1),
    dict(mentions_per_day=10, case_rate=0.2, agents=0),
    dict(mentions_per_day=10, case_rate=0.2, agents=1, channels=("myspace",)),
])
def test_a_plan_that_makes_no_sense_is_refused(plan):
    with pytest.raises(ValueError):
        Plan(**plan)


def test_a_profile_round_trips_and_a_broken_one_is_named():
    assert UsageProfile.from_dict(json.loads(json.dumps(PROFILE.to_dict()))) == PROFILE
    with pytest.raises(ValueError, match="not a usage profile"):
        UsageProfile.from_dict({"measured": "today"})
