"""The soak's traffic: callers that get tokens from ``SignFunction`` and workers that verify each token once per library.

Each caller is a thread with its own :class:`~jwks_rotator_client.SignClient`
(its own session of the soak's caller role, through the local Lambda API), so
its proof is signed once and reused, as a real caller's is. Each issued token is queued once for PyJWT (``PyJWKClient``) and once for jose
(``createRemoteJWKSet`` in a node process), each at a random moment of its
life: just after issue, at a random time, or just before expiry; with ``config.envoy``, once more by Envoy's
``jwt_authn`` (:mod:`jwks_rotator_testkit.envoy`).
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from typing import Any

import jwt
from botocore.config import Config

from jwks_rotator.core.settings import Settings
from jwks_rotator_client import SignClient
from jwks_rotator_testkit.envoy import EnvoyVerifier
from jwks_rotator_testkit.verifiers import Expectation, NodeVerifier, pyjwt_verify

from .config import AUDIENCE, CacheSettings, SoakConfig
from .records import Observations, TokenRecord, Verification


class VerificationQueue:
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


ENVOY_PROVIDER = "soak"
ENVOY_REASONS = {"Jwt is expired": "expired", "Jwks doesn't have key to match kid or alg from Jwt": "kid not in JWKS"}
"""Envoy's refusal texts, named as the other verifiers' are."""

CALLER_LAMBDA_CONFIG = Config(retries={"max_attempts": 1}, read_timeout=30)
"""A caller's Lambda client: no retries (a failed invoke is counted, not hidden)."""


class Traffic:
    """Signing callers and verifier workers for one run; what they see goes to ``seen``."""

    def __init__(
        self,
        config: SoakConfig,
        settings: Settings,
        seen: Observations,
        *,
        jwks_url: str,
        expect: Expectation,
        caches: dict[str, CacheSettings],
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.settings = settings
        self.seen = seen
        self.jwks_url = jwks_url
        self.expect = expect
        self.caches = caches
        self.stop = stop
        self.over = threading.Event()  # set when callers should stop; workers drain their queues
        self.queues = {library: VerificationQueue() for library in config.libraries}

    def close_queues(self) -> None:
        for queue in self.queues.values():
            queue.close()

    # --- callers ---------------------------------------------------------------
    def caller(self, index: int, client: SignClient) -> None:
        seen = self.seen
        rng = random.Random(self.config.seed * 1000 + index)
        max_ttl = int(self.settings.max_token_ttl.total_seconds())
        n = 0
        while not self.over.is_set() and not self.stop.is_set():
            n += 1
            ttl = max_ttl if rng.random() < 0.7 else rng.randint(1, max_ttl)
            payload = {"sub": f"soak-{index}-{n}", "aud": AUDIENCE, "ttl": ttl}
            start = time.time()
            try:
                body = client.sign(payload)
            except Exception as exc:  # SignInvokeError (the function crashed) or the invoke itself failed
                with seen.lock:
                    seen.invoke_errors[type(exc).__name__] += 1
                continue
            end = time.time()
            if "token" in body:
                self.issued(body, start, end, rng)
            else:
                with seen.lock:
                    seen.sign_refusals[str(body.get("error", "unknown"))] += 1
                    if body.get("error") == "signing_unavailable":
                        seen.unavailable_reasons[str(body.get("message", ""))] += 1
            self.stop.wait(self.config.caller_pause)

    def issued(self, body: dict[str, Any], start: float, end: float, rng: random.Random) -> TokenRecord:
        """Record a token and queue it once per library, each at a random moment of its life."""
        with self.seen.lock:
            record = TokenRecord(len(self.seen.tokens), str(body["kid"]), start, end, int(body["expires_at"]), str(body["token"]))
            self.seen.tokens.append(record)
        last = record.exp - self.config.expiry_margin
        for queue in self.queues.values():
            moment = rng.choice(("after issue", "random", "before expiry"))
            if moment == "after issue":
                due = end
            elif moment == "random":
                due = rng.uniform(end, max(end, last))
            else:
                due = max(end, last - rng.uniform(0.0, 0.25))
            queue.put(due, record, moment)
        return record

    # --- verifier workers -----------------------------------------------------------
    def pyjwt_worker(self, index: int) -> None:
        cache = self.caches["pyjwt"]
        client = jwt.PyJWKClient(self.jwks_url, lifespan=cache.lifespan, cooldown_duration=cache.cooldown, timeout=10)
        alg = self.config.algorithm
        while (job := self.queues["pyjwt"].take()) is not None:
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

    def jose_worker(self, index: int, node: NodeVerifier) -> None:
        cache = self.caches["jose"]
        alg = self.config.algorithm
        while (job := self.queues["jose"].take()) is not None:
            due, token, moment = job
            start = time.time()
            answer = node.verify(
                token.token,
                alg=alg,
                expect=self.expect,
                jwks_url=self.jwks_url,
                cache_max_age_ms=int(cache.lifespan * 1000),
                cooldown_ms=int(cache.cooldown * 1000),
                client=f"soak-jose-{index}",
            )
            if answer.get("ok"):
                self._record("jose", moment, due, start, token, True)
            else:
                code = str(answer.get("code", "UNKNOWN"))
                self._record("jose", moment, due, start, token, False, "expired" if code == "ERR_JWT_EXPIRED" else code)

    def envoy_worker(self, index: int, envoy: EnvoyVerifier) -> None:
        """Envoy's ``jwt_authn`` in front of an echo upstream: 200 is accepted, 401 with Envoy's reason is a refusal."""
        while (job := self.queues["envoy"].take()) is not None:
            due, token, moment = job
            start = time.time()
            try:
                answer = envoy.check(ENVOY_PROVIDER, token.token)
            except OSError as exc:
                self._record("envoy", moment, due, start, token, False, f"envoy unreachable: {type(exc).__name__}")
                continue
            if answer.ok:
                self._record("envoy", moment, due, start, token, True)
            else:
                self._record("envoy", moment, due, start, token, False, ENVOY_REASONS.get(answer.reason, f"{answer.status} {answer.reason}"))

    def _record(self, library: str, moment: str, due: float, start: float, token: TokenRecord, ok: bool, reason: str = "") -> None:
        result = Verification(library, moment, due, start, time.time(), token.exp, ok, reason, token.kid)
        with self.seen.lock:
            self.seen.verifications.append(result)
