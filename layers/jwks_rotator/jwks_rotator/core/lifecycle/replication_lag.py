"""Replication lag as the writer measures it: from its write of keyring generation N to the first read of >= N.

Secrets Manager does not bound replication, so the lag is measured, never assumed. After each keyring write the
writer notes the generation and when it wrote it (:class:`LagMeter.written`); every read-back of the replicas
(:class:`~jwks_rotator.core.ports.KeyringReplicas`) is shown to the meter (:meth:`LagMeter.observe`), and a region
whose replica holds generation >= N for the first time gets its figure:

* within the run that wrote N, on the monotonic clock (a wall clock stepped mid-run cannot bend it);
* in a later run (the replica was behind: re-read on the next tick), as the wall time from ``written_at`` (kept in a
  :class:`~jwks_rotator.core.ports.ReplicationLedger`) to the read, never below zero.

A region still behind at the end of a run gets the time so far, a lower bound that grows each tick, so a replica
that stalls raises the reach alarm instead of going quiet. An unreadable replica gets no figure (it is named in
``RunReport.lagging_replicas``). The reach of a revocation in a region is ``signer-cache-ttl`` + its lag.

Design: docs/design/regions.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.ports import ReplicaReading, ReplicationLedger, ReplicationRecord

Monotonic = Callable[[], float]

PATIENCE: tuple[float, ...] = (1.0, 2.0, 4.0)
"""Seconds between re-reads of a replica still behind the run's own write (at most 7 s of a 60 s run): a replica that
catches up within seconds is measured to the second, not to the next tick's ``schedule``."""


@dataclass(frozen=True)
class LagFigures:
    """Per region, seconds of lag: ``caught_up`` were read back at the writer's generation, ``behind`` not yet (so far)."""

    caught_up: Mapping[str, float]
    behind: Mapping[str, float]

    def merged(self) -> dict[str, float]:
        return {**self.caught_up, **self.behind}


class LagMeter:
    """Keeps one run's view of the writer's last write and the regions that caught up with it (see the module)."""

    def __init__(self, ledger: ReplicationLedger | None, clock: Callable[[], datetime], monotonic: Monotonic, *,
                 logger: Any = None) -> None:
        self._ledger = ledger
        self._clock = clock
        self._monotonic = monotonic
        self._log = logger or logging.getLogger("jwks_rotator")
        self._begin()

    def _begin(self) -> None:
        self._record: ReplicationRecord | None = None
        self._loaded = False
        self._changed = False
        self._written_at_tick: float | None = None  # monotonic time of this run's write of the record's generation
        self._caught_up: dict[str, float] = {}

    def begin(self) -> None:
        """A new run: forget the last run's figures (the ledger is read again on first use)."""
        self._begin()

    def _current(self) -> ReplicationRecord | None:
        if not self._loaded:
            self._loaded = True
            if self._ledger is not None and self._record is None:
                self._record = self._ledger.load()
        return self._record

    def written(self, generation: int) -> None:
        """The writer just wrote keyring ``generation``: every region is behind it until read back holding it."""
        self._loaded = True
        self._record = ReplicationRecord(generation, self._clock(), {})
        self._written_at_tick = self._monotonic()
        self._changed = True

    def pending(self, regions: tuple[str, ...]) -> bool:
        """Whether some of ``regions`` was not yet read back holding the writer's last generation."""
        record = self._current()
        return record is not None and any(region not in record.caught_up for region in regions)

    def _elapsed(self, record: ReplicationRecord) -> float:
        if self._written_at_tick is not None:
            return max(0.0, self._monotonic() - self._written_at_tick)
        return max(0.0, (self._clock() - record.written_at).total_seconds())

    def observe(self, readings: Mapping[str, ReplicaReading | None]) -> None:
        """A read-back of the replicas: each region first seen at or above the writer's generation gets its lag."""
        record = self._current()
        if record is None:
            return
        caught = dict(record.caught_up)
        for region, reading in sorted(readings.items()):
            if region in caught or reading is None or reading.generation < record.generation:
                continue
            caught[region] = reading.generation
            # Several writes in one run: the region's worst figure of the run is its figure.
            self._caught_up[region] = max(self._elapsed(record), self._caught_up.get(region, 0.0))
        if len(caught) != len(record.caught_up):
            self._record = ReplicationRecord(record.generation, record.written_at, caught)
            self._changed = True

    def wrote(self) -> bool:
        """Whether this run wrote the generation being measured (its figures are then on the monotonic clock)."""
        return self._written_at_tick is not None

    def figures(self, readings: Mapping[str, ReplicaReading | None]) -> LagFigures:
        """This run's figures: each region that caught up in it (its worst), and the time so far of each readable one still behind."""
        record = self._current()
        behind: dict[str, float] = {}
        if record is not None:
            for region, reading in sorted(readings.items()):
                if reading is not None and region not in record.caught_up:
                    behind[region] = self._elapsed(record)
        return LagFigures(dict(self._caught_up), behind)

    def finish(self) -> None:
        """Keep the record for the next run when it changed; a ledger that cannot be written costs figures only."""
        if not self._changed or self._ledger is None or self._record is None:
            return
        try:
            self._ledger.save(self._record)
        except StoreError as exc:
            self._log.warning("replication record not kept: the next run measures from its own write",
                              extra={"reason": exc.reason or exc.code})
            return
        self._changed = False
