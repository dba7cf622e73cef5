"""What a local stack records is attributed to the right role, judged against its own deployment, and would catch a bad call.

Needs the evaluator's npm packages (``make check-privilege`` / ``make test`` install them first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from jwks_rotator_local.local_stack import LocalStack
from jwks_rotator_testkit.fast import fast_settings
from tests.privilege.matrix import decide_recorded, render_recorded
from tests.privilege.recorded import RecordedRun, load_directory, load_recorded

pytestmark = pytest.mark.integration

FAST = fast_settings()


def _roles(stack: LocalStack) -> tuple[str, str]:
    functions = stack.deployed_template().functions
    return functions["SignFunction"].role_arn, functions["RotateFunction"].role_arn


def _run(settings: dict[str, Any], directory: Path, during: Any = None) -> tuple[RecordedRun, str, str, dict[str, str]]:
    with LocalStack(settings, record_calls=directory, tick=False) as stack:
        sign, rotate = _roles(stack)
        stack.tick()
        assert "token" in stack.sign_client().sign({"sub": "alice", "aud": "orders"})
        stack.tick()
        physical = {logical: stack.deployed_template().physical_id(logical) for logical in ("KeyringSecret", "SigningKeySecret")}
        # The harness's own call through the front, with credentials no function holds: left out.
        boto3.client("secretsmanager", endpoint_url=stack.endpoint, region_name=stack.region, aws_access_key_id="AKIDHARNESS",
                     aws_secret_access_key="x").list_secrets()
        if during is not None:
            during(stack)
    assert stack.recorded_calls_file is not None and stack.recorded_calls_file.parent == directory
    return load_recorded(stack.recorded_calls_file), sign, rotate, physical


def test_each_functions_calls_are_recorded_under_its_own_role_and_all_allowed(tmp_path: Path) -> None:
    run, sign, rotate, physical = _run(FAST, tmp_path)
    calls = {(c.principal, c.action, c.resource) for c in run.recording.calls}
    assert {c.principal for c in run.recording.calls} == {sign, rotate}
    assert run.left_out >= 1 and run.recording.unparsed == []
    keyring, signing = physical["KeyringSecret"], physical["SigningKeySecret"]
    assert (rotate, "secretsmanager:PutSecretValue", keyring) in calls
    assert (rotate, "secretsmanager:PutSecretValue", signing) in calls
    assert (sign, "secretsmanager:GetSecretValue", signing) in calls  # read through the extension, with the sign role's keys
    assert not [c for c in calls if c[0] == sign and c[2] == keyring]  # the signer never touched the keyring
    assert run.recording.deployment.role_arn("SignFunctionRole") == sign  # the file's deployment names the same roles
    results = decide_recorded([run])
    assert results.recorded and not results.failures(), render_recorded([run], results)


def test_kms_custody_is_recorded_too(tmp_path: Path) -> None:
    run, sign, rotate, _ = _run({**FAST, "key-custody": "kms", "algorithm": "ES256"}, tmp_path)
    actions = {(c.principal, c.action) for c in run.recording.calls}
    assert (sign, "kms:Sign") in actions and (rotate, "kms:CreateKey") in actions and (rotate, "kms:GetPublicKey") in actions
    signs = [c for c in run.recording.calls if c.action == "kms:Sign"]
    assert all(c.resource_policy and c.context.get("kms:SigningAlgorithm") == "ECDSA_SHA_256" for c in signs)
    results = decide_recorded([run])
    assert not results.failures(), render_recorded([run], results)


def test_a_call_out_of_policy_is_recorded_and_decided_denied(tmp_path: Path) -> None:
    """The sign function's own credentials writing the keyring (moto allows it; AWS would not): the check names it."""

    def sign_function_writes_the_keyring(stack: LocalStack) -> None:
        keyring = stack.deployed_template().physical_id("KeyringSecret")
        current = stack.client("secretsmanager").get_secret_value(SecretId=keyring)["SecretString"]
        function = stack.lambda_api.resolve("SignFunction")
        assert function is not None and function.sandbox is not None
        with function.sandbox.active():  # as the function's code would: its environment, its session, its endpoint
            function.sandbox.session().client("secretsmanager").put_secret_value(SecretId=keyring, SecretString=current)

    run, _, _, physical = _run(FAST, tmp_path, sign_function_writes_the_keyring)
    results = decide_recorded(load_directory(tmp_path))
    bad = [(row.role, row.case.action, row.case.resource, decision.decision) for _, row, decision in results.failures()]
    assert ("sign", "secretsmanager:PutSecretValue", physical["KeyringSecret"], "ExplicitlyDenied") in bad
    assert all(role == "sign" for role, *_ in bad) and not results.written_failures()
    assert "!! sign secretsmanager:PutSecretValue on " + physical["KeyringSecret"] in render_recorded([run], results)
