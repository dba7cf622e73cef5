"""``jwks-rotator rotate [--now]``, ``revoke KID``, ``publish [--accept-restore]`` and ``promote REGION``: the stack's rotate
function does them (``promote``: the rotate function in REGION, after asking the old primary's to step down).

Each command invokes the rotate function (Lambda, RequestResponse) with the
operation and a proof of the operator's identity, so the operation runs with
the stack's own settings and is audited there; the function refuses callers
whose role is not in its ``operator-roles``. The command prints the function's
summary; a refusal or a failed run is one line on stderr and exit status 1.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from jwks_rotator.core import errors

from .app import fail
from .context import CliContext, refuse_stack_options
from .local_state import OPERATOR_ROLE, ROTATE_FUNCTION
from .output import console, print_summary
from .proving import proving_client
from .stack import function_environment

_THUMBPRINT_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
"""An RFC 7638 SHA-256 thumbprint, base64url without padding: the shape of every kid this project makes."""

F = TypeVar("F", bound=Callable[..., Any])

_CODES = {cls.__name__: cls.code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.JwksRotatorError)}
"""Error codes by exception class name: Lambda reports a failed run by the class raised."""


def operator_options(func: F) -> F:
    """The options saying which rotate function to invoke and as whom."""
    options = [
        click.option(
            "--function-name",
            default=None,
            envvar="ROTATE_FUNCTION_NAME",
            show_envvar=True,
            help="Name or ARN of the stack's rotate function [default: the local stack's, when --endpoint-url names it].",
        ),
        click.option("--lambda-endpoint-url", default=None, help="Lambda API endpoint [default: the local stack's when --endpoint-url names it, else AWS]."),
        click.option(
            "--role-arn",
            default=None,
            help="Assume this role and prove its identity [default: the default credential chain; against the local stack, its operator role].",
        ),
        click.option(
            "--sts-endpoint-url",
            default=None,
            help="STS endpoint the rotate function checks proofs with [default: the local stack's, else the region's; AWS_ENDPOINT_URL_STS honoured].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _function_name(obj: CliContext, given: str | None) -> str:
    """``--function-name`` / ``ROTATE_FUNCTION_NAME``, else the local stack's, else ``--stack``'s rotate function; exit 2 when none."""
    if given:
        return given
    state = obj.local_state()
    if state is not None:
        return str(state.get("rotate_function") or ROTATE_FUNCTION)
    stack = obj.stack(fallback=True)
    if stack is not None:
        return stack.rotate_function_name
    fail("name the stack (--stack) or its rotate function (--function-name or ROTATE_FUNCTION_NAME)", 2)


def _stack_defaults(obj: CliContext, options: dict[str, Any], function_name: str) -> tuple[str | None, str | None]:
    """The role and STS endpoint a stack named with ``--stack`` implies: the function's own STS_ENDPOINT_URL (the endpoint it
    checks proofs with; unset on AWS, where the region's is right) and, for a local stack, its operator role."""
    role_arn, sts_endpoint_url = options["role_arn"], options["sts_endpoint_url"]
    if obj.local_state() is not None:
        return role_arn, sts_endpoint_url
    stack = obj.stack(fallback=not options["function_name"])
    if stack is None:
        return role_arn, sts_endpoint_url
    if sts_endpoint_url is None:
        lambda_client = obj.client("lambda", endpoint_url=options["lambda_endpoint_url"] or obj.lambda_endpoint())
        sts_endpoint_url = function_environment(lambda_client, function_name).get("STS_ENDPOINT_URL") or None
    return role_arn or stack.operator_role_arn, sts_endpoint_url


def _failed(function_name: str, exc: Exception) -> NoReturn:
    """One line for a run that raised: its error code and message when Lambda names a product error, else the invoke's failure."""
    kind = getattr(exc, "error_type", None)
    message = getattr(exc, "error_message", None)
    code = _CODES.get(kind or "")
    if code and message:
        fail(f"{code}: {message} (the rotate function failed; its alarm and dead-letter queue see it)", 1)
    fail(f"{function_name}: {exc}", 1)


