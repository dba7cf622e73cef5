"""Cache settings for the verifiers in front of a service, derived from a stack's publish-lead and jwks-max-age.

The rule: a key is in the published JWKS for ``publish-lead`` before it signs. A verifier sees it no later than
its own cache duration after the edge does, and the edge (a CDN honouring ``jwks-max-age``, if an invalidation is
lost) no later than ``jwks-max-age`` after publication. So every verifier holds the new key before its first token
when ``cache + jwks-max-age + margin <= publish-lead``. The margin (:func:`cache_margin`) absorbs failed fetches,
retries and clock skew: a tenth of the lead, and never less than clock-skew-leeway or one second.

For each known verifier :func:`recommend` keeps its default when that fits, else the largest cache that does; a
fixed cache (API Gateway's 2 h) cannot move, so a lead too short for it gets the shortest lead that fits. It also
states what the setting means for a revocation (the revoked key's tokens pass for up to cache + jwks-max-age) and
for ``rotate --now`` (a verifier that does not refetch for an unknown kid refuses the new key for as long).
Pure: durations in, recommendations out (design notes: docs/verifiers.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from jwks_rotator.core.errors import ConfigurationError

MARGIN_FRACTION = 0.1
MIN_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class VerifierCache:
    """What a verifier keeps and how it is set: its cache setting and default, and whether it refetches for an unknown kid."""

    name: str
    setting: str
    default: timedelta
    configurable: bool = True
    refetches_unknown_kid: bool = False
    cooldown_setting: str = ""
    cooldown_default: timedelta | None = None
    note: str = ""


VERIFIERS: tuple[VerifierCache, ...] = (
    VerifierCache(
        "Envoy jwt_authn", "remote_jwks.cache_duration", timedelta(minutes=10),
        note="ignores Cache-Control; no refetch for an unknown kid; set async_fetch and a retry_policy",
    ),
    VerifierCache(
        "PyJWT PyJWKClient", "lifespan", timedelta(minutes=5), refetches_unknown_kid=True,
        cooldown_setting="cooldown_duration", cooldown_default=timedelta(seconds=30),
    ),
    VerifierCache(
        "Node jose createRemoteJWKSet", "cacheMaxAge", timedelta(minutes=10), refetches_unknown_kid=True,
        cooldown_setting="cooldownDuration", cooldown_default=timedelta(seconds=30),
    ),
    VerifierCache(
        "Node jwks-rsa", "cacheMaxAge", timedelta(hours=10), refetches_unknown_kid=True,
        cooldown_setting="jwksRequestsPerMinute (rateLimit: true)", note="caches each kid's key; fetches the JWKS for a kid it does not hold",
    ),
    VerifierCache(
        "AWS API Gateway JWT authorizer", "(none)", timedelta(hours=2), configurable=False,
        note="fixed by AWS; publish-lead must leave room for it",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Recommendation:
    """One verifier's settings for a stack, and what they mean."""

    verifier: VerifierCache
    cache: timedelta | None
    """The cache to configure (its default when that fits); None when no cache fits (the lead is too short)."""
    cooldown: timedelta | None
    fits: bool
    """Whether ``cache + jwks-max-age + margin <= publish-lead``."""
    revocation_bound: timedelta | None
    """How long a revoked key's tokens may still pass this verifier: cache + jwks-max-age."""
    rotate_now_window: timedelta | None
    """How long after ``rotate --now`` a verifier that fetched before may refuse the new key's tokens."""
    minimum_publish_lead: timedelta | None
    """For a cache that does not fit: the shortest publish-lead that fits it (jwks-max-age kept)."""


@dataclass(frozen=True)
class CacheGuidance:
    """A stack's publish-lead and jwks-max-age, the margin and largest verifier cache they allow, and each verifier's settings."""

    publish_lead: timedelta
    jwks_max_age: timedelta
    margin: timedelta
    max_cache: timedelta
    recommendations: tuple[Recommendation, ...]


def cache_margin(publish_lead: timedelta, clock_skew_leeway: timedelta) -> timedelta:
    """The slack the rule keeps: a tenth of the lead, at least clock-skew-leeway and one second."""
    return max(publish_lead * MARGIN_FRACTION, clock_skew_leeway, MIN_MARGIN)


