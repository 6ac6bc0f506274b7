"""What socialcare costs: usage priced row by row, so a person can check the arithmetic.

Usage is a mapping of ``service.kind`` to a quantity in the unit its price is
quoted in ({"dynamodb.write_request_units": 1234, "lambda.gb_seconds": 5.6});
``price_usage`` turns it into a ``Bill``: one row per kind, with the quantity,
the unit price and the cost, and rows that add up to the total. The metering
(later) and ``bench/cost.py`` (now) produce usage; the report, the ``estimate``
command and the budget price it here, with the table of ``domain/prices.py``
overridden per deployment (``load_prices``).

Fixed costs (polling every minute with nothing new, the secret, the alarms,
storage that grows) are kept apart from per-use costs: ``estimate_month``
returns them as their own parts. ``project_month`` projects a month from its
first days.

Pure: no clock, no files, no AWS. Prices are floats in USD; a row's cost is
its quantity times the unit price, unrounded; ``Bill.rounded`` rounds for
display so that the shown rows still add up to the shown total.
"""
from __future__ import annotations

import calendar
import copy
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from chalicelib.domain.prices import PRICES

Usage = Dict[str, float]

ARCHITECTURES = ("arm64", "x86_64")
PLATFORM_SERVICES = ("x", "meta", "whatsapp")
CHANNELS = ("x", "facebook", "instagram", "messenger", "whatsapp")
_REQUIRED = ("per", "unit", "source", "as_of")

# A planned month, and how often the schedules in app.py run.
MONTH_DAYS = 30
POLLS_PER_DAY = 24 * 60          # fetch_mentions: Rate(1, MINUTES)
TOKEN_REFRESHES_PER_DAY = 24 * 2  # refresh_x_token: Rate(30, MINUTES)
# Lambda polls each SQS event source with long polls (20 s) whether or not anything arrives; AWS
# documents five pollers to start with. Three queues feed functions (mentions, triaged, outbound).
# A model, not a measurement: the number of pollers at rest is not published.
SQS_POLLERS_PER_QUEUE = 5
LONG_POLLS_PER_MINUTE = 3
QUEUES_WITH_LAMBDA_POLLERS = 3
# X's DM list (GET /2/dm_events) has no since_id: every poll returns the newest page again, and X bills a
# resource once per UTC day, so each day the page's events (up to 100, of the last 30 days) are billed anew.
X_DM_PAGE = 100
X_DM_WINDOW_DAYS = 30
BYTES_PER_GB = 1024 ** 3          # AWS bills storage in binary gigabytes
LOG_RETENTION_DAYS = 30           # .chalice/config.json log_retention_in_days


class PriceError(ValueError):
    """A price table, an override or a usage key that cannot be priced; the message names it."""


