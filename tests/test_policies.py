"""Least privilege, checked two ways (infra/policies.py).

1. On paper: every policy names its resources by exact ARN (no `*` region,
   account, table or queue; no `logs:*`; its own log group only), in both
   renderings (literal ARNs for `chalice deploy`, CloudFormation intrinsics for
   `make package`), and each stage names one policy file per function.
2. In use: each function runs on moto, as a new container, through the code
   paths it has (the API's routes, the pipeline's batches with good, repeated
   and bad records, a rate-limited reply, a refused token refresh); every AWS
   call it makes is recorded as the IAM action and resource ARN it needs. The
   test fails when a call is not granted (the function would fail in AWS) and
   when a grant is never used (it is more than the function needs). What
   Lambda itself does with the role is granted without a call here: writing
   the function's own log group, X-Ray segments, and polling its source queue.

A new code path that calls AWS needs its grant in infra/policies.py and its
use in a scenario below.
"""
from __future__ import annotations

import ast
import json
import os
import re
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
import policies  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
STAGE = "test"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
DEPLOYED_STAGES = [name for name, stage in CONFIG["stages"].items() if stage.get("autogen_policy") is False]
X_BRAND = "1500000000000000001"
APP_SECRET = "app-secret"  # tests/conftest.py's secret


# ---- 1. on paper ------------------------------------------------------------------------------------

def statements(policy):
    return policy["Statement"]


def as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
@pytest.mark.parametrize("function", sorted(policies.FUNCTIONS))
def test_policies_name_exact_arns_of_this_account_and_region(stage, function):
    secret_arn = f"arn:aws:secretsmanager:eu-west-1:111122223333:secret:socialcare-{stage}/platforms-AbC123"
    stream_arn = f"arn:aws:dynamodb:eu-west-1:111122223333:table/socialcare-{stage}-cases/stream/2026-12-01T00:00:00.000"
    policy = policies.policy_for(function, stage, "eu-west-1", "111122223333",
                                 {"PlatformSecretArn": secret_arn, "CasesStreamArn": stream_arn})
    own_logs = f"arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/{policies.function_name(function, stage)}:*"
    for statement in statements(policy):
        assert statement["Effect"] == "Allow"
        actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
        assert not any("*" in action or "?" in action for action in actions), statement
        if any(action.startswith("xray:") for action in actions):
            # X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
            assert set(actions) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} and resources == ["*"]
            continue
        if any(action.startswith("logs:") for action in actions):
            # Its own log group's streams (named by Lambda), nothing else; the group exists before it runs.
            assert set(actions) == {"logs:CreateLogStream", "logs:PutLogEvents"} and resources == [own_logs]
            continue
        for arn in resources:
            assert "*" not in arn and "?" not in arn, statement
            parts = arn.split(":")
            assert parts[0] == "arn" and parts[1] == "aws", arn
            if parts[2] != "s3":
                assert parts[3:5] == ["eu-west-1", "111122223333"], arn
            if parts[2] == "dynamodb":
                assert re.fullmatch(rf"table/socialcare-{stage}-[a-z]+(/index/[a-z-]+)?", parts[5]) or (
                    ":".join(parts) == stream_arn), arn
            if parts[2] == "sqs":
                assert re.fullmatch(rf"socialcare-{stage}-[a-z]+(-dlq)?", parts[5]), arn
            if parts[2] == "secretsmanager":
                assert arn == secret_arn
    # X-Ray's grant only where the stage turns tracing on for the function (.chalice/config.json "xray").
    tracing = {"Tracing"} if policies.stage_settings(stage, function)[1] else set()
    assert {s["Sid"] for s in statements(policy)} & {"OwnLogs", "Tracing"} == {"OwnLogs"} | tracing


