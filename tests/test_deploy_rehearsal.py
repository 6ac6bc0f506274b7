"""The README's "Deploying to AWS", command by command, offline against moto's server.

What moto allows is done for real: infra/template.yaml becomes the stack on
moto's CloudFormation, the stack's outputs are written into the stage's
config, `chalice deploy` (its own botocore session honours AWS_ENDPOINT_URL)
creates the functions, the schedules and the SQS mappings, the partial-batch
step configures the mappings, and infra/admin.py creates the first supervisor
and signs in. What moto cannot do is stated where it happens, never skipped:

- moto's CloudFormation does not create Cognito or Secrets Manager resources,
  so the stack has no UserPoolId/UserPoolClientId output and `make deploy`
  stops there with that message; the test then creates the pool, app client
  and secret through their APIs (what the stack makes on AWS) and goes on
  with the same deploy steps;
- moto cannot import Chalice's Swagger 2.0 API definition (ImportRestApi), so
  `chalice deploy` fails at its API Gateway step, after the functions,
  schedules and mappings exist; deploy.py names that step in its error.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

from local.stack import free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
import deploy  # noqa: E402

REGION = "us-east-1"
STAGE = "prod"
FUNCTIONS = ("fetch_mentions", "triage_mentions", "assign_cases", "send_replies", "refresh_x_token", "sla_tick",
             "measure_changes")


@pytest.fixture(scope="module")
def moto_url():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/moto-api/")
    yield url
    server.stop()


@pytest.fixture
def env(moto_url, monkeypatch):
    """An empty account on moto's server; boto3, botocore (chalice's too) and the CLIs honour AWS_ENDPOINT_URL."""
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST"), timeout=10)
    values = {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal",
              "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
              # One attempt: moto's 500 to ImportRestApi would otherwise be retried with backoff.
              "AWS_MAX_ATTEMPTS": "1"}
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **values}


@pytest.fixture
def project(tmp_path):
    """A checkout of the app, as a team has it before its first deploy."""
    target = tmp_path / "socialcare"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "chalicelib", target / "chalicelib", ignore=ignore)
    shutil.copytree(ROOT / "infra", target / "infra", ignore=ignore)
    (target / ".chalice").mkdir()
    for path in [*(ROOT / ".chalice").glob("*.json")]:
        shutil.copy(path, target / ".chalice" / path.name)
    for name in ("app.py", "requirements.txt"):
        shutil.copy(ROOT / name, target / name)
    return target


def stage_environment(project):
    return json.loads((project / ".chalice" / "config.json").read_text())["stages"][STAGE]["environment_variables"]


def client(service):
    return boto3.client(service, region_name=REGION)


def stand_in_for_what_moto_cloudformation_skips():
    """On AWS the stack creates these (infra/template.yaml); moto's CloudFormation skips both kinds."""
    cognito = client("cognito-idp")
    pool = cognito.create_user_pool(PoolName=f"socialcare-{STAGE}-agents",
                                    AdminCreateUserConfig={"AllowAdminCreateUserOnly": True})["UserPool"]
    app_client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName=f"socialcare-{STAGE}-agent-console", GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]
    client("secretsmanager").create_secret(Name=f"socialcare-{STAGE}/platforms")  # without a value, as the stack
    return {"UserPoolId": pool["Id"], "UserPoolClientId": app_client["ClientId"]}


