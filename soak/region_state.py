"""What each region holds, sampled through the run: its origin's JWKS digest, its keyring's generation, its signer's view.

Read from moto directly (no region outage reaches these reads; a replica lag does, as it would any reader), so the
soak sees the state itself, not a region's availability. Origins converge when every region's bucket holds the same
JWKS (same digest); replicas converge when every region's keyring secret (the primary's, the replicas) is at the same
generation.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator_local.regions import LocalRegions

CURRENT = "AWSCURRENT"


@dataclass(frozen=True)
class RegionState:
    """One sample: per region, the JWKS digest of its bucket, its keyring generation, its signing view's kids (None: unreadable)."""

    at: float
    digests: dict[str, str | None]
    generations: dict[str, int | None]
    signing_kids: dict[str, tuple[str, ...] | None]

    @property
    def origins_agree(self) -> bool:
        values = set(self.digests.values())
        return len(values) == 1 and None not in values

    @property
    def replicas_agree(self) -> bool:
        values = set(self.generations.values())
        return len(values) == 1 and None not in values


class RegionReader:
    """Reads one :class:`RegionState` from every region's stack (its bucket, keyring secret and signing view secret)."""

    def __init__(self, cloud: LocalRegions) -> None:
        self.regions = cloud.regions
        self._s3 = {r: cloud.stack(r).client("s3") for r in self.regions}
        self._secrets = {r: cloud.stack(r).client("secretsmanager") for r in self.regions}
        settings = {r: cloud.stack(r).settings for r in self.regions}
        self._buckets = {r: s.jwks_bucket for r, s in settings.items()}
        self._keyring_ids = {r: s.keyring_secret_id for r, s in settings.items()}
        self._signing_ids = {r: s.signing_secret_id for r, s in settings.items()}

    def read(self) -> RegionState:
        at = time.time()
        digests: dict[str, str | None] = {}
        generations: dict[str, int | None] = {}
        signing: dict[str, tuple[str, ...] | None] = {}
        for region in self.regions:
            digests[region] = self._digest(region)
            keyring = self._keyring(region, self._keyring_ids[region])
            generations[region] = None if keyring is None else keyring.generation
            view = self._keyring(region, self._signing_ids[region]) if self._signing_ids[region] else None
            signing[region] = None if view is None else tuple(sorted(k.kid for k in view.keys))
        return RegionState(at, digests, generations, signing)

    def _digest(self, region: str) -> str | None:
        try:
            body = self._s3[region].get_object(Bucket=self._buckets[region], Key=JWKS_PATH)["Body"].read()
        except Exception:  # not there yet, or unreadable: no digest
            return None
        return hashlib.sha256(body).hexdigest()[:12]

    def _keyring(self, region: str, secret_id: str) -> Keyring | None:
        try:
            response = self._secrets[region].get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
            return Keyring.from_json(response["SecretString"])
        except Exception:  # a replica not there yet, or no valid keyring: unreadable
            return None


class RegionStates:
    """A sampler thread's samples and waits on them: :meth:`converged_after` is the first agreeing sample after a moment."""

    def __init__(self, reader: RegionReader, interval: float) -> None:
        self.reader = reader
        self.interval = interval
        self.samples: list[RegionState] = []
        self.errors = 0
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)

    def loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.time()
            try:
                state = self.reader.read()
            except Exception:  # moto itself unreachable for a moment: counted, sampling goes on
                with self._lock:
                    self.errors += 1
            else:
                with self._new:
                    self.samples.append(state)
                    self._new.notify_all()
            stop.wait(max(0.0, self.interval - (time.time() - started)))

    def snapshot(self) -> list[RegionState]:
        with self._lock:
            return list(self.samples)

    def latest(self) -> RegionState | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def converged_after(self, moment: float) -> tuple[float | None, float | None]:
        """When the origins, and when the replicas, first agreed in a sample read after ``moment`` (None: not yet)."""
        origins = replicas = None
        for state in self.snapshot():
            if state.at < moment:
                continue
            if origins is None and state.origins_agree:
                origins = state.at
            if replicas is None and state.replicas_agree:
                replicas = state.at
            if origins is not None and replicas is not None:
                break
        return origins, replicas

    def wait_converged(self, moment: float, timeout: float, stop: threading.Event) -> tuple[float | None, float | None]:
        """Wait (at most ``timeout``) until both agree after ``moment``; the two times as :meth:`converged_after` gives them."""
        deadline = time.time() + timeout
        while True:
            origins, replicas = self.converged_after(moment)
            if (origins is not None and replicas is not None) or time.time() >= deadline or stop.is_set():
                return origins, replicas
            with self._new:
                self._new.wait(timeout=min(0.5, max(0.0, deadline - time.time())))

    def diverged_between(self, start: float, end: float) -> dict[str, bool]:
        """Whether the origins, and the replicas, disagreed in any sample read between ``start`` and ``end``."""
        window = [s for s in self.snapshot() if start <= s.at <= end]
        return {"origins": any(not s.origins_agree for s in window), "replicas": any(not s.replicas_agree for s in window)}

    def generation_gap(self, start: float, end: float) -> int:
        """The largest difference between regions' keyring generations in a sample read between ``start`` and ``end``."""
        gaps = [0]
        for state in self.snapshot():
            if start <= state.at <= end:
                known = [g for g in state.generations.values() if g is not None]
                if known:
                    gaps.append(max(known) - min(known))
        return max(gaps)
