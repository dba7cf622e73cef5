"""The core's view of the outside world: small interfaces the adapters implement.

The core (lifecycle, rotation, signing) talks only to these Protocols; the
AWS adapters in :mod:`jwks_rotator.adapters` implement them, and tests pass
in-memory doubles. Nothing here imports boto3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .jwks import PublicDocuments
from .keyring import Keyring


@dataclass(frozen=True)
class VersionedKeyring:
    """A keyring and the store version it was read from."""

    keyring: Keyring
    version_id: str


class KeyringStore(Protocol):
    """Where the keyring lives. Writes are compare-and-swap on the version read."""

    def load(self) -> VersionedKeyring: ...

    def save(self, keyring: Keyring, expected_version_id: str) -> str: ...


@dataclass(frozen=True)
class PublishResult:
    """What one publication did."""

    uploaded: tuple[str, ...]
    invalidation_id: str | None
    refreshed: tuple[str, ...] = ()  # unchanged documents marked with the newer keyring generation (not invalidated)


class Publisher(Protocol):
    """Puts the public documents where verifiers fetch them, invalidating caches on change."""

    def publish(self, documents: PublicDocuments, *, already_announced: bool, generation: int, force: bool = False) -> PublishResult: ...


@dataclass(frozen=True)
class StoredKeyring:
    """The signer's view of the current keyring: its version and the raw document."""

    version_id: str
    text: str


class KeyringReader(Protocol):
    """Reads the current keyring document for the signer (never a pending write).

    A failed read raises :class:`~.errors.StoreError` whose ``reason`` names
    the failure (an AWS error code, an HTTP status) and never a stored value.
    The signer parses ``text`` itself, so any transport that returns the
    secret's current version and document fits: boto3 today, an HTTP read
    from the Parameters and Secrets extension later.
    """

    def read_current(self) -> StoredKeyring: ...


class RevocationReader(Protocol):
    """Reads the revocation list for the signer: every kid that must never sign again.

    A failed read (the list missing included: the signer fails closed) raises
    :class:`~.errors.StoreError` naming the failure, never a stored value.
    boto3 today; an HTTP read from the Parameters and Secrets extension fits
    the same port.
    """

    def read(self) -> frozenset[str]: ...
