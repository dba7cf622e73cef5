"""A stack per region: what the primary's, a secondary's and a one-region stack get from the same template.

Each case renders template.yaml as CloudFormation would for one stack (:class:`tests.template.cfn.Rendering`: its
conditions decided, ``Fn::If`` chosen, ``AWS::NoValue`` dropped) and checks the parts docs/design/regions.md
("Shape", "Roles") names. cfn-lint and ``sam validate --lint`` check the template itself (``make check-template``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from jwks_rotator.adapters.sdk.observability import NAMESPACE
from tests.template.cfn import Rendering, as_list, policy_statements

ACCOUNT = "123456789012"
PRIMARY_KEYRING = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:KeyringSecret-AbC123dEf456-Xy9Zq1"
PRIMARY_ROTATE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/jwks-rotator-RotateFunctionRole-PRIMARY"
SECONDARY_SIGN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/jwks-rotator-SignFunctionRole-EUWEST1"
SECONDARY_ROTATE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/jwks-rotator-RotateFunctionRole-EUWEST1"
ISSUER = "https://auth.example.com"

# The resources of a one-region stack before several regions existed: each keeps its logical id and type, so an update
# replaces nothing (CloudFormation replaces a resource whose logical id or type changes).
SINGLE_REGION_RESOURCES = {
    "KeyringKey": "AWS::KMS::Key", "KeyringKeyAlias": "AWS::KMS::Alias", "KeyringSecret": "AWS::SecretsManager::Secret",
    "SigningKeySecret": "AWS::SecretsManager::Secret", "KeyringSecretPolicy": "AWS::SecretsManager::ResourcePolicy",
    "SigningKeySecretPolicy": "AWS::SecretsManager::ResourcePolicy", "JwksBucket": "AWS::S3::Bucket",
    "JwksBucketPolicy": "AWS::S3::BucketPolicy", "OriginAccessControl": "AWS::CloudFront::OriginAccessControl",
    "Distribution": "AWS::CloudFront::Distribution", "SharedLayer": "AWS::Serverless::LayerVersion",
    "TickScheduleRole": "AWS::IAM::Role", "RotateDeadLetterQueue": "AWS::SQS::Queue", "RotateLogGroup": "AWS::Logs::LogGroup",
    "SignLogGroup": "AWS::Logs::LogGroup", "AuditLogKey": "AWS::KMS::Key", "AuditLogKeyAlias": "AWS::KMS::Alias",
    "RotateFunction": "AWS::Serverless::Function", "SignFunction": "AWS::Serverless::Function",
    "SignInvokePermission": "AWS::Lambda::Permission", "SignInvokePolicy": "AWS::IAM::ManagedPolicy",
    "RotateErrorsAlarm": "AWS::CloudWatch::Alarm", "SignErrorsAlarm": "AWS::CloudWatch::Alarm",
    "RotateDeadLetterAlarm": "AWS::CloudWatch::Alarm", "SignRefusalBurstAlarm": "AWS::CloudWatch::Alarm",
    "ProofRateLimitedAlarm": "AWS::CloudWatch::Alarm", "RevocationListRepairedAlarm": "AWS::CloudWatch::Alarm",
    "SignerUnavailableAlarm": "AWS::CloudWatch::Alarm", "StaleActiveKeyAlarm": "AWS::CloudWatch::Alarm",
    "RotationNeedsOperatorAlarm": "AWS::CloudWatch::Alarm",
}
PRIMARY_ONLY = {"KeyringSecret", "SigningKeySecret", "KeyringSecretPolicy", "SigningKeySecretPolicy", "OriginAccessControl", "Distribution"}


def primary(template: dict[str, Any], regions: str = "us-east-1,eu-west-1", **more: str) -> Rendering:
    return Rendering(template, {"PrimaryRegion": "us-east-1", "Regions": regions, "Issuer": ISSUER, **more}, region="us-east-1")


def secondary(template: dict[str, Any], region: str = "eu-west-1", **more: str) -> Rendering:
    parameters = {"PrimaryRegion": "us-east-1", "Regions": "us-east-1,eu-west-1", "Issuer": ISSUER,
                  "PrimaryKeyringSecretArn": PRIMARY_KEYRING, "PrimaryRotateRoleArn": PRIMARY_ROTATE_ROLE, **more}
    return Rendering(template, parameters, region=region)


def resolved_sub(rendering: Rendering, value: Any) -> str:
    """A ``Sub`` whose variables are evaluable (parameters, Select/Split of them) as its text, pseudo parameters kept."""
    text, variables = value["Fn::Sub"] if isinstance(value["Fn::Sub"], list) else (value["Fn::Sub"], {})
    for name, variable in variables.items():
        text = text.replace("${" + name + "}", str(rendering.evaluate(variable)))
    return str(text)


def statements_by_sid(resources: dict[str, Any], function: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for name, s in policy_statements(resources) if name == function and "Sid" in s}


# --------------------------------------------------------------------------- one region
def test_a_one_region_stack_keeps_every_resource_its_logical_id_type_and_name(single_region: Rendering) -> None:
    resources = single_region.resources
    assert {k: resources[k]["Type"] for k in SINGLE_REGION_RESOURCES} == SINGLE_REGION_RESOURCES
    assert "Name" not in resources["KeyringSecret"]["Properties"]  # named by CloudFormation, as before: no replacement
    assert resources["SigningKeySecret"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-signing-key"}
    assert resources["KeyringKeyAlias"]["Properties"]["AliasName"] == {"Fn::Sub": "alias/${AWS::StackName}-keyring"}
    assert resources["RotateLogGroup"]["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-rotate"}
    assert resources["SignLogGroup"]["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-sign"}
    for secret in ("KeyringSecret", "SigningKeySecret"):
        assert "ReplicaRegions" not in resources[secret]["Properties"]
    config = resources["Distribution"]["Properties"]["DistributionConfig"]
    assert [o["Id"] for o in config["Origins"]] == ["jwks-bucket"] and "OriginGroups" not in config
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "jwks-bucket"
    assert resources["RotateFunction"]["Properties"]["Events"]["Tick"]["Properties"]["State"] == "ENABLED"
    environment = single_region.environment("RotateFunction")
    assert environment["KEYRING_SECRET_ID"] == {"Ref": "KeyringSecret"} and environment["DISTRIBUTION_ID"] == {"Ref": "Distribution"}
    assert environment["SIGNING_SECRET_ID"] == {"Ref": "SigningKeySecret"}
    rotate = statements_by_sid(resources, "RotateFunction")
    assert not {"ReadEveryRegionsReplicas", "WriteTheSecondOrigin", "ReplicateStackTaggedKeysToTheRegions", "ReadThisRegionsReplicas"} & set(rotate)
    assert rotate["KeepTheRevocationList"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/jwks-rotator/${AWS::StackName}/revoked-kids"}


def test_a_primary_region_without_other_regions_is_a_one_region_stack(template: dict[str, Any], single_region: Rendering) -> None:
    """PrimaryRegion naming the stack's own region and no Regions: nothing of several regions is deployed."""
    named = Rendering(template, {"PrimaryRegion": "us-east-1", "Issuer": ISSUER}, region="us-east-1")
    assert named.resources.keys() == single_region.resources.keys()
    assert named.resources["KeyringSecret"] == single_region.resources["KeyringSecret"]
    assert named.resources["Distribution"] == single_region.resources["Distribution"]


