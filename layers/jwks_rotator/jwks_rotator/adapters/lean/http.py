"""A small HTTP(S) transport for the sign path's adapters: no boto3, explicit timeouts, bounded answers.

The sign path reads its keyring and replays callers' proofs over plain HTTP/1.1
written on a socket: not ``urllib.request`` (~30 ms of imports) and not
``http.client`` either, whose ``email`` parser costs several ms more at every
cold start. The client speaks the little it needs: one request at a time,
an answer framed by ``Content-Length``, ``Transfer-Encoding: chunked`` or the
connection's close, informational (1xx) answers skipped. One
:class:`HttpTransport` per adapter keeps a connection per origin and opens a
fresh one after any failure or an answer that closes it. TLS contexts are built once per process, on
first HTTPS use: :func:`amazon_roots_context` (what the sign function uses for
STS) trusts only Amazon Trust Services' roots, shipped beside this module
(``amazon-trust-services-roots.pem``), and costs well under a millisecond where
``ssl.create_default_context()`` loads the whole system bundle (~20 ms).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 3.0
DEFAULT_MAX_BODY = 1024 * 1024


class HttpError(Exception):
    """The request did not produce a complete answer (connection, timeout, oversize or malformed)."""


@dataclass(frozen=True)
class HttpResponse:
    """One answer: status, headers (lower-case names) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


SslContextFactory = Callable[[], Any]


def default_ssl_context() -> Any:
    """The system's default verifying TLS context (built on first HTTPS use, then shared)."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = ssl.create_default_context()
    return _SSL_CONTEXT


_SSL_CONTEXT: Any = None

AMAZON_ROOTS = os.path.join(os.path.dirname(__file__), "amazon-trust-services-roots.pem")
"""Amazon Root CA 1-4 and Starfield Services Root G2: every AWS public endpoint chains to one of them."""
_CA_CONTEXTS: dict[str, Any] = {}


def ca_file_context(ca_file: str) -> Any:
    """A verifying TLS client context (hostname checked, TLS 1.2 or later) trusting only the CAs in ``ca_file``.

    Built once per file and process. A missing or unreadable file raises
    :class:`OSError`; a file with no certificate, :class:`ssl.SSLError`.
    """
    key = str(ca_file)
    context = _CA_CONTEXTS.get(key)
    if context is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_verify_locations(cafile=key)
        _CA_CONTEXTS[key] = context
    return context


def amazon_roots_context() -> Any:
    """The TLS context for AWS endpoints: Amazon Trust Services' roots only (see :data:`AMAZON_ROOTS`)."""
    return ca_file_context(AMAZON_ROOTS)


MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_LINES = 100


