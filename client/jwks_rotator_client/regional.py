"""Ask the sign functions of several regions for a token, in order of preference, within one deadline.

Each region keeps its own :class:`~jwks_rotator_client.SignClient`, so its own proof: a proof is signed
for its region's STS (the credential scope) and names its region's function, and a signer accepts only
proofs of its own region. A region that fails is skipped for the next one; a region that *answers* is
final, whatever the answer. Every attempt runs against what is left of the deadline, so a call never
outlasts it, and a region that failed is tried last for a while so an outage costs one timeout, not one
per call. Why these failures and not others: docs/design/regions.md.

Example::

    from jwks_rotator_client import RegionalSignClient, RegionalSigner

    client = RegionalSignClient(
        [RegionalSigner("eu-west-1", "jwks-rotator-sign"), RegionalSigner("us-east-1", "jwks-rotator-sign")],
        deadline=5.0,
    )
    answer = client.sign({"sub": "user-42", "aud": "payments-api"})
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]  # untyped where vendored without stubs
from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]  # untyped where vendored without stubs
from botocore.exceptions import (  # type: ignore[import-untyped,unused-ignore]  # untyped where vendored without stubs
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    ConnectionError as BotocoreConnectionError,
)

from .sign_client import PROOF_REUSE_SECONDS, SignClient, SignInvokeError

DEFAULT_DEADLINE = 10.0
"""Seconds one ``sign`` may take over every region, attempts and proofs included."""
DEFAULT_ATTEMPT_TIMEOUT = 3.0
"""Seconds one region may take before the next is tried (a cold sign function answers within ~2 s)."""
DEFAULT_DEMOTE_SECONDS = 30.0
"""How long a region that failed is tried after the healthy ones."""

UNAVAILABLE_ANSWERS = frozenset(
    {"signing_unavailable", "store_unavailable", "key_vault_unavailable", "internal_error", "invalid_configuration"}
)
"""Error answers that say the region cannot sign right now (its STS, store, KMS or deployment), not that the caller may not."""
OUTAGE_AWS_CODES = frozenset(
    {
        "ServiceException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "EC2ThrottledException",
        "ResourceNotReadyException",
        "RequestTimeout",
        "RequestTimeoutException",
        "SnapStartNotReadyException",
        "SnapStartTimeoutException",
    }
)
"""Lambda errors of the region rather than of the request; any HTTP 5xx or 429 counts too."""


@dataclass(frozen=True)
class RegionalSigner:
    """One region's sign function: its region, its name or ARN, and optionally a Lambda client or STS endpoint of its own.

    Without ``lambda_client`` one is made for ``region`` with timeouts from the deadline and no retries
    (the next region is the retry). ``sts_endpoint_url`` overrides the STS endpoint the session resolves
    for the region (``AWS_ENDPOINT_URL_STS`` is honoured either way).
    """

    region: str
    function_name: str
    lambda_client: Any = None
    sts_endpoint_url: str | None = None


@dataclass(frozen=True)
class RegionFailure:
    """Why one region gave no answer: ``kind`` is ``answer``, ``function_error``, ``aws_error``, ``connection``, ``timeout`` or ``deadline``.

    ``code`` is the error answer's code or the AWS error code where there is one; ``detail`` is a short
    description (never a token, a proof or a claim value).
    """

    region: str
    kind: str
    code: str = ""
    detail: str = ""


@dataclass(frozen=True)
class RegionalAnswer:
    """The final answer, the region that gave it, and the regions that failed before it (in the order tried)."""

    region: str
    answer: dict[str, Any]
    failures: tuple[RegionFailure, ...]


class RegionsUnavailableError(SignInvokeError):
    """No region answered within the deadline; ``failures`` says what each region tried did (and which the deadline cut off)."""

    def __init__(self, failures: Sequence[RegionFailure]) -> None:
        self.failures = tuple(failures)
        summary = ", ".join(f"{f.region}: {f.kind}{f' {f.code}' if f.code else ''}" for f in self.failures)
        super().__init__(f"no region's sign function answered ({summary})")


class _Outage(Exception):
    """Internal: one region's failure, carried out of the attempt."""

    def __init__(self, failure: RegionFailure) -> None:
        super().__init__(failure.kind)
        self.failure = failure


