"""template.yaml deployed as a stack per region on the moto server: a secondary's stack, then the primary's replicating to it.

The deployer creates stacks only (no updates), so the order is the local cloud's: the secondary first (it creates the
keyring key alias its replicas are encrypted under), then the primary with Regions, the second origin and the
secondary's roles. One pair of stacks for the module (deploying is the slow part).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError

from jwks_rotator.core.keys.keyring import EMPTY_KEYRING_JSON
from jwks_rotator_local.template_stack import DeployedTemplate, TemplateDeployError, deploy_template, teardown
from jwks_rotator_testkit.deploy import ACCOUNT_ID
from jwks_rotator_testkit.moto import aws_client, client_factory

PRIMARY, SECONDARY = "us-east-1", "eu-west-1"
ISSUER = "https://auth.example.com"


@dataclass(frozen=True)
class Pair:
    primary: DeployedTemplate
    secondary: DeployedTemplate


@pytest.fixture(scope="module")
def pair(moto_endpoint: str) -> Iterator[Pair]:
    name = f"regions-test-{uuid.uuid4().hex[:8]}"
    common = {"PrimaryRegion": PRIMARY, "Regions": f"{PRIMARY},{SECONDARY}", "Issuer": ISSUER}
    secondary = deploy_template(client_factory(moto_endpoint, region=SECONDARY), name, common, region=SECONDARY, account_id=ACCOUNT_ID)
    primary = deploy_template(client_factory(moto_endpoint, region=PRIMARY), name, {
        **common, "SecondOriginBucket": secondary.physical_id("JwksBucket"), "SecondOriginRegion": SECONDARY,
        "SecondarySignRoleArns": secondary.outputs["SignFunctionRoleArn"], "SecondaryRotateRoleArns": secondary.outputs["RotateFunctionRoleArn"],
    }, region=PRIMARY, account_id=ACCOUNT_ID)
    yield Pair(primary, secondary)
    teardown(client_factory(moto_endpoint, region=PRIMARY), name, region=PRIMARY, account_id=ACCOUNT_ID)
    teardown(client_factory(moto_endpoint, region=SECONDARY), name, region=SECONDARY, account_id=ACCOUNT_ID)


def test_the_secondary_has_no_secrets_or_distribution_and_its_schedule_is_off(pair: Pair, moto_endpoint: str) -> None:
    assert not {"KeyringSecret", "SigningKeySecret", "Distribution", "OriginAccessControl"} & set(pair.secondary.resources)
    assert {"KeyringKey", "JwksBucket", "SignFunction", "RotateFunction", "RevocationReachAlarm"} <= set(pair.secondary.resources)
    schedule = aws_client("scheduler", moto_endpoint, region=SECONDARY).get_schedule(Name=pair.secondary.physical_id("RotateFunctionTick"))
    assert schedule["State"] == "DISABLED"
    primary_schedule = aws_client("scheduler", moto_endpoint, region=PRIMARY).get_schedule(Name=pair.primary.physical_id("RotateFunctionTick"))
    assert primary_schedule["State"] == "ENABLED"
    assert pair.secondary.outputs["JwksUrl"] == pair.primary.outputs["JwksUrl"] == f"{ISSUER}/.well-known/jwks.json"
    assert pair.secondary.outputs["Issuer"] == pair.primary.outputs["Issuer"] == ISSUER
    assert "DistributionId" not in pair.secondary.outputs


def test_the_primary_replicates_both_secrets_to_the_secondary_under_its_keyring_alias(pair: Pair, moto_endpoint: str) -> None:
    here, there = (aws_client("secretsmanager", moto_endpoint, region=r) for r in (PRIMARY, SECONDARY))
    for logical in ("KeyringSecret", "SigningKeySecret"):
        arn = pair.primary.physical_id(logical)
        (status,) = here.describe_secret(SecretId=arn)["ReplicationStatus"]
        assert (status["Region"], status["Status"], status["KmsKeyId"]) == (SECONDARY, "InSync", f"alias/{pair.primary.stack_name}-keyring")
        replica = arn.replace(f":{PRIMARY}:", f":{SECONDARY}:")
        assert there.get_secret_value(SecretId=replica)["SecretString"] == EMPTY_KEYRING_JSON
    # What a secondary deployed again with the primary's KeyringSecretArn names as its keyring: the replica.
    assert pair.primary.outputs["SigningSecretName"] == pair.secondary.outputs["SigningSecretName"] == f"{pair.primary.stack_name}-signing-key"


def test_the_primary_distribution_has_the_origin_group_over_both_buckets(pair: Pair, moto_endpoint: str) -> None:
    config = aws_client("cloudfront", moto_endpoint).get_distribution(Id=pair.primary.outputs["DistributionId"])["Distribution"]["DistributionConfig"]
    domains = [o["DomainName"] for o in config["Origins"]["Items"]]
    assert domains == [f"{pair.primary.physical_id('JwksBucket')}.s3.{PRIMARY}.amazonaws.com",
                       f"{pair.secondary.physical_id('JwksBucket')}.s3.{SECONDARY}.amazonaws.com"]
    (group,) = config["OriginGroups"]["Items"]
    assert group["FailoverCriteria"]["StatusCodes"]["Items"] == [403, 404, 500, 502, 503, 504]
    assert [m["OriginId"] for m in group["Members"]["Items"]] == [o["Id"] for o in config["Origins"]["Items"]]
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == group["Id"]


def test_the_secondarys_environment_and_outputs_name_the_replicas(moto_endpoint: str, pair: Pair) -> None:
    """A secondary deployed with the primary's names (the second pass of the local cloud): its keyring is the replica."""
    name = f"regions-test-{uuid.uuid4().hex[:8]}"
    keyring = pair.primary.physical_id("KeyringSecret")
    again = deploy_template(client_factory(moto_endpoint, region="ap-southeast-2"), name, {
        "PrimaryRegion": PRIMARY, "Regions": f"{PRIMARY},ap-southeast-2", "Issuer": ISSUER, "PrimaryKeyringSecretArn": keyring,
        "PrimaryRotateRoleArn": pair.primary.outputs["RotateFunctionRoleArn"], "PrimaryDistributionId": pair.primary.outputs["DistributionId"],
    }, region="ap-southeast-2", account_id=ACCOUNT_ID)
    try:
        replica = keyring.replace(f":{PRIMARY}:", ":ap-southeast-2:")
        assert again.outputs["KeyringSecretArn"] == replica
        function = aws_client("lambda", moto_endpoint, region="ap-southeast-2").get_function_configuration(
            FunctionName=again.physical_id("RotateFunction"))
        environment = function["Environment"]["Variables"]
        assert environment["KEYRING_SECRET_ID"] == replica
        assert environment["DISTRIBUTION_ID"] == pair.primary.outputs["DistributionId"]  # what it invalidates once promoted
        assert environment["SIGNING_SECRET_ID"] == f"{name}-signing-key" and environment["ISSUER"] == ISSUER
        policy = again.resource_policies[("AWS::S3::Bucket", again.physical_id("JwksBucket"))]
        read = next(s for s in policy["Statement"] if s.get("Sid") == "CloudFrontReadsWellKnownOnly")
        assert read["Condition"]["StringEquals"]["AWS:SourceArn"].endswith(f":distribution/{pair.primary.outputs['DistributionId']}")
    finally:
        teardown(client_factory(moto_endpoint, region="ap-southeast-2"), name, region="ap-southeast-2", account_id=ACCOUNT_ID)


