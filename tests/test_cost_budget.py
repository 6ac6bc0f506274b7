"""The monthly budget in infra/: an AWS budget on the stage's cost allocation tag, told at 80 % spent and at a
forecast past 100 %, only when the stage has a budget; the deploy passes the stage's MONTHLY_BUDGET_USD (the
figure the in-app warning uses); the template still provisions on moto, which skips AWS::Budgets."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import boto3
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
import deploy  # noqa: E402

TEMPLATE = (ROOT / "infra" / "template.yaml").read_text()


def template():
    return yaml.load(TEMPLATE, Loader=deploy._template_loader())


def test_the_budget_is_monthly_on_the_stage_tag_and_tells_the_alarm_topic_and_finance():
    document = template()
    budget = document["Resources"]["MonthlyBudget"]
    assert budget["Type"] == "AWS::Budgets::Budget" and budget["Condition"] == "HasBudget"
    data = budget["Properties"]["Budget"]
    assert (data["BudgetType"], data["TimeUnit"]) == ("COST", "MONTHLY")
    assert data["BudgetLimit"] == {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"}
    assert data["CostFilters"]["TagKeyValue"] == [{"Fn::Join": ["", ["user:stage$", {"Ref": "Stage"}]]}]
    told = {(n["Notification"]["NotificationType"], n["Notification"]["Threshold"]): n["Subscribers"]
            for n in budget["Properties"]["NotificationsWithSubscribers"]}
    assert set(told) == {("ACTUAL", 80), ("FORECASTED", 100)}
    for subscribers in told.values():
        condition, with_email, without = subscribers["Fn::If"]
        assert condition == "HasBudgetEmail"
        assert {"SubscriptionType": "SNS", "Address": {"Ref": "AlarmTopic"}} in without
        assert {"SubscriptionType": "EMAIL", "Address": {"Ref": "BudgetEmail"}} in with_email
    # Budgets publishes to the topic as a service, so the topic lets it (only where there is a budget).
    policy = document["Resources"]["AlarmTopicPolicy"]
    assert policy["Condition"] == "HasBudget"
    assert "budgets.amazonaws.com" in policy["Properties"]["PolicyDocument"]["Statement"][0]["Principal"]["Service"]
    assert document["Conditions"]["HasBudget"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "MonthlyBudgetUsd"}, "0"]}]}
    assert document["Parameters"]["MonthlyBudgetUsd"]["Default"] == 0


@pytest.mark.parametrize("parameters", [{}, {"MonthlyBudgetUsd": "250", "BudgetEmail": "finance@example.com"}])
def test_the_template_still_provisions_on_moto_with_and_without_a_budget(parameters, monkeypatch):
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(StackName="socialcare-budget", TemplateBody=TEMPLATE, Parameters=[
            {"ParameterKey": k, "ParameterValue": v} for k, v in {"Stage": "budget", **parameters}.items()])
        stack = cloudformation.describe_stacks(StackName="socialcare-budget")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        assert "socialcare-budget-settings" in boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"]


@pytest.fixture
def project(tmp_path):
    target = tmp_path / "socialcare"
    (target / "infra").mkdir(parents=True)
    shutil.copy(ROOT / "infra" / "template.yaml", target / "infra" / "template.yaml")
    shutil.copytree(ROOT / ".chalice", target / ".chalice", ignore=shutil.ignore_patterns("deployed"))
    return target


def _set_budget(project, value):
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    config["stages"]["prod"].setdefault("environment_variables", {})["MONTHLY_BUDGET_USD"] = value
    path.write_text(json.dumps(config))


def test_the_deploy_passes_the_stage_s_budget_unless_told_otherwise(project):
    def parameters(**given):
        steps = deploy.Deployment("prod", session=None, project_dir=project, parameters=given)
        return {p["ParameterKey"]: p.get("ParameterValue") for p in steps._parameters(TEMPLATE, previous=set())}

    assert "MonthlyBudgetUsd" not in parameters()  # no budget set: the template's default, none
    _set_budget(project, "400")
    assert parameters()["MonthlyBudgetUsd"] == "400"
    assert parameters(MonthlyBudgetUsd="900")["MonthlyBudgetUsd"] == "900"  # make deploy PARAMS=... wins
