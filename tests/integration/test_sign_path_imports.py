"""The sign handler's cold start loads only the sign path: no rotation, no key generation, no jwcrypto, no moto.

import-linter checks the layer's modules statically (pyproject [tool.importlinter]); this checks the
handler itself, which is not a package: a fresh interpreter imports functions/sign/app.py, issues one
token from a keyring in the moto server (running in this test's process, not the child's) and
reports which modules it loaded.
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

pytestmark = pytest.mark.integration

SIGN_APP = Path(__file__).resolve().parents[2] / "functions" / "sign" / "app.py"
ISSUER = "https://issuer.example"
NOT_ON_THE_SIGN_PATH = ("jwks_rotator.core.rotation", "jwks_rotator.core.keygen", "jwks_rotator.core.lifecycle", "jwcrypto", "moto")

CHILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("sign_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
response = module.handler({"sub": "user-123", "aud": "orders-api"}, None)
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("jwks_rotator", "jwcrypto", "moto", "boto3"))
print(json.dumps({"response": response, "loaded": loaded}))
"""


def run_sign_handler(env: dict[str, str]) -> dict[str, Any]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHONPATH"))} | env
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(SIGN_APP)], env=child_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_cold_sign_handler_issues_a_token_without_loading_the_rotation_path(aws_resources: Any) -> None:
    settings = Settings(issuer=ISSUER, algorithm="ES256", keyring_secret_id=aws_resources.secret_id, jwks_bucket=aws_resources.bucket)
    report = build_rotation_service(settings, aws_resources.client, clock=lambda: datetime.now(UTC) - timedelta(minutes=1)).tick()
    assert report.keyring.active is not None
    answer = run_sign_handler(
        {
            "AWS_ENDPOINT_URL": aws_resources.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "KEYRING_SECRET_ID": aws_resources.secret_id,
            "ISSUER": ISSUER,
        }
    )
    assert answer["response"].get("kid") == report.keyring.active.kid, answer["response"]
    loaded = set(answer["loaded"])
    assert {"jwks_rotator.core.signer", "jwks_rotator.adapters.secret_reader", "boto3"} <= loaded  # the real path ran
    assert not loaded.intersection(NOT_ON_THE_SIGN_PATH)
    assert not any(name.startswith(("jwcrypto.", "moto.")) for name in loaded)


def test_a_misconfigured_sign_handler_answers_without_importing_boto3() -> None:
    answer = run_sign_handler({"ISSUER": ISSUER})  # no KEYRING_SECRET_ID
    assert answer["response"]["error"] == "invalid_configuration"
    assert "boto3" not in answer["loaded"] and "jwks_rotator.adapters.secret_reader" not in answer["loaded"]
