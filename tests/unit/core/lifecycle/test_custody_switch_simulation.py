"""Property test: switching key-custody on a running stack breaks no token in flight.

Random steps over simulated days (the real rotation service and signer, the
in-memory store and bucket, the eventually consistent KMS double of
``tests/kms_doubles.py``): ticks, time passing, custody switched between
``secrets-manager`` and ``kms``, tokens issued with random lifetimes. After
every step each unexpired token verifies against the published JWKS; new keys
follow the custody in force when they were made, and keys made earlier keep
theirs until they are deleted (a KMS key then scheduled for deletion).
"""

from __future__ import annotations

from datetime import timedelta

import jwt
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jwks_rotator.core.errors import SigningUnavailableError
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator_testkit.hypothesis_profiles import examples
from tests.kms_world import ISSUER, KmsWorld, kms_settings

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.sampled_from([1, 4, 12, 24, 36])),  # hours of ticks
        st.tuples(st.just("switch"), st.sampled_from(["kms", "secrets-manager"])),
        st.tuples(st.just("issue"), st.sampled_from([60, 900, 3600])),
    ),
    min_size=5, max_size=40,
)


@hypothesis_settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, start=st.sampled_from(["kms", "secrets-manager"]), delay=st.floats(0.0, 8.0))
def test_no_token_in_flight_breaks_when_custody_switches(steps: list[tuple[str, object]], start: str, delay: float) -> None:
    world = KmsWorld(kms_settings(key_custody=start, rotation_period="2d", publish_lead="12h", jwks_max_age="1h"), delay=delay)
    world.run_until_active()
    signer = world.signer()
    in_flight: list[tuple[str, int]] = []  # (token, exp)
    custody_of: dict[str, str] = {}
    last_custody, last_switch = start, world.clock.now()
    for action, value in steps:
        if action == "wait":
            world.tick_for(timedelta(hours=int(value)))  # type: ignore[call-overload]
        elif action == "switch":
            world.reconfigure(key_custody=value)
            last_custody, last_switch = str(value), world.clock.now()
            # the signer is not restarted: custody is per key, read from each record
        else:
            try:
                issued = signer.issue({"sub": "s", "aud": "a", "ttl": value})
            except SigningUnavailableError:
                continue  # inside a hand-over (seconds): the caller retries
            in_flight.append((issued.token, issued.expires_at))
        keyring = world.store.load().keyring
        for record in keyring.keys:
            custody_of.setdefault(record.kid, record.custody)
            assert record.custody == custody_of[record.kid], "a key changed custody"
        jwks = {k["kid"]: k for k in world.published_jwks()["keys"]}
        now = world.clock.unix()
        for token, exp in in_flight:
            if exp <= now:
                continue
            kid = jwt.get_unverified_header(token)["kid"]
            assert kid in jwks, "a key left the JWKS while its token was live"
            jwt.decode(token, jwt.PyJWK(jwks[kid]).key, algorithms=["ES256"], audience="a", issuer=ISSUER,
                       options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
        in_flight = [(t, e) for t, e in in_flight if e > now]
    # Keys made after the last switch follow it; every KMS key gone from the keyring is scheduled for deletion.
    keyring = world.store.load().keyring
    for record in keyring.keys:
        if record.created_at > last_switch:
            assert record.custody == last_custody
    recorded = {k.kms_key_arn for k in keyring.keys}
    for arn, key in world.vault.keys.items():
        if arn not in recorded:
            assert key.state in ("PendingDeletion", "Disabled")
        elif key.state == "Enabled":
            assert keyring.active is not None and keyring.active.kms_key_arn == arn
    assert sum(k.state is KeyState.ACTIVE for k in keyring.keys) == 1
