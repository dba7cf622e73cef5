"""A caller's proof of identity, checked before it is replayed to STS (pure, no I/O).

The caller signs an ``sts:GetCallerIdentity`` request with its own AWS credentials (SigV4) and sends it, unsent, in
the invoke payload's ``proof`` field (the model of Vault's AWS ``iam`` auth and aws-iam-authenticator). The signer
replays it to the STS endpoint *it* is configured with and takes the caller's ARN from STS's answer; the signed
:data:`SIGNER_HEADER` binds the proof to this signer.

:func:`parse_caller_proof` refuses, as ``unauthenticated`` with a ``reason`` slug safe to log, anything STS might read
differently from what was signed: an unsigned or unknown header, a wrong host, region, service or date, a stale or
future-dated proof, or another body. Within ``max_age`` a proof is a bearer credential for this signer only.

Design (the proof's shape and why each check exists): docs/design/caller-proof.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from jwks_rotator.core.errors import UnauthenticatedError

PROOF_FIELD = "proof"
"""The sign request's top-level field holding the proof."""

SIGNER_HEADER = "X-Jwks-Rotator-Signer"
"""The signed header binding a proof to one sign function: its name or ARN, as the caller invokes it."""

GET_CALLER_IDENTITY_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
"""The body a client sends (the two fields in either order are accepted)."""

DEFAULT_MAX_AGE = 300.0
"""Seconds after its ``X-Amz-Date`` a proof is accepted (STS itself accepts 15 minutes)."""

MAX_PROOF_CHARS = 8 * 1024
"""Largest proof: header names, header values and body, in characters."""

MAX_HEADERS = 20
"""Most headers a proof may present."""

REQUEST_HEADER = "X-Jwks-Rotator-Request"
"""The signed header binding an operator's proof to one operation: the sha256 (hex) of the operation event (see
:func:`jwks_rotator.core.lifecycle.operator_gate.operation_digest`). Sign proofs carry none."""

ALLOWED_HEADERS = frozenset(
    {"host", "x-amz-date", "authorization", "x-jwks-rotator-signer", "x-amz-security-token", "content-type", "x-jwks-rotator-request"}
)
"""The only header names (lower case) a proof may present."""

REQUIRED_SIGNED_HEADERS = ("host", "x-amz-date", "x-jwks-rotator-signer")
"""Headers every proof must present and sign."""

_PROOF_FIELDS = frozenset({"headers", "body"})
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,4096}")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[A-Z0-9]{16,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]{1,32})/(?P<service>[a-z0-9-]{1,32})/aws4_request,"
    r" ?SignedHeaders=(?P<signed>[a-z0-9-]{1,64}(?:;[a-z0-9-]{1,64}){0,19}), ?Signature=(?P<signature>[0-9a-f]{64})"
)
_FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"})
_EXPECTED_FORM = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}


@dataclass(frozen=True)
class CallerProof:
    """A proof that passed every local check, ready to replay.

    ``headers`` are sent as presented (names as the caller wrote them);
    ``cache_key`` is a sha256 over a canonical serialisation of headers and
    body (log it, never the signature); ``expires_at`` is ``X-Amz-Date +
    max_age`` in epoch seconds.
    """

    headers: tuple[tuple[str, str], ...]
    body: str
    cache_key: str
    signed_at: float
    expires_at: float
    signer: str = ""  # the X-Jwks-Rotator-Signer value it is bound to

    def header_map(self) -> dict[str, str]:
        """The headers as a dict, for a transport."""
        return dict(self.headers)


def _refuse(reason: str, message: str = "the caller's proof of identity is not valid") -> UnauthenticatedError:
    return UnauthenticatedError(message, reason=reason)


def accepted_signer_names(function_name: str, function_arn: str, qualifier: str | None = None) -> frozenset[str]:
    """The :data:`SIGNER_HEADER` values this function accepts: its name, unqualified ARN and qualified ARN.

    ``function_arn`` may be qualified (Lambda's ``invoked_function_arn`` is,
    when invoked through an alias or version); its qualifier is accepted too.
    """
    names = {function_name} if function_name else set()
    parts = function_arn.split(":") if function_arn else []
    if len(parts) in (7, 8) and parts[0] == "arn" and parts[2] == "lambda" and parts[5] == "function":
        unqualified = ":".join(parts[:7])
        names.add(unqualified)
        for extra in (parts[7] if len(parts) == 8 else None, qualifier):
            if extra:
                names.add(f"{unqualified}:{extra}")
    return frozenset(names)


