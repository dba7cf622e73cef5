"""One local STS endpoint for several regions: a proof's credential scope picks the region, each region's signer
accepts only proofs of its own, and a region in outage answers 503, which its signer turns into signing_unavailable."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials

from jwks_rotator.adapters.lean.sts_identity import StsEndpoint, StsIdentityReplayer
from jwks_rotator.core.callers.verifier import CallerVerifier
from jwks_rotator.core.errors import SigningUnavailableError, UnauthenticatedError
from jwks_rotator_client import build_caller_proof
from jwks_rotator_local.faults import RegionFaults
from jwks_rotator_local.sts_verifier import LocalStsVerifier

pytestmark = pytest.mark.integration

HOME, OTHER, UNSERVED = "us-east-1", "eu-west-1", "ap-south-1"
SIGNER = "jwks-rotator-sign"


class Cloud:
    def __init__(self, moto: str, sts: LocalStsVerifier) -> None:
        self.moto = moto
        self.sts = sts

    def credentials(self) -> Credentials:
        client: Any = boto3.client("iam", endpoint_url=self.moto, region_name=HOME, aws_access_key_id="testing", aws_secret_access_key="testing")
        role = f"orders-{uuid.uuid4().hex[:8]}"
        client.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
        sts: Any = boto3.client("sts", endpoint_url=self.moto, region_name=HOME, aws_access_key_id="testing", aws_secret_access_key="testing")
        answer = sts.assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{role}", RoleSessionName="session-1")["Credentials"]
        return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])

    def proof(self, region: str) -> dict[str, Any]:
        return build_caller_proof(self.credentials(), sts_endpoint_url=self.sts.url, region=region, signer=SIGNER)

    def signer_of(self, region: str) -> CallerVerifier:
        endpoint = StsEndpoint.for_origin(self.sts.url, region)
        return CallerVerifier(StsIdentityReplayer.for_endpoint(endpoint), wall_clock=time.time, monotonic_clock=time.monotonic,
                              max_age=300, leeway=60, sts_host=endpoint.host, sts_region=region)


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    sts = LocalStsVerifier(moto, region=HOME, regions=[OTHER])
    sts.faults = RegionFaults()
    sts.start()
    yield Cloud(moto, sts)
    sts.stop()
    server.stop()


def test_each_regions_signer_accepts_a_proof_scoped_to_its_region_through_the_one_endpoint(cloud: Cloud) -> None:
    for region in (HOME, OTHER):
        identity = cloud.signer_of(region).verify(cloud.proof(region), {SIGNER})
        assert identity.role_arn is not None and identity.role_arn.startswith("arn:aws:iam::123456789012:role/orders-")


def test_a_signer_refuses_a_proof_scoped_to_another_region(cloud: Cloud) -> None:
    with pytest.raises(UnauthenticatedError) as refused:
        cloud.signer_of(HOME).verify(cloud.proof(OTHER), {SIGNER})
    assert refused.value.reason == "scope_region"


def test_a_region_the_endpoint_does_not_serve_is_refused_by_sts(cloud: Cloud) -> None:
    with pytest.raises(UnauthenticatedError) as refused:
        cloud.signer_of(UNSERVED).verify(cloud.proof(UNSERVED), {SIGNER})
    assert refused.value.reason == "sts_refused:SignatureDoesNotMatch"


def test_a_region_in_outage_makes_its_signer_unavailable_not_a_refusal(cloud: Cloud) -> None:
    assert cloud.sts.faults is not None
    cloud.sts.faults.start_outage(OTHER)
    try:
        with pytest.raises(SigningUnavailableError):
            cloud.signer_of(OTHER).verify(cloud.proof(OTHER), {SIGNER})
        assert cloud.signer_of(HOME).verify(cloud.proof(HOME), {SIGNER}).role_arn is not None
    finally:
        cloud.sts.faults.clear(OTHER)
    assert cloud.signer_of(OTHER).verify(cloud.proof(OTHER), {SIGNER}).role_arn is not None
