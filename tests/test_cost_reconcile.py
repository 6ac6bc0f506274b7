"""``python -m chalicelib.cost reconcile``: the report beside Cost Explorer, service by service.

On moto (the settings table from infra/template.yaml, moto's Cost Explorer answering what the test configured
through moto's API), and with a stand-in client for what moto cannot play: Cost Explorer not enabled, no
permission. The comparison itself (``domain/reconcile.py``) is checked on plain figures."""
from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime, timezone

import pytest

from chalicelib.cost.__main__ import EXIT_DIFFER, EXIT_UNAVAILABLE, main
from chalicelib.domain.reconcile import reconcile

TABLE = "socialcare-test-settings"
TODAY = datetime.now(timezone.utc).date().isoformat()


# ---- the comparison ------------------------------------------------------------------------------------

def test_services_are_matched_under_cost_explorer_s_names_and_platforms_left_out():
    result = reconcile({"lambda": 1.00, "logs": 0.30, "cloudwatch": 0.20, "x": 5.00, "dynamodb": 2.00},
                       {"AWS Lambda": 1.05, "AmazonCloudWatch": 0.50, "Amazon DynamoDB": 1.90, "Tax": 0.40})
    lines = {line.service: line for line in result.lines}
    assert set(lines) == {"AWS Lambda", "AmazonCloudWatch", "Amazon DynamoDB"}  # X is not on the AWS bill
    assert lines["AmazonCloudWatch"].report_usd == pytest.approx(0.50)           # logs and metrics are one service
    assert result.report_usd == pytest.approx(3.50) and result.explorer_usd == pytest.approx(3.45)
    assert result.not_compared == {"Tax": 0.40}
    assert result.agrees() and result.verdict.startswith("AGREE")


def test_a_service_off_by_more_than_the_tolerance_is_named():
    result = reconcile({"lambda": 1.00, "dynamodb": 2.00}, {"AWS Lambda": 1.00, "Amazon DynamoDB": 4.00})
    assert not result.agrees()
    assert result.verdict.startswith("DIFFER") and "Amazon DynamoDB" in result.verdict
    assert "AWS Lambda" not in result.verdict.split("look first at")[1]
    # Cents are noise: a few cents off on a tiny service still agrees.
    assert reconcile({"sqs": 0.004}, {"Amazon Simple Queue Service": 0.011}).agrees()


def test_nothing_under_the_tag_is_explained():
    assert "activate the tag" in reconcile({"lambda": 1.0}, {}).verdict
    assert "nothing to compare" in reconcile({}, {}).verdict


# ---- the command, on moto -----------------------------------------------------------------------------

@pytest.fixture
def stored(aws, monkeypatch):
    """A day of metered usage in the moto cost store, and bootstrap.deps() reading it."""
    from chalicelib import bootstrap
    from chalicelib.adapters.cost_store import DynamoCostStore

    store = DynamoCostStore(TABLE, stage="test")
    store.add_usage(TODAY, "triage_mentions", "x", {"lambda.requests": 100_000, "lambda.gb_seconds": 20_000,
                                                    "dynamodb.write_request_units": 400_000, "mentions_processed": 1000})
    store.add_usage(TODAY, "api", "shared", {"apigateway.rest_requests": 50_000, "dynamodb.read_request_units": 80_000})
    wired = dataclasses.replace(bootstrap.build_deps(), costs=store)
    monkeypatch.setattr(bootstrap, "build_deps", lambda config=None: wired)
    bootstrap.deps.cache_clear()
    return wired


def explorer_answers(amounts):
    """What moto's Cost Explorer answers the next get_cost_and_usage (configured through moto's own API)."""
    import requests

    groups = [{"Keys": [service], "Metrics": {"UnblendedCost": {"Amount": str(usd), "Unit": "USD"}}}
              for service, usd in amounts.items()]
    result = {"ResultsByTime": [{"TimePeriod": {"Start": TODAY, "End": TODAY}, "Total": {}, "Groups": groups,
                                 "Estimated": True}]}
    answer = requests.post("http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results",
                           json={"results": [result]}, timeout=10)
    assert answer.status_code == 201


def run(*args, cost_explorer=None):
    out, err = io.StringIO(), io.StringIO()
    code = main(["reconcile", "--from", TODAY, "--to", TODAY, *args], stdout=out, stderr=err,
                cost_explorer=cost_explorer)
    return code, out.getvalue(), err.getvalue()


# The report's side, by hand: the metered use at list prices (us-east-1, arm64) ...
LAMBDA = 100_000 * 0.20 / 1e6 + 20_000 * 0.0000133334                     # $0.02 requests + $0.266668 GB-s
DYNAMODB = 400_000 * 0.625 / 1e6 + 80_000 * 0.125 / 1e6                   # $0.25 writes + $0.01 reads
APIGATEWAY = 50_000 * 3.50 / 1e6                                          # $0.175
# ... plus a day (1/30) of the fixed costs the meter never sees: 29 alarms at $0.10 and 5 metrics at $0.30,
# the secret at $0.40, Lambda's idle SQS pollers (3 queues x 5 pollers x 3 receives a minute at $0.40 a million).
CLOUDWATCH = (29 * 0.10 + 5 * 0.30) / 30
SECRET = 0.40 / 30
SQS = 3 * 5 * 3 * 60 * 24 * 30 * 0.40 / 1e6 / 30


