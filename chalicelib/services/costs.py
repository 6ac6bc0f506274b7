"""The cost report for finance: ``GET /reports/costs`` and ``python -m chalicelib.cost report``.

What the functions metered (``domain/metering.py``), as the cost store holds
it (per day, stage, function and channel), priced with the deployment's
price table (``domain.cost.price_usage``): one row per group (``group_by``
day, function, service, channel or stage), each with its usage, the unit
price and the cost of every kind, so a person can check the arithmetic; the
rows add up to the total. Beside it: the AWS and platform split, the cost per
mention and per case, the month to date and projected (``project_month``)
with the fixed monthly costs apart, the budget, and what metering itself
costs.

- Per mention: what listening costs (``LISTEN_FUNCTIONS``: polling, Meta's
  webhooks, triage) per mention triaged; per case: what the case lifecycle
  costs (``CASE_FUNCTIONS``: assignment, the agent API, sending replies, the
  SLA tick, measuring KPIs from case changes) per case opened. The same split
  ``bench/cost.py`` measures. Other functions (the X token refresh, usage
  before a container's first invocation) are in the total only.
- Fixed monthly costs are those the meter cannot see as use: the platform
  secret, the alarms, the custom metrics (``FIXED_MONTHLY_USAGE``). Given the
  usage profile ``bench/cost.py`` measured, the report lists every fixed part
  of ``domain.cost.estimate_month`` at the period's pace (``fixed_costs``):
  polling every minute with nothing new, the X token refresh and DM re-reads
  (metered as use already: ``metered`` true, shown so a reader sees which
  part of the use is fixed), and Lambda's idle SQS pollers, the agents'
  sign-ins and the storage the period added (never metered: modeled, added
  to the projection with the secret, alarms and metrics).
- The budget: ``budget_used_share`` is the month to date over the budget;
  ``budget_warning`` says when the projection passes it (or the month to
  date already has).

Only finance and supervisors see costs.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

from chalicelib.domain.agent import Agent
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.cost import (
    CHANNELS,
    METERED_FIXED,
    MONTH_DAYS,
    Bill,
    PriceTable,
    UsageProfile,
    add_usage,
    cost_per,
    fixed_parts,
    price_usage,
    project_month,
)
from chalicelib.domain.errors import BadRequest, Forbidden, Unavailable
from chalicelib.domain.metering import CASES_OPENED, MENTIONS_PROCESSED, METERING_PREFIX, REQUESTS_PREFIX, is_priced
from chalicelib.ports import CostStore, Deps

GROUPS = ("day", "function", "service", "channel", "stage")
FORMATS = ("json", "csv")
PARAMS = ("from", "to", "group_by", "format")
COST_ROLES = ("finance", "supervisor")
MAX_DAYS = 366
LISTEN_FUNCTIONS = ("fetch_mentions", "webhooks", "triage_mentions")
CASE_FUNCTIONS = ("assign_cases", "api", "send_replies", "sla_tick", "measure_changes")
# The schedules that run whatever the traffic (app.py): their idle runs are the fixed part of the metered use.
SCHEDULED_FUNCTIONS = ("fetch_mentions", "refresh_x_token")
# What the deployment pays each month whatever it does. The alarms are those of infra/template.yaml
# (tests/unit/test_costs.py counts them), the metrics those bench/cost.py saw sent.
FIXED_MONTHLY_USAGE: Dict[str, Dict[str, float]] = {
    "platform secret": {"secretsmanager.secrets": 1},
    "alarms": {"cloudwatch.alarms": 29},  # as many as infra/template.yaml declares (a test counts them)
    "custom metrics": {"cloudwatch.custom_metrics": 5},
}


@dataclass(frozen=True)
class Query:
    from_day: str
    to_day: str
    group_by: str = "day"
    format: str = "json"


def require_cost_reader(agent: Agent) -> None:
    if agent.role not in COST_ROLES:
        raise Forbidden("costs are for finance and supervisors; ask one of them, or an administrator for the finance role")


def parse_query(params: Mapping[str, Any], today: date) -> Query:
    """The report's parameters, checked (400 with what to send otherwise); the month to date by default."""
    unknown = sorted(str(k) for k in params if k not in PARAMS)
    if unknown:
        raise BadRequest(f"unknown parameter(s) {', '.join(unknown)}; this report takes {', '.join(PARAMS)}")
    to_day = _day(params.get("to"), "to") if params.get("to") else today
    from_day = _day(params.get("from"), "from") if params.get("from") else to_day.replace(day=1)
    if from_day > to_day:
        raise BadRequest(f"from ({from_day.isoformat()}) is after to ({to_day.isoformat()})")
    if (to_day - from_day).days + 1 > MAX_DAYS:
        raise BadRequest(f"a report covers at most {MAX_DAYS} days; ask for a shorter period")
    group_by = str(params.get("group_by") or "day")
    if group_by not in GROUPS:
        raise BadRequest(f"group_by is one of {', '.join(GROUPS)}, not {group_by[:40]!r}")
    fmt = str(params.get("format") or "json")
    if fmt not in FORMATS:
        raise BadRequest(f"format is json or csv, not {fmt[:40]!r}")
    return Query(from_day=from_day.isoformat(), to_day=to_day.isoformat(), group_by=group_by, format=fmt)