def run(env, project, *argv, stdin=""):
    return subprocess.run([sys.executable, *argv], cwd=project, env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_the_readme_deploy_section_offline(env, project):
    placeholder_config = (project / ".chalice" / "config.json").read_text()
    said = []

    # `make deploy STAGE=prod` is python infra/deploy.py --stage prod: on moto it provisions infra/,
    # then stops, because moto's CloudFormation made no Cognito pool, so the stack has no pool outputs.
    recipe = subprocess.run(["make", "-n", "deploy", f"STAGE={STAGE}"], cwd=ROOT, capture_output=True, text=True)
    assert f"infra/deploy.py --stage {STAGE}" in recipe.stdout and "chalice deploy" not in recipe.stdout
    assert deploy.main(["--stage", STAGE], project_dir=project, session=boto3.Session(), out=said.append) == 1
    assert "has no output UserPoolId, UserPoolClientId" in said[-1] and "moto" in said[-1]
    stack = client("cloudformation").describe_stacks(StackName=f"socialcare-{STAGE}")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"] for o in stack["Outputs"]} >= {"CasesTableName", "SettingsTableName", "OutboundQueueUrl"}
    assert f"socialcare-{STAGE}-cases" in client("dynamodb").list_tables()["TableNames"]
    assert (project / ".chalice" / "config.json").read_text() == placeholder_config  # nothing half-written

    # The same steps, with the pool, app client and secret that AWS's CloudFormation would have made.
    outputs_on_aws = stand_in_for_what_moto_cloudformation_skips()
    steps = deploy.Deployment(STAGE, boto3.Session(), project_dir=project, env=env, out=said.append)
    steps.preflight()
    outputs = steps.provision()  # the update path: nothing changed
    assert "stack socialcare-prod: no changes" in said
    outputs.update(outputs_on_aws)
    steps.configure(outputs)
    environment = stage_environment(project)
    assert environment["USER_POOL_ID"] == outputs_on_aws["UserPoolId"]
    assert environment["USER_POOL_CLIENT_ID"] == outputs_on_aws["UserPoolClientId"]
    assert "REPLACE_WITH" not in json.dumps(json.loads((project / ".chalice" / "config.json").read_text())["stages"][STAGE])
    steps.write_policies(outputs)
    steps.check_secret()
    assert any("has no value yet" in line and "set-secret --stage prod" in line for line in said)

    with pytest.raises(deploy.DeployError) as api_step:
        steps.chalice_deploy()
    message = str(api_step.value)
    assert "failed at its API Gateway step (ImportRestApi" in message
    assert "created or updated the Lambda functions, their schedules and the SQS event source mappings" in message
    assert "moto imports only a subset of OpenAPI 3, not Chalice's Swagger 2.0 document" in message

    # What chalice deploy made before the API step: every function, with the stack's values in its environment.
    lam = client("lambda")
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert names >= {f"socialcare-{STAGE}"} | {f"socialcare-{STAGE}-{name}" for name in FUNCTIONS}
    variables = lam.get_function_configuration(FunctionName=f"socialcare-{STAGE}-refresh_x_token")["Environment"]["Variables"]
    assert variables["USER_POOL_ID"] == outputs_on_aws["UserPoolId"] and variables["SOCIALCARE_STAGE"] == STAGE
    rules = {r["Name"]: r["ScheduleExpression"] for r in client("events").list_rules()["Rules"]}
    assert rules[f"socialcare-{STAGE}-fetch_mentions-event"] == "rate(1 minute)"
    assert rules[f"socialcare-{STAGE}-refresh_x_token-event"] == "rate(30 minutes)"
    assert rules[f"socialcare-{STAGE}-sla_tick-event"] == "rate(1 minute)"
    target = client("events").list_targets_by_rule(Rule=f"socialcare-{STAGE}-refresh_x_token-event")["Targets"][0]
    assert target["Arn"].endswith(f":function:socialcare-{STAGE}-refresh_x_token")
    # The cases stream's ARN came from the stack output (CASES_STREAM_ARN), which app.py's
    # on_dynamodb_record read when chalice deploy loaded it.
    assert environment["CASES_STREAM_ARN"] == outputs["CasesStreamArn"]
    assert outputs["CasesStreamArn"].startswith(f"arn:aws:dynamodb:{REGION}:")
    mappings = {m["FunctionArn"].rsplit(":", 1)[-1]: (m["EventSourceArn"] if ":dynamodb:" in m["EventSourceArn"]
                                                      else m["EventSourceArn"].rsplit(":", 1)[-1])
                for m in lam.list_event_source_mappings()["EventSourceMappings"]}
    assert mappings == {f"socialcare-{STAGE}-triage_mentions": f"socialcare-{STAGE}-mentions",
                        f"socialcare-{STAGE}-assign_cases": f"socialcare-{STAGE}-triaged",
                        f"socialcare-{STAGE}-send_replies": f"socialcare-{STAGE}-outbound",
                        f"socialcare-{STAGE}-measure_changes": outputs["CasesStreamArn"]}

    # The step after chalice: the mappings (the queues' and the stream's) report batch item failures, and
    # the functions know it.
    assert len(steps.after_chalice()) == 4
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    variables = lam.get_function_configuration(FunctionName=f"socialcare-{STAGE}-measure_changes")["Environment"]["Variables"]
    assert variables["SQS_REPORT_BATCH_ITEM_FAILURES"] == "true" and variables["CASES_STREAM_ARN"] == outputs["CasesStreamArn"]

    # The stage's front: the API handler's function URL, open to everyone (the app checks each caller), with the
    # two invoke statements AWS requires; a second deploy adds neither a URL nor a statement. (moto's Lambda keeps
    # no LoggingConfig, so the logging step only shows it runs here: tests/test_deploy_front.py has the rest.)
    assert len(steps.lambda_logging()) == len(FUNCTIONS) + 2  # and the API handler and triage_daily
    url = steps.function_url()
    assert url.startswith("https://") and ".lambda-url." in url
    assert steps.function_url() == url
    assert lam.get_function_url_config(FunctionName=f"socialcare-{STAGE}")["AuthType"] == "NONE"
    statements = json.loads(lam.get_policy(FunctionName=f"socialcare-{STAGE}")["Policy"])["Statement"]
    assert sorted((s["Sid"], s["Action"]) for s in statements if s["Principal"] == "*") == [
        ("FunctionURLAllowInvokeAction", "lambda:InvokeFunction"),
        ("FunctionURLAllowPublicAccess", "lambda:InvokeFunctionUrl")]

    # README: the first supervisor, then a token for the curl examples.
    done = run(env, project, "infra/admin.py", "create-supervisor", "--stage", STAGE, "--username", "aiko",
               "--email", "aiko@example.com", "--temporary-password-stdin", stdin="Temporary-passw0rd!\n")
    assert done.returncode == 0, done.stderr
    agent = client("dynamodb").get_item(TableName=f"socialcare-{STAGE}-settings",
                                        Key={"pk": {"S": "AGENT#aiko"}, "sk": {"S": "PROFILE"}})["Item"]
    assert agent["role"] == {"S": "supervisor"}
    done = run(env, project, "infra/admin.py", "login", "--stage", STAGE, "--username", "aiko",
               stdin="Temporary-passw0rd!\nAiko-chose-this-one-2026\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(".") == 2 and len(done.stdout.strip()) > 100  # one JWT, nothing else

    # README: the webhook's verify token goes into the secret without a shell history.
    done = run(env, project, "infra/admin.py", "set-secret", "--stage", STAGE, "meta_verify_token",
               stdin="a-long-random-verify-token\n")
    assert done.returncode == 0, done.stderr
    secret = json.loads(client("secretsmanager").get_secret_value(SecretId=f"socialcare-{STAGE}/platforms")["SecretString"])
    assert secret["meta_verify_token"] == "a-long-random-verify-token"


def test_a_placeholder_left_in_the_stage_fails_the_deploy_before_anything_is_created(env, project):
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"][STAGE]["environment_variables"]["X_BRAND_USER_ID"] = "REPLACE_WITH_THE_BRAND_X_USER_ID"
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    said = []

    assert deploy.main(["--stage", STAGE], project_dir=project, session=boto3.Session(), out=said.append) == 1

    assert "stages.prod.environment_variables.X_BRAND_USER_ID" in said[-1] and "nothing was deployed" in said[-1]
    assert client("cloudformation").list_stacks()["StackSummaries"] == []


def test_a_placeholder_in_the_secret_fails_the_deploy_before_chalice_runs(env, project):
    client("secretsmanager").create_secret(Name=f"socialcare-{STAGE}/platforms", SecretString=json.dumps(
        {"meta_app_secret": "REPLACE_WITH_META_APP_SECRET"}))
    steps = deploy.Deployment(STAGE, boto3.Session(), project_dir=project, env=env, out=lambda line: None)
    with pytest.raises(deploy.DeployError, match="meta_app_secret.*set-secret"):
        steps.check_secret()


def test_the_two_deploy_paths_refuse_each_other(env, project, tmp_path):
    cloudformation = client("cloudformation")
    # A stage deployed by a CloudFormation pipeline (`make package` output as socialcare-prod-pipeline) ...
    cloudformation.create_stack(StackName=f"socialcare-{STAGE}-pipeline", TemplateBody=json.dumps({
        "Resources": {"CasesTable": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "pipeline-owned"}}}}))
    said = []
    assert deploy.main(["--stage", STAGE], project_dir=project, session=boto3.Session(), out=said.append) == 1
    assert "deployed by a CloudFormation pipeline (stack socialcare-prod-pipeline" in said[-1]
    assert deploy.stack_status(cloudformation, f"socialcare-{STAGE}") is None  # make deploy created nothing

    # ... and a stage deployed with `make deploy` is refused by the pipeline's check.
    cloudformation.delete_stack(StackName=f"socialcare-{STAGE}-pipeline")
    deploy.Deployment(STAGE, boto3.Session(), project_dir=project, env=env, out=said.append).provision()
    packaged = tmp_path / "sam.yaml"
    packaged.write_text("Resources: {}\n")
    said.clear()
    assert deploy.main(["--stage", STAGE, "--check-pipeline", "--template", str(packaged)], project_dir=project,
                       session=boto3.Session(), out=said.append) == 1
    assert "stage prod is deployed with `make deploy` (stack socialcare-prod" in said[-1]

    # A stage of neither kind may be deployed by the pipeline, unless its template has a placeholder left.
    said.clear()
    assert deploy.main(["--stage", "staging", "--check-pipeline", "--template", str(packaged)], project_dir=project,
                       session=boto3.Session(), out=said.append) == 0
    packaged.write_text("Resources:\n  APIHandler:\n    Properties: {Environment: {Variables: "
                        "{USER_POOL_ID: REPLACE_WITH_STACK_OUTPUT_UserPoolId}}}\n")
    assert deploy.main(["--stage", "staging", "--check-pipeline", "--template", str(packaged)], project_dir=project,
                       session=boto3.Session(), out=said.append) == 1
    assert "REPLACE_WITH_STACK_OUTPUT_UserPoolId" in said[-1]


def test_template_parameters_are_passed_once_and_kept_by_later_deploys(env, project):
    def deployment(**parameters):
        return deploy.Deployment(STAGE, boto3.Session(), project_dir=project, env=env, out=lambda line: None,
                                 parameters=parameters)

    def parameters():
        stack = client("cloudformation").describe_stacks(StackName=f"socialcare-{STAGE}")["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    deployment(MaxReceiveCount="7").provision()  # make deploy STAGE=prod PARAMS="MaxReceiveCount=7"
    assert parameters()["MaxReceiveCount"] == "7"
    deployment().provision()  # a later plain `make deploy` keeps it
    assert parameters()["MaxReceiveCount"] == "7" and parameters()["Stage"] == STAGE
    with pytest.raises(deploy.DeployError, match="no parameter MaxRecieveCount"):
        deployment(MaxRecieveCount="3").provision()