def test_a_primary_replicating_to_a_region_without_the_keyring_alias_fails_naming_the_order(moto_endpoint: str) -> None:
    name = f"regions-test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(TemplateDeployError, match="deploy that region's stack first"):
        deploy_template(client_factory(moto_endpoint, region=PRIMARY), name, {
            "PrimaryRegion": PRIMARY, "Regions": f"{PRIMARY},sa-east-1", "Issuer": ISSUER}, region=PRIMARY, account_id=ACCOUNT_ID)
    teardown(client_factory(moto_endpoint, region=PRIMARY), name, region=PRIMARY, account_id=ACCOUNT_ID)


def test_teardown_takes_the_replicas_out_before_deleting_the_primary_secret(moto_endpoint: str) -> None:
    name = f"regions-test-{uuid.uuid4().hex[:8]}"
    common = {"PrimaryRegion": PRIMARY, "Regions": f"{PRIMARY},eu-central-1", "Issuer": ISSUER}
    deploy_template(client_factory(moto_endpoint, region="eu-central-1"), name, common, region="eu-central-1", account_id=ACCOUNT_ID)
    primary = deploy_template(client_factory(moto_endpoint, region=PRIMARY), name, common, region=PRIMARY, account_id=ACCOUNT_ID)
    keyring = primary.physical_id("KeyringSecret")
    teardown(client_factory(moto_endpoint, region=PRIMARY), name, region=PRIMARY, account_id=ACCOUNT_ID)
    teardown(client_factory(moto_endpoint, region="eu-central-1"), name, region="eu-central-1", account_id=ACCOUNT_ID)
    for region, arn in ((PRIMARY, keyring), ("eu-central-1", keyring.replace(f":{PRIMARY}:", ":eu-central-1:"))):
        with pytest.raises(ClientError):
            aws_client("secretsmanager", moto_endpoint, region=region).describe_secret(SecretId=arn)
