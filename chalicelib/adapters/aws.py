"""boto3 clients, created lazily and once per container.

Importing boto3 costs more than the rest of the app together, and a Lambda
that serves a health check or a webhook signature refusal should not pay it.
Locally, boto3 itself honours AWS_ENDPOINT_URL, so the same code talks to
moto's server without a branch here.
"""
from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=None)
def client(service: str) -> Any:
    import boto3  # lazy: see module docstring
    from botocore.config import Config

    from chalicelib.adapters.metering import instrument
    from chalicelib.config import settings

    # Every request through our clients is counted for the cost report (adapters/metering.py).
    return instrument(boto3.client(
        service,
        region_name=settings().region,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10),
    ))


def reset_clients() -> None:
    """Forget cached clients (tests switch between moto backends)."""
    client.cache_clear()
