"""Keyring storage in AWS Secrets Manager with compare-and-swap writes.

Every write puts a new secret version under a staging label of our own and
then moves ``AWSCURRENT`` to it with ``RemoveFromVersionId`` set to the
version the writer read. If another writer moved ``AWSCURRENT`` in between,
Secrets Manager refuses the move and the write is reported as a conflict:
two rotators racing can never silently overwrite each other.
"""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from jwks_rotator.core.errors import KeyringConflictError, StoreError
from jwks_rotator.core.keyring import EMPTY_KEYRING_JSON, Keyring
from jwks_rotator.core.ports import VersionedKeyring

CURRENT = "AWSCURRENT"
STAGED = "JWKSROTATOR_STAGED"
# A fixed request token makes the first write idempotent: racing initialisers
# write the same empty document under the same version id.
INITIAL_VERSION_ID = "00000000-0000-4000-8000-6a776b73696e"


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class SecretsManagerKeyringStore:
    """The keyring as the ``AWSCURRENT`` version of one secret."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def load(self) -> VersionedKeyring:
        """Read the current version; a secret with no value yet is initialised empty."""
        try:
            response = self._client.get_secret_value(SecretId=self._secret_id, VersionStage=CURRENT)
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException" and self._secret_exists():
                return self._initialise()
            raise StoreError(f"cannot read keyring secret {self._secret_id}: {_error_code(exc)}") from None
        except BotoCoreError as exc:
            raise StoreError(f"cannot read keyring secret {self._secret_id}: {_error_code(exc)}") from None
        text = response.get("SecretString") or EMPTY_KEYRING_JSON
        return VersionedKeyring(Keyring.from_json(text), response["VersionId"])

    def save(self, keyring: Keyring, expected_version_id: str) -> str:
        """Write ``keyring`` as the new current version if ``expected_version_id`` is still current."""
        version_id = str(uuid.uuid4())
        try:
            self._client.put_secret_value(
                SecretId=self._secret_id,
                ClientRequestToken=version_id,
                SecretString=keyring.to_json(),
                VersionStages=[STAGED],
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot write keyring secret {self._secret_id}: {_error_code(exc)}") from None
        try:
            self._client.update_secret_version_stage(
                SecretId=self._secret_id,
                VersionStage=CURRENT,
                MoveToVersionId=version_id,
                RemoveFromVersionId=expected_version_id,
            )
        except ClientError as exc:
            if _error_code(exc) == "InvalidParameterException":
                raise KeyringConflictError(
                    f"keyring secret {self._secret_id} changed since version {expected_version_id} was read"
                ) from None
            raise StoreError(f"cannot promote keyring version in {self._secret_id}: {_error_code(exc)}") from None
        except BotoCoreError as exc:
            raise StoreError(f"cannot promote keyring version in {self._secret_id}: {_error_code(exc)}") from None
        return version_id

    def _secret_exists(self) -> bool:
        try:
            self._client.describe_secret(SecretId=self._secret_id)
        except ClientError:
            return False
        return True

    def _initialise(self) -> VersionedKeyring:
        try:
            self._client.put_secret_value(
                SecretId=self._secret_id, ClientRequestToken=INITIAL_VERSION_ID, SecretString=EMPTY_KEYRING_JSON
            )
        except ClientError as exc:
            if _error_code(exc) != "ResourceExistsException":
                raise StoreError(f"cannot initialise keyring secret {self._secret_id}: {_error_code(exc)}") from None
        except BotoCoreError as exc:
            raise StoreError(f"cannot initialise keyring secret {self._secret_id}: {_error_code(exc)}") from None
        try:
            response = self._client.get_secret_value(SecretId=self._secret_id, VersionStage=CURRENT)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot read keyring secret {self._secret_id} after initialising it: {_error_code(exc)}") from None
        return VersionedKeyring(Keyring.from_json(response.get("SecretString") or EMPTY_KEYRING_JSON), response["VersionId"])
