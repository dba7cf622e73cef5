"""The callers' client: the proof it builds passes the signer's checks; proofs are reused and renewed."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import boto3
import pytest

from jwks_rotator.core.callers.proof import parse_caller_proof
from jwks_rotator.core.errors import UnauthenticatedError
from jwks_rotator_client import SignClient, SignInvokeError

FUNCTION = "jwks-rotator-sign"


class FakeLambda:
    def __init__(self, *answers: dict[str, Any], region: str = "eu-west-1", function_error: str | None = None) -> None:
        self.answers = list(answers)
        self.payloads: list[dict[str, Any]] = []
        self.meta = type("Meta", (), {"region_name": region})()
        self.function_error = function_error

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["FunctionName"] == FUNCTION and kwargs["InvocationType"] == "RequestResponse"
        self.payloads.append(json.loads(kwargs["Payload"]))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response


def session(token: str | None = "FQoGZXIvYXdzSESSIONTOKEN") -> Any:
    return boto3.Session(aws_access_key_id="ASIAEXAMPLEKEY123456", aws_secret_access_key="secret", aws_session_token=token, region_name="eu-west-1")


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_proof_passes_the_signers_checks_for_the_regional_endpoint() -> None:
    client = SignClient(FUNCTION, FakeLambda({"token": "t"}), session())
    proof, reused = client.proof()
    parsed = parse_caller_proof(proof, accepted_signers={FUNCTION}, sts_host="sts.eu-west-1.amazonaws.com", sts_region="eu-west-1", now=time.time(), max_age=300, leeway=60)
    signed = proof["headers"]["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert signed == "content-type;host;x-amz-date;x-amz-security-token;x-jwks-rotator-signer"
    assert not reused and parsed.header_map()["X-Jwks-Rotator-Signer"] == FUNCTION


def test_long_term_credentials_sign_no_session_token() -> None:
    proof, _ = SignClient(FUNCTION, FakeLambda({}), session(token=None)).proof()
    assert "X-Amz-Security-Token" not in proof["headers"]
    parse_caller_proof(proof, accepted_signers={FUNCTION}, sts_host="sts.eu-west-1.amazonaws.com", sts_region="eu-west-1", now=time.time())


def test_an_endpoint_override_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4599")
    proof, _ = SignClient(FUNCTION, FakeLambda({}), session()).proof()
    assert proof["headers"]["Host"] == "127.0.0.1:4599"
    parse_caller_proof(proof, accepted_signers={FUNCTION}, sts_host="127.0.0.1:4599", sts_region="eu-west-1", now=time.time())


def test_a_function_arn_selects_its_region_and_is_signed_as_given() -> None:
    arn = "arn:aws:lambda:us-west-2:123456789012:function:jwks-rotator-sign"
    client = SignClient(arn, FakeLambda({}), session())
    proof, _ = client.proof()
    assert client.region == "us-west-2" and proof["headers"]["Host"] == "sts.us-west-2.amazonaws.com"
    with pytest.raises(UnauthenticatedError) as caught:
        parse_caller_proof(proof, accepted_signers={FUNCTION}, sts_host="sts.us-west-2.amazonaws.com", sts_region="us-west-2", now=time.time())
    assert caught.value.reason == "signer_mismatch"


def test_sign_sends_the_request_with_a_proof_and_returns_error_answers() -> None:
    lam = FakeLambda({"error": "subject_not_allowed", "message": "no"})
    answer = SignClient(FUNCTION, lam, session()).sign({"sub": "user-1", "aud": "payments-api"})
    assert answer == {"error": "subject_not_allowed", "message": "no"}
    assert lam.payloads[0]["sub"] == "user-1" and set(lam.payloads[0]["proof"]) == {"headers", "body"}


def test_a_proof_is_reused_within_its_window_then_renewed() -> None:
    ticks = Ticks()
    lam = FakeLambda({"token": "t"})
    client = SignClient(FUNCTION, lam, session(), clock=ticks, proof_reuse_seconds=240)
    client.sign({"sub": "a"})
    ticks.now = 239
    client.sign({"sub": "a"})
    assert lam.payloads[0]["proof"] == lam.payloads[1]["proof"]
    ticks.now = 240
    assert client.proof()[1] is False


def test_a_reused_proof_refused_as_unauthenticated_is_renewed_once() -> None:
    lam = FakeLambda({"token": "t"}, {"error": "unauthenticated", "message": "x"}, {"token": "t2"})
    client = SignClient(FUNCTION, lam, session())
    client.sign({"sub": "a"})
    time.sleep(1.01)  # a new X-Amz-Date, so the renewed proof differs
    assert client.sign({"sub": "a"}) == {"token": "t2"}
    assert len(lam.payloads) == 3 and lam.payloads[2]["proof"] != lam.payloads[1]["proof"]


def test_a_fresh_proof_refused_is_not_retried() -> None:
    lam = FakeLambda({"error": "unauthenticated", "message": "x"})
    assert SignClient(FUNCTION, lam, session()).sign({"sub": "a"})["error"] == "unauthenticated"
    assert len(lam.payloads) == 1


def test_a_crashed_function_raises() -> None:
    with pytest.raises(SignInvokeError):
        SignClient(FUNCTION, FakeLambda({"errorMessage": "boom"}, function_error="Unhandled"), session()).sign({"sub": "a"})


def test_the_operator_client_sends_the_operation_with_a_proof_bound_to_the_rotate_function() -> None:
    from jwks_rotator_client import OperatorClient

    lam = FakeLambda({"operation": "revoke", "changes": []})
    client = OperatorClient(FUNCTION, lam, session())
    assert client.revoke("k1") == {"operation": "revoke", "changes": []}
    client.publish(accept_restore=True)
    client.publish()
    first, second, third = lam.payloads
    assert {k: v for k, v in first.items() if k != "proof"} == {"operation": "revoke", "kid": "k1"}
    assert {k: v for k, v in second.items() if k != "proof"} == {"operation": "publish", "accept_restore": True}
    assert {k: v for k, v in third.items() if k != "proof"} == {"operation": "publish"}
    parsed = parse_caller_proof(first["proof"], accepted_signers={FUNCTION}, sts_host="sts.eu-west-1.amazonaws.com", sts_region="eu-west-1", now=time.time())
    assert parsed.signer == FUNCTION


def test_a_failed_rotate_run_raises_with_what_lambda_reported_of_it() -> None:
    from jwks_rotator_client import InvokeError, OperationFailedError, OperatorClient

    failure = {"errorType": "KeyringBehindPublicationError", "errorMessage": "the bucket holds\nnewer documents"}
    with pytest.raises(OperationFailedError) as raised:
        OperatorClient(FUNCTION, FakeLambda(failure, function_error="Unhandled"), session()).rotate_now()
    assert isinstance(raised.value, InvokeError)
    assert raised.value.error_type == "KeyringBehindPublicationError"
    assert raised.value.error_message == "the bucket holds newer documents"
    assert str(raised.value) == "the rotate function failed (Unhandled): KeyringBehindPublicationError: the bucket holds newer documents"
