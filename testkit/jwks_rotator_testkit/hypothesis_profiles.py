"""Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE``: the full run, a developer's default, the inner loop.

* ``ci`` (``make test``): every property at its full example count; no example database, so a fresh clone
  and a developer's tree run the same examples.
* ``dev`` (a bare ``pytest``): the same counts, with the example database, so a failure found once replays first.
* ``check`` (``make check``): a tenth of the examples (at least a few per property), for a one-minute loop.

No profile has a deadline: speed is measured by the benchmarks, and a per-example deadline on a shared,
loaded machine (or under pytest-xdist) only turns slowness into flaky failures.

A test that needs its own count writes ``max_examples=examples(300)``: 300 under ``ci``/``dev``, scaled under
``check``. An explicit ``max_examples=300`` would override the profile (Hypothesis lets a decorator win).
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"
FULL_EXAMPLES = 100
"""Hypothesis' own default count: the ``ci`` and ``dev`` profiles' ``max_examples``."""
PROFILES = {"ci": FULL_EXAMPLES, "dev": FULL_EXAMPLES, "check": FULL_EXAMPLES // 10}
DEFAULT_PROFILE = "dev"
MIN_EXAMPLES = 5
"""Under a shortened profile, a property still runs at least this many examples (or its full count, if fewer)."""


def register_profiles() -> None:
    """Register ``ci``, ``dev`` and ``check``."""
    settings.register_profile("ci", max_examples=PROFILES["ci"], deadline=None, database=None, print_blob=True)
    settings.register_profile("dev", max_examples=PROFILES["dev"], deadline=None)
    settings.register_profile("check", max_examples=PROFILES["check"], deadline=None, database=None)


def load_profile_from_environment() -> str:
    """Register the profiles and load the one ``HYPOTHESIS_PROFILE`` names (default ``dev``); returns its name."""
    register_profiles()
    name = os.environ.get(PROFILE_ENV, "") or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r}: not one of {', '.join(PROFILES)}")
    settings.load_profile(name)
    return name


def examples(full: int) -> int:
    """``full`` under a full profile; scaled by the loaded profile's ``max_examples`` otherwise (never below a few)."""
    current: int = settings().max_examples
    scale = current / FULL_EXAMPLES
    if scale >= 1:
        return full
    return max(min(full, MIN_EXAMPLES), round(full * scale))
