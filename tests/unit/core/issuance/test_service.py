"""Issuance: proof, caller, shape, profile limits and key, in that order; one audit record per decision."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jwt
import pytest

from jwks_rotator.core.callers.verifier import CallerVerifier, ReplayAnswer
from jwks_rotator.core.errors import ConfigurationError, SigningUnavailableError
from jwks_rotator.core.issuance.profiles import load_issuance_policy
from jwks_rotator.core.issuance.service import MAX_AUDIT_SUB_CHARS, AuditRecord, IssuanceService
from jwks_rotator.core.issuance.signer import TokenSigner
from tests.sign_support import InMemoryKeyringReader, active_key, keyring_json, public_key, settings
from tests.unit.core.callers.test_proof import HOST, REGION, SIGNED_AT, SIGNER, authorization, proof

ORDERS_SESSION = "arn:aws:sts::123456789012:assumed-role/orders-service/i-0abc"
ORDERS_ROLE = "arn:aws:iam::123456789012:role/orders-service"
STRANGER_SESSION = "arn:aws:sts::123456789012:assumed-role/intruder/i-0abc"
POLICY = """
profiles:
  orders:
    callers: ["arn:aws:iam::123456789012:role/orders-service"]
    audiences: ["payments-api"]
    subjects: ["^user-[0-9]+$"]
    claims: ["roles"]
    max_ttl: 10m
  batch:
    callers: ["arn:aws:iam::123456789012:role/batch-*"]
    audiences: ["reports-api"]
    subjects: ["^job-[a-z]+$"]
    max_ttl: 1h
  both:
    callers: ["arn:aws:iam::123456789012:role/batch-nightly"]
    audiences: ["reports-api"]
    subjects: ["^job-[a-z]+$"]
