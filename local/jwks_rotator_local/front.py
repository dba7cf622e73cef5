"""One AWS endpoint for the local stack, as LocalStack's edge offers one: Lambda API paths to the Lambda API, the rest to moto.

moto answers every service the stack uses except invoking (and describing)
the stack's in-process functions, which the local Lambda API serves. A client
given one ``endpoint_url`` (boto3, the operator CLI) reaches both through this
front: requests whose path starts with ``/2015-03-31/functions/`` go to the
Lambda API, every other request, headers and body unchanged (the ``Host``
header included, so moto routes by it as before), to moto. Responses are
passed back with their status, headers and body.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from .loopback_server import LoopbackServer

LAMBDA_PATH_PREFIX = "/2015-03-31/functions/"
RequestHook = Callable[[str, str, Mapping[str, str], bytes], None]
"""Told of every request before it is forwarded: (method, path with query, headers, body); see :mod:`.call_record`."""
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"})
_TIMEOUT = 60.0


class AwsFront:
    """A loopback HTTP server forwarding Lambda API paths to ``lambda_url`` and everything else to ``moto_url``."""

    def __init__(self, moto_url: str, lambda_url: str, *, host: str = "127.0.0.1", port: int = 0,
                 recorder: RequestHook | None = None) -> None:
        self.moto_url = moto_url
        self.lambda_url = lambda_url
        self.recorder = recorder
        self._http = LoopbackServer(_FrontHandler, self, host=host, port=port, name="AwsFront")

    @property
    def url(self) -> str:
        """``http://HOST:PORT``: the one AWS endpoint; valid after :meth:`start`."""
        return self._http.url

    def bind(self) -> str:
        """Open the listening socket (so the URL is known before the Lambda API exists); returns the URL."""
        return self._http.bind()

    def start(self) -> str:
        """Serve in a background thread; returns the URL."""
        return self._http.start()

    def stop(self) -> None:
        self._http.stop()

    def target(self, path: str) -> str:
        """The server a request for ``path`` goes to."""
        return self.lambda_url if urlsplit(path).path.startswith(LAMBDA_PATH_PREFIX) else self.moto_url


def _read_chunked(stream: Any) -> bytes:
    """A ``Transfer-Encoding: chunked`` request body, decoded."""
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline().strip():  # trailer fields, then the final empty line
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline()


class _FrontHandler(BaseHTTPRequestHandler):
    owner: AwsFront
    server_version = "jwks-rotator-local-front"
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(self.rfile)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        if self.owner.recorder is not None:
            self.owner.recorder(self.command, self.path, dict(self.headers.items()), body)
        target = urlsplit(self.owner.target(self.path))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=_TIMEOUT)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            if self.command != "HEAD" or "content-length" not in {k.lower() for k, _ in response.getheaders()}:
                self.send_header("Content-Length", str(len(payload)))
            else:
                self.send_header("Content-Length", str(response.getheader("Content-Length")))
            self.end_headers()
            if self.command != "HEAD" and payload:
                self.wfile.write(payload)
        except OSError as exc:
            message = f"local AWS front: {target.netloc} unreachable: {exc}".encode()
            self.send_response(HTTPStatus.BAD_GATEWAY)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            self.wfile.write(message)
        finally:
            connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are not worth a line each."""
