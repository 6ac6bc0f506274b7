"""Shared fixtures: moto in-process, provisioned from the real infra template."""
from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


def _parse_each_template_once() -> None:
    """moto's CloudFormation parses the template with PyYAML's pure-Python loader on every stack: with
    infra/template.yaml at its size that is most of a fixture's time, once per test. Parse each text
    once per session and hand every stack its own copy (moto may change what it is given)."""
    import copy

    from moto.cloudformation.models import Stack

    parse = Stack.parse_template
    parsed: dict = {}

    def parse_once(template: str) -> dict:
        if template not in parsed:
            parsed[template] = parse(template)
        return copy.deepcopy(parsed[template])

    Stack.parse_template = staticmethod(parse_once)  # type: ignore[method-assign]


_parse_each_template_once()


def moto_public_jwks() -> dict:
    data = resources.files("moto.cognitoidp").joinpath("resources/jwks-public.json.gz").read_bytes()
    return json.loads(gzip.decompress(data))


def reset_caches() -> None:
    from chalicelib.adapters import aws, queues
    from chalicelib.bootstrap import deps
    from chalicelib.config import settings
    from chalicelib.entrypoints import http as http_api

    settings.cache_clear()
    aws.reset_clients()
    queues.queue_url.cache_clear()
    queues._delivery_policy.cache_clear()
    deps.cache_clear()
    http_api._verifier.clear()


@pytest.fixture
def aws(monkeypatch):
    """An empty AWS account (moto) with socialcare's stack for stage 'test'."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "SOCIALCARE_STAGE": "test",
        "SQS_REPORT_BATCH_ITEM_FAILURES": "true",
        "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
        "X_BRAND_USER_ID": "1500000000000000001",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        reset_caches()
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="socialcare-test", TemplateBody=(ROOT / "infra" / "template.yaml").read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": "test"}],
        )
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="socialcare-test/platforms",
            SecretString=json.dumps({"x_bearer_token": "t", "meta_app_secret": "app-secret",
                                     "meta_verify_token": "verify-me", "meta_access_token": "m"}),
        )
        yield
        reset_caches()


class Agents:
    """Cognito users registered as agents, with real (moto-issued) tokens."""

    def __init__(self, pool_id, client_id):
        import boto3

        self.cognito = boto3.client("cognito-idp", region_name=REGION)
        self.pool_id, self.client_id = pool_id, client_id

    def add(self, agent_id, teams, **extra):
        from chalicelib.bootstrap import deps
        from chalicelib.domain.agent import Agent
        from local.cognito import issue_token

        deps().settings.put_agent(Agent(agent_id=agent_id, name=agent_id.title(), teams=teams, **extra))
        token = issue_token(self.cognito, self.pool_id, self.client_id, agent_id, "Test-passw0rd!")
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app_module(aws, monkeypatch):
    """app.py loaded as Lambda would load it, with the agent pool set up."""
    import boto3

    from chalicelib.entrypoints import http as http_api
    from chalicelib.entrypoints.auth import TokenVerifier, cognito_issuer
    from local.cognito import create_demo_pool
    from local.stack import load_app

    pool_id, client_id = create_demo_pool(boto3.client("cognito-idp", region_name=REGION), "socialcare-test-agents")
    monkeypatch.setenv("USER_POOL_ID", pool_id)
    monkeypatch.setenv("USER_POOL_CLIENT_ID", client_id)
    reset_caches()
    # In-process moto has no HTTP endpoint for the keys: hand the verifier moto's public JWKS.
    http_api._verifier["v"] = TokenVerifier(
        jwks_url="http://moto.invalid/jwks.json", issuer=cognito_issuer(REGION, pool_id), client_id=client_id,
        fetch_jwks=lambda url: moto_public_jwks(),
    )
    module = load_app()
    module.agents = Agents(pool_id, client_id)
    return module


@pytest.fixture
def client(app_module):
    from chalice.test import Client

    with Client(app_module.app) as test_client:
        yield test_client
