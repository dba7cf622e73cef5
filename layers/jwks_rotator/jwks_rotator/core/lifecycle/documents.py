"""The public documents: the JWKS (RFC 7517) and the OIDC discovery document.

Both are built from the keyring, checked to hold public members only, and
serialised deterministically so that "changed" means "different bytes".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jwks_rotator.core.errors import UnsafeDocumentError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import PRIVATE_MEMBERS, PUBLIC_MEMBERS
from jwks_rotator.core.settings import Settings

JWKS_PATH = ".well-known/jwks.json"
DISCOVERY_PATH = ".well-known/openid-configuration"
_REQUIRED_MEMBERS = ("kid", "kty", "alg", "use")


@dataclass(frozen=True)
class PublicDocuments:
    """The bytes to publish, keyed by path below the issuer, and what they hold."""

    files: Mapping[str, bytes]
    kids: tuple[str, ...]
    digest: str


def serialize(document: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the same document always gives the same bytes."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode("ascii")


def build_jwks(keyring: Keyring) -> dict[str, Any]:
    """Every pending, active and retired key's public JWK, active first."""
    document = {"keys": [key.public_jwk() for key in keyring.publication_order()]}
    check_jwks(document)
    return document


def check_jwks(document: Mapping[str, Any]) -> None:
    """Refuse a JWKS with private or symmetric members, duplicate kids or missing members."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise UnsafeDocumentError("JWKS refused: 'keys' is not a list")
    seen: set[str] = set()
    for jwk in keys:
        if not isinstance(jwk, Mapping):
            raise UnsafeDocumentError("JWKS refused: a key is not an object")
        kid = str(jwk.get("kid", "?"))
        leaked = sorted(PRIVATE_MEMBERS.intersection(jwk))
        if leaked:
            raise UnsafeDocumentError(f"JWKS refused: key {kid} carries private member(s) {', '.join(leaked)}")
        if jwk.get("kty") not in PUBLIC_MEMBERS:
            raise UnsafeDocumentError(f"JWKS refused: key {kid} has key type {jwk.get('kty')!r} (only RSA, EC, OKP)")
        missing = [m for m in (*_REQUIRED_MEMBERS, *PUBLIC_MEMBERS[str(jwk['kty'])]) if not jwk.get(m)]
        if missing:
            raise UnsafeDocumentError(f"JWKS refused: key {kid} lacks {', '.join(missing)}")
        if jwk.get("use") != "sig":
            raise UnsafeDocumentError(f"JWKS refused: key {kid} has use {jwk.get('use')!r}, expected 'sig'")
        if kid in seen:
            raise UnsafeDocumentError(f"JWKS refused: kid {kid} appears twice")
        seen.add(kid)


def build_discovery(settings: Settings, keyring: Keyring) -> dict[str, Any]:
    """The OpenID discovery document: issuer, jwks_uri and the algorithms in use."""
    settings.require("issuer")
    algorithms = sorted({settings.algorithm, *(k.alg for k in keyring.keys)})
    return {
        "issuer": settings.issuer,
        "jwks_uri": settings.jwks_uri,
        "id_token_signing_alg_values_supported": algorithms,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"],
    }


def build_documents(settings: Settings, keyring: Keyring) -> PublicDocuments:
    """Both documents as bytes, checked, with a digest over them."""
    jwks = build_jwks(keyring)
    revoked = sorted(keyring.revoked_kids().intersection(k["kid"] for k in jwks["keys"]))
    if revoked:
        raise UnsafeDocumentError(f"JWKS refused: revoked kid(s) {', '.join(revoked)}")
    files = {JWKS_PATH: serialize(jwks), DISCOVERY_PATH: serialize(build_discovery(settings, keyring))}
    for path, body in files.items():
        if b'"d":' in body:  # belt and braces over the bytes that leave
            raise UnsafeDocumentError(f"{path} refused: it carries a private member")
    digest = hashlib.sha256(b"\0".join(files[p] for p in sorted(files))).hexdigest()
    return PublicDocuments(files=files, kids=tuple(k["kid"] for k in jwks["keys"]), digest=digest)
