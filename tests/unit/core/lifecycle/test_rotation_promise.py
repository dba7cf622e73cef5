"""The rotation service against restores, revocations, wrong clocks and limits (in-memory store and bucket)."""

from __future__ import annotations

import logging
import random
import uuid
from datetime import timedelta

import pytest

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.core.errors import (
    ClockSkewError,
    InvalidEventError,
    KeyringBehindPublicationError,
    KeyringLimitError,
    StoreError,
)
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.keys.revocation import MemoryRevocationList
from jwks_rotator.core.lifecycle.bounds import MAX_KEYS
from jwks_rotator.core.lifecycle.operations import RotateCommand, parse_rotate_event, run_command
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.settings import Settings
from tests.simulation import START, FakeClock, FakeCloudFront, FakeS3, Faults, InMemoryKeyringStore, key_pool

SETTINGS = Settings(issuer="https://issuer.example.com", algorithm="EdDSA")


class Rig:
    """One rotator over an in-memory store and bucket, with a clock and a revocation list."""

    def __init__(self, revocations: MemoryRevocationList | None = None) -> None:
        self.clock = FakeClock(START)
        self.store = InMemoryKeyringStore()
        faults = Faults(random.Random(0), {})
        self.s3 = FakeS3(faults)
        publisher = S3Publisher(self.s3, "bucket", SETTINGS, cloudfront_client=FakeCloudFront(faults), distribution_id="D")
        self.revocations = revocations
        self.service = RotationService(self.store, publisher, SETTINGS, clock=self.clock.now, key_factory=key_pool(),
                                       revocations=revocations)

    def keyring(self) -> Keyring:
        return self.store.load().keyring

    def published_kids(self) -> set[str]:
        import json

        return {k["kid"] for k in json.loads(self.s3.objects[".well-known/jwks.json"]["Body"])["keys"]}

    def restore(self, version_id: str) -> None:
        """What restoring the secret does: the old value becomes a new current version."""
        restored = str(uuid.uuid4())
        self.store.versions[restored] = self.store.versions[version_id]
        self.store.current = restored


# --- restores and revocations --------------------------------------------------------------------

def test_a_restore_does_not_bring_a_revoked_key_back(caplog):
    rig = Rig(MemoryRevocationList())
    rig.service.tick()
    before_revoke = rig.store.current
    revoked = rig.keyring().active.kid
    secret = rig.keyring().active.private_jwk["d"]
    rig.clock.advance(timedelta(hours=1))
    rig.service.revoke(revoked)
    assert revoked in rig.revocations.load()
    rig.restore(before_revoke)  # the revoked key is active again in the store
    rig.clock.advance(timedelta(minutes=15))
    with caplog.at_level(logging.DEBUG), pytest.raises(KeyringBehindPublicationError):
        rig.service.tick()  # the bucket is ahead of the restored keyring: refused, before any write, until an operator accepts
    assert revoked not in rig.published_kids()
    assert rig.keyring().get(revoked) is None, "the revoked key left the store although publication waits"
    assert rig.keyring().restore_hold
    for _ in range(3):
        with pytest.raises(KeyringBehindPublicationError):
            rig.service.tick()  # still refused, however many rounds write
    with caplog.at_level(logging.DEBUG):
        assert rig.service.publish(accept_restore=True).converged
    keyring = rig.keyring()
    assert keyring.get(revoked) is None and keyring.active is not None and keyring.active.kid != revoked
    assert revoked not in rig.published_kids()
    assert revoked in keyring.revoked_kids() and not keyring.restore_hold
    assert rig.service.tick().converged
    assert any(getattr(r, "kid", None) == revoked for r in caplog.records)
    assert secret not in caplog.text


def test_a_revoked_kid_goes_on_the_list_before_the_keyring_is_written():
    rig = Rig(MemoryRevocationList())
    rig.service.tick()
    kid = rig.keyring().active.kid

    def refuse(keyring, expected_version_id):
        raise StoreError("write failed")

    rig.store.save = refuse  # type: ignore[method-assign]
    with pytest.raises(StoreError):
        rig.service.revoke(kid)
    assert kid in rig.revocations.load()


def test_without_an_external_list_the_tombstones_still_refuse_a_revoked_kid():
    rig = Rig()
    rig.service.tick()
    kid = rig.keyring().in_state(KeyState.PENDING)[0].kid
    rig.service.revoke(kid)
    assert kid in rig.keyring().revoked_kids() and kid not in rig.published_kids()


# --- a keyring behind the bucket -----------------------------------------------------------------

def test_a_keyring_behind_the_published_documents_needs_the_operator():
    rig = Rig()
    rig.service.tick()
    older = rig.store.current
    rig.clock.advance(timedelta(hours=1))
    rig.service.rotate_now()
    newer_kids = rig.published_kids()
    rig.restore(older)
    with pytest.raises(KeyringBehindPublicationError) as info:
        rig.service.tick()
    assert info.value.code == "keyring_behind_publication" and "accept_restore" in info.value.message
    assert rig.published_kids() == newer_kids, "nothing was overwritten"
    report = run_command(rig.service, parse_rotate_event({"operation": "publish", "accept_restore": True}))
    assert report.converged
    assert rig.published_kids() == {k.kid for k in rig.keyring().keys}


