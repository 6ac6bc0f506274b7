"""The demo's cost summary: ``GET /reports/costs?group_by=service`` every few minutes, checked.

Two checks from issue 17's "done when": every service the demo used shows
usage in the report (a service is used when the meter counted requests to
it, ``report["requests"]``; Lambda and API Gateway always are: the
functions run and the demo agent calls the API), and the report's AWS cost
per mention (listen + triage) agrees with what ``bench/cost.py`` measured
(``chalicelib/domain/usage_profile.json``) within a factor of ``WITHIN``: the
demo polls every few seconds for a handful of posts, so its idle polling
weighs on each mention more than in the bench's waves, and cold starts are
in the demo's figures, not the bench's.

``cost_summary`` is pure (a report in, lines out); ``bench_per_mention`` and
``fetch`` read the profile and the API.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, List, Mapping, Optional, Set

# requests.<service> as the meter names them -> the report's service (the price table's prefix).
REQUEST_SERVICES = {"dynamodb": "dynamodb", "sqs": "sqs", "secretsmanager": "secretsmanager", "sns": "sns",
                    "s3": "s3", "x": "x", "graph": "meta"}
ALWAYS_USED = ("lambda", "apigateway")
WITHIN = 3.0


def used_services(report: Mapping[str, Any], always: Iterable[str] = ALWAYS_USED) -> Set[str]:
    used = set(always)
    for service, count in (report.get("requests") or {}).items():
        if count and service in REQUEST_SERVICES:
            used.add(REQUEST_SERVICES[service])
    return used


def unmetered_services(report: Mapping[str, Any], used: Iterable[str]) -> List[str]:
    """Services used but with no usage in the report's rows (grouped by service)."""
    shown = {row["key"] for row in report.get("rows", [])
             if any(float(u.get("quantity", 0)) > 0 for u in row.get("usage", {}).values())}
    return sorted(set(used) - shown)


def cost_summary(report: Any, bench_per_mention_usd: Optional[float], *, within: float = WITHIN) -> List[str]:
    if not isinstance(report, Mapping) or "rows" not in report:
        return [f"cost report unavailable: {str(report)[:200]}"]
    lines = [f"costs {report.get('from')} to {report.get('to')} by service (list prices): total "
             f"${report['total_usd']:.6f} (AWS ${report['aws_usd']:.6f}, platforms ${report['platform_usd']:.6f}); "
             f"month projected ${report['projected_month_usd']:.2f}"]
    for row in report["rows"]:
        used = ", ".join(f"{kind.split('.', 1)[-1]} {float(u['quantity']):,.6g}" for kind, u in row["usage"].items())
        lines.append(f"  {row['key']:<15}${row['cost_usd']:>11.6f}  {used[:100]}")
    missing = unmetered_services(report, used_services(report))
    lines.append("  every service the demo used shows usage" if not missing
                 else f"  ! used but no usage in the report: {', '.join(missing)}")
    lines.append(per_mention_line(report.get("per_mention_aws_usd"), bench_per_mention_usd,
                                  report.get("mentions_processed") or 0, within=within))
    if report.get("budget_warning"):
        lines.append(f"  ! {report['budget_warning']}")
    return lines


def per_mention_line(measured: Optional[float], bench: Optional[float], mentions: float, *,
                     within: float = WITHIN) -> str:
    if measured is None:
        return "  per mention: no mention triaged yet"
    text = f"  AWS per mention (listen + triage): ${measured * 1e6:,.2f} per million"
    if not bench:
        return text + " (no bench figure to compare with)"
    ratio = measured / bench
    verdict = (f"agrees with bench/cost.py's ${bench * 1e6:,.2f} per million within a factor of {within:g}"
               if 1 / within <= ratio <= within
               else f"! {ratio:.1f}x bench/cost.py's ${bench * 1e6:,.2f} per million (more than {within:g}x apart)")
    return f"{text}, {mentions:,.0f} mentions; {verdict}"


def bench_per_mention(region: str = "us-east-1") -> Optional[float]:
    """bench/cost.py's AWS cost per mention (listen + triage, webhooks included) at ``region``'s list prices."""
    from chalicelib.cost import load_profile
    from chalicelib.domain.cost import PriceError, listen_aws_per_mention, load_prices

    try:
        return listen_aws_per_mention(load_profile(), load_prices(region, "arm64"))
    except (ValueError, PriceError):
        return None


def fetch(api: Any, bench_per_mention_usd: Optional[float]) -> List[str]:
    """Today's cost report by service from the running API, summarised."""
    today = datetime.now(timezone.utc).date().isoformat()
    return cost_summary(api.call("GET", f"/reports/costs?from={today}&to={today}&group_by=service"),
                        bench_per_mention_usd)
