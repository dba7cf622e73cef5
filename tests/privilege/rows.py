"""One row of the least-privilege matrix: a request, the decision expected and why (shared by the one-region and the
per-region lists: :mod:`tests.privilege.matrix`, :mod:`tests.privilege.regions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.privilege.evaluator import Case
from tests.privilege.policies import Deployment, Policies
from tests.privilege.scenario import ACCOUNT

BREAK_GLASS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/jwks-rotator-break-glass"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/some-admin"
ADMINISTRATOR = [{"name": "AdministratorAccess", "policy": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]
_BASE_KEYS = {"aws:SecureTransport", "aws:PrincipalArn", "aws:PrincipalAccount"}  # _case puts them back
NO_POLICY: Mapping[str, Any] = {}  # a resource without a resource policy (another application's secret)


@dataclass(frozen=True)
class Row:
    case: Case
    expected: str  # "allow" | "deny"
    why: str
    role: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _role_name(principal: str) -> str:
    return principal.rsplit("/", 2)[-2] if ":assumed-role/" in principal else principal.rsplit("/", 1)[-1]


def _case(policies: Policies, deployment: Deployment, id_: str, role_arn: str | None, action: str, resource: str,
          context: Mapping[str, Any] | None = None, *, identity: Sequence[Mapping[str, Any]] | None = None,
          principal: str | None = None, resource_policy: Mapping[str, Any] | None = None) -> Case:
    base: dict[str, Any] = {"aws:SecureTransport": "true"}
    if action.startswith("kms:") and resource != "*":
        base["kms:CallerAccount"] = deployment.account  # KMS sets it on every request on a key
    if role_arn is not None:
        base |= {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": deployment.account}
        principal = principal or f"arn:aws:sts::{deployment.account}:assumed-role/{role_arn.rsplit('/', 1)[1]}/session"
    assert principal is not None
    return Case(id_, principal, action, resource, deployment.account, {**base, **(context or {})},
                identity if identity is not None else policies.identity.get(role_arn or "", []),
                None if resource_policy is NO_POLICY else resource_policy if resource_policy is not None else policies.resource_policy(resource))
