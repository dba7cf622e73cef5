"""The rotate function as deployed (its code directory without the local stack's marker): what its environment may change."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from jwks_rotator.adapters.lean.sts_identity import LOCAL_MARKER, refuse_endpoint_overrides
from jwks_rotator.core.errors import ConfigurationError

ROTATE_APP = Path(__file__).resolve().parents[3] / "functions" / "rotate" / "app.py"


def deployed_rotate_app(tmp_path: Path) -> Any:
    """functions/rotate/app.py imported from a copy of its code directory that carries no local marker."""
    shutil.copy(ROTATE_APP, tmp_path / "app.py")
    assert not (tmp_path / LOCAL_MARKER).exists()
    name = f"deployed_rotate_app_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, tmp_path / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_S3"])
def test_a_deployed_rotate_function_refuses_an_aws_endpoint_from_its_environment(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With Secrets Manager pointed at a server of the changer's choosing, the rotator would publish that server's
    # "keyring" (the changer's own public key) to the real bucket as the stack's keys.
    for name, value in {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "KEYRING_SECRET_ID": "keyring",
                        "JWKS_BUCKET": "stack-bucket", "ISSUER": "https://issuer.example.com", "ALGORITHM": "ES256",
                        variable: "http://attacker.example"}.items():
        monkeypatch.setenv(name, value)
    app = deployed_rotate_app(tmp_path)
    with pytest.raises(ConfigurationError) as refused:
        app._get_service()
    assert "attacker" not in refused.value.message and app._service is None


def test_the_local_stack_may_name_its_own_endpoints() -> None:
    refuse_endpoint_overrides({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, local=True)
    refuse_endpoint_overrides({"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_S3": ""}, local=False)  # empty: not set
