"""Build the merge template of `chalice package`: infra/template.yaml and what Chalice cannot say itself.

`chalice package --merge-template` takes a single file; the stateful resources
(template.yaml, also deployable on its own) and the overrides for the packaged
functions stay apart, so this writes their union:

1. template.yaml, its ``Stage`` parameter pinned to the packaged stage (the
   functions' table and queue names are that stage's: another value would
   point the alarms and policies at resources the functions never use).
2. For each function of app.py, as Chalice finds them:
   - the name `chalice deploy` gives it (``socialcare-<stage>-<function>``,
     the API handler ``socialcare-<stage>``), so alarms, log groups and
     policies name the same functions in both deploy paths;
   - its log group by that name, tagged, and created before the function can
     run (the policies grant no ``logs:CreateLogGroup``);
   - tags on its role;
   - its schedule or SQS mapping as explicit, tagged resources instead of
     SAM ``Events`` (SAM tags neither the rules nor the mappings it generates):
     an ``AWS::Events::Rule`` with its invoke permission, or an
     ``AWS::Lambda::EventSourceMapping`` on the template's queue with
     ``ReportBatchItemFailures``, the function told so
     (``SQS_REPORT_BATCH_ITEM_FAILURES``), and the batch settings and
     ``maximum_concurrency`` of its decorator.
   - its least-privilege policy, written to ``.chalice/policy-<stage>-<f>.json``
     with CloudFormation intrinsics (infra/policies.py), which Chalice embeds;
   - Lambda's advanced logging controls (``LoggingConfig``: JSON, Lambda's own
     lines from the stage's ``LAMBDA_SYSTEM_LOG_LEVEL``), as infra/deploy.py
     sets them after `chalice deploy` (``deploy.logging_config``);
   - for the API handler, its function URL (AuthType NONE) with the two public
     invoke permissions AWS requires of a new one (``deploy.FUNCTION_URL_STATEMENTS``)
     and the output ``FunctionUrl``: the stage's address for agents, the web
     inbox and Meta's webhook. The REST API stays, with the same routes.
3. infra/package-overrides.yaml on top (its values win): the API's name and
   throttling, queue pickup concurrency.

Usage: python infra/merge.py OUT.yaml [--stage prod]
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APP = "socialcare"
API_HANDLER = "api_handler"


def deep_merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return extra


def load(path: Path) -> Any:
    import yaml  # a packaging-time tool (shipped with cfn-lint), never in a Lambda

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation short forms (!Ref, !Sub, !GetAtt ...) kept as their long forms.
    def tag(loader: Any, suffix: str, node: Any) -> Any:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", tag)
    return yaml.load(path.read_text(), Loader=Loader)


def _policies() -> Any:
    sys.path.insert(0, str(HERE))
    try:
        import policies
    finally:
        sys.path.remove(str(HERE))
    return policies


def _deploy() -> Any:
    """infra/deploy.py: what `make deploy` sets after `chalice deploy`, which the package must say alike."""
    sys.path.insert(0, str(HERE))
    try:
        import deploy
    finally:
        sys.path.remove(str(HERE))
    return deploy


def _logging_config(deploy: Any, environment: Mapping[str, str], stage: str, function: str) -> Dict[str, str]:
    try:
        return dict(deploy.logging_config(environment))
    except ValueError as err:  # LAMBDA_SYSTEM_LOG_LEVEL not one of Lambda's levels
        raise SystemExit(f"stage {stage}, function {function}: {err}") from err


def function_url_resources(function_id: str) -> Dict[str, Any]:
    """The function URL of ``function_id`` (AuthType NONE) and its public invoke permissions."""
    deploy = _deploy()
    resources: Dict[str, Any] = {f"{function_id}FunctionUrl": {"Type": "AWS::Lambda::Url", "Properties": {
        "TargetFunctionArn": {"Fn::GetAtt": [function_id, "Arn"]}, "AuthType": "NONE", "InvokeMode": "BUFFERED"}}}
    for statement_id, grant in deploy.FUNCTION_URL_STATEMENTS:
        resources[f"{function_id}{statement_id}"] = {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Ref": function_id}, "Principal": "*", **grant}}
    return resources


# ---- the app's functions, as Chalice sees them --------------------------------------------------------

def app_functions(stage: str) -> Dict[str, Dict[str, Any]]:
    """name -> {"kind": "api" | "schedule" | "sqs" | "lambda", ...} for every Lambda function of app.py.

    app.py is imported with the stage's environment variables, as `chalice package` does, so queue
    names are the stage's.
    """
    from chalice.config import Config

    policies = _policies()
    env = Config(chalice_stage=stage, function_name=API_HANDLER,
                 config_from_disk=policies.load_config(ROOT)).environment_variables
    saved = dict(os.environ)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    try:
        for name in [n for n in sys.modules if n == "app" or n.startswith("chalicelib")]:
            del sys.modules[name]
        app = importlib.import_module("app").app
    finally:
        sys.path.remove(str(ROOT))
        os.environ.clear()
        os.environ.update(saved)
    from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

    functions: Dict[str, Dict[str, Any]] = {}
    if app.routes:
        functions[API_HANDLER] = {"kind": "api"}
    for source in app.event_sources:
        if isinstance(source, ScheduledEventConfig):
            expression = source.schedule_expression
            functions[source.name] = {"kind": "schedule", "expression": expression if isinstance(expression, str)
                                      else expression.to_string()}
        elif isinstance(source, SQSEventConfig):
            functions[source.name] = {"kind": "sqs", "queue": source.queue, "queue_arn": source.queue_arn,
                                      "batch_size": source.batch_size,
                                      "window": source.maximum_batching_window_in_seconds,
                                      "maximum_concurrency": source.maximum_concurrency}
        elif isinstance(source, DynamoDBEventConfig):
            functions[source.name] = {"kind": "dynamodb", "batch_size": source.batch_size,
                                      "starting_position": source.starting_position,
                                      "window": source.maximum_batching_window_in_seconds}
        else:
            raise SystemExit(f"infra/merge.py does not know how to package a {type(source).__name__} "
                             f"({source.name}); add it here")
    for function in app.pure_lambda_functions:
        functions[function.name] = {"kind": "lambda"}
    return functions


# ---- what the package adds per function ----------------------------------------------------------------

def logical_id(function: str) -> str:
    from chalice.utils import to_cfn_resource_name

    return "APIHandler" if function == API_HANDLER else to_cfn_resource_name(function)


def tag_list(tags: Mapping[str, str]) -> List[Dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def queue_logical_ids(template: Mapping[str, Any], stage: str) -> Dict[str, str]:
    """Queue name -> logical id of template.yaml's queues (their names are Fn::Sub over Stage)."""
    found = {}
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::SQS::Queue":
            continue
        queue_name = resource.get("Properties", {}).get("QueueName")
        if isinstance(queue_name, dict) and "Fn::Sub" in queue_name:
            queue_name = queue_name["Fn::Sub"].replace("${Stage}", stage)
        if isinstance(queue_name, str):
            found[queue_name] = name
    return found


