"""Invoke a jwks-rotator rotate function's operations as an operator, with a proof of who is calling.

``rotate-now``, ``revoke`` and ``publish`` need a proof from a session of a
role the stack lists in ``operator-roles``; a ``tick`` needs none but is
sent with one too, so the audit line names the operator. Example::

    from jwks_rotator_client import OperatorClient

    client = OperatorClient(function_name="jwks-rotator-rotate")
    summary = client.revoke("kid-to-remove")   # or {"error", "message"} when refused
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .sign_client import REQUEST_HEADER, InvokeError, ProofInvoker, build_caller_proof


def operation_digest(payload: dict[str, Any]) -> str:
    """sha256 (hex) of the operation event without its proof, as compact JSON with sorted keys (the rotate function's rule)."""
    body = {key: value for key, value in payload.items() if key != "proof"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")).hexdigest()


class OperationFailedError(InvokeError):
    """The rotate function failed (it raised: the error alarm and the dead-letter queue see it) or answered no object."""


class OperatorClient(ProofInvoker):
    """Calls one rotate function's operations; each returns its summary or its ``{"error", "message"}`` refusal."""

    function_label = "rotate function"
    error_type = OperationFailedError

    def operate(self, operation: str, **fields: Any) -> dict[str, Any]:
        """``{"operation": operation, **fields}`` with a fresh proof bound to exactly that event.

        The proof signs the event's digest (:data:`REQUEST_HEADER`), so a captured proof authorizes this one operation
        with these arguments and nothing else; unlike a sign proof it is never reused for another request.
        """
        payload = {"operation": operation, **fields}
        credentials = self._session.get_credentials()
        if credentials is None:
            raise self.error_type("no AWS credentials to prove the caller's identity with")
        proof = build_caller_proof(
            credentials.get_frozen_credentials(), sts_endpoint_url=self.sts_endpoint_url, region=self.region, signer=self.function_name,
            extra_headers={REQUEST_HEADER: operation_digest(payload)},
        )
        return self._invoke({**payload, "proof": proof})

    def tick(self) -> dict[str, Any]:
        """Apply what is due (what the schedule does)."""
        return self.operate("tick")

    def rotate_now(self) -> dict[str, Any]:
        """Emergency rotation: a fresh key signs as soon as it is published."""
        return self.operate("rotate-now")

    def revoke(self, kid: str) -> dict[str, Any]:
        """Remove ``kid`` from the keyring and the published JWKS at once."""
        return self.operate("revoke", kid=kid)

    def publish(self, *, accept_restore: bool = False) -> dict[str, Any]:
        """Write the documents if they differ from the keyring; ``accept_restore`` publishes a restored keyring over newer ones."""
        return self.operate("publish", accept_restore=True) if accept_restore else self.operate("publish")

    def promote(self, region: str) -> dict[str, Any]:
        """Make ``region`` (this function's own) the writer: its keyring replica becomes the keyring of record."""
        return self.operate("promote", region=region)

    def step_down(self, region: str) -> dict[str, Any]:
        """Hand the writer's role from this function's region to ``region``: this region writes nothing afterwards."""
        return self.operate("step-down", region=region)
