"""The soak: the local stack under concurrent signing, caching verifiers and injected faults.

One run per algorithm (:func:`run_soak`):

* ``LocalStack`` with fast settings, its functions reaching moto through a
  :class:`~soak.proxy.FaultProxy`; the schedule is driven here (manual ticks)
  so ticks can be paused, doubled and crashed;
* callers (threads) get tokens from ``SignFunction`` through the Lambda Invoke
  API with boto3; every token is verified once by PyJWT's ``PyJWKClient`` and
  once by jose's ``createRemoteJWKSet`` (``tests/interop/node/verify.mjs``),
  each at a random moment of its life, caches on, scaled to the lead;
* a sampler reads the JWKS through the edge (as verifiers see it) every few
  tens of milliseconds;
* episodes of faults (random per-request faults always, plus one scenario:
  a second rotator ticking concurrently, a rotator crashing after its keyring
  write, a rotator killed after its write, ticks paused longer than the lead),
  each followed by a quiet spell whose first tick must leave the published
  documents matching the keyring.

Nothing here prints tokens or key material.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import math
import random
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from jwks_rotator.adapters.s3_publisher import S3Publisher
from jwks_rotator.adapters.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.jwks import JWKS_PATH, build_documents
from jwks_rotator.core.keyring import Keyring
from jwks_rotator.core.ports import PublishResult, VersionedKeyring
from jwks_rotator.core.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.local_stack import LocalStack

from .proxy import FaultProxy, FaultRates

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the node verifier and PyJWT helper live in the interop suite
    sys.path.insert(0, str(REPO))

from tests.interop.support import Expectation, NodeVerifier, pyjwt_verify  # noqa: E402

PRODUCTION_LEAD = 172_800.0  # the default publish lead (2 d) the libraries' defaults are safe against
PYJWT_DEFAULTS = (300.0, 30.0)  # PyJWKClient lifespan, cooldown_duration
JOSE_DEFAULTS = (600.0, 30.0)  # createRemoteJWKSet cacheMaxAge, cooldownDuration
AUDIENCE = "soak-api"
B_TAG = "soak-rotator-b"
EPISODES = ("double", "crash", "kill", "pause", "faults")
Log = Callable[[str], None]


@dataclass(frozen=True)
class SoakConfig:
    """One soak run's knobs; settings are passed to the local stack as on the command line."""

    algorithm: str = "ES256"
    duration: float = 24.0  # seconds of traffic; the run adds setup and a drain of max-token-ttl
    rotation_period: str = "10s"
    publish_lead: str = "3s"
    max_token_ttl: str = "5s"
    default_token_ttl: str = "5s"
    jwks_max_age: str = "2s"
    schedule: str = "1s"
    signer_cache_ttl: str = "1s"
    clock_skew_leeway: str = "1s"
    callers: int = 3
    caller_pause: float = 0.03
    pyjwt_workers: int = 2
    jose_workers: int = 2
    sample_interval: float = 0.05
    episode_seconds: float = 4.0
    quiet_seconds: float = 1.5
    episodes: tuple[str, ...] = ("double", "crash", "kill", "pause", "faults")
    rates: FaultRates = field(default_factory=FaultRates)
    seed: int = 1
    expiry_margin: float = 0.15  # verify at least this long before exp (clock granularity; leeway 0)

    def settings(self) -> dict[str, str]:
        return {
            "algorithm": self.algorithm,
            "rotation-period": self.rotation_period,
            "publish-lead": self.publish_lead,
            "max-token-ttl": self.max_token_ttl,
            "default-token-ttl": self.default_token_ttl,
            "jwks-max-age": self.jwks_max_age,
            "schedule": self.schedule,
            "signer-cache-ttl": self.signer_cache_ttl,
            "clock-skew-leeway": self.clock_skew_leeway,
            "allowed-audiences": AUDIENCE,
            "default-audience": AUDIENCE,
        }


@dataclass(frozen=True)
class CacheSettings:
    """A verifier library's JWKS cache: how long it keeps a set, how long it refuses a forced refetch."""

    lifespan: float
    cooldown: float


