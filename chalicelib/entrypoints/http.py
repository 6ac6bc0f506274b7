"""Turning domain answers into HTTP: auth, JSON bodies, request limits, error responses.

Client input is checked here, before a service sees it: the body's size,
shape and encoding (``json_body``), and every path and query parameter
(``current_agent``, which each signed-in route calls first). The limits
themselves live in ``chalicelib.domain.limits``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional

from chalice import Response

from chalicelib.domain import limits
from chalicelib.domain.errors import ApiError, BadRequest
from chalicelib.observability import logger

_verifier: Dict[str, Any] = {}


def token_verifier():
    """One verifier per container: it caches the pool's signing keys.

    Fails closed: with the pool or app client id missing or malformed, every
    signed-in request is refused (503) instead of skipping a check.
    """
    from chalicelib.config import settings
    from chalicelib.entrypoints.auth import SignInMisconfigured, TokenVerifier, cognito_issuer

    config = settings()
    problem = config.sign_in_problem()
    if problem:
        raise SignInMisconfigured(problem)
    if "v" not in _verifier:
        _verifier["v"] = TokenVerifier(
            jwks_url=config.jwks_url, issuer=cognito_issuer(config.region, config.user_pool_id),
            client_id=config.user_pool_client_id,
        )
    return _verifier["v"]


def json_body(request: Any) -> Any:
    """The request's JSON body within the limits of ``domain.limits.parse_json`` (400 otherwise)."""
    try:
        raw = request.raw_body
    except UnicodeError:  # a framework handed us text that cannot be encoded back to UTF-8
        raise BadRequest("request body is not valid UTF-8; send JSON encoded as UTF-8") from None
    return limits.parse_json(raw)


def check_request_params(request: Any) -> None:
    """Ids in the path and the query string within their limits (400 otherwise)."""
    limits.check_path_params(getattr(request, "uri_params", None))
    limits.check_query_params(getattr(request, "query_params", None))


def error_response(status: int, message: str, headers: Optional[Dict[str, Any]] = None) -> Response:
    return Response(body={"error": message}, status_code=status, headers=headers or {})


# Raised by the standard library on input it cannot represent: nesting deeper
# than the stack (RecursionError), numbers out of range (OverflowError), text
# with lone surrogates (UnicodeError). The routes validate input before using
# it, so these should never reach here; when one does, it came from a value
# a client sent, and the answer is a 400, not a 500.
_INPUT_FAULTS = (RecursionError, OverflowError, UnicodeError)


def api_errors(func: Callable) -> Callable:
    """Map domain errors to HTTP with a message a person can act on."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from chalicelib.entrypoints.auth import AuthError, JwksUnavailable, SignInMisconfigured

        try:
            return func(*args, **kwargs)
        except ApiError as err:
            logger.info("request refused", extra={"status": err.status, "reason": str(err)})
            response = error_response(err.status, str(err))
            details = getattr(err, "extra", None)  # fields a client acts on, e.g. brand-voice findings with a 409
            if isinstance(details, dict):
                response.body = {**details, **response.body}
            return response
        except AuthError as err:
            logger.info("unauthenticated request", extra={"reason": str(err)})
            return error_response(401, str(err), {"WWW-Authenticate": 'Bearer realm="socialcare"'})
        except JwksUnavailable as err:
            logger.error("cannot verify tokens", extra={"reason": str(err)})
            return error_response(503, "sign-in service unavailable; try again shortly")
        except SignInMisconfigured as err:
            logger.error("sign-in is misconfigured; refusing every signed-in request", extra={"reason": str(err)})
            return error_response(503, f"the API's sign-in is not configured, so no request can be authorized; "
                                       f"operator: {err}")
        except _INPUT_FAULTS as err:
            # Logged with the traceback: a check belongs up front, wherever this came from.
            logger.exception("request input raised %s past validation", type(err).__name__)
            return error_response(400, "the request holds a value this API cannot process (nesting too deep, "
                                       "a number out of range, or text that is not valid Unicode); correct it and retry")
    return wrapper


def current_agent(request: Any) -> Any:
    """The registered agent behind the request's bearer token (401/403 otherwise).

    Once the token is verified, the request's path and query parameters are
    checked (400), before any store is read.
    """
    from chalicelib.bootstrap import deps
    from chalicelib.entrypoints.auth import bearer_token
    from chalicelib.services.inbox import agent_for

    principal = token_verifier().verify(bearer_token(request.headers))
    logger.append_keys(agent=principal.username)
    check_request_params(request)
    return agent_for(principal.username, deps())