@pytest.mark.parametrize("value", ["true", 1, None, "yes"])
def test_accept_restore_must_be_a_json_boolean(value):
    with pytest.raises(InvalidEventError, match="JSON boolean"):
        parse_rotate_event({"operation": "publish", "accept_restore": value})


def test_accept_restore_is_for_publish_only():
    assert parse_rotate_event({"operation": "publish", "accept_restore": False}) == RotateCommand("publish")
    with pytest.raises(InvalidEventError, match="accept_restore"):
        parse_rotate_event({"operation": "tick", "accept_restore": True})


# --- wrong clocks --------------------------------------------------------------------------------

@pytest.mark.parametrize("operation", ["tick", "rotate_now", "revoke"])
def test_a_clock_behind_the_stored_times_fails_loudly_before_writing(operation):
    rig = Rig()
    rig.clock.move_to(START + timedelta(days=30))  # one tick with a clock 30 days ahead
    rig.service.tick()
    written = rig.store.current
    rig.clock.move_to(START + timedelta(minutes=15))  # the clock is right again
    call = {"tick": rig.service.tick, "rotate_now": rig.service.rotate_now,
            "revoke": lambda: rig.service.revoke(rig.keyring().active.kid)}[operation]
    with pytest.raises(ClockSkewError) as info:
        call()
    assert info.value.code == "clock_skew_detected"
    assert rig.store.current == written


def test_a_clock_behind_within_the_leeway_still_works():
    rig = Rig()
    rig.service.tick()
    rig.clock.advance(-SETTINGS.clock_skew_leeway)
    assert rig.service.tick().converged


# --- limits ----------------------------------------------------------------------------------------

def test_rotate_now_refuses_before_the_keyring_outgrows_its_limit_and_writes_nothing():
    rig = Rig()
    rig.service.tick()
    def grow() -> None:
        for _ in range(3 * MAX_KEYS):
            rig.clock.advance(timedelta(minutes=1))
            rig.service.rotate_now()

    with pytest.raises(KeyringLimitError):
        grow()
    assert len(rig.keyring().keys) <= MAX_KEYS
    held = rig.store.current
    with pytest.raises(KeyringLimitError):
        rig.service.rotate_now()
    assert rig.store.current == held


def test_a_restore_that_only_rolls_back_a_recorded_bound_still_needs_the_operator():
    """A restore whose documents equal the published ones can still undo a bound: here the active key's record that
    it signed 24h tokens. Adopting it silently would retire the key with a 1h bound and drop it from the JWKS while
    those tokens live; it must be refused like any other restore."""
    rig = Rig()
    short, long = SETTINGS, SETTINGS.replace(max_token_ttl="24h", retention="")

    def service(settings: Settings) -> RotationService:
        publisher = S3Publisher(rig.s3, "bucket", settings, cloudfront_client=FakeCloudFront(Faults(random.Random(0), {})),
                                distribution_id="D")
        return RotationService(rig.store, publisher, settings, clock=rig.clock.now, key_factory=key_pool())

    for _ in range(3):
        service(short).tick()
        rig.clock.advance(timedelta(minutes=15))
    signer = rig.keyring().active
    assert signer is not None and signer.max_token_ttl == timedelta(hours=1)
    before_bump = rig.store.current
    documents = dict(rig.s3.objects)
    service(long).tick()  # a deployment raises max-token-ttl: the active key records it, the documents stay the same
    assert rig.keyring().active.max_token_ttl == timedelta(hours=24)
    assert {p: o["Body"] for p, o in rig.s3.objects.items()} == {p: o["Body"] for p, o in documents.items()}
    rig.clock.advance(timedelta(minutes=15))
    service(short).tick()  # and a later one lowers it again
    rig.restore(before_bump)
    rig.clock.advance(timedelta(minutes=15))
    with pytest.raises(KeyringBehindPublicationError):
        service(short).tick()
    assert rig.keyring().restore_hold


def test_a_key_no_longer_held_can_be_revoked_and_a_restore_of_a_version_holding_it_drops_it():
    rig = Rig(MemoryRevocationList())
    rig.service.tick()
    holding = rig.store.current
    leaked = rig.keyring().active.kid
    rig.service.rotate_now()  # the leaked key retires ...
    for _ in range(12):
        rig.clock.advance(timedelta(hours=1))
        rig.service.tick()  # ... and retention deletes it
    assert rig.keyring().get(leaked) is None and leaked not in rig.published_kids()
    report = rig.service.revoke(leaked)  # found in a backup: still revocable
    assert [(c.kind, c.kid) for c in report.changes if c.kind == "revoked"] == [("revoked", leaked)]
    assert leaked in rig.revocations.load() and leaked in rig.keyring().revoked_kids()
    rig.restore(holding)  # a version that still holds it, as the active key
    with pytest.raises(KeyringBehindPublicationError):
        rig.service.tick()
    assert rig.service.publish(accept_restore=True).converged
    assert rig.keyring().get(leaked) is None and leaked not in rig.published_kids()
