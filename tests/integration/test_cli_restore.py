"""``jwks-rotator publish --accept-restore`` with click's CliRunner against the moto server (no local stack)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jwks_rotator.adapters.secrets_store import CURRENT, SecretsManagerKeyringStore
from jwks_rotator.core.jwks import JWKS_PATH
from jwks_rotator_cli.main import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def run(aws_resources: Any, tmp_path: Path) -> Any:
    settings = [
        "--keyring-secret-id", aws_resources.secret_id, "--jwks-bucket", aws_resources.bucket,
        "--issuer", "https://issuer.example.com", "--algorithm", "ES256",
        "--revocation-parameter", f"/jwks-rotator-test/{uuid.uuid4().hex[:10]}/revoked-kids",
    ]

    def invoke(*args: str) -> Result:
        base = ["--endpoint-url", aws_resources.endpoint, "--state-file", str(tmp_path / "no-local-stack.json")]
        return CliRunner().invoke(cli, [*base, *args, *settings], catch_exceptions=False)

    return invoke


def published_kids(aws_resources: Any) -> set[str]:
    body = aws_resources.client("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read()
    return {k["kid"] for k in json.loads(body)["keys"]}


def test_publish_help_says_what_accept_restore_overwrites() -> None:
    result = CliRunner().invoke(cli, ["publish", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--accept-restore" in text and "overwrite the published JWKS and discovery documents" in text
    assert "tokens they signed stop verifying" in text


def test_a_restored_secret_stops_publish_until_the_operator_accepts_it(run: Any, aws_resources: Any) -> None:
    assert run("rotate").exit_code == 0
    sm = aws_resources.client("secretsmanager")
    store = SecretsManagerKeyringStore(sm, aws_resources.secret_id)
    before = store.load()
    assert run("rotate", "--now").exit_code == 0
    newer = store.load()
    assert published_kids(aws_resources) == {k.kid for k in newer.keyring.keys}
    sm.update_secret_version_stage(SecretId=aws_resources.secret_id, VersionStage=CURRENT,
                                   MoveToVersionId=before.version_id, RemoveFromVersionId=newer.version_id)

    refused = run("publish")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: keyring_behind_publication:")
    assert "accept_restore" in refused.stderr and "Traceback" not in refused.output
    assert store.load().keyring.restore_hold
    assert published_kids(aws_resources) == {k.kid for k in newer.keyring.keys}  # nothing overwritten without consent

    accepted = run("publish", "--accept-restore")
    assert accepted.exit_code == 0, accepted.output
    restored = store.load().keyring
    assert not restored.restore_hold and restored.active is not None
    assert f"keyring accepted as it is: the documents follow it; active kid {restored.active.kid}" in accepted.stdout
    assert published_kids(aws_resources) == {k.kid for k in restored.keys}
    assert run("publish").exit_code == 0  # and ticks go on
