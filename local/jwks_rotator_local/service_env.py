"""``jwks-rotator local env``: shell lines that let an unchanged service reach the running local stack.

Run in the folder where ``jwks-rotator local`` runs, it finds the stack from its state file (never from
``AWS_ENDPOINT_URL``), assumes the demo caller role on the stack's moto and prints ``export`` lines: the one AWS
endpoint (Lambda Invoke reaches the functions there), the STS endpoint that checks caller proofs (under the name
the Python client reads, ``AWS_ENDPOINT_URL_STS``, and the one the Node example reads, ``STS_ENDPOINT_URL``), the
region, the sign function's name and the demo caller's temporary credentials. ``eval "$(jwks-rotator local env)"``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import click
from botocore.config import Config

from jwks_rotator_cli.context import CliContext
from jwks_rotator_cli.local_state import DEFAULT_REGION, DEMO_CALLER_ROLE, SIGN_FUNCTION, read_state_file

from .ports import LocalStartError, stack_alive

SESSION_NAME = "local-service"
CREDENTIAL_SECONDS = 43_200


class NoLocalStackError(LocalStartError):
    """No running local stack wrote the state file ``local env`` reads."""

    code = "no_local_stack"


def running_state(state_file: str) -> dict[str, Any]:
    """The state of the stack that wrote ``state_file`` and still runs; :class:`NoLocalStackError` saying what to do otherwise."""
    state = read_state_file(state_file)
    where = Path(state_file).absolute()
    if state is None:
        raise NoLocalStackError(
            f"no local stack state at {where}: run this in the folder where `jwks-rotator local` (make run) is running, "
            "or pass --state-file"
        )
    pid = state.get("pid")
    if isinstance(pid, int) and not stack_alive(state):
        raise NoLocalStackError(f"the local stack that wrote {where} (pid {pid}) is no longer running: start it again")
    return state


def shell_lines(state: Mapping[str, Any], credentials: Mapping[str, str]) -> list[str]:
    """The ``export`` lines for ``state`` and the demo caller's ``credentials`` (AccessKeyId, SecretAccessKey, SessionToken)."""
    region = str(state.get("region") or DEFAULT_REGION)
    sts = str(state["sts_endpoint"])
    values = [
        ("AWS_ENDPOINT_URL", str(state.get("endpoint") or state["aws_endpoint"])),
        ("AWS_ENDPOINT_URL_STS", sts),
        ("STS_ENDPOINT_URL", sts),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
        ("SIGN_FUNCTION_NAME", str(state.get("sign_function") or SIGN_FUNCTION)),
        ("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"]),
        ("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"]),
        ("AWS_SESSION_TOKEN", credentials["SessionToken"]),
    ]
    role = str(state.get("demo_caller_role") or DEMO_CALLER_ROLE)
    about = f"the local stack {state.get('stack_name', '')} as the demo caller {role}"
    return [
        f"# {' '.join(about.split())} (its STS accepts only moto-issued credentials)",  # one line: a newline would start a command
        *(f"export {name}={shlex.quote(value)}" for name, value in values),
        "unset AWS_PROFILE",
    ]


def demo_caller_credentials(state: Mapping[str, Any]) -> dict[str, str]:
    """Temporary credentials of the stack's demo caller role, issued by its moto."""
    sts = boto3.client(
        "sts", endpoint_url=str(state["moto_endpoint"]), region_name=str(state.get("region") or DEFAULT_REGION),
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}),
    )
    role = str(state.get("demo_caller_role") or DEMO_CALLER_ROLE)
    answer = sts.assume_role(RoleArn=role, RoleSessionName=SESSION_NAME, DurationSeconds=CREDENTIAL_SECONDS)["Credentials"]
    return {k: str(answer[k]) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}


@click.command("env")
@click.pass_obj
def service_env_command(obj: CliContext) -> None:
    """Print export lines that let a service reach the running stack: eval "$(jwks-rotator local env)"."""
    state = running_state(obj.state_file)
    for line in shell_lines(state, demo_caller_credentials(state)):
        click.echo(line)