"""


class Replayer:
    """STS as a fake: answers every proof with one ARN (or fails); counts replays."""

    def __init__(self, answer: ReplayAnswer | Exception) -> None:
        self.answer = answer
        self.calls = 0

    def replay(self, _proof: Any) -> ReplayAnswer:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def service(arn: str | Exception = ORDERS_SESSION, *, policy: str = POLICY, **setting_changes: Any) -> tuple[IssuanceService, list[AuditRecord]]:
    answer = arn if isinstance(arn, Exception) else ReplayAnswer(200, arn=arn)
    cfg = settings(max_token_ttl=timedelta(hours=1), default_token_ttl=timedelta(minutes=15), **setting_changes)
    signer = TokenSigner(cfg, InMemoryKeyringReader(keyring_json(active_key("ES256"))))
    verifier = CallerVerifier(
        Replayer(answer), wall_clock=lambda: SIGNED_AT + 1, monotonic_clock=lambda: 0.0,
        max_age=300, leeway=60, sts_host=HOST, sts_region=REGION,
    )
    loaded = load_issuance_policy(policy, max_token_ttl=3600, default_token_ttl=900)
    records: list[AuditRecord] = []
    return IssuanceService(signer, verifier, loaded, on_decision=records.append), records


def ask(subject: IssuanceService, **fields: Any) -> dict[str, Any]:
    return subject.handle({"proof": proof(), **fields}, {SIGNER}).response


def test_an_allowed_request_is_issued_with_the_profile_as_azp_and_audited() -> None:
    subject, records = service()
    answer = ask(subject, sub="user-42", aud="payments-api", claims={"roles": ["reader"]})
    claims = jwt.decode(answer["token"], public_key(active_key("ES256")), algorithms=["ES256"], audience="payments-api")
    assert (claims["azp"], claims["sub"], claims["roles"]) == ("orders", "user-42", ["reader"])
    assert claims["exp"] - claims["iat"] == 600  # no ttl: the smaller of default-token-ttl (15m) and the profile's max_ttl (10m)
    fields = records[-1].fields()
    assert fields["decision"] == "issued" and fields["error"] is None
    assert (fields["caller"], fields["role"], fields["profile"]) == (ORDERS_SESSION, ORDERS_ROLE, "orders")
    assert (fields["jti"], fields["sub"], fields["aud"], fields["exp"]) == (claims["jti"], "user-42", "payments-api", claims["exp"])
    assert fields["kid"] == answer["kid"] and len(fields["policy"]) == 64


def test_the_audit_record_holds_no_token_proof_or_claim_value() -> None:
    subject, records = service()
    answer = ask(subject, sub="user-42", aud="payments-api", claims={"roles": ["secret-role-value"]})
    line = json.dumps(records[-1].fields())
    for forbidden in (answer["token"], answer["token"].split(".")[2], "secret-role-value", authorization().split("Signature=")[1], "FQoGZXIvYXdzE"):
        assert forbidden not in line


@pytest.mark.parametrize("event", [None, [], "text", 42, {"sub": "user-1", "aud": "payments-api"}, {"proof": None, "sub": 1}])
def test_without_a_proof_the_answer_is_unauthenticated_before_any_other_check(event: Any) -> None:
    subject, records = service()
    assert subject.handle(event, {SIGNER}).response["error"] == "unauthenticated"
    assert records[-1].fields()["caller"] is None and records[-1].fields()["decision"] == "refused"


def test_a_proof_for_another_signer_is_unauthenticated() -> None:
    subject, _ = service()
    assert subject.handle({"proof": proof(), "sub": "user-1", "aud": "payments-api"}, {"another-signer"}).response["error"] == "unauthenticated"


def test_a_caller_with_no_profile_is_refused_before_its_request_is_read() -> None:
    subject, records = service(STRANGER_SESSION)
    assert ask(subject, sub=None, unknown_field=True)["error"] == "caller_not_allowed"
    assert records[-1].fields()["caller"] == STRANGER_SESSION and records[-1].reason == "no_profile"


def test_an_allowed_caller_gets_shape_errors_next() -> None:
    subject, _ = service()
    assert ask(subject, sub="user-1", aud="payments-api", colour="red")["error"] == "invalid_request"
    assert ask(subject, sub="user-1", aud="payments-api", claims={"azp": "other"})["error"] == "invalid_claims"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"sub": "nobody", "aud": "reports-api", "claims": {"email": "x"}, "ttl": 9999}, "audience_not_allowed"),
        ({"sub": "nobody", "aud": "payments-api", "claims": {"email": "x"}, "ttl": 9999}, "subject_not_allowed"),
        ({"sub": "user-1", "aud": "payments-api", "claims": {"email": "x"}, "ttl": 9999}, "claims_not_allowed"),
        ({"sub": "user-1", "aud": "payments-api", "ttl": 601}, "ttl_too_long"),
    ],
)
def test_profile_limits_are_checked_in_order(fields: dict[str, Any], code: str) -> None:
    subject, records = service()
    assert ask(subject, **fields)["error"] == code
    assert records[-1].fields()["profile"] == "orders"


def test_a_ttl_up_to_the_profile_limit_is_granted() -> None:
    subject, _ = service()
    assert "token" in ask(subject, sub="user-1", aud="payments-api", ttl=600)


def test_a_caller_in_several_profiles_must_name_one() -> None:
    subject, _ = service("arn:aws:sts::123456789012:assumed-role/batch-nightly/run-7")
    assert ask(subject, sub="job-x", aud="reports-api")["error"] == "invalid_request"
    assert "token" in ask(subject, sub="job-x", aud="reports-api", profile="both")
    assert ask(subject, sub="job-x", aud="reports-api", profile="orders")["error"] == "caller_not_allowed"


def test_the_kill_switches_refuse_everyone_or_one_profile() -> None:
    stopped, records = service(policy="disabled: true\n" + POLICY)
    assert ask(stopped, sub="user-1", aud="payments-api")["error"] == "caller_not_allowed"
    assert records[-1].reason == "issuance_disabled"
    one_off, _ = service(policy=POLICY.replace("    max_ttl: 10m", "    max_ttl: 10m\n    disabled: true"))
    assert ask(one_off, sub="user-1", aud="payments-api")["error"] == "caller_not_allowed"


def test_an_sts_outage_is_signing_unavailable_and_audited_without_a_caller() -> None:
    subject, records = service(SigningUnavailableError("STS is unavailable"))
    assert ask(subject, sub="user-1", aud="payments-api")["error"] == "signing_unavailable"
    assert records[-1].fields()["caller"] is None


def test_a_long_sub_is_bounded_in_the_audit_record() -> None:
    long_sub = "user-" + "1" * 200
    subject, records = service(policy=POLICY.replace("^user-[0-9]+$", "^user-[0-9]{1,250}$"))
    assert "token" in ask(subject, sub=long_sub, aud="payments-api")
    recorded = records[-1].fields()["sub"]
    assert len(recorded) == MAX_AUDIT_SUB_CHARS and recorded.endswith("…") and long_sub.startswith(recorded[:-1])


def test_a_profile_audience_outside_the_stack_allow_list_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="outside allowed-audiences"):
        service(allowed_audiences=("payments-api",))


def test_a_ttl_over_ten_years_is_refused_after_the_audience_as_the_refusal_order_says() -> None:
    subject, _ = service()
    too_long = 10 * 365 * 86400 + 1
    assert ask(subject, sub="user-1", aud="reports-api", ttl=too_long)["error"] == "audience_not_allowed"
    assert ask(subject, sub="user-1", aud="payments-api", ttl=too_long)["error"] == "ttl_too_long"


def test_a_null_profile_is_a_wrong_type_not_an_absent_field() -> None:
    subject, _ = service()
    answer = subject.handle({"proof": proof(), "sub": "user-1", "aud": "payments-api", "profile": None}, {SIGNER})
    assert answer.response["error"] == "invalid_request" and "profile" in answer.response["message"]
    assert "token" in subject.handle({"proof": proof(), "sub": "user-1", "aud": "payments-api"}, {SIGNER}).response
