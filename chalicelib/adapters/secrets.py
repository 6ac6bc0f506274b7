"""The platform credentials secret, through Powertools Parameters.

Powertools caches the value for five minutes across invocations, so a
rotated token is picked up without a deploy. The provider gets our own
lazily created client, so it follows the same endpoint and lifecycle.
"""
from __future__ import annotations

from typing import Any, Dict

from chalicelib.adapters.aws import client


class PlatformSecrets:
    def __init__(self, secret_id: str):
        self.secret_id = secret_id
        self._provider: Any = None

    def __call__(self) -> Dict[str, str]:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_client=client("secretsmanager"))
        value = self._provider.get(self.secret_id, transform="json", max_age=300)
        return value if isinstance(value, dict) else {}
