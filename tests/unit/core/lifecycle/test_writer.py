"""One writer: is_writer, the keyring's writer marker, the fence a superseded writer stops at, and step-down."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import timedelta

import pytest

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.core.errors import KeyringError, NotPrimaryRegionError, PromoteRefusedError, WriterSupersededError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.revocation import MemoryRevocationList
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.promote import step_down
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.lifecycle.writer import MergedMarks, check_not_superseded, is_writer
from jwks_rotator.core.ports import WriterMark
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from tests.simulation import START, FakeS3, Faults, InMemoryKeyringStore

SETTINGS_MAP = {
    "issuer": "https://issuer.example.com", "algorithm": "ES256", "rotation_period": "10m", "publish_lead": "4m",
    "jwks_max_age": "1m", "schedule": "1m", "max_token_ttl": "2m", "default_token_ttl": "1m", "signer_cache_ttl": "10s",
    "clock_skew_leeway": "5s", "keyring_secret_id": "keyring", "signing_secret_id": "signing",
    "primary_region": "us-east-1", "regions": "us-east-1,eu-west-1",
}
SETTINGS = Settings.from_mapping(SETTINGS_MAP)
A, B = "us-east-1", "eu-west-1"


@pytest.mark.parametrize(("own", "settings_primary", "marker", "writes"), [
    (A, "", None, True),  # one region: always the writer
    (A, A, None, True),
    (B, A, None, False),  # a secondary as deployed
    (B, A, B, True),  # promoted: the marker outranks the stack's parameter it cannot change
    (A, A, B, False),  # stepped down (or found superseded by its own keyring)
    (A, B, A, True),  # the marker decides; a stale one is the fence's business (generation)
])
def test_is_writer_takes_the_keyring_marker_over_the_stack_setting(own, settings_primary, marker, writes) -> None:
    assert is_writer(own, settings_primary, marker) is writes


def test_only_a_newer_mark_of_another_named_region_supersedes() -> None:
    check_not_superseded(A, 10, None, {"x": None, "y": WriterMark(11, ""), "z": WriterMark(11, A), "w": WriterMark(10, B)})
    with pytest.raises(WriterSupersededError, match="generation 11 written by eu-west-1"):
        check_not_superseded(A, 10, None, {"origin": WriterMark(11, B)})
    with pytest.raises(WriterSupersededError, match="names eu-west-1 as the writer"):
        check_not_superseded(A, 10, B, {})
    check_not_superseded(B, 10, B, {"keyring secret in us-east-1": WriterMark(9, B)})


def test_merged_marks_read_every_source() -> None:
    class Source:
        def __init__(self, marks: Mapping[str, WriterMark | None]) -> None:
            self._marks = marks

        def marks(self) -> Mapping[str, WriterMark | None]:
            return self._marks

    assert MergedMarks(Source({"a": None}), Source({"b": WriterMark(3, B)})).marks() == {"a": None, "b": WriterMark(3, B)}


def test_the_marker_is_stored_checked_and_kept_by_every_change() -> None:
    keyring = Keyring(generation=4).with_primary(B, generation=100)
    assert (keyring.primary_region, keyring.generation) == (B, 100)
    assert Keyring.from_json(keyring.to_json()) == keyring
    key = generate_key("ES256", START)
    changed = keyring.replace_keys([key]).with_digest("d").with_restore_hold(True).with_revocation("gone", START)
    assert changed.primary_region == B and changed.generation == 104
    assert changed.signing_view().primary_region is None  # the signer needs no writer
    assert "primary_region" not in Keyring().to_json()  # keyrings no promote touched are stored as before
    for bad in ('"EU"', "1", '""'):
        with pytest.raises(KeyringError, match="primary_region"):
            Keyring.from_json(keyring.to_json().replace(f'"primary_region":"{B}"', f'"primary_region":{bad}'))


class Marks:
    def __init__(self) -> None:
        self.held: dict[str, WriterMark | None] = {}

    def marks(self) -> Mapping[str, WriterMark | None]:
        return dict(self.held)


class World:
    """The old primary (us-east-1): its store, signing view, bucket and revocation list, and what the fence reads."""

    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.store = InMemoryKeyringStore()
        self.signing = InMemoryKeyringStore()
        self.s3 = FakeS3(Faults(random.Random(0), {}))
        self.revocations = MemoryRevocationList()
        self.marks = Marks()
        self.rotator = RotationService(
            self.store, S3Publisher(self.s3, "bucket", SETTINGS), SETTINGS, clock=self.clock.now,
            key_factory=lambda alg, now: generate_key(alg, now), revocations=self.revocations, signing_store=self.signing,
            region=A, writer_marks=self.marks,
        )

    def state(self) -> tuple[str, str, object, frozenset[str]]:
        return self.store.current, self.signing.current, repr(sorted(self.s3.objects.items())), self.revocations.load()


def test_a_superseded_old_primary_writes_nothing_at_all() -> None:
    world = World()
    world.rotator.tick()
    world.clock.advance(timedelta(minutes=5))
    active = world.store.load().keyring.active
    assert active is not None
    # The old primary lost a tombstone from its list (it would repair it) and has a revocation due: it must do neither.
    stored = world.store.load()
    world.store.save(stored.keyring.with_revocation("old-kid", START), stored.version_id)
    before = world.state()
    world.marks.held = {"the keyring secret in eu-west-1": WriterMark(stored.keyring.generation + 1000, B), "s3://other": None}
    for run in (world.rotator.tick, world.rotator.rotate_now, lambda: world.rotator.revoke(active.kid),
                lambda: world.rotator.publish(accept_restore=True)):
        with pytest.raises(WriterSupersededError):
            run()
        assert world.state() == before


def test_step_down_names_the_new_writer_then_the_old_one_writes_nothing() -> None:
    world = World()
    world.rotator.tick()
    generation = world.store.load().keyring.generation
    report = world.rotator.step_down(B)
    assert (report.new_primary, report.generation, report.already) == (B, generation + 1, False)
    assert world.store.load().keyring.primary_region == B
    again = world.rotator.step_down(B)
    assert again.already and again.generation == generation + 1
    before = world.state()
    for operation in (world.rotator.tick, world.rotator.rotate_now, world.rotator.publish):
        with pytest.raises(NotPrimaryRegionError, match=f"names {B} as the writer"):  # is_writer: the keyring's writer decides
            operation()
    quiet = world.rotator.tick(coalesce=True)  # the schedule's tick: the not-the-writer no-op
    assert quiet.skipped and quiet.not_primary
    assert world.state() == before
    with pytest.raises(PromoteRefusedError) as refused:
        world.rotator.step_down("ap-south-1")  # not one of the stack's regions
    assert refused.value.code == "promote_wrong_region"


def test_step_down_is_refused_by_a_region_that_is_not_the_writer() -> None:
    three = Settings.from_mapping({
        "issuer": "https://issuer.example.com", "algorithm": "ES256", "keyring_secret_id": "keyring",
        "primary_region": A, "regions": f"{A},{B},ap-south-1",
    })
    store = InMemoryKeyringStore()
    stored = store.load()
    store.save(stored.keyring.with_primary(B, generation=7), stored.version_id)  # eu-west-1 was promoted
    old = RotationService(store, S3Publisher(FakeS3(Faults(random.Random(0), {})), "bucket", three), three, region=A)
    with pytest.raises(PromoteRefusedError) as refused:
        old.step_down("ap-south-1")
    assert refused.value.code == "not_the_writer"
    with pytest.raises(PromoteRefusedError) as itself:
        old.step_down(A)  # an undo: refused, nothing shows eu-west-1 still holds a replica of this keyring
    assert itself.value.code == "step_down_not_undone"
    assert store.load().keyring.generation == 7


def test_step_down_needs_several_regions() -> None:
    one = Settings.from_mapping({"issuer": "https://issuer.example.com", "algorithm": "ES256", "keyring_secret_id": "keyring"})
    store = InMemoryKeyringStore()
    with pytest.raises(PromoteRefusedError) as refused:
        RotationService(store, S3Publisher(FakeS3(Faults(random.Random(0), {})), "bucket", one), one, region=A).step_down(B)
    assert refused.value.code == "promote_unsupported" and store.load().keyring.primary_region is None


def test_documents_of_a_writer_promoted_during_the_round_put_no_restore_hold() -> None:
    """The fence passed at the round's start; the new writer published before this round's publication: no hold."""
    world = World()
    world.rotator.tick()
    world.clock.advance(timedelta(minutes=5))
    generation = world.store.load().keyring.generation

    class PromotedMeanwhile(Marks):
        def __init__(self, s3: FakeS3) -> None:
            super().__init__()
            self.s3, self.calls = s3, 0

        def marks(self) -> Mapping[str, WriterMark | None]:
            self.calls += 1
            if self.calls == 1:  # the round's first fence: nothing yet; then the new writer publishes
                for stored in self.s3.objects.values():
                    stored["Metadata"] = {**stored["Metadata"], "keyring-generation": str(generation + 1000), "writer-region": B}
                return {}
            return {"s3://bucket": WriterMark(generation + 1000, B)}

    world.marks = PromotedMeanwhile(world.s3)
    world.rotator._writer_marks = world.marks  # the same service, told of the new writer's documents
    before = world.state()
    with pytest.raises(WriterSupersededError):
        world.rotator.publish()
    assert world.state()[:2] == before[:2] and not world.store.load().keyring.restore_hold


def test_step_down_is_refused_under_kms_custody_and_leaves_the_writer() -> None:
    world = World()
    world.rotator.tick()
    with pytest.raises(PromoteRefusedError) as refused:  # no promote could follow: the stack would have no writer
        step_down(world.store, own_region=A, settings_primary=A, target=B, regions=(A, B), marks={}, key_custody="kms")
    assert refused.value.code == "promote_unsupported" and world.store.load().keyring.primary_region is None


def test_a_step_down_is_undone_while_the_target_still_holds_a_replica_of_it() -> None:
    world = World()
    world.rotator.tick()
    stepped = world.rotator.step_down(B)
    world.marks.held = {"the keyring secret in eu-west-1": None}  # unreadable: no evidence it is still a replica
    with pytest.raises(PromoteRefusedError) as refused:
        world.rotator.step_down(A)
    assert refused.value.code == "step_down_not_undone" and world.store.load().keyring.primary_region == B
    world.marks.held = {"the keyring secret in eu-west-1": WriterMark(stepped.generation + 5, B)}  # promoted there since
    with pytest.raises(WriterSupersededError):
        world.rotator.step_down(A)
    world.marks.held = {"the keyring secret in eu-west-1": WriterMark(stepped.generation, B)}  # the step-down, replicated
    undone = world.rotator.step_down(A)
    assert (undone.new_primary, undone.generation, undone.already) == (A, stepped.generation + 1, False)
    assert world.store.load().keyring.primary_region == A
    assert world.rotator.step_down(A).already
    world.rotator.tick()  # the writer again


class ReplicaOf:
    def __init__(self, source: str | None) -> None:
        self.source = source

    def replicated_from(self) -> str | None:
        return self.source

    def stop_replication(self) -> None:
        self.source = None


def test_a_keyring_marker_counts_only_once_the_keyring_is_no_replica() -> None:
    store = InMemoryKeyringStore()
    stored = store.load()
    store.save(stored.keyring.with_primary(B, generation=7), stored.version_id)  # the old primary's step-down, replicated
    secret = ReplicaOf(A)
    secondary = RotationService(store, S3Publisher(FakeS3(Faults(random.Random(0), {})), "bucket", SETTINGS), SETTINGS,
                                key_factory=lambda alg, now: generate_key(alg, now), region=B, keyring_secret=secret)
    with pytest.raises(NotPrimaryRegionError, match="still a replica"):
        secondary.rotate_now()
    quiet = secondary.tick(coalesce=True)  # anyone's {"operation": "tick"}: no round
    assert quiet.skipped and quiet.not_primary and store.load().keyring.generation == 7
    secret.source = None  # promoted: standalone
    secondary.require_primary()