def function_overrides(stage: str, functions: Mapping[str, Mapping[str, Any]], template: Mapping[str, Any],
                       config: Mapping[str, Any]) -> Dict[str, Any]:
    from chalice.config import Config
    from chalice.utils import to_cfn_resource_name

    policies = _policies()
    deploy = _deploy()
    queues = queue_logical_ids(template, stage)
    resources: Dict[str, Any] = {}
    for name, function in functions.items():
        if name not in policies.FUNCTIONS:
            raise SystemExit(f"function {name} of app.py has no entry in infra/policies.py FUNCTIONS "
                             "(its least-privilege grants and component)")
        scoped = Config(chalice_stage=stage, function_name=name, config_from_disk=dict(config))
        tags = policies.resource_tags(stage, policies.FUNCTIONS[name].component)
        resource_id = logical_id(name)
        function_name = policies.function_name(name, stage)
        # Every function gets the cases stream from the template itself: the stage's CASES_STREAM_ARN is a
        # placeholder until `make deploy` writes the stack output, and a package must not ship one.
        stream_arn = {"Fn::GetAtt": ["CasesTable", "StreamArn"]}
        # Likewise the model bucket (retrained triage models, issue 14): the template's own, by Ref.
        properties: Dict[str, Any] = {"FunctionName": function_name,
                                      "Environment": {"Variables": {"CASES_STREAM_ARN": stream_arn,
                                                                    "TRIAGE_MODELS_BUCKET": {"Ref": "ModelBucket"}}},
                                      "LoggingConfig": {**_logging_config(deploy, scoped.environment_variables, stage, name),
                                                        "LogGroup": policies.log_group_name(name, stage)}}
        depends_on: List[str] = []
        if scoped.log_retention_in_days:
            log_group = to_cfn_resource_name(f"{name}-log-group")
            resources[log_group] = {"Properties": {"LogGroupName": policies.log_group_name(name, stage),
                                                   "Tags": tag_list(tags)}}
            depends_on.append(log_group)
        resources[to_cfn_resource_name(f"{name}_role")] = {"Properties": {"Tags": tag_list(tags)}}
        if function["kind"] == "schedule":
            properties["Events"] = None  # replaced by the tagged rule below
            rule = f"{resource_id}Schedule"
            resources[rule] = {"Type": "AWS::Events::Rule", "Properties": {
                "Name": f"{APP}-{stage}-{name}-event", "ScheduleExpression": function["expression"],
                "State": "ENABLED", "Targets": [{"Arn": {"Fn::GetAtt": [resource_id, "Arn"]}, "Id": name}],
                "Tags": tag_list(tags)}}
            resources[f"{rule}Permission"] = {"Type": "AWS::Lambda::Permission", "Properties": {
                "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": resource_id},
                "Principal": "events.amazonaws.com", "SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}}
        elif function["kind"] == "sqs":
            properties["Events"] = None  # replaced by the tagged mapping below
            properties["Environment"]["Variables"]["SQS_REPORT_BATCH_ITEM_FAILURES"] = "true"
            queue = queues.get(function["queue"])
            source_arn: Any = ({"Fn::GetAtt": [queue, "Arn"]} if queue else function["queue_arn"] or {
                "Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{function['queue']}"})
            mapping: Dict[str, Any] = {
                "FunctionName": {"Ref": resource_id}, "EventSourceArn": source_arn, "Enabled": True,
                "BatchSize": function["batch_size"], "MaximumBatchingWindowInSeconds": function["window"],
                # Only the records a batch reports as failed go back to their queue.
                "FunctionResponseTypes": ["ReportBatchItemFailures"], "Tags": tag_list(tags)}
            if function["maximum_concurrency"]:
                mapping["ScalingConfig"] = {"MaximumConcurrency": function["maximum_concurrency"]}
            resources[f"{resource_id}QueueMapping"] = {"Type": "AWS::Lambda::EventSourceMapping",
                                                       "Properties": mapping}
        elif function["kind"] == "dynamodb":
            # The cases table's stream, by the template's own table (its ARN exists only once the stack does),
            # as an explicit mapping: SAM would tag no mapping it generates, and sets no FunctionResponseTypes.
            properties["Events"] = None
            properties["Environment"]["Variables"]["SQS_REPORT_BATCH_ITEM_FAILURES"] = "true"
            resources[f"{resource_id}StreamMapping"] = {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                "FunctionName": {"Ref": resource_id}, "EventSourceArn": stream_arn,
                "Enabled": True, "BatchSize": function["batch_size"],
                "MaximumBatchingWindowInSeconds": function["window"],
                "StartingPosition": function["starting_position"],
                # The earliest failed change is the checkpoint: only it and what follows come again.
                "FunctionResponseTypes": ["ReportBatchItemFailures"], "Tags": tag_list(tags)}}
        elif function["kind"] == "api":
            resources["RestAPI"] = {"Properties": {"Tags": tags, "PropagateTags": True}}
            resources.update(function_url_resources(resource_id))
        resources[resource_id] = {"Properties": properties}
        if depends_on:
            resources[resource_id]["DependsOn"] = depends_on
    return resources


