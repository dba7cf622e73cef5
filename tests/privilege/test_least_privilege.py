"""Least privilege, proven call by call against the template's own policies (see tests/privilege/matrix.py).

Needs the translated template and the evaluator's npm packages: ``make check-privilege`` (part of
``make test``) makes both first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jwks_rotator_local.call_record import calls_as_json
from tests.privilege.matrix import BREAK_GLASS_ROLE, decide, failures, load_recording, recorded_rows, render, written_rows
from tests.privilege.policies import Deployment, Resolver, extract, load_template
from tests.privilege.scenario import Recording, record_lifecycle


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def recording(template: dict[str, Any]) -> Iterator[Recording]:
    return record_lifecycle(template)


def test_the_recorder_read_every_request_and_attributed_each_to_a_role(recording: Recording) -> None:
    assert recording.unparsed == []
    roles = {recording.deployment.role_arn("RotateFunctionRole"), recording.deployment.role_arn("SignFunctionRole")}
    assert {call.principal for call in recording.calls} == roles


def test_the_recording_holds_what_each_function_must_do(recording: Recording) -> None:
    """Not an empty recording passing vacuously: the calls the lifecycle needs are all there."""
    d = recording.deployment
    rotate, sign = d.role_arn("RotateFunctionRole"), d.role_arn("SignFunctionRole")
    keyring, signing = d.resources["KeyringSecret"].ref, d.resources["SigningKeySecret"].ref
    seen = {(c.principal, c.action, c.resource) for c in recording.calls}
    key = d.resources["KeyringKey"].attributes["Arn"]
    bucket = d.resources["JwksBucket"].ref
    for expected in [
        (rotate, "secretsmanager:PutSecretValue", keyring), (rotate, "secretsmanager:UpdateSecretVersionStage", keyring),
        (rotate, "secretsmanager:PutSecretValue", signing), (rotate, "kms:GenerateDataKey", key),
        (rotate, "s3:PutObject", f"arn:aws:s3:::{bucket}/.well-known/jwks.json"),
        (rotate, "cloudfront:CreateInvalidation", f"arn:aws:cloudfront::{d.account}:distribution/{d.resources['Distribution'].ref}"),
        (sign, "secretsmanager:GetSecretValue", signing), (sign, "kms:Decrypt", key),
    ]:
        assert expected in seen, expected
    assert not {c for c in seen if c[0] == sign and c[2] == keyring}  # the signer never touched the keyring


def test_every_recorded_call_is_allowed(recording: Recording, template: dict[str, Any]) -> None:
    results = decide(recorded_rows(recording, extract(template, recording.deployment)))
    assert not failures(results), render("not allowed:", failures(results))


@pytest.mark.parametrize("break_glass", [False, True], ids=["no-break-glass-role", "break-glass-role"])
def test_the_written_calls_are_decided_as_listed(recording: Recording, template: dict[str, Any], break_glass: bool) -> None:
    deployment = recording.deployment
    if break_glass:
        deployment = Deployment(deployment.stack, deployment.account, deployment.region, deployment.resources,
                                {"BreakGlassRoleArn": BREAK_GLASS_ROLE})
    results = decide(written_rows(deployment, extract(template, deployment), break_glass=break_glass))
    assert not failures(results), render("decided otherwise:", failures(results))
    assert sum(1 for row, _ in results if row.expected == "deny") >= 18


def test_the_resolver_follows_conditions_and_drops_no_value(template: dict[str, Any]) -> None:
    plain = Deployment.synthetic(template)
    glass = Deployment.synthetic(template, parameters={"BreakGlassRoleArn": BREAK_GLASS_ROLE})
    assert Resolver(template, plain).condition("HasBreakGlassRole") is False
    statements = extract(template, plain).keys[plain.resources["KeyringKey"].attributes["Arn"]]["Statement"]
    assert BREAK_GLASS_ROLE not in str(statements)
    statements = extract(template, glass).keys[glass.resources["KeyringKey"].attributes["Arn"]]["Statement"]
    assert any(s.get("Principal") == {"AWS": BREAK_GLASS_ROLE} for s in statements)


def test_calls_recorded_elsewhere_load_back_as_recorded(recording: Recording, tmp_path: Path) -> None:
    """The path for the integration tests' and the soak's recordings: JSON lines plus the deployment's mapping."""
    d = recording.deployment
    (tmp_path / "calls.jsonl").write_text(calls_as_json(recording.calls))
    (tmp_path / "mapping.json").write_text(json.dumps({"stack": d.stack, "account": d.account, "region": d.region, "resources": {
        logical: {"ref": p.ref, "attributes": dict(p.attributes)} for logical, p in d.resources.items()}}))
    loaded = load_recording(tmp_path / "calls.jsonl", tmp_path / "mapping.json")
    assert [(c.principal, c.action, c.resource, dict(c.context), c.via) for c in loaded.calls] == [
        (c.principal, c.action, c.resource, dict(c.context), c.via) for c in recording.calls]
    assert loaded.deployment == d
