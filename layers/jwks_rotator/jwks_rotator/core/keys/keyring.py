"""The keyring: every key the product holds, as one JSON document in one secret."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jwks_rotator.core.errors import KeyringError
from jwks_rotator.core.keys.records import KeyRecord, KeyState

KEYRING_FORMAT = "jwks-rotator/keyring/v1"
_STATE_ORDER = {KeyState.ACTIVE: 0, KeyState.PENDING: 1, KeyState.RETIRED: 2}
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
MAX_TOMBSTONES = 50
"""Revoked kids kept in the keyring, newest last; older ones live on in the external revocation list."""


@dataclass(frozen=True)
class StoredKeyring:
    """The signer's view of the current keyring: its version and the raw document (what a ``KeyringReader`` returns)."""

    version_id: str
    text: str


@dataclass(frozen=True)
class Revocation:
    """A tombstone: ``kid`` was revoked at ``revoked_at`` and must never be published or activated again."""

    kid: str
    revoked_at: datetime
    kms_key_arn: str | None = None  # the revoked key's KMS key (kms custody): every run keeps it disabled


@dataclass(frozen=True)
class Keyring:
    """An immutable set of keys plus the digest of the last JWKS published from it.

    ``generation`` grows with every change, so a publisher can tell a newer
    keyring's documents from an older one's (see :mod:`.publisher`).
    """

    keys: tuple[KeyRecord, ...] = ()
    published_digest: str | None = field(default=None)
    generation: int = 0
    revoked: tuple[Revocation, ...] = ()
    restore_hold: bool = False  # publication waits for an operator to accept a restored keyring
    primary_region: str | None = None
    """The writer's region, set by ``promote`` (and ``step-down``): it outranks the stack's primary-region (see
    :func:`jwks_rotator.core.lifecycle.writer.is_writer`). None in every keyring no promote has touched."""

    def __post_init__(self) -> None:
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise KeyringError("keyring holds the same kid twice")
        if sum(1 for k in self.keys if k.state is KeyState.ACTIVE) > 1:
            raise KeyringError("keyring holds more than one active key")

    # --- queries ---------------------------------------------------------
    @property
    def active(self) -> KeyRecord | None:
        """The one signing key, if any."""
        return next((k for k in self.keys if k.state is KeyState.ACTIVE), None)

    def in_state(self, state: KeyState) -> tuple[KeyRecord, ...]:
        return tuple(k for k in self.keys if k.state is state)

    def get(self, kid: str) -> KeyRecord | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def revoked_kids(self) -> frozenset[str]:
        """Every kid this keyring remembers revoking."""
        return frozenset(r.kid for r in self.revoked)

    def publication_order(self) -> tuple[KeyRecord, ...]:
        """Active first (for verifiers that ignore kid), then pending, then retired; oldest first within a state."""
        return tuple(sorted(self.keys, key=lambda k: (_STATE_ORDER[k.state], k.created_at, k.kid)))

    def signing_view(self) -> Keyring:
        """What the signer needs and nothing more: the active key alone, the restore hold and the tombstones.

        The same document format as the keyring (the signer parses either), written by the rotator to the
        signing secret, so the signer's role never reads a pending, retired or revoked key's private half.
        It carries this keyring's ``generation``: a rotator never replaces a view with one of a lower
        generation that could sign (see :class:`.rotation.RotationService`).
        """
        active = self.active
        return Keyring((active,) if active is not None else (), None, self.generation, self.revoked, self.restore_hold)

    def same_signing_view(self, other: Keyring) -> bool:
        """Whether ``other`` lets the signer do exactly what this one does (generations aside)."""
        # Compared as stored: a KeyRecord's equality leaves its private half out.
        return ([k.to_dict() for k in self.keys], self.revoked, self.restore_hold) == (
            [k.to_dict() for k in other.keys], other.revoked, other.restore_hold)

    @property
    def signs_nothing(self) -> bool:
        """A signer reading this keyring issues no token: no active key, or a restore waiting for an operator."""
        return self.restore_hold or self.active is None

    # --- changes ---------------------------------------------------------
    def replace_keys(self, keys: Iterable[KeyRecord]) -> Keyring:
        return Keyring(tuple(keys), self.published_digest, self.generation + 1, self.revoked, self.restore_hold, self.primary_region)

    def with_digest(self, digest: str | None) -> Keyring:
        return Keyring(self.keys, digest, self.generation + 1, self.revoked, self.restore_hold, self.primary_region)

    def with_restore_hold(self, hold: bool, *, generation: int = 0) -> Keyring:
        """Mark (or clear) that this keyring is behind the published documents and waits for an operator.

        Accepting a restore passes a ``generation`` above every earlier one (see
        :meth:`.RotationService.publish`), so a later restore to an older version stays detectable.
        """
        if hold == self.restore_hold and generation <= self.generation:
            return self
        return Keyring(self.keys, self.published_digest, max(self.generation + 1, generation), self.revoked, hold, self.primary_region)

    def with_primary(self, region: str, *, generation: int) -> Keyring:
        """The keyring of record with ``region`` as its writer, at ``generation`` (at least one above this one's)."""
        return Keyring(self.keys, self.published_digest, max(self.generation + 1, generation), self.revoked, self.restore_hold, region)

    def with_revocation(self, kid: str, revoked_at: datetime, kms_key_arn: str | None = None) -> Keyring:
        """Add a tombstone for ``kid`` (kept once; only the newest :data:`MAX_TOMBSTONES` stay)."""
        if kid in self.revoked_kids():
            return self
        revoked = (*self.revoked, Revocation(kid, revoked_at, kms_key_arn))[-MAX_TOMBSTONES:]
        return Keyring(self.keys, self.published_digest, self.generation + 1, revoked, self.restore_hold, self.primary_region)

    # --- storage ---------------------------------------------------------
    def to_json(self) -> str:
        """The stored document (contains private keys: only for the secret)."""
        document: dict[str, Any] = {
            "format": KEYRING_FORMAT,
            "published_digest": self.published_digest,
            "generation": self.generation,
            "keys": [k.to_dict() for k in self.keys],
        }
        if self.restore_hold:
            document["restore_hold"] = True
        if self.primary_region is not None:
            document["primary_region"] = self.primary_region
        if self.revoked:
            document["revoked"] = [
                {"kid": r.kid, "revoked_at": r.revoked_at.isoformat(), **({"kms_key_arn": r.kms_key_arn} if r.kms_key_arn else {})}
                for r in self.revoked
            ]
        return json.dumps(document, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        """Parse the stored document; anything malformed raises :class:`KeyringError`."""
        try:
            document = json.loads(text)
        except (TypeError, ValueError):
            raise KeyringError("keyring secret is not valid JSON") from None
        if not isinstance(document, dict) or document.get("format") != KEYRING_FORMAT:
            raise KeyringError(f"keyring secret is not a {KEYRING_FORMAT} document")
        keys = document.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise KeyringError("keyring secret: 'keys' must be a list of objects")
        digest = document.get("published_digest")
        generation = document.get("generation", 0)
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise KeyringError("keyring secret: 'generation' must be a whole number")
        records = []
        for position, record in enumerate(keys, start=1):
            try:
                records.append(KeyRecord.from_dict(record))
            except KeyringError as exc:  # the kid itself may be what is wrong: name the record by position
                raise KeyringError(f"keyring secret: key #{position}: {exc.message}") from None
        hold = document.get("restore_hold", False)
        if not isinstance(hold, bool):
            raise KeyringError("keyring secret: 'restore_hold' must be a JSON boolean")
        primary = document.get("primary_region")
        if primary is not None and not (isinstance(primary, str) and _REGION.fullmatch(primary)):
            raise KeyringError("keyring secret: 'primary_region' must be an AWS region name")
        return cls(
            primary_region=primary,
            restore_hold=hold,
            keys=tuple(records),
            published_digest=digest if isinstance(digest, str) else None,
            generation=generation,
            revoked=_parse_revocations(document.get("revoked", [])),
        )


def _parse_revocations(raw: Any) -> tuple[Revocation, ...]:
    """The tombstones of a stored keyring (absent in keyrings written before they existed)."""
    if not isinstance(raw, list) or len(raw) > MAX_TOMBSTONES:
        raise KeyringError(f"keyring secret: 'revoked' must be a list of at most {MAX_TOMBSTONES} objects")
    revocations = []
    for position, item in enumerate(raw, start=1):
        kid = item.get("kid") if isinstance(item, dict) else None
        when = item.get("revoked_at") if isinstance(item, dict) else None
        try:
            revoked_at = datetime.fromisoformat(when) if isinstance(when, str) and len(when) <= 64 else None
        except ValueError:
            revoked_at = None
        if not isinstance(kid, str) or not kid or len(kid) > 256 or revoked_at is None or revoked_at.tzinfo is None:
            raise KeyringError(f"keyring secret: revocation #{position} needs a 'kid' and a 'revoked_at' with a time zone")
        arn = item.get("kms_key_arn") if isinstance(item, dict) else None
        if arn is not None and (not isinstance(arn, str) or not arn.startswith("arn:") or len(arn) > 2048):
            raise KeyringError(f"keyring secret: revocation #{position} has a malformed 'kms_key_arn'")
        revocations.append(Revocation(kid, revoked_at, arn))
    return tuple(revocations)


EMPTY_KEYRING_JSON = Keyring().to_json()
