"""A revoked kid stays dead on the local stack whatever an account administrator (not break-glass) does to SSM and the secrets.

The administrator is a session of another role of the account (``some-admin``); moto enforces no IAM, so these
tests show what the stack does *given* the writes the template cannot deny: SSM parameters (any SSM writer)
and, for the break-glass role's restores, the secrets. The privilege matrix shows the rest is denied (the
revocation record in the bucket: ``admin-writes-revocation-record`` and its siblings).
"""

from __future__ import annotations

import json
import time
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
ADMIN_ROLE = "arn:aws:iam::123456789012:role/some-admin"
REQUEST = {"sub": "alice", "aud": "orders"}
CACHE_TTL = 1.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A stack that does not tick by itself: every run below is the operator's, through the CLI."""
    settings = {"algorithm": "ES256", "signer-cache-ttl": "1s"}
    with LocalStack(settings, tick=False, state_file=tmp_path / ".jwks-rotator-local.json") as stack:
        yield stack


@pytest.fixture
def run(stack: LocalStack, tmp_path: Path) -> Any:
    def invoke(*args: str) -> Result:
        base = ["--endpoint-url", stack.moto_endpoint, "--state-file", str(tmp_path / ".jwks-rotator-local.json")]
        return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)

    return invoke


def admin(stack: LocalStack, service: str) -> Any:
    """A client of an account administrator who is not the break-glass role."""
    return stack.caller_session(ADMIN_ROLE, session_name="admin").client(service, endpoint_url=stack.moto_endpoint, region_name=stack.region)


def secrets(stack: LocalStack) -> tuple[str, str]:
    env = stack.function_environment("RotateFunction")
    return env["KEYRING_SECRET_ID"], env["SIGNING_SECRET_ID"]


def current_versions(stack: LocalStack) -> dict[str, str]:
    sm = stack.client("secretsmanager")
    return {secret: SecretsManagerKeyringStore(sm, secret).load().version_id for secret in secrets(stack)}


def restore(stack: LocalStack, versions: dict[str, str]) -> None:
    """Every key-holding secret back to the version it had before the revocation (AWSCURRENT moved)."""
    sm = admin(stack, "secretsmanager")
    for secret, version in versions.items():
        now = SecretsManagerKeyringStore(stack.client("secretsmanager"), secret).load().version_id
        if now != version:
            sm.update_secret_version_stage(SecretId=secret, VersionStage=CURRENT, MoveToVersionId=version, RemoveFromVersionId=now)


def published_kids(stack: LocalStack) -> set[str]:
    body = stack.client("s3").get_object(Bucket=stack.resources.bucket, Key=JWKS_PATH)["Body"].read()
    return {k["kid"] for k in json.loads(body)["keys"]}


def signed_kid(stack: LocalStack) -> str | None:
    """The kid the signer signs with now (None when it refuses), after the signer's cache had time to expire."""
    time.sleep(CACHE_TTL + 0.2)
    body = stack.sign_client().sign(REQUEST)
    return body.get("kid") if "token" in body else None


def revoke_the_active_key(stack: LocalStack, run: Any) -> tuple[str, dict[str, str]]:
    assert run("rotate").exit_code == 0
    before = current_versions(stack)
    kid = signed_kid(stack)
    assert kid is not None
    revoked = run("revoke", kid)
    assert revoked.exit_code == 0, revoked.output
    assert kid not in published_kids(stack)
    return kid, before


def parameters(stack: LocalStack) -> list[str]:
    ssm = stack.client("ssm")
    path = f"/jwks-rotator/{stack.stack_name}/"
    return [p["Name"] for p in ssm.get_parameters_by_path(Path=path, Recursive=True)["Parameters"]]


def test_a_restore_of_every_secret_leaves_the_revoked_kid_dead(stack: LocalStack, run: Any) -> None:
    """(a) every secret restored to its pre-revoke version, parameters untouched."""
    kid, before = revoke_the_active_key(stack, run)
    restore(stack, before)
    assert signed_kid(stack) != kid  # the restored view holds it as active: the signer refuses it before any run
    assert run("publish").exit_code == 1  # the rotator holds the restore
    assert signed_kid(stack) != kid
    accepted = run("publish", "--accept-restore")
    assert accepted.exit_code == 0, accepted.output
    assert kid not in published_kids(stack)
    assert signed_kid(stack) not in (kid, None)


@pytest.mark.parametrize("tamper", ["delete", "overwrite"])
def test_erased_parameters_and_restored_secrets_leave_the_revoked_kid_dead(stack: LocalStack, run: Any, tamper: str) -> None:
    """(b) every parameter under /jwks-rotator/<stack>/ deleted or overwritten, both secrets restored, the restore accepted."""
    kid, before = revoke_the_active_key(stack, run)
    ssm = admin(stack, "ssm")
    names = parameters(stack)
    assert names
    for name in names:
        if tamper == "delete":
            ssm.delete_parameter(Name=name)
        else:
            ssm.put_parameter(Name=name, Value="[]", Type="String", Overwrite=True)
    restore(stack, before)
    assert signed_kid(stack) != kid  # before any rotator run: the signer reads the record in the bucket too
    accepted = run("publish", "--accept-restore")
    assert accepted.exit_code == 0, accepted.output
    assert kid not in published_kids(stack)
    assert signed_kid(stack) not in (kid, None)  # from the moment the accept returned
    listed = json.loads(stack.client("ssm").get_parameter(Name=names[0])["Parameter"]["Value"])
    assert kid in listed  # healed from the record
    assert run("rotate").exit_code == 0 and kid not in published_kids(stack)


def test_a_parameter_full_of_junk_kids_does_not_block_revoking_a_compromised_key(stack: LocalStack, run: Any) -> None:
    assert run("rotate").exit_code == 0
    (name,) = parameters(stack)
    junk = [f"junk-{index:038d}" for index in range(89)]
    admin(stack, "ssm").put_parameter(Name=name, Value=json.dumps(junk, separators=(",", ":")), Type="String", Overwrite=True)
    kid = signed_kid(stack)
    assert kid is not None
    revoked = run("revoke", kid)
    assert revoked.exit_code == 0, revoked.output
    assert kid not in published_kids(stack)
    assert signed_kid(stack) not in (kid, None)
    assert json.loads(stack.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]) == [kid]  # junk gone


def test_a_malformed_parameter_stops_issuance_for_at_most_one_run(stack: LocalStack, run: Any) -> None:
    assert run("rotate").exit_code == 0
    (name,) = parameters(stack)
    admin(stack, "ssm").put_parameter(Name=name, Value="{not json", Type="String", Overwrite=True)
    assert signed_kid(stack) is None  # fails closed
    assert run("rotate").exit_code == 0
    assert signed_kid(stack) is not None
