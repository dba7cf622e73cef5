"""The rotate function's composition root (also the CLI's): the rotation service and the operator gate, wired to AWS.

Clients come from :func:`jwks_rotator.adapters.sdk.clients.client_factory` (explicit timeouts, standard retries)
unless the caller hands in its own factory (the tests and the local cloud do).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from jwks_rotator.adapters.sdk.clients import (
    PROBE,
    ROTATION,
    ClientFactory,
    RegionalClientFactory,
    client_factory,
    regional_client_factory,
)
from jwks_rotator.adapters.sdk.keyring_replicas import SecretsManagerKeyringReplicas, SecretsManagerSigningViewReplicas
from jwks_rotator.adapters.sdk.kms_vault import KmsKeyVault
from jwks_rotator.adapters.sdk.promotion import (
    S3OriginMarks,
    SecretsManagerPrimaryProbe,
    SecretsManagerReplicaSecret,
    SecretsManagerWriterMarks,
)
from jwks_rotator.adapters.sdk.replication_ledger import S3ReplicationLedger
from jwks_rotator.adapters.sdk.revocation_object import S3RevocationRecord
from jwks_rotator.adapters.sdk.revocation_parameter import SsmRevocationMirror
from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.adapters.sdk.tick_ledger import S3TickLedger
from jwks_rotator.bootstrap.callers import build_caller_verifier
from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.keys.revocation_guard import GuardedRevocationList, InheritingRevocationRecord
from jwks_rotator.core.lifecycle.kms_custody import KmsCustodian
from jwks_rotator.core.lifecycle.operations import RotateCommand, report_summary
from jwks_rotator.core.lifecycle.operator_gate import OperatorGate
from jwks_rotator.core.lifecycle.origins import EveryOrigin, Origin
from jwks_rotator.core.lifecycle.promote import Promotion
from jwks_rotator.core.lifecycle.replicas import EveryRegionRevocations
from jwks_rotator.core.lifecycle.replication_lag import PATIENCE
from jwks_rotator.core.lifecycle.rotation import Clock, RotationService, utc_now
from jwks_rotator.core.lifecycle.writer import MergedMarks
from jwks_rotator.core.ports import Publisher, RevocationList, RevocationRecord, WriterMarks
from jwks_rotator.core.settings import Settings


def build_rotation_service(
    settings: Settings, clients: ClientFactory | None = None, *, clock: Clock | None = None, logger: Any = None,
    sleep: Callable[[float], None] | None = None, on_revocation_repair: Callable[[str], None] | None = None,
    on_foreign_key: Callable[[str], None] | None = None, region: str | None = None,
    regional_clients: RegionalClientFactory | None = None, monotonic: Callable[[], float] | None = None,
) -> RotationService:
    """The rotation service wired to Secrets Manager, S3, the revocation record (S3) and its mirror (SSM), KMS and CloudFront.

    ``sleep`` is how the KMS hand-over waits for a disable to take effect before it enables the next key, and how the
    writer waits between re-reads of a replica behind its write (``time.sleep``);
    ``on_revocation_repair`` is told each repair of the revocation mirror (erased, junk, malformed, mirror_unwritable);
    ``on_foreign_key`` the ARN of each KMS key carrying the stack's tag that the stack did not make (left alone).

    ``region`` is the function's own (its ``AWS_REGION``), required with ``primary-region``: outside the primary the
    service writes nothing. With ``regions`` naming others, the service also writes the second origin, reads every
    other region's keyring replica and every signing view back, and keeps every region's revocation list, all
    relative to its own region (docs/design/regions.md); ``regional_clients`` makes their clients (default: boto3's,
    ``region_name`` set; required when ``clients`` is handed in).
    With several regions every origin's documents are marked with ``region`` (the writer mark), and before any write
    the writer fence reads the other regions' keyring secrets and every origin (:func:`build_writer_marks`).
    """
    settings.require("keyring_secret_id", "jwks_bucket", "issuer")
    if settings.primary_region and not region:
        raise ConfigurationError("primary-region is set: the rotate function's own region (AWS_REGION) is required")
    own = region or ""
    _require_other_origin(settings, own)
    if clients is None:
        clients = client_factory(ROTATION)
        regional_clients = regional_clients or regional_client_factory(ROTATION)
    rotation_clients = clients
    others = tuple(r for r in settings.regions if r != own)
    # Every region's service is wired relative to its own region (a secondary's writes nothing while the fence holds,
    # and makes no call: its clients are only built), so a region promoted to writer is wired as a writer.
    regional = bool(others)
    if regional and regional_clients is None:
        raise ConfigurationError("regions name other regions: the wiring needs a client factory per region (regional_clients)")
    if regional and own == settings.primary_region:
        settings.require("signing_secret_id")  # deletion waits for every region's signing view
        if settings.key_custody == "kms" and not settings.kms_replica_sign_role_arns:  # replicas then name no signer
            (logger or logging.getLogger("jwks_rotator")).warning(
                "no sign role named for the other regions (kms-replica-sign-role-arns, the stack's SecondarySignRoleArns): "
                "they cannot sign under KMS custody until it is set", extra={"reason": "replica_sign_roles_missing", "regions": sorted(others)})
    in_region = {r: regional_clients(r) for r in others} if regional and regional_clients is not None else {}
    # Always there (its client is made on first use): keys made under kms custody finish their life under it
    # even after the setting changes back. Across regions, its keys are multi-Region keys replicated to every other.
    custodian = KmsCustodian(KmsKeyVault(lambda: rotation_clients("kms")), settings, sleep or time.sleep, logger, on_foreign=on_foreign_key,
                             regions={r: KmsKeyVault(_kms_client(factory)) for r, factory in in_region.items()})
    store = SecretsManagerKeyringStore(clients("secretsmanager"), settings.keyring_secret_id)
    own_origin = S3Publisher(
        clients("s3"),
        settings.jwks_bucket,
        settings,
        cloudfront_client=clients("cloudfront") if settings.distribution_id else None,
        distribution_id=settings.distribution_id,
        writer_region=own if settings.regions else "",
    )
    publisher: Publisher = own_origin
    record: RevocationRecord = S3RevocationRecord(clients("s3"), settings.jwks_bucket)
    if regional and settings.second_origin_bucket and settings.second_origin_region in in_region:
        # The other origin's bucket holds the record of the writer before this one (the old primary, in a secondary's
        # stack): a kid either record holds is revoked, so a partition's revocations survive a promote.
        inherited = S3RevocationRecord(in_region[settings.second_origin_region]("s3"), settings.second_origin_bucket)
        record = InheritingRevocationRecord(record, {settings.second_origin_region: inherited}, logger=logger)
    revocations: RevocationList = GuardedRevocationList(
        record, SsmRevocationMirror(clients("ssm"), settings.revocation_parameter), on_repair=on_revocation_repair
    )
    signing_store = (
        SecretsManagerKeyringStore(clients("secretsmanager"), settings.signing_secret_id) if settings.signing_secret_id else None
    )
    if not regional:
        return RotationService(store, publisher, settings, clock=clock or utc_now, logger=logger, revocations=revocations,
                               custodian=custodian, signing_store=signing_store, ticks=S3TickLedger(clients("s3"), settings.jwks_bucket),
                               region=own, monotonic=monotonic or time.monotonic)
    if settings.second_origin_bucket and settings.second_origin_bucket == settings.jwks_bucket:  # names are global: never its own
        raise ConfigurationError("rule second-origin-bucket != jwks-bucket: the second origin is another region's bucket")
    if settings.second_origin_bucket:  # the other origin (the primary's bucket, in a secondary's stack)
        second = S3Publisher(in_region[settings.second_origin_region]("s3"), settings.second_origin_bucket, settings, writer_region=own)
        # The origin that invalidates the distribution is written last.
        publisher = EveryOrigin([Origin(settings.second_origin_region, second), Origin(own, own_origin)], own=own)
    lists: dict[str, RevocationList] = {own: revocations}
    for other in others:
        lists[other] = GuardedRevocationList(
            record, SsmRevocationMirror(in_region[other]("ssm"), settings.revocation_parameter),
            on_repair=_in_region(other, on_revocation_repair, logger), adopt=False,
        )
    secrets = {r: in_region[r]("secretsmanager") for r in others}
    return RotationService(
        store, publisher, settings, clock=clock or utc_now, logger=logger, revocations=EveryRegionRevocations(lists, logger=logger),
        custodian=custodian, signing_store=signing_store, ticks=S3TickLedger(clients("s3"), settings.jwks_bucket),
        replicas=SecretsManagerKeyringReplicas(secrets, settings.keyring_secret_id, logger=logger),
        signing_views=SecretsManagerSigningViewReplicas({own: clients("secretsmanager"), **secrets}, settings.signing_secret_id, logger=logger)
        if settings.signing_secret_id else None,
        region=own, replication_ledger=S3ReplicationLedger(clients("s3"), settings.jwks_bucket), monotonic=monotonic or time.monotonic,
        sleep=sleep or time.sleep, replica_patience=PATIENCE,
        writer_marks=build_writer_marks(settings, own, clients, in_region, logger),
        keyring_secret=SecretsManagerReplicaSecret(clients("secretsmanager"), settings.keyring_secret_id),
    )


def _require_other_origin(settings: Settings, own: str) -> None:
    """The second origin is the other one, in another region than the function's own (known here only: AWS_REGION)."""
    if settings.second_origin_region and settings.second_origin_region == own:
        raise ConfigurationError(
            f"rule second-origin-region != this region: {own} is this function's own region; the second origin is the other "
            "origin of the distribution's origin group (in a secondary's stack, the primary's bucket and region)"
        )


