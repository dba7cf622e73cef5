"""Callers of the two-region soak: per region, plain ``SignClient`` callers and ``RegionalSignClient`` callers (own region first).

Every call is recorded (:class:`Call`: who asked, which region answered, what came back), so availability can be
counted per region and per outage window; every token goes to the one-region soak's verifier queues
(:meth:`soak.traffic.Traffic.issued`), so the same PyJWT, jose and Envoy workers check it through the edge's JWKS URL.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

from jwks_rotator_cli.local_state import SIGN_FUNCTION
from jwks_rotator_client import RegionalSignClient, RegionalSigner, RegionsUnavailableError, SignClient
from jwks_rotator_local.regions import LocalRegions

from .config import AUDIENCE, CALLER_ROLE
from .records import Observations
from .traffic import CALLER_LAMBDA_CONFIG, Traffic

PLAIN = "SignClient"
REGIONAL = "RegionalSignClient"
TOKEN = "token"


@dataclass(frozen=True)
class Call:
    """One ``sign``: the client kind, the caller's home region, when, the region that answered ("" none), the outcome.

    ``outcome`` is ``token``, the error answer's code, or the exception's class name; ``kid`` is the token's.
    """

    client: str
    home: str
    start: float
    end: float
    region: str
    outcome: str
    kid: str = ""
    failovers: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == TOKEN


@dataclass
class RegionsObservations(Observations):
    """The one-region soak's observations plus every call and the region of every token (by its ``seq``)."""

    calls: list[Call] = field(default_factory=list)
    token_regions: dict[int, str] = field(default_factory=dict)
    failover_reasons: Counter[str] = field(default_factory=Counter)


def plain_client(cloud: LocalRegions, region: str, session_name: str) -> SignClient:
    """A one-region :class:`SignClient` of ``region``'s signer, as its own session of the soak's caller role."""
    stack = cloud.stack(region)
    session = stack.caller_session(CALLER_ROLE, session_name=session_name)
    lambda_client = session.client("lambda", endpoint_url=cloud.aws_endpoint, region_name=region, config=CALLER_LAMBDA_CONFIG)
    return SignClient(stack.function_name(SIGN_FUNCTION), lambda_client, session, sts_endpoint_url=cloud.sts_endpoint)


def regional_client(
    cloud: LocalRegions, home: str, session_name: str, *, deadline: float, attempt_timeout: float, demote_seconds: float
) -> RegionalSignClient:
    """A :class:`RegionalSignClient` over every region, ``home`` first; one session, one proof per region."""
    session = cloud.stack(home).caller_session(CALLER_ROLE, session_name=session_name)
    config = Config(connect_timeout=attempt_timeout, read_timeout=attempt_timeout, retries={"mode": "standard", "total_max_attempts": 1})
    signers = [
        RegionalSigner(
            region,
            cloud.stack(region).function_name(SIGN_FUNCTION),
            lambda_client=session.client("lambda", endpoint_url=cloud.aws_endpoint, region_name=region, config=config),
            sts_endpoint_url=cloud.sts_endpoint,
        )
        for region in (home, *(r for r in cloud.regions if r != home))
    ]
    return RegionalSignClient(signers, session, deadline=deadline, attempt_timeout=attempt_timeout, demote_seconds=demote_seconds)


class RegionCallers:
    """The callers' loops; tokens go to ``traffic``'s verifier queues, calls to ``seen.calls``."""

    def __init__(self, traffic: Traffic, seen: RegionsObservations) -> None:
        self.traffic = traffic
        self.seen = seen

    def plain(self, index: int, region: str, client: SignClient) -> None:
        def ask(payload: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
            return region, client.sign(payload), 0

        self._loop(index, PLAIN, region, ask)

    def regional(self, index: int, home: str, client: RegionalSignClient) -> None:
        def ask(payload: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
            answer = client.sign_detailed(payload)
            if answer.failures:
                with self.seen.lock:
                    self.seen.failover_reasons.update(f"{f.region}: {f.kind} {f.code}".strip() for f in answer.failures)
            return answer.region, answer.answer, len(answer.failures)

        self._loop(index, REGIONAL, home, ask)

    def _loop(self, index: int, kind: str, home: str, ask: Callable[[dict[str, Any]], tuple[str, dict[str, Any], int]]) -> None:
        traffic, seen = self.traffic, self.seen
        config = traffic.config
        rng = random.Random(config.seed * 1000 + index)
        max_ttl = int(traffic.settings.max_token_ttl.total_seconds())
        n = 0
        while not traffic.over.is_set() and not traffic.stop.is_set():
            n += 1
            ttl = max_ttl if rng.random() < 0.7 else rng.randint(1, max_ttl)
            payload = {"sub": f"soak-{index}-{n}", "aud": AUDIENCE, "ttl": ttl}
            start = time.time()
            try:
                region, body, failovers = ask(payload)
            except RegionsUnavailableError as exc:
                self._note(Call(kind, home, start, time.time(), "", type(exc).__name__, failovers=len(exc.failures)))
            except Exception as exc:  # the invoke failed (the region is out, or the function crashed): counted, not hidden
                self._note(Call(kind, home, start, time.time(), "", type(exc).__name__))
            else:
                end = time.time()
                if "token" in body:
                    record = traffic.issued(body, start, end, rng)
                    with seen.lock:
                        seen.token_regions[record.seq] = region
                    self._note(Call(kind, home, start, end, region, TOKEN, str(body["kid"]), failovers))
                else:
                    self._note(Call(kind, home, start, end, region, str(body.get("error", "unknown")), failovers=failovers))
            traffic.stop.wait(config.caller_pause)

    def _note(self, call: Call) -> None:
        with self.seen.lock:
            self.seen.calls.append(call)


def start_callers(
    cloud: LocalRegions, callers: RegionCallers, *, plain_per_region: int, regional_per_region: int, regional_options: dict[str, float]
) -> list[threading.Thread]:
    """Start each region's callers (plain ones, then regional ones with that region first); their threads."""
    threads: list[threading.Thread] = []
    index = 0
    for region in cloud.regions:
        for _ in range(plain_per_region):
            client = plain_client(cloud, region, f"soak-caller-{index}")
            threads.append(threading.Thread(target=callers.plain, args=(index, region, client), name=f"soak-plain-{index}", daemon=True))
            index += 1
        for _ in range(regional_per_region):
            regional = regional_client(cloud, region, f"soak-caller-{index}", **regional_options)
            threads.append(
                threading.Thread(target=callers.regional, args=(index, region, regional), name=f"soak-regional-{index}", daemon=True)
            )
            index += 1
    for thread in threads:
        thread.start()
    return threads
