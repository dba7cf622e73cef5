"""The stack's revocation record as one object in its bucket (boto3): written by the rotate role only.

``revocations/revoked-kids.json`` (:data:`~jwks_rotator.core.keys.revocation_guard.RECORD_KEY`):
the bucket policy denies every object write to any principal but the rotate
role, and CloudFront's origin access reads ``.well-known/*`` only, so the
record is neither served nor changeable from outside the stack, and no
restore of a secret or an SSM parameter reaches it.
"""

from __future__ import annotations

from typing import Any

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.keys.revocation_guard import RECORD_KEY, decode_record, encode_record

_MISSING = ("404", "NoSuchKey", "NotFound")


class S3RevocationRecord:
    """:class:`jwks_rotator.core.ports.RevocationRecord` on the stack's bucket."""

    def __init__(self, client: Any, bucket: str, key: str = RECORD_KEY) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key

    def load(self) -> tuple[str, ...] | None:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._key)
            body = answer["Body"].read()
        except AWS_ERRORS as exc:
            code = error_code(exc)
            if code in _MISSING:
                return None
            raise StoreError(f"cannot read the revocation record s3://{self._bucket}/{self._key}: {code}", reason=code) from None
        return decode_record(body)

    def save(self, kids: tuple[str, ...]) -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket, Key=self._key, Body=encode_record(kids), ContentType="application/json", CacheControl="no-store"
            )
        except AWS_ERRORS as exc:
            code = error_code(exc)
            raise StoreError(f"cannot write the revocation record s3://{self._bucket}/{self._key}: {code}", reason=code) from None
