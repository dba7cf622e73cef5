"""One AWS endpoint for the local stack, as LocalStack's edge offers one: Lambda API paths to the Lambda API, the rest to moto.

moto answers every service the stack uses except invoking (and describing)
the stack's in-process functions, which the local Lambda API serves. A client
given one ``endpoint_url`` (boto3, the operator CLI) reaches both through this
front: requests whose path starts with ``/2015-03-31/functions/`` go to the
Lambda API, every other request, headers and body unchanged (the ``Host``
header included, so moto routes by it as before), to moto. Responses are
passed back with their status, headers and body.

Regions: one endpoint serves every region, as moto does (it keys its backends by the request's credential
scope). A Lambda API request goes to the Lambda API of its scope's region when ``lambda_urls`` names any
(``ResourceNotFoundException`` for a region with no functions), else to ``lambda_url``. With ``faults``, a
region in outage answers at once (:mod:`.faults`), and the fault switch is served on its control path.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from .faults import CONTROL_PREFIX, RegionFaults, Response, scope_of
from .lambda_api import ACCOUNT_ID
from .loopback_server import LoopbackServer

LAMBDA_PATH_PREFIX = "/2015-03-31/functions/"
RequestHook = Callable[[str, str, Mapping[str, str], bytes], None]
"""Told of every request before it is forwarded: (method, path with query, headers, body); see :mod:`.call_record`."""
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"})
_TIMEOUT = 60.0


class AwsFront:
    """A loopback HTTP server forwarding Lambda API paths to ``lambda_url`` and everything else to ``moto_url``."""

    def __init__(self, moto_url: str, lambda_url: str, *, host: str = "127.0.0.1", port: int = 0,
                 recorder: RequestHook | None = None, faults: RegionFaults | None = None) -> None:
        self.moto_url = moto_url
        self.lambda_url = lambda_url
        self.lambda_urls: dict[str, str] = {}
        """The Lambda API of each region that has one; empty: ``lambda_url`` serves every region."""
        self.recorder = recorder
        self.faults = faults
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

    def target(self, path: str, headers: Mapping[str, str] | None = None) -> str | None:
        """The server a request goes to; None for a Lambda API request of a region without functions."""
        if not urlsplit(path).path.startswith(LAMBDA_PATH_PREFIX):
            return self.moto_url
        if not self.lambda_urls:
            return self.lambda_url
        scope = scope_of(path, headers or {})
        region = scope[0] if scope is not None else None
        return self.lambda_urls.get(region) if region is not None else None


def _function_not_found(path: str, headers: Mapping[str, str]) -> Response:
    """Lambda's answer for a function the request's region does not have."""
    scope = scope_of(path, headers)
    name = urlsplit(path).path[len(LAMBDA_PATH_PREFIX) :].split("/", 1)[0]
    region = scope[0] if scope is not None else "unknown"
    body = json.dumps({"Type": "User", "message": f"Function not found: arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"}).encode()
    return 404, {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"}, body


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
        faults = self.owner.faults
        if faults is not None and urlsplit(self.path).path.startswith(CONTROL_PREFIX):
            self._answer(faults.control(self.command, self.path))
            return
        if self.owner.recorder is not None:
            self.owner.recorder(self.command, self.path, dict(self.headers.items()), body)
        outage = faults.answer_for(self.command, self.path, dict(self.headers.items())) if faults is not None else None
        if outage is not None:
            self._answer(outage)
            return
        url = self.owner.target(self.path, dict(self.headers.items()))
        if url is None:
            self._answer(_function_not_found(self.path, dict(self.headers.items())))
            return
        target = urlsplit(url)
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

    def _answer(self, response: Response) -> None:
        status, headers, body = response
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are not worth a line each."""
