"""Rotate function: scheduled tick, rotate-now, revoke and publish (see events/).

Metrics (EMF): ``Rotations``, ``Publications``, keys per state, ``ActiveKeyAgeSeconds`` and
``ActiveKeyOverdueSeconds`` (what the stale-key alarm watches), ``InvalidEvents``, ``RotationFailures``
and, for the failures an operator must act on, ``KeyringBehindPublication`` and ``ClockSkewDetected``
(see jwks_rotator.adapters.rotation_metrics). A failed run raises, so the error alarm and the
dead-letter queue see it.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from jwks_rotator.adapters.observability import make_logger, make_metrics
from jwks_rotator.adapters.rotation_metrics import add_failure_metrics, add_keyring_metrics
from jwks_rotator.core.errors import InvalidEventError, JwksRotatorError, UnknownKeyError
from jwks_rotator.core.operations import parse_rotate_event, report_summary, run_command
from jwks_rotator.core.rotation import RotationService, utc_now
from jwks_rotator.core.settings import Settings
from jwks_rotator.wiring import build_rotation_service

logger = make_logger("rotate")
metrics = make_metrics()
_service: RotationService | None = None


def _get_service() -> RotationService:
    """Settings from the environment (a bad combination fails with the rule named), then the service, once per container."""
    global _service
    if _service is None:
        _service = build_rotation_service(Settings.from_env(os.environ), logger=logger)
    return _service


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Parse the event, run the operation, report what changed. Failures raise so alarms and the DLQ see them."""
    try:
        command = parse_rotate_event(event)
    except InvalidEventError as exc:
        logger.error("rejected event", extra={"reason": exc.message})
        metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        return exc.to_dict()
    try:
        service = _get_service()
        report = run_command(service, command)
    except UnknownKeyError as exc:  # the caller's mistake, not a failed rotation: no alarm
        logger.warning("revoke refused", extra={"kid": command.kid, "error": exc.code})
        metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        return exc.to_dict()
    except JwksRotatorError as exc:
        logger.error("rotation step failed", extra={"operation": command.operation, "error": exc.code, "reason": exc.message})
        add_failure_metrics(metrics, exc)
        raise
    metrics.add_metric(name="Rotations", unit=MetricUnit.Count, value=report.activations)
    metrics.add_metric(name="Publications", unit=MetricUnit.Count, value=len(report.publications))
    add_keyring_metrics(metrics, report.keyring, service.settings, utc_now())
    return report_summary(command, report)
