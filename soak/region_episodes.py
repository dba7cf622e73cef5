"""The two-region soak's episodes, run in turn while traffic flows, each followed by a convergence wait and a quiet spell.

* ``secondary-outage`` / ``primary-outage``: every AWS call and Lambda invoke of that region fails
  (``LocalRegions.region_outage``) for ``outage_seconds``, longer than a rotation period so rotations fall due in it;
* ``rotate-now``: the primary's rotate function's operator operation (as ``jwks-rotator rotate --now`` runs it);
* ``revocation``: the active key revoked by the same operator operation while every region's signer is probed
  (:class:`RevocationProbe`) until it stops signing with that kid;
* ``replica-lag``: the secondary's replica secrets show the primary's state of ``lag_seconds`` ago
  (``LocalRegions.set_replica_lag``) for longer than a rotation period.

After each, the time until the origins and the replicas agree again is read from the region sampler
(:mod:`soak.region_state`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jwks_rotator.core.settings import Settings
from jwks_rotator_cli.local_state import OPERATOR_ROLE, ROTATE_FUNCTION
from jwks_rotator_client import OperatorClient, SignClient
from jwks_rotator_local.regions import LocalRegions

from .config import AUDIENCE, Log
from .region_state import RegionStates
from .region_traffic import plain_client

SECONDARY_OUTAGE = "secondary-outage"
PRIMARY_OUTAGE = "primary-outage"
ROTATE_NOW = "rotate-now"
REVOCATION = "revocation"
REPLICA_LAG = "replica-lag"
REGION_EPISODES = (SECONDARY_OUTAGE, PRIMARY_OUTAGE, ROTATE_NOW, REVOCATION, REPLICA_LAG)
PROBE_POLL = 0.05


@dataclass
class Episode:
    """One episode: what, which region it hit, when it began and ended, when origins and replicas agreed again after."""

    kind: str
    region: str
    start: float
    end: float = 0.0
    fault_end: float = 0.0  # when the fault began to be lifted (0: at ``end``); a call counts in the episode if it ended before
    origins_converged: float | None = None
    replicas_converged: float | None = None
    diverged: dict[str, bool] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class ProbeAnswer:
    start: float
    end: float
    kid: str  # "" when no token
    outcome: str  # token | error code | exception class


class RevocationProbe:
    """Each region's signer asked for a token every :data:`PROBE_POLL` s, on its own thread, until :meth:`stop`."""

    def __init__(self, clients: dict[str, SignClient], settings: Settings, stop: threading.Event) -> None:
        self.clients = clients
        self.ttl = int(settings.max_token_ttl.total_seconds())
        self.answers: dict[str, list[ProbeAnswer]] = {region: [] for region in clients}
        self._done = threading.Event()
        self._stop = stop
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._ask, args=(i, region), name=f"soak-probe-{region}", daemon=True)
            for i, region in enumerate(clients)
        ]

    def start(self) -> RevocationProbe:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _ask(self, index: int, region: str) -> None:
        client = self.clients[region]
        n = 0
        while not self._done.is_set() and not self._stop.is_set():
            n += 1
            payload = {"sub": f"soak-{9999 - index}-{n}", "aud": AUDIENCE, "ttl": self.ttl}  # subjects no caller uses
            start = time.time()
            try:
                body = client.sign(payload)
            except Exception as exc:  # the invoke failed: an answer without the kid, recorded as such
                answer = ProbeAnswer(start, time.time(), "", type(exc).__name__)
            else:
                kid = str(body.get("kid", "")) if "token" in body else ""
                answer = ProbeAnswer(start, time.time(), kid, "token" if kid else str(body.get("error", "unknown")))
            with self._lock:
                self.answers[region].append(answer)
            self._done.wait(PROBE_POLL)

    def latest_kids(self) -> dict[str, str]:
        with self._lock:
            return {region: answers[-1].kid if answers else "" for region, answers in self.answers.items()}

    def stopped_since(self, region: str, kid: str, moment: float) -> float | None:
        with self._lock:
            return stopped_at(list(self.answers[region]), kid, moment)

    def figures(self, kid: str, revoked_at: float) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {region: reach_figures(list(answers), kid, revoked_at) for region, answers in self.answers.items()}


