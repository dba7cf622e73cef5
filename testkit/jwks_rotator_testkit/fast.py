"""The one fast-settings preset: a local stack that rotates, publishes and expires tokens within seconds.

Tests, the soak and benchmarks that run a real stack (``LocalStack``, ``jwks-rotator local``) start from
:data:`FAST_SETTINGS` and change only what they are about (``fast_settings(algorithm="RS256")``). The
values keep every rule ``Settings`` checks (publish-lead <= rotation-period, jwks-max-age <= publish-lead / 2,
schedule <= publish-lead / 2, default-token-ttl <= max-token-ttl) with the shortest periods a 1 s
schedule still ticks through reliably on a loaded machine.
"""

from __future__ import annotations

from collections.abc import Mapping

FAST_SETTINGS: Mapping[str, str] = {
    "rotation-period": "6s",
    "publish-lead": "2s",
    "schedule": "1s",
    "jwks-max-age": "1s",
    "max-token-ttl": "10s",
    "default-token-ttl": "5s",
    "signer-cache-ttl": "1s",
    "clock-skew-leeway": "1s",
}
"""Deployment settings by their command-line names, as ``LocalStack`` and ``jwks-rotator local`` take them."""

WATCHABLE_PACE: Mapping[str, str] = {"rotation-period": "20s", "publish-lead": "5s", "jwks-max-age": "2s"}
"""The changes ``make run`` makes to the preset (mk/local.mk): a key activates every 20 s, slow enough to watch,
and slow enough that a test reading a stack's status sees no rotation land in between."""


def fast_settings(changes: Mapping[str, str] | None = None, /, **named: str) -> dict[str, str]:
    """A copy of :data:`FAST_SETTINGS` with ``changes`` applied; keyword names may use ``_`` for ``-``."""
    settings = dict(FAST_SETTINGS)
    settings.update(changes or {})
    settings.update({name.replace("_", "-"): value for name, value in named.items()})
    return settings


def as_options(settings: Mapping[str, str]) -> list[str]:
    """The settings as command-line options: ``["--rotation-period", "6s", ...]``."""
    options: list[str] = []
    for name, value in settings.items():
        options += [f"--{name}", value]
    return options
