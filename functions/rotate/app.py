"""Rotate function: scheduled tick, rotate-now, revoke, publish, promote and step-down (see events/).

Every operation but a tick needs a ``proof`` of an operator's
identity, bound to this function (see jwks_rotator.core.lifecycle.operator_gate);
a scheduled event and ``{"operation": "tick"}`` need none. A refusal is an
answer (``{"error", "message"}``), never a failure.

Audit: one JSON line per operation decision (type ``jwks-rotator.audit``,
``"function": "rotate"``) on stdout: decision (performed, refused or failed),
error, reason, the caller's STS ARN and role, the operation, the revoked kid
and ``accept_restore``; for promote and step-down also the region named, the old and new primary and the keyring
generation written. Never the proof. ``promote R`` runs only in R's own rotate function (AWS_REGION);
a refused safety check is an answer (``replica_behind_publication``, ...), not a failure.

Metrics (EMF): ``Rotations``, ``Publications``, keys per state, ``ActiveKeyAgeSeconds`` and
``ActiveKeyOverdueSeconds`` (what the stale-key alarm watches), ``InvalidEvents``, ``OperationRefusals_<code>``,
``RotationFailures`` and, for the failures an operator must act on, ``KeyringBehindPublication`` and
``ClockSkewDetected``, ``WriterSuperseded`` (see jwks_rotator.adapters.sdk.rotation_metrics), and ``RevocationListRepaired`` when the revocation
parameter had to be rewritten from the stack's record (erased, junk, malformed), ``ForeignKeysLeftAlone`` for a KMS key
carrying the stack's tag that the stack did not make; with replicas in other regions, ``ReplicationLag`` and
``RevocationReach`` per region (dimension ``Region``). A failed run raises, so the error alarm and the
dead-letter queue see it.

Outside the writer's region (``primary-region``, or the region the keyring names once ``promote`` or ``step-down``
moved the writer) the function writes nothing: an operation is refused with ``not_primary_region`` (an answer,
audited), an unproven tick does nothing and logs why. ``promote`` is the operation that runs there.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from jwks_rotator.adapters.lean.audit_log import AuditLog
from jwks_rotator.adapters.lean.sts_identity import is_local, refuse_endpoint_overrides
from jwks_rotator.adapters.sdk.observability import make_logger, make_metrics
from jwks_rotator.adapters.sdk.rotation_metrics import add_failure_metrics, add_keyring_metrics, add_origin_metrics, add_replication_metrics
from jwks_rotator.bootstrap.rotate import build_operator_gate, build_promotion, build_rotation_service
from jwks_rotator.core.callers.proof import accepted_signer_names
from jwks_rotator.core.errors import (
    InvalidEventError,
    JwksRotatorError,
    NotPrimaryRegionError,
    PromoteRefusedError,
    UnknownKeyError,
    WriterSupersededError,
)
from jwks_rotator.core.lifecycle.operations import RotateCommand, report_summary, run_command
from jwks_rotator.core.lifecycle.operator_gate import Admission, OperatorGate, admit
from jwks_rotator.core.lifecycle.promote import Promotion
from jwks_rotator.core.lifecycle.rotation import RotationService, utc_now
from jwks_rotator.core.settings import Settings

CODE_DIR = os.path.dirname(os.path.realpath(__file__))
logger = make_logger("rotate")
metrics = make_metrics()
audit = AuditLog()
_service: RotationService | None = None
_gate: OperatorGate | None = None
_promotion: Promotion | None = None


def _own_region() -> str:
    """The region this function runs in (Lambda sets AWS_REGION; AWS_DEFAULT_REGION where only that is set)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "")


def _get_service() -> RotationService:
    """Settings from the environment (a bad combination fails with the rule named), then the service, once per container."""
    global _service
    if _service is None:
        refuse_endpoint_overrides(os.environ, local=is_local(CODE_DIR))  # a fake keyring must never be published
        _service = build_rotation_service(
            Settings.from_env(os.environ), logger=logger, on_revocation_repair=_on_revocation_repair, on_foreign_key=_on_foreign_key,
            region=_own_region(),
        )
    return _service


def _get_promotion() -> Promotion:
    """The promote operation of this region, over this region's rotation service (built once per container)."""
    global _promotion
    if _promotion is None:
        service = _get_service()
        _promotion = build_promotion(service.settings, _own_region(), service, logger=logger)
    return _promotion


