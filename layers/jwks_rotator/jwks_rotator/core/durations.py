"""Durations as people write them: ``30``, ``30s``, ``15m``, ``12h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

from jwks_rotator.core.errors import ConfigurationError, quoted

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str | int | float | timedelta, *, name: str = "duration") -> timedelta:
    """Parse seconds or a number with one unit (s, m, h, d, w) into a timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ConfigurationError(f"{name}: expected a duration such as 30s, 15m, 12h or 7d, got a boolean")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise ConfigurationError(
                f"{name}: {quoted(text)} is not a duration; use seconds or a number with a unit, such as 30s, 15m, 12h or 7d"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds != seconds or seconds < 0 or seconds > 10 * 365 * 86400:
        raise ConfigurationError(f"{name}: {quoted(text)} is out of range (0 to 10 years)")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact rendering of a duration with one unit (``7d``, ``90s``)."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
