"""The cost report beside Cost Explorer, service by service: ``python -m chalicelib.cost reconcile``.

Cost Explorer names services its own way ("AWS Lambda", "AmazonCloudWatch");
``EXPLORER_NAMES`` maps the report's services to them (CloudWatch Logs and
CloudWatch are one service there). The report's side is what the functions
metered in the period plus the fixed costs the meter never sees (the secret,
the alarms, the metrics, idle pollers, storage), prorated by day; platform
APIs (X, WhatsApp) are not on the AWS bill and are left out.

A line agrees when the two differ by at most ``tolerance`` of Cost
Explorer's figure, or by less than ``floor_usd`` (cents are noise at this
scale). Why they may differ is printed with the verdict: Cost Explorer
applies the free tier and credits, lags by up to a day, and sees a tag only
on usage after the tag was activated for cost allocation.

Pure: the figures come in, lines and a verdict go out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

EXPLORER_NAMES: Dict[str, str] = {
    "lambda": "AWS Lambda",
    "dynamodb": "Amazon DynamoDB",
    "sqs": "Amazon Simple Queue Service",
    "apigateway": "Amazon API Gateway",
    "logs": "AmazonCloudWatch",
    "cloudwatch": "AmazonCloudWatch",
    "xray": "AWS X-Ray",
    "secretsmanager": "AWS Secrets Manager",
    "s3": "Amazon Simple Storage Service",
    "sns": "Amazon Simple Notification Service",
    "cognito": "Amazon Cognito",
    "eventbridge": "Amazon EventBridge",
}
# Names Cost Explorer has used for the same service.
EXPLORER_ALIASES: Dict[str, str] = {"CloudWatch Events": "Amazon EventBridge", "Amazon CloudWatch": "AmazonCloudWatch"}
NOT_COMPARED = ("Tax",)
PLATFORM_SERVICES = ("x", "meta", "whatsapp")
REASONS = (
    "Cost Explorer applies the free tier and credits; the report prices at list prices, no free tier",
    "Cost Explorer's figures lag by up to 24 hours; the report's by a minute",
    "a tag counts only for usage after it was activated as a cost allocation tag (Billing, Cost allocation tags)",
    "the report leaves out data transfer, cold starts and what the meter cannot see (see README, Costs)",
)


@dataclass(frozen=True)
class Line:
    service: str                 # Cost Explorer's name
    report_usd: float
    explorer_usd: float

    @property
    def difference_usd(self) -> float:
        return self.report_usd - self.explorer_usd

    @property
    def difference_share(self) -> Optional[float]:
        return self.difference_usd / self.explorer_usd if self.explorer_usd else None


@dataclass(frozen=True)
class Reconciliation:
    lines: Tuple[Line, ...]
    not_compared: Dict[str, float]   # Cost Explorer lines that are not socialcare's services (tax)
    tolerance: float
    floor_usd: float

    @property
    def report_usd(self) -> float:
        return math.fsum(line.report_usd for line in self.lines)

    @property
    def explorer_usd(self) -> float:
        return math.fsum(line.explorer_usd for line in self.lines)

    @property
    def difference_usd(self) -> float:
        return self.report_usd - self.explorer_usd

    def agrees(self, line: Optional[Line] = None) -> bool:
        report, explorer = (line.report_usd, line.explorer_usd) if line else (self.report_usd, self.explorer_usd)
        return abs(report - explorer) <= max(self.tolerance * explorer, self.floor_usd)

    @property
    def verdict(self) -> str:
        if not self.lines or (self.explorer_usd == 0 and self.report_usd == 0):
            return "nothing to compare: neither side has costs in the period (is the tag activated?)"
        if self.explorer_usd == 0:
            return ("Cost Explorer shows nothing under this tag: activate the tag for cost allocation, wait a day, "
                    "and check the tag key and value")
        share = self.difference_usd / self.explorer_usd
        if self.agrees():
            return f"AGREE: the report is within {self.tolerance:.0%} of Cost Explorer ({share:+.1%})"
        differing = [line.service for line in self.lines if not self.agrees(line)]
        return (f"DIFFER: the report is {share:+.1%} against Cost Explorer (more than {self.tolerance:.0%}); "
                f"look first at {', '.join(differing) or 'the total'}")


def explorer_name(service: str) -> str:
    return EXPLORER_ALIASES.get(service, service)


def reconcile(report_by_service: Mapping[str, float], explorer_by_service: Mapping[str, float], *,
              tolerance: float = 0.10, floor_usd: float = 0.01) -> Reconciliation:
    """``report_by_service``: the report's services (``lambda``, ``logs``...), in USD; ``explorer_by_service``:
    Cost Explorer's (its names). Platform APIs are left out; unknown report services keep their own name."""
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError("the tolerance is a share, zero or more")
    ours: Dict[str, List[float]] = {}
    for service, usd in report_by_service.items():
        if service in PLATFORM_SERVICES:
            continue
        ours.setdefault(EXPLORER_NAMES.get(service, service), []).append(float(usd))
    theirs: Dict[str, List[float]] = {}
    not_compared: Dict[str, float] = {}
    for service, usd in explorer_by_service.items():
        name = explorer_name(service)
        if name in NOT_COMPARED:
            not_compared[name] = not_compared.get(name, 0.0) + float(usd)
        else:
            theirs.setdefault(name, []).append(float(usd))
    lines = tuple(Line(service=name, report_usd=math.fsum(ours.get(name, [])), explorer_usd=math.fsum(theirs.get(name, [])))
                  for name in sorted(set(ours) | set(theirs)))
    return Reconciliation(lines=lines, not_compared=not_compared, tolerance=tolerance, floor_usd=floor_usd)


def render(result: Reconciliation, *, title: str) -> str:
    lines = [title, "", f"  {'service':<38}{'report':>12}{'Cost Explorer':>15}{'difference':>13}{'':>9}  "]
    for line in result.lines:
        share = f"{line.difference_share:+.0%}" if line.difference_share is not None else "n/a"
        mark = "" if result.agrees(line) else "  <-"
        lines.append(f"  {line.service:<38}{_usd(line.report_usd):>12}{_usd(line.explorer_usd):>15}"
                     f"{_usd(line.difference_usd, sign=True):>13}{share:>9}{mark}")
    lines.append(f"  {'total':<38}{_usd(result.report_usd):>12}{_usd(result.explorer_usd):>15}"
                 f"{_usd(result.difference_usd, sign=True):>13}")
    for name, usd in result.not_compared.items():
        lines.append(f"  (not compared: {name} {_usd(usd)})")
    lines += ["", f"  {result.verdict}", "", "  Why the two may differ:"] + [f"  - {reason}" for reason in REASONS]
    return "\n".join(lines)


def _usd(value: float, sign: bool = False) -> str:
    return f"{'+' if sign and value > 0 else '-' if value < 0 else ''}${abs(value):,.4f}"
