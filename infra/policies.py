"""Least-privilege IAM policies: one per function, every resource named by its exact ARN.

Each function's grants are listed below with the code path that needs them.
``tests/test_policies.py`` runs every function on moto, records each AWS call
it makes and fails when a call is not granted, when a grant is never used,
or when a policy holds a wildcard. Lambda's own needs are granted too: writing
the function's own log group, X-Ray segments where tracing is on, and reading
and deleting the messages of the queue that feeds it.

Two renderings of the same grants:

- ``policy_for`` / ``write_policies``: literal ARNs for one account and region,
  for ``chalice deploy`` (``infra/deploy.py`` calls ``write_policies`` first;
  Chalice reads ``.chalice/policy-<stage>-<function>.json``, see each stage's
  ``lambda_functions`` in ``.chalice/config.json``).
- ``package_policy_for`` / ``write_package_policies``: the same ARNs as
  CloudFormation ``Fn::Sub`` strings over ``${AWS::Partition}``,
  ``${AWS::Region}`` and ``${AWS::AccountId}``, and the platform secret by
  ``Ref`` (its ARN, random suffix included), for ``make package``, where the
  account is not known yet (``infra/merge.py`` writes them).

The generated files are build products: they hold account ids, so they are
not committed.

Usage: python infra/policies.py --stage prod --region eu-west-1 --account 123456789012 [--secret-arn ARN]
       [--stream-arn ARN]
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
APP = "socialcare"
SECRET_OUTPUT = "PlatformSecretArn"   # infra/template.yaml output: the secret's full ARN
SECRET_LOGICAL_ID = "PlatformSecret"  # infra/template.yaml resource (the package path uses its Ref)

# Resources, by what the code calls them (chalicelib/config.py): ("table", <env var>, <default suffix>) ...
Resource = Tuple[str, ...]
CASES: Resource = ("table", "CASES_TABLE", "cases")
MENTIONS: Resource = ("table", "MENTIONS_TABLE", "mentions")
SETTINGS: Resource = ("table", "SETTINGS_TABLE", "settings")
INBOX_BY_TIME: Resource = ("index", "CASES_TABLE", "cases", "inbox-time")
INBOX_BY_PRIORITY: Resource = ("index", "CASES_TABLE", "cases", "inbox-priority")
INBOX_BY_DUE: Resource = ("index", "CASES_TABLE", "cases", "inbox-by-due")
INBOX_ASSIGNEE: Resource = ("index", "CASES_TABLE", "cases", "inbox-assignee")
WAITING: Resource = ("index", "CASES_TABLE", "cases", "waiting")
SLA_DUE: Resource = ("index", "CASES_TABLE", "cases", "sla-due")
MENTIONS_QUEUE: Resource = ("queue", "MENTIONS_QUEUE", "mentions")
TRIAGED_QUEUE: Resource = ("queue", "TRIAGED_QUEUE", "triaged")
OUTBOUND_QUEUE: Resource = ("queue", "OUTBOUND_QUEUE", "outbound")
MENTIONS_DLQ: Resource = ("queue", "MENTIONS_DLQ", "mentions-dlq")
TRIAGED_DLQ: Resource = ("queue", "TRIAGED_DLQ", "triaged-dlq")
OUTBOUND_DLQ: Resource = ("queue", "OUTBOUND_DLQ", "outbound-dlq")
SECRET: Resource = ("secret",)
# The cases table's stream: CASES_STREAM_ARN (the stack output CasesStreamArn the deploy writes), exactly.
CASES_STREAM: Resource = ("stream", "CASES_STREAM_ARN", "cases")
STREAM_OUTPUT = "CasesStreamArn"        # infra/template.yaml output: the stream's ARN (its label is a timestamp)
CASES_TABLE_LOGICAL_ID = "CasesTable"   # the package path names the stream by Fn::GetAtt CasesTable.StreamArn
# The notifications topic: NOTIFICATIONS_TOPIC_ARN (the stack output the deploy writes), else by its name.
NOTIFICATIONS_TOPIC: Resource = ("topic", "NOTIFICATIONS_TOPIC_ARN", "notifications")
MODEL: Resource = ("model",)          # TRIAGE_MODEL_URI's object; no grant while it is not set
# Retrained model versions: every S3 version of triage/model.json.gz in TRIAGE_MODELS_BUCKET (the stack's
# ModelBucketName; adapters/model_store.py); no grant while it is not set.
MODEL_VERSIONS: Resource = ("model_versions",)
# Customers' media files (issue 12): the objects under inbound/ in MEDIA_BUCKET (the stack's MediaBucketName,
# written into the stage by the deploy; adapters/media_store.py); no grant while it is not set.
MEDIA_FILES: Resource = ("media",)
NO_CASE_REVIEW: Resource = ("index", "MENTIONS_TABLE", "mentions", "no-case-by-day")
OWN_LOG_GROUP: Resource = ("log_group",)
ANY: Resource = ("any",)              # only where the service has no resource-level permissions (X-Ray)

# Lambda's SQS poller, on the queue that feeds the function (not called by our code).
SQS_POLLER = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# Lambda's DynamoDB stream poller, on the stream that feeds the function (not called by our code).
STREAM_POLLER = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: Tuple[str, ...]
    resources: Tuple[Resource, ...]
    why: str


@dataclass(frozen=True)
class Function:
    name: str
    component: str                       # the `component` tag (cost allocation)
    grants: Tuple[Grant, ...]
    source_queue: Optional[Resource] = None  # the queue Lambda polls for it (SQS_POLLER is granted there)
    source_stream: Optional[Resource] = None  # the stream Lambda reads for it (STREAM_POLLER is granted there)


FUNCTIONS: Dict[str, Function] = {f.name: f for f in (
    Function("api_handler", "api", (
        Grant("CaseItems", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                            "dynamodb:Query"), (CASES,),
              "cases_api: case, history (Query), replies (Put/Update), status change (TransactWriteItems: Put, "
              "Delete of the customer's pointer), retention stamps (Query, Update); webhooks: late failures; "
              "privacy_api: the customer's ledger (Query), erasure (Delete, audit record Put/Update)"),
        Grant("Inbox", ("dynamodb:Query",), (INBOX_BY_TIME, INBOX_BY_PRIORITY, INBOX_BY_DUE, INBOX_ASSIGNEE, WAITING),
              "GET /cases: the inbox, newest, most urgent or due first; GET /teams/{team}/waiting and an agent "
              "who frees up or comes online (workload.fill_agent): the team's waiting queue"),
        Grant("CaseReads", ("dynamodb:BatchGetItem",), (CASES,),
              "the due inbox and the waiting queue read their cases by key (their indexes hold no copies); "
              "POST /notifications/read finds each notification by id"),
        Grant("Settings", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                           "dynamodb:Query"), (SETTINGS,),
              "agents and teams (the caller, PUT /admin/agents, PUT /me/presence), sources, triage rule versions, "
              "the assignee's open-case count in a status change or a hand-out (TransactWriteItems: Update), "
              "team calendars, away settings and the SLA policy; templates (TransactWriteItems: Put, Update, "
              "Delete; usage: Update ADD) and the brand-voice rules"),
        Grant("Enqueue", ("sqs:SendMessage", "sqs:GetQueueUrl"), (OUTBOUND_QUEUE, MENTIONS_QUEUE),
              "POST /cases/{id}/replies and retries -> outbound; Meta webhook deliveries -> mentions"),
        Grant("Erasure", ("dynamodb:BatchWriteItem",), (CASES,),
              "privacy_api: erasing a case deletes its items in batches of 25"),
        Grant("MentionRecords", ("dynamodb:GetItem", "dynamodb:DeleteItem"), (MENTIONS,),
              "privacy_api: a customer's mention records, exported (Get) and erased (Delete)"),
        Grant("TriageReview", ("dynamodb:Query",), (NO_CASE_REVIEW,),
              "GET /mentions?case=false and the triage digest: a day's mentions left without a case"),
        Grant("ReviewedMentions", ("dynamodb:BatchGetItem", "dynamodb:UpdateItem"), (MENTIONS,),
              "the review list reads its page's mentions by key; promote and confirm take one off the list "
              "(conditional Update) and record a promotion"),
        Grant("Promote", ("sqs:SendMessage", "sqs:GetQueueUrl"), (TRIAGED_QUEUE,),
              "POST /mentions/{id}/promote -> triaged (a case opened the normal way)"),
        Grant("TriageModels", ("s3:PutObject", "s3:GetObjectVersion"), (MODEL_VERSIONS,),
              "POST /admin/triage-models: the new version (Put), the active one it is compared with (Get)"),
        Grant("CustomerIdentities", ("dynamodb:BatchGetItem",), (SETTINGS,),
              "customers_api and the case detail's customer panel: a profile's linked identities by key (the "
              "profiles themselves, links and merges: Get, Query, TransactWriteItems under Settings)"),
        Grant("PlatformSecret", ("secretsmanager:GetSecretValue",), (SECRET,),
              "the Meta webhook: app secret (signature) and verify token (handshake); privacy_api: the key of "
              "the erasure audit's hashes"),
        Grant("MediaFiles", ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"), (MEDIA_FILES,),
              "GET /cases/{id}/media/{media_id}: the presigned link it signs (Get; HeadObject of a copy made "
              "earlier), a WhatsApp file not copied at intake, copied when opened (Put); privacy_api: a "
              "customer's files erased with their mentions (DeleteObjects)"),
    )),
    Function("fetch_mentions", "listen", (
        Grant("Sources", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"),
              (SETTINGS,), "sources (Query), cursors (Get, conditional Put), source status (Update)"),
        Grant("Enqueue", ("sqs:SendMessage", "sqs:GetQueueUrl"), (MENTIONS_QUEUE,), "fetched mentions -> mentions"),
        Grant("PlatformSecret", ("secretsmanager:GetSecretValue",), (SECRET,), "platform tokens for polling"),
    )),
    Function("triage_mentions", "triage", (
        Grant("CostMetering", ("dynamodb:UpdateItem",), (SETTINGS,),
              "adapters/metering.py: the usage this container metered, added to its day's item (at most once a minute)"),
        Grant("SourceQueue", SQS_POLLER, (MENTIONS_QUEUE,), "Lambda's SQS poller (event source mapping)"),
        Grant("Mentions", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), (MENTIONS,),
              "dedupe claim (conditional Put, Get of a repeat), triage decision (Update)"),
        Grant("CustomerLedger", ("dynamodb:PutItem", "dynamodb:GetItem"), (CASES,),
              "the customer's ledger entry for the mention (export and erasure find it); whether the customer's "
              "message may answer a CSAT survey (Get of their SURVEY item)"),
        Grant("Rules", ("dynamodb:GetItem",), (SETTINGS,), "the supervisors' current triage rules"),
        Grant("Customers", ("dynamodb:Query", "dynamodb:BatchGetItem"), (SETTINGS,),
              "a message that needs no case: its author's linked identities (Get, Query, BatchGetItem; nothing is "
              "written for an author never seen in a case); then it joins their case's history (Put on cases)"),
        Grant("Forward", ("sqs:SendMessage", "sqs:GetQueueUrl"), (TRIAGED_QUEUE,), "mentions that deserve a case"),
        Grant("DeadLetter", ("sqs:SendMessage", "sqs:GetQueueUrl"), (MENTIONS_DLQ,),
              "bad input, dead-lettered at once with its reason"),
        Grant("PlatformSecret", ("secretsmanager:GetSecretValue",), (SECRET,),
              "Graph look-ups: an Instagram @mention's text, a DM sender's profile"),
        Grant("Model", ("s3:GetObject",), (MODEL,), "the learned triage model (TRIAGE_MODEL_URI)"),
        Grant("ModelVersions", ("s3:GetObjectVersion",), (MODEL_VERSIONS,),
              "the model version a supervisor activated (POST /admin/triage-models/{version}/activate)"),
        Grant("MediaFiles", ("s3:PutObject",), (MEDIA_FILES,),
              "a WhatsApp customer's photo, video, voice note or document, copied when it arrives (its URL expires)"),
    ), source_queue=MENTIONS_QUEUE),
    Function("assign_cases", "route", (
        Grant("SourceQueue", SQS_POLLER, (TRIAGED_QUEUE,), "Lambda's SQS poller (event source mapping)"),
        Grant("Cases", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"), (CASES,),
              "the case and the customer's pointer (Get), opening or joining a case (TransactWriteItems: Put), "
              "the post (conditional Put), a stale pointer (conditional Delete)"),
        Grant("Reopen", ("dynamodb:Query", "dynamodb:UpdateItem"), (CASES,),
              "a follow-up within the reopen window reopens the resolved case: its items lose their expiry "
              "(Query, Update)"),
        Grant("Customers", ("dynamodb:PutItem",), (SETTINGS,),
              "the identity a case opened for (Update under Agents: created or its newest case; the first "
              "time its profile link and handles: Put)"),
        Grant("Agents", ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
              (SETTINGS,), "teams (Get), a team's agents and the supervisors (Query, BatchGetItem), the assignee's "
              "open-case count (TransactWriteItems: Update); the SLA policy, team calendars (Query), away settings "
              "and recent first responses (Get)"),
        Grant("Mentions", ("dynamodb:UpdateItem",), (MENTIONS,), "the mention is routed to its case"),
        Grant("DeadLetter", ("sqs:SendMessage", "sqs:GetQueueUrl"), (TRIAGED_DLQ,),
              "bad input, dead-lettered at once with its reason"),
        Grant("AwayMessages", ("sqs:SendMessage", "sqs:GetQueueUrl"), (OUTBOUND_QUEUE,),
              "an away message to a customer who wrote while the team is closed -> outbound"),
        Grant("Notify", ("sns:Publish",), (NOTIFICATIONS_TOPIC,),
              "an escalation by triage, to the notifications topic (the in-app copy: Put on cases)"),
    ), source_queue=TRIAGED_QUEUE),
    Function("send_replies", "reply", (
        Grant("CostMetering", ("dynamodb:UpdateItem",), (SETTINGS,),
              "adapters/metering.py: the usage this container metered, added to its day's item (at most once a minute)"),
        Grant("SourceQueue", SQS_POLLER + ("sqs:GetQueueUrl", "sqs:ChangeMessageVisibility"), (OUTBOUND_QUEUE,),
              "Lambda's SQS poller; the visibility timeout read at start (GetQueueAttributes), a reply that must "
              "wait for a rate limit's reset (ChangeMessageVisibility)"),
        Grant("Replies", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), (CASES,),
              "the reply and its claim (Get, conditional Update), the receipt and the event (Put), the case's "
              "first response (Get, conditional Put)"),
        Grant("DeadLetter", ("sqs:SendMessage", "sqs:GetQueueUrl"), (OUTBOUND_DLQ,),
              "bad input, dead-lettered at once with its reason"),
        Grant("PlatformSecret", ("secretsmanager:GetSecretValue",), (SECRET,), "platform tokens for sending"),
        Grant("MediaFiles", ("s3:GetObject", "s3:PutObject"), (MEDIA_FILES,),
              "an image of the case attached to a reply: the presigned link the platform fetches (Get), a "
              "WhatsApp file copied late (Put)"),
        Grant("ServiceLevels", ("dynamodb:GetItem", "dynamodb:PutItem"), (SETTINGS,),
              "a sent reply stops SLA clocks: the policy and the team's calendar (Get); the team's recent "
              "first-response times (Get, conditional Put)"),
    ), source_queue=OUTBOUND_QUEUE),
    Function("sla_tick", "sla", (
        Grant("DueCases", ("dynamodb:Query",), (SLA_DUE, WAITING),
              "the cases whose next SLA check has come (sla-due), each team's waiting queue (waiting)"),
        Grant("Cases", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"), (CASES,),
              "the case (Get), its marks, fired crossings and actions (conditional Put), a hand-out "
              "(TransactWriteItems: Put of the case and its event), waiting cases by key (BatchGetItem), "
              "in-app notifications (TransactWriteItems: Put)"),
        Grant("Settings", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
                           "dynamodb:BatchGetItem"), (SETTINGS,),
              "the SLA policy, teams and the last run (Get), calendars, team members and supervisors (Query, "
              "BatchGetItem), presence set offline when a shift ends (Update), open-case counts of a hand-out "
              "(TransactWriteItems: Update), the run (conditional Put)"),
        Grant("Notify", ("sns:Publish",), (NOTIFICATIONS_TOPIC,), "SLA warnings and breaches, to the notifications topic"),
    )),
    Function("measure_changes", "measure", (
        Grant("SourceStream", STREAM_POLLER, (CASES_STREAM,), "Lambda's DynamoDB stream poller (event source mapping)"),
        Grant("Cases", ("dynamodb:GetItem", "dynamodb:Query"), (CASES,),
              "a resolved case's events for its handle time, the customer's ledger and their earlier case when a "
              "new case opens (a return within the FCR window spoils it)"),
        Grant("Settings", ("dynamodb:GetItem", "dynamodb:Query"), (SETTINGS,),
              "the SLA policy (Get), the team calendars (Query); a token's marker on a redelivery (Get)"),
        Grant("Aggregates", ("dynamodb:PutItem", "dynamodb:UpdateItem"), (SETTINGS,),
              "per token, the marker (Put) and the KPI items and backlog totals (Update), in one "
              "TransactWriteItems (a large token: its plan, parts and their markers)"),
    ), source_stream=CASES_STREAM),
    Function("refresh_x_token", "listen", (
        Grant("PlatformSecret", ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"), (SECRET,),
              "read the refresh token fresh, write the rotated pair back (services/credentials.py)"),
        Grant("Sources", ("dynamodb:Query", "dynamodb:UpdateItem"), (SETTINGS,),
              "a refused refresh marks the X sources needs_attention"),
    )),
    Function("triage_daily", "triage", (
        Grant("CostMetering", ("dynamodb:UpdateItem",), (SETTINGS,),
              "adapters/metering.py: the usage this container metered, added to its day's item (at most once a minute)"),
        Grant("NoCaseReview", ("dynamodb:Query",), (NO_CASE_REVIEW,),
              "the digest: yesterday's mentions left without a case"),
        Grant("Mentions", ("dynamodb:GetItem",), (MENTIONS,), "the digest: the text of the most negative ones"),
        Grant("Settings", ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem"),
              (SETTINGS,), "the supervisors (Query, BatchGetItem); the triage rules, the corrections (Query), the "
              "model versions and the active one (Get, Query), the week's new version (conditional Put)"),
        Grant("Feeds", ("dynamodb:PutItem",), (CASES,), "the digest in each supervisor's in-app feed"),
        Grant("Notify", ("sns:Publish",), (NOTIFICATIONS_TOPIC,), "the digest, to the notifications topic"),
        Grant("TriageModels", ("s3:PutObject", "s3:GetObjectVersion"), (MODEL_VERSIONS,),
              "the weekly retraining: the new version (Put), the active one it is compared with (Get)"),
    )),
)}


def function_name(function: str, stage: str) -> str:
    """The name Chalice gives the Lambda function (the API handler is just <app>-<stage>)."""
    return f"{APP}-{stage}" if function == "api_handler" else f"{APP}-{stage}-{function}"


def log_group_name(function: str, stage: str) -> str:
    """The log group the function writes to (Lambda's default: /aws/lambda/<function name>).

    Not always the one `chalice deploy` creates: for the API handler Chalice
    1.34 creates ``/aws/lambda/<app>-<stage>-api_handler`` (named before it
    renames the function ``<app>-<stage>``), so the deploy step creates this one
    with its retention and tags (infra/README.md). The package names it right.
    """
    return f"/aws/lambda/{function_name(function, stage)}"


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def resource_tags(stage: str, component: str) -> Dict[str, str]:
    """The cost allocation tags every resource of the project carries."""
    return {"project": APP, "stage": stage, "component": component}


# ---- the stage's settings, as Chalice resolves them -------------------------------------------------

def load_config(project_dir: Path = ROOT) -> Dict[str, Any]:
    return json.loads((project_dir / ".chalice" / "config.json").read_text())


def stage_settings(stage: str, function: str, config: Optional[Mapping[str, Any]] = None) -> Tuple[Dict[str, str], bool]:
    """(environment variables, X-Ray on) of one function in one stage, resolved by Chalice itself."""
    from chalice.config import Config  # a deploy-time tool, never in a Lambda

    scoped = Config(chalice_stage=stage, function_name=function,
                    config_from_disk=dict(config if config is not None else load_config()))
    return dict(scoped.environment_variables), bool(scoped.xray_enabled)


# ---- rendering ------------------------------------------------------------------------------------

def _resource_name(resource: Resource, stage: str, env: Mapping[str, str]) -> str:
    return env.get(resource[1]) or f"{APP}-{stage}-{resource[2]}"


def _model_object(env: Mapping[str, str]) -> Optional[Tuple[str, str]]:
    uri = env.get("TRIAGE_MODEL_URI", "")
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"TRIAGE_MODEL_URI must look like s3://bucket/key, not {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


Arn = Callable[[str, str], Any]  # (service, rest after "arn:<partition>:<service>:<region>:<account>:") -> ARN


def _render(function: str, stage: str, env: Mapping[str, str], xray: bool, *, arn: Arn, s3_arn: Callable[[str], Any],
            secret: Any, stream: Any) -> Dict[str, Any]:
    spec = FUNCTIONS.get(function)
    if spec is None:
        raise KeyError(f"no policy for function {function!r}: add its grants to infra/policies.py FUNCTIONS")
    statements: List[Dict[str, Any]] = [{
        "Sid": "OwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        # Chalice (log_retention_in_days) or the package creates the group: no logs:CreateLogGroup.
        "Resource": [arn("logs", f"log-group:{log_group_name(function, stage)}:*")],
    }]
    if xray:
        statements.append({"Sid": "Tracing", "Effect": "Allow",
                           "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                           # X-Ray has no resource-level permissions for these two actions.
                           "Resource": ["*"]})
    for grant in spec.grants:
        resources: List[Any] = []
        for resource in grant.resources:
            kind = resource[0]
            if kind == "table":
                resources.append(arn("dynamodb", f"table/{_resource_name(resource, stage, env)}"))
            elif kind == "index":
                resources.append(arn("dynamodb", f"table/{_resource_name(resource, stage, env)}/index/{resource[3]}"))
            elif kind == "queue":
                resources.append(arn("sqs", _resource_name(resource, stage, env)))
            elif kind == "topic":
                configured = env.get(resource[1], "")
                resources.append(configured if configured.startswith("arn:")
                                 else arn("sns", f"{APP}-{stage}-{resource[2]}"))
            elif kind == "secret":
                resources.append(secret)
            elif kind == "stream":
                resources.append(stream)
            elif kind == "model":
                model = _model_object(env)
                if model:
                    resources.append(s3_arn(f"{model[0]}/{model[1]}"))
            elif kind == "media":
                bucket = env.get("MEDIA_BUCKET", "")
                if bucket and not bucket.startswith("REPLACE_WITH"):
                    resources.append(s3_arn(f"{bucket}/inbound/*"))  # one object per file: keys are not known ahead
            elif kind == "model_versions":
                bucket = env.get("TRIAGE_MODELS_BUCKET", "")
                if bucket and not bucket.startswith("REPLACE_WITH"):
                    resources.append(s3_arn(f"{bucket}/triage/model.json.gz"))
            else:  # pragma: no cover - a typo in FUNCTIONS
                raise ValueError(f"unknown resource kind {kind!r}")
        if resources:
            statements.append({"Sid": grant.sid, "Effect": "Allow", "Action": list(grant.actions),
                               "Resource": resources})
    return {"Version": "2012-10-17", "Statement": statements}


def _secret_id(stage: str, env: Mapping[str, str]) -> str:
    return env.get("PLATFORM_SECRET_ID") or f"{APP}-{stage}/platforms"


def policy_for(function: str, stage: str, region: str, account_id: str, outputs: Optional[Mapping[str, str]] = None,
               *, config: Optional[Mapping[str, Any]] = None,
               environment: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The function's policy for one account and region.

    ``outputs`` are the infra stack's outputs: ``PlatformSecretArn`` names the
    secret exactly; without it the secret is matched by its name and the six
    characters Secrets Manager appends (``-??????``), as AWS documents.
    ``environment`` overrides the stage's environment variables (names of
    tables, queues, the secret, ``TRIAGE_MODEL_URI``).
    """
    partition = partition_of(region)
    env, xray = stage_settings(stage, function, config)
    env.update(environment or {})
    _stack_model_bucket(env, stage, account_id)
    secret_id = _secret_id(stage, env)
    stack_secret = str((outputs or {}).get(SECRET_OUTPUT) or "")
    if secret_id != f"{APP}-{stage}/platforms" or not stack_secret.startswith(f"arn:{partition}:secretsmanager:"):
        stack_secret = ""  # another secret configured, or a stack without the output (moto creates no secret)
    secret = stack_secret or (
        secret_id if secret_id.startswith("arn:")
        else f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{secret_id}-??????")
    def literal(service: str, rest: str) -> str:
        return f"arn:{partition}:{service}:{region}:{account_id}:{rest}"

    return _render(function, stage, env, xray, arn=literal, s3_arn=lambda rest: f"arn:{partition}:s3:::{rest}",
                   secret=secret, stream=_stream_arn(stage, env, outputs or {}, literal))


def _stream_arn(stage: str, env: Mapping[str, str], outputs: Mapping[str, str], literal: Callable[[str, str], str]) -> str:
    """The cases table's stream, exactly: the stack output, else CASES_STREAM_ARN as the deploy wrote it.

    A stream's ARN ends in its label (the time it was turned on), known only once the stack exists. Without
    either (a policy rendered before the first deploy, for review) the label is left open, and only it.
    """
    table = literal("dynamodb", f"table/{_resource_name(CASES, stage, env)}")
    for candidate in (str(outputs.get(STREAM_OUTPUT) or ""), env.get(CASES_STREAM[1], "")):
        if candidate.startswith(table + "/stream/"):
            return candidate
    return f"{table}/stream/*"


def _stack_model_bucket(env: Dict[str, str], stage: str, account: str) -> None:
    """TRIAGE_MODELS_BUCKET still the stack-output placeholder: the stack's ModelBucket by the name the template
    gives it (socialcare-<stage>-models-<account>), which the deploy writes in its place."""
    if env.get("TRIAGE_MODELS_BUCKET", "").startswith("REPLACE_WITH"):
        env["TRIAGE_MODELS_BUCKET"] = f"{APP}-{stage}-models-{account}"


def package_policy_for(function: str, stage: str, *, config: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The function's policy for the packaged template: the same ARNs, resolved by CloudFormation."""
    env, xray = stage_settings(stage, function, config)
    _stack_model_bucket(env, stage, "${AWS::AccountId}")
    secret_id = _secret_id(stage, env)
    secret: Any = ({"Ref": SECRET_LOGICAL_ID} if secret_id == f"{APP}-{stage}/platforms"
                   else {"Fn::Sub": f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:"
                                    f"secret:{secret_id}-??????"})
    return _render(function, stage, env, xray,
                   arn=lambda service, rest: {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:"
                                                         f"${{AWS::AccountId}}:{rest}"},
                   s3_arn=lambda rest: {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{rest}"}, secret=secret,
                   stream={"Fn::GetAtt": [CASES_TABLE_LOGICAL_ID, "StreamArn"]})


# ---- files ------------------------------------------------------------------------------------------

def policy_file(stage: str, function: str) -> str:
    return f"policy-{stage}-{function}.json"


def stage_functions(stage: str, config: Optional[Mapping[str, Any]] = None) -> List[str]:
    """The functions whose policy files the stage's config names (``lambda_functions.<f>.iam_policy_file``)."""
    config = config if config is not None else load_config()
    functions = config.get("stages", {}).get(stage, {}).get("lambda_functions", {})
    return sorted(name for name, settings in functions.items() if settings.get("iam_policy_file"))


def _write(stage: str, render: Callable[[str], Dict[str, Any]], directory: Optional[Path],
           functions: Optional[Sequence[str]]) -> List[Path]:
    config = load_config()
    directory = directory or ROOT / ".chalice"
    directory.mkdir(parents=True, exist_ok=True)
    names = list(functions) if functions is not None else stage_functions(stage, config)
    if not names:
        raise SystemExit(f"stage {stage!r} names no iam_policy_file in .chalice/config.json lambda_functions")
    written = []
    for function in names:
        expected = policy_file(stage, function)
        configured = config.get("stages", {}).get(stage, {}).get("lambda_functions", {}).get(function, {}).get(
            "iam_policy_file")
        if configured != expected:
            raise SystemExit(f".chalice/config.json: stages.{stage}.lambda_functions.{function}.iam_policy_file "
                             f"must be {expected!r} (it is {configured!r}); Chalice reads the policy from there")
        path = directory / expected
        path.write_text(json.dumps(render(function), indent=2) + "\n")
        written.append(path)
    return written


def write_policies(stage: str, region: str, account_id: str, outputs: Optional[Mapping[str, str]] = None, *,
                   directory: Optional[Path] = None, functions: Optional[Sequence[str]] = None) -> List[Path]:
    """Write ``.chalice/policy-<stage>-<function>.json`` for every function of the stage (before `chalice deploy`)."""
    return _write(stage, lambda function: policy_for(function, stage, region, account_id, outputs), directory,
                  functions)


def write_package_policies(stage: str, *, directory: Optional[Path] = None,
                           functions: Optional[Sequence[str]] = None) -> List[Path]:
    """The same files with CloudFormation intrinsics, for `chalice package` (infra/merge.py)."""
    return _write(stage, lambda function: package_policy_for(function, stage), directory, functions)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--account", required=True, help="12-digit AWS account id")
    parser.add_argument("--secret-arn", help="the infra stack's PlatformSecretArn output")
    parser.add_argument("--stream-arn", help="the infra stack's CasesStreamArn output")
    args = parser.parse_args(argv)
    outputs = {name: value for name, value in ((SECRET_OUTPUT, args.secret_arn), (STREAM_OUTPUT, args.stream_arn))
               if value} or None
    for path in write_policies(args.stage, args.region, args.account, outputs):
        print(path)


if __name__ == "__main__":
    main()
