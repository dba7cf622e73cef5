"""The signer's read of the keyring: the ``AWSCURRENT`` version of the secret, nothing pending.

Implements :class:`jwks_rotator.core.ports.KeyringReader` over a boto3
Secrets Manager client. Every failure, the service's, the transport's or a
response of the wrong shape, surfaces as :class:`StoreError` whose message
and ``reason`` carry the AWS error code only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.ports import StoredKeyring

CURRENT_STAGE = "AWSCURRENT"
MALFORMED = "MalformedResponse"


class SecretValueClient(Protocol):
    """The one Secrets Manager call the reader makes (a boto3 client has it)."""

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> Mapping[str, Any]: ...


class SecretsManagerKeyringReader:
    """Reads the current keyring version with ``GetSecretValue``."""

    def __init__(self, client: SecretValueClient, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def read_current(self) -> StoredKeyring:
        try:
            response = self._client.get_secret_value(SecretId=self._secret_id, VersionStage=CURRENT_STAGE)
        except AWS_ERRORS as exc:
            raise _unreadable(error_code(exc)) from None
        version_id = response.get("VersionId")
        text = response.get("SecretString")
        if type(version_id) is not str or type(text) is not str:
            raise _unreadable(MALFORMED)
        return StoredKeyring(version_id, text)


def _unreadable(reason: str) -> StoreError:
    return StoreError(f"the keyring secret could not be read ({reason})", reason=reason)
