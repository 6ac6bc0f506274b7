"""Learned triage models, read from S3 (a version of a versioned object: ``s3://bucket/key?versionId=...``)."""
from __future__ import annotations

from typing import Any, Dict

from chalicelib.adapters.aws import client


class S3ModelSource:
    def load(self, uri: str) -> bytes:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise ValueError(f"TRIAGE_MODEL_URI must look like s3://bucket/key, not {uri!r}")
        location, _, version_id = uri[5:].partition("?versionId=")
        bucket, key = location.split("/", 1)
        kwargs: Dict[str, Any] = {"VersionId": version_id} if version_id else {}
        return client("s3").get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()
