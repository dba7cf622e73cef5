"""``local env``'s shell lines: every value from the state file or moto reaches the shell as data, never as a command."""

from __future__ import annotations

import subprocess
from typing import Any

from jwks_rotator_local import service_env
from jwks_rotator_local.service_env import demo_caller_credentials, shell_lines

CREDENTIALS = {"AccessKeyId": "ASIA$(touch pwned)", "SecretAccessKey": "s'`id`", "SessionToken": "t;id"}


def test_a_state_file_cannot_run_a_command_through_eval(tmp_path):
    state = {
        "stack_name": "demo\ntouch pwned-by-name #", "demo_caller_role": "arn:aws:iam::1:role/r\ntouch pwned-by-role #",
        "sts_endpoint": "http://127.0.0.1:1/$(touch pwned)", "endpoint": "http://127.0.0.1:2", "region": "us-east-1",
        "sign_function": "fn;touch pwned",
    }
    lines = shell_lines(state, CREDENTIALS)
    script = "\n".join(lines) + '\nprintf "%s" "$AWS_SESSION_TOKEN|$SIGN_FUNCTION_NAME"'
    done = subprocess.run(["bash", "-c", 'eval "$(cat)"'], input=script, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []
    assert done.stdout == "t;id|fn;touch pwned"
    assert all("\n" not in line and "\r" not in line for line in lines)


def test_the_demo_callers_credentials_are_asked_for_with_timeouts(monkeypatch):
    """A state file naming a moto that does not answer must not hold `local env` for botocore's default minutes."""
    made: list[dict[str, Any]] = []

    class Sts:
        def assume_role(self, **_: Any) -> dict[str, Any]:
            return {"Credentials": {"AccessKeyId": "a", "SecretAccessKey": "s", "SessionToken": "t"}}

    def client(service: str, **kwargs: Any) -> Sts:
        made.append(kwargs)
        return Sts()

    monkeypatch.setattr(service_env.boto3, "client", client)
    assert demo_caller_credentials({"moto_endpoint": "http://127.0.0.1:1"})["SessionToken"] == "t"
    assert made[0]["config"].connect_timeout <= 5 and made[0]["config"].read_timeout <= 30
