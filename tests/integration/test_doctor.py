"""``jwks-rotator doctor`` against one local stack: healthy right after a rotation (12 s period, 4 s lead, 1 s schedule,
2 s max-age), then broken one thing at a time (and repaired) to show doctor names each: a disabled policy, a missing
output, a wrong Cache-Control, a skewed clock, then (not repaired, so last) a signer that cannot read its key and a deleted alarm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from jwks_rotator.core.settings import SETTINGS as SETTING_SPECS
from jwks_rotator_cli.context import CliContext
from jwks_rotator_cli.doctor import run_checks
from jwks_rotator_cli.doctor_checks import Check, worst
from jwks_rotator_local.caller_roles import DEMO_POLICY_FILE
from jwks_rotator_local.local_stack import LocalStack
from jwks_rotator_local.stack_outputs import publish_stack, remove_stack
from jwks_rotator_testkit.fast import fast_settings

pytestmark = pytest.mark.integration

STACK_NAME = "doctor-stack"
FAST = fast_settings(rotation_period="12s", publish_lead="4s", jwks_max_age="2s", max_token_ttl="4s", default_token_ttl="2s")
CLI = Path(sys.executable).parent / "jwks-rotator"


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(Path(DEMO_POLICY_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(policy_file: Path) -> Iterator[LocalStack]:
    # Ticked by hand, so each test sees exactly the state it set up; the edge does not cache, so a changed header shows.
    with LocalStack(FAST, stack_name=STACK_NAME, tick=False, edge_cache=False, policy=policy_file) as stack:
        stack.tick()
        yield stack


def client(stack: LocalStack, service: str) -> object:
    return boto3.client(service, endpoint_url=stack.endpoint, region_name=stack.region, aws_access_key_id="testing", aws_secret_access_key="testing")


def doctor(stack: LocalStack, name: str = STACK_NAME, clock_offset: timedelta = timedelta(0)) -> dict[str, Check]:
    obj = CliContext(stack.endpoint, None, "no-state-file.json", stack_name=name)
    _, checks = run_checks(obj, clock=lambda: datetime.now(UTC) + clock_offset)
    return {check.name: check for check in checks}


def failed(checks: dict[str, Check]) -> dict[str, str]:
    return {name: check.detail for name, check in checks.items() if check.result == "fail"}


def test_a_fast_stack_right_after_a_rotation_has_no_failure(stack):
    first = stack.tick()["active_kid"]
    for _ in range(40):  # a rotation within 12 s + a few ticks (the schedule is 1 s)
        time.sleep(1)
        summary = stack.tick()
        if summary["active_kid"] != first:
            break
    assert summary["active_kid"] != first, "no rotation"
    checks = doctor(stack)
    assert failed(checks) == {}
    assert checks["active key"].result == "ok" and checks["signer"].result == "ok" and checks["clock"].result == "ok"
    assert checks["rotate last run"].result == "ok" and checks["rotate last run"].detail.endswith("tick performed")


def test_doctor_from_an_empty_folder_without_credentials_prints_one_json_document(stack, tmp_path):
    drop = {spec.env for spec in SETTING_SPECS} | {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                                   "AWS_PROFILE", "JWKS_ROTATOR_STACK", "STS_ENDPOINT_URL", "SIGN_FUNCTION_NAME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    stack.tick()
    done = subprocess.run([str(CLI), "--endpoint-url", stack.endpoint, "--stack", STACK_NAME, "doctor", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    document = json.loads(done.stdout)  # exactly one document: json.loads refuses anything after it
    assert done.returncode == 0, done.stderr
    assert document["stack"] == STACK_NAME and document["result"] in ("ok", "warn")
    results = {check["name"]: check["result"] for check in document["checks"]}
    assert "fail" not in results.values()
    assert results["signer"] == "ok" and results["published keys"] == "ok"


def test_a_disabled_policy_is_named(stack, policy_file):
    original = policy_file.read_text(encoding="utf-8")
    policy_file.write_text(original + "disabled: true\n", encoding="utf-8")
    try:
        check = doctor(stack)["issuance policy"]
    finally:
        policy_file.write_text(original, encoding="utf-8")
    assert check.result == "warn" and "disabled: the signer issues nothing" in check.detail, check


def test_a_missing_output_is_named(stack):
    name = "doctor-partial"
    outputs = {k: v for k, v in stack.stack_outputs().items() if k != "KeyringSecretArn"}
    cloudformation = client(stack, "cloudformation")
    publish_stack(cloudformation, name, outputs)
    try:
        checks = doctor(stack, name)
    finally:
        remove_stack(cloudformation, name)
    assert checks["stack outputs"].result == "fail" and "lacks KeyringSecretArn" in checks["stack outputs"].detail


def test_a_wrong_cache_control_is_named(stack):
    s3 = client(stack, "s3")
    bucket, key = stack.resources.bucket, ".well-known/jwks.json"
    head = s3.head_object(Bucket=bucket, Key=key)
    s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key}, MetadataDirective="REPLACE",
                   ContentType=head["ContentType"], CacheControl="public, max-age=3600")
    try:
        check = doctor(stack)["JWKS document"]
    finally:
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key}, MetadataDirective="REPLACE",
                       ContentType=head["ContentType"], CacheControl=head["CacheControl"])
    assert check.result == "fail" and "max-age=3600, the stack's jwks-max-age is 2s" in check.detail


def test_a_skewed_clock_is_named(stack):
    checks = doctor(stack, clock_offset=timedelta(minutes=10))
    assert checks["clock"].result == "fail" and int(checks["clock"].detail.split("s off")[0]) >= 599, checks["clock"]
    assert set(failed(checks)) == {"clock"}  # the rotation check dates keys by AWS's clock, not the skewed one


def test_a_signer_that_cannot_read_its_key_is_named(stack):  # near the end: the signing secret stays deleted
    secrets = client(stack, "secretsmanager")
    secrets.delete_secret(SecretId=stack.function_environment("SignFunction")["SIGNING_SECRET_ID"], ForceDeleteWithoutRecovery=True)
    time.sleep(1.5)  # past the signer's 1 s cache of its key
    check = doctor(stack)["signer"]
    assert check.result == "fail" and check.detail.startswith("signing_unavailable") and "cannot read its key" in check.todo, check


def test_a_deleted_alarm_is_named(stack):  # last: the alarm stays deleted (and the signer stays broken)
    cloudwatch = client(stack, "cloudwatch")
    resources = client(stack, "cloudformation").describe_stack_resources(StackName=STACK_NAME)["StackResources"]  # type: ignore[attr-defined]
    names = sorted(r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == "AWS::CloudWatch::Alarm")  # its own
    cloudwatch.delete_alarms(AlarmNames=names[:1])  # type: ignore[attr-defined]
    checks = doctor(stack)
    assert checks["alarms"].result == "fail" and f"{len(names) - 1} of {len(names)} alarms exist" in checks["alarms"].detail
    assert worst(checks.values()) == "fail"
