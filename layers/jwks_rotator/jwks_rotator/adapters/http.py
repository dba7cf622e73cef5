"""A small HTTP(S) transport for the sign path's adapters: no boto3, explicit timeouts, bounded answers.

The sign path reads its keyring and replays callers' proofs over plain HTTP
(``http.client``: no ``urllib.request``, whose imports cost tens of ms). One
:class:`HttpTransport` per adapter keeps a connection per origin and opens a
fresh one after any failure. TLS contexts are built once per process, on
first HTTPS use: :func:`amazon_roots_context` (what the sign function uses for
STS) trusts only Amazon Trust Services' roots, shipped beside this module
(``amazon-trust-services-roots.pem``), and costs well under a millisecond where
``ssl.create_default_context()`` loads the whole system bundle (~20 ms).
"""

from __future__ import annotations

import http.client
import os
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
        import ssl

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
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_verify_locations(cafile=key)
        _CA_CONTEXTS[key] = context
    return context


def amazon_roots_context() -> Any:
    """The TLS context for AWS endpoints: Amazon Trust Services' roots only (see :data:`AMAZON_ROOTS`)."""
    return ca_file_context(AMAZON_ROOTS)


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

    @property
    def origin(self) -> str:
        port = f":{self._port}" if self._port is not None else ""
        return f"{'https' if self._https else 'http'}://{self._host}{port}"

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None) -> HttpResponse:
        """Send one request and read the whole answer; :class:`HttpError` on any transport failure."""
        connection: http.client.HTTPConnection | None = None
        try:
            connection = self._connection or self._connect()  # an unusable CA file fails here, as a transport failure
            connection.request(method, path, body=body, headers=dict(headers or {}))
            if connection.sock is not None:
                connection.sock.settimeout(self._read_timeout)
            response = connection.getresponse()
            data = response.read(self._max_body + 1)
            if len(data) > self._max_body:
                raise HttpError(f"answer from {self.origin} exceeds {self._max_body} bytes")
            answer = HttpResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        except HttpError:
            self.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise HttpError(f"{method} {self.origin}{path} failed: {type(exc).__name__}") from None
        if response.will_close:
            self.close()
        else:
            self._connection = connection
        return answer

    def close(self) -> None:
        """Drop the kept connection (the next request opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._connect_timeout, context=self._ssl_context())
        return http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
