"""The deploy steps after `chalice deploy` that make the stage cheaper to run (issue 17): the API handler's
function URL as the stage's front, and Lambda's own log lines off. Against a Lambda that behaves as AWS's does
where moto's does not: a second update while one is in progress is refused, and a statement id is unique."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
import deploy  # noqa: E402
import policies  # noqa: E402

STAGE = "prod"
API = f"socialcare-{STAGE}"
ERRORS = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x").exceptions


def error(kind, message):
    return getattr(ERRORS, kind)({"Error": {"Code": kind, "Message": message}}, "test")


class FakeLambda:
    """The Lambda API calls the steps make, with AWS's rules: an update of a function leaves it InProgress
    until someone waits for it (time passes), and another update before then is a ResourceConflictException;
    AddPermission refuses a statement id the policy already has."""

    exceptions = ERRORS

    def __init__(self, functions):
        self.functions = {name: {"LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
                                 "LastUpdateStatus": "InProgress"} for name in functions}  # Chalice just updated them
        self.urls = {}
        self.statements = {}
        self.calls = []

    def _function(self, name):
        if name not in self.functions:
            raise error("ResourceNotFoundException", f"Function not found: {name}")
        return self.functions[name]

    def get_waiter(self, waiter):
        assert waiter == "function_updated_v2"
        fake = self

        class Waiter:
            def wait(self, FunctionName, WaiterConfig):  # noqa: N803 (boto3's names)
                fake._function(FunctionName)["LastUpdateStatus"] = "Successful"
        return Waiter()

    def get_function_configuration(self, FunctionName):  # noqa: N803
        return dict(self._function(FunctionName))

    def update_function_configuration(self, FunctionName, LoggingConfig):  # noqa: N803
        function = self._function(FunctionName)
        if function["LastUpdateStatus"] == "InProgress":
            raise error("ResourceConflictException", "The operation cannot be performed at this time. "
                                                     "An update is in progress for resource: " + FunctionName)
        self.calls.append(("update_function_configuration", FunctionName, LoggingConfig))
        function["LoggingConfig"] = {**function["LoggingConfig"], **LoggingConfig}
        function["LastUpdateStatus"] = "InProgress"
        return {}

    def get_function_url_config(self, FunctionName):  # noqa: N803
        if FunctionName not in self.urls:
            raise error("ResourceNotFoundException", "The resource you requested does not exist.")
        return dict(self.urls[FunctionName])

    def create_function_url_config(self, FunctionName, AuthType, InvokeMode):  # noqa: N803
        self._function(FunctionName)
        if FunctionName in self.urls:
            raise error("ResourceConflictException", "Failed to create function url config: it exists")
        self.calls.append(("create_function_url_config", FunctionName, AuthType, InvokeMode))
        self.urls[FunctionName] = {"FunctionUrl": f"https://abc{len(self.urls)}.lambda-url.us-east-1.on.aws/",
                                   "AuthType": AuthType, "InvokeMode": InvokeMode}
        return dict(self.urls[FunctionName])

    def update_function_url_config(self, FunctionName, AuthType, InvokeMode):  # noqa: N803
        self.calls.append(("update_function_url_config", FunctionName, AuthType, InvokeMode))
        self.urls[FunctionName].update(AuthType=AuthType, InvokeMode=InvokeMode)
        return dict(self.urls[FunctionName])

    def get_policy(self, FunctionName):  # noqa: N803
        statements = self.statements.get(FunctionName)
        if not statements:
            raise error("ResourceNotFoundException", "The resource you requested does not exist.")
        return {"Policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements.values())})}

    def add_permission(self, FunctionName, StatementId, **grant):  # noqa: N803
        statements = self.statements.setdefault(FunctionName, {})
        if StatementId in statements:
            raise error("ResourceConflictException", f"The statement id ({StatementId}) provided already exists.")
        self.calls.append(("add_permission", FunctionName, StatementId, grant))
        statements[StatementId] = {"Sid": StatementId, **grant}
        return {}


class Session:
    region_name = "us-east-1"

    def __init__(self, lam):
        self.lam = lam

    def client(self, service, region_name=None):
        assert service == "lambda"
        return self.lam


@pytest.fixture
def project(tmp_path):
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text((ROOT / ".chalice" / "config.json").read_text())
    return tmp_path


def stage_config(project, stage=STAGE, **variables):
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"][stage].setdefault("environment_variables", {}).update(variables)
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    return config


def deployment(project, lam, said=None):
    return deploy.Deployment(STAGE, Session(lam), project_dir=project, waiter_delay=0,
                             out=(said.append if said is not None else lambda line: None))


def stage_function_names(project):
    config = json.loads((project / ".chalice" / "config.json").read_text())
    return [policies.function_name(name, STAGE) for name in policies.stage_functions(STAGE, config)]


# ---- the function URL ------------------------------------------------------------------------------------

def test_the_api_handler_gets_a_public_function_url_with_both_invoke_permissions_once(project):
    lam = FakeLambda(stage_function_names(project))
    said = []
    steps = deployment(project, lam, said)

    url = steps.function_url()

    assert url == lam.urls[API]["FunctionUrl"] and lam.urls[API]["AuthType"] == "NONE"
    # AWS's rule for function URLs created since October 2025: lambda:InvokeFunctionUrl for AuthType NONE, and
    # lambda:InvokeFunction only through a function URL; both to everyone (the app checks its callers).
    assert lam.statements[API] == {
        "FunctionURLAllowPublicAccess": {"Sid": "FunctionURLAllowPublicAccess", "Action": "lambda:InvokeFunctionUrl",
                                         "Principal": "*", "FunctionUrlAuthType": "NONE"},
        "FunctionURLAllowInvokeAction": {"Sid": "FunctionURLAllowInvokeAction", "Action": "lambda:InvokeFunction",
                                         "Principal": "*", "InvokedViaFunctionUrl": True}}
    assert set(lam.statements) == {API}  # no other function is public

    # Run again (every deploy does): the same URL, nothing created or added twice.
    made = len(lam.calls)
    assert steps.function_url() == url
    assert len(lam.calls) == made

    # A URL someone switched to AWS_IAM by hand is put back: agents and Meta carry no AWS signature.
    lam.urls[API]["AuthType"] = "AWS_IAM"
    assert deployment(project, lam).function_url() == url
    assert lam.urls[API]["AuthType"] == "NONE" and lam.calls[-1][0] == "update_function_url_config"


def test_a_statement_another_deploy_added_meanwhile_is_not_an_error_but_a_missing_one_is(project):
    class Racing(FakeLambda):
        """Another deploy adds the first statement between this one's read of the policy and its own add."""

        def add_permission(self, FunctionName, StatementId, **grant):  # noqa: N803
            if StatementId == "FunctionURLAllowPublicAccess" and StatementId not in self.statements.get(FunctionName, {}):
                super().add_permission(FunctionName, StatementId, **grant)  # the other deploy's
            return super().add_permission(FunctionName, StatementId, **grant)  # this one's: the id is taken

    racing = Racing(stage_function_names(project))
    deployment(project, racing).function_url()
    assert set(racing.statements[API]) == {"FunctionURLAllowPublicAccess", "FunctionURLAllowInvokeAction"}

    class Busy(FakeLambda):
        """AddPermission refused, and the statement is not there: the URL would answer 403 to everyone."""

        def add_permission(self, FunctionName, StatementId, **grant):  # noqa: N803
            raise error("ResourceConflictException", "The operation cannot be performed at this time.")

    with pytest.raises(deploy.DeployError, match="FunctionURLAllowPublicAccess could not be added.*run the deploy again"):
        deployment(project, Busy(stage_function_names(project))).function_url()


