"""The signer's stdlib SigV4 GET of the revocation record signs exactly as botocore does."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from jwks_rotator.adapters.lean.http import HttpResponse
from jwks_rotator.adapters.lean.s3_record_reader import ATTEMPTS, BACKOFF_BASE, LeanS3RevocationRecord, sigv4_headers
from jwks_rotator.core.errors import ConfigurationError, StoreError

NOW = datetime.datetime(2026, 12, 7, 2, 30, 0, tzinfo=datetime.UTC)


def test_the_signature_is_botocores() -> None:
    host, path = "stack-bucket.s3.eu-west-1.amazonaws.com", "/revocations/revoked-kids.json"
    ours = sigv4_headers(
        host=host, path=path, region="eu-west-1", access_key="ASIAEXAMPLE", secret_key="secret", session_token="token", now=NOW.timestamp()
    )
    request = AWSRequest(method="GET", url=f"https://{host}{path}", headers={})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(Credentials("ASIAEXAMPLE", "secret", "token"), "s3", "eu-west-1").add_auth(request)
    assert ours["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"], "the payload hash signed"
    assert ours["authorization"] == request.headers["Authorization"]


def test_the_origin_is_the_regions_s3_unless_the_local_stack_names_one() -> None:
    deployed = LeanS3RevocationRecord.from_environment({"AWS_REGION": "eu-west-1"}, "stack-bucket")
    assert (deployed._host, deployed._path) == ("stack-bucket.s3.eu-west-1.amazonaws.com", "/revocations/revoked-kids.json")
    china = LeanS3RevocationRecord.from_environment({"AWS_REGION": "cn-north-1"}, "b")
    assert china._host == "b.s3.cn-north-1.amazonaws.com.cn"
    local = LeanS3RevocationRecord.from_environment({"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, "b", local=True)
    assert (local._host, local._path) == ("127.0.0.1:4566", "/b/revocations/revoked-kids.json")


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"])
def test_a_deployed_signer_refuses_an_s3_endpoint_from_its_environment(variable: str) -> None:
    # A configuration change must not point the record read at another server: it would answer "nothing revoked"
    # (and receive the function's signed request with its session token).
    with pytest.raises(ConfigurationError) as refused:
        LeanS3RevocationRecord.from_environment({"AWS_REGION": "eu-west-1", variable: "http://attacker.example"}, "stack-bucket")
    assert refused.value.code == "invalid_configuration"
    assert "attacker" not in refused.value.message


class _Answers:
    """A transport stand-in answering the given statuses in order (the last one repeats), recording each request."""

    def __init__(self, *statuses: int, body: bytes = b'{"revoked":["kid-1"]}') -> None:
        self.statuses = list(statuses)
        self.body = body
        self.dates: list[str] = []

    def request(self, method: str, path: str, *, headers: dict[str, str]) -> HttpResponse:
        assert (method, path) == ("GET", "/b/revocations/revoked-kids.json")
        self.dates.append(headers["x-amz-date"])
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return HttpResponse(status, {}, self.body if status == 200 else b"<Error><Code>SlowDown</Code></Error>")


def _reader(transport: _Answers, pauses: list[float], clock: list[float]) -> LeanS3RevocationRecord:
    environ = {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}

    def tick() -> float:
        clock[0] += 1.0
        return clock[0]

    return LeanS3RevocationRecord(
        "http://127.0.0.1:4566", "/b/revocations/revoked-kids.json", "us-east-1", environ,
        clock=tick, sleep=pauses.append, transport=transport,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("status", [503, 500])
def test_a_transient_s3_answer_is_retried_with_a_fresh_signature(status: int) -> None:
    transport, pauses = _Answers(status, status, 200), []
    assert _reader(transport, pauses, [NOW.timestamp()]).load() == ("kid-1",)
    assert len(transport.dates) == 3 and len(set(transport.dates)) == 3, "each attempt signed at its own time"
    assert len(pauses) == 2 and all(0 <= p <= BACKOFF_BASE * 2 for p in pauses) and sum(pauses) <= 3 * BACKOFF_BASE


def test_a_lasting_transient_answer_fails_after_the_attempts_with_its_status() -> None:
    transport, pauses = _Answers(503), []
    with pytest.raises(StoreError) as raised:
        _reader(transport, pauses, [NOW.timestamp()]).load()
    assert raised.value.reason == "HTTP503" and len(transport.dates) == ATTEMPTS and len(pauses) == ATTEMPTS - 1


@pytest.mark.parametrize(("status", "expected"), [(403, "HTTP403"), (404, None)])
def test_a_refusal_or_a_missing_record_is_not_retried(status: int, expected: str | None) -> None:
    transport, pauses = _Answers(status, 200), []
    reader = _reader(transport, pauses, [NOW.timestamp()])
    if expected is None:
        assert reader.load() is None
    else:
        with pytest.raises(StoreError) as raised:
            reader.load()
        assert raised.value.reason == expected
    assert len(transport.dates) == 1 and pauses == []
