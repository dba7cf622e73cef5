"""A simulated world for the rotation service: fake clock, faulty store, S3 and CloudFront.

The real ``RotationService`` and ``S3Publisher`` run against in-memory
stand-ins that fail on demand, so months of schedule, concurrent rotators
and half-failed writes can be replayed in seconds and the lifecycle's
invariants checked after every step.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.adapters.sdk.secrets_store import INITIAL_VERSION_ID
from jwks_rotator.core.errors import JwksRotatorError, KeyringConflictError, StoreError
from jwks_rotator.core.keys.keyring import EMPTY_KEYRING_JSON, Keyring
from jwks_rotator.core.keys.records import PRIVATE_MEMBERS, KeyRecord, KeyState
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.ports import VersionedKeyring
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock

START = datetime(2026, 1, 1, tzinfo=UTC)


class InjectedFault(Exception):
    """Marks a failure the simulation caused on purpose."""


class Faults:
    """Decides, per call site, whether to fail now; counts what it injected."""

    def __init__(self, rng: random.Random, rates: dict[str, float]) -> None:
        self.rng = rng
        self.rates = rates
        self.enabled = True
        self.injected: Counter[str] = Counter()

    def roll(self, kind: str) -> bool:
        if self.enabled and self.rng.random() < self.rates.get(kind, 0.0):
            self.injected[kind] += 1
            return True
        return False


def _client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


class InMemoryKeyringStore:
    """The store's compare-and-swap contract, in memory."""

    def __init__(self) -> None:
        self.versions: dict[str, str] = {INITIAL_VERSION_ID: EMPTY_KEYRING_JSON}
        self.current = INITIAL_VERSION_ID

    def load(self) -> VersionedKeyring:
        return VersionedKeyring(Keyring.from_json(self.versions[self.current]), self.current)

    def save(self, keyring: Keyring, expected_version_id: str) -> str:
        if expected_version_id != self.current:
            raise KeyringConflictError(f"keyring changed since version {expected_version_id} was read")
        version_id = str(uuid.uuid4())
        self.versions[version_id] = keyring.to_json()
        self.current = version_id
        return version_id


class FaultyStore:
    """The in-memory CAS store, failing on load, before a write, or after a write landed."""

    def __init__(self, inner: InMemoryKeyringStore, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults
        self.before_save: Callable[[], None] | None = None
        self.history: list[tuple[datetime, Keyring]] = []
        self.clock: FakeClock | None = None

    def load(self) -> VersionedKeyring:
        if self.faults.roll("store_read"):
            raise StoreError("injected: keyring read failed")
        return self.inner.load()

    def save(self, keyring: Keyring, expected_version_id: str) -> str:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook()  # another rotator writes between our read and our write
        if self.faults.roll("store_write_lost"):
            raise StoreError("injected: keyring write failed before it landed")
        version = self.inner.save(keyring, expected_version_id)
        assert self.clock is not None
        self.history.append((self.clock.now(), keyring))
        if self.faults.roll("store_write_unacknowledged"):
            raise StoreError("injected: keyring write landed but the answer was lost")
        return version


class FakeS3:
    """Objects with their headers and metadata; fails on demand."""

    def __init__(self, faults: Faults) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.faults = faults

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if self.faults.roll("s3_read"):
            raise _client_error("SlowDown", "HeadObject")
        if Key not in self.objects:
            raise _client_error("404", "HeadObject")
        stored = self.objects[Key]
        return {"ContentType": stored["ContentType"], "CacheControl": stored["CacheControl"], "Metadata": stored["Metadata"]}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str, CacheControl: str, Metadata: dict[str, str]) -> dict[str, Any]:
        if self.faults.roll("s3_write"):
            raise _client_error("InternalError", "PutObject")
        self.objects[Key] = {"Body": Body, "ContentType": ContentType, "CacheControl": CacheControl, "Metadata": Metadata}
        return {}


class FakeCloudFront:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.invalidations: list[list[str]] = []

    def create_invalidation(self, DistributionId: str, InvalidationBatch: dict[str, Any]) -> dict[str, Any]:
        if self.faults.roll("invalidation"):
            raise _client_error("ServiceUnavailable", "CreateInvalidation")
        self.invalidations.append(list(InvalidationBatch["Paths"]["Items"]))
        return {"Invalidation": {"Id": f"I{len(self.invalidations)}"}}


