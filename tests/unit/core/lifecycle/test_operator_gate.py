"""The rotate function's gate: proof, then operator-roles, then the event's shape; ticks need no proof."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from jwks_rotator.adapters.lean.audit_log import AUDIT_TYPE, AuditLog
from jwks_rotator.core.callers.verifier import CallerVerifier
from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.lifecycle.operator_gate import OperationRecord, OperatorGate, admit, asked_for, proof_required
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.callers import ArnReplayer, Caller, role_caller

STS_URL = "https://sts.us-east-1.amazonaws.com"
ROTATE = "jwks-rotator-rotate"
OPERATOR = role_caller("ops-oncall")
STRANGER = role_caller("orders-service")
USER = Caller("AKIAUSER000000000001", "user-secret", None, "arn:aws:iam::123456789012:user/alice")
OPERATOR_ROLES = ("arn:aws:iam::123456789012:role/ops-*",)


def gate(roles: tuple[str, ...] = OPERATOR_ROLES) -> OperatorGate:
    replayer = ArnReplayer(OPERATOR, STRANGER, USER)
    verifier = CallerVerifier(
        replayer, wall_clock=time.time, monotonic_clock=time.monotonic, max_age=300, leeway=60,
        sts_host="sts.us-east-1.amazonaws.com", sts_region="us-east-1",
    )
    return OperatorGate(verifier, roles)


def signed(body: dict[str, Any], caller: Caller = OPERATOR, signer: str = ROTATE) -> dict[str, Any]:
    return caller.operator_event(body, sts_endpoint_url=STS_URL, signer=signer)


def refused(event: Any, roles: tuple[str, ...] = OPERATOR_ROLES) -> tuple[str, str | None]:
    answer = admit(event, lambda: gate(roles), {ROTATE})
    assert answer.command is None and answer.error is not None
    return answer.error.code, answer.asked.reason


def never() -> OperatorGate:
    raise AssertionError("a tick without a proof must not build the gate")


@pytest.mark.parametrize("event", [{"source": "aws.events", "detail-type": "Scheduled Event"}, {"operation": "tick"}])
def test_ticks_need_no_proof_and_build_no_gate(event: dict[str, Any]) -> None:
    answer = admit(event, never, {ROTATE})
    assert answer.error is None and answer.command is not None and answer.command.operation == "tick"
    assert answer.identity is None and answer.outcome("performed").caller is None


@pytest.mark.parametrize("event", [{"operation": "rotate-now"}, {"operation": "revoke", "kid": "k"}, {"operation": "publish"},
                                   {"operation": "publish", "accept_restore": True}, {"operation": "explode"}, [], "tick", None])
def test_everything_else_without_a_proof_is_unauthenticated_first(event: Any) -> None:
    assert proof_required(event)
    assert refused(event) == ("unauthenticated", "no_proof")


def test_a_role_outside_operator_roles_is_operator_not_allowed_before_the_shape_is_judged() -> None:
    assert refused(signed({"operation": "explode"}, STRANGER)) == ("operator_not_allowed", "role_not_listed")
    assert refused(signed({"operation": "explode"})) == ("invalid_event", None)


def test_an_iam_user_is_never_an_operator_and_no_roles_means_nobody() -> None:
    assert refused(signed({"operation": "rotate-now"}, USER)) == ("operator_not_allowed", "not_a_role")
    assert refused(signed({"operation": "rotate-now"}), roles=()) == ("operator_not_allowed", "no_operator_roles")


def test_a_proof_for_another_function_is_unauthenticated() -> None:
    assert refused(signed({"operation": "revoke", "kid": "k"}, signer="jwks-rotator-sign")) == ("unauthenticated", "signer_mismatch")


def test_a_proof_on_a_tick_is_checked_too() -> None:
    assert refused(signed({"operation": "tick"}, STRANGER))[0] == "operator_not_allowed"
    answer = admit(signed({"operation": "tick"}), gate, {ROTATE})
    assert answer.command is not None and answer.identity is not None and answer.identity.sts_arn == OPERATOR.sts_arn


def test_an_admitted_operation_names_the_operator_the_operation_and_the_kid() -> None:
    answer = admit(signed({"operation": "revoke", "kid": "k-1"}), gate, {ROTATE})
    assert answer.command is not None and answer.command.kid == "k-1"
    record = answer.outcome("performed")
    assert record == OperationRecord("performed", None, None, OPERATOR.sts_arn, "arn:aws:iam::123456789012:role/ops-oncall", "revoke", "k-1", None)


def test_a_misconfigured_sts_endpoint_refuses_operations_as_invalid_configuration() -> None:
    def broken() -> OperatorGate:
        raise ConfigurationError("caller proof: AWS_REGION is not set, so the STS endpoint is unknown")

    answer = admit(signed({"operation": "rotate-now"}), broken, {ROTATE})
    assert answer.error is not None and answer.error.code == "invalid_configuration"


def test_a_refused_event_s_kid_is_bounded_and_left_out_until_the_caller_is_authenticated() -> None:
    assert asked_for({"operation": "revoke", "kid": "k" * 5000}).kid == "k" * 256
    answer = admit({"operation": "revoke", "kid": "k" * 5000}, never, {ROTATE})
    assert answer.asked.kid is None and answer.asked.operation == "revoke"


def test_operator_roles_are_checked_as_issuance_callers_are() -> None:
    assert Settings.from_mapping({"operator-roles": "arn:aws:iam::123456789012:role/a, arn:aws:iam::123456789012:role/ops-*"}).operator_roles == (
        "arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/ops-*",
    )
    with pytest.raises(ConfigurationError, match=r"operator-roles\[0\]: a role ARN with a path can never match"):
        Settings.from_mapping({"operator-roles": "arn:aws:iam::123456789012:role/team/ops"})
    with pytest.raises(ConfigurationError, match=r"operator-roles\[1\]: '\*' is allowed in the role name only"):
        Settings.from_mapping({"OPERATOR_ROLES": "arn:aws:iam::123456789012:role/a,arn:aws:iam::*:role/a"})
    assert Settings().operator_roles == ()


def test_an_operation_audit_line_is_one_json_object_marked_as_the_rotate_function_s() -> None:
    log = AuditLog(stream=io.StringIO(), clock=lambda: 1_800_000_000.25)
    log.function_version = "7"
    log.write_operation(OperationRecord("refused", "operator_not_allowed", "role_not_listed", STRANGER.sts_arn, "arn:aws:iam::123456789012:role/orders-service", "publish", None, True))
    assert log._stream is not None
    line = json.loads(log._stream.getvalue())  # type: ignore[attr-defined]
    assert line == {
        "type": AUDIT_TYPE, "function": "rotate", "time": "2027-01-15T08:00:00.250Z", "function_version": "7",
        "decision": "refused", "error": "operator_not_allowed", "reason": "role_not_listed", "caller": STRANGER.sts_arn,
        "role": "arn:aws:iam::123456789012:role/orders-service", "operation": "publish", "kid": None, "accept_restore": True,
    }


@pytest.mark.parametrize("operation", [[], {"a": 1}, ["revoke"], 3.5, None])
def test_an_operation_of_the_wrong_type_is_an_answer_never_a_crash(operation: Any) -> None:
    admission = admit({"operation": operation}, lambda: pytest.fail("no gate without a proof"), {"rotate"})
    assert admission.error is not None and admission.error.code == "unauthenticated"


def test_an_unauthenticated_revoke_writes_no_kid_into_the_audit_line() -> None:
    admission = admit({"operation": "revoke", "kid": "}\\n\"forged\": true"}, lambda: pytest.fail("no gate without a proof"), {"rotate"})
    assert admission.error is not None and admission.asked.kid is None


def test_an_operator_proof_authorizes_only_the_operation_and_arguments_it_signed() -> None:
    captured = signed({"operation": "revoke", "kid": "kid-a"})
    assert admit(captured, gate, {ROTATE}).error is None
    for changed in ({"operation": "revoke", "kid": "kid-b"}, {"operation": "rotate-now"}, {"operation": "publish", "accept_restore": True}):
        assert refused({**changed, "proof": captured["proof"]}) == ("unauthenticated", "proof_not_for_this_operation")
    publish = signed({"operation": "publish"})
    assert refused({"operation": "publish", "accept_restore": True, "proof": publish["proof"]})[1] == "proof_not_for_this_operation"


def test_a_reusable_sign_proof_is_no_operator_proof() -> None:
    """A proof without the request digest (what the sign function takes) authorizes no operation."""
    event = {"operation": "rotate-now", "proof": OPERATOR.proof(sts_endpoint_url=STS_URL, signer=ROTATE)}
    assert refused(event) == ("unauthenticated", "proof_not_for_this_operation")


def test_the_clients_digest_is_the_gates() -> None:
    from jwks_rotator.core.lifecycle.operator_gate import operation_digest as gate_digest
    from jwks_rotator_client.operator_client import operation_digest as client_digest

    for event in ({"operation": "tick"}, {"operation": "revoke", "kid": "ké\u2028y"}, {"operation": "publish", "accept_restore": True}):
        assert gate_digest(event) == client_digest(event) == gate_digest({**event, "proof": {"x": 1}})


@pytest.mark.parametrize("body", [{"operation": "promote", "region": "eu-west-1"}, {"operation": "step-down", "region": "eu-west-1"}])
def test_promote_and_step_down_need_an_operator_and_name_their_region(body: dict[str, Any]) -> None:
    assert refused(body) == ("unauthenticated", "no_proof")
    assert refused(signed(body, STRANGER)) == ("operator_not_allowed", "role_not_listed")
    answer = admit(signed(body), gate, {ROTATE})
    assert answer.command is not None and (answer.command.operation, answer.command.region) == (body["operation"], "eu-west-1")
    record = answer.outcome("performed", old_primary="us-east-1", new_primary="eu-west-1", generation=1_800_000_000)
    assert {k: record.fields()[k] for k in ("operation", "region", "old_primary", "new_primary", "generation", "caller")} == {
        "operation": body["operation"], "region": "eu-west-1", "old_primary": "us-east-1", "new_primary": "eu-west-1",
        "generation": 1_800_000_000, "caller": OPERATOR.sts_arn,
    }
    other = {**body, "region": "ap-south-1", "proof": signed(body)["proof"]}
    assert refused(other) == ("unauthenticated", "proof_not_for_this_operation")  # a proof names its region too


@pytest.mark.parametrize("body", [
    {"operation": "promote"}, {"operation": "promote", "region": "EU-WEST-1"}, {"operation": "promote", "region": 1},
    {"operation": "promote", "region": "eu-west-1", "kid": "k"}, {"operation": "promote", "region": "eu-west-1", "accept_restore": True},
    {"operation": "step-down", "region": ""}, {"operation": "publish", "region": "eu-west-1"},
    {"operation": "promote", "region": "eu-west-1", "check": "yes"}, {"operation": "step-down", "region": "eu-west-1", "check": True},
    {"operation": "tick", "check": True},
])
def test_malformed_promote_events_are_invalid_events(body: dict[str, Any]) -> None:
    assert refused(signed(body))[0] == "invalid_event"


def test_a_promote_check_is_admitted_and_audited_as_a_check() -> None:
    body = {"operation": "promote", "region": "eu-west-1", "check": True}
    answer = admit(signed(body), gate, {ROTATE})
    assert answer.command is not None and answer.command.check and answer.command.region == "eu-west-1"
    record = answer.outcome("performed", old_primary="us-east-1", known={"probe": {"reachable": False, "reason": "ServiceUnavailable"}})
    assert record.fields()["check"] is True and record.fields()["known"]["probe"]["reason"] == "ServiceUnavailable"
    plain = admit(signed({"operation": "promote", "region": "eu-west-1"}), gate, {ROTATE})
    assert plain.command is not None and not plain.command.check and "check" not in plain.outcome("performed").fields()


def test_other_operations_audit_lines_keep_their_shape() -> None:
    assert "region" not in OperationRecord("performed", None, None, None, None, "revoke", "k").fields()
    assert asked_for({"operation": "promote", "region": "x" * 500}).region == "x" * 32
    assert admit({"operation": "promote", "region": "eu-west-1"}, never, {ROTATE}).asked.region is None  # unauthenticated
