"""The soak in several regions: ``LocalRegions`` under callers in every region, caching verifiers and regional episodes.

One run (:func:`run_regions_soak`):

* ``LocalRegions(regions, the soak's fast settings)``: one local cloud, the template in each region, the first the
  primary; its schedule ticks each region (a secondary's rotate function writes nothing);
* in each region, callers with a plain ``SignClient`` of that region's signer and callers with a
  ``RegionalSignClient`` (that region first) (:mod:`soak.region_traffic`); every token is verified through the edge's
  JWKS URL by the one-region soak's PyJWT, jose and (``soak.envoy``) Envoy workers (:mod:`soak.traffic`);
* samplers: the JWKS the edge serves (:func:`soak.convergence.sample_jwks`) and what each region holds
  (:mod:`soak.region_state`: its bucket's JWKS digest, its keyring generation, its signer's view);
* episodes (:mod:`soak.region_episodes`): the secondary's outage, the primary's, rotate-now, a revocation probed in
  every region's signer, replica lag; the first pass runs whole, then they cycle while one fits in ``soak.duration``;
* the summary and its checks (:mod:`soak.region_summary`).

Nothing here prints tokens or key material.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from jwks_rotator_local.regions import LocalRegions
from jwks_rotator_testkit.envoy import EnvoyProvider, EnvoyVerifier
from jwks_rotator_testkit.verifiers import Expectation, NodeVerifier

from .config import AUDIENCE, NODE_DIR, POLICY_FILE, Log, SoakConfig, envoy_cache, scaled_caches
from .convergence import sample_jwks
from .region_episodes import REGION_EPISODES, EpisodeTimes, RegionConductor
from .region_state import RegionReader, RegionStates
from .region_summary import summarise_regions
from .region_traffic import RegionCallers, RegionsObservations, start_callers
from .traffic import ENVOY_PROVIDER, Traffic

DEFAULT_REGIONS = ("us-east-1", "eu-west-1")


def regions_soak_defaults() -> SoakConfig:
    """The one-region soak's knobs with a 6 s rotation period, so a rotation falls due in every outage."""
    return SoakConfig(rotation_period="6s", episodes=())


@dataclass(frozen=True)
class RegionsConfig:
    """One run's knobs: the regions (primary first), the one-region soak's (settings, verifiers, traffic), the episodes'."""

    regions: tuple[str, ...] = DEFAULT_REGIONS
    soak: SoakConfig = field(default_factory=regions_soak_defaults)
    plain_callers: int = 1  # per region: SignClient of that region
    regional_callers: int = 1  # per region: RegionalSignClient, that region first
    episodes: tuple[str, ...] = REGION_EPISODES
    outage_seconds: float = 7.0  # > rotation-period: a rotation falls due during the outage
    lag_seconds: float = 4.0
    lag_episode_seconds: float = 7.0
    quiet_seconds: float = 1.0
    converge_timeout: float = 30.0
    revocation_timeout: float = 20.0
    state_interval: float = 0.2
    regional_deadline: float = 5.0
    regional_attempt_timeout: float = 2.0
    regional_demote_seconds: float = 3.0

    def __post_init__(self) -> None:
        if len(self.regions) < 2:
            raise ValueError("the soak in several regions needs two or more regions (the first is the primary)")

    def times(self) -> EpisodeTimes:
        return EpisodeTimes(
            self.outage_seconds, self.lag_seconds, self.lag_episode_seconds, self.quiet_seconds, self.converge_timeout,
            self.revocation_timeout,
        )


