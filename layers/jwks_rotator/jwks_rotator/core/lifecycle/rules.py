"""The key lifecycle as pure functions of (keyring, settings, now).

Nothing here reads a clock or talks to AWS: the rotation service feeds in ``now`` and stores what comes out, so tests
run months of schedule in seconds. Each change names its reason: a retired key is deleted once its tokens have
expired under every setting it signed with; a pending key activates once it has been published for ``publish-lead``
and the active key is due (the active key retires at that same write); there is always one pending key of the
configured algorithm. An active key is always a published key, and revoked kids never come back.

The bounds recorded on keys, the clock checks and the size limits live in :mod:`.bounds`.
Design (every rule, bootstrap and rotate-now): docs/design/key-lifecycle.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from jwks_rotator.core.durations import format_duration
from jwks_rotator.core.errors import UnknownKeyError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.lifecycle.bounds import (
    check_room,
    deletion_time,
    is_ready,
    not_before,
    ready_time,
    retirement_bound,
    signing_token_ttl,
)
from jwks_rotator.core.settings import Settings

__all__ = [
    "KeyFactory", "LifecycleChange", "Plan", "deletion_time", "is_due", "is_ready",
    "reconcile", "record_publication", "revoke", "rotate_now",
]

KeyFactory = Callable[[str, datetime], KeyRecord]
"""Makes a new pending key for (algorithm, now)."""


@dataclass(frozen=True)
class LifecycleChange:
    """One state change, for logs and metrics."""

    kind: str  # created | activated | retired | deleted | published | unpublished | revoked
    kid: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """The keyring after a step and the changes that led to it."""

    keyring: Keyring
    changes: tuple[LifecycleChange, ...]
    bookkeeping: bool = False  # the keyring changed without a key changing state

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.bookkeeping


def is_due(key: KeyRecord, settings: Settings, now: datetime) -> bool:
    """Whether an active key has signed for its full rotation period."""
    return key.activated_at is not None and key.activated_at + settings.rotation_period <= now


def next_transition(key: KeyRecord, keyring: Keyring, settings: Settings) -> tuple[str, datetime | None]:
    """What happens to ``key`` next and when (``None``: at the next tick), for status displays.

    A published pending key activates once both its lead has passed and the
    active key is due; an active key is due after ``rotation-period``; a
    retired key is deleted after the retention.
    """
    if key.state is KeyState.PENDING:
        if key.published_at is None:
            return "published at the next tick", None
        if key.lead_waived:
            return "activates at the next tick (lead waived)", None
        active = keyring.active
        if active is None or active.activated_at is None:
            return "activates at the next tick (no active key)", None
        ready = ready_time(key, settings) or key.published_at + settings.publish_lead
        return "activates", max(ready, active.activated_at + settings.rotation_period)
    if key.state is KeyState.ACTIVE:
        if key.activated_at is None:
            return "due at the next tick", None
        return "due (retires when the next key is ready)", key.activated_at + settings.rotation_period
    return "deleted", deletion_time(key, settings)


def _by_publication(keys: Iterable[KeyRecord]) -> list[KeyRecord]:
    """Longest published first (verifiers are most likely to hold those)."""
    return sorted(keys, key=lambda k: (k.published_at or k.created_at, k.created_at, k.kid))


def _activate(key: KeyRecord, settings: Settings, now: datetime) -> KeyRecord:
    return key.with_changes(state=KeyState.ACTIVE, activated_at=not_before(key, now), max_token_ttl=signing_token_ttl(key, settings))


def _retire(key: KeyRecord, settings: Settings, now: datetime) -> KeyRecord:
    retired_at = not_before(key, now)
    key = key.with_changes(state=KeyState.RETIRED, retired_at=retired_at, max_token_ttl=signing_token_ttl(key, settings))
    return key.with_changes(retain_until=retirement_bound(key, settings, retired_at))


def reconcile(keyring: Keyring, settings: Settings, now: datetime, new_key: KeyFactory) -> Plan:
    """Apply every transition that is due at ``now``; running it twice changes nothing more."""
    changes: list[LifecycleChange] = []
    keys: list[KeyRecord] = []
    bookkeeping = False
    for key in keyring.keys:
        expiry = deletion_time(key, settings)
        if key.state is KeyState.RETIRED and expiry is not None and expiry <= now:
            changes.append(LifecycleChange("deleted", key.kid, "tokens it signed have expired"))
        elif key.state is KeyState.PENDING and key.alg != settings.algorithm and not key.lead_waived:
            changes.append(LifecycleChange("deleted", key.kid, f"algorithm changed to {settings.algorithm}"))
        else:
            if key.state is KeyState.ACTIVE and signing_token_ttl(key, settings) != key.max_token_ttl:
                key = key.with_changes(max_token_ttl=signing_token_ttl(key, settings))  # it may sign longer tokens now
                bookkeeping = True
            keys.append(key)

    active = next((k for k in keys if k.state is KeyState.ACTIVE), None)
    published = _by_publication(k for k in keys if k.state is KeyState.PENDING and k.published_at is not None)
    candidate: KeyRecord | None = None
    reason = ""
    waived = [k for k in published if k.lead_waived]
    if waived:
        candidate, reason = waived[0], "lead waived (bootstrap, rotate-now or revocation)"
    elif active is None and published:
        candidate, reason = published[0], "no active key"
    elif active is not None and is_due(active, settings, now):
        ready = [k for k in published if is_ready(k, settings, now)]
        if ready:
            candidate, reason = ready[0], "rotation due"
    if candidate is not None:
        updated: list[KeyRecord] = []
        for key in keys:
            if key is candidate:
                key = _activate(key, settings, now)
                changes.append(LifecycleChange("activated", key.kid, reason))
            elif key is active:
                key = _retire(key, settings, now)
                changes.append(LifecycleChange("retired", key.kid, f"replaced by {candidate.kid}"))
            updated.append(key)
        keys = updated

    if not any(k.state is KeyState.PENDING and k.alg == settings.algorithm for k in keys):
        fresh = new_key(settings.algorithm, now)
        bootstrap = not any(k.state is KeyState.ACTIVE for k in keys) and not any(k.state is KeyState.PENDING for k in keys)
        fresh = fresh.with_changes(state=KeyState.PENDING, lead_waived=bootstrap)
        keys.append(fresh)
        changes.append(LifecycleChange("created", fresh.kid, "bootstrap" if bootstrap else "next key"))

    if not changes and not bookkeeping:
        return Plan(keyring, ())
    return Plan(keyring.replace_keys(keys), tuple(changes), bookkeeping=bookkeeping)


def record_publication(
    keyring: Keyring, published_kids: Iterable[str], digest: str, now: datetime, *, settings: Settings | None = None,
    scope: tuple[str, ...] = (),
) -> Plan:
    """Note that a JWKS with ``digest`` holding ``published_kids`` is now served; the first time gates activation.

    With ``settings``, the key's ``ready_at`` is recorded from the publish-lead
    and jwks-max-age in force now, so a later, shorter lead cannot cut it.
    ``published_at`` is never dated before the key was created. ``scope`` (several regions) names where the key was
    held, kept as its ``published_in``.
    """
    kids = set(published_kids)
    changes: list[LifecycleChange] = []
    keys: list[KeyRecord] = []
    for key in keyring.keys:
        if key.kid in kids and key.published_at is None:
            published_at = not_before(key, now)
            ready_at = published_at + max(settings.publish_lead, settings.jwks_max_age) if settings is not None else None
            key = key.with_changes(published_at=published_at, ready_at=ready_at, published_in=scope or None)
            changes.append(LifecycleChange("published", key.kid, "first seen in a published JWKS"))
        keys.append(key)
    if not changes and keyring.published_digest == digest:
        return Plan(keyring, ())
    return Plan(keyring.replace_keys(keys).with_digest(digest), tuple(changes), bookkeeping=True)


def rotate_now(keyring: Keyring, settings: Settings, now: datetime, new_key: KeyFactory) -> Plan:
    """Emergency rotation: a fresh key that activates as soon as it is published, skipping the lead.

    Idempotent until that key activates: a retried call finds the waived key
    and adds none. Refused (:class:`KeyringLimitError`) before the keyring
    would outgrow its limits.
    """
    waiting = [k for k in keyring.keys if k.state is KeyState.PENDING and k.lead_waived]
    if waiting:
        return Plan(keyring, ())
    fresh = new_key(settings.algorithm, now).with_changes(state=KeyState.PENDING, lead_waived=True)
    planned = keyring.replace_keys((*keyring.keys, fresh))
    check_room(planned, "rotate-now")
    return Plan(planned, (LifecycleChange("created", fresh.kid, "rotate-now: lead waived"),))


THUMBPRINT_KID = re.compile(r"[A-Za-z0-9_-]{43}")
"""The shape of every kid this product makes: the base64url RFC 7638 SHA-256 thumbprint."""


def _revoke_not_held(keyring: Keyring, kid: str, now: datetime) -> Plan:
    """Ban a kid the keyring no longer holds (a key leaked from an older secret version or a backup), so a restore cannot bring it back.

    Only a kid of the product's shape is banned; anything else is an operator's typo (``unknown_kid``). A kid already
    tombstoned changes nothing, so a retried revoke stays idempotent.
    """
    if kid in keyring.revoked_kids():
        return Plan(keyring, ())
    if not THUMBPRINT_KID.fullmatch(kid):
        raise UnknownKeyError("the kid is not in the keyring and is not a kid this product makes (43 base64url characters)")
    planned = keyring.with_revocation(kid, now)
    check_room(planned, "revoke")
    return Plan(planned, (LifecycleChange("revoked", kid, "revoked while not held: banned so a restore cannot bring it back"),))


def revoke(keyring: Keyring, kid: str, settings: Settings, now: datetime, new_key: KeyFactory) -> Plan:
    """Remove ``kid`` from the keyring at once and keep it as a tombstone.

    If it was the active key, the pending key of the configured algorithm
    that has been published longest takes over now: verifiers are most likely
    to hold it already. Its lead is cut short if it was not ready (the change
    says how long it had been published). Other waived keys lose their waiver:
    the handover already replaced the active key. Only with no published
    pending key is a fresh key created with its lead waived.
    """
    target = keyring.get(kid)
    if target is None:
        return _revoke_not_held(keyring, kid, now)
    revoked_at = not_before(target, now)
    keys = [k for k in keyring.keys if k.kid != kid]
    changes = [LifecycleChange("revoked", kid, f"revoked while {target.state.value}")]
    if target.state is KeyState.ACTIVE:
        published = _by_publication(
            k for k in keys if k.state is KeyState.PENDING and k.published_at is not None and k.alg == settings.algorithm
        )
        if published:
            successor = published[0]
            assert successor.published_at is not None
            held = format_duration(_whole_seconds(max(now - successor.published_at, timedelta(0))))
            lead = "lead complete" if is_ready(successor, settings, now) else "lead cut short"
            keys = [
                _activate(k, settings, now) if k is successor
                else k.with_changes(lead_waived=False) if k.state is KeyState.PENDING and k.lead_waived
                else k
                for k in keys
            ]
            changes.append(LifecycleChange("activated", successor.kid, f"replaces revoked {kid}; published {held}, {lead}"))
        else:
            fresh = new_key(settings.algorithm, now).with_changes(state=KeyState.PENDING, lead_waived=True)
            keys.append(fresh)
            changes.append(LifecycleChange("created", fresh.kid, f"replaces revoked {kid}: lead waived"))
    planned = keyring.replace_keys(keys).with_revocation(kid, revoked_at, target.kms_key_arn)
    check_room(planned, "revoke")
    return Plan(planned, tuple(changes))


def _whole_seconds(value: timedelta) -> timedelta:
    return timedelta(seconds=int(value.total_seconds()))
