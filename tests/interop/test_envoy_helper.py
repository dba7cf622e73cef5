"""The testing kit's Envoy: the bootstrap it writes, the inputs it refuses, and a start that fails ends in an error, not a hang."""

from __future__ import annotations

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
