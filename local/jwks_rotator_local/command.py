"""``jwks-rotator local``: the whole system in this process, until Ctrl-C, SIGTERM or ``--duration``.

The operator CLI finds this command when this package is installed (see
:mod:`jwks_rotator_cli.app`); it prints lifecycle changes as they happen and a
banner with the JWKS URL, the Lambda endpoint and the AWS endpoint.
"""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from typing import Any

import click
from rich.console import Console

from jwks_rotator.core.durations import format_duration
from jwks_rotator_cli.context import CliContext, given_settings, settings_options
from jwks_rotator_cli.local_state import SIGN_FUNCTION
from jwks_rotator_cli.output import change_line, console

from .local_stack import MANAGED_SETTINGS, LocalStack


@click.command("local")
@settings_options(exclude=MANAGED_SETTINGS)
@click.option("--port", type=int, default=8080, show_default=True, help="Port of the edge serving the JWKS and discovery documents (0: any).")
@click.option("--moto-port", type=int, default=5000, show_default=True, help="Port of the moto server standing in for AWS (0: any).")
@click.option("--lambda-port", type=int, default=3001, show_default=True, help="Port of the Lambda Invoke API (0: any).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until Ctrl-C or SIGTERM).")
@click.option("--edge-cache/--no-edge-cache", default=True, show_default=True, help="Cache documents at the edge for their max-age, like CloudFront.")
@click.option("--verbose", is_flag=True, help="Show the functions' own JSON logs (INFO).")
@click.pass_obj
def command(obj: CliContext, /, port: int, moto_port: int, lambda_port: int, duration: float | None, edge_cache: bool, verbose: bool, **values: Any) -> None:
    """Run moto, the functions, the schedule and a caching edge in this process."""
    out = console()
    err = console(stderr=True)

    def on_report(summary: dict[str, Any]) -> None:
        for change in summary.get("changes", []):
            out.print(change_line(change["change"], change["kid"], change["reason"]))
        for paths in summary.get("published", []):
            if paths:
                out.print(f"[dim]{datetime.now():%H:%M:%S}  published {', '.join(paths)}[/dim]")

    def on_error(message: str) -> None:
        err.print(f"[red]{datetime.now():%H:%M:%S}  {message}[/red]")

    stack = LocalStack(
        given_settings(values),
        port=port,
        moto_port=moto_port,
        lambda_port=lambda_port,
        state_file=obj.state_file,
        edge_cache=edge_cache,
        function_log_level="INFO" if verbose else "WARNING",
        on_report=on_report,
        on_error=on_error,
    )
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        print_banner(out, stack, obj.state_file)
        deadline = None if duration is None else datetime.now().timestamp() + duration
        while not stopping.is_set():
            remaining = 0.5 if deadline is None else min(0.5, deadline - datetime.now().timestamp())
            if remaining <= 0:
                break
            stopping.wait(remaining)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stack.stop()
    out.print("[dim]stopped[/dim]")


def print_banner(out: Console, stack: LocalStack, state_file: str) -> None:
    """Where everything serves, the settings, and how to sign a token from Python."""
    s = stack.settings
    out.print("[bold]jwks-rotator local stack[/bold] is serving")
    out.print(f"  JWKS URL        {stack.jwks_url}")
    out.print(f"  discovery       {stack.discovery_url}")
    out.print(f"  issuer          {stack.issuer}")
    out.print(f"  Lambda endpoint {stack.lambda_endpoint}  (functions: {', '.join(stack.functions)})")
    out.print(f"  AWS endpoint    {stack.moto_endpoint}  (moto; state in {state_file})")
    out.print(
        f"  settings        algorithm={s.algorithm} rotation-period={format_duration(s.rotation_period)} "
        f"publish-lead={format_duration(s.publish_lead)} schedule={format_duration(s.schedule)} "
        f"max-token-ttl={format_duration(s.max_token_ttl)} jwks-max-age={format_duration(s.jwks_max_age)} "
        f"retention={format_duration(s.effective_retention)}"
    )
    out.print("  operator        jwks-rotator --endpoint-url " + stack.moto_endpoint + " status")
    out.print("[dim]# sign a token from Python (unchanged service code):[/dim]")
    out.print(
        "import boto3, json\n"
        f'lam = boto3.client("lambda", endpoint_url="{stack.lambda_endpoint}", region_name="{stack.region}",\n'
        '                   aws_access_key_id="testing", aws_secret_access_key="testing")\n'
        f'resp = lam.invoke(FunctionName="{SIGN_FUNCTION}", Payload=json.dumps({{"sub": "alice", "aud": "demo"}}))\n'
        'print(json.loads(resp["Payload"].read()))',
        markup=False,
    )
    out.print("[dim]Ctrl-C to stop[/dim]")
