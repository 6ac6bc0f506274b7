"""The composition root: real adapters, built lazily, once per container.

Handlers ask for ``deps()``; tests build a ``Deps`` of fakes or of moto-backed
adapters instead. Nothing here runs at import time.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from chalicelib.clock import now_iso
from chalicelib.config import Settings, settings


@dataclass
class Deps:
    config: Settings
    cases: Any
    mentions: Any
    settings: Any
    mentions_queue: Any
    triaged_queue: Any
    outbound_queue: Any
    dead_letters: Dict[str, Any]
    secrets: Callable[[], Dict[str, str]]
    now: Callable[[], str] = now_iso
    epoch: Callable[[], float] = time.time
    platform_clients: Dict[str, Any] = field(default_factory=dict)
    _rules_cache: Dict[str, Any] = field(default_factory=dict)
    _model_cache: Dict[str, Any] = field(default_factory=dict)

    def rules(self):
        """The supervisors' current triage rules, re-read at most once a minute."""
        from chalicelib.triage_rules import current_rules

        return current_rules(self.settings, self._rules_cache, self.epoch())

    def model(self):
        """The brand's learned triage model, loaded once per container; None when not configured."""
        uri = self.config.triage_model_uri
        if not uri:
            return None
        if uri not in self._model_cache:
            from chalicelib.triage import load_model

            self._model_cache[uri] = load_model(self.model_bytes(uri))
        return self._model_cache[uri]

    def model_bytes(self, uri: str) -> bytes:
        from chalicelib.adapters.aws import client

        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise ValueError(f"TRIAGE_MODEL_URI must look like s3://bucket/key, not {uri!r}")
        bucket, key = uri[5:].split("/", 1)
        return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def x_client(self):
        if "x" not in self.platform_clients:
            from chalicelib.platforms.x import XClient

            creds = self.secrets()
            self.platform_clients["x"] = XClient(
                self.config.x_api_base_url, creds.get("x_bearer_token", ""), creds.get("x_user_token") or None,
            )
        return self.platform_clients["x"]

    def graph_client(self):
        if "graph" not in self.platform_clients:
            from chalicelib.platforms.meta import GraphClient

            self.platform_clients["graph"] = GraphClient(
                self.config.graph_api_base_url, self.secrets().get("meta_access_token", ""),
            )
        return self.platform_clients["graph"]


class PlatformSecrets:
    """The platform credentials secret, through Powertools Parameters.

    Powertools caches the value for five minutes across invocations, so a
    rotated token is picked up without a deploy. The provider gets our own
    lazily created client, so it follows the same endpoint and lifecycle.
    """

    def __init__(self, secret_id: str):
        self.secret_id = secret_id
        self._provider = None

    def __call__(self) -> Dict[str, str]:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            from chalicelib.adapters.aws import client

            self._provider = SecretsProvider(boto3_client=client("secretsmanager"))
        value = self._provider.get(self.secret_id, transform="json", max_age=300)
        return value if isinstance(value, dict) else {}


def build_deps(config: Optional[Settings] = None) -> Deps:
    from chalicelib.adapters.queues import Queue
    from chalicelib.adapters.stores import CaseStore, MentionStore, SettingsStore

    config = config or settings()
    return Deps(
        config=config,
        cases=CaseStore(config.cases_table),
        mentions=MentionStore(config.mentions_table),
        settings=SettingsStore(config.settings_table),
        mentions_queue=Queue(config.mentions_queue),
        triaged_queue=Queue(config.triaged_queue),
        outbound_queue=Queue(config.outbound_queue),
        dead_letters={
            "mentions": Queue(config.mentions_dlq),
            "triaged": Queue(config.triaged_dlq),
            "outbound": Queue(config.outbound_dlq),
        },
        secrets=PlatformSecrets(config.platform_secret_id),
    )


@functools.lru_cache(maxsize=1)
def deps() -> Deps:
    return build_deps()
