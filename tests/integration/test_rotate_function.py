"""The rotate Lambda handler, invoked with the sample events against the moto server.

Operations carry proofs of real moto role sessions, checked by the
signature-checking local STS (moto's own STS checks no signature).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator_local.functions import load_function_module
from jwks_rotator_local.sts_verifier import LocalStsVerifier
from jwks_rotator_testkit.callers import Caller, moto_role_session

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ROTATE_FUNCTION = "RotateFunction"
OPERATOR_ROLE = "jwks-rotator-test-operator"
OPERATOR_ROLES = f"arn:aws:iam::123456789012:role/{OPERATOR_ROLE},arn:aws:iam::123456789012:role/break-glass-*"


def event(name: str):
    return json.loads((EVENTS / name).read_text())


def context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name=ROTATE_FUNCTION,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{ROTATE_FUNCTION}",
        function_version="$LATEST",
        aws_request_id="test-request",
    )


@pytest.fixture(scope="module")
def local_sts(moto_endpoint: str) -> Iterator[str]:
    """The signature-checking STS in front of the test moto server (same process, as it must be)."""
    verifier = LocalStsVerifier(moto_endpoint, region="us-east-1")
    url = verifier.start()
    yield url
    verifier.stop()


@pytest.fixture(scope="module")
def operator(moto_endpoint: str) -> Caller:
    return moto_role_session(moto_endpoint, OPERATOR_ROLE, session="alice")


def signed(caller: Caller, local_sts: str, body: dict[str, Any], signer: str = ROTATE_FUNCTION) -> dict[str, Any]:
    """``body`` plus a fresh operator proof of ``caller`` bound to ``signer`` and to ``body`` itself."""
    return caller.operator_event(body, sts_endpoint_url=local_sts, signer=signer)


@pytest.fixture
def as_operator(operator: Caller, local_sts: str):
    """The sample event, or any body, with the operator's proof."""

    def wrap(body: dict[str, Any] | str) -> dict[str, Any]:
        return signed(operator, local_sts, event(body) if isinstance(body, str) else body)

    return wrap


@pytest.fixture
def rotate(aws_resources, local_sts, monkeypatch) -> ModuleType:
    """A freshly imported rotate handler configured for this test's resources; audit lines in ``audit_buffer``."""
    for name, value in {
        "AWS_ENDPOINT_URL": aws_resources.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "STS_ENDPOINT_URL": local_sts,
        "OPERATOR_ROLES": OPERATOR_ROLES,
        "KEYRING_SECRET_ID": aws_resources.secret_id,
        "JWKS_BUCKET": aws_resources.bucket,
        "DISTRIBUTION_ID": aws_resources.distribution_id,
        "ISSUER": "https://issuer.example.com",
        "ALGORITHM": "ES256",
    }.items():
        monkeypatch.setenv(name, value)
    module = load_function_module("rotate")
    module.audit._stream = module.audit_buffer = io.StringIO()
    return module


def audit_lines(rotate: ModuleType) -> list[dict[str, Any]]:
    return [json.loads(line) for line in rotate.audit_buffer.getvalue().splitlines()]


