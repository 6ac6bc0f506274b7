"""X OAuth 2.0: the token endpoint (refresh, and the first code exchange) and the authorize URL.

X's user-context access tokens (replies, DMs) last about two hours. With the
``offline.access`` scope X also issues a refresh token, and it *rotates* it:
each refresh answers a new access token and a new refresh token, and the old
refresh token stops working. So the caller must store the new pair before it
does anything else (``chalicelib.services.credentials``).

    POST https://api.x.com/2/oauth2/token   (application/x-www-form-urlencoded)
    grant_type=refresh_token&refresh_token=...&client_id=...
    Authorization: Basic base64(client_id:client_secret)   (confidential clients only)

A refusal (4xx: ``invalid_grant``, ``invalid_request``, a revoked app) is
``XTokenRefused`` (an ``AuthFailed``: a person must connect the account
again); a 429, a 5xx or no answer is ``XTransientError`` (try again later).
Token requests are POSTs and are never retried here: if an answer was lost,
X may have rotated the refresh token already.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from chalicelib.adapters.platforms.http import HttpClient, HttpError, TransportError
from chalicelib.adapters.platforms.x import XError, XTransientError
from chalicelib.domain.errors import AuthFailed

TOKEN_PATH = "/2/oauth2/token"
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
# What socialcare does as the brand: read and post, read and send DMs; offline.access for a refresh token.
SCOPES = ("tweet.read", "tweet.write", "users.read", "dm.read", "dm.write", "offline.access")
DEFAULT_EXPIRES_IN = 7200


@dataclass(frozen=True)
class XTokenGrant:
    access_token: str
    refresh_token: str   # "" when X sent none (the grant lacked offline.access)
    expires_in: int      # seconds
    scope: str = ""

    def __repr__(self) -> str:  # never print tokens into logs
        return f"XTokenGrant(expires_in={self.expires_in}, scope={self.scope!r})"


class XTokenRefused(XError, AuthFailed):
    """X refused the token request: the refresh token is used up or revoked, or the client is wrong."""

    @property
    def error(self) -> str:
        return str((self.body or {}).get("error", "")) if isinstance(self.body, dict) else ""


class XOAuthClient:
    def __init__(self, base_url: str, http: Optional[HttpClient] = None, timeout: float = 10.0):
        self.base_url = base_url
        self._http = http if http is not None else HttpClient(base_url=base_url, timeout=timeout, retries=0)

    def refresh(self, refresh_token: str, *, client_id: str, client_secret: str = "") -> XTokenGrant:
        """A new access token and the rotated refresh token."""
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, client_id, client_secret)

    def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str, client_id: str,
                      client_secret: str = "") -> XTokenGrant:
        """The first tokens, for the code X handed to ``redirect_uri`` after the brand authorized the app."""
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                            "code_verifier": code_verifier}, client_id, client_secret)

    def _token(self, form: Dict[str, str], client_id: str, client_secret: str) -> XTokenGrant:
        headers = {}
        if client_secret:  # a confidential client authenticates with Basic auth
            pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        try:
            response = self._http.request("POST", TOKEN_PATH, form={**form, "client_id": client_id}, headers=headers)
        except HttpError as err:
            body = err.response.body
            described = _described(body) or err.response.text[:200]
            if err.status == 429 or err.status >= 500:
                raise XTransientError(f"X token endpoint answered {err.status}: {described}; try again later",
                                      status=err.status, body=body) from err
            raise XTokenRefused(f"X refused the token request ({err.status}): {described}",
                                status=err.status, body=body) from err
        except TransportError as err:
            raise XTransientError(f"X token endpoint unreachable: {err}") from err
        answer: Dict[str, Any] = response.body if isinstance(response.body, dict) else {}
        access_token = answer.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise XTransientError("X token endpoint answered without an access_token", body=None)
        try:
            expires_in = int(answer.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        return XTokenGrant(access_token=access_token, refresh_token=str(answer.get("refresh_token") or ""),
                           expires_in=expires_in, scope=str(answer.get("scope") or ""))


def _described(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get(key)) for key in ("error", "error_description", "detail") if body.get(key)]
    return ": ".join(parts)


def pkce_pair() -> Tuple[str, str]:
    """(code_verifier, code_challenge) for the S256 method."""
    verifier = secrets.token_urlsafe(64)[:128]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")
    return verifier, challenge


def authorize_url(client_id: str, redirect_uri: str, *, state: str, code_challenge: str,
                  scopes: Tuple[str, ...] = SCOPES, base: str = AUTHORIZE_URL) -> str:
    """Where the brand's X account authorizes the app (Authorization Code Flow with PKCE)."""
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": " ".join(scopes),
        "state": state, "code_challenge": code_challenge, "code_challenge_method": "S256",
    }, quote_via=urllib.parse.quote)
    return f"{base}?{query}"
