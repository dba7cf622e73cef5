"""The composition root: the core's services wired to their AWS adapters, for the handlers and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .adapters.s3_publisher import S3Publisher
from .adapters.secrets_store import SecretsManagerKeyringStore
from .core.rotation import Clock, RotationService, utc_now
from .core.settings import Settings

ClientFactory = Callable[[str], Any]

def build_rotation_service(settings: Settings, clients: ClientFactory, *, clock: Clock = utc_now, logger: Any = None) -> RotationService:
    """The service wired to Secrets Manager, S3 and (when configured) CloudFront."""
    settings.require("keyring_secret_id", "jwks_bucket", "issuer")
    store = SecretsManagerKeyringStore(clients("secretsmanager"), settings.keyring_secret_id)
    publisher = S3Publisher(
        clients("s3"),
        settings.jwks_bucket,
        settings,
        cloudfront_client=clients("cloudfront") if settings.distribution_id else None,
        distribution_id=settings.distribution_id,
    )
    return RotationService(store, publisher, settings, clock=clock, logger=logger)

