"""Powertools logging and metrics, shared by every handler.

Module-level, as the Powertools examples do: created once per container.
Logs are JSON with a correlation id per message (mention or case id); metrics
go out as CloudWatch EMF lines, so they cost no API calls.

No customer's personal data reaches the logs, at any level: the formatter
drops every key that holds some (a post's text, names, handles, the author,
the customer, triage's ``why``, which quotes the post, raw payloads and
message bodies) and every key that names a secret (tokens, passwords,
signatures), however deeply nested, before the line is written. Ids stay:
mention, case, reply and source ids are how a line is followed.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

# Keys whose values are a customer's personal data (compared in lower case).
PERSONAL_KEYS = frozenset({
    "text", "name", "names", "handle", "username", "display_name", "screen_name", "author", "author_id",
    "customer", "customer_key", "customer_keys", "email", "phone", "phone_number", "from", "sender", "recipient",
    "recipient_id", "participant_id", "profile", "permalink", "why", "raw", "body", "payload", "message_text",
})
# Parts of key names that hold credentials.
SECRET_MARKERS = ("token", "secret", "password", "authorization", "signature", "cookie", "credential", "api_key")
MAX_DEPTH = 32


def is_personal_key(key: Any) -> bool:
    name = str(key).lower()
    return name in PERSONAL_KEYS or any(marker in name for marker in SECRET_MARKERS)


def redact(value: Any, depth: int = 0) -> Any:
    """``value`` without the keys ``is_personal_key`` names, at any depth."""
    if depth > MAX_DEPTH:
        return "[nested too deep to log]"
    if isinstance(value, Mapping):
        return {k: redact(v, depth + 1) for k, v in value.items() if not is_personal_key(k)}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v, depth + 1) for v in value]
    return value


class PrivacyFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, less personal data and secrets (see ``redact``)."""

    def serialize(self, log: Any) -> str:
        return super().serialize(redact(log))


# RFC 3339 timestamps: with Lambda's JSON log format (infra/deploy.py), a line whose timestamp Lambda cannot
# read may be filed at INFO whatever its own level says.
logger = Logger(service="socialcare", logger_formatter=PrivacyFormatter(use_rfc3339=True))
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
