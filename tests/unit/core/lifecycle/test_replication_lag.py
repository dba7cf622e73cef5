"""Replication lag from the writer's write of generation N to the first read-back of >= N, per region."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.lifecycle.replication_lag import LagMeter
from jwks_rotator.core.ports import ReplicaReading, ReplicationRecord
from jwks_rotator_testkit.clock import FakeClock

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
EU, AP = "eu-west-1", "ap-south-1"


class Ledger:
    def __init__(self, record: ReplicationRecord | None = None) -> None:
        self.record = record
        self.saves = 0
        self.fail = False

    def load(self) -> ReplicationRecord | None:
        return self.record

    def save(self, record: ReplicationRecord) -> None:
        if self.fail:
            raise StoreError("cannot keep it", reason="AccessDenied")
        self.record = record
        self.saves += 1


def at(generation: int) -> ReplicaReading:
    return ReplicaReading(generation, frozenset())


def test_within_the_run_that_wrote_the_lag_is_on_the_monotonic_clock() -> None:
    clock, ledger = FakeClock(T0), Ledger()
    meter = LagMeter(ledger, clock.now, clock.monotonic)
    meter.written(7)
    clock.advance(timedelta(seconds=2.5))
    meter.observe({EU: at(7), AP: at(6)})
    figures = meter.figures({EU: at(7), AP: at(6)})
    assert figures.caught_up == {EU: 2.5} and figures.behind == {AP: 2.5}
    meter.finish()
    assert ledger.record == ReplicationRecord(7, T0, {EU: 7}) and ledger.saves == 1


def test_a_replica_behind_is_measured_on_a_later_run_from_the_ledgers_write_time_and_only_once() -> None:
    clock, ledger = FakeClock(T0 + timedelta(minutes=15)), Ledger(ReplicationRecord(7, T0, {EU: 7}))
    meter = LagMeter(ledger, clock.now, clock.monotonic)
    meter.begin()
    assert meter.pending((EU, AP))
    meter.observe({EU: at(9), AP: at(8)})  # ahead of 7 counts as holding it
    assert meter.figures({}).caught_up == {AP: 15 * 60.0}
    meter.finish()
    meter.begin()
    assert not meter.pending((EU, AP))  # every region caught up: the next run reads nothing back
    meter.observe({EU: at(9), AP: at(9)})
    assert meter.figures({EU: at(9), AP: at(9)}).merged() == {}


def test_an_unreadable_replica_gets_no_figure_and_a_wall_clock_behind_the_write_gives_zero_not_a_negative_lag() -> None:
    clock, ledger = FakeClock(T0 - timedelta(minutes=5)), Ledger(ReplicationRecord(3, T0, {}))
    meter = LagMeter(ledger, clock.now, clock.monotonic)
    meter.observe({EU: None, AP: at(3)})
    assert meter.figures({EU: None, AP: at(3)}).merged() == {AP: 0.0}


def test_several_writes_in_one_run_keep_each_regions_worst_figure() -> None:
    clock = FakeClock(T0)
    meter = LagMeter(None, clock.now, clock.monotonic)
    meter.written(1)
    clock.advance(timedelta(seconds=4))
    meter.observe({EU: at(1)})
    meter.written(2)
    clock.advance(timedelta(seconds=1))
    meter.observe({EU: at(2)})
    assert meter.figures({}).caught_up == {EU: 4.0}


def test_a_ledger_that_cannot_be_written_costs_the_figure_only(caplog: pytest.LogCaptureFixture) -> None:
    clock, ledger = FakeClock(T0), Ledger()
    ledger.fail = True
    meter = LagMeter(ledger, clock.now, clock.monotonic)
    meter.written(1)
    meter.finish()
    assert ledger.record is None and "replication record not kept" in caplog.text


def test_nothing_written_and_nothing_kept_means_nothing_pending() -> None:
    clock = FakeClock(T0)
    meter = LagMeter(Ledger(), clock.now, clock.monotonic)
    assert not meter.pending((EU,)) and meter.figures({EU: at(4)}).merged() == {}