def test_the_summary_gives_the_function_url_as_the_address_for_agents_the_inbox_and_meta(project):
    lam = FakeLambda(stage_function_names(project))
    said = []
    steps = deployment(project, lam, said)
    url = steps.function_url().rstrip("/")
    said.clear()

    summary = steps.summary()

    assert summary["function_url"].rstrip("/") == url
    text = "\n".join(said)
    assert f"web inbox:             {url}/\n" in text + "\n"
    assert f"Meta webhook callback: {url}/webhooks/meta" in text
    assert f"agents' API:           {url}/cases" in text


# ---- Lambda's own log lines ------------------------------------------------------------------------------

def test_every_function_logs_json_without_lambdas_start_end_and_report_lines_by_default(project):
    lam = FakeLambda(stage_function_names(project))
    said = []
    # Chalice left each function InProgress: an update before waiting would be refused, as on AWS.
    changed = deployment(project, lam, said).lambda_logging()

    assert sorted(changed) == sorted(lam.functions)
    for name, function in lam.functions.items():
        short = next(f for f in policies.FUNCTIONS if policies.function_name(f, STAGE) == name)
        assert function["LoggingConfig"] == {"LogFormat": "JSON", "SystemLogLevel": "WARN",
                                             "ApplicationLogLevel": "INFO",
                                             "LogGroup": policies.log_group_name(short, STAGE)}, name
    assert any("no START, END or REPORT lines" in line for line in said)

    # Again: nothing to change, nothing updated.
    made = len(lam.calls)
    assert deployment(project, lam).lambda_logging() == []
    assert len(lam.calls) == made


