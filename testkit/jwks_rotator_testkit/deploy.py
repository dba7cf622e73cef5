"""template.yaml deployed on a moto server for one test (or one interop deployment): its keyring secret, bucket, distribution.

Each call creates a stack of its own (a unique name) from template.yaml itself,
translated and created with ``cloudformation.create_stack``
(:func:`jwks_rotator_local.template_stack.deploy_template`), so a test's secret
holds exactly the template's empty keyring, encrypted with the template's key,
and its bucket has the template's versioning and public access block. The moto
server must run in this process (``jwks_rotator_testkit.moto.moto_server``):
the types moto lacks are emulated in-process.

A whole local deployment (functions, Lambda API, edge, schedule) is
``jwks_rotator_local.local_stack.LocalStack``, a context manager of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from jwks_rotator_local.provision import create_revocation_parameter
from jwks_rotator_local.template_stack import DeployedTemplate, deploy_template

from .moto import REGION, aws_client, client_factory

ACCOUNT_ID = "123456789012"
"""moto's default account."""


@dataclass(frozen=True)
class AwsResources:
    """One test's own keyring secret, bucket and distribution on a moto server (the resources of its own stack)."""

    endpoint: str
    secret_id: str
    bucket: str
    distribution_id: str
    stack_name: str = ""
    revocation_parameter: str = ""
    """The stack's revocation list (``/jwks-rotator/STACK/revoked-kids``), created empty as the rotator's first tick
    would: a signer given it reads an empty list, whatever other tests left on the shared moto server."""

    def client(self, service: str) -> Any:
        """A boto3 client for the moto server holding these resources."""
        return aws_client(service, self.endpoint)


def deploy_test_stack(endpoint: str, *, stack_prefix: str = "jwks-rotator-test", parameters: dict[str, str] | None = None) -> DeployedTemplate:
    """template.yaml as a stack named ``STACK_PREFIX-<random>`` on the moto server at ``endpoint``."""
    name = f"{stack_prefix}-{uuid.uuid4().hex[:10]}"
    return deploy_template(client_factory(endpoint), name, parameters or {}, region=REGION, account_id=ACCOUNT_ID)


def create_test_resources(endpoint: str, *, stack_prefix: str = "jwks-rotator-test") -> AwsResources:
    """A fresh stack of template.yaml: its KMS-encrypted keyring secret (empty keyring), bucket and CloudFront distribution."""
    deployed = deploy_test_stack(endpoint, stack_prefix=stack_prefix)
    revocation_parameter = f"/jwks-rotator/{deployed.stack_name}/revoked-kids"
    create_revocation_parameter(client_factory(endpoint), revocation_parameter)
    return AwsResources(
        endpoint,
        deployed.physical_id("KeyringSecret"),
        deployed.physical_id("JwksBucket"),
        deployed.physical_id("Distribution"),
        deployed.stack_name,
        revocation_parameter,
    )
