"""The template's resources on a moto server, created for one test (or one interop deployment).

A whole local deployment (functions, Lambda API, edge, schedule) is
``jwks_rotator_local.local_stack.LocalStack``, a context manager of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from jwks_rotator_local.provision import create_resources

from .moto import aws_client, client_factory


@dataclass(frozen=True)
class AwsResources:
    """One test's own keyring secret, bucket and distribution on a moto server."""

    endpoint: str
    secret_id: str
    bucket: str
    distribution_id: str

    def client(self, service: str) -> Any:
        """A boto3 client for the moto server holding these resources."""
        return aws_client(service, self.endpoint)


def create_test_resources(endpoint: str, *, secret_prefix: str = "jwks-rotator-keyring", bucket_prefix: str = "jwks-rotator") -> AwsResources:
    """A fresh KMS-encrypted keyring secret (empty keyring), bucket and CloudFront distribution, named uniquely."""
    suffix = uuid.uuid4().hex[:10]
    created = create_resources(client_factory(endpoint), secret_name=f"{secret_prefix}-{suffix}", bucket=f"{bucket_prefix}-{suffix}")
    return AwsResources(endpoint, created.secret_id, created.bucket, created.distribution_id)

