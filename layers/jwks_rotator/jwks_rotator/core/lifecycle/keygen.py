"""New signing keys, with kid = RFC 7638 thumbprint (via jwcrypto).

Only the rotator makes keys; the signer never imports this module (nor jwcrypto).
"""

from __future__ import annotations

from datetime import datetime

from jwcrypto.jwk import JWK

from jwks_rotator.core.keys.algorithms import get_algorithm
from jwks_rotator.core.keys.records import KeyRecord, KeyState


def generate_key(alg: str, now: datetime, *, rsa_key_size: int = 2048, state: KeyState = KeyState.PENDING) -> KeyRecord:
    """A new key for ``alg`` with kid = RFC 7638 SHA-256 thumbprint (via jwcrypto)."""
    algorithm = get_algorithm(alg)
    private_key = algorithm.generate(rsa_key_size)
    jwk = JWK.from_pyca(private_key)
    private_jwk = jwk.export_private(as_dict=True)
    kid = jwk.thumbprint()
    private_jwk.pop("kid", None)
    return KeyRecord(kid=kid, alg=algorithm.name, state=state, created_at=now, private_jwk=private_jwk)

