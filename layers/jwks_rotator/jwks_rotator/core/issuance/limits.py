"""The sign function's request contract and the stack's token limits (pure, no I/O).

A request is a JSON object of exactly ``sub`` (required), ``aud`` (a string or a list; required unless
``default-audience`` is set), ``ttl`` (whole seconds, at most ``max-token-ttl``) and ``claims`` (custom claims, JSON
values only). ``null`` is a wrong type, not "absent". The signer owns ``iss``, ``iat``, ``nbf``, ``exp`` and ``jti``;
a request that sets any reserved claim inside ``claims`` is refused (``invalid_claims``), never overridden.

Caps (each refusal names its cap): :data:`MAX_REQUEST_CHARS`, :data:`MAX_TOKEN_BYTES`, :data:`MAX_CLAIMS_DEPTH`.
Design: docs/design/issuance-policy.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard, TypeVar

from jwks_rotator.core.errors import (
    AudienceNotAllowedError,
    InvalidClaimsError,
    InvalidRequestError,
    PayloadTooLargeError,
    TtlTooLongError,
)
from jwks_rotator.core.settings import Settings

MAX_REQUEST_CHARS = 16 * 1024
"""Largest request, in characters of compact JSON (strings counted without escapes)."""

MAX_TOKEN_BYTES = 8 * 1024
"""Largest compact JWS the signer returns (fits common HTTP header limits)."""

MAX_CLAIMS_DEPTH = 32
"""Deepest nesting of objects and arrays in ``claims``; the claims object itself is level 1."""

MAX_NBF_BACKDATE = 60
"""``nbf`` is back-dated by ``min(clock-skew-leeway, MAX_NBF_BACKDATE)`` seconds."""

REQUEST_FIELDS = frozenset({"sub", "aud", "ttl", "claims"})
SIGNER_CLAIMS = ("iss", "iat", "nbf", "exp", "jti")
RESERVED_CLAIMS = frozenset({*SIGNER_CLAIMS, "sub", "aud", "azp"})

_T = TypeVar("_T", bound=tuple[Any, ...])

if TYPE_CHECKING:
    def from_fields(cls: type[_T], fields: tuple[Any, ...], /) -> _T:
        """A NamedTuple of ``cls`` from a tuple of every one of its fields, in order."""
else:
    # tuple.__new__ itself: a NamedTuple's generated __new__ is a Python call of its own, ~0.1 µs per object, and the
    # warm sign path makes six per token. Every field is given (defaults do not apply).
    from_fields = tuple.__new__

MAX_TTL_SHAPE = 10 * 365 * 86400
"""The ttl bound of a shape-only check (the profile's ``max_ttl`` is the real one)."""

_SAFE_FIELD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True)
class TokenPolicy:
    """What the signer grants: issuer, audiences and lifetimes, in whole seconds."""

    issuer: str
    allowed_audiences: frozenset[str]
    default_audience: str
    default_ttl: int
    max_ttl: int
    nbf_backdate: int

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        """The policy of validated settings (``issuer`` must be set)."""
        settings.require("issuer")
        return cls(
            issuer=settings.issuer,
            allowed_audiences=frozenset(settings.allowed_audiences),
            default_audience=settings.default_audience,
            default_ttl=max(1, int(settings.default_token_ttl.total_seconds())),
            max_ttl=max(1, int(settings.max_token_ttl.total_seconds())),
            nbf_backdate=min(int(settings.clock_skew_leeway.total_seconds()), MAX_NBF_BACKDATE),
        )

    def without_limits(self) -> TokenPolicy:
        """This policy for checking a request's shape only: audience and ttl limits are the issuance profile's to apply."""
        return dataclasses.replace(self, allowed_audiences=frozenset(), max_ttl=MAX_TTL_SHAPE)


class TokenRequest(NamedTuple):
    """A validated request: the subject, audience(s), lifetime and custom claims."""

    sub: str
    aud: str | list[str]
    ttl: int
    claims: dict[str, Any]


