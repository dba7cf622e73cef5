"""The sign function's boto3 route: the keyring and revocation readers over Secrets Manager and SSM, and the KMS client.

Used when no Parameters and Secrets extension is configured (or the caller hands in its own client factory), and
for the first KMS signature. Kept apart from :mod:`jwks_rotator.bootstrap.sign` so that the extension route never
imports boto3 or botocore (pyproject's import contracts name this module as the sign path's one way to an SDK).
"""

from __future__ import annotations

from typing import Any

from jwks_rotator.adapters.sdk.clients import SIGNING, ClientFactory, client_factory, make_client
from jwks_rotator.adapters.sdk.revocation_object import S3RevocationRecord
from jwks_rotator.adapters.sdk.revocation_parameter import SsmRevocationReader
from jwks_rotator.adapters.sdk.secret_reader import SecretsManagerKeyringReader


def sdk_clients(clients: ClientFactory | None) -> ClientFactory:
    """The factory given, else boto3 clients with the sign function's timeouts (:data:`SIGNING`)."""
    return clients if clients is not None else client_factory(SIGNING)


def sdk_readers(
    clients: ClientFactory, secret_id: str, revocation_parameter: str
) -> tuple[SecretsManagerKeyringReader, SsmRevocationReader]:
    """The keyring reader (Secrets Manager) and the revocation reader (SSM) over ``clients``."""
    return SecretsManagerKeyringReader(clients("secretsmanager"), secret_id), SsmRevocationReader(clients("ssm"), revocation_parameter)


def sdk_record(clients: ClientFactory, bucket: str) -> S3RevocationRecord:
    """The revocation record in the stack's bucket, read with boto3 (the signer never writes it)."""
    return S3RevocationRecord(clients("s3"), bucket)


def kms_client() -> Any:
    """A KMS client with the sign function's timeouts: made at the first KMS signature of a signer on the extension route."""
    return make_client("kms", SIGNING)
