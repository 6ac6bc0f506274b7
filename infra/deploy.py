"""Deploy or update one stage of socialcare with one command: `make deploy STAGE=prod`.

    python infra/deploy.py --stage prod [--region eu-west-1] [--profile NAME] [--parameter Key=Value ...]

In order, each step safe to repeat (an update runs the same steps):

1. preflight: the stage is in .chalice/config.json, nothing in it is a
   ``REPLACE_WITH_...`` placeholder this script does not fill itself, and the
   stage was not deployed the other way (a CloudFormation pipeline's stack
   ``socialcare-<stage>-pipeline``, or `chalice package` output deployed as the
   infra stack): both would own the same named tables, queues and functions.
2. infra: creates or updates the stack ``socialcare-<stage>`` from
   infra/template.yaml and waits for it. CloudFormation creates at most one
   new global secondary index per table in one update ("Cannot perform more
   than one GSI creation or deletion in a single update"), so when the
   template adds several to an existing table, the stack is first updated
   with the template holding one more of them at a time.
3. config: reads the stack's outputs and writes the ones the functions need
   (``UserPoolId`` -> ``USER_POOL_ID``, ``UserPoolClientId`` ->
   ``USER_POOL_CLIENT_ID``, ``NotificationsTopicArn`` ->
   ``NOTIFICATIONS_TOPIC_ARN``, ``CasesStreamArn`` -> ``CASES_STREAM_ARN``)
   into the stage's ``environment_variables`` in .chalice/config.json. Then no
   placeholder may be left anywhere in the stage. (`chalice deploy` imports
   app.py with these variables set, which is how ``measure_changes``'s
   ``on_dynamodb_record`` learns the stream it reads.)
4. policies: infra/policies.py writes each function's least-privilege policy
   for this account and region (``.chalice/policy-<stage>-<function>.json``).
5. secret: the platform secret exists and holds no placeholder; empty values
   are listed (the channels that need them stay quiet until they are filled).
6. chalice deploy --stage <stage>: the functions, their schedules, the SQS
   event source mappings, the REST API. A failure of its API Gateway step is
   named as such.
7. what Chalice cannot configure: ReportBatchItemFailures on the SQS mappings
   (infra/partial_batch.py) and on the cases stream's mapping (here); API
   stage throttling and cost allocation tags; Lambda's advanced logging
   controls on every function (JSON log format, Lambda's own lines from the
   stage's ``LAMBDA_SYSTEM_LOG_LEVEL``: WARN by default, so no START, END and
   REPORT lines); and the API handler's function URL (AuthType NONE: the app
   checks every caller itself) with its public invoke permissions. The URL is
   the stage's address for agents, the web inbox and Meta's webhook; the REST
   API Chalice deploys stays, with the same routes.

Why the stack outputs go into .chalice/config.json and not SSM: the functions
read every setting from environment variables (chalicelib/config.py), so an
output written there costs no call, no permission and no latency at cold
start, and `chalice deploy` ships it with the code; the values are ids, not
secrets (the secrets live in Secrets Manager). Re-running the deploy rewrites
them from the stack, so they cannot drift from it; commit the file.

For a CloudFormation pipeline instead (`make package`):
``python infra/deploy.py --stage prod --check-pipeline`` refuses a stage
deployed with `make deploy` and a packaged template with a placeholder left.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set

ROOT = Path(__file__).resolve().parent.parent
APP = "socialcare"
PLACEHOLDER = "REPLACE_WITH"
# Stack output -> the environment variable of the functions that carries it.
OUTPUT_ENV = {"UserPoolId": "USER_POOL_ID", "UserPoolClientId": "USER_POOL_CLIENT_ID",
              "NotificationsTopicArn": "NOTIFICATIONS_TOPIC_ARN", "CasesStreamArn": "CASES_STREAM_ARN",
              "MediaBucketName": "MEDIA_BUCKET", "ModelBucketName": "TRIAGE_MODELS_BUCKET"}
# Functions fed by a DynamoDB stream (app.py on_dynamodb_record), whose mappings report item failures.
STREAM_FUNCTIONS = ("measure_changes",)
ITEM_FAILURES_FLAG = "SQS_REPORT_BATCH_ITEM_FAILURES"  # what the handlers read (chalicelib/config.py)
# The secret's keys, and what stays off while one is empty.
SECRET_USES = {
    "x_bearer_token": "X mentions and search polling",
    "x_user_token": "X replies, DMs and DM polling",
    "meta_access_token": "Facebook, Instagram, Messenger and WhatsApp polling and replies",
    "meta_app_secret": "the Meta webhook (every delivery is refused without it)",
    "meta_verify_token": "the Meta webhook subscription handshake",
}
# API Gateway calls Chalice makes after the functions, schedules and queue mappings exist.
API_OPERATIONS = ("ImportRestApi", "PutRestApi", "CreateRestApi", "CreateDeployment", "UpdateStage",
                  "GetRestApi", "AddPermission")
API_STEP_FAILED = (
    "chalice deploy created or updated the Lambda functions, their schedules and the SQS event source "
    "mappings, then failed at its API Gateway step ({operation}: importing Chalice's Swagger 2.0 definition "
    "of the REST API). The agent API and the Meta webhook of stage {stage} are not live. On AWS, fix what "
    "the error above says (often a missing apigateway:* permission of the deploying identity) and run "
    "`make deploy STAGE={stage}` again: every step is safe to repeat. Against moto's server this step always "
    "fails: moto imports only a subset of OpenAPI 3, not Chalice's Swagger 2.0 document."
)
TERMINAL_FAILURES = ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED",
                     "UPDATE_ROLLBACK_FAILED")
MAX_TEMPLATE_BODY = 51_200  # CloudFormation's limit for a template passed inline
API_HANDLER = "api_handler"
# The function URL's resource-based policy, one statement per action. AuthType NONE: Lambda authenticates no
# caller (the app checks Cognito ID tokens itself, chalicelib/entrypoints/auth.py, and Meta's signature on the
# webhook). "Starting in October 2025, new function URLs will require both lambda:InvokeFunctionUrl and
# lambda:InvokeFunction permissions" (AWS Lambda Developer Guide, "Control access to Lambda function URLs"):
# InvokeFunctionUrl for requests to a URL whose AuthType is NONE, and InvokeFunction only for invocations that
# come through a function URL (AddPermission's InvokedViaFunctionUrl: the lambda:InvokedViaFunctionUrl
# condition), so the public grant does not let anyone call Invoke on the function directly.
FUNCTION_URL_STATEMENTS = (
    ("FunctionURLAllowPublicAccess", {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"}),
    ("FunctionURLAllowInvokeAction", {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True}),
)


class DeployError(Exception):
    """The deploy stopped; the message says what is wrong and what to do."""


def infra_stack(stage: str) -> str:
    return f"{APP}-{stage}"


def pipeline_stack(stage: str) -> str:
    """The stack name a CloudFormation pipeline deploys `make package` output under (README)."""
    return f"{APP}-{stage}-pipeline"


# ---- config.json --------------------------------------------------------------------------

def load_config(project_dir: Path) -> Dict[str, Any]:
    return json.loads((project_dir / ".chalice" / "config.json").read_text())


def save_config(project_dir: Path, config: Dict[str, Any]) -> None:
    path = project_dir / ".chalice" / "config.json"
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    if path.read_text() != text:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(path)


def placeholders(value: Any, where: str) -> List[str]:
    """Where a ``REPLACE_WITH_...`` is left in ``value`` (dotted paths)."""
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in placeholders(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [hit for i, item in enumerate(value) for hit in placeholders(item, f"{where}[{i}]")]
    return [where] if isinstance(value, str) and PLACEHOLDER in value else []


def stage_placeholders(config: Dict[str, Any], stage: str, *, filled_here: Sequence[str] = ()) -> List[str]:
    """Placeholders that would reach this stage's functions, except the variables named in ``filled_here``."""
    found = placeholders(config.get("environment_variables", {}), "environment_variables")
    found += placeholders(config.get("lambda_functions", {}), "lambda_functions")
    found += placeholders(config.get("stages", {}).get(stage, {}), f"stages.{stage}")
    return [hit for hit in found if hit.rsplit(".", 1)[-1] not in filled_here]