def test_without_the_stack_outputs_the_secret_is_matched_by_name_and_its_six_character_suffix():
    policy = policies.policy_for("send_replies", "prod", "us-east-1", ACCOUNT)
    [secret] = [s for s in statements(policy) if s["Sid"] == "PlatformSecret"]
    assert secret["Resource"] == [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:socialcare-prod/platforms-??????"]


def test_only_the_stream_function_reads_the_cases_stream_named_exactly_once_the_stack_exists():
    stream_arn = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/socialcare-prod-cases/stream/2026-12-01T00:00:00.000"
    for function in policies.FUNCTIONS:
        policy = policies.policy_for(function, "prod", "us-east-1", ACCOUNT, {"CasesStreamArn": stream_arn})
        readers = [s for s in statements(policy) if "dynamodb:GetRecords" in s["Action"]]
        if function == "measure_changes":
            assert readers == [{"Sid": "SourceStream", "Effect": "Allow", "Action": list(policies.STREAM_POLLER),
                                "Resource": [stream_arn]}]
        else:
            assert readers == [] and "/stream/" not in json.dumps(policy), function
    # Written into the stage by the deploy (CASES_STREAM_ARN), the same.
    from_env = policies.policy_for("measure_changes", "prod", "us-east-1", ACCOUNT,
                                   environment={"CASES_STREAM_ARN": stream_arn})
    assert [s["Resource"] for s in statements(from_env) if s["Sid"] == "SourceStream"] == [[stream_arn]]
    # Before the first deploy (a placeholder, a stream of another table): only the stream's label is open.
    for environment in ({}, {"CASES_STREAM_ARN": "arn:aws:dynamodb:us-east-1:1:table/other/stream/x"}):
        policy = policies.policy_for("measure_changes", "prod", "us-east-1", ACCOUNT, environment=environment)
        assert [s["Resource"] for s in statements(policy) if s["Sid"] == "SourceStream"] == [
            [f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/socialcare-prod-cases/stream/*"]]


def test_only_the_triage_functions_touch_the_model_bucket_and_only_its_model_objects():
    models = "arn:aws:s3:::socialcare-prod-models-123456789012/"
    uri = {"TRIAGE_MODEL_URI": "s3://socialcare-prod-models-123456789012/models/2026-12.json.gz"}
    versions = models + "triage/model.json.gz"  # every retrained version (issue 14): S3 versions of one object
    store = ("s3:PutObject", "s3:GetObjectVersion")
    expected = {"triage_mentions": {("Model", ("s3:GetObject",), (models + "models/2026-12.json.gz",)),
                                    ("ModelVersions", ("s3:GetObjectVersion",), (versions,))},
                "api_handler": {("TriageModels", store, (versions,))},
                "triage_daily": {("TriageModels", store, (versions,))}}
    for function in policies.FUNCTIONS:
        for environment, wanted in (({}, {g for g in expected.get(function, set()) if g[0] != "Model"}),
                                    (uri, expected.get(function, set()))):
            policy = policies.policy_for(function, "prod", "us-east-1", ACCOUNT, environment=environment)
            granted = {(s["Sid"], tuple(s["Action"]), tuple(s["Resource"])) for s in statements(policy)
                       if any(str(r).startswith(models) for r in s["Resource"])}
            assert granted == wanted, (function, environment)


def test_dead_letter_queues_only_where_the_function_dead_letters():
    for function in policies.FUNCTIONS:
        policy = json.dumps(policies.policy_for(function, "prod", "us-east-1", ACCOUNT))
        dlqs = set(re.findall(r"socialcare-prod-([a-z]+)-dlq", policy))
        expected = {"triage_mentions": {"mentions"}, "assign_cases": {"triaged"}, "send_replies": {"outbound"}}
        assert dlqs == expected.get(function, set()), function


def test_partitions_follow_the_region():
    assert "arn:aws-cn:dynamodb:cn-north-1:" in json.dumps(policies.policy_for("assign_cases", "prod", "cn-north-1", ACCOUNT))
    assert "arn:aws-us-gov:sqs:us-gov-west-1:" in json.dumps(
        policies.policy_for("assign_cases", "prod", "us-gov-west-1", ACCOUNT))


def test_the_package_rendering_is_the_same_policy_resolved_by_cloudformation():
    def resolve(value, outputs):
        if isinstance(value, dict) and "Fn::Sub" in value:
            return (value["Fn::Sub"].replace("${AWS::Partition}", "aws").replace("${AWS::Region}", REGION)
                    .replace("${AWS::AccountId}", ACCOUNT))
        if value == {"Ref": "PlatformSecret"}:
            return outputs["PlatformSecretArn"]
        if value == {"Fn::GetAtt": ["CasesTable", "StreamArn"]}:
            return outputs["CasesStreamArn"]
        if isinstance(value, dict):
            return {k: resolve(v, outputs) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, outputs) for v in value]
        return value

    for stage in DEPLOYED_STAGES:
        outputs = {"PlatformSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:socialcare-{stage}/platforms-AbC123",
                   "CasesStreamArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/socialcare-{stage}-cases/stream/2026-12-01"}
        for function in policies.FUNCTIONS:
            literal = policies.policy_for(function, stage, REGION, ACCOUNT, outputs)
            assert resolve(policies.package_policy_for(function, stage), outputs) == literal, (stage, function)


def test_each_stage_names_one_policy_file_per_function_and_write_policies_writes_them(tmp_path):
    import app

    functions = app_functions(app.app)
    assert set(functions) <= set(policies.FUNCTIONS), "every function of app.py needs its grants in infra/policies.py"
    for stage in DEPLOYED_STAGES:
        configured = CONFIG["stages"][stage]["lambda_functions"]
        for function in functions:
            assert configured[function]["iam_policy_file"] == f"policy-{stage}-{function}.json"
        assert "iam_policy_file" not in CONFIG["stages"][stage]  # no shared, stage-wide policy
        written = policies.write_policies(stage, REGION, ACCOUNT, {"PlatformSecretArn": "arn:x"}, directory=tmp_path)
        assert sorted(p.name for p in written) == sorted(f"policy-{stage}-{f}.json" for f in configured)
        for path in written:
            function = path.name[len(f"policy-{stage}-"):-len(".json")]
            assert json.loads(path.read_text()) == policies.policy_for(function, stage, REGION, ACCOUNT,
                                                                       {"PlatformSecretArn": "arn:x"})


def app_functions(chalice_app) -> List[str]:
    from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

    names = ["api_handler"] if chalice_app.routes else []
    names += [s.name for s in chalice_app.event_sources
              if isinstance(s, (SQSEventConfig, ScheduledEventConfig, DynamoDBEventConfig))]
    return names + [f.name for f in chalice_app.pure_lambda_functions]


# ---- a static tripwire: every AWS operation the adapters call is granted somewhere -------------------

# Operations called in chalicelib/adapters that no deployed function reaches yet, with why.
# (Each entry: the route that reaches it, and why; none today.)
NOT_REACHED_YET: Dict[str, Tuple[str, str]] = {}
IAM_ACTION = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
              # A presigned GET is honoured only if its signer may GetObject; HEAD is authorized as GetObject.
              "GeneratePresignedUrl": "GetObject", "HeadObject": "GetObject", "DeleteObjects": "DeleteObject"}


def adapter_operations() -> Set[str]:
    """CamelCase operation names of every boto3 client call (and transaction item) in chalicelib/adapters."""
    found = set()
    for path in (ROOT / "chalicelib" / "adapters").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                if isinstance(receiver, ast.Call) and getattr(receiver.func, "id", "") in ("ddb", "client"):
                    found.add("".join(part.title() for part in node.func.attr.split("_")))
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                for kind, action in (("Put", "PutItem"), ("Update", "UpdateItem"), ("Delete", "DeleteItem"),
                                     ("ConditionCheck", "ConditionCheckItem")):
                    if kind in keys and len(keys) == 1:
                        found.add(action)
    return found


def test_every_aws_operation_in_the_adapters_is_granted_to_some_function():
    import app

    granted = {action.split(":", 1)[1] for function in policies.FUNCTIONS
               for statement in statements(policies.policy_for(
                   function, "prod", REGION, ACCOUNT, environment={"TRIAGE_MODEL_URI": "s3://b/k",
                                                                   "MEDIA_BUCKET": "socialcare-prod-media-1"}))
               for action in statement["Action"]}
    missing = []
    for operation in sorted(adapter_operations()):
        action = IAM_ACTION.get(operation, operation)
        if action in granted or operation in ("TransactWriteItems", "TransactGetItems"):
            continue  # a transaction is authorized item by item (PutItem, UpdateItem, ..., found above)
        route, why = NOT_REACHED_YET.get(operation, (None, None))
        if route and route not in app.app.routes:
            continue
        missing.append(f"{operation} ({why or 'no function is granted it'})")
    assert not missing, ("infra/policies.py grants no function these operations the adapters call: "
                         + ", ".join(missing))


# ---- 2. in use --------------------------------------------------------------------------------------

def arn_of(service: str, operation: str, params: Dict[str, Any], secrets: Dict[str, str]) -> List[Tuple[str, str]]:
    """The (IAM action, resource ARN) pairs an API call needs."""
    def table(name, index=None):
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}" + (f"/index/{index}" if index else "")

    if service == "dynamodb":
        if operation == "TransactWriteItems":
            pairs = []
            for item in params["TransactItems"]:
                [(kind, body)] = item.items()
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem"}[kind]
                pairs.append((f"dynamodb:{action}", table(body["TableName"])))
            return pairs
        if operation == "TransactGetItems":
            return [("dynamodb:GetItem", table(item["Get"]["TableName"])) for item in params["TransactItems"]]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table(name)) for name in params["RequestItems"]]
        return [(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")))]
    if service == "sqs":
        name = params["QueueName"] if operation == "GetQueueUrl" else params["QueueUrl"].rstrip("/").split("/")[-1]
        return [(f"sqs:{IAM_ACTION.get(operation, operation)}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]
    if service == "secretsmanager":
        secret = params["SecretId"]
        return [(f"secretsmanager:{operation}", secret if secret.startswith("arn:") else secrets[secret])]
    if service == "s3":
        if operation == "GetObject" and params.get("VersionId"):
            operation = "GetObjectVersion"  # what IAM checks for a read of one version
        return [(f"s3:{operation}", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
    if service == "sns":
        return [(f"sns:{operation}", params["TopicArn"])]
    raise AssertionError(f"no IAM mapping for {service}.{operation}: add one to tests/test_policies.py")


def iam_match(pattern: str, value: str, *, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def allows(policy: Dict[str, Any], action: str, arn: str) -> bool:
    return any(iam_match(a, action, case=False) and any(iam_match(r, arn, case=True) for r in as_list(s["Resource"]))
               for s in statements(policy) if s["Effect"] == "Allow" for a in as_list(s["Action"]))


class Recorder:
    """Every AWS call made while a function 'runs', as (IAM action, ARN); each run starts a new container."""

    def __init__(self):
        self.current = None
        self.calls: Dict[str, Set[Tuple[str, str]]] = defaultdict(set)
        self.secrets: Dict[str, str] = {}

    def record(self, client, operation, params):
        if self.current is not None:
            service = client.meta.service_model.service_name
            self.calls[self.current].update(arn_of(service, operation, params, self.secrets))

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        new_container()
        self.current = function
        try:
            yield
        finally:
            self.current = None


def new_container():
    """What a cold start forgets: clients, queue URLs and policies, the secret's cache, the rules' cache."""
    from chalicelib.adapters import aws, queues
    from chalicelib.bootstrap import deps

    aws.reset_clients()
    queues.queue_url.cache_clear()
    queues._delivery_policy.cache_clear()
    deps.cache_clear()


@pytest.fixture
def recorder(app_module, monkeypatch):
    import botocore.client

    rec = Recorder()
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    rec.secrets[f"socialcare-{STAGE}/platforms"] = secretsmanager.describe_secret(
        SecretId=f"socialcare-{STAGE}/platforms")["ARN"]
    original = botocore.client.BaseClient._make_api_call

    def make_api_call(client, operation, params):
        rec.record(client, operation, params)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    return rec


def check(recorder: Recorder, function: str, *, environment=None, source_queue=None):
    """Every call granted; every grant used (but what Lambda itself does with the role)."""
    [secret_arn] = recorder.secrets.values()
    outputs = {"PlatformSecretArn": secret_arn}
    if policies.FUNCTIONS[function].source_stream:
        outputs["CasesStreamArn"] = stack_outputs()["CasesStreamArn"]
    policy = policies.policy_for(function, STAGE, REGION, ACCOUNT, outputs, environment=environment)
    calls = recorder.calls[function]
    if os.environ.get("SHOW_CALLS"):  # SHOW_CALLS=1 pytest -s tests/test_policies.py: what each function calls
        print("\nCALLS", function, *sorted(calls), sep="\n  ")
    assert calls, f"the {function} scenario made no AWS call"
    denied = sorted(f"{action} on {arn}" for action, arn in calls if not allows(policy, action, arn))
    assert not denied, f"{function} would be denied in AWS: {denied}"
    spec = policies.FUNCTIONS[function]
    lambda_itself = set()
    if spec.source_queue:
        queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:socialcare-{STAGE}-{spec.source_queue[2]}"
        lambda_itself = {(action, queue) for action in policies.SQS_POLLER}
    if spec.source_stream:
        lambda_itself |= {(action, outputs["CasesStreamArn"]) for action in policies.STREAM_POLLER}
    unused = []
    for statement in statements(policy):
        # CostMetering's write happens when a container's minute of usage is due, not in every scenario.
        if statement["Sid"] in ("OwnLogs", "Tracing", "CostMetering"):
            continue
        for action in statement["Action"]:
            for resource in statement["Resource"]:
                if (action, resource) in lambda_itself:
                    continue
                if not any(a == action and iam_match(resource, arn, case=True) for a, arn in calls):
                    unused.append(f"{action} on {resource}")
    assert not unused, f"{function} is granted what no code path of it uses: {unused}"


def test_the_check_itself_catches_a_call_not_granted_and_a_grant_not_used():
    recorder = Recorder()
    recorder.secrets["socialcare-test/platforms"] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x-AbCdEf"
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/socialcare-{STAGE}-settings"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:socialcare-{STAGE}-mentions"
    everything = {("dynamodb:GetItem", table), ("dynamodb:PutItem", table), ("dynamodb:UpdateItem", table),
                  ("dynamodb:Query", table), ("sqs:SendMessage", queue), ("sqs:GetQueueUrl", queue),
                  ("secretsmanager:GetSecretValue", recorder.secrets["socialcare-test/platforms"])}
    recorder.calls["fetch_mentions"] = set(everything)
    check(recorder, "fetch_mentions")
    recorder.calls["fetch_mentions"] = everything - {("dynamodb:Query", table)}
    with pytest.raises(AssertionError, match="granted what no code path of it uses.*dynamodb:Query"):
        check(recorder, "fetch_mentions")
    recorder.calls["fetch_mentions"] = everything | {("dynamodb:DeleteItem", table)}
    with pytest.raises(AssertionError, match="would be denied in AWS.*dynamodb:DeleteItem"):
        check(recorder, "fetch_mentions")


# ---- scenario helpers ----------------------------------------------------------------------------

def call_ok(answer, status=200):
    """The answer's JSON, once its status is the one expected."""
    assert answer.status_code == status, answer.body
    return answer.json_body


def x_mention(platform_id, text, author_id="42", **extra):
    return {"platform": "x", "kind": "mention", "platform_id": platform_id, "text": text,
            "created_at": "2026-11-23T03:00:00Z", "lang": "en", "source_id": f"x:mentions:{X_BRAND}",
            "author": {"id": author_id, "handle": f"cust{author_id}", "name": f"Customer {author_id}",
                       "followers": 120}, **extra}


def queue_url(name):
    return boto3.client("sqs", region_name=REGION).get_queue_url(QueueName=f"socialcare-{STAGE}-{name}")["QueueUrl"]


def put_messages(name, *bodies):
    sqs = boto3.client("sqs", region_name=REGION)
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url(name), MessageBody=body if isinstance(body, str) else json.dumps(body))


def run_batches(recorder, function, handler, queue, *, batch_size=10):
    """Deliver what is on ``queue`` to ``handler`` as Lambda would; only the handler's own calls are recorded."""
    from local.lambda_events import LambdaContext, sqs_event

    sqs = boto3.client("sqs", region_name=REGION)
    url = queue_url(queue)
    results = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch_size, AttributeNames=["All"],
                                       MessageAttributeNames=["All"], VisibilityTimeout=600).get("Messages", [])
        if not messages:
            return results
        with recorder.running(function):
            answer = handler(sqs_event(messages, f"socialcare-{STAGE}-{queue}", REGION),
                             LambdaContext(f"socialcare-{STAGE}-{function}", REGION))
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        results += answer.results


def pipeline(app_module, *bodies):
    """Triage and assign, outside any recording: the state a later scenario starts from."""
    from local.stack import deliver_queue

    put_messages("mentions", *bodies)
    sqs = boto3.client("sqs", region_name=REGION)
    deliver_queue(sqs, f"socialcare-{STAGE}-mentions", app_module.triage_mentions, "triage")
    return deliver_queue(sqs, f"socialcare-{STAGE}-triaged", app_module.assign_cases, "assign")


def use_platform_urls(monkeypatch, **urls):
    from chalicelib.bootstrap import deps
    from chalicelib.config import settings

    for name, value in urls.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    settings()  # read now: inside a request the test client applies .chalice/config.json's stage
    deps.cache_clear()


@pytest.fixture
def fake_x(app_module, monkeypatch):
    from local.fake_x import FakeX

    fake = FakeX(port=0, bearer_token="t", brand_user_id=X_BRAND, brand_handle="SoraAir", user_token="user-token",
                 oauth_client_id="client-1").start()
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=f"socialcare-{STAGE}/platforms", SecretString=json.dumps({
            "x_bearer_token": "t", "x_user_token": "user-token", "meta_app_secret": APP_SECRET,
            "meta_verify_token": "verify-me", "meta_access_token": "m"}))
    use_platform_urls(monkeypatch, X_API_BASE_URL=fake.url, GRAPH_API_BASE_URL="http://127.0.0.1:9/v21.0")
    from chalicelib.config import settings

    monkeypatch.setattr(app_module, "config", settings())  # app.py read its settings when it was loaded
    yield fake
    fake.stop()


def stack_outputs() -> Dict[str, str]:
    stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName=f"socialcare-{STAGE}")
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0]["Outputs"]}


def use_notifications_topic(monkeypatch):
    """NOTIFICATIONS_TOPIC_ARN from the stack's output, as the deploy writes it into the stage's config."""
    stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName=f"socialcare-{STAGE}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0]["Outputs"]}
    use_platform_urls(monkeypatch, NOTIFICATIONS_TOPIC_ARN=outputs["NotificationsTopicArn"])
    return outputs["NotificationsTopicArn"]


def add_x_source(kind="x_mentions"):
    from chalicelib.bootstrap import deps
    from chalicelib.domain.source import validate_source

    source = validate_source({"kind": kind, "account_id": X_BRAND, "handle": "SoraAir"})
    deps().settings.put_source(source)
    return source


def json_headers(headers):
    return {**headers, "Content-Type": "application/json"}


# ---- the scenarios ---------------------------------------------------------------------------------

def test_api_handler_uses_exactly_its_grants(client, app_module, recorder, fake_x, monkeypatch):
    from chalicelib.bootstrap import deps
    from local.fake_graph import encode_delivery, feed_comment_delivery

    aiko = app_module.agents.add("aiko", ["support"])
    app_module.agents.add("ken", ["support"])
    boss = app_module.agents.add("boss", ["leads"], role="supervisor")
    [opened] = pipeline(app_module, x_mention("101", "@SoraAir my bag is lost and nobody answers, terrible"))
    case_id = opened["case_id"]
    retry = client.http.post(f"/cases/{case_id}/replies", headers=json_headers(boss),
                             body=json.dumps({"text": "We are looking into it."})).json_body
    deps().cases.update_reply(case_id, retry["reply_id"], {"delivery_status": "failed", "error": "refused"},
                              expect_status=("queued",))
    comment = feed_comment_delivery("PAGE1", post_id="PAGE1_1", comment_id="PAGE1_1_2", sender={"id": "77", "name": "Ann"},
                                    message="Where is my refund?", created_time=time.time())
    delivery, signed = encode_delivery(comment, APP_SECRET)
    # A case waiting for an agent: nobody of the team was online when it opened.
    for agent_id in ("aiko", "ken"):
        deps().settings.set_presence(agent_id, "away", at=deps().now())
    [waiting] = pipeline(app_module, x_mention("102", "@SoraAir my flight was cancelled, terrible", author_id="43"))
    assert waiting["assignee"] is None, waiting
    calendar = {"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]]}}
    policy = {"business_hours": False, "default": {"normal": {"first_response": 60, "resolution": 1440}}}
    # Triage learning (issue 14): two posts left without a case; model versions kept in the (versioned) bucket.
    pipeline(app_module, x_mention("103", "@SoraAir you are the best, thank you!", author_id="46"),
             x_mention("104", "@SoraAir lovely crew, thanks!", author_id="47"))
    models_bucket = f"socialcare-{STAGE}-models-{ACCOUNT}"
    boto3.client("s3", region_name=REGION).put_bucket_versioning(
        Bucket=models_bucket, VersioningConfiguration={"Status": "Enabled"})
    # What the deploy sets from the stack's ModelBucketName (TRIAGE_MODELS_BUCKET), in every new container.
    from chalicelib import bootstrap

    configured = replace(bootstrap.settings(), triage_models_bucket=models_bucket)
    monkeypatch.setattr(bootstrap, "settings", lambda: configured)
    deps.cache_clear()
    assert call_ok(client.http.post("/admin/triage-models", headers=json_headers(boss)), 201)  # the version to compare with

    with recorder.running("api_handler"):
        # Triage learning: the review list, a promotion (-> triaged), a confirmation, the digest, the export,
        # a retraining compared with the active version (read from the bucket), the versions.
        assert call_ok(client.http.get("/mentions?case=false", headers=aiko))["mentions"]
        assert call_ok(client.http.post("/mentions/x:103/promote", headers=json_headers(aiko)), 202)
        assert call_ok(client.http.post("/mentions/x:104/confirm", headers=json_headers(aiko)))["confirmed"]
        assert "negative" in call_ok(client.http.get(
            f"/reports/triage-digest?day={time.strftime('%Y-%m-%d', time.gmtime())}", headers=boss))
        assert call_ok(client.http.get("/admin/triage-corrections", headers=boss))["count"] == 2
        assert call_ok(client.http.post("/admin/triage-models", headers=json_headers(boss)), 201)
        assert call_ok(client.http.get("/admin/triage-models", headers=boss))["versions"]
        assert client.http.get("/health").status_code == 200
        assert client.http.get("/cases", headers=aiko).status_code == 200
        assert client.http.get("/cases?order=priority", headers=boss).status_code == 200
        assert client.http.get("/cases?assignee=me&order=priority", headers=aiko).status_code == 200  # own entries
        assert client.http.get(f"/cases/{case_id}", headers=aiko).status_code == 200
        answer = client.http.post(f"/cases/{case_id}/replies", headers=json_headers(aiko),
                                  body=json.dumps({"text": "Sorry about this, we are on it."}))
        assert answer.status_code == 202, answer.json_body
        answer = client.http.post(f"/cases/{case_id}/replies/{retry['reply_id']}/retry", headers=aiko)
        assert answer.status_code == 202, answer.json_body
        answer = client.http.patch(f"/cases/{case_id}", headers=json_headers(aiko), body=json.dumps({"status": "resolved"}))
        assert answer.status_code == 200, answer.json_body
        assert client.http.get("/sources", headers=aiko).status_code == 200
        answer = client.http.put("/admin/sources", headers=json_headers(boss), body=json.dumps(
            {"kind": "facebook_feed", "account_id": "PAGE1"}))
        assert answer.status_code == 201, answer.json_body
        answer = client.http.put("/admin/agents/ken", headers=json_headers(boss), body=json.dumps(
            {"teams": ["vip"], "capacity": 10, "available": True, "role": "agent", "name": "Ken"}))
        assert answer.status_code == 200, answer.json_body
        rules = client.http.get("/admin/triage-rules", headers=boss).json_body
        answer = client.http.put("/admin/triage-rules", headers=json_headers(boss), body=json.dumps(rules["document"]))
        assert answer.status_code == 201, answer.json_body
        assert client.http.get("/admin/triage-rules/versions", headers=boss).status_code == 200
        # Service levels: the due inbox and its filters, calendars, away settings, the policy, the feed,
        # presence (coming online takes a waiting case), the team's queue.
        assert client.http.get("/cases?order=due", headers=aiko).status_code == 200
        assert client.http.get("/cases?order=due&sla=breached", headers=aiko).status_code == 200
        for method, path, body in (("PUT", "/admin/teams/support/hours", calendar),
                                   ("GET", "/admin/teams/support/hours", None),
                                   ("DELETE", "/admin/teams/support/hours", None),
                                   ("PUT", "/admin/teams/support/away", {"enabled": True}),
                                   ("GET", "/admin/teams/support/away", None),
                                   ("PUT", "/admin/sla", policy), ("GET", "/admin/sla", None),
                                   ("GET", "/teams/support/waiting", None)):
            answer = getattr(client.http, method.lower())(path, headers=json_headers(boss),
                                                          **({"body": json.dumps(body)} if body else {}))
            assert answer.status_code in (200, 201), (method, path, answer.json_body)
        # Measure: the KPI report (aggregate items and backlog totals), survey and QA settings, the QA queue.
        rubric = {"criteria": [{"key": "tone", "label": "Tone", "weight": 1}]}
        for method, path, body in (("GET", "/reports/kpis?group_by=team&from=2026-11-01&to=2026-11-30", None),
                                   ("PUT", "/admin/csat", {"enabled": True}), ("GET", "/admin/csat", None),
                                   ("PUT", "/admin/qa/rubric", rubric), ("GET", "/admin/qa/rubric", None),
                                   ("PUT", "/admin/qa/sampling", {"base_rate": 0.1}),
                                   ("GET", "/admin/qa/sampling", None), ("GET", "/qa/queue?week=2026-W48", None),
                                   ("GET", "/qa/reviews?week=2026-W48", None)):
            answer = getattr(client.http, method.lower())(path, headers=json_headers(boss),
                                                          **({"body": json.dumps(body)} if body else {}))
            assert answer.status_code in (200, 201), (method, path, answer.json_body)
        assert client.http.get("/notifications?unread=true", headers=aiko).status_code == 200
        answer = client.http.post("/notifications/read", headers=json_headers(aiko),
                                  body=json.dumps({"ids": ["n_0123456789abcdef0123"]}))
        assert answer.status_code == 200, answer.json_body
        answer = client.http.put("/me/presence", headers=json_headers(aiko), body=json.dumps({"presence": "online"}))
        assert answer.status_code == 200 and answer.json_body["assigned"] == [waiting["case_id"]], answer.json_body
        answer = client.http.post("/webhooks/meta", headers=signed, body=delivery)
        assert answer.status_code == 200 and answer.json_body["enqueued"] == 1, answer.json_body
        # Customers (customers_api): found by handle, a profile read and edited, another customer merged in.
        [found] = client.http.get("/customers?handle=cust42", headers=aiko).json_body["customers"]
        [other] = client.http.get("/customers?handle=cust43", headers=aiko).json_body["customers"]
        path = f"/customers/{found['customer_id']}"
        for method, where, body in (("GET", path, None), ("PATCH", path, {"tags": ["VIP"]}),
                                    ("POST", path + "/merge", {"customer_id": other["customer_id"]}),
                                    ("PUT", "/admin/customer-fields", {"fields": []}),
                                    ("GET", "/admin/customer-fields", None)):
            answer = getattr(client.http, method.lower())(where, headers=json_headers(boss),
                                                          **({"body": json.dumps(body)} if body else {}))
            assert answer.status_code == 200, (method, where, answer.json_body)
        # Customers' rights: everything held about customer x:42, exported, then erased.
        answer = client.http.get("/admin/customers/x:42/export", headers=boss)
        assert answer.status_code == 200 and answer.json_body["cases"], answer.json_body
        answer = client.http.post("/admin/customers/x:42/erase", headers=boss)
        assert answer.status_code == 200 and answer.json_body["status"] == "erased", answer.json_body

    check(recorder, "api_handler", environment={"TRIAGE_MODELS_BUCKET": models_bucket})


def test_fetch_mentions_uses_exactly_its_grants(app_module, recorder, fake_x):
    from local.lambda_events import LambdaContext, scheduled_event

    fake_x.add_user("cust1", followers=10)
    fake_x.add_post("cust1", "@SoraAir my bag is lost, please help")
    fake_x.release()
    add_x_source()

    with recorder.running("fetch_mentions"):
        results = app_module.fetch_mentions(scheduled_event("fetch", REGION), LambdaContext("fetch", REGION))
    assert [r["outcome"] for r in results] == ["ok"] and results[0]["fetched"] == 1, results

    check(recorder, "fetch_mentions")


def test_triage_mentions_uses_exactly_its_grants(client, app_module, recorder, fake_x, monkeypatch):
    from chalicelib.triage.learn import train_records
    from chalicelib.triage.model import TrainingOptions
    from local.fake_graph import encode_delivery, messaging_delivery

    rows = [{"text": t, "label": {"sentiment": s}} for t, s in (
        ("my bag is lost, terrible service", "negative"), ("thank you, great crew", "positive"),
        ("where is my refund", "negative"), ("lovely flight today", "positive"))] * 5
    model = train_records(rows, TrainingOptions(bits=10, epochs=1))
    bucket = f"socialcare-{STAGE}-models-{ACCOUNT}"
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key="models/m.json.gz", Body=model.to_bytes())
    model_uri = f"s3://{bucket}/models/m.json.gz"
    use_platform_urls(monkeypatch, TRIAGE_MODEL_URI=model_uri)
    # Customers (services/customers.py): a "thanks" from a customer with a case joins its history; one from
    # someone never seen records them.
    [known] = pipeline(app_module, x_mention("202", "@SoraAir my bag is lost, terrible", author_id="44"))
    dm = messaging_delivery("page", "PAGE1", sender_id="7300000000000001", mid="m_001",
                            text="Where is my refund? Nobody answers", timestamp_ms=int(time.time() * 1000))
    delivery, signed = encode_delivery(dm, APP_SECRET)
    assert client.http.post("/webhooks/meta", headers=signed, body=delivery).json_body["enqueued"] == 1
    complaint = x_mention("201", "@SoraAir my bag is lost and nobody answers, terrible")
    put_messages("mentions", complaint, complaint, "{not json", x_mention("203", "@SoraAir thanks!", author_id="44"),
                 x_mention("204", "@SoraAir thanks!", author_id="45"))

    results = run_batches(recorder, "triage_mentions", app_module.triage_mentions, "mentions")

    outcomes = sorted(r.get("outcome") for r in results)
    assert outcomes == ["dead_lettered", "duplicate", "no_case", "no_case", "triaged", "triaged"], results
    assert [r.get("case_id") for r in results if r.get("outcome") == "no_case"].count(known["case_id"]) == 1
    check(recorder, "triage_mentions", environment={"TRIAGE_MODEL_URI": model_uri})


def test_assign_cases_uses_exactly_its_grants(app_module, recorder, monkeypatch):
    from chalicelib.bootstrap import deps
    from chalicelib.domain.away import AwaySettings
    from chalicelib.domain.case import with_status
    from chalicelib.domain.clock import now_iso, parse_iso
    from chalicelib.domain.hours import WEEKDAYS, validate_calendar
    from chalicelib.services import intake

    use_notifications_topic(monkeypatch)
    app_module.agents.add("aiko", ["support"])
    app_module.agents.add("ken", ["support"])
    app_module.agents.add("boss", ["leads"], role="supervisor")
    # Support is closed today (open only three days from now) and sends away messages.
    open_day = WEEKDAYS[(parse_iso(now_iso()).weekday() + 3) % 7]
    deps().settings.put_team_calendar("support", validate_calendar(
        {"time_zone": "UTC", "weekly": {open_day: [["09:00", "17:00"]]}}), author="boss", at=now_iso())
    deps().settings.put_away_settings("support", AwaySettings(enabled=True), author="boss", at=now_iso())
    # A customer whose case was closed without its pointer cleared (a stale pointer the next post clears).
    [stale] = pipeline(app_module, x_mention("301", "@SoraAir my bag is lost, terrible", author_id="55"))
    case = deps().cases.get(stale["case_id"])
    assert deps().cases.save(replace(case, status="closed"))
    # A customer whose case was resolved a moment ago: their next complaint reopens it (services/customers.py).
    [done] = pipeline(app_module, x_mention("306", "@SoraAir my bag is lost, terrible", author_id="57"))
    before = deps().cases.get(done["case_id"])
    assert deps().cases.change_status(before, with_status(before, "resolved", now_iso()), event={"event": "resolved"})

    # Triaged (outside the recording): each one is on the triaged queue, in this order.
    for mention in (x_mention("302", "@SoraAir my bag is lost and nobody answers, terrible"),
                    x_mention("303", "@SoraAir still nothing about my bag, awful", created_at="2026-11-23T04:00:00Z"),
                    x_mention("304", "@SoraAir lost my bag again, terrible", author_id="55"),
                    # Escalated by triage: a supervisor is notified (feed and topic).
                    x_mention("305", "@SoraAir I was injured by your trolley, my lawyer will call", author_id="56"),
                    x_mention("307", "@SoraAir the bag came back broken, awful", author_id="57")):
        assert intake.triage_message(json.dumps(mention), deps())["outcome"] == "triaged"
    put_messages("triaged", "{not json")

    results = run_batches(recorder, "assign_cases", app_module.assign_cases, "triaged", batch_size=1)

    assert sorted(r.get("outcome") for r in results) == ["dead_lettered", "joined", "joined", "opened", "opened",
                                                        "opened"], results
    assert deps().cases.get(done["case_id"]).reopen_count == 1
    assert deps().notifications.notifications_page("boss", limit=10).notifications
    check(recorder, "assign_cases")


def test_send_replies_uses_exactly_its_grants(client, app_module, recorder, fake_x):
    from local.lambda_events import LambdaContext, scheduled_event

    boss = app_module.agents.add("boss", ["leads"], role="supervisor")
    app_module.agents.add("aiko", ["support"])
    fake_x.add_user("cust1", followers=10)
    fake_x.add_post("cust1", "@SoraAir my bag is lost and nobody answers, terrible")
    fake_x.add_user("cust2", followers=10)
    fake_x.add_post("cust2", "@SoraAir my flight was cancelled and nobody answers, terrible")
    fake_x.release()
    add_x_source()
    app_module.fetch_mentions(scheduled_event("fetch", REGION), LambdaContext("fetch", REGION))
    from local.stack import deliver_queue

    sqs = boto3.client("sqs", region_name=REGION)
    deliver_queue(sqs, f"socialcare-{STAGE}-mentions", app_module.triage_mentions, "triage")
    cases = [r["case_id"] for r in deliver_queue(sqs, f"socialcare-{STAGE}-triaged", app_module.assign_cases, "assign")]
    assert len(cases) == 2

    def reply(case_id, text):
        answer = client.http.post(f"/cases/{case_id}/replies", headers=json_headers(boss), body=json.dumps({"text": text}))
        assert answer.status_code == 202, answer.json_body

    reply(cases[0], "Sorry about your bag, we are on it.")
    results = run_batches(recorder, "send_replies", app_module.send_replies, "outbound", batch_size=5)
    fake_x.fail_next("/2/tweets", 429, reset_in=120)
    reply(cases[1], "Sorry about your flight, we are on it.")
    put_messages("outbound", "{not json")
    results += run_batches(recorder, "send_replies", app_module.send_replies, "outbound", batch_size=5)

    assert sorted(r.get("outcome", "") for r in results) == ["dead_lettered", "retry_later", "sent"], results
    check(recorder, "send_replies")


def test_sla_tick_uses_exactly_its_grants(app_module, recorder, monkeypatch):
    from datetime import timedelta

    from chalicelib.bootstrap import deps
    from chalicelib.domain.clock import now_iso, parse_iso, to_iso
    from chalicelib.domain.hours import WEEKDAYS, validate_calendar
    from chalicelib.domain.sla import validate_policy
    from local.lambda_events import LambdaContext, scheduled_event

    use_notifications_topic(monkeypatch)
    now = parse_iso(now_iso())
    store = deps().settings
    app_module.agents.add("boss", ["leads"], role="supervisor")
    app_module.agents.add("aiko", ["support"], capacity=5)
    app_module.agents.add("ken", ["support"], capacity=5)
    app_module.agents.add("mika", ["night"])
    # A first response within a minute, around the clock: a warning notifies; a breach notifies, raises
    # the priority and hands the case to another agent with room.
    store.put_sla_policy(validate_policy({
        "business_hours": False, "default": {p: {"first_response": 1} for p in ("urgent", "high", "normal", "low")},
        "actions": {"warning": ["notify"], "breach": ["notify", "raise_priority", "reassign"]}}),
        author="boss", at=to_iso(now))
    # The night team worked yesterday and is closed today: its shift ended since the last run.
    yesterday = WEEKDAYS[(now - timedelta(days=1)).weekday()]
    store.put_team_calendar("night", validate_calendar({"time_zone": "UTC", "weekly": {yesterday: [["00:00", "12:00"]]}}),
                            author="boss", at=to_iso(now))
    store.record_run("sla_tick", to_iso(now - timedelta(days=2)))
    posted = to_iso(now - timedelta(minutes=10)).replace(".000000", "")
    [late] = pipeline(app_module, x_mention("401", "@SoraAir my bag is lost, please help", created_at=posted))
    assert late["assignee"], late
    # A case waiting in support's queue (stored before any policy marked it: no SLA check of its own).
    from chalicelib.domain.case import new_case
    from chalicelib.domain.mention import Mention

    waiting = new_case(Mention.from_dict(x_mention("402", "@SoraAir where is my refund?", author_id="43")),
                       {"priority": "normal"}, team="support", assignee=None, now=to_iso(now))
    assert deps().cases.create(waiting)

    with recorder.running("sla_tick"):
        result = app_module.sla_tick(scheduled_event("sla_tick", REGION), LambdaContext("sla_tick", REGION))

    assert result["crossings"] and result["went_offline"] == 1 and result["assigned"] == 1, result
    assert deps().cases.get(waiting.case_id).assignee
    assert deps().settings.get_agent("mika").presence == "offline"
    assert deps().notifications.notifications_page("boss", limit=10).notifications
    check(recorder, "sla_tick")


def test_triage_daily_uses_exactly_its_grants(app_module, recorder, monkeypatch):
    from chalicelib import bootstrap
    from chalicelib.bootstrap import deps
    from chalicelib.domain.clock import now_iso
    from local.lambda_events import LambdaContext, scheduled_event

    use_notifications_topic(monkeypatch)
    app_module.agents.add("boss", ["leads"], role="supervisor")
    models_bucket = f"socialcare-{STAGE}-models-{ACCOUNT}"
    boto3.client("s3", region_name=REGION).put_bucket_versioning(
        Bucket=models_bucket, VersioningConfiguration={"Status": "Enabled"})
    # The deploy's TRIAGE_MODELS_BUCKET; a threshold of one, so the one negative mention makes the notification.
    configured = replace(bootstrap.settings(), triage_models_bucket=models_bucket, triage_digest_threshold=1)
    monkeypatch.setattr(bootstrap, "settings", lambda: configured)
    deps.cache_clear()
    # Yesterday (as the run sees it): a negative retweet left without a case, and an active model version.
    day_before = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 86400))
    deps().now = lambda: day_before
    pipeline(app_module, x_mention("501", "RT @kana: @SoraAir worst airline ever, lost my bag", author_id="51"))
    from chalicelib.services import triage_models

    assert triage_models.retrain(deps(), by="boss", version="v-previous")["activated"]
    deps().now = now_iso

    with recorder.running("triage_daily"):
        result = app_module.triage_daily(scheduled_event("triage_daily", REGION), LambdaContext("triage_daily", REGION))

    assert result["digest"]["notified"] == ["boss"] and result["retrain"]["version"].startswith("w"), result
    check(recorder, "triage_daily", environment={"TRIAGE_MODELS_BUCKET": models_bucket})


def test_refresh_x_token_uses_exactly_its_grants(app_module, recorder, fake_x):
    from local.lambda_events import LambdaContext, scheduled_event

    add_x_source()
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    secret_id = f"socialcare-{STAGE}/platforms"

    def set_refresh_token(token):
        values = json.loads(secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"])
        values.update(x_refresh_token=token, x_client_id="client-1", x_user_token_expires_at=str(int(time.time()) + 60))
        secretsmanager.put_secret_value(SecretId=secret_id, SecretString=json.dumps(values))

    outcomes = []
    for token in (fake_x.issue_refresh_token(), "rt-revoked"):
        set_refresh_token(token)
        with recorder.running("refresh_x_token"):
            outcomes.append(app_module.refresh_x_token(scheduled_event("refresh", REGION),
                                                       LambdaContext("refresh", REGION))["outcome"])
    assert outcomes == ["refreshed", "refused"]
    check(recorder, "refresh_x_token")


def test_measure_changes_uses_exactly_its_grants(client, app_module, recorder, monkeypatch):
    """The cases stream, read as Lambda's mapping would: a case opened, answered and resolved (its events for
    the handle time), the customer back with a new case (their ledger, the earlier case), each change once."""
    from chalicelib.bootstrap import deps
    from chalicelib.config import settings

    # No reopen window: the customer's return opens a new case, the path that reads their ledger.
    monkeypatch.setenv("REOPEN_WINDOW_HOURS", "0")
    settings.cache_clear()
    deps.cache_clear()
    from chalicelib.domain.clock import now_iso
    from chalicelib.domain.hours import validate_calendar
    from chalicelib.domain.sla import validate_policy
    from local.stack import deliver_stream

    aiko = app_module.agents.add("aiko", ["support"])
    store = deps().settings
    store.put_sla_policy(validate_policy({"business_hours": False, "default": {
        p: {"first_response": 60, "resolution": 1440} for p in ("urgent", "high", "normal", "low")}}),
        author="boss", at=now_iso())
    store.put_team_calendar("support", validate_calendar({"time_zone": "UTC", "weekly": {
        d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}), author="boss", at=now_iso())
    [opened] = pipeline(app_module, x_mention("501", "@SoraAir my bag is lost, please help"))
    case_id = opened["case_id"]
    answer = client.http.post(f"/cases/{case_id}/replies", headers=json_headers(aiko),
                              body=json.dumps({"text": "Sorry about your bag, we are on it."}))
    assert answer.status_code == 202, answer.json_body
    answer = client.http.patch(f"/cases/{case_id}", headers=json_headers(aiko), body=json.dumps({"status": "resolved"}))
    assert answer.status_code == 200, answer.json_body
    [back] = pipeline(app_module, x_mention("502", "@SoraAir my bag is still lost, terrible",
                                            created_at="2026-11-23T05:00:00Z"))
    assert back["case_id"] != case_id, back

    def measured(event, context):
        with recorder.running("measure_changes"):
            return app_module.measure_changes(event, context)

    streams = boto3.client("dynamodbstreams", region_name=REGION)
    stream_arn = stack_outputs()["CasesStreamArn"]
    iterators: Dict[str, str] = {}
    answers = deliver_stream(streams, stream_arn, measured, "measure_changes", iterators)
    assert answers and all(a == {"batchItemFailures": []} for a in answers), answers
    # The same records again (Lambda retries a batch): each token counts once.
    rows = deps().kpis.kpi_rows("team", "2000-01-01", "2100-01-01")
    again = deliver_stream(streams, stream_arn, measured, "measure_changes", {})
    assert again and deps().kpis.kpi_rows("team", "2000-01-01", "2100-01-01") == rows
    assert sum(r.get("cases_opened", 0) for r in rows) == 2 and sum(r.get("cases_resolved", 0) for r in rows) == 1
    check(recorder, "measure_changes")


def test_every_function_of_the_app_has_a_scenario_here():
    import app

    scenarios = {name[len("test_"):-len("_uses_exactly_its_grants")] for name in globals()
                 if name.startswith("test_") and name.endswith("_uses_exactly_its_grants")}
    assert set(app_functions(app.app)) <= scenarios
