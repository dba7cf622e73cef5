"""The sign function's composition root: the issuance service (signer, caller verifier, issuance policy) wired to its adapters.

The keyring and the revocation list are read through the AWS Parameters and Secrets Lambda Extension over plain
HTTP when the environment names its port (the template sets it) and no client factory is handed in: that route
loads no boto3, botocore or powertools (pyproject's import contracts and tests/integration/test_sign_path_imports.py
hold it to that). Otherwise, and for a KMS signature, :mod:`jwks_rotator.bootstrap.sign_sdk` supplies boto3 clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from jwks_rotator.adapters.lean.s3_record_reader import LeanS3RevocationRecord
from jwks_rotator.adapters.lean.secrets_extension import ExtensionEndpoint, readers_for
from jwks_rotator.adapters.lean.sts_identity import refuse_endpoint_overrides
from jwks_rotator.adapters.sdk.kms_vault import KmsKeyVault
from jwks_rotator.bootstrap.callers import build_caller_verifier
from jwks_rotator.core.issuance.profiles import load_issuance_policy
from jwks_rotator.core.issuance.service import AuditRecord, IssuanceService
from jwks_rotator.core.issuance.signer import Clock as UnixClock
from jwks_rotator.core.issuance.signer import RefreshListener, TokenSigner
from jwks_rotator.core.keys.revocation_guard import RecordRevocationReader, UnionRevocationReader
from jwks_rotator.core.settings import Settings

if TYPE_CHECKING:
    from jwks_rotator.adapters.sdk.clients import ClientFactory
    from jwks_rotator.core.ports import KeyringReader, RevocationReader, RevocationRecord

__all__ = ["build_caller_verifier", "build_issuance_service", "build_token_signer"]


def _sdk_route() -> ModuleType:
    """The boto3 route, imported only when it is used.

    Measured reason: it loads boto3 and botocore, ~95 ms on top of this module (``python -X importtime``, 2-core
    dev machine); the template's sign function reads through the extension and, with its keys in Secrets Manager
    custody, never needs them.
    """
    from jwks_rotator.bootstrap import sign_sdk

    return sign_sdk


def build_token_signer(
    settings: Settings,
    clients: ClientFactory | None = None,
    *,
    listener: RefreshListener | None = None,
    clock: UnixClock | None = None,
    monotonic: UnixClock | None = None,
    environ: Mapping[str, str] | None = None,
    local: bool = False,
) -> TokenSigner:
    """The token signer reading the signing secret's current version, the revocation record (``jwks-bucket``) and its mirror.

    The signing secret holds the keyring's signing view (the active key only); a deployment without one
    (``signing-secret-id`` empty) reads the keyring secret. The reads go through the extension when ``environ``
    names its port (``PARAMETERS_SECRETS_EXTENSION_HTTP_PORT``) and no ``clients`` are handed in; otherwise through
    boto3 clients (Secrets Manager and SSM). ``clock`` is the wall clock that dates tokens, ``monotonic`` the one
    that times the key cache. ``local`` (the code directory's marker) alone lets ``environ`` name other AWS endpoints.
    """
    settings.require("issuer", "signing_secret_id" if not settings.keyring_secret_id else "keyring_secret_id")
    refuse_endpoint_overrides(environ or {}, local=local)  # else the record and its mirror could answer "nothing revoked"
    secret_id = settings.signing_secret_id or settings.keyring_secret_id
    endpoint = ExtensionEndpoint.from_environment(environ) if clients is None and environ is not None else None
    reader: KeyringReader
    mirror: RevocationReader
    record: RevocationRecord | None = None
    if endpoint is not None:
        reader, mirror = readers_for(endpoint, secret_id, settings.revocation_parameter)
        if settings.jwks_bucket:
            record = LeanS3RevocationRecord.from_environment(environ or {}, settings.jwks_bucket, local=local)
    else:
        clients = _sdk_route().sdk_clients(clients)
        reader, mirror = _sdk_route().sdk_readers(clients, secret_id, settings.revocation_parameter)
        if settings.jwks_bucket:
            record = _sdk_route().sdk_record(clients, settings.jwks_bucket)
    # The record (where no restore reaches; the template always names the bucket) and its mirror: a kid on either never signs.
    revocations: RevocationReader = UnionRevocationReader(RecordRevocationReader(record), mirror) if record is not None else mirror
    given = clients

    def kms_client() -> Any:
        # KMS custody: the KMS client (and boto3 with it) is made at the first KMS signature only, so a signer whose
        # keys are in the secret never imports an AWS SDK (the extension route included).
        return given("kms") if given is not None else _sdk_route().kms_client()

    return TokenSigner(
        settings, reader, clock=clock or time.time, monotonic=monotonic or time.monotonic, listener=listener,
        revocations=revocations, vault=KmsKeyVault(kms_client),
    )


def build_issuance_service(
    settings: Settings,
    policy_text: str,
    environ: Mapping[str, str],
    clients: ClientFactory | None = None,
    *,
    listener: RefreshListener | None = None,
    on_decision: Callable[[AuditRecord], None] | None = None,
    on_proof_event: Callable[[str], None] | None = None,
    local: bool = False,
) -> IssuanceService:
    """The sign function's service: the token signer, the caller verifier replaying proofs to STS, and the issuance policy.

    The STS endpoint comes from the function's region (``AWS_REGION``) or the ``STS_ENDPOINT_URL`` override, never
    from a request; a broken policy or endpoint raises :class:`~jwks_rotator.core.errors.ConfigurationError`.
    """
    verifier = build_caller_verifier(settings, environ, on_proof_event=on_proof_event, local=local)
    policy = load_issuance_policy(
        policy_text,
        max_token_ttl=int(settings.max_token_ttl.total_seconds()),
        default_token_ttl=int(settings.default_token_ttl.total_seconds()),
    )
    signer = build_token_signer(settings, clients, listener=listener, environ=environ, local=local)
    return IssuanceService(signer, verifier, policy, on_decision=on_decision)
