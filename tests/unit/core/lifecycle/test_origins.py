"""Every origin: fenced before any write, written where reachable, read back, and counted only when complete."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from jwks_rotator.adapters.sdk.s3_publisher import GENERATION_METADATA, S3Publisher
from jwks_rotator.core.errors import ConfigurationError, PublicationSupersededError, PublishError
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.lifecycle.documents import JWKS_PATH, PublicDocuments
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.origins import EveryOrigin, Origin
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from tests.simulation import START, FakeCloudFront, FakeS3, Faults, InMemoryKeyringStore

SETTINGS = Settings.from_mapping({
    "issuer": "https://issuer.example.com", "algorithm": "ES256", "rotation_period": "10m", "publish_lead": "4m",
    "jwks_max_age": "1m", "schedule": "1m", "max_token_ttl": "2m", "default_token_ttl": "1m", "signer_cache_ttl": "10s",
    "clock_skew_leeway": "5s", "keyring_secret_id": "keyring", "signing_secret_id": "signing",
})
DOCUMENTS = PublicDocuments(files={"jwks.json": b'{"keys":[]}', ".well-known/openid-configuration": b'{"issuer":"x"}'}, kids=(), digest="d1")


class Bucket:
    """One origin's bucket (a FakeS3 that is down while ``down`` is set) and its publisher."""

    def __init__(self, name: str, *, invalidates: bool = False) -> None:
        self.faults = Faults(random.Random(0), {"s3_read": 1.0, "s3_write": 1.0})
        self.faults.enabled = False
        self.s3 = FakeS3(self.faults)
        self.cloudfront = FakeCloudFront(Faults(random.Random(0), {})) if invalidates else None
        self.origin = Origin(name, S3Publisher(self.s3, name, SETTINGS, self.cloudfront, "DIST" if invalidates else ""))

    @property
    def down(self) -> bool:
        return self.faults.enabled

    @down.setter
    def down(self, value: bool) -> None:
        self.faults.enabled = value

    def holds(self, documents: PublicDocuments) -> bool:
        return all(self.s3.objects.get(path, {}).get("Body") == body for path, body in documents.files.items())


def buckets() -> tuple[Bucket, Bucket]:
    return Bucket("eu-west-1"), Bucket("us-east-1", invalidates=True)


def test_a_publication_writes_every_origin_and_reads_each_back() -> None:
    secondary, primary = buckets()
    result = EveryOrigin([secondary.origin, primary.origin]).publish(DOCUMENTS, already_announced=False, generation=3)
    assert secondary.holds(DOCUMENTS) and primary.holds(DOCUMENTS)
    assert set(result.uploaded) == set(DOCUMENTS.files) and result.invalidation_id == "I1"
    assert primary.cloudfront is not None and len(primary.cloudfront.invalidations) == 1
    assert {o["Metadata"][GENERATION_METADATA] for b in (secondary, primary) for o in b.s3.objects.values()} == {"3"}


OLDER = PublicDocuments(files={"jwks.json": b'{"keys":[1]}', ".well-known/openid-configuration": b'{"issuer":"x"}'}, kids=(), digest="d0")


def test_the_writers_own_origin_holding_a_newer_keyring_stops_the_publication_before_any_write() -> None:
    secondary, primary = buckets()
    EveryOrigin([primary.origin]).publish(DOCUMENTS, already_announced=False, generation=9)  # a newer writer's
    newer_there = dict(primary.s3.objects)
    with pytest.raises(PublicationSupersededError):
        EveryOrigin([secondary.origin, primary.origin], own="us-east-1").publish(OLDER, already_announced=False, generation=5)
    assert secondary.s3.objects == {} and primary.s3.objects == newer_there


def test_a_second_origin_holding_a_newer_keyring_is_missing_and_not_overwritten_but_the_own_origin_is_written() -> None:
    secondary, primary = buckets()
    EveryOrigin([secondary.origin]).publish(DOCUMENTS, already_announced=False, generation=999999)  # a foreign or stray writer's
    foreign = dict(secondary.s3.objects)
    every = EveryOrigin([secondary.origin, primary.origin], own="us-east-1")
    result = every.publish(OLDER, already_announced=False, generation=5)
    assert result.missing == ("eu-west-1",) and result.ahead == ("eu-west-1",)
    assert secondary.s3.objects == foreign and primary.holds(OLDER)  # never overwritten without force
    forced = every.publish(OLDER, already_announced=False, generation=5, force=True)  # an accepted restore
    assert forced.missing == () and forced.ahead == () and secondary.holds(OLDER)


