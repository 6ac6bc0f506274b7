"""infra/admin.py on moto: the first supervisor in one command, a token for the API's curl examples,
platform secrets set without a shell history, and the X account connected with OAuth 2.0 (PKCE)."""
from __future__ import annotations

import base64
import io
import json
import shutil
import sys
import urllib.parse
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))
import admin  # noqa: E402

REGION = "us-east-1"
PASSWORD = "Temporary-passw0rd!"
NEW_PASSWORD = "Chosen-by-aiko-2026!"


@pytest.fixture
def project(tmp_path, app_module):
    """A checkout whose stage 'test' config holds the pool ids, as `make deploy` writes them."""
    import os

    (tmp_path / ".chalice").mkdir()
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"]["test"] = {"environment_variables": {
        "SOCIALCARE_STAGE": "test", "USER_POOL_ID": os.environ["USER_POOL_ID"],
        "USER_POOL_CLIENT_ID": os.environ["USER_POOL_CLIENT_ID"]}}
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    return tmp_path


def run(project, *argv, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    code = admin.main(list(argv), project_dir=project, console=admin.Console(io.StringIO(stdin), out, err))
    return code, out.getvalue(), err.getvalue()


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_first_supervisor_signs_in_and_uses_the_api(project, client):
    code, _, said = run(project, "create-supervisor", "--stage", "test", "--username", "aiko",
                        "--email", "aiko@example.com", "--name", "Aiko Tanaka", "--teams", "support,vip",
                        "--temporary-password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, said
    pool_id = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["test"][
        "environment_variables"]["USER_POOL_ID"]
    user = boto3.client("cognito-idp", region_name=REGION).admin_get_user(UserPoolId=pool_id, Username="aiko")
    assert {"Name": "email", "Value": "aiko@example.com"} in user["UserAttributes"]
    from chalicelib.bootstrap import deps

    agent = deps().settings.get_agent("aiko")
    assert agent.role == "supervisor" and agent.teams == ["support", "vip"] and agent.name == "Aiko Tanaka"

    # First sign-in: Cognito asks for a new password (NEW_PASSWORD_REQUIRED); stdout is only the token.
    code, token, said = run(project, "login", "--stage", "test", "--username", "aiko",
                            stdin=f"{PASSWORD}\n{NEW_PASSWORD}\n")
    assert code == 0, said
    assert "new password" in said.lower()
    token = token.strip()
    assert claims(token)["cognito:username"] == "aiko" and claims(token)["token_use"] == "id"
    headers = {"Authorization": f"Bearer {token}"}
    assert client.http.get("/cases", headers=headers).status_code == 200
    assert client.http.get("/admin/triage-rules", headers=headers).status_code == 200  # a supervisor's route

    # Later sign-ins use the new password; the old one is refused with a clear message.
    code, token, _ = run(project, "login", "--stage", "test", "--username", "aiko", stdin=NEW_PASSWORD + "\n")
    assert code == 0 and claims(token.strip())["cognito:username"] == "aiko"
    code, token, said = run(project, "login", "--stage", "test", "--username", "aiko", stdin=PASSWORD + "\n")
    assert code == 1 and token == "" and "wrong username or password" in said


def test_creating_the_supervisor_again_keeps_the_user_and_mends_the_record(project, app_module):
    from chalicelib.bootstrap import deps

    argv = ["create-supervisor", "--stage", "test", "--username", "ken", "--email", "ken@example.com",
            "--temporary-password-stdin"]
    assert run(project, *argv, stdin=PASSWORD + "\n")[0] == 0
    deps().settings.adjust_open_cases("ken", +1, at="2026-11-23T03:00:00Z")
    code, _, said = run(project, *argv, stdin=PASSWORD + "\n")
    assert code == 0 and "exists already" in said
    agent = deps().settings.get_agent("ken")
    assert agent.role == "supervisor" and agent.open_cases == 1  # its load is not reset


def test_bad_input_is_refused_before_anything_is_created(project, app_module):
    from chalicelib.bootstrap import deps

    code, _, said = run(project, "create-supervisor", "--stage", "test", "--username", "bad#name",
                        "--email", "x@example.com", "--temporary-password-stdin", stdin=PASSWORD + "\n")
    assert code == 1 and "'#'" in said
    assert deps().settings.get_agent("bad#name") is None


def test_a_stage_without_a_pool_says_to_deploy_first(tmp_path, aws):
    (tmp_path / ".chalice").mkdir()
    shutil.copy(ROOT / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    code, _, said = run(tmp_path, "login", "--stage", "prod", "--username", "aiko", stdin="x\n")
    assert code == 1 and "make deploy STAGE=prod" in said


def test_set_secret_merges_values_into_the_platform_secret(project):
    code, out, said = run(project, "set-secret", "--stage", "test", "meta_verify_token", "x_bearer_token",
                          stdin="verify-1234567890\nbearer-abc\n")
    assert code == 0, said
    assert "verify-1234567890" not in out + said  # values are never echoed
    stored = json.loads(boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId="socialcare-test/platforms")["SecretString"])
    assert stored["meta_verify_token"] == "verify-1234567890" and stored["x_bearer_token"] == "bearer-abc"
    assert stored["meta_app_secret"] == "app-secret"  # the rest is kept
    code, _, said = run(project, "set-secret", "--stage", "test", "x_bearer_tokn", stdin="v\n")
    assert code == 1 and "unknown secret key" in said and "x_bearer_token" in said


def test_connect_x_stores_tokens_that_the_scheduled_refresh_then_rotates(project, monkeypatch):
    from local.fake_x import FakeX

    with FakeX(oauth_client_id="xclient", oauth_client_secret="xsecret") as fake:
        config = json.loads((project / ".chalice" / "config.json").read_text())
        config["stages"]["test"]["environment_variables"]["X_API_BASE_URL"] = fake.url
        (project / ".chalice" / "config.json").write_text(json.dumps(config))
        redirect = "https://brand.example/x-callback"

        class Browser(io.StringIO):
            """Plays the person: opens the printed URL, authorizes, pastes the redirect address."""

            def __init__(self, out):
                super().__init__()
                self.out = out
                self.answers = ["xsecret\n"]

            def readline(self, *args):
                if not self.answers:
                    query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.out.getvalue().strip()).query)
                    assert query["redirect_uri"] == [redirect] and "offline.access" in query["scope"][0]
                    code = fake.authorize(redirect, query["code_challenge"][0])
                    return f"{redirect}?state={query['state'][0]}&code={code}\n"
                return self.answers.pop(0)

        out, err = io.StringIO(), io.StringIO()
        code = admin.main(["connect-x", "--stage", "test", "--client-id", "xclient", "--redirect-uri", redirect,
                           "--confidential"], project_dir=project, console=admin.Console(Browser(out), out, err))
        assert code == 0, err.getvalue()
        stored = json.loads(boto3.client("secretsmanager", region_name=REGION).get_secret_value(
            SecretId="socialcare-test/platforms")["SecretString"])
        assert stored["x_client_id"] == "xclient" and stored["x_client_secret"] == "xsecret"
        assert stored["x_user_token"].startswith("at-") and stored["x_refresh_token"].startswith("rt-")

        # The scheduled refresh can use what connect-x stored (confidential client, Basic auth).
        from chalicelib.adapters.platforms.x_oauth import XOAuthClient

        grant = XOAuthClient(fake.url).refresh(stored["x_refresh_token"], client_id="xclient", client_secret="xsecret")
        assert grant.refresh_token != stored["x_refresh_token"]


