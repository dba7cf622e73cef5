"""Secrets Manager and S3 for ``promote`` and the writer fence: replica secrets, the old primary's probe, writer marks.

* :class:`SecretsManagerReplicaSecret`: is this region's secret a replica (``DescribeSecret``'s ``PrimaryRegion``), and
  ``StopReplicationToReplica`` (called in the replica's own region, so it works while the primary's region is down).
* :class:`SecretsManagerPrimaryProbe`: one ``GetSecretValue`` of the keyring secret in the old primary's region, with a
  short timeout and a single attempt. No answer (a transport failure, a timeout) or an HTTP 5xx is *unreachable*; any
  other answer is the old primary's, and only its keyring's ``primary_region`` says whether it stepped down.
* :class:`SecretsManagerWriterMarks` and :class:`S3OriginMarks`: the keyring generation and writer region each other
  region's keyring secret, and each origin's JWKS object (its ``keyring-generation`` and ``writer-region`` metadata),
  carry; None where they cannot be read.

Errors and logs name AWS error codes only, never a stored value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.adapters.sdk.s3_publisher import GENERATION_METADATA, WRITER_METADATA
from jwks_rotator.core.errors import JwksRotatorError, StoreError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.ports import PrimaryAnswer, WriterMark

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")


def secret_in_region(secret_id: str, region: str) -> str:
    """The same secret's id in ``region``: a replica keeps its primary's name, and its ARN differs only in the region."""
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "secretsmanager":
        parts[3] = region
        return ":".join(parts)
    return secret_id


class SecretsManagerReplicaSecret:
    """One secret in this region's Secrets Manager, which may replicate another region's."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def replicated_from(self) -> str | None:
        try:
            described = self._client.describe_secret(SecretId=self._secret_id)
        except AWS_ERRORS as exc:
            code = error_code(exc)
            raise StoreError(f"cannot describe secret {self._secret_id}: {code}", reason=code) from None
        primary = described.get("PrimaryRegion")
        return primary if isinstance(primary, str) and primary and primary != _region_of(described.get("ARN")) else None

    def stop_replication(self) -> None:
        try:
            self._client.stop_replication_to_replica(SecretId=self._secret_id)
        except AWS_ERRORS as exc:
            code = error_code(exc)
            raise StoreError(f"cannot stop replication to {self._secret_id}: {code}", reason=code) from None


def _region_of(arn: object) -> str | None:
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[3] if len(parts) >= 7 else None


def _unreachable(exc: BaseException) -> bool:
    """No answer from the region: a transport failure or timeout, or an HTTP 5xx (AWS's own failure, an outage).

    A client-side error (no credentials, a malformed request) is no evidence the region is down: it counts as an
    answer, so promote refuses rather than take over from a primary that may still be writing.
    """
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and status >= 500
    return isinstance(exc, (AwsConnectionError, HTTPClientError))


class SecretsManagerPrimaryProbe:
    """``probe(region)``: the old primary's keyring secret, read once through ``client_for(region)`` (short timeouts)."""

    def __init__(self, client_for: Callable[[str], Any], secret_id: str, *, logger: Any = None) -> None:
        self._client_for = client_for
        self._secret_id = secret_id
        self._log = logger or logging.getLogger("jwks_rotator")

    def probe(self, region: str) -> PrimaryAnswer:
        try:
            response = self._client_for(region).get_secret_value(SecretId=secret_in_region(self._secret_id, region), VersionStage="AWSCURRENT")
        except AWS_ERRORS as exc:
            code = error_code(exc)
            self._log.info("old primary probed", extra={"region": region, "reason": code})
            return PrimaryAnswer(reachable=not _unreachable(exc), reason=code)
        try:
            keyring = Keyring.from_json(response.get("SecretString") or "")
        except JwksRotatorError as exc:
            return PrimaryAnswer(reachable=True, reason=exc.code)
        return PrimaryAnswer(reachable=True, keyring_marker=keyring.primary_region, generation=keyring.generation)


class SecretsManagerWriterMarks:
    """The writer mark of the keyring secret in each of ``clients``' regions (by the secret's id in that region)."""

    def __init__(self, clients: Mapping[str, Any], secret_id: str, *, logger: Any = None) -> None:
        self._clients = dict(clients)
        self._secret_id = secret_id
        self._log = logger or logging.getLogger("jwks_rotator")

    def marks(self) -> Mapping[str, WriterMark | None]:
        marks: dict[str, WriterMark | None] = {}
        for region, client in sorted(self._clients.items()):
            name = f"the keyring secret in {region}"
            try:
                response = client.get_secret_value(SecretId=secret_in_region(self._secret_id, region), VersionStage="AWSCURRENT")
                keyring = Keyring.from_json(response.get("SecretString") or "")
            except AWS_ERRORS as exc:
                self._log.info("keyring secret unreadable for the writer fence", extra={"region": region, "reason": error_code(exc)})
                marks[name] = None
                continue
            except JwksRotatorError as exc:
                self._log.info("keyring secret holds no valid keyring", extra={"region": region, "reason": exc.code})
                marks[name] = None
                continue
            marks[name] = WriterMark(keyring.generation, keyring.primary_region or "")
        return marks


class S3OriginMarks:
    """The writer mark of each origin's JWKS object: ``(name, s3 client, bucket)`` per origin; no object yet is generation 0."""

    def __init__(self, origins: Sequence[tuple[str, Any, str]], *, logger: Any = None) -> None:
        self._origins = tuple(origins)
        self._log = logger or logging.getLogger("jwks_rotator")

    def marks(self) -> Mapping[str, WriterMark | None]:
        marks: dict[str, WriterMark | None] = {}
        for name, client, bucket in self._origins:
            try:
                head = client.head_object(Bucket=bucket, Key=JWKS_PATH)
            except AWS_ERRORS as exc:
                code = error_code(exc)
                if code in ("404", "NoSuchKey", "NotFound"):
                    marks[name] = WriterMark(0)
                    continue
                self._log.info("origin unreadable for the writer fence", extra={"origin": name, "reason": code})
                marks[name] = None
                continue
            metadata = head.get("Metadata") or {}
            generation = str(metadata.get(GENERATION_METADATA, ""))
            writer = str(metadata.get(WRITER_METADATA, ""))
            known = writer if _REGION.fullmatch(writer) else ""  # anything else is no region (and never reaches a message)
            marks[name] = WriterMark(int(generation) if generation.isdigit() and len(generation) <= 20 else 0, known)
        return marks
