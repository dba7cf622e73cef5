"""``promote``: a secondary region's keyring replica becomes the keyring of record and its rotate function the writer.

Run by the target region's own rotate function (an operator's proven operation). The checks come first and change
nothing, each refusal a :class:`~jwks_rotator.core.errors.PromoteRefusedError` with its own code (the table of codes
and what each means: docs/regions.md, "Promote"): the right region, a stack with a second origin, no third writer, a
replica at least as new as every readable origin, and an old primary that is unreachable or stepped down.
``check`` stops there and answers what a promote would do. Then the signing view's and, immediately before its write,
the keyring's replicas are made standalone (irreversible, so last), the keyring is written naming this region as the
writer with a generation above every one seen, and the documents are published. Run again, it answers
``already_primary`` (after the fence). ``step-down`` is the old primary's half: it names the target as the writer in
its own keyring, which the fence then refuses to write past.

Design: docs/design/regions.md ("Failures").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jwks_rotator.core.errors import (
    JwksRotatorError,
    KeyringConflictError,
    OldPrimaryActiveError,
    OriginsUnreadableError,
    PromoteInterruptedError,
    PromoteOtherWriterError,
    PromoteRefusedError,
    PromoteUnsupportedError,
    PromoteWrongRegionError,
    ReplicaBehindPrimaryError,
    ReplicaBehindPublicationError,
)
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.lifecycle.writer import check_not_superseded, is_writer
from jwks_rotator.core.ports import KeyringStore, OldPrimaryProbe, PrimaryAnswer, ReplicaSecret, WriterMark, WriterMarks
from jwks_rotator.core.settings import Settings

MAX_ATTEMPTS = 4
"""Compare-and-swap attempts of the keyring write before a conflict is reported."""


@dataclass(frozen=True)
class PromoteReport:
    """What a promote did (or found already done): for the answer and the audit line."""

    region: str
    old_primary: str | None
    old_primary_state: str  # unreachable | stepped_down | already_primary
    generation: int
    already_primary: bool = False
    replica_generation: int | None = None
    origin_generation: int | None = None
    published: bool = False
    publish_error: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)  # the publication's run summary, when it ran
    checked: bool = False  # a check only: nothing was changed, ``generation`` is the one a promote would write
    stopped_replication: tuple[str, ...] = ()  # the secrets made standalone in this run ("signing view", "keyring")


@dataclass(frozen=True)
class StepDownReport:
    """What a step-down did: the writer it named and the generation written (``already``: it had been done)."""

    region: str
    new_primary: str
    generation: int
    already: bool = False


def _newest(marks: Mapping[str, WriterMark | None]) -> int:
    readable = [mark.generation for mark in marks.values() if mark is not None]
    if not readable:
        names = ", ".join(sorted(marks)) or "none configured"
        raise OriginsUnreadableError(f"no origin of the documents could be read ({names}): the replica cannot be checked against them")
    return max(readable)


class Promotion:
    """The promote operation of the rotate function in ``own_region`` (see the module)."""

    def __init__(
        self,
        own_region: str,
        settings: Settings,
        store: KeyringStore,
        keyring_secret: ReplicaSecret,
        origins: WriterMarks,
        old_primary: OldPrimaryProbe,
        publish: Callable[[], Mapping[str, Any]],
        *,
        signing_secret: ReplicaSecret | None = None,
        writers: WriterMarks | None = None,
        clock: Callable[[], datetime],
        logger: Any = None,
    ) -> None:
        self._region = own_region
        self._settings = settings
        self._store = store
        self._keyring_secret = keyring_secret
        self._signing_secret = signing_secret
        self._origins = origins
        self._writers = writers
        self._old_primary = old_primary
        self._publish = publish
        self._clock = clock
        self._log = logger or logging.getLogger("jwks_rotator")
        self.known: dict[str, Any] = {}

    def promote(self, target: str, *, check: bool = False) -> PromoteReport:
        """Check, then make this region's replica the keyring of record and publish (idempotent).

        ``check``: run every check that changes nothing and answer what a promote would do (``checked``); an old
        primary that answers and has not stepped down is then no refusal but the state ``answers`` (step it down).
        What is learnt on the way (old primary, probe answer, generations, replication stopped) is in :attr:`known`.
        """
        self.known = {}
        if not self._region or target != self._region:
            raise PromoteWrongRegionError(
                f"promote {target} must run in {target}'s own rotate function; this one runs in {self._region or 'an unknown region'}"
            )
        if self._settings.key_custody == "kms":
            raise PromoteUnsupportedError("promote does not hand over KMS multi-Region keys yet: key-custody kms cannot be promoted")
        loaded = self._store.load()
        source = self._keyring_secret.replicated_from()
        marker = loaded.keyring.primary_region
        replica = loaded.keyring.generation
        self.known.update(replica_generation=replica, keyring_marker=marker, replicated_from=source)
        if source is None and is_writer(self._region, self._settings.primary_region, marker):
            # The fence first: a region that stepped down, or was superseded, is no writer to answer already_primary for.
            check_not_superseded(self._region, replica, marker, self._marks())
            self._log.info("promote: this region already is the writer; nothing to do", extra={"reason": "already_primary"})
            deployed = self._settings.primary_region
            return PromoteReport(target, deployed if deployed and deployed != target else None, "already_primary",
                                 replica, already_primary=True, replica_generation=replica, checked=check)
        old = source or marker or self._settings.primary_region
        if not old or old == self._region:
            raise PromoteUnsupportedError("this stack names no other primary region and its keyring is no replica: nothing to promote")
        self.known["old_primary"] = old
        if not self._settings.second_origin_bucket:
            raise PromoteUnsupportedError(
                f"this stack in {target} names no second origin (second-origin-bucket): only the region whose stack names the "
                "primary's bucket as its second origin (the origin group's other origin) can be promoted; a promoted writer "
                "must publish every origin, and no other region's bucket is served"
            )
        origins = self._origins.marks()
        self._refuse_other_writers(old, origins)
        newest = _newest(origins)
        self.known["origin_generation"] = newest
        interrupted = source is None and not marker
        if replica < newest:
            if interrupted:
                raise _interrupted(target, old, replica, newest, "the documents")
            raise ReplicaBehindPublicationError(
                f"the keyring replica in {target} is at generation {replica}, behind the documents an origin serves "
                f"(generation {newest}): wait for replication to catch up, or promote another region"
            )
        answer = self._old_primary.probe(old)
        self.known["probe"] = {"reachable": answer.reachable, "reason": answer.reason, "keyring_marker": answer.keyring_marker,
                               "generation": answer.generation}
        if interrupted and answer.generation is not None and replica < answer.generation:
            raise _interrupted(target, old, replica, answer.generation, f"{old}'s keyring")
        state = self._judge(old, answer, replica, check=check)
        floors = [replica + 1, newest + 1, (answer.generation or 0) + 1, int(self._clock().timestamp())]
        if check:
            return PromoteReport(target, old, state, max(floors), replica_generation=replica, origin_generation=newest, checked=True)
        stopped: list[str] = []
        # Irreversible, so last: the view first (the writer must own it before it writes), the keyring immediately before
        # its write. A re-run after a failure here finds a standalone unmarked keyring and completes the promote.
        for name, secret in (("signing view", self._signing_secret), ("keyring", self._keyring_secret)):
            if secret is not None and secret.replicated_from() is not None:
                self._log.warning("promote: StopReplicationToReplica (irreversible)", extra={"reason": "stop_replication", "secret": name,
                                                                                             "region": target, "old_primary": old})
                secret.stop_replication()
                stopped.append(name)
                self.known["stopped_replication"] = list(stopped)
        written = self._write(target, floors)
        self._log.warning("promoted: this region is the writer now", extra={
            "reason": "promote", "old_primary": old, "new_primary": target, "generation": written, "old_primary_state": state})
        published, error, summary = self._publish_after()
        return PromoteReport(target, old, state, written, replica_generation=replica, origin_generation=newest,
                             published=published, publish_error=error, summary=summary, stopped_replication=tuple(stopped))

    def _marks(self) -> Mapping[str, WriterMark | None]:
        """Every other region's keyring secret's mark and every origin's (None: unreadable)."""
        return {**(self._writers.marks() if self._writers is not None else {}), **self._origins.marks()}

    def _refuse_other_writers(self, old: str, origins: Mapping[str, WriterMark | None]) -> None:
        """Refuse when a readable keyring secret (any region's) or origin names a writer other than ``old`` and this region.

        A second promote elsewhere made that region's keyring name it; two writers would never fence each other.
        An unreadable secret is no evidence either way (a lost region).
        """
        marks = {**(self._writers.marks() if self._writers is not None else {}), **origins}
        for where, mark in sorted(marks.items()):
            if mark is not None and mark.region and mark.region not in (old, self._region):
                raise PromoteOtherWriterError(
                    f"{where} names {mark.region} as the writer (generation {mark.generation}), neither the old primary {old} "
                    f"nor {self._region}: another promote ran there; make that region's stack the primary, or step it down first"
                )

    def _judge(self, old: str, answer: PrimaryAnswer, replica: int, *, check: bool = False) -> str:
        """``unreachable`` or ``stepped_down``; a refusal when the old primary answers and still writes, or is ahead.

        ``check``: an old primary that answers and still writes is ``answers`` (what step-down is for), not a refusal.
        """
        if not answer.reachable:
            if not check:
                self._log.warning("old primary unreachable: promoting", extra={"reason": answer.reason or "unreachable", "region": old})
            return "unreachable"
        if answer.keyring_marker != self._region and check:
            return "answers"
        if answer.keyring_marker != self._region:
            answered = f" (its keyring secret answered {answer.reason})" if answer.reason else ""
            raise OldPrimaryActiveError(
                f"the old primary {old} answers{answered} and has not stepped down in favour of {self._region}: run step-down "
                "there first (the CLI's promote does), or wait until it is unreachable"
            )
        if answer.generation is not None and replica < answer.generation:
            raise ReplicaBehindPrimaryError(
                f"the keyring replica in {self._region} is at generation {replica}, behind the old primary's {answer.generation}: "
                "wait for replication to catch up, then promote again"
            )
        return "stepped_down"

    def _write(self, target: str, floors: list[int]) -> int:
        """The standalone keyring written with ``target`` as its writer, above every generation in ``floors``."""
        for _ in range(MAX_ATTEMPTS):
            loaded = self._store.load()
            promoted = loaded.keyring.with_primary(target, generation=max(floors))
            try:
                self._store.save(promoted, loaded.version_id)
            except KeyringConflictError:
                continue
            return promoted.generation
        raise KeyringConflictError(f"the keyring in {target} kept changing during promote; run it again")

    def _publish_after(self) -> tuple[bool, str | None, Mapping[str, Any]]:
        """Publish as the new writer; a failure leaves the promote done (the next tick or ``publish`` repeats it)."""
        try:
            return True, None, self._publish()
        except JwksRotatorError as error:
            self._log.warning("promoted, but the first publication failed: run publish", extra={"reason": error.code})
            return False, error.code, {}