def stopped_at(answers: list[ProbeAnswer], kid: str, moment: float) -> float | None:
    """When a signer began answering without ``kid`` for good (as far as seen), counting answers begun at ``moment`` or later."""
    after = [a for a in answers if a.start >= moment]
    last = max((i for i, a in enumerate(after) if a.kid == kid), default=-1)
    return after[last + 1].end if last + 1 < len(after) else None


def reach_figures(answers: list[ProbeAnswer], kid: str, revoked_at: float) -> dict[str, Any]:
    """One region's reach (s from the revoke to the answer after which none carried the kid), its tokens with the kid after
    the revoke, and what it answered once stopped (another kid's token, or an error code)."""
    stopped = stopped_at(answers, kid, revoked_at)
    after = [a for a in answers if a.start >= revoked_at]
    outcomes: dict[str, int] = {}
    for answer in after:
        if stopped is not None and answer.end >= stopped:
            name = "token (another kid)" if answer.kid else answer.outcome
            outcomes[name] = outcomes.get(name, 0) + 1
    return {
        "reach_s": None if stopped is None else round(stopped - revoked_at, 3),
        "signed_with_revoked_kid_after_revoke": sum(1 for a in after if a.kid == kid),
        "answers_after_revoke": len(after),
        "outcomes_after_stop": outcomes,
    }


@dataclass(frozen=True)
class EpisodeTimes:
    """How long each episode lasts and how long convergence is waited for."""

    outage_seconds: float
    lag_seconds: float
    lag_episode_seconds: float
    quiet_seconds: float
    converge_timeout: float
    revocation_timeout: float


def primary_operator(cloud: LocalRegions) -> OperatorClient:
    """The primary's rotate function's operator client, as a session of the local operator role (as ``jwks-rotator revoke`` calls it)."""
    stack = cloud.stack(cloud.primary)
    session = stack.caller_session(OPERATOR_ROLE, session_name="soak-operator")
    lambda_client = session.client("lambda", endpoint_url=cloud.aws_endpoint, region_name=stack.region)
    return OperatorClient(stack.function_name(ROTATE_FUNCTION), lambda_client, session, sts_endpoint_url=cloud.sts_endpoint)


