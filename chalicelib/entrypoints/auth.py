"""Agent sign-in: verify Cognito user pool JWTs inside the Lambda.

The API is called with ``Authorization: Bearer <token>`` where the token is a
Cognito ID or access token signed with RS256. Locally, moto's cognito-idp
issues the same kind of token and serves its public keys at the same path
shape, so one code path verifies both.

The RS256 check (RSASSA-PKCS1-v1_5 with SHA-256) is done with the standard
library: ``cryptography`` or ``jose`` would ship native wheels in every Lambda
and add cold-start time for one modular exponentiation.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

logger = logging.getLogger(__name__)

JWKS_FETCH_TIMEOUT_SECONDS = 5
# An unknown kid normally means Cognito rotated its keys, so we refetch; the
# floor stops forged tokens with random kids from turning every request into
# a call to the JWKS endpoint.
DEFAULT_MIN_REFETCH_INTERVAL_SECONDS = 60
# Cognito tokens are a few KB even with many groups; anything far larger is
# not a token, and we would rather not base64- and JSON-decode it.
MAX_TOKEN_LENGTH = 16 * 1024
# Cognito signs with 2048-bit keys; refusing smaller ones means a poisoned or
# misconfigured JWKS cannot downgrade us to a factorable modulus.
MIN_RSA_MODULUS_BITS = 2048
TOKEN_USES = ("id", "access")

# DER encoding of DigestInfo{ sha256, NULL } that precedes the 32-byte hash in
# EMSA-PKCS1-v1_5 (RFC 8017 section 9.2, note 1).
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")

_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class AuthError(Exception):
    """The request is not authenticated (HTTP 401); the message says why."""


class JwksUnavailable(Exception):
    """The signing keys could not be fetched: our outage (HTTP 5xx), not the caller's fault."""


class SignInMisconfigured(Exception):
    """The pool or app client setting is missing or malformed: no token can be checked (HTTP 503).

    Fail closed: without an app client id the audience check cannot run, and
    skipping it would accept tokens minted for any other app of the pool.
    """


@dataclass(frozen=True)
class Principal:
    username: str
    sub: str
    groups: Tuple[str, ...]
    # Excluded from the hash (a dict is unhashable) but kept in equality.
    claims: Dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class RsaPublicKey:
    n: int
    e: int

    @property
    def size_in_bytes(self) -> int:
        return (self.n.bit_length() + 7) // 8


# ---------------------------------------------------------------- encoding


def b64url_decode(segment: str) -> bytes:
    # urlsafe_b64decode silently drops characters outside the alphabet, which
    # would let different strings decode to the same bytes; be strict instead.
    if not _BASE64URL.match(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url_to_int(segment: str) -> int:
    return int.from_bytes(b64url_decode(segment), "big")


# ---------------------------------------------------------------- RS256


def emsa_pkcs1_v15_sha256(message: bytes, size_in_bytes: int) -> bytes:
    """EM = 0x00 || 0x01 || PS (0xff...) || 0x00 || DigestInfo(SHA-256(message))."""
    digest_info = SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()
    padding_length = size_in_bytes - len(digest_info) - 3
    if padding_length < 8:
        raise ValueError("RSA modulus too short for SHA-256 PKCS#1 v1.5")
    return b"\x00\x01" + b"\xff" * padding_length + b"\x00" + digest_info


def rs256_signature_is_valid(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 section 8.2.2)."""
    size = key.size_in_bytes
    if len(signature) != size:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    recovered = pow(s, key.e, key.n).to_bytes(size, "big")
    # Compare against the one valid encoding rather than parsing the recovered
    # block: parsing PKCS#1 v1.5 leniently is how signature forgeries happen.
    expected = emsa_pkcs1_v15_sha256(message, size)
    return hmac.compare_digest(recovered, expected)


# ---------------------------------------------------------------- JWKS


def rsa_keys_from_jwks(jwks: Any) -> Dict[str, RsaPublicKey]:
    """kid -> public key for the RS256 signing keys in a JWKS document."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("JWKS has no 'keys' list")
    keys: Dict[str, RsaPublicKey] = {}
    for jwk in jwks["keys"]:
        key = _rsa_signing_key(jwk)
        if key is not None:
            keys[jwk["kid"]] = key
    return keys


def _rsa_signing_key(jwk: Any) -> Optional[RsaPublicKey]:
    # Keys we cannot use are skipped, not fatal: one odd key in the set must
    # not lock out tokens signed with the others.
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
        return None
    if not all(isinstance(jwk.get(name), str) for name in ("kid", "n", "e")):
        return None
    try:
        key = RsaPublicKey(n=b64url_to_int(jwk["n"]), e=b64url_to_int(jwk["e"]))
    except (ValueError, binascii.Error):
        return None
    if key.n.bit_length() < MIN_RSA_MODULUS_BITS or key.e < 3 or key.e % 2 == 0:
        return None
    return key


def fetch_jwks_over_http(url: str) -> dict:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "http"):  # http only makes sense for the local moto server
        raise JwksUnavailable(f"JWKS URL must be http(s): {url}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=JWKS_FETCH_TIMEOUT_SECONDS) as response:
            return json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise JwksUnavailable(f"cannot fetch JWKS from {url}: {error}") from error


@dataclass
class _CachedKeys:
    keys: Dict[str, RsaPublicKey]
    last_fetch_attempt: float


# Module level so that one warm container fetches the keys once, not once per
# request or per TokenVerifier. Keyed by URL: tests and stages may use several.
_jwks_cache: Dict[str, _CachedKeys] = {}
_jwks_cache_lock = threading.Lock()


def clear_jwks_cache() -> None:
    """Forget every cached key set (tests; a cold start does this for free)."""
    with _jwks_cache_lock:
        _jwks_cache.clear()


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True)
class DecodedToken:
    header: Dict[str, Any]
    claims: Dict[str, Any]
    signing_input: bytes
    signature: bytes


