"""The signer's read of the revocation record in the stack's bucket: one SigV4-signed GET, stdlib only (no boto3).

The sign path loads no AWS SDK, so this signs the one request it needs (``GET /revocations/revoked-kids.json``, an
empty payload) with the function's own credentials from its environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, as Lambda sets them). The origin is
``https://<bucket>.s3.<region>.amazonaws.com`` (``.com.cn`` in the China regions), or ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` (path style) on the local stack only (its code directory's marker). A missing record reads as
None (the rotator writes it on its first run); any other failure is a :class:`~jwks_rotator.core.errors.StoreError`
naming only the status.

S3 sheds load with 503 ``SlowDown`` and answers 500 ``InternalError`` now and then; every AWS SDK retries those (the
boto3 route and the Parameters and Secrets extension make three attempts). So does this reader: up to :data:`ATTEMPTS`
GETs with a short full-jitter pause between them (:data:`BACKOFF_BASE`, doubling), kept small because the sign
function has 5 s in all. Without it one transient answer fails the signer's whole refresh (``signing_unavailable``
until the next read). A connection failure or timeout is not retried here (the transport retries once when nothing
arrived): a timeout already spent the budget.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlsplit

from jwks_rotator.adapters.lean.http import HttpError, HttpTransport
from jwks_rotator.core.errors import ConfigurationError, StoreError
from jwks_rotator.core.keys.revocation_guard import RECORD_KEY, decode_record

MAX_RECORD_BYTES = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ATTEMPTS = 3
"""GETs per read when S3 answers a transient error (as the SDKs' standard retry mode)."""
BACKOFF_BASE = 0.025
"""Seconds: the pause before retry n is uniform in [0, BACKOFF_BASE * 2**(n-1)] (at most 75 ms in all)."""
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
"""What S3 answers when it sheds load or fails inside (SlowDown, InternalError, ...): worth another try."""


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sigv4_headers(
    *, host: str, path: str, region: str, access_key: str, secret_key: str, session_token: str | None, now: float, service: str = "s3"
) -> dict[str, str]:
    """The headers of a SigV4-signed GET of ``path`` (already URI-encoded) with an empty payload."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    day = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    if session_token:
        headers["x-amz-security-token"] = session_token
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["GET", path, "", *(f"{name}:{headers[name]}" for name in sorted(headers)), "", signed, EMPTY_SHA256])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return headers


class LeanS3RevocationRecord:
    """A read-only :class:`~jwks_rotator.core.ports.RevocationRecord` (``save`` is the rotator's, never the signer's)."""

    def __init__(
        self,
        origin: str,
        path: str,
        region: str,
        environ: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        transport: HttpTransport | None = None,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError("the revocation record's S3 endpoint must be http(s)://host[:port]")
        self._host = parts.netloc
        self._path = path
        self._region = region
        self._environ = environ
        self._clock = clock
        self._sleep = sleep
        self._transport = transport or HttpTransport(f"{parts.scheme}://{parts.netloc}", max_body=MAX_RECORD_BYTES)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], bucket: str, *, local: bool = False) -> LeanS3RevocationRecord:
        """The record's reader; an endpoint override is honoured only with ``local`` (the code directory's marker).

        Elsewhere an override is a configuration error: a configuration change must not point the read at a server
        that answers "nothing revoked" (and that would receive the function's signed request and session token).
        """
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
        if not region or not bucket:
            raise ConfigurationError("the revocation record needs AWS_REGION and the bucket (jwks-bucket)")
        override = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
        if override and not local:
            raise ConfigurationError("the revocation record: AWS_ENDPOINT_URL(_S3) is honoured only on the local stack")
        key = quote(RECORD_KEY, safe="/")
        if override:
            return cls(override.rstrip("/"), f"/{quote(bucket, safe='')}/{key}", region, environ)
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return cls(f"https://{bucket}.s3.{region}.{suffix}", f"/{key}", region, environ)

    def load(self) -> tuple[str, ...] | None:
        access_key, secret_key = self._environ.get("AWS_ACCESS_KEY_ID", ""), self._environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not access_key or not secret_key:
            raise StoreError("the revocation record could not be read (no credentials)", reason="NoCredentials")
        for attempt in range(1, ATTEMPTS + 1):
            headers = sigv4_headers(  # signed afresh per attempt: x-amz-date is the attempt's
                host=self._host,
                path=self._path,
                region=self._region,
                access_key=access_key,
                secret_key=secret_key,
                session_token=self._environ.get("AWS_SESSION_TOKEN"),
                now=self._clock(),
            )
            try:
                response = self._transport.request("GET", self._path, headers=headers)
            except HttpError:
                raise StoreError("the revocation record could not be read (S3 did not answer)", reason="S3Unavailable") from None
            if response.status not in TRANSIENT_STATUSES or attempt == ATTEMPTS:
                break
            self._sleep(random.uniform(0.0, BACKOFF_BASE * 2 ** (attempt - 1)))  # jitter, not a secret
        if response.status == 404:
            return None
        if response.status != 200:
            raise StoreError(f"the revocation record could not be read (HTTP{response.status})", reason=f"HTTP{response.status}")
        return decode_record(response.body)

    def save(self, kids: tuple[str, ...]) -> None:
        raise StoreError("the signer never writes the revocation record", reason="ReadOnly")
