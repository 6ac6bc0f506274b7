"""Learned triage models, read from S3."""
from __future__ import annotations

from chalicelib.adapters.aws import client


class S3ModelSource:
    def load(self, uri: str) -> bytes:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise ValueError(f"TRIAGE_MODEL_URI must look like s3://bucket/key, not {uri!r}")
        bucket, key = uri[5:].split("/", 1)
        return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
