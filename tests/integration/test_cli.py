"""The jwks-rotator CLI against a running LocalStack (click's CliRunner, real HTTP to moto, the edge and the Lambda API)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator_cli import app
from jwks_rotator_cli.local_state import DEMO_CALLER_ROLE, OPERATOR_ROLE
from jwks_rotator_cli.main import cli
from jwks_rotator_local.local_stack import FUNCTIONS_DIR, LocalStack
from jwks_rotator_testkit.fast import fast_settings

pytestmark = pytest.mark.integration

SETTINGS = fast_settings(algorithm="ES256", rotation_period="1h", publish_lead="10m", schedule="5m", max_token_ttl="10m",
                         default_token_ttl="5m")
HAS_SIGN = (FUNCTIONS_DIR / "sign" / "app.py").exists()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_file = tmp_path_factory.mktemp("cli") / ".jwks-rotator-local.json"
    with LocalStack(SETTINGS, state_file=state_file) as stack:
        stack.state_path = state_file  # type: ignore[attr-defined]
        yield stack


def run(stack: LocalStack, *args: str) -> Result:
    base = ["--endpoint-url", stack.moto_endpoint, "--state-file", str(stack.state_path)]  # type: ignore[attr-defined]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def without_audit_lines(stdout: str) -> str:
    """The CLI's own output: the stack runs in this process, so the sign function's audit lines land in the same stdout."""
    return "\n".join(line for line in stdout.splitlines() if not line.startswith('{"type":"jwks-rotator.audit"')).strip()


def keyring(stack: LocalStack) -> Keyring:
    return SecretsManagerKeyringStore(stack.client("secretsmanager"), stack.resources.secret_id).load().keyring


def served_kids(stack: LocalStack) -> list[str]:
    with urllib.request.urlopen(stack.jwks_url, timeout=10) as response:
        return [k["kid"] for k in json.loads(response.read())["keys"]]


def test_state_file_names_the_stack(stack):
    state = json.loads(Path(stack.state_path).read_text())  # type: ignore[attr-defined]
    assert state["moto_endpoint"] == stack.moto_endpoint
    assert state["lambda_endpoint"] == stack.lambda_endpoint
    assert state["jwks_url"] == stack.jwks_url
    assert state["settings"]["KEYRING_SECRET_ID"] == stack.resources.secret_id
    assert state["sts_endpoint"] == stack.sts_endpoint
    assert state["demo_caller_role"] == DEMO_CALLER_ROLE
    assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(state)


def test_status_shows_the_active_kid_and_next_transitions(stack):
    active = keyring(stack).active
    result = run(stack, "status")
    assert result.exit_code == 0, result.output
    assert active.kid in result.stdout
    assert "active" in result.stdout and "pending" in result.stdout
    assert "due" in result.stdout and "activates" in result.stdout
    assert "timeline" in result.stdout


def test_rotate_is_a_tick_and_rotate_now_changes_the_active_kid(stack):
    before = keyring(stack).active.kid
    tick = run(stack, "rotate")
    assert tick.exit_code == 0, tick.output
    assert keyring(stack).active.kid == before  # nothing due with a 1h period
    result = run(stack, "rotate", "--now")
    assert result.exit_code == 0, result.output
    after = keyring(stack).active.kid
    assert after != before
    assert f"active kid: {after}" in result.stdout
    assert "activated" in result.stdout


def test_publish_reports_up_to_date(stack):
    result = run(stack, "publish")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


def test_revoke_removes_the_kid_from_the_served_jwks(stack):
    target = next(k.kid for k in keyring(stack).keys if k.state.value != "active")
    result = run(stack, "revoke", target)
    assert result.exit_code == 0, result.output
    assert "revoked" in result.stdout
    deadline = time.monotonic() + 30
    while target in served_kids(stack) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert target not in served_kids(stack)


def test_revoke_of_an_unknown_kid_is_one_line_exit_1(stack):
    result = run(stack, "revoke", "no-such-kid")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: unknown_kid: the kid is not in the keyring and is not a kid this product makes (43 base64url characters)"
    assert "Traceback" not in result.output


def test_operations_run_in_the_rotate_function_as_the_local_operator_and_say_who_in_its_audit_lines(stack):
    target = next(k.kid for k in keyring(stack).keys if k.state.value != "active")
    result = run(stack, "revoke", target)
    assert result.exit_code == 0, result.output
    assert target not in {k.kid for k in keyring(stack).keys}
    deadline = time.monotonic() + 30
    lines: list[dict[str, Any]] = []
    while not lines and time.monotonic() < deadline:
        answer = run(stack, "audit", "--kid", target, "--json")
        assert answer.exit_code in (0, 1), answer.output
        lines = [json.loads(line) for line in answer.stdout.splitlines() if line.startswith("{")]
        time.sleep(0.2)
    [line] = lines
    assert line["function"] == "rotate" and line["operation"] == "revoke" and line["decision"] == "performed"
    assert line["role"] == OPERATOR_ROLE and line["caller"].startswith("arn:aws:sts::123456789012:assumed-role/jwks-rotator-local-operator/")
    table = run(stack, "audit", "--operation", "revoke", "--kid", target)
    assert table.exit_code == 0 and "revoke" in table.stdout and OPERATOR_ROLE in table.stdout


def test_the_operator_role_is_the_local_stack_s_operator_roles(stack):
    state = json.loads(Path(stack.state_path).read_text())  # type: ignore[attr-defined]
    assert state["settings"]["OPERATOR_ROLES"] == OPERATOR_ROLE


def test_an_operation_as_a_role_that_is_not_an_operator_is_refused_in_one_line(stack):
    before = keyring(stack)
    result = run(stack, "rotate", "--now", "--role-arn", DEMO_CALLER_ROLE)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: operator_not_allowed: the caller may not run rotate operations"
    assert keyring(stack).active.kid == before.active.kid


def test_operations_need_a_stack_or_the_rotate_function_named_away_from_the_local_stack(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ROTATE_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("JWKS_ROTATOR_STACK", raising=False)
    monkeypatch.chdir(tmp_path)  # no samconfig.toml here to name a default stack
    result = CliRunner().invoke(cli, ["--state-file", str(tmp_path / "none.json"), "revoke", "k1"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: name the stack (--stack) or its rotate function (--function-name or ROTATE_FUNCTION_NAME)"


def test_invalid_settings_exit_2_naming_the_rule(stack):
    result = run(stack, "status", "--publish-lead", "30d")
    assert result.exit_code == 2
    assert "rule publish-lead <= rotation-period" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_endpoint_is_one_line_exit_1(tmp_path):
    result = CliRunner().invoke(
        cli, ["--endpoint-url", "http://127.0.0.1:9", "status", "--keyring-secret-id", "x"], catch_exceptions=False,
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_MAX_ATTEMPTS": "1"},
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_sign_then_verify_and_a_wrong_audience(stack):
    signed = run(stack, "sign", "--sub", "alice", "--aud", "orders", "--claims", '{"role": "admin"}')
    assert signed.exit_code == 0, signed.output
    token = without_audit_lines(signed.stdout)
    assert token.count(".") == 2
    ok = run(stack, "verify", token, "--audience", "orders")
    assert ok.exit_code == 0, ok.output
    assert '"sub": "alice"' in ok.stdout and '"role": "admin"' in ok.stdout
    assert '"azp": "demo"' in ok.stdout  # signed as the demo caller, under the demo profile
    wrong = run(stack, "verify", token, "--audience", "billing")
    assert wrong.exit_code == 1
    assert wrong.stderr.strip() == "error: bad audience: the token is for 'orders', expected billing"


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_sign_refusal_is_one_line(stack):
    result = run(stack, "sign", "--sub", "alice", "--aud", "orders", "--ttl", "999999")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: sign refused: ttl_too_long")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_sign_with_a_role_or_a_profile_the_policy_does_not_allow_is_refused(stack):
    role = stack.client("iam").create_role(RoleName=f"stranger-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    result = run(stack, "sign", "--sub", "alice", "--aud", "demo", "--role-arn", role)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: sign refused: caller_not_allowed: the caller is not allowed to obtain tokens"
    result = run(stack, "sign", "--sub", "alice", "--aud", "demo", "--issuance-profile", "orders")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: sign refused: caller_not_allowed: the caller is not allowed to use the named profile"
    named = run(stack, "sign", "--sub", "alice", "--aud", "demo", "--issuance-profile", "demo", "--role-arn", DEMO_CALLER_ROLE)
    assert named.exit_code == 0, named.output


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_sign_against_the_local_stack_never_proves_with_ambient_keys(stack, monkeypatch: pytest.MonkeyPatch):
    # moto's default keys in the environment: the local STS would refuse them; the CLI acts as the demo role instead.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    signed = run(stack, "sign", "--sub", "alice", "--aud", "demo")
    assert signed.exit_code == 0, signed.output


def _token_signed_with_active_key(stack: LocalStack, **claims: Any) -> str:
    import jwt
    from jwcrypto.jwk import JWK

    active = keyring(stack).active
    pem = JWK(**active.private_jwk).export_to_pem(private_key=True, password=None)
    return jwt.encode(claims, pem, algorithm=active.alg, headers={"kid": active.kid})


def test_verify_reports_expired_and_bad_issuer_and_unknown_kid(stack):
    now = datetime.now(UTC)
    expired = _token_signed_with_active_key(stack, iss=stack.issuer, sub="a", exp=now - timedelta(hours=1))
    result = run(stack, "verify", expired)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: expired: the token expired at ")

    wrong_issuer = _token_signed_with_active_key(stack, iss="https://elsewhere.example", sub="a", exp=now + timedelta(minutes=5))
    result = run(stack, "verify", wrong_issuer)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: bad issuer: the token says 'https://elsewhere.example'")

    future = _token_signed_with_active_key(stack, iss=stack.issuer, sub="a", exp=now + timedelta(hours=2), nbf=now + timedelta(hours=1))
    result = run(stack, "verify", future)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: not yet valid")

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    stranger = jwt.encode({"iss": stack.issuer, "exp": now + timedelta(minutes=5)}, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "stranger"})
    result = run(stack, "verify", stranger)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: unknown kid: 'stranger' is not in the JWKS at {stack.jwks_url}"

    result = run(stack, "verify", "not-a-token")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: malformed token")


def command_names(help_text: str) -> list[str]:
    return [line.split()[0] for line in help_text.split("Commands:")[1].splitlines() if line.strip()]


def test_local_is_a_command_when_the_local_package_is_installed():
    result = CliRunner().invoke(cli, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert command_names(result.stdout) == [
        "audit", "doctor", "fault", "local", "policy", "promote", "publish", "revoke", "rotate", "sign", "status", "verifiers", "verify",
    ]
    local_help = CliRunner().invoke(cli, ["local", "--help"], catch_exceptions=False)
    assert local_help.exit_code == 0
    for option in ("--port", "--moto-port", "--lambda-port", "--sts-port", "--policy", "--duration", "--edge-cache", "--rotation-period"):
        assert option in local_help.stdout
    assert "--keyring-secret-id" not in local_help.stdout  # the local stack creates its own resources
    assert "--issuance-policy-file" not in local_help.stdout  # it takes its policy as --policy


def test_local_without_the_local_package_is_one_line_exit_1(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(app, "local_package_available", lambda: False)
    listing = CliRunner().invoke(cli, ["--help"], catch_exceptions=False)
    assert "local" not in command_names(listing.stdout)
    for args in (["local"], ["local", "--port", "0", "--rotation-period", "20s"], ["local", "--help"]):
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 1
        assert result.stderr.strip() == f"error: {app.LOCAL_MISSING}"
        assert "pip install -e ./local" in result.stderr
