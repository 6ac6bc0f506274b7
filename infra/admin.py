"""One-command administration of a deployed stage: people, tokens and platform credentials.

    python infra/admin.py create-supervisor --stage prod --username aiko --email aiko@example.com [--name "Aiko Tanaka"]
    python infra/admin.py create-agent --stage prod --username ken --email ken@example.com --teams support
    python infra/admin.py login --stage prod --username aiko          # prints an ID token for the API
    python infra/admin.py set-secret --stage prod meta_verify_token meta_app_secret ...
    python infra/admin.py connect-x --stage prod --client-id <X OAuth 2.0 client id> --redirect-uri <URL>

Passwords and secret values are asked for (not echoed) on a terminal, or read
one per line from standard input when it is not one, so they never appear in
the shell history or the process list. Prompts go to standard error: `login`
prints only the token, for `export AGENT_TOKEN=$(python infra/admin.py login ...)`.

The pool, app client, settings table and secret of a stage come from the
stack ``socialcare-<stage>`` (its outputs), else from the stage's settings in
.chalice/config.json, as `make deploy` wrote them.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets as random_tokens
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
APP = "socialcare"
PLACEHOLDER = "REPLACE_WITH"
# The platform secret's keys (a JSON object), with what each is for.
SECRET_KEYS = {
    "x_bearer_token": "X app-only bearer token (mentions and search polling)",
    "x_user_token": "X OAuth 2.0 user access token (replies, DMs); kept fresh by refresh_x_token",
    "x_refresh_token": "X OAuth 2.0 refresh token (rotated on every refresh)",
    "x_user_token_expires_at": "when x_user_token expires (unix seconds)",
    "x_client_id": "X OAuth 2.0 client id",
    "x_client_secret": "X OAuth 2.0 client secret (confidential clients only)",
    "meta_access_token": "Meta page access token (Graph API)",
    "meta_app_secret": "Meta app secret (webhook signatures)",
    "meta_verify_token": "Meta webhook verify token (any long random string you also give Meta)",
}


class AdminError(Exception):
    """The command stopped; the message says why and what to do."""


@dataclass
class Stage:
    name: str
    region: str
    user_pool_id: str
    client_id: str
    settings_table: str
    secret_id: str
    x_api_base_url: str


def _usable(value: Any) -> str:
    return value if isinstance(value, str) and value and PLACEHOLDER not in value else ""


def resolve_stage(name: str, session: Any, project_dir: Path) -> Stage:
    outputs: Dict[str, str] = {}
    try:
        stack = session.client("cloudformation").describe_stacks(StackName=f"{APP}-{name}")["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    except Exception as err:
        if "does not exist" not in str(err):
            raise
    environment: Dict[str, Any] = {}
    config_path = project_dir / ".chalice" / "config.json"
    if config_path.exists():
        config = json.loads(config_path.read_text())
        environment = {**config.get("environment_variables", {}),
                       **config.get("stages", {}).get(name, {}).get("environment_variables", {})}
    return Stage(
        name=name, region=session.region_name or "us-east-1",
        user_pool_id=_usable(outputs.get("UserPoolId")) or _usable(environment.get("USER_POOL_ID")),
        client_id=_usable(outputs.get("UserPoolClientId")) or _usable(environment.get("USER_POOL_CLIENT_ID")),
        settings_table=(_usable(outputs.get("SettingsTableName")) or _usable(environment.get("SETTINGS_TABLE"))
                        or f"{APP}-{name}-settings"),
        secret_id=_usable(environment.get("PLATFORM_SECRET_ID")) or f"{APP}-{name}/platforms",
        x_api_base_url=_usable(environment.get("X_API_BASE_URL")) or "https://api.x.com",
    )


def _need_pool(stage: Stage) -> None:
    if not stage.user_pool_id or not stage.client_id:
        raise AdminError(f"stage {stage.name} has no user pool yet (no UserPoolId/UserPoolClientId output on stack "
                         f"{APP}-{stage.name}, none in .chalice/config.json): run `make deploy STAGE={stage.name}` first")


class Console:
    """Where answers come from and where words go; a terminal, or pipes in scripts and tests."""

    def __init__(self, stdin: Optional[IO[str]] = None, out: Optional[IO[str]] = None,
                 err: Optional[IO[str]] = None):
        self.stdin = stdin or sys.stdin
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def say(self, text: str) -> None:
        print(text, file=self.err)

    def result(self, text: str) -> None:
        print(text, file=self.out)

    def ask(self, prompt: str, *, hidden: bool = True) -> str:
        if self.stdin.isatty():
            answer = getpass.getpass(prompt, stream=self.err) if hidden else input(prompt)
        else:
            self.err.write(prompt)
            self.err.flush()
            line = self.stdin.readline()
            if not line:
                raise AdminError(f"no answer on standard input for: {prompt.strip()}")
            answer = line.rstrip("\r\n")
            self.err.write("\n")
        if not answer:
            raise AdminError(f"empty answer for: {prompt.strip()}")
        return answer

    def new_password(self, prompt: str = "New password: ") -> str:
        password = self.ask(prompt)
        if self.stdin.isatty() and self.ask("Repeat it: ") != password:
            raise AdminError("the two passwords differ")
        return password


# ---- people ------------------------------------------------------------------------------

def create_supervisor(stage: Stage, cognito: Any, console: Console, *, username: str, email: str, name: str,
                      teams: List[str], capacity: int, temporary_password: Optional[str],
                      role: str = "supervisor") -> Dict[str, Any]:
    """The Cognito user and its agent record (a supervisor's by default), together; running it again
    changes nothing else (an existing agent keeps its open-case count)."""
    _need_pool(stage)
    from chalicelib.adapters.stores import DynamoSettingsStore
    from chalicelib.domain.agent import validate_agent, validate_agent_id
    from chalicelib.domain.errors import BadRequest

    if "@" not in email or email.strip() != email or len(email) > 254:
        raise AdminError(f"--email {email!r} is not an email address")
    store = DynamoSettingsStore(stage.settings_table)
    try:
        validate_agent_id(username)
        agent = validate_agent(username, {"name": name or username, "teams": teams, "capacity": capacity,
                                          "role": role, "available": True}, store.get_agent(username))
    except BadRequest as err:
        raise AdminError(str(err)) from err
    arguments: Dict[str, Any] = dict(
        UserPoolId=stage.user_pool_id, Username=username,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        DesiredDeliveryMediums=["EMAIL"])
    if temporary_password:  # handed over by the person running this, not emailed
        arguments.update(TemporaryPassword=temporary_password, MessageAction="SUPPRESS")
    try:
        cognito.admin_create_user(**arguments)
        created = True
        console.say(f"Cognito user {username} created in {stage.user_pool_id}"
                    + ("" if temporary_password else f"; Cognito emails {email} a temporary password"))
    except cognito.exceptions.UsernameExistsException:
        created = False
        console.say(f"Cognito user {username} exists already; its {role} record is made sure of")
    store.put_agent(agent)
    console.say(f"agent {username}: {role} of {', '.join(agent.teams)} (table {stage.settings_table})")
    console.say(f"next: python infra/admin.py login --stage {stage.name} --username {username}")
    return {"username": username, "created": created, "teams": agent.teams}


def login(stage: Stage, cognito: Any, console: Console, *, username: str) -> str:
    """An ID token for the API (USER_PASSWORD_AUTH); sets a new password when Cognito asks for one."""
    _need_pool(stage)
    password = console.ask(f"Password for {username}: ")
    try:
        answer = cognito.initiate_auth(ClientId=stage.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                       AuthParameters={"USERNAME": username, "PASSWORD": password})
        while "AuthenticationResult" not in answer:
            challenge = answer.get("ChallengeName")
            if challenge != "NEW_PASSWORD_REQUIRED":
                raise AdminError(f"sign-in needs {challenge}, which this command does not handle")
            console.say("This is the first sign-in: choose a new password (at least 12 characters).")
            answer = cognito.respond_to_auth_challenge(
                ClientId=stage.client_id, ChallengeName=challenge, Session=answer["Session"],
                ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": console.new_password()})
    except (cognito.exceptions.NotAuthorizedException, cognito.exceptions.UserNotFoundException) as err:
        raise AdminError(f"sign-in refused: wrong username or password ({_message(err)})") from err
    except cognito.exceptions.InvalidPasswordException as err:
        raise AdminError(f"the new password was refused: {_message(err)}") from err
    except cognito.exceptions.InvalidParameterException as err:
        if "USER_PASSWORD_AUTH" in str(err):
            raise AdminError(f"the app client {stage.client_id} does not allow USER_PASSWORD_AUTH; infra/template.yaml "
                             f"enables it (ExplicitAuthFlows): run `make deploy STAGE={stage.name}`") from err
        raise
    return str(answer["AuthenticationResult"]["IdToken"])


def _message(err: Exception) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Message") or err)


# ---- platform credentials -------------------------------------------------------------------

def set_secret(stage: Stage, console: Console, keys: Sequence[str]) -> List[str]:
    unknown = [key for key in keys if key not in SECRET_KEYS]
    if unknown:
        raise AdminError(f"unknown secret key(s) {', '.join(unknown)}; the keys are:\n  "
                         + "\n  ".join(f"{k}: {v}" for k, v in SECRET_KEYS.items()))
    values = {key: console.ask(f"{key} ({SECRET_KEYS[key]}): ") for key in keys}
    from chalicelib.adapters.secrets import PlatformSecrets

    PlatformSecrets(stage.secret_id).update(values)
    console.say(f"{stage.secret_id}: set {', '.join(keys)}; the functions pick it up within 5 minutes, no deploy")
    return list(keys)


def connect_x(stage: Stage, console: Console, *, client_id: str, redirect_uri: str, confidential: bool) -> int:
    """Authorize the brand's X account (OAuth 2.0 with PKCE) and store the tokens the refresher keeps fresh."""
    from chalicelib.adapters.platforms.x_oauth import XOAuthClient, authorize_url, pkce_pair
    from chalicelib.adapters.secrets import PlatformSecrets
    from chalicelib.domain.clock import now_iso
    from chalicelib.domain.errors import PlatformError

    client_secret = console.ask("X OAuth 2.0 client secret: ") if confidential else ""
    verifier, challenge = pkce_pair()
    state = random_tokens.token_urlsafe(16)
    console.say("1. Open this URL signed in as the brand's X account and authorize the app:")
    console.result(authorize_url(client_id, redirect_uri, state=state, code_challenge=challenge))
    console.say(f"2. X sends your browser to {redirect_uri}?state=...&code=... (the page may not load: that is fine).")
    answer = console.ask("Paste that whole address here: ", hidden=False)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer).query)
    if query.get("error"):
        raise AdminError(f"X did not authorize the app: {query['error'][0]}")
    if query.get("state", [""])[0] != state:
        raise AdminError("the address is not the answer to this authorization (state differs); run connect-x again")
    code = query.get("code", [""])[0]
    if not code:
        raise AdminError("the address has no code=...; paste the whole address X redirected to")
    import time

    try:
        grant = XOAuthClient(stage.x_api_base_url).exchange_code(
            code, redirect_uri=redirect_uri, code_verifier=verifier, client_id=client_id, client_secret=client_secret)
    except PlatformError as err:
        raise AdminError(f"X refused the code: {err}") from err
    if not grant.refresh_token:
        raise AdminError("X issued no refresh token: the app must request the offline.access scope")
    expires_at = int(time.time()) + grant.expires_in
    values = {"x_client_id": client_id, "x_user_token": grant.access_token, "x_refresh_token": grant.refresh_token,
              "x_user_token_expires_at": str(expires_at), "x_user_token_refreshed_at": now_iso()}
    if client_secret:
        values["x_client_secret"] = client_secret
    PlatformSecrets(stage.secret_id).update(values)
    console.say(f"{stage.secret_id}: X user token stored (expires in {grant.expires_in // 60} minutes); "
                f"refresh_x_token renews it every run that finds it expiring within 45 minutes")
    return expires_at


