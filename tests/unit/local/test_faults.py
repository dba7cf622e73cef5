"""Regional faults: a request's region is its SigV4 scope; the switch's control path; each protocol's error shape."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from jwks_rotator_local.faults import CONTROL_PREFIX, RegionFaults, outage_response, scope_of
from jwks_rotator_local.replica_lag import ReplicaLag

CREDENTIALS = Credentials("AKIDEXAMPLE", "secret")


def signed_headers(region: str, service: str) -> dict[str, str]:
    request = AWSRequest(method="POST", url="http://127.0.0.1:1/", data=b"Action=GetCallerIdentity&Version=2011-06-15")
    SigV4Auth(CREDENTIALS, service, region).add_auth(request)
    return dict(request.headers.items())


def test_the_region_is_the_credential_scope_of_the_signature() -> None:
    assert scope_of("/", signed_headers("eu-west-1", "sts")) == ("eu-west-1", "sts")
    assert scope_of("/2015-03-31/functions/f/invocations", signed_headers("ap-south-1", "lambda")) == ("ap-south-1", "lambda")


def test_a_presigned_url_carries_its_region_in_the_query() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:1/bucket/key")
    SigV4QueryAuth(CREDENTIALS, "s3", "eu-central-1").add_auth(request)
    path = request.url.split("127.0.0.1:1", 1)[1]
    assert scope_of(path, {}) == ("eu-central-1", "s3")


def test_an_unsigned_request_has_no_region_and_no_fault_applies() -> None:
    faults = RegionFaults()
    faults.start_outage("us-east-1")
    assert scope_of("/bucket/key", {"Host": "x"}) is None
    assert faults.answer_for("GET", "/bucket/key", {"Host": "x"}) is None


def test_an_outage_applies_to_its_region_only_until_cleared() -> None:
    faults = RegionFaults()
    faults.start_outage("eu-west-1")
    faults.start_outage("eu-west-1")  # idempotent
    assert faults.answer_for("POST", "/", signed_headers("us-east-1", "sts")) is None
    answered = faults.answer_for("POST", "/", signed_headers("eu-west-1", "sts"))
    assert answered is not None and answered[0] == 503
    faults.clear("eu-west-1")
    faults.clear("eu-west-1")
    assert faults.answer_for("POST", "/", signed_headers("eu-west-1", "sts")) is None and faults.outages() == []


def test_the_control_path_switches_and_lists_outages() -> None:
    faults = RegionFaults()
    status, _, body = faults.control("PUT", f"{CONTROL_PREFIX}/region-outage/eu-west-1")
    assert status == 200 and json.loads(body) == {"region-outage": ["eu-west-1"], "replica-lag": {}}
    assert json.loads(faults.control("GET", CONTROL_PREFIX)[2]) == {"region-outage": ["eu-west-1"], "replica-lag": {}}
    assert json.loads(faults.control("DELETE", f"{CONTROL_PREFIX}/region-outage/eu-west-1")[2]) == {"region-outage": [], "replica-lag": {}}


def test_the_control_path_sets_and_ends_a_replica_lag() -> None:
    faults = RegionFaults()
    faults.replica_lag = ReplicaLag()
    status, _, body = faults.control("PUT", f"{CONTROL_PREFIX}/replica-lag/eu-west-1/2.5")
    assert status == 200 and json.loads(body) == {"region-outage": [], "replica-lag": {"eu-west-1": 2.5}}
    assert json.loads(faults.control("PUT", f"{CONTROL_PREFIX}/replica-lag/eu-west-1/0")[2])["replica-lag"] == {}


@pytest.mark.parametrize("seconds", ["-1", "nan", "inf", "3601", "soon"])
def test_a_replica_lag_out_of_range_is_refused_and_changes_nothing(seconds: str) -> None:
    faults = RegionFaults()
    faults.replica_lag = ReplicaLag()
    faults.replica_lag.set_lag("eu-west-1", 5)
    status, _, body = faults.control("PUT", f"{CONTROL_PREFIX}/replica-lag/eu-west-1/{seconds}")
    assert status == 400 and json.loads(body)["error"] == "invalid_lag"
    assert faults.replica_lag.lags() == {"eu-west-1": 5.0}


def test_a_replica_lag_needs_a_cloud_that_has_replicas() -> None:
    assert RegionFaults().control("PUT", f"{CONTROL_PREFIX}/replica-lag/eu-west-1/5")[0] == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", f"{CONTROL_PREFIX}/region-outage/../etc", 400),
        ("PUT", f"{CONTROL_PREFIX}/region-outage/EU-WEST-1", 400),
        ("PUT", f"{CONTROL_PREFIX}/latency/eu-west-1", 404),
        ("POST", f"{CONTROL_PREFIX}/region-outage/eu-west-1", 404),
    ],
)
def test_a_bad_control_request_is_refused_and_changes_nothing(method: str, path: str, status: int) -> None:
    faults = RegionFaults()
    assert faults.control(method, path)[0] == status and faults.outages() == []


def test_a_bad_region_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a region name"):
        RegionFaults().start_outage("eu-west-1/../x")


def parsed_error(service: str, operation: str, response: tuple[int, dict[str, str], bytes]) -> tuple[int, str]:
    """What botocore makes of an outage answer for ``operation`` of ``service``: (HTTP status, error code)."""
    client = boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    model = client.meta.service_model.operation_model(operation)
    status, headers, body = response
    parser = client._endpoint._response_parser_factory.create_parser(model.metadata["protocol"])
    received = HTTPHeaders()  # as botocore receives them: case-insensitive
    for name, value in headers.items():
        received[name] = value
    parsed = parser.parse({"status_code": status, "headers": received, "body": body}, model.output_shape)
    return parsed["ResponseMetadata"]["HTTPStatusCode"], parsed["Error"]["Code"]


@pytest.mark.parametrize(
    ("service", "operation", "target", "expected"),
    [
        ("lambda", "Invoke", False, (500, "ServiceException")),
        ("sts", "GetCallerIdentity", False, (503, "ServiceUnavailable")),
        ("secretsmanager", "GetSecretValue", True, (503, "ServiceUnavailableException")),
        ("kms", "Sign", True, (503, "ServiceUnavailableException")),
        ("ssm", "GetParameter", True, (503, "ServiceUnavailableException")),
        ("s3", "PutObject", False, (503, "ServiceUnavailable")),
        ("cloudformation", "DescribeStacks", False, (503, "ServiceUnavailable")),
        ("cloudfront", "CreateInvalidation", False, (503, "ServiceUnavailable")),
    ],
)
def test_each_protocol_gets_an_error_its_sdk_parses(service: str, operation: str, target: bool, expected: tuple[int, str]) -> None:
    headers = {"X-Amz-Target": "x"} if target else {}
    path = "/2015-03-31/functions/f/invocations" if service == "lambda" else "/"
    assert parsed_error(service, operation, outage_response("eu-west-1", service, path, headers)) == expected
