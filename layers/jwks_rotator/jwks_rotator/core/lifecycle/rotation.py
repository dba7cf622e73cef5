"""The rotation service: read the keyring, apply the lifecycle, write it back, publish.

Each step checks the state first and returns early when there is nothing to do, so a tick may run late, twice,
concurrently or after a half-failed run. Writes are compare-and-swap; a lost race re-reads and re-plans. Before any
write a round refuses stored times too far ahead of its clock and drops every revoked kid (the keyring's tombstones
and the external :class:`~jwks_rotator.core.ports.RevocationList`); a bucket holding documents of a newer keyring is
never overwritten silently. With a :class:`~.kms_custody.KmsCustodian`, KMS is brought in line with the keyring
as stored after every run.

Design: docs/design/key-lifecycle.md; KMS custody: docs/design/kms-custody.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jwks_rotator.core.errors import (
    ConfigurationError,
    JwksRotatorError,
    KeyringBehindPublicationError,
    KeyringConflictError,
    PublicationSupersededError,
    UnsafeDocumentError,
    WriterSupersededError,
)
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord
from jwks_rotator.core.lifecycle.bounds import check_clock
from jwks_rotator.core.lifecycle.documents import PublicDocuments, build_documents
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.kms_custody import KmsCustodian, require_kms_settings
from jwks_rotator.core.lifecycle.promote import StepDownReport, step_down
from jwks_rotator.core.lifecycle.replicas import hold_deletions, record_views_left, replicated_everywhere
from jwks_rotator.core.lifecycle.rules import KeyFactory, LifecycleChange, Plan, reconcile, record_publication, revoke, rotate_now
from jwks_rotator.core.lifecycle.writer import check_not_superseded
from jwks_rotator.core.ports import (
    KeyringReplicas,
    KeyringStore,
    Publisher,
    PublishResult,
    RevocationList,
    SigningViewReplicas,
    TickLedger,
    WriterMarks,
)
from jwks_rotator.core.settings import Settings

Clock = Callable[[], datetime]
MAX_ROUNDS = 8
_BEHIND = (
    "the published documents come from a newer keyring than the store holds (was the keyring secret restored?); "
    "overwriting them drops keys whose tokens may still be live. If that is intended, publish with accept_restore"
)


@dataclass(frozen=True)
class _Publication:
    result: PublishResult
    forced: bool = False  # newer documents were overwritten (an accepted restore)


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)



@dataclass
class RunReport:
    """What one run of the service did, for logs, metrics and the CLI."""

    changes: list[LifecycleChange] = field(default_factory=list)
    publications: list[PublishResult] = field(default_factory=list)
    conflicts: int = 0
    converged: bool = False
    skipped: bool = False
    """A coalesced tick: another completed within half the schedule, so this one did nothing."""
    missing_origins: tuple[str, ...] = ()
    """Origins the last publication did not reach: nothing was recorded as published (see ``core.lifecycle.origins``)."""
    lagging_replicas: tuple[str, ...] = ()
    """Regions whose keyring replica did not yet hold a newly published key (or could not be read)."""
    keyring: Keyring = field(default_factory=Keyring)

    @property
    def activations(self) -> int:
        return sum(1 for c in self.changes if c.kind == "activated")


def default_key_factory(settings: Settings) -> KeyFactory:
    """Generate real keys of the configured algorithm and RSA size."""

    def make(alg: str, now: datetime) -> KeyRecord:
        return generate_key(alg, now, rsa_key_size=settings.rsa_key_size)

    return make


class RotationService:
    """Runs the lifecycle against a keyring store and a publisher."""

    def __init__(
        self,
        store: KeyringStore,
        publisher: Publisher,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        key_factory: KeyFactory | None = None,
        logger: Any = None,
        revocations: RevocationList | None = None,
        signing_store: KeyringStore | None = None,
        custodian: KmsCustodian | None = None,
        ticks: TickLedger | None = None,
        replicas: KeyringReplicas | None = None,
        signing_views: SigningViewReplicas | None = None,
        region: str = "",
        writer_marks: WriterMarks | None = None,
    ) -> None:
        settings.require("issuer")
        require_kms_settings(settings)
        if settings.key_custody == "kms" and custodian is None:
            raise ConfigurationError("key-custody kms needs a KMS key vault (the wiring builds one)")
        self._store = store
        self._publisher = publisher
        self._settings = settings
        self._clock = clock
        self._custodian = custodian
        self._seen: dict[str, KeyRecord] = {}
        in_secret = key_factory or default_key_factory(settings)

        def new_key(alg: str, now: datetime) -> KeyRecord:
            if custodian is not None and settings.key_custody == "kms":
                return custodian.new_key(alg, now)
            return in_secret(alg, now)

        self._new_key: KeyFactory = new_key
        self._log = logger or logging.getLogger("jwks_rotator")
        self._revocations = revocations
        self._signing = signing_store
        self._ticks = ticks
        self._replicas = replicas
        self._views = signing_views
        self._region = region
        self._writer_marks = writer_marks
        self._superseded = False

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def region(self) -> str:
        """The region this writer runs in ("" when not told: one region)."""
        return self._region

    def fence(self, keyring: Keyring) -> None:
        """Raise :class:`WriterSupersededError` (and log it for the alarm) when another region took over as the writer.

        Read-only: the keyring's own marker, then the marks of the other regions' keyring secrets and of the origins.
        """
        if self._writer_marks is None and not keyring.primary_region:
            return
        marks = self._writer_marks.marks() if self._writer_marks is not None else {}
        try:
            check_not_superseded(self._region, keyring.generation, keyring.primary_region, marks)
        except WriterSupersededError as error:
            self._superseded = True
            self._log.error("writer superseded: this region writes nothing", extra={"reason": error.code, "region": self._region,
                                                                                  "generation": keyring.generation})
            raise

    def tick(self, *, coalesce: bool = False) -> RunReport:
        """The scheduled step: apply due transitions, publish, record the publication.

        With ``coalesce`` (a tick nobody proved they may ask for: a scheduled event, or any invoker's
        ``{"operation": "tick"}``) a tick that comes within half the schedule of a completed one does nothing
        and says so in one log line: a burst of invocations costs two reads each (the ledger, the keyring), not a run each.
        """
        if coalesce and self._ticks is not None:
            now = self._clock()
            last = self._ticks.last_completed()
            if last is not None and timedelta(0) <= now - last < self._settings.schedule / 2:
                self._log.info("tick skipped: another completed within half the schedule",
                               extra={"reason": "recent tick", "completed_at": last.isoformat()})
                # The keyring is read (one secret read, no write, no KMS) so the answer still names the keys.
                return RunReport(converged=True, skipped=True, keyring=self._store.load().keyring)
        report = self._run(None)
        if self._ticks is not None:
            self._ticks.record(self._clock())
        return report

    def rotate_now(self) -> RunReport:
        """Emergency rotation: a fresh key active as soon as it is published (lead skipped)."""
        self._log.warning(
            "rotate-now: the new key skips the publish lead; verifiers holding a cached JWKS "
            "reject its tokens until they refetch",
            extra={"reason": "rotate-now"},
        )
        return self._run(lambda keyring, now: rotate_now(keyring, self._settings, now, self._new_key))

    def revoke(self, kid: str) -> RunReport:
        """Remove ``kid`` from the keyring and the JWKS at once, then publish."""
        return self._run(lambda keyring, now: revoke(keyring, kid, self._settings, now, self._new_key))

    def publish(self, *, accept_restore: bool = False) -> RunReport:
        """A tick; with ``accept_restore`` it also overwrites documents published from a newer keyring.

        That happens when the keyring secret was restored to an older version:
        keys only the newer keyring held leave the JWKS, and tokens they signed
        stop verifying. Only an operator can decide that.
        """
        return self._run(None, accept_restore=accept_restore)

    def step_down(self, target: str) -> StepDownReport:
        """Name ``target`` as the writer in this keyring: from then on this region writes nothing (see core.lifecycle.promote)."""
        marks = self._writer_marks.marks() if self._writer_marks is not None else {}
        return step_down(self._store, own_region=self._region, settings_primary=self._settings.primary_region, target=target,
                         regions=self._settings.regions, marks=marks, logger=self._log)

    def _run(self, operation: Callable[[Keyring, datetime], Plan] | None, *, accept_restore: bool = False) -> RunReport:
        report = RunReport()
        self._seen = {}
        self._superseded = False
        if self._custodian is not None:
            self._custodian.touched = False
        pending: list[Callable[[Keyring, datetime], Plan]] = [operation] if operation is not None else []
        failed = True
        try:
            for _ in range(MAX_ROUNDS):
                try:
                    progressed = self._round(report, pending, accept_restore)
                except KeyringConflictError:
                    report.conflicts += 1
                    self._log.info("keyring changed under us; reading it again", extra={"reason": "conflict"})
                    continue
                if not progressed:
                    report.converged = True
                    break
            failed = False
        finally:
            self._finish(failed=failed)
        return report

    def _finish(self, *, failed: bool) -> None:
        """Bring KMS in line with the stored keyring, whatever happened before (the run may have failed after a write).

        A run that failed keeps its own exception: a failure here is then only logged (the next run settles again).
        A superseded writer touches nothing, KMS included.
        """
        if self._superseded:
            return
        try:
            self._settle()
            self._sweep()
        except JwksRotatorError as error:
            if not failed:
                raise
            self._log.warning("KMS not brought in line after a failed run; the next run does it",
                              extra={"reason": error.code})

    def _settle(self) -> None:
        """KMS in line with the stored keyring: only its active key usable; keys that left it in this run disabled and deleted."""
        if self._custodian is None or (self._settings.key_custody != "kms" and not self._seen):
            return
        # Every record this run saw: those the stored keyring no longer holds left it (deleted or revoked).
        self._custodian.settle(lambda: self._store.load().keyring, list(self._seen.values()))

    def _sweep(self) -> None:
        """After a run that created or removed a KMS key: disable and (after the grace) delete the stack's unrecorded keys."""
        custodian = self._custodian
        if custodian is None or not custodian.touched:
            return
        keyring = self._store.load().keyring  # read just before: a concurrent rotator may have recorded a key
        if keyring.restore_hold:
            return  # a restored keyring lacks newer keys: they are not orphans until an operator accepts it
        custodian.sweep(keyring, self._clock())

    def _round(self, report: RunReport, pending: list[Callable[[Keyring, datetime], Plan]], accept_restore: bool) -> bool:
        """One read-plan-write-publish pass. ``pending`` holds the operation until its write lands:
        a conflict later in the round must not apply it twice (a second revoke would find no kid)."""
        loaded = self._store.load()
        keyring, version = loaded.keyring, loaded.version_id
        self.fence(keyring)  # before any write: a superseded writer writes nothing
        self._seen.update((k.kms_key_arn, k) for k in keyring.keys if k.kms_key_arn is not None)
        check_clock(keyring, self._settings, self._clock())  # before any write
        progressed = False
        listed = self._revocations.load() if self._revocations is not None else frozenset()
        if self._revocations is not None:
            for kid in sorted(keyring.revoked_kids() - listed):  # a tombstone the list lost: the list gets it back
                self._log.warning("revoked kid missing from the revocation list; adding it", extra={"kid": kid, "reason": "tombstone"})
                self._revocations.add(kid)
        revoked = keyring.revoked_kids() | listed
        drops: list[Plan] = []
        for kid in sorted(revoked & {k.kid for k in keyring.keys}):
            self._log.warning("dropping a revoked key found in the keyring",
                              extra={"kid": kid, "reason": "kid is on the revocation list (was the keyring restored?)"})
            drops.append(revoke(drops[-1].keyring if drops else keyring, kid, self._settings, self._clock(), self._new_key))
        # Before any write (which would raise the generation past the bucket's): is the bucket ahead of this keyring?
        first = drops[-1].keyring if drops else keyring
        # An accepted restore moves the generation to the clock's seconds: above any a keyring lineage reaches by counting
        # writes, so a later restore to a version from before this one is still behind the bucket.
        accepted_generation = max(first.generation + 1, int(self._clock().timestamp())) if accept_restore else None
        forced = False
        try:
            if keyring.restore_hold and not accept_restore:
                raise KeyringBehindPublicationError(_BEHIND)
            check = self._publish(build_documents(self._settings, first), first, version, accept_restore,
                                  generation=keyring.generation, accepted_generation=accepted_generation)
            forced = check.forced
        except KeyringBehindPublicationError:
            self.fence(keyring)  # newer documents may be a writer promoted since this round began: then no hold either
            # Revoked keys leave the store even while publication waits; the hold keeps later rounds refusing.
            held = Plan(first.with_restore_hold(True), tuple(c for d in drops for c in d.changes), bookkeeping=True)
            self._sync_signing_view(held.keyring, committed=True)  # signs nothing: always written, first
            if held.keyring is not keyring:
                self._save(held, version)
                self._record(report, held)
            raise
        if check.result.uploaded:
            report.publications.append(check.result)
        for plan in drops:
            version = self._save(plan, version)
            keyring = plan.keyring
            self._record(report, plan)
            progressed = True
        if keyring.restore_hold or forced:  # accepted (or the bucket is no longer ahead)
            if self._custodian is not None:
                self._custodian.touched = True  # keys only the discarded keyring recorded are now the sweep's
            plan = Plan(keyring.with_restore_hold(False, generation=accepted_generation or 0), (), bookkeeping=True)
            version = self._save(plan, version)
            keyring = plan.keyring
            self._log.warning("restored keyring accepted: publication resumes", extra={"reason": "accept_restore"})
        for operation in list(pending):
            plan = operation(keyring, self._clock())
            if plan.changed:
                version = self._save(plan, version)
                keyring = plan.keyring
                self._record(report, plan)
                progressed = True
            pending.remove(operation)
        if self._views is not None:  # several regions: note which retired keys no region's view signs with any more
            left = record_views_left(keyring, self._views.signing_kids_by_region(), self._clock())
            if left.changed:
                version = self._save(left, version)
                keyring = left.keyring
        plan = reconcile(keyring, self._settings, self._clock(), self._new_key)
        if self._views is not None:
            plan = hold_deletions(plan, keyring)
        if plan.changed:
            version = self._save(plan, version)
            keyring = plan.keyring
            self._record(report, plan)
            progressed = True
        documents = build_documents(self._settings, keyring)
        banned = sorted(set(documents.kids) & (revoked | keyring.revoked_kids()))
        if banned:  # the drops above make this unreachable; kept so that no path can publish a revoked kid
            raise UnsafeDocumentError(f"JWKS refused: revoked kid(s) {', '.join(banned)}")
        result = self._publish(documents, keyring, version, accept_restore).result
        if result.uploaded or result.invalidation_id:
            report.publications.append(result)
            self._log.info(
                "published documents",
                extra={"paths": list(result.uploaded), "invalidation_id": result.invalidation_id, "kids": list(documents.kids)},
            )
            progressed = True
        report.missing_origins = result.missing
        if result.missing:  # served by some origins only: no key counts as published, so none activates on it
            self._log.warning("documents not published at every origin: publication not recorded",
                              extra={"reason": "origins_missing", "origins": list(result.missing), "kids": list(documents.kids)})
        else:
            plan = record_publication(keyring, self._replicated(report, keyring, documents.kids), documents.digest, self._clock(),
                                      settings=self._settings)
            if plan.changed:
                self._write(plan.keyring, version)
                keyring = plan.keyring
                self._record(report, plan)
                progressed = True
        self._sync_signing_view(keyring, committed=True)
        report.keyring = keyring
        return progressed

    def _replicated(self, report: RunReport, keyring: Keyring, kids: tuple[str, ...]) -> tuple[str, ...]:
        """The published kids that may be recorded as published: with replicas, only those every replica holds.

        Only kids not yet recorded are asked about (a recorded key stays recorded); ``report.lagging_replicas``
        names the regions that hold them up.
        """
        if self._replicas is None:
            return kids
        recorded = {key.kid for key in keyring.keys if key.published_at is not None}
        new = [kid for kid in kids if kid not in recorded]
        if not new:
            return kids
        check = replicated_everywhere(new, self._replicas.kids_by_region())
        report.lagging_replicas = tuple(check.lagging)
        if check.lagging:
            self._log.warning("keys not yet in every region's replica: their publication is not recorded yet",
                              extra={"reason": "replica_lagging", "regions": list(check.lagging),
                                     "kids": [kid for kid in new if kid not in check.everywhere]})
        return tuple(kid for kid in kids if kid in recorded or kid in check.everywhere)

    def _save(self, plan: Plan, version: str) -> str:
        """Write the planned keyring; any kid it revokes goes on the revocation list first."""
        if self._revocations is not None:
            for change in plan.changes:
                if change.kind == "revoked":
                    self._revocations.add(change.kid)
        return self._write(plan.keyring, version)

    def _write(self, keyring: Keyring, version: str) -> str:
        """Compare-and-swap ``keyring`` over ``version``, its signing view written first.

        Written first, a crash between the two writes leaves the signer with the newer view: a key the
        planned keyring retires or revokes has already stopped signing (its retention bound holds), and a
        key it activates is published and past its lead (no plan activates any other). If the keyring
        write then loses its race, the next round re-reads the winner's keyring and rewrites the view.
        """
        self._sync_signing_view(keyring, committed=False)
        written = self._store.save(keyring, version)
        self._note_written(keyring)
        return written

    def _note_written(self, keyring: Keyring) -> None:
        if self._custodian is not None:
            self._custodian.recorded(keyring)
            self._seen.update((k.kms_key_arn, k) for k in keyring.keys if k.kms_key_arn is not None)

    def _sync_signing_view(self, keyring: Keyring, *, committed: bool) -> None:
        """Make the signing secret hold ``keyring``'s signing view, when that is safe (idempotent).

        A view that signs nothing is always written. Otherwise the view written must be of a higher
        generation than the stored one before the keyring write (``committed`` false: a racing rotator may
        have written its own plan's view, and a lost plan must not replace it), and of at least the same
        generation after it (this keyring is the store's: it replaces a view a crashed or losing rotator
        wrote ahead of it, and an older view restored into the signing secret). A conflict on the signing
        secret raises :class:`KeyringConflictError`: the round re-reads and re-plans.
        """
        if self._signing is None:
            return
        view = keyring.signing_view()
        stored = self._signing.load()
        if stored.keyring.same_signing_view(view):
            return
        newer = view.generation >= stored.keyring.generation if committed else view.generation > stored.keyring.generation
        if not (newer or view.signs_nothing):
            return
        self._signing.save(view, stored.version_id)
        self._log.info("signing view written", extra={"kid": view.active.kid if view.active else None,
                                                      "reason": "restore hold" if view.restore_hold else "keyring changed"})

    def _publish(
        self, documents: PublicDocuments, keyring: Keyring, version: str, accept_restore: bool, *,
        generation: int | None = None, accepted_generation: int | None = None,
    ) -> _Publication:
        """Publish; ``generation`` (default the keyring's) is compared with the bucket's and written there,
        except when an accepted restore overwrites newer documents: then ``accepted_generation`` is written."""
        announced = keyring.published_digest == documents.digest
        generation = keyring.generation if generation is None else generation
        try:
            return _Publication(self._publisher.publish(documents, already_announced=announced, generation=generation))
        except PublicationSupersededError:
            if self._store.load().version_id != version:
                raise  # a newer keyring exists: re-read it and publish that
            if not accept_restore:
                raise KeyringBehindPublicationError(_BEHIND) from None
            self._log.warning("overwriting documents of a newer keyring generation: restore accepted by the operator",
                              extra={"reason": "accept_restore"})
            written = accepted_generation if accepted_generation is not None else generation
            return _Publication(self._publisher.publish(documents, already_announced=False, generation=written, force=True), forced=True)

    def _record(self, report: RunReport, plan: Plan) -> None:
        for change in plan.changes:
            report.changes.append(change)
            self._log.info(f"key {change.kind}", extra={"kid": change.kid, "change": change.kind, "reason": change.reason})
