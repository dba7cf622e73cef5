"""Shared fixtures: a moto server on loopback and the AWS resources the template creates.

Integration and interop tests talk to the moto server over HTTP through
boto3's ``endpoint_url``, exactly as they would talk to AWS.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server in server mode on 127.0.0.1 (one per test session)."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client for the moto server."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class AwsResources:
    """One test's own secret, bucket and distribution on the moto server."""

    endpoint: str
    secret_id: str
    bucket: str
    distribution_id: str

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint)


@pytest.fixture
def aws_resources(moto_endpoint: str) -> AwsResources:
    """A fresh KMS-encrypted keyring secret, bucket and CloudFront distribution."""
    from jwks_rotator_local.provision import create_resources

    suffix = uuid.uuid4().hex[:10]
    created = create_resources(
        lambda service: aws_client(service, moto_endpoint),
        secret_name=f"jwks-rotator-keyring-{suffix}",
        bucket=f"jwks-rotator-{suffix}",
    )
    return AwsResources(moto_endpoint, created.secret_id, created.bucket, created.distribution_id)
