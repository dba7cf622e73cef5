"""One exception hierarchy for jwks-rotator.

Every failure the product reports is a :class:`JwksRotatorError` carrying a
short machine-readable ``code`` and a human sentence. Messages never contain
key material, secret values or tokens.
"""

from __future__ import annotations

from typing import Any

QUOTED_CHARS = 40


def quoted(value: Any) -> str:
    """``value`` as an error message may show it: quoted when short, otherwise described by its length only."""
    text = repr(value)
    return text if len(text) <= QUOTED_CHARS else f"a value of {len(str(value))} characters"


class JwksRotatorError(Exception):
    """Root of every error raised by jwks-rotator."""

    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str]:
        """The error as the ``{"error", "message"}`` shape handlers return."""
        return {"error": self.code, "message": self.message}


class ConfigurationError(JwksRotatorError):
    """A setting is missing, malformed, or unsafe in combination with another."""

    code = "invalid_configuration"


class NotPrimaryRegionError(ConfigurationError):
    """This rotate function runs in a region other than ``primary-region``: it writes nothing (one writer, in the primary)."""

    code = "not_primary_region"


class KeyringError(JwksRotatorError):
    """The keyring document is malformed or violates an invariant."""

    code = "invalid_keyring"


class KeyringConflictError(JwksRotatorError):
    """Another writer changed the keyring first (compare-and-swap lost)."""

    code = "keyring_conflict"


class PublicationSupersededError(KeyringConflictError):
    """The bucket already holds documents published from a newer keyring."""

    code = "publication_superseded"


class StoreError(JwksRotatorError):
    """The keyring store (Secrets Manager) could not be read or written.

    ``reason`` is what failed, for callers that branch on it and for logs:
    the AWS error code (``ThrottlingException``) or the failure's type name,
    never a stored value or a service's message.
    """

    code = "store_unavailable"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class PublishError(JwksRotatorError):
    """The public documents could not be built, checked or uploaded."""

    code = "publish_failed"


class UnsafeDocumentError(PublishError):
    """A document about to be published failed the public-only checks."""

    code = "unsafe_document"


class UnknownKeyError(JwksRotatorError):
    """An operation named a kid that is not in the keyring."""

    code = "unknown_kid"


class UnsupportedAlgorithmError(JwksRotatorError):
    """The algorithm is not in the registry of supported algorithms."""

    code = "unsupported_algorithm"


class InvalidEventError(JwksRotatorError):
    """A Lambda event does not have one of the documented shapes."""

    code = "invalid_event"


class SigningError(JwksRotatorError):
    """Root of the signing function's refusals; ``code`` is the wire error code."""

    code = "invalid_request"


class InvalidRequestError(SigningError):
    """The request is not an object of the documented shape."""

    code = "invalid_request"


class InvalidClaimsError(SigningError):
    """The custom claims are malformed or try to set a reserved claim."""

    code = "invalid_claims"


class AudienceNotAllowedError(SigningError):
    """An audience is not in the configured allow-list."""

    code = "audience_not_allowed"


class TtlTooLongError(SigningError):
    """The requested ttl exceeds ``max-token-ttl``."""

    code = "ttl_too_long"


class PayloadTooLargeError(SigningError):
    """The request or the resulting token exceeds its documented size cap."""

    code = "payload_too_large"


class SigningUnavailableError(SigningError):
    """No active, published key can be used right now."""

    code = "signing_unavailable"


class CallerRefusedError(SigningError):
    """Root of the refusals that concern who calls and what their profile allows.

    ``reason`` is a short slug safe to log (``"signed_headers_incomplete"``,
    ``"rate_limited"``, ...); it is not part of the wire answer, and neither the
    message nor the reason ever holds a header value, a signature or a token.
    """

    code = "unauthenticated"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or self.code


class UnauthenticatedError(CallerRefusedError):
    """The caller's proof of identity is missing, malformed, stale, for another signer, or refused by STS."""

    code = "unauthenticated"


