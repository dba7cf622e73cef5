"""The rotate function's metrics: the active key's age is never negative; overdue follows the settings and recorded bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jwks_rotator.adapters.sdk.observability import make_metrics
from jwks_rotator.adapters.sdk.rotation_metrics import (
    OVERDUE_GRACE_TICKS,
    active_key_overdue,
    add_failure_metrics,
    add_keyring_metrics,
    add_replication_metrics,
    replacement_due,
)
from jwks_rotator.core.errors import ClockSkewError, KeyringBehindPublicationError, StoreError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.settings import Settings

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SETTINGS = Settings(algorithm="ES256")  # 7d period, 2d lead, 15m schedule
GRACE = SETTINGS.schedule * OVERDUE_GRACE_TICKS


class RecordingMetrics:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add_metric(self, *, name: str, unit: Any, value: float) -> None:
        self.values[name] = self.values.get(name, 0) + value


def active(at: datetime = T0) -> KeyRecord:
    return generate_key("ES256", at - timedelta(days=3)).with_changes(
        state=KeyState.ACTIVE, published_at=at - timedelta(days=2), activated_at=at
    )


def pending(published: datetime | None, *, ready_at: datetime | None = None, waived: bool = False) -> KeyRecord:
    return generate_key("ES256", T0).with_changes(state=KeyState.PENDING, published_at=published, ready_at=ready_at, lead_waived=waived)


def test_nothing_is_overdue_until_the_period_and_the_grace_have_passed() -> None:
    keyring = Keyring((active(), pending(T0 + timedelta(hours=1))))
    due = T0 + SETTINGS.rotation_period
    assert replacement_due(keyring, SETTINGS) == due
    assert active_key_overdue(keyring, SETTINGS, due + GRACE) == timedelta(0)
    assert active_key_overdue(keyring, SETTINGS, due + GRACE + timedelta(seconds=90)) == timedelta(seconds=90)


def test_a_successor_with_a_later_recorded_ready_time_postpones_the_hand_over() -> None:
    published = T0 + timedelta(days=6)  # published late: its lead (recorded at publication) ends after the period
    ready = published + timedelta(days=2)
    keyring = Keyring((active(), pending(published, ready_at=ready)))
    assert replacement_due(keyring, SETTINGS) == ready
    assert active_key_overdue(keyring, SETTINGS, T0 + SETTINGS.rotation_period + GRACE + timedelta(hours=1)) == timedelta(0)


def test_a_raised_publish_lead_moves_the_alarm_with_it_and_a_lowered_one_does_not_shorten_a_recorded_bound() -> None:
    published = T0 + timedelta(days=5, hours=12)
    keyring = Keyring((active(), pending(published, ready_at=published + timedelta(days=2))))
    raised = SETTINGS.replace(publish_lead="3d")
    assert replacement_due(keyring, raised) == published + timedelta(days=3)
    lowered = SETTINGS.replace(publish_lead="1h", schedule="15m", jwks_max_age="30m")
    assert replacement_due(keyring, lowered) == published + timedelta(days=2)


def test_an_unpublished_successor_does_not_postpone_anything() -> None:
    keyring = Keyring((active(), pending(None)))
    assert replacement_due(keyring, SETTINGS) == T0 + SETTINGS.rotation_period


def test_a_waived_successor_is_ready_once_published() -> None:
    keyring = Keyring((active(), pending(T0 + timedelta(days=8), waived=True)))
    assert replacement_due(keyring, SETTINGS) == T0 + timedelta(days=8)


def test_age_and_overdue_are_never_negative_and_absent_without_an_active_key() -> None:
    keyring = Keyring((active(), pending(T0)))
    metrics = RecordingMetrics()
    add_keyring_metrics(metrics, keyring, SETTINGS, T0 - timedelta(minutes=10))  # this clock reads before the activation
    assert metrics.values["ActiveKeyAgeSeconds"] == 0 and metrics.values["ActiveKeyOverdueSeconds"] == 0
    assert (metrics.values["KeysActive"], metrics.values["KeysPending"], metrics.values["KeysRetired"]) == (1, 1, 0)
    empty = RecordingMetrics()
    add_keyring_metrics(empty, Keyring((pending(None),)), SETTINGS, T0)
    assert "ActiveKeyAgeSeconds" not in empty.values and empty.values["ActiveKeyOverdueSeconds"] == 0


def test_a_stuck_rotation_reports_how_overdue_it_is() -> None:
    metrics = RecordingMetrics()
    now = T0 + SETTINGS.rotation_period + GRACE + timedelta(hours=2)
    add_keyring_metrics(metrics, Keyring((active(),)), SETTINGS, now)
    assert metrics.values["ActiveKeyOverdueSeconds"] == 7200
    assert metrics.values["ActiveKeyAgeSeconds"] == (now - T0).total_seconds()


@pytest.mark.parametrize(
    ("error", "own"),
    [(KeyringBehindPublicationError("behind"), "KeyringBehindPublication"), (ClockSkewError("skew"), "ClockSkewDetected"),
     (StoreError("down", reason="ThrottlingException"), None)],
)
def test_failures_an_operator_must_act_on_have_their_own_metric(error: Any, own: str | None) -> None:
    metrics = RecordingMetrics()
    add_failure_metrics(metrics, error)
    assert metrics.values == ({"RotationFailures": 1, own: 1} if own else {"RotationFailures": 1})


def test_replication_lag_and_revocation_reach_are_emitted_per_region(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(algorithm="ES256", signer_cache_ttl=timedelta(seconds=60))
    add_replication_metrics(make_metrics(), {"eu-west-1": 2.5, "ap-south-1": 900.0}, settings)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    figures = {(d["Region"], name): d[name] for d in lines for name in ("ReplicationLag", "RevocationReach") if name in d}
    assert figures == {
        ("ap-south-1", "ReplicationLag"): [900.0], ("ap-south-1", "RevocationReach"): [960.0],
        ("eu-west-1", "ReplicationLag"): [2.5], ("eu-west-1", "RevocationReach"): [62.5],
    }
    for document in lines:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "JwksRotator" and directive["Dimensions"] == [["service", "Region"]]
        assert document["service"] == "jwks-rotator" and directive["Metrics"][0]["Unit"] == "Seconds"


def test_no_figures_no_replication_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    add_replication_metrics(make_metrics(), {}, SETTINGS)
    assert capsys.readouterr().out == ""