def _handover(admission: Admission, command: RotateCommand) -> dict[str, Any]:
    """promote or step-down: audited with the old and new primary, the generation and what promote learnt (``known``);
    a refused check is an answer. ``check`` runs promote's checks only and answers what it would do."""
    assert command.region is not None
    known: dict[str, Any] = {}
    try:
        if command.operation == "promote":
            promotion = _get_promotion()
            try:
                done = promotion.promote(command.region, check=command.check)
            finally:
                known = dict(promotion.known)
            old, new, generation = done.old_primary, None if done.checked else done.region, done.generation
            answer: dict[str, Any] = {**done.summary, "operation": "promote", "region": done.region, "old_primary": done.old_primary,
                                      "old_primary_state": done.old_primary_state, "already_primary": done.already_primary,
                                      "generation": done.generation, "replica_generation": done.replica_generation,
                                      "origin_generation": done.origin_generation, "publish_error": done.publish_error}
            if done.checked:
                answer.update(check=True, would=_would(done.already_primary, done.old_primary_state))
            else:
                answer.update(stopped_replication=list(done.stopped_replication), next_step=_next_step(done.region))
        else:
            stepped = _get_service().step_down(command.region)
            old, new, generation = stepped.region, stepped.new_primary, stepped.generation
            answer = {"operation": "step-down", "old_primary": stepped.region, "new_primary": stepped.new_primary,
                      "generation": stepped.generation, "already": stepped.already}
    except (PromoteRefusedError, WriterSupersededError) as exc:
        return _refuse(admission._replace(asked=admission.asked._replace(known=known or None)), exc)
    except JwksRotatorError as exc:
        audit.write_operation(admission.outcome("failed", exc, known=known or None))
        logger.error("operation failed", extra={"operation": command.operation, "error": exc.code, "reason": exc.message})
        add_failure_metrics(metrics, exc)
        raise
    except Exception:
        audit.write_operation(admission.outcome("failed", JwksRotatorError("internal error"), known=known or None))
        raise
    audit.write_operation(admission.outcome("performed", old_primary=old, new_primary=new, generation=generation, known=known or None))
    return answer


def _would(already: bool, state: str) -> str:
    """A check's answer in words: what the promote would do next."""
    if already:
        return "nothing: this region already is the writer"
    if state == "answers":
        return "promote once the old primary has stepped down (it answers and still writes)"
    return f"promote (the old primary is {state.replace('_', ' ')})"


def _next_step(region: str) -> str:
    """What the operator does after a promote: this function does not enable its own stack's schedule."""
    return (f"the schedule of {region}'s stack stays as deployed (a secondary's is disabled): enable it, or run "
            f"jwks-rotator --region {region} rotate as needed; then update every stack with PrimaryRegion={region}, the old primary's last")


def _on_foreign_key(arn: str) -> None:
    """A KMS key carries the stack's tag but not the key policy the rotator writes: left alone, counted and alarmed."""
    logger.warning("KMS key carries this stack's tag but was not made by it; left alone", extra={"reason": "foreign key", "key": arn})
    metrics.add_metric(name="ForeignKeysLeftAlone", unit=MetricUnit.Count, value=1)


def _on_revocation_repair(reason: str) -> None:
    """The revocation mirror (SSM) was erased, filled with junk or malformed: rewritten from the record; counted and alarmed."""
    logger.warning("revocation list repaired from the stack's record", extra={"reason": reason})
    metrics.add_metric(name="RevocationListRepaired", unit=MetricUnit.Count, value=1)


def _get_gate() -> OperatorGate:
    """The operator gate, built the first time an event carries a proof (a bad setting answers invalid_configuration)."""
    global _gate
    if _gate is None:
        _gate = build_operator_gate(Settings.from_env(os.environ), os.environ, local=is_local(CODE_DIR))
    return _gate


def _accepted_signers(context: Any) -> frozenset[str]:
    """This function's name, ARN and qualified ARN: what a proof's X-Jwks-Rotator-Signer may say."""
    version = str(getattr(context, "function_version", "") or "")
    audit.function_version = version
    return accepted_signer_names(
        str(getattr(context, "function_name", "") or ""), str(getattr(context, "invoked_function_arn", "") or ""), version
    )


def _refuse(admission: Admission, error: JwksRotatorError) -> dict[str, Any]:
    """Answer a refusal: audited and counted, not alarmed as a failed rotation."""
    record = admission.outcome("refused", error)
    audit.write_operation(record)
    logger.warning("operation refused", extra={"operation": record.operation, "error": error.code, "reason": record.reason})
    metrics.add_metric(name=f"OperationRefusals_{error.code}", unit=MetricUnit.Count, value=1)
    if isinstance(error, (InvalidEventError, UnknownKeyError)):
        metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
    return error.to_dict()


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Check the caller and the event, run the operation, report what changed. Failed runs raise so alarms and the DLQ see them."""
    admission = admit(event, _get_gate, _accepted_signers(context))
    if admission.error is not None:
        return _refuse(admission, admission.error)
    command = admission.command
    assert command is not None  # admitted
    if command.region is not None:
        return _handover(admission, command)
    try:
        service = _get_service()
        report = run_command(service, command, coalesce_ticks=admission.identity is None)
    except (UnknownKeyError, NotPrimaryRegionError) as exc:  # the caller's mistake or the wrong region: no alarm
        return _refuse(admission, exc)
    except JwksRotatorError as exc:
        audit.write_operation(admission.outcome("failed", exc))
        logger.error("rotation step failed", extra={"operation": command.operation, "error": exc.code, "reason": exc.message})
        add_failure_metrics(metrics, exc)
        raise
    except Exception:
        audit.write_operation(admission.outcome("failed", JwksRotatorError("internal error")))
        raise
    audit.write_operation(admission.outcome("performed"))
    if report.not_primary:  # nothing was written: no keyring figures to report
        return report_summary(command, report)
    metrics.add_metric(name="Rotations", unit=MetricUnit.Count, value=report.activations)
    metrics.add_metric(name="Publications", unit=MetricUnit.Count, value=len(report.publications))
    add_keyring_metrics(metrics, report.keyring, service.settings, utc_now())
    add_replication_metrics(metrics, report.replication_lag, service.settings)
    add_origin_metrics(metrics, report.origins_ahead)
    return report_summary(command, report)
