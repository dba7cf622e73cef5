"""Sign function: issue a JWT to an authenticated caller, as far as its issuance profile allows (direct invoke).

A request is ``{"proof": {...}, "sub", "aud", "ttl", "claims", "profile"}``; every answer is ``{"token",
"token_type", "kid", "alg", "expires_at"}`` or ``{"error", "message"}``: the function never raises. A bad
configuration is answered with ``invalid_configuration`` on every call, and logged, instead of a crash loop.

Every decision, issued or refused, is one audit JSON line on stdout (never the token, the proof or another claim
value); metrics are EMF records, at most one per :data:`METRICS_FLUSH_SECONDS` per container.

Lifecycle (why: docs/design/sign-lifecycle.md): INIT, this module's import, does everything that needs neither a
caller nor a secret (the issuance core, the crypto backend, settings, policy, the TLS context for STS) and reads no
key; the first invocation replays the proof, reads the keys and signs. After a SnapStart restore, or in a forked
copy, the keys, verified proofs, monotonic deadlines, kept connections and ``random``'s state are dropped.
Concurrent invocations on threads share the caches under locks. boto3, botocore and powertools stay out of the
process. Audit fields and metric names: docs/design/sign-function.md.
"""

from __future__ import annotations

import gc
import math
import os
import random
import threading
import time
from collections import Counter
from typing import Any

from jwks_rotator.adapters.lean.audit_log import AuditLog
from jwks_rotator.adapters.lean.http import forget_connections
from jwks_rotator.adapters.lean.runtime_hooks import register_copy_hooks
from jwks_rotator.adapters.lean.sts_identity import STS_CA_BUNDLE_ENV, StsEndpoint, is_local
from jwks_rotator.adapters.lean.telemetry import EmfMetrics, JsonLogger
from jwks_rotator.bootstrap.sign import build_issuance_service
from jwks_rotator.core.callers.proof import accepted_signer_names
from jwks_rotator.core.errors import ConfigurationError, JwksRotatorError
from jwks_rotator.core.issuance.service import AuditRecord, IssuanceService
from jwks_rotator.core.issuance.signer import SigningKey
from jwks_rotator.core.settings import Settings

METRICS_FLUSH_SECONDS = 1.0
CODE_DIR = os.path.dirname(os.path.realpath(__file__))  # os.path, not pathlib: pathlib costs ~9 ms of imports at a cold start

logger = JsonLogger("sign")
metrics = EmfMetrics()
audit = AuditLog()

_accepted: dict[tuple[str, str, str], frozenset[str]] = {}
_counts: Counter[str] = Counter()
# Issued tokens by (algorithm, profile): their two metric names are built when the counts are flushed, not per token.
_issued: Counter[tuple[str, str | None]] = Counter()
_counts_lock = threading.Lock()  # counts from invocations running at once on threads are neither lost nor flushed twice
# A fork waits for a count or flush under way, and the copy starts with the lock free (no thread of the copy holds it).
os.register_at_fork(before=_counts_lock.acquire, after_in_parent=_counts_lock.release, after_in_child=_counts_lock.release)
_last_flush = -math.inf


def _count(name: str) -> None:
    with _counts_lock:
        _counts[name] += 1


def _on_refresh(trigger: str, outcome: str, key: SigningKey | None, reason: str = "") -> None:
    _count("KeyCacheRefreshes")
    extra = {"trigger": trigger, "outcome": outcome, "kid": key.kid if key is not None else None}
    if outcome in ("failed", "unusable"):
        extra["reason"] = reason  # revoked, restore hold, unreadable keyring or revocation list: never a stored value
        logger.warning("key cache read found no signing key", extra=extra)
    elif outcome == "loaded":
        logger.info("key cache loaded the active key", extra=extra)


def _on_proof_event(event: str) -> None:
    if event == "replayed":
        _count("ProofReplays")
    elif event in ("rate_limited", "sts_unavailable"):
        _count(f"Proof_{event}")


def _on_decision(record: AuditRecord) -> None:
    audit.write(record)
    issued = record.issued
    with _counts_lock:
        if issued is not None:
            _issued[issued.alg, record.profile] += 1
            return
        _counts[f"Refusals_{record.error}"] += 1
        if record.profile is not None:
            _counts[f"RefusedByProfile_{record.profile}_{record.error}"] += 1
    if record.error == "internal_error":
        logger.error("token not issued", extra={"error": record.error})


def read_policy(settings: Settings, *, local: bool = False) -> str:
    """The issuance policy file deployed with the function: a path inside the code directory (anywhere on the local stack)."""
    path = os.path.realpath(os.path.join(CODE_DIR, settings.issuance_policy_file))
    if not local and not path.startswith(CODE_DIR + os.sep):
        raise ConfigurationError("issuance-policy-file: must name a file inside the function's code directory")
    try:
        with open(path, encoding="utf-8") as policy:
            return policy.read()
    except OSError as exc:
        raise ConfigurationError(f"issuance-policy-file: cannot read {os.path.basename(path)} ({type(exc).__name__})") from None


