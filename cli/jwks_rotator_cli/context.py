"""The global options and what follows from them: settings, the local stack's state and AWS clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from jwks_rotator.core.settings import SETTINGS, Settings

from .local_state import DEFAULT_REGION, read_state_file

F = TypeVar("F", bound=Callable[..., Any])

_ENV_TO_ATTRIBUTE = {spec.env: spec.attribute for spec in SETTINGS}
_ATTRIBUTES = frozenset(spec.attribute for spec in SETTINGS)
_LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def settings_options(*, exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """One option per setting (``--rotation-period``), read from ``ROTATION_PERIOD`` too; None when not given."""

    def decorate(func: F) -> F:
        for spec in reversed(SETTINGS):
            if spec.attribute in exclude:
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


def same_endpoint(a: str, b: str) -> bool:
    """Whether two endpoint URLs name the same server (``localhost`` is ``127.0.0.1``)."""

    def norm(url: str) -> str:
        return url.strip().rstrip("/").lower().replace("://localhost:", "://127.0.0.1:")

    return bool(a) and bool(b) and norm(a) == norm(b)


@dataclass
class CliContext:
    """Global options and what follows from them."""

    endpoint_url: str | None
    region: str | None
    state_file: str

    def local_state(self) -> dict[str, Any] | None:
        """The running local stack's state when ``--endpoint-url`` points at it."""
        if not self.endpoint_url:
            return None
        state = read_state_file(self.state_file)
        if state and any(same_endpoint(self.endpoint_url, str(state.get(k, ""))) for k in ("moto_endpoint", "aws_endpoint")):
            return state
        return None

    def settings(self, given: dict[str, str], *, require: tuple[str, ...] = ()) -> Settings:
        """Settings from options/env over the local state file over the defaults, validated."""
        mapping: dict[str, str] = {}
        state = self.local_state()
        if state:
            for env_name, value in dict(state.get("settings", {})).items():
                if env_name in _ENV_TO_ATTRIBUTE:
                    mapping[_ENV_TO_ATTRIBUTE[env_name]] = str(value)
        mapping.update(given)
        settings = Settings.from_mapping(mapping)
        settings.require(*require)
        return settings

    def region_name(self) -> str:
        """``--region``, else the local stack's, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1."""
        state = self.local_state()
        return str(
            self.region or (state or {}).get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        )

    def client(self, service: str, *, endpoint_url: str | None = None, session: Any = None) -> Any:
        """A boto3 client: the default chain for AWS, dummy credentials for the local stack, or ``session``'s credentials."""
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
        if self.local_state():
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
