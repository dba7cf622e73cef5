"""The keyring: every key the product holds, as one JSON document in one secret."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import KeyringError
from .keys import KeyRecord, KeyState

KEYRING_FORMAT = "jwks-rotator/keyring/v1"
_STATE_ORDER = {KeyState.ACTIVE: 0, KeyState.PENDING: 1, KeyState.RETIRED: 2}


@dataclass(frozen=True)
class Keyring:
    """An immutable set of keys plus the digest of the last JWKS published from it.

    ``generation`` grows with every change, so a publisher can tell a newer
    keyring's documents from an older one's (see :mod:`.publisher`).
    """

    keys: tuple[KeyRecord, ...] = ()
    published_digest: str | None = field(default=None)
    generation: int = 0

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

    def publication_order(self) -> tuple[KeyRecord, ...]:
        """Active first (for verifiers that ignore kid), then pending, then retired; oldest first within a state."""
        return tuple(sorted(self.keys, key=lambda k: (_STATE_ORDER[k.state], k.created_at, k.kid)))

    # --- changes ---------------------------------------------------------
    def replace_keys(self, keys: Iterable[KeyRecord]) -> Keyring:
        return Keyring(keys=tuple(keys), published_digest=self.published_digest, generation=self.generation + 1)

    def with_digest(self, digest: str | None) -> Keyring:
        return Keyring(keys=self.keys, published_digest=digest, generation=self.generation + 1)

    # --- storage ---------------------------------------------------------
    def to_json(self) -> str:
        """The stored document (contains private keys: only for the secret)."""
        document: dict[str, Any] = {
            "format": KEYRING_FORMAT,
            "published_digest": self.published_digest,
            "generation": self.generation,
            "keys": [k.to_dict() for k in self.keys],
        }
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
        return cls(
            keys=tuple(KeyRecord.from_dict(k) for k in keys),
            published_digest=digest if isinstance(digest, str) else None,
            generation=generation,
        )


EMPTY_KEYRING_JSON = Keyring().to_json()