def _build_service() -> IssuanceService:
    """Settings from the environment, validated once per container, then the policy, the verifier, the signer and
    the TLS context for STS (an unusable CA file is a configuration error here, not a failed call later).

    With the extension's port in the environment (the template sets it) the
    signer reads through the extension and boto3 is never imported; without
    it, the composition root imports boto3 only after validation.
    """
    settings = Settings.from_env(os.environ)
    local = is_local(CODE_DIR)  # a marker file only the local stack adds: no configuration change can set it
    service = build_issuance_service(
        settings,
        read_policy(settings, local=local),
        os.environ,
        listener=_on_refresh,
        on_decision=_on_decision,
        on_proof_event=_on_proof_event,
        local=local,
    )
    endpoint = StsEndpoint.from_environment(os.environ, local=local)
    if endpoint.origin.startswith("https:"):
        try:
            endpoint.tls_context()
        except OSError as exc:  # ssl.SSLError included
            raise ConfigurationError(f"{STS_CA_BUNDLE_ENV}: the CA file cannot be loaded ({type(exc).__name__})") from None
    return service


def _start() -> tuple[IssuanceService | None, JwksRotatorError | None]:
    """INIT: the service, or the error every call answers with (logged once here, and at each call)."""
    # The build makes ~12,000 tracked objects, all long-lived: the cyclic collector would scan them over and over while
    # they are made (~5 ms), so it pauses for the build, and what the build made is frozen (kept out of later
    # collections: it lives as long as the container).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build_service(), None
    except ConfigurationError as exc:
        logger.error("sign function is misconfigured", extra={"error": exc.code, "reason": exc.message})
        return None, exc
    except Exception as exc:  # never a crash loop: every call answers internal_error, the cause is logged by type
        logger.error("sign function could not start", extra={"error": "internal_error", "cause": type(exc).__name__})
        return None, JwksRotatorError("the sign function could not start because of an internal error")
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _forget_process_state() -> None:
    """Before a snapshot, after a restore and in a forked copy: nothing cached may be shared with another copy.

    Keys, verified proofs and refusals, the replay budget, every monotonic deadline (the key cache's, the proofs',
    the metrics interval), kept connections and the ``random`` module's state. Tokens' jti come from
    ``os.urandom`` (the operating system's generator, as ``secrets``), never from state kept in the process.
    """
    global _last_flush
    service = _service
    if service is not None:
        service.signer.cache.forget()
        service.verifier.forget()
    forget_connections()
    random.seed()
    _last_flush = -math.inf


_service, _init_error = _start()
COPY_HOOKS = register_copy_hooks(_forget_process_state, _forget_process_state)
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start" and "snapstart" not in COPY_HOOKS:
    logger.warning("SnapStart runtime hooks unavailable: restored copies keep nothing secret, but are not told of the restore",
                   extra={"error": "snapshot_restore_py"})


def _accepted_signers(context: Any) -> frozenset[str]:
    """The names a proof may bind to: this function's name, ARN and qualified ARN (from the invocation context)."""
    key = (
        str(getattr(context, "function_name", "") or ""),
        str(getattr(context, "invoked_function_arn", "") or ""),
        str(getattr(context, "function_version", "") or ""),
    )
    names = _accepted.get(key)
    if names is None:
        names = _accepted[key] = accepted_signer_names(*key)
        audit.function_version = key[2]
    return names


def _flush_metrics() -> None:
    """Emit the counted metrics as one EMF record when the last one is old enough."""
    global _last_flush
    if 0 <= time.monotonic() - _last_flush < METRICS_FLUSH_SECONDS:
        return  # flushed within the interval (checked again under the lock): most tokens take no lock here
    with _counts_lock:
        now = time.monotonic()
        if not (_counts or _issued) or 0 <= now - _last_flush < METRICS_FLUSH_SECONDS:
            return
        _last_flush = now
        for (alg, profile), value in _issued.items():
            metrics.add_count(f"TokensIssued_{alg}", value)
            metrics.add_count(f"IssuedByProfile_{profile}", value)
        for name, value in _counts.items():
            metrics.add_count(name, value)
        _issued.clear()
        _counts.clear()
        metrics.flush_metrics()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Verify the caller, check its profile, sign with the cached active key, audit the decision."""
    service = _service
    try:
        if service is None:
            error = _init_error
            assert error is not None
            logger.error("sign function is misconfigured", extra={"error": error.code, "reason": error.message})
            _on_decision(AuditRecord("refused", error.code, "misconfigured", None, None, None, ""))
            return error.to_dict()
        service.signer.cache.prefetch()  # a cold cache's reads run while the caller's proof is replayed
        return service.handle(event, _accepted_signers(context)).response
    finally:
        if service is not None:
            service.signer.cache.settle()  # a refused first call waits for the background read it started
        try:
            _flush_metrics()
        except Exception as exc:  # metrics must never cost a token
            logger.warning("metrics not emitted", extra={"error": type(exc).__name__})
