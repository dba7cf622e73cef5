"""The composition root: the core's services wired to their AWS adapters, for the handlers and the CLI.

Each builder imports its own adapters and services when called, so a
function loads only its own path: the sign function never loads rotation,
key generation or the store, and neither function imports boto3 before its
settings are validated. Clients come from
:func:`jwks_rotator.adapters.aws_clients.client_factory` (explicit timeouts,
standard retries) unless the caller hands in its own factory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .adapters.aws_clients import ClientFactory
    from .core.caller_verifier import CallerVerifier
    from .core.issuance import AuditRecord, IssuanceService
    from .core.operator_gate import OperatorGate
    from .core.ports import KeyringReader, RevocationReader, RevocationRecord
    from .core.rotation import Clock, RotationService
    from .core.signer import Clock as UnixClock
    from .core.signer import RefreshListener, TokenSigner


def build_rotation_service(
    settings: Settings, clients: ClientFactory | None = None, *, clock: Clock | None = None, logger: Any = None,
    sleep: Callable[[float], None] | None = None, on_revocation_repair: Callable[[str], None] | None = None,
) -> RotationService:
    """The rotation service wired to Secrets Manager, S3, the revocation record (S3) and its mirror (SSM), KMS and CloudFront.

    ``sleep`` is how the KMS hand-over waits for a disable to take effect before it enables the next key (``time.sleep``);
    ``on_revocation_repair`` is told each repair of the revocation mirror (erased, junk, malformed, mirror_unwritable).
    """
    settings.require("keyring_secret_id", "jwks_bucket", "issuer")
    import time

    from .adapters.aws_clients import ROTATION, client_factory
    from .adapters.kms_vault import KmsKeyVault
    from .adapters.revocation_object import S3RevocationRecord
    from .adapters.revocation_parameter import SsmRevocationMirror
    from .adapters.s3_publisher import S3Publisher
    from .adapters.secrets_store import SecretsManagerKeyringStore
    from .core.kms_custody import KmsCustodian
    from .core.revocation_guard import GuardedRevocationList
    from .core.rotation import RotationService, utc_now

    if clients is None:
        clients = client_factory(ROTATION)
    rotation_clients = clients
    # Always there (its client is made on first use): keys made under kms custody finish their life under it
    # even after the setting changes back.
    custodian = KmsCustodian(KmsKeyVault(lambda: rotation_clients("kms")), settings, sleep or time.sleep, logger)
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
                           custodian=custodian, signing_store=signing_store)


def build_token_signer(
    settings: Settings,
    clients: ClientFactory | None = None,
    *,
    listener: RefreshListener | None = None,
    clock: UnixClock | None = None,
    monotonic: UnixClock | None = None,
    environ: Mapping[str, str] | None = None,
) -> TokenSigner:
    """The token signer reading the signing secret's current version, the revocation record (``jwks-bucket``) and its mirror.

    The signing secret holds the keyring's signing view (the active key only); a deployment without one
    (``signing-secret-id`` empty) reads the keyring secret. The reads go through the AWS Parameters and Secrets
    Lambda Extension over plain HTTP (no boto3 on the sign path) when ``environ`` names its port
    (``PARAMETERS_SECRETS_EXTENSION_HTTP_PORT``: the template sets it) and no ``clients`` are handed in; otherwise
    through boto3 clients (Secrets Manager and SSM). ``clock`` is the wall clock that dates tokens, ``monotonic``
    the one that times the key cache.
    """
    settings.require("issuer", "signing_secret_id" if not settings.keyring_secret_id else "keyring_secret_id")
    import time

    from .adapters.kms_vault import KmsKeyVault
    from .core.revocation_guard import RecordRevocationReader, UnionRevocationReader
    from .core.signer import TokenSigner

    secret_id = settings.signing_secret_id or settings.keyring_secret_id
    endpoint = None
    if clients is None and environ is not None:
        from .adapters.secrets_extension import ExtensionEndpoint

        endpoint = ExtensionEndpoint.from_environment(environ)
    reader: KeyringReader
    mirror: RevocationReader
    if endpoint is not None:
        from .adapters.s3_record_reader import LeanS3RevocationRecord
        from .adapters.secrets_extension import readers_for

        reader, mirror = readers_for(endpoint, secret_id, settings.revocation_parameter)
        record: RevocationRecord | None = (
            LeanS3RevocationRecord.from_environment(environ or {}, settings.jwks_bucket) if settings.jwks_bucket else None
        )
    else:
        from .adapters.aws_clients import SIGNING, client_factory
        from .adapters.revocation_object import S3RevocationRecord
        from .adapters.revocation_parameter import SsmRevocationReader
        from .adapters.secret_reader import SecretsManagerKeyringReader

        if clients is None:
            clients = client_factory(SIGNING)
        reader = SecretsManagerKeyringReader(clients("secretsmanager"), secret_id)
        mirror = SsmRevocationReader(clients("ssm"), settings.revocation_parameter)
        record = S3RevocationRecord(clients("s3"), settings.jwks_bucket) if settings.jwks_bucket else None
    # The record (where no restore reaches; the template always names the bucket) and its mirror: a kid on either never signs.
    revocations: RevocationReader = UnionRevocationReader(RecordRevocationReader(record), mirror) if record is not None else mirror
    given = clients

    def kms_client() -> Any:
        # KMS custody: the KMS client (and boto3 with it) is made at the first KMS signature only, so a signer whose
        # keys are in the secret never imports an AWS SDK (the extension route included).
        if given is not None:
            return given("kms")
        from .adapters.aws_clients import SIGNING, make_client

        return make_client("kms", SIGNING)

    vault = KmsKeyVault(kms_client)
    return TokenSigner(
        settings, reader, clock=clock or time.time, monotonic=monotonic or time.monotonic, listener=listener,
        revocations=revocations, vault=vault,
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
) -> IssuanceService:
    """The sign function's service: the token signer, the caller verifier replaying proofs to STS, and the issuance policy.

    The STS endpoint comes from the function's region (``AWS_REGION``) or the
    ``STS_ENDPOINT_URL`` override, never from a request; a broken policy or
    endpoint raises :class:`~jwks_rotator.core.errors.ConfigurationError`.
    """
    from .core.issuance import IssuanceService
    from .core.issuance_policy import load_issuance_policy

    verifier = build_caller_verifier(settings, environ, on_proof_event=on_proof_event)
    policy = load_issuance_policy(
        policy_text,
        max_token_ttl=int(settings.max_token_ttl.total_seconds()),
        default_token_ttl=int(settings.default_token_ttl.total_seconds()),
    )
    signer = build_token_signer(settings, clients, listener=listener, environ=environ)
    return IssuanceService(signer, verifier, policy, on_decision=on_decision)


def build_caller_verifier(
    settings: Settings, environ: Mapping[str, str], *, on_proof_event: Callable[[str], None] | None = None
) -> CallerVerifier:
    """A verifier replaying proofs to the function's own STS endpoint (``AWS_REGION``, or ``STS_ENDPOINT_URL``) over HTTP."""
    import time

    from .adapters.sts_identity import StsEndpoint, StsIdentityReplayer
    from .core.caller_proof import DEFAULT_MAX_AGE
    from .core.caller_verifier import CallerVerifier

    endpoint = StsEndpoint.from_environment(environ)
    return CallerVerifier(
        StsIdentityReplayer.for_endpoint(endpoint),
        wall_clock=time.time,
        monotonic_clock=time.monotonic,
        max_age=DEFAULT_MAX_AGE,
        leeway=settings.clock_skew_leeway.total_seconds(),
        sts_host=endpoint.host,
        sts_region=endpoint.region,
        on_event=on_proof_event,
    )


def build_operator_gate(
    settings: Settings, environ: Mapping[str, str], *, on_proof_event: Callable[[str], None] | None = None
) -> OperatorGate:
    """The rotate function's gate: proofs checked as the sign function checks them, roles against ``operator-roles``.

    An unusable STS endpoint raises :class:`~jwks_rotator.core.errors.ConfigurationError`.
    """
    from .core.operator_gate import OperatorGate

    return OperatorGate(build_caller_verifier(settings, environ, on_proof_event=on_proof_event), settings.operator_roles)