def api_url(stage: Stage, lam: Any) -> str:
    """The address agents, the web inbox and Meta's webhook use: the API function's URL (infra/deploy.py
    creates it; the REST API Chalice deploys answers the same routes, at $3.50 a million requests more)."""
    function = f"{APP}-{stage.name}"
    try:
        url = str(lam.get_function_url_config(FunctionName=function)["FunctionUrl"])
        return url.rstrip("/") + "/"  # AWS ends it with "/"; the README's examples append paths to it
    except lam.exceptions.ResourceNotFoundException as err:
        raise AdminError(f"{function} has no function URL yet: run `make deploy STAGE={stage.name}` first") from err


# ---- command line -------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python infra/admin.py", description=(__doc__ or "").splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--stage", required=True)
        sub.add_argument("--region", help="AWS region (default: your AWS configuration's)")
        sub.add_argument("--profile", help="AWS profile (default: your AWS configuration's)")
        return sub

    for name, role in (("create-supervisor", "supervisor"), ("create-agent", "agent")):
        sub = command(name, f"create a Cognito user and its {role} record together")
        sub.add_argument("--username", required=True, help="the sign-in name; also the agent id")
        sub.add_argument("--email", required=True)
        sub.add_argument("--name", default="", help="display name (default: the username)")
        sub.add_argument("--teams", default="support", help="comma-separated teams (default: support)")
        sub.add_argument("--capacity", type=int, default=20, help="open cases at once (default 20)")
        sub.add_argument("--temporary-password-stdin", action="store_true",
                         help="read a temporary password from standard input instead of having Cognito email one")
    sub = command("login", "sign in and print an ID token for the API")
    sub.add_argument("--username", required=True)
    command("url", "print the stage's API address (its function URL, ending in /)")
    sub = command("set-secret", "set values of the stage's platform secret (asked for, not echoed)")
    sub.add_argument("keys", nargs="+", metavar="KEY", help=", ".join(SECRET_KEYS))
    sub = command("connect-x", "authorize the brand's X account (OAuth 2.0 with PKCE) and store its tokens")
    sub.add_argument("--client-id", required=True, help="the X app's OAuth 2.0 client id")
    sub.add_argument("--redirect-uri", required=True, help="a callback URL registered in the X app's settings")
    sub.add_argument("--confidential", action="store_true", help="the client has a secret (asked for)")
    return top


