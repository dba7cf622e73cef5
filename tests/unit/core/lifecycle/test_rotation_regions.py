"""The rotation service across regions: one writer fenced by its region, and each replica's lag measured by the writer."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import timedelta

import pytest

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.core.errors import ConfigurationError, NotPrimaryRegionError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.operations import RotateCommand, report_summary
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.ports import ReplicaReading, ReplicationRecord, VersionedKeyring
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from tests.simulation import START, FakeS3, Faults, InMemoryKeyringStore

PRIMARY, EU, AP = "us-east-1", "eu-west-1", "ap-south-1"
SETTINGS = Settings.from_mapping({
    "issuer": "https://issuer.example.com", "algorithm": "ES256", "rotation_period": "10m", "publish_lead": "4m",
    "jwks_max_age": "1m", "schedule": "1m", "max_token_ttl": "2m", "default_token_ttl": "1m", "signer_cache_ttl": "10s",
    "clock_skew_leeway": "5s", "keyring_secret_id": "keyring", "primary_region": PRIMARY, "regions": f"{PRIMARY},{EU},{AP}",
})


def new_key(alg: str, now: object) -> KeyRecord:
    return generate_key(alg, now)  # type: ignore[arg-type]


class CountingStore(InMemoryKeyringStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.saves = 0

    def load(self) -> VersionedKeyring:
        self.loads += 1
        return super().load()

    def save(self, keyring: object, expected_version_id: str) -> str:
        self.saves += 1
        return super().save(keyring, expected_version_id)  # type: ignore[arg-type]


class Replicas:
    """Each region's replica holds what the store held when it last caught up; None while unreadable."""

    def __init__(self, store: InMemoryKeyringStore, *regions: str) -> None:
        self.store = store
        self.held: dict[str, ReplicaReading | None] = dict.fromkeys(regions, ReplicaReading(0, frozenset()))
        self.follow: set[str] = set(regions)  # regions that catch up at once on every read
        self.reads = 0

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.held)

    def read_back(self) -> Mapping[str, ReplicaReading | None]:
        self.reads += 1
        keyring = self.store.load().keyring
        for region in self.follow:
            self.held[region] = ReplicaReading(keyring.generation, frozenset(k.kid for k in keyring.keys))
        return dict(self.held)


class Ledger:
    def __init__(self) -> None:
        self.record: ReplicationRecord | None = None

    def load(self) -> ReplicationRecord | None:
        return self.record

    def save(self, record: ReplicationRecord) -> None:
        self.record = record


def service(region: str, store: InMemoryKeyringStore | None = None, **parts: object) -> RotationService:
    clock = parts.pop("clock", None) or FakeClock(START)
    publisher = S3Publisher(FakeS3(Faults(random.Random(0), {})), "bucket", SETTINGS)
    return RotationService(store or CountingStore(), publisher, SETTINGS, clock=clock.now, key_factory=new_key,  # type: ignore[attr-defined]
                           region=region, monotonic=clock.monotonic, **parts)  # type: ignore[attr-defined, arg-type]


def test_outside_the_primary_region_an_unproven_tick_reads_its_keyring_once_writes_nothing_and_every_operation_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="jwks_rotator")
    store = CountingStore()
    secondary = service(EU, store)
    quiet = secondary.tick(coalesce=True)
    # One read: its keyring (the replica) may name it the writer (promote); it does not.
    assert quiet.skipped and quiet.not_primary and quiet.converged and store.loads == 1 and store.saves == 0
    assert [r.reason for r in caplog.records if hasattr(r, "reason")] == ["not_primary_region"]  # type: ignore[attr-defined]
    assert report_summary(RotateCommand("tick"), quiet)["reason"] == "not_primary_region"
    for operation in (secondary.tick, secondary.rotate_now, lambda: secondary.revoke("kid"), secondary.publish):
        with pytest.raises(NotPrimaryRegionError) as refused:
            operation()
        assert refused.value.code == "not_primary_region" and isinstance(refused.value, ConfigurationError)
    assert store.loads == 5 and store.saves == 0 and not secondary.writes_here


def test_a_region_the_keyring_names_writes_although_its_setting_names_another() -> None:
    store = CountingStore()
    store.save(Keyring().with_primary(EU, generation=7), store.load().version_id)
    old_primary = Replicas(store, PRIMARY)
    old_primary.follow, old_primary.held[PRIMARY] = set(), None  # the old primary's keyring: down, and no replica of this one
    promoted = service(EU, store, replicas=old_primary)
    report = promoted.rotate_now()
    assert not promoted.writes_here and report.keyring.active is not None and report.keyring.primary_region == EU
    # A promoted keyring is standalone: no region holds a replica of it to wait for, so the new key activates.
    assert report.lagging_replicas == () and old_primary.reads == 0


