"""The global options and what follows from them: the stack, settings, the local stack's state and AWS clients.

Where a command's settings come from: when ``--stack``/``JWKS_ROTATOR_STACK`` names a stack, from that
stack alone (its outputs and the rotate function's environment, see :mod:`.stack`); a setting given by option
or environment variable is then refused, named as it was set, never applied. Otherwise, first found wins: the
command's options and environment variables; when ``--endpoint-url`` names a running ``jwks-rotator local``,
its state file; when a required setting is still missing, the stack ``samconfig.toml`` in the working
directory names (against a loopback endpoint, a stack missing there says the state file was not found); then
the defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.settings import SETTINGS, SETTINGS_BY_ATTRIBUTE, Settings

from .local_state import DEFAULT_REGION, read_state_file
from .stack import SAMCONFIG_FILE, StackError, StackInfo, describe_stack, function_environment, samconfig_stack_name, stack_settings_env

F = TypeVar("F", bound=Callable[..., Any])

_ENV_TO_ATTRIBUTE = {spec.env: spec.attribute for spec in SETTINGS}
_ATTRIBUTES = frozenset(spec.attribute for spec in SETTINGS)
_LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
def no_local_state(endpoint_url: str | None, state_file: str) -> str:
    """Why a loopback endpoint names no stack: the local stack's state file is not here (samconfig.toml names a deployed one)."""
    return (
        f"no local stack state file {Path(state_file).absolute()} for {endpoint_url}: run in the folder where "
        "`jwks-rotator local` runs, or pass --stack NAME (the banner's `stack` line)"
    )


NO_STACK = "no stack named: pass --stack NAME (or set JWKS_ROTATOR_STACK, or run where samconfig.toml names one)"


