"""The writer's replication record in the stack's bucket: kept as written, and anything unreadable reads as nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jwks_rotator.adapters.sdk.replication_ledger import REPLICATION_LEDGER_KEY, S3ReplicationLedger
from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.ports import ReplicationRecord


class Bucket:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.refuse: str | None = None

    def _refused(self, operation: str) -> None:
        if self.refuse is not None:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "no"}}, operation)

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self._refused("GetObject")
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        self._refused("PutObject")
        self.objects[Key] = Body


def test_a_record_is_read_back_as_written() -> None:
    bucket = Bucket()
    ledger = S3ReplicationLedger(bucket, "b")
    assert ledger.load() is None
    record = ReplicationRecord(12, datetime(2026, 5, 1, tzinfo=UTC), {"eu-west-1": 12, "ap-south-1": 13})
    ledger.save(record)
    assert REPLICATION_LEDGER_KEY in bucket.objects and ledger.load() == record


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"generation": "12", "written_at": "2026-05-01T00:00:00+00:00", "caught_up": {}}',
    b'{"generation": -1, "written_at": "2026-05-01T00:00:00+00:00", "caught_up": {}}',
    b'{"generation": 1, "written_at": "2026-05-01T00:00:00", "caught_up": {}}',
    b'{"generation": 1, "written_at": "2026-05-01T00:00:00+00:00", "caught_up": {"eu-west-1": "1"}}',
    b'{"generation": 1, "written_at": "2026-05-01T00:00:00+00:00", "caught_up": []}',
])
def test_a_malformed_record_reads_as_none(body: bytes) -> None:
    bucket = Bucket()
    bucket.objects[REPLICATION_LEDGER_KEY] = body
    assert S3ReplicationLedger(bucket, "b").load() is None


def test_an_unreadable_record_reads_as_none_and_an_unwritable_one_raises_a_store_error_naming_the_code() -> None:
    bucket = Bucket()
    bucket.refuse = "AccessDenied"
    ledger = S3ReplicationLedger(bucket, "b")
    assert ledger.load() is None
    with pytest.raises(StoreError) as refused:
        ledger.save(ReplicationRecord(1, datetime(2026, 5, 1, tzinfo=UTC), {}))
    assert refused.value.reason == "AccessDenied"
