"""The revocation list: revoked kids kept outside the keyring, where restoring the keyring cannot undo them.

The keyring keeps tombstones of revoked kids, but restoring the keyring
secret to an older version rolls those back with everything else. The
rotation service therefore also adds every revoked kid to a
:class:`~jwks_rotator.core.ports.RevocationList` *before* it writes the keyring, and on every read
drops any key whose kid is on the list. An adapter backs it with storage
that is not restored along with the keyring secret (its own parameter,
object or table).

The list's stored form is a compact JSON list of kids, oldest first
(:func:`encode_kids`, :func:`decode_kids`): the SSM adapter writes and reads
it with boto3, the sign path reads it through the Parameters and Secrets
extension.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jwks_rotator.core.errors import StoreError

MALFORMED_LIST = "MalformedRevocationList"
"""The ``StoreError`` reason of a stored list that is not a JSON list of kids."""


def encode_kids(kids: Iterable[str]) -> str:
    """The stored value: a compact JSON list."""
    return json.dumps(list(kids), separators=(",", ":"))


def decode_kids(value: Any) -> tuple[str, ...]:
    """The kids a stored value lists, in order; anything but a JSON list of non-empty strings is a :class:`StoreError`."""
    try:
        kids = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        kids = None
    if not isinstance(kids, list) or not all(isinstance(kid, str) and 0 < len(kid) <= 256 for kid in kids):
        raise StoreError(f"the revocation list could not be read ({MALFORMED_LIST})", reason=MALFORMED_LIST)
    return tuple(kids)


class MemoryRevocationList:
    """A revocation list in memory: for tests, simulations and the local stack."""

    def __init__(self, kids: frozenset[str] = frozenset()) -> None:
        self._kids = set(kids)

    def load(self) -> frozenset[str]:
        return frozenset(self._kids)

    def add(self, kid: str) -> None:
        self._kids.add(kid)