class RegionsSoakRun:
    """One run; :meth:`run` returns the summary as a dict."""

    def __init__(self, config: RegionsConfig, log: Log = print) -> None:
        self.config = config
        self.log = log
        self.stop = threading.Event()
        self.seen = RegionsObservations()

    def run(self) -> dict[str, Any]:
        cfg, soak = self.config, self.config.soak
        wall_start = time.time()
        cloud = LocalRegions(cfg.regions, soak.settings(), policy=POLICY_FILE, function_log_level="CRITICAL")
        workers: list[threading.Thread] = []
        samplers: list[threading.Thread] = []
        callers: list[threading.Thread] = []
        nodes: list[NodeVerifier] = []
        envoy: EnvoyVerifier | None = None
        traffic: Traffic | None = None
        conductor: RegionConductor | None = None
        states: RegionStates | None = None
        final: tuple[float | None, float | None, float] = (None, None, 0.0)
        try:
            cloud.start()
            self.log(f"  {len(cfg.regions)} regions signing after {time.time() - wall_start:.1f} s")
            settings = cloud.stack(cloud.primary).settings
            caches = scaled_caches(settings.publish_lead.total_seconds())
            if soak.envoy:
                caches["envoy"] = envoy_cache(settings)
                provider = EnvoyProvider(
                    ENVOY_PROVIDER, issuer=cloud.issuer, audience=AUDIENCE, jwks_url=cloud.jwks_url, cache_duration=caches["envoy"].lifespan
                )
                envoy = EnvoyVerifier([provider]).start()
            traffic = Traffic(
                soak, settings, self.seen,
                jwks_url=cloud.jwks_url, expect=Expectation(issuer=cloud.issuer, audience=AUDIENCE), caches=caches, stop=self.stop,
            )  # fmt: skip
            states = RegionStates(RegionReader(cloud), cfg.state_interval)
            conductor = RegionConductor(cloud, settings, states, cfg.episodes, cfg.times(), self.stop, self.log)
            nodes += [NodeVerifier(NODE_DIR) for _ in range(soak.jose_workers)]
            samplers += [
                threading.Thread(target=sample_jwks, args=(cloud.jwks_url, soak.sample_interval, self.seen, self.stop), name="soak-sampler", daemon=True),
                threading.Thread(target=states.loop, args=(self.stop,), name="soak-regions-sampler", daemon=True),
            ]
            workers += [threading.Thread(target=traffic.pyjwt_worker, args=(i,), name=f"soak-pyjwt-{i}", daemon=True) for i in range(soak.pyjwt_workers)]
            workers += [threading.Thread(target=traffic.jose_worker, args=(i, n), name=f"soak-jose-{i}", daemon=True) for i, n in enumerate(nodes)]
            if envoy is not None:
                workers.append(threading.Thread(target=traffic.envoy_worker, args=(0, envoy), name="soak-envoy-0", daemon=True))
            for thread in samplers + workers:
                thread.start()
            callers = start_callers(
                cloud, RegionCallers(traffic, self.seen),
                plain_per_region=cfg.plain_callers, regional_per_region=cfg.regional_callers,
                regional_options={
                    "deadline": cfg.regional_deadline, "attempt_timeout": cfg.regional_attempt_timeout,
                    "demote_seconds": cfg.regional_demote_seconds,
                },
            )  # fmt: skip
            conductor.conduct(time.time() + soak.duration)
            traffic.over.set()
            for thread in callers:
                thread.join(timeout=30)
            traffic.close_queues()  # drain: every scheduled verification is due before its token's exp
            drain_deadline = time.time() + settings.max_token_ttl.total_seconds() + 30
            for thread in workers:
                thread.join(timeout=max(0.1, drain_deadline - time.time()))
            moment = time.time()
            origins, replicas = states.wait_converged(moment, cfg.converge_timeout, self.stop)
            final = (origins, replicas, moment)
        finally:
            self.stop.set()
            if traffic is not None:
                traffic.over.set()
                traffic.close_queues()
            for thread in callers + workers + samplers:
                thread.join(timeout=30)
            for node in nodes:
                node.close()
            if envoy is not None:
                envoy.stop()
            try:
                edge_stats = asdict(cloud.edge.stats)
            except (RuntimeError, AttributeError):
                edge_stats = {}
            cloud.stop()
        return summarise_regions(
            regions=cfg.regions, algorithm=soak.algorithm, traffic_seconds=soak.duration, libraries=soak.libraries,
            settings=settings, caches=caches, seen=self.seen, episodes=conductor.episodes if conductor else [],
            configured_episodes=cfg.episodes, final_convergence=final, edge_stats=edge_stats,
            states=states.snapshot() if states else [], wall=time.time() - wall_start,
        )  # fmt: skip


def run_regions_soak(config: RegionsConfig, log: Log = print) -> dict[str, Any]:
    """Run the soak in several regions and return its summary."""
    return RegionsSoakRun(config, log).run()
