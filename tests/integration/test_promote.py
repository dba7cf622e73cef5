"""promote over moto in two regions: the rotate handlers of us-east-1 (the primary) and eu-west-1, with real replica
secrets, two buckets, operator proofs checked by the local STS, and the local cloud's regional outage in front.

What moto lacks is said where it matters: StopReplicationToReplica is emulated in-process
(jwks_rotator_local.moto_gaps); moto replicates at once, so a replica behind the documents is shown by an origin
ahead of it; in this branch the primary's publisher writes its own bucket, so the second origin's copy (what
the publisher to every origin writes) is made by the test with the same metadata.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from jwks_rotator.core.errors import WriterSupersededError
from jwks_rotator.core.keys.keyring import EMPTY_KEYRING_JSON, Keyring
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator_local.faults import RegionFaults
from jwks_rotator_local.front import AwsFront
from jwks_rotator_local.functions import load_function_module
from jwks_rotator_local.sts_verifier import LocalStsVerifier
from jwks_rotator_testkit.callers import Caller, moto_role_session
from jwks_rotator_testkit.moto import aws_client

pytestmark = pytest.mark.integration
A, B = "us-east-1", "eu-west-1"
ROTATE_FUNCTION = "RotateFunction"
OPERATOR_ROLE = "jwks-rotator-promote-operator"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cloud:
    """moto behind the local cloud's AWS front (regional outages), and the local STS serving both regions."""

    moto: str
    front: AwsFront
    faults: RegionFaults
    sts: str

    @property
    def url(self) -> str:
        return self.front.url

    def client(self, service: str, region: str) -> Any:
        return aws_client(service, self.moto, region=region)  # the test's own reads: never through an outage


@pytest.fixture(scope="module")
def cloud(moto_endpoint: str) -> Iterator[Cloud]:
    faults = RegionFaults()
    front = AwsFront(moto_endpoint, moto_endpoint, faults=faults)
    front.start()
    sts = LocalStsVerifier(moto_endpoint, region=A, regions=(B,))
    try:
        yield Cloud(moto_endpoint, front, faults, sts.start())
    finally:
        sts.stop()
        front.stop()


@pytest.fixture(scope="module")
def operator(moto_endpoint: str) -> Caller:
    return moto_role_session(moto_endpoint, OPERATOR_ROLE, session="alice")


@pytest.fixture(scope="module")
def stranger(moto_endpoint: str) -> Caller:
    return moto_role_session(moto_endpoint, "orders-service", session="bob")


@dataclass
class Region:
    """One region's stack: its rotate handler (a cold copy of its own) and the environment it runs with."""

    name: str
    env: dict[str, str]
    handler: ModuleType
    cloud: Cloud
    audit: io.StringIO = field(default_factory=io.StringIO)

    @contextmanager
    def running(self) -> Iterator[None]:
        with mock.patch.dict(os.environ, self.env):
            yield

    def context(self) -> SimpleNamespace:
        return SimpleNamespace(function_name=ROTATE_FUNCTION, memory_limit_in_mb=256, function_version="$LATEST",
                               invoked_function_arn=f"arn:aws:lambda:{self.name}:123456789012:function:{ROTATE_FUNCTION}",
                               aws_request_id="test-request")

    def invoke(self, body: dict[str, Any], caller: Caller | None = None) -> dict[str, Any]:
        event = caller.operator_event(body, sts_endpoint_url=self.cloud.sts, signer=ROTATE_FUNCTION, region=self.name) if caller else body
        with self.running():
            result: dict[str, Any] = self.handler.handler(event, self.context())
            return result

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.getvalue().splitlines()]


