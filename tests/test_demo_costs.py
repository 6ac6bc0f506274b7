"""The demo's cost summary (local/demo_costs.py): it names any service the demo used that shows no usage in
GET /reports/costs?group_by=service, and puts the AWS cost per mention beside bench/cost.py's."""
from __future__ import annotations

import pytest

from chalicelib.domain.cost import load_prices
from chalicelib.services import costs
from local import demo_costs
from tests.fakes import Clock, FakeCostStore, fake_deps

PRICES = load_prices("us-east-1", "arm64")
FINANCE_DAY = "2026-11-23"


def report(**extra_usage):
    """A day of the demo as the meter stores it: 100 mentions listened to and triaged, an agent's calls."""
    store = FakeCostStore()
    store.add_usage(FINANCE_DAY, "fetch_mentions", "x", {"lambda.requests": 30, "lambda.gb_seconds": 3,
                                                         "dynamodb.write_request_units": 60, "x.owned_reads": 40,
                                                         "requests.dynamodb": 60, "requests.x": 30})
    store.add_usage(FINANCE_DAY, "triage_mentions", "x", {"lambda.requests": 20, "lambda.gb_seconds": 2,
                                                          "sqs.requests": 40, "dynamodb.write_request_units": 300,
                                                          "requests.sqs": 40, "requests.dynamodb": 200,
                                                          "mentions_processed": 100})
    store.add_usage(FINANCE_DAY, "api", "shared", {"lambda.requests": 10, "apigateway.rest_requests": 10,
                                                   "dynamodb.read_request_units": 40, "requests.dynamodb": 20,
                                                   **extra_usage})
    deps = fake_deps(clock=Clock(f"{FINANCE_DAY}T12:00:00.000000Z"), costs=store)
    return costs.report_for({"from": FINANCE_DAY, "to": FINANCE_DAY, "group_by": "service"}, deps, prices=PRICES)


LISTEN_AWS = (50 * 0.20 / 1e6 + 5 * 0.0000133334 + 360 * 0.625 / 1e6 + 40 * 0.40 / 1e6) / 100  # per mention, by hand


def test_every_used_service_with_usage_and_the_per_mention_figure_beside_the_bench_s():
    answer = report()
    assert answer["per_mention_aws_usd"] == pytest.approx(LISTEN_AWS)
    lines = demo_costs.cost_summary(answer, bench_per_mention_usd=LISTEN_AWS * 1.5)
    assert "every service the demo used shows usage" in "\n".join(lines)
    per_mention = next(line for line in lines if "per mention" in line)
    assert f"${LISTEN_AWS * 1e6:,.2f} per million" in per_mention and "agrees with bench/cost.py" in per_mention
    assert any(line.strip().startswith("dynamodb") for line in lines)


def test_a_used_service_without_usage_is_named():
    # The meter counted SNS publishes (requests.sns) but no priced SNS usage reached the store.
    lines = demo_costs.cost_summary(report(**{"requests.sns": 3}), bench_per_mention_usd=LISTEN_AWS)
    assert "  ! used but no usage in the report: sns" in lines
    assert demo_costs.unmetered_services({"rows": []}, demo_costs.used_services({"requests": {"graph": 2}})) == [
        "apigateway", "lambda", "meta"]


def test_a_per_mention_figure_far_from_the_bench_s_is_flagged():
    flagged = demo_costs.per_mention_line(10e-6, 2e-6, 100)
    assert flagged.strip().startswith("AWS per mention") and "! 5.0x bench/cost.py's $2.00 per million" in flagged
    assert "no mention triaged yet" in demo_costs.per_mention_line(None, 2e-6, 0)


def test_an_unavailable_report_is_said_and_the_bench_figure_comes_from_the_profile():
    assert demo_costs.cost_summary({"error": 503, "message": "no cost store"}, 1e-5)[0].startswith(
        "cost report unavailable")
    from chalicelib.cost import load_profile
    from chalicelib.domain.cost import listen_aws_per_mention

    assert demo_costs.bench_per_mention() == pytest.approx(listen_aws_per_mention(load_profile(), PRICES))
    assert demo_costs.bench_per_mention("mars-1") is None
