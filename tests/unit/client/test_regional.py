"""The regional client: fails over in order on outages only, within its deadline, one proof per region."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from jwks_rotator.core.callers.proof import parse_caller_proof
from jwks_rotator.core.errors import UnauthenticatedError
from jwks_rotator_client import RegionalSignClient, RegionalSigner, RegionsUnavailableError, SignInvokeError

FUNCTION = "jwks-rotator-sign"
TOKEN = {"token": "t", "kid": "k1"}


def aws_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Invoke")


class Hang:
    """An invoke that blocks until released: a region that never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()


class RegionLambda:
    """A Lambda client of one region; each invoke plays the next step (the last one repeats)."""

    def __init__(self, region: str, *steps: Any) -> None:
        self.meta = type("Meta", (), {"region_name": region})()
        self.steps = list(steps)
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["FunctionName"] == FUNCTION and kwargs["InvocationType"] == "RequestResponse"
        self.payloads.append(json.loads(kwargs["Payload"]))
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Hang):
            step.release.wait(30)
            step = TOKEN
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, tuple):  # (function_error, payload): the function crashed
            return {"StatusCode": 200, "FunctionError": step[0], "Payload": io.BytesIO(json.dumps(step[1]).encode())}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(step).encode())}


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def session() -> Any:
    return boto3.Session(
        aws_access_key_id="ASIAEXAMPLEKEY123456", aws_secret_access_key="secret", aws_session_token="tok", region_name="eu-west-1"
    )


def regional(*lambdas: RegionLambda, **options: Any) -> RegionalSignClient:
    signers = [RegionalSigner(lam.meta.region_name, FUNCTION, lambda_client=lam) for lam in lambdas]
    return RegionalSignClient(signers, session(), **options)


def check_proof(proof: dict[str, Any], region: str) -> None:
    parse_caller_proof(proof, accepted_signers={FUNCTION}, sts_host=f"sts.{region}.amazonaws.com", sts_region=region, now=time.time())


@pytest.fixture
def hang() -> Iterator[Hang]:
    hung = Hang()
    yield hung
    hung.release.set()


def test_the_first_region_answers_with_a_proof_scoped_to_its_own_sts() -> None:
    eu, us = RegionLambda("eu-west-1", TOKEN), RegionLambda("us-east-1", TOKEN)
    result = regional(eu, us).sign_detailed({"sub": "a"})
    assert (result.region, result.answer, result.failures) == ("eu-west-1", TOKEN, ())
    assert len(eu.payloads) == 1 and us.payloads == []
    check_proof(eu.payloads[0]["proof"], "eu-west-1")


def test_outages_fail_over_in_order_of_preference_and_each_region_gets_its_own_proof() -> None:
    eu = RegionLambda("eu-west-1", aws_error("ServiceException", 500))
    us = RegionLambda("us-east-1", aws_error("TooManyRequestsException", 429))
    ap = RegionLambda("ap-south-1", TOKEN)
    result = regional(eu, us, ap).sign_detailed({"sub": "a"})
    assert result.region == "ap-south-1" and result.answer == TOKEN
    assert [(f.region, f.kind, f.code) for f in result.failures] == [
        ("eu-west-1", "aws_error", "ServiceException"),
        ("us-east-1", "aws_error", "TooManyRequestsException"),
    ]
    check_proof(ap.payloads[0]["proof"], "ap-south-1")
    with pytest.raises(UnauthenticatedError) as refused:  # the eu signer would refuse the proof sent to ap-south-1
        check_proof(ap.payloads[0]["proof"], "eu-west-1")
    assert refused.value.reason in {"sts_host", "scope_region"}
    assert eu.payloads[0]["proof"] != us.payloads[0]["proof"] != ap.payloads[0]["proof"]


@pytest.mark.parametrize(
    "failure",
    [
        aws_error("EC2ThrottledException", 502),
        aws_error("SomethingNew", 503),
        EndpointConnectionError(endpoint_url="https://lambda.eu-west-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://lambda.eu-west-1.amazonaws.com"),
        ("Unhandled", {"errorType": "Runtime.ExitError", "errorMessage": "exited"}),
        {"error": "signing_unavailable", "message": "no key"},
        {"error": "store_unavailable", "message": "x"},
        {"error": "internal_error", "message": "x"},
    ],
    ids=["ec2-throttled", "any-5xx", "connection", "read-timeout", "function-crashed", "signing-unavailable", "store", "internal"],
)
def test_each_kind_of_regional_failure_moves_to_the_next_region(failure: Any) -> None:
    eu, us = RegionLambda("eu-west-1", failure), RegionLambda("us-east-1", TOKEN)
    result = regional(eu, us).sign_detailed({"sub": "a"})
    assert result.region == "us-east-1" and result.answer == TOKEN and [f.region for f in result.failures] == ["eu-west-1"]


