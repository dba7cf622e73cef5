"""The CLI against a stack by name: outputs, the rotate function's settings, the one AWS endpoint, samconfig's default.

Every CLI call here runs in a temporary folder with JWKS_ROTATOR_LOCAL_STATE
pointing at a file that does not exist: what the CLI knows comes from the
stack (DescribeStacks, GetFunctionConfiguration) through the one endpoint.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result

from jwks_rotator.core.settings import SETTINGS as SETTING_SPECS
from jwks_rotator_cli.context import CliContext
from jwks_rotator_cli.main import cli
from jwks_rotator_cli.stack import StackError, StackInfo, describe_stack, function_environment
from jwks_rotator_local.functions import scheduled_event
from jwks_rotator_local.local_stack import FUNCTIONS_DIR, LocalStack
from jwks_rotator_local.stack_outputs import publish_stack, remove_stack
from jwks_rotator_testkit.fast import WATCHABLE_PACE, fast_settings

pytestmark = pytest.mark.integration

STACK_NAME = "jwks-rotator-cli-stack-test"
SETTINGS = fast_settings(WATCHABLE_PACE, algorithm="ES256")
HAS_SIGN = (FUNCTIONS_DIR / "sign" / "app.py").exists()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(SETTINGS, stack_name=STACK_NAME) as stack:  # no state file at all
        yield stack


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with no state file and no samconfig.toml, the working directory; the state file variable points nowhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JWKS_ROTATOR_LOCAL_STATE", str(tmp_path / "nowhere.json"))
    monkeypatch.delenv("JWKS_ROTATOR_STACK", raising=False)
    return tmp_path


# The stack runs in this process and sets its functions' variables (ALGORITHM, KEYRING_SECRET_ID, AWS_ENDPOINT_URL, ...)
# in os.environ, as Lambda would; the CLI reads the same names, so each call runs without them: what it shows must come
# from the stack, not from this process's environment.
STACK_PROCESS_ENV = sorted({spec.env for spec in SETTING_SPECS} | {"AWS_ENDPOINT_URL", "STS_ENDPOINT_URL", "SIGN_FUNCTION_NAME"})


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=dict.fromkeys(STACK_PROCESS_ENV))


def run_process(cwd: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process in ``cwd``: no settings, endpoint or credentials in its environment (but ``extra_env``), no state file."""
    drop = set(STACK_PROCESS_ENV) | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "JWKS_ROTATOR_STACK"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["JWKS_ROTATOR_LOCAL_STATE"] = str(cwd / "nowhere.json")
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(cwd / "no-aws-config")
    env["COLUMNS"] = "200"  # rich wraps table rows at 80 columns otherwise
    env.update(extra_env or {})
    command = [sys.executable, "-m", "jwks_rotator_cli.main", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def client(stack: LocalStack, service: str) -> object:
    return boto3.client(service, endpoint_url=stack.endpoint, region_name=stack.region, aws_access_key_id="testing", aws_secret_access_key="testing")


def own_output(result: Result) -> str:
    """The CLI's own stdout: the stack runs in this process, so the sign function's audit lines land in it too."""
    return "\n".join(line for line in result.stdout.splitlines() if not line.startswith('{"type":"jwks-rotator.audit"')).strip()


def test_the_stack_publishes_the_local_resources_under_the_templates_output_names(stack):
    info = describe_stack(client(stack, "cloudformation"), STACK_NAME)
    assert info.keyring_secret_arn == stack.resources.secret_id
    assert info.jwks_bucket_name == stack.resources.bucket
    assert info.outputs["DistributionId"] == stack.resources.distribution_id
    assert info.rotate_function_name == stack.function_name("RotateFunction")  # the physical name CloudFormation gave it
    assert info.jwks_url == stack.jwks_url and info.issuer == stack.issuer
    assert info.outputs["IssuerUrl"] == stack.discovery_url
    assert info.demo_caller_role_arn == stack.state()["demo_caller_role"]
    if HAS_SIGN:
        assert info.sign_function_name == stack.function_name("SignFunction")
        assert info.audit_log_group_name == f"/aws/lambda/{STACK_NAME}-sign"  # the template's SignLogGroup
    assert stack.state()["endpoint"] == stack.endpoint and stack.state()["stack_name"] == STACK_NAME


def test_status_shows_the_stacks_own_settings_not_the_cli_defaults(stack, elsewhere):
    done = run_process(elsewhere, "--endpoint-url", stack.endpoint, "--stack", STACK_NAME, "status")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"settings (stack {STACK_NAME})  algorithm=ES256 rotation-period=20s publish-lead=5s max-token-ttl=10s" in out
    assert "jwks-max-age=2s schedule=1s retention=12s" in out
    assert "RS256" not in out and "=7d" not in out  # the CLI defaults (a bare "7d" may be part of a kid)
    assert "ES256" in out.split("next transition")[1]  # the keys' alg column: the stack's algorithm


def test_status_transitions_follow_the_stacks_rotation_period(stack, elsewhere):
    # The active key is due rotation-period after it activated: within 20s here, never the CLI default's days.
    done = run_process(elsewhere, "--endpoint-url", stack.endpoint, "--stack", STACK_NAME, "status")
    assert done.returncode == 0, done.stderr
    active_rows = [line for line in done.stdout.splitlines() if " active " in line]
    assert len(active_rows) == 1, done.stdout
    due = re.search(r"due .*\(in (\d+)s\)", active_rows[0])
    assert due is not None or "next tick" in active_rows[0], active_rows[0]
    assert due is None or int(due.group(1)) <= 20


def test_a_setting_given_with_stack_is_refused_naming_it_as_set(stack, elsewhere):
    result = run("--endpoint-url", stack.endpoint, "--stack", STACK_NAME, "status", "--rotation-period", "1h")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"error: invalid settings: --rotation-period would override stack {STACK_NAME}'s own setting:")
    done = run_process(elsewhere, "--endpoint-url", stack.endpoint, "--stack", STACK_NAME, "status", extra_env={"ROTATION_PERIOD": "1d"})
    assert done.returncode == 2 and "rotation-period=1d" not in done.stdout
    assert done.stderr.strip().startswith(f"error: invalid settings: ROTATION_PERIOD would override stack {STACK_NAME}'s own setting:")
    # The stack named by its environment variable counts as --stack.
    done = run_process(elsewhere, "--endpoint-url", stack.endpoint, "verify", "a.b.c", extra_env={"ISSUER": "https://x.example", "JWKS_ROTATOR_STACK": STACK_NAME})
    assert done.returncode == 2
    assert f"error: invalid settings: ISSUER would override stack {STACK_NAME}'s own setting:" in done.stderr


