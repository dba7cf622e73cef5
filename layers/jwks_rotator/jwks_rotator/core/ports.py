"""The core's view of the outside world: small interfaces the adapters implement.

The core (lifecycle, rotation, signing) talks only to these Protocols; the
AWS adapters in :mod:`jwks_rotator.adapters` implement them, and tests pass
in-memory doubles. Nothing here imports boto3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.keyring import (
    StoredKeyring as StoredKeyring,  # lives with the keyring (the sign path reads it without these ports)
)

if TYPE_CHECKING:  # annotations only: the sign path never builds documents, and loads this module for a KMS key only
    from jwks_rotator.core.callers.proof import CallerProof
    from jwks_rotator.core.callers.verifier import ReplayAnswer
    from jwks_rotator.core.lifecycle.documents import PublicDocuments


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
    missing: tuple[str, ...] = ()  # origins that did not take the documents: the publication does not count yet
    ahead: tuple[str, ...] = ()  # of ``missing``: origins holding documents of a newer keyring, left as they are


class Publisher(Protocol):
    """Puts the public documents where verifiers fetch them, invalidating caches on change."""

    def publish(self, documents: PublicDocuments, *, already_announced: bool, generation: int, force: bool = False) -> PublishResult: ...


class OriginPublisher(Publisher, Protocol):
    """A publisher of one origin that can also say, without writing, which documents it does not hold as given.

    ``stale_paths`` raises :class:`~.errors.PublicationSupersededError` when ``generation`` is given and the
    origin holds documents of a newer keyring; a failed read raises :class:`~.errors.PublishError`.
    """

    def stale_paths(self, documents: PublicDocuments, generation: int | None = None) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ReplicaReading:
    """One region's keyring replica as read back: its generation and the kids it holds (nothing else of it)."""

    generation: int
    kids: frozenset[str]


class KeyringReplicas(Protocol):
    """The keyring's replicas in other regions, read back by the writer (Secrets Manager replica secrets).

    ``read_back`` maps each replica's region to what its replica holds now, or to None when it cannot be read
    (the region is down, the replica is missing): never an error, since a lagging replica only holds up
    activation. Never a stored value beyond the generation and the kids. ``regions`` are the regions it reads.
    """

    @property
    def regions(self) -> tuple[str, ...]: ...

    def read_back(self) -> Mapping[str, ReplicaReading | None]: ...


@dataclass(frozen=True)
class ReplicationRecord:
    """The writer's last keyring write and, per region, the generation first read back at or above it.

    ``generation`` and ``written_at`` (the writer's clock) are of the writer's latest keyring write;
    ``caught_up`` maps each region whose replica was read back holding it to the generation read.
    """

    generation: int
    written_at: datetime
    caught_up: Mapping[str, int]


class ReplicationLedger(Protocol):
    """Where the writer keeps its :class:`ReplicationRecord` between runs (an object in the stack's bucket).

    ``load`` is None when nothing was recorded, or the record is unreadable (the measurement starts again at
    the next write); ``save`` raises :class:`~.errors.StoreError` when it cannot write: a ledger only ever
    costs a lag figure, never a rotation.
    """

    def load(self) -> ReplicationRecord | None: ...

    def save(self, record: ReplicationRecord) -> None: ...


class SigningViewReplicas(Protocol):
    """The signing view's replicas in other regions, read back by the writer: what each region's signer may sign with.

    ``signing_kids_by_region`` maps each region to the kids its view lets sign (its active key, or none), or to
    None when the replica cannot be read.
    """

    def signing_kids_by_region(self) -> Mapping[str, frozenset[str] | None]: ...


class RevocationList(Protocol):
    """Kids that must never be published or activated again. Adding is idempotent; nothing is ever removed.

    The rotator's side of the revocation list (see :mod:`jwks_rotator.core.keys.revocation`); the signer reads it
    through :class:`RevocationReader`.
    """

    def load(self) -> frozenset[str]: ...

    def add(self, kid: str) -> None: ...


class IdentityReplayer(Protocol):
    """Sends a caller's proof to the signer's STS endpoint; raises ``SigningUnavailableError`` when no answer came."""

    def replay(self, proof: CallerProof) -> ReplayAnswer: ...


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


class RevocationRecord(Protocol):
    """The stack's own record of revoked kids, where only the rotate role writes and no secret restore reaches.

    ``load`` is None when the record was never written; a record that cannot
    be read raises :class:`~.errors.StoreError`. ``save`` replaces it.
    """

    def load(self) -> tuple[str, ...] | None: ...

    def save(self, kids: tuple[str, ...]) -> None: ...


class TickLedger(Protocol):
    """When the last scheduled tick completed, kept where only the rotate role writes (an object in the stack's bucket).

    ``last_completed`` is None when no tick was recorded (or the record is unreadable: a tick then runs).
    """

    def last_completed(self) -> datetime | None: ...

    def record(self, at: datetime) -> None: ...