def test_the_own_origin_defaults_to_the_last_and_must_be_one_of_them() -> None:
    secondary, primary = buckets()
    EveryOrigin([secondary.origin]).publish(DOCUMENTS, already_announced=False, generation=9)
    assert EveryOrigin([secondary.origin, primary.origin]).publish(OLDER, already_announced=False, generation=5).ahead == ("eu-west-1",)
    with pytest.raises(ConfigurationError):
        EveryOrigin([secondary.origin, primary.origin], own="ap-south-1")


def test_an_origin_that_is_down_misses_the_publication_which_does_not_count_and_is_repaired_later() -> None:
    secondary, primary = buckets()
    every = EveryOrigin([secondary.origin, primary.origin])
    secondary.down = True
    result = every.publish(DOCUMENTS, already_announced=False, generation=3)
    assert result.missing == ("eu-west-1",) and set(result.uploaded) == set(DOCUMENTS.files)
    assert primary.holds(DOCUMENTS) and not secondary.holds(DOCUMENTS)  # the healthy origin stays current
    secondary.down = False
    repaired = every.publish(DOCUMENTS, already_announced=False, generation=3)
    assert repaired.missing == () and secondary.holds(DOCUMENTS) and primary.holds(DOCUMENTS)


def test_no_origin_taking_the_documents_is_a_failed_publication() -> None:
    secondary, primary = buckets()
    secondary.down = primary.down = True
    with pytest.raises(PublishError) as raised:
        EveryOrigin([secondary.origin, primary.origin]).publish(DOCUMENTS, already_announced=False, generation=3)
    assert str(raised.value).startswith("published at none of 2 origins: eu-west-1: cannot read s3://eu-west-1/")


def test_an_origin_whose_stored_digest_is_not_what_was_written_does_not_count() -> None:
    secondary, primary = buckets()

    class Corrupting(FakeS3):
        def put_object(self, **kwargs: Any) -> dict[str, Any]:
            kwargs["Metadata"] = {**kwargs["Metadata"], "sha256": "0" * 64}
            return super().put_object(**kwargs)

    secondary.s3.__class__ = Corrupting
    result = EveryOrigin([secondary.origin, primary.origin]).publish(DOCUMENTS, already_announced=False, generation=3)
    assert result.missing == ("eu-west-1",)


def test_an_accepted_restore_overwrites_every_origin() -> None:
    secondary, primary = buckets()
    EveryOrigin([secondary.origin, primary.origin]).publish(DOCUMENTS, already_announced=False, generation=9)
    restored = PublicDocuments(files={"jwks.json": b'{"keys":[2]}', ".well-known/openid-configuration": b'{"issuer":"x"}'}, kids=(), digest="d2")
    EveryOrigin([secondary.origin, primary.origin]).publish(restored, already_announced=False, generation=12, force=True)
    assert secondary.holds(restored) and primary.holds(restored)


@pytest.mark.parametrize("origins", [[], [Bucket("a").origin, Bucket("a").origin], [Bucket("").origin]])
def test_the_origins_must_be_named_once_each(origins: list[Origin]) -> None:
    with pytest.raises(ConfigurationError):
        EveryOrigin(origins)


def new_key(alg: str, now: object) -> KeyRecord:
    return generate_key(alg, now)  # type: ignore[arg-type]


def test_no_key_activates_while_an_origin_misses_its_publication_and_a_revocation_still_lands() -> None:
    secondary, primary = buckets()
    clock = FakeClock(START)
    store = InMemoryKeyringStore()
    rotator = RotationService(store, EveryOrigin([secondary.origin, primary.origin]), SETTINGS, clock=clock.now, key_factory=new_key)
    rotator.tick()  # bootstrap with both origins up: an active key, and a pending one published everywhere
    known = {k.kid for k in store.load().keyring.keys}
    secondary.down = True
    created: set[str] = set()
    for _ in range(30):  # three rotation periods: a key published at one origin only never counts
        report = rotator.tick()
        assert report.missing_origins == ("eu-west-1",)
        keyring = store.load().keyring
        created |= {k.kid for k in keyring.keys} - known
        assert {k.kid for k in keyring.keys if k.state is KeyState.ACTIVE} <= known
        clock.advance(timedelta(minutes=1))
    keyring = store.load().keyring
    assert created and all(k.published_at is None and k.state is KeyState.PENDING for k in keyring.keys if k.kid in created)
    assert all(kid.encode() in primary.s3.objects[JWKS_PATH]["Body"] for kid in created)  # the healthy origin is current
    first = next(k for k in keyring.keys if k.state is KeyState.ACTIVE)
    rotator.revoke(first.kid)  # an operation is not held up by the missing origin
    assert first.kid not in {k.kid for k in store.load().keyring.keys}
    assert first.kid.encode() not in primary.s3.objects[JWKS_PATH]["Body"]
    secondary.down = False
    report = rotator.tick()
    assert report.missing_origins == ()
    keyring = store.load().keyring
    assert all(k.published_at is not None for k in keyring.keys)
    assert secondary.s3.objects[JWKS_PATH]["Body"] == primary.s3.objects[JWKS_PATH]["Body"]