def max_verifier_cache(publish_lead: timedelta, jwks_max_age: timedelta, clock_skew_leeway: timedelta) -> timedelta:
    """The largest cache any verifier may keep: ``publish-lead - jwks-max-age - margin`` (zero when none fits)."""
    return max(timedelta(0), publish_lead - jwks_max_age - cache_margin(publish_lead, clock_skew_leeway))


def fits(cache: timedelta, publish_lead: timedelta, jwks_max_age: timedelta, clock_skew_leeway: timedelta) -> bool:
    """The rule: ``cache + jwks-max-age + margin <= publish-lead``."""
    return cache + jwks_max_age + cache_margin(publish_lead, clock_skew_leeway) <= publish_lead


def _refuse_impossible(publish_lead: timedelta | None, jwks_max_age: timedelta, clock_skew_leeway: timedelta, cache: timedelta | None = None) -> None:
    """Inputs no stack can have (the settings refuse them too) would give a rule that "fits" anything: refused."""
    for name, value, least in (
        ("publish-lead", publish_lead, timedelta.resolution), ("jwks-max-age", jwks_max_age, timedelta(0)),
        ("clock-skew-leeway", clock_skew_leeway, timedelta(0)), ("verifier cache", cache, timedelta(0)),
    ):  # fmt: skip
        if value is not None and value < least:
            raise ConfigurationError(f"verifier caches: {name} must be {'greater than zero' if least else 'zero or more'}")


def minimum_publish_lead(cache: timedelta, jwks_max_age: timedelta, clock_skew_leeway: timedelta) -> timedelta:
    """The shortest whole-second publish-lead for which ``cache`` fits (and jwks-max-age <= publish-lead / 2 holds)."""
    _refuse_impossible(None, jwks_max_age, clock_skew_leeway, cache)
    base = (cache + jwks_max_age).total_seconds()
    floor = max(base / (1 - MARGIN_FRACTION), base + clock_skew_leeway.total_seconds(), base + MIN_MARGIN.total_seconds(), 2 * jwks_max_age.total_seconds())
    lead = timedelta(seconds=math.ceil(floor - 1e-9))
    while not fits(cache, lead, jwks_max_age, clock_skew_leeway):  # rounding: at most a step or two
        lead += timedelta(seconds=1)
    return lead


def recommend(
    publish_lead: timedelta, jwks_max_age: timedelta, clock_skew_leeway: timedelta, verifiers: tuple[VerifierCache, ...] = VERIFIERS
) -> CacheGuidance:
    """Every verifier's settings for a stack with these settings (the rule in the module docstring).

    A publish-lead of zero or less, or a negative jwks-max-age or clock-skew-leeway, raises ``ConfigurationError``.
    """
    _refuse_impossible(publish_lead, jwks_max_age, clock_skew_leeway)
    largest = max_verifier_cache(publish_lead, jwks_max_age, clock_skew_leeway)
    recommendations = []
    for verifier in verifiers:
        if not verifier.configurable:
            cache: timedelta | None = verifier.default
        elif largest > timedelta(0):
            cache = min(verifier.default, largest)
        else:
            cache = None
        ok = cache is not None and fits(cache, publish_lead, jwks_max_age, clock_skew_leeway)
        cooldown = None
        if verifier.cooldown_default is not None:
            cooldown = min(verifier.cooldown_default, cache) if cache is not None else None
        revocation = cache + jwks_max_age if cache is not None else None
        if cache is None:
            window = None
        elif verifier.refetches_unknown_kid:
            window = (cooldown or timedelta(0)) + jwks_max_age
        else:
            window = cache + jwks_max_age
        needed = None if ok else minimum_publish_lead(verifier.default, jwks_max_age, clock_skew_leeway)
        recommendations.append(Recommendation(verifier, cache, cooldown, ok, revocation, window, needed))
    margin = cache_margin(publish_lead, clock_skew_leeway)
    return CacheGuidance(publish_lead, jwks_max_age, margin, largest, tuple(recommendations))
