"""The alarms of infra/template.yaml: what they watch, where they go, and that the stack still creates."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
import merge  # noqa: E402
import policies  # noqa: E402

TEMPLATE = merge.load(ROOT / "infra" / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
ALARMS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
EMF_DIMENSIONS = [{"Name": "service", "Value": "socialcare"}, {"Name": "stage", "Value": {"Ref": "Stage"}}]
# Metrics the alarms watch that another change is to emit (count(...) in the named module).
PENDING_EMITTERS: dict = {}


def alarms_on(namespace, metric):
    return {name: a for name, a in ALARMS.items() if a["Namespace"] == namespace and a["MetricName"] == metric}


def test_every_alarm_goes_to_the_team_topic_and_stays_quiet_without_data():
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail" and subscription["Properties"]["Protocol"] == "email"
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    assert "AlarmTopicArn" in TEMPLATE["Outputs"]
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
        assert alarm["AlarmName"]["Fn::Sub"].startswith("socialcare-${Stage}-"), name


def test_any_message_in_any_dead_letter_queue_raises_an_alarm():
    dlqs = [name for name, r in RESOURCES.items()
            if r["Type"] == "AWS::SQS::Queue" and r["Properties"]["QueueName"]["Fn::Sub"].endswith("-dlq")]
    assert len(dlqs) == 3
    watched = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]: a for a in
               alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible").values()}
    for dlq in dlqs:
        assert watched[dlq]["Threshold"] == 1 and watched[dlq]["Statistic"] == "Maximum", dlq


def test_errors_and_throttles_of_every_function_by_the_name_chalice_gives_it():
    for metric in ("Errors", "Throttles"):
        names = {a["Dimensions"][0]["Value"]["Fn::Sub"] for a in alarms_on("AWS/Lambda", metric).values()}
        expected = {policies.function_name(f, "${Stage}") for f in policies.FUNCTIONS}
        assert names == expected, metric
        assert "socialcare-${Stage}" in names  # the API handler's name has no suffix
        for alarm in alarms_on("AWS/Lambda", metric).values():
            assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1


def test_the_apps_own_metrics_and_the_apis_5xx_through_either_front():
    for metric in ("SourceNeedsAttention", "RepliesFailed", "XTokenRefreshFailed"):
        [alarm] = alarms_on("socialcare", metric).values()
        assert alarm["Dimensions"] == EMF_DIMENSIONS, metric
        assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1
    [api] = alarms_on("AWS/ApiGateway", "5XXError").values()
    assert api["Dimensions"] == [{"Name": "ApiName", "Value": "socialcare"}]
    assert api["Threshold"] == {"Ref": "Api5xxThreshold"}
    # The same through the stage's front, the API handler's function URL (Lambda's metric, by function name).
    [url] = alarms_on("AWS/Lambda", "Url5xxCount").values()
    assert url["Dimensions"] == [{"Name": "FunctionName", "Value": {"Fn::Sub": policies.function_name("api_handler",
                                                                                                     "${Stage}")}}]
    assert url["Threshold"] == {"Ref": "Api5xxThreshold"} and url["Statistic"] == "Sum"


def test_the_apps_metrics_carry_the_dimensions_the_alarms_watch(capsys):
    """Powertools writes EMF with `service` and the stage as dimensions (chalicelib/observability.py)."""
    import json

    from chalicelib.observability import count, flush_metrics, metrics, start_invocation

    metrics.clear_default_dimensions()
    start_invocation("prod")
    count("RepliesFailed")
    flush_metrics()
    line = json.loads([out for out in capsys.readouterr().out.splitlines() if '"_aws"' in out][-1])
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "socialcare"
    assert sorted(directive["Dimensions"][0]) == ["service", "stage"]
    assert (line["service"], line["stage"]) == ("socialcare", "prod")


def test_every_alarmed_app_metric_is_emitted_by_the_code():
    code = "\n".join(path.read_text() for path in (ROOT / "chalicelib").rglob("*.py"))
    for alarm in ALARMS.values():
        if alarm["Namespace"] != "socialcare":
            continue
        metric = alarm["MetricName"]
        emitted = re.search(rf"""count\(\s*["']{metric}["']""", code)
        assert emitted or metric in PENDING_EMITTERS, f"no code emits {metric}, which an alarm watches"


def test_stateful_resources_survive_stack_updates_and_deletion():
    for name in ("CasesTable", "MentionsTable", "SettingsTable", "AgentUserPool", "PlatformSecret", "ModelBucket"):
        assert RESOURCES[name]["DeletionPolicy"] == RESOURCES[name]["UpdateReplacePolicy"] == "Retain", name
    # No value in the template: no stack update can ever write the secret (and reset the platform tokens).
    secret = RESOURCES["PlatformSecret"]["Properties"]
    assert "SecretString" not in secret and "GenerateSecretString" not in secret
    assert TEMPLATE["Outputs"]["PlatformSecretArn"]["Value"] == {"Ref": "PlatformSecret"}
    assert RESOURCES["CasesTable"]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at",
                                                                                "Enabled": True}
    flows = RESOURCES["AgentUserPoolClient"]["Properties"]["ExplicitAuthFlows"]
    assert {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"} <= set(flows)


@pytest.mark.parametrize("email", ["", "oncall@example.com"])
def test_the_stack_with_its_alarms_creates_on_moto(aws, email):
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    stage = "alarms" + ("mail" if email else "")
    cloudformation.create_stack(StackName=f"socialcare-{stage}", TemplateBody=(ROOT / "infra" / "template.yaml").read_text(),
                                Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage},
                                            {"ParameterKey": "AlarmEmail", "ParameterValue": email}])
    [stack] = cloudformation.describe_stacks(StackName=f"socialcare-{stage}")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["AlarmTopicArn"].endswith(f":socialcare-{stage}-alarms")
    topics = boto3.client("sns", region_name="us-east-1").list_topics()["Topics"]
    assert {"TopicArn": outputs["AlarmTopicArn"]} in topics
    # moto's CloudFormation skips the alarms and the e-mail subscription (with a warning); AWS creates them.
