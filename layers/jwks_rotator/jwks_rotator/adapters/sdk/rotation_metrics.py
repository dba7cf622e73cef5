"""The rotate function's metrics (EMF): keys per state, the active key's age and how overdue its replacement is.

``ActiveKeyOverdueSeconds`` is what the stale-key alarm watches: it follows
the stack's own settings and the bounds recorded on the keys, so the alarm
needs no threshold kept by hand (alarm on ``Maximum > 0``). The active key
should be replaced at :func:`replacement_due`; the metric is how far ``now``
lies past that moment plus :data:`OVERDUE_GRACE_TICKS` schedules (ticks run
late, a publication may need a retry). Ages are never negative, even when
the clock reads before an activation.

Failures the rotator raises on purpose are also counted under their own
names (:data:`FAILURE_METRICS`), besides ``RotationFailures``.

``OriginAhead`` counts the origins left as they are because they hold documents of a newer keyring than the writer's
(``RunReport.origins_ahead``): the operator alarm watches it beside ``KeyringBehindPublication``.

With replicas in other regions, ``ReplicationLag`` and ``RevocationReach`` (``signer-cache-ttl`` + the lag), in
seconds, one of each per region with a figure (dimension ``Region``): what the reach alarm watches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from jwks_rotator.core.errors import ClockSkewError, JwksRotatorError, KeyringBehindPublicationError, WriterSupersededError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.bounds import active_key_age, ready_time
from jwks_rotator.core.settings import Settings

OVERDUE_GRACE_TICKS = 3
"""Schedules a replacement may run late before the active key counts as overdue."""

FAILURE_METRICS: dict[type[JwksRotatorError], str] = {
    KeyringBehindPublicationError: "KeyringBehindPublication",
    ClockSkewError: "ClockSkewDetected",
    WriterSupersededError: "WriterSuperseded",
}
"""Failures with a metric of their own (each is also a ``RotationFailures``)."""


def replacement_due(keyring: Keyring, settings: Settings) -> datetime | None:
    """When the active key should have handed over: after ``rotation-period``, and not before a successor is ready.

    A published pending key of the configured algorithm is ready at its
    recorded bound or today's publish lead, whichever is later (a raised lead
    postpones the hand-over on purpose); one whose lead was waived, once published. With no published successor the
    rotation period alone counts: a successor that is not even published by
    then is what the alarm is for.
    """
    active = keyring.active
    if active is None or active.activated_at is None:
        return None
    due = active.activated_at + settings.rotation_period
    ready = [
        moment
        for key in keyring.in_state(KeyState.PENDING)
        if key.alg == settings.algorithm
        and (moment := key.published_at if key.lead_waived else ready_time(key, settings)) is not None
    ]
    return max(due, min(ready)) if ready else due


def active_key_overdue(keyring: Keyring, settings: Settings, now: datetime) -> timedelta:
    """How far ``now`` lies past :func:`replacement_due` plus the grace; zero when nothing is overdue."""
    due = replacement_due(keyring, settings)
    if due is None:
        return timedelta(0)
    return max(timedelta(0), now - (due + settings.schedule * OVERDUE_GRACE_TICKS))


def add_keyring_metrics(metrics: Metrics, keyring: Keyring, settings: Settings, now: datetime) -> None:
    """Keys per state, the active key's age and how overdue its replacement is."""
    for state in KeyState:
        metrics.add_metric(name=f"Keys{state.value.capitalize()}", unit=MetricUnit.Count, value=len(keyring.in_state(state)))
    if keyring.active is not None:
        metrics.add_metric(name="ActiveKeyAgeSeconds", unit=MetricUnit.Seconds, value=active_key_age(keyring, now).total_seconds())
    overdue = active_key_overdue(keyring, settings, now).total_seconds()
    metrics.add_metric(name="ActiveKeyOverdueSeconds", unit=MetricUnit.Seconds, value=overdue)


def add_failure_metrics(metrics: Metrics, error: JwksRotatorError) -> None:
    """``RotationFailures``, plus the failure's own metric when it has one."""
    metrics.add_metric(name="RotationFailures", unit=MetricUnit.Count, value=1)
    for kind, name in FAILURE_METRICS.items():
        if isinstance(error, kind):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def add_origin_metrics(metrics: Metrics, ahead: Sequence[str]) -> None:
    """``OriginAhead``: how many origins hold documents of a newer keyring (left as they are; an operator decides)."""
    metrics.add_metric(name="OriginAhead", unit=MetricUnit.Count, value=len(ahead))


def add_replication_metrics(metrics: Metrics, lag: Mapping[str, float], settings: Settings) -> None:
    """``ReplicationLag`` and ``RevocationReach`` per region (dimension ``Region``, beside the sink's own dimensions).

    Each region's figures are a metric set of their own (EMF takes one value of a dimension per set), written at once.
    """
    ttl = settings.signer_cache_ttl.total_seconds()
    dimensions = {str(k): str(v) for k, v in metrics.default_dimensions.items()}
    if metrics.service:
        dimensions.setdefault("service", str(metrics.service))  # as the sink's own metrics carry it (the alarms name it)
    namespace = metrics.namespace
    for region, seconds in sorted(lag.items()):
        for name, value in (("ReplicationLag", seconds), ("RevocationReach", ttl + seconds)):
            with single_metric(name=name, unit=MetricUnit.Seconds, value=value, namespace=namespace,
                               default_dimensions=dimensions) as metric:
                metric.add_dimension(name="Region", value=region)
