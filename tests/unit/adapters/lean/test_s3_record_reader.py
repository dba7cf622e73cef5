"""The signer's stdlib SigV4 GET of the revocation record signs exactly as botocore does."""

from __future__ import annotations

import datetime
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from jwks_rotator.adapters.lean.s3_record_reader import LeanS3RevocationRecord, sigv4_headers

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
    local = LeanS3RevocationRecord.from_environment({"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, "b")
    assert (local._host, local._path) == ("127.0.0.1:4566", "/b/revocations/revoked-kids.json")
