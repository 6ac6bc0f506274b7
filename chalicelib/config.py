"""All configuration, read from environment variables in this one place.

Each stage sets these in ``.chalice/config.json``; the local demo and the
end-to-end test set the same names for the embedded AWS. Nothing else in the
code reads ``os.environ``.
"""
from __future__ import annotations

import difflib
import functools
import os
import re
from dataclasses import dataclass
from typing import FrozenSet, Optional

# Cognito's formats: a pool id is "<region>_<letters and digits>", an app client id [\w+]{1,128}.
_CLIENT_ID = re.compile(r"[\w+]{1,128}")
_PLACEHOLDER = "REPLACE_WITH"  # what .chalice/config.json holds until the stack outputs are filled in


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    # DynamoDB tables
    cases_table: str
    mentions_table: str
    settings_table: str
    # SQS queues (names; URLs are resolved once per container)
    mentions_queue: str
    triaged_queue: str
    outbound_queue: str
    mentions_dlq: str
    triaged_dlq: str
    outbound_dlq: str
    # Platforms
    platform_secret_id: str
    x_api_base_url: str
    graph_api_base_url: str
    x_brand_user_id: str
    fetch_max_pages: int
    # Optional learned triage model (s3://bucket/key), trained with `python -m chalicelib.triage train`.
    triage_model_uri: str
    # The stack's model bucket (ModelBucketName): retrained model versions (issue 14); empty: no retraining.
    triage_models_bucket: str
    # Agent sign-in (Cognito user pool)
    user_pool_id: str
    user_pool_client_id: str
    jwks_url: str
    # Endpoint of the embedded AWS, set only for local runs (boto3 reads it too).
    aws_endpoint_url: str
    # The SNS topic notifications go to (stack output NotificationsTopicArn); empty: logged only.
    notifications_topic_arn: str = ""
    # The scheduled fetch polls sources concurrently; the run stops waiting after its budget (below the
    # fetch Lambda's timeout, 30 s) and each source after its own, so one hanging platform skips no other.
    fetch_run_budget_seconds: float = 25.0
    fetch_source_budget_seconds: float = 20.0

    # True where the deploy path turned on ReportBatchItemFailures on the SQS event
    # source mappings; elsewhere one failed record fails (and retries) its whole batch.
    report_batch_item_failures: bool = False
    # Retention (DynamoDB TTL on expires_at; rules in chalicelib/domain/retention.py): mention records
    # a fixed period after arrival; a case and all of its items that long after it was resolved or closed.
    retention_mentions_days: int = 400
    retention_cases_days: int = 730
    # Finance: the monthly budget the cost report projects against (USD; 0 = none), and price overrides
    # (JSON in the shape of chalicelib/domain/prices.py) for a deployment's own rates, without a code change.
    monthly_budget_usd: float = 0.0
    cost_prices_override: str = ""
    # The cases table's stream (stack output CasesStreamArn), read by the measure_changes function; empty
    # until the stack is deployed (the handler is then wired to a placeholder ARN at package time).
    cases_stream_arn: str = ""
    # KPIs count days in the brand's time zone (an IANA name), and first-contact resolution waits this
    # many days for a reopen or a returning customer before a resolution day's FCR figure is final.
    brand_time_zone: str = "UTC"
    fcr_window_days: int = 7
    # A customer's case-worthy follow-up this many hours after their case was resolved reopens it instead of
    # opening a new case (services/customers.py); 0 turns reopening off.
    reopen_window_hours: int = 72
    # Customers' media files (stack output MediaBucketName; empty: files are kept as platform references
    # only) and the WhatsApp Business Account whose approved templates are offered outside the 24-hour window.
    media_bucket: str = ""
    whatsapp_waba_id: str = ""
    # The daily triage digest notifies supervisors when a channel had at least this many negative mentions
    # left without a case that day (services/triage_review.py).
    triage_digest_threshold: int = 5
    # Lambda's own log lines are kept at this level and above (its advanced logging controls: SystemLogLevel,
    # which both deploy paths set on every function from this setting). START, END and REPORT are INFO lines,
    # ~420 bytes an invocation of log ingestion: WARN, the default, drops them; DEBUG or INFO brings them back.
    lambda_system_log_level: str = "WARN"

    def sign_in_problem(self) -> Optional[str]:
        """What is wrong with the agent sign-in settings, for the operator; None when they are usable.

        Without a pool id the token issuer is unknown, and without an app
        client id the audience cannot be checked: the API must then refuse
        every signed-in request rather than accept tokens of any app client.
        """
        pool_id, client_id = self.user_pool_id, self.user_pool_client_id
        if not pool_id or pool_id.startswith(_PLACEHOLDER):
            return "USER_POOL_ID is not set; set it to the stack output UserPoolId and redeploy"
        if not client_id or client_id.startswith(_PLACEHOLDER):
            return "USER_POOL_CLIENT_ID is not set; set it to the stack output UserPoolClientId and redeploy"
        region, _, suffix = pool_id.partition("_")
        if region != self.region or not suffix.isascii() or not suffix.isalnum():
            return (f"USER_POOL_ID {pool_id!r} is not a user pool id of region {self.region} "
                    f"(expected '{self.region}_' and letters and digits)")
        if not _CLIENT_ID.fullmatch(client_id):
            return "USER_POOL_CLIENT_ID is not an app client id (1 to 128 letters, digits, '_' or '+')"
        return None


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _days(name: str, default: int) -> int:
    """A retention period in whole days, 1 to 36,500; a clear error at start-up otherwise."""
    raw = _env(name).strip() or str(default)
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 36_500:
        raise ValueError(f"{name} must be a whole number of days from 1 to 36500, not {raw!r}")
    return int(raw)