def test_a_second_origin_ahead_of_the_keyring_puts_no_restore_hold_activates_nothing_and_is_overwritten_only_on_accept() -> None:
    secondary, primary = buckets()
    clock = FakeClock(START)
    store, signing = InMemoryKeyringStore(), InMemoryKeyringStore()
    rotator = RotationService(store, EveryOrigin([secondary.origin, primary.origin], own="us-east-1"), SETTINGS, clock=clock.now,
                              key_factory=new_key, signing_store=signing)
    rotator.tick()
    known = {k.kid for k in store.load().keyring.keys}  # published at both origins before the stray write
    EveryOrigin([secondary.origin]).publish(DOCUMENTS, already_announced=False, generation=999999, force=True)  # a stray writer
    foreign = dict(secondary.s3.objects)
    for _ in range(15):  # past the rotation period: the pending key is never recorded as published there
        clock.advance(timedelta(minutes=1))
        report = rotator.tick()
        assert report.missing_origins == ("eu-west-1",) and report.origins_ahead == ("eu-west-1",)
        keyring = store.load().keyring
        assert not keyring.restore_hold and keyring.active is not None and keyring.active.kid in known
        view = signing.load().keyring
        assert not view.signs_nothing and view.active is not None and view.active.kid == keyring.active.kid  # still signs
        assert secondary.s3.objects == foreign
    created = [k for k in store.load().keyring.keys if k.kid not in known]
    assert created and all(k.published_at is None and k.state is KeyState.PENDING for k in created)  # none counts as published
    accepted = rotator.publish(accept_restore=True)
    assert accepted.missing_origins == () and accepted.origins_ahead == ()
    assert secondary.s3.objects[JWKS_PATH]["Body"] == primary.s3.objects[JWKS_PATH]["Body"]
    assert not store.load().keyring.restore_hold


class RacedPublisher:
    """An origin whose publish is followed, before the read-back, by a newer run's publication (a concurrent rotate-now)."""

    def __init__(self, bucket: Bucket, newer: PublicDocuments, generation: int) -> None:
        self._bucket, self._newer, self._generation = bucket, newer, generation
        self._inner = bucket.origin.publisher

    def publish(self, documents: PublicDocuments, **kwargs: Any) -> Any:
        result = self._inner.publish(documents, **kwargs)
        self._inner.publish(self._newer, already_announced=False, generation=self._generation)
        return result

    def stale_paths(self, documents: PublicDocuments, generation: int | None = None) -> tuple[str, ...]:
        return self._inner.stale_paths(documents, generation)


def test_a_newer_run_publishing_between_the_write_and_the_read_back_supersedes_this_one_instead_of_failing_it() -> None:
    """The read-back of documents a newer keyring replaced is that run's publication, not a broken origin: the own
    origin raises the conflict (the round re-reads the keyring and plans again), another is missing (not ahead: it
    was not at the fence, and the next run's fence tells a stray writer apart)."""
    secondary, primary = buckets()
    raced = Origin("us-east-1", RacedPublisher(primary, DOCUMENTS, 8))  # type: ignore[arg-type]
    with pytest.raises(PublicationSupersededError):
        EveryOrigin([secondary.origin, raced], own="us-east-1").publish(OLDER, already_announced=False, generation=7)
    secondary, primary = buckets()
    raced = Origin("eu-west-1", RacedPublisher(secondary, DOCUMENTS, 8))  # type: ignore[arg-type]
    result = EveryOrigin([raced, primary.origin], own="us-east-1").publish(OLDER, already_announced=False, generation=7)
    assert result.missing == ("eu-west-1",) and result.ahead == () and primary.holds(OLDER)
