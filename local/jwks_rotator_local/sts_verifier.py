"""A local STS front end that checks SigV4 signatures as AWS does, for replayed GetCallerIdentity proofs.

moto checks no signatures: a GetCallerIdentity with a garbage signature is answered 200 with whatever identity the
access key id names. A local stack that trusted that would let any test forge any role. :class:`LocalStsVerifier` sits
in front of a moto server running *in this process* and, for ``Action=GetCallerIdentity``:

* looks the access key id up among the credentials moto issued (IAM users' access keys, ``sts:AssumeRole`` sessions)
  in moto's in-process backends; unknown keys, inactive keys and moto's default ``testing`` keys (no role behind them)
  are refused (``InvalidClientTokenId``);
* requires the session's ``X-Amz-Security-Token`` for temporary keys (and none for a user's long-term key) and refuses
  an expired session (``ExpiredToken``);
* checks the scope (service ``sts``, its own region, the X-Amz-Date's day), a 15-minute clock skew, and recomputes the
  signature with botocore's signer over exactly the received method, path, signed headers and body
  (``SignatureDoesNotMatch``);
* then forwards the request, unchanged, to moto, which answers as STS would.

Other actions are forwarded to moto unchecked, so a local stack can point ``AWS_ENDPOINT_URL_STS`` here and still
assume roles with test keys.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from .faults import RegionFaults

MAX_SKEW_SECONDS = 15 * 60
MAX_REQUEST_BYTES = 64 * 1024
DEFAULT_TEST_KEYS = frozenset({"testing", "test", "AKIAIOSFODNN7EXAMPLE"})

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[^/\s]{1,128})/(?P<date>\d{8})/(?P<region>[^/\s]{1,32})/(?P<service>[^/\s]{1,32})/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class StsRefusal:
    """An STS error answer: HTTP status, error code and a message with no secret in it."""

    status: int
    code: str
    message: str

    def xml(self) -> bytes:
        return (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{self.code}</Code><Message>{self.message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ).encode()


@dataclass(frozen=True)
class IssuedCredential:
    secret_key: str
    session_token: str | None
    expires_at: float | None


def find_moto_credential(access_key_id: str) -> IssuedCredential | None:
    """The secret (and session token and expiry, for a role session) moto issued for an access key id, if any."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id in list(iam_backends.keys()):
        for partition, iam in list(iam_backends[account_id].items()):
            key = iam.access_keys.get(access_key_id)
            if key is None or key.status != "Active":
                continue
            if key.role_arn is None and key.user_name is not None:
                return IssuedCredential(key.secret_access_key, None, None)
            for session in sts_backends[account_id][partition].assumed_roles:
                if session.access_key_id == access_key_id:
                    expires = session.expiration.replace(tzinfo=UTC).timestamp()
                    return IssuedCredential(session.secret_access_key, session.session_token, expires)
    return None


