"""Invoke a jwks-rotator sign function with a proof of who is calling.

The proof is an ``sts:GetCallerIdentity`` request signed (SigV4) with the caller's own credentials but never
sent: the sign function replays it to STS and learns the caller's ARN from STS's answer. The signed
``X-Jwks-Rotator-Signer`` header (the function name exactly as given here) binds the proof to that one sign
function; which headers are signed and why: docs/design/caller-proof.md.

Example::

    from jwks_rotator_client import SignClient

    client = SignClient(function_name="jwks-rotator-sign")
    answer = client.sign({"sub": "user-42", "aud": "payments-api", "ttl": 300})
    token = answer["token"]     # or answer["error"] / answer["message"]

A proof is reused for :data:`PROOF_REUSE_SECONDS` (the signer accepts one for 5 minutes and caches the
identity, so a warm caller costs it no STS call); a reused proof answered ``unauthenticated`` is replaced by
a fresh one and retried once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped,unused-ignore]  # untyped where vendored without stubs
from botocore.auth import SigV4Auth  # type: ignore[import-untyped,unused-ignore]  # untyped where vendored without stubs
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped,unused-ignore]  # untyped where vendored without stubs

SIGNER_HEADER = "X-Jwks-Rotator-Signer"
REQUEST_HEADER = "X-Jwks-Rotator-Request"
"""Signed into an operator's proof: the sha256 of the operation it authorizes (:func:`operation_digest`)."""
GET_CALLER_IDENTITY_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
PROOF_REUSE_SECONDS = 240.0
"""How long a proof is reused: a minute short of the signer's default 5-minute window."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvokeError(Exception):
    """The invoke did not produce an answer of the function's contract (the function crashed or answered no object).

    When the function raised, ``error_type`` and ``error_message`` are what
    Lambda reported of it (``errorType``, ``errorMessage``), else None.
    """

    def __init__(self, message: str, *, error_type: str | None = None, error_message: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.error_message = error_message


class SignInvokeError(InvokeError):
    """The invoke did not produce an answer of the sign function's contract (the function crashed or answered no object)."""


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("the STS endpoint must be an http(s) URL")
    port = parts.port
    return parts.hostname if port in (None, _DEFAULT_PORTS[parts.scheme]) else f"{parts.hostname}:{port}"


