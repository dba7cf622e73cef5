"""Helpers for the interop suite: hand-made JWS tokens (the verifiers are the testing kit's).

Nothing here uses the product's signer. Tokens are assembled from base64url
pieces and signed with ``cryptography`` (or ``hmac``) directly, so a bad
token is bad for exactly the reason its test names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwcrypto import jwk as jwcrypto_jwk

ALGORITHMS = ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")
NODE_DIR = Path(__file__).resolve().parent / "node"

# --- base64url and JWS assembly -----------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def split_token(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Header, claims and signature of a compact JWS, unverified."""
    header, payload, signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload)), b64url_decode(signature)


_EC_SIZES = {"ES256": 32, "ES384": 48, "ES512": 66}
_HASHES = {"RS256": hashes.SHA256, "PS256": hashes.SHA256, "ES256": hashes.SHA256, "ES384": hashes.SHA384, "ES512": hashes.SHA512}


def raw_signature(alg: str, private_key: Any, signing_input: bytes) -> bytes:
    """An RFC 7518 signature made with ``cryptography`` alone."""
    if alg == "RS256":
        return private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        return private_key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    if alg in _EC_SIZES:
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(_HASHES[alg]())))
        size = _EC_SIZES[alg]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "EdDSA":
        return private_key.sign(signing_input)
    raise ValueError(f"no hand signer for {alg}")


def sign_compact(header: Mapping[str, Any], claims: Mapping[str, Any], alg: str, private_key: Any) -> str:
    """A compact JWS over ``header``/``claims`` signed with ``private_key`` for ``alg``."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    return f"{signing_input}.{b64url(raw_signature(alg, private_key, signing_input.encode('ascii')))}"


def hs256_compact(header: Mapping[str, Any], claims: Mapping[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def unsigned_compact(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return f"{b64url_json(header)}.{b64url_json(claims)}."


def private_key_from_jwk(private_jwk: Mapping[str, str]) -> Any:
    """A ``cryptography`` private key from a stored private JWK (via jwcrypto, not the product)."""
    return jwcrypto_jwk.JWK(**dict(private_jwk)).get_op_key("sign")


def fresh_private_key(alg: str) -> Any:
    """A new key of the type ``alg`` signs with, unrelated to any published key."""
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg in _EC_SIZES:
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
        return ec.generate_private_key(curve)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


def thumbprint_kid(private_key: Any) -> str:
    """RFC 7638 SHA-256 thumbprint: the same kid format the product uses."""
    return jwcrypto_jwk.JWK.from_pyca(private_key.public_key()).thumbprint()


def public_pem(public_jwk: Mapping[str, str]) -> bytes:
    return jwcrypto_jwk.JWK(**dict(public_jwk)).export_to_pem()
