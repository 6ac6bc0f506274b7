"""Customers' media files in the stack's private media bucket (infra/template.yaml MediaBucket).

WhatsApp media URLs expire within minutes, so the triage stage copies each file here when the
message arrives. Agents read a file through a presigned GET URL that lives a few minutes; the
bucket stays private and encrypted, and its lifecycle deletes files after the retention period.

The store owns its keys: callers name a file by (mention id, position) and keep the opaque
reference ``put`` returns.
"""
from __future__ import annotations

import hashlib
from typing import Optional

from chalicelib.adapters.aws import client
from chalicelib.domain.errors import TransientFailure
from chalicelib.domain.media import MAX_MEDIA_PER_MENTION

KEY_PREFIX = "inbound/"


class S3MediaStore:
    def __init__(self, bucket: str):
        self.bucket = bucket

    @staticmethod
    def _key(mention_id: str, index: int) -> str:
        # Hashed: a mention id holds a platform's ids (personal data stays out of object keys and logs).
        return f"{KEY_PREFIX}{hashlib.sha256(mention_id.encode('utf-8')).hexdigest()[:40]}/{int(index)}"

    def put(self, mention_id: str, index: int, data: bytes, *, content_type: str) -> str:
        """Store one file (repeatable: the same mention and position overwrite the same key); its reference."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(mention_id, index)
        try:
            client("s3").put_object(Bucket=self.bucket, Key=key, Body=data,
                                    ContentType=content_type or "application/octet-stream",
                                    ServerSideEncryption="AES256")
        except (ClientError, BotoCoreError) as err:
            raise TransientFailure(f"the media bucket refused the file: {err}") from None
        return key

    def find(self, mention_id: str, index: int) -> Optional[str]:
        """The reference of a file stored earlier for this mention and position, else None."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(mention_id, index)
        try:
            client("s3").head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise TransientFailure(f"the media bucket could not be read: {err}") from None
        except BotoCoreError as err:
            raise TransientFailure(f"the media bucket could not be read: {err}") from None
        return key

    def forget(self, mention_id: str) -> None:
        """Delete every file of a mention (erasure): its keys are known, so nothing is listed."""
        from botocore.exceptions import BotoCoreError, ClientError

        keys = [{"Key": self._key(mention_id, index)} for index in range(MAX_MEDIA_PER_MENTION)]
        try:
            client("s3").delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        except (ClientError, BotoCoreError) as err:
            raise TransientFailure(f"the media bucket could not delete the files: {err}") from None

    def read(self, ref: str, *, max_bytes: int) -> bytes:
        """A stored file's bytes (refused above ``max_bytes``)."""
        from botocore.exceptions import BotoCoreError, ClientError

        self._check(ref)
        try:
            answer = client("s3").get_object(Bucket=self.bucket, Key=ref)
            if int(answer.get("ContentLength") or 0) > max_bytes:
                raise ValueError(f"the stored file is larger than {max_bytes} bytes")
            return bytes(answer["Body"].read(max_bytes + 1))[:max_bytes + 1]
        except (ClientError, BotoCoreError) as err:
            raise TransientFailure(f"the media bucket could not be read: {err}") from None

    def url(self, ref: str, *, expires_in: int) -> str:
        """A presigned GET URL for a stored file, valid ``expires_in`` seconds (no call to S3)."""
        self._check(ref)
        return str(client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": ref}, ExpiresIn=int(expires_in)))

    @staticmethod
    def _check(ref: str) -> None:
        if not isinstance(ref, str) or not ref.startswith(KEY_PREFIX) or ".." in ref:
            raise ValueError("not a media reference this store issued")