def _kms_client(factory: ClientFactory) -> Callable[[], Any]:
    """The region's KMS client, made on first use (as the vault of the function's own region)."""
    return lambda: factory("kms")


def _in_region(region: str, on_repair: Callable[[str], None] | None, logger: Any) -> Callable[[str], None]:
    """``on_repair`` for another region's mirror: the region logged with the reason, then told as the primary's is."""
    log = logger or logging.getLogger("jwks_rotator")

    def repaired(reason: str) -> None:
        log.warning("revocation list repaired in a region", extra={"region": region, "reason": reason})
        if on_repair is not None:
            on_repair(reason)

    return repaired


def _origins(settings: Settings, own: str, clients: ClientFactory, in_region: Mapping[str, ClientFactory]) -> list[tuple[str, Any, str]]:
    """Every origin bucket the settings name, with a client of its region: ``(name, s3 client, bucket)``."""
    origins = [(f"s3://{settings.jwks_bucket}", clients("s3"), settings.jwks_bucket)]
    second, where = settings.second_origin_bucket, settings.second_origin_region
    if second and second != settings.jwks_bucket and where != own and where in in_region:
        origins.append((f"s3://{second}", in_region[where]("s3"), second))
    return origins


def build_writer_marks(
    settings: Settings, own: str, clients: ClientFactory, in_region: Mapping[str, ClientFactory], logger: Any = None
) -> WriterMarks:
    """What the fence reads: every other region's keyring secret (by the secret's id there) and every origin."""
    others = {other: factory("secretsmanager") for other, factory in in_region.items()}
    return MergedMarks(SecretsManagerWriterMarks(others, settings.keyring_secret_id, logger=logger),
                       S3OriginMarks(_origins(settings, own, clients, in_region), logger=logger))


