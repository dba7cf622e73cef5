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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UnauthenticatedError

PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov"})

ROLE_NAME_CHARS = r"[\w+=,.@-]"
"""Characters IAM allows in a role name (``\\w`` in ASCII mode)."""

_STS_ARN = re.compile(r"arn:(?P<partition>aws|aws-cn|aws-us-gov):(?P<service>sts|iam)::(?P<account>\d{12}):(?P<resource>.{1,2048})", re.ASCII)
_ASSUMED_ROLE = re.compile(rf"assumed-role/(?P<role>{ROLE_NAME_CHARS}{{1,64}})/(?P<session>{ROLE_NAME_CHARS}{{2,64}})", re.ASCII)
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
