"""X OAuth 2.0 token refresh against the fake X over real HTTP: rotation, expiry, refusals,
the platform clients picking up a rotated token, and the scheduled handler on moto."""
from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from chalicelib.adapters.platforms.clients import LazyPlatformClients
from chalicelib.adapters.platforms.x import XAuthError, XClient, XTransientError
from chalicelib.adapters.platforms.x_oauth import XOAuthClient, XTokenRefused, authorize_url, pkce_pair
from chalicelib.domain.errors import AuthFailed, TransientFailure
from chalicelib.services import credentials
from local.fake_x import FakeX
from tests.fakes import Clock, fake_deps

BEARER = "app-bearer"
CLIENT_ID = "socialcare-x-client"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake(clock):
    server = FakeX(bearer_token=BEARER, oauth_client_id=CLIENT_ID, clock=clock).start()
    server.add_user("kana_t", id="42")
    yield server
    server.stop()


def customer_post(fake: FakeX) -> str:
    return fake.add_post("kana_t", f"@{fake.brand_handle} where is my bag?")["id"]


def test_each_refresh_rotates_the_refresh_token_and_a_spent_one_is_refused(fake):
    oauth = XOAuthClient(fake.url)
    first = fake.issue_refresh_token()

    grant = oauth.refresh(first, client_id=CLIENT_ID)

    assert grant.access_token and grant.refresh_token and grant.refresh_token != first
    assert grant.expires_in == 7200
    with pytest.raises(XTokenRefused) as refused:
        oauth.refresh(first, client_id=CLIENT_ID)  # spent by the first refresh
    assert isinstance(refused.value, AuthFailed) and refused.value.error == "invalid_grant"
    assert oauth.refresh(grant.refresh_token, client_id=CLIENT_ID).refresh_token != grant.refresh_token
    assert "access_token" not in repr(grant) and grant.access_token not in repr(grant)


def test_the_access_token_acts_as_the_brand_until_it_expires(fake, clock):
    grant = XOAuthClient(fake.url).refresh(fake.issue_refresh_token(), client_id=CLIENT_ID)
    x = XClient(fake.url, BEARER, grant.access_token)
    assert x.reply(customer_post(fake), "Sorry, we are looking into it.")

    clock.now += 7201
    with pytest.raises(XAuthError):
        x.reply(customer_post(fake), "Still looking.")


def test_a_confidential_client_must_authenticate_with_basic_auth(clock):
    with FakeX(bearer_token=BEARER, oauth_client_id=CLIENT_ID, oauth_client_secret="shh", clock=clock) as fake:
        token = fake.issue_refresh_token()
        with pytest.raises(XTokenRefused, match="401"):
            XOAuthClient(fake.url).refresh(token, client_id=CLIENT_ID)
        assert XOAuthClient(fake.url).refresh(token, client_id=CLIENT_ID, client_secret="shh").access_token


def test_an_outage_is_transient_and_does_not_spend_the_refresh_token(fake):
    token = fake.issue_refresh_token()
    fake.fail_next("/2/oauth2/token", 503)
    with pytest.raises(XTransientError) as failure:
        XOAuthClient(fake.url).refresh(token, client_id=CLIENT_ID)
    assert isinstance(failure.value, TransientFailure)
    assert XOAuthClient(fake.url).refresh(token, client_id=CLIENT_ID).access_token


def test_the_first_tokens_come_from_the_pkce_code_exchange(fake):
    verifier, challenge = pkce_pair()
    url = authorize_url(CLIENT_ID, "http://127.0.0.1:8765/callback", state="st4te", code_challenge=challenge)
    assert url.startswith("https://x.com/i/oauth2/authorize?") and "offline.access" in url.replace("%20", " ")
    code = fake.authorize("http://127.0.0.1:8765/callback", challenge)
    with pytest.raises(XTokenRefused):
        XOAuthClient(fake.url).exchange_code(code, redirect_uri="http://127.0.0.1:8765/callback",
                                             code_verifier="not-the-verifier", client_id=CLIENT_ID)
    code = fake.authorize("http://127.0.0.1:8765/callback", challenge)
    grant = XOAuthClient(fake.url).exchange_code(code, redirect_uri="http://127.0.0.1:8765/callback",
                                                 code_verifier=verifier, client_id=CLIENT_ID)
    assert grant.access_token and grant.refresh_token


class SecretStore:
    def __init__(self, values: Dict[str, Any]):
        self.values = values

    def read(self) -> Dict[str, Any]:
        return dict(self.values)

    def update(self, changes: Dict[str, Any]) -> None:
        self.values.update(changes)

    def __call__(self) -> Dict[str, Any]:  # what the platform clients read
        return dict(self.values)