def parse_caller_proof(
    raw: Any,
    *,
    accepted_signers: Iterable[str],
    sts_host: str,
    sts_region: str,
    now: float,
    max_age: float = DEFAULT_MAX_AGE,
    leeway: float = 60.0,
) -> CallerProof:
    """Check a proof against every rule the signer can judge alone; refusals raise :class:`UnauthenticatedError`.

    ``sts_host`` and ``sts_region`` are the signer's configured STS endpoint
    (``sts.eu-west-1.amazonaws.com`` and ``eu-west-1``; ``127.0.0.1:PORT``
    for a local stand-in); ``now`` is wall-clock epoch seconds.
    """
    if raw is None:
        raise _refuse("proof_missing", "the request needs a 'proof' of the caller's identity")
    if type(raw) is not dict:
        raise _refuse("proof_not_object")
    if set(raw) != _PROOF_FIELDS:
        raise _refuse("proof_fields", "the proof must have exactly the fields 'headers' and 'body'")
    headers, body = raw["headers"], raw["body"]
    if type(headers) is not dict or type(body) is not str:
        raise _refuse("proof_field_types")
    if len(headers) > MAX_HEADERS:
        raise _refuse("proof_too_large")
    size = len(body)
    by_name: dict[str, str] = {}
    for name, value in headers.items():
        if type(name) is not str or type(value) is not str:
            raise _refuse("header_not_text")
        size += len(name) + len(value)
        if size > MAX_PROOF_CHARS:
            raise _refuse("proof_too_large")
        if not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(value):
            raise _refuse("header_malformed")
        lower = name.lower()
        if lower in by_name:
            raise _refuse("duplicate_header")
        if lower not in ALLOWED_HEADERS:
            raise _refuse("header_not_allowed")
        by_name[lower] = value

    authorization = _AUTHORIZATION.fullmatch(by_name.get("authorization", ""))
    if authorization is None:
        raise _refuse("authorization_malformed")
    signed = authorization["signed"].split(";")
    if len(set(signed)) != len(signed):
        raise _refuse("signed_headers_malformed")
    if not all(name in signed for name in REQUIRED_SIGNED_HEADERS):
        raise _refuse("signed_headers_incomplete")
    if set(signed) != set(by_name) - {"authorization"}:
        raise _refuse("signed_headers_mismatch")
    if authorization["service"] != "sts":
        raise _refuse("scope_service")
    if authorization["region"] != sts_region:
        raise _refuse("scope_region")
    if by_name["host"].lower() != sts_host.lower():
        raise _refuse("host_not_sts")
    if by_name["x-jwks-rotator-signer"] not in frozenset(accepted_signers):
        raise _refuse("signer_mismatch", "the caller's proof was made for another signer")

    amz_date = by_name["x-amz-date"]
    signed_at = _parse_amz_date(amz_date)
    if authorization["date"] != amz_date[:8]:
        raise _refuse("scope_date")
    if now >= signed_at + max_age:
        raise _refuse("proof_expired", "the caller's proof of identity has expired")
    if signed_at - now > leeway:
        raise _refuse("proof_from_future")

    content_type = by_name.get("content-type")
    if content_type is not None and content_type.lower() not in _FORM_CONTENT_TYPES:
        raise _refuse("content_type")
    if "x-amz-security-token" in by_name and not by_name["x-amz-security-token"].strip():
        raise _refuse("header_malformed")
    if not _is_get_caller_identity(body):
        raise _refuse("not_get_caller_identity")

    presented = tuple((name, value) for name, value in headers.items())
    return CallerProof(
        headers=presented,
        body=body,
        cache_key=proof_cache_key(by_name, body),
        signed_at=signed_at,
        expires_at=signed_at + max_age,
        signer=by_name["x-jwks-rotator-signer"],
    )


def proof_cache_key(headers: Mapping[str, str], body: str) -> str:
    """sha256 (hex) over lower-cased, sorted headers and the body, as compact JSON."""
    canonical = json.dumps([sorted((name.lower(), value) for name, value in headers.items()), body], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parse_amz_date(value: str) -> float:
    if not _AMZ_DATE.fullmatch(value):
        raise _refuse("amz_date_malformed")
    try:
        moment = datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=UTC)
        return moment.timestamp()  # strptime costs several times more
    except ValueError:
        raise _refuse("amz_date_malformed") from None


def _is_get_caller_identity(body: str) -> bool:
    """Exactly the two form fields Action=GetCallerIdentity and Version=2011-06-15, nothing else."""
    if len(body) > 128:
        return False
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=True, max_num_fields=2)
    except ValueError:
        return False
    return len(pairs) == 2 and dict(pairs) == _EXPECTED_FORM
