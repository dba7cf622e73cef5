"""What signing with a KMS key needs on the sign path: algorithm names, the public key check, DER to JWS.

KMS custody keeps each private key inside KMS; the keyring holds its public
JWK and key ARN only. This module is pure (no boto3): the signer calls KMS
through the :class:`~.ports.KeySigner` port and converts the answer here.

* RS256: RSASSA_PKCS1_V1_5_SHA_256 on RSA_2048/3072/4096.
* PS256: RSASSA_PSS_SHA_256 (KMS uses a salt as long as the hash, as RFC 7518 3.5 requires).
* ES256/384/512: ECDSA_SHA_256/384/512 on ECC_NIST_P256/P384/P521. KMS answers a
  DER ``SEQUENCE { r, s }``; JWS wants ``r || s`` at a fixed width of 32, 48 or
  66 bytes each (RFC 7518 3.4), so short integers are padded on the left.
* EdDSA: ED25519_SHA_512 on ECC_NIST_EDWARDS25519, MessageType RAW (not
  ED25519_PH_SHA_512, which is Ed25519ph: JWS verifiers reject it).

KMS signs RAW messages of at most :data:`MAX_RAW_MESSAGE` bytes; a longer
signing input is refused here, before any call.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

from jwks_rotator.core.errors import KeyringError, SigningUnavailableError
from jwks_rotator.core.keys.algorithms import PUBLIC_MEMBERS, get_algorithm

MAX_RAW_MESSAGE = 4096
"""KMS Sign's limit for MessageType RAW, in bytes."""

KMS_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,64}")


@dataclass(frozen=True)
class KmsAlgorithm:
    """How one JWS algorithm maps onto KMS: its signing algorithm, and the half width of an ECDSA signature."""
    jws: str
    signing_algorithm: str
    ecdsa_half: int = 0  # bytes per half of r || s; 0 when the signature is not ECDSA


KMS_ALGORITHMS: dict[str, KmsAlgorithm] = {
    a.jws: a
    for a in (
        KmsAlgorithm("RS256", "RSASSA_PKCS1_V1_5_SHA_256"),
        KmsAlgorithm("PS256", "RSASSA_PSS_SHA_256"),
        KmsAlgorithm("ES256", "ECDSA_SHA_256", 32),
        KmsAlgorithm("ES384", "ECDSA_SHA_384", 48),
        KmsAlgorithm("ES512", "ECDSA_SHA_512", 66),
        KmsAlgorithm("EdDSA", "ED25519_SHA_512"),
    )
}
_EC_KEY_SPECS = {"P-256": "ECC_NIST_P256", "P-384": "ECC_NIST_P384", "P-521": "ECC_NIST_P521"}


def kms_algorithm(alg: str) -> KmsAlgorithm:
    get_algorithm(alg)  # refuses an unknown name
    return KMS_ALGORITHMS[alg]


def kms_key_spec(alg: str, rsa_key_size: int) -> str:
    """The KMS KeySpec of a new key for ``alg``."""
    algorithm = get_algorithm(alg)
    if algorithm.kty == "RSA":
        return f"RSA_{rsa_key_size}"
    if algorithm.kty == "EC":
        assert algorithm.crv is not None
        return _EC_KEY_SPECS[algorithm.crv]
    return "ECC_NIST_EDWARDS25519"


def der_to_jose(der: bytes, half: int) -> bytes:
    """A DER ECDSA signature as the JWS ``r || s``, each half left-padded to ``half`` bytes (RFC 7518 3.4).

    Anything that is not one DER sequence of two positive integers that fit
    ``half`` bytes is refused: a vault answering garbage must not yield a token.
    """
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        raise SigningUnavailableError("the key vault answered a malformed ECDSA signature") from None
    limit = 1 << (8 * half)
    if not (0 < r < limit and 0 < s < limit):
        raise SigningUnavailableError("the key vault answered an ECDSA signature of the wrong size")
    return r.to_bytes(half, "big") + s.to_bytes(half, "big")


def signature_bytes(alg: str, public_jwk: Mapping[str, str]) -> int:
    """How long a JWS signature of this key is, without signing (KMS bills every probe)."""
    kms = kms_algorithm(alg)
    if kms.ecdsa_half:
        return 2 * kms.ecdsa_half
    if public_jwk.get("kty") == "RSA":
        return (_b64url_int(public_jwk.get("n", "")).bit_length() + 7) // 8
    return 64  # Ed25519


def public_jwk_from_der(der: bytes, alg: str) -> dict[str, str]:
    """The public JWK (members allow-listed per key type) of a DER SubjectPublicKeyInfo, as KMS GetPublicKey answers."""
    try:
        key = load_der_public_key(der)
    except (ValueError, TypeError):
        raise KeyringError("the key vault answered a malformed public key") from None
    algorithm = get_algorithm(alg)
    if isinstance(key, rsa.RSAPublicKey) and algorithm.kty == "RSA":
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _b64_int(numbers.n), "e": _b64_int(numbers.e)}
    if isinstance(key, ec.EllipticCurvePublicKey) and algorithm.kty == "EC":
        half = kms_algorithm(alg).ecdsa_half
        point = key.public_numbers()
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(key.curve.name)
        if crv is None or crv != algorithm.crv:
            raise KeyringError(f"the key vault's public key is not on the curve of {alg}")
        return {"kty": "EC", "crv": crv, "x": _b64(point.x.to_bytes(half, "big")), "y": _b64(point.y.to_bytes(half, "big"))}
    if isinstance(key, ed25519.Ed25519PublicKey) and algorithm.kty == "OKP":
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64(key.public_bytes_raw())}
    raise KeyringError(f"the key vault's public key does not fit algorithm {alg}")


def check_public_jwk(public_jwk: Mapping[str, str], alg: str) -> None:
    """Refuse a stored public key whose type or curve does not fit ``alg``, that carries other members, or is unusable."""
    algorithm = get_algorithm(alg)
    kty = public_jwk.get("kty")
    if kty != algorithm.kty or (algorithm.crv is not None and public_jwk.get("crv") != algorithm.crv):
        raise KeyringError(f"public key type or curve does not match algorithm {algorithm.name}")
    if set(public_jwk) != set(PUBLIC_MEMBERS[algorithm.kty]):
        raise KeyringError(f"a KMS key record's public key holds exactly {', '.join(PUBLIC_MEMBERS[algorithm.kty])}")

    try:
        if kty == "RSA":
            if _b64url_int(public_jwk["n"]).bit_length() < 2048 or _b64url_int(public_jwk["e"]) < 3:
                raise KeyringError("RSA public key numbers are out of range")
        elif kty == "EC":
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[public_jwk["crv"]]
            ec.EllipticCurvePublicNumbers(_b64url_int(public_jwk["x"]), _b64url_int(public_jwk["y"]), curve).public_key()
        elif len(_b64url_bytes(public_jwk["x"])) != 32:
            raise KeyringError("Ed25519 public key is not 32 bytes")
    except (ValueError, KeyError):
        raise KeyringError("public key members do not form a key") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64_int(value: int) -> str:
    return _b64(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _b64url_bytes(text: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_int(text: str) -> int:
    return int.from_bytes(_b64url_bytes(text), "big")
