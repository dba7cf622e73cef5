"""Least privilege in every region: the primary's and a secondary's roles, call by call, against both stacks' policies.

A stack per region (docs/design/regions.md): :func:`region_pair` makes up the two deployments of the translated
template a two-region issuer has (the primary in us-east-1 with ``Regions``, the second origin and the secondary's
roles; the secondary in eu-west-1 with the primary's keyring, writer, distribution and bucket as its other origin), each with its own role and
bucket names (IAM and S3 names are global), and the policies the account then holds together: both stacks' identity
policies, key and bucket policies, and the primary's secret policies on the replicas too (Secrets Manager replicates a
secret's resource policy with it). :func:`region_rows` lists, per region, the calls that must be allowed (the
replication and failover paths) and those that must be denied, each decided by the IAM evaluator like the one-region
matrix (:mod:`tests.privilege.matrix`).

KMS custody across regions needs each key's own policy to allow what the roles' IAM policies allow. The rows give each
key the policy the writer gives it (``kms_custody.key_policy``; in the secondary region the replica's, whose signing
statements name the secondary's sign role from ``SecondarySignRoleArns``, or without it no signer at all).
``kms:ReplicateKey`` is decided against the primary key's
policy, which lets the rotate role replicate it into the regions of ``regions`` only (a key policy naming the role
allows by itself: its own ``kms:ReplicaRegion`` condition, not only IAM's, keeps other regions out).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jwks_rotator.core.lifecycle.kms_custody import key_policy
from jwks_rotator.core.settings import Settings
from tests.privilege.policies import Deployment, Policies, extract, merged, with_replicas
from tests.privilege.rows import ADMINISTRATOR, OTHER_ROLE, Row, _case
from tests.privilege.scenario import ACCOUNT

PRIMARY, SECONDARY, ELSEWHERE = "us-east-1", "eu-west-1", "ap-southeast-2"
STACK = "jwks-rotator"
ISSUER = "https://issuer.example.com"


@dataclass(frozen=True)
class RegionPair:
    primary: Deployment
    secondary: Deployment
    policies: Policies  # both stacks' policies, the replicas' included: what the account holds

    @property
    def regions(self) -> tuple[str, str]:
        return self.primary.region, self.secondary.region


def region_pair(template: Mapping[str, Any], *, stack: str = STACK, account: str = ACCOUNT) -> RegionPair:
    """The primary's and a secondary's deployment of ``template``, named after each other as docs/regions.md says."""
    regions = f"{PRIMARY},{SECONDARY}"
    common = {"PrimaryRegion": PRIMARY, "Regions": regions, "Issuer": ISSUER}
    secondary = Deployment.synthetic(template, stack=stack, account=account, region=SECONDARY, suffix="9Z8Y7X6W5V4U")
    primary = Deployment.synthetic(template, stack=stack, account=account, region=PRIMARY, parameters={
        **common, "SecondOriginBucket": secondary.resources["JwksBucket"].ref, "SecondOriginRegion": SECONDARY,
        "SecondarySignRoleArns": secondary.role_arn("SignFunctionRole"), "SecondaryRotateRoleArns": secondary.role_arn("RotateFunctionRole"),
    })
    secondary = dataclasses.replace(secondary, parameters={
        **common, "PrimaryKeyringSecretArn": primary.resources["KeyringSecret"].ref, "PrimaryRotateRoleArn": primary.role_arn("RotateFunctionRole"),
        "PrimaryDistributionId": primary.resources["Distribution"].ref,
        # its other origin: the primary's bucket, which it writes (and the distribution it invalidates) once promoted
        "SecondOriginBucket": primary.resources["JwksBucket"].ref, "SecondOriginRegion": PRIMARY,
    })
    policies = merged(with_replicas(extract(template, primary), [SECONDARY]), extract(template, secondary))
    return RegionPair(primary, secondary, policies)


def _replica(arn: str, region: str) -> str:
    parts = arn.split(":")
    return ":".join([*parts[:3], region, *parts[4:]])


def region_rows(pair: RegionPair) -> list[tuple[str, Row]]:
    """(region, row): what each region's roles may and may not do across the two stacks."""
    p, s, policies = pair.primary, pair.secondary, pair.policies
    rotate, sign = p.role_arn("RotateFunctionRole"), p.role_arn("SignFunctionRole")
    s_rotate, s_sign = s.role_arn("RotateFunctionRole"), s.role_arn("SignFunctionRole")
    keyring, signing = p.resources["KeyringSecret"].ref, p.resources["SigningKeySecret"].ref
    keyring_there, signing_there = _replica(keyring, s.region), _replica(signing, s.region)
    key_there = s.resources["KeyringKey"].attributes["Arn"]
    first, second = p.resources["JwksBucket"].ref, s.resources["JwksBucket"].ref
    distribution = p.resources["Distribution"].ref
    current = {"secretsmanager:VersionStage": ["AWSCURRENT"]}

    def at(region: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"aws:RequestedRegion": region, **(extra or {})}

    def via(region: str, secret: str) -> dict[str, Any]:
        return at(region, {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com", "kms:EncryptionContext:SecretARN": secret})

    def c(id_: str, role: str | None, action: str, resource: str, context: Mapping[str, Any], **more: Any) -> Any:
        return _case(policies, p, id_, role, action, resource, context, **more)

    # Custody keys: a multi-Region key of the stack (tagged), its replica in the secondary with the policy naming that
    # region's signer, and a key of the account without the tag.
    tag = {"aws:ResourceTag/jwks-rotator:stack": p.stack}
    custody_here = f"arn:aws:kms:{p.region}:{p.account}:key/mrk-00000000aaaabbbbcccc000000000001"
    custody_there = _replica(custody_here, s.region)
    kms_settings = Settings.from_mapping({
        "issuer": ISSUER, "algorithm": "ES256", "key_custody": "kms", "kms_stack_tag": p.stack, "kms_rotate_role_arn": rotate,
        "kms_sign_role_arn": sign, "primary_region": p.region, "regions": f"{p.region},{s.region}", "signing_secret_id": "view",
        "kms_replica_sign_role_arns": s_sign})  # the primary's SecondarySignRoleArns, as the template passes it
    replica_policy = json.loads(key_policy(kms_settings, "ES256", signer=True, region=s.region))
    # Without SecondarySignRoleArns the writer cannot name the secondary's sign role: the replica names no signer.
    pattern_policy = json.loads(key_policy(kms_settings.replace(kms_replica_sign_role_arns=()), "ES256", signer=True, region=s.region))
    primary_policy = json.loads(key_policy(kms_settings, "ES256", signer=True))
    named_like_the_stack = f"arn:aws:iam::{p.account}:role/{p.stack}-not-a-stack-role"
    delegating = {"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                  "Principal": {"AWS": f"arn:aws:iam::{p.account}:root"}, "Action": "kms:*", "Resource": "*"}]}
    foreign_there = f"arn:aws:kms:{s.region}:{p.account}:key/00000000-dddd-eeee-ffff-000000000009"
    signs = {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "RAW"}
    oac = {"aws:SourceArn": f"arn:aws:cloudfront::{p.account}:distribution/{distribution}"}
    revocation = f"parameter/jwks-rotator/{p.stack}/revoked-kids"

    primary_rows = [
        # the second origin: the writer's documents and revocation record in the secondary's bucket
        Row(c("writer-puts-second-origin-jwks", rotate, "s3:PutObject", f"arn:aws:s3:::{second}/.well-known/jwks.json", at(s.region)),
            "allow", "the writer publishing the JWKS at the second origin", "rotate"),
        Row(c("writer-puts-second-origin-discovery", rotate, "s3:PutObject", f"arn:aws:s3:::{second}/.well-known/openid-configuration",
              at(s.region)), "allow", "the writer publishing the discovery document at the second origin", "rotate"),
        Row(c("writer-reads-second-origin-jwks", rotate, "s3:GetObject", f"arn:aws:s3:::{second}/.well-known/jwks.json", at(s.region)),
            "allow", "the writer reading the second origin back (digest check)", "rotate"),
        Row(c("writer-lists-second-origin", rotate, "s3:ListBucket", f"arn:aws:s3:::{second}", at(s.region)), "allow",
            "the writer seeing a document missing at the second origin (404, not 403)", "rotate"),
        Row(c("writer-puts-second-origin-record", rotate, "s3:PutObject", f"arn:aws:s3:::{second}/revocations/revoked-kids.json",
              at(s.region)), "deny", "the writer writing a revocation record at the second origin (the primary's is the one)", "rotate"),
        Row(c("writer-reads-second-origin-record", rotate, "s3:GetObject", f"arn:aws:s3:::{second}/revocations/revoked-kids.json",
              at(s.region)), "allow", "the writer reading the second origin's revocation record (a writer's before it, unioned)", "rotate"),
        Row(c("writer-puts-second-origin-other", rotate, "s3:PutObject", f"arn:aws:s3:::{second}/state/last-tick.json", at(s.region)),
            "deny", "the writer writing anything else in the second origin", "rotate"),
        Row(c("writer-deletes-second-origin-jwks", rotate, "s3:DeleteObject", f"arn:aws:s3:::{second}/.well-known/jwks.json",
              at(s.region)), "deny", "the writer deleting a document at the second origin", "rotate"),
        # replicas, read back in the secondary region
        Row(c("writer-reads-keyring-replica", rotate, "secretsmanager:GetSecretValue", keyring_there, at(s.region, current)), "allow",
            "the writer reading the keyring replica back (activation waits for it)", "rotate"),
        Row(c("writer-reads-signing-replica", rotate, "secretsmanager:GetSecretValue", signing_there, at(s.region, current)), "allow",
            "the writer reading the signing view replica back (deletion waits for it)", "rotate"),
        Row(c("writer-decrypts-keyring-replica", rotate, "kms:Decrypt", key_there, via(s.region, keyring_there)), "allow",
            "the writer decrypting the keyring replica with the secondary's key", "rotate"),
        Row(c("writer-decrypts-outside-secrets-manager", rotate, "kms:Decrypt", key_there, at(s.region)), "deny",
            "the writer using the secondary's key directly (not through Secrets Manager)", "rotate"),
        Row(c("signer-decrypts-replica-elsewhere", sign, "kms:Decrypt", key_there, via(s.region, signing_there)), "deny",
            "the primary's signer decrypting the secondary region's replica", "sign"),
        # per-region revocation lists
        Row(c("writer-puts-revocation-list-there", rotate, "ssm:PutParameter", f"arn:aws:ssm:{s.region}:{p.account}:{revocation}",
              at(s.region)), "allow", "the writer writing the secondary region's revocation list", "rotate"),
        Row(c("writer-reads-revocation-list-there", rotate, "ssm:GetParameter", f"arn:aws:ssm:{s.region}:{p.account}:{revocation}",
              at(s.region)), "allow", "the writer reading the secondary region's revocation list", "rotate"),
        Row(c("writer-puts-other-parameter-there", rotate, "ssm:PutParameter", f"arn:aws:ssm:{s.region}:{p.account}:parameter/other-app/x",
              at(s.region)), "deny", "the writer writing another parameter in the secondary region", "rotate"),
        # multi-Region KMS keys
        Row(c("writer-replicates-stack-key", rotate, "kms:ReplicateKey", custody_here, at(p.region, {**tag, "kms:ReplicaRegion": s.region}),
              resource_policy=primary_policy), "allow", "the writer replicating a stack key into a region of Regions", "rotate"),
        Row(c("writer-replicates-stack-key-elsewhere", rotate, "kms:ReplicateKey", custody_here,
              at(p.region, {**tag, "kms:ReplicaRegion": ELSEWHERE}), resource_policy=primary_policy), "deny",
            "the writer replicating a stack key into a region not in Regions", "rotate"),
        Row(c("writer-replicates-foreign-key", rotate, "kms:ReplicateKey", f"arn:aws:kms:{p.region}:{p.account}:key/mrk-99",
              at(p.region, {"kms:ReplicaRegion": s.region}), resource_policy=delegating), "deny",
            "the writer replicating a key without the stack tag", "rotate"),
        Row(c("writer-disables-replica-key", rotate, "kms:DisableKey", custody_there, at(s.region, tag), resource_policy=replica_policy),
            "allow", "the writer disabling a stack key's replica (revocation reaches the region)", "rotate"),
        Row(c("writer-schedules-replica-deletion", rotate, "kms:ScheduleKeyDeletion", custody_there, at(s.region, tag),
              resource_policy=replica_policy), "allow", "the writer deleting a retired key's replica", "rotate"),
        Row(c("writer-disables-foreign-key-there", rotate, "kms:DisableKey", foreign_there, at(s.region), resource_policy=delegating),
            "deny", "the writer disabling a key of the account without the stack tag in the secondary region", "rotate"),
        Row(c("writer-signs-with-replica", rotate, "kms:Sign", custody_there, at(s.region, {**tag, **signs}), resource_policy=replica_policy),
            "deny", "the writer signing with a replica key", "rotate"),
        Row(c("signer-signs-with-primary-key", sign, "kms:Sign", custody_here, at(p.region, {**tag, **signs}), resource_policy=primary_policy),
            "allow", "the primary's signer signing with the active key in its region", "sign"),
        Row(c("signer-signs-with-replica", sign, "kms:Sign", custody_there, at(s.region, {**tag, **signs}), resource_policy=replica_policy),
            "deny", "the primary's signer signing with the secondary region's replica", "sign"),
        # nobody else reads a replica
        Row(c("admin-reads-keyring-replica", OTHER_ROLE, "secretsmanager:GetSecretValue", keyring_there, at(s.region, current),
              identity=ADMINISTRATOR), "deny", "another principal (AdministratorAccess) reading the keyring replica", "some-admin"),
        Row(c("admin-writes-second-origin", OTHER_ROLE, "s3:PutObject", f"arn:aws:s3:::{second}/.well-known/jwks.json", at(s.region),
              identity=ADMINISTRATOR), "deny", "another principal (AdministratorAccess) writing the second origin", "some-admin"),
    ]
    secondary_rows = [
        Row(c("secondary-signer-reads-its-view", s_sign, "secretsmanager:GetSecretValue", signing_there, at(s.region, current)), "allow",
            "the secondary's signer reading its region's signing view replica", "sign@2"),
        Row(c("secondary-signer-decrypts-its-view", s_sign, "kms:Decrypt", key_there, via(s.region, signing_there)), "allow",
            "the secondary's signer decrypting its signing view with its region's key", "sign@2"),
        Row(c("secondary-signer-reads-previous-view", s_sign, "secretsmanager:GetSecretValue", signing_there,
              at(s.region, {"secretsmanager:VersionStage": ["AWSPREVIOUS"]})), "deny",
            "the secondary's signer reading a non-current version of its view", "sign@2"),
        Row(c("secondary-signer-reads-keyring-replica", s_sign, "secretsmanager:GetSecretValue", keyring_there, at(s.region, current)),
            "deny", "the secondary's signer reading the keyring replica (pending and retired private keys)", "sign@2"),
        Row(c("secondary-signer-decrypts-keyring-replica", s_sign, "kms:Decrypt", key_there, via(s.region, keyring_there)), "deny",
            "the secondary's signer decrypting the keyring replica", "sign@2"),
        Row(c("secondary-signer-reads-primary-view", s_sign, "kms:Decrypt", p.resources["KeyringKey"].attributes["Arn"],
              via(p.region, signing)), "deny", "the secondary's signer decrypting the primary region's signing view", "sign@2"),
        Row(c("secondary-signer-signs-with-replica", s_sign, "kms:Sign", custody_there, at(s.region, {**tag, **signs}),
              resource_policy=replica_policy), "allow", "the secondary's signer signing with the active key's replica in its region", "sign@2"),
        Row(c("secondary-signer-signs-in-primary", s_sign, "kms:Sign", custody_here, at(p.region, {**tag, **signs}),
              resource_policy=primary_policy), "deny", "the secondary's signer signing with the primary region's key", "sign@2"),
        Row(c("secondary-signer-reads-its-revocations", s_sign, "ssm:GetParameter", f"arn:aws:ssm:{s.region}:{p.account}:{revocation}",
              at(s.region)), "allow", "the secondary's signer reading its region's revocation list", "sign@2"),
        Row(c("secondary-rotate-reads-keyring-replica", s_rotate, "secretsmanager:GetSecretValue", keyring_there, at(s.region, current)),
            "allow", "the secondary's rotate role reading its keyring replica (promote checks its generation)", "rotate@2"),
        Row(c("secondary-rotate-decrypts-keyring-replica", s_rotate, "kms:Decrypt", key_there, via(s.region, keyring_there)), "allow",
            "the secondary's rotate role decrypting its keyring replica", "rotate@2"),
        Row(c("secondary-rotate-reads-primary-keyring", s_rotate, "secretsmanager:GetSecretValue", keyring, at(p.region, current)), "allow",
            "the secondary's rotate role reading the primary's current keyring (promote's probe, a promoted writer's fence)", "rotate@2"),
        Row(c("secondary-rotate-decrypts-primary-keyring", s_rotate, "kms:Decrypt", p.resources["KeyringKey"].attributes["Arn"],
              via(p.region, keyring)), "allow", "the secondary's rotate role decrypting the primary's keyring through Secrets Manager",
            "rotate@2"),
        Row(c("secondary-rotate-decrypts-primary-key-directly", s_rotate, "kms:Decrypt", p.resources["KeyringKey"].attributes["Arn"],
              at(p.region)), "deny", "the secondary's rotate role using the primary's keyring key outside Secrets Manager", "rotate@2"),
        Row(c("secondary-rotate-reads-primary-keyring-previous", s_rotate, "secretsmanager:GetSecretValue", keyring,
              at(p.region, {"secretsmanager:VersionStage": ["AWSPREVIOUS"]})), "deny",
            "the secondary's rotate role reading a non-current version of the primary's keyring", "rotate@2"),
        Row(c("secondary-rotate-reads-primary-view", s_rotate, "secretsmanager:GetSecretValue", signing, at(p.region, current)), "deny",
            "the secondary's rotate role reading the primary region's signing view", "rotate@2"),
        Row(c("secondary-rotate-describes-its-replica", s_rotate, "secretsmanager:DescribeSecret", keyring_there, at(s.region)), "allow",
            "the secondary's rotate role asking whether its keyring is a replica (promote)", "rotate@2"),
        Row(c("secondary-rotate-stops-keyring-replication", s_rotate, "secretsmanager:StopReplicationToReplica", keyring_there,
              at(s.region)), "allow", "the secondary's rotate role making its keyring replica standalone (promote)", "rotate@2"),
        Row(c("secondary-rotate-stops-view-replication", s_rotate, "secretsmanager:StopReplicationToReplica", signing_there,
              at(s.region)), "allow", "the secondary's rotate role making its signing view replica standalone (promote)", "rotate@2"),
        Row(c("secondary-rotate-stops-primary-replication", s_rotate, "secretsmanager:StopReplicationToReplica", keyring, at(p.region)),
            "deny", "the secondary's rotate role calling StopReplicationToReplica on the primary's keyring", "rotate@2"),
        Row(c("secondary-rotate-removes-replica-regions", s_rotate, "secretsmanager:RemoveRegionsFromReplication", keyring, at(p.region)),
            "deny", "the secondary's rotate role changing the primary keyring's replication", "rotate@2"),
        Row(c("secondary-rotate-writes-replica", s_rotate, "secretsmanager:PutSecretValue", keyring_there, at(s.region)), "allow",
            "the secondary's rotate role writing its region's keyring (refused by Secrets Manager while it is a replica; "
            "the writer's once promote made it standalone)", "rotate@2"),
        Row(c("secondary-rotate-writes-its-view", s_rotate, "secretsmanager:PutSecretValue", signing_there, at(s.region)), "allow",
            "the secondary's rotate role writing its region's signing view (once promoted, as for the keyring)", "rotate@2"),
        Row(c("secondary-rotate-writes-primary-view", s_rotate, "secretsmanager:PutSecretValue", signing, at(p.region)), "deny",
            "the secondary's rotate role writing the primary's signing view", "rotate@2"),
        Row(c("secondary-rotate-repoints-its-replica", s_rotate, "secretsmanager:UpdateSecret", keyring_there, at(s.region)), "deny",
            "the secondary's rotate role re-encrypting or replacing its keyring (UpdateSecret)", "rotate@2"),
        Row(c("secondary-rotate-writes-primary-keyring", s_rotate, "secretsmanager:PutSecretValue", keyring, at(p.region)), "deny",
            "the secondary's rotate role writing the primary's keyring", "rotate@2"),
        Row(c("secondary-rotate-writes-its-bucket", s_rotate, "s3:PutObject", f"arn:aws:s3:::{second}/.well-known/jwks.json", at(s.region)),
            "allow", "the secondary's rotate role writing its own bucket (after promote)", "rotate@2"),
        # its other origin, the primary's bucket: a promoted writer keeps both origins of the origin group current
        Row(c("secondary-rotate-writes-primary-jwks", s_rotate, "s3:PutObject", f"arn:aws:s3:::{first}/.well-known/jwks.json",
              at(p.region)), "allow", "the secondary's rotate role publishing the JWKS at the primary's bucket (once promoted)", "rotate@2"),
        Row(c("secondary-rotate-writes-primary-discovery", s_rotate, "s3:PutObject", f"arn:aws:s3:::{first}/.well-known/openid-configuration",
              at(p.region)), "allow", "the secondary's rotate role publishing the discovery document at the primary's bucket", "rotate@2"),
        Row(c("secondary-rotate-reads-primary-jwks", s_rotate, "s3:GetObject", f"arn:aws:s3:::{first}/.well-known/jwks.json", at(p.region)),
            "allow", "the secondary's rotate role reading the primary's bucket back (digest check, writer fence)", "rotate@2"),
        Row(c("secondary-rotate-lists-primary-bucket", s_rotate, "s3:ListBucket", f"arn:aws:s3:::{first}", at(p.region)), "allow",
            "the secondary's rotate role seeing a document missing at the primary's bucket (404, not 403)", "rotate@2"),
        Row(c("secondary-rotate-puts-primary-record", s_rotate, "s3:PutObject", f"arn:aws:s3:::{first}/revocations/revoked-kids.json",
              at(p.region)), "deny", "the secondary's rotate role writing the primary's revocation record", "rotate@2"),
        Row(c("secondary-rotate-reads-primary-record", s_rotate, "s3:GetObject", f"arn:aws:s3:::{first}/revocations/revoked-kids.json",
              at(p.region)), "allow", "the secondary's rotate role reading the old primary's revocation record (unioned once promoted)",
            "rotate@2"),
        Row(c("secondary-rotate-reads-primary-state", s_rotate, "s3:GetObject", f"arn:aws:s3:::{first}/state/replication.json",
              at(p.region)), "deny", "the secondary's rotate role reading anything else in the primary's bucket", "rotate@2"),
        Row(c("secondary-rotate-deletes-primary-jwks", s_rotate, "s3:DeleteObject", f"arn:aws:s3:::{first}/.well-known/jwks.json",
              at(p.region)), "deny", "the secondary's rotate role deleting a document at the primary's bucket", "rotate@2"),
        Row(c("secondary-rotate-as-admin-puts-primary-state", s_rotate, "s3:PutObject", f"arn:aws:s3:::{first}/state/replication.json",
              at(p.region), identity=ADMINISTRATOR), "deny", "the secondary's rotate role, even given AdministratorAccess, writing "
            "anything but the two documents in the primary's bucket (its bucket policy)", "rotate@2"),
        Row(c("secondary-rotate-as-admin-puts-primary-record", s_rotate, "s3:PutObject",
              f"arn:aws:s3:::{first}/revocations/revoked-kids.json", at(p.region), identity=ADMINISTRATOR), "deny",
            "the secondary's rotate role, even given AdministratorAccess, writing the primary's revocation record", "rotate@2"),
        Row(c("secondary-rotate-invalidates", s_rotate, "cloudfront:CreateInvalidation",
              f"arn:aws:cloudfront::{p.account}:distribution/{distribution}", at(s.region)), "allow",
            "the secondary's rotate role invalidating the primary's distribution (once promoted)", "rotate@2"),
        Row(c("secondary-rotate-invalidates-other", s_rotate, "cloudfront:CreateInvalidation",
              f"arn:aws:cloudfront::{p.account}:distribution/EOTHERDIST1234", at(s.region)), "deny",
            "the secondary's rotate role invalidating another distribution", "rotate@2"),
        Row(c("secondary-rotate-puts-primary-revocations", s_rotate, "ssm:PutParameter", f"arn:aws:ssm:{p.region}:{p.account}:{revocation}",
              at(p.region)), "allow", "the secondary's rotate role writing the primary region's revocation list (the writer's, once "
            "promoted; the primary's record guards every list)", "rotate@2"),
        Row(c("secondary-rotate-puts-other-parameter-there", s_rotate, "ssm:PutParameter",
              f"arn:aws:ssm:{p.region}:{p.account}:parameter/other-app/x", at(p.region)), "deny",
            "the secondary's rotate role writing another parameter in the primary region", "rotate@2"),
        Row(c("secondary-rotate-replicates-key", s_rotate, "kms:ReplicateKey", custody_there,
              at(s.region, {**tag, "kms:ReplicaRegion": p.region}), resource_policy=delegating), "deny",
            "the secondary's rotate role replicating keys (only the primary's writer does)", "rotate@2"),
        Row(_case(policies, p, "primary-distribution-reads-second-origin", None, "s3:GetObject", f"arn:aws:s3:::{second}/.well-known/jwks.json",
                  oac, principal="cloudfront.amazonaws.com", identity=[]), "allow",
            "the primary's distribution (origin group) reading the second origin", "cloudfront"),
        Row(_case(policies, p, "primary-distribution-reads-second-record", None, "s3:GetObject",
                  f"arn:aws:s3:::{second}/revocations/revoked-kids.json", oac, principal="cloudfront.amazonaws.com", identity=[]), "deny",
            "the primary's distribution serving the second origin's revocation record", "cloudfront"),
        Row(_case(policies, p, "other-distribution-reads-second-origin", None, "s3:GetObject", f"arn:aws:s3:::{second}/.well-known/jwks.json",
                  {"aws:SourceArn": f"arn:aws:cloudfront::{p.account}:distribution/EOTHERDIST1234"}, principal="cloudfront.amazonaws.com",
                  identity=[]), "deny", "another distribution reading the second origin", "cloudfront"),
        Row(c("admin-signs-with-replica", OTHER_ROLE, "kms:Sign", custody_there, at(s.region, {**tag, **signs}), identity=ADMINISTRATOR,
              resource_policy=replica_policy), "deny", "another principal (AdministratorAccess) signing with a replica key", "some-admin"),
        Row(c("stack-named-admin-signs-with-replica", named_like_the_stack, "kms:Sign", custody_there, at(s.region, {**tag, **signs}),
              identity=ADMINISTRATOR, resource_policy=replica_policy), "deny",
            "a role named <stack>-* with kms:Sign in its IAM policy signing with a replica (its policy names the secondary's "
            "sign role, from SecondarySignRoleArns)", "some-admin"),
        Row(c("stack-named-admin-signs-with-replica-unnamed", named_like_the_stack, "kms:Sign", custody_there,
              at(s.region, {**tag, **signs}), identity=ADMINISTRATOR, resource_policy=pattern_policy), "deny",
            "without SecondarySignRoleArns: a role named <stack>-* with kms:Sign in its IAM policy signing with a replica "
            "(the replica's policy then names no signer)", "some-admin"),
        Row(c("secondary-signer-signs-with-replica-unnamed", s_sign, "kms:Sign", custody_there, at(s.region, {**tag, **signs}),
              resource_policy=pattern_policy), "deny",
            "without SecondarySignRoleArns: the secondary's signer signing with a replica (fails closed until the primary's "
            "stack names it)", "sign@2"),
        Row(c("secondary-signer-stops-view-replication", s_sign, "secretsmanager:StopReplicationToReplica", signing_there, at(s.region)),
            "deny", "the secondary's signer making its signing view standalone", "sign@2"),
        Row(c("secondary-signer-writes-its-view", s_sign, "secretsmanager:PutSecretValue", signing_there, at(s.region)), "deny",
            "the secondary's signer writing its signing view", "sign@2"),
        Row(c("admin-stops-keyring-replication", OTHER_ROLE, "secretsmanager:StopReplicationToReplica", keyring_there, at(s.region),
              identity=ADMINISTRATOR), "deny", "another principal (AdministratorAccess) making the keyring replica standalone", "some-admin"),
        Row(c("admin-writes-keyring-replica", OTHER_ROLE, "secretsmanager:PutSecretValue", keyring_there, at(s.region),
              identity=ADMINISTRATOR), "deny", "another principal (AdministratorAccess) writing the keyring in the secondary region",
            "some-admin"),
        Row(c("admin-reads-signing-replica", OTHER_ROLE, "secretsmanager:GetSecretValue", signing_there, at(s.region, current),
              identity=ADMINISTRATOR), "deny", "another principal (AdministratorAccess) reading the signing view replica", "some-admin"),
        Row(c("admin-decrypts-with-secondary-key", OTHER_ROLE, "kms:Decrypt", key_there, via(s.region, signing_there), identity=ADMINISTRATOR),
            "deny", "another principal (AdministratorAccess) decrypting with the secondary's key", "some-admin"),
    ]
    return [(p.region, row) for row in primary_rows] + [(s.region, row) for row in secondary_rows]


def totals(results: Sequence[tuple[str, Row, Any]]) -> dict[str, tuple[int, int]]:
    """Per region: (decisions, decisions as expected)."""
    out: dict[str, tuple[int, int]] = {}
    for region, row, decision in results:
        ok = decision.allowed == (row.expected == "allow") and decision.decision != "Error"
        count, good = out.get(region, (0, 0))
        out[region] = (count + 1, good + ok)
    return out
