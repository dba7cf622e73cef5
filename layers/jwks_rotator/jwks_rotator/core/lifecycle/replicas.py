"""Which keys every region's replica holds: a key counts as published only once it is readable in every region.

A key activates on its recorded ``published_at`` (and the lead after it), so recording publication only for keys
every keyring replica already holds makes activation wait for every region: a region's signer can never be told
to sign with a key its replica lacks, and its lead is counted from the moment the last region could read it.
A replica that cannot be read holds nothing as far as this rule knows: activation waits, on the safe side.

Deletion is the mirror image: a retired key leaves the keyring no earlier than its tokens' lifetime after the last
region's signing view stopped naming it (``views_left_at``, recorded when the writer first reads every view back
without it), so a region whose view lags keeps signing with the previous key and its tokens still verify.

The revocation list does not replicate (an SSM parameter per region): :class:`EveryRegionRevocations` writes every
region's list it can reach and repairs, on each read, a list that missed a kid while its region was down.

Design: docs/design/regions.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.rules import LifecycleChange, Plan
from jwks_rotator.core.ports import RevocationList


@dataclass(frozen=True)
class ReplicaCheck:
    """Of the kids asked about: those every replica holds, and per lagging region the kids it lacks (None: unreadable)."""

    everywhere: tuple[str, ...]
    lagging: Mapping[str, tuple[str, ...] | None]


def replicated_everywhere(kids: Iterable[str], held: Mapping[str, frozenset[str] | None]) -> ReplicaCheck:
    """Which of ``kids`` every region in ``held`` holds (order kept); with no region at all, every kid."""
    asked = tuple(kids)
    lagging: dict[str, tuple[str, ...] | None] = {}
    for region in sorted(held):
        replica = held[region]
        if replica is None:
            lagging[region] = None
            continue
        lacking = tuple(kid for kid in asked if kid not in replica)
        if lacking:
            lagging[region] = lacking
    everywhere = tuple(
        kid for kid in asked if all(replica is not None and kid in replica for replica in held.values())
    )
    return ReplicaCheck(everywhere, lagging)


def record_views_left(keyring: Keyring, views: Mapping[str, frozenset[str] | None], now: datetime) -> Plan:
    """Note ``views_left_at`` on each retired key no region's view lets sign any more (every view read back)."""
    still_signing: set[str] = set()
    for view in views.values():
        if view is None:
            return Plan(keyring, ())  # a view that cannot be read may still sign with any key
        still_signing |= view
    keys = tuple(
        key.with_changes(views_left_at=max(now, key.latest_event()))
        if key.state is KeyState.RETIRED and key.views_left_at is None and key.kid not in still_signing
        else key
        for key in keyring.keys
    )
    if keys == keyring.keys:
        return Plan(keyring, ())
    return Plan(keyring.replace_keys(keys), (), bookkeeping=True)


def rescope(keyring: Keyring, scope: tuple[str, ...]) -> Plan:
    """Pending keys recorded as published where ``scope`` was not all held (regions or an origin added since) lose
    that record: they are asked again, and their lead counts from when every place in ``scope`` holds them.

    A key recorded before ``published_in`` was kept counts as recorded in none of several places.
    """
    wanted = set(scope)
    changes: list[LifecycleChange] = []
    keys = []
    for key in keyring.keys:
        if key.state is KeyState.PENDING and key.published_at is not None and len(wanted) > 1 and not wanted <= set(key.published_in or ()):
            key = key.with_changes(published_at=None, ready_at=None, published_in=None)
            changes.append(LifecycleChange("unpublished", key.kid, "origins or regions added since its publication: asked again"))
        keys.append(key)
    if not changes:
        return Plan(keyring, ())
    return Plan(keyring.replace_keys(tuple(keys)), tuple(changes), bookkeeping=True)


def hold_deletions(plan: Plan, before: Keyring) -> Plan:
    """``plan`` without the deletion of any retired key whose ``views_left_at`` is not recorded yet."""
    held = {
        change.kid
        for change in plan.changes
        if change.kind == "deleted"
        and any(k.kid == change.kid and k.state is KeyState.RETIRED and k.views_left_at is None for k in before.keys)
    }
    if not held:
        return plan
    planned = {key.kid: key for key in plan.keyring.keys}
    kept = tuple(planned.get(key.kid, key) for key in before.keys if key.kid in planned or key.kid in held)
    created = tuple(key for key in plan.keyring.keys if key.kid not in {k.kid for k in before.keys})
    changes: tuple[LifecycleChange, ...] = tuple(c for c in plan.changes if not (c.kind == "deleted" and c.kid in held))
    return Plan(plan.keyring.replace_keys(kept + created), changes, bookkeeping=plan.bookkeeping)


class EveryRegionRevocations:
    """One revocation list per region, kept as one (implements ``RevocationList``).

    ``add`` writes every region's list it can reach and fails only when it reached none (then the rotation writes
    no keyring: the kid is on no list yet). ``load`` is the union of every list it can read, and gives each readable
    list the kids it lacks, so a region that was down during an ``add`` is repaired by the next run; it fails only
    when no list can be read. Only :class:`StoreError` (a region's store failing) is absorbed; anything else, a full
    list included, is raised as it is.
    """

    def __init__(self, lists: Mapping[str, RevocationList], *, logger: Any = None) -> None:
        if not lists:
            raise ValueError("at least one region's revocation list is required")
        self._lists = dict(lists)
        self._log = logger or logging.getLogger("jwks_rotator")

    def load(self) -> frozenset[str]:
        readable: dict[str, frozenset[str]] = {}
        for region, revocations in self._lists.items():
            try:
                readable[region] = revocations.load()
            except StoreError as exc:
                self._log.warning("revocation list unreadable in a region", extra={"region": region, "reason": exc.reason})
        if not readable:
            raise StoreError("no region's revocation list could be read", reason="every_region_unreadable")
        kids = frozenset().union(*readable.values())
        for region, held in readable.items():
            for kid in sorted(kids - held):
                try:
                    self._lists[region].add(kid)
                except StoreError as exc:
                    self._log.warning("revocation list not repaired in a region", extra={"region": region, "kid": kid, "reason": exc.reason})
                    break
                self._log.warning("revocation list repaired in a region", extra={"region": region, "kid": kid, "reason": "missed_while_down"})
        return kids

    def add(self, kid: str) -> None:
        reached = 0
        for region, revocations in self._lists.items():
            try:
                revocations.add(kid)
            except StoreError as exc:
                self._log.warning("revocation not written in a region yet", extra={"region": region, "kid": kid, "reason": exc.reason})
                continue
            reached += 1
        if reached == 0:
            raise StoreError("the revocation could not be written in any region", reason="every_region_unwritable")
