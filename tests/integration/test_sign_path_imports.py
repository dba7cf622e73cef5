"""The sign handler's INIT loads the sign path and nothing else: no rotation, no key generation, no jwcrypto, no moto,
and (reading through the Parameters and Secrets extension) no boto3, botocore or powertools.

import-linter checks the layer's modules statically (pyproject [tool.importlinter]); this checks the
handler itself, which is not a package: a fresh interpreter imports functions/sign/app.py, verifies a
caller's proof against an STS test double and issues one token from a keyring in the moto server, read
through the local extension stand-in (all three running in this test's process, not the child's), and
reports which modules it loaded after the import (INIT) and after the first invocation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.secrets_extension import SecretsExtension
from jwks_rotator_testkit.callers import DEMO_ACCOUNT, SIGN_FUNCTION_ARN, SIGN_FUNCTION_NAME, fake_sts, policy_yaml, role_caller

pytestmark = pytest.mark.integration

SIGN_APP = Path(__file__).resolve().parents[2] / "functions" / "sign" / "app.py"
ISSUER = "https://issuer.example"
NOT_ON_THE_SIGN_PATH = ("jwks_rotator.core.lifecycle.rotation", "jwks_rotator.core.lifecycle.keygen", "jwks_rotator.core.lifecycle.rules", "jwks_rotator.core.lifecycle", "jwcrypto", "moto")
# What importing the handler (Lambda's INIT) loads: the issuance core (settings, policy, verifier, signer), the sign
# path's adapters and the crypto backend. The first invocation, signing with a key from the keyring, loads nothing more.
AT_INIT = {"jwks_rotator.core.settings", "jwks_rotator.core.issuance.service", "jwks_rotator.core.issuance.profiles",
           "jwks_rotator.core.callers.verifier", "jwks_rotator.core.issuance.signer", "jwks_rotator.bootstrap.sign",
           "jwks_rotator.adapters.lean.http", "jwks_rotator.adapters.lean.sts_identity", "jwks_rotator.adapters.lean.secrets_extension",
           "jwks_rotator.adapters.lean.runtime_hooks", "cryptography.hazmat.backends.openssl.backend"}
# Loaded by neither the import nor a first token signed with a key in the keyring: the ports' protocols (type checks
# only) and the KMS custody module (a KMS record's first read loads it).
NOT_FOR_A_LOCAL_KEY = ("jwks_rotator.core.ports", "jwks_rotator.core.keys.kms")
NO_SDK = ("boto3", "botocore", "aws_lambda_powertools", "jwcrypto", "moto", "yaml", "jwks_rotator.adapters.sdk.clients")
SESSION_TOKEN = "the-function-session-token"

CHILD = """
import importlib.util, json, socket, sys, types
connects = []
_connect = socket.socket.connect
def counting_connect(self, address):
    connects.append(1)
    return _connect(self, address)
socket.socket.connect = counting_connect
def ours():
    return sorted(name for name in sys.modules
                  if name.split(".")[0] in ("jwks_rotator", "jwcrypto", "moto", "boto3", "botocore", "aws_lambda_powertools", "cryptography", "yaml"))