class _ExactHeadersSigner(SigV4Auth):  # type: ignore[misc]
    """SigV4 over exactly the headers a request lists as signed, at the timestamp it carries."""

    def __init__(self, credentials: Credentials, region: str, signed: list[str]) -> None:
        super().__init__(credentials, "sts", region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name in self._signed:
            headers[name] = request.headers[name]
        return headers


def _signature(request: AWSRequest, signer: SigV4Auth) -> str:
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


class LocalStsVerifier:
    """Checks GetCallerIdentity signatures, then forwards to the moto server at ``moto_endpoint`` (same process)."""

    def __init__(
        self,
        moto_endpoint: str,
        *,
        region: str = "us-east-1",
        regions: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        lookup: Callable[[str], IssuedCredential | None] = find_moto_credential,
    ) -> None:
        parts = urlsplit(moto_endpoint)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("moto_endpoint must be http://host:port")
        self._moto = (parts.hostname, parts.port or 80)
        self.region = region
        self.regions = frozenset((region, *regions))
        """The regions it answers for, as one endpoint serving each region's STS: a request's scope picks one."""
        self._clock = clock
        self._lookup = lookup
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tls = False
        self.faults: RegionFaults | None = None
        """The local cloud's regional faults, when it has any (:mod:`.faults`)."""

    # --- the check, without HTTP -------------------------------------------
    def check(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> StsRefusal | None:
        """``None`` when a GetCallerIdentity request is signed as AWS requires, else the refusal STS would answer."""
        lower = {name.lower(): value for name, value in headers.items()}
        match = _AUTHORIZATION.fullmatch(lower.get("authorization", ""))
        if method != "POST" or path != "/" or match is None:
            return StsRefusal(400, "IncompleteSignature", "The request signature does not conform to AWS standards.")
        signed = match["signed"].split(";")
        amz_date = lower.get("x-amz-date", "")
        if "host" not in signed or "x-amz-date" not in signed or any(name not in lower for name in signed):
            return StsRefusal(400, "IncompleteSignature", "Host and X-Amz-Date must be signed, and every signed header present.")
        if match["service"] != "sts" or match["region"] not in self.regions or match["date"] != amz_date[:8]:
            return StsRefusal(403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region, service and date.")
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return StsRefusal(400, "IncompleteSignature", "X-Amz-Date is malformed.")
        now = self._clock()
        if abs(now - signed_at) > MAX_SKEW_SECONDS:
            return StsRefusal(403, "SignatureDoesNotMatch", "Signature expired or not yet current (15 minutes skew).")
        akid = match["akid"]
        secret = None if akid in DEFAULT_TEST_KEYS else self._lookup(akid)
        if secret is None:
            return StsRefusal(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        token = lower.get("x-amz-security-token")
        if secret.session_token is not None:
            if token is None or "x-amz-security-token" not in signed or not hmac.compare_digest(token, secret.session_token):
                return StsRefusal(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
            if secret.expires_at is not None and now >= secret.expires_at:
                return StsRefusal(403, "ExpiredToken", "The security token included in the request is expired.")
        elif token is not None:
            return StsRefusal(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        content_hash = lower.get("x-amz-content-sha256")
        if content_hash is not None and content_hash != hashlib.sha256(body).hexdigest():
            return StsRefusal(400, "XAmzContentSHA256Mismatch", "The provided x-amz-content-sha256 does not match the body.")
        request = AWSRequest(method="POST", url=f"http://{lower['host']}/", data=body, headers={name: lower[name] for name in signed})
        request.context["timestamp"] = amz_date
        signer = _ExactHeadersSigner(Credentials(akid, secret.secret_key, secret.session_token), match["region"], signed)
        if not hmac.compare_digest(_signature(request, signer), match["signature"]):
            return StsRefusal(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
        return None

    def answer(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
        """Status and body for one request: a refusal, or moto's answer to the request forwarded as received."""
        if self.faults is not None:
            outage = self.faults.answer_for(method, path, dict(headers))
            if outage is not None:  # the proof's region is in outage: STS there answers 503 at once
                return outage[0], outage[2]
        try:
            action = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)).get("Action")
        except (UnicodeDecodeError, ValueError):
            action = None
        if action == "GetCallerIdentity":
            names = [name.lower() for name, _ in headers]
            if len(set(names)) != len(names):
                return 400, StsRefusal(400, "InvalidRequest", "A header is repeated.").xml()
            refusal = self.check(method, path, dict(headers), body)
            if refusal is not None:
                return refusal.status, refusal.xml()
        return self._forward(method, path, headers, body)

    def _forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(*self._moto, timeout=10)
        try:
            kept = {name: value for name, value in headers if name.lower() not in ("connection", "content-length", "transfer-encoding")}
            connection.request(method, path, body=body, headers=kept)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    # --- the HTTP endpoint ---------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the STS verifier is not started")
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host!s}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None) -> str:
        """Serve on loopback from a daemon thread; returns ``http://HOST:PORT`` (``https://`` with a ``tls`` server context,
        e.g. :meth:`~.local_tls.LocalCertificateAuthority.server_context`, so a client pays for TLS as it does with AWS)."""
        if self._server is None:
            self._server = ThreadingHTTPServer((host, port), _handler_for(self))
            self._server.daemon_threads = True
            if tls is not None:
                self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._tls = tls is not None
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sts-verifier", daemon=True)
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join()
            self._server.server_close()
        self._server = None
        self._thread = None


def _handler_for(verifier: LocalStsVerifier) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # the answer's headers and body go out at once (no delayed-ACK stall)

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def _serve(self, method: str) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_REQUEST_BYTES:
                self._reply(413, StsRefusal(413, "RequestEntityTooLarge", "The request is too large.").xml())
                return
            body = self.rfile.read(length)
            status, answer = verifier.answer(method, self.path, list(self.headers.items()), body)
            self._reply(status, answer)

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: requests carry credentials' signatures."""

    return Handler
