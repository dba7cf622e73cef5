"""The CLI as a new user meets it, against one `jwks-rotator local` process: a second stack while one runs, a busy
port, `make run ARGS=...`, `local env` for an unchanged service, the CLI by its absolute path from an empty folder
with no credentials, `--version`, `--json`, `policy --stack`, and a missing state file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jwks_rotator.core.settings import SETTINGS
from jwks_rotator_testkit.fast import WATCHABLE_PACE, as_options, fast_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "jwks-rotator")
FAST = as_options(fast_settings(WATCHABLE_PACE))
PORTS = ["--port", "0", "--moto-port", "0", "--lambda-port", "0", "--aws-port", "0"]
STATE = ".jwks-rotator-local.json"


def clean_env(folder: Path) -> dict[str, str]:
    """No settings, endpoints, stack or credentials: what a new shell has."""
    drop = {spec.env for spec in SETTINGS} | {
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "STS_ENDPOINT_URL", "SIGN_FUNCTION_NAME", "ROTATE_FUNCTION_NAME", "JWKS_ROTATOR_STACK", "JWKS_ROTATOR_LOCAL_STATE",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(folder / "no-aws-config")
    env["COLUMNS"] = "200"
    return env


def run(folder: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=folder, env=env or clean_env(folder), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`jwks-rotator local` in its own folder until the module ends; yields its state (and its folder, under "folder")."""
    folder = tmp_path_factory.mktemp("stack")
    process = subprocess.Popen([CLI, "local", *PORTS, *FAST], cwd=folder, env=clean_env(folder), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    state_file = folder / STATE
    deadline = time.monotonic() + 120
    while not state_file.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state_file.exists(), process.stderr.read() if process.poll() is not None else "no state file"
    try:
        yield {**json.loads(state_file.read_text()), "folder": folder, "process": process}
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "local state lives only in this process" in out and "the state file are gone" in out
        assert f"{CLI} --endpoint-url " in out  # the banner's commands work from any folder
        assert not state_file.exists()


def test_a_second_stack_in_the_same_folder_exits_at_once_and_leaves_the_first_alone(running):
    folder = running["folder"]
    before = (folder / STATE).read_bytes()
    done = run(folder, "local", *PORTS, timeout=60)  # even with every port free, the state file is the running stack's
    assert done.returncode == 1
    assert f"a local stack (pid {running['pid']}) is running from this folder and owns {STATE}" in done.stderr
    assert (folder / STATE).read_bytes() == before
    assert run(folder, "--endpoint-url", running["endpoint"], "status").returncode == 0  # the first still answers


def test_a_busy_port_is_named_with_its_option(running, tmp_path):
    moto_port = running["moto_endpoint"].rsplit(":", 1)[1]
    aws_port = running["endpoint"].rsplit(":", 1)[1]
    done = run(tmp_path, "local", "--port", "0", "--lambda-port", "0", "--moto-port", moto_port, "--aws-port", aws_port, timeout=60)
    assert done.returncode == 1
    assert f"port {moto_port} is in use (--moto-port): pass --moto-port with another port, or --moto-port 0 for any free port" in done.stderr
    assert f"port {aws_port} is in use (--aws-port)" in done.stderr
    assert not (tmp_path / STATE).exists()


def test_make_run_passes_args_through():
    done = subprocess.run(["make", "-n", "run", "ARGS=--port 0 --moto-port 0"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r"jwks_rotator_cli\.main local --port 8080 .* --port 0 --moto-port 0$", done.stdout.strip().splitlines()[-1])


def test_local_env_lets_an_unchanged_service_sign(running, tmp_path):
    printed = run(running["folder"], "local", "env")
    assert printed.returncode == 0, printed.stderr
    exported = dict(re.findall(r"^export ([A-Z_]+)=(.*)$", printed.stdout, re.MULTILINE))
    assert exported["AWS_ENDPOINT_URL"] == running["endpoint"] and exported["AWS_ENDPOINT_URL_STS"] == running["sts_endpoint"]
    assert exported["SIGN_FUNCTION_NAME"] == running["sign_function"] and exported["AWS_SESSION_TOKEN"]
    service = "import os; from jwks_rotator_client import SignClient; print(SignClient(os.environ['SIGN_FUNCTION_NAME']).sign({'sub': 'alice', 'aud': 'demo'}))"
    script = f"eval \"$({CLI} local env)\" && cd {tmp_path} && {sys.executable} -c \"{service}\""
    signed = subprocess.run(["bash", "-c", script], cwd=running["folder"], env=clean_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert signed.returncode == 0, signed.stderr
    assert "'token': 'ey" in signed.stdout


def test_local_env_without_a_running_stack_says_where_it_looked(tmp_path):
    done = run(tmp_path, "local", "env")
    assert done.returncode == 1
    assert f"no local stack state at {tmp_path / STATE}: run this in the folder where `jwks-rotator local`" in done.stderr


def test_version(tmp_path):
    done = run(tmp_path, "--version")
    assert done.returncode == 0 and re.fullmatch(r"jwks-rotator \d+\.\d+\.\d+\S*\n", done.stdout)


def json_of(done: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document on stdout (json.loads refuses a second one or any other text)."""
    return json.loads(done.stdout)


def test_json_from_an_empty_folder_by_the_absolute_path(running, tmp_path):
    base = ["--endpoint-url", running["endpoint"], "--stack", running["stack_name"]]
    status = json_of(run(tmp_path, *base, "status", "--json"))
    assert status["source"] == f"stack {running['stack_name']}" and status["active_kid"]
    assert status["settings"]["rotation-period"] == "20s"
    # the longest token the stack allows (10 s, not the 5 s default): sign and verify are separate processes, and on a
    # loaded machine the two took more than 5 s
    signed_run = run(tmp_path, *base, "sign", "--sub", "alice", "--aud", "demo", "--ttl", "10", "--json")
    signed = json_of(signed_run)
    assert signed["kid"] and signed["token"].startswith("ey"), signed_run.stderr
    verified = json_of(run(tmp_path, *base, "verify", signed["token"], "--audience", "demo", "--json"))
    assert verified["valid"] is True and verified["claims"]["sub"] == "alice", verified
    refused = run(tmp_path, *base, "verify", signed["token"], "--audience", "billing", "--json")
    assert refused.returncode == 1 and json_of(refused)["valid"] is False
    caller = "arn:aws:iam::123456789012:role/jwks-rotator-demo-caller"
    decided = run(tmp_path, "--endpoint-url", running["endpoint"], "policy", "test", "--stack", running["stack_name"], "--caller", caller,
                  "--request", '{"sub": "alice", "aud": "demo", "ttl": 60}', "--json")
    assert decided.returncode == 1 and json_of(decided)["code"] == "ttl_too_long"  # the stack's max-token-ttl is 10s, not 1h


def test_policy_check_with_stack_judges_the_deployed_policy_with_the_stacks_settings(running, tmp_path):
    done = run(tmp_path, "--endpoint-url", running["endpoint"], "policy", "check", "--stack", running["stack_name"])
    assert done.returncode == 0, done.stderr
    assert f"valid: {running['issuance_policy_file']}" in done.stdout or "demo-policy.yaml" in done.stdout
    assert "max_ttl=10s" in done.stdout


def test_a_failure_under_json_is_one_json_document_too(running, tmp_path):
    done = run(tmp_path, "--endpoint-url", running["endpoint"], "--stack", "no-such-stack", "status", "--json")
    assert done.returncode == 1 and json_of(done) == {"error": "stack", "message": "stack no-such-stack not found"}
    assert done.stderr.strip() == "error: stack no-such-stack not found"
