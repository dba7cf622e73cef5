"""The rotate wiring over template.yaml deployed as a stack per region, with each function's own environment.

The settings come from the deployed functions' environments (as Lambda gives them), so this shows the template and
the wiring agree: the primary's writer reaches the second origin, the secondary's replicas and revocation list; the
secondary's rotate function writes nothing; the secondary's signer signs with the key the writer activated, from its
replica, and the token verifies against the second origin's JWKS. One pair of stacks for the module.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.bootstrap.sign import build_token_signer
from jwks_rotator.core.errors import NotPrimaryRegionError
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.template_stack import DeployedTemplate, deploy_template, teardown
from jwks_rotator_testkit.clock import FakeClock
from jwks_rotator_testkit.deploy import ACCOUNT_ID
from jwks_rotator_testkit.moto import aws_client, client_factory, regional_client_factory

pytestmark = pytest.mark.integration

PRIMARY, SECONDARY = "us-east-1", "eu-west-1"
ISSUER = "https://auth.example.com"


@dataclass(frozen=True)
class Pair:
    endpoint: str
    primary: DeployedTemplate
    secondary: DeployedTemplate

    def environment(self, region: str, function: str) -> dict[str, str]:
        stack = self.primary if region == PRIMARY else self.secondary
        configuration = aws_client("lambda", self.endpoint, region=region).get_function_configuration(
            FunctionName=stack.physical_id(function))
        variables: dict[str, str] = configuration["Environment"]["Variables"]
        return variables

    def settings(self, region: str, function: str = "RotateFunction") -> Settings:
        return Settings.from_env(self.environment(region, function))

    def jwks(self, region: str) -> bytes:
        stack = self.primary if region == PRIMARY else self.secondary
        body: bytes = aws_client("s3", self.endpoint, region=region).get_object(
            Bucket=stack.physical_id("JwksBucket"), Key=JWKS_PATH)["Body"].read()
        return body


@pytest.fixture(scope="module")
def pair(moto_endpoint: str) -> Iterator[Pair]:
    name = f"regions-wire-{uuid.uuid4().hex[:8]}"
    common = {"PrimaryRegion": PRIMARY, "Regions": f"{PRIMARY},{SECONDARY}", "Issuer": ISSUER, "Algorithm": "ES256"}
    secondary = deploy_template(client_factory(moto_endpoint, region=SECONDARY), name, common, region=SECONDARY, account_id=ACCOUNT_ID)
    primary = deploy_template(client_factory(moto_endpoint, region=PRIMARY), name, {
        **common, "SecondOriginBucket": secondary.physical_id("JwksBucket"), "SecondOriginRegion": SECONDARY,
        "SecondarySignRoleArns": secondary.outputs["SignFunctionRoleArn"], "SecondaryRotateRoleArns": secondary.outputs["RotateFunctionRoleArn"],
    }, region=PRIMARY, account_id=ACCOUNT_ID)
    yield Pair(moto_endpoint, primary, secondary)
    teardown(client_factory(moto_endpoint, region=PRIMARY), name, region=PRIMARY, account_id=ACCOUNT_ID)
    teardown(client_factory(moto_endpoint, region=SECONDARY), name, region=SECONDARY, account_id=ACCOUNT_ID)


def rotator(pair: Pair, region: str, clock: FakeClock) -> Any:
    return build_rotation_service(pair.settings(region), client_factory(pair.endpoint, region=region), clock=clock.now, region=region,
                                  regional_clients=regional_client_factory(pair.endpoint), monotonic=clock.monotonic,
                                  sleep=lambda _: None)


def test_the_deployed_writer_reaches_every_region_and_the_secondarys_signer_signs_from_its_replica(pair: Pair) -> None:
    clock = FakeClock()
    report = rotator(pair, PRIMARY, clock).tick()
    active = report.keyring.active
    assert active is not None and report.missing_origins == () and report.lagging_replicas == ()
    assert set(report.replication_lag) == {SECONDARY}  # the secondary's keyring replica, read back by the writer
    assert pair.jwks(PRIMARY) == pair.jwks(SECONDARY)  # both origins of the distribution's origin group
    parameter = pair.settings(PRIMARY).revocation_parameter
    for region in (PRIMARY, SECONDARY):  # each region's revocation list, written by the writer (SSM does not replicate)
        value = aws_client("ssm", pair.endpoint, region=region).get_parameter(Name=parameter)["Parameter"]["Value"]
        assert json.loads(value) == []

    signer = build_token_signer(pair.settings(SECONDARY, "SignFunction"), client_factory(pair.endpoint, region=SECONDARY))
    issued = signer.issue({"sub": "user-1", "aud": "orders-api", "ttl": 60})
    jwks = jwt.PyJWKSet.from_dict(json.loads(pair.jwks(SECONDARY)))
    claims = jwt.decode(issued.token, jwks[active.kid].key, algorithms=["ES256"], audience="orders-api", issuer=ISSUER)
    assert issued.kid == active.kid and claims["sub"] == "user-1"


def test_the_deployed_secondarys_rotate_function_writes_nothing(pair: Pair) -> None:
    clock = FakeClock()
    # Deployed before the primary existed, its stack could not name the primary's keyring (PrimaryKeyringSecretArn):
    # its replica's ARN, as a stack update would give it (its quiet tick reads it once).
    replica = pair.primary.outputs["KeyringSecretArn"].replace(f":{PRIMARY}:", f":{SECONDARY}:")
    secondary = build_rotation_service(pair.settings(SECONDARY).replace(keyring_secret_id=replica),
                                       client_factory(pair.endpoint, region=SECONDARY), clock=clock.now, region=SECONDARY,
                                       regional_clients=regional_client_factory(pair.endpoint), monotonic=clock.monotonic,
                                       sleep=lambda _: None)
    assert secondary.tick(coalesce=True).not_primary
    with pytest.raises(NotPrimaryRegionError):
        secondary.publish()