def placeholder_error(hits: List[str], stage: str) -> DeployError:
    return DeployError(
        f"stage {stage} is not ready to deploy: .chalice/config.json still has a REPLACE_WITH_... placeholder at "
        + ", ".join(hits) + ". Put the real value there (nothing was deployed).")


def stage_environment(config: Dict[str, Any], stage: str) -> Dict[str, str]:
    return {**config.get("environment_variables", {}),
            **config.get("stages", {}).get(stage, {}).get("environment_variables", {})}


def logging_config(environment: Mapping[str, str]) -> Dict[str, str]:
    """Lambda's advanced logging controls for a function with these environment variables: the
    ``LoggingConfig`` both deploy paths set (here after `chalice deploy`, infra/merge.py in the package).

    - ``LogFormat`` JSON: Lambda filters log lines by level only in JSON format. Powertools writes JSON lines
      with a ``level`` already; its EMF metric lines (JSON without a ``level``) count as INFO.
    - ``SystemLogLevel`` from ``LAMBDA_SYSTEM_LOG_LEVEL`` (chalicelib/config.py reads and checks it): WARN, the
      default, drops START, END and REPORT (INFO lines, ~420 bytes an invocation); DEBUG or INFO keeps them.
    - ``ApplicationLogLevel`` DEBUG where Powertools logs DEBUG, else INFO. Never above INFO: a WARN filter
      would drop the EMF lines, and with them every metric the alarms watch. Lambda passes this level to the
      function (``AWS_LAMBDA_LOG_LEVEL``), and Powertools' Logger takes it over ``POWERTOOLS_LOG_LEVEL``.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from chalicelib.config import system_log_level  # the one place settings are read; it imports nothing else

    application = "DEBUG" if (environment.get("POWERTOOLS_LOG_LEVEL") or "INFO").strip().upper() == "DEBUG" else "INFO"
    return {"LogFormat": "JSON", "ApplicationLogLevel": application,
            "SystemLogLevel": system_log_level(environment.get("LAMBDA_SYSTEM_LOG_LEVEL", ""))}


def referenced_policy_files(config: Dict[str, Any], stage: str) -> List[str]:
    settings = config.get("stages", {}).get(stage, {})
    names = [config.get("iam_policy_file"), settings.get("iam_policy_file")]
    for section in (config.get("lambda_functions", {}), settings.get("lambda_functions", {})):
        names += [function.get("iam_policy_file") for function in section.values() if isinstance(function, dict)]
    return sorted({name for name in names if name})


# ---- the deployment -----------------------------------------------------------------------

@dataclass
class Deployment:
    stage: str
    session: Any                          # a boto3 Session (endpoint from AWS_ENDPOINT_URL, if set)
    project_dir: Path = ROOT
    parameters: Dict[str, str] = field(default_factory=dict)
    chalice: Sequence[str] = (str(Path(sys.executable).parent / "chalice"),)
    env: Optional[Mapping[str, str]] = None  # for `chalice deploy`; os.environ when None
    out: Callable[[str], None] = print
    waiter_delay: int = 5
    # Read from the stack's tables by provision(): each index as declared, and the removals to stage.
    _index_definitions: Dict[str, Dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _retire_steps: List[Any] = field(default_factory=list, init=False, repr=False)
    function_address: str = field(default="", init=False)  # the API handler's function URL, once function_url() ran

    @property
    def region(self) -> str:
        return self.session.region_name or "us-east-1"

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region)

    def run(self) -> Dict[str, Any]:
        self.preflight()
        outputs = self.provision()
        self.configure(outputs)
        self.write_policies(outputs)
        self.check_secret()
        self.prepare_log_groups()
        self.chalice_deploy()
        self.after_chalice()
        self.retire_indexes()  # only now: the functions deployed above no longer read them
        self.stage_settings_and_tags()
        self.lambda_logging()
        self.function_url()
        return self.summary()

    # 1 -------------------------------------------------------------------------------
    def preflight(self) -> None:
        config = load_config(self.project_dir)
        if self.stage not in config.get("stages", {}):
            raise DeployError(f"stage {self.stage!r} is not in .chalice/config.json (stages: "
                              f"{', '.join(sorted(config.get('stages', {})))}); add it there first")
        hits = stage_placeholders(config, self.stage, filled_here=list(OUTPUT_ENV.values()))
        if hits:
            raise placeholder_error(hits, self.stage)
        self.logging_configs(config)  # a wrong LAMBDA_SYSTEM_LOG_LEVEL stops the deploy here, not after Chalice
        self.refuse_other_path()

    def refuse_other_path(self) -> None:
        cloudformation = self.client("cloudformation")
        pipeline = stack_status(cloudformation, pipeline_stack(self.stage))
        if pipeline:
            raise DeployError(
                f"stage {self.stage} is deployed by a CloudFormation pipeline (stack {pipeline_stack(self.stage)}, "
                f"{pipeline}, from `make package`): that stack owns this stage's tables, queues, pool and functions, "
                f"and `make deploy` would create resources with the same names. Deploy this stage through the "
                f"pipeline, or use another stage name for `make deploy`.")
        if stack_status(cloudformation, infra_stack(self.stage)) and is_packaged_app(cloudformation, infra_stack(self.stage)):
            raise DeployError(
                f"stack {infra_stack(self.stage)} holds `chalice package` output (the functions are in it): this stage "
                f"was deployed as a CloudFormation pipeline would, under the name `make deploy` uses for infra/ "
                f"alone. Deploy it the same way again, or move it to {pipeline_stack(self.stage)}.")

    # 2 -------------------------------------------------------------------------------
    def provision(self) -> Dict[str, str]:
        cloudformation = self.client("cloudformation")
        name = infra_stack(self.stage)
        template_path = self.project_dir / "infra" / "template.yaml"
        body = template_path.read_text()
        if len(body.encode("utf-8")) > MAX_TEMPLATE_BODY:
            raise DeployError(f"{template_path} is over CloudFormation's {MAX_TEMPLATE_BODY} bytes for an inline "
                              f"template; it must be uploaded to S3 (TemplateURL) first")
        status = stack_status(cloudformation, name)
        previous = set()
        if status is not None:
            stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
            previous = {p["ParameterKey"] for p in stack.get("Parameters", [])}
        arguments = dict(StackName=name, TemplateBody=body,
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
                         Parameters=self._parameters(body, previous=previous))
        if status is None:
            self.out(f"creating stack {name} from infra/template.yaml ...")
            cloudformation.create_stack(**arguments, Tags=[{"Key": "project", "Value": APP},
                                                           {"Key": "stage", "Value": self.stage}])
            self._wait(cloudformation, "stack_create_complete", name)
        elif status == "ROLLBACK_COMPLETE":
            raise DeployError(f"stack {name} failed when it was first created ({status}) and cannot be updated; "
                              f"see its events, delete it (aws cloudformation delete-stack --stack-name {name}) "
                              f"and run the deploy again")
        elif status.endswith("_IN_PROGRESS"):
            raise DeployError(f"stack {name} is busy ({status}); run the deploy again when it has finished")
        else:
            existing = self._existing_indexes(cloudformation, name)
            # Indexes the template no longer has (a new name replaced them: a projection cannot change in place)
            # stay until the new functions are deployed (retire_indexes), then go one per update.
            retired = retired_indexes(body, self._index_definitions)
            self._retire_steps = retire_steps(body, retired)
            bridge = bridge_body(body, retired)
            if bridge is not None:
                arguments["TemplateBody"] = bridge
            for index, step_body in index_steps(body, existing, retired):
                self.out(f"updating stack {name} with index {index} first (CloudFormation creates one "
                         f"global secondary index per table in an update) ...")
                try:
                    cloudformation.update_stack(**{**arguments, "TemplateBody": step_body})
                except Exception as err:
                    raise DeployError(f"stack {name} could not be updated to add index {index}: {err}") from err
                self._wait(cloudformation, "stack_update_complete", name)
            self.out(f"updating stack {name} from infra/template.yaml ...")
            try:
                cloudformation.update_stack(**arguments)
            except Exception as err:
                if "No updates are to be performed" not in str(err):
                    raise DeployError(f"stack {name} could not be updated: {err}") from err
                self.out(f"stack {name}: no changes")
            else:
                self._wait(cloudformation, "stack_update_complete", name)
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self.out(f"stack {name}: {stack['StackStatus']}")
        return outputs

    def _existing_indexes(self, cloudformation: Any, name: str) -> Dict[str, Set[str]]:
        """The global secondary indexes each DynamoDB table of the stack has now, by logical id."""
        tables: Dict[str, str] = {}
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
            for resource in page.get("StackResourceSummaries", []):
                if resource.get("ResourceType") == "AWS::DynamoDB::Table" and resource.get("PhysicalResourceId"):
                    tables[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
        dynamodb = self.client("dynamodb")
        described = {logical_id: dynamodb.describe_table(TableName=table)["Table"] for logical_id, table in tables.items()}
        # Each index as CloudFormation declares it, and the types of the attributes the table defines.
        self._index_definitions = {
            logical_id: {"indexes": {index["IndexName"]: {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                                     for index in table.get("GlobalSecondaryIndexes", [])},
                         "attributes": {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}}
            for logical_id, table in described.items()}
        return {logical_id: set(definitions["indexes"]) for logical_id, definitions in self._index_definitions.items()}

    def retire_indexes(self) -> List[str]:
        """Remove the indexes the template dropped, one per stack update (CloudFormation deletes at most one
        global secondary index per table in an update); the names removed."""
        steps = self._retire_steps
        if not steps:
            return []
        cloudformation = self.client("cloudformation")
        name = infra_stack(self.stage)
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        previous = {p["ParameterKey"] for p in stack.get("Parameters", [])}
        removed: List[str] = []
        for index, step_body in steps:
            self.out(f"updating stack {name} without index {index} (the deployed functions no longer read it) ...")
            try:
                cloudformation.update_stack(
                    StackName=name, TemplateBody=step_body,
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
                    Parameters=self._parameters(step_body, previous=previous))
            except Exception as err:
                raise DeployError(f"stack {name} could not be updated to remove index {index}: {err}; the functions "
                                  f"are deployed and work without it: run the deploy again to finish") from err
            self._wait(cloudformation, "stack_update_complete", name)
            removed.append(index)
        self._retire_steps = []
        return removed

    def _parameters(self, template_body: str, *, previous: Set[str]) -> List[Dict[str, Any]]:
        declared = template_parameters(template_body)
        given = {"Stage": self.stage, **self.parameters}
        # The stage's MONTHLY_BUDGET_USD (the in-app cost warning's budget) is also the AWS budget's.
        budget = stage_environment(load_config(self.project_dir), self.stage).get("MONTHLY_BUDGET_USD", "").strip()
        if budget and "MonthlyBudgetUsd" in declared and "MonthlyBudgetUsd" not in given:
            given["MonthlyBudgetUsd"] = budget
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise DeployError(f"infra/template.yaml has no parameter {', '.join(unknown)} "
                              f"(it has: {', '.join(sorted(declared))})")
        parameters: List[Dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()]
        # Keep what an earlier deploy set and this one does not repeat (a new parameter takes its default).
        parameters += [{"ParameterKey": k, "UsePreviousValue": True} for k in declared
                       if k not in given and k in previous]
        return parameters

    def _wait(self, cloudformation: Any, waiter: str, name: str) -> None:
        try:
            cloudformation.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": self.waiter_delay,
                                                                                  "MaxAttempts": 720})
        except Exception as err:
            raise DeployError(f"stack {name} did not finish: {first_failure(cloudformation, name) or err}") from err

    # 3 -------------------------------------------------------------------------------
    def configure(self, outputs: Mapping[str, str]) -> Dict[str, str]:
        missing = [key for key in OUTPUT_ENV if not outputs.get(key)]
        if missing:
            raise DeployError(
                f"stack {infra_stack(self.stage)} has no output {', '.join(missing)} (infra/template.yaml declares "
                f"them: the Cognito user pool and app client, the notifications topic, the cases stream); nothing "
                f"was written to "
                f".chalice/config.json. (moto's CloudFormation does not create Cognito resources, so on moto this "
                f"stops here.)")
        values = {OUTPUT_ENV[key]: outputs[key] for key in OUTPUT_ENV}
        pool_id = values["USER_POOL_ID"]
        if not re.fullmatch(rf"{re.escape(self.region)}_[0-9A-Za-z]+", pool_id):
            raise DeployError(f"stack output UserPoolId {pool_id!r} is not a user pool id of region {self.region}")
        config = load_config(self.project_dir)
        environment = config["stages"][self.stage].setdefault("environment_variables", {})
        environment.update(values)
        hits = stage_placeholders(config, self.stage)
        if hits:
            raise placeholder_error(hits, self.stage)
        save_config(self.project_dir, config)
        self.out(f".chalice/config.json stages.{self.stage}.environment_variables: "
                 + ", ".join(f"{k}={v}" for k, v in values.items()))
        return values

    # 4 -------------------------------------------------------------------------------
    def write_policies(self, outputs: Mapping[str, str]) -> None:
        module_path = self.project_dir / "infra" / "policies.py"
        if module_path.exists():
            sys.path.insert(0, str(module_path.parent))
            try:
                spec = importlib.util.spec_from_file_location("socialcare_infra_policies", module_path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module  # dataclasses look their module up while it loads
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(module_path.parent))
            if not hasattr(module, "write_policies"):
                raise DeployError(f"{module_path} has no write_policies(stage, region, account_id, outputs)")
            account_id = self.client("sts").get_caller_identity()["Account"]
            cwd = os.getcwd()
            os.chdir(self.project_dir)  # it writes .chalice/policy-<stage>-<function>.json
            try:
                module.write_policies(self.stage, self.region, account_id, dict(outputs))
            except SystemExit as err:  # its way of saying what is wrong with the stage's config
                raise DeployError(f"infra/policies.py: {err}") from err
            finally:
                os.chdir(cwd)
            self.out(f"least-privilege policies written for stage {self.stage} (account {account_id})")
        config = load_config(self.project_dir)
        missing = [name for name in referenced_policy_files(config, self.stage)
                   if not (self.project_dir / ".chalice" / name).exists()]
        if missing:
            raise DeployError(
                f"stage {self.stage} names IAM policy file(s) {', '.join(missing)} in .chalice/config.json that do "
                f"not exist" + ("" if module_path.exists() else
                                 ", and infra/policies.py, which writes them (write_policies(stage, region, "
                                 "account_id, outputs)), is not there") + "; nothing was deployed")

    # 5 -------------------------------------------------------------------------------
    def check_secret(self) -> Dict[str, str]:
        secret_id = stage_environment(load_config(self.project_dir), self.stage).get(
            "PLATFORM_SECRET_ID", f"{APP}-{self.stage}/platforms")
        manager = self.client("secretsmanager")
        try:
            raw = manager.get_secret_value(SecretId=secret_id)["SecretString"]
        except Exception as err:
            if "ResourceNotFound" in type(err).__name__ and "secret value" in str(err):
                # infra/template.yaml creates it without a value, so no stack update can overwrite the tokens.
                self.out(f"note: {secret_id} has no value yet; every channel stays off until it is set: "
                         f"python infra/admin.py set-secret --stage {self.stage} " + " ".join(SECRET_USES))
                return {}
            raise DeployError(f"the platform secret {secret_id} cannot be read ({err}); infra/template.yaml creates "
                              f"it: check the stack") from err
        try:
            values = json.loads(raw)
        except ValueError:
            values = None
        if not isinstance(values, dict):
            raise DeployError(f"the platform secret {secret_id} is not a JSON object; set its values with "
                              f"`python infra/admin.py set-secret --stage {self.stage} KEY`")
        hits = [key for key, value in values.items() if isinstance(value, str) and PLACEHOLDER in value]
        if hits:
            raise DeployError(f"the platform secret {secret_id} still has a REPLACE_WITH_... placeholder in "
                              f"{', '.join(sorted(hits))}; set it with `python infra/admin.py set-secret "
                              f"--stage {self.stage} {' '.join(sorted(hits))}` (nothing was deployed)")
        empty = [key for key in SECRET_USES if not values.get(key)]
        for key in empty:
            self.out(f"note: {secret_id} has no {key} yet; off until it is set: {SECRET_USES[key]}")
        return {key: "set" for key in values if values.get(key)}

    # 6 -------------------------------------------------------------------------------
    def chalice_deploy(self) -> str:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("AWS_DEFAULT_REGION", self.region)
        command = [*self.chalice, "deploy", "--stage", self.stage]
        self.out("$ " + " ".join(["chalice", *command[len(self.chalice):]]))
        process = subprocess.Popen(command, cwd=str(self.project_dir), env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            self.out(line.rstrip("\n"))
        output = "".join(lines)
        if process.wait() != 0:
            operation = next((op for op in API_OPERATIONS if op in output), "")
            if operation:
                raise DeployError(API_STEP_FAILED.format(operation=operation, stage=self.stage))
            raise DeployError(f"chalice deploy --stage {self.stage} failed (exit {process.returncode}); its output "
                              f"is above. Every step is safe to repeat once it is fixed.")
        return output

    # 7 -------------------------------------------------------------------------------
    def after_chalice(self) -> List[str]:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import partial_batch

        lam = MappingsByArn(self.client("lambda"))
        changed = partial_batch.enable(lam, self.stage)
        for function in changed:
            self.out(f"{function}: SQS mappings report batch item failures")
        for function in self.stream_item_failures(lam):
            self.out(f"{function}: the cases stream mapping reports batch item failures")
            changed.append(function)
        return changed

    def stream_item_failures(self, lam: Any) -> List[str]:
        """ReportBatchItemFailures on each stream-fed function's DynamoDB mapping, then the function told so.

        The same order as infra/partial_batch.py: a function that reports item failures to a mapping that
        ignores them would have its failed changes taken as done, while the reverse only retries a batch.
        A function app.py does not have (yet) is skipped.
        """
        changed = []
        for name in STREAM_FUNCTIONS:
            function = f"{APP}-{self.stage}-{name}"
            try:
                configuration = lam.get_function_configuration(FunctionName=function)
            except Exception as err:
                if "ResourceNotFound" in type(err).__name__ or "ResourceNotFound" in str(err):
                    continue
                raise
            mappings = lam.list_event_source_mappings(FunctionName=function).get("EventSourceMappings", [])
            streams = [m for m in mappings if ":dynamodb:" in m.get("EventSourceArn", "")]
            if not streams:
                raise DeployError(f"{function} has no DynamoDB stream mapping after chalice deploy; is "
                                  f"CASES_STREAM_ARN set in stage {self.stage}?")
            for mapping in streams:
                if "ReportBatchItemFailures" not in (mapping.get("FunctionResponseTypes") or []):
                    lam.update_event_source_mapping(UUID=mapping["UUID"],
                                                    FunctionResponseTypes=["ReportBatchItemFailures"])
            variables = dict((configuration.get("Environment") or {}).get("Variables") or {})
            if variables.get(ITEM_FAILURES_FLAG) != "true":
                variables[ITEM_FAILURES_FLAG] = "true"
                lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
            changed.append(function)
        return changed

    # 5b ------------------------------------------------------------------------------
    def prepare_log_groups(self) -> List[str]:
        """Create each function's log group with retention and tags before Chalice deploys.

        The policies grant no logs:CreateLogGroup (least privilege), and Chalice
        1.34 names the API's group after the handler (``socialcare-<stage>-api_handler``)
        before it renames the function, so the API's group would otherwise never
        exist on a new stage. Safe to repeat.
        """
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import policies

        logs = self.client("logs")
        retention = int(policies.load_config(self.project_dir).get("stages", {}).get(self.stage, {})
                        .get("log_retention_in_days", 30))
        made = []
        for name, function in policies.FUNCTIONS.items():
            group = policies.log_group_name(name, self.stage)
            tags = policies.resource_tags(self.stage, function.component)
            try:
                logs.create_log_group(logGroupName=group, tags=tags)
            except Exception as err:  # noqa: BLE001 - "already exists" is the normal case on an update
                if "ResourceAlreadyExists" not in type(err).__name__ and "already exists" not in str(err):
                    raise
            logs.put_retention_policy(logGroupName=group, retentionInDays=retention)
            made.append(group)
        return made

    # 8 -------------------------------------------------------------------------------
    def stage_settings_and_tags(self) -> Dict[str, Any]:
        """What Chalice cannot set: API stage throttling, and cost allocation tags on what it created."""
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import policies

        done: Dict[str, Any] = {"tagged": []}
        deployed = self.project_dir / ".chalice" / "deployed" / f"{self.stage}.json"
        resources = json.loads(deployed.read_text()).get("resources", []) if deployed.exists() else []
        lam, iam, events = self.client("lambda"), self.client("iam"), self.client("events")
        for resource in resources:
            kind, name = resource.get("resource_type"), resource.get("name", "")
            component = _component_of(name, policies)
            tags = policies.resource_tags(self.stage, component)
            if kind == "rest_api" and resource.get("rest_api_id"):
                api = self.client("apigateway")
                api.update_stage(restApiId=resource["rest_api_id"], stageName="api", patchOperations=[
                    {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "50"},
                    {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "100"}])
                region_arn = f"arn:aws:apigateway:{self.region}::/restapis/{resource['rest_api_id']}"
                api.tag_resource(resourceArn=region_arn, tags=tags)
                done["throttled"] = resource["rest_api_id"]
            elif kind == "iam_role" and resource.get("role_name"):
                iam.tag_role(RoleName=resource["role_name"], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            elif kind == "sqs_event" and resource.get("event_uuid"):
                mapping = lam.get_event_source_mapping(UUID=resource["event_uuid"])
                if mapping.get("EventSourceMappingArn"):
                    lam.tag_resource(Resource=mapping["EventSourceMappingArn"], Tags=tags)
            elif kind == "cloudwatch_event" and resource.get("rule_name"):
                rule = events.describe_rule(Name=resource["rule_name"])
                events.tag_resource(ResourceARN=rule["Arn"], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            else:
                continue
            done["tagged"].append(name)
        return done

    # 9 -------------------------------------------------------------------------------
    def logging_configs(self, config: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, str]]:
        """Function name -> the LoggingConfig it gets, for every function of the stage (its own log group)."""
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import policies

        config = config if config is not None else load_config(self.project_dir)
        found: Dict[str, Dict[str, str]] = {}
        for name in policies.stage_functions(self.stage, config):
            environment = policies.stage_settings(self.stage, name, config)[0]
            try:
                wanted = logging_config(environment)
            except ValueError as err:
                raise DeployError(f"stage {self.stage}, function {name}: {err} (nothing was deployed)") from err
            found[policies.function_name(name, self.stage)] = {
                **wanted, "LogGroup": policies.log_group_name(name, self.stage)}
        return found

    def _settled(self, lam: Any, function: str) -> None:
        """Wait until no update of ``function`` is in progress (its LastUpdateStatus is Successful): Lambda
        refuses another update of a function until then (ResourceConflictException)."""
        from botocore.exceptions import WaiterError

        try:
            lam.get_waiter("function_updated_v2").wait(
                FunctionName=function, WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": 120})
        except WaiterError as err:
            raise DeployError(f"function {function} is not ready for its settings after chalice deploy --stage "
                              f"{self.stage} ({err}); run the deploy again") from err

    def lambda_logging(self) -> List[str]:
        """Lambda's advanced logging controls (``logging_config``) on every function of the stage, one update
        at a time: each waits for the function's previous update (Chalice's, or the partial-batch step's) to
        finish, as Lambda requires, and for its own. A function already so configured is left alone."""
        lam = self.client("lambda")
        configs = self.logging_configs()
        changed = []
        for function, wanted in configs.items():
            self._settled(lam, function)
            current = lam.get_function_configuration(FunctionName=function).get("LoggingConfig") or {}
            if all(current.get(key) == value for key, value in wanted.items()):
                continue
            lam.update_function_configuration(FunctionName=function, LoggingConfig=wanted)
            self._settled(lam, function)
            changed.append(function)
        levels = sorted({wanted["SystemLogLevel"] for wanted in configs.values()})
        quiet = stage_environment(load_config(self.project_dir), self.stage).get("POWERTOOLS_LOG_LEVEL", "INFO")
        if quiet.strip().upper() not in ("DEBUG", "INFO"):
            self.out(f"note: POWERTOOLS_LOG_LEVEL={quiet} in stage {self.stage}, but Lambda's application log level "
                     f"is INFO (the EMF metric lines carry no level: a higher one would drop them), and Powertools "
                     f"follows Lambda's: INFO lines are logged")
        if changed:
            self.out(f"{len(changed)} function(s) log JSON, Lambda's own lines at {' and '.join(levels)}"
                     + (": no START, END or REPORT lines (LAMBDA_SYSTEM_LOG_LEVEL=INFO brings them back)"
                        if levels == ["WARN"] else ""))
        return changed

    # 10 ------------------------------------------------------------------------------
    def function_url(self) -> str:
        """Create or update the API handler's function URL (AuthType NONE), and its public invoke permissions
        (``FUNCTION_URL_STATEMENTS``, each added once). Returns the URL (``https://<id>.lambda-url.<region>.on.aws/``).

        A function URL costs nothing per request beyond the invocation (API Gateway REST: $3.50 a million) and
        has no throttling of its own: the API handler's reserved concurrency (.chalice/config.json) bounds it.
        """
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import policies

        lam = self.client("lambda")
        function = policies.function_name(API_HANDLER, self.stage)
        self._settled(lam, function)
        try:
            current = lam.get_function_url_config(FunctionName=function)
        except lam.exceptions.ResourceNotFoundException:
            url = lam.create_function_url_config(FunctionName=function, AuthType="NONE", InvokeMode="BUFFERED")["FunctionUrl"]
            self.out(f"{function}: function URL created: {url}")
        else:
            url = current["FunctionUrl"]
            if current.get("AuthType") != "NONE" or current.get("InvokeMode", "BUFFERED") != "BUFFERED":
                lam.update_function_url_config(FunctionName=function, AuthType="NONE", InvokeMode="BUFFERED")
                self.out(f"{function}: function URL set to AuthType NONE, buffered: {url}")
        have = self._statement_ids(lam, function)
        for statement_id, grant in FUNCTION_URL_STATEMENTS:
            if statement_id in have:
                continue
            try:
                lam.add_permission(FunctionName=function, StatementId=statement_id, Principal="*", **grant)
            except lam.exceptions.ResourceConflictException as err:
                # The statement id is taken (another deploy added it meanwhile), or an update was in progress.
                if statement_id not in self._statement_ids(lam, function):
                    raise DeployError(f"{function}: the function URL's permission {statement_id} could not be "
                                      f"added ({err}); run the deploy again") from err
        self.function_address = url
        return url

    @staticmethod
    def _statement_ids(lam: Any, function: str) -> Set[str]:
        try:
            policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
        except lam.exceptions.ResourceNotFoundException:  # no resource-based policy yet
            return set()
        return {statement.get("Sid", "") for statement in policy.get("Statement", [])}

    def summary(self) -> Dict[str, Any]:
        deployed = self.project_dir / ".chalice" / "deployed" / f"{self.stage}.json"
        api_url = ""
        if deployed.exists():
            for resource in json.loads(deployed.read_text()).get("resources", []):
                if resource.get("resource_type") == "rest_api":
                    api_url = resource.get("rest_api_url", "")
        url = self.function_address
        base = url.rstrip("/")
        self.out("")
        if url:
            self.out(f"stage {self.stage} deployed. Its address (the function URL): {base}/")
            self.out(f"  agents' API:           {base}/cases ...  (Authorization: Bearer <ID token>)")
            self.out(f"  web inbox:             {base}/")
            self.out(f"  Meta webhook callback: {base}/webhooks/meta")
            if api_url:
                self.out(f"  REST API (kept, the same routes, $3.50 a million requests): {api_url}")
        else:
            self.out(f"stage {self.stage} deployed. API: {api_url or '(see chalice url --stage ' + self.stage + ')'}")
        self.out("next (README, Deploying to AWS):")
        self.out(f"  python infra/admin.py create-supervisor --stage {self.stage} --username <name> --email <email>")
        self.out(f"  python infra/admin.py login --stage {self.stage} --username <name>")
        if api_url and not url:
            self.out(f"  Meta webhook callback URL: {api_url.rstrip('/')}/webhooks/meta")
        return {"stage": self.stage, "api_url": api_url, "function_url": url}


class MappingsByArn:
    """A Lambda client whose list_event_source_mappings looks a function up by its ARN.

    AWS matches a mapping by the function's name or ARN alike; moto's server
    only by the string the mapping was created with, and Chalice creates it
    with the ARN. Asking by ARN is right for both.
    """

    def __init__(self, lambda_client: Any):
        self._client = lambda_client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def list_event_source_mappings(self, *, FunctionName: str, **kwargs: Any) -> Any:  # noqa: N803 (boto3's name)
        try:
            arn = self._client.get_function_configuration(FunctionName=FunctionName)["FunctionArn"]
        except Exception:
            arn = FunctionName  # no such function: partial_batch says to deploy it first
        return self._client.list_event_source_mappings(FunctionName=arn, **kwargs)


# ---- CloudFormation helpers ---------------------------------------------------------------

def stack_status(cloudformation: Any, name: str) -> Optional[str]:
    """The stack's status; None when there is no such stack (or only a deleted one)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except Exception as err:
        if "does not exist" in str(err):
            return None
        raise
    status = stacks[0]["StackStatus"] if stacks else None
    return None if status in (None, "DELETE_COMPLETE") else status


def is_packaged_app(cloudformation: Any, name: str) -> bool:
    """True when the stack holds `chalice package` output (SAM functions), not infra/ alone."""
    body = cloudformation.get_template(StackName=name, TemplateStage="Original").get("TemplateBody", "")
    text = body if isinstance(body, str) else json.dumps(body)
    return "AWS::Serverless-2016-10-31" in text or "AWS::Serverless::Function" in text or "APIHandler" in text


def first_failure(cloudformation: Any, name: str) -> str:
    try:
        events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    except Exception:
        return ""
    for event in reversed(events):  # oldest first: the first failure is the cause
        if event.get("ResourceStatus", "").endswith("_FAILED"):
            return f"{event.get('LogicalResourceId')}: {event.get('ResourceStatusReason', '')}"
    return ""


def template_parameters(body: str) -> List[str]:
    import yaml  # a deploy-time tool (shipped with cfn-lint), never in a Lambda

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation short forms (!Ref, !Sub ...) do not matter for the parameter names.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    document = yaml.load(body, Loader=Loader) or {}
    return list((document.get("Parameters") or {}).keys())


def _template_loader() -> Any:
    """A YAML loader that reads CloudFormation's short forms as their long forms (!Ref x -> {"Ref": x},
    !Sub s -> {"Fn::Sub": s}, !GetAtt a.b -> {"Fn::GetAtt": [a, b]}), so a template can be written as JSON."""
    import yaml  # a deploy-time tool (shipped with cfn-lint), never in a Lambda

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: Any, suffix: str, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix in ("Ref", "Condition"):
            return {suffix: value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    return Loader


def _parsed(body: str) -> Dict[str, Any]:
    import yaml

    return yaml.load(body, Loader=_template_loader()) or {}  # noqa: S506 - a SafeLoader subclass


Retired = Mapping[str, List[Dict[str, Any]]]


def retired_indexes(body: str, definitions: Mapping[str, Mapping[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """Per table (logical id), the indexes it has now that the template no longer declares, as CloudFormation
    declares them, each with ``_attributes`` (the definitions of its key attributes)."""
    found: Dict[str, List[Dict[str, Any]]] = {}
    for logical_id, resource in (_parsed(body).get("Resources") or {}).items():
        if resource.get("Type") != "AWS::DynamoDB::Table" or logical_id not in definitions:
            continue
        declared = {index["IndexName"] for index in resource.get("Properties", {}).get("GlobalSecondaryIndexes", [])}
        have = definitions[logical_id]
        for name, index in have["indexes"].items():
            if name not in declared:
                keys = [key["AttributeName"] for key in index["KeySchema"]]
                found.setdefault(logical_id, []).append({
                    **index, "_attributes": [{"AttributeName": k, "AttributeType": have["attributes"].get(k, "S")}
                                             for k in keys]})
    return found


def _keep(properties: Dict[str, Any], indexes: List[Dict[str, Any]]) -> None:
    """Add retired ``indexes`` (and their key attributes' definitions) to a table's properties."""
    present = {index["IndexName"] for index in properties.get("GlobalSecondaryIndexes", [])}
    defined = {a["AttributeName"] for a in properties.get("AttributeDefinitions", [])}
    for index in indexes:
        if index["IndexName"] in present:
            continue
        properties.setdefault("GlobalSecondaryIndexes", []).append(
            {k: v for k, v in index.items() if not k.startswith("_")})
        for attribute in index["_attributes"]:
            if attribute["AttributeName"] not in defined:
                properties.setdefault("AttributeDefinitions", []).append(attribute)
                defined.add(attribute["AttributeName"])


def bridge_body(body: str, retired: Retired) -> Optional[str]:
    """``body`` with the retired indexes still in it (None when there are none): the template the stack has
    until the functions that no longer read them are deployed."""
    if not any(retired.values()):
        return None
    template = _parsed(body)
    for logical_id, indexes in retired.items():
        _keep(template["Resources"][logical_id]["Properties"], indexes)
    return json.dumps(template, separators=(",", ":"))


def retire_steps(body: str, retired: Retired) -> List[Any]:
    """[(index name, template)]: each removes one more retired index (one deletion per table per update);
    the last is ``body`` itself (as JSON)."""
    count = max((len(indexes) for indexes in retired.values()), default=0)
    steps: List[Any] = []
    for done in range(1, count + 1):
        template = _parsed(body)
        removed = []
        for logical_id, indexes in retired.items():
            _keep(template["Resources"][logical_id]["Properties"], indexes[done:])
            removed += [index["IndexName"] for index in indexes[done - 1:done]]
        steps.append((", ".join(removed), json.dumps(template, separators=(",", ":"))))
    return steps


def index_steps(body: str, existing: Mapping[str, Set[str]], retired: Optional[Retired] = None) -> List[Any]:
    """[(index name, template)] to apply, in order, before ``body`` itself, so that no stack update creates
    more than one global secondary index on a table (CloudFormation refuses that).

    ``existing``: the indexes each table of the stack has now, by logical id (a table not there yet is
    created with all of its indexes at once, which is allowed). Step n is ``body`` (as JSON) with each
    table's existing indexes and its first n new ones, in template order, and only the attribute
    definitions those use (DynamoDB refuses a definition no key uses). ``retired``: indexes the template
    dropped, kept in every step (removing them is staged after the functions are deployed: retire_steps).
    """
    template = _parsed(body)
    new: Dict[str, List[str]] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::DynamoDB::Table" or logical_id not in existing:
            continue
        names = [index["IndexName"] for index in resource.get("Properties", {}).get("GlobalSecondaryIndexes", [])]
        missing = [name for name in names if name not in existing[logical_id]]
        if missing:
            new[logical_id] = missing
    steps: List[Any] = []
    for count in range(1, max((len(names) for names in new.values()), default=0)):
        step = json.loads(json.dumps(template))
        added = []
        for logical_id, names in new.items():
            properties = step["Resources"][logical_id]["Properties"]
            keep = set(existing[logical_id]) | set(names[:count])
            added += names[count - 1:count]
            properties["GlobalSecondaryIndexes"] = [index for index in properties["GlobalSecondaryIndexes"]
                                                    if index["IndexName"] in keep]
            _keep(properties, list((retired or {}).get(logical_id, [])))
            used = {key["AttributeName"] for key in properties.get("KeySchema", [])}
            for index in properties["GlobalSecondaryIndexes"] + properties.get("LocalSecondaryIndexes", []):
                used |= {key["AttributeName"] for key in index["KeySchema"]}
            properties["AttributeDefinitions"] = [a for a in properties.get("AttributeDefinitions", [])
                                                  if a["AttributeName"] in used]
            if not properties["GlobalSecondaryIndexes"]:
                del properties["GlobalSecondaryIndexes"]
        text = json.dumps(step, separators=(",", ":"))
        if len(text.encode("utf-8")) > MAX_TEMPLATE_BODY:
            raise DeployError(f"the template with index {', '.join(added)} alone is over CloudFormation's "
                              f"{MAX_TEMPLATE_BODY} bytes for an inline template")
        steps.append((", ".join(added), text))
    return steps


# ---- the other path: a CloudFormation pipeline ----------------------------------------------

def check_pipeline(session: Any, stage: str, template: Path) -> List[str]:
    """Before a pipeline deploys `make package` output as ``socialcare-<stage>-pipeline``: refuse a stage
    deployed with `make deploy`, and a packaged template with a placeholder left. Returns what was checked."""
    cloudformation = session.client("cloudformation", region_name=session.region_name or "us-east-1")
    status = stack_status(cloudformation, infra_stack(stage))
    if status and not is_packaged_app(cloudformation, infra_stack(stage)):
        raise DeployError(
            f"stage {stage} is deployed with `make deploy` (stack {infra_stack(stage)}, {status}, and Chalice's "
            f"functions): the packaged template would create tables, queues and a secret with the same names. Keep "
            f"deploying this stage with `make deploy STAGE={stage}`, or give the pipeline another stage.")
    lam = session.client("lambda", region_name=session.region_name or "us-east-1")
    try:
        lam.get_function(FunctionName=f"{APP}-{stage}-fetch_mentions")
    except Exception as err:
        if "ResourceNotFound" not in type(err).__name__ and "ResourceNotFound" not in str(err):
            raise
    else:
        raise DeployError(f"function {APP}-{stage}-fetch_mentions exists: stage {stage} was deployed with "
                          f"`chalice deploy`; a pipeline must not deploy the same stage")
    if not template.exists():
        raise DeployError(f"{template} does not exist; run `make package STAGE={stage}` first")
    text = template.read_text()
    hits = sorted(set(re.findall(r"REPLACE_WITH_\w+", text)))
    if hits:
        raise DeployError(f"{template} still has placeholder(s) {', '.join(hits)}: the functions would start without "
                          f"their settings. Give them values (for the Cognito ids, Ref the pool and client of the "
                          f"same template) and package again; nothing was deployed.")
    return [f"no stack {infra_stack(stage)} from `make deploy`", "no placeholder in " + str(template)]


# ---- command line -------------------------------------------------------------------------

def session_for(region: Optional[str], profile: Optional[str]) -> Any:
    import boto3

    return boto3.Session(region_name=region, profile_name=profile)


def main(argv: Optional[Sequence[str]] = None, *, project_dir: Path = ROOT, session: Any = None,
         out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python infra/deploy.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stage", required=True, help="a stage of .chalice/config.json, e.g. prod")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    parser.add_argument("--profile", help="AWS profile (default: your AWS configuration's)")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="a parameter of infra/template.yaml (repeatable); Stage is set from --stage")
    parser.add_argument("--check-pipeline", action="store_true",
                        help="do not deploy: check that a CloudFormation pipeline may deploy `make package` output "
                             "for this stage (as stack socialcare-<stage>-pipeline)")
    parser.add_argument("--template", default=str(project_dir / "build" / "package" / "sam.yaml"),
                        help="with --check-pipeline: the packaged template (default build/package/sam.yaml)")
    args = parser.parse_args(argv)
    session = session or session_for(args.region, args.profile)
    if session.region_name is None:
        out("error: no AWS region: pass --region or set AWS_DEFAULT_REGION")
        return 2
    try:
        if args.check_pipeline:
            for line in check_pipeline(session, args.stage, Path(args.template)):
                out(f"ok: {line}")
            return 0
        parameters = {}
        for item in args.parameter:
            key, sep, value = item.partition("=")
            if not sep:
                raise DeployError(f"--parameter {item!r} is not KEY=VALUE")
            parameters[key] = value
        env = dict(os.environ)
        if args.profile:
            env["AWS_PROFILE"] = args.profile
        env["AWS_DEFAULT_REGION"] = session.region_name
        Deployment(args.stage, session, project_dir=project_dir, parameters=parameters, env=env, out=out).run()
    except DeployError as err:
        out(f"error: {err}")
        return 1
    except Exception as err:
        if not type(err).__module__.startswith(("botocore", "boto3")):
            raise
        # No credentials, no connection, access denied: AWS's own words are the clearest.
        out(f"error: AWS: {type(err).__name__}: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _component_of(resource_name: str, policies: Any) -> str:
    """The `component` tag of a Chalice resource, by the function it belongs to."""
    for name, function in policies.FUNCTIONS.items():
        if name in resource_name:
            return str(function.component)
    return "api" if "api" in resource_name else "pipeline"
