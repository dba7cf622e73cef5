"""One fake clock for tests, the soak and benchmarks: a moment that moves only when told.

The code under test reads time in three forms; hand it the matching bound method:

* ``clock.now`` — an aware UTC ``datetime`` (the rotation service);
* ``clock.unix`` — float Unix seconds (the token signer);
* ``clock.monotonic`` — float seconds from an arbitrary origin (the local edge's cache).

All three read the same moment, so :meth:`FakeClock.advance` moves them together.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

MONOTONIC_ORIGIN = 1000.0
"""What :meth:`FakeClock.monotonic` reads before the clock first moves (any positive value would do)."""


def _unix_seconds(moment: datetime | float) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        return moment.timestamp()
    return float(moment)


class FakeClock:
    """A moment in time, held as float Unix seconds; starts at ``start`` (default: the real time now)."""

    def __init__(self, start: datetime | float | None = None) -> None:
        self._unix = time.time() if start is None else _unix_seconds(start)
        self._start = self._unix

    def now(self) -> datetime:
        """The moment as an aware UTC datetime."""
        return datetime.fromtimestamp(self._unix, tz=UTC)

    def unix(self) -> float:
        """The moment as Unix seconds."""
        return self._unix

    def monotonic(self) -> float:
        """Seconds since the clock was made, plus :data:`MONOTONIC_ORIGIN`; never goes back unless :meth:`move_to` moves it back."""
        return MONOTONIC_ORIGIN + (self._unix - self._start)

    def advance(self, by: float | timedelta) -> datetime:
        """Move forward by ``by`` seconds (or a timedelta); returns the new moment."""
        self._unix += by.total_seconds() if isinstance(by, timedelta) else float(by)
        return self.now()

    def step_wall(self, by: float | timedelta) -> datetime:
        """Step the wall clock only (as NTP or an operator does), forwards or back; :meth:`monotonic` does not move."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        self._unix += seconds
        self._start += seconds
        return self.now()

    def move_to(self, moment: datetime | float) -> None:
        """Jump to ``moment`` (an aware datetime or Unix seconds), forwards or back."""
        self._unix = _unix_seconds(moment)
