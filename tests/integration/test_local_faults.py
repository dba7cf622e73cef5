"""The local cloud by region: one endpoint routes by the request's credential scope, and `jwks-rotator fault
region-outage REGION` makes every call of that region fail at once (503; Lambda invokes ServiceException) until
`fault clear REGION`, after which the stack issues what it issued before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from click.testing import CliRunner

from jwks_rotator.adapters.sdk.keyring_replicas import SecretsManagerKeyringReplicas
from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.lifecycle.documents import JWKS_PATH, PublicDocuments
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.origins import EveryOrigin, Origin
from jwks_rotator.core.settings import Settings
from jwks_rotator_cli.main import cli
from jwks_rotator_client import RegionalSignClient, RegionalSigner, RegionsUnavailableError
from jwks_rotator_local.local_stack import SIGN_FUNCTION, LocalStack

pytestmark = pytest.mark.integration

SETTINGS = {"rotation-period": "60s", "publish-lead": "2s", "schedule": "1s", "jwks-max-age": "1s", "signer-cache-ttl": "1s"}
OTHER_REGION = "eu-west-1"
ONE_ATTEMPT = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(SETTINGS) as stack:
        assert stack.region != OTHER_REGION
        yield stack


@pytest.fixture
def cleared(stack: LocalStack) -> Iterator[LocalStack]:
    yield stack
    for region in stack.faults.outages():
        stack.faults.clear(region)


def client(stack: LocalStack, service: str, region: str, *, endpoint: str | None = None) -> Any:
    url = endpoint or stack.aws_endpoint
    return boto3.client(service, endpoint_url=url, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing", config=ONE_ATTEMPT)


def fault(stack: LocalStack, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--endpoint-url", stack.aws_endpoint, "--state-file", "/nonexistent/state.json", "fault", *args])


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["ResponseMetadata"]["HTTPStatusCode"], raised.value.response["Error"]["Code"]


def test_one_endpoint_serves_each_region_from_the_signature(cleared: LocalStack) -> None:
    stack = cleared
    name = f"only-in-{OTHER_REGION}-{uuid.uuid4().hex[:8]}"
    client(stack, "secretsmanager", OTHER_REGION).create_secret(Name=name, SecretString="x")
    assert name not in {s["Name"] for s in client(stack, "secretsmanager", stack.region).list_secrets()["SecretList"]}
    invoke = client(stack, "lambda", OTHER_REGION).invoke
    assert error_of(lambda: invoke(FunctionName=stack.function_name(SIGN_FUNCTION), Payload=b"{}")) == (404, "ResourceNotFoundException")
    answer = client(stack, "lambda", stack.region).invoke(FunctionName=stack.function_name(SIGN_FUNCTION), Payload=b"{}")
    assert answer["StatusCode"] == 200  # the stack's region reaches its functions through the same endpoint


def test_a_region_outage_fails_every_call_of_that_region_at_once_and_clear_ends_it(cleared: LocalStack) -> None:
    stack = cleared
    before = stack.sign_client().sign({"sub": "alice", "aud": "demo"})
    assert "token" in before, before
    started = fault(stack, "region-outage", stack.region)
    assert started.exit_code == 0, started.output
    assert started.output == f"regions in outage: {stack.region}\n"
    region = stack.region
    sign = stack.function_name(SIGN_FUNCTION)
    assert error_of(lambda: client(stack, "lambda", region).invoke(FunctionName=sign, Payload=b"{}")) == (500, "ServiceException")
    direct = client(stack, "lambda", region, endpoint=stack.lambda_endpoint)
    assert error_of(lambda: direct.invoke(FunctionName=sign, Payload=b"{}")) == (500, "ServiceException")
    assert error_of(lambda: client(stack, "sts", region).get_caller_identity()) == (503, "ServiceUnavailable")
    assert error_of(lambda: client(stack, "sts", region, endpoint=stack.sts_endpoint).get_caller_identity()) == (503, "ServiceUnavailable")
    assert error_of(lambda: client(stack, "secretsmanager", region).list_secrets()) == (503, "ServiceUnavailableException")
    assert error_of(lambda: client(stack, "ssm", region).describe_parameters()) == (503, "ServiceUnavailableException")
    assert error_of(lambda: client(stack, "s3", region).list_buckets()) == (503, "ServiceUnavailable")
    assert error_of(lambda: client(stack, "cloudformation", region).describe_stacks()) == (503, "ServiceUnavailable")
    assert client(stack, "secretsmanager", OTHER_REGION).list_secrets()["SecretList"] is not None  # another region answers
    with pytest.raises(RegionsUnavailableError) as raised:
        regional(stack).sign({"sub": "alice", "aud": "demo"})
    assert [(f.region, f.kind, f.code) for f in raised.value.failures] == [(region, "aws_error", "ServiceException")]
    assert fault(stack, "list").output == f"regions in outage: {region}\n"
    cleared_now = fault(stack, "clear", region)
    assert cleared_now.exit_code == 0 and cleared_now.output == "regions in outage: none\n"
    assert fault(stack, "clear", region).exit_code == 0  # safe to run again
    after = regional(stack).sign({"sub": "alice", "aud": "demo"})
    assert "token" in after and after["kid"] == before["kid"], after


def regional(stack: LocalStack) -> RegionalSignClient:
    session = stack.caller_session()
    lam = session.client("lambda", endpoint_url=stack.aws_endpoint, region_name=stack.region, config=ONE_ATTEMPT)
    signer = RegionalSigner(stack.region, stack.function_name(SIGN_FUNCTION), lambda_client=lam, sts_endpoint_url=stack.sts_endpoint)
    return RegionalSignClient([signer], session, deadline=20, attempt_timeout=15)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fault", "region-outage", "eu-west-1"], "fault needs --endpoint-url of a local cloud"),
        (["--endpoint-url", "https://lambda.eu-west-1.amazonaws.com", "fault", "region-outage", "eu-west-1"], "never acts on AWS"),
        (["--endpoint-url", "http://127.0.0.1:9", "fault", "region-outage", "EU"], "not a region name"),
    ],
)
def test_fault_refuses_anything_but_a_local_cloud_and_a_region_name(args: list[str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_fault_against_an_endpoint_that_is_not_a_local_cloud_says_so(cleared: LocalStack) -> None:
    result = CliRunner().invoke(cli, ["--endpoint-url", cleared.moto_endpoint, "--state-file", "/nonexistent/s.json", "fault", "list"])
    assert result.exit_code == 1 and "is --endpoint-url its AWS endpoint?" in result.output, result.output


def test_publication_to_two_regions_origins_misses_the_region_in_outage_and_repairs_it_after(cleared: LocalStack) -> None:
    stack = cleared
    settings = Settings.from_mapping({"issuer": "https://issuer.example.com", "keyring_secret_id": "k", "signing_secret_id": "s"})
    suffix = uuid.uuid4().hex[:8]
    origins = []
    for region in (OTHER_REGION, stack.region):
        s3 = client(stack, "s3", region)
        bucket = f"origin-{region}-{suffix}"
        s3.create_bucket(Bucket=bucket, **({"CreateBucketConfiguration": {"LocationConstraint": region}} if region != "us-east-1" else {}))
        origins.append((region, s3, bucket))
    every = EveryOrigin([Origin(region, S3Publisher(s3, bucket, settings)) for region, s3, bucket in origins])

    def documents(n: int) -> PublicDocuments:
        return PublicDocuments(files={JWKS_PATH: f'{{"keys":[],"n":{n}}}'.encode()}, kids=(), digest=str(n))

    def held(region: str) -> bytes:
        _, s3, bucket = next(o for o in origins if o[0] == region)
        return bytes(s3.get_object(Bucket=bucket, Key=JWKS_PATH)["Body"].read())

    assert every.publish(documents(1), already_announced=False, generation=1).missing == ()
    assert fault(stack, "region-outage", OTHER_REGION).exit_code == 0
    assert every.publish(documents(2), already_announced=False, generation=2).missing == (OTHER_REGION,)
    assert held(stack.region) == documents(2).files[JWKS_PATH]  # the healthy origin is current
    assert fault(stack, "clear", OTHER_REGION).exit_code == 0
    assert held(OTHER_REGION) == documents(1).files[JWKS_PATH]  # the outage kept the older documents there
    assert every.publish(documents(2), already_announced=False, generation=2).missing == ()
    assert held(OTHER_REGION) == held(stack.region) == documents(2).files[JWKS_PATH]


def test_the_writer_reads_each_regions_keyring_replica_and_a_region_in_outage_holds_nothing(cleared: LocalStack) -> None:
    stack = cleared
    name = f"keyring-{uuid.uuid4().hex[:8]}"
    primary = client(stack, "secretsmanager", stack.region)
    keyring = Keyring(keys=(generate_key("ES256", datetime.now(UTC)),)).to_json()
    primary.create_secret(Name=name, SecretString=keyring)
    primary.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": OTHER_REGION}])
    replicas = SecretsManagerKeyringReplicas({OTHER_REGION: client(stack, "secretsmanager", OTHER_REGION)}, name)
    kids = frozenset(k.kid for k in Keyring.from_json(keyring).keys)
    assert kids and replicas.kids_by_region() == {OTHER_REGION: kids}  # moto replicates at once: no lag to see here
    assert fault(stack, "region-outage", OTHER_REGION).exit_code == 0
    assert replicas.kids_by_region() == {OTHER_REGION: None}
    assert fault(stack, "clear", OTHER_REGION).exit_code == 0
    assert replicas.kids_by_region() == {OTHER_REGION: kids}
