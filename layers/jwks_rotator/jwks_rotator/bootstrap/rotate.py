"""The rotate function's composition root (also the CLI's): the rotation service and the operator gate, wired to AWS.

Clients come from :func:`jwks_rotator.adapters.sdk.clients.client_factory` (explicit timeouts, standard retries)
unless the caller hands in its own factory (the tests and the local cloud do).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from jwks_rotator.adapters.sdk.clients import PROBE, ROTATION, ClientFactory, ClientPolicy, client_factory, make_client
from jwks_rotator.adapters.sdk.kms_vault import KmsKeyVault
from jwks_rotator.adapters.sdk.promotion import (
    S3OriginMarks,
    SecretsManagerPrimaryProbe,
    SecretsManagerReplicaSecret,
    SecretsManagerWriterMarks,
)
from jwks_rotator.adapters.sdk.revocation_object import S3RevocationRecord
from jwks_rotator.adapters.sdk.revocation_parameter import SsmRevocationMirror
from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.adapters.sdk.tick_ledger import S3TickLedger
from jwks_rotator.bootstrap.callers import build_caller_verifier
from jwks_rotator.core.keys.revocation_guard import GuardedRevocationList
from jwks_rotator.core.lifecycle.kms_custody import KmsCustodian
from jwks_rotator.core.lifecycle.operations import RotateCommand, report_summary
from jwks_rotator.core.lifecycle.operator_gate import OperatorGate
from jwks_rotator.core.lifecycle.promote import Promotion
from jwks_rotator.core.lifecycle.rotation import Clock, RotationService, utc_now
from jwks_rotator.core.lifecycle.writer import MergedMarks
from jwks_rotator.core.ports import WriterMarks
from jwks_rotator.core.settings import Settings

RegionalClients = Callable[[str, str], Any]
"""``(service, region) -> boto3 client``: clients of other regions (the writer fence, promote)."""


def regional_client_factory(policy: ClientPolicy = ROTATION) -> RegionalClients:
    """Clients of any region, with ``policy``'s timeouts (the endpoint left to boto3, as every client's)."""

    def build(service: str, region: str) -> Any:
        return make_client(service, policy, region_name=region)

    return build


def build_rotation_service(
    settings: Settings, clients: ClientFactory | None = None, *, clock: Clock | None = None, logger: Any = None,
    sleep: Callable[[float], None] | None = None, on_revocation_repair: Callable[[str], None] | None = None,
    on_foreign_key: Callable[[str], None] | None = None, region: str = "", regional_clients: RegionalClients | None = None,
) -> RotationService:
    """The rotation service wired to Secrets Manager, S3, the revocation record (S3) and its mirror (SSM), KMS and CloudFront.

    ``sleep`` is how the KMS hand-over waits for a disable to take effect before it enables the next key (``time.sleep``);
    ``on_revocation_repair`` is told each repair of the revocation mirror (erased, junk, malformed, mirror_unwritable);
    ``on_foreign_key`` the ARN of each KMS key carrying the stack's tag that the stack did not make (left alone).
    ``region`` is the function's own (AWS_REGION): with several regions (``regions`` set) the documents are marked
    with it, and before any write the writer fence reads the other regions' keyring secrets and the origins.
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
        writer_region=region if settings.regions else "",
    )
    revocations = GuardedRevocationList(
        S3RevocationRecord(clients("s3"), settings.jwks_bucket),
        SsmRevocationMirror(clients("ssm"), settings.revocation_parameter),
        on_repair=on_revocation_repair,
    )
    signing_store = (
        SecretsManagerKeyringStore(clients("secretsmanager"), settings.signing_secret_id) if settings.signing_secret_id else None
    )
    marks = build_writer_marks(settings, region, clients, regional_clients or regional_client_factory(), logger) if settings.regions else None
    return RotationService(store, publisher, settings, clock=clock or utc_now, logger=logger, revocations=revocations,
                           custodian=custodian, signing_store=signing_store, ticks=S3TickLedger(clients("s3"), settings.jwks_bucket),
                           region=region, writer_marks=marks)


def _origins(settings: Settings, clients: ClientFactory, regional: RegionalClients) -> list[tuple[str, Any, str]]:
    """Every origin bucket the settings name, with a client of its region: ``(name, s3 client, bucket)``."""
    origins = [(f"s3://{settings.jwks_bucket}", clients("s3"), settings.jwks_bucket)]
    if settings.second_origin_bucket:
        origins.append((f"s3://{settings.second_origin_bucket}", regional("s3", settings.second_origin_region),
                        settings.second_origin_bucket))
    return origins


def build_writer_marks(settings: Settings, region: str, clients: ClientFactory, regional: RegionalClients, logger: Any = None) -> WriterMarks:
    """What the fence reads: every other region's keyring secret (by the secret's id there) and every origin."""
    others = {other: regional("secretsmanager", other) for other in settings.regions if other != region}
    return MergedMarks(SecretsManagerWriterMarks(others, settings.keyring_secret_id, logger=logger),
                       S3OriginMarks(_origins(settings, clients, regional), logger=logger))


def build_promotion(
    settings: Settings, region: str, service: RotationService, clients: ClientFactory | None = None, *,
    regional_clients: RegionalClients | None = None, probe_clients: RegionalClients | None = None, clock: Clock | None = None,
    logger: Any = None,
) -> Promotion:
    """``promote`` in ``region``: its keyring and signing view replicas, the origins, a short probe of the old primary,
    and ``service`` (this region's rotation) to publish as the new writer."""
    settings.require("keyring_secret_id", "jwks_bucket", "issuer")
    if clients is None:
        clients = client_factory(ROTATION)
    regional = regional_clients or regional_client_factory()
    probes = probe_clients or regional_client_factory(PROBE)
    secrets = clients("secretsmanager")

    def publish() -> Mapping[str, Any]:
        return report_summary(RotateCommand("publish"), service.publish())

    return Promotion(
        region, settings, SecretsManagerKeyringStore(secrets, settings.keyring_secret_id),
        SecretsManagerReplicaSecret(secrets, settings.keyring_secret_id),
        S3OriginMarks(_origins(settings, clients, regional), logger=logger),
        SecretsManagerPrimaryProbe(lambda old: probes("secretsmanager", old), settings.keyring_secret_id, logger=logger),
        publish,
        signing_secret=SecretsManagerReplicaSecret(secrets, settings.signing_secret_id) if settings.signing_secret_id else None,
        clock=clock or utc_now, logger=logger,
    )


def build_operator_gate(
    settings: Settings, environ: Mapping[str, str], *, on_proof_event: Callable[[str], None] | None = None, local: bool = False
) -> OperatorGate:
    """The rotate function's gate: proofs checked as the sign function checks them, roles against ``operator-roles``.

    An unusable STS endpoint raises :class:`~jwks_rotator.core.errors.ConfigurationError`.
    """
    return OperatorGate(build_caller_verifier(settings, environ, on_proof_event=on_proof_event, local=local), settings.operator_roles)