def test_unattended_refreshes_keep_replies_working_for_hours_without_a_redeploy(fake, clock):
    """The scheduled service against the fake X; the platform clients pick up each rotated token."""
    grant = XOAuthClient(fake.url).refresh(fake.issue_refresh_token(), client_id=CLIENT_ID)
    secret = SecretStore({"x_bearer_token": BEARER, "x_user_token": grant.access_token,
                          "x_refresh_token": grant.refresh_token, "x_client_id": CLIENT_ID,
                          "x_user_token_expires_at": str(int(clock.now) + grant.expires_in)})
    test_clock = Clock()
    deps = fake_deps(test_clock)
    deps.epoch = clock  # the service and the fake X share one clock
    deps.settings.put_source({"source_id": "x:dm:1", "kind": "x_dm", "platform": "x", "state": "ok"})
    platforms = LazyPlatformClients(fake.url, "http://graph.invalid", secret)
    oauth = XOAuthClient(fake.url)

    assert platforms.x().reply(customer_post(fake), "First answer.")
    for _ in range(10):  # five hours of runs, every 30 minutes
        clock.now += 30 * 60
        result = credentials.refresh_x_token(deps, secret, oauth)
        assert result["outcome"] in ("fresh", "refreshed"), result
        assert platforms.x().reply(customer_post(fake), f"Answer at {clock.now}.")
    assert sum(1 for r in fake.requests if r["path"] == "/2/oauth2/token") >= 3
    assert deps.settings.get_source("x:dm:1")["state"] == "ok"

    # Someone restores an old copy of the secret: its refresh token is spent, X refuses it.
    secret.values["x_refresh_token"] = grant.refresh_token
    secret.values["x_user_token_expires_at"] = "0"
    assert credentials.refresh_x_token(deps, secret, oauth)["outcome"] == "refused"
    assert deps.settings.get_source("x:dm:1")["state"] == "needs_attention"


def test_platform_clients_are_rebuilt_when_the_secret_changes_and_kept_otherwise():
    values = {"x_bearer_token": "app", "x_user_token": "one", "meta_access_token": "m1"}
    platforms = LazyPlatformClients("http://x.invalid", "http://graph.invalid", lambda: dict(values))
    x1, graph1 = platforms.x(), platforms.graph()
    assert platforms.x() is x1 and platforms.graph() is graph1
    values["x_user_token"] = "two"
    x2 = platforms.x()
    assert x2 is not x1 and x2._user_token == "two"
    assert platforms.graph() is graph1  # the Meta token did not change
    values["meta_access_token"] = "m2"
    assert platforms.graph() is not graph1


@pytest.fixture
def x_oauth_server(monkeypatch):
    clock = FakeClock()
    server = FakeX(bearer_token=BEARER, oauth_client_id=CLIENT_ID, clock=clock).start()
    monkeypatch.setenv("X_API_BASE_URL", server.url)
    yield server
    server.stop()


def test_the_scheduled_handler_refreshes_the_token_in_the_secret(x_oauth_server, app_module):
    """app.refresh_x_token on moto: Secrets Manager holds the rotated pair, other values kept."""
    import boto3

    from local.lambda_events import LambdaContext, scheduled_event

    secrets_manager = boto3.client("secretsmanager", region_name="us-east-1")
    first = x_oauth_server.issue_refresh_token()
    before = json.loads(secrets_manager.get_secret_value(SecretId="socialcare-test/platforms")["SecretString"])
    secrets_manager.put_secret_value(SecretId="socialcare-test/platforms", SecretString=json.dumps(
        {**before, "x_client_id": CLIENT_ID, "x_refresh_token": first, "x_user_token": "old"}))
    event = scheduled_event("socialcare-test-refresh_x_token", "us-east-1")

    result = app_module.refresh_x_token(event, LambdaContext("socialcare-test-refresh_x_token", "us-east-1"))

    after = json.loads(secrets_manager.get_secret_value(SecretId="socialcare-test/platforms")["SecretString"])
    assert result["outcome"] == "refreshed"
    assert after["x_refresh_token"] not in ("", first) and after["x_user_token"] != "old"
    assert int(after["x_user_token_expires_at"]) == result["expires_at"]
    assert after["meta_app_secret"] == before["meta_app_secret"]
    # This container's X client uses the new token at once (its cached secret was dropped).
    from chalicelib.bootstrap import deps

    assert deps().platforms.x()._user_token == after["x_user_token"]
    # The next run finds the token fresh and leaves the secret alone.
    assert app_module.refresh_x_token(event, LambdaContext("socialcare-test-refresh_x_token", "us-east-1"))[
        "outcome"] == "fresh"
