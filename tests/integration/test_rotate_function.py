"""The rotate Lambda handler, invoked with the sample events against the moto server."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from jwks_rotator.core.jwks import JWKS_PATH
from jwks_rotator_local.functions import load_function_module

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def event(name: str):
    return json.loads((EVENTS / name).read_text())


def context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="RotateFunction",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:RotateFunction",
        aws_request_id="test-request",
    )


@pytest.fixture
def rotate(aws_resources, monkeypatch) -> ModuleType:
    """A freshly imported rotate handler configured for this test's resources."""
    for name, value in {
        "AWS_ENDPOINT_URL": aws_resources.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "KEYRING_SECRET_ID": aws_resources.secret_id,
        "JWKS_BUCKET": aws_resources.bucket,
        "DISTRIBUTION_ID": aws_resources.distribution_id,
        "ISSUER": "https://issuer.example.com",
        "ALGORITHM": "ES256",
    }.items():
        monkeypatch.setenv(name, value)
    return load_function_module("rotate")


def published_kids(aws_resources) -> list[str]:
    body = aws_resources.client("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read()
    return [k["kid"] for k in json.loads(body)["keys"]]


@pytest.mark.parametrize("name", ["rotate-scheduled.json", "rotate-tick.json", "publish.json"])
def test_scheduled_and_tick_events_bootstrap_and_publish(rotate, aws_resources, name):
    result = rotate.handler(event(name), context())
    assert result["converged"] and result["active_kid"]
    assert published_kids(aws_resources) == [k["kid"] for k in result["keys"]]
    again = rotate.handler(event(name), context())
    assert again["changes"] == [] and again["active_kid"] == result["active_kid"]


def test_rotate_now_makes_a_fresh_key_active_and_keeps_the_old_one_published(rotate, aws_resources):
    before = rotate.handler(event("rotate-tick.json"), context())
    after = rotate.handler(event("rotate-now.json"), context())
    assert after["active_kid"] not in (None, before["active_kid"])
    states = {k["kid"]: k["state"] for k in after["keys"]}
    assert states[before["active_kid"]] == "retired"
    assert set(published_kids(aws_resources)) == set(states)


def test_revoke_removes_the_kid_from_keyring_and_jwks(rotate, aws_resources):
    before = rotate.handler(event("rotate-tick.json"), context())
    revoked = before["active_kid"]
    request = dict(event("revoke.json"), kid=revoked)
    after = rotate.handler(request, context())
    assert after["active_kid"] and after["active_kid"] != revoked
    assert revoked not in published_kids(aws_resources)
    invalidations = aws_resources.client("cloudfront").list_invalidations(DistributionId=aws_resources.distribution_id)
    assert invalidations["InvalidationList"]["Quantity"] >= 2


def test_revoking_an_unknown_kid_answers_a_typed_error(rotate):
    rotate.handler(event("rotate-tick.json"), context())
    assert rotate.handler(event("revoke.json"), context())["error"] == "unknown_kid"


@pytest.mark.parametrize("bad", [[], "tick", {"operation": "explode"}, {"operation": "revoke"}, {"operation": "tick", "kid": "x"}])
def test_malformed_events_are_refused_without_side_effects(rotate, aws_resources, bad):
    assert rotate.handler(bad, context())["error"] == "invalid_event"
    assert aws_resources.client("s3").list_objects_v2(Bucket=aws_resources.bucket).get("KeyCount", 0) == 0


def test_an_unsafe_configuration_fails_naming_the_rule(rotate, monkeypatch):
    monkeypatch.setenv("JWKS_MAX_AGE", "3d")
    from jwks_rotator.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="jwks-max-age <= publish-lead"):
        rotate.handler(event("rotate-tick.json"), context())
