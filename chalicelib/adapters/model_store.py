"""Learned triage model versions (issue 14): bytes in the model bucket, records on the settings table.

- Bytes: one object, ``triage/model.json.gz`` in the model bucket (``TRIAGE_MODELS_BUCKET``, the
  stack's ``ModelBucketName``), whose S3 versioning (on in infra/template.yaml) keeps every model;
  a version's ``uri`` is ``s3://<bucket>/triage/model.json.gz?versionId=<S3 version id>``, which
  ``S3ModelSource.load`` reads. One exact object, so a policy can name it without a wildcard.
- Records (settings table): pk ``TRIAGEMODEL``, sk ``VERSION#<version>``: the version's figures and
  uri as JSON (attribute ``r``), written once (conditional put); sk ``ACTIVE``: which version the
  triage stage uses, who switched to it and when. All versions are one Query (a few a month).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from chalicelib.adapters.aws import client
from chalicelib.adapters.dynamo import ddb, marshal, query_all, unmarshal
from chalicelib.adapters.stores import put_if
from chalicelib.domain.errors import Unavailable

_PK = "TRIAGEMODEL"
OBJECT_KEY = "triage/model.json.gz"


class DynamoS3ModelStore:
    def __init__(self, table: str, bucket: str):
        self.table, self.bucket = table, bucket

    def add_version(self, version: Dict[str, Any], blob: bytes) -> Optional[Dict[str, Any]]:
        if not self.bucket:
            raise Unavailable("no model bucket is configured, so no model can be stored: an operator sets "
                              "TRIAGE_MODELS_BUCKET to the stack's ModelBucketName (make deploy does)")
        if self.get_version(version["version"]) is not None:
            return None
        answer = client("s3").put_object(Bucket=self.bucket, Key=OBJECT_KEY, Body=blob,
                                         ContentType="application/gzip")
        if not answer.get("VersionId") or answer["VersionId"] == "null":
            # Without versioning the next model would overwrite this one: refuse before a record points at it.
            raise Unavailable(f"the model bucket {self.bucket} keeps no versions, so a new model would replace the "
                              "old one: an operator turns S3 versioning on (infra/template.yaml ModelBucket does)")
        uri = f"s3://{self.bucket}/{OBJECT_KEY}?versionId={answer['VersionId']}"
        record = {**version, "uri": uri}
        body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        if not put_if(self.table, {"pk": _PK, "sk": f"VERSION#{version['version']}", "r": body},
                      "attribute_not_exists(pk)"):
            return None
        return record

    def get_version(self, version: str) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": _PK, "sk": f"VERSION#{version}"}),
                              ConsistentRead=True).get("Item")
        return json.loads(unmarshal(item)["r"]) if item else None

    def list_versions(self) -> List[Dict[str, Any]]:
        items = query_all(TableName=self.table, KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                          ExpressionAttributeValues=marshal({":p": _PK, ":s": "VERSION#"}))
        records = [json.loads(item["r"]) for item in items]
        return sorted(records, key=lambda r: (r.get("created_at", ""), r["version"]), reverse=True)

    def active(self) -> Optional[Dict[str, Any]]:
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": _PK, "sk": "ACTIVE"})).get("Item")
        if not item:
            return None
        pointer = unmarshal(item)
        record = self.get_version(pointer["version"])
        return {**record, "activated_by": pointer.get("by"), "activated_at": pointer.get("at")} if record else None

    def activate(self, version: str, *, by: str, at: str) -> None:
        ddb().put_item(TableName=self.table, Item=marshal({"pk": _PK, "sk": "ACTIVE", "version": version,
                                                           "by": by, "at": at}))