def test_a_loopback_endpoint_without_a_state_file_says_where_it_looked(stack, elsewhere):
    (elsewhere / "samconfig.toml").write_text('version = 0.1\n\n[default.global.parameters]\nstack_name = "jwks-rotator-production"\n')
    done = run_process(elsewhere, "--endpoint-url", stack.endpoint, "status")
    assert done.returncode == 1
    assert "stack jwks-rotator-production not found (samconfig.toml names it; a deployed stack?)" in done.stderr
    assert f"no local stack state file {elsewhere / 'nowhere.json'} for {stack.endpoint}" in done.stderr


def test_the_stack_name_comes_from_the_environment_variable(stack, elsewhere, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JWKS_ROTATOR_STACK", STACK_NAME)
    result = run("--endpoint-url", stack.endpoint, "status")
    assert result.exit_code == 0, result.output
    assert f"settings (stack {STACK_NAME})  algorithm=ES256" in own_output(result)


def test_samconfig_in_the_working_directory_names_the_default_stack(stack, elsewhere):
    (elsewhere / "samconfig.toml").write_text(f'version = 0.1\n\n[default.global.parameters]\nstack_name = "{STACK_NAME}"\n')
    done = run_process(elsewhere, "--endpoint-url", stack.endpoint, "status")
    assert done.returncode == 0, done.stderr
    assert f"settings (stack {STACK_NAME})  algorithm=ES256 rotation-period=20s publish-lead=5s" in done.stdout


def test_no_stack_named_anywhere_is_one_line_exit_1(stack, elsewhere):
    result = run("--endpoint-url", stack.endpoint, "status")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: no stack named: pass --stack NAME")
    assert "no local stack state file" in result.stderr  # a loopback endpoint: the state file is what is missing
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_stack_is_one_line_exit_1(stack, elsewhere):
    result = run("--endpoint-url", stack.endpoint, "--stack", "no-such-stack", "status")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: stack no-such-stack not found"


def test_a_missing_output_is_one_line_exit_1(stack, elsewhere):
    name = f"partial-{uuid.uuid4().hex[:8]}"
    cloudformation = client(stack, "cloudformation")
    publish_stack(cloudformation, name, {"KeyringSecretArn": stack.resources.secret_id})
    try:
        result = run("--endpoint-url", stack.endpoint, "--stack", name, "status")
        assert result.exit_code == 1
        assert result.stderr.strip() == f"error: stack {name} has no output RotateFunctionName"
        verify = run("--endpoint-url", stack.endpoint, "--stack", name, "verify", "a.b.c")
        assert verify.stderr.strip() == f"error: stack {name} has no output RotateFunctionName"
    finally:
        remove_stack(cloudformation, name)
    with pytest.raises(StackError, match=f"^stack {name} has no output JwksUrl$"):
        _ = StackInfo(name, {"KeyringSecretArn": "x"}).jwks_url


def test_one_endpoint_serves_lambda_and_every_other_service(stack):
    lambda_client = client(stack, "lambda")
    configuration = lambda_client.get_function_configuration(FunctionName="RotateFunction")
    assert configuration["Environment"]["Variables"]["ROTATION_PERIOD"] == "20s"
    assert configuration["Environment"]["Variables"]["ALGORITHM"] == "ES256"
    assert "AWS_SECRET_ACCESS_KEY" not in configuration["Environment"]["Variables"]  # configuration, never credentials
    answer = lambda_client.invoke(FunctionName="RotateFunction", Payload=json.dumps(scheduled_event(stack.region)).encode())
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    summary = json.loads(answer["Payload"].read())
    published = client(stack, "s3").get_object(Bucket=stack.resources.bucket, Key=".well-known/jwks.json")
    kids = [key["kid"] for key in json.loads(published["Body"].read())["keys"]]
    assert summary["active_kid"] in kids
    assert client(stack, "secretsmanager").describe_secret(SecretId=stack.resources.secret_id)["ARN"] == stack.resources.secret_id
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_function_configuration(FunctionName="NoSuchFunction")
    assert function_environment(lambda_client, "RotateFunction")["JWKS_BUCKET"] == stack.resources.bucket


def test_the_front_passes_uploads_and_errors_through(stack):
    s3 = client(stack, "s3")
    s3.put_object(Bucket=stack.resources.bucket, Key="front/probe.txt", Body=b"x" * 70_000, ContentType="text/plain")
    head = s3.head_object(Bucket=stack.resources.bucket, Key="front/probe.txt")
    assert head["ContentLength"] == 70_000 and head["ContentType"] == "text/plain"
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=stack.resources.bucket, Key="front/absent.txt")