class RegionConductor:
    """Runs every episode once in the configured order, then cycles them while a whole one still fits before the traffic ends."""

    def __init__(
        self,
        cloud: LocalRegions,
        settings: Settings,
        states: RegionStates,
        episodes: tuple[str, ...],
        times: EpisodeTimes,
        stop: threading.Event,
        log: Log,
    ) -> None:
        self.cloud = cloud
        self.settings = settings
        self.states = states
        self.kinds = episodes
        self.times = times
        self.stop = stop
        self.log = log
        self.episodes: list[Episode] = []
        self.operator = primary_operator(cloud)
        self.secondary = cloud.secondaries[0]

    def sleep(self, seconds: float) -> None:
        self.stop.wait(max(0.0, seconds))

    def length(self, kind: str) -> float:
        t = self.times
        if kind in (SECONDARY_OUTAGE, PRIMARY_OUTAGE):
            return t.outage_seconds + t.quiet_seconds + 2.0
        if kind == REPLICA_LAG:
            return t.lag_episode_seconds + t.quiet_seconds + 2.0
        if kind == REVOCATION:
            return 2 * self.settings.signer_cache_ttl.total_seconds() + t.quiet_seconds + 3.0
        return t.quiet_seconds + 2.0

    def conduct(self, traffic_end: float) -> None:
        self.sleep(self.times.quiet_seconds)
        runs: dict[str, Callable[[], Episode]] = {
            SECONDARY_OUTAGE: lambda: self.outage(SECONDARY_OUTAGE, self.secondary),
            PRIMARY_OUTAGE: lambda: self.outage(PRIMARY_OUTAGE, self.cloud.primary),
            ROTATE_NOW: self.rotate_now,
            REVOCATION: self.revocation,
            REPLICA_LAG: self.replica_lag,
        }
        for number, kind in enumerate(itertools.cycle(self.kinds)):
            first_pass = number < len(self.kinds)  # runs whole, however short the traffic
            if self.stop.is_set() or (not first_pass and time.time() + self.length(kind) > traffic_end):
                return
            self.log(f"  episode {kind}")
            episode = runs[kind]()
            self.episodes.append(episode)
            self._converge(episode)
            self.sleep(self.times.quiet_seconds)

    def _converge(self, episode: Episode) -> None:
        episode.origins_converged, episode.replicas_converged = self.states.wait_converged(
            episode.end, self.times.converge_timeout, self.stop
        )
        episode.diverged = self.states.diverged_between(episode.start, episode.end)

    def outage(self, kind: str, region: str) -> Episode:
        self.cloud.region_outage(region)
        episode = Episode(kind, region, time.time())  # from here every call and invoke there fails
        try:
            self.sleep(self.times.outage_seconds)
        finally:
            episode.fault_end = time.time()
            self.cloud.clear_outage(region)
            episode.end = time.time()
        return episode

    def replica_lag(self) -> Episode:
        region = self.secondary
        self.cloud.set_replica_lag(region, self.times.lag_seconds)
        episode = Episode(REPLICA_LAG, region, time.time(), detail={"lag_s": self.times.lag_seconds})
        try:
            self.sleep(self.times.lag_episode_seconds)
        finally:
            episode.fault_end = time.time()
            self.cloud.set_replica_lag(region, 0)
            episode.end = time.time()
        episode.detail["generation_gap"] = self.states.generation_gap(episode.start, episode.end)
        return episode

    def rotate_now(self) -> Episode:
        episode = Episode(ROTATE_NOW, self.cloud.primary, time.time())
        try:
            answer = self.operator.rotate_now()
        except Exception as exc:  # the operation failed: reported, the run goes on
            episode.error = f"{type(exc).__name__}: {exc}"
        else:
            if "error" in answer:
                episode.error = f"{answer['error']}: {answer.get('message', '')}"
            episode.detail["active_kid"] = answer.get("active_kid")
        episode.end = time.time()
        return episode

    def revocation(self) -> Episode:
        """Revoke the kid every region signs with and probe each region's signer until it stops signing with it."""
        episode = Episode(REVOCATION, "", time.time())
        clients = {region: plain_client(self.cloud, region, f"soak-probe-{region}") for region in self.cloud.regions}
        probe = RevocationProbe(clients, self.settings, self.stop).start()
        try:
            kid = self._common_kid(probe, timeout=10.0)
            if not kid:
                episode.error = f"no kid every region signs with: {probe.latest_kids()}"
                episode.end = time.time()
                return episode
            revoked_at = time.time()
            try:
                answer = self.operator.revoke(kid)
            except Exception as exc:  # the operation failed: reported, the run goes on
                episode.error = f"{type(exc).__name__}: {exc}"
                episode.end = time.time()
                return episode
            episode.end = time.time()
            if "error" in answer:
                episode.error = f"{answer['error']}: {answer.get('message', '')}"
                return episode
            episode.detail.update(kid=kid, revoked_at=revoked_at, revoke_call_s=round(episode.end - revoked_at, 3))
            episode.detail["replication_lag"] = dict(answer.get("replication_lag") or {})  # the writer's read-back, per region
            self._until_stopped(probe, kid, revoked_at)
            episode.end = time.time()  # the episode lasts until every region's signer stopped signing with the kid
        finally:
            probe.stop()
        episode.detail["regions"] = probe.figures(kid, revoked_at)
        return episode

    def _common_kid(self, probe: RevocationProbe, timeout: float) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline and not self.stop.is_set():
            kids = set(probe.latest_kids().values())
            if len(kids) == 1 and "" not in kids:
                return kids.pop()
            self.sleep(PROBE_POLL)
        return ""

    def _until_stopped(self, probe: RevocationProbe, kid: str, revoked_at: float) -> None:
        """Until every region has answered without ``kid`` for longer than its signer cache, or the probe's timeout."""
        steady = self.settings.signer_cache_ttl.total_seconds() + 1.0
        deadline = revoked_at + self.times.revocation_timeout
        while time.time() < deadline and not self.stop.is_set():
            stopped = [probe.stopped_since(region, kid, revoked_at) for region in probe.clients]
            if all(s is not None and time.time() - s >= steady for s in stopped):
                return
            self.sleep(PROBE_POLL)
