"""`make package`: what `chalice deploy` would ship, merged with infra/, is valid."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml  # shipped with cfn-lint

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_package_merged_with_infra_passes_cfn_lint(tmp_path):
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    subprocess.run([sys.executable, "infra/merge.py", str(tmp_path / "merge.yaml")], cwd=ROOT, check=True)
    subprocess.run([str(BIN / "chalice"), "package", "--stage", "prod", "--merge-template",
                    str(tmp_path / "merge.yaml"), str(tmp_path)], cwd=ROOT, env=env, check=True, capture_output=True)
    lint = subprocess.run([str(BIN / "cfn-lint"), str(tmp_path / "sam.yaml")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    template = yaml.load((tmp_path / "sam.yaml").read_text(), Loader=yaml.BaseLoader)
    resources = template["Resources"]
    # The pipeline's functions and the stateful resources are in one deployable template.
    for name in ("FetchMentions", "TriageMentions", "AssignCases", "SendReplies", "CasesTable", "OutboundDeadLetterQueue"):
        assert name in resources, f"{name} missing from the package"
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["SOCIALCARE_STAGE"] == "prod"
    # Every queue-fed function reports item failures, and knows it does.
    for name, resource in resources.items():
        events = resource.get("Properties", {}).get("Events", {}) if isinstance(resource, dict) else {}
        for event in (e for e in events.values() if e.get("Type") == "SQS"):
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
            assert resource["Properties"]["Environment"]["Variables"]["SQS_REPORT_BATCH_ITEM_FAILURES"] == "true"
            assert resource["Properties"]["Environment"]["Variables"]["SOCIALCARE_STAGE"] == "prod"

    shipped = {name.split("/")[0] for name in zipfile.ZipFile(tmp_path / "deployment.zip").namelist()}
    # Runtime dependencies stay small: no test tools, and boto3 comes with the Lambda runtime.
    assert not shipped & {"moto", "pytest", "boto3", "botocore", "cfn_lint"}


def test_the_stale_sending_window_fits_between_the_sender_timeout_and_the_queue_visibility():
    """The sender derives its stale window from the outbound queue (2/3 of its visibility timeout):
    longer than the send_replies function can run, shorter than SQS waits before redelivering."""
    import json

    template = yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=yaml.BaseLoader)
    visibility = int(template["Resources"]["OutboundQueue"]["Properties"]["VisibilityTimeout"])
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage, settings in config["stages"].items():
        function = settings.get("lambda_functions", {}).get("send_replies", {})
        timeout = int(function.get("lambda_timeout", settings.get("lambda_timeout", config.get("lambda_timeout", 60))))
        assert timeout < visibility * 2 // 3 < visibility, stage
