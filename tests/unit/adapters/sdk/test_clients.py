"""The client factory and error codes of the AWS edge: explicit timeouts, retries, endpoint; codes never messages."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from jwks_rotator.adapters.sdk.clients import (
    ROTATION,
    SIGNING,
    ClientPolicy,
    client_factory,
    error_code,
    make_client,
    regional_client_factory,
)
from tests.sign_support import THROTTLED


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (THROTTLED, "ThrottlingException"),
        (ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject"), "404"),
        (ClientError({"Error": {"Code": "not a code: secret-canary", "Message": "x"}}, "GetSecretValue"), "ClientError"),
        (ClientError({}, "GetSecretValue"), "ClientError"),
        (EndpointConnectionError(endpoint_url="https://secretsmanager.example"), "EndpointConnectionError"),
        (RuntimeError("secret-canary"), "RuntimeError"),
    ],
)
def test_error_code_names_the_aws_code_or_the_failure_type_never_a_message(exc: Exception, code: str) -> None:
    assert error_code(exc) == code


def test_clients_get_explicit_timeouts_standard_retries_and_the_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4599")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = make_client("secretsmanager", SIGNING, aws_access_key_id="testing", aws_secret_access_key="testing")
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (SIGNING.connect_timeout, SIGNING.read_timeout)
    assert config.retries == {"mode": "standard", "total_max_attempts": SIGNING.attempts}
    assert client.meta.endpoint_url == "http://127.0.0.1:4599"
    assert client.meta.region_name == "eu-west-1"


def test_a_factory_passes_its_policy_and_options_to_every_client() -> None:
    policy = ClientPolicy(connect_timeout=1, read_timeout=7, attempts=3)
    build = client_factory(policy, endpoint_url="http://127.0.0.1:4598", region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    for service in ("s3", "cloudfront"):
        client = build(service)
        assert client.meta.endpoint_url == "http://127.0.0.1:4598"
        assert client.meta.config.read_timeout == 7 and client.meta.config.retries["total_max_attempts"] == 3
    assert ROTATION.read_timeout > SIGNING.read_timeout  # the rotate function has a 60 s budget, the sign function 5 s


def test_a_regional_factory_makes_each_regions_clients_with_the_same_policy_and_endpoint() -> None:
    policy = ClientPolicy(connect_timeout=1, read_timeout=7, attempts=3)
    regional = regional_client_factory(policy, endpoint_url="http://127.0.0.1:4598", region_name="us-east-1",
                                       aws_access_key_id="testing", aws_secret_access_key="testing")
    for region in ("eu-west-1", "ap-south-1"):
        client = regional(region)("secretsmanager")
        assert client.meta.region_name == region and client.meta.endpoint_url == "http://127.0.0.1:4598"
        assert client.meta.config.read_timeout == 7 and client.meta.config.retries["total_max_attempts"] == 3
