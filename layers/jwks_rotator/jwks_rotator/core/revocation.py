"""The revocation list: revoked kids kept outside the keyring, where restoring the keyring cannot undo them.

The keyring keeps tombstones of revoked kids, but restoring the keyring
secret to an older version rolls those back with everything else. The
rotation service therefore also adds every revoked kid to a
:class:`RevocationList` *before* it writes the keyring, and on every read
drops any key whose kid is on the list. An adapter backs it with storage
that is not restored along with the keyring secret (its own parameter,
object or table).
"""

from __future__ import annotations

from typing import Protocol


class RevocationList(Protocol):
    """Kids that must never be published or activated again. Adding is idempotent; nothing is ever removed."""

    def load(self) -> frozenset[str]: ...

    def add(self, kid: str) -> None: ...


class MemoryRevocationList:
    """A revocation list in memory: for tests, simulations and the local stack."""

    def __init__(self, kids: frozenset[str] = frozenset()) -> None:
        self._kids = set(kids)

    def load(self) -> frozenset[str]:
        return frozenset(self._kids)

    def add(self, kid: str) -> None:
        self._kids.add(kid)
