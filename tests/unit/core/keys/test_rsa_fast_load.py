"""RSA keys load without cryptography's primality checks; cheap checks and a verified first signature stand in for them.

A key whose numbers agree with each other (n = p*q, the CRT values, e*d = 1
mod lambda) but that is not a working RSA key (a composite factor) passes
the number checks and loads unvalidated, so the signer proves every loaded
key by verifying its first signature under the public half, and refuses the
key with a typed error when it fails.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jwks_rotator.core.errors import KeyringError, SigningUnavailableError
from jwks_rotator.core.issuance.signer import TokenSigner, make_signing_key
from jwks_rotator.core.keys.algorithms import get_algorithm, signature_verifies
from jwks_rotator.core.keys.checks import check_rsa_numbers, thumbprint
from jwks_rotator.core.keys.records import KeyRecord, KeyState, load_private_key
from tests.sign_support import InMemoryKeyringReader, active_key, keyring_json, settings

E = 65537


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _primes(bits: int) -> tuple[int, int]:
    numbers = rsa.generate_private_key(public_exponent=E, key_size=bits).private_numbers()
    return numbers.p, numbers.q


def composite_factor_jwk() -> dict[str, str]:
    """An RSA private JWK whose numbers all agree but whose p is the product of two primes: not a usable key."""
    while True:
        p1, p2 = _primes(1024)  # two 512-bit primes
        p = p1 * p2
        q = _primes(2048)[0]  # a 1024-bit prime
        n = p * q
        if n.bit_length() < 2048 or math.gcd(E, p - 1) != 1 or math.gcd(E, q - 1) != 1:
            continue
        d = pow(E, -1, math.lcm(p - 1, q - 1))
        numbers = {"n": n, "e": E, "d": d, "p": p, "q": q, "dp": d % (p - 1), "dq": d % (q - 1), "qi": pow(q, -1, p)}
        return {"kty": "RSA", **{name: _b64(value) for name, value in numbers.items()}}


@pytest.fixture(scope="module")
def broken_jwk() -> dict[str, str]:
    return composite_factor_jwk()


def broken_record(jwk: dict[str, str]) -> KeyRecord:
    now = datetime.now(UTC)
    stored = {
        "kid": thumbprint(jwk), "alg": "RS256", "state": "active", "created_at": (now - timedelta(hours=2)).isoformat(),
        "published_at": (now - timedelta(hours=1)).isoformat(), "activated_at": (now - timedelta(minutes=5)).isoformat(),
        "private_jwk": jwk,
    }
    return KeyRecord.from_dict(stored)  # the stored-record checks (numbers, kid) pass


def test_a_key_with_a_composite_factor_passes_the_number_checks_and_loads_unvalidated(broken_jwk: dict[str, str]) -> None:
    check_rsa_numbers(broken_jwk)  # n = p*q, dp, dq, qi and e*d all agree
    n, e, d, p, q, dp, dq, qi = (int.from_bytes(base64.urlsafe_b64decode(broken_jwk[m] + "=="), "big")
                                 for m in ("n", "e", "d", "p", "q", "dp", "dq", "qi"))
    with pytest.raises(ValueError, match="Invalid private key"):  # cryptography's validation (what the fast load skips) would catch it, at ~40 ms a key
        rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n)).private_key()
    assert isinstance(load_private_key(broken_jwk), rsa.RSAPrivateKey)


def test_the_signer_refuses_a_key_whose_first_signature_does_not_verify(broken_jwk: dict[str, str]) -> None:
    record = broken_record(broken_jwk)
    assert record.state is KeyState.ACTIVE
    with pytest.raises(KeyringError, match="first signature does not verify") as caught:
        make_signing_key(record, 86400.0)
    assert caught.value.code == "invalid_keyring"
    for member in ("d", "p", "q", "dp", "dq", "qi"):
        assert broken_jwk[member] not in caught.value.message


def test_a_keyring_whose_active_key_fails_its_first_signature_signs_nothing(broken_jwk: dict[str, str]) -> None:
    record = broken_record(broken_jwk)
    signer = TokenSigner(settings(algorithm="RS256"), InMemoryKeyringReader(keyring_json(record)))
    with pytest.raises(SigningUnavailableError, match="cannot be loaded"):
        signer.issue({"sub": "u", "aud": "orders-api"})


@pytest.mark.parametrize("member", ["n", "e", "d", "p", "q", "dp", "dq", "qi"])
def test_every_corrupted_rsa_number_is_refused_at_load(member: str) -> None:
    jwk = dict(active_key("RS256").private_jwk)
    value = int.from_bytes(base64.urlsafe_b64decode(jwk[member] + "=="), "big")
    jwk[member] = _b64(value + 2)
    with pytest.raises(KeyringError, match="RSA key"):
        load_private_key(jwk)


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"])
def test_a_good_key_signs_and_its_signature_verifies_only_over_the_data_signed(alg: str) -> None:
    record = active_key(alg)
    key = make_signing_key(record, 86400.0)
    private = load_private_key(record.private_jwk)
    signature = get_algorithm(alg).sign(private, b"data")
    assert signature_verifies(alg, private.public_key(), b"data", signature)
    assert not signature_verifies(alg, private.public_key(), b"other data", signature)
    assert key.kid == record.kid
