"""The platform clients of one container, built on first use from the secret."""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping


class LazyPlatformClients:
    def __init__(self, x_api_base_url: str, graph_api_base_url: str, secrets: Callable[[], Mapping[str, str]]):
        self.x_api_base_url = x_api_base_url
        self.graph_api_base_url = graph_api_base_url
        self.secrets = secrets
        self._clients: Dict[str, Any] = {}

    def x(self) -> Any:
        if "x" not in self._clients:
            from chalicelib.adapters.platforms.x import XClient

            creds = self.secrets()
            self._clients["x"] = XClient(self.x_api_base_url, creds.get("x_bearer_token", ""),
                                         creds.get("x_user_token") or None)
        return self._clients["x"]

    def graph(self) -> Any:
        if "graph" not in self._clients:
            from chalicelib.adapters.platforms.meta import GraphClient

            self._clients["graph"] = GraphClient(self.graph_api_base_url, self.secrets().get("meta_access_token", ""))
        return self._clients["graph"]