@dataclass
class Stacks:
    cloud: Cloud
    primary: Region
    secondary: Region
    keyring_arn: str
    signing_arn: str
    buckets: dict[str, str]

    def secret(self, region: str, arn: str | None = None) -> dict[str, Any]:
        """DescribeSecret of the keyring (or ``arn``'s) secret in ``region``."""
        arn = (arn or self.keyring_arn).replace(f":{A}:", f":{region}:")
        return dict(self.cloud.client("secretsmanager", region).describe_secret(SecretId=arn))

    def keyring(self, region: str) -> Keyring:
        arn = self.keyring_arn.replace(f":{A}:", f":{region}:")
        current = self.cloud.client("secretsmanager", region).get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
        return Keyring.from_json(current["SecretString"])

    def jwks_head(self, region: str) -> dict[str, Any]:
        return dict(self.cloud.client("s3", region).head_object(Bucket=self.buckets[region], Key=JWKS_PATH))

    def copy_to_second_origin(self, generation: int | None = None) -> None:
        """What the publisher to every origin writes to the second bucket: the primary's objects and metadata."""
        s3 = self.cloud.client("s3", A)
        for item in s3.list_objects_v2(Bucket=self.buckets[A]).get("Contents", []):
            head = s3.head_object(Bucket=self.buckets[A], Key=item["Key"])
            metadata = dict(head["Metadata"])
            if generation is not None and "keyring-generation" in metadata:
                metadata["keyring-generation"] = str(generation)
            body = s3.get_object(Bucket=self.buckets[A], Key=item["Key"])["Body"].read()
            self.cloud.client("s3", B).put_object(Bucket=self.buckets[B], Key=item["Key"], Body=body, ContentType=head["ContentType"],
                                                  CacheControl=head["CacheControl"], Metadata=metadata)

    def state_of_primary(self) -> tuple[Any, ...]:
        """Everything the old primary could write: its keyring and signing view versions, its bucket, its revocation list."""
        sm = self.cloud.client("secretsmanager", A)
        s3 = self.cloud.client("s3", A)
        objects = sorted((o["Key"], o["ETag"]) for o in s3.list_objects_v2(Bucket=self.buckets[A]).get("Contents", []))
        parameter = self.cloud.client("ssm", A).get_parameter(Name=self.primary.env["REVOCATION_PARAMETER"])["Parameter"]["Version"]
        return (sm.get_secret_value(SecretId=self.keyring_arn, VersionStage="AWSCURRENT")["VersionId"],
                sm.get_secret_value(SecretId=self.signing_arn, VersionStage="AWSCURRENT")["VersionId"], objects, parameter)


@pytest.fixture
def stacks(cloud: Cloud) -> Stacks:
    """A primary in us-east-1 whose keyring and signing view secrets replicate to eu-west-1, a bucket in each region."""
    tag = uuid.uuid4().hex[:10]
    sm = cloud.client("secretsmanager", A)
    replicas = [{"Region": B}]
    keyring_arn = sm.create_secret(Name=f"promote-{tag}-keyring", SecretString=EMPTY_KEYRING_JSON, AddReplicaRegions=replicas)["ARN"]
    signing_arn = sm.create_secret(Name=f"promote-{tag}-signing-key", SecretString=EMPTY_KEYRING_JSON, AddReplicaRegions=replicas)["ARN"]
    buckets = {A: f"promote-{tag}-{A}", B: f"promote-{tag}-{B}"}
    cloud.client("s3", A).create_bucket(Bucket=buckets[A])
    cloud.client("s3", B).create_bucket(Bucket=buckets[B], CreateBucketConfiguration={"LocationConstraint": B})
    parameter = f"/jwks-rotator/promote-{tag}/revoked-kids"
    for region in (A, B):
        cloud.client("ssm", region).put_parameter(Name=parameter, Value="[]", Type="String")
    common = {
        "AWS_ENDPOINT_URL": cloud.url, "STS_ENDPOINT_URL": cloud.sts, "ISSUER": "https://issuer.example.com", "ALGORITHM": "ES256",
        "OPERATOR_ROLES": f"arn:aws:iam::123456789012:role/{OPERATOR_ROLE}", "PRIMARY_REGION": A, "REGIONS": f"{A},{B}",
        "REVOCATION_PARAMETER": parameter, "DISTRIBUTION_ID": "",
    }

    def region(name: str, **env: str) -> Region:
        in_region = {**common, "AWS_REGION": name, "AWS_DEFAULT_REGION": name,
                     "KEYRING_SECRET_ID": keyring_arn.replace(f":{A}:", f":{name}:"),
                     "SIGNING_SECRET_ID": signing_arn.replace(f":{A}:", f":{name}:"), "JWKS_BUCKET": buckets[name], **env}
        module = load_function_module("rotate")
        made = Region(name, in_region, module, cloud)
        module.audit._stream = made.audit
        return made

    primary = region(A, SECOND_ORIGIN_BUCKET=buckets[B], SECOND_ORIGIN_REGION=B)
    secondary = region(B, SECOND_ORIGIN_BUCKET=buckets[A], SECOND_ORIGIN_REGION=A)  # the origin group's other origin
    return Stacks(cloud, primary, secondary, keyring_arn, signing_arn, buckets)


