"""Signing keys: records with their lifecycle timestamps, generation and JWK forms.

A :class:`KeyRecord` never shows its private half in ``repr``; its public JWK
is built from an allow-list of members per key type, so private members
(``d``, ``p``, ``q``, ``dp``, ``dq``, ``qi``, ``k``) cannot leak into it.
Reading a record checks its key material (:mod:`.checks`).

A record in ``kms`` custody has no private half at all: it stores the
public JWK (``public_jwk``) and the ARN of the KMS key that holds the
private half (``kms_key_arn``), with the same lifecycle fields as any other
record, in the same keyring schema (so any view of the keyring, the full
document or one restricted to the active key, carries it unchanged).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from jwks_rotator.core.errors import KeyringError
from jwks_rotator.core.keys.algorithms import PUBLIC_MEMBERS, PrivateKey, algorithm_names
from jwks_rotator.core.keys.checks import check_private_jwk, check_rsa_numbers, ec_private_key, ed25519_private_key, thumbprint

__all__ = ["PRIVATE_MEMBERS", "PUBLIC_MEMBERS", "KeyRecord", "KeyState", "load_private_key", "thumbprint"]

PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})


class KeyState(StrEnum):
    """Where a key is in its life. Deleted keys are not in the keyring at all."""
    PENDING = "pending"  # published, not signing yet
    ACTIVE = "active"  # the one signing key
    RETIRED = "retired"  # published, verify-only


@dataclass(frozen=True)
class KeyRecord:
    """One key of the keyring, when it moved through its states, and the bounds recorded on the way.

    ``ready_at`` (set at first publication) is the earliest activation the
    settings then in force allowed; ``max_token_ttl`` is the longest token
    lifetime in force while the key was active; ``retain_until`` (set at
    retirement) is the earliest deletion those settings allowed. Later
    settings may lengthen these bounds, never shorten them. Records stored
    before the bounds existed load with them unset: today's rule applies.
    """
    kid: str
    alg: str
    state: KeyState
    created_at: datetime
    private_jwk: Mapping[str, str] = field(repr=False, compare=False)
    published_at: datetime | None = None
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    lead_waived: bool = False
    ready_at: datetime | None = None
    max_token_ttl: timedelta | None = None
    retain_until: datetime | None = None
    kms_key_arn: str | None = None  # kms custody: the KMS key holding the private half; private_jwk is then public only
    views_left_at: datetime | None = None
    """Several regions: when the writer first read back every region's signing view without this (retired) key."""
    published_in: tuple[str, ...] | None = None
    """Several regions: where the key was held (origins, keyring replicas, the writer's region) when its publication was
    recorded; None in one region, or recorded before this was kept. A larger set later asks again (``replicas.rescope``)."""

    @property
    def custody(self) -> str:
        """``kms`` when a KMS key holds the private half, else ``secrets-manager`` (the JWK is in the keyring)."""
        return "kms" if self.kms_key_arn is not None else "secrets-manager"

    def __repr__(self) -> str:  # never show key material
        return (
            f"KeyRecord(kid={self.kid!r}, alg={self.alg!r}, state={self.state.value!r}, "
            f"created_at={self.created_at.isoformat()}, published_at={_iso(self.published_at)}, "
            f"activated_at={_iso(self.activated_at)}, retired_at={_iso(self.retired_at)}, "
            f"lead_waived={self.lead_waived}, ready_at={_iso(self.ready_at)}, retain_until={_iso(self.retain_until)}, "
            f"custody={self.custody!r})"
        )

    __str__ = __repr__

    @property
    def event_times(self) -> tuple[tuple[str, datetime], ...]:
        """The moments the key moved (not the bounds, which lie ahead by design)."""
        named = (("created_at", self.created_at), ("published_at", self.published_at),
                 ("activated_at", self.activated_at), ("retired_at", self.retired_at), ("views_left_at", self.views_left_at))
        return tuple((name, value) for name, value in named if value is not None)

    def latest_event(self) -> datetime:
        """The last moment recorded on the key: no later change may be dated before it."""
        return max(value for _, value in self.event_times)

    def public_jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``, ``alg`` and ``use``: allow-listed members only."""
        kty = self.private_jwk.get("kty", "")
        members = PUBLIC_MEMBERS.get(kty)
        if members is None:
            raise KeyringError(f"key {self.kid}: key type cannot be published (only RSA, EC, OKP)")
        jwk = {name: self.private_jwk[name] for name in members}
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk

    def with_changes(self, **changes: Any) -> KeyRecord:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The record as stored in the keyring secret (the private JWK, or for kms custody the public JWK and key ARN)."""
        record: dict[str, Any] = {
            "kid": self.kid,
            "alg": self.alg,
            "state": self.state.value,
            "created_at": _iso(self.created_at),
            "published_at": _iso(self.published_at),
            "activated_at": _iso(self.activated_at),
            "retired_at": _iso(self.retired_at),
            "lead_waived": self.lead_waived,
        }
        if self.kms_key_arn is not None:
            record["kms_key_arn"] = self.kms_key_arn
            record["public_jwk"] = dict(self.private_jwk)
        else:
            record["private_jwk"] = dict(self.private_jwk)
        if self.ready_at is not None:
            record["ready_at"] = _iso(self.ready_at)
        if self.max_token_ttl is not None:
            record["max_token_ttl_seconds"] = int(self.max_token_ttl.total_seconds())
        if self.retain_until is not None:
            record["retain_until"] = _iso(self.retain_until)
        if self.views_left_at is not None:
            record["views_left_at"] = _iso(self.views_left_at)
        if self.published_in is not None:
            record["published_in"] = list(self.published_in)
        return record

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyRecord:
        """Parse and check one stored record; anything wrong raises :class:`KeyringError` naming the field.

        The key material is checked too (see :mod:`.checks`). No message
        repeats a stored value: a secret pasted into the wrong field must not
        reach a log.
        """
        if not isinstance(data, Mapping):
            raise KeyringError("key record is not an object")
        kid = _text(data, "kid")
        alg = _text(data, "alg")
        if alg not in algorithm_names():
            raise KeyringError(f"'alg' is not one of {', '.join(algorithm_names())}")
        state_text = _text(data, "state")
        if state_text not in {s.value for s in KeyState}:
            raise KeyringError(f"'state' is not one of {', '.join(s.value for s in KeyState)}")
        lead_waived = data.get("lead_waived", False)
        if not isinstance(lead_waived, bool):
            raise KeyringError("'lead_waived' must be a JSON boolean")
        kms_key_arn = data.get("kms_key_arn")
        if kms_key_arn is not None:
            # Measured reason: the KMS module costs ~5 ms of imports (python -X importtime); a sign function whose keys
            # are in Secrets Manager custody never reads a KMS record and never loads it (test_sign_path_imports).
            from jwks_rotator.core.keys.kms import KMS_KEY_ARN, check_public_jwk

            if not isinstance(kms_key_arn, str) or not KMS_KEY_ARN.fullmatch(kms_key_arn):
                raise KeyringError("'kms_key_arn' must be a KMS key ARN")
        jwk_field = "public_jwk" if kms_key_arn is not None else "private_jwk"
        if kms_key_arn is not None and "private_jwk" in data:
            raise KeyringError("a KMS key record holds no 'private_jwk'")
        raw_jwk = data.get(jwk_field)
        if not isinstance(raw_jwk, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw_jwk.items()):
            raise KeyringError(f"'{jwk_field}' must be an object of strings")
        ttl = data.get("max_token_ttl_seconds")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 < ttl <= 10 * 365 * 86400):
            raise KeyringError("'max_token_ttl_seconds' must be a positive whole number of seconds")
        created_at = _time(data, "created_at")
        if created_at is None:
            raise KeyringError("'created_at' is missing")
        if kms_key_arn is not None:
            check_public_jwk(raw_jwk, alg)
            if thumbprint(raw_jwk) != kid:
                raise KeyringError("'kid' is not the RFC 7638 thumbprint of the key's public members")
        else:
            check_private_jwk(raw_jwk, alg, kid)
        return cls(
            kid=kid,
            alg=alg,
            state=KeyState(state_text),
            created_at=created_at,
            published_at=_time(data, "published_at"),
            activated_at=_time(data, "activated_at"),
            retired_at=_time(data, "retired_at"),
            lead_waived=lead_waived,
            private_jwk=dict(raw_jwk),
            ready_at=_time(data, "ready_at"),
            max_token_ttl=timedelta(seconds=ttl) if ttl is not None else None,
            retain_until=_time(data, "retain_until"),
            kms_key_arn=kms_key_arn,
            views_left_at=_time(data, "views_left_at"),
            published_in=_names(data, "published_in"),
        )


