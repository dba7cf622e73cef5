"""Stored keys are checked when a keyring is read, and errors never repeat what was stored.

Every algorithm's private and public halves must match (Ed25519 included),
RSA's factors and CRT values must agree, the kid must be the RFC 7638
thumbprint and flags must be JSON booleans. Messages name the field, never
the value: a private ``d`` pasted into the wrong field must not reach a log.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK

from jwks_rotator.core.errors import KeyringError
from jwks_rotator.core.keys.algorithms import algorithm_names
from jwks_rotator.core.keys.keyring import KEYRING_FORMAT, Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState, load_private_key, thumbprint
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator_testkit.hypothesis_profiles import examples

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = {alg: generate_key(alg, NOW) for alg in algorithm_names()}
OTHER = {alg: generate_key(alg, NOW) for alg in algorithm_names()}


def stored(key: KeyRecord, **changes: Any) -> dict[str, Any]:
    record = key.with_changes(state=KeyState.PENDING).to_dict()
    jwk_changes = changes.pop("private_jwk", {})
    record["private_jwk"] = {**record["private_jwk"], **jwk_changes}
    record.update(changes)
    return record


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


@pytest.mark.parametrize("alg", algorithm_names())
def test_a_well_formed_key_loads_and_its_kid_is_the_thumbprint(alg):
    key = KEYS[alg]
    assert KeyRecord.from_dict(stored(key)).kid == key.kid
    assert thumbprint(key.public_jwk()) == JWK(**key.public_jwk()).thumbprint() == key.kid


@pytest.mark.parametrize("alg", algorithm_names())
def test_a_public_half_from_another_key_is_refused(alg):
    key, other = KEYS[alg], OTHER[alg]
    public = {m: other.private_jwk[m] for m in ("n", "e", "x", "y") if m in other.private_jwk}
    record = stored(key, private_jwk=public, kid=other.kid)  # kid matches the swapped public half
    with pytest.raises(KeyringError, match="do not match"):
        KeyRecord.from_dict(record)
    with pytest.raises(KeyringError):
        load_private_key(record["private_jwk"])


@pytest.mark.parametrize("alg", algorithm_names())
def test_a_kid_that_is_not_the_thumbprint_is_refused(alg):
    with pytest.raises(KeyringError, match="thumbprint"):
        KeyRecord.from_dict(stored(KEYS[alg], kid=OTHER[alg].kid))


@pytest.mark.parametrize("member", ["dp", "dq", "qi", "p"])
def test_rsa_factors_and_crt_values_must_agree(member):
    key = KEYS["RS256"]
    wrong = _b64(_int(key.private_jwk[member]) + 2)
    with pytest.raises(KeyringError, match="RSA"):
        KeyRecord.from_dict(stored(key, private_jwk={member: wrong}))
    with pytest.raises(KeyringError):
        load_private_key({**key.private_jwk, member: wrong})


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None, [], {}])
def test_flags_must_be_json_booleans(value):
    with pytest.raises(KeyringError, match="lead_waived"):
        KeyRecord.from_dict(stored(KEYS["ES256"], lead_waived=value))


def test_a_private_scalar_pasted_into_a_field_is_never_echoed():
    key = KEYS["ES256"]
    secret = key.private_jwk["d"]
    for field in ("kid", "alg", "state", "created_at", "published_at", "lead_waived", "ready_at", "retain_until", "max_token_ttl_seconds"):
        with pytest.raises(KeyringError) as info:
            KeyRecord.from_dict(stored(key, **{field: secret}))
        assert secret not in str(info.value), field
        assert field in str(info.value) or "kid" in str(info.value)
    for member in ("kty", "crv", "x", "y"):
        with pytest.raises(KeyringError) as info:
            KeyRecord.from_dict(stored(key, private_jwk={member: secret}))
        assert secret not in str(info.value), member


# --- property: nothing from the input reaches an error message ------------------------------------

SECRET_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=10, max_size=60).map(
    lambda s: "Zq" + s
)
FIELDS = ("kid", "alg", "state", "created_at", "published_at", "activated_at", "retired_at", "lead_waived",
          "ready_at", "retain_until", "max_token_ttl_seconds", "private_jwk")
JWK_MEMBERS = ("kty", "crv", "n", "e", "x", "y", "d", "p", "q", "dp", "dq", "qi")


@st.composite
def damaged_records(draw: st.DrawFn) -> dict[str, Any]:
    alg = draw(st.sampled_from(algorithm_names()))
    record = stored(KEYS[alg])
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            record[draw(st.sampled_from(FIELDS))] = draw(SECRET_TEXT)
        elif isinstance(record["private_jwk"], dict):
            record["private_jwk"][draw(st.sampled_from(JWK_MEMBERS))] = draw(SECRET_TEXT)
    return record


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@hypothesis_settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(damaged_records(), min_size=1, max_size=3), st.one_of(st.none(), SECRET_TEXT))
def test_no_error_from_parsing_a_keyring_repeats_a_stored_value(records, digest):
    document = {"format": KEYRING_FORMAT, "generation": 1, "keys": records, "published_digest": digest}
    try:
        Keyring.from_json(json.dumps(document))
    except KeyringError as exc:
        message = str(exc)
        leaked = [s for s in _strings(records) if len(s) >= 8 and s in message]
        assert not leaked, f"error message repeats stored value(s): {message}"
    else:
        pytest.fail("a damaged keyring loaded")
