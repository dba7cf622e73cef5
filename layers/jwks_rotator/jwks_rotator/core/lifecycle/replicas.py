"""Which keys every region's replica holds: a key counts as published only once it is readable in every region.

A key activates on its recorded ``published_at`` (and the lead after it), so recording publication only for keys
every keyring replica already holds makes activation wait for every region: a region's signer can never be told
to sign with a key its replica lacks, and its lead is counted from the moment the last region could read it.
A replica that cannot be read holds nothing as far as this rule knows: activation waits, on the safe side.

Design: docs/design/regions.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


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
