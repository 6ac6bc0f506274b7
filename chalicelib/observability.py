"""Powertools logging and metrics, shared by every handler.

Module-level, as the Powertools examples do: created once per container.
Logs are JSON with a correlation id per message (mention or case id); metrics
go out as CloudWatch EMF lines, so they cost no API calls.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="socialcare")
metrics = Metrics(namespace="socialcare", service="socialcare")


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def start_invocation(stage: str) -> None:
    """Forget the previous caller's log keys; every line and metric names the stage.

    Lambda reuses a container across invocations, and appended keys (agent,
    message id, correlation id) would otherwise leak into the next caller's lines.
    """
    logger.clear_state()
    logger.append_keys(stage=stage)
    if metrics.default_dimensions.get("stage") != stage:
        metrics.clear_default_dimensions()
        metrics.clear_metrics()  # nothing is pending at the start of an invocation; the last one flushed
        metrics.set_default_dimensions(stage=stage)


def flush_metrics() -> None:
    if metrics.metric_set:  # an empty flush only logs a warning
        metrics.flush_metrics()
