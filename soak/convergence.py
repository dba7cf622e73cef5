"""What verifiers are served, and whether the published documents catch up with the keyring once faults stop.

:func:`sample_jwks` reads the JWKS through the edge every few tens of
milliseconds. :class:`ConvergenceWatch` checks, after each main tick that
follows the end of a fault episode, that the documents in S3 match the
keyring (read from moto directly, no faults), and times when the edge
serves them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
from typing import Any

from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.lifecycle.documents import JWKS_PATH, build_documents
from jwks_rotator.core.settings import Settings

from .records import ConvergeRecord, Observations, Sample, TickRecord

MAX_TICKS_TO_CONVERGE = 30  # give up watching an episode after this many ticks that did not converge


def sample_jwks(jwks_url: str, interval: float, seen: Observations, stop: threading.Event) -> None:
    """Fetch the JWKS every ``interval`` seconds until ``stop``; record its kids and a digest (or the error)."""
    while not stop.is_set():
        start = time.time()
        try:
            with urllib.request.urlopen(jwks_url, timeout=5) as response:
                body = response.read()
            kids = frozenset(str(k["kid"]) for k in json.loads(body)["keys"])
        except (OSError, ValueError, KeyError) as exc:
            with seen.lock:
                seen.sample_errors[type(exc).__name__] += 1
        else:
            sample = Sample(start, time.time(), kids, hashlib.sha256(body).hexdigest()[:12])
            with seen.lock:
                seen.samples.append(sample)
        stop.wait(max(0.0, interval - (time.time() - start)))


class ConvergenceWatch:
    """One episode's convergence check at a time: :meth:`expect` it, ticks report to :meth:`after_tick`, :meth:`wait` for the verdict."""

    def __init__(self, settings: Settings, store: SecretsManagerKeyringStore, s3: Any, jwks_url: str, seen: Observations) -> None:
        self.settings = settings
        self.store = store
        self.s3 = s3
        self.jwks_url = jwks_url
        self.seen = seen
        self.pending: ConvergeRecord | None = None
        self.done = threading.Event()

    def expect(self, episode: str) -> None:
        """Faults stopped now: the next main tick must leave the documents matching the keyring."""
        record = ConvergeRecord(episode, time.time())
        self.done.clear()
        self.pending = record
        with self.seen.lock:
            self.seen.converges.append(record)

    def wait(self, timeout: float = 60) -> None:
        self.done.wait(timeout=timeout)

    def documents_match(self) -> tuple[bool, bytes]:
        """Whether every document in S3 is what the keyring gives; and the JWKS it gives."""
        keyring = self.store.load().keyring
        documents = build_documents(self.settings, keyring)
        for path, body in documents.files.items():
            stored = self.s3.get_object(Bucket=self.settings.jwks_bucket, Key=path)["Body"].read()
            if stored != body:
                return False, documents.files[JWKS_PATH]
        return True, documents.files[JWKS_PATH]

    def after_tick(self, record: TickRecord) -> None:
        """Called after each main tick run alone; settles the pending episode once the documents match."""
        pending = self.pending
        if pending is None or record.start < pending.faults_stopped:
            return
        pending.ticks += 1
        if pending.first_tick_end is None:
            pending.first_tick_end = record.end
        matched, jwks = self.documents_match()
        if not matched:
            if pending.ticks >= MAX_TICKS_TO_CONVERGE:
                self.pending = None
                self.done.set()
            return
        pending.converged_at = time.time()
        pending.within_one_tick = pending.ticks == 1
        deadline = time.time() + self.settings.jwks_max_age.total_seconds() + 1.0
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.jwks_url, timeout=5) as response:
                    if response.read() == jwks:
                        pending.edge_caught_up = time.time()
                        break
            except OSError:
                pass
            time.sleep(0.05)
        self.pending = None
        self.done.set()
