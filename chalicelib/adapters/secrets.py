"""The platform credentials secret, through Powertools Parameters.

Powertools caches the value for five minutes across invocations, so a
rotated token is picked up without a deploy. The provider gets our own
lazily created client, so it follows the same endpoint and lifecycle.

``read`` and ``update`` serve the token refresher
(``chalicelib.services.credentials``): it must see the newest refresh token,
never a cached one (X rotates it on every use), and write the new pair back
into the same JSON object without touching the other platforms' values.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping

from chalicelib.adapters.aws import client

MAX_AGE_SECONDS = 300


class PlatformSecrets:
    def __init__(self, secret_id: str):
        self.secret_id = secret_id
        self._provider: Any = None

    def _secrets_provider(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_client=client("secretsmanager"))
        return self._provider

    def __call__(self) -> Dict[str, str]:
        value = self._secrets_provider().get(self.secret_id, transform="json", max_age=MAX_AGE_SECONDS)
        return value if isinstance(value, dict) else {}

    def read(self) -> Dict[str, Any]:
        """The secret as stored now (no cache); {} while it has no value yet (infra/template.yaml
        creates it empty). A missing secret, or a value that is not a JSON object, raises."""
        secrets_manager = client("secretsmanager")
        try:
            raw = secrets_manager.get_secret_value(SecretId=self.secret_id)["SecretString"]
        except secrets_manager.exceptions.ResourceNotFoundException as err:
            if "secret value" not in str(err):  # the secret itself is missing, not just its first value
                raise
            return {}
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError(f"secret {self.secret_id} is not a JSON object")
        return value

    def update(self, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the stored JSON object and write it as the new current version.

        Secrets Manager keeps the previous version (AWSPREVIOUS), so a bad
        write can be undone from the console. This container's cache is
        dropped, so its platform clients see the new values at once; other
        containers see them within ``MAX_AGE_SECONDS``.
        """
        merged = {**self.read(), **dict(changes)}
        client("secretsmanager").put_secret_value(SecretId=self.secret_id, SecretString=json.dumps(merged))
        self._secrets_provider().clear_cache()
