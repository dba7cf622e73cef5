"""The rotate function as deployed (its code directory without the local stack's marker): what its environment may change."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jwks_rotator.adapters.lean.sts_identity import LOCAL_MARKER, refuse_endpoint_overrides
from jwks_rotator.adapters.lean.telemetry import SERVICE
from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.adapters.sdk.tick_ledger import S3TickLedger
from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.lifecycle.operations import RotateCommand
from jwks_rotator.core.lifecycle.operator_gate import Admission, OperationRecord
from jwks_rotator.core.ports import VersionedKeyring

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


SECONDARY_ENVIRONMENT = {
    "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "KEYRING_SECRET_ID": "keyring", "JWKS_BUCKET": "stack-bucket",
    "ISSUER": "https://issuer.example.com", "ALGORITHM": "ES256", "PRIMARY_REGION": "us-east-1", "REGIONS": "us-east-1,eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
}


def keyring_reads(monkeypatch: pytest.MonkeyPatch, keyring: Keyring | None = None) -> list[str]:
    """Every keyring secret read answers ``keyring`` (this region's replica); nothing else of AWS is reachable."""
    reads: list[str] = []

    def load(store: SecretsManagerKeyringStore) -> VersionedKeyring:
        reads.append(store._secret_id)
        return VersionedKeyring(keyring or Keyring(), "v1")

    monkeypatch.setattr(SecretsManagerKeyringStore, "load", load)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # any other call would go to AWS itself and fail the test
    return reads


@pytest.mark.parametrize("operation", ["rotate-now", "publish", "tick"])
def test_outside_the_primary_region_an_operators_operation_is_refused_as_an_answer_and_audited(
    operation: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECONDARY_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    reads = keyring_reads(monkeypatch)
    app = deployed_rotate_app(tmp_path)
    asked = OperationRecord("performed", None, None, "arn:aws:sts::123456789012:assumed-role/ops/alice",
                            "arn:aws:iam::123456789012:role/ops", operation)
    admitted = Admission(RotateCommand(operation), None, object(), asked)  # type: ignore[arg-type]  # a proven operator
    monkeypatch.setattr(app, "admit", lambda *_: admitted)
    context = SimpleNamespace(function_name="rotate", memory_limit_in_mb=256, aws_request_id="r", function_version="$LATEST",
                              invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:rotate")
    answer = app.handler({"operation": operation}, context)
    assert answer["error"] == "not_primary_region" and "us-east-1" in answer["message"]
    out = capsys.readouterr().out
    audit = [json.loads(line) for line in out.splitlines() if '"jwks-rotator.audit"' in line]
    assert [(a["decision"], a["error"], a["operation"]) for a in audit] == [("refused", "not_primary_region", operation)]
    assert "OperationRefusals_not_primary_region" in out and "RotationFailures" not in out
    assert reads == ["keyring"]  # its replica, which names no writer: the setting decides


@pytest.mark.parametrize("event", [{"source": "aws.events", "detail-type": "Scheduled Event"}, {"operation": "tick"}])
def test_outside_the_primary_region_a_tick_is_a_quiet_no_op_that_reads_only_its_keyring(
    event: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "KEYRING_SECRET_ID": "keyring",
                        "JWKS_BUCKET": "stack-bucket", "ISSUER": "https://issuer.example.com", "ALGORITHM": "ES256",
                        "PRIMARY_REGION": "us-east-1", "REGIONS": "us-east-1,eu-west-1",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    reads = keyring_reads(monkeypatch)
    app = deployed_rotate_app(tmp_path)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger=SERVICE)  # powertools may have left the function's logger at another level
    # The function's logger does not propagate once powertools has set it up (as an earlier test in the process may
    # have): its records are taken from it directly.
    monkeypatch.setattr(logging.getLogger(SERVICE), "handlers", [*logging.getLogger(SERVICE).handlers, caplog.handler])
    context = SimpleNamespace(function_name="rotate", memory_limit_in_mb=256, aws_request_id="r", function_version="$LATEST",
                              invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:rotate")
    answer = app.handler(event, context)
    assert answer["skipped"] is True and answer["reason"] == "not_primary_region" and answer["changes"] == []
    out = capsys.readouterr().out
    assert "RotationFailures" not in out and "KeysActive" not in out  # no alarm, no keyring figures from a region that writes nothing
    skipped = [r.message for r in caplog.records if getattr(r, "reason", None) == "not_primary_region"]
    assert set(skipped) == {"tick skipped: this region is not the writer"}  # once, or twice where it also propagates
    assert reads == ["keyring"]


def test_a_stepped_down_primarys_scheduled_tick_is_the_same_quiet_no_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {**SECONDARY_ENVIRONMENT, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "SIGNING_SECRET_ID": "view"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(S3TickLedger, "last_completed", lambda _: None)
    reads = keyring_reads(monkeypatch, Keyring().with_primary("eu-west-1", generation=4))
    app = deployed_rotate_app(tmp_path)
    context = SimpleNamespace(function_name="rotate", memory_limit_in_mb=256, aws_request_id="r", function_version="$LATEST",
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:rotate")
    answer = app.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
    assert answer["skipped"] is True and answer["reason"] == "not_primary_region" and answer["changes"] == []
    assert "RotationFailures" not in capsys.readouterr().out and reads == ["keyring"]
