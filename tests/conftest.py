"""Shared fixtures: a moto server on loopback and the AWS resources the template creates.

Integration and interop tests talk to the moto server over HTTP through
boto3's ``endpoint_url``, exactly as they would talk to AWS. The fixtures are
thin wrappers over the testing kit (``jwks_rotator_testkit``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jwks_rotator_testkit.deploy import AwsResources, create_test_resources
from jwks_rotator_testkit.moto import moto_server, set_default_credentials


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server in server mode on 127.0.0.1 (one per test session)."""
    set_default_credentials()
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_resources(moto_endpoint: str) -> AwsResources:
    """A fresh KMS-encrypted keyring secret, bucket and CloudFront distribution."""
    return create_test_resources(moto_endpoint)