def chalice_resources(functions: Mapping[str, Mapping[str, Any]], config_retention: Mapping[str, bool]) -> List[str]:
    """Logical ids `chalice package` generates for these functions (what overrides may refer to)."""
    from chalice.utils import to_cfn_resource_name

    known = []
    for name, function in functions.items():
        known += [logical_id(name), to_cfn_resource_name(f"{name}_role")]
        if config_retention.get(name):
            known.append(to_cfn_resource_name(f"{name}-log-group"))
        if function["kind"] == "api":
            known += ["RestAPI", "APIHandlerInvokePermission"]
    return known


def build(stage: str, *, write_policy_files: bool = True) -> Dict[str, Any]:
    from chalice.config import Config

    policies = _policies()
    config = policies.load_config(ROOT)
    if stage not in config.get("stages", {}):
        raise SystemExit(f"stage {stage!r} is not in .chalice/config.json")
    template = load(HERE / "template.yaml")
    static = load(HERE / "package-overrides.yaml") or {}
    functions = app_functions(stage)
    generated = function_overrides(stage, functions, template, config)
    retention = {name: bool(Config(chalice_stage=stage, function_name=name,
                                   config_from_disk=config).log_retention_in_days) for name in functions}
    known = set(template.get("Resources", {})) | set(generated) | set(chalice_resources(functions, retention))
    unknown = sorted(set(static.get("Resources", {})) - known)
    if unknown:
        raise SystemExit(f"infra/package-overrides.yaml overrides {', '.join(unknown)}, which neither "
                         f"infra/template.yaml nor the package of stage {stage} has")
    merged = deep_merge(template, deep_merge({"Resources": generated}, static))
    if API_HANDLER in functions:
        merged.setdefault("Outputs", {})["FunctionUrl"] = {
            "Description": "The stage's address for agents, the web inbox (<url>/) and Meta's webhook (<url>/webhooks/meta)",
            "Value": {"Fn::GetAtt": [f"{logical_id(API_HANDLER)}FunctionUrl", "FunctionUrl"]}}
    merged["Parameters"]["Stage"] = {**merged["Parameters"]["Stage"], "Default": stage, "AllowedValues": [stage]}
    if write_policy_files:
        policies.write_package_policies(stage, functions=sorted(functions))
    return merged


def main(argv: Optional[List[str]] = None) -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the merge template to write")
    parser.add_argument("--stage", default=os.environ.get("STAGE") or "prod",
                        help="the stage `chalice package --stage` builds (default: $STAGE, else prod)")
    args = parser.parse_args(argv)
    merged = build(args.stage)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))


if __name__ == "__main__":
    main()