def test_the_stage_setting_brings_lambdas_lines_back_and_a_wrong_one_stops_the_deploy_first(project):
    stage_config(project, LAMBDA_SYSTEM_LOG_LEVEL="info")
    lam = FakeLambda(stage_function_names(project))
    deployment(project, lam).lambda_logging()
    assert {f["LoggingConfig"]["SystemLogLevel"] for f in lam.functions.values()} == {"INFO"}

    stage_config(project, LAMBDA_SYSTEM_LOG_LEVEL="QUIET")
    with pytest.raises(deploy.DeployError, match="LAMBDA_SYSTEM_LOG_LEVEL must be DEBUG, INFO or WARN.*nothing was "
                                                 "deployed"):
        deployment(project, FakeLambda([])).preflight()  # before any AWS call: the session has no CloudFormation


def test_the_application_log_level_never_drops_the_metric_lines():
    """EMF lines carry no level, so Lambda files them under INFO: the application level stays at INFO or below,
    or the metrics the alarms watch would be dropped; Powertools' DEBUG stays DEBUG."""
    assert deploy.logging_config({}) == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}
    assert deploy.logging_config({"POWERTOOLS_LOG_LEVEL": "DEBUG"})["ApplicationLogLevel"] == "DEBUG"
    for quieter in ("WARNING", "ERROR", "CRITICAL"):
        assert deploy.logging_config({"POWERTOOLS_LOG_LEVEL": quieter})["ApplicationLogLevel"] == "INFO", quieter


@pytest.mark.parametrize("level, platform_bytes", [("", 0), ("WARN", 0), ("INFO", 420), ("DEBUG", 420)])
def test_the_cost_meter_counts_lambdas_lines_only_where_the_deploy_keeps_them(monkeypatch, level, platform_bytes):
    """What the deploy tells Lambda (SystemLogLevel) and what the in-app cost report bills agree."""
    from chalicelib.adapters import metering
    from chalicelib.config import settings
    from chalicelib.domain import metering as rules

    monkeypatch.setenv("LAMBDA_SYSTEM_LOG_LEVEL", level)
    settings.cache_clear()
    meter = metering.reset()
    try:
        metering.start("api", 512, "arm64")
        metering.finish(10.0, traced=False)
        logged = meter.pending()[("api", rules.SHARED)].get(rules.LOGS_INGESTED, 0.0) * 1024 ** 3
        assert logged == pytest.approx(platform_bytes)
        assert (deploy.logging_config({"LAMBDA_SYSTEM_LOG_LEVEL": level})["SystemLogLevel"] == "WARN") == (logged == 0)
    finally:
        metering.reset()
        settings.cache_clear()
