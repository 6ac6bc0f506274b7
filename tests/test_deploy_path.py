"""The `make deploy` step Chalice cannot do: ReportBatchItemFailures on the deployed mappings (moto)."""
from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "infra"))
import partial_batch  # noqa: E402

REGION = "us-east-1"


def deployed_function(name, queue_arn):
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                           "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                          "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
                        Code={"ZipFile": code.getvalue()}, Environment={"Variables": {"SOCIALCARE_STAGE": "prod"}})
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, BatchSize=10)


def test_deploy_step_turns_on_item_failures_then_tells_the_functions(aws):
    sqs = boto3.client("sqs", region_name=REGION)
    for short in partial_batch.QUEUE_FUNCTIONS:
        url = sqs.create_queue(QueueName=f"q-{short}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        deployed_function(f"socialcare-prod-{short}", arn)
    lam = boto3.client("lambda", region_name=REGION)

    changed = partial_batch.enable(lam, "prod")

    assert changed == [f"socialcare-prod-{short}" for short in partial_batch.QUEUE_FUNCTIONS]
    for function in changed:
        [mapping] = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        assert variables == {"SOCIALCARE_STAGE": "prod", "SQS_REPORT_BATCH_ITEM_FAILURES": "true"}
    assert partial_batch.enable(lam, "prod") == changed  # running it again changes nothing else


def test_deploy_step_refuses_a_stage_that_was_not_deployed(aws):
    with pytest.raises(SystemExit, match="chalice deploy"):
        partial_batch.enable(boto3.client("lambda", region_name=REGION), "nope")
