"""Sign function: issue a JWT signed with the active key (direct invoke; contract in jwks_rotator.token_policy).

Every answer is ``{"token", "token_type", "kid", "alg", "expires_at"}`` or
``{"error", "message"}``; the function never raises. A bad configuration is
answered with ``invalid_configuration`` on every call (and logged as an
error) instead of a crash loop. Logs carry kid, jti, aud, ttl and error codes
only; never the token, claim values or key material.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from jwks_rotator.errors import ConfigurationError, JwksRotatorError
from jwks_rotator.observability import make_logger, make_metrics
from jwks_rotator.signer import SigningKey, TokenSigner

logger = make_logger("sign")
metrics = make_metrics()

_signer: TokenSigner | None = None
_config_error: ConfigurationError | None = None


def _on_refresh(trigger: str, outcome: str, key: SigningKey | None) -> None:
    metrics.add_metric(name="KeyCacheRefreshes", unit=MetricUnit.Count, value=1)
    extra = {"trigger": trigger, "outcome": outcome, "kid": key.kid if key is not None else None}
    if outcome == "failed" or outcome == "unusable":
        logger.warning("key cache refresh found no signing key", extra=extra)
    elif outcome == "loaded":
        logger.info("key cache loaded the active key", extra=extra)


def _build_signer() -> TokenSigner:
    """Settings from the environment, validated once per container; one boto3 client."""
    from jwks_rotator.config import Settings

    settings = Settings.from_env(os.environ)
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "secretsmanager",
        config=Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2}),
    )
    return TokenSigner(settings, client, listener=_on_refresh)


def _get_signer() -> TokenSigner:
    global _signer, _config_error
    if _signer is None and _config_error is None:
        try:
            _signer = _build_signer()
        except ConfigurationError as exc:
            _config_error = exc
    if _config_error is not None:
        raise _config_error
    assert _signer is not None
    return _signer


@metrics.log_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Validate the request, sign with the cached active key, shape the response."""
    try:
        signer = _get_signer()
    except ConfigurationError as exc:
        logger.error("sign function is misconfigured", extra={"error": exc.code, "reason": exc.message})
        metrics.add_metric(name="Refusals", unit=MetricUnit.Count, value=1)
        return exc.to_dict()
    outcome = signer.handle(event)
    issued = outcome.issued
    if issued is not None:
        logger.info("token issued", extra={"kid": issued.kid, "jti": issued.jti, "aud": issued.aud, "ttl": issued.ttl})
        metrics.add_metric(name=f"TokensIssued_{issued.alg}", unit=MetricUnit.Count, value=1)
        return outcome.response
    error = outcome.error or JwksRotatorError("internal error")
    if error.code == "internal_error":
        logger.error("token not issued", extra={"error": error.code})
    else:
        logger.info("token refused", extra={"error": error.code})
    metrics.add_metric(name=f"Refusals_{error.code}", unit=MetricUnit.Count, value=1)
    return outcome.response
