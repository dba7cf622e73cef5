"""Sign function: issue a JWT signed with the active key (direct invoke; contract in jwks_rotator.core.token_policy).

Every answer is ``{"token", "token_type", "kid", "alg", "expires_at"}`` or
``{"error", "message"}``; the function never raises. A bad configuration is
answered with ``invalid_configuration`` on every call (and logged as an
error) instead of a crash loop.

Logs (powertools Logger) carry kid, jti, aud, ttl and error codes only, never
the token, claim values or key material. Refusals, key-cache reads and
configuration errors log at INFO or above; the per-token line ("token
issued") logs at DEBUG because one powertools line costs more than an ES256
signature: enable it with ``POWERTOOLS_LOG_LEVEL=DEBUG`` or sample it with
``POWERTOOLS_LOGGER_SAMPLE_RATE``.

Metrics (powertools Metrics, EMF): ``TokensIssued_<alg>``,
``Refusals_<code>`` and ``KeyCacheRefreshes``. They are counted in memory and
emitted as one EMF record at most every :data:`METRICS_FLUSH_SECONDS` per
container (the first invocation, and any after a quiet spell, at once). A
container reclaimed less than that after its last record loses those counts.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from jwks_rotator.adapters.observability import make_logger, make_metrics
from jwks_rotator.core.errors import ConfigurationError, JwksRotatorError
from jwks_rotator.core.settings import Settings
from jwks_rotator.core.signer import SigningKey, TokenSigner
from jwks_rotator.wiring import build_token_signer

METRICS_FLUSH_SECONDS = 1.0

logger = make_logger("sign")
metrics = make_metrics()

_signer: TokenSigner | None = None
_config_error: ConfigurationError | None = None
_counts: Counter[str] = Counter()
_last_flush = -math.inf


def _on_refresh(trigger: str, outcome: str, key: SigningKey | None) -> None:
    _counts["KeyCacheRefreshes"] += 1
    extra = {"trigger": trigger, "outcome": outcome, "kid": key.kid if key is not None else None}
    if outcome in ("failed", "unusable"):
        logger.warning("key cache read found no signing key", extra=extra)
    elif outcome == "loaded":
        logger.info("key cache loaded the active key", extra=extra)


def _build_signer() -> TokenSigner:
    """Settings from the environment, validated once per container, then the signer and its one client.

    boto3 is imported by the wiring only after validation: a misconfigured
    container answers without paying for it.
    """
    return build_token_signer(Settings.from_env(os.environ), listener=_on_refresh)


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


def _flush_metrics() -> None:
    """Emit the counted metrics as one EMF record when the last one is old enough."""
    global _last_flush
    now = time.monotonic()
    if not _counts or 0 <= now - _last_flush < METRICS_FLUSH_SECONDS:
        return
    _last_flush = now
    for name, value in _counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    _counts.clear()
    metrics.flush_metrics()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Validate the request, sign with the cached active key, shape the response."""
    try:
        return _respond(event)
    finally:
        try:
            _flush_metrics()
        except Exception as exc:  # metrics must never cost a token
            logger.warning("metrics not emitted", extra={"error": type(exc).__name__})


def _respond(event: Any) -> dict[str, Any]:
    try:
        signer = _get_signer()
    except ConfigurationError as exc:
        logger.error("sign function is misconfigured", extra={"error": exc.code, "reason": exc.message})
        _counts[f"Refusals_{exc.code}"] += 1
        return exc.to_dict()
    outcome = signer.handle(event)
    issued = outcome.issued
    if issued is not None:
        _counts[f"TokensIssued_{issued.alg}"] += 1
        logger.debug("token issued", extra={"kid": issued.kid, "jti": issued.jti, "aud": issued.aud, "ttl": issued.ttl})
        return outcome.response
    error = outcome.error or JwksRotatorError("the token could not be issued because of an internal error")
    _counts[f"Refusals_{error.code}"] += 1
    if error.code == "internal_error":
        logger.error("token not issued", extra={"error": error.code, "error_type": outcome.cause})
    else:
        logger.info("token refused", extra={"error": error.code})
    return outcome.response
