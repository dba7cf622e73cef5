"""``jwks-rotator local``: the whole system in this process, until Ctrl-C, SIGTERM or ``--duration``; ``local env``.

The operator CLI finds this command when this package is installed (see
:mod:`jwks_rotator_cli.app`); it prints lifecycle changes as they happen and a
banner with the JWKS URL, the Lambda endpoint, the one AWS endpoint (Lambda
API paths to the functions, the rest to moto), the stack name, the STS
endpoint the sign function checks caller proofs with, the issuance policy and
the demo caller role. Before anything starts it checks that every port asked
for is free and that no other running stack owns the state file (:mod:`.ports`).
``local env`` prints the shell lines that let an unchanged service reach the
running stack (:mod:`.service_env`).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
import textwrap
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from jwks_rotator.core.durations import format_duration
from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.settings import SETTINGS
from jwks_rotator_cli.context import CliContext, given_settings, settings_options
from jwks_rotator_cli.local_state import DEMO_CALLER_ROLE, SIGN_FUNCTION, read_state_file
from jwks_rotator_cli.output import change_line, console

from .caller_roles import DEMO_POLICY_FILE, profiles_of
from .local_stack import LocalStack
from .ports import LocalStartError, check_can_start, claim_state_file, port_problems, release_state_file
from .regions import LocalRegions, parse_regions
from .service_env import service_env_command
from .stack_env import MANAGED_SETTINGS, POLICY_SETTING
from .stack_outputs import DEFAULT_STACK_NAME

PORT = click.IntRange(0, 65535)
"""A TCP port, 0 meaning any free one: out of range is a usage error naming the option, not a failed bind."""
REGION_SETTINGS = ("primary_region", "regions", "second_origin_bucket", "second_origin_region")
"""Settings ``local --regions`` sets for each region's stack (the first region is the primary; the second holds the second origin)."""
LOCAL_SETTINGS = tuple(spec for spec in SETTINGS if spec.attribute not in (*MANAGED_SETTINGS, POLICY_SETTING, *REGION_SETTINGS))
"""The deployment settings ``local`` takes as options (the stack's own resources, policy file and regions aside)."""
SETTING_GROUPS = (
    ("keys", ("algorithm", "rsa_key_size", "key_custody", "key_deletion_window", "kms_handover_wait", "kms_stack_tag",
              "kms_sign_role_arn", "kms_rotate_role_arn")),
    ("lifecycle", ("rotation_period", "publish_lead", "schedule", "retention", "jwks_max_age")),
    ("tokens", ("issuer", "max_token_ttl", "default_token_ttl", "allowed_audiences", "default_audience", "clock_skew_leeway",
                "signer_cache_ttl")),
    ("operations", ("operator_roles", "revocation_parameter")),
)
"""How ``local --help`` groups the deployment settings; a setting in no group is listed under ``other``."""
SETTINGS_REFERENCE = "docs/settings.md"


def setting_groups() -> list[tuple[str, list[str]]]:
    """``[(group, ["--rotation-period", ...])]`` for every setting ``local`` takes, each in exactly one group."""
    taken = {spec.attribute for spec in LOCAL_SETTINGS}
    groups = [(name, [f"--{a.replace('_', '-')}" for a in members if a in taken]) for name, members in SETTING_GROUPS]
    grouped = {a for _, members in SETTING_GROUPS for a in members}
    other = [f"--{spec.kebab}" for spec in LOCAL_SETTINGS if spec.attribute not in grouped]
    return [(name, options) for name, options in [*groups, ("other", other)] if options]


