"""The sign path's HTTP(S) client: the standard library's ``http.client``, explicit timeouts, bounded answers.

The sign path reads its keyring through the Parameters and Secrets extension and replays callers' proofs to STS with
:mod:`http.client` (no boto3, no ``urllib.request``). Around it this module adds what the sign path needs:

* a connect timeout and a read timeout (the TLS handshake counts as connect);
* answers bounded by ``max_body``: a declared length above the cap is refused before reading, otherwise at most
  ``max_body + 1`` bytes are read and a larger answer is refused;
* strict framing: a ``Content-Length`` must be plain digits and a chunk size plain hex (``int()`` takes ``-1``,
  ``+5``, ``0x5`` and ``5_0``), and an answer cut short is an error;
* one retry, only when nothing of an answer arrived: the connection was refused, or closed before the first byte of an
  answer (typically a kept connection the server dropped). A request whose answer was cut short, timed out or was
  malformed is never sent again.

One :class:`HttpTransport` per adapter keeps a connection per origin, used by one exchange at a time;
:func:`forget_connections` drops every kept connection of the process without using it (a copy restored from a
snapshot, or a forked process, must not share a socket or a TLS session with another). TLS contexts are built once per
process: :func:`amazon_roots_context` (what the sign function uses for STS) trusts only Amazon Trust Services' roots,
shipped beside this module (``amazon-trust-services-roots.pem``); why and what it saves: docs/design/sign-function.md.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import ssl
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 3.0
DEFAULT_MAX_BODY = 1024 * 1024


class HttpError(Exception):
    """The request did not produce a complete answer (connection, timeout, oversize or malformed)."""


class HttpResponse(NamedTuple):
    """One answer: status, headers (lower-case names, repeated ones joined with ``, ``) and the whole body.

    A NamedTuple, not a dataclass: its class costs about a tenth of a frozen dataclass's to create at INIT (0.16 against 1.7 ms here, loaded).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


SslContextFactory = Callable[[], Any]

_LOCK = threading.Lock()  # contexts are built once even when threads ask at the same time
# A fork waits for a context being built and the copy starts with the lock free (no thread of the copy holds it).
os.register_at_fork(before=_LOCK.acquire, after_in_parent=_LOCK.release, after_in_child=_LOCK.release)
_SSL_CONTEXT: Any = None


def default_ssl_context() -> Any:
    """The system's default verifying TLS context (built on first use, then shared)."""
    global _SSL_CONTEXT
    with _LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = ssl.create_default_context()
        return _SSL_CONTEXT


AMAZON_ROOTS = os.path.join(os.path.dirname(__file__), "amazon-trust-services-roots.pem")
"""Amazon Root CA 1-4 and Starfield Services Root G2: every AWS public endpoint chains to one of them."""
_CA_CONTEXTS: dict[str, Any] = {}


def ca_file_context(ca_file: str) -> Any:
    """A verifying TLS client context (hostname checked, TLS 1.2 or later) trusting only the CAs in ``ca_file``.

    Built once per file and process. A missing or unreadable file raises
    :class:`OSError`; a file with no certificate, :class:`ssl.SSLError`.
    """
    key = str(ca_file)
    with _LOCK:
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


_DECIMAL = re.compile(r"[0-9]{1,10}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,8}")


class _StrictResponse(http.client.HTTPResponse):
    """``HTTPResponse`` reading chunk sizes as RFC 9112 writes them (plain hex, extensions after ``;`` ignored)."""

    def _read_next_chunk_size(self) -> int:
        line = self.fp.readline(1025)
        raw = line.split(b";", 1)[0].rstrip(b"\r\n").rstrip(b" \t")
        if not line.endswith(b"\n") or not _HEX.fullmatch(raw):
            self._close_conn()  # type: ignore[attr-defined]  # http.client's own: the framing is lost
            raise http.client.HTTPException("malformed chunk size")
        return int(raw, 16)


_TRANSPORTS: weakref.WeakSet[HttpTransport] = weakref.WeakSet()


def forget_connections() -> None:
    """Drop every transport's kept connection, unused: the next request of each opens a new one."""
    for transport in list(_TRANSPORTS):
        transport.forget()


class _NothingReceived(Exception):
    """The connection was refused or closed before any byte of an answer: the one case sent again."""


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
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_body = max_body
        self._ssl_context = ssl_context
        self._connection: http.client.HTTPConnection | None = None
        # One exchange at a time on the kept connection: concurrent invocations on threads share one transport.
        self._lock = threading.Lock()
        _TRANSPORTS.add(self)

    def forget(self) -> None:
        """Drop the kept connection without a word on it (its socket is closed here only); the lock is made anew."""
        self._lock = threading.Lock()
        connection, self._connection = self._connection, None
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.close()

    @property
    def origin(self) -> str:
        port = f":{self._port}" if self._port is not None else ""
        return f"{'https' if self._https else 'http'}://{self._host}{port}"

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None) -> HttpResponse:
        """Send one request and read the whole answer; :class:`HttpError` on any transport failure."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    return self._request(method, path, headers or {}, body)
                except _NothingReceived:
                    self.close()
                    if attempt == 2:
                        break
                except HttpError:
                    self.close()
                    raise
                except (OSError, ValueError, http.client.HTTPException) as exc:
                    self.close()
                    raise HttpError(f"{method} {self.origin}{path} failed: {type(exc).__name__}") from None
            raise HttpError(f"{method} {self.origin}{path} failed: no answer")

    def close(self) -> None:
        """Drop the kept connection (the next request opens a new one)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(OSError):
                connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=self._connect_timeout, context=self._ssl_context())
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        connection.response_class = _StrictResponse
        connection.auto_open = 0  # never a silent reconnect inside http.client: this class decides
        try:
            connection.connect()  # TCP and the TLS handshake, under the connect timeout
        except ConnectionRefusedError:
            connection.close()
            raise _NothingReceived from None
        except BaseException:
            connection.close()
            raise
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout)
        return connection

    def _request(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> HttpResponse:
        connection = self._connection
        if connection is None or connection.sock is None:
            self.close()
            connection = self._connection = self._connect()
        try:
            connection.request(method, path, body=body, headers=dict(headers))
        except (BrokenPipeError, ConnectionResetError):
            raise _NothingReceived from None  # the connection was gone before anything was answered
        try:
            response = connection.getresponse()
        except http.client.RemoteDisconnected:
            raise _NothingReceived from None  # closed before the first byte of a status line
        raw_length = response.getheader("content-length")
        if raw_length is not None and not _DECIMAL.fullmatch(raw_length):
            raise HttpError(f"answer from {self.origin} has a malformed Content-Length")
        if response.length is not None and response.length > self._max_body:
            raise HttpError(f"answer from {self.origin} exceeds {self._max_body} bytes")
        if response.length is not None:
            data = response.read()  # exactly the declared length (IncompleteRead when cut short)
        else:
            data = response.read(self._max_body + 1)  # chunked, or until the connection closes
            if len(data) <= self._max_body and not response.isclosed():
                data += response.read(self._max_body + 1 - len(data))  # until the close: b"" at its end
        if len(data) > self._max_body:
            raise HttpError(f"answer from {self.origin} exceeds {self._max_body} bytes")
        if not response.isclosed():
            raise HttpError(f"answer from {self.origin} did not end where its framing said")
        headers_out: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            headers_out[key] = f"{headers_out[key]}, {value}" if key in headers_out else value
        if connection.sock is None:  # the answer closed its connection: the next request opens a new one
            self.close()
        return HttpResponse(response.status, headers_out, data)
