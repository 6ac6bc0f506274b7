"""Turning domain answers into HTTP: auth, JSON bodies, error responses."""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional

from chalice import Response

from chalicelib.domain.errors import ApiError, BadRequest
from chalicelib.observability import logger

_verifier: Dict[str, Any] = {}


def token_verifier():
    """One verifier per container: it caches the pool's signing keys."""
    if "v" not in _verifier:
        from chalicelib.config import settings
        from chalicelib.entrypoints.auth import TokenVerifier, cognito_issuer

        config = settings()
        _verifier["v"] = TokenVerifier(
            jwks_url=config.jwks_url, issuer=cognito_issuer(config.region, config.user_pool_id),
            client_id=config.user_pool_client_id,
        )
    return _verifier["v"]


def json_body(request: Any) -> Any:
    raw = request.raw_body
    if not raw:
        raise BadRequest("request body is empty; send a JSON object")
    import json

    try:
        return json.loads(raw)
    except ValueError as err:
        raise BadRequest(f"request body is not valid JSON: {err}") from None


def error_response(status: int, message: str, headers: Optional[Dict[str, Any]] = None) -> Response:
    return Response(body={"error": message}, status_code=status, headers=headers or {})


def api_errors(func: Callable) -> Callable:
    """Map domain errors to HTTP with a message a person can act on."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from chalicelib.entrypoints.auth import AuthError, JwksUnavailable

        try:
            return func(*args, **kwargs)
        except ApiError as err:
            logger.info("request refused", extra={"status": err.status, "reason": str(err)})
            return error_response(err.status, str(err))
        except AuthError as err:
            logger.info("unauthenticated request", extra={"reason": str(err)})
            return error_response(401, str(err), {"WWW-Authenticate": 'Bearer realm="socialcare"'})
        except JwksUnavailable as err:
            logger.error("cannot verify tokens", extra={"reason": str(err)})
            return error_response(503, "sign-in service unavailable; try again shortly")
    return wrapper


def current_agent(request: Any) -> Any:
    """The registered agent behind the request's bearer token (401/403 otherwise)."""
    from chalicelib.bootstrap import deps
    from chalicelib.entrypoints.auth import bearer_token
    from chalicelib.services.inbox import agent_for

    principal = token_verifier().verify(bearer_token(request.headers))
    logger.append_keys(agent=principal.username)
    return agent_for(principal.username, deps())