def _day(value: Any, name: str) -> date:
    text = str(value)
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} is a day as YYYY-MM-DD (UTC), not {text[:40]!r}") from None


def cost_report(agent: Agent, params: Mapping[str, Any], deps: Deps, *, prices: PriceTable,
                budget_usd: Optional[float] = None,
                fixed_monthly_usage: Optional[Mapping[str, Mapping[str, float]]] = None,
                profile: Optional[UsageProfile] = None) -> Dict[str, Any]:
    """``GET /reports/costs``: finance and supervisors only (403 for agents)."""
    require_cost_reader(agent)
    return report_for(params, deps, prices=prices, budget_usd=budget_usd, fixed_monthly_usage=fixed_monthly_usage,
                      profile=profile)


def report_for(params: Mapping[str, Any], deps: Deps, *, prices: PriceTable, budget_usd: Optional[float] = None,
               fixed_monthly_usage: Optional[Mapping[str, Mapping[str, float]]] = None,
               profile: Optional[UsageProfile] = None) -> Dict[str, Any]:
    """The report without the role check: for the ``report`` command, run with the account's credentials."""
    now = parse_iso(deps.now())
    query = parse_query(params, now.astimezone(timezone.utc).date())
    if deps.costs is None:
        raise Unavailable("cost metering is not set up on this deployment (no cost store); see README, Costs")
    return build_report(deps.costs, query, prices, now=now, budget_usd=budget_usd,
                        fixed_monthly_usage=FIXED_MONTHLY_USAGE if fixed_monthly_usage is None else fixed_monthly_usage,
                        profile=profile)