@contextmanager
def outage(cloud: Cloud, region: str) -> Iterator[None]:
    cloud.faults.start_outage(region)
    try:
        yield
    finally:
        cloud.faults.clear(region)


def running_primary(stacks: Stacks, operator: Caller) -> Keyring:
    """The primary bootstrapped (a key active and published) and both origins holding its documents."""
    assert stacks.primary.invoke({"operation": "rotate-now"}, operator)["active_kid"]
    stacks.copy_to_second_origin()
    keyring = stacks.keyring(B)
    assert keyring == stacks.keyring(A) and stacks.secret(B)["PrimaryRegion"] == A  # moto replicates at once
    return keyring


def test_promote_is_refused_without_an_operator_role(stacks: Stacks, operator: Caller, stranger: Caller) -> None:
    running_primary(stacks, operator)
    with outage(stacks.cloud, A):
        answer = stacks.secondary.invoke({"operation": "promote", "region": B}, stranger)
        unproven = stacks.secondary.invoke({"operation": "promote", "region": B})
    assert answer["error"] == "operator_not_allowed" and unproven["error"] == "unauthenticated"
    assert stacks.secret(B)["PrimaryRegion"] == A and stacks.keyring(B).primary_region is None
    assert [(line["decision"], line["error"]) for line in stacks.secondary.audit_lines()] == [
        ("refused", "operator_not_allowed"), ("refused", "unauthenticated")]


def test_promote_is_refused_with_a_replica_behind_the_documents(stacks: Stacks, operator: Caller) -> None:
    keyring = running_primary(stacks, operator)
    stacks.copy_to_second_origin(generation=keyring.generation + 5)  # what a lagging replica looks like from the origins
    with outage(stacks.cloud, A):
        answer = stacks.secondary.invoke({"operation": "promote", "region": B}, operator)
    assert answer["error"] == "replica_behind_publication", answer
    assert stacks.secret(B)["PrimaryRegion"] == A and stacks.keyring(B).primary_region is None
    (line,) = stacks.secondary.audit_lines()
    assert (line["decision"], line["error"], line["operation"], line["region"]) == ("refused", "replica_behind_publication", "promote", B)


def test_promote_runs_only_in_the_region_it_names(stacks: Stacks, operator: Caller) -> None:
    running_primary(stacks, operator)
    answer = stacks.primary.invoke({"operation": "promote", "region": B}, operator)
    assert answer["error"] == "promote_wrong_region"