class CallerNotAllowedError(CallerRefusedError):
    """The authenticated caller matches no enabled issuance profile (or not the one it named)."""

    code = "caller_not_allowed"


class SubjectNotAllowedError(CallerRefusedError):
    """The requested ``sub`` matches none of the profile's subject patterns."""

    code = "subject_not_allowed"


class ClaimsNotAllowedError(CallerRefusedError):
    """The request sets a custom claim the profile does not list."""

    code = "claims_not_allowed"


class KeyringBehindPublicationError(JwksRotatorError):
    """The bucket holds documents of a newer keyring than the store does (a restored secret, say).

    Overwriting them drops keys only the newer keyring held, whose tokens may
    still be live: it takes an explicit ``publish`` with ``accept_restore``.
    """

    code = "keyring_behind_publication"


class ClockSkewError(JwksRotatorError):
    """A stored timestamp is further in the future than clock-skew-leeway allows: this clock or an earlier one is wrong."""

    code = "clock_skew_detected"


class KeyringLimitError(JwksRotatorError):
    """An operation would grow the keyring past its documented number of keys or bytes."""

    code = "keyring_limit_reached"


class OperatorNotAllowedError(CallerRefusedError):
    """The authenticated caller's role is not one of operator-roles: it may not run rotate-now, revoke or publish."""

    code = "operator_not_allowed"


class SigningKeyDisabledError(SigningUnavailableError):
    """The key vault refused to sign because the key is disabled or pending deletion (revoked or retired).

    The signer reads the keyring once more on this error and then fails closed.
    """

    code = "signing_unavailable"


class KeyVaultError(JwksRotatorError):
    """The key vault (KMS) refused or failed a call of the rotator; ``reason`` is the AWS error code only."""

    code = "key_vault_unavailable"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class PromoteRefusedError(JwksRotatorError):
    """``promote`` (or ``step-down``) refused by one of its safety checks; nothing was changed. ``code`` names the check."""

    code = "promote_refused"


class PromoteWrongRegionError(PromoteRefusedError):
    """``promote R`` reached a rotate function outside R: only R's own rotate function can promote R's replica."""

    code = "promote_wrong_region"


class ReplicaBehindPublicationError(PromoteRefusedError):
    """The target's keyring replica is older than documents an origin serves: promoting it would publish an older key set."""

    code = "replica_behind_publication"


class OldPrimaryActiveError(PromoteRefusedError):
    """The old primary answers and has not stepped down in favour of the target: two writers would run."""

    code = "old_primary_not_stepped_down"


class OriginsUnreadableError(PromoteRefusedError):
    """No origin of the documents could be read: the replica cannot be checked against what verifiers hold."""

    code = "origins_unreadable"


class PromoteUnsupportedError(PromoteRefusedError):
    """The stack's shape does not allow a promote (one region only, or key custody in KMS)."""

    code = "promote_unsupported"


class PromoteOtherWriterError(PromoteRefusedError):
    """A region's keyring secret names a writer other than the old primary and the target: another promote ran
    elsewhere, and two writers would never fence each other."""

    code = "promote_other_writer"


class PromoteInterruptedError(PromoteRefusedError):
    """An earlier promote made the target's keyring standalone and stopped before writing it, and the documents moved
    on since (the old primary still writes): the keyring cannot catch up; the message names the recovery."""

    code = "promote_interrupted"


class WriterSupersededError(JwksRotatorError):
    """This rotate function is no longer the writer: another region was promoted (its keyring or the documents carry a
    newer generation written there), or this region stepped down. It writes nothing; an operator updates its stack."""

    code = "writer_superseded"


class ReplicaBehindPrimaryError(PromoteRefusedError):
    """The old primary answers and its keyring is newer than the target's replica: replication has not caught up yet."""

    code = "replica_behind_primary"
