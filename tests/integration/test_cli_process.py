"""`jwks-rotator` as a separate process: `local` with --duration and SIGTERM, operator commands found through the
state file (`sign` and `verify` with no credentials at all), `local --policy`, and the operator CLI's independence
from the local cloud package (no moto, a clear line without it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from jwks_rotator.core.settings import SETTINGS
from jwks_rotator_testkit.fast import WATCHABLE_PACE, as_options, fast_settings

pytestmark = pytest.mark.integration

FAST = as_options(fast_settings(WATCHABLE_PACE))
PORTS = ["--port", "0", "--moto-port", "0", "--lambda-port", "0", "--aws-port", "0"]
REPO = Path(__file__).resolve().parents[2]
# Runs the CLI's entry point with the local cloud package made unimportable, as when it is not installed.
WITHOUT_LOCAL = "import sys; sys.modules['jwks_rotator_local'] = None; from jwks_rotator_cli.main import main; main()"


def clean_env() -> dict[str, str]:
    """The environment without settings or endpoints another test may have left in this process."""
    drop = {spec.env for spec in SETTINGS} | {
        "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "STS_ENDPOINT_URL",
        "ROTATE_FUNCTION_NAME", "SIGN_FUNCTION_NAME",
    }
    return {k: v for k, v in os.environ.items() if k not in drop}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "jwks_rotator_cli.main", *args]


def test_local_with_duration_prints_the_urls_and_exits_0(tmp_path: Path):
    done = subprocess.run(cli("local", *PORTS, *FAST, "--duration", "3"), cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "JWKS URL        http://127.0.0.1:" in done.stdout
    assert "Lambda endpoint http://127.0.0.1:" in done.stdout
    assert "issuer          http://127.0.0.1:" in done.stdout
    assert "AWS endpoint    http://127.0.0.1:" in done.stdout
    assert "STS endpoint    http://127.0.0.1:" in done.stdout and "(checks caller proofs; moto's own STS does not)" in done.stdout
    assert "demo caller     arn:aws:iam::123456789012:role/jwks-rotator-demo-caller  (profiles: demo)" in done.stdout
    assert 'function_name="jwks-rotator-local-SignFunction-' in done.stdout and "SignClient(" in done.stdout  # the physical name
    assert "activated" in done.stdout
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".jwks-rotator-local.json").exists()  # removed on the way out


def test_local_with_bad_settings_exits_2_with_one_line(tmp_path: Path):
    done = subprocess.run(cli("local", *PORTS, "--schedule", "3d"), cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: invalid settings: rule schedule <= publish-lead / 2")
    assert len(done.stderr.strip().splitlines()) == 1


def start_local(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    """`jwks-rotator local` in the background, once its state file is written, and that state."""
    local = subprocess.Popen(cli("local", *PORTS, *FAST, *args), cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state_file = tmp_path / ".jwks-rotator-local.json"
    deadline = time.monotonic() + 60
    while not state_file.exists() and local.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not state_file.exists():
        local.kill()
        _, err = local.communicate(timeout=60)
        pytest.fail(f"the local stack did not write its state file: {err}")
    return local, json.loads(state_file.read_text())


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)


def test_status_through_the_state_file_then_sigterm_exits_0(tmp_path: Path):
    local, state = start_local(tmp_path)
    state_file = tmp_path / ".jwks-rotator-local.json"
    try:
        # No settings, no credentials in the environment: names and settings come from the state file.
        status = subprocess.run(
            cli("--endpoint-url", state["moto_endpoint"], "status"), cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60
        )
        assert status.returncode == 0, status.stderr
        assert "active" in status.stdout and "jwks-rotator-local-KeyringSecret-" in status.stdout  # the template's secret
        # No credentials anywhere: `sign` acts as the stack's demo caller role, and the token verifies.
        signed = run_cli(tmp_path, "--endpoint-url", str(state["moto_endpoint"]), "sign", "--sub", "alice", "--aud", "demo")
        assert signed.returncode == 0, signed.stderr
        token = signed.stdout.strip()
        assert token.count(".") == 2 and signed.stderr.startswith("kid=")
        verified = run_cli(tmp_path, "--endpoint-url", str(state["moto_endpoint"]), "verify", token, "--audience", "demo")
        assert verified.returncode == 0, verified.stderr
        assert '"sub": "alice"' in verified.stdout and '"azp": "demo"' in verified.stdout
        # No credentials anywhere: `rotate --now` asks the stack's rotate function as its operator role.
        rotated = run_cli(tmp_path, "--endpoint-url", str(state["moto_endpoint"]), "rotate", "--now")
        assert rotated.returncode == 0, rotated.stderr
        # The new key is the active one. Which run records its activation (this one, or the stack's own schedule
        # running beside it) is a race, so the "activated" line may be the other run's.
        [created] = [line.split()[2] for line in rotated.stdout.splitlines() if " created " in line]
        assert f"active kid: {created}" in rotated.stdout
    finally:
        local.send_signal(signal.SIGTERM)
        out, err = local.communicate(timeout=60)
    assert local.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err
    assert not state_file.exists()


def test_local_with_a_policy_of_its_own_signs_for_the_roles_it_names(tmp_path: Path):
    role = "arn:aws:iam::123456789012:role/orders-service"
    policy = tmp_path / "orders.yaml"
    policy.write_text(f'profiles:\n  orders:\n    callers: ["{role}"]\n    audiences: [orders-api]\n    subjects: ["user-[0-9]+"]\n')
    local, state = start_local(tmp_path, "--policy", str(policy))
    try:
        endpoint = str(state["moto_endpoint"])
        assert state["issuance_policy_file"] == str(policy.resolve())
        signed = run_cli(tmp_path, "--endpoint-url", endpoint, "sign", "--sub", "user-7", "--aud", "orders-api", "--role-arn", role)
        assert signed.returncode == 0, signed.stderr
        verified = run_cli(tmp_path, "--endpoint-url", endpoint, "verify", signed.stdout.strip(), "--audience", "orders-api")
        assert verified.returncode == 0, verified.stderr
        assert '"azp": "orders"' in verified.stdout
        demo = run_cli(tmp_path, "--endpoint-url", endpoint, "sign", "--sub", "user-7", "--aud", "orders-api")
        assert demo.returncode == 1
        assert demo.stderr.strip() == "error: sign refused: caller_not_allowed: the caller is not allowed to obtain tokens"
    finally:
        local.send_signal(signal.SIGTERM)
        out, err = local.communicate(timeout=60)
    assert local.returncode == 0, err
    assert f"issuance policy {policy.resolve()}  (policy; profiles: orders)" in out
    assert "demo caller     arn:aws:iam::123456789012:role/jwks-rotator-demo-caller  (no profile names it)" in out


def test_local_with_a_broken_policy_exits_2_with_the_loaders_line(tmp_path: Path):
    policy = tmp_path / "bad.yaml"
    policy.write_text("profiles:\n  orders:\n    callers: [nope]\n    audiences: [a]\n    subjects: [x]\n")
    done = subprocess.run(cli("local", *PORTS, "--policy", str(policy)), cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: invalid settings: issuance policy: profiles.orders.callers[0]: must be an IAM role ARN, arn:PARTITION:iam::ACCOUNT:role/NAME"
    assert done.stdout == ""


def test_the_operator_cli_imports_no_moto_and_not_the_local_package():
    probe = "import sys, jwks_rotator_cli.main; print(sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'jwks_rotator_local')))"
    done = subprocess.run([sys.executable, "-c", probe], env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_project_does_not_depend_on_moto_and_the_local_distribution_does():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    assert requirements and not [r for r in requirements if "moto" in r.lower()]
    local = tomllib.loads((REPO / "local" / "pyproject.toml").read_text())["project"]
    assert local["name"] == "jwks-rotator-local"
    assert any(r.startswith("moto[server]") for r in local["dependencies"])
    assert any(r.startswith("jwks-rotator") for r in local["dependencies"])


def test_local_without_the_local_package_says_what_to_install(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_LOCAL, "local", *PORTS], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: `jwks-rotator local` needs the local cloud package: pip install -e ./local (distribution jwks-rotator-local)"
    assert done.stdout == ""
    listing = subprocess.run([sys.executable, "-c", WITHOUT_LOCAL, "--help"], env=clean_env(), capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    commands = [line.split()[0] for line in listing.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert commands == ["audit", "doctor", "fault", "policy", "promote", "publish", "revoke", "rotate", "sign", "status", "verifiers", "verify"]
