"""The sign handler serving invocations at once on threads of one process: caches, budget, counts and lines stay consistent.

Lambda Managed Instances (and the local stack) run several invocations at once in one environment. A thread pool
hammers one handler module with mixed callers (issued, not allowed, unauthenticated, a refused audience) while the
keyring rotates to a new key mid-flight. Every line written (audit, log, EMF) goes through one stream that writes in
small pieces and yields between them, so lines written without the output lock would come out torn.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest

from jwks_rotator.core.callers.verifier import CallerVerifier
from jwks_rotator.core.issuance.profiles import load_issuance_policy
from jwks_rotator.core.issuance.service import IssuanceService
from jwks_rotator.core.issuance.signer import TokenSigner
from jwks_rotator_testkit.callers import SIGN_FUNCTION_NAME, ArnReplayer, LambdaContext, policy_yaml, role_caller
from tests.sign_support import (
    ISSUER,
    InMemoryKeyringReader,
    InMemoryRevocations,
    active_key,
    keyring_json,
    load_sign_app,
    public_key,
    settings,
)

STS_URL = "https://sts.us-east-1.amazonaws.com"
OLD, NEW = active_key("ES256", index=0), active_key("ES256", index=1)
POLICY = policy_yaml({"name": "orders", "callers": ["arn:aws:iam::123456789012:role/orders-service"], "audiences": ["orders-api"], "subjects": [".+"]})
CALLERS = [role_caller("orders-service", session=f"s{i}") for i in range(6)]
STRANGER = role_caller("intruder")
CALLS = 480


class PiecemealStream:
    """A text stream that stores each write in 5-character pieces, yielding the GIL between pieces."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def write(self, text: str) -> int:
        for start in range(0, len(text), 5):
            self.pieces.append(text[start : start + 5])
            time.sleep(0)
        return len(text)

    def flush(self) -> None:
        pass

    def lines(self) -> list[str]:
        return "".join(self.pieces).splitlines()


class SteppedClock:
    """A monotonic clock that moves only when told (thread-safe enough: one float, replaced whole)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingReader(InMemoryKeyringReader):
    """Counts reads and how many ran at the same time (a read takes a moment, as a network read does)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.running = 0
        self.most_at_once = 0
        self._guard = threading.Lock()

    def read_current(self) -> Any:
        with self._guard:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.01)
            return super().read_current()
        finally:
            with self._guard:
                self.running -= 1