# --------------------------------------------------------------------------- a secondary region
def test_a_secondary_stack_has_no_secrets_no_distribution_and_reads_the_replicas(template: dict[str, Any]) -> None:
    stack = secondary(template)
    resources = stack.resources
    assert not PRIMARY_ONLY & set(resources)
    assert {"KeyringKey", "KeyringKeyAlias", "JwksBucket", "JwksBucketPolicy", "SignFunction", "RotateFunction", "SignLogGroup",
            "RotateLogGroup", "RevocationReachAlarm", "StaleActiveKeyAlarm"} <= set(resources)
    assert resources["KeyringKeyAlias"]["Properties"]["AliasName"] == {"Fn::Sub": "alias/${AWS::StackName}-keyring"}  # the replicas' key
    assert resources["RotateFunction"]["Properties"]["Events"]["Tick"]["Properties"]["State"] == "DISABLED"
    environment = stack.environment("RotateFunction")
    # The keyring's replica: the primary's secret name and suffix, this region.
    assert resolved_sub(stack, environment["KEYRING_SECRET_ID"]) == (
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:KeyringSecret-AbC123dEf456-Xy9Zq1")
    assert environment["SIGNING_SECRET_ID"] == {"Fn::Sub": "${AWS::StackName}-signing-key"}
    assert environment["DISTRIBUTION_ID"] == {"Ref": "PrimaryDistributionId"}  # what it invalidates once promoted
    assert environment["ISSUER"] == {"Ref": "Issuer"}
    assert environment["PRIMARY_REGION"] == {"Ref": "PrimaryRegion"} and environment["JWKS_BUCKET"] == {"Ref": "JwksBucket"}
    assert stack.environment("SignFunction")["SIGNING_SECRET_ID"] == {"Fn::Sub": "${AWS::StackName}-signing-key"}
    everything = json.dumps([resources, stack.outputs, stack.environment("SignFunction"), environment])
    for logical in PRIMARY_ONLY:  # nothing left that names a resource the stack lacks
        assert f'"Ref": "{logical}"' not in everything and f"${{{logical}" not in everything and f'["{logical}", ' not in everything, logical


def test_a_secondary_stack_has_the_same_issuer_and_jwks_url_and_the_replicas_outputs(template: dict[str, Any]) -> None:
    outputs = secondary(template).outputs
    assert outputs["Issuer"]["Value"] == {"Ref": "Issuer"}
    assert outputs["JwksUrl"]["Value"] == {"Fn::Sub": "${Issuer}/.well-known/jwks.json"}
    assert {"SignFunctionName", "SignFunctionArn", "RotateFunctionName", "JwksBucketName", "KeyringSecretArn", "SigningSecretName",
            "SignFunctionRoleArn", "RotateFunctionRoleArn"} <= set(outputs)
    assert not {"DistributionId", "DistributionDomainName", "SigningSecretArn"} & set(outputs)
    assert outputs["KeyringSecretArn"]["Value"]["Fn::Sub"][0].startswith("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:")
    assert primary(template).outputs["JwksUrl"]["Value"] == outputs["JwksUrl"]["Value"]


def test_a_secondary_bucket_is_written_by_the_primary_writer_and_read_by_the_primary_distribution(template: dict[str, Any]) -> None:
    before = secondary(template).resources["JwksBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert not [s for s in before if s["Effect"] == "Allow"]  # no distribution named yet: nobody reads it
    stack = secondary(template, PrimaryDistributionId="E1A2B3C4D5E6F7")
    statements = {s["Sid"]: s for s in stack.resources["JwksBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    read = statements["CloudFrontReadsWellKnownOnly"]
    assert read["Resource"] == {"Fn::Sub": "${JwksBucket.Arn}/.well-known/*"} and read["Action"] == "s3:GetObject"
    assert read["Condition"]["StringEquals"]["AWS:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${PrimaryDistributionId}"}
    assert statements["OnlyTheRotateRoleWrites"]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [
        {"Fn::GetAtt": ["RotateFunctionRole", "Arn"]}, {"Ref": "PrimaryRotateRoleArn"}]


def test_a_secondary_key_lets_the_primary_writer_use_it_through_secrets_manager_only(template: dict[str, Any]) -> None:
    statements = {s["Sid"]: s for s in secondary(template).resources["KeyringKey"]["Properties"]["KeyPolicy"]["Statement"]}
    writer = statements["PrimaryRotateRoleUsesTheKeyThroughSecretsManager"]
    assert writer["Principal"] == {"AWS": {"Ref": "PrimaryRotateRoleArn"}}
    assert writer["Condition"]["StringEquals"]["kms:ViaService"] == {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
    assert "PrimaryRotateRoleUsesTheKeyThroughSecretsManager" not in json.dumps(primary(template).resources["KeyringKey"])


def test_a_secondary_roles_identity_policies_grant_only_promote_its_own_regions_replicas(template: dict[str, Any]) -> None:
    """Reads are granted on the secrets (the replicated policies); the rotate role's own stack grants it promote's calls
    on its own region's two replicas, by name (no cycle here: the name comes from PrimaryKeyringSecretArn). A replica
    refuses writes until promote makes it standalone. tests/privilege decides the calls per region."""
    resources = secondary(template).resources
    sign = {a for name, s in policy_statements(resources) if name == "SignFunction" for a in as_list(s["Action"])}
    assert not {a for a in sign if a.startswith("secretsmanager:")}
    rotate = [s for name, s in policy_statements(resources) if name == "RotateFunction"
              if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
    (promote,) = rotate
    assert promote["Sid"] == "PromoteTheReplicasHere" and promote["Effect"] == "Allow"
    assert set(as_list(promote["Action"])) == {"secretsmanager:DescribeSecret", "secretsmanager:StopReplicationToReplica",
                                               "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                                               "secretsmanager:UpdateSecretVersionStage"}
    assert all("${AWS::Region}" in json.dumps(resource) for resource in as_list(promote["Resource"]))  # its own region only
    assert "InvalidateTheDistribution" not in statements_by_sid(resources, "RotateFunction")  # no PrimaryDistributionId yet
    sign_key = {s["Sid"]: s for s in resources["KeyringKey"]["Properties"]["KeyPolicy"]["Statement"]}["SignRoleDecryptsTheSigningViewOnly"]
    assert sign_key["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"] == {"Fn::Sub": (
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}-signing-key-??????")}


def test_a_promoted_secondary_may_write_the_primarys_two_documents_and_invalidate_its_distribution(template: dict[str, Any]) -> None:
    """Its second origin is the other one, the primary's bucket: once promoted it writes both origins (docs/regions.md)."""
    stack = secondary(template, PrimaryDistributionId="E1A2B3C4D5E6F7", SecondOriginBucket="jwks-us", SecondOriginRegion="us-east-1")
    rotate = statements_by_sid(stack.resources, "RotateFunction")
    assert [r["Fn::Sub"] for r in rotate["WriteTheSecondOrigin"]["Resource"]] == [
        "arn:${AWS::Partition}:s3:::${SecondOriginBucket}/.well-known/jwks.json",
        "arn:${AWS::Partition}:s3:::${SecondOriginBucket}/.well-known/openid-configuration"]
    assert set(as_list(rotate["WriteTheSecondOrigin"]["Action"])) == {"s3:GetObject", "s3:PutObject"}
    assert rotate["SeeMissingDocumentsAtTheSecondOrigin"]["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${SecondOriginBucket}"}
    assert rotate["InvalidateTheDistribution"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${PrimaryDistributionId}"}
    assert "Distribution" not in stack.resources  # the origin group lives in the primary's stack, with the distribution


def test_the_primarys_bucket_lets_the_secondaries_rotate_roles_write_the_two_documents_and_nothing_else(template: dict[str, Any]) -> None:
    stack = primary(template, SecondaryRotateRoleArns=SECONDARY_ROTATE_ROLE)
    statements = {s["Sid"]: s for s in stack.resources["JwksBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["OnlyTheRotateRoleWrites"]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == {
        "Fn::Split": [",", {"Fn::Sub": "${RotateFunctionRole.Arn},${SecondaryRotateRoleArns}"}]}
    only = statements["SecondariesWriteTheTwoDocumentsOnly"]
    assert only["Effect"] == "Deny" and set(as_list(only["Action"])) == set(as_list(statements["OnlyTheRotateRoleWrites"]["Action"]))
    assert only["NotResource"] == [{"Fn::Sub": "${JwksBucket.Arn}/.well-known/jwks.json"},
                                   {"Fn::Sub": "${JwksBucket.Arn}/.well-known/openid-configuration"}]
    assert only["Condition"] == {"ArnEquals": {"aws:PrincipalArn": {"Fn::Split": [",", {"Ref": "SecondaryRotateRoleArns"}]}}}
    alone = {s["Sid"]: s for s in primary(template).resources["JwksBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    assert "SecondariesWriteTheTwoDocumentsOnly" not in alone
    assert alone["OnlyTheRotateRoleWrites"]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == {"Fn::GetAtt": ["RotateFunctionRole", "Arn"]}


# --------------------------------------------------------------------------- the primary
@pytest.mark.parametrize("regions", [
    "us-east-1,eu-west-1", "us-east-1,eu-west-1,ap-southeast-2", "eu-west-1,us-east-1,ap-southeast-2",
    "eu-west-1,ap-southeast-2,eu-central-1,sa-east-1,us-east-1",
])
def test_the_primary_replicates_both_secrets_to_every_region_but_itself(template: dict[str, Any], regions: str) -> None:
    stack = primary(template, regions)
    resources = stack.resources
    for secret in ("KeyringSecret", "SigningKeySecret"):
        replicas = resources[secret]["Properties"]["ReplicaRegions"]
        assert [stack.evaluate(r["Region"]) for r in replicas] == [r for r in regions.split(",") if r != "us-east-1"]
        assert all(r["KmsKeyId"] == {"Fn::Sub": "alias/${AWS::StackName}-keyring"} for r in replicas)
    assert resources["RotateFunction"]["Properties"]["Events"]["Tick"]["Properties"]["State"] == "ENABLED"


def test_regions_hold_at_most_as_many_as_the_template_replicates_to(template: dict[str, Any]) -> None:
    pattern = template["Parameters"]["Regions"]["AllowedPattern"]
    five = "us-east-1,eu-west-1,ap-southeast-2,eu-central-1,sa-east-1"
    assert re.fullmatch(pattern, five) and not re.fullmatch(pattern, five + ",us-west-2") and re.fullmatch(pattern, "")
    assert {f"ReplicaRegion{i}" for i in range(5)} <= set(template["Conditions"])  # one per position a replica can take


def test_the_primary_distribution_fails_over_between_two_origins_on_the_stated_codes(template: dict[str, Any]) -> None:
    config = primary(template, SecondOriginBucket="jwks-eu", SecondOriginRegion="eu-west-1").resources["Distribution"]["Properties"][
        "DistributionConfig"]
    first, second = config["Origins"]
    assert second["DomainName"] == {"Fn::Sub": "${SecondOriginBucket}.s3.${SecondOriginRegion}.amazonaws.com"}
    assert first["OriginAccessControlId"] == second["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
    (group,) = config["OriginGroups"]["Items"]
    assert config["OriginGroups"]["Quantity"] == 1
    assert group["FailoverCriteria"]["StatusCodes"] == {"Quantity": 6, "Items": [403, 404, 500, 502, 503, 504]}
    assert group["Members"] == {"Quantity": 2, "Items": [{"OriginId": first["Id"]}, {"OriginId": second["Id"]}]}
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == group["Id"]
    assert set(config["DefaultCacheBehavior"]["AllowedMethods"]) <= {"GET", "HEAD", "OPTIONS"}  # origin groups fail over these only


def test_the_primary_writer_may_reach_every_region_and_the_second_origin_by_name(template: dict[str, Any]) -> None:
    stack = primary(template, SecondOriginBucket="jwks-eu", SecondOriginRegion="eu-west-1")
    rotate = statements_by_sid(stack.resources, "RotateFunction")
    assert [r["Fn::Sub"] for r in rotate["WriteTheSecondOrigin"]["Resource"]] == [
        "arn:${AWS::Partition}:s3:::${SecondOriginBucket}/.well-known/jwks.json",
        "arn:${AWS::Partition}:s3:::${SecondOriginBucket}/.well-known/openid-configuration"]
    assert "ReadEveryRegionsReplicas" not in rotate  # the replicas are granted on themselves: their policies are replicated
    assert rotate["KeepTheRevocationList"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter/jwks-rotator/${AWS::StackName}/revoked-kids"}
    replicate = rotate["ReplicateStackTaggedKeysToTheRegions"]
    assert replicate["Action"] == "kms:ReplicateKey"
    assert replicate["Condition"]["StringEquals"] == {"aws:ResourceTag/jwks-rotator:stack": {"Ref": "AWS::StackName"},
                                                      "kms:ReplicaRegion": {"Fn::Split": [",", {"Ref": "Regions"}]}}
    for sid in ("ManageOnlyStackTaggedKeys", "TagStackKeysWithTheirKid", "NoTagChangesOnOtherKeys"):
        assert rotate[sid]["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/*"}, sid
    assert rotate["CreateOnlyStackTaggedSigningKeys"]["Condition"]["StringEquals"]["kms:KeyOrigin"] == "AWS_KMS"  # kept as is


def test_the_replicated_policies_name_every_regions_roles_and_no_one_else(template: dict[str, Any]) -> None:
    stack = primary(template, SecondarySignRoleArns=SECONDARY_SIGN_ROLE, SecondaryRotateRoleArns=SECONDARY_ROTATE_ROLE)
    signing = {s["Sid"]: s for s in stack.resources["SigningKeySecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"]}
    readers = signing["SignRoleReadsTheCurrentSigningView"]["Principal"]["AWS"]
    assert readers == {"Fn::Split": [",", {"Fn::Sub": "${SignFunctionRole.Arn},${SecondarySignRoleArns}"}]}
    assert signing["SignRoleReadsNoOtherVersion"]["Principal"]["AWS"] == readers
    own_account = {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}  # a foreign role named there reads nothing
    assert signing["SecondaryRotateRolesReadTheirReplica"]["Condition"] == {
        "StringNotEquals": {"aws:RequestedRegion": {"Ref": "AWS::Region"}}, **own_account}
    assert signing["SignRoleReadsTheCurrentSigningView"]["Condition"]["StringEquals"] == own_account["StringEquals"]
    keyring = {s["Sid"]: s for s in stack.resources["KeyringSecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"]}
    assert "SecondarySignRoleArns" not in json.dumps(keyring)  # no signer of any region reads the keyring
    assert keyring["NoSecondaryRoleWrites"]["Effect"] == "Deny"
    assert {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"} <= set(keyring["NoSecondaryRoleWrites"]["Action"])
    plain = {s["Sid"] for s in primary(template).resources["SigningKeySecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"]}
    assert "SecondaryRotateRolesReadTheirReplica" not in plain


def test_the_revocation_reach_alarm_watches_every_region_in_the_rotation_namespace(template: dict[str, Any]) -> None:
    for stack in (primary(template), secondary(template), Rendering(template)):
        alarm = stack.resources["RevocationReachAlarm"]["Properties"]
        namespace = stack.resources["StaleActiveKeyAlarm"]["Properties"]["Namespace"]
        assert namespace == NAMESPACE  # where the writer's Metrics put RevocationReach (adapters/sdk/rotation_metrics.py)
        (query,) = alarm["Metrics"]
        assert query["Expression"] == f"SELECT MAX(RevocationReach) FROM {namespace}" and query["ReturnData"] is True
        assert alarm["Threshold"] == {"Ref": "RevocationReachAlarmThreshold"}
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["TreatMissingData"] == "notBreaching"
    assert template["Parameters"]["RevocationReachAlarmThreshold"]["Default"] == 300


def test_the_rules_refuse_a_secondary_without_the_primarys_names_and_regions_without_an_issuer(template: dict[str, Any]) -> None:
    rules = template["Rules"]
    secondary_rule = rules["SecondaryNeedsThePrimary"]
    assert secondary_rule["RuleCondition"]["Fn::And"][1] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "PrimaryRegion"}, {"Ref": "AWS::Region"}]}]}
    asserted = {json.dumps(a["Assert"]) for a in secondary_rule["Assertions"]}
    assert asserted == {json.dumps({"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}) for name in ("PrimaryKeyringSecretArn", "PrimaryRotateRoleArn")}
    assert rules["PrimaryRegionNeedsIssuer"]["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Issuer"}, ""]}]}
    assert rules["RegionsNeedPrimaryRegion"]["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Regions"}, ""]}]}
