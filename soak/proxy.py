"""A fault-injecting HTTP proxy between the functions and moto, on loopback.

The functions reach AWS through it (``LocalStack(aws_endpoint=proxy.url)``) and it forwards to the
stack's one AWS endpoint (the front, which records the functions' calls when recording is on, then moto);
setup, the edge and the soak's own checks talk to moto directly. While
:attr:`FaultProxy.enabled` is set, each request may be answered without
reaching moto, as the services answer when they shed load:

* Secrets Manager: 400 ``ThrottlingException`` (the JSON error body the
  service sends) or 503;
* S3: 503 ``SlowDown`` or 500 ``InternalError`` (XML);
* CloudFront: 400 ``Throttling`` or 503 (XML);

or be forwarded and then fail on the way back: a write whose connection is
dropped after moto applied it ("half-failed": the call reached AWS but the
caller sees a failure), or any call answered late (``slow``).

:meth:`arm_cut` simulates a rotator killed mid-tick: once a request whose
User-Agent carries the tag has moved the keyring's ``AWSCURRENT`` label, every
later request with that tag is refused (connection closed, nothing forwarded).
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from jwks_rotator_local.loopback_server import LoopbackServer

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[a-z0-9-]+)/aws4_request")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te", "upgrade"}
_SM_WRITES = {"PutSecretValue", "UpdateSecretVersionStage"}
_READ_PREFIXES = ("Get", "Describe", "List")


@dataclass(frozen=True)
class FaultRates:
    """Per-request probabilities while faults are on (each request draws once)."""

    throttle: float = 0.10  # Secrets Manager / CloudFront throttling (400)
    unavailable: float = 0.06  # 503 (S3: SlowDown)
    internal: float = 0.04  # S3 500 InternalError
    half_failed_write: float = 0.30  # a write forwarded, then its connection dropped (writes are few: ~6 a rotation)
    slow: float = 0.08  # forwarded, answered late
    slow_seconds: tuple[float, float] = (0.2, 0.9)


def _sm_error(code: str, message: str) -> bytes:
    return f'{{"__type":"{code}","message":"{message}"}}'.encode()


def _s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


def _cf_error(kind: str, code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0"?>\n<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


@dataclass(frozen=True)
class Request:
    """What the proxy knows about one call."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    service: str
    operation: str

    @property
    def is_write(self) -> bool:
        if self.service == "secretsmanager":
            return self.operation in _SM_WRITES
        if "x-amz-target" in self.headers:  # JSON protocol (SSM): every call is a POST, the target names what it does
            return not self.operation.startswith(_READ_PREFIXES)
        return self.method in ("PUT", "POST", "DELETE")

    @property
    def user_agent(self) -> str:
        return self.headers.get("user-agent", "")


