"""A key counts as published only once every region's keyring replica holds it: activation waits for the last region."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import timedelta

import pytest

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.keys.revocation import MemoryRevocationList
from jwks_rotator.core.lifecycle.bounds import deletion_time, retirement_bound
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.replicas import EveryRegionRevocations, ReplicaCheck, record_views_left, replicated_everywhere
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.ports import ReplicaReading
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from tests.simulation import START, FakeS3, Faults, InMemoryKeyringStore

SETTINGS = Settings.from_mapping({
    "issuer": "https://issuer.example.com", "algorithm": "ES256", "rotation_period": "10m", "publish_lead": "4m",
    "jwks_max_age": "1m", "schedule": "1m", "max_token_ttl": "2m", "default_token_ttl": "1m", "signer_cache_ttl": "10s",
    "clock_skew_leeway": "5s", "keyring_secret_id": "keyring", "signing_secret_id": "signing",
})


def test_only_kids_every_readable_replica_holds_count() -> None:
    held = {"eu-west-1": frozenset({"a", "b"}), "ap-south-1": frozenset({"a"}), "us-west-2": None}
    assert replicated_everywhere(["a", "b"], held) == ReplicaCheck((), {"ap-south-1": ("b",), "us-west-2": None})
    assert replicated_everywhere(["a", "b"], {"eu-west-1": frozenset({"a", "b"})}) == ReplicaCheck(("a", "b"), {})
    assert replicated_everywhere(["b", "a"], {"eu-west-1": frozenset({"a"})}) == ReplicaCheck(("a",), {"eu-west-1": ("b",)})
    assert replicated_everywhere(["a"], {}) == ReplicaCheck(("a",), {})


class Replicas:
    """Each region's replica follows the store when it is told to catch up; ``None`` while it cannot be read."""

    def __init__(self, store: InMemoryKeyringStore, *regions: str) -> None:
        self.store = store
        self.held: dict[str, ReplicaReading | None] = dict.fromkeys(regions, ReplicaReading(0, frozenset()))

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.held)

    def catch_up(self, region: str) -> None:
        keyring = self.store.load().keyring
        self.held[region] = ReplicaReading(keyring.generation, frozenset(k.kid for k in keyring.keys))

    def read_back(self) -> Mapping[str, ReplicaReading | None]:
        return dict(self.held)


def new_key(alg: str, now: object) -> KeyRecord:
    return generate_key(alg, now)  # type: ignore[arg-type]


class World:
    def __init__(self, *regions: str) -> None:
        self.clock = FakeClock(START)
        self.store = InMemoryKeyringStore()
        self.replicas = Replicas(self.store, *regions)
        publisher = S3Publisher(FakeS3(Faults(random.Random(0), {})), "bucket", SETTINGS)
        self.rotator = RotationService(self.store, publisher, SETTINGS, clock=self.clock.now, key_factory=new_key, replicas=self.replicas)

    def keys(self) -> dict[str, KeyRecord]:
        return {k.kid: k for k in self.store.load().keyring.keys}

    def active(self) -> str | None:
        return next((kid for kid, k in self.keys().items() if k.state is KeyState.ACTIVE), None)


def test_bootstrap_waits_until_every_replica_holds_the_first_key() -> None:
    world = World("eu-west-1", "ap-south-1")
    report = world.rotator.tick()
    assert report.lagging_replicas == ("ap-south-1", "eu-west-1") and world.active() is None
    (first,) = world.keys()
    world.replicas.catch_up("eu-west-1")
    assert world.rotator.tick().lagging_replicas == ("ap-south-1",) and world.active() is None
    world.replicas.catch_up("ap-south-1")
    report = world.rotator.tick()
    assert world.active() == first  # the run goes on: its successor is made, and waits for the replicas in turn
    assert report.lagging_replicas == ("ap-south-1", "eu-west-1")
    assert [k.published_at is None for kid, k in world.keys().items() if kid != first] == [True]


def test_a_lagging_region_holds_the_next_key_back_and_its_lead_counts_from_the_catch_up() -> None:
    world = World("eu-west-1")
    world.rotator.tick()
    world.replicas.catch_up("eu-west-1")
    world.rotator.tick()
    first = world.active()
    assert first is not None
    world.replicas.catch_up("eu-west-1")  # the pending key made with the activation
    world.rotator.tick()
    pending = [kid for kid, k in world.keys().items() if k.state is KeyState.PENDING]
    assert len(pending) == 1 and world.keys()[pending[0]].published_at is not None
    for _ in range(11):  # the first key is due after 10 minutes; the pending one activates, and its successor is made
        world.clock.advance(timedelta(minutes=1))
        world.rotator.tick()
    second = world.active()
    assert second == pending[0]
    successor = next(kid for kid, k in world.keys().items() if k.state is KeyState.PENDING)
    for _ in range(30):  # the region never gets the successor: it never counts as published, never activates
        world.clock.advance(timedelta(minutes=1))
        report = world.rotator.tick()
        assert report.lagging_replicas == ("eu-west-1",)
        assert world.active() == second and world.keys()[successor].published_at is None
    caught_up_at = world.clock.now()
    world.replicas.catch_up("eu-west-1")
    world.rotator.tick()
    assert world.keys()[successor].published_at == caught_up_at and world.active() == second
    world.clock.advance(SETTINGS.publish_lead)
    world.rotator.tick()
    assert world.active() == successor


def test_an_unreadable_replica_holds_activation_back_like_a_lagging_one() -> None:
    world = World("eu-west-1")
    world.replicas.held["eu-west-1"] = None
    for _ in range(3):
        assert world.rotator.tick().lagging_replicas == ("eu-west-1",)
        world.clock.advance(timedelta(minutes=1))
    assert world.active() is None and all(k.published_at is None for k in world.keys().values())


