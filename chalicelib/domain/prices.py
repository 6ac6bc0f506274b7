"""List prices, as data: AWS per region (and Lambda per architecture), the platforms' APIs.

Python rather than a JSON file so the domain stays free of I/O; the shape is
plain JSON all the same, and a deployment overrides any part of it with a JSON
document of the same shape (``chalicelib.domain.cost.load_prices``), without a
code change. Every entry names its ``source`` and ``as_of`` date (when the
figure was read there). ``estimate: true`` marks a figure that could not be
confirmed from a source and is inferred (its ``note`` says from what); check
those before quoting them. ``free_per_month`` records a free tier or allowance
for the reader; the arithmetic never applies it (list prices, as the issue asks).

An entry's price is ``usd`` for ``per`` units of ``unit`` (as the price pages
quote it: $0.625 per 1,000,000 write request units). Lambda's duration price
depends on the architecture: ``usd_by_architecture`` instead of ``usd``.
Prices of the first volume tier; socialcare's scale never reaches the next.
"""
from __future__ import annotations

from typing import Any, Dict

# What the AWS Price List API transcription below was read from: the regional offer files
# https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<Service>/current/ap-northeast-1/index.json,
# as transcribed (with each usage type) in a public cost model dated 2026-09-23.
_APN1_PRICE_LIST = "AWS Price List API, ap-northeast-1 offer files (usage type {usage_type}), read 2026-09-23"