def scaled_caches(lead: float) -> dict[str, CacheSettings]:
    """Library defaults scaled by lead / 2 d, floored so the caches stay on (lifespan >= lead/3, cooldown >= lead/6).

    The floors keep ``cooldown + jwks-max-age <= lead`` for the settings used here
    (0.5 s + 2 s <= 3 s), which is the condition under which a kid-refetching
    verifier never misses a key published a full lead before it signs.
    """
    ratio = lead / PRODUCTION_LEAD
    return {
        "pyjwt": CacheSettings(max(PYJWT_DEFAULTS[0] * ratio, lead / 3), max(PYJWT_DEFAULTS[1] * ratio, lead / 6)),
        "jose": CacheSettings(max(JOSE_DEFAULTS[0] * ratio, 2 * lead / 3), max(JOSE_DEFAULTS[1] * ratio, lead / 6)),
    }


# --- records ---------------------------------------------------------------------


@dataclass
class TokenRecord:
    seq: int
    kid: str
    issued_start: float
    issued_end: float
    exp: int
    token: str = field(repr=False)


@dataclass(frozen=True)
class Sample:
    start: float
    end: float
    kids: frozenset[str]
    digest: str


@dataclass(frozen=True)
class TickRecord:
    rotator: str  # main | b
    start: float
    end: float
    ok: bool
    error: str = ""


@dataclass
class ConvergeRecord:
    episode: str
    faults_stopped: float
    first_tick_end: float | None = None
    within_one_tick: bool = False
    converged_at: float | None = None
    ticks: int = 0
    edge_caught_up: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.converged_at is None else self.converged_at - self.faults_stopped


@dataclass(frozen=True)
class Verification:
    library: str
    moment: str
    due: float
    start: float
    end: float
    exp: int
    ok: bool
    reason: str = ""

    @property
    def unexpired_refusal(self) -> bool:
        """A refusal of a token that had not expired when it was checked (the soak's one unforgivable outcome)."""
        if self.ok:
            return False
        if self.start >= self.exp:
            return False  # checked after expiry: any refusal is right
        return not (self.reason == "expired" and self.end >= self.exp)


# --- the second rotator ------------------------------------------------------------


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


def tagged_client_factory(endpoint: str, region: str, tag: str) -> Callable[[str], Any]:
    """boto3 clients through the proxy whose User-Agent carries ``tag`` (so the proxy can kill them)."""
    config = Config(user_agent_extra=tag, retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5)

    def make(service: str) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )

    return make


# --- the run -------------------------------------------------------------------------