def build_report(store: CostStore, query: Query, prices: PriceTable, *, now: datetime,
                 budget_usd: Optional[float] = None,
                 fixed_monthly_usage: Mapping[str, Mapping[str, float]] = FIXED_MONTHLY_USAGE,
                 profile: Optional[UsageProfile] = None) -> Dict[str, Any]:
    if budget_usd is not None and not (math.isfinite(budget_usd) and budget_usd >= 0):
        raise ValueError("the monthly budget is a number of USD, zero or more")
    items = store.usage_rows(query.from_day, query.to_day)
    groups: Dict[str, List[Mapping[str, float]]] = {}
    counters: Dict[str, float] = {}
    own: Dict[str, float] = {}
    unpriced: Dict[str, float] = {}
    listen: List[Mapping[str, float]] = []
    lifecycle: List[Mapping[str, float]] = []
    scheduled: List[Mapping[str, float]] = []
    for item in items:
        priced: Dict[str, float] = {}
        for kind, quantity in item["usage"].items():
            if kind.startswith(METERING_PREFIX):
                own[kind[len(METERING_PREFIX):]] = own.get(kind[len(METERING_PREFIX):], 0.0) + quantity
            elif not is_priced(kind):
                counters[kind] = counters.get(kind, 0.0) + quantity
            elif kind in prices.prices:
                priced[kind] = quantity
            else:  # stored, but this price table has no price for it: shown, never a silent zero
                unpriced[kind] = unpriced.get(kind, 0.0) + quantity
        if item["function"] in SCHEDULED_FUNCTIONS:
            scheduled.append(priced)
        if item["function"] in LISTEN_FUNCTIONS:
            listen.append(priced)
        elif item["function"] in CASE_FUNCTIONS:
            lifecycle.append(priced)
        if query.group_by == "service":
            for kind, quantity in priced.items():
                groups.setdefault(kind.split(".", 1)[0], []).append({kind: quantity})
        else:
            groups.setdefault(str(item[query.group_by]), []).append(priced)

    bills = {key: price_usage(add_usage(*usages), prices) for key, usages in sorted(groups.items())}
    rows = [_row(key, bill) for key, bill in bills.items() if bill.rows]
    total = math.fsum(bill.total_usd for bill in bills.values())
    mentions, cases = counters.get(MENTIONS_PROCESSED, 0.0), counters.get(CASES_OPENED, 0.0)
    metering_usd = price_usage({k: v for k, v in own.items() if k in prices.prices}, prices).total_usd

    days = (date.fromisoformat(query.to_day) - date.fromisoformat(query.from_day)).days + 1
    fixed_costs = _fixed_costs(profile, prices, fixed_monthly_usage, mentions=mentions, cases=cases, days=days,
                               channels={str(item["channel"]) for item in items})
    fixed_unmetered = {f["label"]: f["monthly_usd"] for f in fixed_costs if not f["metered"]}
    fixed_month = math.fsum(fixed_unmetered.values())
    # The metered fixed parts at the period's length, never more than the scheduled functions were metered at.
    fixed_in_use = min(math.fsum(f["monthly_usd"] for f in fixed_costs if f["metered"]) * days / MONTH_DAYS,
                       _total(scheduled, prices))
    month_start = now.astimezone(timezone.utc).date().replace(day=1)
    today = now.astimezone(timezone.utc).date()
    if (query.from_day, query.to_day) == (month_start.isoformat(), today.isoformat()):
        month_usd = total
    else:
        month_usd = _priced_total(store.usage_rows(month_start.isoformat(), today.isoformat()), prices)
    projection = project_month(month_usd, now, fixed_month)
    over = None if budget_usd is None else projection.projected_usd > budget_usd
    used_share = projection.month_to_date_usd / budget_usd if budget_usd else None
    return {
        "from": query.from_day, "to": query.to_day, "group_by": query.group_by, "currency": "USD",
        "total_usd": total,
        "aws_usd": math.fsum(bill.aws_usd for bill in bills.values()),
        "platform_usd": math.fsum(bill.platform_usd for bill in bills.values()),
        "per_mention_usd": cost_per(_total(listen, prices), mentions),
        # AWS alone (no X reads): what bench/cost.py's listen + triage figure measures, webhooks included.
        "per_mention_aws_usd": cost_per(price_usage(add_usage(*listen), prices).aws_usd, mentions),
        "per_case_usd": cost_per(_total(lifecycle, prices), cases),
        "mentions_processed": mentions, "cases_opened": cases,
        "month_to_date_usd": projection.month_to_date_usd,
        "projected_month_usd": projection.projected_usd,
        "budget_usd": budget_usd, "over_budget": over, "budget_used_share": used_share,
        "budget_warning": _budget_warning(projection.month_to_date_usd, projection.projected_usd, budget_usd),
        "fixed_monthly_usd": fixed_unmetered,
        "fixed_costs": fixed_costs,
        "fixed_in_use_usd": fixed_in_use,
        "per_use_usd": max(0.0, total - fixed_in_use),
        "metering_usd": metering_usd,
        "metering_share": metering_usd / (total - metering_usd) if total > metering_usd else None,
        "requests": {k[len(REQUESTS_PREFIX):]: v for k, v in sorted(counters.items()) if k.startswith(REQUESTS_PREFIX)},
        "unpriced": dict(sorted(unpriced.items())),
        "prices": {"region": prices.region, "architecture": prices.architecture,
                   "whatsapp_market": prices.whatsapp_market, "checked": prices.checked},
        "notes": [
            "list prices, no free tier; per mention: polling, webhooks and triage per mention triaged; per case: "
            "assignment, the agent API, replies, the SLA tick and KPI measuring per case opened",
            "the month projects the per-use cost so far at the same pace, plus the fixed monthly costs",
            "metering counts low, never high, except X reads (see chalicelib/domain/metering.py)",
        ],
        "rows": rows,
    }