@pytest.mark.skipif(not HAS_SIGN, reason="functions/sign/app.py does not exist yet")
def test_sign_and_verify_through_the_stack_with_no_state_file(stack, elsewhere):
    base = ("--endpoint-url", stack.endpoint, "--stack", STACK_NAME)
    signed = run_process(elsewhere, *base, "sign", "--sub", "alice", "--aud", "demo")
    assert signed.returncode == 0, signed.stderr
    token = signed.stdout.strip()
    assert token.count(".") == 2
    assert "alg=ES256" in signed.stderr
    verified = run_process(elsewhere, *base, "verify", token, "--audience", "demo")
    assert verified.returncode == 0, verified.stderr
    assert '"sub": "alice"' in verified.stdout and f'"iss": "{stack.issuer}"' in verified.stdout


def test_the_cli_context_reads_the_stack_once(stack, elsewhere):
    context = CliContext(stack.endpoint, None, str(elsewhere / "nowhere.json"), stack_name=STACK_NAME)
    first = context.stack()
    assert first is not None and context.stack() is first
    settings = context.settings({}, require=("keyring_secret_id",))
    assert settings.keyring_secret_id == stack.resources.secret_id and settings.algorithm == "ES256"


def test_operations_run_in_the_named_stack_s_rotate_function_as_its_operator_from_any_folder(stack: LocalStack, elsewhere: Path) -> None:
    """No state file, no credentials: --stack names the function, its configuration the STS endpoint, the stack its operator role."""
    before = stack.tick()["active_kid"]
    done = run_process(elsewhere, "--endpoint-url", stack.endpoint, "--stack", STACK_NAME, "rotate", "--now")
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout and "rotate-now" in done.stdout
    assert stack.lambda_api.flush_logs(timeout=10.0)
    audit = run_process(elsewhere, "--endpoint-url", stack.endpoint, "--stack", STACK_NAME, "audit", "--operation", "rotate-now", "--json")
    assert audit.returncode == 0, audit.stderr
    lines = [json.loads(line) for line in audit.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["role"] == "arn:aws:iam::123456789012:role/jwks-rotator-local-operator"
    assert lines[-1]["decision"] == "performed" and before