def build_promotion(
    settings: Settings, region: str, service: RotationService, clients: ClientFactory | None = None, *,
    regional_clients: RegionalClientFactory | None = None, probe_clients: RegionalClientFactory | None = None,
    clock: Clock | None = None, logger: Any = None,
) -> Promotion:
    """``promote`` in ``region``: its keyring and signing view replicas, the origins, every other region's keyring secret
    (whose writer marks must name no third writer), a short probe of the old primary (one attempt, short timeouts:
    :data:`PROBE`), and ``service`` (this region's rotation) to publish as the new writer."""
    settings.require("keyring_secret_id", "jwks_bucket", "issuer")
    _require_other_origin(settings, region)
    if clients is None:
        clients = client_factory(ROTATION)
        regional_clients = regional_clients or regional_client_factory(ROTATION)
    probes = probe_clients or regional_client_factory(PROBE)
    in_region = {r: regional_clients(r) for r in settings.regions if r != region} if regional_clients is not None else {}
    secrets = clients("secretsmanager")

    def publish() -> Mapping[str, Any]:
        return report_summary(RotateCommand("publish"), service.publish())

    return Promotion(
        region, settings, SecretsManagerKeyringStore(secrets, settings.keyring_secret_id),
        SecretsManagerReplicaSecret(secrets, settings.keyring_secret_id),
        S3OriginMarks(_origins(settings, region, clients, in_region), logger=logger),
        SecretsManagerPrimaryProbe(lambda old: probes(old)("secretsmanager"), settings.keyring_secret_id, logger=logger),
        publish,
        signing_secret=SecretsManagerReplicaSecret(secrets, settings.signing_secret_id) if settings.signing_secret_id else None,
        writers=SecretsManagerWriterMarks({r: factory("secretsmanager") for r, factory in in_region.items()},
                                          settings.keyring_secret_id, logger=logger),
        clock=clock or utc_now, logger=logger,
    )


def build_operator_gate(
    settings: Settings, environ: Mapping[str, str], *, on_proof_event: Callable[[str], None] | None = None, local: bool = False
) -> OperatorGate:
    """The rotate function's gate: proofs checked as the sign function checks them, roles against ``operator-roles``.

    An unusable STS endpoint raises :class:`~jwks_rotator.core.errors.ConfigurationError`.
    """
    return OperatorGate(build_caller_verifier(settings, environ, on_proof_event=on_proof_event, local=local), settings.operator_roles)
