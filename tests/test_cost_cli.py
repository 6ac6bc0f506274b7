"""``python -m chalicelib.cost``, run in process: what it prints is what the cost rules compute, row by row;
and ``bench/cost.py`` writes a usage profile the command prices (a small run on moto)."""
from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
from pathlib import Path

import pytest

from chalicelib.cost import load_profile
from chalicelib.cost.__main__ import main
from chalicelib.domain.cost import LISTEN, Plan, estimate_month, load_prices

ROOT = Path(__file__).resolve().parent.parent
PLAN = ("--mentions-per-day", "1000", "--case-rate", "20%", "--agents", "10")
MONEY = re.compile(r"\$([\d,]+\.\d+)")
ROW = re.compile(r"^    (?P<key>[a-z0-9_]+\.[a-z0-9_.]+)\s+(?P<quantity>[\d,.e+-]+)\s+\$(?P<usd>[\d.]+) per "
                 r"(?:(?P<per>[\d,]+) )?.*?\$(?P<cost>[\d,]+\.\d+)$")


def run_cli(*args: str):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def amount(text: str, label: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(label))
    return float(MONEY.findall(line)[0 if label == "Per agent" else -1].replace(",", ""))


def rows(text: str):
    return [match.groupdict() for match in map(ROW.match, text.splitlines()) if match]


def test_the_estimate_prints_the_totals_the_cost_rules_compute():
    code, out, err = run_cli("estimate", *PLAN)
    assert code == 0, err
    expected = estimate_month(load_profile(), Plan(mentions_per_day=1000, case_rate=0.2, agents=10),
                              load_prices("us-east-1", "arm64"))
    places = 2 if expected.total_usd >= 100 else 4
    assert amount(out, "Total") == round(expected.total_usd, places)
    assert amount(out, "Per agent") == round(expected.per_agent_usd, 2)
    assert "per-seat tools: $39-$399 per agent per month" in out
    assert f"per mention ${expected.per_mention_usd:,.6f}, per case ${expected.per_case_usd:,.6f}" in out
    assert "Fixed (whatever the traffic)" in out and "polling every minute" in out


def test_every_printed_row_can_be_checked_by_hand_and_the_rows_add_up_to_the_total():
    _, out, _ = run_cli("estimate", *PLAN)
    printed = rows(out)
    assert len(printed) > 20
    places = len(printed[0]["cost"].split(".")[1])
    for row in printed:
        quantity = float(row["quantity"].replace(",", ""))
        unit_price = float(row["usd"]) / float((row["per"] or "1").replace(",", ""))
        # The quantity is shown to 4 significant digits when small: allow for that, and for rounding to the cent.
        assert float(row["cost"].replace(",", "")) == pytest.approx(quantity * unit_price, rel=1e-3,
                                                                    abs=10 ** -places), row
    assert round(sum(float(r["cost"].replace(",", "")) for r in printed), places) == amount(out, "Total")


def test_json_output_carries_every_row_and_the_same_total():
    _, out, _ = run_cli("estimate", *PLAN, "--json")
    data = json.loads(out)
    expected = estimate_month(load_profile(), Plan(mentions_per_day=1000, case_rate=0.2, agents=10),
                              load_prices("us-east-1", "arm64"))
    assert data["total_usd"] == pytest.approx(expected.total_usd)
    assert sum(part["total_usd"] for part in data["parts"]) == pytest.approx(data["total_usd"])
    listen = next(part for part in data["parts"] if part["label"] == LISTEN)
    assert {row["key"] for row in listen["rows"]} >= {"dynamodb.write_request_units", "lambda.requests", "sqs.requests"}


def test_a_price_override_file_changes_exactly_the_rows_it_prices(tmp_path):
    entry = {"usd": 1.25, "per": 1_000_000, "unit": "write request units", "source": "our negotiated rate",
             "as_of": "2026-12-01"}
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"aws": {"us-east-1": {"dynamodb.write_request_units": entry}}}))
    _, before, _ = run_cli("estimate", *PLAN, "--json")
    _, after, _ = run_cli("estimate", *PLAN, "--json", "--prices-override", str(override))
    before_data, after_data = json.loads(before), json.loads(after)
    writes = sum(row["quantity"] for part in before_data["parts"] for row in part["rows"]
                 if row["key"] == "dynamodb.write_request_units")
    assert writes > 0
    assert after_data["total_usd"] - before_data["total_usd"] == pytest.approx(writes * (1.25 - 0.625) / 1e6)


