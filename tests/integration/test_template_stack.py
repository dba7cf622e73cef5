"""template.yaml deployed with create_stack on the moto server: every resource created, the emulated types real, the repairs.

One stack per module (deploying is the slow part); each test reads what it needs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jwks_rotator.core.keys.keyring import EMPTY_KEYRING_JSON
from jwks_rotator_local.cfn_resources import EMULATED, distribution_config
from jwks_rotator_local.sam_template import translated_template
from jwks_rotator_local.template_stack import DeployedTemplate, deploy_template, teardown
from jwks_rotator_testkit.deploy import ACCOUNT_ID, deploy_test_stack
from jwks_rotator_testkit.moto import REGION, aws_client, client_factory


@pytest.fixture(scope="module")
def deployed(moto_endpoint: str) -> DeployedTemplate:
    return deploy_test_stack(moto_endpoint, stack_prefix="template-stack-test")


def client(moto_endpoint: str, service: str) -> Any:
    return aws_client(service, moto_endpoint)


def test_every_resource_of_the_translated_template_is_created_but_those_a_false_condition_leaves_out(deployed: DeployedTemplate) -> None:
    template = translated_template()
    conditional = {name for name, r in template["Resources"].items() if r.get("Condition") in ("HasAlarmEmail", "SignPublishesVersions")}
    # AlarmEmail is empty by default; SnapStart and provisioned concurrency are off (no published version, no alias)
    assert conditional == {"AlarmTopic", "AlarmTopicPolicy", "SignFunctionVersion", "SignFunctionAlias"}
    assert set(deployed.resources) == set(template["Resources"]) - conditional
    assert "SignFunctionAliasArn" not in deployed.outputs  # its condition is false: the outputs are those of before
    assert {r.type for r in deployed.resources.values()} >= {model.cloudformation_type() for model in EMULATED} - {"AWS::SNS::TopicPolicy"}
    for output in (name for name, spec in template["Outputs"].items() if spec.get("Condition") != "SignPublishesVersions"):
        assert deployed.outputs[output], output  # every output resolved, GetAtt on emulated types included


def test_the_secret_is_a_real_moto_secret_holding_the_templates_empty_keyring_under_its_key(deployed: DeployedTemplate, moto_endpoint: str) -> None:
    secret = deployed.resources["KeyringSecret"]
    assert secret.arn == secret.physical_id and secret.physical_id.startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:")
    sm = client(moto_endpoint, "secretsmanager")
    assert sm.get_secret_value(SecretId=secret.physical_id)["SecretString"] == EMPTY_KEYRING_JSON
    assert sm.describe_secret(SecretId=secret.physical_id)["KmsKeyId"] == deployed.physical_id("KeyringKey")
    assert deployed.outputs["KeyringSecretArn"] == secret.physical_id


def test_distribution_origin_access_control_alarms_and_schedule_exist_in_moto(deployed: DeployedTemplate, moto_endpoint: str) -> None:
    cloudfront = client(moto_endpoint, "cloudfront")
    distribution = cloudfront.get_distribution(Id=deployed.physical_id("Distribution"))["Distribution"]
    assert distribution["DomainName"] == deployed.outputs["DistributionDomainName"]
    [origin] = distribution["DistributionConfig"]["Origins"]["Items"]
    assert origin["DomainName"].startswith(deployed.physical_id("JwksBucket") + ".s3.")
    assert cloudfront.get_origin_access_control(Id=deployed.physical_id("OriginAccessControl"))["OriginAccessControl"]
    alarms = {a["AlarmName"]: a for a in client(moto_endpoint, "cloudwatch").describe_alarms()["MetricAlarms"]}
    burst = alarms[deployed.physical_id("SignRefusalBurstAlarm")]
    assert burst["Threshold"] == 20.0 and {m["Id"] for m in burst["Metrics"]} == {"refused", "unauthenticated", "notAllowed"}
    rotate_errors = alarms[deployed.physical_id("RotateErrorsAlarm")]
    assert rotate_errors["Dimensions"] == [{"Name": "FunctionName", "Value": deployed.physical_id("RotateFunction")}]
    schedule = client(moto_endpoint, "scheduler").get_schedule(Name=deployed.physical_id("RotateFunctionTick"))
    assert schedule["ScheduleExpression"] == "rate(15 minutes)"
    assert schedule["Target"]["Arn"] == deployed.resources["RotateFunction"].arn
    config = client(moto_endpoint, "lambda").get_function_event_invoke_config(FunctionName=deployed.physical_id("RotateFunction"))
    assert config["MaximumRetryAttempts"] == 2


def test_the_bucket_policy_is_kept_out_of_moto_and_stored_resolved_for_the_evaluator(deployed: DeployedTemplate, moto_endpoint: str) -> None:
    bucket = deployed.physical_id("JwksBucket")
    with pytest.raises(ClientError) as missing:
        client(moto_endpoint, "s3").get_bucket_policy(Bucket=bucket)
    assert missing.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    policy = deployed.resource_policies[("AWS::S3::Bucket", bucket)]
    tls_only = next(s for s in policy["Statement"] if s.get("Sid") == "TlsOnly")
    assert tls_only["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    assert tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # and moto serves object calls, as it could not with that Deny applied
    client(moto_endpoint, "s3").put_object(Bucket=bucket, Key=".well-known/probe", Body=b"x")


def test_key_policies_and_inline_role_policies_read_back_as_json(deployed: DeployedTemplate, moto_endpoint: str) -> None:
    kms = client(moto_endpoint, "kms")
    key_id = deployed.physical_id("KeyringKey")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"] == deployed.resources["KeyringKey"].arn
    statements = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])["Statement"]
    assert {s["Sid"] for s in statements} >= {"AccountAdministersTheKey"}
    assert all(isinstance(s, dict) for s in statements)  # AWS::NoValue (the break-glass role unset) leaves no hole
    iam = client(moto_endpoint, "iam")
    role = deployed.physical_id("SignFunctionRole")
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    assert "ReadTheRevocationList" in {s.get("Sid") for s in document["Statement"]}
    assert deployed.resources["SignFunctionRole"].arn == f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"


def test_the_functions_get_the_templates_environment_resolved(deployed: DeployedTemplate, moto_endpoint: str) -> None:
    lam = client(moto_endpoint, "lambda")
    for logical in ("SignFunction", "RotateFunction"):
        configuration = lam.get_function_configuration(FunctionName=deployed.physical_id(logical))
        variables = configuration["Environment"]["Variables"]
        assert variables["KEYRING_SECRET_ID"] == deployed.physical_id("KeyringSecret")
        assert variables["JWKS_BUCKET"] == deployed.physical_id("JwksBucket")
        assert variables["DISTRIBUTION_ID"] == deployed.physical_id("Distribution")
        assert variables["ISSUER"] == deployed.outputs["Issuer"] == f"https://{deployed.outputs['DistributionDomainName']}"
        assert variables["REVOCATION_PARAMETER"] == f"/jwks-rotator/{deployed.stack_name}/revoked-kids"
        assert configuration["Role"] == deployed.resources[f"{logical}Role"].arn


def test_a_stack_of_the_same_name_deploys_again_after_teardown(moto_endpoint: str) -> None:
    clients = client_factory(moto_endpoint)
    name = f"again-{uuid.uuid4().hex[:8]}"
    first = deploy_template(clients, name, {}, region=REGION, account_id=ACCOUNT_ID)
    teardown(clients, name, region=REGION, account_id=ACCOUNT_ID)
    with pytest.raises(ClientError):  # the retained secret went too
        clients("secretsmanager").describe_secret(SecretId=first.physical_id("KeyringSecret"))
    second = deploy_template(clients, name, {}, region=REGION, account_id=ACCOUNT_ID)  # the retained log group no longer collides
    assert second.physical_id("KeyringSecret") != first.physical_id("KeyringSecret")
    teardown(clients, name, region=REGION, account_id=ACCOUNT_ID)


def test_a_cloudformation_distribution_config_becomes_the_apis_shape() -> None:
    config = distribution_config(
        {
            "Enabled": True,
            "IPV6Enabled": False,
            "Aliases": ["auth.example.com"],
            "Origins": [{"Id": "o", "DomainName": "b.s3.us-east-1.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}],
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "https-only", "AllowedMethods": ["GET", "HEAD", "OPTIONS"], "CachedMethods": ["GET", "HEAD"]},
        },
        caller_reference="ref",
    )
    assert config["Aliases"] == {"Quantity": 1, "Items": ["auth.example.com"]}
    assert config["Origins"]["Quantity"] == 1 and config["IsIPV6Enabled"] is False and config["CallerReference"] == "ref"
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == {
        "Quantity": 3, "Items": ["GET", "HEAD", "OPTIONS"], "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
    }
