"""The writer's last keyring write and which replicas caught up with it: one object in the stack's bucket (boto3).

``state/replication.json`` (``{"generation": N, "written_at": ISO 8601, "caught_up": {region: generation}}``), next to
the tick ledger: the bucket policy lets no principal but the rotate role write it and CloudFront never serves it.
A missing, unreadable or malformed object reads as None (the measurement starts again at the next write): the
ledger can only cost a lag figure, never a rotation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.ports import ReplicationRecord

REPLICATION_LEDGER_KEY = "state/replication.json"
MAX_BYTES = 16384


class S3ReplicationLedger:
    """:class:`jwks_rotator.core.ports.ReplicationLedger` on the stack's bucket."""

    def __init__(self, client: Any, bucket: str, key: str = REPLICATION_LEDGER_KEY) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key

    def load(self) -> ReplicationRecord | None:
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._key)["Body"].read(MAX_BYTES)
        except AWS_ERRORS:
            return None
        return _decode(body)

    def save(self, record: ReplicationRecord) -> None:
        body = json.dumps({"generation": record.generation, "written_at": record.written_at.isoformat(),
                           "caught_up": dict(record.caught_up)}, separators=(",", ":")).encode()
        try:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=body, ContentType="application/json", CacheControl="no-store")
        except AWS_ERRORS as exc:
            code = error_code(exc)
            raise StoreError(f"cannot keep the replication record in s3://{self._bucket}/{self._key}: {code}", reason=code) from None


def _decode(body: bytes) -> ReplicationRecord | None:
    try:
        document = json.loads(body)
        generation, caught_up = document["generation"], document["caught_up"]
        written_at = datetime.fromisoformat(document["written_at"])
    except (ValueError, KeyError, TypeError):
        return None
    if type(generation) is not int or generation < 0 or written_at.tzinfo is None or not isinstance(caught_up, Mapping):
        return None
    if not all(isinstance(region, str) and type(seen) is int for region, seen in caught_up.items()):
        return None
    return ReplicationRecord(generation, written_at, dict(caught_up))
