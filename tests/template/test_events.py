"""The sample events in events/ follow the functions' contracts.

The sign events carry a placeholder proof: its shape passes every check the sign function makes on its
own (host, region, service, date, signed headers, body), and only its signature is not real. Here a
stand-in for STS accepts it, so each event is answered exactly as a deployed function would answer it
with a real proof, through the real verifier, issuance policy, request parser and signer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from jwks_rotator.core.callers.proof import PROOF_FIELD, parse_caller_proof
from jwks_rotator.core.callers.verifier import CallerVerifier, ReplayAnswer
from jwks_rotator.core.issuance.profiles import load_issuance_policy
from jwks_rotator.core.issuance.service import IssuanceService
from jwks_rotator.core.issuance.signer import TokenSigner
from jwks_rotator.core.lifecycle.operations import parse_rotate_event
from tests.sign_support import InMemoryKeyringReader, active_key, keyring_json, public_key, settings
from tests.template.cfn import ROOT

EVENTS = ROOT / "events"

ROTATE_EVENTS = {
    "rotate-scheduled.json": ("tick", None),
    "rotate-tick.json": ("tick", None),
    "rotate-now.json": ("rotate-now", None),
    "revoke.json": ("revoke", "REPLACE-WITH-A-KID-FROM-THE-JWKS"),
    "publish.json": ("publish", None),
    "promote.json": ("promote", None),
    "step-down.json": ("step-down", None),
}
SIGN_REFUSALS = {
    "sign-without-proof.json": "unauthenticated",
    "sign-not-an-object.json": "unauthenticated",
    "sign-missing-sub.json": "invalid_request",
    "sign-reserved-claim.json": "invalid_claims",
    "sign-audience-not-allowed.json": "audience_not_allowed",
    "sign-ttl-too-long.json": "ttl_too_long",
}
PLACEHOLDER_SIGNER = "REPLACE-WITH-THE-SIGN-FUNCTION-NAME"
STS_HOST = "sts.us-east-1.amazonaws.com"
STS_REGION = "us-east-1"
CALLER_SESSION = "arn:aws:sts::123456789012:assumed-role/orders-service/i-0abc"
POLICY = """
profiles:
  orders:
    callers: ["arn:aws:iam::123456789012:role/orders-service"]
    audiences: ["orders-api", "billing-api"]
    subjects: ["^user-[0-9]+$"]
    claims: ["roles", "email_verified"]
"""


def _event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def _signed_at(proof: dict[str, Any]) -> float:
    """The proof's X-Amz-Date in epoch seconds."""
    return datetime.strptime(proof["headers"]["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


class StsAccepts:
    """Stands in for STS's one judgement the repository cannot make: that the signature is valid."""

    def replay(self, _proof: Any) -> ReplayAnswer:
        return ReplayAnswer(200, arn=CALLER_SESSION)


@pytest.fixture(scope="module")
def sign_service() -> IssuanceService:
    """The sign function's service as a deployment with AllowedAudiences=orders-api,billing-api and the policy above,
    its proof clock set to just after the sample proof was made."""
    now = _signed_at(_event("sign-request.json")[PROOF_FIELD]) + 1
    cfg = settings(allowed_audiences=("orders-api", "billing-api"), max_token_ttl=timedelta(hours=1))
    signer = TokenSigner(cfg, InMemoryKeyringReader(keyring_json(active_key("ES256"))))  # signs at the real time
    verifier = CallerVerifier(
        StsAccepts(), wall_clock=lambda: now, monotonic_clock=lambda: 0.0,
        max_age=300, leeway=60, sts_host=STS_HOST, sts_region=STS_REGION,
    )
    return IssuanceService(signer, verifier, load_issuance_policy(POLICY, max_token_ttl=3600, default_token_ttl=900))


def test_every_event_file_is_json_and_known() -> None:
    names = {p.name for p in EVENTS.glob("*.json")}
    assert names == set(ROTATE_EVENTS) | set(SIGN_REFUSALS) | {"sign-request.json"}
    for name in names:
        _event(name)
    readme = (EVENTS / "README.md").read_text()
    for name in names:
        assert name in readme, f"events/README.md does not describe {name}"


@pytest.mark.parametrize("name", sorted(ROTATE_EVENTS))
def test_rotate_events(name: str) -> None:
    operation, kid = ROTATE_EVENTS[name]
    command = parse_rotate_event(_event(name))
    assert command.operation == operation
    assert getattr(command, "kid", None) == kid


def test_scheduled_event_has_the_eventbridge_shape() -> None:
    event = _event("rotate-scheduled.json")
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
    assert {"version", "id", "account", "time", "region", "resources", "detail"} <= set(event)


def test_every_sign_event_with_a_proof_carries_the_same_placeholder() -> None:
    proof = _event("sign-request.json")[PROOF_FIELD]
    assert proof["headers"]["X-Jwks-Rotator-Signer"] == PLACEHOLDER_SIGNER
    assert proof["headers"]["Authorization"].endswith("Signature=" + "0" * 64), "the sample must never hold a real signature"
    for name in SIGN_REFUSALS:
        event = _event(name)
        if isinstance(event, dict) and PROOF_FIELD in event:
            assert event[PROOF_FIELD] == proof, name


def test_the_placeholder_proof_is_refused_when_the_signer_is_a_real_function_name() -> None:
    proof = _event("sign-request.json")[PROOF_FIELD]
    with pytest.raises(Exception, match="another signer") as refused:
        parse_caller_proof(proof, accepted_signers={"jwks-rotator-sign"}, sts_host=STS_HOST, sts_region=STS_REGION, now=_signed_at(proof) + 1)
    assert getattr(refused.value, "code", None) == "unauthenticated"


def test_sign_request_is_issued_under_its_profile(sign_service: IssuanceService) -> None:
    event = _event("sign-request.json")
    assert set(event) == {"proof", "profile", "sub", "aud", "ttl", "claims"}
    answer = sign_service.handle(event, {PLACEHOLDER_SIGNER})
    assert answer.audit.decision == "issued", answer.response
    claims = jwt.decode(answer.response["token"], public_key(active_key("ES256")), algorithms=["ES256"], audience="orders-api")
    assert (claims["sub"], claims["azp"], claims["roles"]) == ("user-123", "orders", ["admin", "editor"])
    assert claims["exp"] - claims["iat"] == event["ttl"]


@pytest.mark.parametrize("name", sorted(SIGN_REFUSALS))
def test_bad_sign_requests_are_refused_for_their_reason(name: str, sign_service: IssuanceService) -> None:
    answer = sign_service.handle(_event(name), {PLACEHOLDER_SIGNER})
    assert answer.response.get("error") == SIGN_REFUSALS[name], answer.response
    assert "token" not in answer.response


def test_the_events_readme_says_the_proof_must_be_signed() -> None:
    readme = (EVENTS / "README.md").read_text()
    assert "placeholder" in readme and "build_caller_proof" in readme
