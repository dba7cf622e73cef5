"""Replica lag for the local cloud: a region's replica secrets show what their primary held SECONDS ago.

moto replicates a secret at once (its replica is a live view of the primary). Secrets Manager replicates
asynchronously and AWS bounds no lag, so the rules across regions wait for a read-back instead of assuming one; to
show that locally, :class:`ReplicaLag` records every state of each replicated primary secret (its versions, their
stage labels and values) as it changes, and a replica in a region with a lag of SECONDS answers every read
(``GetSecretValue``, ``DescribeSecret``, ``ListSecretVersionIds``, ``ListSecrets``, ``BatchGetSecretValue``, by any
caller, through any endpoint) from the state its primary held SECONDS ago. As a real replica, it never goes back: a
lag set (or raised) at time T holds the replica at what it showed at T until the lag has passed, so the writes made
from T on reach it SECONDS late. A lag of 0 ends it: the replica is live again, caught up at once.

How it hooks in (moto in this process): the Secrets Manager backends of the cloud's regions get their writing
methods wrapped, so a state is recorded right after the write that made it; each replica object is given a subclass
whose ``versions``/``default_version_id``/``to_dict`` read the recorded state. What it bounds and what it cannot
show: docs/regions.md ("What the local stack shows").
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from moto.secretsmanager.models import FakeSecret, ReplicaSecret, secretsmanager_backends

from jwks_rotator_cli.local_state import LOCAL_ACCOUNT

MAX_LAG_SECONDS = 3600.0
"""The largest lag taken (and the age of the oldest state kept)."""
_WRITERS = (
    "create_secret", "create_managed_secret", "update_secret", "put_secret_value", "update_secret_version_stage", "rotate_secret",
    "cancel_rotate_secret", "delete_secret", "restore_secret", "replicate_secret_to_regions", "remove_regions_from_replication",
    "tag_resource", "untag_resource",
)
"""The Secrets Manager backend's methods that change a secret (wrapped: the state after each is recorded)."""
_WRAPPED = "_jwks_rotator_replica_lag"


@dataclass(frozen=True)
class SecretState:
    """A primary secret as it stood: the versions that existed (values and stage labels), the current one, its last change."""

    versions: dict[str, dict[str, Any]]
    default_version_id: str | None
    last_changed_date: Any


@dataclass(frozen=True)
class _Labels:
    """What changes between two states of a secret: its labelled versions (a version's value never changes, and a
    version, once made, stays), its current version and when it last changed. Small, so a state per write costs little."""

    labelled: tuple[tuple[str, tuple[str, ...]], ...]
    default_version_id: str | None
    last_changed_date: Any


@dataclass
class _Record:
    """One replicated secret's record: each version's value (copied once, when first seen) and its labels over time."""

    versions: dict[str, tuple[float, dict[str, Any]]]  # version id -> (first seen at, the version without its labels)
    history: list[tuple[float, _Labels]]  # oldest first


