"""The lifecycle's promise under changing settings, operators and wrong clocks.

A key is published before it signs and stays published until its last token
expires: these tests change the settings between steps, revoke, rotate now
and feed in clocks that are off, and check that the bounds recorded on each
key win over whatever is in force later.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from jwks_rotator.core.errors import ClockSkewError, KeyringLimitError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.lifecycle.bounds import MAX_KEYS, active_key_age, check_clock
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.rules import deletion_time, reconcile, record_publication, revoke, rotate_now
from jwks_rotator.core.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
BASE = Settings(issuer="https://issuer.example.com", algorithm="EdDSA")


def new_key(alg: str, now: datetime) -> KeyRecord:
    return generate_key(alg, now)


def step(keyring: Keyring, now: datetime, settings: Settings = BASE) -> Keyring:
    """One tick as the service runs it: reconcile and publish until nothing changes."""
    for _ in range(8):
        plan = reconcile(keyring, settings, now, new_key)
        published = record_publication(plan.keyring, [k.kid for k in plan.keyring.keys], "digest", now, settings=settings)
        if not plan.changed and not published.changed:
            return keyring
        keyring = published.keyring
    raise AssertionError("the lifecycle did not settle")


def present(keyring: Keyring, kid: str, now: datetime, settings: Settings) -> bool:
    return reconcile(keyring, settings, now, new_key).keyring.get(kid) is not None


# --- retention follows the settings the key signed under ------------------------------------------

def test_lowering_max_token_ttl_does_not_delete_a_key_whose_long_tokens_are_alive():
    long_tokens = BASE.replace(max_token_ttl="24h")
    keyring = step(step(Keyring(), T0, long_tokens), T0 + 7 * DAY, long_tokens)
    [retired] = keyring.in_state(KeyState.RETIRED)
    short_tokens = BASE.replace(max_token_ttl="1h")
    assert present(keyring, retired.kid, retired.retired_at + HOUR + 15 * timedelta(minutes=1), short_tokens)
    last_token_expiry = retired.retired_at + long_tokens.minimum_retention
    assert present(keyring, retired.kid, last_token_expiry - timedelta(seconds=1), short_tokens)
    assert not present(keyring, retired.kid, last_token_expiry, short_tokens)


def test_a_max_token_ttl_raised_while_active_counts_even_if_lowered_before_retirement():
    keyring = step(Keyring(), T0)  # signs under 1h tokens
    keyring = step(keyring, T0 + 3 * DAY, BASE.replace(max_token_ttl="24h"))  # a day of 24h tokens
    keyring = step(keyring, T0 + 4 * DAY, BASE)  # back to 1h
    keyring = step(keyring, T0 + 7 * DAY, BASE)  # rotation: the first key retires under 1h settings
    [retired] = keyring.in_state(KeyState.RETIRED)
    assert deletion_time(retired, BASE) == retired.retired_at + timedelta(hours=24) + BASE.signer_cache_ttl + BASE.clock_skew_leeway


@pytest.mark.parametrize("lowered", [{"signer_cache_ttl": "10s"}, {"clock_skew_leeway": "0s"}, {"retention": ""}])
def test_lowering_cache_ttl_leeway_or_retention_keeps_the_bound_recorded_at_retirement(lowered):
    at_retirement = BASE.replace(signer_cache_ttl="10m", clock_skew_leeway="5m", retention="3d")
    keyring = step(step(Keyring(), T0, at_retirement), T0 + 7 * DAY, at_retirement)
    [retired] = keyring.in_state(KeyState.RETIRED)
    later = at_retirement.replace(**lowered)
    if "retention" not in lowered:
        later = later.replace(retention="")
    assert present(keyring, retired.kid, retired.retired_at + 3 * DAY - timedelta(seconds=1), later)
    assert not present(keyring, retired.kid, retired.retired_at + 3 * DAY, later)


def test_raising_retention_later_keeps_a_key_longer():
    keyring = step(step(Keyring(), T0), T0 + 7 * DAY)
    [retired] = keyring.in_state(KeyState.RETIRED)
    longer = BASE.replace(retention="2d")
    assert deletion_time(retired, longer) == retired.retired_at + 2 * DAY


def test_the_bounds_survive_the_keyring_json():
    long_tokens = BASE.replace(max_token_ttl="24h")
    keyring = step(step(Keyring(), T0, long_tokens), T0 + 7 * DAY, long_tokens)
    again = Keyring.from_json(keyring.to_json())
    [retired] = again.in_state(KeyState.RETIRED)
    assert deletion_time(retired, BASE) == retired.retired_at + long_tokens.minimum_retention


def test_an_old_keyring_without_recorded_bounds_falls_back_to_todays_rule():
    keyring = step(step(Keyring(), T0), T0 + 7 * DAY)
    stripped = keyring.replace_keys(k.with_changes(retain_until=None, max_token_ttl=None, ready_at=None) for k in keyring.keys)
    again = Keyring.from_json(stripped.to_json())
    [retired] = again.in_state(KeyState.RETIRED)
    assert deletion_time(retired, BASE) == retired.retired_at + BASE.effective_retention


# --- activation waits for the lead in force at publication ----------------------------------------

def test_shortening_the_publish_lead_after_publication_does_not_shorten_the_wait():
    keyring = step(Keyring(), T0)
    pending = keyring.in_state(KeyState.PENDING)[0]
    assert pending.ready_at == pending.published_at + BASE.publish_lead
    short_lead = BASE.replace(publish_lead="1d", rotation_period="1d", jwks_max_age="1h", schedule="15m")
    assert reconcile(keyring, short_lead, T0 + DAY, new_key).keyring.active.kid != pending.kid
    assert reconcile(keyring, short_lead, T0 + 2 * DAY, new_key).keyring.active.kid == pending.kid


def test_publication_never_records_a_time_before_the_key_existed():
    keyring = reconcile(Keyring(), BASE, T0 + HOUR, new_key).keyring  # made by a rotator with a right clock
    behind = record_publication(keyring, [k.kid for k in keyring.keys], "d", T0, settings=BASE).keyring  # clock an hour behind
    [key] = behind.keys
    assert key.published_at >= key.created_at
    assert key.ready_at == key.published_at + BASE.publish_lead


# --- revoking the active key hands over to the key verifiers most likely hold ---------------------

def test_revoking_the_active_key_activates_the_longest_published_pending_key_even_before_its_lead():
    keyring = step(Keyring(), T0)
    long_published = keyring.in_state(KeyState.PENDING)[0]
    # an operator's rotate-now 47h later adds a second pending key, published at once
    keyring = rotate_now(keyring, BASE, T0 + 47 * HOUR, new_key).keyring
    keyring = record_publication(keyring, [k.kid for k in keyring.keys], "d2", T0 + 47 * HOUR, settings=BASE).keyring
    revoked = keyring.active.kid
    plan = revoke(keyring, revoked, BASE, T0 + 47 * HOUR, new_key)
    assert plan.keyring.active.kid == long_published.kid
    [activated] = [c for c in plan.changes if c.kind == "activated"]
    assert "published 47h" in activated.reason and "lead cut short" in activated.reason
    # and it stays the active key over the following ticks
    settled = step(plan.keyring, T0 + 47 * HOUR)
    assert settled.active.kid == long_published.kid


def test_revoking_without_a_waived_rival_still_prefers_the_published_key_over_a_fresh_one():
    keyring = step(Keyring(), T0)
    long_published = keyring.in_state(KeyState.PENDING)[0]
    plan = revoke(keyring, keyring.active.kid, BASE, T0 + 47 * HOUR, new_key)
    assert plan.keyring.active.kid == long_published.kid
    assert step(plan.keyring, T0 + 47 * HOUR).active.kid == long_published.kid


def test_revoking_with_a_ready_successor_says_the_lead_was_complete():
    keyring = step(Keyring(), T0)
    plan = revoke(keyring, keyring.active.kid, BASE, T0 + 3 * DAY, new_key)
    [activated] = [c for c in plan.changes if c.kind == "activated"]
    assert "published 3d" in activated.reason and "lead complete" in activated.reason


def test_revoking_with_no_published_pending_key_makes_a_fresh_waived_key():
    keyring = step(Keyring(), T0)
    unpublished = keyring.replace_keys(k.with_changes(published_at=None, ready_at=None) if k.state is KeyState.PENDING else k for k in keyring.keys)
    plan = revoke(unpublished, keyring.active.kid, BASE, T0 + HOUR, new_key)
    assert plan.keyring.active is None
    assert [c.kind for c in plan.changes] == ["revoked", "created"]


def test_revoked_kids_stay_as_tombstones():
    keyring = step(Keyring(), T0)
    kid = keyring.active.kid
    plan = revoke(keyring, kid, BASE, T0 + HOUR, new_key)
    assert plan.keyring.revoked_kids() == {kid}
    assert Keyring.from_json(plan.keyring.to_json()).revoked_kids() == {kid}


# --- wrong clocks --------------------------------------------------------------------------------

def test_a_timestamp_beyond_the_leeway_in_the_future_is_refused():
    keyring = step(Keyring(), T0 + 30 * DAY)  # written by a clock 30 days ahead
    with pytest.raises(ClockSkewError) as info:
        check_clock(keyring, BASE, T0)
    assert info.value.code == "clock_skew_detected"
    check_clock(keyring, BASE, T0 + 30 * DAY - BASE.clock_skew_leeway)  # within the leeway: accepted


def test_plans_never_write_a_time_before_one_already_on_the_key():
    keyring = step(Keyring(), T0)
    ahead = T0 + DAY + timedelta(seconds=30)  # one rotator's clock runs 30 s ahead (within the leeway)
    keyring = rotate_now(keyring, BASE, ahead, new_key).keyring
    keyring = record_publication(keyring, [k.kid for k in keyring.keys], "d2", ahead, settings=BASE).keyring
    old = keyring.active
    after = reconcile(keyring, BASE, T0 + DAY, new_key).keyring  # the other rotator's clock is right
    assert after.active.activated_at >= after.active.published_at
    assert after.get(old.kid).retired_at >= after.get(old.kid).activated_at
    waiting = next(k for k in after.keys if k.state is KeyState.PENDING)
    revoked = revoke(after, after.active.kid, BASE, T0 + DAY, new_key).keyring
    assert revoked.revoked[0].revoked_at >= after.active.activated_at
    assert revoked.active.activated_at >= waiting.created_at


def test_the_active_key_age_is_never_negative():
    keyring = step(Keyring(), T0 + HOUR)
    assert active_key_age(keyring, T0) == timedelta(0)
    assert active_key_age(keyring, T0 + 2 * HOUR) == HOUR


# --- limits ---------------------------------------------------------------------------------------

def test_rotate_now_stops_with_a_typed_error_before_the_keyring_grows_past_its_limit():
    rsa = BASE.replace(algorithm="RS256", max_token_ttl="24h")

    def rsa_key(alg: str, now: datetime) -> KeyRecord:
        return generate_key(alg, now)

    keyring, now = Keyring(), T0

    def grow() -> None:
        nonlocal keyring, now
        for _ in range(40):
            now += timedelta(minutes=1)
            keyring = rotate_now(keyring, rsa, now, rsa_key).keyring
            assert not rotate_now(keyring, rsa, now, rsa_key).changed  # a retry adds nothing
            keyring = record_publication(keyring, [k.kid for k in keyring.keys], "d", now, settings=rsa).keyring
            keyring = reconcile(keyring, rsa, now, rsa_key).keyring
            keyring = record_publication(keyring, [k.kid for k in keyring.keys], "d", now, settings=rsa).keyring
            assert len(keyring.keys) <= MAX_KEYS
            assert len(keyring.to_json().encode()) < 65_536

    with pytest.raises(KeyringLimitError) as info:
        grow()
    assert info.value.code == "keyring_limit_reached"


def test_the_largest_keyring_allowed_fits_a_secret_with_margin():
    from jwks_rotator.core.lifecycle.bounds import MAX_KEYRING_BYTES, MAX_TOMBSTONES

    biggest = generate_key("RS256", T0, rsa_key_size=4096).with_changes(
        published_at=T0, activated_at=T0, retired_at=T0, ready_at=T0, retain_until=T0, max_token_ttl=DAY, lead_waived=True)
    per_key = len(json.dumps(biggest.to_dict(), separators=(",", ":"))) + 1
    per_tombstone = len(json.dumps({"kid": biggest.kid, "revoked_at": T0.isoformat()}, separators=(",", ":"))) + 1
    assert MAX_KEYS * per_key + MAX_TOMBSTONES * per_tombstone + 256 <= MAX_KEYRING_BYTES <= 60_000