def test_channels_left_out_are_not_priced():
    _, out, _ = run_cli("estimate", *PLAN, "--channels", "facebook,instagram,messenger")
    assert not [row for row in rows(out) if row["key"].startswith(("x.", "whatsapp."))]
    _, everything, _ = run_cli("estimate", *PLAN)
    assert amount(out, "Total") < amount(everything, "Total")


def test_tokyo_prices_the_same_usage_higher():
    _, tokyo, _ = run_cli("estimate", *PLAN, "--region", "ap-northeast-1", "--json")
    _, virginia, _ = run_cli("estimate", *PLAN, "--json")
    assert json.loads(tokyo)["aws_usd"] > json.loads(virginia)["aws_usd"]
    assert json.loads(tokyo)["region"] == "ap-northeast-1"


@pytest.mark.parametrize("args, message", [
    (("estimate", "--mentions-per-day", "10", "--case-rate", "150%", "--agents", "1"), "share from 0 to 1"),
    (("estimate", "--mentions-per-day", "10", "--case-rate", "0.2", "--agents", "1", "--channels", "myspace"),
     "channels are some of"),
    (("estimate", "--mentions-per-day", "10", "--case-rate", "0.2"), "--agents"),
])
def test_bad_arguments_are_refused_with_usage(args, message, capsys):
    code, out, _ = run_cli(*args)
    assert code == 2 and out == ""
    assert message in capsys.readouterr().err


def test_bad_files_and_plans_are_refused_with_their_reason(tmp_path):
    code, _, err = run_cli("estimate", *PLAN, "--profile", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read the usage profile" in err
    (tmp_path / "prices.json").write_text("{not json")
    code, _, err = run_cli("estimate", *PLAN, "--prices-override", str(tmp_path / "prices.json"))
    assert code == 2 and "not JSON" in err
    code, _, err = run_cli("estimate", "--mentions-per-day", "10", "--case-rate", "0.2", "--agents", "0")
    assert code == 2 and "at least one agent" in err
    code, _, err = run_cli("estimate", *PLAN, "--region", "mars-1")
    assert code == 2 and "no AWS prices for region 'mars-1'" in err


def test_prices_lists_every_price_with_its_source_and_marks_estimates():
    code, out, _ = run_cli("prices", "--region", "ap-northeast-1")
    table = load_prices("ap-northeast-1", "arm64")
    assert code == 0
    for key, price in table.prices.items():
        line = next(line for line in out.splitlines() if line.strip().startswith(key + " "))
        assert price.as_of in line and line.rstrip().count("*") == int(price.estimate), key
    assert "APN1-WriteRequestUnits" in out


def _bench():
    spec = importlib.util.spec_from_file_location("bench_cost", ROOT / "bench" / "cost.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_bench_counts_a_small_mix_into_a_profile_the_estimate_prices(tmp_path):
    """bench/cost.py on a few mentions (moto, fake platforms): each case costs four agent calls, through the
    function URL by default (no API Gateway request; `front="rest"` counts one per call and per webhook
    delivery), and its profile prices."""
    bench = _bench()
    result = bench.run(mentions=8, waves=1, idle_runs=1, token_runs=1, warm_up=0, case_rate=0.5, seed=3)
    numbers = bench.figures(result)
    assert numbers.cases >= 1 and result.agent_calls["POST 202"] == numbers.cases
    assert "apigateway.rest_requests" not in numbers.per_case and not numbers.webhook_per_pushed_mention
    assert numbers.per_mention["dynamodb.write_request_units"] > 0 and numbers.per_mention["sqs.requests"] > 0
    assert numbers.idle_poll_run["lambda.requests"] == 1.0
    profile_path = tmp_path / "profile.json"
    profile_path.write_text(json.dumps(bench.profile(result, numbers, "bench smoke test")))
    code, out, err = run_cli("estimate", *PLAN, "--profile", str(profile_path))
    assert code == 0, err
    assert "bench smoke test" in out and amount(out, "Total") > 0