def test_promote_with_the_primary_down_then_the_old_primary_writes_nothing(
    stacks: Stacks, operator: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    before = running_primary(stacks, operator)
    with outage(stacks.cloud, A):
        answer = stacks.secondary.invoke({"operation": "promote", "region": B}, operator)
        assert answer.get("error") is None, answer
        assert (answer["old_primary"], answer["old_primary_state"], answer["already_primary"], answer["publish_error"]) == (
            A, "unreachable", False, None)
        assert f"jwks-rotator --region {B} rotate" in answer["next_step"] and "enable" in answer["next_step"]  # not done for you
        assert answer["stopped_replication"] == ["signing view", "keyring"]
        generation = answer["generation"]
        assert generation > before.generation and answer["replica_generation"] == before.generation
        promoted = stacks.keyring(B)
        assert promoted.primary_region == B and promoted.generation == generation
        assert "PrimaryRegion" not in stacks.secret(B) or stacks.secret(B)["PrimaryRegion"] == B  # standalone now
        assert stacks.secret(B, stacks.signing_arn).get("PrimaryRegion") in (None, B)
        head = stacks.jwks_head(B)["Metadata"]
        assert head["writer-region"] == B and int(head["keyring-generation"]) >= before.generation
        (line,) = stacks.secondary.audit_lines()
        assert {k: line[k] for k in ("decision", "operation", "region", "old_primary", "new_primary", "generation", "caller")} == {
            "decision": "performed", "operation": "promote", "region": B, "old_primary": A, "new_primary": B,
            "generation": generation, "caller": operator.sts_arn}
        # The new writer rotates (its own signing view is writable now); the fresh key waits for every origin (A is out).
        rotated = stacks.secondary.invoke({"operation": "rotate-now"}, operator)
        assert rotated.get("error") is None, rotated
        assert len(stacks.keyring(B).keys) > len(before.keys) and stacks.keyring(B).primary_region == B
        again = stacks.secondary.invoke({"operation": "promote", "region": B}, operator)
        assert again["already_primary"] and again["old_primary_state"] == "already_primary" and again.get("error") is None
    # The old primary is back: it reads the other region's keyring and the origins, and writes nothing.
    untouched = stacks.state_of_primary()
    caplog.clear()
    for body in ({"operation": "tick"}, {"operation": "publish", "accept_restore": True}, {"operation": "rotate-now"}):
        with pytest.raises(WriterSupersededError):
            stacks.primary.invoke(body, operator)
        assert stacks.state_of_primary() == untouched
    with pytest.raises(WriterSupersededError):
        stacks.primary.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
    alarms = [r for r in caplog.records if r.levelname == "ERROR" and r.getMessage().startswith("writer superseded")]
    assert len(alarms) == 4 and {getattr(r, "reason", None) for r in alarms} == {"writer_superseded"}
    failed = [line for line in stacks.primary.audit_lines() if line["decision"] == "failed"]
    assert failed and {line["error"] for line in failed} == {"writer_superseded"}
    assert stacks.state_of_primary() == untouched


def test_promote_after_the_old_primary_stepped_down(stacks: Stacks, operator: Caller) -> None:
    running_primary(stacks, operator)
    refused = stacks.secondary.invoke({"operation": "promote", "region": B}, operator)
    assert refused["error"] == "old_primary_not_stepped_down"  # it answers and still writes
    stepped = stacks.primary.invoke({"operation": "step-down", "region": B}, operator)
    assert (stepped["old_primary"], stepped["new_primary"], stepped["already"]) == (A, B, False)
    assert stacks.keyring(A).primary_region == B == stacks.keyring(B).primary_region  # replicated to the target
    answer = stacks.secondary.invoke({"operation": "promote", "region": B}, operator)
    assert answer.get("error") is None and answer["old_primary_state"] == "stepped_down" and answer["generation"] > stepped["generation"]
    # Stepped down, its keyring names the new writer: an operation is refused, the schedule's tick is a quiet no-op.
    untouched = stacks.state_of_primary()
    assert stacks.primary.invoke({"operation": "tick"}, operator)["error"] == "not_primary_region"
    quiet = stacks.primary.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert quiet["skipped"] and quiet["reason"] == "not_primary_region" and stacks.state_of_primary() == untouched
    (line,) = [line for line in stacks.primary.audit_lines() if line["operation"] == "step-down"]
    assert (line["decision"], line["old_primary"], line["new_primary"]) == ("performed", A, B)


def test_a_kid_the_old_primary_revoked_during_a_partition_stays_revoked_under_the_new_writer(stacks: Stacks, operator: Caller) -> None:
    before = running_primary(stacks, operator)
    assert before.active is not None
    with outage(stacks.cloud, A):  # B cannot reach A: it promotes while A still runs (a split brain)
        assert stacks.secondary.invoke({"operation": "promote", "region": B}, operator).get("error") is None
    with outage(stacks.cloud, B):  # A cannot reach B either: its fence reads nothing newer, and it revokes
        revoked = stacks.primary.invoke({"operation": "revoke", "kid": before.active.kid}, operator)
        assert revoked.get("error") is None, revoked
    ssm_a = stacks.cloud.client("ssm", A)
    parameter = stacks.primary.env["REVOCATION_PARAMETER"]
    assert before.active.kid in json.loads(ssm_a.get_parameter(Name=parameter)["Parameter"]["Value"])
    assert before.active.kid in {key.kid for key in stacks.keyring(B).keys}  # B's standalone keyring still holds it
    ticked = stacks.secondary.invoke({"operation": "publish"}, operator)  # the new writer, both regions reachable
    assert ticked.get("error") is None, ticked
    assert before.active.kid not in {key.kid for key in stacks.keyring(B).keys}
    assert before.active.kid in stacks.keyring(B).revoked_kids()
    for region in (A, B):  # every list keeps it: the old primary's record was unioned into the writer's
        listed = json.loads(stacks.cloud.client("ssm", region).get_parameter(Name=parameter)["Parameter"]["Value"])
        assert before.active.kid in listed, (region, listed)
    for region in (A, B):
        jwks = json.loads(stacks.cloud.client("s3", region).get_object(Bucket=stacks.buckets[region], Key=JWKS_PATH)["Body"].read())
        assert before.active.kid not in {key["kid"] for key in jwks["keys"]}, region


def test_a_check_changes_nothing_and_a_step_down_is_undone_while_the_target_is_a_replica(stacks: Stacks, operator: Caller) -> None:
    running_primary(stacks, operator)
    untouched = stacks.state_of_primary()
    checked = stacks.secondary.invoke({"operation": "promote", "region": B, "check": True}, operator)
    assert checked.get("error") is None and checked["check"] and checked["old_primary_state"] == "answers", checked
    assert stacks.secret(B)["PrimaryRegion"] == A and stacks.state_of_primary() == untouched
    (line,) = stacks.secondary.audit_lines()
    assert (line["decision"], line["check"], line["known"]["probe"]["reachable"]) == ("performed", True, True)
    stepped = stacks.primary.invoke({"operation": "step-down", "region": B}, operator)
    assert stepped.get("error") is None and stacks.keyring(B).primary_region == B
    tick = stacks.secondary.invoke({"operation": "tick"})  # a replica naming B is no writer: an unproven tick does nothing
    assert tick.get("skipped") and tick.get("reason") == "not_primary_region", tick
    refused = stacks.secondary.invoke({"operation": "rotate-now"}, operator)
    assert refused.get("error") == "not_primary_region", refused
    undone = stacks.primary.invoke({"operation": "step-down", "region": A}, operator)  # B is still a replica: undo
    assert undone.get("error") is None and (undone["new_primary"], undone["already"]) == (A, False), undone
    assert stacks.keyring(A).primary_region == A
    assert stacks.primary.invoke({"operation": "rotate-now"}, operator).get("error") is None  # the writer again


def test_a_refused_promote_says_what_it_knew(stacks: Stacks, operator: Caller) -> None:
    running_primary(stacks, operator)
    answer = stacks.secondary.invoke({"operation": "promote", "region": B}, operator)
    assert answer["error"] == "old_primary_not_stepped_down"
    (line,) = stacks.secondary.audit_lines()
    assert line["decision"] == "refused" and line["known"]["old_primary"] == A and line["known"]["probe"]["reachable"] is True
    assert line["known"]["replica_generation"] == stacks.keyring(A).generation


def test_a_promote_interrupted_after_its_stops_completes_when_run_again(stacks: Stacks, operator: Caller) -> None:
    before = running_primary(stacks, operator)
    with outage(stacks.cloud, A):
        sm = stacks.cloud.client("secretsmanager", B)
        for arn in (stacks.signing_arn, stacks.keyring_arn):  # what a promote that died before its keyring write left
            sm.stop_replication_to_replica(SecretId=arn.replace(f":{A}:", f":{B}:"))
        assert stacks.keyring(B).primary_region is None and stacks.secret(B).get("PrimaryRegion") in (None, B)
        answer = stacks.secondary.invoke({"operation": "promote", "region": B}, operator)
    assert answer.get("error") is None and answer["stopped_replication"] == [], answer
    assert stacks.keyring(B).primary_region == B and answer["generation"] > before.generation
    (line,) = stacks.secondary.audit_lines()
    assert line["decision"] == "performed" and line["known"]["replicated_from"] is None
