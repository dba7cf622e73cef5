"""Who may run the rotate function's operations: an authenticated session of an operator role, deny by default.

``rotate-now``, ``revoke``, ``publish``, ``promote`` and ``step-down`` change which keys sign and verify, or which
region writes, so their event carries a ``proof`` (the
sign function's proof format, bound to the rotate function's own name or ARN). A scheduled event and
``{"operation": "tick"}`` need none (a tick only applies what is due); a proof that is present is always checked, and
it must sign (header ``X-Jwks-Rotator-Request``) the :func:`operation_digest` of the very event it came with: an
operator's proof authorizes one operation with its arguments, never another.

The first failure answers, in this order, so an unauthenticated invoker learns nothing about its event: the proof
(``unauthenticated``), the caller's role among ``operator-roles`` (``operator_not_allowed``), the event's shape
(``invalid_event``), the operation. Every decision yields an :class:`OperationRecord` for the audit line.

Design: docs/design/caller-proof.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from jwks_rotator.core.callers.principals import CallerIdentity, compile_caller_pattern, role_matches
from jwks_rotator.core.callers.proof import REQUEST_HEADER
from jwks_rotator.core.callers.verifier import CallerVerifier
from jwks_rotator.core.errors import CallerRefusedError, JwksRotatorError, OperatorNotAllowedError, UnauthenticatedError
from jwks_rotator.core.lifecycle.operations import (
    OPERATIONS,
    REGION_OPERATIONS,
    RotateCommand,
    is_scheduled_event,
    parse_rotate_event,
)

PROOF_FIELD = "proof"
"""The operation event's field holding the caller's proof of identity."""
UNAUTHENTICATED_OPERATIONS = frozenset({"tick"})
"""Operations an event may ask for without a proof (a scheduled event is a tick too)."""
MAX_AUDIT_KID_CHARS = 256
MAX_AUDIT_REGION_CHARS = 32


def operation_digest(event: Mapping[str, Any]) -> str:
    """sha256 (hex) of the operation event without its proof, as compact JSON with sorted keys (the client computes the same)."""
    body = {key: value for key, value in event.items() if key != PROOF_FIELD}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")).hexdigest()


def bound_digest(proof: object) -> str | None:
    """The :data:`REQUEST_HEADER` value of a proof (already verified: every header it presents was signed), if any."""
    headers = proof.get("headers") if isinstance(proof, Mapping) else None
    if not isinstance(headers, Mapping):
        return None
    wanted = REQUEST_HEADER.lower()
    return next((value for name, value in headers.items() if isinstance(name, str) and name.lower() == wanted and isinstance(value, str)), None)


class OperationRecord(NamedTuple):
    """One operation decision, as the audit line records it (see :meth:`fields`)."""

    decision: str  # performed | refused | failed
    error: str | None
    reason: str | None
    caller: str | None  # the STS ARN STS answered with (None: no proof, or it was refused)
    role: str | None  # the IAM role ARN it maps to
    operation: str | None  # what the event asked for, when it named a known operation
    kid: str | None = None  # revoke only
    accept_restore: bool | None = None  # publish only, when the event said
    region: str | None = None  # promote and step-down: the region the event named
    old_primary: str | None = None  # promote and step-down, once performed: the writer before
    new_primary: str | None = None  # ... and after
    generation: int | None = None  # ... and the keyring generation written (or found, when already done)
    check: bool | None = None  # promote only: a check, which changes nothing
    known: Mapping[str, Any] | None = None  # promote: what it learnt (probe answer, generations, replication stopped)

    def fields(self) -> dict[str, Any]:
        handover = (
            {"region": self.region, "old_primary": self.old_primary, "new_primary": self.new_primary, "generation": self.generation,
             **({"check": self.check} if self.check is not None else {}), **({"known": dict(self.known)} if self.known else {})}
            if self.operation in REGION_OPERATIONS else {}
        )
        return {
            "decision": self.decision,
            "error": self.error,
            "reason": self.reason,
            "caller": self.caller,
            "role": self.role,
            "operation": self.operation,
            "kid": self.kid,
            "accept_restore": self.accept_restore,
            **handover,
        }


class Admission(NamedTuple):
    """The gate's answer: the command to run, or the refusal; and who asked, for the audit."""

    command: RotateCommand | None
    error: JwksRotatorError | None
    identity: CallerIdentity | None
    asked: OperationRecord  # the refused record, or the template of the outcome's

    def outcome(self, decision: str, error: JwksRotatorError | None = None, **handover: Any) -> OperationRecord:
        """The audit record of the admitted command's outcome (``performed``, ``refused`` or ``failed``).

        ``handover``: promote's and step-down's ``old_primary``, ``new_primary`` and ``generation``.
        """
        return _decided(self.asked, decision, error)._replace(**handover)


