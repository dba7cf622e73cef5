"""The sign path's HTTP transport against a real loopback server: answers, keep-alive, timeouts, size caps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from jwks_rotator.adapters.lean.http import HttpError, HttpTransport, forget_connections


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: ClassVar[set[int]] = set()
    ports: ClassVar[set[int]] = set()  # the client's source ports: one per connection (an id() can be reused)

    def do_GET(self) -> None:
        _Handler.connections.add(id(self.connection))
        _Handler.ports.add(self.client_address[1])
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path.startswith("/chunked"):
            pieces = [b"x" * 700] * 3 if self.path == "/chunked-big" else [b'{"ok"', b":tr", b"ue}"]
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n")
            return
        if self.path == "/until-close":  # no length: the body ends when the connection does
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"all of it")
            self.close_connection = True
            return
        if self.path == "/then-drop":  # answers as if keeping the connection, then drops it
            self.close_connection = True
        body = b"x" * 2048 if self.path == "/big" else b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        echoed = self.rfile.read(length) + b"|" + self.headers.get("X-Test", "").encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(echoed)))
        self.end_headers()
        self.wfile.write(echoed)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.connections.clear()
    _Handler.ports.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_answers_with_status_lowercase_headers_and_body(origin: str) -> None:
    transport = HttpTransport(origin)
    answer = transport.request("POST", "/echo", headers={"X-Test": "yes"}, body=b"hello")
    assert (answer.status, answer.body) == (201, b"hello|yes")
    got = transport.request("GET", "/")
    assert got.headers["content-type"] == "application/json"
    assert got.body == b'{"ok":true}'


def test_keeps_one_connection_across_requests(origin: str) -> None:
    transport = HttpTransport(origin)
    for _ in range(3):
        transport.request("GET", "/")
    assert len(_Handler.connections) == 1


def test_read_timeout_is_an_http_error_and_the_next_request_reconnects(origin: str) -> None:
    transport = HttpTransport(origin, read_timeout=0.2)
    with pytest.raises(HttpError, match=r"TimeoutError|timeout"):
        transport.request("GET", "/slow")
    assert transport.request("GET", "/").status == 200


def test_an_oversized_answer_is_refused(origin: str) -> None:
    with pytest.raises(HttpError, match="exceeds 1024 bytes"):
        HttpTransport(origin, max_body=1024).request("GET", "/big")


def test_refused_connection_is_an_http_error() -> None:
    transport = HttpTransport("http://127.0.0.1:9", connect_timeout=0.5)
    with pytest.raises(HttpError, match="failed"):
        transport.request("GET", "/")


@pytest.mark.parametrize("origin", ["ftp://host", "http://host/path", "http://host?q=1", "http://"])
def test_origin_is_scheme_host_and_port_only(origin: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        HttpTransport(origin)


def test_a_chunked_answer_is_reassembled_and_capped(origin: str) -> None:
    transport = HttpTransport(origin, max_body=1024)
    assert transport.request("GET", "/chunked").body == b'{"ok":true}'
    assert transport.request("GET", "/ok").body == b'{"ok":true}'  # the connection was kept after the last chunk
    assert len(_Handler.ports) == 1
    with pytest.raises(HttpError, match="exceeds 1024 bytes"):
        transport.request("GET", "/chunked-big")


def test_an_answer_without_length_ends_with_the_connection_and_the_next_request_reconnects(origin: str) -> None:
    transport = HttpTransport(origin)
    assert transport.request("GET", "/until-close").body == b"all of it"
    assert transport.request("GET", "/ok").status == 200
    assert len(_Handler.ports) == 2


def test_a_kept_connection_the_server_dropped_is_retried_once_on_a_new_one(origin: str) -> None:
    transport = HttpTransport(origin)
    assert transport.request("GET", "/then-drop").status == 200
    time.sleep(0.1)  # the server has closed its end by now
    assert transport.request("GET", "/ok").body == b'{"ok":true}'
    assert len(_Handler.ports) == 2


def test_concurrent_requests_on_one_transport_take_turns_on_its_connection(origin: str) -> None:
    # Lambda runs one invocation per environment; the local stack runs concurrent invocations as threads sharing one
    # transport, whose kept connection must not carry two exchanges at once.
    transport = HttpTransport(origin)
    answers: list[bytes] = []
    failures: list[BaseException] = []

    def post(index: int) -> None:
        try:
            answers.extend(transport.request("POST", "/", headers={"X-Test": f"{index}-{r}"}, body=b"b").body for r in range(20))
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert sorted(answers) == sorted(f"b|{i}-{r}".encode() for i in range(8) for r in range(20))


class _CannedServer:
    """A raw loopback server answering the n-th request it reads with ``answers[n]`` verbatim; it counts requests."""

    def __init__(self, answers: list[bytes]) -> None:
        import socket

        self.answers = answers
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.origin = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return
            with connection, connection.makefile("rb") as reader:  # both closed: the client sees the connection end
                while self.requests < len(self.answers):
                    line = reader.readline()
                    if not line:
                        break
                    while reader.readline() not in (b"\r\n", b""):
                        pass
                    answer = self.answers[self.requests]
                    self.requests += 1
                    if not answer:  # closes before any byte of an answer
                        break
                    connection.sendall(answer)
                    if not answer.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in answer:  # a partial status or head
                        break
                    if b"Content-Length: 100\r\n" in answer:  # a truncated answer: its connection ends here
                        break

    def close(self) -> None:
        self._sock.close()


@pytest.mark.parametrize("size", [b"-1", b"0x5", b"+5", b"5_0", b"", b"123456789"])
def test_a_chunk_size_that_is_not_plain_hex_is_refused(size: bytes) -> None:
    server = _CannedServer([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"])
    try:
        with pytest.raises(HttpError):
            HttpTransport(server.origin, max_body=1024).request("GET", "/")
    finally:
        server.close()


@pytest.mark.parametrize("length", [b"+5", b" 5_0", b"5, 5", b"-0", b"0x5", b"12345678901"])
def test_a_content_length_that_is_not_plain_digits_is_refused(length: bytes) -> None:
    server = _CannedServer([b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nhello"])
    try:
        with pytest.raises(HttpError):
            HttpTransport(server.origin).request("GET", "/")
    finally:
        server.close()


def test_an_answer_cut_short_on_a_kept_connection_is_an_error_and_never_sent_again() -> None:
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"
    server = _CannedServer([whole, cut, whole])
    try:
        transport = HttpTransport(server.origin)
        assert transport.request("GET", "/").body == b"ok"
        with pytest.raises(HttpError):
            transport.request("GET", "/")
        assert server.requests == 2  # the half-read request was not re-sent on a new connection
    finally:
        server.close()


def test_a_connection_closed_before_any_answer_is_sent_again_once() -> None:
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = _CannedServer([b"", whole])
    try:
        assert HttpTransport(server.origin).request("GET", "/").body == b"ok"
        assert server.requests == 2
    finally:
        server.close()
    server = _CannedServer([b"", b"", whole])
    try:
        with pytest.raises(HttpError, match="no answer"):
            HttpTransport(server.origin).request("GET", "/")
        assert server.requests == 2  # one retry, never a second
    finally:
        server.close()


def test_a_partial_status_line_is_an_error_and_never_sent_again() -> None:
    server = _CannedServer([b"HTTP/1.1 2", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    try:
        with pytest.raises(HttpError):
            HttpTransport(server.origin).request("GET", "/")
        assert server.requests == 1
    finally:
        server.close()


def test_a_timed_out_request_is_never_sent_again(origin: str) -> None:
    with pytest.raises(HttpError):
        HttpTransport(origin, read_timeout=0.2).request("GET", "/slow")
    time.sleep(1.0)  # the slow answer is written (and dropped) by now
    assert len(_Handler.ports) == 1


def test_an_answer_with_two_content_lengths_is_refused() -> None:
    server = _CannedServer([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"])
    try:
        with pytest.raises(HttpError, match="Content-Length"):  # two lengths: refused, never one of them picked
            HttpTransport(server.origin).request("GET", "/")
    finally:
        server.close()


def test_forgotten_connections_are_never_used_again(origin: str) -> None:
    # A copy restored from a snapshot (or a forked process) must not share a kept socket with another copy.
    transports = [HttpTransport(origin), HttpTransport(origin)]
    for transport in transports:
        transport.request("GET", "/ok")
    assert len(_Handler.ports) == 2
    forget_connections()
    for transport in transports:
        assert transport.request("GET", "/ok").status == 200
    assert len(_Handler.ports) == 4  # each opened a new connection
