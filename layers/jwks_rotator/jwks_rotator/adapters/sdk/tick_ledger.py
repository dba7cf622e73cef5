"""When the last scheduled tick completed: one object in the stack's bucket (boto3), written by the rotate role only.

``state/last-tick.json`` (``{"completed_at": ISO 8601}``): the bucket policy lets no other principal write it and
CloudFront never serves it. A missing, unreadable or malformed object reads as None, so a tick runs: the ledger
can only make a tick skip, never make one fail.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.core.errors import StoreError

TICK_LEDGER_KEY = "state/last-tick.json"


class S3TickLedger:
    """:class:`jwks_rotator.core.ports.TickLedger` on the stack's bucket."""

    def __init__(self, client: Any, bucket: str, key: str = TICK_LEDGER_KEY) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key

    def last_completed(self) -> datetime | None:
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._key)["Body"].read(1024)
            moment = datetime.fromisoformat(json.loads(body)["completed_at"])
        except AWS_ERRORS:
            return None
        except (ValueError, KeyError, TypeError):
            return None
        return moment if moment.tzinfo is not None else None

    def record(self, at: datetime) -> None:
        body = json.dumps({"completed_at": at.isoformat()}).encode()
        try:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=body, ContentType="application/json", CacheControl="no-store")
        except AWS_ERRORS as exc:
            raise StoreError(f"cannot record the tick in s3://{self._bucket}/{self._key}: {error_code(exc)}", reason=error_code(exc)) from None