@dataclass
class World:
    """Two rotators sharing one store, bucket and distribution."""

    settings: Settings
    clock: FakeClock
    faults: Faults
    store: FaultyStore
    s3: FakeS3
    cloudfront: FakeCloudFront
    rotators: list[RotationService]
    signing: FaultyStore  # the signing secret: the view the signer reads

    def published_jwks(self) -> dict[str, Any] | None:
        stored = self.s3.objects.get(JWKS_PATH)
        return json.loads(stored["Body"]) if stored else None

    def current_keyring(self) -> Keyring:
        return self.store.inner.load().keyring

    def signing_view(self) -> Keyring:
        return self.signing.inner.load().keyring


def key_pool(alg: str = "EdDSA") -> Callable[[str, datetime], KeyRecord]:
    """Real keys (Ed25519 is fast to make); the lifecycle does not depend on the algorithm."""

    def make(requested_alg: str, now: datetime) -> KeyRecord:
        return generate_key(requested_alg, now)

    return make


def make_world(settings: Settings, rng: random.Random, rates: dict[str, float]) -> World:
    clock = FakeClock(START)
    faults = Faults(rng, rates)
    store = FaultyStore(InMemoryKeyringStore(), faults)
    store.clock = clock
    s3 = FakeS3(faults)
    cloudfront = FakeCloudFront(faults)
    signing = FaultyStore(InMemoryKeyringStore(), faults)  # fails like the keyring's: a crash between the two writes
    signing.clock = clock

    def rotator() -> RotationService:
        publisher = S3Publisher(s3, "bucket", settings, cloudfront_client=cloudfront, distribution_id="DIST")
        return RotationService(store, publisher, settings, clock=clock.now, key_factory=key_pool(), signing_store=signing)

    return World(settings, clock, faults, store, s3, cloudfront, [rotator(), rotator()], signing)


@dataclass
class Tracker:
    """What verifiers and signers could have seen, to check the invariants against."""

    settings: Settings
    s3_since: dict[str, datetime] = field(default_factory=dict)
    signable_until: dict[str, datetime] = field(default_factory=dict)
    active_since: dict[str, datetime] = field(default_factory=dict)
    bootstrapped: bool = False
    most_keys: int = 0

    def observe(self, world: World) -> None:
        """Check every invariant at the world's current time."""
        now = world.clock.now()
        settings = self.settings
        keyring = world.current_keyring()
        jwks = world.published_jwks()
        published = {k["kid"] for k in jwks["keys"]} if jwks else set()
        self.most_keys = max(self.most_keys, len(published))
        for kid in list(self.s3_since):
            if kid not in published:
                del self.s3_since[kid]
        for kid in published:
            self.s3_since.setdefault(kid, now)

        # nothing private, ever, in anything published
        for stored in world.s3.objects.values():
            document = json.loads(stored["Body"])
            for jwk in document.get("keys", []):
                assert not PRIVATE_MEMBERS.intersection(jwk), f"private member published for {jwk.get('kid')}"
                assert {"kid", "kty", "alg", "use"} <= set(jwk)
            assert b'"d":' not in stored["Body"]

        active = keyring.active
        if active is not None:
            self.bootstrapped = True
        if self.bootstrapped:
            assert active is not None, "no active key after bootstrap"
            assert len(keyring.in_state(KeyState.ACTIVE)) == 1
            assert active.published_at is not None, "an unpublished key became active"
            assert active.kid in published, "the active key is not in the published JWKS"
            if not active.lead_waived:
                assert active.activated_at is not None
                assert active.published_at + settings.publish_lead <= active.activated_at, "activated before the lead"
                assert self.s3_since[active.kid] + settings.publish_lead <= active.activated_at, (
                    "active key was not continuously in the bucket for the lead before it activated"
                )
            self.active_since.setdefault(active.kid, now)
        # the signer signs with the signing view's active key: published, past its lead, never a revoked one
        view = world.signing_view()
        signing = view.active if not view.restore_hold else None
        if signing is not None:
            assert signing.published_at is not None, "the signing view holds an unpublished key"
            assert signing.kid in published, "the signing view's key is not in the published JWKS"
            assert signing.kid not in keyring.revoked_kids(), "the signing view holds a revoked key"
            if not signing.lead_waived:
                assert signing.kid in self.s3_since and self.s3_since[signing.kid] + settings.publish_lead <= now, (
                    "the signing view's key signs before it was in the bucket for the lead")
            self.active_since.setdefault(signing.kid, now)
        signable = {k.kid for k in (active, signing) if k is not None}
        # the signer may use a kid until signer-cache-ttl after it stopped being active; its tokens live max-token-ttl
        for kid in list(self.active_since):
            if kid not in signable:
                stopped = self.signable_until.setdefault(kid, now + settings.signer_cache_ttl)
                if now <= stopped + settings.max_token_ttl:
                    assert kid in published, f"kid {kid} left the JWKS while tokens it signed may be unexpired"
        # the JWKS does not grow without bound
        assert len(published) <= 6, f"JWKS holds {len(published)} keys"

    def check_converged(self, world: World, report_converged: bool) -> None:
        """After a fault-free tick: the published documents match the keyring."""
        assert report_converged
        keyring = world.current_keyring()
        jwks = world.published_jwks()
        assert jwks is not None
        assert [k["kid"] for k in jwks["keys"]] == [k.kid for k in keyring.publication_order()]
        assert all(k.published_at is not None for k in keyring.keys)
        assert world.signing_view().same_signing_view(keyring.signing_view()), "the signing view differs from the keyring's"


