"""Envoy when the JWKS cannot be fetched: with ``async_fetch`` it keeps the last good set; without, it refuses every token.

One ES256 deployment; between Envoy and the local edge sits a switch that answers 503 while "down" (a CDN or
origin outage). Two providers with ``cache_duration`` 1 s: ``async`` (``async_fetch``, as docs/verifiers.md
recommends) and ``sync`` (fetch inside the first request after expiry). Expected: both accept the signer's token
while the edge is up; once the cache has expired during the outage, ``async`` still accepts it and ``sync``
answers 401 ``Jwks remote fetch is failed``; after the outage both accept again.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jwks_rotator_testkit.envoy import EnvoyProvider, EnvoyVerifier

from .conftest import AUDIENCE, Deployment, InteropCaller, make_deployment

pytestmark = pytest.mark.interop

CACHE = 1.0
SETTLE = CACHE + 2.0
"""Seconds after a switch by which both providers' caches have expired and a fetch (or its failure) has happened."""


class EdgeSwitch:
    """Forwards GETs to ``upstream`` (the local edge), or answers 503 while ``down``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.down = False
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if switch.down:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with urllib.request.urlopen(switch.upstream + self.path, timeout=5) as response:
                    body = response.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def outage(moto_endpoint: str, interop_caller: InteropCaller) -> Iterator[tuple[Deployment, EdgeSwitch, EnvoyVerifier]]:
    deployment = make_deployment(moto_endpoint, "ES256", interop_caller)
    switch = EdgeSwitch(deployment.edge.url)
    try:
        jwks_url = switch.url + deployment.jwks_url.removeprefix(deployment.edge.url)
        providers = [
            EnvoyProvider("async", deployment.issuer, AUDIENCE, jwks_url, cache_duration=CACHE),
            EnvoyProvider("sync", deployment.issuer, AUDIENCE, jwks_url, cache_duration=CACHE, async_fetch=False),
        ]
        with EnvoyVerifier(providers) as envoy:
            yield deployment, switch, envoy
    finally:
        switch.stop()
        deployment.edge.stop()


def test_async_fetch_keeps_the_last_good_jwks_through_an_outage(outage: tuple[Deployment, EdgeSwitch, EnvoyVerifier]) -> None:
    deployment, switch, envoy = outage
    token = deployment.issue(sub="through-outage", ttl=600)["token"]
    assert envoy.check("async", token).ok and envoy.check("sync", token).ok
    switch.down = True
    try:
        time.sleep(SETTLE)
        kept = envoy.check("async", token)
        assert kept.ok and kept.claims["sub"] == "through-outage", kept
        assert (envoy.check("sync", token).status, envoy.check("sync", token).reason) == (401, "Jwks remote fetch is failed")
    finally:
        switch.down = False
    time.sleep(SETTLE)
    assert envoy.check("async", token).ok and envoy.check("sync", token).ok
    assert envoy.stats()["http.verify.jwt_authn.jwks_fetch_failed"] > 0
