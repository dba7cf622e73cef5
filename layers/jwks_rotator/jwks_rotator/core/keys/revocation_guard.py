"""Revoked kids kept where no one outside the stack reaches, mirrored where the signer reads, repaired every run.

Two places, with different trust:

* the **record** (:class:`~.ports.RevocationRecord`: an object in the stack's bucket,
  ``revocations/revoked-kids.json``): only the rotate role may write it (the bucket policy denies everyone else),
  CloudFront's origin access reads ``.well-known/*`` only, and no restore of a secret or a parameter reaches it. It is
  the authority.
* the **mirror** (:class:`~.ports.RevocationMirror`: the SSM parameter): what the signer read before the record
  existed, and still reads. Any principal with SSM write rights can change it, so it is checked against the record on
  every run and rewritten from it when it was erased, filled with kids the record does not hold ("junk"), or
  malformed; each repair is reported (``on_repair`` with the reason) so it is counted and alarmed.

:class:`GuardedRevocationList` is the rotator's :class:`~.revocation.RevocationList`: ``add`` writes the record first
(a full or junk mirror never blocks a revocation: the mirror keeps the newest kids that fit, :func:`mirror_of`),
``load`` returns the record's kids after repairing the mirror. A record never written adopts the mirror's kids once
(an upgrade from the parameter alone). The signer reads both (:class:`UnionRevocationReader`): a kid on either never
signs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.keys.revocation import MALFORMED_LIST

if TYPE_CHECKING:  # the sign path never loads the ports module
    from jwks_rotator.core.ports import RevocationMirror, RevocationReader, RevocationRecord

MIRROR_MAX_BYTES = 4096
"""A standard-tier SSM String parameter's value limit: what the mirror may hold."""

RECORD_KEY = "revocations/revoked-kids.json"
"""The record's object key in the stack's bucket (outside ``.well-known/``: never served)."""

REPAIR_REASONS = ("erased", "junk", "malformed")
"""What a repair of the mirror reports: the parameter was missing or lacked kids, held kids the record does not, or was unreadable."""


def mirror_of(kids: Iterable[str], max_bytes: int = MIRROR_MAX_BYTES) -> tuple[str, ...]:
    """The newest kids (the record's order is oldest first) whose JSON list fits in ``max_bytes``, oldest first."""
    kept: list[str] = []
    size = 2  # "[]"
    for kid in reversed(tuple(kids)):
        extra = len(json.dumps(kid).encode("utf-8")) + (1 if kept else 0)
        if size + extra > max_bytes:
            break
        kept.append(kid)
        size += extra
    return tuple(reversed(kept))


def encode_record(kids: Iterable[str]) -> bytes:
    """The record object's body."""
    return json.dumps({"revoked": list(kids)}, separators=(",", ":")).encode("utf-8")


