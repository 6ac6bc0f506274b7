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
    subprocess.run([str(BIN / "chalice"), "package", "--stage", "prod", "--merge-template",
                    "infra/template.yaml", str(tmp_path)], cwd=ROOT, env=env, check=True, capture_output=True)
    lint = subprocess.run([str(BIN / "cfn-lint"), str(tmp_path / "sam.yaml")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    template = yaml.load((tmp_path / "sam.yaml").read_text(), Loader=yaml.BaseLoader)
    resources = template["Resources"]
    # The pipeline's functions and the stateful resources are in one deployable template.
    for name in ("FetchMentions", "TriageMentions", "AssignCases", "SendReplies", "CasesTable", "OutboundDeadLetterQueue"):
        assert name in resources, f"{name} missing from the package"
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["SOCIALCARE_STAGE"] == "prod"

    shipped = {name.split("/")[0] for name in zipfile.ZipFile(tmp_path / "deployment.zip").namelist()}
    # Runtime dependencies stay small: no test tools, and boto3 comes with the Lambda runtime.
    assert not shipped & {"moto", "pytest", "boto3", "botocore", "cfn_lint"}
