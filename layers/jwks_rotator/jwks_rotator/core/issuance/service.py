"""Issuing a token to an authenticated caller, deny by default, with one audit record per decision.

A sign request is answered in this order, and the first failure is the answer
(so an unauthenticated invoker learns nothing about the policy or the shape
of its request):

1. the caller's proof (``unauthenticated``; an STS outage is ``signing_unavailable``);
2. a profile naming the caller's role (``caller_not_allowed``);
3. the request's shape (``invalid_request``, ``invalid_claims``, ``payload_too_large``);
4. the profile's limits: ``audience_not_allowed``, ``subject_not_allowed``,
   ``claims_not_allowed``, ``ttl_too_long`` (see :mod:`.profiles`);
5. a usable key (``signing_unavailable``).

Every answer comes with an :class:`AuditRecord`: who asked (the STS ARN and
the role it maps to), under which profile and policy digest, what was decided
and why; an issued token adds its ``jti``, ``sub`` (bounded), ``aud``, ``kid``
and ``exp``. Never the token, the proof or any other claim value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from jwks_rotator.core.callers.principals import CallerIdentity
from jwks_rotator.core.callers.verifier import CallerVerifier
from jwks_rotator.core.errors import CallerRefusedError, JwksRotatorError, UnauthenticatedError
from jwks_rotator.core.issuance.limits import TokenRequest, from_fields, parse_request
from jwks_rotator.core.issuance.profiles import IssuancePolicy, split_sign_payload
from jwks_rotator.core.issuance.signer import IssuedToken, TokenSigner

MAX_AUDIT_SUB_CHARS = 128
"""``sub`` may be personal data: the audit record keeps at most this many characters of it."""


class AuditRecord(NamedTuple):
    """One decision, as the audit line records it (see :meth:`fields`)."""

    decision: str  # issued | refused
    error: str | None
    reason: str | None
    caller: str | None  # the STS ARN STS answered with
    role: str | None  # the IAM role ARN it maps to (no path: STS does not say it)
    profile: str | None
    policy: str  # the issuance policy's digest
    issued: IssuedToken | None = None
    sub: str | None = None

    def fields(self) -> dict[str, Any]:
        """The record's JSON fields; an issued token adds jti, sub, aud, kid and exp."""
        out: dict[str, Any] = {
            "decision": self.decision,
            "error": self.error,
            "reason": self.reason,
            "caller": self.caller,
            "role": self.role,
            "profile": self.profile,
            "policy": self.policy,
        }
        issued = self.issued
        if issued is not None:
            out.update(jti=issued.jti, sub=bounded_sub(self.sub), aud=issued.aud, kid=issued.kid, exp=issued.expires_at)
        return out


class Answer(NamedTuple):
    """The sign function's response and the audit record behind it."""

    response: dict[str, Any]
    audit: AuditRecord
    cause: str = ""  # exception type behind an internal_error, for the error log only


def bounded_sub(sub: str | None) -> str | None:
    """``sub`` cut to :data:`MAX_AUDIT_SUB_CHARS` (marked with a trailing ``…``)."""
    if sub is None or len(sub) <= MAX_AUDIT_SUB_CHARS:
        return sub
    return sub[: MAX_AUDIT_SUB_CHARS - 1] + "…"


class IssuanceService:
    """Proof → identity → profile → request → token, for one sign function."""

    def __init__(
        self,
        signer: TokenSigner,
        verifier: CallerVerifier,
        policy: IssuancePolicy,
        *,
        on_decision: Callable[[AuditRecord], None] | None = None,
    ) -> None:
        policy.require_audiences_within(signer.policy.allowed_audiences)
        self.signer = signer
        self.verifier = verifier
        self.policy = policy
        self._shape = signer.policy.without_limits()
        self._on_decision = on_decision

    def handle(self, event: Any, accepted_signers: Iterable[str]) -> Answer:
        """Answer one invocation; never raises, never returns a partial token."""
        identity: CallerIdentity | None = None
        chosen: str | None = None
        try:
            if type(event) is not dict:
                raise UnauthenticatedError("the request carries no proof of identity", reason="no_proof")
            split = split_sign_payload(event)
            identity = self.verifier.verify(split.proof, accepted_signers)
            policy = self.policy
            matching = policy.require_caller(identity)
            request = parse_request(split.request, self._shape)
            profile = policy.choose_among(matching, split.profile)
            chosen = profile.name
            decision = policy.check(profile, request, ttl_given=split.ttl_given)
            if decision.ttl != request.ttl:  # a NamedTuple's _replace costs ~0.6 µs; most requests keep their ttl
                request = TokenRequest(request.sub, request.aud, decision.ttl, request.claims)
            issued = self.signer.sign(request, azp=decision.azp)
        except JwksRotatorError as exc:
            return self._refused(exc, identity, chosen)
        except Exception as exc:  # the impossible: keep the contract, hide the details
            error = JwksRotatorError("the token could not be issued because of an internal error")
            answer = self._refused(error, identity, chosen)
            return answer._replace(cause=type(exc).__name__)
        record = from_fields(AuditRecord, ("issued", None, None, identity.sts_arn, identity.role_arn, chosen, self.policy.digest, issued, request.sub))
        return self._decided(from_fields(Answer, (issued.response(), record, "")))

    def _refused(self, error: JwksRotatorError, identity: CallerIdentity | None, profile: str | None) -> Answer:
        reason = error.reason if isinstance(error, CallerRefusedError) else None
        record = AuditRecord(
            "refused",
            error.code,
            reason,
            identity.sts_arn if identity is not None else None,
            identity.role_arn if identity is not None else None,
            profile,
            self.policy.digest,
        )
        return self._decided(Answer(error.to_dict(), record))

    def _decided(self, answer: Answer) -> Answer:
        if self._on_decision is not None:
            self._on_decision(answer.audit)
        return answer
