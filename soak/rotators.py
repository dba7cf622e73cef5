"""The soak's rotators and the schedule it drives by hand.

The main rotator is the local stack's own (its functions reach moto through
the fault proxy). A second rotator ("b") has its own clients through the
proxy, tagged so the proxy can cut them, and a publisher that can crash
between the keyring write and publication. :class:`Ticker` fills each
schedule slot with the main rotator alone, both at once, b alone, or nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.ports import PublishResult, VersionedKeyring
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.local_stack import LocalStack
from jwks_rotator_testkit.moto import ClientFactory, client_factory

from .convergence import ConvergenceWatch
from .proxy import FaultProxy
from .records import Observations, TickRecord

B_TAG = "soak-rotator-b"  # in the second rotator's User-Agent: what the proxy's cut matches


class InjectedCrash(RuntimeError):
    """Raised inside a rotator between its keyring write and its publication."""


class CountingStore:
    """A keyring store that counts saves (to know whether a crash comes after a write)."""

    def __init__(self, inner: SecretsManagerKeyringStore) -> None:
        self.inner = inner
        self.saves = 0

    def load(self) -> VersionedKeyring:
        return self.inner.load()

    def save(self, keyring: Keyring, expected_version_id: str) -> str:
        version = self.inner.save(keyring, expected_version_id)
        self.saves += 1
        return version


class CrashingPublisher:
    """Publishes, unless armed and the store wrote during this tick: then the rotator "crashes"."""

    def __init__(self, inner: S3Publisher, store: CountingStore) -> None:
        self.inner = inner
        self.store = store
        self.armed = False
        self.saves_at_tick_start = 0
        self.crashes = 0

    def publish(self, documents: Any, **options: Any) -> PublishResult:
        if self.armed and self.store.saves > self.saves_at_tick_start:
            self.armed = False
            self.crashes += 1
            raise InjectedCrash("rotator crashed after its keyring write, before publishing")
        return self.inner.publish(documents, **options)


def tagged_client_factory(endpoint: str, region: str, tag: str) -> ClientFactory:
    """boto3 clients through the proxy whose User-Agent carries ``tag`` (so the proxy can kill them)."""
    config = Config(user_agent_extra=tag, retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5)
    return client_factory(endpoint, region=region, config=config, fresh_sessions=True)


class QuietLogger:
    """A logger for the second rotator: its messages are counted nowhere and printed nowhere."""

    def info(self, *args: Any, **kwargs: Any) -> None:
        return None

    warning = error = debug = info


class SecondRotator:
    """Rotator "b": the same settings and resources as the stack's, its own tagged clients, a publisher that can crash."""

    def __init__(self, proxy_url: str, region: str, settings: Settings) -> None:
        clients = tagged_client_factory(proxy_url, region, B_TAG)
        self.store = CountingStore(SecretsManagerKeyringStore(clients("secretsmanager"), settings.keyring_secret_id))
        inner = S3Publisher(
            clients("s3"), settings.jwks_bucket, settings,
            cloudfront_client=clients("cloudfront"), distribution_id=settings.distribution_id,
        )
        self.publisher = CrashingPublisher(inner, self.store)
        # Every rotator writes the signing view too: one that wrote only the keyring would leave the signer on a key it
        # retired until another rotator's tick, past the retention that key's tokens rely on.
        signing = SecretsManagerKeyringStore(clients("secretsmanager"), settings.signing_secret_id) if settings.signing_secret_id else None
        self.service = RotationService(self.store, self.publisher, settings, logger=QuietLogger(), signing_store=signing)

    def tick(self) -> None:
        self.publisher.saves_at_tick_start = self.store.saves
        self.service.tick()


class Ticker:
    """Drives the schedule: one slot every ``schedule``; the flags say who ticks in the next slot."""

    def __init__(
        self,
        stack: LocalStack,
        second: SecondRotator,
        proxy: FaultProxy,
        watch: ConvergenceWatch,
        seen: Observations,
        stop: threading.Event,
    ) -> None:
        self.stack = stack
        self.second = second
        self.proxy = proxy
        self.watch = watch
        self.seen = seen
        self.stop = stop
        self.direct_store = watch.store  # moto directly, no faults
        self.main_ticks = True
        self.b_ticks = False
        self.b_concurrent = False
        self.lock = threading.Lock()  # held for the whole of a slot

    def run_tick(self, rotator: str, tick: Callable[[], Any]) -> TickRecord:
        start = time.time()
        try:
            answer = tick()
        except Exception as exc:  # a failed tick is an outcome here (faults, crashes), recorded and survived
            record = TickRecord(rotator, start, time.time(), False, type(exc).__name__)
        else:
            skipped = isinstance(answer, dict) and answer.get("skipped") is True
            record = TickRecord(rotator, start, time.time(), True, skipped=skipped)
        with self.seen.lock:
            self.seen.ticks.append(record)
        return record

    def first_tick(self) -> None:
        """Bootstrap with faults off (bounded retries), so the JWKS serves before traffic starts."""
        for _ in range(5):
            record = self.run_tick("main", self.stack.tick)
            if record.ok:
                self.snapshot()
                return
        raise RuntimeError("the first rotate tick kept failing with faults off")

    def b_tick(self) -> None:
        try:
            self.second.tick()
        finally:
            if self.proxy.disarm_cut():  # the cut fired during this tick: this rotator is dead for the episode
                self.seen.count("rotator killed after its keyring write (later calls refused)")
                self.b_ticks = False

    def loop(self) -> None:
        """The schedule thread: a slot every ``schedule`` seconds until ``stop``, each followed by a keyring snapshot."""
        interval = self.stack.settings.schedule.total_seconds()
        next_at = time.time()
        while not self.stop.is_set():
            delay = next_at - time.time()
            if delay > 0 and self.stop.wait(delay):
                return
            next_at = max(next_at + interval, time.time())
            with self.lock:
                self._tick_once()
            self.snapshot()

    def _tick_once(self) -> None:
        """One schedule slot: main alone, main and the second rotator at once, the second alone, or none."""
        if self.main_ticks and self.b_concurrent:
            other = threading.Thread(target=self.run_tick, args=("b", self.b_tick), daemon=True)
            other.start()
            self.run_tick("main", self.stack.tick)
            other.join(timeout=60)
        elif self.main_ticks:
            record = self.run_tick("main", self.stack.tick)
            self.watch.after_tick(record)
        elif self.b_ticks:
            self.run_tick("b", self.b_tick)

    def wait_b_idle(self) -> None:
        """Stop the second rotator and wait for its tick in flight (bounded)."""
        self.b_ticks = False
        if self.lock.acquire(timeout=60):
            self.lock.release()

    def snapshot(self) -> None:
        """Read the keyring from moto directly (no faults) and note activations and retirements."""
        try:
            keyring = self.direct_store.load().keyring
        except Exception:
            return
        self.seen.note_keyring(keyring)
