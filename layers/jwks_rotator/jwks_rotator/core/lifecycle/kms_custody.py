"""KMS custody on the rotator's side: making keys, the hand-over at activation, deletion and the orphan sweep.

With ``key-custody kms`` each lifecycle key is one non-exportable asymmetric KMS key; the keyring records its public
JWK, ARN and lifecycle timestamps, and the JWKS is built from the keyring as for any key. Records keep the custody
they were made in, so switching the setting changes new keys only.

* A key is created tagged for the stack (found even if the keyring write fails), with a policy that does not name
  the sign role, then disabled and tagged with its kid.
* After every run (in a ``finally``) KMS is brought in line with the keyring *as stored*: every other key of the
  stack disabled first, then, :data:`PROPAGATION` later, the active key gains the sign role and is enabled; the
  store is re-read around the enable, so a stale rotator never enables a key the store no longer makes active.
* A key whose record leaves the keyring is disabled and scheduled for deletion; the orphan sweep deletes unrecorded
  keys of the stack older than :data:`ORPHAN_GRACE` (on KMS's clock).

Across regions (``regions`` naming others than the writer's): each key is a multi-Region primary key, replicated to
every other region (same key material, so the same kid), with a policy per region; the key counts as published only
once its replica exists in every region; enable, disable and deletion are applied in every region (DisableKey is
regional: a revoked key is disabled everywhere). Another region that cannot be reached is logged and retried by the
next run, never a failed run.

Why this order, the two-fence argument, the no-two-signers window and the orphan model (SPIRE's aws_kms
KeyManager): Design: docs/design/kms-custody.md; across regions: docs/design/regions.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jwks_rotator.core.errors import ConfigurationError, KeyVaultError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.kms import kms_algorithm, kms_key_spec, public_jwk_from_der
from jwks_rotator.core.keys.records import KeyRecord, KeyState, thumbprint
from jwks_rotator.core.ports import KeyVault, VaultKey
from jwks_rotator.core.settings import Settings

STACK_TAG = "jwks-rotator:stack"
"""Tag naming the stack a key belongs to: set at CreateKey, the IAM policies of both roles require it."""
KID_TAG = "jwks-rotator:kid"
"""Tag naming the key's kid, set once its public key is known."""
PROPAGATION = 5.0
"""Seconds assumed for EnableKey/DisableKey to reach every KMS host (see the module doc): ``kms-handover-wait``'s default."""
ORPHAN_GRACE = timedelta(minutes=15)
"""Age before an unrecorded tagged key is scheduled for deletion: longer than a rotation run (60 s timeout)."""
USABLE_STATES = frozenset({"Enabled"})
SIGNING_SPECS = frozenset({"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_NIST_EDWARDS25519"})
"""What DescribeKey must say of a key this stack made (with usage SIGN_VERIFY, origin AWS_KMS, a customer-managed key)."""
MULTI_REGION_PREFIX = "mrk-"
"""How a multi-Region key's id begins (its replicas share it)."""
PENDING_DELETION = frozenset({"PendingDeletion", "PendingReplicaDeletion"})
"""Deletion scheduled (a multi-Region primary waits in PendingReplicaDeletion for its replicas' deletion)."""
REPLICA_READY_STATES = frozenset({"Enabled", "Disabled"})
"""A replica in one of these states exists and can be enabled at the hand-over (not Creating, pending deletion, ...)."""
SETTLE_ATTEMPTS = 3
"""Rounds of a settle when the stored keyring changes under it (a concurrent hand-over); the next run finishes the rest."""

Sleep = Callable[[float], None]


def ownership_sid(stack_tag: str) -> str:
    """The Sid of the statement that marks a key policy as written by this stack's rotator (alphanumeric, per stack)."""
    return "JwksRotatorStack" + hashlib.sha256(stack_tag.encode("utf-8")).hexdigest()[:24]


