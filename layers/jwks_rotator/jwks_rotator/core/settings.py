"""Settings: one validated configuration object with documented defaults.

A setting has one name written three ways: kebab-case on the command line
(``--rotation-period``), PascalCase as a SAM template parameter
(``RotationPeriod``) and upper snake case in a Lambda environment
(``ROTATION_PERIOD``). :data:`SETTINGS` is the single table of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from .algorithms import RSA_KEY_SIZES, algorithm_names
from .durations import format_duration, parse_duration
from .errors import ConfigurationError

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its attribute, default (as written) and meaning."""

    attribute: str
    default: str
    doc: str

    @property
    def kebab(self) -> str:
        return self.attribute.replace("_", "-")

    @property
    def env(self) -> str:
        return self.attribute.upper()

    @property
    def pascal(self) -> str:
        return "".join(part.capitalize() for part in self.attribute.split("_"))


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("algorithm", "RS256", "JWS algorithm of new keys: RS256, PS256, ES256, ES384, ES512 or EdDSA (Ed25519). RS256 has the widest verifier support."),
    SettingSpec("rsa_key_size", "2048", "Modulus size in bits for RS256/PS256 keys: 2048, 3072 or 4096."),
    SettingSpec("rotation_period", "7d", "How long a key signs before the next one takes over."),
    SettingSpec("publish_lead", "2d", "How long a key is in the published JWKS before it may sign; must exceed every verifier's JWKS cache (some hold a set 12-24 h)."),
    SettingSpec("max_token_ttl", "1h", "Longest lifetime the signer grants a token."),
    SettingSpec("default_token_ttl", "15m", "Token lifetime when a request names none."),
    SettingSpec("jwks_max_age", "1h", "Cache-Control max-age of the published documents; at most publish-lead."),
    SettingSpec("schedule", "15m", "How often the rotate function ticks; at most half of publish-lead."),
    SettingSpec("issuer", "", "The iss of every token and the base URL of the discovery document (https, or http on loopback)."),
    SettingSpec("allowed_audiences", "", "Comma-separated audiences the signer accepts; empty accepts any."),
    SettingSpec("default_audience", "", "Audience used when a request names none; empty makes aud required."),
    SettingSpec("signer_cache_ttl", "60s", "How long a signer may use its cached keyring before reading it again."),
    SettingSpec("clock_skew_leeway", "60s", "Clock difference tolerated between signers, rotators and verifiers."),
    SettingSpec("retention", "", "How long a retired key stays published; empty derives max-token-ttl + signer-cache-ttl + clock-skew-leeway, and a set value may not be lower."),
    SettingSpec("keyring_secret_id", "", "Name or ARN of the Secrets Manager secret that holds the keyring."),
    SettingSpec("jwks_bucket", "", "S3 bucket the JWKS and discovery documents are written to."),
    SettingSpec("distribution_id", "", "CloudFront distribution to invalidate when the documents change; empty skips invalidation."),
)

SETTINGS_BY_ATTRIBUTE: dict[str, SettingSpec] = {spec.attribute: spec for spec in SETTINGS}


