"""Helpers for the tests that call the HTTP API through Chalice's test client."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

JSON = {"Content-Type": "application/json"}


def call(client: Any, method: str, path: str, headers: Dict[str, str], body: Optional[Any] = None) -> Any:
    """One request with a JSON body (a string is sent as it is: a test of what the API makes of bad JSON)."""
    return client.http.request(method, path, headers={**headers, **JSON},
                               body=None if body is None else (body if isinstance(body, str) else json.dumps(body)))


def frozen_clock(start: str) -> Dict[str, str]:
    """The time every service sees, from ``start`` on; a test moves it by setting ``clock["now"]``."""
    from chalicelib.bootstrap import deps

    state = {"now": start}
    deps().now = lambda: state["now"]
    return state