class ReplicaLag:
    """The lag of each region's replicas, and the recorded states of every replicated primary secret (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lags: dict[str, float] = {}
        self._floors: dict[str, float] = {}  # region -> the moment whose state its replicas showed when the lag last changed
        self._records: dict[int, _Record] = {}  # id(primary secret) -> its record
        self._lock = threading.RLock()
        self._regions: tuple[str, ...] = ()

    # --- the switch ------------------------------------------------------------
    def set_lag(self, region: str, seconds: float) -> None:
        """Replicas in ``region`` show their primary's state of ``seconds`` ago (0: live again); idempotent."""
        if not 0 <= seconds <= MAX_LAG_SECONDS:
            raise ValueError(f"replica lag: from 0 to {MAX_LAG_SECONDS:g} seconds")
        with self._lock:
            now = self._clock()
            shown = max(now - self._lags.get(region, 0.0), self._floors.get(region, float("-inf")))
            if seconds == 0:
                self._lags.pop(region, None)
                self._floors.pop(region, None)
            else:
                self._lags[region] = float(seconds)
                self._floors[region] = shown  # never back to an older state than the replica showed

    def lags(self) -> dict[str, float]:
        with self._lock:
            return dict(sorted(self._lags.items()))

    def lag(self, region: str) -> float:
        with self._lock:
            return self._lags.get(region, 0.0)

    # --- moto ------------------------------------------------------------------
    def install(self, regions: Iterable[str]) -> None:
        """Record the states of the secrets replicated from these regions' backends, and lag their replicas."""
        global _installed
        self._regions = tuple(regions)
        _installed = self
        for region in self._regions:
            backend = secretsmanager_backends[LOCAL_ACCOUNT][region]
            for name in _WRITERS:
                method = getattr(backend, name, None)
                if method is not None and not getattr(method, _WRAPPED, False):
                    setattr(backend, name, self._recording(method))
        self.observe()

    def uninstall(self) -> None:
        """Stop lagging (replicas are live views again) and unwrap the backends."""
        global _installed
        for region in self._regions:
            backend = secretsmanager_backends[LOCAL_ACCOUNT][region]
            for name in _WRITERS:
                if getattr(backend.__dict__.get(name), _WRAPPED, False):
                    delattr(backend, name)
        if _installed is self:
            _installed = None
        with self._lock:
            self._lags.clear()
            self._floors.clear()
            self._records.clear()

    def _recording(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def write(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            finally:
                self.observe()

        setattr(write, _WRAPPED, True)
        return write

    def observe(self) -> None:
        """Record the current state of every replicated primary secret that changed, and lag any new replica."""
        now = self._clock()
        with self._lock:
            for region in self._regions:
                for secret in list(dict.values(secretsmanager_backends[LOCAL_ACCOUNT][region].secrets)):
                    if isinstance(secret, FakeSecret) and secret.replicas:
                        self._record(secret, now)
                    elif type(secret) is ReplicaSecret:
                        secret.__class__ = LaggedReplicaSecret  # the same object moto's store and its primary hold
                        self._record(secret.source, now)

    def _record(self, secret: Any, now: float) -> None:
        record = self._records.setdefault(id(secret), _Record({}, []))
        for _ in range(5):  # another thread may be changing it: read again
            try:
                versions = dict(secret.versions)
                labelled = tuple(sorted((vid, tuple(v["version_stages"])) for vid, v in versions.items() if v["version_stages"]))
                break
            except RuntimeError:
                continue
        else:
            return  # a later write or read records it
        for version_id, version in versions.items():
            if version_id not in record.versions:
                unlabelled = {key: copy.deepcopy(value) for key, value in version.items() if key != "version_stages"}
                record.versions[version_id] = (now, unlabelled)
        labels = _Labels(labelled, secret.default_version_id, secret.last_changed_date)
        history = record.history
        if history and history[-1][1] == labels:
            return
        history.append((now, labels))
        while len(history) > 1 and history[1][0] <= now - MAX_LAG_SECONDS:
            history.pop(0)  # older than any lag can reach, and a newer state stands for that moment

    def state_for(self, replica: Any) -> SecretState | None:
        """What ``replica`` shows now: its primary's state of ``lag`` seconds ago, or of the moment the lag was set if that
        is later (a replica never goes back); None: no lag, the live primary.

        The oldest recorded state when the record does not reach that far back (the secret is younger than the lag,
        or was first seen later): the replica is then at most ``lag`` behind, never more.
        """
        lag = self.lag(replica.region)
        if lag <= 0:
            return None
        self.observe()  # a write this cloud did not see (not through a wrapped method) counts from now
        with self._lock:
            cutoff = max(self._clock() - lag, self._floors.get(replica.region, float("-inf")))
            record = self._records.get(id(replica.source))
            if record is None or not record.history:
                return None
            at, shown = record.history[0]
            for recorded_at, labels in record.history:
                if recorded_at > cutoff:
                    break
                at, shown = recorded_at, labels
            stages, until = dict(shown.labelled), max(at, cutoff)  # an unlabelled version adds no state, and exists all the same
            versions = {
                version_id: {**value, "version_stages": list(stages.get(version_id, ()))}  # reads never change a value
                for version_id, (first_seen, value) in record.versions.items() if first_seen <= until
            }
            return SecretState(versions, shown.default_version_id, shown.last_changed_date)


_installed: ReplicaLag | None = None


class LaggedReplicaSecret(ReplicaSecret):
    """moto's replica, reading its primary through :class:`ReplicaLag` (live when its region has no lag)."""

    def _lagged(self) -> SecretState | None:
        lag = _installed
        return lag.state_for(self) if lag is not None else None

    @property
    def versions(self) -> dict[str, dict[str, Any]]:
        state = self._lagged()
        return self.source.versions if state is None else state.versions

    @property
    def default_version_id(self) -> str | None:
        state = self._lagged()
        return self.source.default_version_id if state is None else state.default_version_id

    def to_dict(self) -> dict[str, Any]:
        described: dict[str, Any] = super().to_dict()
        state = self._lagged()
        if state is not None:
            stages = {version_id: list(version["version_stages"]) for version_id, version in state.versions.items()}
            described["VersionIdsToStages"] = described["SecretVersionsToStages"] = stages
            described["LastChangedDate"] = state.last_changed_date
        return described