class _Connection:
    """One socket and its buffered reader."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class HttpTransport:
    """Requests to one origin (``scheme://host:port``) with a connect and a read timeout."""

    def __init__(
        self,
        origin: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_body: int = DEFAULT_MAX_BODY,
        ssl_context: SslContextFactory = default_ssl_context,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError("origin must be http(s)://host[:port] with no path or query")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        default_port = 443 if self._https else 80
        self._host_header = self._host if self._port in (None, default_port) else f"{self._host}:{self._port}"
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_body = max_body
        self._ssl_context = ssl_context
        self._connection: _Connection | None = None
        # One exchange at a time on the kept connection. Lambda runs one invocation per environment, but the local
        # stack runs concurrent invocations as threads sharing one module, hence one transport.
        self._lock = threading.Lock()

    @property
    def origin(self) -> str:
        port = f":{self._port}" if self._port is not None else ""
        return f"{'https' if self._https else 'http'}://{self._host}{port}"

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None) -> HttpResponse:
        """Send one request and read the whole answer; :class:`HttpError` on any transport failure."""
        with self._lock:
            return self._request(method, path, headers, body)

    def _request(self, method: str, path: str, headers: Mapping[str, str] | None, body: bytes | None) -> HttpResponse:
        fresh = self._connection is None
        try:
            connection = self._connection or self._connect()  # an unusable CA file fails here, as a transport failure
            self._connection = connection
            try:
                answer, keep = self._exchange(connection, method, path, headers or {}, body)
            except ConnectionError:
                if fresh:
                    raise
                # A kept connection the server closed meanwhile (not a timeout): try once more on a new one.
                self.close()
                connection = self._connection = self._connect()
                answer, keep = self._exchange(connection, method, path, headers or {}, body)
        except HttpError:
            self.close()
            raise
        except (OSError, ValueError) as exc:
            self.close()
            raise HttpError(f"{method} {self.origin}{path} failed: {type(exc).__name__}") from None
        if not keep:
            self.close()
        return answer

    def close(self) -> None:
        """Drop the kept connection (the next request opens a new one)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(OSError):
                connection.close()

    def _connect(self) -> _Connection:
        port = self._port or (443 if self._https else 80)
        sock = socket.create_connection((self._host, port), timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._https:
                sock = self._ssl_context().wrap_socket(sock, server_hostname=self._host)
            sock.settimeout(self._read_timeout)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _exchange(self, connection: _Connection, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> tuple[HttpResponse, bool]:
        names = {name.lower() for name in headers}
        lines = [f"{method} {path} HTTP/1.1"]
        if "host" not in names:
            lines.append(f"Host: {self._host_header}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None and "content-length" not in names:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        connection.sock.sendall(head + body if body else head)  # one write: no delayed-ACK stall between head and body
        reader = connection.reader
        while True:
            status, version, answer_headers = self._read_head(reader)
            if not 100 <= status < 200:
                break
        if method == "HEAD" or status in (204, 304):
            data = b""
            framed = True
        elif answer_headers.get("transfer-encoding", "").lower() == "chunked":
            data, framed = self._read_chunked(reader), True
        elif "content-length" in answer_headers:
            length = _decimal_length(answer_headers["content-length"])
            if length > self._max_body:
                raise HttpError(f"answer from {self.origin} exceeds {self._max_body} bytes")
            data, framed = self._read_exactly(reader, length), True
        else:
            data = reader.read(self._max_body + 1)
            framed = False
        if len(data) > self._max_body:
            raise HttpError(f"answer from {self.origin} exceeds {self._max_body} bytes")
        connection_header = answer_headers.get("connection", "").lower()
        keep = framed and connection_header != "close" and (version == "HTTP/1.1" or connection_header == "keep-alive")
        return HttpResponse(status, answer_headers, data), keep

    @staticmethod
    def _read_head(reader: Any) -> tuple[int, str, dict[str, str]]:
        line = reader.readline(MAX_HEADER_BYTES + 1)
        if not line:
            raise ConnectionResetError("the server closed the connection")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise ValueError("malformed status line")
        headers: dict[str, str] = {}
        total = len(line)
        for _ in range(MAX_HEADER_LINES + 1):
            line = reader.readline(MAX_HEADER_BYTES + 1)
            total += len(line)
            if total > MAX_HEADER_BYTES or not line:
                raise ValueError("malformed or oversized header block")
            if line in (b"\r\n", b"\n"):
                return int(parts[1]), parts[0], headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise ValueError("malformed header line")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise ValueError("too many header lines")

    def _read_exactly(self, reader: Any, length: int) -> bytes:
        data = reader.read(length)
        if len(data) != length:
            raise ValueError("the answer ended early")  # not a ConnectionError: a half-read answer is never re-sent
        return bytes(data)

    def _read_chunked(self, reader: Any) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = reader.readline(1024)
            if not size_line.endswith(b"\n"):
                raise ValueError("malformed chunk size")
            size = _chunk_size(size_line)
            if size == 0:
                break
            total += size
            if total > self._max_body:
                raise HttpError(f"answer from {self.origin} exceeds {self._max_body} bytes")
            chunks.append(self._read_exactly(reader, size))
            if reader.readline(3) not in (b"\r\n", b"\n"):
                raise ValueError("malformed chunk end")
        for _ in range(MAX_HEADER_LINES):  # trailers, then the blank line
            line = reader.readline(MAX_HEADER_BYTES)
            if line in (b"\r\n", b"\n"):
                return b"".join(chunks)
            if not line:
                raise ValueError("the answer ended early")
        raise ValueError("too many trailer lines")


_DECIMAL = re.compile(rb"[0-9]{1,10}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,8}")


def _decimal_length(value: str) -> int:
    """A Content-Length as RFC 9110 writes it (digits only): ``int()`` would also take signs, ``_``, spaces or a list."""
    raw = value.encode("latin-1")
    if not _DECIMAL.fullmatch(raw):
        raise ValueError("malformed Content-Length")
    return int(raw)


def _chunk_size(line: bytes) -> int:
    """A chunk size line's hex size (extensions after ``;`` ignored); ``int(x, 16)`` would take ``-1``, ``0x``, ``_``."""
    raw = line.split(b";", 1)[0].rstrip(b"\r\n").rstrip(b" \t")
    if not _HEX.fullmatch(raw):
        raise ValueError("malformed chunk size")
    return int(raw, 16)