def key_policy(settings: Settings, alg: str | None, *, signer: bool, region: str = "") -> str:
    """A key's policy: the account administers it (no use), the rotate role manages it and, with ``signer``, the sign role signs.

    The account statement lets the account's administrators describe,
    disable, tag and schedule the deletion of the key, but neither use it nor
    change its policy, enable it or grant it: only the rotate role may
    ``PutKeyPolicy`` (KMS's lockout check asks that the principal creating the
    key may: the rotate role creates it), and a Deny refuses ``CreateGrant``
    to everyone. That Deny's Sid (:func:`ownership_sid`) marks the policy as
    this stack's: the rotator changes a key only when it proves the key is
    its own (:meth:`KmsCustodian.owns`). The sign role may Sign only with the key's algorithm and
    MessageType RAW, and read the public key; the rotate role may manage the
    key and read its public key, never sign. A pending key is created with
    ``signer=False``: the sign role cannot use it from its first moment, and
    gets the signing statements only at activation. ``alg`` (the key's) is
    needed only with ``signer``: a policy without the sign role names no
    algorithm.

    ``region``: a replica's region other than ``primary-region``. Its signing statements name the other regions' sign
    roles (``kms-replica-sign-role-arns``: each role's IAM policy reaches its own region's keys only). Without them
    the writer does not know that region's sign role (its stack made it), so they name the account, narrowed to roles
    named for the stack (``role/<stack>-*``, as CloudFormation names a stack's roles): a principal signs only when its
    own IAM policy allows it too, which the stack's sign role's does for keys carrying the stack tag (and only those).
    """
    settings.require("kms_sign_role_arn", "kms_rotate_role_arn")
    replicas_to = [other for other in settings.regions if other != settings.primary_region]  # where the primary key is replicated
    replica = bool(region) and bool(settings.primary_region) and region != settings.primary_region
    account = settings.kms_rotate_role_arn.split(":")[4]
    partition = settings.kms_rotate_role_arn.split(":")[1]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdministersTheKey",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
            "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:Disable*", "kms:TagResource", "kms:UntagResource",
                       "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
            "Resource": "*",
        },
        {
            # No grants, by anyone: a grant is the other way (besides the policy) to give a principal kms:Sign.
            # Its Sid marks the policy as this stack's (a tag alone never does): ownership_sid().
            "Sid": ownership_sid(settings.kms_stack_tag),
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "kms:CreateGrant",
            "Resource": "*",
        },
        {
            "Sid": "RotatorManagesTheKey",
            "Effect": "Allow",
            "Principal": {"AWS": settings.kms_rotate_role_arn},
            "Action": ["kms:DescribeKey", "kms:GetPublicKey", "kms:EnableKey", "kms:DisableKey", "kms:TagResource",
                       "kms:ListResourceTags", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:GetKeyPolicy"],
            "Resource": "*",
        },
    ]
    if replicas_to and not replica:
        # A key policy naming the role allows by itself (same account): the regions are narrowed here, not only in IAM.
        statements.append({
            "Sid": "RotatorReplicatesToTheRegions",
            "Effect": "Allow",
            "Principal": {"AWS": settings.kms_rotate_role_arn},
            "Action": "kms:ReplicateKey",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ReplicaRegion": list(replicas_to)}},
        })
    if signer:
        if alg is None:
            raise ConfigurationError("a key policy naming the sign role needs the key's algorithm")
        algorithm = kms_algorithm(alg).signing_algorithm
        principal: str | list[str] = settings.kms_sign_role_arn
        narrowed: dict[str, Any] = {}
        if replica and settings.kms_replica_sign_role_arns:
            roles = list(settings.kms_replica_sign_role_arns)
            principal = roles[0] if len(roles) == 1 else roles
        elif replica:
            principal = f"arn:{partition}:iam::{account}:root"
            narrowed = {"ArnLike": {"aws:PrincipalArn": f"arn:{partition}:iam::{account}:role/{settings.kms_stack_tag}-*"}}
        statements += [
        {
            "Sid": "SignerSignsWithTheStackAlgorithm",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "kms:Sign",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:SigningAlgorithm": algorithm, "kms:MessageType": "RAW"}, **narrowed},
        },
        {
            "Sid": "SignerReadsThePublicKey",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "kms:GetPublicKey",
            "Resource": "*",
            **({"Condition": narrowed} if narrowed else {}),
        },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


@dataclass
class KmsCustodian:
    """Makes KMS keys for the rotation service and keeps KMS in line with the keyring (see the module doc)."""

    vault: KeyVault
    settings: Settings
    sleep: Sleep
    logger: Any = None
    propagation: float | None = None  # seconds; None: the settings' kms-handover-wait
    grace: timedelta = ORPHAN_GRACE
    on_foreign: Callable[[str], None] | None = None  # told the ARN of a key carrying the stack's tag that it did not make
    regions: Mapping[str, KeyVault] = field(default_factory=dict)  # every other region's vault: keys are replicated there
    _unrecorded: dict[str, KeyRecord] = field(default_factory=dict)
    touched: bool = False  # a key was created, removed or revoked in this service's life: sweep after the run

    def __post_init__(self) -> None:
        self._log = self.logger or logging.getLogger("jwks_rotator")

    # --- making keys ------------------------------------------------------
    def new_key(self, alg: str, now: datetime) -> KeyRecord:
        """A pending KMS key for ``alg``, disabled, tagged with the stack and its kid, recorded nowhere yet."""
        waiting = self._unrecorded.get(alg)
        if waiting is not None:
            return waiting
        self.settings.require("kms_stack_tag")
        policy = key_policy(self.settings, alg, signer=False)
        arn = self.vault.create_key(
            key_spec=kms_key_spec(alg, self.settings.rsa_key_size),
            tags={STACK_TAG: self.settings.kms_stack_tag},
            policy=policy,
            description=f"jwks-rotator ({self.settings.kms_stack_tag}): {alg} signing key",
            **({"multi_region": True} if self.regions else {}),
        )
        self.touched = True
        jwk = public_jwk_from_der(self.vault.public_key_der(arn), alg)  # before DisableKey: GetPublicKey refuses disabled keys
        self.vault.disable(arn)  # pending keys never sign (the sign role is not in their policy either)
        kid = thumbprint(jwk)
        self.vault.tag(arn, {KID_TAG: kid})
        self._log.info("created a KMS key", extra={"kid": kid, "reason": "kms custody"})
        for region in self.regions:
            self._replicate(arn, alg, kid, region)
        record = KeyRecord(kid=kid, alg=alg, state=KeyState.PENDING, created_at=now, private_jwk=jwk, kms_key_arn=arn)
        self._unrecorded[alg] = record
        return record

    def recorded(self, keyring: Keyring) -> None:
        """A keyring was written: keys it records are no longer waiting to be recorded."""
        arns = {k.kms_key_arn for k in keyring.keys}
        self._unrecorded = {alg: k for alg, k in self._unrecorded.items() if k.kms_key_arn not in arns}

    # --- other regions ----------------------------------------------------
    def _replicate(self, arn: str, alg: str, kid: str, region: str) -> bool:
        """Replicate ``arn`` to ``region``, tagged, with the region's policy (no signer), disabled; False when it could not.

        ReplicateKey gives the stack's tag and the policy; both are put again on the replica (moto 5 ignores them),
        then the kid's tag (as on the primary key: a tag call of its own); a replica that came out enabled is disabled.
        A failure is logged: the replica is made by a later run (:meth:`replicas_ready`), and the key does not count as
        published before.
        """
        vault = self.regions[region]
        stack = {STACK_TAG: self.settings.kms_stack_tag}
        policy = key_policy(self.settings, None, signer=False, region=region)
        try:
            # The stack's tag only, as at CreateKey (the replica's CreateKey is authorized like one); the kid after.
            self.vault.replicate(arn, region, tags=stack, policy=policy,
                                 description=f"jwks-rotator ({self.settings.kms_stack_tag}): {alg} signing key")
            vault.tag(arn, stack)
            vault.tag(arn, {KID_TAG: kid})
            vault.put_policy(arn, policy)
            if vault.describe(arn).state in USABLE_STATES:
                vault.disable(arn)
        except KeyVaultError as exc:
            self._log.warning("KMS key not replicated to a region yet", extra={"kid": kid, "region": region, "reason": exc.reason})
            return False
        self._log.info("replicated a KMS key", extra={"kid": kid, "region": region, "reason": "kms custody"})
        return True

    def replicas_ready(self, keyring: Keyring, kids: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Of ``kids``, those whose KMS key has a replica in every other region (a kid without one: as it is); and the regions lacking one.

        A missing replica (its region was down when the key was made) is made now; it counts from the next run.
        A region that cannot be asked holds the key back, on the safe side.
        """
        asked = tuple(kids)
        if not self.regions:
            return asked, ()
        by_kid = {key.kid: key for key in keyring.keys}
        ready: list[str] = []
        lacking: set[str] = set()
        for kid in asked:
            record = by_kid.get(kid)
            if record is None or record.kms_key_arn is None:
                ready.append(kid)
                continue
            missing = [region for region in self.regions if not self._replica_present(record, region)]
            if missing:
                lacking.update(missing)
            else:
                ready.append(kid)
        return tuple(ready), tuple(sorted(lacking))

    def _replica_present(self, record: KeyRecord, region: str) -> bool:
        assert record.kms_key_arn is not None
        try:
            state = self.regions[region].describe(record.kms_key_arn).state
        except KeyVaultError as exc:
            if exc.reason == "NotFoundException" and not _key_id(record.kms_key_arn).startswith(MULTI_REGION_PREFIX):
                self._log.warning("a single-Region KMS key cannot be replicated: it never counts as published in every "
                                  "region (rotate-now replaces it with a multi-Region key)",
                                  extra={"kid": record.kid, "region": region, "reason": "single_region_key"})
            elif exc.reason == "NotFoundException":
                self._replicate(record.kms_key_arn, record.alg, record.kid, region)
            else:
                self._log.warning("KMS replica unreadable in a region", extra={"kid": record.kid, "region": region, "reason": exc.reason})
            return False
        return state in REPLICA_READY_STATES

    def _in_regions(self, arn: str, kid: str, action: Callable[[KeyVault, VaultKey, str], None]) -> bool:
        """``action(vault, described, region)`` on ``arn``'s replica in every other region that has one; False when one could not be reached.

        A replica pending deletion is left alone; a failure is logged (the next run repeats it).
        """
        reached = True
        for region, vault in self.regions.items():
            try:
                described = vault.describe(arn)
                if described.state in PENDING_DELETION:
                    continue
                action(vault, described, region)
            except KeyVaultError as exc:
                if exc.reason == "NotFoundException":
                    continue
                reached = False
                self._log.warning("KMS not yet in line in a region; the next run retries",
                                  extra={"kid": kid, "region": region, "reason": exc.reason})
        return reached

    def _remove_everywhere(self, arn: str, kid: str) -> None:
        """Disable and schedule the deletion of ``arn``'s replicas (a multi-Region primary is deleted after its replicas)."""

        def remove(vault: KeyVault, described: VaultKey, region: str) -> None:
            if described.state in USABLE_STATES:
                vault.disable(arn)
            vault.schedule_deletion(arn, self.deletion_days)
            self._log.info("scheduled a KMS replica's deletion", extra={"kid": kid, "region": region, "reason": "left the keyring"})

        self._in_regions(arn, kid, remove)

    # --- keeping KMS in line --------------------------------------------
    def settle(self, stored: Callable[[], Keyring], removed: Iterable[KeyRecord] = ()) -> None:
        """Bring KMS in line with the keyring as stored: only its active key enabled and signable by the sign role.

        ``stored`` reads the store's current keyring; it is called at the
        start and again just before (and just after) the active key is
        enabled, so a rotator whose view is stale never enables a key the store
        no longer makes active (see the module doc). Every KMS key tagged for
        the stack and with a kid tag that is not the stored active key and is
        enabled is disabled and its policy rewritten without the sign role,
        whatever this run saw (a run that failed half-way is finished by the
        next one). ``removed``: records that left the keyring in this run
        (deleted or revoked): disabled and scheduled for deletion unless the
        stored keyring records them again. Under a restore hold nothing is
        enabled (the signer signs nothing then).
        """
        keyring = stored()
        recorded = {k.kms_key_arn for k in keyring.keys if k.kms_key_arn is not None}
        for record in removed:
            if record.kms_key_arn is None or record.kms_key_arn in recorded:
                continue
            self.touched = True
            described = self.vault.describe(record.kms_key_arn)
            if not self.owns(described, [record.kms_key_arn]):  # recorded by this run: its DescribeKey must still fit
                continue
            self._remove_everywhere(record.kms_key_arn, record.kid)
            state = described.state
            if state in USABLE_STATES:
                self.vault.disable(record.kms_key_arn)
            if state not in PENDING_DELETION:
                self.vault.schedule_deletion(record.kms_key_arn, self.deletion_days)
                self._log.info("scheduled a KMS key's deletion", extra={"kid": record.kid, "reason": "left the keyring"})
        for _ in range(SETTLE_ATTEMPTS):
            active = self._converge(keyring)
            if active is None:
                return
            wait = self.propagation if self.propagation is not None else self.settings.kms_handover_wait.total_seconds()
            self.sleep(wait)  # every disable before it has taken effect: never two signable keys
            keyring = stored()
            if not _is_active(keyring, active):
                continue  # the store moved on while we waited (a concurrent hand-over): converge on it instead
            assert active.kms_key_arn is not None
            self.vault.put_policy(active.kms_key_arn, key_policy(self.settings, active.alg, signer=True))
            self.vault.enable(active.kms_key_arn)
            self._enable_in_regions(active)
            keyring = stored()
            if _is_active(keyring, active):
                self._log.info("enabled a KMS key", extra={"kid": active.kid, "reason": "active"})
                return
            self._retire(active.kms_key_arn, active.kid, "superseded while it was being enabled")  # the store moved on
        self._log.warning("KMS not yet in line with the keyring", extra={"reason": "the keyring kept changing; the next run settles"})

    def _enable_in_regions(self, active: KeyRecord) -> None:
        """The active key's replicas: the region's signing policy, then enabled (a region that cannot be reached: next run)."""
        assert active.kms_key_arn is not None
        arn = active.kms_key_arn

        def enable(vault: KeyVault, described: VaultKey, region: str) -> None:
            vault.put_policy(arn, key_policy(self.settings, active.alg, signer=True, region=region))
            vault.enable(arn)

        self._in_regions(arn, active.kid, enable)

    def _converge(self, keyring: Keyring) -> KeyRecord | None:
        """Disable every enabled key ``keyring`` records but its active one; the active record if it is not enabled.

        The keys come from the stack's own records (one DescribeKey each), never from a listing of the account's
        keys: an unrecorded key was never activated, so its policy never named the sign role (the sweep deals
        with it).
        """
        active = keyring.active if not keyring.restore_hold else None
        active_arn = active.kms_key_arn if active is not None else None
        # The keys it records, and the revoked ones its tombstones name (a revoke whose disable failed is finished here).
        recorded = [(k.kid, k.kms_key_arn) for k in keyring.keys if k.kms_key_arn is not None]
        recorded += [(r.kid, r.kms_key_arn) for r in keyring.revoked if r.kms_key_arn is not None]
        arns = [arn for _, arn in recorded]
        enabled = False
        for kid, arn in recorded:
            assert arn is not None
            try:
                key = self.vault.describe(arn)
            except KeyVaultError as exc:
                if exc.reason == "NotFoundException":
                    continue  # a tombstone's key KMS already deleted
                raise
            if key.state in PENDING_DELETION:
                self._remove_everywhere(arn, kid)  # a replica whose region was down at the removal (idempotent)
                continue
            if not self.owns(key, arns):
                continue
            if key.arn == active_arn:
                enabled = key.state in USABLE_STATES and self._enabled_in_regions(arn, kid)
            elif key.state in USABLE_STATES:
                self._retire(key.arn, kid, "only the active key signs")  # in every region
            else:
                self._retire_in_regions(arn, kid)
        if active is None or active_arn is None or enabled:
            return None
        return active

    def _enabled_in_regions(self, arn: str, kid: str) -> bool:
        """Whether every other region's replica that can be asked is enabled (one that cannot: not held against it)."""
        disabled: list[str] = []

        def check(vault: KeyVault, described: VaultKey, region: str) -> None:
            if described.state not in USABLE_STATES:
                disabled.append(region)

        self._in_regions(arn, kid, check)
        return not disabled

    def _retire_in_regions(self, arn: str, kid: str) -> None:
        """Every other region's replica of a key that may not sign: disabled, its policy without the signer."""

        def retire(vault: KeyVault, described: VaultKey, region: str) -> None:
            if described.state in USABLE_STATES:
                vault.disable(arn)
                vault.put_policy(arn, key_policy(self.settings, None, signer=False, region=region))
                self._log.info("disabled a KMS replica", extra={"kid": kid, "region": region, "reason": "only the active key signs"})

        self._in_regions(arn, kid, retire)

    def _retire(self, arn: str, kid: str, reason: str) -> None:
        """Disable a key, then rewrite its policy without the sign role: two fences, either of which stops it signing."""
        self.vault.disable(arn)
        self.vault.put_policy(arn, key_policy(self.settings, None, signer=False))
        self._log.info("disabled a KMS key", extra={"kid": kid, "reason": reason})
        self._retire_in_regions(arn, kid)

    def owns(self, key: VaultKey, recorded: Iterable[str] = ()) -> bool:
        """Whether ``key`` (as DescribeKey says) is this stack's: never on its tag alone.

        DescribeKey must say customer-managed, ``SIGN_VERIFY``, origin ``AWS_KMS``
        and a signing spec; then a key the keyring records (the keyring only
        the stack's roles write) is its own, and any other must carry the key
        policy this rotator writes at creation: the :func:`ownership_sid`
        statement and the rotate role as its manager. A key that fails is
        reported (log, ``on_foreign``) and left alone.
        """
        described = key if key.usage else self.vault.describe(key.arn)
        if described.usage == "SIGN_VERIFY" and described.origin == "AWS_KMS" and described.manager == "CUSTOMER" and (
            described.spec in SIGNING_SPECS
        ):
            if key.arn in set(recorded):
                return True
            try:
                if _policy_is_ours(self.vault.policy(key.arn), self.settings):
                    return True
            except KeyVaultError:
                pass  # a policy the rotate role may not read is not one it wrote
        self._log.warning("a KMS key carries this stack's tag but is not its own; left alone", extra={"reason": "foreign key"})
        if self.on_foreign is not None:
            self.on_foreign(key.arn)
        return False

    @property
    def deletion_days(self) -> int:
        return int(self.settings.key_deletion_window.total_seconds()) // 86400

    def sweep(self, keyring: Keyring, now: datetime) -> list[str]:
        """Find the stack's keys the keyring does not record and older than the grace: disable them and schedule their deletion.

        ``keyring`` must be read just before the call. A key's age is measured
        on KMS's clock (its CreationDate against the Date of the listing's
        answers); ``now``, the local clock, only when the vault gives no time.
        Returns the ARNs scheduled for deletion.
        """
        if not self.settings.kms_stack_tag:
            return []
        recorded = {k.kms_key_arn for k in keyring.keys if k.kms_key_arn is not None}
        waiting = {k.kms_key_arn for k in self._unrecorded.values()}
        scheduled: list[str] = []
        tagged = self.vault.list_tagged(STACK_TAG, self.settings.kms_stack_tag)
        now = self.vault.server_time() or now  # ages on KMS's clock, which set CreationDate: not on a skewed local one
        for key in tagged:
            if key.arn in recorded or key.arn in waiting or key.state in PENDING_DELETION:
                continue
            if key.created_at + self.grace > now:
                continue  # a concurrent rotator may be recording (and activating) it right now
            if not self.owns(key):
                continue
            kid = key.tags.get(KID_TAG, "")
            if key.state in USABLE_STATES:
                self.vault.disable(key.arn)
                self._log.warning("disabled an unrecorded KMS key", extra={"kid": kid, "reason": "orphan"})
            self.vault.schedule_deletion(key.arn, self.deletion_days)
            self._remove_everywhere(key.arn, kid)
            scheduled.append(key.arn)
            self._log.warning("scheduled an unrecorded KMS key's deletion", extra={"kid": kid, "reason": "orphan"})
        return scheduled


def _policy_is_ours(text: str, settings: Settings) -> bool:
    """The key policy carries this stack's :func:`ownership_sid` Deny and names the rotate role as the key's manager."""
    try:
        statements = json.loads(text).get("Statement", [])
    except (ValueError, AttributeError):
        return False
    if not isinstance(statements, list):
        return False
    by_sid = {s.get("Sid"): s for s in statements if isinstance(s, dict)}
    marker, manager = by_sid.get(ownership_sid(settings.kms_stack_tag)), by_sid.get("RotatorManagesTheKey")
    return (
        isinstance(marker, dict)
        and marker.get("Effect") == "Deny"
        and isinstance(manager, dict)
        and manager.get("Effect") == "Allow"
        and manager.get("Principal") == {"AWS": settings.kms_rotate_role_arn}
    )


def _is_active(keyring: Keyring, record: KeyRecord) -> bool:
    active = keyring.active
    return not keyring.restore_hold and active is not None and active.kms_key_arn == record.kms_key_arn


def require_kms_settings(settings: Settings) -> None:
    """Refuse kms custody without what new keys need: the stack tag and the two role ARNs of the key policy."""
    if settings.key_custody != "kms":
        return
    missing = [name for name in ("kms_stack_tag", "kms_sign_role_arn", "kms_rotate_role_arn") if not getattr(settings, name)]
    if missing:
        raise ConfigurationError(
            f"key-custody kms needs {', '.join(n.replace('_', '-') for n in missing)} (the template passes them in)"
        )


def _key_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]