def _whole(name: str, default: int, low: int, high: int, meaning: str) -> int:
    raw = _env(name).strip() or str(default)
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValueError(f"{name} must be a whole number of {meaning} from {low} to {high}, not {raw!r}")
    return int(raw)


def _tzdata_zones() -> FrozenSet[str]:
    # The same list domain/hours.py reads (the bundled tzdata package, never the host's zone files);
    # read here because config imports nothing of ours (tests/test_architecture.py).
    from importlib import resources
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in listing.splitlines() if line.strip())


def _time_zone(name: str, default: str) -> str:
    """An IANA zone name the KPI days are counted in; a clear error at start-up otherwise."""
    value = _env(name).strip() or default
    if value == "UTC":
        return value  # the default needs no zone list read at cold start
    zones = _tzdata_zones()
    if value not in zones:
        close = difflib.get_close_matches(value, sorted(zones), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use a name like 'Asia/Tokyo' or 'America/New_York'"
        raise ValueError(f"{name} {value[:60]!r} is not an IANA time zone name; {hint}")
    return value


def _unless_placeholder(value: str) -> str:
    """A stack output not filled in yet (a stage's config before its first deploy) is not set."""
    return "" if value.startswith(_PLACEHOLDER) else value


def _budget(raw: str) -> float:
    """A monthly budget in USD (0 or empty: none); a clear error at start-up otherwise."""
    try:
        value = float(raw.strip() or "0")
    except ValueError:
        raise ValueError(f"MONTHLY_BUDGET_USD must be a number of US dollars, not {raw!r}") from None
    if not 0 <= value <= 10_000_000:
        raise ValueError(f"MONTHLY_BUDGET_USD must be between 0 and 10,000,000, not {raw!r}")
    return value


SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")  # Lambda's SystemLogLevel values, most detail first


def system_log_level(raw: str) -> str:
    """LAMBDA_SYSTEM_LOG_LEVEL as Lambda's SystemLogLevel (empty: WARN); a clear error otherwise."""
    value = raw.strip().upper() or "WARN"
    if value not in SYSTEM_LOG_LEVELS:
        raise ValueError(f"LAMBDA_SYSTEM_LOG_LEVEL must be DEBUG, INFO or WARN (Lambda's system log levels), "
                         f"not {raw[:30]!r}")
    return value


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    stage = _env("SOCIALCARE_STAGE", "dev")
    prefix = f"socialcare-{stage}"
    region = _env("AWS_REGION") or _env("AWS_DEFAULT_REGION", "us-east-1")
    user_pool_id = _env("USER_POOL_ID")
    endpoint = _env("AWS_ENDPOINT_URL")
    if endpoint:
        default_jwks = f"{endpoint.rstrip('/')}/{user_pool_id}/.well-known/jwks.json"
    else:
        default_jwks = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}/.well-known/jwks.json"
    return Settings(
        stage=stage,
        region=region,
        cases_table=_env("CASES_TABLE", f"{prefix}-cases"),
        mentions_table=_env("MENTIONS_TABLE", f"{prefix}-mentions"),
        settings_table=_env("SETTINGS_TABLE", f"{prefix}-settings"),
        mentions_queue=_env("MENTIONS_QUEUE", f"{prefix}-mentions"),
        triaged_queue=_env("TRIAGED_QUEUE", f"{prefix}-triaged"),
        outbound_queue=_env("OUTBOUND_QUEUE", f"{prefix}-outbound"),
        mentions_dlq=_env("MENTIONS_DLQ", f"{prefix}-mentions-dlq"),
        triaged_dlq=_env("TRIAGED_DLQ", f"{prefix}-triaged-dlq"),
        outbound_dlq=_env("OUTBOUND_DLQ", f"{prefix}-outbound-dlq"),
        platform_secret_id=_env("PLATFORM_SECRET_ID", f"{prefix}/platforms"),
        x_api_base_url=_env("X_API_BASE_URL", "https://api.x.com"),
        graph_api_base_url=_env("GRAPH_API_BASE_URL", "https://graph.facebook.com/v21.0"),
        x_brand_user_id=_env("X_BRAND_USER_ID"),
        fetch_max_pages=int(_env("FETCH_MAX_PAGES", "5")),
        fetch_run_budget_seconds=float(_env("FETCH_RUN_BUDGET_SECONDS", "25")),
        fetch_source_budget_seconds=float(_env("FETCH_SOURCE_BUDGET_SECONDS", "20")),
        triage_model_uri=_env("TRIAGE_MODEL_URI"),
        triage_models_bucket=_unless_placeholder(_env("TRIAGE_MODELS_BUCKET")),
        user_pool_id=user_pool_id,
        user_pool_client_id=_env("USER_POOL_CLIENT_ID"),
        jwks_url=_env("COGNITO_JWKS_URL", default_jwks),
        aws_endpoint_url=endpoint,
        notifications_topic_arn=_unless_placeholder(_env("NOTIFICATIONS_TOPIC_ARN")),
        report_batch_item_failures=_env("SQS_REPORT_BATCH_ITEM_FAILURES", "false").lower() == "true",
        retention_mentions_days=_days("RETENTION_MENTIONS_DAYS", 400),
        retention_cases_days=_days("RETENTION_CASES_DAYS", 730),
        monthly_budget_usd=_budget(_env("MONTHLY_BUDGET_USD")),
        cost_prices_override=_env("COST_PRICES_OVERRIDE"),
        cases_stream_arn=_unless_placeholder(_env("CASES_STREAM_ARN")),
        brand_time_zone=_time_zone("BRAND_TIME_ZONE", "UTC"),
        fcr_window_days=_whole("FCR_WINDOW_DAYS", 7, 1, 90, "days"),
        reopen_window_hours=_whole("REOPEN_WINDOW_HOURS", 72, 0, 720, "hours"),
        media_bucket=_unless_placeholder(_env("MEDIA_BUCKET")),
        whatsapp_waba_id=_env("WHATSAPP_WABA_ID"),
        triage_digest_threshold=_whole("TRIAGE_DIGEST_THRESHOLD", 5, 1, 100_000, "mentions"),
        lambda_system_log_level=system_log_level(_env("LAMBDA_SYSTEM_LOG_LEVEL")),
    )