def _field_name(key: Any) -> str:
    """A field name safe to echo in a message (never an arbitrary caller string)."""
    if type(key) is str and 0 < len(key) <= 64 and all(c in _SAFE_FIELD_CHARS for c in key):
        return repr(key)
    return "a field with an unprintable or non-string name"


def _is_text(value: Any) -> TypeGuard[str]:
    """A non-blank ``str`` that is valid Unicode (no lone surrogates)."""
    if type(value) is not str or not value.strip():
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unknown_fields(payload: dict[Any, Any]) -> InvalidRequestError:
    unknown = [key for key in payload if type(key) is not str or key not in REQUEST_FIELDS]
    names = ", ".join(sorted({_field_name(key) for key in unknown}))
    return InvalidRequestError(f"the request has unknown field(s) {names}; allowed: aud, claims, sub, ttl")


def parse_request(payload: Any, policy: TokenPolicy) -> TokenRequest:
    """Validate a request against the contract and the policy; refusals raise a :class:`SigningError`."""
    if type(payload) is not dict:
        raise InvalidRequestError("the request must be a JSON object with a 'sub' field")
    for key in payload:  # a plain loop: a comprehension is a call of its own, on every token
        if type(key) is not str or key not in REQUEST_FIELDS:
            raise _unknown_fields(payload)

    sub = payload.get("sub")
    if sub is None and "sub" not in payload:
        raise InvalidRequestError("'sub' is required")
    if not _is_text(sub):
        raise InvalidRequestError("'sub' must be a non-blank string of valid Unicode")
    size = len(sub) + 8
    if size > MAX_REQUEST_CHARS:
        raise PayloadTooLargeError(f"the request exceeds {MAX_REQUEST_CHARS} characters")

    aud, aud_size = _parse_audience(payload, policy)
    size += aud_size
    if size > MAX_REQUEST_CHARS:
        raise PayloadTooLargeError(f"the request exceeds {MAX_REQUEST_CHARS} characters")

    ttl = _parse_ttl(payload, policy)

    claims: dict[str, Any] = {}
    if "claims" in payload:
        claims = payload["claims"]
        if type(claims) is not dict:
            raise InvalidClaimsError("'claims' must be a JSON object")
        size += _claims_size(claims, 1, MAX_REQUEST_CHARS - size)
        if size > MAX_REQUEST_CHARS:
            raise PayloadTooLargeError(f"the request exceeds {MAX_REQUEST_CHARS} characters")
        if not RESERVED_CLAIMS.isdisjoint(claims):
            reserved = RESERVED_CLAIMS.intersection(claims)
            raise InvalidClaimsError(
                f"'claims' may not set {', '.join(sorted(reserved))}: iss, iat, nbf, exp, jti and azp are set by the signer, "
                "sub and aud by the top-level fields"
            )
    return from_fields(TokenRequest, (sub, aud, ttl, claims))


def _parse_audience(payload: dict[Any, Any], policy: TokenPolicy) -> tuple[str | list[str], int]:
    if "aud" not in payload:
        if not policy.default_audience:
            raise InvalidRequestError("'aud' is required (no default audience is configured)")
        return policy.default_audience, 0
    aud = payload["aud"]
    allowed = policy.allowed_audiences
    if type(aud) is str:  # the common case, without a list of one
        if not _is_text(aud):
            raise InvalidRequestError("'aud' must be a non-blank string of valid Unicode or a list of them")
        if allowed and aud not in allowed:
            raise AudienceNotAllowedError("an audience in the request is not in the configured allowed audiences")
        return aud, len(aud) + 8
    if type(aud) is list:
        if not aud:
            raise InvalidRequestError("'aud' must not be an empty list")
        if len(aud) * 3 > MAX_REQUEST_CHARS:
            raise PayloadTooLargeError(f"the request exceeds {MAX_REQUEST_CHARS} characters")
        if not all(_is_text(item) for item in aud):
            raise InvalidRequestError("every 'aud' entry must be a non-blank string of valid Unicode")
        audiences = list(dict.fromkeys(aud))
        size = sum(len(item) + 3 for item in aud) + 8
    else:
        raise InvalidRequestError("'aud' must be a string or a list of strings")
    if allowed and not all(item in allowed for item in audiences):
        raise AudienceNotAllowedError("an audience in the request is not in the configured allowed audiences")
    return audiences, size


