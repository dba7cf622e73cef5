"""The local stack's callers: its issuance policy, the IAM roles the policy names, its operator role, and sessions of those roles.

On AWS a caller proves who it is with the credentials of an IAM role. On
loopback the roles live in moto's IAM and their sessions come from moto's
STS, which checks no signature; so the sign function never asks moto who a
caller is: it replays proofs to :class:`~.sts_verifier.LocalStsVerifier`,
which checks them against the credentials moto issued.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from jwks_rotator.core.callers.principals import identity_from_arn
from jwks_rotator.core.issuance.profiles import IssuancePolicy
from jwks_rotator.core.settings import Settings
from jwks_rotator_cli.local_state import DEMO_CALLER_ROLE, LOCAL_ACCOUNT, OPERATOR_ROLE
from jwks_rotator_cli.policy import caller_sts_arn, load_policy_for, read_policy_file

DEMO_POLICY_FILE = Path(__file__).resolve().parent / "demo-policy.yaml"
"""The policy a local stack runs with unless given another: profile ``demo`` for :data:`DEMO_CALLER_ROLE`."""

_LOCAL_ROLE_PREFIX = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/"
_TRUST_ACCOUNT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{LOCAL_ACCOUNT}:root"}, "Action": "sts:AssumeRole"}],
    }
)


def load_local_policy(path: str | os.PathLike[str], settings: Settings) -> tuple[Path, IssuancePolicy]:
    """The policy file's absolute path and the policy, validated as the sign function will (``ConfigurationError`` if not)."""
    absolute = Path(path).expanduser().resolve()
    return absolute, load_policy_for(read_policy_file(absolute), settings)


def caller_roles(policy: IssuancePolicy) -> list[str]:
    """The demo caller role, the operator role and every caller role the policy names literally (no ``*``) in moto's account, in order."""
    roles = [DEMO_CALLER_ROLE, OPERATOR_ROLE]
    for profile in policy.profiles:
        for caller in profile.callers:
            if caller.startswith(_LOCAL_ROLE_PREFIX) and "*" not in caller and caller not in roles:
                roles.append(caller)
    return roles


def create_roles(iam: Any, role_arns: list[str]) -> None:
    """Create each role in moto's IAM, assumable by the account (an existing one is kept)."""
    for arn in role_arns:
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(RoleName=arn.removeprefix(_LOCAL_ROLE_PREFIX), AssumeRolePolicyDocument=_TRUST_ACCOUNT)


def profiles_of(policy: IssuancePolicy, role_arn: str) -> list[str]:
    """The enabled profiles a session of ``role_arn`` may sign under."""
    return [profile.name for profile in policy.profiles_for(identity_from_arn(caller_sts_arn(role_arn)))]