def _csv(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with :meth:`from_mapping` or :meth:`from_env`."""

    algorithm: str = "RS256"
    rsa_key_size: int = 2048
    rotation_period: timedelta = timedelta(days=7)
    publish_lead: timedelta = timedelta(days=2)
    max_token_ttl: timedelta = timedelta(hours=1)
    default_token_ttl: timedelta = timedelta(minutes=15)
    jwks_max_age: timedelta = timedelta(hours=1)
    schedule: timedelta = timedelta(minutes=15)
    issuer: str = ""
    allowed_audiences: tuple[str, ...] = ()
    default_audience: str = ""
    signer_cache_ttl: timedelta = timedelta(seconds=60)
    clock_skew_leeway: timedelta = timedelta(seconds=60)
    retention: timedelta | None = None
    keyring_secret_id: str = ""
    jwks_bucket: str = ""
    distribution_id: str = ""

    def __post_init__(self) -> None:
        self.validate()

    # --- derived values -------------------------------------------------
    @property
    def minimum_retention(self) -> timedelta:
        """max-token-ttl + signer-cache-ttl + clock-skew-leeway."""
        return self.max_token_ttl + self.signer_cache_ttl + self.clock_skew_leeway

    @property
    def effective_retention(self) -> timedelta:
        """How long a retired key stays published after it stops signing."""
        return self.retention if self.retention is not None else self.minimum_retention

    @property
    def jwks_uri(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/jwks.json"

    @property
    def discovery_uri(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    # --- validation -----------------------------------------------------
    def validate(self) -> None:
        """Refuse unsafe or malformed combinations, naming the rule broken."""
        if self.algorithm not in algorithm_names():
            raise ConfigurationError(
                f"algorithm: {self.algorithm!r} is not supported; choose one of {', '.join(algorithm_names())}"
            )
        if self.rsa_key_size not in RSA_KEY_SIZES:
            raise ConfigurationError(
                f"rsa-key-size: {self.rsa_key_size} is not supported; choose one of {', '.join(map(str, RSA_KEY_SIZES))}"
            )
        for name in ("rotation_period", "publish_lead", "max_token_ttl", "default_token_ttl", "jwks_max_age", "schedule", "signer_cache_ttl"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigurationError(f"{name.replace('_', '-')}: must be greater than zero")
        if self.clock_skew_leeway < timedelta(0):
            raise ConfigurationError("clock-skew-leeway: must not be negative")
        if self.publish_lead > self.rotation_period:
            raise ConfigurationError(
                f"rule publish-lead <= rotation-period: a key must be published for {format_duration(self.publish_lead)} "
                f"but would be due after {format_duration(self.rotation_period)}"
            )
        if self.jwks_max_age > self.publish_lead:
            raise ConfigurationError(
                f"rule jwks-max-age <= publish-lead: verifiers may cache the JWKS for {format_duration(self.jwks_max_age)}, "
                f"longer than the {format_duration(self.publish_lead)} a new key is published before it signs"
            )
        if self.schedule * 2 > self.publish_lead:
            raise ConfigurationError(
                f"rule schedule <= publish-lead / 2: ticking every {format_duration(self.schedule)} is too coarse "
                f"for a publish lead of {format_duration(self.publish_lead)}"
            )
        if self.default_token_ttl > self.max_token_ttl:
            raise ConfigurationError(
                f"rule default-token-ttl <= max-token-ttl: {format_duration(self.default_token_ttl)} exceeds "
                f"{format_duration(self.max_token_ttl)}"
            )
        if self.retention is not None and self.retention < self.minimum_retention:
            raise ConfigurationError(
                f"rule retention >= max-token-ttl + signer-cache-ttl + clock-skew-leeway: {format_duration(self.retention)} "
                f"is below the derived minimum {format_duration(self.minimum_retention)}"
            )
        if self.default_audience and self.allowed_audiences and self.default_audience not in self.allowed_audiences:
            raise ConfigurationError(
                f"rule default-audience in allowed-audiences: {self.default_audience!r} is not allowed"
            )
        if self.issuer:
            parsed = urlparse(self.issuer)
            loopback = parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS
            if not (parsed.scheme == "https" or loopback) or not parsed.hostname or parsed.query or parsed.fragment:
                raise ConfigurationError(
                    f"issuer: {self.issuer!r} must be an https URL without query or fragment (http only on loopback)"
                )

    def require(self, *attributes: str) -> None:
        """Refuse to go on when a setting a component needs is empty."""
        missing = [SETTINGS_BY_ATTRIBUTE[a].kebab for a in attributes if not getattr(self, a)]
        if missing:
            raise ConfigurationError(f"missing required setting(s): {', '.join(missing)}")

    # --- construction ---------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build from a mapping keyed by attribute, kebab-case or env name; strings are parsed."""
        lookup = {}
        for spec in SETTINGS:
            for key in (spec.attribute, spec.kebab, spec.env, spec.pascal):
                lookup[key] = spec
        unknown = [key for key in values if key not in lookup]
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            spec = lookup[key]
            if raw is None:
                continue
            kwargs[spec.attribute] = _PARSERS.get(spec.attribute, _text)(raw, spec)
        return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build from environment variables named in upper snake case (``ROTATION_PERIOD``)."""
        return cls.from_mapping({spec.attribute: environ[spec.env] for spec in SETTINGS if spec.env in environ})

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (strings are parsed as on the command line), validated again."""
        parsed = {
            name: _PARSERS.get(name, _text)(value, SETTINGS_BY_ATTRIBUTE[name]) if isinstance(value, str) else value
            for name, value in changes.items()
        }
        return dataclasses.replace(self, **parsed)

    def describe(self) -> dict[str, str]:
        """Every setting as written on a command line, for logs and the CLI."""
        out: dict[str, str] = {}
        for spec in SETTINGS:
            value = getattr(self, spec.attribute)
            if isinstance(value, timedelta):
                out[spec.kebab] = format_duration(value)
            elif isinstance(value, tuple):
                out[spec.kebab] = ",".join(value)
            elif value is None:
                out[spec.kebab] = f"(derived: {format_duration(self.effective_retention)})"
            else:
                out[spec.kebab] = str(value)
        return out


def _text(raw: Any, spec: SettingSpec) -> str:
    return str(raw).strip()


def _duration(raw: Any, spec: SettingSpec) -> timedelta:
    return parse_duration(raw, name=spec.kebab)


def _optional_duration(raw: Any, spec: SettingSpec) -> timedelta | None:
    if isinstance(raw, str) and not raw.strip():
        return None
    return parse_duration(raw, name=spec.kebab)


def _int(raw: Any, spec: SettingSpec) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigurationError(f"{spec.kebab}: {raw!r} is not a whole number") from None


def _audiences(raw: Any, spec: SettingSpec) -> tuple[str, ...]:
    if isinstance(raw, (list, tuple)):
        return tuple(str(item).strip() for item in raw if str(item).strip())
    return _csv(str(raw))


_PARSERS: dict[str, Callable[[Any, SettingSpec], Any]] = {
    "rsa_key_size": _int,
    "rotation_period": _duration,
    "publish_lead": _duration,
    "max_token_ttl": _duration,
    "default_token_ttl": _duration,
    "jwks_max_age": _duration,
    "schedule": _duration,
    "signer_cache_ttl": _duration,
    "clock_skew_leeway": _duration,
    "retention": _optional_duration,
    "allowed_audiences": _audiences,
}
