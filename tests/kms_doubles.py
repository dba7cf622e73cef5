"""Test doubles for KMS custody: what moto 5.2.5 cannot show, named as such.

* :class:`EventuallyConsistentKms` is an in-memory key vault with real keys
  (``cryptography``) that refuses what AWS refuses and moto does not (Sign
  with a disabled key or one pending deletion, messages over 4096 bytes, a
  PendingWindowInDays outside 7-30, a signing algorithm the key does not
  have) and that applies EnableKey, DisableKey and PutKeyPolicy to signing
  only after a delay chosen per call (KMS is eventually consistent). Its
  control plane (DescribeKey) answers the requested state at once. Signing is
  done as the sign role: allowed only when the effective key state is
  Enabled and the effective key policy names the sign role.
* :class:`AwsDisabledKeyRefusal` wraps a boto3 KMS client (moto's) so that
  Sign with a disabled key, or one pending deletion, raises the
  ``DisabledException`` / ``KMSInvalidStateException`` AWS raises: moto lets
  such keys sign. Every other call goes to moto unchanged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from jwks_rotator.core.errors import KeyVaultError, SigningKeyDisabledError, SigningUnavailableError
from jwks_rotator.core.ports import VaultKey, VaultSignature

ACCOUNT = "123456789012"
SIGN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stack-SignFunctionRole"
ROTATE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stack-RotateFunctionRole"

_SPECS: dict[str, Callable[[], Any]] = {
    "RSA_2048": lambda: rsa.generate_private_key(65537, 2048),
    "RSA_3072": lambda: rsa.generate_private_key(65537, 3072),
    "RSA_4096": lambda: rsa.generate_private_key(65537, 4096),
    "ECC_NIST_P256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ECC_NIST_P384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ECC_NIST_P521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ECC_NIST_EDWARDS25519": ed25519.Ed25519PrivateKey.generate,
}
_ALGORITHMS: dict[str, tuple[str, Callable[[Any, bytes], bytes]]] = {
    "RSASSA_PKCS1_V1_5_SHA_256": ("RSA", lambda k, m: k.sign(m, padding.PKCS1v15(), hashes.SHA256())),
    "RSASSA_PSS_SHA_256": ("RSA", lambda k, m: k.sign(m, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())),
    "ECDSA_SHA_256": ("ECC_NIST_P256", lambda k, m: k.sign(m, ec.ECDSA(hashes.SHA256()))),
    "ECDSA_SHA_384": ("ECC_NIST_P384", lambda k, m: k.sign(m, ec.ECDSA(hashes.SHA384()))),
    "ECDSA_SHA_512": ("ECC_NIST_P521", lambda k, m: k.sign(m, ec.ECDSA(hashes.SHA512()))),
    "ED25519_SHA_512": ("ECC_NIST_EDWARDS25519", lambda k, m: k.sign(m)),
}


@dataclass
class _Key:
    spec: str
    private: Any
    tags: dict[str, str]
    created_at: datetime
    state: str  # the control plane's answer: Enabled | Disabled | PendingDeletion
    enabled: list[tuple[datetime, bool]] = field(default_factory=list)  # (effective from, enabled) for Sign
    signer_allowed: list[tuple[datetime, bool]] = field(default_factory=list)  # (effective from, policy names the sign role)
    pending_days: int | None = None
    policy: str = "{}"


def _effective(history: list[tuple[datetime, bool]], at: datetime) -> bool:
    value = False
    for moment, state in sorted(history, key=lambda item: item[0]):
        if moment <= at:
            value = state
    return value


class EventuallyConsistentKms:
    """A KMS key vault (:class:`~jwks_rotator.core.ports.KeyVault`) with AWS's refusals and eventually consistent key state."""

    def __init__(self, clock: Callable[[], datetime], *, delay: Callable[[], float] = lambda: 0.0,
                 sign_role: str = SIGN_ROLE) -> None:
        self.clock = clock
        self.delay = delay
        self.sign_role = sign_role
        self.keys: dict[str, _Key] = {}
        self.calls: list[str] = []
        self.fail: set[str] = set()  # operations to refuse (KMSInternalException), to test failure paths

    def _later(self) -> datetime:
        return self.clock() + timedelta(seconds=self.delay())

    def _key(self, operation: str, arn: str) -> _Key:
        self.calls.append(operation)
        if operation in self.fail:
            raise KeyVaultError(f"KMS {operation} failed (KMSInternalException)", reason="KMSInternalException")
        key = self.keys.get(arn)
        if key is None:
            raise KeyVaultError(f"KMS {operation} failed (NotFoundException)", reason="NotFoundException")
        return key

    # --- rotator ---------------------------------------------------------
    def create_key(self, *, key_spec: str, tags: Mapping[str, str], policy: str, description: str) -> str:
        self.calls.append("create_key")
        if "create_key" in self.fail:
            raise KeyVaultError("KMS create_key failed (KMSInternalException)", reason="KMSInternalException")
        arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{uuid.uuid4()}"
        now = self.clock()
        key = _Key(key_spec, _SPECS[key_spec](), dict(tags), now, "Enabled")
        key.enabled.append((now, True))  # CreateKey makes an enabled key, at once
        key.signer_allowed.append((now, self._names_signer(policy)))
        key.policy = policy
        self.keys[arn] = key
        return arn

    def _names_signer(self, policy: str) -> bool:
        document = json.loads(policy)
        return any(
            self.sign_role in ([s["Principal"]["AWS"]] if isinstance(s["Principal"]["AWS"], str) else s["Principal"]["AWS"])
            and "kms:Sign" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            for s in document["Statement"]
        )

    def public_key_der(self, key_arn: str) -> bytes:
        key = self._key("get_public_key", key_arn)
        if key.state != "Enabled":  # AWS refuses GetPublicKey on a disabled key (moto does not)
            raise KeyVaultError("KMS get_public_key failed (DisabledException)", reason="DisabledException")
        return bytes(key.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    def tag(self, key_arn: str, tags: Mapping[str, str]) -> None:
        self._key("tag_resource", key_arn).tags.update(tags)

    def describe(self, key_arn: str) -> VaultKey:
        key = self._key("describe_key", key_arn)
        return self._vault_key(key_arn, key)

    @staticmethod
    def _vault_key(arn: str, key: _Key) -> VaultKey:
        return VaultKey(arn, dict(key.tags), key.created_at, key.state, "SIGN_VERIFY", "AWS_KMS", key.spec, "CUSTOMER")

    def put_policy(self, key_arn: str, policy: str) -> None:
        key = self._key("put_key_policy", key_arn)
        key.signer_allowed.append((self._later(), self._names_signer(policy)))
        key.policy = policy

    def policy(self, key_arn: str) -> str:
        return self._key("get_key_policy", key_arn).policy

    def enable(self, key_arn: str) -> None:
        key = self._key("enable_key", key_arn)
        if key.state == "PendingDeletion":
            raise KeyVaultError("KMS enable_key failed (KMSInvalidStateException)", reason="KMSInvalidStateException")
        key.state = "Enabled"
        key.enabled.append((self._later(), True))

    def disable(self, key_arn: str) -> None:
        key = self._key("disable_key", key_arn)
        if key.state == "PendingDeletion":
            raise KeyVaultError("KMS disable_key failed (KMSInvalidStateException)", reason="KMSInvalidStateException")
        key.state = "Disabled"
        key.enabled.append((self._later(), False))

    def schedule_deletion(self, key_arn: str, pending_days: int) -> None:
        key = self._key("schedule_key_deletion", key_arn)
        if not 7 <= pending_days <= 30:
            raise KeyVaultError("KMS schedule_key_deletion failed (ValidationException)", reason="ValidationException")
        key.state = "PendingDeletion"
        key.pending_days = pending_days
        key.enabled.append((self._later(), False))

    def list_tagged(self, tag_key: str, tag_value: str) -> list[VaultKey]:
        self.calls.append("list_keys")
        return [self._vault_key(arn, k) for arn, k in self.keys.items() if k.tags.get(tag_key) == tag_value]

    def server_time(self) -> datetime:
        """KMS's clock: the one its CreationDates come from."""
        return self.clock()

    # --- signer ----------------------------------------------------------
    def signable(self, key_arn: str, at: datetime | None = None) -> bool:
        """Whether the sign role could sign with the key at ``at`` (default now): effective state and policy."""
        key = self.keys[key_arn]
        at = at or self.clock()
        return _effective(key.enabled, at) and _effective(key.signer_allowed, at)

    def change_times(self) -> list[datetime]:
        """Every moment at which some key's signability may change."""
        return sorted({m for k in self.keys.values() for m, _ in (*k.enabled, *k.signer_allowed)})

    def sign(self, key_arn: str, message: bytes, signing_algorithm: str) -> VaultSignature:
        self.calls.append("sign")
        key = self.keys.get(key_arn)
        if key is None:
            raise SigningUnavailableError("the key vault could not sign (NotFoundException)")
        now = self.clock()
        if not _effective(key.signer_allowed, now):
            raise SigningUnavailableError("the key vault could not sign (AccessDeniedException)")
        if not _effective(key.enabled, now):
            code = "KMSInvalidStateException" if key.state == "PendingDeletion" else "DisabledException"
            raise SigningKeyDisabledError(f"the key vault refused to sign ({code})")
        family, sign = _ALGORITHMS[signing_algorithm]
        if not key.spec.startswith(family) or len(message) > 4096:
            raise SigningUnavailableError("the key vault could not sign (ValidationException)")
        return VaultSignature(key_arn, sign(key.private, message))


class AwsDisabledKeyRefusal:
    """A boto3 KMS client (moto's) whose Sign refuses disabled keys and keys pending deletion, as AWS does and moto does not."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.sign_calls = 0

    def sign(self, **kwargs: Any) -> Any:
        self.sign_calls += 1
        state = self._client.describe_key(KeyId=kwargs["KeyId"])["KeyMetadata"]["KeyState"]
        if state in ("Disabled", "PendingDeletion"):
            code = "DisabledException" if state == "Disabled" else "KMSInvalidStateException"
            raise ClientError({"Error": {"Code": code, "Message": f"{kwargs['KeyId']} is {state.lower()}"}}, "Sign")
        return self._client.sign(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
