"""Helpers shared by the sign function's unit tests (keys, an in-memory keyring reader, a fake Secrets Manager client); the fake clock is the testing kit's."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState, load_private_key
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.ports import StoredKeyring
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.functions import load_function_module

ISSUER = "https://issuer.example"
ALGORITHMS = ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")
# A throttled Secrets Manager read whose message carries a canary no error may echo.
THROTTLED = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down for secret-canary"}}, "GetSecretValue")


@cache
def _generated(alg: str, index: int) -> KeyRecord:
    return generate_key(alg, datetime(2026, 1, 1, tzinfo=UTC))


def active_key(alg: str = "ES256", *, index: int = 0, activated: float | None = None, published: bool = True) -> KeyRecord:
    """An active key (published unless told otherwise), activated an hour before ``activated`` or now."""
    at = datetime.fromtimestamp(activated if activated is not None else time.time() - 3600, tz=UTC)
    return _generated(alg, index).with_changes(
        state=KeyState.ACTIVE, activated_at=at, published_at=at - timedelta(days=2) if published else None
    )


def pending_key(alg: str = "ES256", *, index: int = 1) -> KeyRecord:
    """A published pending key."""
    at = datetime.fromtimestamp(time.time() - 3600, tz=UTC)
    return _generated(alg, index).with_changes(state=KeyState.PENDING, published_at=at)


def keyring_json(*records: KeyRecord) -> str:
    return Keyring(keys=tuple(records)).to_json()


def public_key(record: KeyRecord) -> Any:
    return load_private_key(record.private_jwk).public_key()


def settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {"issuer": ISSUER, "keyring_secret_id": "keyring"}
    values.update(changes)
    return Settings(**values)


class InMemoryRevocations:
    """The signer's :class:`~jwks_rotator.core.ports.RevocationReader` in memory; counts reads; can be made to fail."""

    def __init__(self, *kids: str) -> None:
        self.kids = set(kids)
        self.calls = 0
        self.failure: Exception | None = None

    def read(self) -> frozenset[str]:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return frozenset(self.kids)


class InMemoryKeyringReader:
    """The signer's :class:`~jwks_rotator.core.ports.KeyringReader` in memory: the current version; counts reads; can be made to fail."""

    def __init__(self, text: str, version_id: str = "v1") -> None:
        self.text = text
        self.version_id = version_id
        self.calls = 0
        self.failure: Exception | None = None

    def publish(self, text: str, version_id: str) -> None:
        self.text, self.version_id = text, version_id

    def read_current(self) -> StoredKeyring:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return StoredKeyring(self.version_id, self.text)


class FakeSecrets:
    """The signer's two boto3 reads: Secrets Manager's ``get_secret_value`` (the current keyring version) and SSM's
    ``get_parameter`` (the revocation list, ``revoked``); counts each; ``failure`` fails the keyring read."""

    def __init__(self, text: str, version_id: str = "v1", revoked: tuple[str, ...] = ()) -> None:
        self.text = text
        self.version_id = version_id
        self.revoked = revoked
        self.calls = 0
        self.parameter_calls = 0
        self.failure: Exception | None = None

    def get_parameter(self, *, Name: str) -> dict[str, Any]:
        self.parameter_calls += 1
        return {"Parameter": {"Name": Name, "Type": "String", "Value": json.dumps(list(self.revoked)), "Version": 1}}

    def publish(self, text: str, version_id: str) -> None:
        self.text, self.version_id = text, version_id

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, Any]:
        assert VersionStage == "AWSCURRENT"
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return {"ARN": f"arn:{SecretId}", "VersionId": self.version_id, "SecretString": self.text}


def load_sign_app(name: str = "sign_app_under_test") -> Any:
    """A fresh copy of functions/sign/app.py as a module."""
    return load_function_module("sign", f"{name}_{uuid.uuid4().hex[:8]}")