spec = importlib.util.spec_from_file_location("sign_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = ours()
connects_at_import = len(connects)
context = types.SimpleNamespace(**json.loads(sys.argv[3]))
response = module.handler(json.loads(sys.argv[2]), context)
print(json.dumps({"response": response, "imported": imported, "loaded": ours(), "connects": [connects_at_import, len(connects)]}))
"""
CONTEXT = {"function_name": SIGN_FUNCTION_NAME, "invoked_function_arn": SIGN_FUNCTION_ARN, "function_version": "$LATEST"}
ORDERS = role_caller("orders-service")
POLICY = policy_yaml(
    {"name": "orders", "callers": [f"arn:aws:iam::{DEMO_ACCOUNT}:role/orders-service"], "audiences": ["orders-api"], "subjects": ["user-[0-9]+"]}
)


def run_sign_handler(env: dict[str, str], event: dict[str, Any]) -> dict[str, Any]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHONPATH"))} | env
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(SIGN_APP), json.dumps(event), json.dumps(CONTEXT)],
        env=child_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_cold_sign_handler_reads_through_the_extension_and_loads_no_sdk(aws_resources: Any, tmp_path: Path) -> None:
    settings = Settings(issuer=ISSUER, algorithm="ES256", keyring_secret_id=aws_resources.secret_id, jwks_bucket=aws_resources.bucket)
    report = build_rotation_service(settings, aws_resources.client, clock=lambda: datetime.now(UTC) - timedelta(minutes=1)).tick()
    assert report.keyring.active is not None
    policy_file = tmp_path / "issuance-policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    extension = SecretsExtension(aws_resources.endpoint, session_token=lambda: SESSION_TOKEN)
    with fake_sts() as sts, extension:  # the STS double checks the proof's signature against the registered caller
        sts.register(ORDERS)
        event = {"proof": ORDERS.proof(sts_endpoint_url=sts.url, signer=SIGN_FUNCTION_NAME), "sub": "user-123", "aud": "orders-api"}
        answer = run_sign_handler(
            {
                # No AWS_ENDPOINT_URL and no credentials: the child can reach the keyring only through the extension.
                "AWS_REGION": "us-east-1",
                "AWS_SESSION_TOKEN": SESSION_TOKEN,
                "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.port),
                "KEYRING_SECRET_ID": aws_resources.secret_id,
                "ISSUER": ISSUER,
                "STS_ENDPOINT_URL": sts.url,
                "ISSUANCE_POLICY_FILE": str(policy_file),
            },
            event,
        )
        assert sts.replays == 1  # the child replayed the proof
        assert (extension.requests, extension.refused) == (2, 0)  # the keyring and the revocation list, with the right token
    assert answer["response"].get("kid") == report.keyring.active.kid, answer["response"]
    imported, loaded = set(answer["imported"]), set(answer["loaded"])
    assert {"jwks_rotator.core.issuance.signer", "jwks_rotator.adapters.lean.secrets_extension", "jwks_rotator.adapters.lean.sts_identity"} <= loaded  # the real path ran
    assert imported >= AT_INIT, sorted(AT_INIT - imported)
    assert loaded == imported, sorted(loaded - imported)
    assert not loaded.intersection(NOT_FOR_A_LOCAL_KEY), sorted(loaded.intersection(NOT_FOR_A_LOCAL_KEY))
    for modules in (imported, loaded):
        assert not modules.intersection(NOT_ON_THE_SIGN_PATH + NO_SDK), sorted(modules.intersection(NOT_ON_THE_SIGN_PATH + NO_SDK))
        assert not any(name.startswith(tuple(f"{m}." for m in NO_SDK)) for name in modules)
    assert answer["connects"][0] == 0 < answer["connects"][1]  # no network I/O at import; the first invocation connects


def test_the_extension_refuses_a_function_presenting_another_session_token(aws_resources: Any, tmp_path: Path) -> None:
    policy_file = tmp_path / "issuance-policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    extension = SecretsExtension(aws_resources.endpoint, session_token=lambda: SESSION_TOKEN)
    with fake_sts() as sts, extension:
        sts.register(ORDERS)
        event = {"proof": ORDERS.proof(sts_endpoint_url=sts.url, signer=SIGN_FUNCTION_NAME), "sub": "user-123", "aud": "orders-api"}
        answer = run_sign_handler(
            {"AWS_REGION": "us-east-1", "AWS_SESSION_TOKEN": "another-token", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.port),
             "KEYRING_SECRET_ID": aws_resources.secret_id, "ISSUER": ISSUER, "STS_ENDPOINT_URL": sts.url,
             "ISSUANCE_POLICY_FILE": str(policy_file)},
            event,
        )
        assert extension.refused == 1 and extension.requests == 0
    assert answer["response"]["error"] == "signing_unavailable" and "HTTP401" in answer["response"]["message"], answer["response"]


def test_without_the_extension_the_sign_handler_reads_with_boto3(aws_resources: Any, tmp_path: Path) -> None:
    settings = Settings(issuer=ISSUER, algorithm="ES256", keyring_secret_id=aws_resources.secret_id, jwks_bucket=aws_resources.bucket)
    report = build_rotation_service(settings, aws_resources.client, clock=lambda: datetime.now(UTC) - timedelta(minutes=1)).tick()
    assert report.keyring.active is not None
    policy_file = tmp_path / "issuance-policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    with fake_sts() as sts:
        sts.register(ORDERS)
        event = {"proof": ORDERS.proof(sts_endpoint_url=sts.url, signer=SIGN_FUNCTION_NAME), "sub": "user-123", "aud": "orders-api"}
        answer = run_sign_handler(
            {
                "AWS_ENDPOINT_URL": aws_resources.endpoint,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "KEYRING_SECRET_ID": aws_resources.secret_id,
                "ISSUER": ISSUER,
                "STS_ENDPOINT_URL": sts.url,
                "ISSUANCE_POLICY_FILE": str(policy_file),
            },
            event,
        )
    assert answer["response"].get("kid") == report.keyring.active.kid, answer["response"]
    loaded = set(answer["loaded"])
    assert {"jwks_rotator.adapters.sdk.secret_reader", "boto3"} <= loaded
    assert not loaded.intersection(NOT_ON_THE_SIGN_PATH) and "aws_lambda_powertools" not in loaded


def test_a_misconfigured_sign_handler_answers_without_importing_boto3() -> None:
    answer = run_sign_handler({"ISSUER": ISSUER}, {"sub": "user-123", "aud": "orders-api"})  # no KEYRING_SECRET_ID
    assert answer["response"]["error"] == "invalid_configuration"
    assert "boto3" not in answer["loaded"] and "jwks_rotator.adapters.sdk.secret_reader" not in answer["loaded"]
    assert "botocore" not in answer["loaded"] and "aws_lambda_powertools" not in answer["loaded"]