@dataclass
class Scenario:
    seed: int
    days: int
    mean_gap_minutes: float
    skip_rate: float
    duplicate_rate: float
    concurrent_rate: float
    rotate_now_rate: float
    fault_rates: dict[str, float]


@dataclass
class Outcome:
    ticks: int = 0
    failed_ticks: int = 0
    conflicts: int = 0
    activations: int = 0
    rotate_now: int = 0
    concurrent: int = 0
    skips: int = 0
    duplicates: int = 0
    simulated_days: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    most_keys: int = 0


def run_scenario(settings: Settings, scenario: Scenario) -> Outcome:
    """Replay a random tick schedule with faults; raises AssertionError on any broken invariant."""
    rng = random.Random(scenario.seed)
    world = make_world(settings, rng, scenario.fault_rates)
    tracker = Tracker(settings)
    outcome = Outcome()
    end = START + timedelta(days=scenario.days)
    schedule = settings.schedule
    while world.clock.now() < end:
        roll = rng.random()
        if roll < scenario.duplicate_rate:
            gap = timedelta(0)
            outcome.duplicates += 1
        elif roll < scenario.duplicate_rate + scenario.skip_rate:
            gap = schedule * rng.randint(2, 400)  # ticks skipped, sometimes for longer than the lead
            outcome.skips += 1
        else:
            gap = timedelta(minutes=rng.expovariate(1 / scenario.mean_gap_minutes))  # late or early
        world.clock.advance(gap)
        rotator = world.rotators[rng.randrange(2)]
        other = world.rotators[1 - world.rotators.index(rotator)]
        if rng.random() < scenario.concurrent_rate:
            outcome.concurrent += 1

            def interleave(other: RotationService = other) -> None:
                enabled, world.faults.enabled = world.faults.enabled, False
                try:
                    other.tick()
                finally:
                    world.faults.enabled = enabled

            world.store.before_save = interleave
        faults_before = sum(world.faults.injected.values())
        try:
            if rng.random() < scenario.rotate_now_rate:
                outcome.rotate_now += 1
                report = rotator.rotate_now()
            else:
                report = rotator.tick()
        except (JwksRotatorError, InjectedFault):
            outcome.failed_ticks += 1
            report = None
        world.store.before_save = None
        outcome.ticks += 1
        tracker.observe(world)
        if report is not None:
            outcome.conflicts += report.conflicts
            if sum(world.faults.injected.values()) == faults_before:
                # a fault-free tick converges, whatever happened before it
                enabled, world.faults.enabled = world.faults.enabled, False
                tracker.check_converged(world, rotator.tick().converged)
                world.faults.enabled = enabled
    # faults stop: the next tick converges
    world.faults.enabled = False
    tracker.check_converged(world, world.rotators[0].tick().converged)
    tracker.observe(world)
    outcome.simulated_days = (world.clock.now() - START).total_seconds() / 86400
    outcome.faults = world.faults.injected
    outcome.most_keys = tracker.most_keys
    outcome.activations = len(tracker.active_since)  # every key that ever became active, bootstrap included
    return outcome
