"""Cost Explorer's figures for socialcare, by service: ``GetCostAndUsage`` filtered by cost allocation tags.

The deploy tags every resource ``project=socialcare`` and ``stage=<stage>``
(infra/template.yaml, infra/deploy.py); those tags count in Cost Explorer
only once activated as cost allocation tags (Billing console, Cost allocation
tags), and only for usage after that. Cost Explorer's API answers in
us-east-1 whatever the deployment's region, and charges $0.01 a request:
this asks for one month at a time, daily granularity, grouped by SERVICE
(each page of results is a request of its own).

Failures come back as ``CostExplorerUnavailable`` with a sentence a person
can act on (not enabled, no permission, no credentials).
"""
from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, Dict, List, Mapping, Optional

METRIC = "UnblendedCost"
MAX_PAGES = 50


class CostExplorerUnavailable(Exception):
    """Cost Explorer cannot answer for this account; the message says why and what to do."""


def explorer_client() -> Any:
    import boto3  # lazy: only the reconcile command needs it

    return boto3.client("ce", region_name="us-east-1")


def tag_filter(tags: Mapping[str, str]) -> Dict[str, Any]:
    """All the tags (key = value), as Cost Explorer's filter expression."""
    if not tags:
        raise ValueError("at least one tag to filter by")
    expressions = [{"Tags": {"Key": key, "Values": [value], "MatchOptions": ["EQUALS"]}}
                   for key, value in sorted(tags.items())]
    return expressions[0] if len(expressions) == 1 else {"And": expressions}


def cost_by_service(from_day: str, to_day: str, tags: Mapping[str, str], *, client: Any = None) -> Dict[str, float]:
    """USD per Cost Explorer service name, ``from_day`` to ``to_day`` inclusive (UTC days)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    ce = client if client is not None else explorer_client()
    end = (date.fromisoformat(to_day) + timedelta(days=1)).isoformat()  # Cost Explorer's end is exclusive
    request: Dict[str, Any] = {
        "TimePeriod": {"Start": from_day, "End": end}, "Granularity": "DAILY", "Metrics": [METRIC],
        "Filter": tag_filter(tags), "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    totals: Dict[str, List[float]] = {}
    token: Optional[str] = None
    try:
        for _ in range(MAX_PAGES):
            answer = ce.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
            for period in answer.get("ResultsByTime", []):
                for group in period.get("Groups", []):
                    amount = float(group.get("Metrics", {}).get(METRIC, {}).get("Amount", 0) or 0)
                    totals.setdefault(str(group.get("Keys", ["?"])[0]), []).append(amount)
            token = answer.get("NextPageToken")
            if not token:
                break
    except NoCredentialsError:
        raise CostExplorerUnavailable("no AWS credentials: run with the account's credentials (AWS_PROFILE or "
                                      "the environment), as for a deploy") from None
    except ClientError as err:
        raise CostExplorerUnavailable(_explain(err)) from None
    except BotoCoreError as err:
        raise CostExplorerUnavailable(f"Cost Explorer cannot be reached: {err}") from None
    return {service: math.fsum(amounts) for service, amounts in sorted(totals.items())}


def _explain(err: Any) -> str:
    error = err.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code == "AccessDeniedException" and "not enabled" in message.lower():
        return ("Cost Explorer is not enabled for this account: enable it once in the Billing console "
                "(Cost Explorer, Launch Cost Explorer); data appears within 24 hours")
    if code in ("AccessDeniedException", "UnauthorizedOperation", "AccessDenied"):
        return (f"no permission to read Cost Explorer ({message or code}): the caller needs ce:GetCostAndUsage "
                "(and, in an organization, the management account must allow member accounts to see costs)")
    if code == "DataUnavailableException":
        return "Cost Explorer has no data for this period yet (it lags by up to 24 hours after it is enabled)"
    if code == "BillExpirationException":
        return "Cost Explorer keeps 13 months (14 with multi-year data): the period is too old"
    if code == "ValidationException":
        return f"Cost Explorer refused the request: {message} (periods may not end after tomorrow)"
    if code in ("LimitExceededException", "RequestLimitExceeded", "ThrottlingException"):
        return "Cost Explorer is throttling requests; try again in a minute"
    return f"Cost Explorer answered {code}: {message}"