def _decided(asked: OperationRecord, decision: str, error: JwksRotatorError | None) -> OperationRecord:
    reason = error.reason if isinstance(error, CallerRefusedError) else None
    return asked._replace(decision=decision, error=error.code if error is not None else None, reason=reason)


class OperatorGate:
    """Verifies an operation's proof (one STS replay per distinct proof, cached) and checks the role against operator-roles."""

    def __init__(self, verifier: CallerVerifier, operator_roles: Iterable[str]) -> None:
        roles = tuple(operator_roles)
        self.verifier = verifier
        self.operator_roles = roles
        self._patterns: tuple[re.Pattern[str], ...] = tuple(
            compile_caller_pattern(role, f"operator-roles[{index}]") for index, role in enumerate(roles)
        )

    def authenticate(self, raw_proof: object, accepted_signers: Iterable[str]) -> CallerIdentity:
        """The caller's identity (``unauthenticated`` or ``signing_unavailable`` when it cannot be established)."""
        return self.verifier.verify(raw_proof, accepted_signers)

    def require_operator(self, identity: CallerIdentity) -> None:
        """``operator_not_allowed`` unless the identity is a session of a role operator-roles lists."""
        if not role_matches(self._patterns, identity):
            reason = "no_operator_roles" if not self._patterns else ("not_a_role" if identity.role_arn is None else "role_not_listed")
            raise OperatorNotAllowedError("the caller may not run rotate operations", reason=reason)


def proof_required(event: Any) -> bool:
    """Whether the event asks for more than a tick (anything that is not a scheduled event or ``{"operation": "tick"}``)."""
    if not isinstance(event, Mapping):
        return True
    operation = event.get("operation")
    return not (is_scheduled_event(event) or (type(operation) is str and operation in UNAUTHENTICATED_OPERATIONS))


def asked_for(event: Any) -> OperationRecord:
    """What the event asked for, as far as the audit line may say (known operations only; the kid bounded)."""
    if not isinstance(event, Mapping):
        return OperationRecord("refused", None, None, None, None, None)
    if is_scheduled_event(event):
        return OperationRecord("refused", None, None, None, None, "tick")
    operation = event.get("operation")
    if type(operation) is not str or operation not in OPERATIONS:
        return OperationRecord("refused", None, None, None, None, None)
    kid = event.get("kid")
    kid = kid[:MAX_AUDIT_KID_CHARS] if operation == "revoke" and isinstance(kid, str) else None
    accept = event.get("accept_restore")
    region = event.get("region")
    region = region[:MAX_AUDIT_REGION_CHARS] if operation in REGION_OPERATIONS and isinstance(region, str) else None
    check = event.get("check") if operation == "promote" and type(event.get("check")) is bool else None
    return OperationRecord("refused", None, None, None, None, str(operation), kid, accept if type(accept) is bool else None, region,
                           check=check)


def admit(event: Any, gate: Callable[[], OperatorGate], accepted_signers: Iterable[str]) -> Admission:
    """Check the event in the documented order; never raises for the caller's mistakes.

    ``gate`` is called only when a proof must be checked, so a tick runs even
    while the STS endpoint is misconfigured (the operations then answer
    ``invalid_configuration``).
    """
    asked = asked_for(event)
    identity: CallerIdentity | None = None
    try:
        rest = event
        proof = None
        if isinstance(event, Mapping) and PROOF_FIELD in event:
            proof = event[PROOF_FIELD]
            rest = {key: value for key, value in event.items() if key != PROOF_FIELD}
        if proof is not None or proof_required(rest):
            if proof is None:
                raise UnauthenticatedError("every operation but tick needs a proof of the operator's identity", reason="no_proof")
            checker = gate()
            identity = checker.authenticate(proof, accepted_signers)
            asked = asked._replace(caller=identity.sts_arn, role=identity.role_arn)
            if not isinstance(rest, Mapping) or bound_digest(proof) != operation_digest(rest):
                # A proof authorizes the one operation (and arguments) it signed a digest of: a captured proof
                # cannot revoke another kid or accept a restore.
                raise UnauthenticatedError("the proof was made for another operation", reason="proof_not_for_this_operation")
            checker.require_operator(identity)
        command = parse_rotate_event(rest)
    except JwksRotatorError as exc:
        if identity is None:
            asked = asked._replace(kid=None, region=None)  # an unauthenticated invoker's text never reaches the audit log
        return Admission(None, exc, identity, _decided(asked, "refused", exc))
    return Admission(command, None, identity, asked)