def main(argv: Optional[Sequence[str]] = None, *, project_dir: Path = ROOT, console: Optional[Console] = None,
         session_factory: Optional[Callable[[Optional[str], Optional[str]], Any]] = None) -> int:
    args = parser().parse_args(argv)
    console = console or Console()
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    import boto3

    session = (session_factory or (lambda region, profile: boto3.Session(region_name=region, profile_name=profile)))(
        args.region, args.profile)
    # The adapters (settings table, secret) make their clients from the environment: same account and region.
    if args.profile:
        os.environ["AWS_PROFILE"] = args.profile
    if session.region_name:
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = session.region_name
    from chalicelib.adapters import aws
    from chalicelib.config import settings

    if session.region_name and settings().region != session.region_name:  # read before the line above
        settings.cache_clear()
        aws.reset_clients()
    try:
        if session.region_name is None:
            raise AdminError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
        stage = resolve_stage(args.stage, session, project_dir)
        if args.command in ("create-supervisor", "create-agent"):
            temporary = console.ask("Temporary password: ") if args.temporary_password_stdin else None
            create_supervisor(stage, session.client("cognito-idp"), console, username=args.username,
                              email=args.email, name=args.name,
                              teams=[t.strip() for t in args.teams.split(",") if t.strip()],
                              capacity=args.capacity, temporary_password=temporary,
                              role="supervisor" if args.command == "create-supervisor" else "agent")
        elif args.command == "login":
            console.result(login(stage, session.client("cognito-idp"), console, username=args.username))
        elif args.command == "url":
            console.result(api_url(stage, session.client("lambda")))
        elif args.command == "set-secret":
            set_secret(stage, console, args.keys)
        elif args.command == "connect-x":
            connect_x(stage, console, client_id=args.client_id, redirect_uri=args.redirect_uri,
                      confidential=args.confidential)
    except AdminError as err:
        console.say(f"error: {err}")
        return 1
    except Exception as err:
        if not type(err).__module__.startswith(("botocore", "boto3")):
            raise
        # No credentials, no connection, access denied: AWS's own words are the clearest.
        console.say(f"error: AWS: {type(err).__name__}: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
