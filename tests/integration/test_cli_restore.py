"""``jwks-rotator publish --accept-restore`` with click's CliRunner: the CLI asks a local stack's rotate function, as its operator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jwks_rotator.adapters.sdk.secrets_store import CURRENT, SecretsManagerKeyringStore
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator_cli.main import cli
from jwks_rotator_local.local_stack import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A local stack that does not tick by itself: every run below is the CLI's.

    Its revocation list is the one the template names (``/jwks-rotator/STACK/revoked-kids``, deleted when a
    stack stops): a path of the test's own would be one the rotate role is not granted, and the recorded
    calls would say so."""
    settings = {"algorithm": "ES256"}
    with LocalStack(settings, tick=False, state_file=tmp_path / ".jwks-rotator-local.json") as stack:
        yield stack


@pytest.fixture
def aws_resources(stack: LocalStack) -> Any:
    """The stack's secret and bucket under the names the assertions use."""

    class Resources:
        secret_id = stack.resources.secret_id
        bucket = stack.resources.bucket

        @staticmethod
        def client(service: str) -> Any:
            return stack.client(service)

    return Resources()


@pytest.fixture
def run(stack: LocalStack, tmp_path: Path) -> Any:
    def invoke(*args: str) -> Result:
        base = ["--endpoint-url", stack.moto_endpoint, "--state-file", str(tmp_path / ".jwks-rotator-local.json")]
        return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)

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