class RegionalSignClient:
    """Calls the first region that answers, in order of preference, within ``deadline`` seconds per ``sign``.

    Fails over on: an error answer in :data:`UNAVAILABLE_ANSWERS`; a crashed function (``FunctionError``); a
    Lambda error in :data:`OUTAGE_AWS_CODES` or of HTTP status 5xx/429; a connection or read failure; an
    attempt that outlasts ``attempt_timeout`` (or the rest of the deadline). Any other answer, refusals such
    as ``caller_not_allowed`` included, is returned as it is; any other exception (no credentials, access
    denied, an unknown function) is raised as it is: those are the caller's to fix, in every region alike.
    """

    def __init__(
        self,
        signers: Sequence[RegionalSigner],
        session: Any = None,
        *,
        deadline: float = DEFAULT_DEADLINE,
        attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT,
        demote_seconds: float = DEFAULT_DEMOTE_SECONDS,
        proof_reuse_seconds: float = PROOF_REUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not signers:
            raise ValueError("at least one regional sign function is required")
        if not deadline > 0 or not attempt_timeout > 0 or demote_seconds < 0:
            raise ValueError("deadline and attempt_timeout must be positive, demote_seconds not negative")
        regions = [s.region for s in signers]
        if len(set(regions)) != len(regions):
            raise ValueError("each region may be listed once")
        self._session = session or boto3.Session()
        self.deadline = deadline
        self.attempt_timeout = attempt_timeout
        self._demote = demote_seconds
        self._clock = clock
        self.regions: tuple[str, ...] = tuple(regions)
        self._clients: dict[str, SignClient] = {}
        for signer in signers:
            self._clients[signer.region] = self._client_for(signer, proof_reuse_seconds)
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._session.get_credentials()  # the chain is resolved once, here, not on a worker thread under the deadline

    def _client_for(self, signer: RegionalSigner, proof_reuse_seconds: float) -> SignClient:
        if not signer.region or not signer.function_name:
            raise ValueError("a regional sign function needs a region and a function name")
        parts = signer.function_name.split(":")
        if signer.function_name.startswith("arn:") and len(parts) >= 7 and parts[3] != signer.region:
            raise ValueError(f"the function ARN is in {parts[3]}, not in {signer.region}")
        lambda_client = signer.lambda_client
        if lambda_client is None:
            timeout = min(self.attempt_timeout, self.deadline)
            config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard", "total_max_attempts": 1})
            lambda_client = self._session.client("lambda", region_name=signer.region, config=config)
        elif lambda_client.meta.region_name != signer.region:
            raise ValueError(f"the Lambda client for {signer.region} is one of {lambda_client.meta.region_name}")
        client = SignClient(
            signer.function_name,
            lambda_client,
            self._session,
            sts_endpoint_url=signer.sts_endpoint_url,
            proof_reuse_seconds=proof_reuse_seconds,
        )
        _ = client.sts_endpoint_url  # resolved here, once: a boto3 session must not make clients on several threads at once
        return client

    def client(self, region: str) -> SignClient:
        """The one-region client (and so the proof cache) of ``region``."""
        return self._clients[region]

    def order(self) -> list[str]:
        """The regions in the order the next ``sign`` tries them: healthy ones by preference, then recently failed ones."""
        now = self._clock()
        with self._lock:
            demoted = {r for r, at in self._failed_at.items() if now - at < self._demote}
        return [r for r in self.regions if r not in demoted] + [r for r in self.regions if r in demoted]

    def sign(self, request: dict[str, Any], *, deadline: float | None = None) -> dict[str, Any]:
        """The first region's answer (token or ``{"error", "message"}``); :class:`RegionsUnavailableError` when none answered."""
        return self.sign_detailed(request, deadline=deadline).answer

    def sign_detailed(self, request: dict[str, Any], *, deadline: float | None = None) -> RegionalAnswer:
        """As :meth:`sign`, with the region that answered and the failures before it."""
        budget = self.deadline if deadline is None else deadline
        if not budget > 0:
            raise ValueError("the deadline must be positive")
        if self._session.get_credentials() is None:  # the same in every region: the caller's to fix, not an outage
            raise SignInvokeError("no AWS credentials to prove the caller's identity with")
        started = self._clock()
        failures: list[RegionFailure] = []
        order = self.order()
        for index, region in enumerate(order):
            remaining = budget - (self._clock() - started)
            if remaining <= 0:
                failures.extend(RegionFailure(r, "deadline", detail="not tried: the deadline passed") for r in order[index:])
                break
            try:
                answer = self._attempt(region, request, min(self.attempt_timeout, remaining))
            except _Outage as outage:
                failures.append(outage.failure)
                with self._lock:
                    self._failed_at[region] = self._clock()
                continue
            with self._lock:
                self._failed_at.pop(region, None)
            return RegionalAnswer(region, answer, tuple(failures))
        raise RegionsUnavailableError(failures)

    def _attempt(self, region: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One region's answer, or :class:`_Outage`; runs on a worker thread so a stuck call is left behind at ``timeout``.

        A left-behind call ends by itself: the clients made here time out at ``attempt_timeout``.
        """
        client = self._clients[region]
        outcome: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        def run() -> None:
            try:
                outcome.put((True, client.sign(request)))
            except BaseException as exc:  # carried to the caller's thread as it is
                outcome.put((False, exc))

        threading.Thread(target=run, name=f"jwks-rotator-sign-{region}", daemon=True).start()
        try:
            ok, value = outcome.get(timeout=timeout)
        except queue.Empty:
            raise _Outage(RegionFailure(region, "timeout", detail=f"no answer within {timeout:.3g} s")) from None
        if ok:
            error = value.get("error")
            if isinstance(error, str) and error in UNAVAILABLE_ANSWERS:
                raise _Outage(RegionFailure(region, "answer", code=error, detail="the region cannot sign right now"))
            return dict(value)
        outage = _outage_of(region, value)
        if outage is None:
            raise value
        raise outage from None


def _outage_of(region: str, exc: BaseException) -> _Outage | None:
    """The :class:`_Outage` an exception stands for, or None when it is not a regional failure (the caller's to see)."""
    if isinstance(exc, SignInvokeError):
        return _Outage(RegionFailure(region, "function_error", code=exc.error_type or "", detail="the sign function failed"))
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in OUTAGE_AWS_CODES or (isinstance(status, int) and (status >= 500 or status == 429)):
            return _Outage(RegionFailure(region, "aws_error", code=code, detail=f"HTTP {status}"))
        return None
    if isinstance(exc, BotocoreConnectionError | HTTPClientError):
        return _Outage(RegionFailure(region, "connection", code=type(exc).__name__, detail="the region's Lambda endpoint did not answer"))
    return None