def _names(data: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    raw = data.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
        raise KeyringError(f"'{name}' must be a list of names")
    return tuple(raw)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise KeyringError(f"{name!r} must be a non-empty string")
    return value


def _time(data: Mapping[str, Any], name: str) -> datetime | None:
    """An ISO 8601 timestamp with a time zone, or None when absent; errors name the field only."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise KeyringError(f"{name!r} must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise KeyringError(f"{name!r} must be an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise KeyringError(f"{name!r} has no time zone")
    return parsed


def load_private_key(private_jwk: Mapping[str, str]) -> PrivateKey:
    """Turn a stored private JWK into a ``cryptography`` key object, once per keyring version.

    Written against ``cryptography`` directly so that the signer's cold start
    does not import a JOSE library; unit tests check it against jwcrypto. The
    halves are checked to match (see :mod:`.checks`); RSA skips
    ``cryptography``'s slow primality checks in favour of those.
    """
    kty = private_jwk.get("kty")
    try:
        if kty == "RSA":
            n, e, d, p, q, dp, dq, qi = check_rsa_numbers(private_jwk)
            numbers = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n))
            return numbers.private_key(unsafe_skip_rsa_key_validation=True)
        if kty == "EC":
            return ec_private_key(private_jwk)
        if kty == "OKP":
            return ed25519_private_key(private_jwk)
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyringError(f"stored private key is malformed ({type(exc).__name__})") from None
    raise KeyringError("stored private key type is not supported (only RSA, EC, OKP)")
