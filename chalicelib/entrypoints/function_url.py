"""The API handler behind a Lambda function URL, answering exactly as it answers through API Gateway REST.

Why: API Gateway REST bills $3.50 per million requests and a function URL nothing; the app verifies
Cognito tokens itself (``entrypoints/auth.py``), so nothing in front of it has to. Chalice routes only
REST (payload 1.0) events, so ``SocialcareChalice.__call__`` turns a function URL's event (payload 2.0)
into the REST event API Gateway would have sent for the same request, lets Chalice answer it (middleware,
405s, CORS, binary bodies: all Chalice's own), and turns the answer into what a function URL accepts.
A REST event passes through untouched. Pure translation: no AWS call, nothing loaded at import time.

How a function URL event maps to the REST event:

- ``resource`` and ``requestContext.resourcePath``: the route template ``rawPath`` matches, as API
  Gateway matches (same number of segments; at each segment, from the left, a literal wins over a
  ``{var}``; a ``{var}`` takes one non-empty segment; a trailing slash is dropped except on ``/``).
- ``pathParameters``: the raw segments, still percent-encoded, as REST hands them over (and
  ``chalice local``): ``/mentions/x:123/promote`` gives ``x:123``, ``/admin/templates/Lost%20Bag``
  gives ``Lost%20Bag``; None when the route has none.
- ``path`` and ``requestContext.path``: ``rawPath`` as sent; there is no stage prefix, so
  ``GET /openapi.json`` answers ``servers: [{"url": "/"}]``.
- ``httpMethod`` and ``requestContext.httpMethod``: ``requestContext.http.method``.
- ``queryStringParameters`` / ``multiValueQueryStringParameters``: ``rawQueryString`` decoded as REST
  decodes it (``%XX`` and ``+`` as a space, blank values kept, a repeated key keeps every value in
  order and its last one in ``queryStringParameters``); None without a query string. The event's own
  ``queryStringParameters`` (repeated values joined by commas) is not used.
- ``headers``: as received (lower-case names; a repeated header arrives joined by commas), plus a
  ``cookie`` header rebuilt from the event's ``cookies``; ``multiValueHeaders``: each as a one-item list.
- ``body`` and ``isBase64Encoded``: untouched (Meta's webhook checks an HMAC over the raw bytes).
- ``requestContext``: ``requestId``, ``identity.sourceIp`` and ``identity.userAgent``, ``stage``
  (``$default``), ``accountId``, ``apiId``, ``domainName``, ``domainPrefix``, ``protocol``,
  ``requestTime``, ``requestTimeEpoch``, and ``"front": "function_url"`` (metering counts no API
  Gateway request for it: ``adapters/metering.describe``). ``stageVariables``: None.

Refused before routing, as JSON ``{"error": ..., "message": ...}``: a path longer than
``MAX_PATH_CHARS`` or a query string longer than ``MAX_QUERY_BYTES`` (414), a path no route matches
(404; API Gateway REST answers that with a 403 "Missing Authentication Token"). These answers do not
reach the app's middleware, so they are neither logged nor metered. A body is never refused here:
``entrypoints/http.json_body`` applies the same limit on both fronts.

The answer: Chalice's ``statusCode``, ``headers``, ``body`` and ``isBase64Encoded``; each
``multiValueHeaders`` entry joined with ", " into ``headers``, except ``Set-Cookie``, whose values go
to ``cookies`` (one header line each, as a function URL sends them).
"""
from __future__ import annotations

import functools
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl

from chalice import Chalice  # loaded by app.py already: no import cost

FRONT = "function_url"
MAX_PATH_CHARS = 2048
MAX_QUERY_BYTES = 8 * 1024