class LocalGroup(click.Group):
    """``local`` runs the stack; ``local env`` prints how a service reaches it. Help lists the settings grouped, one line each group."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        settings = {spec.attribute for spec in LOCAL_SETTINGS}
        rows = [rv for p in self.get_params(ctx) if p.name not in settings and (rv := p.get_help_record(ctx)) is not None]
        with formatter.section("Options"):
            formatter.write_dl(rows)
        with formatter.section("Deployment settings (each takes a value; also read from its environment variable, e.g. ROTATION_PERIOD)"):
            width = max(formatter.width - formatter.current_indent - 12, 40)
            for name, options in setting_groups():
                lines = textwrap.wrap(" ".join(options), width, break_on_hyphens=False)
                for index, line in enumerate(lines):
                    formatter.write(f"{'':>{formatter.current_indent}}{name if index == 0 else '':<12}{line}\n")
            formatter.write_paragraph()
            formatter.write_text(f"What each means, its format and default: {SETTINGS_REFERENCE}.")
        self.format_commands(ctx, formatter)


def cli_path() -> str:
    """How to run the CLI from any folder: ``jwks-rotator`` when PATH finds this one, else its absolute path."""
    beside = Path(sys.executable).parent / "jwks-rotator"
    found = shutil.which("jwks-rotator")
    if found and beside.exists() and Path(found).resolve() == beside.resolve():
        return "jwks-rotator"
    return str(beside.absolute()) if beside.exists() else "jwks-rotator"


@click.group("local", cls=LocalGroup, invoke_without_command=True)
@settings_options(exclude=(*MANAGED_SETTINGS, POLICY_SETTING, *REGION_SETTINGS))
@click.option("--port", type=PORT, default=8080, show_default=True, help="Port of the edge serving the JWKS and discovery documents (0: any).")
@click.option("--moto-port", type=PORT, default=5000, show_default=True, help="Port of the moto server standing in for AWS (0: any).")
@click.option("--lambda-port", type=PORT, default=3001, show_default=True, help="Port of the Lambda Invoke API (0: any).")
@click.option("--aws-port", type=PORT, default=4566, show_default=True, help="Port of the one AWS endpoint: the functions' Lambda API and moto (0: any).")
@click.option("--sts-port", type=PORT, default=0, show_default=True, help="Port of the STS endpoint that checks caller proofs (0: any).")
@click.option("--stack-name", default=DEFAULT_STACK_NAME, show_default=True, help="Name of the CloudFormation stack on the local moto.")
@click.option(
    "--regions", default=None, metavar="R1,R2",
    help="Deploy into each of these regions of the one local cloud, the first the primary (docs/regions.md) [default: us-east-1 alone].",
)
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Issuance policy file (who may obtain which tokens) [default: the demo policy, profile demo].",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds [default: run until Ctrl-C or SIGTERM].")
@click.option("--edge-cache/--no-edge-cache", default=True, show_default=True, help="Cache documents at the edge for their max-age, like CloudFront.")
@click.option("--verbose", is_flag=True, help="Show the functions' own JSON logs (INFO).")
@click.pass_context
def command(
    ctx: click.Context,
    /,
    port: int,
    moto_port: int,
    lambda_port: int,
    aws_port: int,
    stack_name: str,
    regions: str | None,
    sts_port: int,
    policy: Path | None,
    duration: float | None,
    edge_cache: bool,
    verbose: bool,
    **values: Any,
) -> None:
    """Run moto, a checking STS, the functions, the schedule and a caching edge in this process (local env: reach it from a service)."""
    if ctx.invoked_subcommand is not None:
        return
    obj: CliContext = ctx.obj
    try:
        region_list = parse_regions(regions) if regions is not None else ()
    except ConfigurationError as exc:
        raise click.BadParameter(exc.message, param_hint="--regions") from None
    out = console()
    err = console(stderr=True)
    ports = {"--port": port, "--moto-port": moto_port, "--lambda-port": lambda_port, "--aws-port": aws_port, "--sts-port": sts_port}
    check_can_start(ports, read_state_file(obj.state_file), obj.state_file)
    claim = claim_state_file(obj.state_file)  # before anything starts: a stack started at the same moment ends here
    try:

        def on_report(summary: dict[str, Any]) -> None:
            where = f"  in {summary['region']}" if summary.get("region") else ""  # several regions: whose rotate function ran
            for change in summary.get("changes", []):
                out.print(change_line(change["change"], change["kid"], change["reason"]) + where)
            for paths in summary.get("published", []):
                if paths:
                    out.print(f"[dim]{datetime.now():%H:%M:%S}  published {', '.join(paths)}{where}[/dim]")

        def on_error(message: str) -> None:
            err.print(f"[red]{datetime.now():%H:%M:%S}  {message}[/red]")

        options: dict[str, Any] = {
            "port": port, "moto_port": moto_port, "lambda_port": lambda_port, "sts_port": sts_port, "aws_port": aws_port,
            "stack_name": stack_name, "state_file": obj.state_file, "policy": policy, "edge_cache": edge_cache,
            "function_log_level": "INFO" if verbose else "WARNING", "on_report": on_report, "on_error": on_error,
        }
        stack: LocalStack | LocalRegions
        if regions is None:
            stack = LocalStack(given_settings(values), **options)
        else:
            stack = LocalRegions(region_list, given_settings(values), **options)
        stopping = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            into = "into each region" if regions is not None else "into it"
            err.print(f"[dim]starting moto, deploying template.yaml {into} and running the first rotation (a few seconds)...[/dim]")
            try:
                stack.start()
            except OSError as exc:  # a port taken between the check and the bind: name it again
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise LocalStartError("; ".join(port_problems(ports)) or f"a port is in use ({exc.strerror})") from None
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
        out.print("[dim]stopped: the local stack's keys, documents and state file are gone[/dim]")
    finally:
        release_state_file(obj.state_file, claim)  # a stack that never started leaves no file behind


command.add_command(service_env_command)


def print_banner(out: Console, stack: LocalStack | LocalRegions, state_file: str) -> None:
    """Where everything serves, the settings, and how to sign a token from Python (several regions: each one's functions)."""
    several = stack if isinstance(stack, LocalRegions) else None
    stack = several.stack(several.primary) if several is not None else stack
    assert isinstance(stack, LocalStack)
    s = stack.settings
    out.print("[bold]jwks-rotator local stack[/bold] is serving" + (" in every region: each one signed a token" if several else ""))
    if several is not None:
        others = "".join(f", {region}" for region in several.secondaries)
        out.print(f"  regions         {several.primary} (primary: the one writer){others}  (a stack in each, same name; one endpoint each below)")
    out.print(f"  JWKS URL        {stack.jwks_url}")
    out.print(f"  discovery       {stack.discovery_url}")
    out.print(f"  issuer          {stack.issuer}")
    for region_stack in [several.stack(region) for region in several.regions] if several is not None else [stack]:
        functions = ", ".join(f"{logical} = {region_stack.function_name(logical)}" for logical in region_stack.functions)
        where = f"{region_stack.region}: " if several is not None else ""
        out.print(f"  Lambda endpoint {region_stack.lambda_endpoint}  ({where}functions: {functions}; each answers to both names)")
    every = "every region's services by the request's signature" if several is not None else "every service"
    out.print(f"  AWS endpoint    {stack.endpoint}  ({every}, the functions' Lambda API included; moto at {stack.moto_endpoint}; state in {state_file})")
    out.print(f"  stack           {stack.stack_name}" + ("  (in each region)" if several is not None else ""))
    sts_note = "; a proof's scope picks the region, each region's signer takes only its own" if several is not None else ""
    out.print(f"  STS endpoint    {stack.sts_endpoint}  (checks caller proofs; moto's own STS does not{sts_note})")
    profiles = ", ".join(profile.name for profile in stack.policy.profiles) or "none"
    policy_name = "demo policy" if stack.policy_file == DEMO_POLICY_FILE else "policy"
    out.print(f"  issuance policy {stack.policy_file}  ({policy_name}; profiles: {profiles})")
    demo_profiles = profiles_of(stack.policy, DEMO_CALLER_ROLE)
    out.print(f"  demo caller     {DEMO_CALLER_ROLE}  " + (f"(profiles: {', '.join(demo_profiles)})" if demo_profiles else "(no profile names it)"))
    out.print(
        f"  settings        algorithm={s.algorithm} rotation-period={format_duration(s.rotation_period)} "
        f"publish-lead={format_duration(s.publish_lead)} schedule={format_duration(s.schedule)} "
        f"max-token-ttl={format_duration(s.max_token_ttl)} jwks-max-age={format_duration(s.jwks_max_age)} "
        f"retention={format_duration(s.effective_retention)}"
    )
    operator = f"{cli_path()} --endpoint-url {stack.endpoint} --stack {stack.stack_name}"
    out.print(f"  operator        {operator} status")
    out.print(f"  sign            {operator} sign --sub alice --aud demo")
    out.print(f"  check           {operator} doctor")
    if several is not None:
        out.print(f"  other regions   add --region REGION to the commands above (e.g. {operator} --region {several.regions[-1]} status)")
        out.print(f"  faults          {cli_path()} --endpoint-url {stack.endpoint} fault region-outage|clear REGION, fault replica-lag REGION SECONDS")
    out.print(f"  your service    eval \"$({cli_path()} local env)\"  (run in {os.getcwd()}: endpoints, sign function, demo caller credentials)")
    out.print("[yellow]  local state lives only in this process: keys, documents and the state file are gone when it stops[/yellow]")
    out.print("[dim]# sign a token from Python as the demo caller (jwks_rotator_client proves the caller's role):[/dim]")
    out.print(python_snippet(stack), markup=False)
    out.print("[dim]Ctrl-C to stop[/dim]")


def python_snippet(stack: LocalStack) -> str:
    """Python that assumes the demo caller role on moto and signs through SignClient (proofs for the local STS)."""
    return (
        "import boto3\n"
        "from jwks_rotator_client import SignClient\n"
        f'sts = boto3.client("sts", endpoint_url="{stack.moto_endpoint}", region_name="{stack.region}",\n'
        '                   aws_access_key_id="testing", aws_secret_access_key="testing")\n'
        f'creds = sts.assume_role(RoleArn="{DEMO_CALLER_ROLE}", RoleSessionName="demo")["Credentials"]\n'
        'session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],\n'
        f'                        aws_session_token=creds["SessionToken"], region_name="{stack.region}")\n'
        f'client = SignClient(function_name="{stack.function_name(SIGN_FUNCTION)}", lambda_client=session.client("lambda", endpoint_url="{stack.lambda_endpoint}"),\n'
        f'                    session=session, sts_endpoint_url="{stack.sts_endpoint}")\n'
        'print(client.sign({"sub": "alice", "aud": "demo"}))'
    )
