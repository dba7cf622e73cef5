"""Checks on stored key material: the halves match, RSA's numbers agree, the kid is the thumbprint.

Run whenever a keyring is read (by the rotator and by the signer), so they
are cheap: RSA is checked with a few big-integer operations instead of
``cryptography``'s primality-based validation, EC and Ed25519 by deriving
the public half from the private one. Messages name the member that is
wrong, never its value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping

import cryptography.hazmat.backends.openssl.backend  # noqa: F401  # what ec.derive_private_key imports on its first call: loaded with this module
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from jwks_rotator.core.errors import KeyringError
from jwks_rotator.core.keys.algorithms import get_algorithm

THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
PRIVATE_REQUIRED: dict[str, tuple[str, ...]] = {
    "RSA": ("n", "e", "d", "p", "q", "dp", "dq", "qi"),
    "EC": ("crv", "x", "y", "d"),
    "OKP": ("crv", "x", "d"),
}
EC_CURVES = ("P-256", "P-384", "P-521")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def b64url_bytes(text: str, member: str) -> bytes:
    """Decode one unpadded base64url member; anything else is refused naming the member."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise KeyringError(f"private key member {member!r} is not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_int(text: str, member: str) -> int:
    return int.from_bytes(b64url_bytes(text, member), "big")


def thumbprint(public_jwk: Mapping[str, str]) -> str:
    """The RFC 7638 SHA-256 thumbprint: the required members, sorted, compact JSON, base64url."""
    members = THUMBPRINT_MEMBERS.get(str(public_jwk.get("kty")))
    if members is None:
        raise KeyringError("key type has no thumbprint (only RSA, EC, OKP)")
    canonical = json.dumps({m: public_jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_private_jwk(private_jwk: Mapping[str, str], alg: str, kid: str) -> None:
    """Refuse a stored key whose type, members, halves or kid do not agree with each other and ``alg``."""
    algorithm = get_algorithm(alg)
    kty = private_jwk.get("kty")
    if kty != algorithm.kty or (algorithm.crv is not None and private_jwk.get("crv") != algorithm.crv):
        raise KeyringError(f"private key type or curve does not match algorithm {algorithm.name}")
    missing = [m for m in PRIVATE_REQUIRED[algorithm.kty] if not isinstance(private_jwk.get(m), str) or not private_jwk.get(m)]
    if missing:
        raise KeyringError(f"private key lacks member(s) {', '.join(missing)}")
    if set(private_jwk) - {"kty", *PRIVATE_REQUIRED[algorithm.kty]}:
        raise KeyringError(f"private key has members other than kty, {', '.join(PRIVATE_REQUIRED[algorithm.kty])}")
    if thumbprint(private_jwk) != kid:
        raise KeyringError("'kid' is not the RFC 7638 thumbprint of the key's public members")
    check_halves(private_jwk)


def check_halves(private_jwk: Mapping[str, str]) -> None:
    """The public members are those of the private key (RSA: factors and CRT values agree)."""
    kty = private_jwk.get("kty")
    if kty == "RSA":
        check_rsa_numbers(private_jwk)
    elif kty == "EC":
        ec_private_key(private_jwk)
    elif kty == "OKP":
        ed25519_private_key(private_jwk)
    else:
        raise KeyringError("private key type is not supported (only RSA, EC, OKP)")


def check_rsa_numbers(jwk: Mapping[str, str]) -> tuple[int, ...]:
    """n = p*q, dp = d mod (p-1), dq = d mod (q-1), qi = q^-1 mod p and e*dp = 1 mod (p-1): the numbers of one key."""
    n, e, d, p, q, dp, dq, qi = (b64url_int(jwk[m], m) for m in ("n", "e", "d", "p", "q", "dp", "dq", "qi"))
    if p < 3 or q < 3 or e < 3 or e % 2 == 0 or n.bit_length() < 2048:
        raise KeyringError("RSA key numbers are out of range")
    if p * q != n:
        raise KeyringError("RSA key: the public modulus and the private factors do not match")
    if d % (p - 1) != dp or d % (q - 1) != dq or (qi * q) % p != 1 or (e * dp) % (p - 1) != 1 or (e * dq) % (q - 1) != 1:
        raise KeyringError("RSA key: the private exponent and its CRT values do not match")
    return n, e, d, p, q, dp, dq, qi


def ec_private_key(jwk: Mapping[str, str]) -> ec.EllipticCurvePrivateKey:
    """The EC private key, after checking its public point is the one derived from ``d``."""
    curves: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
    curve = curves.get(jwk.get("crv", ""))
    if curve is None:
        raise KeyringError("EC key: curve is not supported")
    try:
        key = ec.derive_private_key(b64url_int(jwk["d"], "d"), curve)
    except ValueError:
        raise KeyringError("EC key: private scalar is out of range") from None
    public = key.public_key().public_numbers()
    if (public.x, public.y) != (b64url_int(jwk["x"], "x"), b64url_int(jwk["y"], "y")):
        raise KeyringError("EC key: the public point and the private scalar do not match")
    return key


def ed25519_private_key(jwk: Mapping[str, str]) -> ed25519.Ed25519PrivateKey:
    """The Ed25519 private key, after checking its public ``x`` is the one derived from ``d``."""
    if jwk.get("crv") != "Ed25519":
        raise KeyringError("OKP key: curve is not supported (only Ed25519)")
    raw = b64url_bytes(jwk["d"], "d")
    if len(raw) != 32:
        raise KeyringError("Ed25519 key: private key is not 32 bytes")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
    if key.public_key().public_bytes_raw() != b64url_bytes(jwk["x"], "x"):
        raise KeyringError("Ed25519 key: the public x and the private key do not match")
    return key
