"""The signing view: the rotator keeps a second secret holding only what the signer may use.

The signer's role reads that secret alone, so it never holds a pending, retired or revoked key's private
half. These tests drive the real ``RotationService`` against in-memory compare-and-swap stores (the
keyring's and the view's), crash it between the two writes, race it, restore old versions of either
secret, and check after every step what a signer reading the view would sign with.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.core.errors import KeyringBehindPublicationError, KeyringConflictError
from jwks_rotator.core.issuance.signer import TokenSigner
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from tests.sign_support import InMemoryKeyringReader
from tests.simulation import START, FakeS3, Faults, InMemoryKeyringStore

SETTINGS = Settings.from_mapping({
    "issuer": "https://issuer.example.com", "algorithm": "ES256", "rotation_period": "10m", "publish_lead": "4m",
    "jwks_max_age": "1m", "schedule": "1m", "max_token_ttl": "2m", "default_token_ttl": "1m", "signer_cache_ttl": "10s",
    "clock_skew_leeway": "5s", "keyring_secret_id": "keyring", "signing_secret_id": "signing",
})


class Crash(Exception):
    """The rotator's process died here."""


class CrashingStore(InMemoryKeyringStore):
    """The keyring store; ``crash_next`` makes the next write die before it lands."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_next = False
        self.writes: list[str] = []

    def save(self, keyring: Keyring, expected_version_id: str) -> str:
        if self.crash_next:
            self.crash_next = False
            raise Crash
        self.writes.append("keyring")
        return super().save(keyring, expected_version_id)


class ViewStore(InMemoryKeyringStore):
    """The signing secret; records the order of writes in ``log``."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def save(self, keyring: Keyring, expected_version_id: str) -> str:
        self.log.append("view")
        return super().save(keyring, expected_version_id)


def new_key(alg: str, now: object) -> KeyRecord:
    return generate_key(alg, now)  # type: ignore[arg-type]


class World:
    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.store = CrashingStore()
        self.view = ViewStore(self.store.writes)
        self.s3 = FakeS3(Faults(random.Random(0), {}))

    def rotator(self, store: InMemoryKeyringStore | None = None) -> RotationService:
        publisher = S3Publisher(self.s3, "bucket", SETTINGS)
        return RotationService(store or self.store, publisher, SETTINGS, clock=self.clock.now, key_factory=new_key,
                               signing_store=self.view)

    def tick(self) -> None:
        self.rotator().tick()

    def keyring(self) -> Keyring:
        return self.store.load().keyring

    def signed_by(self) -> str | None:
        """The kid a signer reading the signing secret now signs with (None: it refuses)."""
        stored = self.view.load()
        signer = TokenSigner(SETTINGS, InMemoryKeyringReader(stored.keyring.to_json()), clock=lambda: self.clock.now().timestamp())
        try:
            return signer.cache.get(self.clock.now().timestamp()).kid
        except Exception:
            return None

    def run_until_rotation(self) -> tuple[str, str]:
        """Tick until the active key is due and the pending one ready; the (active, pending) kids just before."""
        for _ in range(40):
            self.tick()
            keyring = self.keyring()
            active, pending = keyring.active, keyring.in_state(KeyState.PENDING)
            assert active is not None and active.activated_at is not None
            if pending and pending[0].ready_at is not None and self.clock.now() + timedelta(minutes=1) >= max(
                active.activated_at + SETTINGS.rotation_period, pending[0].ready_at
            ):
                self.clock.advance(timedelta(minutes=1))
                return active.kid, pending[0].kid
            self.clock.advance(timedelta(minutes=1))
        raise AssertionError("no rotation came due")


def test_the_view_holds_only_the_active_key_and_follows_every_tick() -> None:
    world = World()
    for _ in range(30):  # three rotations
        world.tick()
        keyring, view = world.keyring(), world.view.load().keyring
        assert view.same_signing_view(keyring.signing_view())
        assert [k.kid for k in view.keys] == ([keyring.active.kid] if keyring.active else [])
        assert all(k.state is KeyState.ACTIVE for k in view.keys)
        assert world.signed_by() == (keyring.active.kid if keyring.active else None)
        world.clock.advance(timedelta(minutes=1))
    assert len(world.keyring().keys) >= 2  # pending and retired keys exist, and never reached the view


def test_on_activation_the_view_is_written_before_the_keyring() -> None:
    world = World()
    world.run_until_rotation()
    world.store.writes.clear()
    world.tick()
    assert world.store.writes[:2] == ["view", "keyring"]