def test_a_retired_key_is_noted_left_only_once_every_readable_view_signs_with_another() -> None:
    now = START + timedelta(hours=1)
    active, retired = generate_key("ES256", START), generate_key("ES256", START)
    keyring = Keyring(keys=(
        active.with_changes(state=KeyState.ACTIVE, published_at=START, activated_at=START),
        retired.with_changes(state=KeyState.RETIRED, published_at=START, activated_at=START, retired_at=START),
    ))
    assert not record_views_left(keyring, {"eu-west-1": frozenset({retired.kid})}, now).changed
    assert not record_views_left(keyring, {"eu-west-1": frozenset({active.kid}), "ap-south-1": None}, now).changed
    left = record_views_left(keyring, {"eu-west-1": frozenset({active.kid}), "ap-south-1": frozenset()}, now)
    assert {k.kid: k.views_left_at for k in left.keyring.keys} == {active.kid: None, retired.kid: now}
    assert Keyring.from_json(left.keyring.to_json()).keys[1].views_left_at == now  # stored with the key
    assert not record_views_left(left.keyring, {"eu-west-1": frozenset({active.kid})}, now + timedelta(hours=1)).changed


class Views:
    """Each region's signing view: the kids its signer may sign with, or None while it cannot be read."""

    def __init__(self, *regions: str) -> None:
        self.signing: dict[str, frozenset[str] | None] = dict.fromkeys(regions, frozenset())

    def signing_kids_by_region(self) -> Mapping[str, frozenset[str] | None]:
        return dict(self.signing)


def test_a_region_whose_view_lags_keeps_the_previous_key_published_until_its_tokens_expire_after_the_catch_up() -> None:
    clock = FakeClock(START)
    store = InMemoryKeyringStore()
    s3 = FakeS3(Faults(random.Random(0), {}))
    views = Views("eu-west-1")
    rotator = RotationService(store, S3Publisher(s3, "bucket", SETTINGS), SETTINGS, clock=clock.now, key_factory=new_key,
                              signing_views=views)

    def keys() -> dict[str, KeyRecord]:
        return {k.kid: k for k in store.load().keyring.keys}

    rotator.tick()
    first = next(kid for kid, k in keys().items() if k.state is KeyState.ACTIVE)
    views.signing["eu-west-1"] = frozenset({first})  # the region signs with the first key, and its view stops there
    while keys()[first].state is not KeyState.RETIRED:
        clock.advance(timedelta(minutes=1))
        rotator.tick()
    usual = deletion_time(keys()[first], SETTINGS)
    assert usual is not None
    clock.advance(usual - clock.now() + timedelta(minutes=30))  # long past the single-region deletion time
    rotator.tick()
    assert first in keys() and keys()[first].views_left_at is None
    assert first.encode() in s3.objects[JWKS_PATH]["Body"]  # still published: the lagging region's tokens verify
    views.signing["eu-west-1"] = None  # unreadable: nothing is noted
    rotator.tick()
    assert keys()[first].views_left_at is None
    caught_up = clock.advance(timedelta(minutes=1))
    views.signing["eu-west-1"] = frozenset(kid for kid, k in keys().items() if k.state is KeyState.ACTIVE)
    rotator.tick()
    assert keys()[first].views_left_at == caught_up
    bound = retirement_bound(keys()[first], SETTINGS, caught_up)
    clock.advance(bound - clock.now() - timedelta(seconds=1))
    rotator.tick()
    assert first in keys() and first.encode() in s3.objects[JWKS_PATH]["Body"]
    clock.advance(timedelta(seconds=1))
    rotator.tick()
    assert first not in keys() and first.encode() not in s3.objects[JWKS_PATH]["Body"]


class RegionList(MemoryRevocationList):
    """One region's revocation list; its store fails while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def load(self) -> frozenset[str]:
        if self.down:
            raise StoreError("injected: SSM unavailable", reason="InternalServerError")
        return super().load()

    def add(self, kid: str) -> None:
        if self.down:
            raise StoreError("injected: SSM unavailable", reason="InternalServerError")
        super().add(kid)


def test_a_revocation_reaches_every_region_it_can_and_a_region_that_was_down_is_repaired() -> None:
    eu, us = RegionList(), RegionList()
    every = EveryRegionRevocations({"eu-west-1": eu, "us-east-1": us})
    eu.down = True
    every.add("k1")
    assert us.load() == {"k1"} and every.load() == {"k1"}
    eu.down = False
    assert every.load() == {"k1"} and eu.load() == {"k1"}  # the read repaired the region that missed it
    eu.down = us.down = True
    with pytest.raises(StoreError) as unwritten:
        every.add("k2")
    assert unwritten.value.reason == "every_region_unwritable"
    with pytest.raises(StoreError) as unread:
        every.load()
    assert unread.value.reason == "every_region_unreadable"


def test_a_revocation_lands_while_a_regions_list_is_down_and_reaches_it_when_it_returns() -> None:
    clock = FakeClock(START)
    store = InMemoryKeyringStore()
    eu, us = RegionList(), RegionList()
    publisher = S3Publisher(FakeS3(Faults(random.Random(0), {})), "bucket", SETTINGS)
    rotator = RotationService(store, publisher, SETTINGS, clock=clock.now, key_factory=new_key,
                              revocations=EveryRegionRevocations({"eu-west-1": eu, "us-east-1": us}))
    rotator.tick()
    active = next(k.kid for k in store.load().keyring.keys if k.state is KeyState.ACTIVE)
    eu.down = True
    rotator.revoke(active)
    assert active not in {k.kid for k in store.load().keyring.keys} and us.load() == {active}
    eu.down = False
    rotator.tick()
    assert eu.load() == {active}
