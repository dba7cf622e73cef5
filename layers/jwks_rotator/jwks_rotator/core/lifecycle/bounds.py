"""The bounds that keep the promise: when a key may sign, when it may go, and what a clock may claim.

A key is published before it signs and stays published until its last token expires. Settings change, so each bound
is recorded on the key when it starts (``ready_at`` at first publication, ``retain_until`` at retirement), from the
settings then in force, and the later of the recorded bound and today's rule wins.

A stored event time more than ``clock-skew-leeway`` ahead of ``now`` means a clock is wrong: the rotator refuses to
write (:class:`ClockSkewError`). The keyring holds at most :data:`MAX_KEYS` keys and :data:`MAX_KEYRING_BYTES` of
JSON, under Secrets Manager's SecretString limit.

Design (what each bound adds up): docs/design/key-lifecycle.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from jwks_rotator.core.durations import format_duration
from jwks_rotator.core.errors import ClockSkewError, KeyringLimitError
from jwks_rotator.core.keys.keyring import MAX_TOMBSTONES, Keyring
from jwks_rotator.core.keys.records import KeyRecord
from jwks_rotator.core.settings import Settings

__all__ = [
    "MAX_KEYRING_BYTES", "MAX_KEYS", "MAX_TOMBSTONES", "active_key_age", "check_clock", "check_room",
    "deletion_time", "is_ready", "not_before", "ready_time", "retirement_bound", "signing_token_ttl",
]

MAX_KEYS = 10
"""Keys the keyring may hold: a steady state holds 3 (active, pending, retired); rotate-now and revoke add the rest."""
MAX_KEYRING_BYTES = 56_000
"""Serialised keyring size cap: :data:`MAX_KEYS` RSA-4096 keys plus the tombstones fit, with margin below 65,536."""


def ready_time(key: KeyRecord, settings: Settings) -> datetime | None:
    """When a published pending key may first sign: the recorded ``ready_at`` or today's lead, whichever is later."""
    if key.published_at is None:
        return None
    today = key.published_at + max(settings.publish_lead, settings.jwks_max_age)
    return max(today, key.ready_at) if key.ready_at is not None else today


def is_ready(key: KeyRecord, settings: Settings, now: datetime) -> bool:
    """Whether a pending key has been published for the full lead (recorded or current, whichever is longer)."""
    ready = ready_time(key, settings)
    return ready is not None and ready <= now


def signing_token_ttl(key: KeyRecord, settings: Settings) -> timedelta:
    """The longest token lifetime the key may have signed with: recorded while active, or today's if longer."""
    recorded = key.max_token_ttl or timedelta(0)
    return max(recorded, settings.max_token_ttl)


def retirement_bound(key: KeyRecord, settings: Settings, retired_at: datetime) -> datetime:
    """The earliest deletion the settings in force at retirement allow, recorded as ``retain_until``."""
    tokens = signing_token_ttl(key, settings) + settings.signer_cache_ttl + settings.clock_skew_leeway
    return retired_at + max(settings.effective_retention, tokens)


def deletion_time(key: KeyRecord, settings: Settings) -> datetime | None:
    """When a retired key leaves the keyring and the JWKS: the latest of the recorded bounds and today's rule."""
    if key.retired_at is None:
        return None
    bounds = [key.retired_at + settings.effective_retention]
    if key.max_token_ttl is not None:
        bounds.append(key.retired_at + key.max_token_ttl + settings.signer_cache_ttl + settings.clock_skew_leeway)
    if key.retain_until is not None:
        bounds.append(key.retain_until)
    if key.views_left_at is not None:  # several regions: counted again from the last region's view leaving the key
        bounds.append(retirement_bound(key, settings, key.views_left_at))
    return max(bounds)


def not_before(key: KeyRecord, now: datetime) -> datetime:
    """``now``, or the key's latest recorded moment if that is later (a clock behind, within the leeway)."""
    return max(now, key.latest_event())


def check_clock(keyring: Keyring, settings: Settings, now: datetime) -> None:
    """Refuse to plan when a stored moment lies more than clock-skew-leeway after ``now``.

    Either this clock is behind or the clock that wrote it was ahead; writing
    on would date changes before changes already made, or (the other way)
    act on a schedule that has not really elapsed. The message names the key
    and field, never a stored value other than the kid.
    """
    horizon = now + settings.clock_skew_leeway
    for key in keyring.keys:
        for name, value in key.event_times:
            if value > horizon:
                raise ClockSkewError(
                    f"key {key.kid}: its {name} lies {format_duration(_whole_seconds(value - now))} after this clock "
                    f"(clock-skew-leeway {format_duration(settings.clock_skew_leeway)}); refusing to write until the clocks agree"
                )
    for revocation in keyring.revoked:
        if revocation.revoked_at > horizon:
            raise ClockSkewError(
                f"revocation of {revocation.kid} lies {format_duration(_whole_seconds(revocation.revoked_at - now))} "
                "after this clock; refusing to write until the clocks agree"
            )


def active_key_age(keyring: Keyring, now: datetime) -> timedelta:
    """How long the active key has signed; zero when there is none or the clock reads before its activation."""
    active = keyring.active
    if active is None or active.activated_at is None:
        return timedelta(0)
    return max(timedelta(0), now - active.activated_at)


def check_room(keyring: Keyring, operation: str) -> None:
    """Refuse a keyring that grew past :data:`MAX_KEYS` keys or :data:`MAX_KEYRING_BYTES` bytes."""
    if len(keyring.keys) > MAX_KEYS:
        raise KeyringLimitError(
            f"{operation} refused: the keyring would hold {len(keyring.keys)} keys, more than {MAX_KEYS}; "
            "retired keys leave once their tokens have expired, try again then"
        )
    size = len(keyring.to_json().encode("utf-8"))
    if size > MAX_KEYRING_BYTES:
        raise KeyringLimitError(
            f"{operation} refused: the keyring would be {size} bytes, more than {MAX_KEYRING_BYTES}; "
            "retired keys leave once their tokens have expired, try again then"
        )


def _whole_seconds(value: timedelta) -> timedelta:
    return timedelta(seconds=int(value.total_seconds()))
