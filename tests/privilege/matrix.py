"""The least-privilege matrix: every recorded call must be allowed, every call on the written list denied.

``python -m tests.privilege.matrix`` (``make check-privilege``, part of ``make test``) records the
functions' calls (:mod:`tests.privilege.scenario`), adds the calls that must be denied and a few that
must stay allowed (CloudFront reading the documents, the break-glass role recovering a secret), decides
them all with the IAM evaluator against the translated template's policies (:mod:`tests.privilege.policies`),
prints the matrix and exits non-zero when any decision differs from the expectation.

``--recorded DIR`` adds what local stacks recorded (``LocalStack(record_calls=DIR)`` or
``JWKS_ROTATOR_RECORD_CALLS=DIR``: the integration tests and the soaks, one file per stack,
:mod:`tests.privilege.recorded`): every distinct call of every file is decided against **that file's own
deployment** (its translated template, parameters, physical ids and role ARNs), and so is the written list.
The matrix shows, per role and action, how many distinct calls were recorded and how they were decided;
any recorded call not allowed is printed in full with the file it came from and fails the check.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwks_rotator.core.lifecycle.kms_custody import key_policy
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.call_record import RecordedCall
from tests.privilege.evaluator import Decision, evaluate
from tests.privilege.policies import Deployment, Physical, Policies, Resolver, extract, load_template, merged, with_replicas
from tests.privilege.recorded import RecordedRun, describe_sources, load_directory
from tests.privilege.regions import region_pair, region_rows, totals
from tests.privilege.rows import _BASE_KEYS, ADMINISTRATOR, BREAK_GLASS_ROLE, NO_POLICY, OTHER_ROLE, Row, _case, _role_name
from tests.privilege.scenario import Recording, record_lifecycle

NO_CALL_NEEDS_PERMISSION = {"sts:GetCallerIdentity"}  # AWS answers it for any valid credentials


def recorded_rows(recording: Recording, policies: Policies) -> list[Row]:
    """(a) every distinct call the two roles made, each expected allowed."""
    rows: dict[tuple[Any, ...], Row] = {}
    deployment = recording.deployment
    for call in recording.calls:
        if call.action in NO_CALL_NEEDS_PERMISSION:
            continue
        role_arn = call.principal
        context = {k: v for k, v in call.context.items() if k not in _BASE_KEYS}
        if "kms:EncryptionContext:SecretVersionId" in context:  # one row per secret, not per version written
            context.pop("kms:EncryptionContext:SecretVersionId")
        if "secretsmanager:VersionId" in context:
            context.pop("secretsmanager:VersionId")
        key = (role_arn, call.action, call.resource, tuple(sorted((k, str(v)) for k, v in context.items())), call.via,
               call.resource_policy)
        if key in rows:
            continue
        via = f" (for {call.via})" if call.via else ""
        # A KMS key the rotator made at run time (KMS custody) is judged by its policy as it stood at the call.
        runtime_policy = json.loads(call.resource_policy) if call.resource_policy else None
        case = _case(policies, deployment, f"recorded-{len(rows)}", role_arn if role_arn.startswith("arn:") else None,
                     call.action, call.resource, context, principal=None if role_arn.startswith("arn:") else role_arn,
                     resource_policy=runtime_policy)
        short = {deployment.role_arn("RotateFunctionRole"): "rotate", deployment.role_arn("SignFunctionRole"): "sign"}
        rows[key] = Row(case, "allow", f"recorded{via}", short.get(role_arn, _role_name(role_arn)))
    return list(rows.values())


def written_rows(deployment: Deployment, policies: Policies, *, break_glass: bool) -> list[Row]:
    """(b) the calls that must be denied, and (c) the few that must stay allowed besides the recorded ones."""
    sign, rotate = deployment.role_arn("SignFunctionRole"), deployment.role_arn("RotateFunctionRole")
    keyring, signing = deployment.resources["KeyringSecret"].ref, deployment.resources["SigningKeySecret"].ref
    key = deployment.resources["KeyringKey"].attributes["Arn"]
    bucket = deployment.resources["JwksBucket"].ref
    jwks = f"arn:aws:s3:::{bucket}/.well-known/jwks.json"
    record = f"arn:aws:s3:::{bucket}/revocations/revoked-kids.json"
    via_sm = {"kms:ViaService": f"secretsmanager.{deployment.region}.amazonaws.com", "kms:CallerAccount": deployment.account}
    current = {"secretsmanager:VersionStage": ["AWSCURRENT"]}
    other_secret = f"arn:aws:secretsmanager:{deployment.region}:{deployment.account}:secret:another-app-secret-Zz9Yy8"
    distribution = deployment.resources["Distribution"].ref
    custody_key = f"arn:aws:kms:{deployment.region}:{deployment.account}:key/00000000-aaaa-bbbb-cccc-000000000001"
    # The policies the rotator gives the KMS keys it creates (KMS custody): an active key's, and a pending key's.
    kms_settings = Settings.from_mapping({"issuer": "https://issuer.example.com", "algorithm": "ES256", "key_custody": "kms",
                                          "kms_stack_tag": deployment.stack, "kms_sign_role_arn": sign, "kms_rotate_role_arn": rotate})
    custody = json.loads(key_policy(kms_settings, "ES256", signer=True))
    custody_pending = json.loads(key_policy(kms_settings, "ES256", signer=False))
    signs = {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "RAW"}
    bucket_arn = f"arn:aws:s3:::{bucket}"
    via_cloudformation = {"aws:CalledVia": ["cloudformation.amazonaws.com"]}
    # Another application's KMS key with the default key policy (the account's IAM policies decide), and the
    # tagging the rotator does at CreateKey, aimed at it: the stack tag that ManageOnlyStackTaggedKeys trusts.
    foreign_key = f"arn:aws:kms:{deployment.region}:{deployment.account}:key/00000000-dddd-eeee-ffff-000000000009"
    default_key_policy = {"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                          "Principal": {"AWS": f"arn:aws:iam::{deployment.account}:root"}, "Action": "kms:*", "Resource": "*"}]}
    stack_tag = {"aws:RequestTag/jwks-rotator:stack": deployment.stack, "aws:TagKeys": ["jwks-rotator:stack"]}
    signing_key = {**stack_tag, "kms:KeySpec": "ECC_NIST_P256", "kms:KeyUsage": "SIGN_VERIFY", "kms:KeyOrigin": "AWS_KMS"}
    c = lambda *a, **k: _case(policies, deployment, *a, **k)  # noqa: E731
    manage_secret = [
        Row(c(f"admin-{action.rsplit(':', 1)[1].lower()}-{name}", OTHER_ROLE, action, arn, identity=ADMINISTRATOR), "deny",
            f"another principal (AdministratorAccess) calling {action.rsplit(':', 1)[1]} on the {name} secret", "some-admin")
        for name, arn in (("keyring", keyring), ("signing", signing))
        for action in ("secretsmanager:UpdateSecret", "secretsmanager:DeleteSecret", "secretsmanager:PutResourcePolicy",
                       "secretsmanager:DeleteResourcePolicy")
    ]
    rows = [
        *manage_secret,
        Row(c("cloudformation-updates-keyring", OTHER_ROLE, "secretsmanager:UpdateSecret", keyring, via_cloudformation,
              identity=ADMINISTRATOR), "allow", "the deploying principal updating the keyring through CloudFormation", "some-admin"),
        Row(c("cloudformation-puts-signing-policy", OTHER_ROLE, "secretsmanager:PutResourcePolicy", signing, via_cloudformation,
              identity=ADMINISTRATOR), "allow", "the deploying principal replacing a secret policy through CloudFormation", "some-admin"),
        Row(c("admin-puts-bucket-policy", OTHER_ROLE, "s3:PutBucketPolicy", bucket_arn, identity=ADMINISTRATOR), "deny",
            "another principal replacing the bucket policy", "some-admin"),
        Row(c("admin-puts-lifecycle", OTHER_ROLE, "s3:PutLifecycleConfiguration", bucket_arn, identity=ADMINISTRATOR), "deny",
            "another principal changing the document history's lifecycle", "some-admin"),
        Row(c("admin-deletes-bucket-policy", OTHER_ROLE, "s3:DeleteBucketPolicy", bucket_arn, identity=ADMINISTRATOR), "deny",
            "another principal deleting the bucket policy", "some-admin"),
        Row(c("cloudformation-puts-bucket-policy", OTHER_ROLE, "s3:PutBucketPolicy", bucket_arn, via_cloudformation, identity=ADMINISTRATOR),
            "allow", "the deploying principal replacing the bucket policy through CloudFormation", "some-admin"),
        Row(c("rotate-tags-foreign-key", rotate, "kms:TagResource", foreign_key, stack_tag, resource_policy=default_key_policy), "deny",
            "the rotate role giving the stack tag to a key of the account without it", "rotate"),
        Row(c("rotate-tags-other-stack-key", rotate, "kms:TagResource", foreign_key,
              {**stack_tag, "aws:ResourceTag/jwks-rotator:stack": "another-stack"}, resource_policy=default_key_policy), "deny",
            "the rotate role re-tagging another stack's key", "rotate"),
        Row(c("rotate-manages-foreign-key", rotate, "kms:PutKeyPolicy", foreign_key, resource_policy=default_key_policy), "deny",
            "the rotate role replacing the policy of a key without the stack tag", "rotate"),
        Row(c("rotate-creates-signing-key", rotate, "kms:CreateKey", "*", signing_key), "allow",
            "the rotate role creating a stack-tagged signing key in KMS", "rotate"),
        Row(c("rotate-creates-external-key", rotate, "kms:CreateKey", "*", {**signing_key, "kms:KeyOrigin": "EXTERNAL"}), "deny",
            "the rotate role creating a key for imported material (Origin EXTERNAL)", "rotate"),
        Row(c("rotate-creates-encryption-key", rotate, "kms:CreateKey", "*",
              {**signing_key, "kms:KeyUsage": "ENCRYPT_DECRYPT", "kms:KeySpec": "SYMMETRIC_DEFAULT"}), "deny",
            "the rotate role creating an encryption key", "rotate"),
        Row(c("rotate-creates-hmac-key", rotate, "kms:CreateKey", "*", {**signing_key, "kms:KeyUsage": "GENERATE_VERIFY_MAC",
              "kms:KeySpec": "HMAC_256"}), "deny", "the rotate role creating an HMAC key", "rotate"),

        Row(c("sign-writes-signing", sign, "secretsmanager:PutSecretValue", signing), "deny", "the sign role writing its secret", "sign"),
        Row(c("sign-stages-signing", sign, "secretsmanager:UpdateSecretVersionStage", signing, {"secretsmanager:VersionStage": "AWSCURRENT"}),
            "deny", "the sign role moving AWSCURRENT (a restore)", "sign"),
        Row(c("sign-reads-previous", sign, "secretsmanager:GetSecretValue", signing, {"secretsmanager:VersionStage": ["AWSPREVIOUS"]}),
            "deny", "the sign role reading a non-current version", "sign"),
        Row(c("sign-reads-pending-write", sign, "secretsmanager:GetSecretValue", signing, {"secretsmanager:VersionStage": ["JWKSROTATOR_STAGED"]}),
            "deny", "the sign role reading a staged (not yet current) write", "sign"),
        Row(c("sign-reads-keyring", sign, "secretsmanager:GetSecretValue", keyring, current), "deny",
            "the sign role reading the keyring (pending and retired private keys)", "sign"),
        Row(c("sign-decrypts-keyring", sign, "kms:Decrypt", key, {**via_sm, "kms:EncryptionContext:SecretARN": keyring}), "deny",
            "the sign role decrypting the keyring through Secrets Manager", "sign"),
        Row(c("sign-reads-bucket", sign, "s3:GetObject", jwks), "deny", "the sign role reading the bucket", "sign"),
        Row(c("sign-writes-bucket", sign, "s3:PutObject", jwks), "deny", "the sign role writing the bucket", "sign"),
        Row(c("sign-invalidates", sign, "cloudfront:CreateInvalidation", f"arn:aws:cloudfront::{deployment.account}:distribution/{distribution}"),
            "deny", "the sign role invalidating the distribution", "sign"),
        Row(c("rotate-reads-other-secret", rotate, "secretsmanager:GetSecretValue", other_secret, current, resource_policy=NO_POLICY),
            "deny", "the rotate role reading another secret", "rotate"),
        Row(c("rotate-writes-http", rotate, "s3:PutObject", jwks, {"aws:SecureTransport": "false"}), "deny",
            "the rotate role writing over plain HTTP", "rotate"),
        Row(c("admin-writes-bucket", OTHER_ROLE, "s3:PutObject", jwks, identity=ADMINISTRATOR), "deny",
            "another principal (AdministratorAccess) writing the bucket", "some-admin"),
        Row(c("admin-deletes-document", OTHER_ROLE, "s3:DeleteObject", jwks, identity=ADMINISTRATOR), "deny",
            "another principal deleting a document", "some-admin"),
        Row(c("admin-writes-keyring", OTHER_ROLE, "secretsmanager:PutSecretValue", keyring, identity=ADMINISTRATOR), "deny",
            "another principal writing the keyring", "some-admin"),
        Row(c("admin-restores-keyring", OTHER_ROLE, "secretsmanager:UpdateSecretVersionStage", keyring,
              {"secretsmanager:VersionStage": "AWSCURRENT"}, identity=ADMINISTRATOR), "deny", "another principal restoring the keyring", "some-admin"),
        Row(c("admin-writes-signing", OTHER_ROLE, "secretsmanager:PutSecretValue", signing, identity=ADMINISTRATOR), "deny",
            "another principal writing the signing view", "some-admin"),
        Row(c("admin-reads-keyring", OTHER_ROLE, "secretsmanager:GetSecretValue", keyring, current, identity=ADMINISTRATOR), "deny",
            "another principal reading the keyring", "some-admin"),
        Row(c("admin-decrypts", OTHER_ROLE, "kms:Decrypt", key, {**via_sm, "kms:EncryptionContext:SecretARN": keyring}, identity=ADMINISTRATOR),
            "deny", "another principal using the keyring key", "some-admin"),
        Row(c("admin-signs-custody", OTHER_ROLE, "kms:Sign", custody_key, signs, identity=ADMINISTRATOR, resource_policy=custody), "deny",
            "another principal signing with a custody key", "some-admin"),
        Row(c("rotate-signs-custody", rotate, "kms:Sign", custody_key, signs, resource_policy=custody), "deny",
            "the rotate role signing with a custody key", "rotate"),
        Row(c("sign-signs-custody", sign, "kms:Sign", custody_key, signs, resource_policy=custody), "allow",
            "the sign role signing with the active custody key", "sign"),
        Row(c("sign-signs-pending-custody", sign, "kms:Sign", custody_key, signs, resource_policy=custody_pending), "deny",
            "the sign role signing with a pending custody key", "sign"),
        Row(c("sign-signs-custody-other-alg", sign, "kms:Sign", custody_key, {**signs, "kms:SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"},
              resource_policy=custody), "deny", "the sign role signing with another algorithm", "sign"),
        Row(c("rotate-reads-custody-public", rotate, "kms:GetPublicKey", custody_key, resource_policy=custody), "allow",
            "the rotate role publishing a custody key's public half", "rotate"),
        Row(c("admin-puts-custody-policy", OTHER_ROLE, "kms:PutKeyPolicy", custody_key, identity=ADMINISTRATOR, resource_policy=custody),
            "deny", "an administrator rewriting a custody key's policy to give itself kms:Sign", "some-admin"),
        Row(c("admin-grants-custody", OTHER_ROLE, "kms:CreateGrant", custody_key, identity=ADMINISTRATOR, resource_policy=custody),
            "deny", "an administrator granting itself kms:Sign on a custody key", "some-admin"),
        Row(c("admin-enables-custody", OTHER_ROLE, "kms:EnableKey", custody_key, identity=ADMINISTRATOR, resource_policy=custody_pending),
            "deny", "an administrator enabling a retired or pending custody key", "some-admin"),
        Row(c("rotate-puts-custody-policy", rotate, "kms:PutKeyPolicy", custody_key, resource_policy=custody),
            "allow", "the rotate role re-policying its key (KMS's lockout check needs the creator to keep it)", "rotate"),
        Row(c("admin-schedules-custody-deletion", OTHER_ROLE, "kms:ScheduleKeyDeletion", custody_key, identity=ADMINISTRATOR, resource_policy=custody),
            "allow", "an administrator can still manage a custody key (no lockout)", "some-admin"),
        Row(c("admin-describes-key", OTHER_ROLE, "kms:DescribeKey", key, identity=ADMINISTRATOR), "allow",
            "an administrator can still manage the keyring key (no lockout)", "some-admin"),
        Row(c("admin-writes-revocation-record", OTHER_ROLE, "s3:PutObject", record, identity=ADMINISTRATOR), "deny",
            "another principal (AdministratorAccess) overwriting the revocation record", "some-admin"),
        Row(c("admin-deletes-revocation-record", OTHER_ROLE, "s3:DeleteObject", record, identity=ADMINISTRATOR), "deny",
            "another principal (AdministratorAccess) erasing the revocation record", "some-admin"),
        Row(c("admin-deletes-revocation-record-version", OTHER_ROLE, "s3:DeleteObjectVersion", record, identity=ADMINISTRATOR), "deny",
            "another principal (AdministratorAccess) erasing a version of the revocation record", "some-admin"),
        Row(c("admin-writes-tick-ledger", OTHER_ROLE, "s3:PutObject", f"arn:aws:s3:::{bucket}/state/last-tick.json", identity=ADMINISTRATOR),
            "deny", "another principal (AdministratorAccess) faking a recent tick so that ticks skip", "some-admin"),
        Row(c("sign-writes-revocation-record", sign, "s3:PutObject", record), "deny", "the sign role writing the revocation record", "sign"),
        Row(c("sign-reads-revocation-record", sign, "s3:GetObject", record), "allow", "the sign role reading the revocation record", "sign"),
        Row(c("rotate-deletes-revocation-record", rotate, "s3:DeleteObject", record), "deny", "the rotate role erasing the revocation record", "rotate"),
        Row(_case(policies, deployment, "cloudfront-reads-revocation-record", None, "s3:GetObject", record,
                  {"aws:SourceArn": f"arn:aws:cloudfront::{deployment.account}:distribution/{distribution}"},
                  principal="cloudfront.amazonaws.com", identity=[]), "deny", "CloudFront (OAC) serving the revocation record", "cloudfront"),
        Row(_case(policies, deployment, "cloudfront-reads", None, "s3:GetObject", jwks,
                  {"aws:SourceArn": f"arn:aws:cloudfront::{deployment.account}:distribution/{distribution}"},
                  principal="cloudfront.amazonaws.com", identity=[]), "allow", "CloudFront (OAC) reading the documents", "cloudfront"),
    ]
    if break_glass:
        rows += [
            Row(c("break-glass-reads-keyring", BREAK_GLASS_ROLE, "secretsmanager:GetSecretValue", keyring, current, identity=ADMINISTRATOR),
                "allow", "the break-glass role reading the keyring", "break-glass"),
            Row(c("break-glass-restores-keyring", BREAK_GLASS_ROLE, "secretsmanager:UpdateSecretVersionStage", keyring,
                  {"secretsmanager:VersionStage": "AWSCURRENT"}, identity=ADMINISTRATOR), "allow", "the break-glass role restoring the keyring", "break-glass"),
            Row(c("break-glass-decrypts", BREAK_GLASS_ROLE, "kms:Decrypt", key, {**via_sm, "kms:EncryptionContext:SecretARN": keyring},
                  identity=ADMINISTRATOR), "allow", "the break-glass role decrypting the keyring", "break-glass"),
            Row(c("break-glass-writes-bucket", BREAK_GLASS_ROLE, "s3:PutObject", jwks, identity=ADMINISTRATOR), "deny",
                "the break-glass role writing the bucket (only the rotate role writes)", "break-glass"),
            Row(c("break-glass-writes-revocation-record", BREAK_GLASS_ROLE, "s3:PutObject", record, identity=ADMINISTRATOR), "deny",
                "the break-glass role rewriting the revocation record (only the rotate role writes)", "break-glass"),
            Row(c("break-glass-puts-keyring-policy", BREAK_GLASS_ROLE, "secretsmanager:PutResourcePolicy", keyring, identity=ADMINISTRATOR),
                "allow", "the break-glass role repairing the keyring's policy", "break-glass"),
            Row(c("break-glass-puts-bucket-policy", BREAK_GLASS_ROLE, "s3:PutBucketPolicy", bucket_arn, identity=ADMINISTRATOR),
                "allow", "the break-glass role repairing the bucket policy", "break-glass"),
        ]
    return rows


def decide_regions(template: Mapping[str, Any]) -> list[tuple[str, Row, Decision]]:
    """Each region's roles of a two-region issuer (:mod:`tests.privilege.regions`), decided: (region, row, decision).

    The primary's stack with Regions also keeps every one-region guarantee: the written list is decided against it too.
    """
    pair = region_pair(template)
    one_region = [(pair.primary.region, _renamed(row, f"primary-{row.case.id}"))
                  for row in written_rows(pair.primary, pair.policies, break_glass=False)]
    tagged = one_region + region_rows(pair)
    decisions = evaluate([row.case for _, row in tagged])
    return [(region, row, decisions[row.case.id]) for region, row in tagged]


def render_regions(results: Sequence[tuple[str, Row, Decision]]) -> str:
    """The per-region matrix, then each region's totals (the primary's first)."""
    lines = [render(f"Region {region}:", [(row, decision) for r, row, decision in results if r == region])
             for region in dict.fromkeys(region for region, _, _ in results)]
    for region, (count, good) in totals(results).items():
        lines.append(f"region {region}: {count} decisions, {good} as expected")
    return "\n".join(lines)


def decide(rows: Sequence[Row]) -> list[tuple[Row, Decision]]:
    decisions = evaluate([row.case for row in rows])
    return [(row, decisions[row.case.id]) for row in rows]


def failures(results: Sequence[tuple[Row, Decision]]) -> list[tuple[Row, Decision]]:
    return [(row, d) for row, d in results if d.allowed != (row.expected == "allow") or d.decision == "Error"]


def render(title: str, results: Sequence[tuple[Row, Decision]]) -> str:
    lines = [title, f"{'':3}{'principal':<12} {'action':<40} {'resource':<58} {'expect':<6} {'decision':<17} reason"]
    for row, decision in results:
        ok = "ok" if (decision.allowed == (row.expected == "allow") and decision.decision != "Error") else "!!"
        resource = row.case.resource if len(row.case.resource) <= 58 else "…" + row.case.resource[-57:]
        lines.append(f"{ok:<3}{row.role:<12} {row.case.action:<40} {resource:<58} {row.expected:<6} {decision.decision:<17} "
                     f"{row.why}; {decision.reason}")
    return "\n".join(lines)


def load_recording(calls: Path, mapping: Path) -> Recording:
    """Calls another run recorded (``call_record.calls_as_json``: one JSON object a line) and the deployment they ran
    against (``{"stack", "account", "region", "resources": {logical: {"ref", "attributes"}}}``: what a local stack
    deployed from the template reports), e.g. the integration tests' or the soak's."""
    described = json.loads(mapping.read_text(encoding="utf-8"))
    deployment = Deployment(described["stack"], described["account"], described["region"], {
        logical: Physical(r["ref"], r.get("attributes", {})) for logical, r in described["resources"].items()})
    recorded = []
    for line in calls.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            context = {k: tuple(v) if isinstance(v, list) else v for k, v in row["context"].items()}
            recorded.append(RecordedCall(row["principal"], row["action"], row["resource"], context, row.get("via", ""),
                                         resource_policy=row.get("resource_policy", "")))
    return Recording(recorded, [], deployment)


@dataclass(frozen=True)
class RecordedResults:
    """The decisions on the recorded runs: each row with the run it came from."""

    recorded: list[tuple[RecordedRun, Row, Decision]]
    written: list[tuple[RecordedRun, Row, Decision]]

    def recorded_failures(self) -> list[tuple[RecordedRun, Row, Decision]]:
        return [(run, row, d) for run, row, d in self.recorded if failures([(row, d)])]

    def written_failures(self) -> list[tuple[RecordedRun, Row, Decision]]:
        return [(run, row, d) for run, row, d in self.written if failures([(row, d)])]

    def failures(self) -> list[tuple[RecordedRun, Row, Decision]]:
        return self.recorded_failures() + self.written_failures()


def _renamed(row: Row, case_id: str) -> Row:
    return dataclasses.replace(row, case=dataclasses.replace(row.case, id=case_id))


def is_secondary(template: Mapping[str, Any], deployment: Deployment) -> bool:
    """A secondary region's stack: no keyring secret, no distribution of its own (the template's IsPrimary is false)."""
    return "IsPrimary" in template.get("Conditions", {}) and not Resolver(template, deployment).condition("IsPrimary")


def account_policies(runs: Sequence[RecordedRun]) -> list[Policies]:
    """Each run's policies as its account holds them: a stack recorded in several regions (a stack per region, same name
    and account) is judged against every region's stack together, the primary's secret policies on the replicas too
    (Secrets Manager replicates them); a stack recorded in one region against its own policies alone, as before."""
    own = [extract(run.template, run.recording.deployment) for run in runs]
    groups: dict[tuple[str, str, str], list[int]] = {}
    for index, run in enumerate(runs):
        d = run.recording.deployment
        groups.setdefault((d.partition, d.account, d.stack), []).append(index)
    result = list(own)
    for members in groups.values():
        regions = {runs[i].recording.deployment.region for i in members}
        if len(regions) < 2:
            continue
        together = merged(*(with_replicas(own[i], regions - {runs[i].recording.deployment.region}) for i in members))
        for i in members:
            result[i] = together
    return result


def decide_recorded(runs: Sequence[RecordedRun]) -> RecordedResults:
    """Every distinct recorded call of each run (expected allowed) and the written list, against the run's own
    deployment (with the other regions' stacks of the same name: :func:`account_policies`); all in one evaluator
    process. A secondary region's stack (no keyring secret of its own) gets no written list here: the per-region list
    (:mod:`tests.privilege.regions`) covers it."""
    tagged: list[tuple[RecordedRun, Row, bool]] = []
    for index, (run, policies) in enumerate(zip(runs, account_policies(runs), strict=True)):
        deployment = run.recording.deployment
        tagged.extend((run, _renamed(row, f"run{index}-{row.case.id}"), True) for row in recorded_rows(run.recording, policies))
        if is_secondary(run.template, deployment):
            continue
        glass = bool(deployment.parameters.get("BreakGlassRoleArn"))
        tagged.extend((run, _renamed(row, f"run{index}-written-{row.case.id}"), False)
                      for row in written_rows(deployment, policies, break_glass=glass))
    decisions = evaluate([row.case for _, row, _ in tagged]) if tagged else {}
    recorded = [(run, row, decisions[row.case.id]) for run, row, mine in tagged if mine]
    written = [(run, row, decisions[row.case.id]) for run, row, mine in tagged if not mine]
    return RecordedResults(recorded, written)


def render_recorded(runs: Sequence[RecordedRun], results: RecordedResults) -> str:
    """Distinct recorded calls per role and action, with their decisions; then every call not as expected."""
    requests = sum(run.requests for run in runs)
    left_out = sum(run.left_out for run in runs)
    sources = sum(len(run.sources) for run in runs)
    by_role_action: dict[tuple[str, str], Counter[str]] = {}
    for _, row, decision in results.recorded:
        by_role_action.setdefault((row.role, row.case.action), Counter())[decision.decision] += 1
    lines = [(f"Recorded by local stacks: {sources} files, {len(runs)} distinct deployments, {requests} function requests "
              f"({left_out} harness requests left out), {len(results.recorded)} distinct calls; each must be allowed:"),
             f"{'':3}{'role':<12} {'action':<40} {'calls':>5}  decisions"]
    for (role, action), decisions in sorted(by_role_action.items()):
        ok = "ok" if set(decisions) == {"Allowed"} else "!!"
        lines.append(f"{ok:<3}{role:<12} {action:<40} {sum(decisions.values()):>5}  "
                     + ", ".join(f"{name} {n}" for name, n in sorted(decisions.items())))
    written_ok = len(results.written) - len(results.written_failures())
    lines.append(f"Written list against each recorded deployment: {len(results.written)} decisions, {written_ok} as listed")
    for run, row, decision in results.failures():
        call = row.case
        context = {k: v for k, v in call.context.items() if k not in _BASE_KEYS}
        lines.append(f"!! {row.role} {call.action} on {call.resource} {json.dumps(context, sort_keys=True)}: expected {row.expected}, "
                     f"{decision.decision} ({row.why}; {decision.reason}) [{describe_sources(run.sources)}]")
    unparsed = [f"{u} [{describe_sources(run.sources)}]" for run in runs for u in run.recording.unparsed]
    if unparsed:
        lines.append("requests of the functions the recorder could not read: " + ", ".join(unparsed))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=Path, help="recorded calls (JSON lines) instead of recording the built-in lifecycle")
    parser.add_argument("--mapping", type=Path, help="the deployment those calls ran against (with --calls)")
    parser.add_argument("--recorded", type=Path, action="append", default=[],
                        help="a directory of local stacks' recordings (JWKS_ROTATOR_RECORD_CALLS), each decided against its own "
                             "deployment, besides the built-in lifecycle (repeatable)")
    parser.add_argument("--require-recorded", action="store_true", help="fail when the --recorded directories hold no recording")
    args = parser.parse_args(argv)
    template = load_template()
    if (args.calls is None) != (args.mapping is None):
        parser.error("--calls and --mapping go together")
    recording = load_recording(args.calls, args.mapping) if args.calls else record_lifecycle(template)
    policies = extract(template, recording.deployment)
    recorded = decide(recorded_rows(recording, policies))
    glass = Deployment(recording.deployment.stack, recording.deployment.account, recording.deployment.region,
                       recording.deployment.resources, {"BreakGlassRoleArn": BREAK_GLASS_ROLE})
    written = decide(written_rows(recording.deployment, policies, break_glass=False))
    written_glass = decide(written_rows(glass, extract(template, glass), break_glass=True))
    print(render(f"Recorded calls ({len(recording.calls)} requests, {len(recorded)} distinct), each must be allowed:", recorded))
    print(render("Written calls (BreakGlassRoleArn empty):", written))
    print(render(f"Written calls (BreakGlassRoleArn = {BREAK_GLASS_ROLE}):", written_glass))
    if recording.unparsed:
        print("requests the recorder could not read: " + ", ".join(recording.unparsed))
    regional = decide_regions(template)
    print(render_regions(regional))
    bad = failures(recorded) + failures(written) + failures(written_glass) + failures([(row, d) for _, row, d in regional])
    total = len(recorded) + len(written) + len(written_glass) + len(regional)
    runs = [run for directory in args.recorded for run in load_directory(directory)]
    recorded_unparsed = any(run.recording.unparsed for run in runs)
    if args.recorded:
        results = decide_recorded(runs)
        print(render_recorded(runs, results))
        total += len(results.recorded) + len(results.written)
        bad_count = len(bad) + len(results.failures())
    else:
        bad_count = len(bad)
    print(f"{total - bad_count} as expected, {bad_count} not")
    if args.require_recorded and not runs:
        print("no recordings in " + ", ".join(map(str, args.recorded)) + " (was JWKS_ROTATOR_RECORD_CALLS set for the tests?)")
        return 1
    return 1 if bad_count or recording.unparsed or recorded_unparsed else 0


if __name__ == "__main__":
    sys.exit(main())
