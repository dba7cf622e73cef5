"""Sign function: issue a JWT to an authenticated caller, as far as its issuance profile allows (direct invoke).

A request is ``{"proof": {...}, "sub", "aud", "ttl", "claims", "profile"}``; every answer is ``{"token",
"token_type", "kid", "alg", "expires_at"}`` or ``{"error", "message"}``: the function never raises. A bad
configuration is answered with ``invalid_configuration`` on every call, and logged, instead of a crash loop.

Every decision, issued or refused, is one audit JSON line on stdout (never the token, the proof or another claim
value); metrics are EMF records, at most one per :data:`METRICS_FLUSH_SECONDS` per container.

Cold start: importing this module loads only the logger, the metrics and the audit writer; the issuance core is
imported by the first invocation, which builds the service. boto3, botocore and powertools stay out of the process.

Design (audit fields, metric names, what the cold start loads and why): docs/design/sign-function.md.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from jwks_rotator.adapters.lean.audit_log import AuditLog
from jwks_rotator.adapters.lean.telemetry import EmfMetrics, JsonLogger
from jwks_rotator.core.errors import ConfigurationError

if TYPE_CHECKING:  # the issuance core (settings, policy, verifier, signer, cryptography) is loaded by the first call
    from jwks_rotator.core.issuance.service import AuditRecord, IssuanceService
    from jwks_rotator.core.issuance.signer import SigningKey
    from jwks_rotator.core.settings import Settings

METRICS_FLUSH_SECONDS = 1.0
CODE_DIR = os.path.dirname(os.path.realpath(__file__))  # os.path, not pathlib: pathlib costs ~9 ms of imports at a cold start

logger = JsonLogger("sign")
metrics = EmfMetrics()
audit = AuditLog()

_service: IssuanceService | None = None
_config_error: ConfigurationError | None = None
_accepted: dict[tuple[str, str, str], frozenset[str]] = {}
_counts: Counter[str] = Counter()
_last_flush = -math.inf


def _on_refresh(trigger: str, outcome: str, key: SigningKey | None, reason: str = "") -> None:
    _counts["KeyCacheRefreshes"] += 1
    extra = {"trigger": trigger, "outcome": outcome, "kid": key.kid if key is not None else None}
    if outcome in ("failed", "unusable"):
        extra["reason"] = reason  # revoked, restore hold, unreadable keyring or revocation list: never a stored value
        logger.warning("key cache read found no signing key", extra=extra)
    elif outcome == "loaded":
        logger.info("key cache loaded the active key", extra=extra)


def _on_proof_event(event: str) -> None:
    if event == "replayed":
        _counts["ProofReplays"] += 1
    elif event in ("rate_limited", "sts_unavailable"):
        _counts[f"Proof_{event}"] += 1


def _on_decision(record: AuditRecord) -> None:
    audit.write(record)
    if record.issued is not None:
        _counts[f"TokensIssued_{record.issued.alg}"] += 1
        _counts[f"IssuedByProfile_{record.profile}"] += 1
        return
    _counts[f"Refusals_{record.error}"] += 1
    if record.profile is not None:
        _counts[f"RefusedByProfile_{record.profile}_{record.error}"] += 1
    if record.error == "internal_error":
        logger.error("token not issued", extra={"error": record.error})


def read_policy(settings: Settings) -> str:
    """The issuance policy file deployed with the function (a relative path is taken from the code directory)."""
    path = os.path.join(CODE_DIR, settings.issuance_policy_file)  # an absolute setting stays as it is
    try:
        with open(path, encoding="utf-8") as policy:
            return policy.read()
    except OSError as exc:
        raise ConfigurationError(f"issuance-policy-file: cannot read {os.path.basename(path)} ({type(exc).__name__})") from None


def _build_service() -> IssuanceService:
    """Settings from the environment, validated once per container, then the policy, the verifier and the signer.

    With the extension's port in the environment (the template sets it) the
    signer reads through the extension and boto3 is never imported; without
    it, the composition root imports boto3 only after validation.
    """
    # Measured reason: the issuance core (composition root, settings, policy, verifier, signer, cryptography) costs
    # ~70 ms of imports (python -X importtime); the first invocation pays it, not INIT (the Lambda-lifecycle work
    # decides where it belongs). tests/integration/test_sign_path_imports.py checks what INIT loads.
    from jwks_rotator.bootstrap.sign import build_issuance_service
    from jwks_rotator.core.settings import Settings

    settings = Settings.from_env(os.environ)
    return build_issuance_service(
        settings,
        read_policy(settings),
        os.environ,
        listener=_on_refresh,
        on_decision=_on_decision,
        on_proof_event=_on_proof_event,
    )


def _get_service() -> IssuanceService:
    global _service, _config_error
    if _service is None and _config_error is None:
        # The build imports the issuance core (~12,000 tracked objects, all long-lived): the cyclic collector would
        # scan them over and over while they are made (~5 ms of a cold start), so it pauses for the build, and what
        # the build made is frozen (kept out of later collections: it lives as long as the container).
        collecting = gc.isenabled()
        gc.disable()
        try:
            _service = _build_service()
        except ConfigurationError as exc:
            _config_error = exc
        else:
            _service.signer.cache.prefetch()  # the keyring and revocation reads run while the caller's proof is replayed
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
    if _config_error is not None:
        raise _config_error
    assert _service is not None
    return _service


def _accepted_signers(context: Any) -> frozenset[str]:
    """The names a proof may bind to: this function's name, ARN and qualified ARN (from the invocation context)."""
    key = (
        str(getattr(context, "function_name", "") or ""),
        str(getattr(context, "invoked_function_arn", "") or ""),
        str(getattr(context, "function_version", "") or ""),
    )
    names = _accepted.get(key)
    if names is None:
        from jwks_rotator.core.callers.proof import accepted_signer_names

        names = _accepted[key] = accepted_signer_names(*key)
        audit.function_version = key[2]
    return names


def _flush_metrics() -> None:
    """Emit the counted metrics as one EMF record when the last one is old enough."""
    global _last_flush
    now = time.monotonic()
    if not _counts or 0 <= now - _last_flush < METRICS_FLUSH_SECONDS:
        return
    _last_flush = now
    for name, value in _counts.items():
        metrics.add_count(name, value)
    _counts.clear()
    metrics.flush_metrics()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Verify the caller, check its profile, sign with the cached active key, audit the decision."""
    try:
        try:
            service = _get_service()
        except ConfigurationError as exc:
            logger.error("sign function is misconfigured", extra={"error": exc.code, "reason": exc.message})
            from jwks_rotator.core.issuance.service import AuditRecord
            _on_decision(AuditRecord("refused", exc.code, "misconfigured", None, None, None, ""))
            return exc.to_dict()
        return service.handle(event, _accepted_signers(context)).response
    finally:
        if _service is not None:
            _service.signer.cache.settle()  # a refused first call waits for the background read it started
        try:
            _flush_metrics()
        except Exception as exc:  # metrics must never cost a token
            logger.warning("metrics not emitted", extra={"error": type(exc).__name__})