def decode_record(body: bytes) -> tuple[str, ...]:
    """The kids a record object lists; anything else is a :class:`StoreError` (the record is the stack's own)."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    kids = document.get("revoked") if isinstance(document, dict) else None
    if not isinstance(kids, list) or not all(isinstance(kid, str) and 0 < len(kid) <= 256 for kid in kids):
        raise StoreError(f"the revocation record could not be read ({MALFORMED_LIST})", reason=MALFORMED_LIST)
    return tuple(kids)


class GuardedRevocationList:
    """The rotator's revocation list: the record is the authority, the mirror is checked and repaired (module doc)."""

    def __init__(
        self,
        record: RevocationRecord,
        mirror: RevocationMirror,
        *,
        on_repair: Callable[[str], None] | None = None,
        mirror_max_bytes: int = MIRROR_MAX_BYTES,
        adopt: bool = True,
    ) -> None:
        """``adopt``: a record never written takes the mirror's kids once (the upgrade from the parameter alone).

        Off for another region's mirror guarded by the primary's record: a mirror only some region's SSM writers
        reach must never become the authority; ``load`` then fails (``record_missing``) until the record exists.
        """
        self._record = record
        self._mirror = mirror
        self._on_repair = on_repair
        self._max = mirror_max_bytes
        self._adopt = adopt

    def load(self) -> frozenset[str]:
        """The record's kids, after making the mirror hold :func:`mirror_of` them."""
        # The mirror first, then the record: a concurrent ``add`` writes the record before the mirror, so a kid a
        # legitimate writer put in the mirror is already in the record read after it (never mistaken for junk).
        problem: str | None = None
        mirrored: tuple[str, ...] | None = None
        try:
            mirrored = self._mirror.read_mirror()
        except StoreError as exc:
            if exc.reason == "ParameterNotFound":
                problem = "erased"
            elif exc.reason == MALFORMED_LIST:
                problem = "malformed"
            else:
                raise
        kids = self._record.load()
        if kids is None and not self._adopt:
            raise StoreError("the revocation record is not written yet", reason="record_missing")
        if kids is None:  # never written: adopt what the mirror holds, once
            kids = mirrored or ()
            self._record.save(kids)
        expected = mirror_of(kids, self._max)
        if mirrored is not None and mirrored != expected:
            problem = "junk" if set(mirrored) - set(kids) else "erased"
        if problem is not None:
            self._mirror.replace(expected)
            if self._on_repair is not None:
                self._on_repair(problem)
        return frozenset(kids)

    def add(self, kid: str) -> None:
        """Put ``kid`` in the record (then the mirror); only a failure to write the record refuses the revocation."""
        kids = self._record.load() or ()
        if kid not in kids:
            kids = (*kids, kid)
            self._record.save(kids)
        try:
            self._mirror.replace(mirror_of(kids, self._max))
        except StoreError:
            if self._on_repair is not None:
                self._on_repair("mirror_unwritable")  # the record holds it; the next run writes the mirror again


class InheritingRevocationRecord:
    """The writer's record, holding every kid any earlier writer's record holds (a :class:`~.ports.RevocationRecord`).

    A promoted writer's own record lacks what the old primary revoked while they were apart (a partition: both wrote).
    ``load`` reads each record in ``inherited`` (the old primary's, in its bucket; never written here) and saves the
    kids the own record lacks into it, so a kid any writer revoked stays revoked for ever and the other regions' SSM
    lists, guarded by this record, keep it (an SSM list itself still revokes nothing). An inherited record that cannot
    be read is skipped with a warning (its region may be lost; the next run reads it again).
    """

    def __init__(self, own: RevocationRecord, inherited: Mapping[str, RevocationRecord], *, logger: Any = None) -> None:
        self._own = own
        self._inherited = dict(inherited)
        self._log = logger or logging.getLogger("jwks_rotator")

    def load(self) -> tuple[str, ...] | None:
        kids = self._own.load()
        held = set(kids or ())
        extra: list[str] = []
        for region, record in sorted(self._inherited.items()):
            try:
                theirs = record.load() or ()
            except StoreError as exc:
                self._log.warning("another writer's revocation record unreadable; read again next run",
                                  extra={"region": region, "reason": exc.reason})
                continue
            for kid in theirs:
                if kid not in held:
                    held.add(kid)
                    extra.append(kid)
                    self._log.warning("revocation inherited from another writer's record", extra={"region": region, "kid": kid,
                                                                                                 "reason": "inherited_revocation"})
        if not extra:
            return kids
        merged = (*(kids or ()), *extra)
        self._own.save(merged)
        return merged

    def save(self, kids: tuple[str, ...]) -> None:
        self._own.save(kids)


class RecordRevocationReader:
    """The signer's read of the record (a :class:`~.ports.RevocationReader`); a record never written reads as empty."""

    def __init__(self, record: RevocationRecord) -> None:
        self._record = record

    def read(self) -> frozenset[str]:
        return frozenset(self._record.load() or ())


class UnionRevocationReader:
    """Every kid any of ``readers`` lists; any unreadable one fails the read (the signer fails closed)."""

    def __init__(self, *readers: RevocationReader) -> None:
        self._readers = readers

    def read(self) -> frozenset[str]:
        kids: frozenset[str] = frozenset()
        for reader in self._readers:
            kids |= reader.read()
        return kids