def decode_unverified(token: str) -> DecodedToken:
    """Split and decode a compact JWS; says nothing about whether to trust it."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise AuthError("malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("malformed token: expected header.payload.signature")
    header_segment, payload_segment, signature_segment = parts
    try:
        header = json.loads(b64url_decode(header_segment))
        claims = json.loads(b64url_decode(payload_segment))
        signature = b64url_decode(signature_segment)
    except (ValueError, binascii.Error):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AuthError("malformed token: bad base64url or JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthError("malformed token: header and payload must be JSON objects")
    return DecodedToken(
        header=header,
        claims=claims,
        signing_input=f"{header_segment}.{payload_segment}".encode("ascii"),
        signature=signature,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TokenVerifier:
    """Verifies Cognito (or moto) RS256 JWTs against the pool's JWKS."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        client_id: str,
        fetch_jwks: Optional[Callable[[str], dict]] = None,
        clock: Callable[[], float] = time.time,
        leeway: int = 60,
        min_refetch_interval: float = DEFAULT_MIN_REFETCH_INTERVAL_SECONDS,
    ) -> None:
        if not jwks_url or not issuer:
            raise SignInMisconfigured("jwks_url and issuer are required")
        if not isinstance(client_id, str) or not client_id.strip():
            raise SignInMisconfigured("client_id is required: without it the token audience cannot be checked")
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.client_id = client_id
        self._fetch_jwks = fetch_jwks or fetch_jwks_over_http
        self._clock = clock
        self.leeway = leeway
        self.min_refetch_interval = min_refetch_interval

    def verify(self, token: str) -> Principal:
        decoded = decode_unverified(token)
        self._check_header(decoded.header)
        key = self._public_key(decoded.header["kid"])
        if not rs256_signature_is_valid(key, decoded.signing_input, decoded.signature):
            raise AuthError("invalid token signature")
        # Claims are only looked at once the signature says they are genuine.
        self._check_times(decoded.claims)
        self._check_issuer(decoded.claims)
        token_use = self._check_token_use(decoded.claims)
        self._check_client(decoded.claims, token_use)
        return _principal(decoded.claims, token_use)

    # -- header

    @staticmethod
    def _check_header(header: Dict[str, Any]) -> None:
        # Only RS256: accepting "none" skips the signature, and accepting HS256
        # would let anyone sign with the public key as an HMAC secret.
        alg = header.get("alg")
        if alg != "RS256":
            raise AuthError(f"unsupported token algorithm {alg!r}; only RS256 is accepted")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise AuthError("malformed token: header has no kid")

    # -- keys

    def _public_key(self, kid: str) -> RsaPublicKey:
        cached = _jwks_cache.get(self.jwks_url)
        if cached is None:
            cached = self._load_keys()
        elif kid not in cached.keys and self._may_refetch(cached):
            cached = self._refetch_after_unknown_kid(cached)
        key = cached.keys.get(kid)
        if key is None:
            raise AuthError("token signed with an unknown key (kid)")
        return key

    def _may_refetch(self, cached: _CachedKeys) -> bool:
        return self._clock() - cached.last_fetch_attempt >= self.min_refetch_interval

    def _load_keys(self) -> _CachedKeys:
        with _jwks_cache_lock:
            # Another thread may have fetched while we waited for the lock.
            cached = _jwks_cache.get(self.jwks_url)
            if cached is not None:
                return cached
            return self._fetch_and_store()

    def _refetch_after_unknown_kid(self, stale: _CachedKeys) -> _CachedKeys:
        with _jwks_cache_lock:
            current = _jwks_cache.get(self.jwks_url, stale)
            if current is not stale:  # another thread already refreshed
                return current
            try:
                return self._fetch_and_store()
            except JwksUnavailable as error:
                # Keep serving the keys we have; only tokens with the unknown
                # kid fail, and the throttle stops us retrying every request.
                stale.last_fetch_attempt = self._clock()
                logger.warning("JWKS refetch failed, keeping cached keys: %s", error)
                return stale

    def _fetch_and_store(self) -> _CachedKeys:
        attempted_at = self._clock()
        try:
            keys = rsa_keys_from_jwks(self._fetch_jwks(self.jwks_url))
        except ValueError as error:
            raise JwksUnavailable(f"JWKS from {self.jwks_url} is invalid: {error}") from error
        cached = _CachedKeys(keys=keys, last_fetch_attempt=attempted_at)
        _jwks_cache[self.jwks_url] = cached
        return cached

    # -- claims

    def _check_times(self, claims: Dict[str, Any]) -> None:
        now = self._clock()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise AuthError("token has no valid exp claim")
        if now - self.leeway >= float(exp):  # type: ignore[arg-type]  # _is_number checked it
            raise AuthError("token expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or now + self.leeway < nbf):
            raise AuthError("token not yet valid (nbf)")
        iat = claims.get("iat")
        if iat is not None and (not _is_number(iat) or now + self.leeway < iat):
            raise AuthError("token issued in the future (iat)")

    def _check_issuer(self, claims: Dict[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise AuthError(f"wrong token issuer {claims.get('iss')!r}")

    @staticmethod
    def _check_token_use(claims: Dict[str, Any]) -> str:
        token_use = claims.get("token_use")
        if token_use not in TOKEN_USES:
            raise AuthError(f"wrong token_use {token_use!r}; expected id or access")
        return token_use

    def _check_client(self, claims: Dict[str, Any], token_use: str) -> None:
        if not self.client_id:  # refused in __init__; never let a cleared setting skip the check
            raise SignInMisconfigured("no app client id configured; refusing every token")
        # ID tokens name the app client in aud, access tokens in client_id.
        if token_use == "id":
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if self.client_id not in audiences:
                raise AuthError("wrong token audience (aud)")
        elif claims.get("client_id") != self.client_id:
            raise AuthError("wrong token audience (client_id)")


def _principal(claims: Dict[str, Any], token_use: str) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthError("token has no sub claim")
    # ID tokens carry the sign-in name as cognito:username, access tokens as
    # username; a pool signing in by email puts the sub in both.
    username = claims.get("cognito:username" if token_use == "id" else "username")
    if not isinstance(username, str) or not username:
        raise AuthError("token has no username claim")
    groups = claims.get("cognito:groups") or []
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise AuthError("token has a malformed cognito:groups claim")
    return Principal(username=username, sub=sub, groups=tuple(groups), claims=claims)


# ---------------------------------------------------------------- headers


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token from ``Authorization: Bearer <token>``, whatever the header's case."""
    values = {value for name, value in (headers or {}).items() if name.lower() == "authorization"}
    if not values:
        raise AuthError("missing Authorization header")
    # Two different Authorization headers: do not guess which one was meant.
    if len(values) > 1:
        raise AuthError("more than one Authorization header")
    value = (values.pop() or "").strip()
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError("malformed Authorization header; expected 'Bearer <token>'")
    return token


def cognito_issuer(region: str, user_pool_id: str) -> str:
    """The iss claim of a user pool's tokens (moto uses the same form)."""
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
