"""What socialcare costs, for finance, at a terminal: ``python -m chalicelib.cost``.

    python -m chalicelib.cost estimate --mentions-per-day N --case-rate R --agents A
                                      [--channels x,facebook,...] [--region us-east-1] [--arch arm64]
                                      [--whatsapp-market JP] [--days 30] [--prices-override FILE]
                                      [--profile FILE] [--json]
    python -m chalicelib.cost prices [--region ...] [--arch ...] [--whatsapp-market ...] [--prices-override FILE]
    python -m chalicelib.cost report [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--group-by service] [--format table|csv|json]
    python -m chalicelib.cost reconcile --from YYYY-MM-DD --to YYYY-MM-DD [--tag-key stage] [--tag-value STAGE]

``estimate`` prices a planned month from the usage per mention and per case
that ``bench/cost.py`` measured (``chalicelib/domain/usage_profile.json``),
with the platforms' API costs, and shows the cost per agent next to per-seat
tools. ``prices`` lists every price with its source and date. ``report``
prints what ``GET /reports/costs`` answers; ``reconcile`` puts it beside Cost
Explorer's figures (``__main__``). The arithmetic
is ``chalicelib.domain.cost``; this package reads the files and prints.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from chalicelib.domain.cost import Bill, Estimate, PricedRow, PriceTable, UsageProfile

DEFAULT_PROFILE = Path(__file__).resolve().parent.parent / "domain" / "usage_profile.json"
# What the per-seat tools brands compare socialcare with charge (issue 17).
PER_SEAT_USD = (39, 399)


def load_profile(path: Optional[str] = None) -> UsageProfile:
    """The usage profile ``bench/cost.py`` wrote (the one shipped in the package by default)."""
    source = Path(path) if path else DEFAULT_PROFILE
    try:
        return UsageProfile.from_dict(json.loads(source.read_text(encoding="utf-8")))
    except OSError as err:
        raise ValueError(f"cannot read the usage profile {source}: {err.strerror or err}") from None
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def read_override(path: Optional[str]) -> Optional[str]:
    """The text of a price override file (JSON, the shape of ``chalicelib/domain/prices.py``), or None."""
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read the price override {path}: {err.strerror or err}") from None


def money(value: float, places: int) -> str:
    return f"${value:,.{places}f}"


def _row_line(row: PricedRow, cost: float, places: int) -> str:
    mark = "*" if row.price.estimate else " "
    return (f"    {row.key:<34}{_quantity(row.quantity):>16}  {row.price.quoted()[:46]:<46}{mark}"
            f"{money(cost, places):>13}")


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.4g}"


def render_estimate(estimate: Estimate, profile: UsageProfile) -> str:
    """The estimate as a table a person can check: each row's quantity, unit price and cost.

    Rows are rounded together so that the printed rows add up to the printed
    parts, and the parts to the printed total.
    """
    plan, prices = estimate.plan, estimate.prices
    places = 2 if estimate.total_usd >= 100 else 4
    rows = [row for part in estimate.parts for row in part.bill.rows]
    rounded, total = Bill(rows=tuple(rows)).rounded(places)
    costs = iter(rounded)
    lines = [
        f"socialcare, a planned month: {plan.mentions_per_day:,.0f} mentions a day for {plan.days} days, "
        f"{plan.case_rate:.0%} becoming cases, {plan.agents} agent{'s' if plan.agents != 1 else ''}",
        f"channels {', '.join(plan.channels)}; {prices.region}, {prices.architecture}; "
        f"WhatsApp market {prices.whatsapp_market}",
        f"list prices checked {prices.checked} (chalicelib/domain/prices.py); usage measured {profile.measured} "
        f"by `{profile.command}`",
        "",
        f"    {'usage':<34}{'quantity':>16}  {'unit price':<46} {'cost':>13}",
    ]
    for fixed, title in ((False, "Per use"), (True, "Fixed (whatever the traffic)")):
        lines.append(title)
        for part in (p for p in estimate.parts if p.fixed == fixed):
            part_rows = [(row, next(costs)) for row in part.bill.rows]
            subtotal = sum(cost for _, cost in part_rows)
            lines.append(f"  {part.label}: {part.why}"[:113].ljust(113) + f"{money(subtotal, places):>13}")
            lines.extend(_row_line(row, cost, places) for row, cost in part_rows)
    per_mention, per_case = estimate.per_mention_usd, estimate.per_case_usd
    low, high = PER_SEAT_USD
    lines += [
        "",
        f"{'Total':<113}{money(total, places):>13}",
        f"  AWS {money(estimate.aws_usd, 2)}, platform APIs {money(estimate.platform_usd, 2)}; "
        f"per use {money(estimate.per_use_usd, 2)}, fixed {money(estimate.fixed_usd, 2)}",
        f"  per mention {_small(per_mention)}, per case {_small(per_case)} "
        f"({estimate.mentions:,.0f} mentions, {estimate.cases:,.0f} cases)",
        f"  storage keeps growing until the retention periods (mentions 400 days, cases 730 days after they "
        f"end): then {money(estimate.storage_at_retention_usd, 2)} a month",
        "",
        f"Per agent: {money(estimate.per_agent_usd, 2)} a month "
        f"(per-seat tools: ${low}-${high} per agent per month)",
    ]
    estimated = sorted({row.key for row in rows if row.price.estimate})
    if estimated:
        lines.append(f"* estimated prices (not confirmed from a source; see `prices`): {', '.join(estimated)}")
    free = sorted({row.key for row in rows if row.price.free_per_month})
    if free:
        lines.append(f"List prices: free tiers and allowances are not deducted ({', '.join(free)}).")
    lines.append("Cold starts, data transfer and taxes are not included.")
    return "\n".join(lines)


def _small(value: Optional[float]) -> str:
    return "-" if value is None else f"${value:,.6f}"


def estimate_to_dict(estimate: Estimate) -> Dict[str, Any]:
    return {
        "plan": {"mentions_per_day": estimate.plan.mentions_per_day, "case_rate": estimate.plan.case_rate,
                 "agents": estimate.plan.agents, "channels": list(estimate.plan.channels), "days": estimate.plan.days},
        "region": estimate.prices.region, "architecture": estimate.prices.architecture,
        "whatsapp_market": estimate.prices.whatsapp_market, "prices_checked": estimate.prices.checked,
        "mentions": estimate.mentions, "cases": estimate.cases,
        "total_usd": estimate.total_usd, "aws_usd": estimate.aws_usd, "platform_usd": estimate.platform_usd,
        "per_use_usd": estimate.per_use_usd, "fixed_usd": estimate.fixed_usd,
        "per_mention_usd": estimate.per_mention_usd, "per_case_usd": estimate.per_case_usd,
        "per_agent_usd": estimate.per_agent_usd, "storage_at_retention_usd": estimate.storage_at_retention_usd,
        "parts": [{"label": p.label, "why": p.why, "fixed": p.fixed, **p.bill.to_dict()} for p in estimate.parts],
    }


def render_prices(table: PriceTable) -> str:
    lines = [f"Prices for {table.region}, {table.architecture}, WhatsApp market {table.whatsapp_market} "
             f"(checked {table.checked}); * marks an estimate"]
    for key in sorted(table.prices):
        price = table.prices[key]
        lines.append(f"  {key:<36}{price.quoted():<58}{'*' if price.estimate else ' '} as of {price.as_of}")
        lines.append(f"      {price.source}")
        if price.note:
            lines.append(f"      {price.note}")
    return "\n".join(lines)


__all__: List[str] = ["DEFAULT_PROFILE", "PER_SEAT_USD", "estimate_to_dict", "load_profile", "read_override",
                      "render_estimate", "render_prices"]
