"""A small JSON-over-HTTPS client on the standard library.

``requests`` would add cold-start time to every Lambda for what urllib does
here in a page: timeouts, retries with backoff and jitter on 5xx and network
errors, and the response headers that carry rate-limit state.

Only reads are retried. A write (POST) whose answer is lost may have been
carried out: retrying it blindly would post a reply twice, so the caller gets
the failure and decides (``TransportError.maybe_sent`` says whether the
request could have reached the platform at all).
"""
from __future__ import annotations

import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional

from chalicelib.adapters.metering import platform_call
from chalicelib.domain.errors import TransientFailure


@dataclass
class Response:
    status: int
    headers: Dict[str, str]
    body: Any
    text: str = ""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


class HttpError(Exception):
    """The platform answered with an error status (after retries, for 5xx)."""

    def __init__(self, response: Response, message: str = ""):
        self.response = response
        self.status = response.status
        super().__init__(message or f"HTTP {response.status}: {response.text[:300]}")


class TransportError(TransientFailure):
    """No answer at all: connection refused, DNS, timeout (after retries, for reads)."""

    def __init__(self, message: str, *, maybe_sent: bool = True):
        super().__init__(message)
        # False only when the request certainly never left (refused connection, unknown host).
        self.maybe_sent = maybe_sent


RETRIED_METHODS = ("GET", "HEAD")


@dataclass
class HttpClient:
    base_url: str
    default_headers: Dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    retries: int = 2
    backoff_base: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def request(self, method: str, path: str, *, params: Optional[Mapping[str, Any]] = None,
                json_body: Any = None, form: Optional[Mapping[str, Any]] = None,
                headers: Optional[Mapping[str, str]] = None) -> Response:
        url = self.base_url.rstrip("/") + "/" + path.lstrip("/")
        if params:
            clean = {k: v for k, v in params.items() if v is not None and v != ""}
            url += "?" + urllib.parse.urlencode(clean)
        data = None
        all_headers = {"Accept": "application/json", **self.default_headers, **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode("utf-8")
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        attempt = 0
        retries = self.retries if method.upper() in RETRIED_METHODS else 0
        while True:
            try:
                response = self._send(method, url, data, all_headers)
            except TransportError:
                if attempt >= retries:
                    raise
            else:
                platform_call(method, url, data, response)  # priced platform usage, for the cost report
                if response.status < 500 or attempt >= retries:
                    if response.status >= 400:
                        raise HttpError(response)
                    return response
            attempt += 1
            # Full jitter: spreads retries of many invocations hitting one outage.
            self.sleep(random.uniform(0, self.backoff_base * (2 ** attempt)))

    def _send(self, method: str, url: str, data: Optional[bytes], headers: Dict[str, str]) -> Response:
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as raw:
                return _response(raw.status, raw.headers, raw.read())
        except urllib.error.HTTPError as err:
            return _response(err.code, err.headers, err.read())
        except urllib.error.URLError as err:
            # urlopen wraps failures to connect (refused, unknown host): nothing was sent.
            reason = getattr(err, "reason", None)
            never_sent = isinstance(reason, (ConnectionRefusedError, socket.gaierror))
            raise TransportError(f"{url.split('?')[0]}: {err}", maybe_sent=not never_sent) from err
        except (socket.timeout, ConnectionError, TimeoutError, http.client.HTTPException) as err:
            raise TransportError(f"{url.split('?')[0]}: {err}", maybe_sent=True) from err


def _response(status: int, headers: Any, payload: bytes) -> Response:
    text = payload.decode("utf-8", errors="replace")
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    return Response(status=status, headers={k.lower(): v for k, v in headers.items()}, body=body, text=text)
