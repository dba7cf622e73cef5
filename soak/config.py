"""The soak's knobs (:class:`SoakConfig`) and the verifier caches scaled to the publish lead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jwks_rotator.core.lifecycle.verifier_caches import VERIFIERS, recommend
from jwks_rotator.core.settings import Settings

from .proxy import FaultRates

NODE_DIR = Path(__file__).resolve().parents[1] / "tests" / "interop" / "node"
"""The node verifier's script and its jose install (``make interop-node``)."""
PRODUCTION_LEAD = 172_800.0  # the default publish lead (2 d) the libraries' defaults are safe against
PYJWT_DEFAULTS = (300.0, 30.0)  # PyJWKClient lifespan, cooldown_duration
JOSE_DEFAULTS = (600.0, 30.0)  # createRemoteJWKSet cacheMaxAge, cooldownDuration
AUDIENCE = "soak-api"
POLICY_FILE = Path(__file__).resolve().parent / "issuance-policy.yaml"
"""The soak's issuance policy: profile ``soak`` for :data:`CALLER_ROLE`, audience :data:`AUDIENCE`."""
CALLER_ROLE = "arn:aws:iam::123456789012:role/jwks-rotator-soak-caller"
EPISODES = ("double", "crash", "kill", "pause", "faults")
Log = Callable[[str], None]


@dataclass(frozen=True)
class SoakConfig:
    """One soak run's knobs; settings are passed to the local stack as on the command line."""

    algorithm: str = "ES256"
    duration: float = 24.0  # seconds of traffic; the run adds setup and a drain of max-token-ttl
    rotation_period: str = "10s"
    publish_lead: str = "3s"
    max_token_ttl: str = "5s"
    default_token_ttl: str = "5s"
    jwks_max_age: str = "1s"
    schedule: str = "1s"
    signer_cache_ttl: str = "1s"
    clock_skew_leeway: str = "1s"
    callers: int = 3
    caller_pause: float = 0.03
    pyjwt_workers: int = 2
    jose_workers: int = 2
    sample_interval: float = 0.05
    episode_seconds: float = 4.0
    quiet_seconds: float = 1.5
    episodes: tuple[str, ...] = ("double", "crash", "kill", "pause", "faults")
    rates: FaultRates = field(default_factory=FaultRates)
    seed: int = 1
    expiry_margin: float = 0.15  # verify at least this long before exp (clock granularity; leeway 0)
    envoy: bool = True  # Envoy (jwt_authn, remote_jwks) checks every token too, and a revocation is probed against it at the end

    @property
    def libraries(self) -> tuple[str, ...]:
        """The verifiers that check every token."""
        return ("pyjwt", "jose", "envoy") if self.envoy else ("pyjwt", "jose")

    def settings(self) -> dict[str, str]:
        return {
            "algorithm": self.algorithm,
            "rotation-period": self.rotation_period,
            "publish-lead": self.publish_lead,
            "max-token-ttl": self.max_token_ttl,
            "default-token-ttl": self.default_token_ttl,
            "jwks-max-age": self.jwks_max_age,
            "schedule": self.schedule,
            "signer-cache-ttl": self.signer_cache_ttl,
            "clock-skew-leeway": self.clock_skew_leeway,
            "allowed-audiences": AUDIENCE,
            "default-audience": AUDIENCE,
        }


@dataclass(frozen=True)
class CacheSettings:
    """A verifier library's JWKS cache: how long it keeps a set, how long it refuses a forced refetch."""

    lifespan: float
    cooldown: float


def envoy_cache(settings: Settings) -> CacheSettings:
    """Envoy's ``cache_duration`` as ``jwks-rotator verifiers`` recommends it for these settings (no cooldown: Envoy has none)."""
    envoy = next(v for v in VERIFIERS if v.name.startswith("Envoy"))
    (rec,) = recommend(settings.publish_lead, settings.jwks_max_age, settings.clock_skew_leeway, (envoy,)).recommendations
    if rec.cache is None or not rec.fits:
        raise ValueError("no Envoy cache fits these settings: raise publish-lead (jwks-rotator verifiers)")
    return CacheSettings(rec.cache.total_seconds(), 0.0)


def scaled_caches(lead: float) -> dict[str, CacheSettings]:
    """Library defaults scaled by lead / 2 d, floored so the caches stay on (lifespan >= lead/3, cooldown >= lead/6).

    The floors keep ``cooldown + jwks-max-age <= lead`` for the settings used here
    (0.5 s + 2 s <= 3 s), which is the condition under which a kid-refetching
    verifier never misses a key published a full lead before it signs.
    """
    ratio = lead / PRODUCTION_LEAD
    return {
        "pyjwt": CacheSettings(max(PYJWT_DEFAULTS[0] * ratio, lead / 3), max(PYJWT_DEFAULTS[1] * ratio, lead / 6)),
        "jose": CacheSettings(max(JOSE_DEFAULTS[0] * ratio, 2 * lead / 3), max(JOSE_DEFAULTS[1] * ratio, lead / 6)),
    }