def _fixed_costs(profile: Optional[UsageProfile], prices: PriceTable,
                 fixed_monthly_usage: Mapping[str, Mapping[str, float]], *, mentions: float, cases: float, days: int,
                 channels: Set[str]) -> List[Dict[str, Any]]:
    """What the deployment pays a month whatever it does, each with ``metered`` (already in the use figures).

    Without a usage profile: ``fixed_monthly_usage`` (none of it metered). With one: the fixed parts of a
    planned month at the period's pace (``domain.cost.fixed_parts``), the alarms and metrics as counted here.
    """
    if profile is None:
        bills = {label: price_usage(usage, prices) for label, usage in fixed_monthly_usage.items()}
        return [{"label": label, "monthly_usd": bill.total_usd, "metered": False, "by_service": bill.by_service(),
                 "why": ", ".join(f"{_number(q)} {k}" for k, q in fixed_monthly_usage[label].items())}
                for label, bill in bills.items()]
    counted = {k: q for usage in fixed_monthly_usage.values() for k, q in usage.items()}
    profile = dataclasses.replace(profile, alarms=int(counted.get("cloudwatch.alarms", profile.alarms)),
                                  custom_metrics=int(counted.get("cloudwatch.custom_metrics", profile.custom_metrics)))
    parts = fixed_parts(profile, prices, mentions_per_day=mentions / days, case_rate=cases / mentions if mentions else 0.0,
                        channels=channels & set(CHANNELS))
    return [{"label": part.label, "monthly_usd": part.bill.total_usd, "metered": part.label in METERED_FIXED,
             "by_service": part.bill.by_service(), "why": part.why} for part in parts]


def _budget_warning(month_to_date: float, projected: float, budget: Optional[float]) -> Optional[str]:
    if not budget:
        return None
    if month_to_date > budget:
        return (f"the month to date, ${month_to_date:,.2f}, is already over the budget of ${budget:,.2f} "
                f"({month_to_date / budget:.0%} of it)")
    if projected > budget:
        return (f"the month is projected at ${projected:,.2f}, over the budget of ${budget:,.2f} "
                f"({month_to_date / budget:.0%} of it spent so far)")
    return None


def _row(key: str, bill: Bill) -> Dict[str, Any]:
    return {"key": key, "cost_usd": bill.total_usd,
            "usage": {r.key: {"quantity": r.quantity, "unit": r.price.unit, "unit_price_usd": r.price.unit_usd,
                              "cost_usd": r.cost_usd} for r in bill.rows}}


def _total(usages: List[Mapping[str, float]], prices: PriceTable) -> float:
    return price_usage(add_usage(*usages), prices).total_usd


def _priced_total(items: List[Dict[str, Any]], prices: PriceTable) -> float:
    return _total([{k: v for k, v in item["usage"].items() if is_priced(k) and k in prices.prices} for item in items],
                  prices)


# ---- renderings ---------------------------------------------------------------------------------------

CSV_COLUMNS = ("key", "kind", "quantity", "unit", "unit_price_usd", "cost_usd")


