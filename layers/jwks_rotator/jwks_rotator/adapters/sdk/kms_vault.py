"""The key vault over AWS KMS: asymmetric keys that never leave it.

Implements :class:`jwks_rotator.core.ports.KeyVault` (the rotator) and
:class:`~jwks_rotator.core.ports.KeySigner` (the signer). The KMS client is
made on first use through the factory given, and this module imports
nothing from boto3 or botocore at import time: a sign function whose keys
are in Secrets Manager custody never loads them through it, and one in KMS
custody pays for botocore at its first signature.

Management calls name a key by its key id (the ARN's last part), which KMS
accepts as the ARN in the caller's account (and moto 5.2.5 accepts for
EnableKey/DisableKey, where it refuses an ARN); Sign names it by its ARN.

Errors carry the AWS error code only. On the sign path, ``DisabledException``
and ``KMSInvalidStateException`` (disabled, or pending deletion) become
:class:`SigningKeyDisabledError`, which makes the signer read the keyring
once more and then fail closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from jwks_rotator.core.errors import KeyVaultError, SigningKeyDisabledError, SigningUnavailableError

if TYPE_CHECKING:  # the sign path builds this vault for every signer; the ports module is loaded by a KMS call only
    from jwks_rotator.core.ports import VaultKey, VaultSignature

DISABLED_CODES = frozenset({"DisabledException", "KMSInvalidStateException"})
"""What KMS answers a Sign with a disabled key, or one pending deletion."""
MALFORMED = "MalformedResponse"


def _sdk() -> ModuleType:
    """The boto3 adapters' error helpers, imported at the first KMS call.

    Measured reason: importing them loads boto3 and botocore (~85 ms, ``python -X importtime``); every sign function builds this
    vault, and one whose keys are in Secrets Manager custody never calls KMS, so it never pays for botocore.
    """
    from jwks_rotator.adapters.sdk import clients

    return clients


def _ports() -> ModuleType:
    """The core's ports module, for the value types this vault answers with, imported at the first KMS answer.

    Measured reason: a sign function whose keys are in Secrets Manager custody never loads :mod:`jwks_rotator.core.ports`
    (tests/integration/test_sign_path_imports.py checks it); the vault is built by every sign function.
    """
    from jwks_rotator.core import ports

    return ports


def _code(exc: BaseException) -> str:
    return str(_sdk().error_code(exc))  # botocore is loaded by now: the client raised


def _aws_errors() -> tuple[type[Exception], ...]:
    errors: tuple[type[Exception], ...] = _sdk().AWS_ERRORS
    return errors


class KmsKeyVault:
    """KMS behind the key vault ports; ``client`` makes the boto3 KMS client on first use."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._make_client = client
        self._client: Any = None
        self._server_time: datetime | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    # --- the signer -------------------------------------------------------
    def sign(self, key_arn: str, message: bytes, signing_algorithm: str) -> VaultSignature:
        """Sign with ``key_arn``; a multi-Region key recorded in another region signs through this region's replica.

        The replica's ARN is the recorded one with this client's region; its answer is reported for ``key_arn``.
        """
        client = self.client
        target = replica_arn(key_arn, getattr(getattr(client, "meta", None), "region_name", None))
        try:
            answer = client.sign(KeyId=target, Message=message, MessageType="RAW", SigningAlgorithm=signing_algorithm)
        except _aws_errors() as exc:
            code = _code(exc)
            if code in DISABLED_CODES:
                raise SigningKeyDisabledError(f"the key vault refused to sign ({code})") from None
            raise SigningUnavailableError(f"the key vault could not sign ({code})") from None
        key_id, signature = answer.get("KeyId"), answer.get("Signature")
        if key_id == target:
            key_id = key_arn  # the replica of the recorded key signed
        if type(key_id) is not str or type(signature) is not bytes:
            raise SigningUnavailableError(f"the key vault could not sign ({MALFORMED})")
        signed: VaultSignature = _ports().VaultSignature(key_id, signature)
        return signed

    # --- the rotator ------------------------------------------------------
    def _call(self, operation: str, **kwargs: Any) -> Mapping[str, Any]:
        try:
            answer: Mapping[str, Any] = getattr(self.client, operation)(**kwargs)
        except _aws_errors() as exc:
            code = _code(exc)
            raise KeyVaultError(f"KMS {operation} failed ({code})", reason=code) from None
        self._note_date(answer)
        return answer

    def _note_date(self, answer: Mapping[str, Any]) -> None:
        metadata = answer.get("ResponseMetadata")
        headers = metadata.get("HTTPHeaders") if isinstance(metadata, Mapping) else None
        date = headers.get("date") if isinstance(headers, Mapping) else None
        if not isinstance(date, str):
            return
        # Measured reason: email.utils costs ~4 ms of imports (python -X importtime); only the rotator reads KMS's clock,
        # and every sign function imports this module.
        from email.utils import parsedate_to_datetime

        try:
            sent = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        self._server_time = sent if sent.tzinfo is not None else sent.replace(tzinfo=UTC)

    def server_time(self) -> datetime | None:
        """KMS's clock: the ``Date`` header of its latest answer to this vault (None before any, or without one)."""
        return self._server_time

    def create_key(self, *, key_spec: str, tags: Mapping[str, str], policy: str, description: str, multi_region: bool = False) -> str:
        answer = self._call(
            "create_key", KeySpec=key_spec, KeyUsage="SIGN_VERIFY", Policy=policy, Description=description,
            Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()], **({"MultiRegion": True} if multi_region else {}),
        )
        arn = answer.get("KeyMetadata", {}).get("Arn")
        if not isinstance(arn, str):
            raise KeyVaultError(f"KMS create_key failed ({MALFORMED})", reason=MALFORMED)
        return arn

    def replicate(self, key_arn: str, region: str, *, tags: Mapping[str, str], policy: str, description: str) -> str:
        """ReplicateKey from this vault's region (the primary key's) to ``region``; the replica's ARN."""
        answer = self._call(
            "replicate_key", KeyId=_key_id(key_arn), ReplicaRegion=region, Policy=policy, Description=description,
            Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()],
        )
        arn = answer.get("ReplicaKeyMetadata", {}).get("Arn")
        if not isinstance(arn, str):
            raise KeyVaultError(f"KMS replicate_key failed ({MALFORMED})", reason=MALFORMED)
        return arn

    def public_key_der(self, key_arn: str) -> bytes:
        der = self._call("get_public_key", KeyId=_key_id(key_arn)).get("PublicKey")
        if not isinstance(der, bytes):
            raise KeyVaultError(f"KMS get_public_key failed ({MALFORMED})", reason=MALFORMED)
        return der

    def tag(self, key_arn: str, tags: Mapping[str, str]) -> None:
        self._call("tag_resource", KeyId=_key_id(key_arn), Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])

    def describe(self, key_arn: str) -> VaultKey:
        metadata = self._call("describe_key", KeyId=_key_id(key_arn)).get("KeyMetadata", {})
        described: VaultKey = _ports().VaultKey(
            key_arn,
            {},
            _created(metadata),
            str(metadata.get("KeyState", "Unavailable")),
            usage=str(metadata.get("KeyUsage", "")),
            origin=str(metadata.get("Origin", "")),
            spec=str(metadata.get("KeySpec", metadata.get("CustomerMasterKeySpec", ""))),
            manager=str(metadata.get("KeyManager", "")),
        )
        return described

    def policy(self, key_arn: str) -> str:
        """The key's policy as KMS holds it (GetKeyPolicy, policy name ``default``)."""
        answer = self._call("get_key_policy", KeyId=_key_id(key_arn), PolicyName="default").get("Policy")
        if not isinstance(answer, str):
            raise KeyVaultError(f"KMS get_key_policy failed ({MALFORMED})", reason=MALFORMED)
        return answer

    def put_policy(self, key_arn: str, policy: str) -> None:
        self._call("put_key_policy", KeyId=_key_id(key_arn), PolicyName="default", Policy=policy)

    def enable(self, key_arn: str) -> None:
        self._call("enable_key", KeyId=_key_id(key_arn))

    def disable(self, key_arn: str) -> None:
        self._call("disable_key", KeyId=_key_id(key_arn))

    def schedule_deletion(self, key_arn: str, pending_days: int) -> None:
        if not 7 <= pending_days <= 30:  # what KMS accepts (moto accepts any): refuse it here as KMS would
            raise KeyVaultError("KMS schedule_key_deletion failed (ValidationException)", reason="ValidationException")
        self._call("schedule_key_deletion", KeyId=_key_id(key_arn), PendingWindowInDays=pending_days)

    def list_tagged(self, tag_key: str, tag_value: str) -> list[VaultKey]:
        """Every key of the account and region carrying ``tag_key=tag_value``: ListKeys, then ListResourceTags per key.

        Keys whose tags this role may not read (other stacks', AWS managed keys) are skipped.
        """
        vault_key = _ports().VaultKey
        found: list[VaultKey] = []
        marker: str | None = None
        while True:
            page = self._call("list_keys", **({"Marker": marker} if marker else {}))
            for entry in page.get("Keys", []):
                arn = entry.get("KeyArn")
                if not isinstance(arn, str):
                    continue
                try:
                    tags = self._tags(arn)
                except KeyVaultError:
                    continue
                if tags.get(tag_key) != tag_value:
                    continue
                described = self.describe(arn)
                found.append(vault_key(arn, tags, described.created_at, described.state, described.usage, described.origin,
                                       described.spec, described.manager))
            if not page.get("Truncated"):
                return found
            marker = page.get("NextMarker")

    def _tags(self, key_arn: str) -> dict[str, str]:
        answer = self._call("list_resource_tags", KeyId=_key_id(key_arn))
        return {t["TagKey"]: t["TagValue"] for t in answer.get("Tags", []) if isinstance(t, Mapping)}


def replica_arn(key_arn: str, region: str | None) -> str:
    """``key_arn`` in ``region`` when it names a multi-Region key (``mrk-``) of another region, else as it is."""
    parts = key_arn.split(":")
    if not region or len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms" or not parts[5].startswith("key/mrk-"):
        return key_arn
    parts[3] = region
    return ":".join(parts)


def _key_id(key_arn: str) -> str:
    return key_arn.rsplit("/", 1)[-1]


def _created(metadata: Mapping[str, Any]) -> datetime:
    created = metadata.get("CreationDate")
    if isinstance(created, datetime):
        return created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    raise KeyVaultError(f"KMS describe_key failed ({MALFORMED})", reason=MALFORMED)
