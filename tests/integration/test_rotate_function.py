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


def emitted_metrics(capsys) -> dict[str, float]:
    """The EMF records the handler printed, summed by metric name."""
    values: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                values[metric["Name"]] = values.get(metric["Name"], 0) + sum(value if isinstance(value, list) else [value])
    return values


def test_a_tick_reports_the_active_keys_age_and_that_nothing_is_overdue(rotate, capsys):
    rotate.handler(event("rotate-tick.json"), context())
    values = emitted_metrics(capsys)
    assert values["KeysActive"] == 1 and values["KeysPending"] == 1
    assert 0 <= values["ActiveKeyAgeSeconds"] < 60
    assert values["ActiveKeyOverdueSeconds"] == 0


def test_a_restored_secret_is_counted_as_keyring_behind_publication_and_raised(rotate, aws_resources, capsys):
    from jwks_rotator.adapters.secrets_store import CURRENT, SecretsManagerKeyringStore
    from jwks_rotator.core.errors import KeyringBehindPublicationError

    rotate.handler(event("rotate-tick.json"), context())
    sm = aws_resources.client("secretsmanager")
    store = SecretsManagerKeyringStore(sm, aws_resources.secret_id)
    before = store.load().version_id
    rotate.handler(event("rotate-now.json"), context())
    sm.update_secret_version_stage(SecretId=aws_resources.secret_id, VersionStage=CURRENT,
                                   MoveToVersionId=before, RemoveFromVersionId=store.load().version_id)
    capsys.readouterr()
    with pytest.raises(KeyringBehindPublicationError):
        rotate.handler(event("rotate-tick.json"), context())
    values = emitted_metrics(capsys)
    assert values["KeyringBehindPublication"] == 1 and values["RotationFailures"] == 1
    assert "ClockSkewDetected" not in values
    accepted = rotate.handler({"operation": "publish", "accept_restore": True}, context())
    assert accepted["converged"]


def test_a_keyring_written_by_a_clock_far_ahead_is_counted_as_clock_skew_and_raised(rotate, aws_resources, capsys):
    from datetime import UTC, datetime, timedelta

    from jwks_rotator.adapters.secrets_store import SecretsManagerKeyringStore
    from jwks_rotator.core.errors import ClockSkewError
    from jwks_rotator.core.keygen import generate_key

    store = SecretsManagerKeyringStore(aws_resources.client("secretsmanager"), aws_resources.secret_id)
    loaded = store.load()
    ahead = generate_key("ES256", datetime.now(UTC) + timedelta(days=1))
    store.save(loaded.keyring.replace_keys([ahead]), loaded.version_id)
    with pytest.raises(ClockSkewError):
        rotate.handler(event("rotate-tick.json"), context())
    values = emitted_metrics(capsys)
    assert values["ClockSkewDetected"] == 1 and values["RotationFailures"] == 1


def test_the_rotate_function_creates_the_revocation_parameter_and_a_revoke_lands_on_it(rotate, aws_resources, monkeypatch):
    import uuid

    name = f"/jwks-rotator-test/{uuid.uuid4().hex[:10]}/revoked-kids"
    monkeypatch.setenv("REVOCATION_PARAMETER", name)
    rotate = load_function_module("rotate")
    kid = rotate.handler(event("rotate-tick.json"), context())["active_kid"]
    ssm = aws_resources.client("ssm")
    assert json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"]) == []
    rotate.handler(dict(event("revoke.json"), kid=kid), context())
    assert json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"]) == [kid]
