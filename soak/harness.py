"""The soak: the local stack under concurrent signing, caching verifiers and injected faults.

One run per algorithm (:func:`run_soak`):

* ``LocalStack`` with fast settings, its functions reaching moto through a :class:`~soak.proxy.FaultProxy`; the
  schedule is driven here (:class:`~soak.rotators.Ticker`, manual ticks) so ticks can be paused, doubled and crashed;
* callers (threads) get tokens from ``SignFunction`` through the Lambda Invoke API, each with its own ``SignClient``
  as its own session of the soak's caller role (its policy: ``soak/issuance-policy.yaml``); every token is verified
  once by PyJWT's ``PyJWKClient`` and once by jose's ``createRemoteJWKSet`` (:mod:`soak.traffic`), each at a random
  moment of its life, caches on, scaled to the lead, and (``config.envoy``) once by Envoy's ``jwt_authn`` with the
  ``cache_duration`` ``jwks-rotator verifiers`` recommends for the settings;
* a sampler reads the JWKS through the edge (as verifiers see it) every few tens of milliseconds (:mod:`soak.convergence`);
* episodes of faults (:mod:`soak.episodes`), each followed by a quiet spell whose first tick must leave the
  published documents matching the keyring;
* after the drain, a revocation probed against Envoy (:mod:`soak.revocation`);
* the summary and its checks (:mod:`soak.summary`).

Nothing here prints tokens or key material.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any

from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator_local.local_stack import LocalStack
from jwks_rotator_testkit.envoy import EnvoyProvider, EnvoyVerifier
from jwks_rotator_testkit.verifiers import Expectation, NodeVerifier

from .config import AUDIENCE, CALLER_ROLE, NODE_DIR, POLICY_FILE, Log, SoakConfig, envoy_cache, scaled_caches
from .convergence import ConvergenceWatch, sample_jwks
from .episodes import Conductor
from .proxy import FaultProxy
from .records import Observations
from .revocation import probe_envoy_revocation
from .rotators import SecondRotator, Ticker
from .summary import summarise
from .traffic import CALLER_LAMBDA_CONFIG, ENVOY_PROVIDER, Traffic


class SoakRun:
    """One algorithm's soak; :meth:`run` returns the summary as a dict."""

    def __init__(self, config: SoakConfig, log: Log = print) -> None:
        self.config = config
        self.log = log
        self.stop = threading.Event()
        self.seen = Observations()

    def run(self) -> dict[str, Any]:
        cfg = self.config
        wall_start = time.time()
        proxy = FaultProxy(cfg.rates, seed=cfg.seed)
        proxy_url = proxy.bind()
        stack = LocalStack(cfg.settings(), aws_endpoint=proxy_url, tick=False, policy=POLICY_FILE, function_log_level="CRITICAL")
        threads: list[threading.Thread] = []
        nodes: list[NodeVerifier] = []
        second: SecondRotator | None = None
        traffic: Traffic | None = None
        envoy: EnvoyVerifier | None = None
        envoy_revocation: dict[str, Any] | None = None
        try:
            stack.start()
            proxy.start(stack.endpoint)  # on to the local cloud's front: the functions' calls are recorded there when asked
            settings = stack.settings
            caches = scaled_caches(settings.publish_lead.total_seconds())
            if cfg.envoy:
                caches["envoy"] = envoy_cache(settings)
            direct_store = SecretsManagerKeyringStore(stack.client("secretsmanager"), settings.keyring_secret_id)
            watch = ConvergenceWatch(settings, direct_store, stack.client("s3"), stack.jwks_url, self.seen)
            second = SecondRotator(proxy_url, stack.region, settings)
            ticker = Ticker(stack, second, proxy, watch, self.seen, self.stop)
            conductor = Conductor(cfg, settings, proxy, ticker, second, watch, self.seen, self.stop)
            traffic = Traffic(
                cfg, settings, self.seen,
                jwks_url=stack.jwks_url, expect=Expectation(issuer=stack.issuer, audience=AUDIENCE), caches=caches, stop=self.stop,
            )
            ticker.first_tick()
            if cfg.envoy:  # after the first tick: Envoy fetches the JWKS before it reports ready
                provider = EnvoyProvider(
                    ENVOY_PROVIDER, issuer=stack.issuer, audience=AUDIENCE, jwks_url=stack.jwks_url, cache_duration=caches["envoy"].lifespan
                )
                envoy = EnvoyVerifier([provider]).start()
            nodes += [NodeVerifier(NODE_DIR) for _ in range(cfg.jose_workers)]
            threads += [
                threading.Thread(target=sample_jwks, args=(stack.jwks_url, cfg.sample_interval, self.seen, self.stop), name="soak-sampler", daemon=True),
                threading.Thread(target=ticker.loop, name="soak-ticker", daemon=True),
            ]
            threads += [
                threading.Thread(target=traffic.pyjwt_worker, args=(i,), name=f"soak-pyjwt-{i}", daemon=True)
                for i in range(cfg.pyjwt_workers)
            ]
            threads += [
                threading.Thread(target=traffic.jose_worker, args=(i, node), name=f"soak-jose-{i}", daemon=True)
                for i, node in enumerate(nodes)
            ]
            if envoy is not None:
                threads.append(threading.Thread(target=traffic.envoy_worker, args=(0, envoy), name="soak-envoy-0", daemon=True))
            callers = [
                threading.Thread(
                    target=traffic.caller,
                    args=(i, stack.sign_client(CALLER_ROLE, session_name=f"soak-caller-{i}", config=CALLER_LAMBDA_CONFIG)),
                    name=f"soak-caller-{i}",
                    daemon=True,
                )
                for i in range(cfg.callers)
            ]
            for thread in threads + callers:
                thread.start()
            conductor.conduct(time.time() + cfg.duration)
            traffic.over.set()
            for thread in callers:
                thread.join(timeout=30)
            # Drain: every scheduled verification is due before its token's exp.
            traffic.close_queues()
            drain_deadline = time.time() + settings.max_token_ttl.total_seconds() + 30
            for thread in threads[2:]:
                thread.join(timeout=max(0.1, drain_deadline - time.time()))
            conductor.final_convergence()
            if envoy is not None:
                client = stack.sign_client(CALLER_ROLE, session_name="soak-revocation", config=CALLER_LAMBDA_CONFIG)
                envoy_revocation = probe_envoy_revocation(client, envoy, second, settings, caches["envoy"].lifespan)
        finally:
            self.stop.set()
            if traffic is not None:
                traffic.close_queues()
            for thread in threads:
                thread.join(timeout=30)
            for node in nodes:
                node.close()
            if envoy is not None:
                envoy.stop()
            try:
                edge_stats = asdict(stack.edge.stats)
            except RuntimeError:
                edge_stats = {}
            stack.stop()
            proxy.stop()
        crashes = second.publisher.crashes if second is not None else 0
        return summarise(
            cfg, settings, caches, self.seen, proxy,
            crashes=crashes, edge_stats=edge_stats, wall=time.time() - wall_start, envoy_revocation=envoy_revocation,
        )  # fmt: skip


def run_soak(config: SoakConfig, log: Log = print) -> dict[str, Any]:
    """Run one algorithm's soak and return its summary."""
    return SoakRun(config, log).run()
