"""Costs over HTTP: ``GET /reports/costs`` (finance and supervisors), JSON or ``format=csv``.

``?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=day|function|service|channel|stage&format=json|csv``;
the month to date by day when nothing is given. The arithmetic is
``chalicelib.services.costs``; this parses, prices and shapes. The service
and the price table are imported in the handler, not here (cold start: a
Lambda that never serves this route never loads them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent

if TYPE_CHECKING:
    from chalicelib.domain.cost import PriceTable
    from chalicelib.ports import Deps

costs_api = Blueprint(__name__)

# Every function deploys on this architecture (.chalice/config.json "lambda_architecture").
ARCHITECTURE = "arm64"


def report_prices(dependencies: "Deps", override: Optional[str] = None) -> "PriceTable":
    """The deployment's prices: its region, arm64, with its override laid over ours (503 when unusable)."""
    from chalicelib.domain.cost import PriceError, load_prices
    from chalicelib.domain.errors import Unavailable

    try:
        return load_prices(dependencies.config.region, ARCHITECTURE, override=override)
    except PriceError as err:
        raise Unavailable(f"the costs cannot be priced: {err}; an operator can add the region's prices "
                          "with a price override (see chalicelib/domain/prices.py)") from None


def cost_response(agent: Any, params: Mapping[str, Any], dependencies: "Deps", *,
                  price_override: Optional[str] = None, budget_usd: Optional[float] = None) -> Any:
    from chalicelib.adapters.usage_profile import shipped_profile
    from chalicelib.services import costs

    report = costs.cost_report(agent, params, dependencies, prices=report_prices(dependencies, price_override),
                               budget_usd=budget_usd, profile=shipped_profile())
    if (params.get("format") or "json") == "csv":  # checked by the service: json or csv
        name = f"socialcare-costs-{report['from']}-{report['to']}-by-{report['group_by']}.csv"
        return Response(body=costs.report_csv(report), status_code=200,
                        headers={"Content-Type": "text/csv; charset=utf-8",
                                 "Content-Disposition": f'attachment; filename="{name}"'})
    return report


@costs_api.route("/reports/costs", methods=["GET"])
@api_errors
def get_costs():
    request = costs_api.current_request
    agent = current_agent(request)
    config = deps().config
    return cost_response(agent, request.query_params or {}, deps(), price_override=config.cost_prices_override or None,
                         budget_usd=config.monthly_budget_usd or None)
