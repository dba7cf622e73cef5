"""A local stack records its functions' calls only: requests signed with a function's credentials, by its role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jwks_rotator_local.call_recording import FORMAT, FunctionCallRecording, recording_directory
from jwks_rotator_local.template_stack import DeployedTemplate, FunctionIdentity
from tests.unit.local.test_call_record import KEYRING_ARN, SIGN_ROLE, CannedFacts

ROTATE_ROLE = SIGN_ROLE.replace("Sign", "Rotate")


def _signed(access_key: str, target: str, document: dict[str, Any]) -> tuple[str, str, dict[str, str], bytes]:
    headers = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/20261126/us-east-1/secretsmanager/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=00",
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
    }
    return "POST", "/", headers, json.dumps(document).encode()


def _deployed() -> DeployedTemplate:
    return DeployedTemplate("s", "stack-id", {"Resources": {}}, {}, {}, {}, {"AWS::Region": "us-east-1"},
                            {"SignFunction": FunctionIdentity("SignFunction", "s-Sign", "arn:fn", SIGN_ROLE, ("ASIASIGN",))})


def test_only_requests_signed_by_a_functions_key_are_recorded_and_under_its_role(tmp_path: Path) -> None:
    recording = FunctionCallRecording(tmp_path, CannedFacts())
    recording.add_function(ROTATE_ROLE, "ASIAROTATE")
    recording(*_signed("ASIAROTATE", "secretsmanager.PutSecretValue", {"SecretId": "jwks-keyring", "SecretString": "x"}))
    recording(*_signed("ASIAROTATE", "secretsmanager.PutSecretValue", {"SecretId": "jwks-keyring", "SecretString": "y"}))
    recording(*_signed("AKIDHARNESS", "secretsmanager.GetSecretValue", {"SecretId": "jwks-keyring"}))  # the test harness
    recording(*_signed("ASIASIGN", "secretsmanager.GetSecretValue", {"SecretId": "jwks-keyring"}))  # a key never issued to a function
    assert {(c.principal, c.action) for c in recording.recorder.calls} == {
        (ROTATE_ROLE, "secretsmanager:PutSecretValue"), (ROTATE_ROLE, "kms:GenerateDataKey")}
    assert (recording.requests, recording.function_requests, recording.left_out) == (4, 2, 2)
    path = recording.write(_deployed())
    document = json.loads(path.read_text())
    assert document["format"] == FORMAT and document["left_out"] == 2 and document["unparsed"] == []
    written = {(c["principal"], c["action"], c["resource"]): c["count"] for c in document["calls"]}
    assert written[(ROTATE_ROLE, "secretsmanager:PutSecretValue", KEYRING_ARN)] == 2  # identical calls once, counted
    assert document["deployment"]["functions"]["SignFunction"]["role_arn"] == SIGN_ROLE


def test_the_directory_comes_from_the_argument_or_the_environment(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.delenv("JWKS_ROTATOR_RECORD_CALLS", raising=False)
    assert recording_directory() is None
    monkeypatch.setenv("JWKS_ROTATOR_RECORD_CALLS", "")
    assert recording_directory() is None
    monkeypatch.setenv("JWKS_ROTATOR_RECORD_CALLS", str(tmp_path))
    assert recording_directory() == tmp_path
    assert recording_directory(tmp_path / "x") == tmp_path / "x"