def describe(method: str, path: str, headers: dict[str, str]) -> tuple[str, str]:
    """(service, operation) of a signed AWS request."""
    match = _SCOPE.search(headers.get("authorization", ""))
    service = match.group("service") if match else "unknown"
    target = headers.get("x-amz-target", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if service == "cloudfront":
        return service, f"{method} {'invalidation' if 'invalidation' in path else 'distribution'}"
    return service, f"{method} object"


class FaultProxy:
    """A threaded HTTP proxy to one upstream (moto) that injects faults when enabled."""

    def __init__(self, rates: FaultRates | None = None, *, seed: int = 0, host: str = "127.0.0.1") -> None:
        self.rates = rates or FaultRates()
        self._rng = random.Random(seed)
        self._host = host
        self._upstream: tuple[str, int] | None = None
        self._http = LoopbackServer(_ProxyHandler, self, host=host, name="FaultProxy")
        self._lock = threading.Lock()
        self._enabled = False
        self._cut_tag: str | None = None
        self._cut_active = False
        self.faults: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()

    # --- lifecycle -------------------------------------------------------
    @property
    def url(self) -> str:
        return self._http.url

    def bind(self) -> str:
        """Open the listening socket so the URL is known before the upstream is."""
        return self._http.bind()

    def start(self, upstream: str) -> str:
        """Forward to ``upstream`` (``http://127.0.0.1:PORT``) and serve in a background thread."""
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            raise ValueError("the proxy forwards to loopback only")
        self._upstream = (parts.hostname, parts.port)
        return self._http.start()

    def stop(self) -> None:
        self._http.stop()

    # --- control ---------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        with self._lock:
            self._enabled = value

    def arm_cut(self, tag: str) -> None:
        """Kill the client tagged ``tag`` right after its next keyring write reaches moto."""
        with self._lock:
            self._cut_tag, self._cut_active = tag, False

    def disarm_cut(self) -> bool:
        """Stop refusing; returns whether the cut had triggered."""
        with self._lock:
            triggered = self._cut_active
            self._cut_tag, self._cut_active = None, False
            return triggered

    def count(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    # --- decisions (called by the handler) -------------------------------
    def _roll(self) -> float:
        with self._lock:
            return self._rng.random()

    def _slow_delay(self) -> float:
        with self._lock:
            return self._rng.uniform(*self.rates.slow_seconds)

    def refused(self, request: Request) -> bool:
        with self._lock:
            return self._cut_active and self._cut_tag is not None and self._cut_tag in request.user_agent

    def after_forward(self, request: Request, status: int) -> None:
        with self._lock:
            if (
                self._cut_tag is not None
                and self._cut_tag in request.user_agent
                and request.operation == "UpdateSecretVersionStage"
                and status == 200
            ):
                self._cut_active = True

    def early_fault(self, request: Request) -> tuple[int, dict[str, str], bytes, str] | None:
        """An error answered without forwarding, or None."""
        if not self._enabled:
            return None
        r, rates = self._roll(), self.rates
        if request.service == "secretsmanager":
            json_type = {"Content-Type": "application/x-amz-json-1.1"}
            if r < rates.throttle:
                return 400, json_type, _sm_error("ThrottlingException", "Rate exceeded"), "secretsmanager 400 ThrottlingException"
            if r < rates.throttle + rates.unavailable:
                return 503, json_type, _sm_error("ServiceUnavailable", "Service unavailable"), "secretsmanager 503"
        elif request.service == "s3":
            xml = {"Content-Type": "application/xml"}
            if r < rates.unavailable:
                return 503, xml, _s3_error("SlowDown", "Please reduce your request rate."), "s3 503 SlowDown"
            if r < rates.unavailable + rates.internal:
                return 500, xml, _s3_error("InternalError", "We encountered an internal error. Please try again."), "s3 500 InternalError"
        elif request.service == "cloudfront":
            xml = {"Content-Type": "text/xml"}
            if r < rates.throttle:
                return 400, xml, _cf_error("Sender", "Throttling", "Rate exceeded"), "cloudfront 400 Throttling"
            if r < rates.throttle + rates.unavailable:
                return 503, xml, _cf_error("Receiver", "ServiceUnavailable", "Service unavailable"), "cloudfront 503"
        return None

    def late_fault(self, request: Request) -> tuple[str, float] | None:
        """After forwarding: ("drop", 0) for a half-failed write, ("slow", seconds), or None."""
        if not self._enabled:
            return None
        r, rates = self._roll(), self.rates
        if request.is_write and r < rates.half_failed_write:
            return "drop", 0.0
        if r >= 1.0 - rates.slow:
            return "slow", self._slow_delay()
        return None

    def forward(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._upstream is not None
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k not in _HOP_HEADERS}
            headers["content-length"] = str(len(request.body))
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            return response.status, response.getheaders(), body
        finally:
            connection.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    server_version = "soak-fault-proxy"

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body()
        service, operation = describe(self.command, self.path, headers)
        request = Request(self.command, self.path, headers, body, service, operation)
        owner = self.owner
        with owner._lock:
            owner.requests[service] += 1
        if owner.refused(request):
            owner.count("rotator killed: later call refused")
            self.close_connection = True
            return
        early = owner.early_fault(request)
        if early is not None:
            status, extra, payload, kind = early
            owner.count(kind)
            self._respond(status, list(extra.items()), payload if self.command != "HEAD" else b"", len(payload))
            return
        try:
            status, upstream_headers, payload = owner.forward(request)
        except OSError:
            self.close_connection = True
            return
        owner.after_forward(request, status)
        late = owner.late_fault(request)
        if late is not None and late[0] == "drop":
            owner.count(f"half-failed write ({service} {operation})" if service == "secretsmanager" else f"half-failed write ({service})")
            self.close_connection = True
            return
        if late is not None:
            owner.count(f"slow answer ({service})")
            time.sleep(late[1])
        length = next((int(v) for k, v in upstream_headers if k.lower() == "content-length"), len(payload))
        kept = [(k, v) for k, v in upstream_headers if k.lower() not in _HOP_HEADERS and k.lower() not in ("date", "server")]
        self._respond(status, kept, payload, length if self.command == "HEAD" else len(payload))

    def _respond(self, status: int, headers: list[tuple[str, str]], body: bytes, length: int) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""
