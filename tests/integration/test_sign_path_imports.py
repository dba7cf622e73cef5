"""The sign handler's cold start loads only the sign path: no rotation, no key generation, no jwcrypto, no moto.

import-linter checks the layer's modules statically (pyproject [tool.importlinter]); this checks the
handler itself, which is not a package: a fresh interpreter imports functions/sign/app.py, verifies a
caller's proof against an STS test double and issues one token from a keyring in the moto server (both
running in this test's process, not the child's), and reports which modules it loaded.
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

from jwks_rotator.core.settings import Settings
from jwks_rotator.wiring import build_rotation_service
from jwks_rotator_testkit.callers import DEMO_ACCOUNT, SIGN_FUNCTION_ARN, SIGN_FUNCTION_NAME, fake_sts, policy_yaml, role_caller

pytestmark = pytest.mark.integration

SIGN_APP = Path(__file__).resolve().parents[2] / "functions" / "sign" / "app.py"
ISSUER = "https://issuer.example"
NOT_ON_THE_SIGN_PATH = ("jwks_rotator.core.rotation", "jwks_rotator.core.keygen", "jwks_rotator.core.lifecycle", "jwcrypto", "moto")

CHILD = """
import importlib.util, json, sys, types
spec = importlib.util.spec_from_file_location("sign_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
context = types.SimpleNamespace(**json.loads(sys.argv[3]))
response = module.handler(json.loads(sys.argv[2]), context)
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("jwks_rotator", "jwcrypto", "moto", "boto3"))
print(json.dumps({"response": response, "loaded": loaded}))
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


def test_a_cold_sign_handler_issues_a_token_without_loading_the_rotation_path(aws_resources: Any, tmp_path: Path) -> None:
    settings = Settings(issuer=ISSUER, algorithm="ES256", keyring_secret_id=aws_resources.secret_id, jwks_bucket=aws_resources.bucket)
    report = build_rotation_service(settings, aws_resources.client, clock=lambda: datetime.now(UTC) - timedelta(minutes=1)).tick()
    assert report.keyring.active is not None
    policy_file = tmp_path / "issuance-policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    with fake_sts() as sts:  # checks the proof's signature against the registered caller
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
        assert sts.replays == 1  # the child replayed the proof
    assert answer["response"].get("kid") == report.keyring.active.kid, answer["response"]
    loaded = set(answer["loaded"])
    assert {"jwks_rotator.core.signer", "jwks_rotator.adapters.secret_reader", "jwks_rotator.adapters.sts_identity", "boto3"} <= loaded  # the real path ran
    assert not loaded.intersection(NOT_ON_THE_SIGN_PATH)
    assert not any(name.startswith(("jwcrypto.", "moto.")) for name in loaded)


def test_a_misconfigured_sign_handler_answers_without_importing_boto3() -> None:
    answer = run_sign_handler({"ISSUER": ISSUER}, {"sub": "user-123", "aud": "orders-api"})  # no KEYRING_SECRET_ID
    assert answer["response"]["error"] == "invalid_configuration"
    assert "boto3" not in answer["loaded"] and "jwks_rotator.adapters.secret_reader" not in answer["loaded"]