def _interrupted(target: str, old: str, replica: int, newer: int, what: str) -> PromoteInterruptedError:
    """The refusal of a promote that an earlier one left half done and that can no longer complete (its recovery named)."""
    return PromoteInterruptedError(
        f"the keyring in {target} was made standalone by an interrupted promote (generation {replica}) and {what} moved on "
        f"since (generation {newer}): it can no longer catch up by replication. While {old} writes, it stays the writer: "
        f"replicate {old}'s keyring secret to {target} again (delete {target}'s standalone copy, then ReplicateSecretToRegions "
        f"in {old}) and promote again (docs/regions.md, Promote)"
    )


def step_down(
    store: KeyringStore, *, own_region: str, settings_primary: str, target: str, regions: tuple[str, ...],
    marks: Mapping[str, WriterMark | None], key_custody: str = "secrets", logger: Any = None,
) -> StepDownReport:
    """The old primary names ``target`` as the writer in its own keyring; from then on it writes nothing (the fence).

    Allowed only where this region is the writer now, towards another region the stack lists, and never under KMS
    custody (no promote could follow: the stack would be left with no writer). ``target`` = this region undoes a
    step-down while no region wrote past it (the region it named still holds a replica of it). Idempotent.
    """
    log = logger or logging.getLogger("jwks_rotator")
    if not regions:
        raise PromoteUnsupportedError("this stack runs in one region (regions is empty): there is no other writer to hand over to")
    if key_custody == "kms":
        raise PromoteUnsupportedError("key-custody kms cannot be promoted, so this region does not step down: it stays the writer")
    if not own_region or target not in regions:
        raise PromoteWrongRegionError(f"step-down names the region to hand over to: one of the stack's other regions, not {target}")
    for _ in range(MAX_ATTEMPTS):
        loaded = store.load()
        keyring = loaded.keyring
        if target == own_region and settings_primary not in ("", own_region):
            raise PromoteWrongRegionError(f"step-down {target} undoes a step-down only in the stack's primary region {settings_primary}")
        if keyring.primary_region == target or (target == own_region and not keyring.primary_region):
            return StepDownReport(own_region, target, keyring.generation, already=True)
        if target == own_region:
            stepped = _undo(keyring, own_region, marks)
        else:
            if not is_writer(own_region, settings_primary, keyring.primary_region):
                raise PromoteRefusedError(f"{own_region} is not the writer: only the writer steps down", code="not_the_writer")
            check_not_superseded(own_region, keyring.generation, keyring.primary_region, marks)
            stepped = keyring.with_primary(target, generation=keyring.generation + 1)
        try:
            store.save(stepped, loaded.version_id)
        except KeyringConflictError:
            continue
        if target == own_region:
            log.warning("step-down undone: this region is the writer again", extra={"reason": "step-down-undone", "new_primary": target,
                                                                                  "generation": stepped.generation})
        else:
            log.warning("stepped down: this region writes nothing from now on", extra={"reason": "step-down", "new_primary": target,
                                                                                     "generation": stepped.generation})
        return StepDownReport(own_region, target, stepped.generation)
    raise KeyringConflictError("the keyring kept changing during step-down; run it again")


def _undo(keyring: Keyring, own_region: str, marks: Mapping[str, WriterMark | None]) -> Keyring:
    """This region's keyring named back as the writer: only while the region it stepped down for still holds a replica.

    Evidence required: a readable mark of that region at no newer generation (its keyring secret, replicated from
    here), and no readable mark of a newer generation written elsewhere (a promote there wrote above this one).
    """
    named = keyring.primary_region or ""
    check_not_superseded(own_region, keyring.generation, None, marks)
    if not any(mark is not None and mark.region == named and mark.generation <= keyring.generation for mark in marks.values()):
        raise PromoteRefusedError(
            f"{own_region} stepped down in favour of {named}, whose keyring secret could not be read as a replica of this one: "
            f"the step-down is undone only while {named} has not been promoted (run it again once {named} answers)",
            code="step_down_not_undone",
        )
    return keyring.with_primary(own_region, generation=keyring.generation + 1)
