"""Keep the X user token alive: refresh it before it expires, unattended, and store the rotated pair.

X's OAuth 2.0 user tokens (replies, DMs, DM reads) expire about two hours
after they are issued. A scheduled run (``refresh_x_token``, every 30
minutes) refreshes the token once it expires within ``REFRESH_MARGIN_SECONDS``.
X rotates the refresh token on every use, so the rules are:

- read the secret fresh (never a cached copy: an older refresh token is spent);
- write the new access token, refresh token and expiry back at once, before
  anything uses them, and try that write again before giving up: a spent
  refresh token whose successor is lost can only be replaced by a person;
- a refusal (``AuthFailed``: the refresh token is spent or revoked) marks the X
  sources ``needs_attention`` with what to do, unless another run rotated the
  token meanwhile; a passing failure (``TransientFailure``) changes nothing
  and the next run tries again while the old access token still works.

The platform clients rebuild themselves when the secret's token changes
(``LazyPlatformClients``), so no deploy is needed. This module talks to two
ports, ``CredentialStore`` and ``TokenRefresher`` (``deps.credentials`` and
``deps.x_tokens``), passed in by the caller (``app.refresh_x_token``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from chalicelib.domain.errors import AuthFailed, TransientFailure
from chalicelib.observability import count, logger
from chalicelib.ports import CredentialStore, Deps, SourceStore, TokenRefresher

REFRESH_MARGIN_SECONDS = 45 * 60
WRITE_ATTEMPTS = 3
X_PLATFORM = "x"
RECONNECT = "connect the X account again: python infra/admin.py connect-x --stage <stage>"

# Keys of the platform secret (a JSON object) this service reads and writes.
ACCESS_TOKEN = "x_user_token"
REFRESH_TOKEN = "x_refresh_token"
EXPIRES_AT = "x_user_token_expires_at"     # unix seconds, as a string
REFRESHED_AT = "x_user_token_refreshed_at"  # ISO time of the last refresh
CLIENT_ID = "x_client_id"
CLIENT_SECRET = "x_client_secret"           # confidential clients only


def refresh_x_token(deps: Deps, store: CredentialStore, refresher: TokenRefresher, *,
                    margin_seconds: int = REFRESH_MARGIN_SECONDS, log: Any = None) -> Dict[str, Any]:
    """One scheduled run; returns what happened (``outcome``) for the log."""
    log = log or logger
    creds = store.read()
    refresh_token = str(creds.get(REFRESH_TOKEN) or "")
    client_id = str(creds.get(CLIENT_ID) or "")
    if not refresh_token or not client_id:
        return {"outcome": "not_configured",
                "reason": f"the secret has no {REFRESH_TOKEN} or {CLIENT_ID}: the X user token is not refreshed"}
    now = int(deps.epoch())
    expires_at = _epoch(creds.get(EXPIRES_AT))
    if expires_at is not None and expires_at - now > margin_seconds:
        return {"outcome": "fresh", "expires_at": expires_at}
    try:
        grant = refresher.refresh(refresh_token, client_id=client_id, client_secret=str(creds.get(CLIENT_SECRET) or ""))
    except AuthFailed as err:
        if str(store.read().get(REFRESH_TOKEN) or "") != refresh_token:
            # Another run rotated the token after we read it: ours was spent by it, nothing is wrong.
            return {"outcome": "refreshed_elsewhere"}
        reason = f"X refused to refresh the user token ({type(err).__name__}: {err}); {RECONNECT}"[:500]
        marked = _mark_x_sources(deps.settings, reason, deps.now())
        count("XTokenRefreshFailed")
        log.error("X user token refresh refused", extra={"error": str(err)[:300], "sources": marked})
        return {"outcome": "refused", "error": reason, "sources": marked}
    except TransientFailure as err:
        log.warning("X user token refresh failed; the next run tries again",
                    extra={"error": str(err)[:300], "expires_at": expires_at})
        return {"outcome": "retry", "error": f"{type(err).__name__}: {err}"[:500], "expires_at": expires_at}
    new_expiry = now + int(grant.expires_in)
    changes = {ACCESS_TOKEN: grant.access_token, REFRESH_TOKEN: grant.refresh_token or refresh_token,
               EXPIRES_AT: str(new_expiry), REFRESHED_AT: deps.now()}
    _store_rotated(store, changes, log)
    count("XTokenRefreshed")
    log.info("X user token refreshed", extra={"expires_at": new_expiry})
    return {"outcome": "refreshed", "expires_at": new_expiry}


def _store_rotated(store: CredentialStore, changes: Mapping[str, Any], log: Any) -> None:
    """The old refresh token is spent: the new pair must be stored, or a person must reconnect."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            store.update(changes)
            return
        except Exception as err:
            if attempt == WRITE_ATTEMPTS:
                count("XTokenRefreshFailed")
                log.critical("X rotated the refresh token but the new pair could not be stored; " + RECONNECT,
                             extra={"error": f"{type(err).__name__}: {err}"[:300]})
                raise
            log.warning("storing the rotated X tokens failed; trying again",
                        extra={"attempt": attempt, "error": f"{type(err).__name__}: {err}"[:300]})


def _mark_x_sources(sources: SourceStore, reason: str, at: str) -> List[str]:
    marked: List[str] = []
    for source in sources.list_sources():
        if source.get("platform") == X_PLATFORM or str(source.get("kind", "")).startswith("x_"):
            sources.update_source_status(source["source_id"], {
                "state": "needs_attention", "last_error": reason, "last_error_at": at})
            marked.append(source["source_id"])
    return marked


def _epoch(value: Any) -> Optional[int]:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None