PRICES: Dict[str, Any] = {
    "currency": "USD",
    "checked": "2026-12-01",
    "aws": {
        "us-east-1": {
            "lambda.requests": {
                "usd": 0.20, "per": 1_000_000, "unit": "requests",
                "source": "https://aws.amazon.com/lambda/pricing/", "as_of": "2026-12-01",
                "free_per_month": 1_000_000,
                "note": "every invocation, whatever triggered it"},
            "lambda.gb_seconds": {
                "usd_by_architecture": {"arm64": 0.0000133334, "x86_64": 0.0000166667}, "per": 1, "unit": "GB-seconds",
                "source": "https://aws.amazon.com/lambda/pricing/", "as_of": "2026-12-01",
                "free_per_month": 400_000,
                "note": "first tier (x86 up to 6 billion, arm64 up to 7.5 billion GB-s a month: "
                        "https://aws.amazon.com/blogs/compute/introducing-tiered-pricing-for-aws-lambda/); "
                        "duration rounded up to 1 ms; the INIT phase is billed too since 2025-08-01"},
            "sqs.requests": {
                "usd": 0.40, "per": 1_000_000, "unit": "requests",
                "source": "https://aws.amazon.com/sqs/pricing/", "as_of": "2026-12-01",
                "free_per_month": 1_000_000,
                "note": "standard queues; every 64 KB chunk of a request's payload is one request; "
                        "empty receives count (confirmed by https://cloudburn.io/blog/amazon-sqs-pricing, March 2026)"},
            "dynamodb.write_request_units": {
                "usd": 0.625, "per": 1_000_000, "unit": "write request units",
                "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/", "as_of": "2025-07-21",
                "note": "on-demand after the November 2024 cut (as quoted by "
                        "https://airbyte.com/data-engineering-resources/dynamodb-pricing, 2025-07-21); 1 unit per 1 KB "
                        "written, 2 in a transaction; every index the write touches is a write of its own"},
            "dynamodb.read_request_units": {
                "usd": 0.125, "per": 1_000_000, "unit": "read request units",
                "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/", "as_of": "2025-07-21",
                "note": "1 unit per 4 KB read strongly consistent, half eventually consistent, 2 in a transaction"},
            "dynamodb.storage_gb_month": {
                "usd": 0.25, "per": 1, "unit": "GB-months",
                "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/", "as_of": "2026-12-01",
                "free_per_month": 25,
                "note": "Standard table class; each item stores 100 bytes of overhead, each index entry another 100"},
            "dynamodb.pitr_gb_month": {
                "usd": 0.20, "per": 1, "unit": "GB-months",
                "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/", "as_of": "2026-12-01",
                "note": "continuous backups (point-in-time recovery), on the cases table"},
            "apigateway.rest_requests": {
                "usd": 3.50, "per": 1_000_000, "unit": "requests",
                "source": "https://docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/"
                          "cost-optimization.html", "as_of": "2026-12-01",
                "free_per_month": 1_000_000,
                "note": "REST API, first 333 million a month; the free tier is for the first 12 months of an account only"},
            "logs.ingested_gb": {
                "usd": 0.50, "per": 1, "unit": "GB",
                "source": "https://aws.amazon.com/cloudwatch/pricing/", "as_of": "2026-12-01",
                "free_per_month": 5,
                "note": "Lambda logs (vended logs, first 10 TB); confirmed by "
                        "https://hykell.com/knowledge-base/aws-cloudwatch-logs-pricing"},
            "logs.stored_gb_month": {
                "usd": 0.03, "per": 1, "unit": "GB-months",
                "source": "https://aws.amazon.com/cloudwatch/pricing/", "as_of": "2026-12-01",
                "note": "billed on compressed bytes; socialcare keeps Lambda logs 30 days"},
            "cloudwatch.custom_metrics": {
                "usd": 0.30, "per": 1, "unit": "metric-months",
                "source": "https://aws.amazon.com/cloudwatch/pricing/", "as_of": "2026-12-01",
                "free_per_month": 10,
                "note": "each metric name and dimension set (EMF included), prorated by the hour it is sent in"},
            "cloudwatch.alarms": {
                "usd": 0.10, "per": 1, "unit": "alarm-months",
                "source": "https://aws.amazon.com/cloudwatch/pricing/", "as_of": "2026-12-01",
                "free_per_month": 10, "note": "standard resolution, one metric each"},
            "secretsmanager.secrets": {
                "usd": 0.40, "per": 1, "unit": "secret-months",
                "source": "https://aws.amazon.com/secrets-manager/pricing/", "as_of": "2026-12-01"},
            "secretsmanager.api_calls": {
                "usd": 0.05, "per": 10_000, "unit": "API calls",
                "source": "https://aws.amazon.com/secrets-manager/pricing/", "as_of": "2026-12-01"},
            "s3.put_requests": {
                "usd": 0.005, "per": 1_000, "unit": "PUT, COPY, POST, LIST requests",
                "source": "https://aws.amazon.com/s3/pricing/", "as_of": "2026-12-01"},
            "s3.get_requests": {
                "usd": 0.0004, "per": 1_000, "unit": "GET and other requests",
                "source": "https://aws.amazon.com/s3/pricing/", "as_of": "2026-12-01"},
            "s3.storage_gb_month": {
                "usd": 0.023, "per": 1, "unit": "GB-months",
                "source": "https://aws.amazon.com/s3/pricing/", "as_of": "2026-12-01", "note": "S3 Standard, first 50 TB"},
            "eventbridge.scheduled_events": {
                "usd": 0.0, "per": 1_000_000, "unit": "scheduled rule events",
                "source": "https://www.wring.co/blog/aws-eventbridge-pricing-guide", "as_of": "2026-12-01",
                "note": "events of schedule rules come from an AWS service and are free (Chalice schedules are rules; "
                        "EventBridge Scheduler would be $1.00 per million after 14 million free)"},
            "sns.publishes": {
                "usd": 0.50, "per": 1_000_000, "unit": "publishes",
                "source": "https://aws.amazon.com/sns/pricing/", "as_of": "2026-12-01", "free_per_month": 1_000_000},
            "sns.email_notifications": {
                "usd": 2.00, "per": 100_000, "unit": "e-mail notifications",
                "source": "https://aws.amazon.com/sns/pricing/", "as_of": "2026-12-01", "free_per_month": 1_000},
            "xray.traces_recorded": {
                "usd": 5.00, "per": 1_000_000, "unit": "traces recorded",
                "source": "https://aws.amazon.com/xray/pricing/", "as_of": "2026-12-01", "free_per_month": 100_000,
                "note": "the stages turn on active tracing; the default sampling rule records the first request each "
                        "second and 5 % of the rest, so at socialcare's rates nearly every invocation"},
            "cognito.monthly_active_users": {
                "usd": 0.015, "per": 1, "unit": "monthly active users",
                "source": "https://aws.amazon.com/cognito/pricing/", "as_of": "2026-12-01", "free_per_month": 10_000,
                "note": "Essentials tier (the default for new user pools); agents are the only users"},
        },
        "ap-northeast-1": {
            "lambda.requests": {
                "usd": 0.20, "per": 1_000_000, "unit": "requests",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-Request"), "as_of": "2026-09-23",
                "free_per_month": 1_000_000},
            "lambda.gb_seconds": {
                "usd_by_architecture": {"arm64": 0.0000133334, "x86_64": 0.0000166667}, "per": 1, "unit": "GB-seconds",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-Lambda-GB-Second, -ARM"), "as_of": "2026-09-23",
                "free_per_month": 400_000, "note": "first tier; the INIT phase is billed too since 2025-08-01"},
            "sqs.requests": {
                "usd": 0.40, "per": 1_000_000, "unit": "requests",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-Requests-Tier1"), "as_of": "2026-09-23",
                "free_per_month": 1_000_000, "note": "every 64 KB chunk of a request's payload is one request"},
            "dynamodb.write_request_units": {
                "usd": 0.715, "per": 1_000_000, "unit": "write request units",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-WriteRequestUnits"), "as_of": "2026-09-23"},
            "dynamodb.read_request_units": {
                "usd": 0.1425, "per": 1_000_000, "unit": "read request units",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-ReadRequestUnits"), "as_of": "2026-09-23"},
            "dynamodb.storage_gb_month": {
                "usd": 0.285, "per": 1, "unit": "GB-months",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-TimedStorage-ByteHrs"), "as_of": "2026-09-23",
                "free_per_month": 25},
            "dynamodb.pitr_gb_month": {
                "usd": 0.228, "per": 1, "unit": "GB-months", "estimate": True,
                "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/", "as_of": "2026-12-01",
                "note": "not found in a source read here: us-east-1's $0.20 scaled by Tokyo's storage premium "
                        "(0.285 / 0.25); check the pricing page"},
            "apigateway.rest_requests": {
                "usd": 4.25, "per": 1_000_000, "unit": "requests", "estimate": True,
                "source": "https://aws.amazon.com/api-gateway/pricing/", "as_of": "2026-12-01",
                "free_per_month": 1_000_000,
                "note": "the Tokyo REST rate could not be read here (the page renders its tables by script); "
                        "Tokyo HTTP APIs cost $1.29 per million against $1.00 in us-east-1 "
                        "(APN1-ApiGatewayHttpRequest, Price List 2026-09-23), and $4.25 is the REST rate recalled "
                        "for Tokyo: check it"},
            "logs.ingested_gb": {
                "usd": 0.76, "per": 1, "unit": "GB",
                "source": "https://awsi.click/en/articles/cloudwatch-logs-cost-structure-surprise/", "as_of": "2026-12-01",
                "free_per_month": 5, "note": "also APN1-DataProcessing-Bytes in the Price List (2026-09-23)"},
            "logs.stored_gb_month": {
                "usd": 0.033, "per": 1, "unit": "GB-months",
                "source": "https://awsi.click/en/articles/cloudwatch-logs-cost-structure-surprise/", "as_of": "2026-12-01",
                "note": "billed on compressed bytes; socialcare keeps Lambda logs 30 days"},
            "cloudwatch.custom_metrics": {
                "usd": 0.30, "per": 1, "unit": "metric-months",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-CW:MetricMonitorUsage"), "as_of": "2026-09-23",
                "free_per_month": 10},
            "cloudwatch.alarms": {
                "usd": 0.10, "per": 1, "unit": "alarm-months",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-CW:AlarmMonitorUsage"), "as_of": "2026-09-23",
                "free_per_month": 10},
            "secretsmanager.secrets": {
                "usd": 0.40, "per": 1, "unit": "secret-months",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-AWSSecretsManager-Secrets"), "as_of": "2026-09-23"},
            "secretsmanager.api_calls": {
                "usd": 0.05, "per": 10_000, "unit": "API calls", "estimate": True,
                "source": "https://aws.amazon.com/secrets-manager/pricing/", "as_of": "2026-12-01",
                "note": "us-east-1's rate; the Tokyo figure was not read here"},
            "s3.put_requests": {
                "usd": 0.0047, "per": 1_000, "unit": "PUT, COPY, POST, LIST requests",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-Requests-Tier1"), "as_of": "2026-09-23"},
            "s3.get_requests": {
                "usd": 0.00037, "per": 1_000, "unit": "GET and other requests",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-Requests-Tier2"), "as_of": "2026-09-23"},
            "s3.storage_gb_month": {
                "usd": 0.025, "per": 1, "unit": "GB-months",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-TimedStorage-ByteHrs"), "as_of": "2026-09-23"},
            "eventbridge.scheduled_events": {
                "usd": 0.0, "per": 1_000_000, "unit": "scheduled rule events",
                "source": "https://www.wring.co/blog/aws-eventbridge-pricing-guide", "as_of": "2026-12-01",
                "note": "events of schedule rules come from an AWS service and are free"},
            "sns.publishes": {
                "usd": 0.50, "per": 1_000_000, "unit": "publishes", "estimate": True,
                "source": "https://aws.amazon.com/sns/pricing/", "as_of": "2026-12-01", "free_per_month": 1_000_000,
                "note": "us-east-1's rate; the Tokyo figure was not read here"},
            "sns.email_notifications": {
                "usd": 2.00, "per": 100_000, "unit": "e-mail notifications", "estimate": True,
                "source": "https://aws.amazon.com/sns/pricing/", "as_of": "2026-12-01", "free_per_month": 1_000,
                "note": "us-east-1's rate; the Tokyo figure was not read here"},
            "xray.traces_recorded": {
                "usd": 5.00, "per": 1_000_000, "unit": "traces recorded", "estimate": True,
                "source": "https://aws.amazon.com/xray/pricing/", "as_of": "2026-12-01", "free_per_month": 100_000,
                "note": "us-east-1's rate; the Tokyo figure was not read here"},
            "cognito.monthly_active_users": {
                "usd": 0.015, "per": 1, "unit": "monthly active users",
                "source": _APN1_PRICE_LIST.format(usage_type="APN1-CognitoEssentialsMAU"), "as_of": "2026-09-23",
                "free_per_month": 10_000},
        },
    },
    # Not regional. Meta's Graph API is free; X and WhatsApp are priced per use.
    "platforms": {
        "x.owned_reads": {
            "usd": 0.001, "per": 1, "unit": "posts read from the brand's own mentions or posts",
            "source": "https://pbxscience.com/x-overhauls-api-pricing-cheaper-reads-steeper-costs-for-url-posts/",
            "as_of": "2026-04-20",
            "note": "owned reads (GET /2/users/{id}/mentions, /tweets), also in ../shared/platforms.md; "
                    "a resource read again the same UTC day is billed once"},
        "x.post_reads": {
            "usd": 0.005, "per": 1, "unit": "posts read (search)",
            "source": "https://docs.x.com/x-api/getting-started/pricing", "as_of": "2026-04-20",
            "note": "Posts: Read, per post returned; billed once per UTC day"},
        "x.user_reads": {
            "usd": 0.010, "per": 1, "unit": "users read", "estimate": True,
            "source": "https://docs.x.com/x-api/getting-started/pricing", "as_of": "2026-04-20",
            "note": "User: Read is $0.010 per user; whether the authors that expansions=author_id returns with each page "
                    "are billed as user reads is not documented: counted as billed (an upper bound)"},
        "x.dm_event_reads": {
            "usd": 0.010, "per": 1, "unit": "DM events read",
            "source": "https://docs.x.com/x-api/getting-started/pricing", "as_of": "2026-04-20",
            "note": "DM Event: Read; some guides list the brand's own DMs as owned reads at $0.001"},
        "x.posts_created": {
            "usd": 0.015, "per": 1, "unit": "posts created (replies included)",
            "source": "https://docs.x.com/x-api/getting-started/pricing", "as_of": "2026-04-20",
            "note": "Content: Create; ../shared/platforms.md says a reply to a post that summoned the brand is $0.010, "
                    "but X's current table shows no such discount and writes rose to $0.015 on 2026-04-20: the higher "
                    "figure is used"},
        "x.posts_created_with_url": {
            "usd": 0.20, "per": 1, "unit": "posts created with a URL",
            "source": "https://docs.x.com/x-api/getting-started/pricing", "as_of": "2026-04-20"},
        "x.dms_sent": {
            "usd": 0.015, "per": 1, "unit": "DMs sent",
            "source": "https://docs.x.com/x-api/getting-started/pricing", "as_of": "2026-04-20",
            "note": "DM Interaction: Create"},
        "meta.graph_requests": {
            "usd": 0.0, "per": 1, "unit": "Graph API requests",
            "source": "../shared/platforms.md", "as_of": "2026-12-01",
            "note": "Facebook, Instagram and Messenger API calls are free; WhatsApp messages are priced below"},
    },
    # WhatsApp is priced per delivered message, by the recipient's market (country calling code).
    "whatsapp": {
        "JP": {
            "whatsapp.service_messages": {
                "usd": 0.0113, "per": 1, "unit": "free-form replies in the 24-hour window", "estimate": True,
                "source": "https://huggingface.co/datasets/WhaTools/whatsapp-open-data", "as_of": "2026-10-01",
                "free_per_month": 1_000,
                "note": "free until 2026-09-30 (Meta's pricing page, 2026-06-30); BSP changelogs report that from "
                        "2026-10-01 service messages bill at the market's utility rate after the first 1,000 per phone "
                        "number a month (not confirmed on Meta's own page); the utility rate below"},
            "whatsapp.marketing_templates": {
                "usd": 0.0732, "per": 1, "unit": "marketing template messages", "estimate": True,
                "source": "https://docs.sent.dm/docs/guides/whatsapp-pricing", "as_of": "2025-07-01",
                "note": "Japan has no rate of its own: Meta's 'Rest of Asia Pacific' market (rate card of 2025-07-01; "
                        "later cards not read here)"},
            "whatsapp.utility_templates": {
                "usd": 0.0113, "per": 1, "unit": "utility template messages", "estimate": True,
                "source": "https://docs.sent.dm/docs/guides/whatsapp-pricing", "as_of": "2025-07-01",
                "note": "'Rest of Asia Pacific'; free inside the window until 2026-09-30"},
            "whatsapp.authentication_templates": {
                "usd": 0.0113, "per": 1, "unit": "authentication template messages", "estimate": True,
                "source": "https://docs.sent.dm/docs/guides/whatsapp-pricing", "as_of": "2025-07-01",
                "note": "'Rest of Asia Pacific'"},
        },
        "US": {
            "whatsapp.service_messages": {
                "usd": 0.0034, "per": 1, "unit": "free-form replies in the 24-hour window", "estimate": True,
                "source": "https://sleekflow.io/whatsapp-pricing-calculator", "as_of": "2026-09-20",
                "free_per_month": 1_000,
                "note": "from 2026-10-01 at the utility rate after 1,000 a month (reported by BSPs); the calculator's "
                        "default market was transcribed without its name: taken as North America"},
            "whatsapp.marketing_templates": {
                "usd": 0.025, "per": 1, "unit": "marketing template messages", "estimate": True,
                "source": "https://sleekflow.io/whatsapp-pricing-calculator", "as_of": "2026-09-20",
                "note": "taken as North America (see service_messages); Meta blocks marketing templates to +1 numbers"},
            "whatsapp.utility_templates": {
                "usd": 0.0034, "per": 1, "unit": "utility template messages", "estimate": True,
                "source": "https://sleekflow.io/whatsapp-pricing-calculator", "as_of": "2026-09-20",
                "note": "taken as North America"},
            "whatsapp.authentication_templates": {
                "usd": 0.0034, "per": 1, "unit": "authentication template messages", "estimate": True,
                "source": "https://sleekflow.io/whatsapp-pricing-calculator", "as_of": "2026-09-20",
                "note": "taken as North America"},
        },
    },
}