def report_csv(report: Mapping[str, Any]) -> str:
    """One line per row and kind, then the total: the lines' costs add up to it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report["rows"]:
        for kind, used in row["usage"].items():
            writer.writerow([row["key"], kind, _number(used["quantity"]), used["unit"],
                             _number(used["unit_price_usd"]), _number(used["cost_usd"])])
    writer.writerow(["total", "", "", "", "", _number(report["total_usd"])])
    return out.getvalue()


def render_report(report: Mapping[str, Any], places: int = 6) -> str:
    """The report as a terminal table; the shown costs add up to the shown total (largest remainder)."""
    lines = [f"socialcare costs {report['from']} to {report['to']}, by {report['group_by']} "
             f"({report['prices']['region']}, {report['prices']['architecture']}, list prices checked "
             f"{report['prices']['checked']})", ""]
    costs = [row["cost_usd"] for row in report["rows"]]
    shown, shown_total = rounded(costs, places)
    for row, cost in zip(report["rows"], shown):
        lines.append(f"  {row['key']:<40}{_money(cost, places):>16}")
        for kind, used in row["usage"].items():
            lines.append(f"      {kind:<36}{_quantity(used['quantity']):>16} x ${_number(used['unit_price_usd'])}"
                         f" = ${_number(used['cost_usd'])}")
    lines.append(f"  {'total':<40}{_money(shown_total, places):>16}")
    lines.append("")
    lines.append(f"  AWS {_money(report['aws_usd'], places)}, platforms {_money(report['platform_usd'], places)}")
    for label, key in (("per mention", "per_mention_usd"), ("per case", "per_case_usd")):
        value = report[key]
        lines.append(f"  {label}: " + (_money(value, places) if value is not None else "none in the period"))
    lines.append(f"  month to date {_money(report['month_to_date_usd'], 2)}, projected "
                 f"{_money(report['projected_month_usd'], 2)}"
                 + (f", budget {_money(report['budget_usd'], 2)}" if report["budget_usd"] is not None else "")
                 + (f" ({report['budget_used_share']:.0%} of it used)" if report.get("budget_used_share") is not None
                    else ""))
    if report.get("budget_warning"):
        lines.append(f"  WARNING: {report['budget_warning']}")
    lines.append(f"  per use {_money(report['per_use_usd'], places)}; fixed costs inside the use "
                 f"{_money(report['fixed_in_use_usd'], places)}")
    lines.append("  fixed each month (* already in the metered use; the others are added to the projection):")
    for fixed in report["fixed_costs"]:
        lines.append(f"    {'*' if fixed['metered'] else ' '} {fixed['label']:<40}{_money(fixed['monthly_usd'], 2):>12}"
                     f"  {fixed['why'][:70]}")
    lines.append(f"  metering itself: {_money(report['metering_usd'], places)}"
                 + (f" ({report['metering_share']:.1%} of the rest)" if report["metering_share"] is not None else ""))
    if report["unpriced"]:
        lines.append("  NOT PRICED (no price in the table): "
                     + ", ".join(f"{k} {_quantity(v)}" for k, v in report["unpriced"].items()))
    return "\n".join(lines)


def rounded(values: List[float], places: int) -> Tuple[List[float], float]:
    """``values`` and their sum rounded to ``places``, the rounded values still adding up to the rounded sum."""
    scale = 10 ** places
    total_units = round(math.fsum(values) * scale)
    exact = [v * scale for v in values]
    units = [math.floor(v) for v in exact]
    for index in sorted(range(len(exact)), key=lambda i: exact[i] - units[i], reverse=True)[:max(0, total_units - sum(units))]:
        units[index] += 1
    return [u / scale for u in units], total_units / scale


def _money(value: float, places: int) -> str:
    return f"${value:,.{places}f}"


def _number(value: float) -> str:
    """About 11 significant digits, never an exponent: 0.0000035, not 3.5e-06."""
    if not value:
        return "0"
    text = f"{value:.{max(0, 10 - math.floor(math.log10(abs(value))))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else _number(value)

