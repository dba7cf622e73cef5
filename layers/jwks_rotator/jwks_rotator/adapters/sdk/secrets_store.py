"""Keyring storage in AWS Secrets Manager with compare-and-swap writes.

Every write puts a new secret version under a staging label of our own and
then moves ``AWSCURRENT`` to it with ``RemoveFromVersionId`` set to the
version the writer read. If another writer moved ``AWSCURRENT`` in between,
Secrets Manager refuses the move and the write is reported as a conflict:
two rotators racing can never silently overwrite each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.core.errors import KeyringConflictError, StoreError
from jwks_rotator.core.keys.keyring import EMPTY_KEYRING_JSON, Keyring
from jwks_rotator.core.ports import VersionedKeyring

CURRENT = "AWSCURRENT"
STAGED = "JWKSROTATOR_STAGED"
# A fixed request token makes the first write idempotent: racing initialisers
# write the same empty document under the same version id.
INITIAL_VERSION_ID = "00000000-0000-4000-8000-6a776b73696e"


class SecretsManagerKeyringStore:
    """The keyring as the ``AWSCURRENT`` version of one secret."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def load(self) -> VersionedKeyring:
        """Read the current version; a secret with no value yet is initialised empty."""
        try:
            response = self._call(f"cannot read keyring secret {self._secret_id}", self._client.get_secret_value, VersionStage=CURRENT)
        except StoreError as exc:
            if exc.reason == "ResourceNotFoundException" and self._secret_exists():
                return self._initialise()
            raise
        return _versioned(response)

    def save(self, keyring: Keyring, expected_version_id: str) -> str:
        """Write ``keyring`` as the new current version if ``expected_version_id`` is still current."""
        version_id = str(uuid.uuid4())
        self._call(
            f"cannot write keyring secret {self._secret_id}",
            self._client.put_secret_value,
            ClientRequestToken=version_id,
            SecretString=keyring.to_json(),
            VersionStages=[STAGED],
        )
        try:
            self._call(
                f"cannot promote keyring version in {self._secret_id}",
                self._client.update_secret_version_stage,
                VersionStage=CURRENT,
                MoveToVersionId=version_id,
                RemoveFromVersionId=expected_version_id,
            )
        except StoreError as exc:
            if exc.reason == "InvalidParameterException":
                raise KeyringConflictError(
                    f"keyring secret {self._secret_id} changed since version {expected_version_id} was read"
                ) from None
            raise
        return version_id

    def _call(self, failure: str, operation: Callable[..., Mapping[str, Any]], **params: Any) -> Mapping[str, Any]:
        """One Secrets Manager call on this secret; an AWS failure becomes :class:`StoreError` ``"<failure>: <code>"``."""
        try:
            return operation(SecretId=self._secret_id, **params)
        except AWS_ERRORS as exc:
            code = error_code(exc)
            raise StoreError(f"{failure}: {code}", reason=code) from None

    def _secret_exists(self) -> bool:
        try:
            self._call(f"cannot describe keyring secret {self._secret_id}", self._client.describe_secret)
        except StoreError:
            return False
        return True

    def _initialise(self) -> VersionedKeyring:
        try:
            self._call(
                f"cannot initialise keyring secret {self._secret_id}",
                self._client.put_secret_value,
                ClientRequestToken=INITIAL_VERSION_ID,
                SecretString=EMPTY_KEYRING_JSON,
            )
        except StoreError as exc:
            if exc.reason != "ResourceExistsException":
                raise
        response = self._call(
            f"cannot read keyring secret {self._secret_id} after initialising it", self._client.get_secret_value, VersionStage=CURRENT
        )
        return _versioned(response)


def _versioned(response: Mapping[str, Any]) -> VersionedKeyring:
    return VersionedKeyring(Keyring.from_json(response.get("SecretString") or EMPTY_KEYRING_JSON), response["VersionId"])
