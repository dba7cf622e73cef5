"""The registry of supported JWS algorithms: key generation and signing.

Signing uses ``cryptography`` directly (the hot path of the signer); the
registry is the allow-list every caller goes through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from jwks_rotator.core.errors import UnsupportedAlgorithmError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

RSA_KEY_SIZES = (2048, 3072, 4096)

PUBLIC_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("kty", "n", "e"),
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
}
"""The members of a public JWK per key type: the allow-list a public key is built from and checked against."""


@dataclass(frozen=True)
class Algorithm:
    """One JWS algorithm: its key type and how it makes keys and signatures.

    ``sign`` takes a key of this algorithm's ``kty``/``crv`` only (the signer
    and the keyring check that pairing before a key is used); the per-family
    signers below cast to their key type on that basis.
    """
    name: str
    kty: str
    crv: str | None
    generate: Callable[[int], PrivateKey]
    sign: Callable[[PrivateKey, bytes], bytes]


def _rsa_generate(size: int) -> PrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def _ec_generate(curve: ec.EllipticCurve) -> Callable[[int], PrivateKey]:
    return lambda _size: ec.generate_private_key(curve)


def _pkcs1(hash_alg: hashes.HashAlgorithm) -> Callable[[PrivateKey, bytes], bytes]:
    pad = padding.PKCS1v15()
    return lambda key, data: cast(rsa.RSAPrivateKey, key).sign(data, pad, hash_alg)


def _pss(hash_alg: hashes.HashAlgorithm) -> Callable[[PrivateKey, bytes], bytes]:
    # RFC 7518 3.5: the salt is as long as the digest.
    pad = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
    return lambda key, data: cast(rsa.RSAPrivateKey, key).sign(data, pad, hash_alg)


def _ecdsa(hash_alg: hashes.HashAlgorithm, size: int) -> Callable[[PrivateKey, bytes], bytes]:
    # ec.ECDSA() imports cryptography's whole OpenSSL backend (ciphers and modes included, ~9 ms): the scheme is made
    # at this algorithm's first signature, so a process that signs with another algorithm never pays for it.
    schemes: list[ec.ECDSA] = []

    def sign(key: PrivateKey, data: bytes) -> bytes:
        if not schemes:
            schemes.append(ec.ECDSA(hash_alg))
        # JWS wants the fixed-size R || S concatenation, not DER (RFC 7518 3.4).
        r, s = decode_dss_signature(cast(ec.EllipticCurvePrivateKey, key).sign(data, schemes[0]))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return sign


def _eddsa(key: PrivateKey, data: bytes) -> bytes:
    return cast(ed25519.Ed25519PrivateKey, key).sign(data)


_REGISTRY: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("RS256", "RSA", None, _rsa_generate, _pkcs1(hashes.SHA256())),
        Algorithm("PS256", "RSA", None, _rsa_generate, _pss(hashes.SHA256())),
        Algorithm("ES256", "EC", "P-256", _ec_generate(ec.SECP256R1()), _ecdsa(hashes.SHA256(), 32)),
        Algorithm("ES384", "EC", "P-384", _ec_generate(ec.SECP384R1()), _ecdsa(hashes.SHA384(), 48)),
        Algorithm("ES512", "EC", "P-521", _ec_generate(ec.SECP521R1()), _ecdsa(hashes.SHA512(), 66)),
        Algorithm("EdDSA", "OKP", "Ed25519", lambda _size: ed25519.Ed25519PrivateKey.generate(), _eddsa),
    )
}


def algorithm_names() -> tuple[str, ...]:
    """Every supported algorithm name, in registry order."""
    return tuple(_REGISTRY)


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm called ``name``; anything else is refused."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnsupportedAlgorithmError(
            f"algorithm {name!r} is not supported; choose one of {', '.join(_REGISTRY)}"
        ) from None


_HASHES: dict[str, hashes.HashAlgorithm] = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def signature_verifies(name: str, public_key: PublicKey, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (in JWS form: r || s for ECDSA) over ``data`` verifies under ``public_key`` with algorithm ``name``.

    How a key is proven before it signs a token: an RSA key loaded without
    ``cryptography``'s primality checks (see :func:`.records.load_private_key`)
    whose numbers passed the cheap consistency checks must also produce a
    signature its public half accepts.
    """
    algorithm = get_algorithm(name)
    digest = _HASHES.get(name[-3:])
    try:
        if algorithm.kty == "RSA" and isinstance(public_key, rsa.RSAPublicKey) and digest is not None:
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15() if name.startswith("RS") else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            )
            public_key.verify(signature, data, pad, digest)
        elif algorithm.kty == "EC" and isinstance(public_key, ec.EllipticCurvePublicKey) and digest is not None:
            half = len(signature) // 2
            der = encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))
            public_key.verify(der, data, ec.ECDSA(digest))
        elif algorithm.kty == "OKP" and isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True