def _parse_ttl(payload: dict[Any, Any], policy: TokenPolicy) -> int:
    if "ttl" not in payload:
        return policy.default_ttl
    ttl = payload["ttl"]
    kind = type(ttl)
    if kind is float:
        if not math.isfinite(ttl) or not ttl.is_integer():
            raise InvalidRequestError("'ttl' must be a whole number of seconds")
        ttl = int(ttl)
    elif kind is not int:
        raise InvalidRequestError("'ttl' must be a whole number of seconds")
    if ttl <= 0:
        raise InvalidRequestError("'ttl' must be greater than zero")
    if ttl > policy.max_ttl:
        if policy.max_ttl == MAX_TTL_SHAPE:
            return MAX_TTL_SHAPE + 1  # a shape check: the profile refuses it as ttl_too_long, after the audience (refusal order)
        raise TtlTooLongError(f"'ttl' may be at most {policy.max_ttl} seconds")
    return int(ttl)


def _claims_size(container: dict[Any, Any] | list[Any], depth: int, budget: int) -> int:
    """Check an object or array of claims and return its size; stops early once ``budget`` is spent."""
    if depth > MAX_CLAIMS_DEPTH:
        raise InvalidClaimsError(f"'claims' nest deeper than {MAX_CLAIMS_DEPTH} levels")
    size = 2
    if type(container) is dict:
        for key, item in container.items():
            if type(key) is not str:
                raise InvalidClaimsError("claim names must be strings")
            kind = type(item)  # strings and booleans, the common claims, sized here: a call per claim costs per token
            if kind is str:
                size += len(key) + 6 + len(item)
            elif kind is bool:
                size += len(key) + 9
            elif kind is list or kind is dict:  # as _value_size would, one call fewer
                size += len(key) + 4 + _claims_size(item, depth + 1, budget - size)
            else:
                size += len(key) + 4 + _value_size(item, depth, budget - size)
            if size > budget:
                return size
    else:
        for item in container:
            size += (len(item) + 3) if type(item) is str else 1 + _value_size(item, depth, budget - size)
            if size > budget:
                return size
    return size


def _value_size(item: Any, depth: int, budget: int) -> int:
    kind = type(item)
    if kind is str:
        return len(item) + 2
    if kind is bool or item is None:
        return 5
    if kind is int:
        bits: int = item.bit_length()
        return bits // 3 + 2
    if kind is float:
        if not math.isfinite(item):
            raise InvalidClaimsError("claims may not hold NaN or Infinity")
        return 24
    if kind is dict or kind is list:
        return _claims_size(item, depth + 1, budget)
    raise InvalidClaimsError("claims may hold JSON values only: objects, arrays, strings, numbers, booleans, null")


def build_claims(request: TokenRequest, policy: TokenPolicy, iat: int, jti: str, azp: str | None = None) -> dict[str, Any]:
    """The token's claims, registered claims first.

    ``iat`` is the truthful issue time; ``nbf`` is back-dated by
    ``min(clock-skew-leeway, 60 s)`` because several verifiers reject a token
    whose ``nbf`` is still in their (slightly slow) future; ``exp`` is
    ``iat + ttl``; ``azp`` names the issuance profile the token was issued under.
    """
    claims: dict[str, Any] = {
        "iss": policy.issuer,
        "sub": request.sub,
        "aud": request.aud,
        "iat": iat,
        "nbf": iat - policy.nbf_backdate,
        "exp": iat + request.ttl,
        "jti": jti,
    }
    if azp is not None:
        claims["azp"] = azp
    if request.claims:
        claims.update(request.claims)
    return claims
