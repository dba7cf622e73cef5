"""A small threaded HTTP server on loopback, served from a daemon thread.

The local edge, the Lambda Invoke API and the soak's fault proxy each wrap
one: bind (so the URL is known early), serve, stop.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POLL_INTERVAL = 0.05  # how quickly stop() is noticed by serve_forever


class LoopbackServer:
    """Serves ``handler`` with ``handler.owner`` set to the object that owns this server."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: object, *, host: str = "127.0.0.1", port: int = 0, name: str) -> None:
        self._handler = type(handler.__name__, (handler,), {"owner": owner})
        self._host = host
        self._port = port
        self._name = name
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def bound(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """``http://HOST:PORT``; valid once bound."""
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def bind(self) -> str:
        """Open the listening socket without serving yet; returns the URL."""
        if self._server is None:
            self._server = ThreadingHTTPServer((self._host, self._port), self._handler)
            self._server.daemon_threads = True
        return self.url

    def start(self) -> str:
        """Bind if needed and serve in a background thread; returns the URL."""
        url = self.bind()
        if self._thread is None:
            assert self._server is not None
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, name=self._name, daemon=True
            )
            self._thread.start()
        return url

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join()
            self._server.server_close()
        self._server = None
        self._thread = None
