"""The rotation service: read the keyring, apply the lifecycle, write it back, publish.

Each step checks the state first and returns early when there is nothing to do, so a tick may run late, twice,
concurrently or after a half-failed run. Writes are compare-and-swap; a lost race re-reads and re-plans. Before any
write a round refuses stored times too far ahead of its clock and drops every revoked kid (the keyring's tombstones
and the external :class:`~jwks_rotator.core.ports.RevocationList`); a bucket holding documents of a newer keyring is
never overwritten silently. With a :class:`~.kms_custody.KmsCustodian`, KMS is brought in line with the keyring
as stored after every run.

One writer, decided by :func:`.writer.is_writer` (the keyring's writer, recorded by ``promote`` or ``step-down``,
outranks ``primary-region``): any other region's service writes nothing (:class:`NotPrimaryRegionError`; its
unproven tick does nothing and says so), and a writer another region superseded is fenced (:meth:`RotationService.fence`). With replicas in other regions, the writer reads them back after its
writes and measures each region's replication lag (:mod:`.replication_lag`).

Design: docs/design/key-lifecycle.md; KMS custody: docs/design/kms-custody.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jwks_rotator.core.errors import (
    ConfigurationError,
    JwksRotatorError,
    KeyringBehindPublicationError,
    KeyringConflictError,
    NotPrimaryRegionError,
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
from jwks_rotator.core.lifecycle.origins import EveryOrigin
from jwks_rotator.core.lifecycle.promote import StepDownReport, step_down
from jwks_rotator.core.lifecycle.replicas import hold_deletions, record_views_left, replicated_everywhere, rescope
from jwks_rotator.core.lifecycle.replication_lag import LagMeter, Monotonic
from jwks_rotator.core.lifecycle.rules import KeyFactory, LifecycleChange, Plan, reconcile, record_publication, revoke, rotate_now
from jwks_rotator.core.lifecycle.writer import check_not_superseded, is_writer
from jwks_rotator.core.ports import (
    KeyringReplicas,
    KeyringStore,
    Publisher,
    PublishResult,
    ReplicaReading,
    ReplicaSecret,
    ReplicationLedger,
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
    origins_ahead: tuple[str, ...] = ()
    """Of ``missing_origins``: origins holding documents of a newer keyring, left as they are (``OriginAhead``) until
    ``publish`` with ``accept_restore`` overwrites them; never a restore hold (that is the writer's own bucket's)."""
    lagging_replicas: tuple[str, ...] = ()
    """Regions whose keyring replica did not yet hold a newly published key, or the writer's last generation, or could not be read."""
    replication_lag: Mapping[str, float] = field(default_factory=dict)
    """Seconds per region from the writer's keyring write to the first read-back holding it (see ``.replication_lag``);
    for a region still behind (also in ``lagging_replicas``), the time so far; for one unreadable and not seen holding
    the write (also in ``unreadable_replicas``), the time since that write: a lower bound, so the reach alarm sees it."""
    unreadable_replicas: tuple[str, ...] = ()
    """Regions whose replica could not be read back and was not seen holding the writer's last write."""
    not_primary: bool = False
    """A tick in a region that is not the writer's: nothing was written, at most this region's keyring read (``skipped`` too)."""
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
        replication_ledger: ReplicationLedger | None = None,
        monotonic: Monotonic = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        replica_patience: tuple[float, ...] = (),
        writer_marks: WriterMarks | None = None,
        keyring_secret: ReplicaSecret | None = None,
    ) -> None:
        """``region`` is this service's own (the function's ``AWS_REGION``); empty: one region, it writes.

        ``keyring_secret``: whether this region's keyring secret is a replica. A keyring marker naming this region
        makes it the writer only once the secret is standalone (promote made it so): a replica of a stepped-down
        primary's keyring names this region too, and must not make anyone's tick a full round here.

        ``replication_ledger`` keeps the writer's last write between runs, so a replica read back behind it is
        measured on a later tick; ``monotonic`` times a read-back within the run that wrote; after such a run, a
        replica still behind is read again after each pause of ``replica_patience`` (``sleep``), while one is behind.
        """
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
        self._lag = LagMeter(replication_ledger, clock, monotonic, logger=self._log)
        self._sleep = sleep
        self._patience = replica_patience if sleep is not None else ()
        self._writer_marks = writer_marks
        self._keyring_secret = keyring_secret
        self._hands_off = False  # this run found another writer: it touches nothing, KMS included

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def region(self) -> str:
        """The region this writer runs in ("" when not told: one region)."""
        return self._region

    @property
    def writes_here(self) -> bool:
        """Whether the stack's setting names this region the writer: no ``primary-region`` (one region), no region of its
        own given, or it is the primary. Read nothing; the keyring's writer, when recorded, outranks it (:meth:`require_primary`)."""
        primary = self._settings.primary_region
        return not primary or not self._region or self._region == primary

    def require_primary(self) -> None:
        """Raise :class:`NotPrimaryRegionError` unless this region is the writer (:func:`.writer.is_writer`).

        The fence of every write operation (:meth:`tick`, :meth:`rotate_now`, :meth:`revoke`, :meth:`publish`). Where the
        setting names another region, this region's keyring (its replica, or the keyring promote made standalone) is read
        once: a promoted region's keyring names it and it writes. Where the setting names this region, the round checks
        the keyring it reads anyway (a stepped-down primary's names another). ``promote`` does not come through here.
        """
        if self.writes_here:
            return
        self._refuse_unless_writer(self._store.load().keyring)

    def _refuse_unless_writer(self, keyring: Keyring) -> None:
        if not self._region:
            return
        if is_writer(self._region, self._settings.primary_region, keyring.primary_region):
            if self.writes_here or self._keyring_secret is None:
                return
            source = self._keyring_secret.replicated_from()  # the marker names this region; the stack names another
            if source is None:
                return
            self._hands_off = True
            raise NotPrimaryRegionError(
                f"this rotate function runs in {self._region}, whose keyring is still a replica of {source}'s: the keyring names "
                f"{self._region} the writer only after promote made it standalone (run promote {self._region})"
            )
        self._hands_off = True
        if keyring.primary_region:
            raise NotPrimaryRegionError(
                f"this rotate function runs in {self._region}, and the keyring names {keyring.primary_region} as the writer "
                "(promote or step-down moved it): only the writer writes the keyring, the documents and the revocation lists"
            )
        raise NotPrimaryRegionError(
            f"this rotate function runs in {self._region}, and only the primary region {self._settings.primary_region} "
            "writes the keyring, the documents and the revocation lists (promote moves the primary)"
        )

    def _promoted_here(self, keyring: Keyring) -> bool:
        """This region was made the writer by promote and its stack still names another: its keyring is standalone
        (promote stopped its replication and nothing replicates it until the stacks are updated), so no region holds a
        replica of it to wait for."""
        return bool(self._region) and keyring.primary_region == self._region and self._settings.primary_region not in ("", self._region)

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
            self._hands_off = True
            self._log.error("writer superseded: this region writes nothing", extra={"reason": error.code, "region": self._region,
                                                                                  "generation": keyring.generation})
            raise

    def tick(self, *, coalesce: bool = False) -> RunReport:
        """The scheduled step: apply due transitions, publish, record the publication.

        With ``coalesce`` (a tick nobody proved they may ask for: a scheduled event, or any invoker's
        ``{"operation": "tick"}``) a tick that comes within half the schedule of a completed one does nothing
        and says so in one log line: a burst of invocations costs two reads each (the ledger, the keyring), not a run each.
        Outside the writer's region such a tick does nothing but read this region's keyring (logged with reason
        ``not_primary_region``: the schedule of a secondary's stack is off, and an unproven tick is no operator's); a
        stepped-down primary's tick is the same no-op. A proven one is refused.
        """
        try:
            self.require_primary()
            if coalesce and self._ticks is not None:
                now = self._clock()
                last = self._ticks.last_completed()
                if last is not None and timedelta(0) <= now - last < self._settings.schedule / 2:
                    self._log.info("tick skipped: another completed within half the schedule",
                                   extra={"reason": "recent tick", "completed_at": last.isoformat()})
                    # The keyring is read (one secret read, no write, no KMS) so the answer still names the keys.
                    return RunReport(converged=True, skipped=True, keyring=self._store.load().keyring)
            report = self._run(None)
        except NotPrimaryRegionError:
            if not coalesce:
                raise
            self._log.info("tick skipped: this region is not the writer",
                           extra={"reason": NotPrimaryRegionError.code, "region": self._region,
                                  "primary_region": self._settings.primary_region})
            return RunReport(converged=True, skipped=True, not_primary=True)
        if self._ticks is not None:
            self._ticks.record(self._clock())
        return report

    def rotate_now(self) -> RunReport:
        """Emergency rotation: a fresh key active as soon as it is published (lead skipped)."""
        self.require_primary()
        self._log.warning(
            "rotate-now: the new key skips the publish lead; verifiers holding a cached JWKS "
            "reject its tokens until they refetch",
            extra={"reason": "rotate-now"},
        )
        return self._run(lambda keyring, now: rotate_now(keyring, self._settings, now, self._new_key))

    def revoke(self, kid: str) -> RunReport:
        """Remove ``kid`` from the keyring and the JWKS at once, then publish."""
        self.require_primary()
        return self._run(lambda keyring, now: revoke(keyring, kid, self._settings, now, self._new_key))

    def publish(self, *, accept_restore: bool = False) -> RunReport:
        """A tick; with ``accept_restore`` it also overwrites documents published from a newer keyring.

        That happens when the keyring secret was restored to an older version:
        keys only the newer keyring held leave the JWKS, and tokens they signed
        stop verifying. Only an operator can decide that.
        """
        self.require_primary()
        return self._run(None, accept_restore=accept_restore)

    def step_down(self, target: str) -> StepDownReport:
        """Name ``target`` as the writer in this keyring: from then on this region writes nothing (see core.lifecycle.promote)."""
        marks = self._writer_marks.marks() if self._writer_marks is not None else {}
        return step_down(self._store, own_region=self._region, settings_primary=self._settings.primary_region, target=target,
                         regions=self._settings.regions, marks=marks, key_custody=self._settings.key_custody, logger=self._log)

    def _run(self, operation: Callable[[Keyring, datetime], Plan] | None, *, accept_restore: bool = False) -> RunReport:
        report = RunReport()
        self._seen = {}
        self._lag.begin()
        self._hands_off = False
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
        self._measure_replication(report)
        return report

    def _measure_replication(self, report: RunReport) -> None:
        """Read back the replicas still behind the writer's last generation: per region lag (see ``.replication_lag``)."""
        if self._replicas is None or self._promoted_here(report.keyring):
            return
        readings: Mapping[str, ReplicaReading | None] = {}
        if self._lag.pending(tuple(self._replicas.regions)):
            readings = self._replicas.read_back()
            self._lag.observe(readings)
            for pause in self._patience if self._lag.wrote() else ():
                if not self._lag.figures(readings).behind:  # none behind that can be read: waiting measures nothing
                    break
                assert self._sleep is not None
                self._sleep(pause)
                readings = self._replicas.read_back()
                self._lag.observe(readings)
        figures = self._lag.figures(readings)
        self._lag.finish()
        report.replication_lag = figures.merged()
        report.unreadable_replicas = tuple(sorted(figures.unreadable))
        late = {region for region, reading in readings.items() if reading is None} | set(figures.behind)
        if late:
            report.lagging_replicas = tuple(sorted(set(report.lagging_replicas) | late))
            self._log.warning("replicas behind the writer's last keyring write", extra={
                "reason": "replica_lagging", "regions": sorted(late),
                "seconds_so_far": {region: round(seconds, 3) for region, seconds in {**figures.behind, **figures.unreadable}.items()},
                "unreadable": sorted(figures.unreadable)})
        for region, seconds in sorted(figures.caught_up.items()):
            self._log.info("replica caught up with the writer", extra={"region": region, "replication_lag_seconds": round(seconds, 3)})

    def _finish(self, *, failed: bool) -> None:
        """Bring KMS in line with the stored keyring, whatever happened before (the run may have failed after a write).

        A run that failed keeps its own exception: a failure here is then only logged (the next run settles again).
        A superseded writer touches nothing, KMS included.
        """
        if self._hands_off:
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
        # Across regions, a retired key's replica stays enabled where that region's signing view still names it.
        views = self._views.signing_kids_by_region if self._views is not None else None
        self._custodian.settle(lambda: self._store.load().keyring, list(self._seen.values()), views=views)

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
        self._refuse_unless_writer(keyring)  # a stepped-down primary's keyring names another region
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
        asked = rescope(keyring, self._scope)  # a key published before regions or an origin were added: asked again
        if asked.changed:
            version = self._save(asked, version)
            keyring = asked.keyring
            self._record(report, asked)
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
        report.missing_origins, report.origins_ahead = result.missing, result.ahead
        if result.ahead:  # not this writer's bucket: anyone who may write it could have marked it, so no hold
            self._log.error("an origin holds documents of a newer keyring: left as they are, publication not recorded",
                            extra={"reason": "origin_ahead", "origins": list(result.ahead), "generation": keyring.generation})
        if result.missing:  # served by some origins only: no key counts as published, so none activates on it
            self._log.warning("documents not published at every origin: publication not recorded",
                              extra={"reason": "origins_missing", "origins": list(result.missing), "kids": list(documents.kids)})
        else:
            plan = record_publication(keyring, self._replicated(report, keyring, documents.kids), documents.digest, self._clock(),
                                      settings=self._settings, scope=self._scope)
            if plan.changed:
                self._write(plan.keyring, version)
                keyring = plan.keyring
                self._record(report, plan)
                progressed = True
        self._sync_signing_view(keyring, committed=True)
        report.keyring = keyring
        return progressed

    def _replicated(self, report: RunReport, keyring: Keyring, kids: tuple[str, ...]) -> tuple[str, ...]:
        """The published kids that may be recorded as published: with replicas, only those every replica holds
        (and under KMS custody across regions, whose key has a replica in every region).

        Only kids not yet recorded are asked about (a recorded key stays recorded); ``report.lagging_replicas``
        names the regions that hold them up. A promoted writer's keyring has no replica (:meth:`_promoted_here`): the
        other regions keep the keys of their own last view, which stay published until every view is read back without them.
        """
        kms_regions = self._custodian is not None and bool(self._custodian.regions)
        replicas = None if self._promoted_here(keyring) else self._replicas
        if replicas is None and not kms_regions:
            return kids
        recorded = {key.kid for key in keyring.keys if key.published_at is not None}
        new = [kid for kid in kids if kid not in recorded]
        if not new:
            return kids
        everywhere: tuple[str, ...] = tuple(new)
        lagging: set[str] = set()
        if replicas is not None:
            readings = replicas.read_back()
            self._lag.observe(readings)
            check = replicated_everywhere(new, {region: None if reading is None else reading.kids for region, reading in readings.items()})
            everywhere, lagging = check.everywhere, set(check.lagging)
        if self._custodian is not None and kms_regions:  # and, under KMS custody, its key's replica in every region
            everywhere, lacking = self._custodian.replicas_ready(keyring, everywhere)
            lagging |= set(lacking)
        report.lagging_replicas = tuple(sorted(lagging))
        if lagging:
            self._log.warning("keys not yet in every region's replica: their publication is not recorded yet",
                              extra={"reason": "replica_lagging", "regions": sorted(lagging),
                                     "kids": [kid for kid in new if kid not in everywhere]})
        return tuple(kid for kid in kids if kid in recorded or kid in everywhere)

    @property
    def _scope(self) -> tuple[str, ...]:
        """Where a key must be held to count as published: every origin, replica region and KMS region, and this one;
        () in one region (nothing to ask again)."""
        places = set(self._publisher.names) if isinstance(self._publisher, EveryOrigin) else set()
        places |= set(self._replicas.regions) if self._replicas is not None else set()
        places |= set(self._custodian.regions) if self._custodian is not None else set()
        return tuple(sorted(places | {self._region})) if places and self._region else tuple(sorted(places))

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
        self._lag.written(keyring.generation)
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
            result = self._publisher.publish(documents, already_announced=announced, generation=generation)
            if result.ahead and accept_restore:  # another origin's newer documents: overwritten only when accepted
                self._log.warning("overwriting an origin's documents of a newer keyring generation: accepted by the operator",
                                  extra={"reason": "accept_restore", "origins": list(result.ahead)})
                result = self._publisher.publish(documents, already_announced=False, generation=generation, force=True)
            return _Publication(result)
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
