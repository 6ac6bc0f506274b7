"""``python -m chalicelib.cost estimate ...``, ``prices`` and ``report``: see the package's docstring.

``report --from YYYY-MM-DD --to YYYY-MM-DD [--group-by day|function|service|channel|stage]``
prints what ``GET /reports/costs`` answers, from the deployment's cost store
(``chalicelib.bootstrap.deps()``: the stage and account of the environment).

``reconcile --from YYYY-MM-DD --to YYYY-MM-DD [--tag-key stage] [--tag-value STAGE] [--tolerance 10%]``
puts the report beside Cost Explorer's figures for the resources tagged
``project=socialcare`` and ``<tag-key>=<tag-value>`` (the stage by default),
service by service, with the difference and a verdict (``domain/reconcile.py``).
Exit 0 when they agree, 3 when they differ, 1 when Cost Explorer cannot answer.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from chalicelib.cost import estimate_to_dict, load_profile, read_override, render_estimate, render_prices
from chalicelib.domain.cost import ARCHITECTURES, CHANNELS, Plan, PriceError, UsageProfile, estimate_month, load_prices
from chalicelib.domain.errors import ApiError

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1
EXIT_DIFFER = 3


def main(argv: Optional[Sequence[str]] = None, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None, *,
         cost_explorer: Any = None) -> int:
    """``cost_explorer``: a Cost Explorer client for ``reconcile`` (tests pass one; boto3's otherwise)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:  # argparse has written its message to stderr
        return int(exit_.code or 0)
    if args.command == "report":
        return _report(args, out, err)
    if args.command == "reconcile":
        return _reconcile(args, out, err, cost_explorer)
    try:
        prices = load_prices(args.region, args.arch, args.whatsapp_market, override=read_override(args.prices_override))
        if args.command == "prices":
            out.write(render_prices(prices) + "\n")
            return 0
        plan = Plan(mentions_per_day=args.mentions_per_day, case_rate=args.case_rate, agents=args.agents,
                    channels=tuple(args.channels), days=args.days)
        profile = load_profile(args.profile)
        estimate = estimate_month(profile, plan, prices)
    except (PriceError, ValueError) as problem:
        err.write(f"error: {problem}\n")
        return EXIT_USAGE
    if args.json:
        out.write(json.dumps(estimate_to_dict(estimate), indent=2) + "\n")
    else:
        out.write(render_estimate(estimate, profile) + "\n")
    return 0


def _read_report(args: argparse.Namespace, params: Dict[str, str], err: TextIO, *,
                 with_budget: bool) -> Tuple[Optional[Dict[str, Any]], int]:
    """The cost report for ``params`` with the stage's prices, or None and the exit code, the reason on ``err``."""
    from chalicelib import bootstrap
    from chalicelib.services import costs

    try:
        deps = bootstrap.deps()
        prices = load_prices(args.region or deps.config.region, args.arch, args.whatsapp_market,
                             override=read_override(args.prices_override))
        budget = None
        if with_budget:
            budget = args.budget if args.budget is not None else (deps.config.monthly_budget_usd or None)
        report = costs.report_for({k: v for k, v in params.items() if v}, deps, prices=prices, budget_usd=budget,
                                  profile=_profile_or_none())
    except ApiError as problem:  # the same refusals the API answers with (a bad day, no cost store)
        err.write(f"error: {problem}\n")
        return None, EXIT_USAGE if problem.status < 500 else EXIT_UNAVAILABLE
    except (PriceError, ValueError) as problem:
        err.write(f"error: {problem}\n")
        return None, EXIT_USAGE
    except Exception as problem:  # noqa: BLE001 - AWS unreachable, no credentials: say so, no traceback
        err.write(f"error: cannot read the cost store: {type(problem).__name__}: {problem}\n")
        return None, EXIT_UNAVAILABLE
    return report, 0


def _report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from chalicelib.services import costs

    params = {"from": args.from_day, "to": args.to_day, "group_by": args.group_by}
    report, code = _read_report(args, params, err, with_budget=True)
    if report is None:
        return code
    if args.format == "json":
        out.write(json.dumps(report, indent=2) + "\n")
    elif args.format == "csv":
        out.write(costs.report_csv(report))
    else:
        out.write(costs.render_report(report) + "\n")
    return 0


def _reconcile(args: argparse.Namespace, out: TextIO, err: TextIO, cost_explorer: Any) -> int:
    from datetime import date

    from chalicelib.adapters.cost_explorer import CostExplorerUnavailable, cost_by_service
    from chalicelib.domain.cost import MONTH_DAYS
    from chalicelib.domain.reconcile import reconcile, render

    report, code = _read_report(args, {"from": args.from_day, "to": args.to_day, "group_by": "service"}, err,
                                with_budget=False)
    if report is None:
        return code
    days = (date.fromisoformat(report["to"]) - date.fromisoformat(report["from"])).days + 1
    ours: Dict[str, float] = {row["key"]: row["cost_usd"] for row in report["rows"]}
    for fixed in report["fixed_costs"]:  # what the meter never sees, prorated by day (the metered part is in the rows)
        if not fixed["metered"]:
            for service, usd in fixed["by_service"].items():
                ours[service] = ours.get(service, 0.0) + usd * days / MONTH_DAYS
    tags = {"project": "socialcare"}
    from chalicelib import bootstrap

    tags[args.tag_key] = args.tag_value or (bootstrap.deps().config.stage if args.tag_key == "stage" else "")
    if not tags[args.tag_key]:
        err.write(f"error: --tag-value is needed with --tag-key {args.tag_key}\n")
        return EXIT_USAGE
    try:
        explorer = cost_by_service(report["from"], report["to"], tags, client=cost_explorer)
    except CostExplorerUnavailable as problem:
        err.write(f"error: {problem}\n")
        return EXIT_UNAVAILABLE
    result = reconcile(ours, explorer, tolerance=args.tolerance)
    if args.json:
        out.write(json.dumps({
            "from": report["from"], "to": report["to"], "tags": tags, "tolerance": args.tolerance,
            "report_usd": result.report_usd, "explorer_usd": result.explorer_usd,
            "difference_usd": result.difference_usd, "agrees": result.agrees(), "verdict": result.verdict,
            "lines": [{"service": line.service, "report_usd": line.report_usd, "explorer_usd": line.explorer_usd,
                       "difference_usd": line.difference_usd, "agrees": result.agrees(line)} for line in result.lines],
            "not_compared": result.not_compared}, indent=2) + "\n")
    else:
        title = (f"socialcare AWS costs {report['from']} to {report['to']}: the report (list prices, metered use and "
                 f"fixed costs prorated) beside Cost Explorer ({METRIC_NAME}, tags "
                 + ", ".join(f"{k}={v}" for k, v in tags.items()) + ")")
        out.write(render(result, title=title) + "\n")
    return 0 if result.agrees() else EXIT_DIFFER


METRIC_NAME = "unblended cost"


def _profile_or_none() -> Optional[UsageProfile]:
    """The shipped usage profile, for the report's fixed parts; without it the report still prints."""
    try:
        return load_profile()
    except ValueError:
        return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.cost",
                                     description="What socialcare costs: a planned month, the prices it uses, and what was metered.")
    commands = parser.add_subparsers(dest="command", required=True)
    estimate = commands.add_parser("estimate", help="price a planned month")
    estimate.add_argument("--mentions-per-day", type=_non_negative, required=True, metavar="N")
    estimate.add_argument("--case-rate", type=_share, required=True, metavar="R",
                          help="share of mentions that become cases: 0.2 or 20%%")
    estimate.add_argument("--agents", type=int, required=True, metavar="A")
    estimate.add_argument("--channels", type=_channels, default=list(CHANNELS),
                          help=f"comma-separated, of {','.join(CHANNELS)} (default: all)")
    estimate.add_argument("--days", type=int, default=30, help="days in the month (default 30)")
    estimate.add_argument("--profile", help="usage profile written by bench/cost.py (default: the shipped one)")
    estimate.add_argument("--json", action="store_true", help="the estimate as JSON, every row included")
    listing = commands.add_parser("prices", help="list the prices with their sources")
    recon = commands.add_parser("reconcile", help="the report beside Cost Explorer's figures, by service")
    recon.add_argument("--from", dest="from_day", metavar="YYYY-MM-DD", required=True, help="first day, UTC")
    recon.add_argument("--to", dest="to_day", metavar="YYYY-MM-DD", required=True, help="last day, UTC")
    recon.add_argument("--tag-key", default="stage", help="cost allocation tag to filter by, with project=socialcare "
                                                           "(default: stage)")
    recon.add_argument("--tag-value", default=None, help="its value (default: the deployment's stage)")
    recon.add_argument("--tolerance", type=_share, default=0.10, help="difference still agreeing (default 10%%)")
    recon.add_argument("--region", default=None, help="prices of this region (default: the deployment's)")
    recon.add_argument("--json", action="store_true")
    report = commands.add_parser("report", help="what the deployment consumed in a period, priced (GET /reports/costs)")
    report.add_argument("--from", dest="from_day", metavar="YYYY-MM-DD", help="first day, UTC (default: the 1st)")
    report.add_argument("--to", dest="to_day", metavar="YYYY-MM-DD", help="last day, UTC (default: today)")
    report.add_argument("--group-by", default="day", choices=("day", "function", "service", "channel", "stage"))
    report.add_argument("--format", default="table", choices=("table", "csv", "json"))
    report.add_argument("--budget", type=_non_negative, metavar="USD",
                        help="the monthly budget to compare with (default: the stage's MONTHLY_BUDGET_USD)")
    report.add_argument("--region", default=None, help="prices of this region (default: the deployment's)")
    for sub in (estimate, listing):
        sub.add_argument("--region", default="us-east-1")
    for sub in (estimate, listing, report, recon):
        sub.add_argument("--arch", default="arm64", choices=ARCHITECTURES)
        sub.add_argument("--whatsapp-market", default="JP", help="recipients' market for WhatsApp prices (JP, US)")
        sub.add_argument("--prices-override", metavar="FILE",
                         help="JSON of the same shape as chalicelib/domain/prices.py; its entries replace ours")
    return parser


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _share(text: str) -> float:
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a share from 0 to 1 (or 0% to 100%)")
    return value


def _channels(text: str) -> List[str]:
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CHANNELS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"channels are some of {','.join(CHANNELS)}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