def invoke_operation(obj: CliContext, options: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The rotate function's summary of ``event`` run as an operator; exits 1 with one line on a refusal or a failure."""
    from jwks_rotator_client import InvokeError, OperatorClient

    refuse_stack_options(obj, "function_name")
    function_name = _function_name(obj, options["function_name"])
    role_arn, sts_endpoint_url = _stack_defaults(obj, options, function_name)
    client = proving_client(
        obj, OperatorClient, function_name, role_arn=role_arn, sts_endpoint_url=sts_endpoint_url,
        lambda_endpoint_url=options["lambda_endpoint_url"], local_role=str((obj.local_state() or {}).get("operator_role") or OPERATOR_ROLE),
    )
    try:
        summary = client.operate(**event)
    except InvokeError as exc:
        _failed(function_name, exc)
    if "error" in summary:
        fail(f"{summary['error']}: {summary.get('message', '')}", 1)
    return summary


@click.command()
@click.option("--now", "emergency", is_flag=True, help="Emergency rotation: a fresh key signs as soon as it is published (skips the publish lead).")
@operator_options
@click.pass_obj
def rotate(obj: CliContext, /, emergency: bool, **options: Any) -> None:
    """Run one tick (apply what is due), or rotate at once with --now."""
    summary = invoke_operation(obj, options, {"operation": "rotate-now" if emergency else "tick"})
    print_summary(summary, nothing="nothing was due")


class KidArgumentCommand(click.Command):
    """A command whose KID argument may start with ``-``, as one RFC 7638 thumbprint in 32 does, with no ``--`` needed.

    A token shaped like a thumbprint (43 base64url characters) that starts with ``-`` is read as the argument,
    never as options: click would otherwise take ``-P...`` for unknown short flags.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args:
            dashed = [arg for arg in args if arg.startswith("-") and _THUMBPRINT_SHAPE.fullmatch(arg)]
            if dashed:
                args = [arg for arg in args if arg not in dashed] + ["--", *dashed]
        return super().parse_args(ctx, args)


@click.command(cls=KidArgumentCommand)
@click.argument("kid")
@operator_options
@click.pass_obj
def revoke(obj: CliContext, /, kid: str, **options: Any) -> None:
    """Remove KID from the keyring and the published JWKS at once."""
    summary = invoke_operation(obj, options, {"operation": "revoke", "kid": kid})
    print_summary(summary, nothing="nothing changed")


_ACCEPT_RESTORE_HELP = (
    "Accept a keyring secret restored to an older version: overwrite the published JWKS and discovery documents, "
    "which come from a newer keyring, with the restored keyring's. Keys only the newer keyring held leave the JWKS and "
    "tokens they signed stop verifying; the signer, which refuses to sign while a restore waits, signs again."
)


@click.command()
@click.option("--accept-restore", is_flag=True, help=_ACCEPT_RESTORE_HELP)
@operator_options
@click.pass_obj
def publish(obj: CliContext, /, accept_restore: bool, **options: Any) -> None:
    """Write the documents if they differ from the keyring, and invalidate them.

    When the keyring secret was restored to an older version the rotator stops
    (keyring_behind_publication) and holds the signer; --accept-restore is the
    operator's consent to publish the restored keyring over the newer documents.
    """
    event: dict[str, Any] = {"operation": "publish", **({"accept_restore": True} if accept_restore else {})}
    summary = invoke_operation(obj, options, event)
    print_summary(summary, nothing="documents already up to date")
    if accept_restore:
        console().print(f"keyring accepted as it is: the documents follow it; active kid {summary.get('active_kid') or 'none'}")


def _old_primary(obj: CliContext, options: dict[str, Any]) -> str | None:
    """The primary region the target's rotate function is deployed with (its PRIMARY_REGION), None when it names none."""
    function_name = _function_name(obj, options["function_name"])
    lambda_client = obj.client("lambda", endpoint_url=options["lambda_endpoint_url"] or obj.lambda_endpoint())
    return function_environment(lambda_client, function_name).get("PRIMARY_REGION") or None


def _step_down(obj: CliContext, options: dict[str, Any], old: str, target: str) -> str:
    """Ask the old primary's rotate function (same stack name, region ``old``) to step down in favour of ``target``.

    Never fails the command: one line saying what happened. The promote itself checks the old primary again.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from jwks_rotator_client import InvokeError, OperatorClient

    there = dataclasses.replace(obj, region=old)
    try:
        if options["function_name"] or there.local_state() is not None:
            name = str(options["function_name"] or (there.local_state() or {}).get("rotate_function") or ROTATE_FUNCTION)
            function_name = _in_region(name, old)
        else:
            function_name = there.require_stack().rotate_function_name
        role_arn, sts_endpoint_url = _stack_defaults(there, {**options, "function_name": function_name}, function_name)
        client = proving_client(
            there, OperatorClient, function_name, role_arn=role_arn, sts_endpoint_url=sts_endpoint_url,
            lambda_endpoint_url=options["lambda_endpoint_url"],
            local_role=str((there.local_state() or {}).get("operator_role") or OPERATOR_ROLE),
        )
        answer = client.step_down(target)
    except (InvokeError, BotoCoreError, ClientError, errors.JwksRotatorError) as exc:
        return f"old primary {old}: no step-down ({type(exc).__name__}: {_first_line(exc)}); promote checks whether it is unreachable"
    if "error" in answer:
        return f"old primary {old}: step-down refused ({answer['error']}: {answer.get('message', '')})"
    done = "had already stepped down" if answer.get("already") else "stepped down"
    return f"old primary {old}: {done}: its keyring names {target} the writer (generation {answer.get('generation')})"


def _in_region(function_name: str, region: str) -> str:
    """A function ARN moved to ``region`` (a name is the same in every region's stack)."""
    parts = function_name.split(":")
    if function_name.startswith("arn:") and len(parts) >= 7:
        parts[3] = region
        return ":".join(parts)
    return function_name


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


@click.command()
@click.argument("region")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-step-down", is_flag=True,
              help="Do not ask the old primary's rotate function to step down first (promote then needs it unreachable).")
@operator_options
@click.pass_obj
def promote(obj: CliContext, /, region: str, yes: bool, no_step_down: bool, **options: Any) -> None:
    """Make REGION the writer when the primary is down: its keyring replica becomes the keyring of record.

    Runs in REGION's own rotate function (pass --region REGION). First runs the promote's checks there (a check changes
    nothing: a refusal stops here, before the old primary is asked anything), then asks the old primary's rotate
    function to step down (it then writes nothing); the promote then refuses unless the old primary is unreachable or
    stepped down, and unless REGION's replica holds the newest keyring generation the published documents carry.
    It does not enable REGION's schedule: the output says the next step. Audited in REGION.
    """
    here = obj.region_name()
    if region != here:
        fail(f"promote {region} runs in {region}'s own rotate function: pass --region {region} (this command's region is {here})", 2)
    out = console()
    # Every check that changes nothing runs first: a promote that would be refused must not leave the stack without a
    # writer by stepping the old primary down (a refusal here is one line, exit 1, and nothing asked of the old primary).
    checked = invoke_operation(obj, options, {"operation": "promote", "region": region, "check": True})
    if checked.get("already_primary"):
        out.print(f"{region} already is the writer: nothing to do (keyring generation {checked.get('generation')})")
        return
    old = str(checked.get("old_primary") or "") or _old_primary(obj, options)
    out.print(f"checked: {checked.get('would') or 'promote'}")
    if not yes:
        click.confirm(
            f"Make {region} the writer in place of {old or 'the primary'}? Its replica becomes the keyring of record, "
            f"and {old or 'the old primary'} must then be updated to a secondary",
            abort=True, err=True,
        )
    if old and old != region and not no_step_down:
        out.print(_step_down(obj, options, old, region))
    summary = invoke_operation(obj, options, {"operation": "promote", "region": region})
    generation = summary.get("generation")
    if summary.get("already_primary"):
        out.print(f"{region} already is the writer: nothing to do (keyring generation {generation})")
        return
    state = {"unreachable": "unreachable", "stepped_down": "stepped down"}.get(str(summary.get("old_primary_state")), "?")
    out.print(f"promoted {region}: the writer now, in place of {summary.get('old_primary')} ({state}); keyring generation {generation}")
    if not summary.get("publish_error"):
        print_summary(summary, nothing="documents already up to date")
    else:
        out.print(f"[yellow]the first publication failed ({summary.get('publish_error')}): run "
                  f"jwks-rotator --region {region} publish[/yellow]")
    out.print(f"next: {region}'s schedule stays as deployed (a secondary's is disabled): enable it, or run "
              f"jwks-rotator --region {region} rotate as needed; update the stacks with PrimaryRegion={region} (docs/regions.md, Promote)")