class Refusal(Exception):
    """A request answered before routing; ``response`` is in Chalice's (REST) shape."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.response: Dict[str, Any] = {
            "statusCode": status, "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
            "body": json.dumps({"error": message, "message": reason}, separators=(",", ":")),
        }


def is_function_url_event(event: Any) -> bool:
    """A Lambda function URL's event (payload format 2.0), not API Gateway REST's."""
    if not isinstance(event, dict) or event.get("version") != "2.0" or not isinstance(event.get("rawPath"), str):
        return False
    context = event.get("requestContext")
    return isinstance(context, dict) and isinstance(context.get("http"), dict)


def to_rest_event(event: Mapping[str, Any], routes: Iterable[str]) -> Dict[str, Any]:
    """The API Gateway REST event for the same request (see the module's docstring); Refusal otherwise."""
    context: Mapping[str, Any] = event.get("requestContext") or {}
    http: Mapping[str, Any] = context.get("http") or {}
    raw_path = str(event.get("rawPath") or "/")
    raw_query = str(event.get("rawQueryString") or "")
    method = str(http.get("method") or "GET").upper()
    if len(raw_path) > MAX_PATH_CHARS:
        raise Refusal(414, "URI Too Long", f"the path is {len(raw_path):,} characters; at most {MAX_PATH_CHARS:,} "
                                           f"are accepted")
    if len(raw_query.encode("utf-8")) > MAX_QUERY_BYTES:
        raise Refusal(414, "URI Too Long", f"the query string is {len(raw_query.encode('utf-8')):,} bytes; at most "
                                           f"{MAX_QUERY_BYTES:,} are accepted")
    matched = match_route(raw_path, routes)
    if matched is None:
        shown = raw_path if len(raw_path) <= 100 else raw_path[:100] + "..."
        raise Refusal(404, "Not Found", f"no route {method} {shown}; GET /openapi.json lists the routes of this API")
    template, path_parameters = matched
    headers = {str(name): str(value) for name, value in (event.get("headers") or {}).items()}
    cookies = event.get("cookies")
    if isinstance(cookies, list) and cookies:  # a function URL moves the Cookie header here
        headers["cookie"] = "; ".join(str(cookie) for cookie in cookies)
    multi_query = query_parameters(raw_query)
    identity = {"sourceIp": http.get("sourceIp"), "userAgent": http.get("userAgent")}
    return {
        "resource": template,
        "path": raw_path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} if multi_query else None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": template, "httpMethod": method, "path": raw_path,
            "requestId": context.get("requestId"), "identity": identity, "stage": context.get("stage") or "$default",
            "accountId": context.get("accountId"), "apiId": context.get("apiId"),
            "domainName": context.get("domainName"), "domainPrefix": context.get("domainPrefix"),
            "protocol": http.get("protocol"), "requestTime": context.get("time"),
            "requestTimeEpoch": context.get("timeEpoch"), "front": FRONT,
        },
        "body": event.get("body"),
        "isBase64Encoded": bool(event.get("isBase64Encoded", False)),
    }


def query_parameters(raw_query: str) -> Dict[str, List[str]]:
    """Every value of every key, in order, decoded as API Gateway REST decodes a query string."""
    values: Dict[str, List[str]] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return values


def match_route(raw_path: str, routes: Iterable[str]) -> Optional[Tuple[str, Dict[str, str]]]:
    """(route template, path parameters) for ``raw_path``, or None when no route matches."""
    path = raw_path[:-1] if raw_path != "/" and raw_path.endswith("/") else raw_path
    segments = path.split("/")
    for template in _templates_by_preference(tuple(routes)).get(len(segments), ()):
        captured: Dict[str, str] = {}
        for given, expected in zip(segments, template.split("/")):
            if expected.startswith("{") and expected.endswith("}"):
                if not given:
                    break
                captured[expected[1:-1]] = given
            elif given != expected:
                break
        else:
            return template, captured
    return None


@functools.lru_cache(maxsize=4)
def _templates_by_preference(routes: Tuple[str, ...]) -> Dict[int, List[str]]:
    """Templates by segment count, the most specific first: at the first segment where two differ, a
    literal before a ``{var}`` (API Gateway's rule; ``sorted`` alone would put ``{`` after letters only)."""
    def specificity(template: str) -> Tuple[int, ...]:
        return tuple(1 if part.startswith("{") else 0 for part in template.split("/"))

    grouped: Dict[int, List[str]] = {}
    for template in sorted(routes, key=lambda t: (specificity(t), t)):
        grouped.setdefault(len(template.split("/")), []).append(template)
    return grouped


def to_function_url_response(response: Mapping[str, Any]) -> Dict[str, Any]:
    """Chalice's answer in the shape a function URL accepts: single-valued headers and ``cookies``."""
    headers: Dict[str, str] = {}
    cookies: List[str] = []
    multi: Mapping[str, Any] = response.get("multiValueHeaders") or {}
    for name, value in list((response.get("headers") or {}).items()) + list(multi.items()):
        values = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        if name.lower() == "set-cookie":  # cookies cannot be joined with commas: a function URL sends each
            cookies.extend(values)
        elif values:
            headers[name] = ", ".join(([headers[name]] if name in headers else []) + values)
    answer: Dict[str, Any] = {"statusCode": response.get("statusCode", 200), "headers": headers,
                              "body": response.get("body") or "",
                              "isBase64Encoded": bool(response.get("isBase64Encoded", False))}
    if cookies:
        answer["cookies"] = cookies
    return answer


class SocialcareChalice(Chalice):
    """Chalice, answering a Lambda function URL's events as it answers API Gateway REST's."""

    def __call__(self, event: Any, context: Any) -> Dict[str, Any]:
        if not is_function_url_event(event):
            return super().__call__(event, context)
        try:
            rest_event = to_rest_event(event, self.routes)
        except Refusal as refusal:
            return to_function_url_response(refusal.response)
        return to_function_url_response(super().__call__(rest_event, context))
