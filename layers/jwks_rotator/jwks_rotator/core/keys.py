"""Signing keys: records with their lifecycle timestamps, generation and JWK forms.

A :class:`KeyRecord` never shows its private half in ``repr``; its public JWK
is built from an allow-list of members per key type, so private members
(``d``, ``p``, ``q``, ``dp``, ``dq``, ``qi``, ``k``) cannot leak into it.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .algorithms import PrivateKey, get_algorithm
from .errors import KeyringError

PUBLIC_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("kty", "n", "e"),
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
}
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})


class KeyState(StrEnum):
    """Where a key is in its life. Deleted keys are not in the keyring at all."""

    PENDING = "pending"  # published, not signing yet
    ACTIVE = "active"  # the one signing key
    RETIRED = "retired"  # published, verify-only


@dataclass(frozen=True)
class KeyRecord:
    """One key of the keyring and when it moved through its states."""

    kid: str
    alg: str
    state: KeyState
    created_at: datetime
    private_jwk: Mapping[str, str] = field(repr=False, compare=False)
    published_at: datetime | None = None
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    lead_waived: bool = False

    def __repr__(self) -> str:  # never show key material
        return (
            f"KeyRecord(kid={self.kid!r}, alg={self.alg!r}, state={self.state.value!r}, "
            f"created_at={self.created_at.isoformat()}, published_at={_iso(self.published_at)}, "
            f"activated_at={_iso(self.activated_at)}, retired_at={_iso(self.retired_at)}, "
            f"lead_waived={self.lead_waived})"
        )

    __str__ = __repr__

    def public_jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``, ``alg`` and ``use``: allow-listed members only."""
        kty = self.private_jwk.get("kty", "")
        members = PUBLIC_MEMBERS.get(kty)
        if members is None:
            raise KeyringError(f"key {self.kid}: key type {kty!r} cannot be published")
        jwk = {name: self.private_jwk[name] for name in members}
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk

    def with_changes(self, **changes: Any) -> KeyRecord:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The record as stored in the keyring secret (includes the private JWK)."""
        return {
            "kid": self.kid,
            "alg": self.alg,
            "state": self.state.value,
            "created_at": _iso(self.created_at),
            "published_at": _iso(self.published_at),
            "activated_at": _iso(self.activated_at),
            "retired_at": _iso(self.retired_at),
            "lead_waived": self.lead_waived,
            "private_jwk": dict(self.private_jwk),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyRecord:
        """Parse one stored record; malformed input raises :class:`KeyringError`."""
        try:
            kid = str(data["kid"])
            record = cls(
                kid=kid,
                alg=get_algorithm(data["alg"]).name,
                state=KeyState(data["state"]),
                created_at=_parse_time(data["created_at"]),
                published_at=_parse_time(data.get("published_at")),
                activated_at=_parse_time(data.get("activated_at")),
                retired_at=_parse_time(data.get("retired_at")),
                lead_waived=bool(data.get("lead_waived", False)),
                private_jwk={str(k): str(v) for k, v in dict(data["private_jwk"]).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyringError(f"malformed key record {data.get('kid', '?') if isinstance(data, Mapping) else '?'}: {type(exc).__name__} {exc}") from None
        return record


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: Any) -> Any:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return parsed


def _b64url_decode_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")



def load_private_key(private_jwk: Mapping[str, str]) -> PrivateKey:
    """Turn a stored private JWK into a ``cryptography`` key object, once per keyring version.

    Written against ``cryptography`` directly so that the signer's cold start
    does not import a JOSE library; unit tests check it against jwcrypto.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    kty = private_jwk.get("kty")
    try:
        if kty == "RSA":
            n, e = (_b64url_decode_int(private_jwk[m]) for m in ("n", "e"))
            p, q, d, dp, dq, qi = (_b64url_decode_int(private_jwk[m]) for m in ("p", "q", "d", "dp", "dq", "qi"))
            return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n)).private_key()
        if kty == "EC":
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[private_jwk["crv"]]
            key = ec.derive_private_key(_b64url_decode_int(private_jwk["d"]), curve)
            public = key.public_key().public_numbers()
            if (public.x, public.y) != (_b64url_decode_int(private_jwk["x"]), _b64url_decode_int(private_jwk["y"])):
                raise ValueError("public point does not match the private scalar")
            return key
        if kty == "OKP" and private_jwk.get("crv") == "Ed25519":
            raw = base64.urlsafe_b64decode(private_jwk["d"] + "=" * (-len(private_jwk["d"]) % 4))
            return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyringError(f"stored private key of type {kty!r} is malformed ({type(exc).__name__})") from None
    raise KeyringError(f"stored private key of type {kty!r} is not supported")
