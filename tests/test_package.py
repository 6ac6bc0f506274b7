"""`make package`: what `chalice deploy` would ship, merged with infra/, is valid and fit to run.

Built once (infra/merge.py, then `chalice package --stage prod`), then checked
by cfn-lint (no error, no warning) and asserted on: arm64, log retention,
per-function roles with their own least-privilege policies, SQS mappings that
report item failures and cap their concurrency, schedules, API throttling, the
API handler's function URL and its bound, Lambda's logging controls, alarms, and
the project/stage/component tags on everything taggable.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml  # shipped with cfn-lint

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STAGE = "prod"
sys.path.insert(0, str(ROOT / "infra"))
import deploy  # noqa: E402
import policies  # noqa: E402

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())

# Resource types that cannot carry tags; every other type in the package must carry ours.
UNTAGGABLE = {"AWS::Lambda::Permission", "AWS::Lambda::Url", "AWS::Cognito::UserPoolClient", "AWS::SNS::Subscription",
              "AWS::SNS::TopicPolicy"}


def chalice_config(stage, function):
    from chalice.config import Config

    return Config(chalice_stage=stage, function_name=function, config_from_disk=CONFIG)


def app_event_sources():
    from chalice.app import ScheduledEventConfig, SQSEventConfig

    import app

    schedules = {s.name: s for s in app.app.event_sources if isinstance(s, ScheduledEventConfig)}
    queues = {s.name: s for s in app.app.event_sources if isinstance(s, SQSEventConfig)}
    return schedules, queues


def app_stream_sources():
    from chalice.app import DynamoDBEventConfig

    import app

    return {s.name: s for s in app.app.event_sources if isinstance(s, DynamoDBEventConfig)}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    subprocess.run([sys.executable, "infra/merge.py", str(out / "merge.yaml"), "--stage", STAGE], cwd=ROOT, check=True)
    subprocess.run([str(BIN / "chalice"), "package", "--stage", STAGE, "--merge-template", str(out / "merge.yaml"),
                    str(out)], cwd=ROOT, env=env, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def resources(package):
    return yaml.load((package / "sam.yaml").read_text(), Loader=yaml.SafeLoader)["Resources"]


@pytest.fixture(scope="module")
def functions(resources):
    """Chalice function name -> its resource in the package."""
    return {name: resources[resource_id] for name, resource_id in
            ((f, "APIHandler" if f == "api_handler" else _cfn(f)) for f in policies.FUNCTIONS) if resource_id in resources}


def _cfn(name):
    from chalice.utils import to_cfn_resource_name

    return to_cfn_resource_name(name)


def test_package_merged_with_infra_passes_cfn_lint_without_warnings(package):
    lint = subprocess.run([str(BIN / "cfn-lint"), str(package / "sam.yaml")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr  # cfn-lint exits non-zero on warnings too

    shipped = {name.split("/")[0] for name in zipfile.ZipFile(package / "deployment.zip").namelist()}
    # Runtime dependencies stay small: no test tools, and boto3 comes with the Lambda runtime.
    assert not shipped & {"moto", "pytest", "boto3", "botocore", "cfn_lint"}


def test_every_function_of_the_app_is_packaged_arm64_sized_named_and_traced(resources, functions):
    import app
    from tests.test_policies import app_functions

    assert sorted(functions) == sorted(app_functions(app.app))
    for name in ("CasesTable", "OutboundDeadLetterQueue", "AlarmTopic"):
        assert name in resources, f"{name} missing from the package"
    for name, function in functions.items():
        properties, settings = function["Properties"], chalice_config(STAGE, name)
        assert properties["Architectures"] == ["arm64"], name
        assert properties["FunctionName"] == policies.function_name(name, STAGE)
        assert (properties["MemorySize"], properties["Timeout"]) == (settings.lambda_memory_size,
                                                                     settings.lambda_timeout), name
        # X-Ray is a stage setting ("xray" in .chalice/config.json; off by default: it was the largest
        # per-mention cost, bench/COST.md).
        assert properties["Tracing"] == ("Active" if settings.xray_enabled else "PassThrough"), name
        assert properties["Environment"]["Variables"]["SOCIALCARE_STAGE"] == STAGE
        # The stream's ARN from the template, never the stage's placeholder (a pipeline must not ship one).
        assert properties["Environment"]["Variables"]["CASES_STREAM_ARN"] == {"Fn::GetAtt": ["CasesTable", "StreamArn"]}


def test_sizes_are_chosen_per_function_not_one_for_all():
    for stage in ("dev", "prod"):
        sizes = {f: (chalice_config(stage, f).lambda_memory_size, chalice_config(stage, f).lambda_timeout)
                 for f in policies.FUNCTIONS}
        assert all(memory and timeout for memory, timeout in sizes.values()), sizes
        assert len(set(sizes.values())) > 1, sizes


def test_timeouts_leave_room_for_the_time_budgets_the_code_keeps():
    """Code that stops itself in time must be stopped by nothing else first."""
    from chalicelib.config import Settings
    from chalicelib.services.privacy import ERASE_SECONDS

    for stage in ("dev", "prod"):
        api = chalice_config(stage, "api_handler").lambda_timeout
        # An erasure works for ERASE_SECONDS, then finishes the entry it is on and answers `in_progress`;
        # all of it inside API Gateway's 29 s, or the client gets a 504 instead.
        assert ERASE_SECONDS + 3 <= api < 29, stage
        # The scheduled fetch stops waiting after its run budget, then writes the sources' status.
        assert Settings.fetch_run_budget_seconds + 3 <= chalice_config(stage, "fetch_mentions").lambda_timeout <= 60


def test_each_function_logs_to_its_own_group_with_retention_made_before_it_runs(resources, functions):
    for name, function in functions.items():
        group_id = _cfn(f"{name}-log-group")
        group = resources[group_id]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["LogGroupName"] == f"/aws/lambda/{policies.function_name(name, STAGE)}"
        assert group["Properties"]["RetentionInDays"] == chalice_config(STAGE, name).log_retention_in_days == 30
        assert group_id in function["DependsOn"], name


def test_each_function_has_its_own_role_with_its_own_least_privilege_policy(resources, functions):
    roles = set()
    for name, function in functions.items():
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        roles.add(role_id)
        [policy] = resources[role_id]["Properties"]["Policies"]
        assert policy["PolicyDocument"] == policies.package_policy_for(name, STAGE), name
        text = json.dumps(policy["PolicyDocument"])
        assert "logs:*" not in text and "CreateLogGroup" not in text
        for statement in policy["PolicyDocument"]["Statement"]:
            for resource in statement["Resource"]:
                if resource == "*":
                    assert statement["Sid"] == "Tracing", name
                elif isinstance(resource, dict) and "Fn::Sub" in resource:
                    arn = resource["Fn::Sub"]
                    assert arn.startswith("arn:${AWS::Partition}:"), arn
                    assert "*" not in arn.replace(f"/aws/lambda/{policies.function_name(name, STAGE)}:*", ""), arn
                    if ":s3:::" not in arn:
                        assert ":${AWS::Region}:${AWS::AccountId}:" in arn, arn
                else:  # the template's secret and the cases stream, by the resources themselves
                    assert resource in ({"Ref": "PlatformSecret"}, {"Fn::GetAtt": ["CasesTable", "StreamArn"]}), resource
    assert len(roles) == len(functions)


def test_sqs_mappings_report_item_failures_and_cap_their_concurrency(resources, functions):
    _schedules, queues = app_event_sources()
    # Queue name suffix ("mentions", "triaged-dlq", ...) -> the template's queue.
    template_queues = {r["Properties"]["QueueName"]["Fn::Sub"].replace("socialcare-${Stage}-", ""): name
                       for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    mappings = {r["Properties"]["FunctionName"]["Ref"]: r["Properties"] for r in resources.values()
                if r["Type"] == "AWS::Lambda::EventSourceMapping"
                and r["Properties"]["EventSourceArn"] != {"Fn::GetAtt": ["CasesTable", "StreamArn"]}}
    assert len(mappings) == len(queues)
    for name, source in queues.items():
        function = functions[name]
        # SAM's own SQS event is replaced by the explicit, tagged mapping.
        assert not function["Properties"].get("Events"), name
        mapping = mappings[_cfn(name)]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert function["Properties"]["Environment"]["Variables"]["SQS_REPORT_BATCH_ITEM_FAILURES"] == "true"
        suffix = max((s for s in template_queues if source.queue.endswith("-" + s)), key=len)
        assert mapping["EventSourceArn"] == {"Fn::GetAtt": [template_queues[suffix], "Arn"]}
        assert mapping["BatchSize"] == source.batch_size
        assert mapping["MaximumBatchingWindowInSeconds"] == source.maximum_batching_window_in_seconds
        concurrency = mapping["ScalingConfig"]["MaximumConcurrency"]
        assert 2 <= concurrency <= 10, name
        if source.maximum_concurrency:  # `chalice deploy` gets it from the decorator: the same value both ways
            assert source.maximum_concurrency == concurrency, name


def test_the_cases_stream_feeds_its_function_through_an_explicit_mapping_that_reports_item_failures(resources,
                                                                                                     functions):
    streams = app_stream_sources()
    table = resources["CasesTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    mappings = {r["Properties"]["FunctionName"]["Ref"]: r["Properties"] for r in resources.values()
                if r["Type"] == "AWS::Lambda::EventSourceMapping"
                and r["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["CasesTable", "StreamArn"]}}
    assert set(mappings) == {_cfn(name) for name in streams}
    for name, source in streams.items():
        function = functions[name]["Properties"]
        assert not function.get("Events"), name  # SAM's own event is replaced by the tagged mapping
        mapping = mappings[_cfn(name)]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert function["Environment"]["Variables"]["SQS_REPORT_BATCH_ITEM_FAILURES"] == "true"
        # The function knows its stream from the template, not from a placeholder of the stage's config.
        assert function["Environment"]["Variables"]["CASES_STREAM_ARN"] == {"Fn::GetAtt": ["CasesTable", "StreamArn"]}
        assert (mapping["BatchSize"], mapping["StartingPosition"]) == (source.batch_size, source.starting_position)


def test_schedules_are_explicit_tagged_rules(resources, functions):
    schedules, _queues = app_event_sources()
    for name, source in schedules.items():
        assert not functions[name]["Properties"].get("Events"), name
        rule = resources[f"{_cfn(name)}Schedule"]["Properties"]
        assert rule["ScheduleExpression"] == source.schedule_expression.to_string()
        assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [_cfn(name), "Arn"]}
        permission = resources[f"{_cfn(name)}SchedulePermission"]["Properties"]
        assert permission["SourceArn"] == {"Fn::GetAtt": [f"{_cfn(name)}Schedule", "Arn"]}


def test_the_api_is_throttled_at_its_stage_and_named_as_its_alarm_says(resources):
    api = resources["RestAPI"]["Properties"]
    [setting] = api["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert 0 < setting["ThrottlingRateLimit"] <= setting["ThrottlingBurstLimit"]
    [dimension] = resources["Api5xxAlarm"]["Properties"]["Dimensions"]
    assert dimension == {"Name": "ApiName", "Value": api["Name"]} and api["Name"] == "socialcare"


def test_the_api_handler_is_reached_through_a_public_function_url_bounded_by_reserved_concurrency(package, resources,
                                                                                                 functions):
    template = yaml.load((package / "sam.yaml").read_text(), Loader=yaml.SafeLoader)
    urls = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Lambda::Url"}
    assert urls == {"APIHandlerFunctionUrl": {"TargetFunctionArn": {"Fn::GetAtt": ["APIHandler", "Arn"]},
                                              "AuthType": "NONE", "InvokeMode": "BUFFERED"}}
    # Both statements AWS requires of a function URL made since October 2025, on the API handler only.
    public = sorted((r["Properties"]["Action"], json.dumps({k: v for k, v in r["Properties"].items()
                                                            if k not in ("Action", "FunctionName", "Principal")}))
                    for r in resources.values()
                    if r["Type"] == "AWS::Lambda::Permission" and r["Properties"].get("Principal") == "*")
    assert public == [("lambda:InvokeFunction", json.dumps({"InvokedViaFunctionUrl": True})),
                      ("lambda:InvokeFunctionUrl", json.dumps({"FunctionUrlAuthType": "NONE"}))]
    assert all(r["Properties"]["FunctionName"] == {"Ref": "APIHandler"} for r in resources.values()
               if r["Type"] == "AWS::Lambda::Permission" and r["Properties"].get("Principal") == "*")
    assert template["Outputs"]["FunctionUrl"]["Value"] == {"Fn::GetAtt": ["APIHandlerFunctionUrl", "FunctionUrl"]}
    # A function URL has no throttling: the handler's reserved concurrency bounds a flood, in every stage.
    api = functions["api_handler"]["Properties"]
    assert api["ReservedConcurrentExecutions"] == chalice_config(STAGE, "api_handler").reserved_concurrency
    for stage in CONFIG["stages"]:
        if stage != "local":
            assert 5 <= (chalice_config(stage, "api_handler").reserved_concurrency or 0) <= 100, stage


def test_every_function_logs_json_without_lambdas_own_lines_as_make_deploy_sets_it(functions):
    for name, function in functions.items():
        environment = chalice_config(STAGE, name).environment_variables
        assert function["Properties"]["LoggingConfig"] == {
            **deploy.logging_config(environment), "LogGroup": policies.log_group_name(name, STAGE)}, name
        assert function["Properties"]["LoggingConfig"]["SystemLogLevel"] == "WARN", name  # the stage's default


def test_every_function_has_error_and_throttle_alarms_by_its_packaged_name(resources, functions):
    alarmed = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"]["Namespace"] == "AWS/Lambda":
            [dimension] = resource["Properties"]["Dimensions"]
            name = dimension["Value"]["Fn::Sub"].replace("${Stage}", STAGE)
            alarmed.setdefault(name, set()).add(resource["Properties"]["MetricName"])
    streams = app_stream_sources()
    for name, function in functions.items():
        # A stream-fed function also says when it falls behind (the stream keeps a change 24 hours); the API
        # handler when its function URL answers 5xx.
        expected = {"Errors", "Throttles"} | ({"IteratorAge"} if name in streams else set()) \
            | ({"Url5xxCount"} if name == "api_handler" else set())
        assert alarmed.get(function["Properties"]["FunctionName"]) == expected, name


def test_the_stage_parameter_is_pinned_to_the_packaged_stage(package):
    template = yaml.load((package / "sam.yaml").read_text(), Loader=yaml.SafeLoader)
    assert template["Parameters"]["Stage"]["Default"] == STAGE
    assert template["Parameters"]["Stage"]["AllowedValues"] == [STAGE]


def test_everything_taggable_carries_project_stage_and_component(resources):
    def tags_of(resource):
        properties = resource.get("Properties", {})
        tags = (properties.get("UserPoolTags") if resource["Type"] == "AWS::Cognito::UserPool"
                else properties.get("ResourceTags") if resource["Type"] == "AWS::Budgets::Budget"
                else properties.get("Tags"))
        if isinstance(tags, list):
            return {t["Key"]: t["Value"] for t in tags}
        return tags

    for name, resource in resources.items():
        if resource["Type"] in UNTAGGABLE:
            continue
        tags = tags_of(resource)
        assert tags, f"{name} ({resource['Type']}) has no tags"
        assert tags["project"] == "socialcare", name
        assert tags["stage"] in (STAGE, {"Ref": "Stage"}), name  # the Stage parameter is pinned to it
        assert tags["component"], name
    # SAM passes the API's tags on to the REST API and its stage.
    assert resources["RestAPI"]["Properties"]["PropagateTags"] is True


def test_the_stale_sending_window_fits_between_the_sender_timeout_and_the_queue_visibility():
    """The sender derives its stale window from the outbound queue (2/3 of its visibility timeout):
    longer than the send_replies function can run, shorter than SQS waits before redelivering."""
    template = yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=yaml.BaseLoader)
    visibility = int(template["Resources"]["OutboundQueue"]["Properties"]["VisibilityTimeout"])
    for stage in CONFIG["stages"]:
        timeout = chalice_config(stage, "send_replies").lambda_timeout or 60
        assert timeout < visibility * 2 // 3 < visibility, stage


def test_queue_visibility_is_at_least_six_times_the_timeout_of_the_function_it_feeds():
    """AWS's advice for SQS event sources: a batch whose function timed out is retried, not run twice at once."""
    template = yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=yaml.BaseLoader)
    feeds = {"MentionsQueue": "triage_mentions", "TriagedQueue": "assign_cases", "OutboundQueue": "send_replies"}
    for queue, function in feeds.items():
        visibility = int(template["Resources"][queue]["Properties"]["VisibilityTimeout"])
        for stage in CONFIG["stages"]:
            assert 6 * (chalice_config(stage, function).lambda_timeout or 60) <= visibility, (queue, stage)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_chalice_deploy_builds_the_same_functions_with_their_own_roles_and_policy_files(stage):
    """What `chalice deploy` would create, from Chalice's own application graph (no AWS needed)."""
    from chalice.config import Config
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder

    import app

    config = Config(chalice_stage=stage, user_provided_params={"chalice_app": app.app, "project_dir": str(ROOT)},
                    config_from_disk=CONFIG)
    graph = ApplicationGraphBuilder().build(config, stage)
    functions = [r for r in DependencyBuilder().build_dependencies(graph) if isinstance(r, models.LambdaFunction)]
    assert sorted(f.function_name for f in functions) == sorted(
        policies.function_name(f, stage) for f in policies.FUNCTIONS if f in CONFIG["stages"][stage]["lambda_functions"])
    for function in functions:
        name = next(f for f in policies.FUNCTIONS if policies.function_name(f, stage) == function.function_name)
        settings = chalice_config(stage, name)
        assert function.architecture == "arm64"
        assert (function.memory_size, function.timeout) == (settings.lambda_memory_size, settings.lambda_timeout)
        assert function.role.role_name == f"socialcare-{stage}-{name}"
        assert function.role.policy.filename == str(ROOT / ".chalice" / f"policy-{stage}-{name}.json")
        assert function.log_group.retention_in_days == 30
        assert function.tags["component"] == policies.FUNCTIONS[name].component
        assert function.tags["stage"] == stage and function.tags["project"] == "socialcare"
        if name != "api_handler":  # Chalice names the API's group before renaming the function: see infra/README.md
            assert function.log_group.log_group_name == policies.log_group_name(name, stage)
