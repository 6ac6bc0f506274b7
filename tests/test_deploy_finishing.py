"""The deploy steps moto's server cannot reach (its API import fails first), on recording clients:
log groups before `chalice deploy`; stage throttling and cost allocation tags after it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
import deploy  # noqa: E402


class Recorder:
    """Any AWS client: records each call; answers the few reads the steps make."""

    def __init__(self, calls, service):
        self.calls, self.service = calls, service

    def __getattr__(self, operation):
        def call(**kwargs):
            self.calls.append((self.service, operation, kwargs))
            if operation == "get_event_source_mapping":
                return {"EventSourceMappingArn": f"arn:aws:lambda:us-east-1:123456789012:event-source-mapping:{kwargs['UUID']}"}
            if operation == "describe_rule":
                return {"Arn": f"arn:aws:events:us-east-1:123456789012:rule/{kwargs['Name']}"}
            return {}
        return call


class Session:
    region_name = "us-east-1"

    def __init__(self):
        self.calls = []

    def client(self, service, region_name=None):
        return Recorder(self.calls, service)


@pytest.fixture
def project(tmp_path):
    (tmp_path / ".chalice" / "deployed").mkdir(parents=True)
    (tmp_path / ".chalice" / "config.json").write_text((ROOT / ".chalice" / "config.json").read_text())
    (tmp_path / ".chalice" / "deployed" / "prod.json").write_text(json.dumps({"resources": [
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "abc123", "rest_api_url": "https://x/api/"},
        {"name": "send_replies_role", "resource_type": "iam_role", "role_name": "socialcare-prod-send_replies"},
        {"name": "send_replies-sqs-event-source", "resource_type": "sqs_event", "event_uuid": "u-1"},
        {"name": "fetch_mentions-event", "resource_type": "cloudwatch_event",
         "rule_name": "socialcare-prod-fetch_mentions-event"},
    ]}))
    return tmp_path


def test_after_chalice_the_api_is_throttled_and_everything_tagged(project):
    session = Session()
    done = deploy.Deployment(stage="prod", session=session, project_dir=project, out=lambda line: None) \
        .stage_settings_and_tags()
    operations = {(service, operation) for service, operation, _ in session.calls}
    assert ("apigateway", "update_stage") in operations
    [stage] = [kw for s, op, kw in session.calls if op == "update_stage"]
    assert {p["path"]: p["value"] for p in stage["patchOperations"]} == {
        "/*/*/throttling/rateLimit": "50", "/*/*/throttling/burstLimit": "100"}
    tagged = [kw for s, op, kw in session.calls if op in ("tag_resource", "tag_role")]
    assert len(tagged) == 4 and len(done["tagged"]) == 4
    for kwargs in tagged:
        tags = kwargs.get("tags") or kwargs.get("Tags")
        pairs = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}
        assert pairs["project"] == "socialcare" and pairs["stage"] == "prod" and pairs["component"]


def test_before_chalice_every_function_has_its_log_group_with_retention(project):
    session = Session()
    groups = deploy.Deployment(stage="prod", session=session, project_dir=project, out=lambda line: None) \
        .prepare_log_groups()
    assert "/aws/lambda/socialcare-prod" in groups  # the API's, which Chalice names otherwise
    retention = [kw for s, op, kw in session.calls if op == "put_retention_policy"]
    assert len(retention) == len(groups) and all(kw["retentionInDays"] == 30 for kw in retention)
