"""Who a caller is, from the ARN STS's GetCallerIdentity returned (pure).

* ``arn:P:sts::ACCOUNT:assumed-role/ROLE/SESSION`` is a role session: its
  role is ``arn:P:iam::ACCOUNT:role/ROLE``. The session name is chosen by
  whoever assumed the role, so it is never trusted nor matched. STS omits the
  role's path from this ARN, which is why issuance profiles name roles
  without a path.
* ``arn:P:iam::ACCOUNT:user/NAME`` (path allowed) is an IAM user: an
  identity, but never a role, so it matches no profile.
* The account root, federated users and anything else: an identity with no
  role.

Partitions: ``aws``, ``aws-cn``, ``aws-us-gov``; any other ARN is refused.

Who may call is written as role ARN patterns (``*`` in the role name only):
:func:`compile_caller_pattern` checks and compiles one, :func:`role_matches` matches an identity against them.
The issuance profiles, the operator roles setting and the operator gate share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jwks_rotator.core.errors import ConfigurationError, UnauthenticatedError

PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov"})

ROLE_NAME_CHARS = r"[\w+=,.@-]"
"""Characters IAM allows in a role name (``\\w`` in ASCII mode)."""

_STS_ARN = re.compile(r"arn:(?P<partition>aws|aws-cn|aws-us-gov):(?P<service>sts|iam)::(?P<account>\d{12}):(?P<resource>.{1,2048})", re.ASCII)
_ASSUMED_ROLE = re.compile(rf"assumed-role/(?P<role>{ROLE_NAME_CHARS}{{1,64}})/(?P<session>{ROLE_NAME_CHARS}{{2,64}})", re.ASCII)
_CALLER = re.compile(r"arn:(?P<partition>[^:]*):iam::(?P<account>[^:]*):role/(?P<name>.*)", re.ASCII | re.DOTALL)
_ROLE_PATTERN_NAME = re.compile(rf"(?:{ROLE_NAME_CHARS}|\*){{1,64}}", re.ASCII)
_IAM_USER = re.compile(rf"user/(?:[\x21-\x7e]{{0,510}}/)?{ROLE_NAME_CHARS}{{1,64}}", re.ASCII)


@dataclass(frozen=True)
class CallerIdentity:
    """An authenticated caller: its STS ARN, account, partition and (for a role session) its role ARN."""

    sts_arn: str
    account: str
    partition: str
    role_arn: str | None

    @property
    def is_role(self) -> bool:
        return self.role_arn is not None


def identity_from_arn(arn: str) -> CallerIdentity:
    """The identity behind an ARN from GetCallerIdentity; an ARN of no known shape raises ``unauthenticated``."""
    match = _STS_ARN.fullmatch(arn) if type(arn) is str else None
    if match is None:
        raise UnauthenticatedError("the caller's identity could not be read", reason="identity_arn_malformed")
    partition, service, account, resource = match["partition"], match["service"], match["account"], match["resource"]
    role_arn: str | None = None
    if service == "sts":
        assumed = _ASSUMED_ROLE.fullmatch(resource)
        if assumed is not None:
            role_arn = f"arn:{partition}:iam::{account}:role/{assumed['role']}"
        elif resource.startswith("assumed-role/"):
            raise UnauthenticatedError("the caller's identity could not be read", reason="identity_arn_malformed")
    elif not (_IAM_USER.fullmatch(resource) or resource == "root"):
        raise UnauthenticatedError("the caller's identity could not be read", reason="identity_arn_malformed")
    return CallerIdentity(sts_arn=arn, account=account, partition=partition, role_arn=role_arn)


def role_matches(patterns: tuple[re.Pattern[str], ...], identity: CallerIdentity) -> bool:
    """Whether the identity is a role session whose role one of ``patterns`` (from :func:`compile_caller_pattern`) matches."""
    role = identity.role_arn
    return role is not None and any(pattern.fullmatch(role) for pattern in patterns)


def compile_caller_pattern(caller: str, where: str) -> re.Pattern[str]:
    """``arn:P:iam::ACCOUNT:role/NAME`` with ``*`` allowed in NAME only, compiled to match a role ARN exactly."""
    match = _CALLER.fullmatch(caller)
    if match is None:
        raise ConfigurationError(f"{where}: must be an IAM role ARN, arn:PARTITION:iam::ACCOUNT:role/NAME")
    partition, account, role = match["partition"], match["account"], match["name"]
    if "*" in partition or "*" in account:
        raise ConfigurationError(f"{where}: '*' is allowed in the role name only")
    if partition not in PARTITIONS:
        raise ConfigurationError(f"{where}: the partition must be one of {', '.join(sorted(PARTITIONS))}")
    if not (len(account) == 12 and account.isascii() and account.isdigit()):
        raise ConfigurationError(f"{where}: the account must be 12 digits")
    if "/" in role:
        raise ConfigurationError(
            f"{where}: a role ARN with a path can never match: STS reports role sessions without the path; write arn:{partition}:iam::{account}:role/NAME"
        )
    if not _ROLE_PATTERN_NAME.fullmatch(role):
        raise ConfigurationError(f"{where}: the role name may hold letters, digits, + = , . @ _ - and '*' (1-64 characters)")
    name_pattern = "".join(f"{ROLE_NAME_CHARS}*" if char == "*" else re.escape(char) for char in role)
    return re.compile(re.escape(f"arn:{partition}:iam::{account}:role/") + name_pattern, re.ASCII)
