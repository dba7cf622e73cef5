"""The stack a command acts on: its name, its CloudFormation outputs and its functions' settings.

Operators name a deployed stack (``--stack NAME``, ``JWKS_ROTATOR_STACK``, or
``stack_name`` under ``[default.global.parameters]`` of ``samconfig.toml`` in
the working directory); commands then take their resource names, URLs and
settings from that stack, never from the CLI's own defaults:

* the outputs of ``DescribeStacks`` (names as in template.yaml's Outputs) give
  the function names, the keyring secret, the bucket, the distribution, the
  JWKS URL, the issuer and the audit log group;
* the rotate function's configuration (``GetFunctionConfiguration`` →
  ``Environment.Variables``) gives the settings the stack runs with.

A missing stack or output is a :class:`StackError`: one line, exit 1.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from jwks_rotator.core.errors import JwksRotatorError
from jwks_rotator.core.settings import SETTINGS

SAMCONFIG_FILE = "samconfig.toml"
STACK_ENV = "JWKS_ROTATOR_STACK"

OUTPUT_ISSUER = "Issuer"
OUTPUT_ISSUER_URL = "IssuerUrl"
OUTPUT_JWKS_URL = "JwksUrl"
OUTPUT_SIGN_FUNCTION_NAME = "SignFunctionName"
OUTPUT_SIGN_FUNCTION_ARN = "SignFunctionArn"
OUTPUT_ROTATE_FUNCTION_NAME = "RotateFunctionName"
OUTPUT_KEYRING_SECRET_ARN = "KeyringSecretArn"
OUTPUT_SIGNING_SECRET_ARN = "SigningSecretArn"
OUTPUT_JWKS_BUCKET_NAME = "JwksBucketName"
OUTPUT_DISTRIBUTION_ID = "DistributionId"
OUTPUT_AUDIT_LOG_GROUP_NAME = "AuditLogGroupName"
OUTPUT_OPERATIONS_LOG_GROUP_NAME = "OperationsLogGroupName"
OUTPUT_DEMO_CALLER_ROLE_ARN = "DemoCallerRoleArn"
"""Only the local stack has it: the role ``sign`` assumes there when given no ``--role-arn``."""
OUTPUT_OPERATOR_ROLE_ARN = "OperatorRoleArn"
"""Only the local stack has it: the role ``rotate``/``revoke``/``publish`` assume there when given no ``--role-arn``."""

_SETTING_ENV_NAMES = frozenset(spec.env for spec in SETTINGS)
_SETTINGS_FROM_OUTPUTS = {
    "KEYRING_SECRET_ID": OUTPUT_KEYRING_SECRET_ARN,
    "SIGNING_SECRET_ID": OUTPUT_SIGNING_SECRET_ARN,
    "JWKS_BUCKET": OUTPUT_JWKS_BUCKET_NAME,
    "DISTRIBUTION_ID": OUTPUT_DISTRIBUTION_ID,
    "ISSUER": OUTPUT_ISSUER,
}
"""Settings that name the stack's own resources: its outputs say them, whatever the function's environment holds."""


class StackError(JwksRotatorError):
    """The named stack does not exist, or lacks an output a command needs."""

    code = "stack"


@dataclass(frozen=True)
class StackInfo:
    """A deployed stack's name and outputs; each property raises :class:`StackError` when its output is missing."""

    name: str
    outputs: Mapping[str, str] = field(default_factory=dict)

    def output(self, key: str) -> str:
        """The value of output ``key``; :class:`StackError` when the stack has none."""
        value = self.outputs.get(key)
        if not value:
            raise StackError(f"stack {self.name} has no output {key}")
        return value

    @property
    def issuer(self) -> str:
        return self.output(OUTPUT_ISSUER)

    @property
    def jwks_url(self) -> str:
        return self.output(OUTPUT_JWKS_URL)

    @property
    def sign_function_name(self) -> str:
        return self.output(OUTPUT_SIGN_FUNCTION_NAME)

    @property
    def rotate_function_name(self) -> str:
        return self.output(OUTPUT_ROTATE_FUNCTION_NAME)

    @property
    def keyring_secret_arn(self) -> str:
        return self.output(OUTPUT_KEYRING_SECRET_ARN)

    @property
    def jwks_bucket_name(self) -> str:
        return self.output(OUTPUT_JWKS_BUCKET_NAME)

    @property
    def audit_log_group_name(self) -> str:
        return self.output(OUTPUT_AUDIT_LOG_GROUP_NAME)

    @property
    def operations_log_group_name(self) -> str:
        return self.output(OUTPUT_OPERATIONS_LOG_GROUP_NAME)

    @property
    def demo_caller_role_arn(self) -> str | None:
        """The local stack's demo caller role; None on a deployed stack."""
        return self.outputs.get(OUTPUT_DEMO_CALLER_ROLE_ARN) or None

    @property
    def operator_role_arn(self) -> str | None:
        """The local stack's operator role; None on a deployed stack."""
        return self.outputs.get(OUTPUT_OPERATOR_ROLE_ARN) or None


def describe_stack(cloudformation: Any, name: str) -> StackInfo:
    """The stack's outputs (``DescribeStacks``); :class:`StackError` ``stack NAME not found`` when there is none."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            raise StackError(f"stack {name} not found") from None
        raise
    live = [s for s in stacks if not str(s.get("StackStatus", "")).startswith("DELETE_COMPLETE")]
    if not live:
        raise StackError(f"stack {name} not found")
    outputs = {str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in live[0].get("Outputs", [])}
    return StackInfo(name, outputs)


def function_environment(lambda_client: Any, function_name: str) -> dict[str, str]:
    """A function's environment variables as its configuration holds them (``GetFunctionConfiguration``)."""
    configuration = lambda_client.get_function_configuration(FunctionName=function_name)
    return {str(k): str(v) for k, v in dict(configuration.get("Environment", {}).get("Variables", {})).items()}


def stack_settings_env(stack: StackInfo, rotate_environment: Mapping[str, str]) -> dict[str, str]:
    """The settings the stack runs with, by environment variable name: the rotate function's, its resource names from the outputs."""
    env = {k: v for k, v in rotate_environment.items() if k in _SETTING_ENV_NAMES}
    for env_name, output in _SETTINGS_FROM_OUTPUTS.items():
        if stack.outputs.get(output):
            env[env_name] = stack.outputs[output]
    return env


def samconfig_stack_name(directory: str | Path = ".") -> str | None:
    """``stack_name`` under ``[default.global.parameters]`` of ``samconfig.toml`` in ``directory``, if any."""
    try:
        config = tomllib.loads((Path(directory) / SAMCONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get("default", {}).get("global", {}).get("parameters", {}).get("stack_name")
    return name if isinstance(name, str) and name else None