class _Jobs:
    """Verification jobs of one library, earliest due first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TokenRecord, str]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self.closed = False

    def put(self, due: float, token: TokenRecord, moment: str) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), token, moment))
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap)

    def take(self) -> tuple[float, TokenRecord, str] | None:
        """The next due job (waiting for it), or None once closed and empty."""
        with self._cond:
            while True:
                if self._heap:
                    wait = self._heap[0][0] - time.time()
                    if wait <= 0:
                        due, _, token, moment = heapq.heappop(self._heap)
                        return due, token, moment
                    self._cond.wait(min(wait, 0.5))
                elif self.closed:
                    return None
                else:
                    self._cond.wait(0.5)


class SoakRun:
    """One algorithm's soak; :meth:`run` returns the summary as a dict."""

    def __init__(self, config: SoakConfig, log: Log = print) -> None:
        self.config = config
        self.log = log
        self.rng = random.Random(config.seed)
        self.stop = threading.Event()
        self.traffic_over = threading.Event()
        self.lock = threading.Lock()
        self.tokens: list[TokenRecord] = []
        self.sign_refusals: Counter[str] = Counter()
        self.invoke_errors: Counter[str] = Counter()
        self.verifications: list[Verification] = []
        self.samples: list[Sample] = []
        self.sample_errors: Counter[str] = Counter()
        self.ticks: list[TickRecord] = []
        self.converges: list[ConvergeRecord] = []
        self.scenarios: Counter[str] = Counter()
        self.key_history: dict[str, dict[str, float | None]] = {}  # kid -> activated/retired times (unix)
        self.latest_keyring: Keyring | None = None
        # ticker control
        self.main_ticks = True
        self.b_ticks = False
        self.b_concurrent = False
        self.converge_pending: ConvergeRecord | None = None
        self.converge_done = threading.Event()
        self.jobs = {"pyjwt": _Jobs(), "jose": _Jobs()}
        self.tick_lock = threading.Lock()

    # --- setup ---------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = self.config
        wall_start = time.time()
        proxy = FaultProxy(cfg.rates, seed=cfg.seed)
        proxy_url = proxy.bind()
        stack = LocalStack(cfg.settings(), aws_endpoint=proxy_url, tick=False, function_log_level="CRITICAL")
        threads: list[threading.Thread] = []
        nodes: list[NodeVerifier] = []
        try:
            stack.start()
            proxy.start(stack.moto_endpoint)
            self.proxy, self.stack = proxy, stack
            self.settings: Settings = stack.settings
            self.lead = self.settings.publish_lead.total_seconds()
            self.retention = self.settings.effective_retention.total_seconds()
            self.caches = scaled_caches(self.lead)
            self.expect = Expectation(issuer=stack.issuer, audience=AUDIENCE)
            self.direct_store = SecretsManagerKeyringStore(stack.client("secretsmanager"), stack.resources.secret_id)  # type: ignore[union-attr]
            self.direct_s3 = stack.client("s3")
            self._first_tick()
            self._build_b(proxy_url)
            for i in range(cfg.jose_workers):
                nodes.append(NodeVerifier())
            threads += [threading.Thread(target=self._sampler, name="soak-sampler", daemon=True)]
            threads += [threading.Thread(target=self._ticker, name="soak-ticker", daemon=True)]
            threads += [
                threading.Thread(target=self._pyjwt_worker, args=(i,), name=f"soak-pyjwt-{i}", daemon=True)
                for i in range(cfg.pyjwt_workers)
            ]
            threads += [
                threading.Thread(target=self._jose_worker, args=(i, node), name=f"soak-jose-{i}", daemon=True)
                for i, node in enumerate(nodes)
            ]
            callers = [
                threading.Thread(target=self._caller, args=(i, self._lambda_client()), name=f"soak-caller-{i}", daemon=True)
                for i in range(cfg.callers)
            ]
            for thread in threads + callers:
                thread.start()
            self._conduct(proxy, time.time() + cfg.duration)
            self.traffic_over.set()
            for thread in callers:
                thread.join(timeout=30)
            # Drain: every scheduled verification is due before its token's exp.
            for jobs in self.jobs.values():
                jobs.close()
            drain_deadline = time.time() + self.settings.max_token_ttl.total_seconds() + 30
            for thread in threads[2:]:
                thread.join(timeout=max(0.1, drain_deadline - time.time()))
            self._final_convergence()
        finally:
            self.stop.set()
            for jobs in self.jobs.values():
                jobs.close()
            for thread in threads:
                thread.join(timeout=30)
            for node in nodes:
                node.close()
            try:
                edge_stats = asdict(stack.edge.stats)
            except RuntimeError:
                edge_stats = {}
            stack.stop()
            proxy.stop()
        return self._summary(proxy, edge_stats, time.time() - wall_start)

    def _lambda_client(self) -> Any:
        return boto3.session.Session().client(
            "lambda",
            endpoint_url=self.stack.lambda_endpoint,
            region_name=self.stack.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, read_timeout=30),
        )

    def _first_tick(self) -> None:
        """Bootstrap with faults off (bounded retries), so the JWKS serves before traffic starts."""
        for _ in range(5):
            record = self._run_tick("main", self.stack.tick)
            if record.ok:
                self._snapshot()
                return
        raise RuntimeError("the first rotate tick kept failing with faults off")

    def _build_b(self, proxy_url: str) -> None:
        clients = tagged_client_factory(proxy_url, self.stack.region, B_TAG)
        self.b_store = CountingStore(SecretsManagerKeyringStore(clients("secretsmanager"), self.settings.keyring_secret_id))
        inner = S3Publisher(
            clients("s3"), self.settings.jwks_bucket, self.settings,
            cloudfront_client=clients("cloudfront"), distribution_id=self.settings.distribution_id,
        )
        self.b_publisher = CrashingPublisher(inner, self.b_store)
        quiet = _QuietLogger()
        self.b_service = RotationService(self.b_store, self.b_publisher, self.settings, logger=quiet)

    # --- ticks -------------------------------------------------------------------
    def _run_tick(self, rotator: str, tick: Callable[[], Any]) -> TickRecord:
        start = time.time()
        try:
            tick()
        except Exception as exc:  # a failed tick is an outcome here (faults, crashes), recorded and survived
            record = TickRecord(rotator, start, time.time(), False, type(exc).__name__)
        else:
            record = TickRecord(rotator, start, time.time(), True)
        with self.lock:
            self.ticks.append(record)
        return record

    def _b_tick(self) -> None:
        self.b_publisher.saves_at_tick_start = self.b_store.saves
        try:
            self.b_service.tick()
        finally:
            if self.proxy.disarm_cut():  # the cut fired during this tick: this rotator is dead for the episode
                self._count("rotator killed after its keyring write (later calls refused)")
                self.b_ticks = False

    def _count(self, kind: str) -> None:
        with self.lock:
            self.scenarios[kind] += 1

    def _ticker(self) -> None:
        interval = self.settings.schedule.total_seconds()
        next_at = time.time()
        while not self.stop.is_set():
            delay = next_at - time.time()
            if delay > 0 and self.stop.wait(delay):
                return
            next_at = max(next_at + interval, time.time())
            with self.tick_lock:
                self._tick_once()
            self._snapshot()

    def _tick_once(self) -> None:
        """One schedule slot: main alone, main and the second rotator at once, the second alone, or none."""
        if self.main_ticks and self.b_concurrent:
            other = threading.Thread(target=self._run_tick, args=("b", self._b_tick), daemon=True)
            other.start()
            self._run_tick("main", self.stack.tick)
            other.join(timeout=60)
        elif self.main_ticks:
            record = self._run_tick("main", self.stack.tick)
            self._check_convergence(record)
        elif self.b_ticks:
            self._run_tick("b", self._b_tick)

    def _snapshot(self) -> None:
        """Read the keyring from moto directly (no faults) and note activations and retirements."""
        try:
            keyring = self.direct_store.load().keyring
        except Exception:
            return
        with self.lock:
            self.latest_keyring = keyring
            for key in keyring.keys:
                entry = self.key_history.setdefault(key.kid, {"activated": None, "retired": None, "published": None})
                for name, value in (("activated", key.activated_at), ("retired", key.retired_at), ("published", key.published_at)):
                    if value is not None and entry[name] is None:
                        entry[name] = value.timestamp()

    def _documents_match(self) -> tuple[bool, bytes]:
        keyring = self.direct_store.load().keyring
        documents = build_documents(self.settings, keyring)
        for path, body in documents.files.items():
            stored = self.direct_s3.get_object(Bucket=self.settings.jwks_bucket, Key=path)["Body"].read()
            if stored != body:
                return False, documents.files[JWKS_PATH]
        return True, documents.files[JWKS_PATH]

    def _check_convergence(self, record: TickRecord) -> None:
        pending = self.converge_pending
        if pending is None or record.start < pending.faults_stopped:
            return
        pending.ticks += 1
        if pending.first_tick_end is None:
            pending.first_tick_end = record.end
        matched, jwks = self._documents_match()
        if not matched:
            if pending.ticks >= 30:
                self.converge_pending = None
                self.converge_done.set()
            return
        pending.converged_at = time.time()
        pending.within_one_tick = pending.ticks == 1
        deadline = time.time() + self.settings.jwks_max_age.total_seconds() + 1.0
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.stack.jwks_url, timeout=5) as response:
                    if response.read() == jwks:
                        pending.edge_caught_up = time.time()
                        break
            except OSError:
                pass
            time.sleep(0.05)
        self.converge_pending = None
        self.converge_done.set()

    # --- the conductor -------------------------------------------------------------
    def _next_transition(self) -> float | None:
        """Unix time of the next due lifecycle change, from the latest keyring snapshot."""
        keyring = self.latest_keyring
        if keyring is None:
            return None
        period = self.settings.rotation_period.total_seconds()
        times = [k.retired_at.timestamp() + self.retention for k in keyring.keys if k.retired_at is not None]
        active = keyring.active
        if active is not None and active.activated_at is not None:
            times.append(active.activated_at.timestamp() + period)
        future = [t for t in times if t > time.time()]
        return min(future) if future else None

    def _sleep_until(self, moment: float) -> None:
        while not self.stop.is_set() and time.time() < moment:
            time.sleep(min(0.1, max(0.0, moment - time.time())))

    def _conduct(self, proxy: FaultProxy, traffic_end: float) -> None:
        cfg = self.config
        episodes = itertools.cycle(cfg.episodes)
        while time.time() + cfg.episode_seconds <= traffic_end and not self.stop.is_set():
            kind = next(episodes)
            if kind in ("crash", "kill"):
                # Line the episode up with a due transition so the second rotator has a write to crash after.
                due = self._next_transition()
                if due is not None and due - 0.5 < traffic_end - cfg.episode_seconds and due - time.time() < cfg.episode_seconds * 2:
                    self._sleep_until(due - 0.5)
            started = time.time()
            length = max(cfg.episode_seconds, self.lead + 1.0) if kind == "pause" else cfg.episode_seconds
            proxy.enabled = True
            self._begin(kind, proxy)
            self._sleep_until(started + length)
            self._end(kind, proxy)
            proxy.enabled = False
            record = ConvergeRecord(kind, time.time())
            self.converge_done.clear()
            self.converge_pending = record
            with self.lock:
                self.converges.append(record)
            self._sleep_until(time.time() + cfg.quiet_seconds)
            self.converge_done.wait(timeout=60)

    def _begin(self, kind: str, proxy: FaultProxy) -> None:
        self._count(f"episode: {kind}")
        if kind == "double":
            self.b_concurrent = True
        elif kind == "crash":
            self.b_publisher.armed = True
            self.main_ticks, self.b_ticks = False, True
        elif kind == "kill":
            proxy.arm_cut(B_TAG)
            self.main_ticks, self.b_ticks = False, True
        elif kind == "pause":
            self.main_ticks = self.b_ticks = False

    def _end(self, kind: str, proxy: FaultProxy) -> None:
        if kind == "kill":
            self._wait_b_idle()
            proxy.disarm_cut()
        if kind == "crash":
            self.b_publisher.armed = False
        self.main_ticks, self.b_ticks, self.b_concurrent = True, False, False

    def _wait_b_idle(self) -> None:
        """Stop the second rotator and wait for its tick in flight (bounded)."""
        self.b_ticks = False
        if self.tick_lock.acquire(timeout=60):
            self.tick_lock.release()

    def _final_convergence(self) -> None:
        """The last quiet spell: the first tick after the drain leaves S3 matching the keyring."""
        record = ConvergeRecord("end of run", time.time())
        self.converge_done.clear()
        self.converge_pending = record
        with self.lock:
            self.converges.append(record)
        self.converge_done.wait(timeout=60)

    # --- traffic -----------------------------------------------------------------------
    def _caller(self, index: int, client: Any) -> None:
        rng = random.Random(self.config.seed * 1000 + index)
        max_ttl = int(self.settings.max_token_ttl.total_seconds())
        n = 0
        while not self.traffic_over.is_set() and not self.stop.is_set():
            n += 1
            ttl = max_ttl if rng.random() < 0.7 else rng.randint(1, max_ttl)
            payload = {"sub": f"soak-{index}-{n}", "aud": AUDIENCE, "ttl": ttl}
            start = time.time()
            try:
                response = client.invoke(FunctionName="SignFunction", Payload=json.dumps(payload).encode())
                body = json.loads(response["Payload"].read())
            except Exception as exc:
                with self.lock:
                    self.invoke_errors[type(exc).__name__] += 1
                continue
            end = time.time()
            if response.get("FunctionError"):
                with self.lock:
                    self.invoke_errors[str(body.get("errorType", "Unhandled"))] += 1
            elif "token" in body:
                self._issued(body, start, end, rng)
            else:
                with self.lock:
                    self.sign_refusals[str(body.get("error", "unknown"))] += 1
            self.stop.wait(self.config.caller_pause)

    def _issued(self, body: dict[str, Any], start: float, end: float, rng: random.Random) -> None:
        with self.lock:
            record = TokenRecord(len(self.tokens), str(body["kid"]), start, end, int(body["expires_at"]), str(body["token"]))
            self.tokens.append(record)
        last = record.exp - self.config.expiry_margin
        for library, jobs in self.jobs.items():
            moment = rng.choice(("after issue", "random", "before expiry"))
            if moment == "after issue":
                due = end
            elif moment == "random":
                due = rng.uniform(end, max(end, last))
            else:
                due = max(end, last - rng.uniform(0.0, 0.25))
            jobs.put(due, record, moment)

    def _pyjwt_worker(self, index: int) -> None:
        import jwt

        cache = self.caches["pyjwt"]
        client = jwt.PyJWKClient(self.stack.jwks_url, lifespan=cache.lifespan, cooldown_duration=cache.cooldown, timeout=10)
        alg = self.config.algorithm
        while (job := self.jobs["pyjwt"].take()) is not None:
            due, token, moment = job
            start = time.time()
            try:
                pyjwt_verify(client, token.token, alg, self.expect)
            except jwt.ExpiredSignatureError:
                self._record("pyjwt", moment, due, start, token, False, "expired")
            except jwt.PyJWKClientConnectionError:
                self._record("pyjwt", moment, due, start, token, False, "jwks fetch failed")
            except jwt.PyJWKClientError as exc:
                reason = "kid not in JWKS" if "Unable to find" in str(exc) else "PyJWKClientError"
                self._record("pyjwt", moment, due, start, token, False, reason)
            except jwt.PyJWTError as exc:
                self._record("pyjwt", moment, due, start, token, False, type(exc).__name__)
            else:
                self._record("pyjwt", moment, due, start, token, True)

    def _jose_worker(self, index: int, node: NodeVerifier) -> None:
        cache = self.caches["jose"]
        alg = self.config.algorithm
        while (job := self.jobs["jose"].take()) is not None:
            due, token, moment = job
            start = time.time()
            answer = node.verify(
                token.token,
                alg=alg,
                expect=self.expect,
                jwks_url=self.stack.jwks_url,
                cache_max_age_ms=int(cache.lifespan * 1000),
                cooldown_ms=int(cache.cooldown * 1000),
                client=f"soak-jose-{index}",
            )
            if answer.get("ok"):
                self._record("jose", moment, due, start, token, True)
            else:
                code = str(answer.get("code", "UNKNOWN"))
                self._record("jose", moment, due, start, token, False, "expired" if code == "ERR_JWT_EXPIRED" else code)

    def _record(self, library: str, moment: str, due: float, start: float, token: TokenRecord, ok: bool, reason: str = "") -> None:
        result = Verification(library, moment, due, start, time.time(), token.exp, ok, reason)
        with self.lock:
            self.verifications.append(result)

    def _sampler(self) -> None:
        interval = self.config.sample_interval
        while not self.stop.is_set():
            start = time.time()
            try:
                with urllib.request.urlopen(self.stack.jwks_url, timeout=5) as response:
                    body = response.read()
                kids = frozenset(str(k["kid"]) for k in json.loads(body)["keys"])
            except (OSError, ValueError, KeyError) as exc:
                with self.lock:
                    self.sample_errors[type(exc).__name__] += 1
            else:
                sample = Sample(start, time.time(), kids, hashlib.sha256(body).hexdigest()[:12])
                with self.lock:
                    self.samples.append(sample)
            self.stop.wait(max(0.0, interval - (time.time() - start)))

    # --- analysis ----------------------------------------------------------------------
    def _summary(self, proxy: FaultProxy, edge_stats: dict[str, Any], wall: float) -> dict[str, Any]:
        cfg = self.config
        samples = sorted(self.samples, key=lambda s: s.start)
        starts = [s.start for s in samples]
        lost = self._lost_keys(samples, starts)
        retired = self._retired_removal(samples)
        bound = 2 + math.ceil(self.retention / self.settings.rotation_period.total_seconds())
        max_keys = max((len(s.kids) for s in samples), default=0)
        by_library: dict[str, Any] = {}
        for library in ("pyjwt", "jose"):
            results = [v for v in self.verifications if v.library == library]
            refusals = Counter(v.reason for v in results if v.unexpired_refusal)
            by_library[library] = {
                "verified": sum(1 for v in results if v.ok),
                "refused_after_expiry": sum(1 for v in results if not v.ok and not v.unexpired_refusal),
                "unexpired_refusals": sum(refusals.values()),
                "unexpired_refusal_reasons": dict(refusals),
                "by_moment": dict(Counter(v.moment for v in results if v.ok)),
                "verified_in_last_second": sum(1 for v in results if v.ok and v.exp - v.end < 1.0),
                "max_start_after_due_s": round(max((v.start - v.due for v in results), default=0.0), 3),
            }
        activated = sorted(h["activated"] for h in self.key_history.values() if h["activated"] is not None)
        converges = [c for c in self.converges if c.faults_stopped]
        longest = max((c.seconds for c in converges if c.seconds is not None), default=None)
        edge_lags = [c.edge_caught_up - c.faults_stopped for c in converges if c.edge_caught_up is not None]
        ticks = Counter(f"{t.rotator} {'ok' if t.ok else 'failed'}" for t in self.ticks)
        tick_errors = Counter(f"{t.rotator}: {t.error}" for t in self.ticks if not t.ok)
        faults = Counter(proxy.faults)
        faults.update(self.scenarios)
        faults["rotator crashed between keyring write and publication"] = self.b_publisher.crashes
        issued = len(self.tokens)
        unavailable = self.sign_refusals.get("signing_unavailable", 0)
        summary: dict[str, Any] = {
            "algorithm": cfg.algorithm,
            "traffic_seconds": cfg.duration,
            "wall_seconds": round(wall, 1),
            "settings": self.settings.describe() | {"issuer": "(local edge)"},
            "verifier_caches": {name: asdict(c) for name, c in self.caches.items()},
            "tokens_issued": issued,
            "sign_requests": issued + sum(self.sign_refusals.values()) + sum(self.invoke_errors.values()),
            "sign_refusals": dict(self.sign_refusals),
            "signing_unavailable_rate": round(unavailable / max(1, issued + unavailable), 4),
            "invoke_errors": dict(self.invoke_errors),
            "verifications": by_library,
            "unexpired_refusals": sum(v["unexpired_refusals"] for v in by_library.values()),
            "rotations": max(0, len(activated) - 1),
            "ticks": dict(ticks),
            "tick_errors": dict(tick_errors),
            "faults": {k: v for k, v in sorted(faults.items()) if v},
            "proxy_requests": dict(proxy.requests),
            "jwks_samples": len(samples),
            "jwks_sample_errors": dict(self.sample_errors),
            "max_keys_in_jwks": max_keys,
            "key_bound": bound,
            "tokens_checked_for_lost_keys": issued,
            "lost_keys": lost,
            "retired_keys": retired,
            "convergence": {
                "fault_episodes_ended": len(converges),
                "within_one_tick": sum(1 for c in converges if c.within_one_tick),
                "not_within_one_tick": [
                    {"episode": c.episode, "ticks": c.ticks, "seconds": None if c.seconds is None else round(c.seconds, 2)}
                    for c in converges if not c.within_one_tick
                ],
                "longest_seconds": None if longest is None else round(longest, 2),
                "longest_edge_seconds": round(max(edge_lags), 2) if edge_lags else None,
            },
            "edge": edge_stats,
        }
        summary["checks"] = self._checks(summary)
        return summary

    def _lost_keys(self, samples: list[Sample], starts: list[float]) -> list[dict[str, Any]]:
        """Tokens whose kid was missing from a JWKS served between just before issue and exp."""
        import bisect

        lost: dict[str, dict[str, Any]] = {}
        for token in self.tokens:
            first = bisect.bisect_left(starts, token.issued_start)
            window = samples[max(0, first - 1) : bisect.bisect_left(starts, token.exp)]
            window = [s for s in window if s.end <= token.exp and s.end >= token.issued_start - 0.5]
            missing = [s for s in window if token.kid not in s.kids]
            if missing:
                entry = lost.setdefault(token.kid, {"kid": token.kid[:12], "tokens": 0, "first_missing_at": None})
                entry["tokens"] += 1
                moment = min(s.start for s in missing)
                entry["first_missing_at"] = moment if entry["first_missing_at"] is None else min(entry["first_missing_at"], moment)
        for entry in lost.values():
            entry["first_missing_at"] = datetime.fromtimestamp(entry["first_missing_at"]).strftime("%H:%M:%S.%f")[:-3]
        return list(lost.values())

    def _retired_removal(self, samples: list[Sample]) -> dict[str, Any]:
        """Every retired key whose retention ended leaves the served JWKS by the end of the first good tick after."""
        good_ticks = sorted((t for t in self.ticks if t.ok), key=lambda t: t.start)
        slack = 0.25 + 2 * self.config.sample_interval + 0.25  # edge invalidation poll + sampling
        checked, late, lags = 0, [], []
        for kid, history in self.key_history.items():
            retired = history["retired"]
            if retired is None:
                continue
            due = retired + self.retention
            tick = next((t for t in good_ticks if t.start >= due), None)
            if tick is None:
                continue  # the run ended first
            checked += 1
            deadline = tick.end + slack
            seen_after = [s.start for s in samples if kid in s.kids and s.start > deadline]
            last_seen = max((s.end for s in samples if kid in s.kids), default=retired)
            lags.append(last_seen - due)
            if seen_after:
                late.append({"kid": kid[:12], "seen_until_after_due_s": round(max(seen_after) - due, 2)})
        return {
            "retention_seconds": self.retention,
            "checked": checked,
            "late": late,
            "longest_served_after_retention_s": round(max(lags), 2) if lags else None,
        }

    def _checks(self, s: dict[str, Any]) -> dict[str, bool]:
        conv = s["convergence"]
        return {
            "zero unexpired tokens refused": s["unexpired_refusals"] == 0,
            "no lost key": not s["lost_keys"],
            "published documents match the keyring within one tick after faults stop": (
                conv["fault_episodes_ended"] > 0 and conv["within_one_tick"] == conv["fault_episodes_ended"]
            ),
            "retired keys leave the JWKS after retention": not s["retired_keys"]["late"],
            "JWKS size within bound": 0 < s["max_keys_in_jwks"] <= s["key_bound"],
            "tokens were issued and verified": s["tokens_issued"] > 0
            and all(v["verified"] > 0 for v in s["verifications"].values()),
        }


class _QuietLogger:
    """A logger for the second rotator: its messages are counted nowhere and printed nowhere."""

    def info(self, *args: Any, **kwargs: Any) -> None:
        return None

    warning = error = debug = info


def run_soak(config: SoakConfig, log: Log = print) -> dict[str, Any]:
    """Run one algorithm's soak and return its summary."""
    return SoakRun(config, log).run()