@pytest.fixture
def fast_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_concurrent_invocations_with_a_rotation_mid_flight_stay_consistent(fast_switching: None) -> None:
    app = load_sign_app("sign_app_concurrent")
    clock = SteppedClock()
    reader = CountingReader(keyring_json(OLD))
    revocations = InMemoryRevocations()
    cfg = settings(allowed_audiences=("orders-api", "billing-api"), default_audience="orders-api")
    signer = TokenSigner(cfg, reader, listener=app._on_refresh, revocations=revocations, monotonic=clock)
    replayer = ArnReplayer(*CALLERS, STRANGER)
    verifier = CallerVerifier(
        replayer, wall_clock=time.time, monotonic_clock=time.monotonic, max_age=300, leeway=60, sts_host="sts.us-east-1.amazonaws.com",
        sts_region="us-east-1", on_event=app._on_proof_event, rate_per_second=1000.0, burst=1000,
    )
    app._service = IssuanceService(signer, verifier, load_issuance_policy(POLICY, max_token_ttl=3600, default_token_ttl=900),
                                   on_decision=app._on_decision)
    stream = PiecemealStream()
    app.audit._stream = stream
    app.logger.stream = stream
    app.metrics.stream = stream
    app.METRICS_FLUSH_SECONDS = 0.0  # flush after every call: flushes race with counts
    proofs = {caller.access_key: caller.proof(sts_endpoint_url=STS_URL, signer=SIGN_FUNCTION_NAME) for caller in [*CALLERS, STRANGER]}
    context = LambdaContext()

    def call(index: int) -> tuple[str, dict[str, Any]]:
        kind = ("issued", "issued", "issued", "not_allowed", "no_proof", "bad_audience")[index % 6]
        if index == CALLS // 2:  # the rotation, mid-flight: a new keyring version, and the cache's ttl runs out
            reader.publish(keyring_json(NEW), "v2")
            clock.now += cfg.signer_cache_ttl.total_seconds() + 1
        caller = CALLERS[index % len(CALLERS)]
        if kind == "not_allowed":
            event: dict[str, Any] = {"proof": proofs[STRANGER.access_key], "sub": f"user-{index}", "aud": "orders-api"}
        elif kind == "no_proof":
            event = {"sub": f"user-{index}", "aud": "orders-api"}
        else:
            event = {"proof": proofs[caller.access_key], "sub": f"user-{index}", "aud": "billing-api" if kind == "bad_audience" else "orders-api"}
        return kind, app.handler(event, context)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(CALLS)))
    app._last_flush = -math.inf
    app._flush_metrics()  # whatever was counted after the last flush

    keys = {OLD.kid: public_key(OLD), NEW.kid: public_key(NEW)}
    expected = {"issued": None, "not_allowed": "caller_not_allowed", "no_proof": "unauthenticated", "bad_audience": "audience_not_allowed"}
    jtis: list[str] = []
    kids: Counter[str] = Counter()
    for index, (kind, response) in enumerate(results):
        if kind == "issued":
            assert "token" in response, (index, response)
            claims = jwt.decode(response["token"], keys[response["kid"]], algorithms=["ES256"], audience="orders-api", issuer=ISSUER)
            assert claims["sub"] == f"user-{index}"
            jtis.append(claims["jti"])
            kids[response["kid"]] += 1
        else:
            assert response["error"] == expected[kind], (kind, response)
    issued = sum(1 for kind, _ in results if kind == "issued")
    assert len(set(jtis)) == len(jtis) == issued
    assert kids[OLD.kid] > 0 and kids[NEW.kid] > 0  # the rotation happened while tokens were being issued

    lines = [json.loads(line) for line in stream.lines()]  # every line parses: none torn, none interleaved
    audit = [line for line in lines if line.get("type") == "jwks-rotator.audit"]
    assert len(audit) == CALLS
    assert Counter(line["error"] for line in audit) == Counter(expected[kind] for kind, _ in results)
    assert sorted(line["jti"] for line in audit if line["decision"] == "issued") == sorted(jtis)

    totals: Counter[str] = Counter()
    for record in (line for line in lines if "_aws" in line):
        for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            totals[metric["Name"]] += int(record[metric["Name"]][0])
    kinds = Counter(kind for kind, _ in results)
    assert totals["TokensIssued_ES256"] == totals["IssuedByProfile_orders"] == issued  # no count lost, none counted twice
    assert totals["Refusals_caller_not_allowed"] == kinds["not_allowed"]
    assert totals["Refusals_unauthenticated"] == kinds["no_proof"]
    assert totals["Refusals_audience_not_allowed"] == totals["RefusedByProfile_orders_audience_not_allowed"] == kinds["bad_audience"]
    # One read at a time, and only two in all: the first, and one after the rotation's ttl ran out.
    assert reader.most_at_once == 1
    assert reader.calls == revocations.calls == totals["KeyCacheRefreshes"] == 2
    # One replay per distinct proof presented (4 callers' and the stranger's), plus at most one per thread that raced
    # another for the same new proof (the replay runs outside the verifier's lock).
    assert 5 <= totals["ProofReplays"] <= 5 + 16
    assert app.handler({"proof": proofs[CALLERS[0].access_key], "sub": "u", "aud": "orders-api"}, context)["kid"] == NEW.kid


def test_the_replay_budget_is_spent_exactly_once_per_new_proof_under_contention(fast_switching: None) -> None:
    callers = [role_caller("orders-service", session=f"budget-{i}") for i in range(64)]
    replayer = ArnReplayer(*callers)
    verifier = CallerVerifier(
        replayer, wall_clock=time.time, monotonic_clock=lambda: 5.0, max_age=300, leeway=60, sts_host="sts.us-east-1.amazonaws.com",
        sts_region="us-east-1", rate_per_second=1.0, burst=20,
    )
    proofs = [caller.proof(sts_endpoint_url=STS_URL, signer=SIGN_FUNCTION_NAME) for caller in callers]

    def verify(proof: Any) -> str:
        try:
            verifier.verify(proof, {SIGN_FUNCTION_NAME})
        except Exception as exc:
            return getattr(exc, "reason", type(exc).__name__)
        return "verified"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = Counter(pool.map(verify, proofs))
    assert outcomes == {"verified": 20, "rate_limited": 44}  # the clock stands still: the burst, and not one more
    assert replayer.replays == 20