def test_a_stepped_down_primary_writes_nothing_and_its_unproven_tick_is_a_no_op(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jwks_rotator")
    store = CountingStore()
    store.save(Keyring().with_primary(EU, generation=3), store.load().version_id)
    saves = store.saves
    stepped = service(PRIMARY, store)
    quiet = stepped.tick(coalesce=True)
    assert quiet.skipped and quiet.not_primary and stepped.writes_here
    for operation in (stepped.tick, stepped.rotate_now, stepped.publish):
        with pytest.raises(NotPrimaryRegionError, match=f"names {EU} as the writer"):
            operation()
    assert store.saves == saves and store.load().keyring.keys == ()


@pytest.mark.parametrize("region", [PRIMARY, ""])
def test_the_primary_and_a_service_given_no_region_write(region: str) -> None:
    primary = service(region)
    assert primary.writes_here and primary.tick().keyring.keys


def test_one_region_settings_never_fence() -> None:
    one = Settings.from_mapping({"issuer": "https://issuer.example.com", "algorithm": "ES256"})
    publisher = S3Publisher(FakeS3(Faults(random.Random(0), {})), "bucket", one)
    rotator = RotationService(InMemoryKeyringStore(), publisher, one, key_factory=new_key, region="ap-south-1")
    assert rotator.writes_here and rotator.tick().keyring.active is not None


def test_the_writer_measures_each_regions_lag_and_names_a_region_behind_or_unreadable() -> None:
    clock, store, ledger = FakeClock(START), CountingStore(), Ledger()
    replicas = Replicas(store, EU, AP)
    replicas.follow = {EU}  # ap-south-1 stays at the empty keyring
    rotator = service(PRIMARY, store, clock=clock, replicas=replicas, replication_ledger=ledger)
    first = rotator.tick()
    assert first.lagging_replicas == (AP,) and first.replication_lag == {EU: 0.0, AP: 0.0}  # ap-south-1: 0 s so far
    assert ledger.record is not None and set(ledger.record.caught_up) == {EU}

    clock.advance(timedelta(seconds=90))
    replicas.held[AP] = None  # now unreadable: the time since the write it was not seen to hold, a lower bound
    second = rotator.tick()
    assert second.lagging_replicas == (AP,) and second.replication_lag[AP] == 90.0 and second.unreadable_replicas == (AP,)

    clock.advance(timedelta(seconds=30))
    replicas.follow = {EU, AP}
    third = rotator.tick()
    assert third.lagging_replicas == () and third.replication_lag[AP] == 120.0  # from the write a run ago, on the wall clock
    reads = replicas.reads
    clock.advance(timedelta(seconds=30))
    fourth = rotator.tick()
    assert fourth.replication_lag == {} and replicas.reads == reads  # every region holds the last write: nothing read back


def test_a_replica_behind_the_runs_write_is_read_again_within_the_run_and_measured_to_the_second() -> None:
    clock, store = FakeClock(START), CountingStore()
    replicas = Replicas(store, EU, AP)
    replicas.follow = {AP}
    reads_until_caught_up = [2]

    def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))
        reads_until_caught_up[0] -= 1
        if reads_until_caught_up[0] == 0:
            replicas.follow.add(EU)  # eu-west-1 catches up during the second pause

    rotator = service(PRIMARY, store, clock=clock, replicas=replicas, sleep=sleep, replica_patience=(1.0, 2.0, 4.0))
    report = rotator.tick()
    assert report.replication_lag == {EU: 3.0, AP: 0.0}
    assert report.lagging_replicas == (EU,) and report.keyring.active is None  # it held this run's activation back
    clock.advance(timedelta(seconds=30))
    assert rotator.tick().keyring.active is not None


def test_no_patience_for_an_unreadable_replica() -> None:
    clock, store = FakeClock(START), CountingStore()
    replicas = Replicas(store, EU)
    replicas.follow = set()
    replicas.held[EU] = None
    pauses: list[float] = []
    rotator = service(PRIMARY, store, clock=clock, replicas=replicas, sleep=pauses.append, replica_patience=(1.0, 2.0))
    report = rotator.tick()
    assert pauses == [] and report.lagging_replicas == (EU,) and report.replication_lag == {EU: 0.0}  # so far, in this run
    assert report.unreadable_replicas == (EU,)


def test_a_key_published_before_regions_were_added_is_asked_again_and_waits_a_full_lead_from_when_every_region_holds_it() -> None:
    clock, store = FakeClock(START), CountingStore()
    first = service(PRIMARY, store, clock=clock).tick()  # one region: recorded as published at once
    (pending,) = first.keyring.in_state(KeyState.PENDING)
    active = first.keyring.active
    assert active is not None and pending.published_at == START and pending.published_in is None
    clock.advance(timedelta(minutes=5))  # past the lead: in one region it would activate at the rotation period
    replicas = Replicas(store, EU)
    replicas.follow = set()  # eu-west-1, added now, lags: its replica holds nothing yet
    regional = service(PRIMARY, store, clock=clock, replicas=replicas)
    for _ in range(8):  # past the rotation period
        report = regional.tick()
        (held,) = [k for k in report.keyring.keys if k.kid == pending.kid]
        assert held.published_at is None and report.keyring.active is not None and report.keyring.active.kid == active.kid
        clock.advance(timedelta(minutes=1))
    replicas.follow = {EU}
    caught = regional.tick()
    (recorded,) = [k for k in caught.keyring.keys if k.kid == pending.kid]
    assert recorded.published_at == clock.now() and recorded.published_in == (EU, PRIMARY)  # the lead counts from now
    assert caught.keyring.active is not None and caught.keyring.active.kid == active.kid
    clock.advance(timedelta(minutes=4))
    handed_over = regional.tick()
    assert handed_over.keyring.active is not None and handed_over.keyring.active.kid == pending.kid


def test_a_key_recorded_in_every_region_stays_recorded_when_the_set_shrinks_or_stays() -> None:
    clock, store = FakeClock(START), CountingStore()
    replicas = Replicas(store, EU, AP)
    first = service(PRIMARY, store, clock=clock, replicas=replicas).tick()
    published = {k.kid: k.published_at for k in first.keyring.keys}
    clock.advance(timedelta(minutes=1))
    again = service(PRIMARY, store, clock=clock, replicas=Replicas(store, EU)).tick()  # ap-south-1 removed
    assert {k.kid: k.published_at for k in again.keyring.keys if k.kid in published} == published
