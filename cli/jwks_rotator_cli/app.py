"""The ``jwks-rotator`` command group: global options, one-line failures, and the optional ``local`` command.

``local`` comes from the local cloud package (``jwks_rotator_local``, the
``jwks-rotator-local`` distribution). The group looks for it only when asked
for its commands, so the operator CLI neither imports nor requires it; without
it, ``jwks-rotator local`` prints one line saying what to install.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
from typing import Any, NoReturn

import click
from botocore.exceptions import BotoCoreError, ClientError

from jwks_rotator.core.errors import ConfigurationError, JwksRotatorError

from .context import CliContext
from .local_state import STATE_FILE_NAME
from .stack import STACK_ENV, StackError

LOCAL_COMMAND = "local"
LOCAL_PACKAGE = "jwks_rotator_local"
LOCAL_COMMAND_MODULE = f"{LOCAL_PACKAGE}.command"
LOCAL_MISSING = "`jwks-rotator local` needs the local cloud package: pip install -e ./local (distribution jwks-rotator-local)"


def fail(message: str, code: int, *, error: str = "error") -> NoReturn:
    """End the command with ``error: MESSAGE`` on stderr and exit ``code``; under ``--json`` also ``{"error", "message"}`` on stdout."""
    click.echo(f"error: {message}", err=True)
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(CliContext) if ctx is not None else None
    if obj is not None and obj.json_output and not obj.json_written:
        obj.json_written = True
        click.echo(json.dumps({"error": error, "message": message}))
    raise click.exceptions.Exit(code)


def local_package_available() -> bool:
    """Whether the local cloud package can be imported (looked up, not imported)."""
    try:
        return importlib.util.find_spec(LOCAL_PACKAGE) is not None
    except (ImportError, ValueError):
        return False


def _local_command() -> click.Command:
    """The local cloud package's ``local`` command, or a hidden one that says to install it."""
    if local_package_available():
        try:
            command = importlib.import_module(LOCAL_COMMAND_MODULE).command
        except ModuleNotFoundError as exc:
            if exc.name not in (LOCAL_PACKAGE, LOCAL_COMMAND_MODULE):
                raise
        else:
            if isinstance(command, click.Command):
                return command
    return _missing_local


@click.command(
    LOCAL_COMMAND,
    hidden=True,
    add_help_option=False,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
def _missing_local() -> None:
    """Stands in for ``local`` when the local cloud package is not installed."""
    fail(LOCAL_MISSING, 1)


class CliGroup(click.Group):
    """Turns every product, AWS and OS failure into one line on stderr; never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted([*names, LOCAL_COMMAND]) if local_package_available() and LOCAL_COMMAND not in names else names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == LOCAL_COMMAND and cmd_name not in self.commands:
            return _local_command()
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            fail(f"invalid settings: {exc.message}", 2, error=exc.code)
        except StackError as exc:
            fail(exc.message, 1, error=exc.code)
        except JwksRotatorError as exc:
            fail(f"{exc.code}: {exc.message}", 1, error=exc.code)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            fail(f"AWS {exc.operation_name}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": "), 1)
        except BotoCoreError as exc:
            fail(f"AWS: {exc}", 1)
        except OSError as exc:
            fail(f"{type(exc).__name__}: {exc.strerror or exc}", 1)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if os.environ.get("JWKS_ROTATOR_DEBUG"):
                raise
            fail(f"unexpected {type(exc).__name__}: {exc}", 1)


def cli_version() -> str:
    """The installed distribution's version."""
    try:
        return importlib.metadata.version("jwks-rotator")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(cli_version(), "--version", prog_name="jwks-rotator", message="%(prog)s %(version)s")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None, help="AWS endpoint (the local stack's moto URL); default: AWS itself.")
@click.option(
    "--stack",
    "stack_name",
    envvar=STACK_ENV,
    default=None,
    metavar="NAME",
    help="CloudFormation stack to act on: its outputs name the functions, secret, bucket and URLs, its rotate function's "
    "configuration gives the settings [default: samconfig.toml's stack_name in this folder, when a command needs one].",
)
@click.option("--region", default=None, help="AWS region [default: AWS_REGION, AWS_DEFAULT_REGION, the local stack's, us-east-1].")
@click.option(
    "--state-file",
    envvar="JWKS_ROTATOR_LOCAL_STATE",
    default=STATE_FILE_NAME,
    show_default=True,
    help="State file `local` writes; read when --endpoint-url names its endpoint.",
)
@click.pass_context
def cli(ctx: click.Context, endpoint_url: str | None, stack_name: str | None, region: str | None, state_file: str) -> None:
    """Rotate signing keys, publish the JWKS, issue and verify tokens; run the whole system locally."""
    ctx.obj = CliContext(endpoint_url or None, region, state_file, stack_name=stack_name or None)
