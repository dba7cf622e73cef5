"""The pure lifecycle, step by step, with an injected ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jwks_rotator.core.errors import UnknownKeyError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.rules import next_transition, reconcile, record_publication, revoke, rotate_now
from jwks_rotator.core.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(issuer="https://issuer.example.com", algorithm="ES256")
DAY = timedelta(days=1)


def new_key(alg: str, now: datetime) -> KeyRecord:
    return generate_key(alg, now)


def step(keyring: Keyring, now: datetime, settings: Settings = SETTINGS) -> Keyring:
    """One tick as the service runs it: reconcile and publish until nothing changes."""
    for _ in range(8):
        plan = reconcile(keyring, settings, now, new_key)
        published = record_publication(plan.keyring, [k.kid for k in plan.keyring.keys], "digest", now)
        if not plan.changed and not published.changes:
            return keyring
        keyring = published.keyring
    raise AssertionError("the lifecycle did not settle")


def states(keyring: Keyring) -> list[str]:
    return [k.state.value for k in keyring.publication_order()]


def test_bootstrap_creates_a_waived_key_that_activates_once_published():
    plan = reconcile(Keyring(), SETTINGS, T0, new_key)
    [first] = plan.keyring.keys
    assert first.state is KeyState.PENDING and first.lead_waived
    # not published yet: nothing activates, nothing more is created
    assert not reconcile(plan.keyring, SETTINGS, T0, new_key).changed
    keyring = step(plan.keyring, T0)
    assert states(keyring) == ["active", "pending"]
    assert keyring.active.kid == first.kid


def test_rotation_waits_for_due_and_lead_then_retires_the_old_key():
    keyring = step(Keyring(), T0)
    old, nxt = keyring.active, keyring.in_state(KeyState.PENDING)[0]
    assert not reconcile(keyring, SETTINGS, T0 + 7 * DAY - timedelta(seconds=1), new_key).changed
    keyring = step(keyring, T0 + 7 * DAY)
    assert keyring.active.kid == nxt.kid
    assert keyring.get(old.kid).state is KeyState.RETIRED
    assert keyring.get(old.kid).retired_at == T0 + 7 * DAY
    assert states(keyring) == ["active", "pending", "retired"]


def test_a_pending_key_published_late_waits_for_its_full_lead():
    keyring = step(Keyring(), T0)
    # the next key is dropped and replaced by one published only at day 6
    late = generate_key("ES256", T0 + 6 * DAY).with_changes(published_at=T0 + 6 * DAY)
    keys = [k for k in keyring.keys if k.state is not KeyState.PENDING] + [late]
    keyring = keyring.replace_keys(keys)
    assert reconcile(keyring, SETTINGS, T0 + 7 * DAY, new_key).keyring.active.kid != late.kid
    assert reconcile(keyring, SETTINGS, T0 + 8 * DAY, new_key).keyring.active.kid == late.kid


def test_retired_keys_leave_after_retention_exactly():
    keyring = step(step(Keyring(), T0), T0 + 7 * DAY)
    retired = keyring.in_state(KeyState.RETIRED)[0]
    deadline = retired.retired_at + SETTINGS.effective_retention
    assert reconcile(keyring, SETTINGS, deadline - timedelta(seconds=1), new_key).keyring.get(retired.kid)
    assert reconcile(keyring, SETTINGS, deadline, new_key).keyring.get(retired.kid) is None


def test_reconcile_is_idempotent():
    keyring = step(step(Keyring(), T0), T0 + 7 * DAY)
    assert not reconcile(keyring, SETTINGS, T0 + 7 * DAY, new_key).changed


def test_rotate_now_skips_the_lead_and_is_idempotent_until_it_activates():
    keyring = step(Keyring(), T0)
    old = keyring.active
    plan = rotate_now(keyring, SETTINGS, T0 + DAY, new_key)
    assert not rotate_now(plan.keyring, SETTINGS, T0 + DAY, new_key).changed
    keyring = step(plan.keyring, T0 + DAY)
    assert keyring.active.kid == plan.changes[0].kid
    assert keyring.get(old.kid).state is KeyState.RETIRED


def test_revoking_the_active_key_hands_over_to_a_ready_pending_key():
    keyring = step(Keyring(), T0)
    successor = keyring.in_state(KeyState.PENDING)[0]
    plan = revoke(keyring, keyring.active.kid, SETTINGS, T0 + 3 * DAY, new_key)
    assert plan.keyring.active.kid == successor.kid
    assert len(plan.keyring.keys) == 1


def test_revoking_the_active_key_without_a_published_successor_makes_a_fresh_waived_key():
    keyring = step(Keyring(), T0)
    revoked = keyring.active.kid
    # a published pending key would take over even before its lead (test_lifecycle_bounds); this one is unpublished
    keyring = keyring.replace_keys(k.with_changes(published_at=None, ready_at=None) if k.state is KeyState.PENDING else k for k in keyring.keys)
    plan = revoke(keyring, revoked, SETTINGS, T0 + timedelta(hours=1), new_key)
    assert plan.keyring.active is None and plan.keyring.get(revoked) is None
    fresh = [k for k in plan.keyring.keys if k.lead_waived]
    assert len(fresh) == 1
    keyring = step(plan.keyring, T0 + timedelta(hours=1))
    assert keyring.active.kid == fresh[0].kid


def test_revoking_an_unknown_kid_is_a_typed_error():
    with pytest.raises(UnknownKeyError, match="not in the keyring"):
        revoke(Keyring(), "nope", SETTINGS, T0, new_key)


def test_changing_the_algorithm_replaces_the_pending_key():
    keyring = step(Keyring(), T0)
    eddsa = SETTINGS.replace(algorithm="EdDSA")
    plan = reconcile(keyring, eddsa, T0 + DAY, new_key)
    assert {c.kind for c in plan.changes} == {"deleted", "created"}
    assert plan.keyring.in_state(KeyState.PENDING)[0].alg == "EdDSA"
    assert plan.keyring.active.alg == "ES256"


def test_record_publication_keeps_the_first_time_seen():
    keyring = reconcile(Keyring(), SETTINGS, T0, new_key).keyring
    once = record_publication(keyring, [k.kid for k in keyring.keys], "d1", T0).keyring
    twice = record_publication(once, [k.kid for k in once.keys], "d2", T0 + DAY).keyring
    assert twice.keys[0].published_at == T0 and twice.published_digest == "d2"
    assert not record_publication(twice, [k.kid for k in twice.keys], "d2", T0 + 2 * DAY).changed


def test_an_operation_that_landed_is_not_applied_again_after_a_later_conflict():
    """revoke lands, then the same round loses a race: the retry must not revoke twice (unknown kid)."""
    from jwks_rotator.core.errors import KeyringConflictError
    from jwks_rotator.core.lifecycle.rotation import RotationService
    from jwks_rotator.core.ports import PublishResult
    from tests.simulation import InMemoryKeyringStore

    class RacedOnce(InMemoryKeyringStore):
        saves = 0

        def save(self, keyring, expected_version_id):
            self.saves += 1
            if self.saves == 2:  # the write after the revoke: another rotator got there first
                raise KeyringConflictError("raced")
            return super().save(keyring, expected_version_id)

    class Publisher:
        def publish(self, documents, **options):
            return PublishResult((), None)

    clock = lambda: T0  # noqa: E731
    store = InMemoryKeyringStore()
    RotationService(store, Publisher(), SETTINGS, clock=clock, key_factory=new_key).tick()
    keyring = store.load().keyring
    revoked = keyring.in_state(KeyState.PENDING)[0].kid
    raced = RacedOnce()
    raced.versions, raced.current = store.versions, store.current
    report = RotationService(raced, Publisher(), SETTINGS, clock=clock, key_factory=new_key).revoke(revoked)
    assert report.conflicts == 1 and report.converged
    assert [c.kind for c in report.changes].count("revoked") == 1
    assert raced.load().keyring.get(revoked) is None


# --- next transition (the status view) ---------------------------------------------
def test_next_transition_of_each_state_in_a_steady_keyring():
    keyring = step(step(Keyring(), T0), T0 + DAY)
    active, [pending] = keyring.active, keyring.in_state(KeyState.PENDING)
    assert active is not None and active.activated_at is not None and pending.published_at is not None
    assert next_transition(active, keyring, SETTINGS) == (
        "due (retires when the next key is ready)", active.activated_at + SETTINGS.rotation_period,
    )
    what, when = next_transition(pending, keyring, SETTINGS)
    assert what == "activates"
    assert when == max(pending.published_at + SETTINGS.publish_lead, active.activated_at + SETTINGS.rotation_period)
    later = step(keyring, when)
    assert later.active is not None and later.active.kid == pending.kid  # the transition happens when it says
    [retired] = later.in_state(KeyState.RETIRED)
    assert next_transition(retired, later, SETTINGS) == ("deleted", retired.retired_at + SETTINGS.effective_retention)


def test_a_pending_key_published_late_activates_when_its_lead_ends_not_when_the_active_key_is_due():
    active = generate_key("ES256", T0).with_changes(state=KeyState.ACTIVE, published_at=T0, activated_at=T0)
    late = generate_key("ES256", T0).with_changes(state=KeyState.PENDING, published_at=T0 + 6 * DAY)
    keyring = Keyring(keys=(active, late))
    assert next_transition(late, keyring, SETTINGS) == ("activates", T0 + 6 * DAY + SETTINGS.publish_lead)
    assert T0 + SETTINGS.rotation_period < T0 + 6 * DAY + SETTINGS.publish_lead


def test_next_transition_at_the_next_tick():
    key = generate_key("ES256", T0)
    unpublished = key.with_changes(state=KeyState.PENDING)
    assert next_transition(unpublished, Keyring(keys=(unpublished,)), SETTINGS) == ("published at the next tick", None)
    waived = unpublished.with_changes(published_at=T0, lead_waived=True)
    assert next_transition(waived, Keyring(keys=(waived,)), SETTINGS) == ("activates at the next tick (lead waived)", None)
    published = unpublished.with_changes(published_at=T0)
    assert next_transition(published, Keyring(keys=(published,)), SETTINGS) == ("activates at the next tick (no active key)", None)
    never_activated = key.with_changes(state=KeyState.ACTIVE, published_at=T0)
    assert next_transition(never_activated, Keyring(keys=(never_activated,)), SETTINGS) == ("due at the next tick", None)


def test_a_kid_no_longer_held_is_banned_so_a_restore_cannot_bring_it_back():
    """A key leaked from an older secret version or a backup can still be revoked: it becomes a tombstone (and, through
    the rotation service, goes on the revocation list)."""
    gone = "A" * 43
    plan = revoke(Keyring(), gone, SETTINGS, T0, new_key)
    assert gone in plan.keyring.revoked_kids() and [(c.kind, c.kid) for c in plan.changes] == [("revoked", gone)]
    again = revoke(plan.keyring, gone, SETTINGS, T0, new_key)
    assert not again.changed  # a retried revoke changes nothing
