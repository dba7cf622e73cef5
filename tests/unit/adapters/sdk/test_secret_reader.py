"""The signer's keyring read from Secrets Manager: the current version, store errors naming the code only (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from jwks_rotator.adapters.sdk.secret_reader import SecretsManagerKeyringReader
from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.ports import StoredKeyring
from tests.sign_support import THROTTLED, FakeSecrets


def test_the_reader_returns_the_current_version_and_its_document() -> None:
    client = FakeSecrets('{"keys": []}', version_id="v7")
    assert SecretsManagerKeyringReader(client, "keyring").read_current() == StoredKeyring("v7", '{"keys": []}')
    assert client.calls == 1


@pytest.mark.parametrize(
    ("failure", "reason"),
    [(THROTTLED, "ThrottlingException"), (EndpointConnectionError(endpoint_url="https://sm.example"), "EndpointConnectionError")],
)
def test_a_failed_read_is_a_store_error_naming_the_code_only(failure: Exception, reason: str) -> None:
    client = FakeSecrets("{}")
    client.failure = failure
    with pytest.raises(StoreError) as raised:
        SecretsManagerKeyringReader(client, "keyring").read_current()
    assert raised.value.reason == reason and reason in raised.value.message
    assert "canary" not in raised.value.message and raised.value.__cause__ is None


class BinarySecret:
    """A secret stored as SecretBinary: no SecretString in the answer."""

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, Any]:
        return {"VersionId": "v1", "SecretBinary": b"secret-canary"}


def test_an_answer_of_the_wrong_shape_is_a_store_error_without_its_content() -> None:
    with pytest.raises(StoreError) as raised:
        SecretsManagerKeyringReader(BinarySecret(), "keyring").read_current()
    assert raised.value.reason == "MalformedResponse" and "canary" not in str(raised.value)
