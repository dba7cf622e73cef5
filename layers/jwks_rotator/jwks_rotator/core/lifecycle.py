"""The key lifecycle as pure functions of (keyring, settings, now).

Nothing here reads a clock or talks to AWS: the rotation service feeds in
``now`` and stores what comes out, so tests can run months of schedule in
seconds. Rules (each change names its reason):

* a retired key is deleted once ``retention`` has passed since it retired;
* a pending key of another algorithm than the configured one is dropped
  (it never signed);
* a pending key becomes active when it has been in a successfully published
  JWKS for ``publish-lead`` and the active key is due (``rotation-period``);
  the active key retires at that same write. With no active key at all
  (bootstrap, or after the active key was revoked) a published pending key
  activates at once, and so does a key whose lead was waived (rotate-now);
* there is always one pending key of the configured algorithm, created as
  soon as the previous one activates: with no key at all it is created with
  its lead waived, so bootstrap ends as soon as it is published.

An active key is always a published key: activation requires
``published_at``, which only a successful publication sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from .errors import UnknownKeyError
from .keyring import Keyring
from .keys import KeyRecord, KeyState
from .settings import Settings

KeyFactory = Callable[[str, datetime], KeyRecord]
"""Makes a new pending key for (algorithm, now)."""


@dataclass(frozen=True)
class LifecycleChange:
    """One state change, for logs and metrics."""

    kind: str  # created | activated | retired | deleted | published | revoked
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


def is_ready(key: KeyRecord, settings: Settings, now: datetime) -> bool:
    """Whether a pending key has been published for the full lead."""
    return key.published_at is not None and key.published_at + settings.publish_lead <= now


def deletion_time(key: KeyRecord, settings: Settings) -> datetime | None:
    """When a retired key leaves the keyring and the JWKS."""
    return key.retired_at + settings.effective_retention if key.retired_at is not None else None


def next_transition(key: KeyRecord, keyring: Keyring, settings: Settings) -> tuple[str, datetime | None]:
    """What happens to a key next and when (None: at the next tick)."""
    if key.state is KeyState.PENDING:
        if key.published_at is None:
            return "published at the next tick", None
        if key.lead_waived:
            return "activates at the next tick (lead waived)", None
        active = keyring.active
        if active is None or active.activated_at is None:
            return "activates at the next tick (no active key)", None
        return "activates", max(key.published_at + settings.publish_lead, active.activated_at + settings.rotation_period)
    if key.state is KeyState.ACTIVE:
        if key.activated_at is None:
            return "due at the next tick", None
        return "due (retires when the next key is ready)", key.activated_at + settings.rotation_period
    return "deleted", deletion_time(key, settings)


def _by_publication(keys: Iterable[KeyRecord]) -> list[KeyRecord]:
    return sorted(keys, key=lambda k: (k.published_at or k.created_at, k.created_at, k.kid))


def reconcile(keyring: Keyring, settings: Settings, now: datetime, new_key: KeyFactory) -> Plan:
    """Apply every transition that is due at ``now``; running it twice changes nothing more."""
    changes: list[LifecycleChange] = []
    keys: list[KeyRecord] = []
    for key in keyring.keys:
        expiry = deletion_time(key, settings)
        if key.state is KeyState.RETIRED and expiry is not None and expiry <= now:
            changes.append(LifecycleChange("deleted", key.kid, "retention over"))
        elif key.state is KeyState.PENDING and key.alg != settings.algorithm and not key.lead_waived:
            changes.append(LifecycleChange("deleted", key.kid, f"algorithm changed to {settings.algorithm}"))
        else:
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
                key = key.with_changes(state=KeyState.ACTIVE, activated_at=now)
                changes.append(LifecycleChange("activated", key.kid, reason))
            elif key is active:
                key = key.with_changes(state=KeyState.RETIRED, retired_at=now)
                changes.append(LifecycleChange("retired", key.kid, f"replaced by {candidate.kid}"))
            updated.append(key)
        keys = updated

    if not any(k.state is KeyState.PENDING and k.alg == settings.algorithm for k in keys):
        fresh = new_key(settings.algorithm, now)
        bootstrap = not any(k.state is KeyState.ACTIVE for k in keys) and not any(k.state is KeyState.PENDING for k in keys)
        fresh = fresh.with_changes(state=KeyState.PENDING, lead_waived=bootstrap)
        keys.append(fresh)
        changes.append(LifecycleChange("created", fresh.kid, "bootstrap" if bootstrap else "next key"))

    if not changes:
        return Plan(keyring, ())
    return Plan(keyring.replace_keys(keys), tuple(changes))


def record_publication(keyring: Keyring, published_kids: Iterable[str], digest: str, now: datetime) -> Plan:
    """Note that a JWKS with ``digest`` holding ``published_kids`` is now served; the first time gates activation."""
    kids = set(published_kids)
    changes: list[LifecycleChange] = []
    keys: list[KeyRecord] = []
    for key in keyring.keys:
        if key.kid in kids and key.published_at is None:
            key = key.with_changes(published_at=now)
            changes.append(LifecycleChange("published", key.kid, "first seen in a published JWKS"))
        keys.append(key)
    if not changes and keyring.published_digest == digest:
        return Plan(keyring, ())
    return Plan(keyring.replace_keys(keys).with_digest(digest), tuple(changes), bookkeeping=True)


def rotate_now(keyring: Keyring, settings: Settings, now: datetime, new_key: KeyFactory) -> Plan:
    """Emergency rotation: a fresh key that activates as soon as it is published, skipping the lead.

    Idempotent until that key activates: a retried call finds the waived key and adds none.
    """
    waiting = [k for k in keyring.keys if k.state is KeyState.PENDING and k.lead_waived]
    if waiting:
        return Plan(keyring, ())
    fresh = new_key(settings.algorithm, now).with_changes(state=KeyState.PENDING, lead_waived=True)
    return Plan(
        keyring.replace_keys((*keyring.keys, fresh)),
        (LifecycleChange("created", fresh.kid, "rotate-now: lead waived"),),
    )


def revoke(keyring: Keyring, kid: str, settings: Settings, now: datetime, new_key: KeyFactory) -> Plan:
    """Remove ``kid`` from the keyring at once.

    If it was the active key, a pending key that has been published for the
    full lead takes over now; otherwise a fresh key is created with its lead
    waived and activates as soon as it is published.
    """
    target = keyring.get(kid)
    if target is None:
        raise UnknownKeyError(f"kid {kid!r} is not in the keyring")
    keys = [k for k in keyring.keys if k.kid != kid]
    changes = [LifecycleChange("revoked", kid, f"revoked while {target.state.value}")]
    if target.state is KeyState.ACTIVE:
        ready = _by_publication(k for k in keys if k.state is KeyState.PENDING and is_ready(k, settings, now))
        if ready:
            successor = ready[0]
            keys = [k.with_changes(state=KeyState.ACTIVE, activated_at=now) if k is successor else k for k in keys]
            changes.append(LifecycleChange("activated", successor.kid, f"replaces revoked {kid}"))
        else:
            fresh = new_key(settings.algorithm, now).with_changes(state=KeyState.PENDING, lead_waived=True)
            keys.append(fresh)
            changes.append(LifecycleChange("created", fresh.kid, f"replaces revoked {kid}: lead waived"))
    return Plan(keyring.replace_keys(keys), tuple(changes))
