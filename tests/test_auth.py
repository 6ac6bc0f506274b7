"""chalicelib.auth against real tokens issued by moto's cognito-idp (in process).

Moto signs with the RSA key it ships as a package resource; the tests read the
public half as the JWKS (no network) and use the private half to build RS256
vectors and hand-made tokens with pure-Python RSA, the mirror of the verifier.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import time
import urllib.error
from importlib import resources

import boto3
import pytest
from moto import mock_aws

from chalicelib.entrypoints import auth
from chalicelib.entrypoints.auth import AuthError, Principal, TokenVerifier, bearer_token
from local.cognito import create_demo_pool, issue_token

REGION = "us-east-1"
JWKS_URL = "http://moto.test/pool/.well-known/jwks.json"
AGENT = "agent.alice"
PASSWORD = "Demo-Passw0rd!"


def _moto_resource(name: str) -> dict:
    data = (resources.files("moto") / "cognitoidp" / "resources" / name).read_bytes()
    return json.loads(gzip.decompress(data))


MOTO_PUBLIC_JWKS = _moto_resource("jwks-public.json.gz")
MOTO_PRIVATE_JWK = _moto_resource("jwks-private.json.gz")


# ---------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: dict) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def rs256_sign(message: bytes, jwk: dict = MOTO_PRIVATE_JWK) -> bytes:
    """Textbook RSASSA-PKCS1-v1_5 signing: EM^d mod n."""
    n, d = auth.b64url_to_int(jwk["n"]), auth.b64url_to_int(jwk["d"])
    size = (n.bit_length() + 7) // 8
    encoded = int.from_bytes(auth.emsa_pkcs1_v15_sha256(message, size), "big")
    return pow(encoded, d, n).to_bytes(size, "big")


def make_token(claims: dict, header: dict | None = None) -> str:
    header = header or {"alg": "RS256", "kid": "dummy"}
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    return f"{signing_input}.{b64url(rs256_sign(signing_input.encode()))}"


def split(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    return (json.loads(auth.b64url_decode(header)), json.loads(auth.b64url_decode(payload)), signature)


class CountingJwks:
    """fetch_jwks stand-in that serves a sequence of key sets and counts calls."""

    def __init__(self, *documents: dict):
        self.documents = list(documents)
        self.urls: list[str] = []

    def __call__(self, url: str) -> dict:
        self.urls.append(url)
        return self.documents[min(len(self.urls), len(self.documents)) - 1]


def jwks_with_kid(kid: str) -> dict:
    return {"keys": [dict(MOTO_PUBLIC_JWKS["keys"][0], kid=kid)]}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pool():
    """One moto user pool with a demo agent (in group 'supervisors') and its tokens."""
    fake_credentials = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in fake_credentials.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            cognito = boto3.client("cognito-idp", region_name=REGION)
            pool_id, client_id = create_demo_pool(cognito, "socialcare-test")
            cognito.create_group(UserPoolId=pool_id, GroupName="supervisors")
            id_token = issue_token(cognito, pool_id, client_id, AGENT, PASSWORD)
            cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=AGENT, GroupName="supervisors")
            tokens = cognito.admin_initiate_auth(
                UserPoolId=pool_id, ClientId=client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": AGENT, "PASSWORD": PASSWORD},
            )["AuthenticationResult"]
            yield {
                "pool_id": pool_id,
                "client_id": client_id,
                "issuer": auth.cognito_issuer(REGION, pool_id),
                "id_token": id_token,  # issued before the group was added
                "grouped_id_token": tokens["IdToken"],
                "access_token": tokens["AccessToken"],
            }


@pytest.fixture(autouse=True)
def empty_jwks_cache():
    auth.clear_jwks_cache()
    yield
    auth.clear_jwks_cache()


def verifier_for(pool, **overrides) -> TokenVerifier:
    options = dict(jwks_url=JWKS_URL, issuer=pool["issuer"], client_id=pool["client_id"],
                   fetch_jwks=CountingJwks(MOTO_PUBLIC_JWKS))
    options.update(overrides)
    return TokenVerifier(**options)


# ---------------------------------------------------------------- moto tokens


def test_moto_id_token_verifies_to_the_agent(pool):
    principal = verifier_for(pool).verify(pool["id_token"])

    assert isinstance(principal, Principal)
    assert principal.username == AGENT
    assert principal.sub == principal.claims["sub"] and principal.sub
    assert principal.groups == ()
    assert principal.claims["token_use"] == "id"


def test_moto_token_claims_have_the_cognito_shape(pool):
    header, id_claims, _ = split(pool["id_token"])
    _, access_claims, _ = split(pool["access_token"])

    assert (header["alg"], header["kid"]) == ("RS256", "dummy")
    assert id_claims["iss"] == f"https://cognito-idp.{REGION}.amazonaws.com/{pool['pool_id']}"
    assert id_claims["aud"] == pool["client_id"] and "client_id" not in id_claims
    assert id_claims["cognito:username"] == AGENT
    assert access_claims["client_id"] == pool["client_id"] and "aud" not in access_claims
    assert access_claims["username"] == AGENT


def test_access_token_with_groups_verifies(pool):
    principal = verifier_for(pool).verify(pool["access_token"])

    assert principal.username == AGENT
    assert principal.groups == ("supervisors",)
    assert verifier_for(pool).verify(pool["grouped_id_token"]).groups == ("supervisors",)


def test_principal_is_hashable_despite_claims_dict(pool):
    principal = verifier_for(pool).verify(pool["id_token"])
    assert hash(principal) == hash(verifier_for(pool).verify(pool["id_token"]))


def test_tampered_payload_fails_the_signature(pool):
    header, payload, signature = pool["id_token"].split(".")
    claims = json.loads(auth.b64url_decode(payload))
    claims["cognito:username"] = "mallory"

    with pytest.raises(AuthError, match="signature"):
        verifier_for(pool).verify(f"{header}.{b64url_json(claims)}.{signature}")


def test_tampered_signature_fails(pool):
    header, payload, signature = pool["id_token"].split(".")
    flipped = bytearray(auth.b64url_decode(signature))
    flipped[-1] ^= 1

    with pytest.raises(AuthError, match="signature"):
        verifier_for(pool).verify(f"{header}.{payload}.{b64url(bytes(flipped))}")


def test_expired_token_is_rejected(pool):
    far_future = time.time() + 10 * 3600

    with pytest.raises(AuthError, match="expired"):
        verifier_for(pool, clock=lambda: far_future).verify(pool["id_token"])


def test_expiry_allows_the_leeway(pool):
    exp = split(pool["id_token"])[1]["exp"]

    verifier_for(pool, clock=lambda: exp + 30, leeway=60).verify(pool["id_token"])
    with pytest.raises(AuthError, match="expired"):
        verifier_for(pool, clock=lambda: exp + 30, leeway=0).verify(pool["id_token"])


def test_wrong_issuer_is_rejected(pool):
    other_pool = auth.cognito_issuer(REGION, "us-east-1_SomeOtherPool")

    with pytest.raises(AuthError, match="issuer"):
        verifier_for(pool, issuer=other_pool).verify(pool["id_token"])


def test_wrong_audience_is_rejected_for_id_and_access_tokens(pool):
    verifier = verifier_for(pool, client_id="some-other-client")

    with pytest.raises(AuthError, match="audience"):
        verifier.verify(pool["id_token"])
    with pytest.raises(AuthError, match="audience"):
        verifier.verify(pool["access_token"])


def test_an_empty_client_id_is_refused_never_skipping_the_audience_check(pool):
    with pytest.raises(auth.SignInMisconfigured):
        verifier_for(pool, client_id="")


def test_alg_none_is_rejected(pool):
    _, payload, _ = pool["id_token"].split(".")
    unsigned = f"{b64url_json({'alg': 'none', 'kid': 'dummy'})}.{payload}."

    with pytest.raises(AuthError, match="algorithm"):
        verifier_for(pool).verify(unsigned)


def test_hs256_signed_with_the_public_key_is_rejected(pool):
    # The classic key-confusion forgery: HMAC keyed with the public RSA key.
    _, payload, _ = pool["id_token"].split(".")
    header = b64url_json({"alg": "HS256", "kid": "dummy"})
    secret = json.dumps(MOTO_PUBLIC_JWKS["keys"][0]).encode()
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()

    with pytest.raises(AuthError, match="algorithm"):
        verifier_for(pool).verify(f"{header}.{payload}.{b64url(mac)}")


@pytest.mark.parametrize("token", [
    "", "abc", "a.b", "a.b.c.d", "!!!.???.***", f"{b64url(b'[1]')}.{b64url(b'{}')}.",
    "x" * (auth.MAX_TOKEN_LENGTH + 1),
])
def test_malformed_tokens_are_rejected(pool, token):
    with pytest.raises(AuthError, match="malformed"):
        verifier_for(pool).verify(token)


# ---------------------------------------------------------------- hand-made claims


def valid_claims(pool, **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": pool["issuer"], "sub": "sub-123", "aud": pool["client_id"], "token_use": "id",
        "cognito:username": AGENT, "iat": now, "exp": now + 3600,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def test_hand_signed_token_verifies(pool):
    assert verifier_for(pool).verify(make_token(valid_claims(pool))).sub == "sub-123"


@pytest.mark.parametrize("changes, message", [
    ({"token_use": "refresh"}, "token_use"),
    ({"token_use": None}, "token_use"),
    ({"exp": None}, "exp"),
    ({"exp": "tomorrow"}, "exp"),
    ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ({"iat": int(time.time()) + 3600}, "future"),
    ({"sub": None}, "sub"),
    ({"cognito:username": None}, "username"),
    ({"cognito:groups": "admins"}, "groups"),
])
def test_bad_claims_are_rejected(pool, changes, message):
    with pytest.raises(AuthError, match=message):
        verifier_for(pool).verify(make_token(valid_claims(pool, **changes)))


def test_missing_kid_is_rejected(pool):
    with pytest.raises(AuthError, match="kid"):
        verifier_for(pool).verify(make_token(valid_claims(pool), header={"alg": "RS256"}))


# ---------------------------------------------------------------- JWKS cache


def test_unknown_kid_triggers_exactly_one_refetch(pool):
    # A warm container cached the key set while the pool still signed with
    # "retired"; later Cognito rotates to "dummy" and tokens carry the new kid.
    now = [time.time()]
    fetch = CountingJwks(jwks_with_kid("retired"), MOTO_PUBLIC_JWKS)
    verifier = verifier_for(pool, fetch_jwks=fetch, clock=lambda: now[0])
    old_token = make_token(valid_claims(pool), header={"alg": "RS256", "kid": "retired"})
    verifier.verify(old_token)
    now[0] += auth.DEFAULT_MIN_REFETCH_INTERVAL_SECONDS

    assert verifier.verify(pool["id_token"]).username == AGENT
    assert fetch.urls == [JWKS_URL, JWKS_URL]
    verifier.verify(pool["id_token"])
    assert len(fetch.urls) == 2  # the rotated key is now cached


def test_unknown_kid_refetch_is_throttled(pool):
    now = [1_000_000.0]
    fetch = CountingJwks(MOTO_PUBLIC_JWKS)
    claims = valid_claims(pool, iat=None, exp=now[0] + 3600)
    verifier = verifier_for(pool, fetch_jwks=fetch, clock=lambda: now[0], min_refetch_interval=60)
    forged = make_token(claims, header={"alg": "RS256", "kid": "never-published"})

    with pytest.raises(AuthError, match="unknown key"):
        verifier.verify(forged)  # first fetch is fresh: no second fetch for it
    now[0] += 30
    with pytest.raises(AuthError, match="unknown key"):
        verifier.verify(forged)
    assert len(fetch.urls) == 1

    now[0] += 31
    with pytest.raises(AuthError, match="unknown key"):
        verifier.verify(forged)
    assert len(fetch.urls) == 2


def test_failed_refetch_keeps_the_cached_keys(pool):
    now = [time.time()]
    calls = []

    def fetch(url):
        calls.append(url)
        if len(calls) > 1:
            raise auth.JwksUnavailable("endpoint down")
        return MOTO_PUBLIC_JWKS

    verifier = verifier_for(pool, fetch_jwks=fetch, clock=lambda: now[0])
    verifier.verify(pool["id_token"])
    now[0] += 120
    with pytest.raises(AuthError, match="unknown key"):
        verifier.verify(make_token(valid_claims(pool), header={"alg": "RS256", "kid": "new"}))
    assert verifier.verify(pool["id_token"]).username == AGENT
    assert len(calls) == 2


def test_keys_are_cached_across_verifiers_in_the_container(pool):
    fetch = CountingJwks(MOTO_PUBLIC_JWKS)
    verifier_for(pool, fetch_jwks=fetch).verify(pool["id_token"])
    verifier_for(pool, fetch_jwks=fetch).verify(pool["access_token"])

    assert len(fetch.urls) == 1


def test_first_fetch_failure_is_an_outage_not_a_401(pool):
    with pytest.raises(auth.JwksUnavailable):
        verifier_for(pool, fetch_jwks=lambda url: {"not": "a jwks"}).verify(pool["id_token"])


def test_jwks_is_fetched_with_urllib_and_a_timeout(monkeypatch):
    seen = {}

    def fake_urlopen(request, timeout):
        seen.update(url=request.full_url, timeout=timeout)
        return io.BytesIO(json.dumps(MOTO_PUBLIC_JWKS).encode())

    monkeypatch.setattr(auth.urllib.request, "urlopen", fake_urlopen)

    assert auth.fetch_jwks_over_http(JWKS_URL) == MOTO_PUBLIC_JWKS
    assert seen == {"url": JWKS_URL, "timeout": 5}


def test_jwks_network_errors_become_jwks_unavailable(monkeypatch):
    def refuse(request, timeout):
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr(auth.urllib.request, "urlopen", refuse)

    with pytest.raises(auth.JwksUnavailable, match="connection refused"):
        auth.fetch_jwks_over_http(JWKS_URL)
    with pytest.raises(auth.JwksUnavailable, match="http"):
        auth.fetch_jwks_over_http("file:///etc/passwd")


def test_unusable_jwks_entries_are_skipped():
    good = MOTO_PUBLIC_JWKS["keys"][0]
    weak = dict(good, kid="weak", n=b64url((2**1023 + 1).to_bytes(128, "big")))
    keys = auth.rsa_keys_from_jwks({"keys": [
        good, weak, dict(good, kid="enc", use="enc"), dict(good, kid="ec", kty="EC"), "junk",
    ]})

    assert list(keys) == ["dummy"]


# ---------------------------------------------------------------- pure RSA


def test_rs256_verify_against_a_vector_from_moto_private_key(pool):
    public = auth.rsa_keys_from_jwks(MOTO_PUBLIC_JWKS)["dummy"]
    message = b"socialcare known-answer vector"
    signature = rs256_sign(message)

    assert public.n == auth.b64url_to_int(MOTO_PRIVATE_JWK["n"])
    assert auth.rs256_signature_is_valid(public, message, signature)
    assert not auth.rs256_signature_is_valid(public, message + b".", signature)
    assert not auth.rs256_signature_is_valid(public, message, signature[:-1])
    assert not auth.rs256_signature_is_valid(public, message, b"\x00" + signature)
    s = int.from_bytes(signature, "big")
    assert not auth.rs256_signature_is_valid(public, message, (s + public.n).to_bytes(257, "big"))


def test_our_pkcs1_encoding_matches_the_signature_moto_produced(pool):
    # PKCS#1 v1.5 is deterministic: signing moto's signing input ourselves must
    # reproduce moto's (joserfc/cryptography) signature byte for byte.
    header, payload, signature = pool["id_token"].split(".")
    assert b64url(rs256_sign(f"{header}.{payload}".encode())) == signature


# ---------------------------------------------------------------- header


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer tok.en.x"},
    {"authorization": "bearer tok.en.x"},
    {"AUTHORIZATION": "  Bearer   tok.en.x  "},
])
def test_bearer_token_is_read_case_insensitively(headers):
    assert bearer_token(headers) == "tok.en.x"


@pytest.mark.parametrize("headers, message", [
    ({}, "missing"),
    ({"Content-Type": "application/json"}, "missing"),
    ({"Authorization": ""}, "malformed"),
    ({"Authorization": "Bearer"}, "malformed"),
    ({"Authorization": "Bearer "}, "malformed"),
    ({"Authorization": "Basic dXNlcjpwdw=="}, "malformed"),
    ({"Authorization": "tok.en.x"}, "malformed"),
    ({"Authorization": "Bearer a b"}, "malformed"),
    ({"Authorization": "Bearer a", "authorization": "Bearer b"}, "more than one"),
])
def test_bad_authorization_headers_are_rejected(headers, message):
    with pytest.raises(AuthError, match=message):
        bearer_token(headers)