def test_a_crash_between_the_writes_stops_the_old_key_and_signs_only_a_published_ready_key() -> None:
    world = World()
    old, new = world.run_until_rotation()
    world.store.crash_next = True
    with pytest.raises(Crash):
        world.tick()
    keyring = world.keyring()
    assert keyring.active is not None and keyring.active.kid == old  # the keyring write never landed
    assert world.signed_by() == new  # the old key no longer signs: no bound of its retirement can be overrun
    pending = keyring.get(new)
    assert pending is not None and pending.published_at is not None and pending.ready_at is not None
    assert pending.ready_at <= world.clock.now()  # and the key signing was published past its lead
    world.tick()  # the next tick converges both secrets
    keyring = world.keyring()
    assert keyring.active is not None and keyring.active.kid == new
    assert world.view.load().keyring.same_signing_view(keyring.signing_view())


def test_a_crash_before_any_write_changes_nothing_the_signer_sees() -> None:
    world = World()
    old, _ = world.run_until_rotation()

    class DiesOnView(ViewStore):
        def save(self, keyring: Keyring, expected_version_id: str) -> str:
            raise Crash

    before = world.view
    world.view = DiesOnView(world.store.writes)
    world.view.versions, world.view.current = before.versions, before.current
    with pytest.raises(Crash):
        world.tick()
    world.view = before
    assert world.keyring().active is not None and world.keyring().active.kid == old  # type: ignore[union-attr]
    assert world.signed_by() == old  # still the keyring's active key: its retirement has not started


def test_a_lost_race_leaves_the_winners_view() -> None:
    """Two rotators plan from the same keyring; the loser's view must not replace the winner's."""
    world = World()
    world.run_until_rotation()
    loaded = world.store.load()
    winner_plan = world.rotator()  # ticks first, activating the next key
    loser_store = CrashingStore()
    loser_store.versions, loser_store.current = world.store.versions, world.store.current

    class LosesTheRace(CrashingStore):
        """The loser's keyring CAS: the winner commits just before it."""

        def save(self, keyring: Keyring, expected_version_id: str) -> str:
            if expected_version_id == loaded.version_id and world.store.current == loaded.version_id:
                winner_plan.tick()
            if expected_version_id != world.store.current:
                raise KeyringConflictError("raced")
            return world.store.save(keyring, expected_version_id)

        def load(self):  # type: ignore[no-untyped-def]
            return world.store.load()

    report = world.rotator(LosesTheRace()).revoke(world.keyring().in_state(KeyState.RETIRED)[0].kid
                                                  if world.keyring().in_state(KeyState.RETIRED) else world.keyring().keys[0].kid)
    assert report.conflicts >= 1
    keyring = world.keyring()
    assert world.view.load().keyring.same_signing_view(keyring.signing_view())


def test_a_restored_old_view_is_replaced_at_the_next_tick() -> None:
    world = World()
    world.run_until_rotation()
    world.tick()
    old_version = next(v for v, text in world.view.versions.items()
                       if Keyring.from_json(text).active is not None and Keyring.from_json(text).active.kid != world.keyring().active.kid)  # type: ignore[union-attr]
    world.view.current = old_version  # an administrator restored an older version of the signing secret
    assert world.signed_by() != world.keyring().active.kid  # type: ignore[union-attr]
    world.tick()
    assert world.signed_by() == world.keyring().active.kid  # type: ignore[union-attr]


def test_a_restored_old_keyring_puts_the_view_on_hold() -> None:
    world = World()
    world.run_until_rotation()
    world.tick()
    first = next(v for v, text in world.store.versions.items() if Keyring.from_json(text).active is not None)
    world.store.current = first  # the keyring secret restored to an older version
    with pytest.raises(KeyringBehindPublicationError):
        world.tick()
    view = world.view.load().keyring
    assert view.restore_hold and world.signed_by() is None  # the signer signs nothing until an operator decides
    world.rotator().publish(accept_restore=True)
    assert world.signed_by() == world.keyring().active.kid  # type: ignore[union-attr]


def test_a_view_ahead_of_a_lower_generation_is_never_replaced_by_a_speculative_write() -> None:
    world = World()
    world.tick()
    stored = world.view.load()
    ahead = Keyring(stored.keyring.keys, None, stored.keyring.generation + 5, stored.keyring.revoked)
    world.view.save(ahead, stored.version_id)
    keyring = world.keyring()
    replacement = keyring.with_digest("other").signing_view()
    assert replacement.generation < ahead.generation
    rotator = world.rotator()
    rotator._sync_signing_view(keyring.with_revocation("some-kid", world.clock.now()), committed=False)
    assert world.view.load().keyring.generation == ahead.generation