class RevocationMirror(Protocol):
    """A copy of the revoked kids the signer reads cheaply (an SSM parameter any SSM writer can change).

    ``read_mirror`` raises :class:`~.errors.StoreError` whose ``reason`` says
    why (``ParameterNotFound``, ``MalformedRevocationList``, an AWS code);
    ``replace`` overwrites it whatever it holds.
    """

    def read_mirror(self) -> tuple[str, ...]: ...

    def replace(self, kids: tuple[str, ...]) -> None: ...


@dataclass(frozen=True)
class VaultSignature:
    """A key vault's answer to one Sign call: the key that signed (its ARN, as KMS answers) and the signature bytes."""

    key_id: str
    signature: bytes


class KeySigner(Protocol):
    """Signs with a non-exportable key by its ARN: one call per token (KMS ``Sign``, MessageType RAW).

    Refusals raise :class:`~.errors.SigningKeyDisabledError` when the key is
    disabled or pending deletion, :class:`~.errors.SigningUnavailableError`
    naming the AWS error code otherwise; never a service message.
    """

    def sign(self, key_arn: str, message: bytes, signing_algorithm: str) -> VaultSignature: ...


@dataclass(frozen=True)
class VaultKey:
    """A vault key as the rotator sees it: ARN, the tags it carries, when it was made and its KMS key state."""

    arn: str
    tags: Mapping[str, str]
    created_at: datetime
    state: str  # Enabled | Disabled | PendingDeletion | PendingImport | Unavailable | Creating
    usage: str = ""  # KeyUsage (SIGN_VERIFY), as DescribeKey says; "" when not described
    origin: str = ""  # Origin (AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE)
    spec: str = ""  # KeySpec
    manager: str = ""  # KeyManager (CUSTOMER or AWS)


class KeyVault(KeySigner, Protocol):
    """The rotator's key vault: asymmetric signing keys that never leave it (KMS).

    Failures raise :class:`~.errors.KeyVaultError` whose ``reason`` is the AWS
    error code. ``create_key`` tags the key at creation (so a key is found by
    its tags even if it is never recorded) and gives it ``policy`` as its key
    policy; with ``multi_region`` the key is a multi-Region primary key, whose
    replicas keep its key id (the ARN differs in the region only). A vault is
    bound to one region: another region's replica of a key is reached through
    that region's vault, by the same ARN (management calls name the key id).
    """

    def create_key(self, *, key_spec: str, tags: Mapping[str, str], policy: str, description: str, multi_region: bool = False) -> str: ...

    def replicate(self, key_arn: str, region: str, *, tags: Mapping[str, str], policy: str, description: str) -> str:
        """A replica of the multi-Region key ``key_arn`` in ``region`` (ReplicateKey), tagged and with ``policy``; its ARN."""
        ...

    def public_key_der(self, key_arn: str) -> bytes: ...

    def tag(self, key_arn: str, tags: Mapping[str, str]) -> None: ...

    def describe(self, key_arn: str) -> VaultKey: ...

    def put_policy(self, key_arn: str, policy: str) -> None: ...

    def policy(self, key_arn: str) -> str: ...

    def enable(self, key_arn: str) -> None: ...

    def disable(self, key_arn: str) -> None: ...

    def schedule_deletion(self, key_arn: str, pending_days: int) -> None: ...

    def list_tagged(self, tag_key: str, tag_value: str) -> list[VaultKey]: ...

    def server_time(self) -> datetime | None:
        """The vault's own clock: when its latest answer was sent (the HTTP ``Date``, to the second), None before any."""
        ...


@dataclass(frozen=True)
class WriterMark:
    """What a keyring secret or an origin's documents say about their writer: the keyring generation and its region.

    ``region`` is "" when the source does not say (documents published before writers marked them, a keyring no
    promote touched): such a mark never supersedes a writer (a newer generation without a region is a restored
    keyring's business: ``keyring_behind_publication``).
    """

    generation: int
    region: str = ""


class WriterMarks(Protocol):
    """Read-only: the writer marks of the places a superseding writer would have written (other regions' keyring
    secrets, the origins' documents), by a name for messages; None for a place that could not be read."""

    def marks(self) -> Mapping[str, WriterMark | None]: ...


class ReplicaSecret(Protocol):
    """A secret in this region that may be a replica of another region's (Secrets Manager replication).

    ``replicated_from`` is the primary's region, or None when the secret is standalone; ``stop_replication`` makes
    it standalone (``StopReplicationToReplica``, called in the replica's region: it works while the primary is down).
    Failures raise :class:`~.errors.StoreError` naming the AWS error code.
    """

    def replicated_from(self) -> str | None: ...

    def stop_replication(self) -> None: ...


@dataclass(frozen=True)
class PrimaryAnswer:
    """The old primary's keyring secret, as a short probe found it: unreachable, or its marker and generation.

    ``reason`` names why it was unreachable or unreadable (an AWS error code, a transport failure's type name).
    """

    reachable: bool
    keyring_marker: str | None = None
    generation: int | None = None
    reason: str = ""


class OldPrimaryProbe(Protocol):
    """One short, bounded read of the keyring secret in ``region`` (the primary's original): never hangs, never raises."""

    def probe(self, region: str) -> PrimaryAnswer: ...
