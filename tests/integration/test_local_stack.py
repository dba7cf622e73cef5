"""LocalStack: moto, the checking STS, the functions behind the Lambda API, the edge and the schedule, over real HTTP."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from rich.console import Console

from jwks_rotator_cli.local_state import DEMO_CALLER_ROLE
from jwks_rotator_client import SignClient
from jwks_rotator_local.caller_roles import DEMO_POLICY_FILE
from jwks_rotator_local.command import print_banner
from jwks_rotator_local.local_stack import FUNCTIONS_DIR, LocalStack, LocalStackError
from jwks_rotator_testkit.fast import fast_settings

pytestmark = pytest.mark.integration

FAST = fast_settings(algorithm="ES256")
HAS_SIGN = (FUNCTIONS_DIR / "sign" / "app.py").exists()


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def served_kids(stack: LocalStack) -> list[str]:
    return [k["kid"] for k in fetch_json(stack.jwks_url)["keys"]]


def lambda_client(endpoint: str) -> Any:
    return boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    reports: list[dict[str, Any]] = []
    with LocalStack(FAST, on_report=reports.append) as stack:
        stack.reports = reports  # type: ignore[attr-defined]
        yield stack


def test_jwks_url_serves_our_keys_not_motos_dummy(stack):
    kids = served_kids(stack)
    assert kids and "dummy" not in kids
    active = stack.tick()["active_kid"]
    assert active in served_kids(stack)
    discovery = fetch_json(stack.discovery_url)
    assert discovery["issuer"] == stack.issuer == stack.edge_url
    assert discovery["jwks_uri"] == stack.jwks_url


def test_first_tick_is_reported_before_start_returns(stack):
    first = stack.reports[0]  # type: ignore[attr-defined]
    assert [c["change"] for c in first["changes"]][:3] == ["created", "published", "activated"]


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_token_from_sign_function_verifies_against_the_jwks_url(stack):
    import jwt

    body = stack.sign_client().sign({"sub": "alice", "aud": "orders", "claims": {"role": "admin"}})
    assert set(body) >= {"token", "kid", "alg", "expires_at"}, body.get("error")
    client = jwt.PyJWKClient(stack.jwks_url, cache_jwk_set=False)
    key = client.get_signing_key_from_jwt(body["token"])
    claims = jwt.decode(body["token"], key, algorithms=["ES256"], audience="orders", issuer=stack.issuer)
    assert claims["sub"] == "alice" and claims["role"] == "admin"
    assert claims["azp"] == "demo"  # the demo policy's profile
    assert key.key_id == body["kid"]


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_a_proof_signed_with_motos_default_testing_keys_is_unauthenticated(stack):
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=stack.region)
    client = SignClient("SignFunction", lambda_client(stack.lambda_endpoint), session, sts_endpoint_url=stack.sts_endpoint)
    answer = client.sign({"sub": "alice", "aud": "demo"})
    assert answer["error"] == "unauthenticated", answer
    # moto's own STS names an identity for the same keys: the refusal is the local STS's, not a moto gap.
    assert session.client("sts", endpoint_url=stack.moto_endpoint).get_caller_identity()["Arn"]


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_a_role_the_policy_does_not_name_gets_caller_not_allowed(stack):
    role = stack.client("iam").create_role(RoleName=f"not-in-the-policy-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    answer = stack.sign_client(role).sign({"sub": "alice", "aud": "demo"})
    assert answer["error"] == "caller_not_allowed", answer
    assert stack.sign_client().sign({"sub": "alice", "aud": "demo"}).get("token")  # the demo caller still signs


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_the_banner_names_the_sts_endpoint_and_its_python_signs_as_the_demo_caller(stack):
    import jwt

    out = io.StringIO()
    print_banner(Console(file=out, width=400, color_system=None), stack, "state.json")
    banner = out.getvalue()
    assert f"  STS endpoint    {stack.sts_endpoint}  (checks caller proofs; moto's own STS does not)\n" in banner
    assert f"  demo caller     {DEMO_CALLER_ROLE}  (profiles: demo)\n" in banner
    for line in ("  JWKS URL        ", "  Lambda endpoint ", "  AWS endpoint    ", "  issuer          ", "  settings        "):
        assert line in banner
    snippet = banner.split("proves the caller's role):\n")[1].split("Ctrl-C to stop")[0]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(snippet, {})
    answer = ast.literal_eval(printed.getvalue().strip().splitlines()[-1])
    claims = jwt.decode(answer["token"], options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["aud"] == "demo" and claims["azp"] == "demo"


def test_unknown_function_through_the_stack_is_not_found(stack):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        lambda_client(stack.lambda_endpoint).invoke(FunctionName="NoSuchFunction", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_keys_rotate_visibly_on_the_schedule(stack):
    first = stack.tick()["active_kid"]
    wanted = {"created", "published", "activated", "retired"}

    def scheduled_changes() -> list[dict[str, str]]:
        return [c for r in list(stack.reports) for c in r["changes"]]  # type: ignore[attr-defined]

    # From here only the schedule ticks: a tick of the test's own could apply a change (the old key's retirement, say)
    # that the schedule would then never report, which is what this test is about.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        changes = scheduled_changes()
        moved = any(c["change"] == "activated" and c["kid"] != first for c in changes)
        retired_first = any(c["change"] == "retired" and c["kid"] == first for c in changes)
        if moved and retired_first:
            break
        time.sleep(0.5)
    assert moved, "the schedule did not activate another key within the deadline"
    assert retired_first, "the schedule did not retire the first key within the deadline"
    assert stack.tick()["active_kid"] != first
    # The schedule itself (not only our ticks) reported the changes through on_report.
    kinds = {c["change"] for c in scheduled_changes()}
    assert wanted <= kinds


def test_functions_see_the_template_environment(stack):
    env = stack.function_env
    assert env["KEYRING_SECRET_ID"] == stack.resources.secret_id
    assert env["JWKS_BUCKET"] == stack.resources.bucket
    assert env["DISTRIBUTION_ID"] == stack.resources.distribution_id
    assert env["ISSUER"] == stack.edge_url
    assert env["AWS_ENDPOINT_URL"] == stack.endpoint != stack.moto_endpoint  # every call passes the local cloud's front end
    assert env["ROTATION_PERIOD"] == "6s"
    # Proofs go to the checking STS, never straight to moto's (which checks no signature).
    assert env["STS_ENDPOINT_URL"] == stack.sts_endpoint != stack.moto_endpoint
    assert env["AWS_REGION"] == stack.region
    assert env["ISSUANCE_POLICY_FILE"] == str(DEMO_POLICY_FILE)


def test_only_one_stack_per_process(stack):
    with pytest.raises(LocalStackError):
        LocalStack(FAST).start()


def test_invalid_settings_fail_before_anything_starts():
    from jwks_rotator.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="publish-lead <= rotation-period"):
        LocalStack({"rotation-period": "1m", "publish-lead": "2m"})
    with pytest.raises(ConfigurationError, match="creates its own resources"):
        LocalStack({"jwks-bucket": "mine"})
    with pytest.raises(ConfigurationError, match=r"issuance-policy-file: give the local stack its policy as policy="):
        LocalStack({"issuance-policy-file": "mine.yaml"})


def test_jwks_rotator_audit_says_who_minted_a_token_of_the_stack(stack):
    """The sign function's audit line reaches the stack's CloudWatch Logs, and the operator command finds it by jti."""
    from click.testing import CliRunner

    from jwks_rotator_cli.main import cli

    body = stack.sign_client().sign({"sub": "audited-user", "aud": "demo"})
    jti = jwt.decode(body["token"], options={"verify_signature": False})["jti"]
    assert stack.lambda_api.flush_logs(timeout=10.0)
    result = CliRunner().invoke(
        cli, ["--endpoint-url", stack.moto_endpoint, "audit", "--jti", jti, "--json", "--log-group", stack.stack_outputs()["AuditLogGroupName"]],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    line = lines[0]
    assert (line["jti"], line["sub"], line["decision"], line["profile"]) == (jti, "audited-user", "issued", "demo")
    assert line["role"] == "arn:aws:iam::123456789012:role/jwks-rotator-demo-caller" and body["token"] not in result.stdout