@pytest.mark.parametrize("refusal", ["caller_not_allowed", "subject_not_allowed", "ttl_too_long", "invalid_request", "unauthenticated"])
def test_a_refusal_is_an_answer_not_an_outage(refusal: str) -> None:
    eu, us = RegionLambda("eu-west-1", {"error": refusal, "message": "no"}), RegionLambda("us-east-1", TOKEN)
    assert regional(eu, us).sign({"sub": "a"}) == {"error": refusal, "message": "no"}
    assert us.payloads == []


@pytest.mark.parametrize("error", [aws_error("AccessDeniedException", 403), aws_error("ResourceNotFoundException", 404)])
def test_a_callers_own_fault_is_raised_not_failed_over(error: ClientError) -> None:
    eu, us = RegionLambda("eu-west-1", error), RegionLambda("us-east-1", TOKEN)
    with pytest.raises(ClientError) as raised:
        regional(eu, us).sign({"sub": "a"})
    assert raised.value is error and us.payloads == []


def test_a_region_that_does_not_answer_is_left_behind_at_the_attempt_timeout(hang: Hang) -> None:
    eu, us = RegionLambda("eu-west-1", hang), RegionLambda("us-east-1", TOKEN)
    result = regional(eu, us, attempt_timeout=0.2, deadline=30).sign_detailed({"sub": "a"})
    assert result.region == "us-east-1" and [(f.region, f.kind) for f in result.failures] == [("eu-west-1", "timeout")]
    assert result.failures[0].detail == "no answer within 0.2 s"


def test_an_attempt_never_waits_past_the_rest_of_the_deadline(hang: Hang) -> None:
    eu, us = RegionLambda("eu-west-1", hang), RegionLambda("us-east-1", TOKEN)
    with pytest.raises(RegionsUnavailableError) as raised:
        regional(eu, us, attempt_timeout=60, deadline=0.25).sign({"sub": "a"})
    first = raised.value.failures[0]
    assert (first.region, first.kind, first.detail) == ("eu-west-1", "timeout", "no answer within 0.25 s")
    assert raised.value.failures[1:] == () or raised.value.failures[1].kind == "deadline"


def test_no_region_is_tried_once_the_deadline_has_passed() -> None:
    ticks = Ticks()

    class Slow(RegionLambda):
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            ticks.now += 6.0  # this attempt took 6 of the 5 seconds
            return super().invoke(**kwargs)

    eu, us = Slow("eu-west-1", aws_error("ServiceException", 500)), RegionLambda("us-east-1", TOKEN)
    with pytest.raises(RegionsUnavailableError) as raised:
        regional(eu, us, deadline=5.0, clock=ticks).sign({"sub": "a"})
    assert [(f.region, f.kind) for f in raised.value.failures] == [("eu-west-1", "aws_error"), ("us-east-1", "deadline")]
    assert us.payloads == []
    assert isinstance(raised.value, SignInvokeError)
    assert str(raised.value) == "no region's sign function answered (eu-west-1: aws_error ServiceException, us-east-1: deadline)"


def test_every_region_failing_raises_with_what_each_did() -> None:
    eu = RegionLambda("eu-west-1", aws_error("ServiceException", 500))
    us = RegionLambda("us-east-1", {"error": "signing_unavailable", "message": "x"})
    with pytest.raises(RegionsUnavailableError) as raised:
        regional(eu, us).sign({"sub": "a"})
    assert [(f.region, f.kind, f.code) for f in raised.value.failures] == [
        ("eu-west-1", "aws_error", "ServiceException"),
        ("us-east-1", "answer", "signing_unavailable"),
    ]


