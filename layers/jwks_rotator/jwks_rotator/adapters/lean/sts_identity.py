"""Replay a caller's proof to STS over plain HTTP and read the caller's ARN (no boto3).

The endpoint is the signer's own choice, never the payload's: by default
``https://sts.{AWS_REGION}.amazonaws.com`` (``.amazonaws.com.cn`` in the
China regions), or :data:`STS_ENDPOINT_ENV` (``STS_ENDPOINT_URL``) for a
local stand-in. The proof's headers are sent as signed, ``Host`` included
(``parse_caller_proof`` already checked it equals :attr:`StsEndpoint.host`).

TLS: the connection trusts Amazon Trust Services' roots only
(:func:`~.http.amazon_roots_context`, a context built from five certificates
instead of the system bundle, which costs ~20 ms at a cold start), except in
the China regions, whose endpoints chain to other CAs (the system bundle
there). :data:`STS_CA_BUNDLE_ENV` (``STS_CA_BUNDLE``) names another PEM file
instead: the local stack's HTTPS stand-in and its test CA use it.

STS answers XML. The answer is bounded (:data:`MAX_ANSWER_BYTES`) and read
with two anchored patterns instead of an XML parser: a document type
declaration or an entity reference in the fields read is refused, so no
entity is ever expanded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from jwks_rotator.adapters.lean.http import HttpError, HttpTransport, amazon_roots_context, ca_file_context, default_ssl_context
from jwks_rotator.core.callers.proof import CallerProof
from jwks_rotator.core.callers.verifier import ReplayAnswer
from jwks_rotator.core.errors import ConfigurationError, SigningUnavailableError

LOCAL_MARKER = ".jwks-rotator-local"
"""A file in a function's code directory that marks it as running on the local stack: only then are
:data:`STS_ENDPOINT_ENV` and :data:`STS_CA_BUNDLE_ENV` honoured. An environment change cannot create it, and
``make build`` leaves it out of the artifact."""

STS_ENDPOINT_ENV = "STS_ENDPOINT_URL"
STS_CA_BUNDLE_ENV = "STS_CA_BUNDLE"
"""A PEM file of the CAs to trust for the STS endpoint instead of Amazon's roots (a local stand-in's test CA)."""
MAX_ANSWER_BYTES = 16 * 1024

_ARN = re.compile(rb"<GetCallerIdentityResult>.*?<Arn>([^<&]{1,2048})</Arn>", re.DOTALL)
_ERROR_CODE = re.compile(rb"<Error>.*?<Code>([A-Za-z0-9.]{1,64})</Code>", re.DOTALL)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class StsEndpoint(NamedTuple):  # not a dataclass: a tenth of the class creation cost at INIT
    """Where the signer replays proofs: the origin to connect to, the Host a proof must sign, and the scope region."""

    origin: str
    host: str
    region: str
    ca_file: str | None = None  # None: Amazon's roots (the system bundle in the China regions)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], *, local: bool = False) -> StsEndpoint:
        """AWS's STS for ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``) in its partition, over HTTPS with the shipped roots.

        Only with ``local`` (the function's code directory holds :data:`LOCAL_MARKER`) are the
        :data:`STS_ENDPOINT_ENV` and :data:`STS_CA_BUNDLE_ENV` overrides honoured; elsewhere either one set is a
        configuration error, so a configuration change cannot point the signer at another STS.
        """
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
        if not region:
            raise ConfigurationError("caller proof: AWS_REGION is not set, so the STS endpoint is unknown")
        overrides = [name for name in (STS_ENDPOINT_ENV, STS_CA_BUNDLE_ENV) if environ.get(name)]
        if overrides and not local:
            raise ConfigurationError(
                f"caller proof: {', '.join(overrides)} is honoured only on the local stack; a deployed function replays proofs to "
                f"{sts_origin(region)}"
            )
        origin = environ.get(STS_ENDPOINT_ENV) or sts_origin(region)
        return cls.for_origin(origin, region, ca_file=environ.get(STS_CA_BUNDLE_ENV) or None)

    @classmethod
    def for_origin(cls, origin: str, region: str, *, ca_file: str | None = None) -> StsEndpoint:
        """An endpoint for an explicit origin; the Host is written as SigV4 clients write it (default port omitted)."""
        parts = urlsplit(origin)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ConfigurationError(f"{STS_ENDPOINT_ENV}: must be http(s)://host[:port] with no path or query")
        port = parts.port
        host = parts.hostname.lower() if port in (None, _DEFAULT_PORTS[parts.scheme]) else f"{parts.hostname.lower()}:{port}"
        return cls(origin=f"{parts.scheme}://{parts.netloc}", host=host, region=region, ca_file=ca_file)

    def tls_context(self) -> Any:
        """The TLS context for this endpoint (built on first HTTPS use, then shared by the process)."""
        if self.ca_file is not None:
            return ca_file_context(self.ca_file)
        return default_ssl_context() if self.region.startswith("cn-") else amazon_roots_context()


_PARTITION_SUFFIXES = (("cn-", "amazonaws.com.cn"), ("us-isob-", "sc2s.sgov.gov"), ("us-isof-", "csp.hci.ic.gov"),
                       ("us-iso-", "c2s.ic.gov"), ("eu-isoe-", "cloud.adc-e.uk"))


def sts_origin(region: str) -> str:
    """AWS's regional STS endpoint in the region's partition (``https://sts.<region>.amazonaws.com`` or its equivalent)."""
    suffix = next((suffix for prefix, suffix in _PARTITION_SUFFIXES if region.startswith(prefix)), "amazonaws.com")
    return f"https://sts.{region}.{suffix}"


LAMBDA_RUNTIME_ENV = "AWS_LAMBDA_RUNTIME_API"
"""Set by Lambda's runtime in every execution environment, and reserved: no function configuration can set or unset it."""


def is_local(code_dir: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a function's code directory carries the local stack's :data:`LOCAL_MARKER`, outside Lambda's runtime.

    Running the tests marks the source tree, and a bare ``sam build`` copies the marker into the artifact (only
    ``make build`` leaves it out): inside Lambda's runtime (:data:`LAMBDA_RUNTIME_ENV`) a shipped marker counts for nothing.
    """
    return not environ.get(LAMBDA_RUNTIME_ENV) and os.path.isfile(os.path.join(code_dir, LOCAL_MARKER))


ENDPOINT_OVERRIDE_PREFIX = "AWS_ENDPOINT_URL"
"""``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``: endpoint overrides boto3 honours, refused outside the local stack."""


def refuse_endpoint_overrides(environ: Mapping[str, str], *, local: bool) -> None:
    """A configuration error when ``environ`` points an AWS service elsewhere and the function is not the local stack's.

    boto3 honours these variables: one configuration change would point a function's keyring, revocation record,
    mirror or publication at a server of the changer's choosing (a fake keyring published as the stack's keys).
    """
    redirected = sorted(name for name, value in environ.items() if name.startswith(ENDPOINT_OVERRIDE_PREFIX) and value)
    if redirected and not local:
        raise ConfigurationError(f"{', '.join(redirected)}: honoured only on the local stack; a deployed function uses AWS's own endpoints")


class StsIdentityReplayer:
    """The ``IdentityReplayer`` for AWS STS (or a stand-in speaking its protocol)."""

    def __init__(self, transport: HttpTransport) -> None:
        self._transport = transport

    @classmethod
    def for_endpoint(cls, endpoint: StsEndpoint) -> StsIdentityReplayer:
        return cls(HttpTransport(endpoint.origin, max_body=MAX_ANSWER_BYTES, ssl_context=endpoint.tls_context))

    def replay(self, proof: CallerProof) -> ReplayAnswer:
        """POST the proof as signed; STS's answer (ARN or error code), or ``SigningUnavailableError`` when none came."""
        try:
            response = self._transport.request("POST", "/", headers=proof.header_map(), body=proof.body.encode())
        except HttpError:
            raise SigningUnavailableError("the caller's identity cannot be checked right now (STS did not answer)") from None
        return read_sts_answer(response.status, response.body)


def read_sts_answer(status: int, body: bytes) -> ReplayAnswer:
    """The ARN of a 200 GetCallerIdentityResponse, or the ``<Code>`` of an error answer."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise SigningUnavailableError("STS answered with a document that could not be read")
    if status == 200:
        match = _ARN.search(body)
        if match is None:
            raise SigningUnavailableError("STS answered with a document that could not be read")
        return ReplayAnswer(status, arn=match.group(1).decode("ascii", "replace").strip())
    code = _ERROR_CODE.search(body)
    return ReplayAnswer(status, error_code=code.group(1).decode("ascii") if code else None)
