"""Invoking a stack's function as a caller that proves who it is: which role, which STS endpoint, which Lambda API.

``rotate``/``revoke``/``publish`` call as an operator of the rotate function,
as ``sign`` calls the sign function (same session rules: ``caller_session``). Against
the local stack the proof is made with a session of the stack's own role for
that use (its STS accepts only credentials moto issued, never ambient keys).
"""

from __future__ import annotations

from typing import TypeVar

from jwks_rotator_client import ProofInvoker

from .app import fail
from .context import CliContext
from .tokens import caller_session

C = TypeVar("C", bound=ProofInvoker)


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
