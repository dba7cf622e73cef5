"""The rotate function's composition root (also the CLI's): the rotation service and the operator gate, wired to AWS.

Clients come from :func:`jwks_rotator.adapters.sdk.clients.client_factory` (explicit timeouts, standard retries)
unless the caller hands in its own factory (the tests and the local cloud do).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from jwks_rotator.adapters.sdk.clients import ROTATION, ClientFactory, client_factory
from jwks_rotator.adapters.sdk.kms_vault import KmsKeyVault
from jwks_rotator.adapters.sdk.revocation_object import S3RevocationRecord
from jwks_rotator.adapters.sdk.revocation_parameter import SsmRevocationMirror
from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.adapters.sdk.tick_ledger import S3TickLedger
from jwks_rotator.bootstrap.callers import build_caller_verifier
from jwks_rotator.core.keys.revocation_guard import GuardedRevocationList
from jwks_rotator.core.lifecycle.kms_custody import KmsCustodian
from jwks_rotator.core.lifecycle.operator_gate import OperatorGate
from jwks_rotator.core.lifecycle.rotation import Clock, RotationService, utc_now
from jwks_rotator.core.settings import Settings


def build_rotation_service(
    settings: Settings, clients: ClientFactory | None = None, *, clock: Clock | None = None, logger: Any = None,
    sleep: Callable[[float], None] | None = None, on_revocation_repair: Callable[[str], None] | None = None,
    on_foreign_key: Callable[[str], None] | None = None,
) -> RotationService:
    """The rotation service wired to Secrets Manager, S3, the revocation record (S3) and its mirror (SSM), KMS and CloudFront.

    ``sleep`` is how the KMS hand-over waits for a disable to take effect before it enables the next key (``time.sleep``);
    ``on_revocation_repair`` is told each repair of the revocation mirror (erased, junk, malformed, mirror_unwritable);
    ``on_foreign_key`` the ARN of each KMS key carrying the stack's tag that the stack did not make (left alone).
    """
    settings.require("keyring_secret_id", "jwks_bucket", "issuer")
    if clients is None:
        clients = client_factory(ROTATION)
    rotation_clients = clients
    # Always there (its client is made on first use): keys made under kms custody finish their life under it
    # even after the setting changes back.
    custodian = KmsCustodian(KmsKeyVault(lambda: rotation_clients("kms")), settings, sleep or time.sleep, logger, on_foreign=on_foreign_key)
    store = SecretsManagerKeyringStore(clients("secretsmanager"), settings.keyring_secret_id)
    publisher = S3Publisher(
        clients("s3"),
        settings.jwks_bucket,
        settings,
        cloudfront_client=clients("cloudfront") if settings.distribution_id else None,
        distribution_id=settings.distribution_id,
    )
    revocations = GuardedRevocationList(
        S3RevocationRecord(clients("s3"), settings.jwks_bucket),
        SsmRevocationMirror(clients("ssm"), settings.revocation_parameter),
        on_repair=on_revocation_repair,
    )
    signing_store = (
        SecretsManagerKeyringStore(clients("secretsmanager"), settings.signing_secret_id) if settings.signing_secret_id else None
    )
    return RotationService(store, publisher, settings, clock=clock or utc_now, logger=logger, revocations=revocations,
                           custodian=custodian, signing_store=signing_store, ticks=S3TickLedger(clients("s3"), settings.jwks_bucket))


def build_operator_gate(
    settings: Settings, environ: Mapping[str, str], *, on_proof_event: Callable[[str], None] | None = None, local: bool = False
) -> OperatorGate:
    """The rotate function's gate: proofs checked as the sign function checks them, roles against ``operator-roles``.

    An unusable STS endpoint raises :class:`~jwks_rotator.core.errors.ConfigurationError`.
    """
    return OperatorGate(build_caller_verifier(settings, environ, on_proof_event=on_proof_event, local=local), settings.operator_roles)
