"""The cost report: a known, counted workload within 10 % of a hand calculation from list prices; rows that add
up to the total in every grouping and in CSV; per mention and per case; the month projected with its fixed costs
apart; the budget; who may see it and which parameters it takes."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from chalicelib.cost import load_profile
from chalicelib.domain import metering as rules
from chalicelib.domain.agent import Agent
from chalicelib.domain.cost import load_prices
from chalicelib.domain.errors import BadRequest, Forbidden, Unavailable
from chalicelib.domain.metering import UsageMeter
from chalicelib.services import costs
from tests.fakes import Clock, FakeCostStore, fake_deps

ROOT = Path(__file__).resolve().parents[2]
PRICES = load_prices("us-east-1", "arm64")          # WhatsApp market JP
FINANCE = Agent(agent_id="fin", role="finance")
SUPERVISOR = Agent(agent_id="sup", role="supervisor", teams=["care"])
AGENT = Agent(agent_id="ann", role="agent", teams=["care"])
DAY = "2026-11-10"
NOW = "2026-11-23T03:00:00.000000Z"                 # 22.125 days into a 30-day month


def _run(meter: UsageMeter, function: str, memory_mb: int, ms: float, times: int, *, http: bool = False,
         scheduled: bool = False, **usage: float) -> None:
    """``times`` invocations, each consuming ``usage`` (``dynamodb__read_request_units`` or ``("x", kind)``)."""
    for _ in range(times):
        meter.start(function, memory_mb, "arm64", http=http, scheduled=scheduled)
        for name, quantity in usage.items():
            channel, _, kind = name.partition("__") if name.startswith(("x__", "whatsapp__")) else ("", "", name)
            meter.add(kind.replace("__", "."), quantity, channel=channel or None)
        meter.finish(ms)


def counted_workload() -> FakeCostStore:
    """One day: 100 idle-ish polls, 100 mentions in 20 batches, 20 cases, 80 agent API calls, 20 replies."""
    meter = UsageMeter()
    _run(meter, "fetch_mentions", 256, 150, 100, scheduled=True, dynamodb__read_request_units=4,
         dynamodb__write_request_units=2, meta__graph_requests=6, x__x__owned_reads=1)
    _run(meter, "triage_mentions", 256, 300, 20, sqs__requests=3, dynamodb__write_request_units=20,
         dynamodb__read_request_units=5, x__mentions_processed=3, whatsapp__mentions_processed=2)
    _run(meter, "assign_cases", 256, 200, 20, dynamodb__write_request_units=10, dynamodb__read_request_units=5,
         cases_opened=1)
    _run(meter, "api", 1024, 60, 80, http=True, dynamodb__read_request_units=4)
    _run(meter, "send_replies", 256, 400, 12, sqs__requests=2, dynamodb__write_request_units=6, x__x__posts_created=1)
    _run(meter, "send_replies", 256, 400, 8, sqs__requests=2, dynamodb__write_request_units=6,
         whatsapp__whatsapp__service_messages=1)
    store = FakeCostStore(stage="prod")
    for function, channel, usage in meter.take():
        store.add_usage(DAY, function, channel, usage)
    return store


# The same workload by hand, at the list prices (us-east-1, arm64, WhatsApp Japan), from the pricing pages:
#   Lambda       $0.20 per million requests; $0.0000133334 per GB-second (arm64)
#   DynamoDB     $0.125 per million read units; $0.625 per million write units
#   SQS          $0.40 per million requests;  API Gateway REST $3.50 per million requests
#   CloudWatch   $0.50 per GB of logs ingested (Lambda's own 420 bytes per invocation)
#   X            $0.001 per owned read; $0.015 per post created;  WhatsApp Japan $0.0113 per service message
INVOCATIONS = 100 + 20 + 20 + 80 + 20
GB_SECONDS = 100 * 0.150 * 0.25 + 20 * 0.300 * 0.25 + 20 * 0.200 * 0.25 + 80 * 0.060 * 1.0 + 20 * 0.400 * 0.25
READS = 100 * 4 + 20 * 5 + 20 * 5 + 80 * 4
WRITES = 100 * 2 + 20 * 20 + 20 * 10 + 20 * 6
SQS = 20 * 3 + 20 * 2
HAND_AWS = (INVOCATIONS * 0.20 / 1e6 + GB_SECONDS * 0.0000133334 + READS * 0.125 / 1e6 + WRITES * 0.625 / 1e6
            + SQS * 0.40 / 1e6 + 80 * 3.50 / 1e6 + INVOCATIONS * 420 / 1024 ** 3 * 0.50)
HAND_PLATFORM = 100 * 0.001 + 12 * 0.015 + 8 * 0.0113
HAND_LISTEN = (120 * 0.20 / 1e6 + (100 * 0.150 + 20 * 0.300) * 0.25 * 0.0000133334 + (100 * 4 + 20 * 5) * 0.125 / 1e6
               + (100 * 2 + 20 * 20) * 0.625 / 1e6 + 20 * 3 * 0.40 / 1e6 + 120 * 420 / 1024 ** 3 * 0.50 + 100 * 0.001)


def report(group_by: str = "service", store=None, **kwargs):
    deps = fake_deps(clock=Clock(NOW), costs=store if store is not None else counted_workload())
    params = {"from": "2026-11-01", "to": "2026-11-23", "group_by": group_by, **kwargs.pop("params", {})}
    return costs.cost_report(FINANCE, params, deps, prices=PRICES, **kwargs)


def test_a_counted_workload_is_within_10_percent_of_the_hand_calculation():
    answer = report()
    assert answer["aws_usd"] == pytest.approx(HAND_AWS, rel=0.10)
    assert answer["platform_usd"] == pytest.approx(HAND_PLATFORM, rel=0.10)
    assert answer["total_usd"] == pytest.approx(HAND_AWS + HAND_PLATFORM, rel=0.10)
    assert answer["mentions_processed"] == 100 and answer["cases_opened"] == 20
    assert answer["per_mention_usd"] == pytest.approx(HAND_LISTEN / 100, rel=0.10)
    assert answer["per_case_usd"] == pytest.approx((HAND_AWS + HAND_PLATFORM - HAND_LISTEN) / 20, rel=0.10)


@pytest.mark.parametrize("group_by", costs.GROUPS)
def test_rows_add_up_to_the_total_and_each_row_to_its_kinds(group_by):
    answer = report(group_by)
    assert math.fsum(row["cost_usd"] for row in answer["rows"]) == pytest.approx(answer["total_usd"], rel=1e-12)
    assert answer["aws_usd"] + answer["platform_usd"] == pytest.approx(answer["total_usd"], rel=1e-12)
    for row in answer["rows"]:
        assert math.fsum(u["cost_usd"] for u in row["usage"].values()) == pytest.approx(row["cost_usd"], rel=1e-12)
        for used in row["usage"].values():
            assert used["quantity"] * used["unit_price_usd"] == pytest.approx(used["cost_usd"], rel=1e-12)


def test_groups_are_named_by_their_key():
    by_service = {r["key"]: r["cost_usd"] for r in report("service")["rows"]}
    assert set(by_service) == {"apigateway", "dynamodb", "eventbridge", "lambda", "logs", "meta", "sqs", "x", "whatsapp"}
    # Free things are shown, at no cost, so a reader sees they were used: the schedule's events, Graph's requests.
    assert by_service["eventbridge"] == 0 and by_service["meta"] == 0
    assert {r["key"] for r in report("channel")["rows"]} == {"shared", "x", "whatsapp"}
    assert [r["key"] for r in report("day")["rows"]] == [DAY]
    assert [r["key"] for r in report("stage")["rows"]] == ["prod"]
    by_function = {r["key"]: r for r in report("function")["rows"]}
    assert by_function["api"]["usage"]["apigateway.rest_requests"]["quantity"] == 80
    assert by_function["fetch_mentions"]["usage"]["meta.graph_requests"]["quantity"] == 600


def test_the_month_is_projected_at_its_pace_with_the_fixed_costs_apart():
    answer = report()
    fixed = 1 * 0.40 + 29 * 0.10 + 5 * 0.30        # the secret, the alarms, the custom metrics
    assert sum(answer["fixed_monthly_usd"].values()) == pytest.approx(fixed)
    elapsed = 22 + 3 / 24
    assert answer["projected_month_usd"] == pytest.approx(answer["total_usd"] * 30 / elapsed + fixed)
    assert answer["month_to_date_usd"] == pytest.approx(answer["total_usd"] + fixed * elapsed / 30)


def test_the_month_is_read_apart_when_the_period_is_another():
    november = report()
    store = counted_workload()
    store.add_usage("2026-10-31", "api", "shared", {"apigateway.rest_requests": 1_000_000})
    october = report(store=store, params={"from": "2026-10-31", "to": "2026-10-31"})
    assert october["total_usd"] == pytest.approx(3.50)
    assert october["month_to_date_usd"] == pytest.approx(november["month_to_date_usd"])
    assert october["projected_month_usd"] == pytest.approx(november["projected_month_usd"])


def test_the_budget_warns_when_the_projection_passes_it():
    assert report(budget_usd=1.0)["over_budget"] is True
    assert "over the budget of $1.00" in report(budget_usd=1.0)["budget_warning"]
    assert report(budget_usd=100.0)["over_budget"] is False
    assert report()["over_budget"] is None


def test_the_budget_shows_its_share_used_and_says_when_the_month_to_date_already_passed_it():
    answer = report(budget_usd=100.0)
    assert answer["budget_used_share"] == pytest.approx(answer["month_to_date_usd"] / 100.0)
    assert answer["budget_warning"] is None
    spent = report(budget_usd=answer["month_to_date_usd"] / 2)
    assert spent["over_budget"] is True and "already over the budget" in spent["budget_warning"]
    assert "200% of it" in spent["budget_warning"]
    assert report()["budget_used_share"] is None
    assert "WARNING: the month to date" in costs.render_report(spent)


PROFILE = load_profile()


def test_with_the_bench_profile_every_fixed_part_is_shown_and_only_the_unmetered_ones_are_added():
    answer = report(profile=PROFILE)
    fixed = {f["label"]: f for f in answer["fixed_costs"]}
    # The estimate's fixed parts: polling and the X schedules are metered as use already; the rest is not.
    assert {label for label, f in fixed.items() if f["metered"]} == {
        "polling every minute, nothing new", "X token refresh every 30 minutes", "X DMs read again each UTC day"}
    assert {"SQS long polls by Lambda, queues idle", "platform secret", "alarms", "custom metrics",
            "storage added this month"} <= {label for label, f in fixed.items() if not f["metered"]}
    assert fixed["alarms"]["monthly_usd"] == pytest.approx(29 * 0.10)       # the template's alarms, not the bench's
    assert fixed["SQS long polls by Lambda, queues idle"]["monthly_usd"] == pytest.approx(3 * 5 * 3 * 43_200 * 0.40e-6)
    unmetered = math.fsum(f["monthly_usd"] for f in fixed.values() if not f["metered"])
    elapsed = 22 + 3 / 24
    assert answer["projected_month_usd"] == pytest.approx(answer["total_usd"] * 30 / elapsed + unmetered)
    # The polling's share of the period is the fixed part of the use, never more than the schedules cost.
    scheduled = report("function", profile=PROFILE)["rows"]
    fetch = next(row["cost_usd"] for row in scheduled if row["key"] == "fetch_mentions")
    assert 0 < answer["fixed_in_use_usd"] <= fetch
    assert answer["per_use_usd"] + answer["fixed_in_use_usd"] == pytest.approx(answer["total_usd"])
    text = costs.render_report(answer)
    assert "* polling every minute, nothing new" in text and "  SQS long polls by Lambda" in text


def test_metering_s_own_cost_is_shown_and_unpriced_kinds_are_listed_not_dropped():
    store = FakeCostStore()
    store.add_usage("2026-11-10", "api", "shared", {"dynamodb.write_request_units": 10,
                                                    "metering.dynamodb.write_request_units": 2,
                                                    "requests.dynamodb": 12, "newservice.calls": 5})
    answer = report(store=store)
    assert answer["metering_usd"] == pytest.approx(2 * 0.625 / 1e6)
    assert answer["metering_share"] == pytest.approx(2 / 8)
    assert answer["requests"] == {"dynamodb": 12}
    assert answer["unpriced"] == {"newservice.calls": 5}


def test_csv_lines_add_up_to_the_total():
    answer = report("function")
    lines = list(csv.reader(io.StringIO(costs.report_csv(answer))))
    assert lines[0] == list(costs.CSV_COLUMNS)
    assert lines[-1][0] == "total"
    assert math.fsum(float(line[5]) for line in lines[1:-1]) == pytest.approx(float(lines[-1][5]), rel=1e-8)


def test_the_table_s_shown_costs_add_up_to_its_shown_total():
    shown, total = costs.rounded([0.3333334, 0.3333333, 0.3333333], 2)
    assert shown == [0.34, 0.33, 0.33] and total == 1.0
    text = costs.render_report(report())
    assert "total" in text and "per mention" in text and "fixed each month" in text


# ---- who, and which parameters --------------------------------------------------------------------------

def test_finance_and_supervisors_see_costs_agents_do_not():
    deps = fake_deps(clock=Clock(NOW), costs=FakeCostStore())
    assert costs.cost_report(SUPERVISOR, {}, deps, prices=PRICES)["total_usd"] == 0
    assert costs.cost_report(FINANCE, {}, deps, prices=PRICES)["from"] == "2026-11-01"
    with pytest.raises(Forbidden):
        costs.cost_report(AGENT, {}, deps, prices=PRICES)


@pytest.mark.parametrize("params, words", [
    ({"form": "2026-11-01"}, "unknown parameter(s) form"),
    ({"from": "2026-11-31"}, "from is a day as YYYY-MM-DD"),
    ({"from": "2026-1-1"}, "from is a day as YYYY-MM-DD"),
    ({"from": "2026-11-20", "to": "2026-11-10"}, "is after to"),
    ({"from": "2025-01-01", "to": "2026-11-10"}, "at most 366 days"),
    ({"group_by": "team"}, "group_by is one of day, function, service, channel, stage"),
    ({"format": "xlsx"}, "format is json or csv"),
])
def test_bad_parameters_get_a_clear_400(params, words):
    deps = fake_deps(clock=Clock(NOW), costs=FakeCostStore())
    with pytest.raises(BadRequest) as refused:
        costs.cost_report(FINANCE, params, deps, prices=PRICES)
    assert words in str(refused.value)


def test_without_a_cost_store_the_report_says_so():
    with pytest.raises(Unavailable):
        costs.cost_report(FINANCE, {}, fake_deps(clock=Clock(NOW), costs=None), prices=PRICES)


def test_the_fixed_alarms_are_those_of_the_template():
    alarms = (ROOT / "infra" / "template.yaml").read_text().count("Type: AWS::CloudWatch::Alarm")
    assert costs.FIXED_MONTHLY_USAGE["alarms"] == {"cloudwatch.alarms": alarms}
    assert {kind for usage in costs.FIXED_MONTHLY_USAGE.values() for kind in usage} <= set(PRICES.prices)


def test_counters_attribute_meter_kinds_to_channels():
    """The workload's counters land where the meter put them (sanity of the fixture the hand calculation uses)."""
    rows = counted_workload().usage_rows(DAY, DAY)
    by = {(r["function"], r["channel"]): r["usage"] for r in rows}
    assert by[("triage_mentions", "x")][rules.MENTIONS_PROCESSED] == 60
    assert by[("triage_mentions", "whatsapp")][rules.MENTIONS_PROCESSED] == 40
    assert by[("send_replies", "whatsapp")][rules.WHATSAPP_SERVICE] == 8
