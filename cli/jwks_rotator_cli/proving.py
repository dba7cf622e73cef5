"""Invoking a stack's function as a caller that proves who it is: which role, which STS endpoint, which Lambda API.

``sign`` calls as a caller of the sign function, ``rotate``/``revoke``/``publish``
as an operator of the rotate function; both build their client here. Against
the local stack the proof is made with a session of the stack's own role for
that use (its STS accepts only credentials moto issued, never ambient keys).
"""

from __future__ import annotations

from typing import Any, TypeVar

from jwks_rotator_client import ProofInvoker

from .app import fail
from .context import CliContext, session_for_role

CLI_SESSION_NAME = "jwks-rotator-cli"

C = TypeVar("C", bound=ProofInvoker)


def caller_session(obj: CliContext, role_arn: str | None) -> Any:
    """The boto3 session whose credentials sign the proof: a session of ``role_arn``, else the default chain's."""
    import boto3

    if role_arn is None:
        return boto3.Session(region_name=obj.region_name())
    return session_for_role(obj.client("sts"), role_arn, region=obj.region_name(), session_name=CLI_SESSION_NAME)


def proving_client(
    obj: CliContext,
    client_class: type[C],
    function_name: str,
    *,
    role_arn: str | None,
    sts_endpoint_url: str | None,
    lambda_endpoint_url: str | None,
    local_role: str,
) -> C:
    """A client of ``function_name`` proving the caller's identity: ``role_arn``'s session, or the local stack's ``local_role``."""
    state = obj.local_state()
    if state is not None:
        role_arn = role_arn or local_role
        sts_endpoint_url = sts_endpoint_url or state.get("sts_endpoint")
        if not role_arn or not sts_endpoint_url:
            fail("the local stack's state file names no STS endpoint or caller role: restart `jwks-rotator local`", 1)
    session = caller_session(obj, role_arn)
    endpoint = lambda_endpoint_url or (state or {}).get("lambda_endpoint") or None
    return client_class(function_name, obj.client("lambda", endpoint_url=endpoint, session=session), session, sts_endpoint_url=sts_endpoint_url)