def test_the_report_and_cost_explorer_agree_within_10_percent(stored):
    explorer_answers({"AWS Lambda": LAMBDA * 1.04, "Amazon DynamoDB": DYNAMODB * 0.97, "Amazon API Gateway": APIGATEWAY,
                      "AmazonCloudWatch": CLOUDWATCH, "AWS Secrets Manager": SECRET,
                      "Amazon Simple Queue Service": SQS, "Tax": 0.07})
    code, out, err = run("--json")
    assert (code, err) == (0, "")
    shown = json.loads(out)
    lines = {line["service"]: line for line in shown["lines"]}
    assert lines["AWS Lambda"]["report_usd"] == pytest.approx(LAMBDA, rel=1e-6)
    assert lines["Amazon DynamoDB"]["report_usd"] == pytest.approx(DYNAMODB, rel=0.01)  # + the day's storage, tiny
    assert lines["Amazon API Gateway"]["report_usd"] == pytest.approx(APIGATEWAY)
    assert lines["AmazonCloudWatch"]["report_usd"] == pytest.approx(CLOUDWATCH, rel=0.01)
    assert lines["AWS Secrets Manager"]["report_usd"] == pytest.approx(SECRET)
    assert lines["Amazon Simple Queue Service"]["report_usd"] == pytest.approx(SQS)
    assert lines["AWS Lambda"]["explorer_usd"] == pytest.approx(LAMBDA * 1.04)
    assert shown["agrees"] is True and shown["not_compared"] == {"Tax": pytest.approx(0.07)}
    assert shown["tags"] == {"project": "socialcare", "stage": "test"}


def test_a_difference_is_printed_with_its_service_and_a_failing_exit(stored):
    # Lambda billed three times what the meter saw: the totals differ by far more than the 10 % (the fixed
    # costs Cost Explorer shows nothing for here are a few per cent of the day).
    explorer_answers({"AWS Lambda": LAMBDA * 3, "Amazon DynamoDB": DYNAMODB, "Amazon API Gateway": APIGATEWAY})
    code, out, _ = run()
    assert code == EXIT_DIFFER
    lambda_line = next(line for line in out.splitlines() if line.strip().startswith("AWS Lambda"))
    assert f"${LAMBDA:,.4f}" in lambda_line and f"${LAMBDA * 3:,.4f}" in lambda_line and lambda_line.endswith("<-")
    assert "DIFFER" in out and "look first at AWS Lambda" in out and "free tier" in out


class Explorer:
    """A Cost Explorer client that records what it is asked and answers as told (pages, or an error)."""

    def __init__(self, pages=None, error=None):
        self.pages, self.error, self.calls = list(pages or []), error, []

    def get_cost_and_usage(self, **kwargs):
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return self.pages.pop(0)


def _client_error(code, message):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, "GetCostAndUsage")


def test_the_request_filters_by_both_tags_groups_by_service_and_reads_every_page(stored):
    def page(service, usd, token=None):
        answer = {"ResultsByTime": [{"Groups": [{"Keys": [service], "Metrics": {"UnblendedCost": {"Amount": str(usd)}}}]}]}
        return {**answer, "NextPageToken": token} if token else answer

    explorer = Explorer(pages=[page("AWS Lambda", LAMBDA / 2, token="next"), page("AWS Lambda", LAMBDA / 2)])
    code, out, _ = run("--tag-value", "prod", "--json", cost_explorer=explorer)
    assert json.loads(out)["lines"][0]["explorer_usd"] == pytest.approx(LAMBDA)
    first, second = explorer.calls
    assert first["TimePeriod"]["Start"] == TODAY and first["TimePeriod"]["End"] > TODAY  # the end is exclusive
    assert first["GroupBy"] == [{"Type": "DIMENSION", "Key": "SERVICE"}]
    tags = {(e["Tags"]["Key"], tuple(e["Tags"]["Values"])) for e in first["Filter"]["And"]}
    assert tags == {("project", ("socialcare",)), ("stage", ("prod",))}
    assert second["NextPageToken"] == "next"
    assert code == EXIT_DIFFER  # the other services are missing on Cost Explorer's side


@pytest.mark.parametrize("code, message, words", [
    ("AccessDeniedException", "User not enabled for cost explorer access", "Cost Explorer is not enabled"),
    ("AccessDeniedException", "User: arn:aws:iam::1:user/x is not authorized to perform: ce:GetCostAndUsage",
     "needs ce:GetCostAndUsage"),
    ("DataUnavailableException", "Data is not available", "no data for this period yet"),
])
def test_cost_explorer_unavailable_is_told_not_traced(stored, code, message, words):
    exit_code, out, err = run(cost_explorer=Explorer(error=_client_error(code, message)))
    assert exit_code == EXIT_UNAVAILABLE and out == ""
    assert words in err and "Traceback" not in err


def test_bad_periods_are_refused_before_asking_cost_explorer(stored):
    explorer = Explorer()
    out, err = io.StringIO(), io.StringIO()
    code = main(["reconcile", "--from", "2026-12-31", "--to", "2026-12-01"], stdout=out, stderr=err,
                cost_explorer=explorer)
    assert code == 2 and "is after to" in err.getvalue() and explorer.calls == []