def build_caller_proof(
    credentials: Any, *, sts_endpoint_url: str, region: str, signer: str, extra_headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A signed, unsent GetCallerIdentity request as the sign function's ``proof`` field.

    ``credentials`` are botocore credentials (``access_key``, ``secret_key``,
    ``token``); ``sts_endpoint_url`` is the STS endpoint the sign function
    replays to (``https://sts.REGION.amazonaws.com``, or a local stand-in).
    ``extra_headers`` are signed too (an operator's :data:`REQUEST_HEADER`).
    """
    url = sts_endpoint_url.rstrip("/") + "/"
    headers = {"Host": _host_of(url), "Content-Type": FORM_CONTENT_TYPE, SIGNER_HEADER: signer, **(extra_headers or {})}
    request = AWSRequest(method="POST", url=url, data=GET_CALLER_IDENTITY_BODY.encode(), headers=headers)
    SigV4Auth(credentials, "sts", region).add_auth(request)
    return {"headers": dict(request.headers.items()), "body": GET_CALLER_IDENTITY_BODY}


class ProofInvoker:
    """Invokes one jwks-rotator function with a payload plus a proof of the caller's identity bound to that function.

    ``function_name`` is a name or ARN, passed to Lambda and signed into the
    proof as given. The STS endpoint is the one ``session`` resolves for the
    function's region (an ARN's region, else the Lambda client's), which
    honours ``AWS_ENDPOINT_URL_STS`` / ``AWS_ENDPOINT_URL`` for local use;
    ``sts_endpoint_url`` overrides it. A proof is reused for
    ``proof_reuse_seconds``; when a reused one is answered ``unauthenticated``
    a fresh one is signed and the invoke retried once.
    """

    function_label = "function"
    error_type: type[InvokeError] = InvokeError

    def __init__(
        self,
        function_name: str,
        lambda_client: Any = None,
        session: Any = None,
        *,
        sts_endpoint_url: str | None = None,
        proof_reuse_seconds: float = PROOF_REUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not function_name:
            raise ValueError("function_name is required")
        self.function_name = function_name
        self._session = session or boto3.Session()
        self._lambda = lambda_client or self._session.client("lambda")
        arn_parts = function_name.split(":")
        self.region: str = arn_parts[3] if function_name.startswith("arn:") and len(arn_parts) >= 7 else self._lambda.meta.region_name
        self._sts_endpoint_url = sts_endpoint_url
        self._reuse = proof_reuse_seconds
        self._clock = clock
        self._proof: dict[str, Any] | None = None
        self._proof_made_at = 0.0
        self._lock = threading.Lock()

    @property
    def sts_endpoint_url(self) -> str:
        """The STS endpoint proofs are signed for (resolved once, by botocore, for the function's region)."""
        if self._sts_endpoint_url is None:
            self._sts_endpoint_url = str(self._session.client("sts", region_name=self.region).meta.endpoint_url)
        return self._sts_endpoint_url

    def proof(self, *, fresh: bool = False) -> tuple[dict[str, Any], bool]:
        """The current proof and whether it is a reused one; a new one when older than the reuse window or ``fresh``."""
        with self._lock:
            now = self._clock()
            if not fresh and self._proof is not None and now - self._proof_made_at < self._reuse:
                return self._proof, True
            credentials = self._session.get_credentials()
            if credentials is None:
                raise self.error_type("no AWS credentials to prove the caller's identity with")
            self._proof = build_caller_proof(
                credentials.get_frozen_credentials(), sts_endpoint_url=self.sts_endpoint_url, region=self.region, signer=self.function_name
            )
            self._proof_made_at = now
            return self._proof, False

    def invoke_with_proof(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke the function with ``payload`` plus ``"proof"``; its answer, ``{"error", "message"}`` answers included."""
        proof, reused = self.proof()
        answer = self._invoke({**payload, "proof": proof})
        if reused and answer.get("error") == "unauthenticated":
            proof, _ = self.proof(fresh=True)
            answer = self._invoke({**payload, "proof": proof})
        return answer

    def _invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = self._lambda.invoke(FunctionName=self.function_name, InvocationType="RequestResponse", Payload=json.dumps(payload).encode())
        body = response["Payload"].read()
        if response.get("FunctionError"):
            kind, message = _failure_of(body)
            detail = f": {kind}: {message}" if kind and message else (f": {message}" if message else "")
            raise self.error_type(
                f"the {self.function_label} failed ({response['FunctionError']}){detail}", error_type=kind, error_message=message
            )
        try:
            answer = json.loads(body)
        except ValueError:
            raise self.error_type(f"the {self.function_label}'s answer is not JSON") from None
        if not isinstance(answer, dict):
            raise self.error_type(f"the {self.function_label}'s answer is not a JSON object")
        return answer


def _failure_of(body: bytes) -> tuple[str | None, str | None]:
    """Lambda's ``errorType`` and ``errorMessage`` (one line, bounded) from a failed invoke's payload, None where absent."""
    try:
        failure = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(failure, dict):
        return None, None
    kind, message = failure.get("errorType"), failure.get("errorMessage")
    return (
        kind[:200] if isinstance(kind, str) else None,
        " ".join(message.split())[:500] if isinstance(message, str) else None,
    )


class SignClient(ProofInvoker):
    """Calls one sign function; ``sign`` returns its answer, error answers included.

    ``function_name`` is a name or ARN, passed to Lambda and signed into the
    proof as given. The STS endpoint is the one ``session`` resolves for the
    function's region (an ARN's region, else the Lambda client's), which
    honours ``AWS_ENDPOINT_URL_STS`` / ``AWS_ENDPOINT_URL`` for local use;
    ``sts_endpoint_url`` overrides it.
    """

    function_label = "sign function"
    error_type = SignInvokeError

    def sign(self, request: dict[str, Any]) -> dict[str, Any]:
        """Invoke the sign function with ``request`` plus a proof; its answer (token or ``{"error", "message"}``)."""
        return self.invoke_with_proof(request)