def test_a_failed_region_is_tried_last_until_its_demotion_ends() -> None:
    ticks = Ticks()
    eu, us = RegionLambda("eu-west-1", aws_error("ServiceException", 500), TOKEN), RegionLambda("us-east-1", TOKEN)
    client = regional(eu, us, demote_seconds=30, clock=ticks)
    assert client.sign_detailed({"sub": "a"}).region == "us-east-1"
    ticks.now = 29.0
    assert client.order() == ["us-east-1", "eu-west-1"]
    assert client.sign_detailed({"sub": "a"}).region == "us-east-1" and len(eu.payloads) == 1
    ticks.now = 30.0
    assert client.sign_detailed({"sub": "a"}).region == "eu-west-1"
    assert client.order() == ["eu-west-1", "us-east-1"]


def test_a_demoted_region_still_serves_when_the_others_fail() -> None:
    ticks = Ticks()
    eu = RegionLambda("eu-west-1", aws_error("ServiceException", 500), TOKEN)
    us = RegionLambda("us-east-1", TOKEN, aws_error("ServiceException", 500))
    client = regional(eu, us, clock=ticks)
    client.sign({"sub": "a"})  # eu fails, us answers
    result = client.sign_detailed({"sub": "a"})  # us (preferred now) fails, demoted eu answers
    assert result.region == "eu-west-1" and [f.region for f in result.failures] == ["us-east-1"]


def test_each_region_reuses_its_own_proof() -> None:
    ticks = Ticks()
    eu = RegionLambda("eu-west-1", TOKEN, aws_error("ServiceException", 500), TOKEN)
    us = RegionLambda("us-east-1", TOKEN)
    client = regional(eu, us, demote_seconds=0, clock=ticks)
    for _ in range(3):
        client.sign({"sub": "a"})
    eu_proofs = [p["proof"] for p in eu.payloads]
    assert len(eu_proofs) == 3 and eu_proofs[0] == eu_proofs[1] == eu_proofs[2]
    assert len(us.payloads) == 1 and us.payloads[0]["proof"] != eu_proofs[0]
    check_proof(us.payloads[0]["proof"], "us-east-1")
    assert client.client("eu-west-1").proof()[1] is True and client.client("us-east-1").proof()[1] is True


def test_clients_it_makes_use_the_deadline_as_timeouts_and_leave_retries_to_the_next_region() -> None:
    client = RegionalSignClient(
        [RegionalSigner("eu-west-1", FUNCTION), RegionalSigner("us-east-1", FUNCTION)], session(), deadline=2.0, attempt_timeout=3.0
    )
    for region in ("eu-west-1", "us-east-1"):
        lam = client.client(region)._lambda
        assert lam.meta.region_name == region
        assert (lam.meta.config.connect_timeout, lam.meta.config.read_timeout) == (2.0, 2.0)
        assert lam.meta.config.retries["total_max_attempts"] == 1
        assert client.client(region).region == region
        assert client.client(region)._sts_endpoint_url == f"https://sts.{region}.amazonaws.com"  # resolved before any thread


@pytest.mark.parametrize(
    ("signers", "message"),
    [
        ([], "at least one"),
        ([RegionalSigner("eu-west-1", FUNCTION), RegionalSigner("eu-west-1", FUNCTION)], "once"),
        ([RegionalSigner("eu-west-1", "arn:aws:lambda:us-east-1:123456789012:function:jwks-rotator-sign")], "is in us-east-1"),
        ([RegionalSigner("eu-west-1", FUNCTION, lambda_client=RegionLambda("us-east-1", TOKEN))], "one of us-east-1"),
        ([RegionalSigner("", FUNCTION)], "needs a region"),
    ],
)
def test_a_wrong_list_of_regions_is_refused_up_front(signers: list[RegionalSigner], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegionalSignClient(signers, session())


def test_a_bad_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        regional(RegionLambda("eu-west-1", TOKEN), deadline=0)
    with pytest.raises(ValueError, match="must be positive"):
        regional(RegionLambda("eu-west-1", TOKEN)).sign({"sub": "a"}, deadline=-1)


def test_no_credentials_is_the_callers_to_fix_and_no_region_is_tried(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    eu, us = RegionLambda("eu-west-1", TOKEN), RegionLambda("us-east-1", TOKEN)
    signers = [RegionalSigner(lam.meta.region_name, FUNCTION, lambda_client=lam) for lam in (eu, us)]
    client = RegionalSignClient(signers, boto3.Session(region_name="eu-west-1"))
    with pytest.raises(SignInvokeError) as raised:
        client.sign({"sub": "a"})
    assert not isinstance(raised.value, RegionsUnavailableError) and str(raised.value) == "no AWS credentials to prove the caller's identity with"
    assert eu.payloads == [] and us.payloads == []
