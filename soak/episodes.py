"""The fault episodes, run in turn for the length of the traffic.

Random per-request faults (the proxy) are on during every episode, plus one
scenario: ``double`` (a second rotator ticking concurrently), ``crash`` (it
crashes after its keyring write), ``kill`` (it is cut off after its write),
``pause`` (no ticks for longer than the lead) or ``faults`` (nothing more).
Each episode is followed by a quiet spell whose first tick must leave the
published documents matching the keyring.
"""

from __future__ import annotations

import itertools
import threading
import time

from jwks_rotator.core.settings import Settings

from .config import SoakConfig
from .convergence import ConvergenceWatch
from .proxy import FaultProxy
from .records import Observations
from .rotators import B_TAG, SecondRotator, Ticker


def next_transition(seen: Observations, settings: Settings) -> float | None:
    """Unix time of the next due lifecycle change (a rotation or a retired key's removal), from the latest keyring snapshot."""
    keyring = seen.latest_keyring
    if keyring is None:
        return None
    period = settings.rotation_period.total_seconds()
    retention = settings.effective_retention.total_seconds()
    times = [k.retired_at.timestamp() + retention for k in keyring.keys if k.retired_at is not None]
    active = keyring.active
    if active is not None and active.activated_at is not None:
        times.append(active.activated_at.timestamp() + period)
    future = [t for t in times if t > time.time()]
    return min(future) if future else None


class Conductor:
    """Begins and ends the episodes; waits for each one's convergence verdict."""

    def __init__(
        self,
        config: SoakConfig,
        settings: Settings,
        proxy: FaultProxy,
        ticker: Ticker,
        second: SecondRotator,
        watch: ConvergenceWatch,
        seen: Observations,
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.settings = settings
        self.proxy = proxy
        self.ticker = ticker
        self.second = second
        self.watch = watch
        self.seen = seen
        self.stop = stop
        self.lead = settings.publish_lead.total_seconds()

    def sleep_until(self, moment: float) -> None:
        while not self.stop.is_set() and time.time() < moment:
            time.sleep(min(0.1, max(0.0, moment - time.time())))

    def conduct(self, traffic_end: float) -> None:
        """Episodes in the configured order, cycled, while a whole one still fits before ``traffic_end``."""
        cfg = self.config
        episodes = itertools.cycle(cfg.episodes)
        while time.time() + cfg.episode_seconds <= traffic_end and not self.stop.is_set():
            kind = next(episodes)
            if kind in ("crash", "kill"):
                # Line the episode up with a due transition so the second rotator has a write to crash after.
                due = next_transition(self.seen, self.settings)
                if due is not None and due - 0.5 < traffic_end - cfg.episode_seconds and due - time.time() < cfg.episode_seconds * 2:
                    self.sleep_until(due - 0.5)
            started = time.time()
            length = max(cfg.episode_seconds, self.lead + 1.0) if kind == "pause" else cfg.episode_seconds
            self.proxy.enabled = True
            self._begin(kind)
            self.sleep_until(started + length)
            self._end(kind)
            self.proxy.enabled = False
            self.watch.expect(kind)
            self.sleep_until(time.time() + cfg.quiet_seconds)
            self.watch.wait(timeout=60)

    def final_convergence(self) -> None:
        """The last quiet spell: the first tick after the drain leaves S3 matching the keyring."""
        self.watch.expect("end of run")
        self.watch.wait(timeout=60)

    def _begin(self, kind: str) -> None:
        ticker = self.ticker
        self.seen.count(f"episode: {kind}")
        if kind == "double":
            ticker.b_concurrent = True
        elif kind == "crash":
            self.second.publisher.armed = True
            ticker.main_ticks, ticker.b_ticks = False, True
        elif kind == "kill":
            self.proxy.arm_cut(B_TAG)
            ticker.main_ticks, ticker.b_ticks = False, True
        elif kind == "pause":
            ticker.main_ticks = ticker.b_ticks = False

    def _end(self, kind: str) -> None:
        ticker = self.ticker
        if kind == "kill":
            ticker.wait_b_idle()
            self.proxy.disarm_cut()
        if kind == "crash":
            self.second.publisher.armed = False
        ticker.main_ticks, ticker.b_ticks, ticker.b_concurrent = True, False, False