def json_option(func: F) -> F:
    """``--json``: exactly one JSON document on stdout (notes and failures also go to stderr)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        obj = ctx.find_object(CliContext)
        if obj is not None and value:
            obj.json_output = True
        return value

    return click.option("--json", "as_json", is_flag=True, expose_value=False, is_eager=True, callback=remember, help="Print one JSON document on stdout.")(func)


def emit_json(obj: CliContext, document: Mapping[str, Any]) -> None:
    """Write the command's one JSON document on stdout."""
    obj.json_written = True
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def settings_options(*, exclude: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> Callable[[F], F]:
    """One option per setting (``--rotation-period``), read from ``ROTATION_PERIOD`` too; None when not given.

    ``only``: the settings the command uses (each command lists only those); ``exclude``: all but these.
    """

    def decorate(func: F) -> F:
        for spec in reversed(SETTINGS):
            if spec.attribute in exclude or (only is not None and spec.attribute not in only):
                continue
            default = spec.default or "empty"
            func = click.option(
                f"--{spec.kebab}",
                spec.attribute,
                envvar=spec.env,
                show_envvar=True,
                default=None,
                metavar="TEXT",
                help=f"{spec.doc} [default: {default}]",
            )(func)
        return func

    return decorate


def given_settings(values: Mapping[str, Any]) -> dict[str, str]:
    """The settings among a command's option values that were given (by option or environment)."""
    return {k: v for k, v in values.items() if k in _ATTRIBUTES and v is not None}


def as_given(attributes: Iterable[str], ctx: click.Context | None = None) -> list[str]:
    """Each setting named exactly as the user set it: its environment variable (``ROTATION_PERIOD``) or its option."""
    ctx = ctx or click.get_current_context(silent=True)
    names = []
    for attribute in sorted(attributes):
        spec = SETTINGS_BY_ATTRIBUTE[attribute]
        source = ctx.get_parameter_source(attribute) if ctx is not None else None
        names.append(spec.env if source is ParameterSource.ENVIRONMENT else f"--{spec.kebab}")
    return names


def refuse_overrides(stack_name: str, names: list[str]) -> None:
    """With a named stack every setting is the stack's: a setting given anyway is refused (ConfigurationError), never applied."""
    if names:
        raise ConfigurationError(
            f"{', '.join(names)} would override stack {stack_name}'s own setting{'s' if len(names) > 1 else ''}: with --stack every "
            "setting comes from the stack; unset or drop it (or drop --stack to use options and defaults)"
        )


def refuse_stack_options(obj: CliContext, *names: str, ctx: click.Context | None = None) -> None:
    """With a named stack, refuse a command's options that name what the stack owns (its functions, log group, JWKS,
    leeway): given by option or environment, each is named as set (``ROTATE_FUNCTION_NAME``, ``--function-name``)."""
    ctx = ctx or click.get_current_context()
    if not obj.stack_name:
        return
    given = []
    for param in ctx.command.params:
        if param.name not in names or ctx.params.get(param.name) is None:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is ParameterSource.ENVIRONMENT and isinstance(param.envvar, str):
            given.append(param.envvar)
        elif source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given.append(param.opts[0])
    refuse_overrides(obj.stack_name, given)


def same_endpoint(a: str, b: str) -> bool:
    """Whether two endpoint URLs name the same server (``localhost`` is ``127.0.0.1``)."""

    def norm(url: str) -> str:
        return url.strip().rstrip("/").lower().replace("://localhost:", "://127.0.0.1:")

    return bool(a) and bool(b) and norm(a) == norm(b)


def is_loopback(url: str | None) -> bool:
    """Whether ``url`` names a server on this machine (a local stack, never AWS)."""
    return bool(url) and (urlsplit(str(url)).hostname or "") in _LOOPBACK_HOSTS


@dataclass
class CliContext:
    """Global options and what follows from them (the stack and its settings are read once, when first needed)."""

    endpoint_url: str | None
    region: str | None
    state_file: str
    stack_name: str | None = None
    working_directory: str = "."
    _stack: StackInfo | None = field(default=None, init=False, repr=False)
    _stack_env: dict[str, str] | None = field(default=None, init=False, repr=False)
    _samconfig_used: bool = field(default=False, init=False, repr=False)
    json_output: bool = False
    json_written: bool = False

    def local_state(self) -> dict[str, Any] | None:
        """The running local stack's state when ``--endpoint-url`` points at it; in several regions, with ``--region``'s
        own function names (each region's stack names its functions itself)."""
        if not self.endpoint_url:
            return None
        state = read_state_file(self.state_file)
        if state and any(same_endpoint(self.endpoint_url, str(state.get(k, ""))) for k in ("endpoint", "moto_endpoint", "aws_endpoint")):
            regions = state.get("regions")
            here = regions.get(self.region) if isinstance(regions, dict) and self.region else None
            if isinstance(here, dict):
                return {**state, **{k: here[k] for k in ("rotate_function", "sign_function") if isinstance(here.get(k), str)}}
            return state
        return None

    # --- the stack -------------------------------------------------------
    def stack(self, *, fallback: bool = False) -> StackInfo | None:
        """The stack ``--stack`` names; with ``fallback``, else (no local state) samconfig.toml's; None when none applies.

        :class:`~.stack.StackError` (one line, exit 1) when the named stack does not exist.
        """
        if self._stack is not None:
            return self._stack
        name = self.stack_name
        if not name and fallback and self.local_state() is None:
            name = samconfig_stack_name(self.working_directory)
            self._samconfig_used = name is not None
        if not name:
            return None
        try:
            self._stack = describe_stack(self.client("cloudformation"), name)
        except StackError as exc:
            if self._samconfig_used and is_loopback(self.endpoint_url):
                raise StackError(f"{exc.message} ({SAMCONFIG_FILE} names it; a deployed stack?): {self.no_local_state()}") from None
            raise
        return self._stack

    def no_stack_message(self) -> str:
        """Why no stack applies; against a loopback endpoint, where the local stack's state file was looked for."""
        return f"{NO_STACK}; {self.no_local_state()}" if is_loopback(self.endpoint_url) else NO_STACK

    def no_local_state(self) -> str:
        """Where the local stack's state file was looked for and what to do."""
        return no_local_state(self.endpoint_url, self.state_file)

    def require_stack(self) -> StackInfo:
        """The stack a stack-bound command acts on; :class:`~.stack.StackError` when none is named."""
        stack = self.stack(fallback=True)
        if stack is None:
            raise StackError(self.no_stack_message())
        return stack

    def lambda_endpoint(self) -> str | None:
        """Where the Lambda API answers: the local stack's (state file) or the endpoint, else AWS."""
        state = self.local_state()
        return str(state["lambda_endpoint"]) if state and state.get("lambda_endpoint") else self.endpoint_url

    def stack_settings_env(self, stack: StackInfo) -> dict[str, str]:
        """The settings the stack runs with (by environment name), from its rotate function's configuration and outputs."""
        if self._stack_env is None:
            lambda_client = self.client("lambda", endpoint_url=self.lambda_endpoint())
            self._stack_env = stack_settings_env(stack, function_environment(lambda_client, stack.rotate_function_name))
        return dict(self._stack_env)

    # --- settings --------------------------------------------------------
    def settings(self, given: dict[str, str], *, require: tuple[str, ...] = ()) -> Settings:
        """Settings from options/env over the stack's (or the local state file's) over the defaults, validated."""
        if self.stack_name and given:
            refuse_overrides(self.stack_name, as_given(given))
        stack = self.stack()
        if stack is None and self.local_state() is None and any(a not in given for a in require):
            stack = self.stack(fallback=True)  # samconfig.toml's stack, only for what the options leave missing
        if stack is not None:
            base = self.stack_settings_env(stack)
        else:
            base = {str(k): str(v) for k, v in dict((self.local_state() or {}).get("settings", {})).items()}
        mapping = {_ENV_TO_ATTRIBUTE[k]: v for k, v in base.items() if k in _ENV_TO_ATTRIBUTE}
        mapping.update(given)
        settings = Settings.from_mapping(mapping)
        missing = [a for a in require if not getattr(settings, a)]
        if missing and stack is None and self.local_state() is None:
            raise StackError(self.no_stack_message() + f" (or give {', '.join('--' + a.replace('_', '-') for a in missing)})")
        settings.require(*require)
        return settings

    def region_name(self) -> str:
        """``--region``, else the local stack's, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1."""
        state = self.local_state()
        return str(
            self.region or (state or {}).get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        )

    def client(self, service: str, *, endpoint_url: str | None = None, session: Any = None) -> Any:
        """A boto3 client: the default chain for AWS, dummy credentials for a local stack, or ``session``'s credentials.

        A loopback endpoint with no credentials in the default chain gets the dummy ones too: a local stack checks none.
        """
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "region_name": self.region_name(),
            "config": Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}),
        }
        url = endpoint_url or self.endpoint_url
        if url:
            kwargs["endpoint_url"] = url
        if session is not None:
            return session.client(service, **kwargs)
        if self.local_state() or (is_loopback(url) and boto3.Session().get_credentials() is None):
            kwargs.update(_LOCAL_CREDENTIALS)
        return boto3.client(service, **kwargs)


def session_for_role(sts_client: Any, role_arn: str, *, region: str, session_name: str) -> Any:
    """A boto3 session holding the credentials of ``sts:AssumeRole`` on ``role_arn`` (made with ``sts_client``)."""
    import boto3

    credentials = sts_client.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