# ---- prices ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Price:
    key: str
    usd: float          # for `per` units, as the price page quotes it
    per: float
    unit: str
    source: str
    as_of: str
    estimate: bool = False
    note: str = ""
    free_per_month: Optional[float] = None

    @property
    def unit_usd(self) -> float:
        return self.usd / self.per

    @property
    def service(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def provider(self) -> str:
        return "platform" if self.service in PLATFORM_SERVICES else "aws"

    def quoted(self) -> str:
        """'$0.625 per 1,000,000 write request units', '$0.0000133334 per GB-seconds'."""
        usd = f"{self.usd:.10f}".rstrip("0").rstrip(".") if self.usd else "0"
        return f"${usd} per {self.per:,.0f} {self.unit}" if self.per != 1 else f"${usd} per {self.unit}"


@dataclass(frozen=True)
class PriceTable:
    region: str
    architecture: str
    whatsapp_market: str
    checked: str
    prices: Mapping[str, Price]

    def price(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise PriceError(f"no price for {key!r} in the {self.region} table") from None

    @property
    def estimates(self) -> List[Price]:
        return [p for p in self.prices.values() if p.estimate]


def load_prices(region: str = "us-east-1", architecture: str = "arm64", whatsapp_market: str = "JP",
                override: Union[None, str, Mapping[str, Any]] = None,
                base: Mapping[str, Any] = PRICES) -> PriceTable:
    """The prices for one region, architecture and WhatsApp market, with a deployment's override merged in.

    ``override`` is a JSON document (text, or already parsed) of the same
    shape as ``PRICES``; an entry in it replaces the entry of the same key
    whole, so it must carry its own ``source`` and ``as_of``. It may add a
    region or a market. Where it comes from (a setting, a file) is the
    caller's business: this stays free of I/O.
    """
    if architecture not in ARCHITECTURES:
        raise PriceError(f"architecture must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}")
    document = merge_prices(base, _parsed(override)) if override is not None else base
    regions = document.get("aws") or {}
    if region not in regions:
        raise PriceError(f"no AWS prices for region {region!r} (known: {', '.join(sorted(regions))})")
    markets = document.get("whatsapp") or {}
    if whatsapp_market not in markets:
        raise PriceError(f"no WhatsApp prices for market {whatsapp_market!r} (known: {', '.join(sorted(markets))})")
    entries = {**regions[region], **(document.get("platforms") or {}), **markets[whatsapp_market]}
    prices = {key: _price(key, entry, architecture) for key, entry in entries.items()}
    return PriceTable(region=region, architecture=architecture, whatsapp_market=whatsapp_market,
                      checked=str(document.get("checked", "")), prices=prices)


def merge_prices(base: Mapping[str, Any], override: Mapping[str, Any]) -> Dict[str, Any]:
    """``base`` with ``override`` laid over it: sections and regions merge, entries are replaced whole."""
    merged: Dict[str, Any] = copy.deepcopy(dict(base))
    for section, value in override.items():
        if section in ("aws", "whatsapp"):
            if not isinstance(value, Mapping):
                raise PriceError(f"override: {section!r} must be an object of {'regions' if section == 'aws' else 'markets'}")
            target = merged.setdefault(section, {})
            for group, entries in value.items():
                if not isinstance(entries, Mapping):
                    raise PriceError(f"override: {section}.{group} must be an object of prices")
                target.setdefault(group, {}).update(copy.deepcopy(dict(entries)))
        elif section == "platforms":
            if not isinstance(value, Mapping):
                raise PriceError("override: 'platforms' must be an object of prices")
            merged.setdefault("platforms", {}).update(copy.deepcopy(dict(value)))
        elif section in ("checked", "currency"):
            if section == "currency" and value != "USD":
                raise PriceError("override: prices are in USD")
            merged[section] = value
        else:
            raise PriceError(f"override: unknown section {section!r} (aws, platforms, whatsapp, checked)")
    return merged


def _parsed(override: Union[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    if isinstance(override, str):
        try:
            override = json.loads(override)
        except ValueError as err:
            raise PriceError(f"the price override is not JSON: {err}") from None
    if not isinstance(override, Mapping):
        raise PriceError("the price override must be a JSON object")
    return override


def _price(key: str, entry: Any, architecture: str) -> Price:
    if not isinstance(entry, Mapping):
        raise PriceError(f"price {key!r} must be an object")
    missing = [name for name in _REQUIRED if name not in entry]
    if missing:
        raise PriceError(f"price {key!r} lacks {', '.join(missing)}")
    if "usd_by_architecture" in entry:
        by_architecture = entry["usd_by_architecture"]
        if not isinstance(by_architecture, Mapping) or architecture not in by_architecture:
            raise PriceError(f"price {key!r} has no figure for {architecture}")
        usd = by_architecture[architecture]
    elif "usd" in entry:
        usd = entry["usd"]
    else:
        raise PriceError(f"price {key!r} lacks usd")
    per = entry["per"]
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not math.isfinite(usd) or usd < 0:
        raise PriceError(f"price {key!r}: usd must be a number of dollars, zero or more")
    if isinstance(per, bool) or not isinstance(per, (int, float)) or not math.isfinite(per) or per <= 0:
        raise PriceError(f"price {key!r}: per must be a positive number")
    free = entry.get("free_per_month")
    return Price(key=key, usd=float(usd), per=float(per), unit=str(entry["unit"]), source=str(entry["source"]),
                 as_of=str(entry["as_of"]), estimate=bool(entry.get("estimate", False)), note=str(entry.get("note", "")),
                 free_per_month=float(free) if isinstance(free, (int, float)) and not isinstance(free, bool) else None)


# ---- bills -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PricedRow:
    price: Price
    quantity: float

    @property
    def key(self) -> str:
        return self.price.key

    @property
    def cost_usd(self) -> float:
        return self.quantity * self.price.unit_usd

    def to_dict(self) -> Dict[str, Any]:
        return {"key": self.key, "service": self.price.service, "provider": self.price.provider,
                "quantity": self.quantity, "unit": self.price.unit, "unit_usd": self.price.unit_usd,
                "price": self.price.quoted(), "cost_usd": self.cost_usd, "estimate": self.price.estimate,
                "source": self.price.source, "as_of": self.price.as_of}


@dataclass(frozen=True)
class Bill:
    rows: Tuple[PricedRow, ...] = ()

    @property
    def total_usd(self) -> float:
        return math.fsum(row.cost_usd for row in self.rows)

    @property
    def aws_usd(self) -> float:
        return math.fsum(row.cost_usd for row in self.rows if row.price.provider == "aws")

    @property
    def platform_usd(self) -> float:
        return math.fsum(row.cost_usd for row in self.rows if row.price.provider == "platform")

    @property
    def usage(self) -> Usage:
        return {row.key: row.quantity for row in self.rows}

    def by_service(self) -> Dict[str, float]:
        totals: Dict[str, List[float]] = {}
        for row in self.rows:
            totals.setdefault(row.price.service, []).append(row.cost_usd)
        return {service: math.fsum(costs) for service, costs in sorted(totals.items())}

    def rounded(self, places: int = 2) -> Tuple[List[float], float]:
        """Each row's cost and the total rounded to ``places``, the rows still adding up to the total.

        The total is rounded; the units it has are handed to the rows by the
        largest remainder, so no row moves by more than one unit of the last place.
        """
        scale = 10 ** places
        total_units = round(self.total_usd * scale)
        exact = [row.cost_usd * scale for row in self.rows]
        units = [math.floor(value) for value in exact]
        order = sorted(range(len(exact)), key=lambda i: exact[i] - units[i], reverse=True)
        for index in order[:max(0, total_units - sum(units))]:
            units[index] += 1
        return [u / scale for u in units], total_units / scale

    def to_dict(self) -> Dict[str, Any]:
        return {"total_usd": self.total_usd, "aws_usd": self.aws_usd, "platform_usd": self.platform_usd,
                "rows": [row.to_dict() for row in self.rows]}


def price_usage(usage: Mapping[str, float], prices: PriceTable) -> Bill:
    """One row per kind of usage (zero quantities left out), sorted by key. A kind nobody priced is an
    error, not a silent zero: a bill that leaves something out cannot be checked."""
    rows = []
    for key in sorted(usage):
        quantity = usage[key]
        if isinstance(quantity, bool) or not isinstance(quantity, (int, float)) or not math.isfinite(quantity):
            raise PriceError(f"usage {key!r} must be a number, not {quantity!r}")
        if quantity < 0:
            raise PriceError(f"usage {key!r} is negative ({quantity})")
        if quantity:
            rows.append(PricedRow(price=prices.price(key), quantity=float(quantity)))
    return Bill(rows=tuple(rows))


# ---- usage arithmetic --------------------------------------------------------------------------

def add_usage(*usages: Mapping[str, float]) -> Usage:
    total: Dict[str, List[float]] = {}
    for usage in usages:
        for key, quantity in usage.items():
            total.setdefault(key, []).append(float(quantity))
    return {key: math.fsum(values) for key, values in total.items()}


def scale_usage(usage: Mapping[str, float], factor: float) -> Usage:
    return {key: float(quantity) * factor for key, quantity in usage.items()}


def usage_per(usage: Mapping[str, float], count: float) -> Usage:
    """Usage per one of ``count`` things (per mention, per case)."""
    if count <= 0:
        raise ValueError("cannot share usage among zero things")
    return scale_usage(usage, 1.0 / count)


def cost_per(total_usd: float, count: float) -> Optional[float]:
    """Cost per mention or per case; None when there were none (not zero: nothing to divide)."""
    return total_usd / count if count > 0 else None


# ---- the month -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MonthProjection:
    month_to_date_usd: float
    projected_usd: float
    days_elapsed: float
    days_in_month: int


def project_month(per_use_to_date_usd: float, at: datetime, fixed_month_usd: float = 0.0) -> MonthProjection:
    """The month's bill projected from its per-use cost so far, at the same pace, plus its fixed costs.

    Months are UTC, as AWS bills them (a naive ``at`` is taken as UTC). In the
    first hour of a month, the pace of that hour is taken for the hour: no
    division by zero, and little to project from.
    """
    moment = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    days_in_month = calendar.monthrange(moment.year, moment.month)[1]
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elapsed = max((moment - start).total_seconds() / 86_400, 1 / 24)
    fixed_to_date = fixed_month_usd * elapsed / days_in_month
    projected = per_use_to_date_usd * days_in_month / elapsed + fixed_month_usd
    return MonthProjection(month_to_date_usd=per_use_to_date_usd + fixed_to_date, projected_usd=projected,
                           days_elapsed=elapsed, days_in_month=days_in_month)


# ---- what bench/cost.py measured -------------------------------------------------------------------

@dataclass(frozen=True)
class UsageProfile:
    """AWS and platform usage per mention and per case, measured by ``bench/cost.py``.

    ``per_mention``: listen and triage, for every mention fetched or pushed,
    duplicates included, except API Gateway for webhooks, which is
    ``webhook_per_pushed_mention`` (per mention a webhook delivered).
    ``per_case``: the case lifecycle (assignment, the agent's API calls, the
    reply sent). ``platform_per_mention`` and ``platform_per_case`` are by
    channel. ``idle_poll_run`` and ``token_refresh_run`` are one run of each
    schedule that finds nothing to do: the fixed cost of listening.
    """
    measured: str
    command: str
    architecture: str
    per_mention: Usage
    webhook_per_pushed_mention: Usage
    per_case: Usage
    channel_share: Dict[str, float]
    pushed_share: Dict[str, float]
    platform_per_mention: Dict[str, Usage]
    platform_per_case: Dict[str, Usage]
    idle_poll_run: Usage
    token_refresh_run: Usage
    stored_bytes_per_mention: float
    stored_bytes_per_case: float
    custom_metrics: int
    alarms: int
    agent_api_calls_per_case: float = 4.0
    x_dm_events_per_x_mention: float = 0.0   # DM events (the customers' and the brand's) per X mention
    x_users_per_dm_event: float = 0.0        # users X returns with a page of DM events, per event
    notes: Tuple[str, ...] = ()
    workload: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "UsageProfile":
        try:
            return cls(
                measured=str(data["measured"]), command=str(data["command"]), architecture=str(data["architecture"]),
                per_mention=_usage(data["per_mention"]),
                webhook_per_pushed_mention=_usage(data["webhook_per_pushed_mention"]),
                per_case=_usage(data["per_case"]),
                channel_share={str(k): float(v) for k, v in data["channel_share"].items()},
                pushed_share={str(k): float(v) for k, v in data["pushed_share"].items()},
                platform_per_mention={str(k): _usage(v) for k, v in data["platform_per_mention"].items()},
                platform_per_case={str(k): _usage(v) for k, v in data["platform_per_case"].items()},
                idle_poll_run=_usage(data["idle_poll_run"]), token_refresh_run=_usage(data["token_refresh_run"]),
                stored_bytes_per_mention=float(data["stored_bytes_per_mention"]),
                stored_bytes_per_case=float(data["stored_bytes_per_case"]),
                custom_metrics=int(data["custom_metrics"]), alarms=int(data["alarms"]),
                agent_api_calls_per_case=float(data.get("agent_api_calls_per_case", 4.0)),
                x_dm_events_per_x_mention=float(data.get("x_dm_events_per_x_mention", 0.0)),
                x_users_per_dm_event=float(data.get("x_users_per_dm_event", 0.0)),
                notes=tuple(str(n) for n in data.get("notes", ())), workload=dict(data.get("workload") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"not a usage profile: {err!r}") from None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "measured": self.measured, "command": self.command, "architecture": self.architecture,
            "workload": self.workload, "notes": list(self.notes),
            "per_mention": self.per_mention, "webhook_per_pushed_mention": self.webhook_per_pushed_mention,
            "per_case": self.per_case, "agent_api_calls_per_case": self.agent_api_calls_per_case,
            "channel_share": self.channel_share, "pushed_share": self.pushed_share,
            "platform_per_mention": self.platform_per_mention, "platform_per_case": self.platform_per_case,
            "idle_poll_run": self.idle_poll_run, "token_refresh_run": self.token_refresh_run,
            "stored_bytes_per_mention": self.stored_bytes_per_mention,
            "stored_bytes_per_case": self.stored_bytes_per_case,
            "custom_metrics": self.custom_metrics, "alarms": self.alarms,
            "x_dm_events_per_x_mention": self.x_dm_events_per_x_mention,
            "x_users_per_dm_event": self.x_users_per_dm_event,
        }


def _usage(value: Any) -> Usage:
    if not isinstance(value, Mapping):
        raise TypeError(f"usage must be an object, not {type(value).__name__}")
    return {str(k): float(v) for k, v in value.items()}


# ---- a planned month ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    mentions_per_day: float
    case_rate: float
    agents: int
    channels: Tuple[str, ...] = CHANNELS
    days: int = MONTH_DAYS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mentions_per_day) and self.mentions_per_day >= 0):
            raise ValueError("mentions per day must be zero or more")
        if not 0 <= self.case_rate <= 1:
            raise ValueError("the case rate is a share of mentions, from 0 to 1")
        if self.agents < 1:
            raise ValueError("at least one agent")
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown or not self.channels:
            raise ValueError(f"channels are some of {', '.join(CHANNELS)}" + (f", not {', '.join(unknown)}" if unknown else ""))
        if self.days < 1:
            raise ValueError("at least one day")


@dataclass(frozen=True)
class Part:
    """One line of an estimate: what it is, why it costs, and its priced usage."""
    label: str
    why: str
    fixed: bool
    bill: Bill


@dataclass(frozen=True)
class Estimate:
    plan: Plan
    prices: PriceTable
    mentions: float
    cases: float
    parts: Tuple[Part, ...]
    storage_at_retention_usd: float

    @property
    def total_usd(self) -> float:
        return math.fsum(part.bill.total_usd for part in self.parts)

    @property
    def per_use_usd(self) -> float:
        return math.fsum(part.bill.total_usd for part in self.parts if not part.fixed)

    @property
    def fixed_usd(self) -> float:
        return math.fsum(part.bill.total_usd for part in self.parts if part.fixed)

    @property
    def aws_usd(self) -> float:
        return math.fsum(part.bill.aws_usd for part in self.parts)

    @property
    def platform_usd(self) -> float:
        return math.fsum(part.bill.platform_usd for part in self.parts)

    @property
    def per_agent_usd(self) -> float:
        return self.total_usd / self.plan.agents

    @property
    def per_mention_usd(self) -> Optional[float]:
        return cost_per(self.total_usd, self.mentions)

    @property
    def per_case_usd(self) -> Optional[float]:
        """What the case lifecycle costs a case, its platform reply included (listening is per mention)."""
        case_parts = [p.bill.total_usd for p in self.parts if p.label in (CASE_LIFECYCLE, PLATFORM_REPLIES)]
        return cost_per(math.fsum(case_parts), self.cases)

    def usage(self) -> Usage:
        return add_usage(*(part.bill.usage for part in self.parts))


LISTEN = "listen + triage"
WEBHOOKS = "Meta webhooks: API Gateway"
CASE_LIFECYCLE = "case lifecycle"
LOG_STORAGE = "logs kept 30 days"
PLATFORM_READS = "platform APIs: reading"
PLATFORM_REPLIES = "platform APIs: replies"
IDLE_POLLING = "polling every minute, nothing new"
X_TOKEN_REFRESH = "X token refresh every 30 minutes"
X_DM_REREADS = "X DMs read again each UTC day"
# Fixed costs the functions' meter sees as use (the scheduled runs and what they read): in a report's
# metered figures already. The other fixed parts (the secret, alarms, metrics, idle SQS pollers, sign-ins,
# storage) are never metered and are added to the metered use.
METERED_FIXED = (IDLE_POLLING, X_TOKEN_REFRESH, X_DM_REREADS)


def estimate_month(profile: UsageProfile, plan: Plan, prices: PriceTable) -> Estimate:
    """A planned month: per-use costs from the measured usage per mention and per case, and fixed costs.

    The channels' shares of mentions are the measured mix, kept to the chosen
    channels and scaled to add up to one; every channel becomes cases at the
    planned rate. Storage is what the month adds (it keeps growing until the
    retention periods, ``storage_at_retention_usd``).
    """
    share = _channel_share(profile, plan.channels)
    mentions = plan.mentions_per_day * plan.days
    cases = mentions * plan.case_rate
    months = plan.days / MONTH_DAYS
    pushed = mentions * math.fsum(share[c] * profile.pushed_share.get(c, 0.0) for c in share)

    def part(label: str, why: str, usage: Mapping[str, float], fixed: bool = False) -> Part:
        return Part(label=label, why=why, fixed=fixed, bill=price_usage(usage, prices))

    reads = add_usage(*(scale_usage(profile.platform_per_mention.get(c, {}), mentions * s) for c, s in share.items()))
    replies = add_usage(*(scale_usage(profile.platform_per_case.get(c, {}), cases * s) for c, s in share.items()))
    minutes = plan.days * POLLS_PER_DAY
    idle_sqs = QUEUES_WITH_LAMBDA_POLLERS * SQS_POLLERS_PER_QUEUE * LONG_POLLS_PER_MINUTE * minutes
    stored_gb = (profile.stored_bytes_per_mention * mentions + profile.stored_bytes_per_case * cases) / BYTES_PER_GB
    case_gb = profile.stored_bytes_per_case * cases / BYTES_PER_GB

    parts = [
        part(LISTEN, f"{mentions:,.0f} mentions fetched or pushed, deduplicated and triaged",
             scale_usage(profile.per_mention, mentions)),
        part(WEBHOOKS, f"{pushed:,.0f} mentions pushed by Meta's webhooks", scale_usage(profile.webhook_per_pushed_mention, pushed)),
        part(CASE_LIFECYCLE, f"{cases:,.0f} cases assigned, listed, opened, answered, sent and resolved "
                             f"({profile.agent_api_calls_per_case:g} agent API calls each)",
             scale_usage(profile.per_case, cases)),
        part(PLATFORM_READS, "X bills each post, user and DM read; Meta's Graph API is free", reads),
        part(PLATFORM_REPLIES, "one reply per case: X bills each post and DM; WhatsApp each message", replies),
    ]
    if "x" not in plan.channels:
        idle = {k: v for k, v in profile.idle_poll_run.items() if not k.startswith("x.")}
    else:
        idle = dict(profile.idle_poll_run)
    fixed = [
        part(IDLE_POLLING, f"{minutes:,} scheduled runs of fetch_mentions",
             add_usage(scale_usage(idle, minutes), {"eventbridge.scheduled_events": minutes}), fixed=True),
        part("SQS long polls by Lambda, queues idle",
             f"{QUEUES_WITH_LAMBDA_POLLERS} queues x {SQS_POLLERS_PER_QUEUE} pollers x {LONG_POLLS_PER_MINUTE} "
             "receives a minute (a model: AWS does not publish its poller count at rest)",
             {"sqs.requests": idle_sqs}, fixed=True),
        part("platform secret", "one secret, its value cached 5 minutes per container",
             {"secretsmanager.secrets": months}, fixed=True),
        part("alarms", f"{profile.alarms} CloudWatch alarms (infra/template.yaml)",
             {"cloudwatch.alarms": profile.alarms * months}, fixed=True),
        part("custom metrics", f"{profile.custom_metrics} EMF metrics, taken as sent every hour (an upper bound)",
             {"cloudwatch.custom_metrics": profile.custom_metrics * months}, fixed=True),
        part("agents' sign-ins", f"{plan.agents} monthly active users in the Cognito pool",
             {"cognito.monthly_active_users": plan.agents * months}, fixed=True),
        part("storage added this month", f"{stored_gb * 1024:,.1f} MB of mentions and cases (indexes included), "
                                          "and the cases table's point-in-time recovery",
             {"dynamodb.storage_gb_month": stored_gb, "dynamodb.pitr_gb_month": case_gb}, fixed=True),
    ]
    if "x" in plan.channels:
        listed = min(X_DM_PAGE, X_DM_WINDOW_DAYS * plan.mentions_per_day * share["x"] * profile.x_dm_events_per_x_mention)
        fixed.insert(1, part(X_DM_REREADS,
                             f"polling lists the newest {listed:,.0f} DM events (at most {X_DM_PAGE}, of "
                             f"{X_DM_WINDOW_DAYS} days) every minute; X bills them once a day",
                             {"x.dm_event_reads": listed * plan.days,
                              "x.user_reads": listed * profile.x_users_per_dm_event * plan.days}, fixed=True))
        fixed.insert(1, part(X_TOKEN_REFRESH, f"{plan.days * TOKEN_REFRESHES_PER_DAY:,} runs",
                             add_usage(scale_usage(profile.token_refresh_run, plan.days * TOKEN_REFRESHES_PER_DAY),
                                       {"eventbridge.scheduled_events": plan.days * TOKEN_REFRESHES_PER_DAY}),
                             fixed=True))
    logged_gb = math.fsum(p.bill.usage.get("logs.ingested_gb", 0.0) for p in parts + fixed)
    parts.append(part(LOG_STORAGE, f"{logged_gb * 1024:,.1f} MB of logs a month, kept {LOG_RETENTION_DAYS} days "
                                   "(uncompressed: an upper bound)", {"logs.stored_gb_month": logged_gb}))
    # Storage once the retention periods are full: mentions 400 days after arrival, cases 730 days after
    # they end (the defaults of RETENTION_MENTIONS_DAYS and RETENTION_CASES_DAYS), at this month's pace.
    daily_mention_gb = profile.stored_bytes_per_mention * plan.mentions_per_day / BYTES_PER_GB
    daily_case_gb = profile.stored_bytes_per_case * plan.mentions_per_day * plan.case_rate / BYTES_PER_GB
    at_retention = price_usage({"dynamodb.storage_gb_month": daily_mention_gb * 400 + daily_case_gb * 730,
                                "dynamodb.pitr_gb_month": daily_case_gb * 730}, prices).total_usd
    return Estimate(plan=plan, prices=prices, mentions=mentions, cases=cases, parts=tuple(parts + fixed),
                    storage_at_retention_usd=at_retention)


def _channel_share(profile: UsageProfile, channels: Iterable[str]) -> Dict[str, float]:
    chosen = {c: profile.channel_share.get(c, 0.0) for c in channels}
    total = math.fsum(chosen.values())
    if total <= 0:  # channels the bench did not measure: share equally
        return {c: 1.0 / len(chosen) for c in chosen}
    return {c: s / total for c, s in chosen.items()}


def fixed_parts(profile: UsageProfile, prices: PriceTable, *, mentions_per_day: float, case_rate: float,
                channels: Iterable[str] = CHANNELS, agents: int = 1, days: int = MONTH_DAYS) -> Tuple[Part, ...]:
    """The fixed parts of a month at this pace (``estimate_month``'s, whatever the traffic): for the cost
    report, which meters the use but not the secret, the alarms, the idle pollers or the storage."""
    chosen = tuple(c for c in CHANNELS if c in set(channels)) or CHANNELS
    plan = Plan(mentions_per_day=max(0.0, mentions_per_day), case_rate=min(1.0, max(0.0, case_rate)),
                agents=max(1, agents), channels=chosen, days=days)
    return tuple(part for part in estimate_month(profile, plan, prices).parts if part.fixed)


def listen_aws_per_mention(profile: UsageProfile, prices: PriceTable) -> float:
    """What ``bench/cost.py`` measured listen + triage costing AWS per mention, the webhooks' API Gateway
    requests included at the measured share of pushed mentions: the figure a report's
    ``per_mention_aws_usd`` compares with."""
    pushed = math.fsum(share * profile.pushed_share.get(channel, 0.0) for channel, share in profile.channel_share.items())
    return (price_usage(profile.per_mention, prices).aws_usd
            + pushed * price_usage(profile.webhook_per_pushed_mention, prices).aws_usd)
