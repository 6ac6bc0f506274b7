"""The cost report through its two doors, on moto (the settings table from infra/template.yaml): the terminal
(``python -m chalicelib.cost report``, reading the store through ``chalicelib.bootstrap.deps()``) and
``GET /reports/costs`` (JSON and CSV, finance and supervisors only). Both print what the service computes."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import datetime, timezone

import pytest

from chalicelib.cost.__main__ import main

TABLE = "socialcare-test-settings"
TODAY = datetime.now(timezone.utc).date().isoformat()
MONEY = re.compile(r"\$([\d,]+\.\d+)")


def _usage():
    return [
        ("triage_mentions", "x", {"lambda.requests": 10, "lambda.gb_seconds": 1.5, "dynamodb.write_request_units": 40,
                                  "mentions_processed": 10}),
        ("api", "shared", {"lambda.requests": 8, "apigateway.rest_requests": 8, "dynamodb.read_request_units": 24}),
        ("send_replies", "x", {"x.posts_created": 2, "cases_opened": 2}),
    ]


@pytest.fixture
def stored(aws, monkeypatch):
    """Usage in the moto cost store today, and bootstrap.deps() returning a Deps that reads it."""
    from chalicelib import bootstrap
    from chalicelib.adapters.cost_store import DynamoCostStore

    store = DynamoCostStore(TABLE, stage="test")
    for function, channel, usage in _usage():
        store.add_usage(TODAY, function, channel, usage)
    wired = dataclasses.replace(bootstrap.build_deps(), costs=store)
    monkeypatch.setattr(bootstrap, "build_deps", lambda config=None: wired)
    bootstrap.deps.cache_clear()
    return wired


def run_cli(*args: str):
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def expected(deps, group_by: str):
    from chalicelib.domain.cost import load_prices
    from chalicelib.services import costs

    return costs.report_for({"from": TODAY, "to": TODAY, "group_by": group_by}, deps,
                            prices=load_prices("us-east-1", "arm64"))


def test_the_terminal_table_shows_the_rows_and_total_the_service_computes(stored):
    code, out, err = run_cli("--from", TODAY, "--to", TODAY, "--group-by", "function")
    assert (code, err) == (0, "")
    report = expected(stored, "function")
    lines = out.splitlines()
    for row in report["rows"]:
        line = next(line for line in lines if line.strip().startswith(row["key"] + " "))
        assert float(MONEY.findall(line)[-1].replace(",", "")) == pytest.approx(row["cost_usd"], abs=1e-6)
    total = next(line for line in lines if line.strip().startswith("total"))
    assert float(MONEY.findall(total)[-1]) == pytest.approx(report["total_usd"], abs=1e-6)
    assert report["total_usd"] == pytest.approx(
        10 * 0.2e-6 + 1.5 * 0.0000133334 + 40 * 0.625e-6 + 8 * 0.2e-6 + 8 * 3.5e-6 + 24 * 0.125e-6 + 2 * 0.015)


def test_json_and_csv_are_the_report_itself(stored):
    code, out, _ = run_cli("--from", TODAY, "--to", TODAY, "--group-by", "service", "--format", "json")
    assert code == 0
    shown = json.loads(out)
    assert shown["rows"] == expected(stored, "service")["rows"]
    assert shown["per_mention_usd"] == pytest.approx(expected(stored, "service")["per_mention_usd"])
    code, out, _ = run_cli("--from", TODAY, "--to", TODAY, "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "key,kind,quantity,unit,unit_price_usd,cost_usd"


def test_bad_input_and_a_missing_store_are_told_not_traced(stored, monkeypatch):
    from chalicelib import bootstrap

    code, _, err = run_cli("--from", "2026-13-01")
    assert code == 2 and "from is a day as YYYY-MM-DD" in err
    code, _, err = run_cli("--region", "mars-1")
    assert code == 2 and "no AWS prices for region 'mars-1'" in err
    monkeypatch.setattr(bootstrap, "build_deps", lambda config=None: dataclasses.replace(stored, costs=None))
    bootstrap.deps.cache_clear()
    code, _, err = run_cli()
    assert code == 1 and "cost metering is not set up" in err


# ---- GET /reports/costs -------------------------------------------------------------------------------

@pytest.fixture
def api(client, app_module, stored):
    return client


def test_finance_gets_the_report_as_json(api, app_module, stored):
    headers = app_module.agents.add("fin", [], role="finance")
    before = expected(stored, "channel")  # the request meters itself into the store once it has answered
    answer = api.http.get(f"/reports/costs?from={TODAY}&to={TODAY}&group_by=channel", headers=headers)
    assert answer.status_code == 200
    body = json.loads(answer.body)
    assert {row["key"] for row in body["rows"]} == {"shared", "x"}
    assert body["total_usd"] == pytest.approx(before["total_usd"])
    # The fixed parts come from the shipped usage profile: the idle polling is in the metered use, the secret not.
    fixed = {f["label"]: f for f in body["fixed_costs"]}
    assert fixed["polling every minute, nothing new"]["metered"] is True
    assert fixed["platform secret"]["metered"] is False and fixed["platform secret"]["monthly_usd"] == pytest.approx(0.40)
    assert body["fixed_monthly_usd"]["platform secret"] == pytest.approx(0.40)
    assert "polling every minute, nothing new" not in body["fixed_monthly_usd"]
    assert body["per_case_usd"] == pytest.approx((8 * 0.2e-6 + 8 * 3.5e-6 + 24 * 0.125e-6 + 2 * 0.015) / 2)


def test_a_supervisor_gets_csv(api, app_module):
    headers = app_module.agents.add("sue", ["care"], role="supervisor")
    answer = api.http.get(f"/reports/costs?from={TODAY}&to={TODAY}&format=csv", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(answer.body.decode())))
    assert lines[-1][0] == "total" and float(lines[-1][5]) > 0


def test_agents_are_refused_and_bad_parameters_explained(api, app_module):
    agent = app_module.agents.add("ann", ["care"])
    assert api.http.get("/reports/costs", headers=agent).status_code == 403
    finance = app_module.agents.add("fin", [], role="finance")
    answer = api.http.get("/reports/costs?group_by=team", headers=finance)
    assert answer.status_code == 400 and "group_by is one of" in json.loads(answer.body)["error"]
