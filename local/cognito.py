"""A Cognito user pool and a signed-in demo agent, for the local demo and tests.

Works against moto (in-process or server mode) and against real Cognito: the
app client allows the admin password flow, which both support, so no SRP is
needed to get a token.
"""
from __future__ import annotations

from typing import Any, Tuple

# Both flows are enabled so a browser-style USER_PASSWORD_AUTH client works too.
DEMO_AUTH_FLOWS = [
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
]


def create_demo_pool(cognito_client: Any, pool_name: str) -> Tuple[str, str]:
    """Create a user pool and a secretless app client; returns (pool_id, client_id)."""
    pool = cognito_client.create_user_pool(
        PoolName=pool_name,
        # Agents are created by an admin, never by signing themselves up.
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )["UserPool"]
    client = cognito_client.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName=f"{pool_name}-agents",
        # A client secret would need a SECRET_HASH on every auth call.
        GenerateSecret=False,
        ExplicitAuthFlows=DEMO_AUTH_FLOWS,
    )["UserPoolClient"]
    return pool["Id"], client["ClientId"]


def issue_token(cognito_client: Any, pool_id: str, client_id: str,
                username: str, password: str) -> str:
    """Make sure the agent exists with this password and return a fresh ID token."""
    _ensure_confirmed_user(cognito_client, pool_id, username, password)
    response = cognito_client.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    if "AuthenticationResult" not in response:
        raise RuntimeError(f"sign-in for {username} ended in challenge {response.get('ChallengeName')}")
    return response["AuthenticationResult"]["IdToken"]


def _ensure_confirmed_user(cognito_client: Any, pool_id: str, username: str, password: str) -> None:
    try:
        cognito_client.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            MessageAction="SUPPRESS",  # no invitation email for a demo agent
        )
    except cognito_client.exceptions.UsernameExistsException:
        pass  # re-running the demo reuses the agent
    # A permanent password skips the NEW_PASSWORD_REQUIRED challenge that an
    # admin-created user would otherwise get on first sign-in.
    cognito_client.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=password, Permanent=True,
    )
