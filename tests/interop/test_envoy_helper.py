"""The testing kit's Envoy: the bootstrap it writes, the inputs it refuses, and a start that fails ends in an error, not a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jwks_rotator_testkit.envoy import EnvoyError, EnvoyProvider, EnvoyVerifier, envoy_config, envoy_version, free_ports

pytestmark = pytest.mark.interop

JWKS = "http://127.0.0.1:9/.well-known/jwks.json"


def test_each_provider_gets_its_prefix_cluster_and_cache_options() -> None:
    providers = [
        EnvoyProvider("a", "https://issuer-a", "api", JWKS, cache_duration=1.5),
        EnvoyProvider("b", "https://issuer-b", "api", JWKS, async_fetch=False, retries=0, clock_skew=60),
    ]
    config = envoy_config(providers, admin_port=1, listener_port=2, upstream_port=3)
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    jwt_authn = manager["http_filters"][0]["typed_config"]
    a, b = jwt_authn["providers"]["a"], jwt_authn["providers"]["b"]
    assert a["remote_jwks"]["cache_duration"] == "1.500s" and a["remote_jwks"]["async_fetch"]["fast_listener"] is False
    assert a["remote_jwks"]["retry_policy"]["num_retries"] == 3 and a["clock_skew_seconds"] == 1
    assert "async_fetch" not in b["remote_jwks"] and "retry_policy" not in b["remote_jwks"] and b["clock_skew_seconds"] == 60
    assert jwt_authn["rules"] == [
        {"match": {"prefix": "/a/"}, "requires": {"provider_name": "a"}},
        {"match": {"prefix": "/b/"}, "requires": {"provider_name": "b"}},
    ]
    clusters = {c["name"] for c in config["static_resources"]["clusters"]}
    assert clusters == {"echo", "jwks-a", "jwks-b"}


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        (EnvoyProvider("a", "i", "api", JWKS, clock_skew=0), "clock_skew must be >= 1"),  # Envoy reads 0 as 60 s
        (EnvoyProvider("a", "i", "api", "https://127.0.0.1:9/jwks.json"), "must be http://HOST:PORT"),
    ],
)
def test_inputs_envoy_would_misread_are_refused(provider: EnvoyProvider, message: str) -> None:
    with pytest.raises(EnvoyError, match=message):
        envoy_config([provider], admin_port=1, listener_port=2, upstream_port=3)


def test_duplicate_provider_names_are_refused() -> None:
    with pytest.raises(EnvoyError, match="distinct"):
        envoy_config([EnvoyProvider("a", "i", "api", JWKS)] * 2, admin_port=1, listener_port=2, upstream_port=3)


def test_a_config_envoy_rejects_fails_the_start_with_its_log() -> None:
    verifier = EnvoyVerifier([EnvoyProvider("a", "i", "api", JWKS, cache_duration=-1)], ready_timeout=20)
    with pytest.raises(EnvoyError, match="envoy exited at start") as failed:
        verifier.start()
    assert "Invalid duration" in str(failed.value)  # Envoy's own reason, from its log
    verifier.stop()  # safe again after a failed start


def test_free_ports_are_distinct_and_the_binary_runs() -> None:
    ports = free_ports(4)
    assert len(set(ports)) == 4 and all(1024 <= p < 65536 for p in ports)
    assert envoy_version() == "1.40.0"


ORPHAN_CHILD = """
import os, sys
from jwks_rotator_testkit.envoy import EnvoyProvider, EnvoyVerifier
envoy = EnvoyVerifier([EnvoyProvider("a", "i", "api", sys.argv[1], retries=0)], ready_timeout=30).start()
print(envoy._process.pid, flush=True)
os.kill(os.getpid(), 9)  # as a test run killed by a timeout or the OOM killer: no stop(), no atexit
"""


def test_envoy_does_not_outlive_a_killed_test_process(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the killed child cannot remove Envoy's work directory: pytest does
    child = subprocess.run([sys.executable, "-c", ORPHAN_CHILD, JWKS], capture_output=True, text=True, timeout=60, check=False, env=env)
    assert child.returncode == -9 and child.stdout.strip().isdigit(), child.stderr[-2000:]
    pid = int(child.stdout)
    try:
        for _ in range(100):  # the kernel delivers the parent-death signal at once; allow 10 s on a loaded machine
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid), f"envoy {pid} outlived the process that started it"
    finally:
        if _alive(pid):
            os.kill(pid, 9)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie awaiting init's reap counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
