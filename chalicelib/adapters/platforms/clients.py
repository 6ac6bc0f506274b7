"""The platform clients of one container, built on first use from the secret.

A client is rebuilt when the secret values it was built from change: the X
user token is refreshed every two hours or so (``refresh_x_token``), and a
person may replace a Meta token. ``PlatformSecrets`` caches the secret for
five minutes, so a rotated token reaches every container within that time,
without a deploy.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Mapping, Tuple

# The secret values each client is built from.
X_KEYS = ("x_bearer_token", "x_user_token")
GRAPH_KEYS = ("meta_access_token",)


class LazyPlatformClients:
    def __init__(self, x_api_base_url: str, graph_api_base_url: str, secrets: Callable[[], Mapping[str, str]]):
        self.x_api_base_url = x_api_base_url
        self.graph_api_base_url = graph_api_base_url
        self.secrets = secrets
        self._clients: Dict[str, Tuple[Tuple[str, ...], Any]] = {}
        self._lock = threading.Lock()

    def _current(self, name: str, keys: Tuple[str, ...], build: Callable[[Mapping[str, str]], Any]) -> Any:
        creds = self.secrets()
        values = tuple(str(creds.get(key) or "") for key in keys)
        with self._lock:  # the scheduled fetch polls sources from several threads
            cached = self._clients.get(name)
            if cached is None or cached[0] != values:
                self._clients[name] = (values, build(creds))
            return self._clients[name][1]

    def x(self) -> Any:
        def build(creds: Mapping[str, str]) -> Any:
            from chalicelib.adapters.platforms.x import XClient

            return XClient(self.x_api_base_url, creds.get("x_bearer_token", ""), creds.get("x_user_token") or None)

        return self._current("x", X_KEYS, build)

    def graph(self) -> Any:
        def build(creds: Mapping[str, str]) -> Any:
            from chalicelib.adapters.platforms.meta import GraphClient

            return GraphClient(self.graph_api_base_url, creds.get("meta_access_token", ""))

        return self._current("graph", GRAPH_KEYS, build)