def published_kids(aws_resources) -> list[str]:
    body = aws_resources.client("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read()
    return [k["kid"] for k in json.loads(body)["keys"]]


@pytest.mark.parametrize("name", ["rotate-scheduled.json", "rotate-tick.json", "publish.json"])
def test_scheduled_and_tick_events_bootstrap_and_publish(rotate, aws_resources, as_operator, name):
    request = as_operator(name) if name == "publish.json" else event(name)
    result = rotate.handler(request, context())
    assert result["converged"] and result["active_kid"]
    assert published_kids(aws_resources) == [k["kid"] for k in result["keys"]]
    again = rotate.handler(request, context())
    if name == "publish.json":  # an operator's (proven) run always runs
        assert again["changes"] == [] and again["active_kid"] == result["active_kid"]
    else:  # an unproven tick within half the schedule of a completed one does nothing
        assert again["skipped"] and again["changes"] == [] and again["active_kid"] == result["active_kid"]


def test_rotate_now_makes_a_fresh_key_active_and_keeps_the_old_one_published(rotate, aws_resources, as_operator):
    before = rotate.handler(event("rotate-tick.json"), context())
    after = rotate.handler(as_operator("rotate-now.json"), context())
    assert after["active_kid"] not in (None, before["active_kid"])
    states = {k["kid"]: k["state"] for k in after["keys"]}
    assert states[before["active_kid"]] == "retired"
    assert set(published_kids(aws_resources)) == set(states)


def test_revoke_removes_the_kid_from_keyring_and_jwks(rotate, aws_resources, as_operator):
    before = rotate.handler(event("rotate-tick.json"), context())
    revoked = before["active_kid"]
    request = as_operator(dict(event("revoke.json"), kid=revoked))
    after = rotate.handler(request, context())
    assert after["active_kid"] and after["active_kid"] != revoked
    assert revoked not in published_kids(aws_resources)
    invalidations = aws_resources.client("cloudfront").list_invalidations(DistributionId=aws_resources.distribution_id)
    assert invalidations["InvalidationList"]["Quantity"] >= 2


def test_revoking_an_unknown_kid_answers_a_typed_error(rotate, as_operator):
    rotate.handler(event("rotate-tick.json"), context())
    assert rotate.handler(as_operator("revoke.json"), context())["error"] == "unknown_kid"


@pytest.mark.parametrize("bad", [{"operation": "explode"}, {"operation": "revoke"}, {"operation": "tick", "kid": "x"}, {"operation": "publish", "accept_restore": "yes"}])
def test_malformed_events_of_an_operator_are_refused_without_side_effects(rotate, aws_resources, as_operator, bad):
    assert rotate.handler(as_operator(bad), context())["error"] == "invalid_event"
    assert aws_resources.client("s3").list_objects_v2(Bucket=aws_resources.bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize("bad", [[], "tick", {"operation": "explode"}, {"operation": "revoke"}])
def test_malformed_events_without_a_proof_are_unauthenticated_before_their_shape_is_judged(rotate, aws_resources, bad):
    assert rotate.handler(bad, context())["error"] == "unauthenticated"
    assert aws_resources.client("s3").list_objects_v2(Bucket=aws_resources.bucket).get("KeyCount", 0) == 0


def test_a_tick_without_a_proof_needs_none_but_its_shape_is_still_checked(rotate, aws_resources):
    assert rotate.handler({"operation": "tick", "kid": "x"}, context())["error"] == "invalid_event"
    assert rotate.handler({"operation": "tick"}, context())["active_kid"]
    assert [line["decision"] for line in audit_lines(rotate)] == ["refused", "performed"]


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


def test_a_restored_secret_is_counted_as_keyring_behind_publication_and_raised(rotate, aws_resources, as_operator, capsys):
    from jwks_rotator.adapters.sdk.secrets_store import CURRENT, SecretsManagerKeyringStore
    from jwks_rotator.core.errors import KeyringBehindPublicationError

    rotate.handler(event("rotate-tick.json"), context())
    sm = aws_resources.client("secretsmanager")
    store = SecretsManagerKeyringStore(sm, aws_resources.secret_id)
    before = store.load().version_id
    rotate.handler(as_operator("rotate-now.json"), context())
    sm.update_secret_version_stage(SecretId=aws_resources.secret_id, VersionStage=CURRENT,
                                   MoveToVersionId=before, RemoveFromVersionId=store.load().version_id)
    capsys.readouterr()
    with pytest.raises(KeyringBehindPublicationError):  # an operator's tick (an unproven one this soon after the first is skipped)
        rotate.handler(as_operator({"operation": "tick"}), context())
    values = emitted_metrics(capsys)
    assert values["KeyringBehindPublication"] == 1 and values["RotationFailures"] == 1
    assert "ClockSkewDetected" not in values
    accepted = rotate.handler(as_operator({"operation": "publish", "accept_restore": True}), context())
    assert accepted["converged"]


def test_a_keyring_written_by_a_clock_far_ahead_is_counted_as_clock_skew_and_raised(rotate, aws_resources, capsys):
    from datetime import UTC, datetime, timedelta

    from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
    from jwks_rotator.core.errors import ClockSkewError
    from jwks_rotator.core.lifecycle.keygen import generate_key

    store = SecretsManagerKeyringStore(aws_resources.client("secretsmanager"), aws_resources.secret_id)
    loaded = store.load()
    ahead = generate_key("ES256", datetime.now(UTC) + timedelta(days=1))
    store.save(loaded.keyring.replace_keys([ahead]), loaded.version_id)
    with pytest.raises(ClockSkewError):
        rotate.handler(event("rotate-tick.json"), context())
    values = emitted_metrics(capsys)
    assert values["ClockSkewDetected"] == 1 and values["RotationFailures"] == 1


def test_the_rotate_function_creates_the_revocation_parameter_and_a_revoke_lands_on_it(rotate, aws_resources, as_operator, monkeypatch):
    import uuid

    name = f"/jwks-rotator-test/{uuid.uuid4().hex[:10]}/revoked-kids"
    monkeypatch.setenv("REVOCATION_PARAMETER", name)
    rotate = load_function_module("rotate")
    kid = rotate.handler(event("rotate-tick.json"), context())["active_kid"]
    ssm = aws_resources.client("ssm")
    assert json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"]) == []
    rotate.handler(as_operator(dict(event("revoke.json"), kid=kid)), context())
    assert json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"]) == [kid]


@pytest.mark.parametrize("name", ["rotate-now.json", "revoke.json", "publish.json"])
def test_an_operation_without_a_proof_is_unauthenticated_audited_and_counted_not_alarmed(rotate, aws_resources, capsys, name):
    capsys.readouterr()
    answer = rotate.handler(event(name), context())
    assert answer["error"] == "unauthenticated"
    values = emitted_metrics(capsys)
    assert values["OperationRefusals_unauthenticated"] == 1 and "RotationFailures" not in values
    assert aws_resources.client("s3").list_objects_v2(Bucket=aws_resources.bucket).get("KeyCount", 0) == 0
    [line] = audit_lines(rotate)
    assert line["function"] == "rotate" and line["decision"] == "refused" and line["reason"] == "no_proof"
    assert line["operation"] == event(name)["operation"] and line["caller"] is None


def test_a_publish_with_accept_restore_from_a_role_not_in_operator_roles_is_operator_not_allowed(rotate, aws_resources, moto_endpoint, local_sts, capsys):
    stranger = moto_role_session(moto_endpoint, "orders-service", session="mallory")
    capsys.readouterr()
    answer = rotate.handler(signed(stranger, local_sts, {"operation": "publish", "accept_restore": True}), context())
    assert answer["error"] == "operator_not_allowed"
    assert emitted_metrics(capsys)["OperationRefusals_operator_not_allowed"] == 1
    assert aws_resources.client("s3").list_objects_v2(Bucket=aws_resources.bucket).get("KeyCount", 0) == 0
    [line] = audit_lines(rotate)
    assert line["role"] == "arn:aws:iam::123456789012:role/orders-service" and line["error"] == "operator_not_allowed"
    assert line["accept_restore"] is True and line["reason"] == "role_not_listed"


def test_an_operator_role_matching_a_wildcard_may_operate(rotate, moto_endpoint, local_sts):
    rotate.handler(event("rotate-tick.json"), context())
    glass = moto_role_session(moto_endpoint, "break-glass-oncall", session="bob")
    assert "error" not in rotate.handler(signed(glass, local_sts, {"operation": "rotate-now"}), context())


def test_a_proof_bound_to_the_sign_function_is_unauthenticated_at_the_rotate_function(rotate, operator, local_sts):
    rotate.handler(event("rotate-tick.json"), context())
    answer = rotate.handler(signed(operator, local_sts, {"operation": "rotate-now"}, signer="SignFunction"), context())
    assert answer["error"] == "unauthenticated"
    assert audit_lines(rotate)[-1]["reason"] == "signer_mismatch"


def test_a_bad_proof_is_unauthenticated_before_the_shape_of_the_event_is_judged(rotate, operator, local_sts):
    forged = signed(operator, local_sts, {"operation": "explode"})
    forged["proof"]["headers"]["X-Amz-Date"] = "20200101T000000Z"
    assert rotate.handler(forged, context())["error"] == "unauthenticated"


def test_no_operator_roles_means_no_operator_may_operate(rotate, as_operator, monkeypatch):
    monkeypatch.delenv("OPERATOR_ROLES")
    rotate = load_function_module("rotate")
    rotate.handler(event("rotate-tick.json"), context())
    assert rotate.handler(as_operator("rotate-now.json"), context())["error"] == "operator_not_allowed"


def test_the_audit_line_of_a_revoke_names_the_operator_s_role_session_and_the_kid(rotate, as_operator, operator):
    kid = rotate.handler(event("rotate-tick.json"), context())["active_kid"]
    rotate.handler(as_operator({"operation": "revoke", "kid": kid}), context())
    line = audit_lines(rotate)[-1]
    assert line["type"] == "jwks-rotator.audit" and line["function"] == "rotate"
    assert line["decision"] == "performed" and line["error"] is None and line["operation"] == "revoke" and line["kid"] == kid
    assert line["role"] == f"arn:aws:iam::123456789012:role/{OPERATOR_ROLE}" and line["caller"] == operator.sts_arn
    assert "proof" not in json.dumps(line) and line["function_version"] == "$LATEST"


def test_a_failed_operation_is_audited_as_failed_and_still_raises(rotate, as_operator, monkeypatch):
    from jwks_rotator.core.errors import ConfigurationError

    monkeypatch.setenv("JWKS_BUCKET", "")
    rotate = load_function_module("rotate")
    rotate.audit._stream = rotate.audit_buffer = io.StringIO()
    monkeypatch.setenv("OPERATOR_ROLES", OPERATOR_ROLES)
    with pytest.raises(ConfigurationError):
        rotate.handler(as_operator("rotate-now.json"), context())
    [line] = audit_lines(rotate)
    assert line["decision"] == "failed" and line["error"] == "invalid_configuration" and line["operation"] == "rotate-now"