def test_an_agent_is_created_the_same_way_without_supervisor_rights(project, client):
    code, _, said = run(project, "create-agent", "--stage", "test", "--username", "mika", "--email",
                        "mika@example.com", "--teams", "vip", "--temporary-password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, said
    code, token, said = run(project, "login", "--stage", "test", "--username", "mika",
                            stdin=f"{PASSWORD}\n{NEW_PASSWORD}\n")
    assert code == 0, said
    headers = {"Authorization": f"Bearer {token.strip()}"}
    assert client.http.get("/cases", headers=headers).status_code == 200
    assert client.http.get("/admin/triage-rules", headers=headers).status_code == 403


def test_url_prints_the_function_url_agents_and_meta_use_and_says_to_deploy_before_there_is_one(project):
    """`admin.py url` is the address of the README's curl examples and of Meta's callback: the API
    function's URL (infra/deploy.py creates it), or a clear error before the first deploy."""
    code, out, said = run(project, "url", "--stage", "test")
    assert code == 1 and out == "" and "make deploy STAGE=test" in said

    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="api-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    zipped = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    lam.create_function(FunctionName="socialcare-test", Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": zipped.getvalue()})
    created = lam.create_function_url_config(FunctionName="socialcare-test", AuthType="NONE")["FunctionUrl"]

    code, out, said = run(project, "url", "--stage", "test")
    assert code == 0 and out.strip() == created.rstrip("/") + "/"
