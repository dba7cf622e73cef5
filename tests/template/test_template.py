"""The SAM template agrees with the code: settings, env vars, least privilege, contracts.

Runs with the dev .venv (no SAM tooling): the template is read by tests/template/cfn.py, which
understands CloudFormation's short tags (!Ref, !Sub, !GetAtt ...). ``make check-template``
runs cfn-lint, sam validate, sam build and checkov on the same file. The sample events are
checked in test_events.py, the caller-identity parts (policy file, audit log group, alarms,
the layer's pinned requirements) in test_sign_callers.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from typing import Any

import pytest

from jwks_rotator.core.durations import parse_duration
from jwks_rotator.core.keys.algorithms import RSA_KEY_SIZES, algorithm_names
from jwks_rotator.core.keys.keyring import EMPTY_KEYRING_JSON
from jwks_rotator.core.lifecycle.operations import parse_rotate_event
from jwks_rotator.core.settings import FUNCTIONS, KEY_CUSTODIES, SETTINGS, Settings, StackValue
from tests.template.cfn import ROOT, as_list, cfn_value, function_environment, policy_statements

# Settings that name what the stack creates (resources, its name, its roles): their values are wired in, not parameters.
# Written out here, not read from the declarations that generate the template: a wrong wiring (the rotate role as the
# KMS keys' one Sign principal, the keyring secret as the signing view) must fail this test, not regenerate into it.
# A secondary region's stack (not IsPrimary) reads the replicas of the primary's secrets and has no distribution.
RESOURCE_SETTINGS = {
    "keyring_secret_id": {"Fn::If": ["IsPrimary", {"Ref": "KeyringSecret"}, {"Fn::Sub": [
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Name}",
        {"Name": {"Fn::Select": [6, {"Fn::Split": [":", {"Fn::Sub": "${PrimaryKeyringSecretArn}::::::"}]}]}}]}]},
    "signing_secret_id": {"Fn::If": ["IsPrimary", {"Ref": "SigningKeySecret"}, {"Fn::Sub": "${AWS::StackName}-signing-key"}]},
    "jwks_bucket": {"Ref": "JwksBucket"},
    "distribution_id": {"Fn::If": ["IsPrimary", {"Ref": "Distribution"}, {"Ref": "PrimaryDistributionId"}]},
    "revocation_parameter": {"Fn::Sub": "/jwks-rotator/${AWS::StackName}/revoked-kids"},
    "kms_stack_tag": {"Ref": "AWS::StackName"},
    "kms_sign_role_arn": {"Fn::GetAtt": ["SignFunctionRole", "Arn"]},
    "kms_rotate_role_arn": {"Fn::GetAtt": ["RotateFunctionRole", "Arn"]},
    "kms_replica_sign_role_arns": {"Ref": "SecondarySignRoleArns"},
}
# Settings parsed as durations that the template takes as parameters.
DURATION_SETTINGS = {
    f.name for f in dataclasses.fields(Settings) if "timedelta" in str(f.type) and f.name not in RESOURCE_SETTINGS
}
REQUIRED_OUTPUTS = {
    "JwksUrl", "IssuerUrl", "Issuer", "SignFunctionName", "SignFunctionArn", "RotateFunctionName",
    "KeyringSecretArn", "SigningSecretArn", "JwksBucketName", "DistributionId", "AuditLogGroupName", "OperationsLogGroupName",
}


def _function_actions(resources: dict[str, Any], function: str) -> set[str]:
    return {a for name, s in policy_statements(resources) if name == function for a in as_list(s["Action"])}


# --------------------------------------------------------------------------- parameters
def test_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda spec: spec.pascal)
def test_every_setting_is_a_parameter_with_the_same_default(spec: Any, params: dict[str, Any]) -> None:
    if spec.attribute in RESOURCE_SETTINGS:
        assert spec.pascal not in params, f"{spec.pascal} is created by the stack, not a parameter"
        return
    assert spec.pascal in params, f"config setting {spec.attribute} has no template parameter {spec.pascal}"
    param = params[spec.pascal]
    assert str(param["Default"]) == spec.default
    assert param.get("Description"), f"{spec.pascal} needs a Description"
    pattern = param.get("AllowedPattern")
    if pattern is not None:
        assert re.fullmatch(pattern, str(param["Default"])), f"{spec.pascal}: default fails its own AllowedPattern"
    if "AllowedValues" in param:
        assert str(param["Default"]) in [str(v) for v in param["AllowedValues"]]


@pytest.mark.parametrize("attribute", sorted(DURATION_SETTINGS))
def test_duration_parameters_accept_only_what_the_code_parses(attribute: str, params: dict[str, Any]) -> None:
    pascal = next(s.pascal for s in SETTINGS if s.attribute == attribute)
    pattern = params[pascal]["AllowedPattern"]
    for text in ("30s", "15m", "12h", "7d", "2w", "90", "1.5h", "5m", "60m"):
        if re.fullmatch(pattern, text):
            assert parse_duration(text) > timedelta(0)
    for text in ("15 minutes", "-5m", "1y", "m", "15M", "1h30m"):
        assert not re.fullmatch(pattern, text), f"{pascal} pattern lets {text!r} through"


def test_choice_parameters_match_the_code(params: dict[str, Any]) -> None:
    assert sorted(params["Algorithm"]["AllowedValues"]) == sorted(algorithm_names())
    assert sorted(params["KeyCustody"]["AllowedValues"]) == sorted(KEY_CUSTODIES)
    pattern = params["KeyDeletionWindow"]["AllowedPattern"]
    for days in range(40):
        text = f"{days}d"
        assert bool(re.fullmatch(pattern, text)) == (7 <= days <= 30), text
        if re.fullmatch(pattern, text):
            Settings(key_deletion_window=parse_duration(text))
    pattern = params["KmsHandoverWait"]["AllowedPattern"]
    for seconds in range(40):
        text = f"{seconds}s"
        assert bool(re.fullmatch(pattern, text)) == (seconds <= 30), text
        if re.fullmatch(pattern, text):
            Settings(kms_handover_wait=parse_duration(text))
    assert sorted(int(v) for v in params["RsaKeySize"]["AllowedValues"]) == sorted(RSA_KEY_SIZES)


def test_parameter_defaults_form_a_valid_configuration(params: dict[str, Any]) -> None:
    values = {s.attribute: str(params[s.pascal]["Default"]) for s in SETTINGS if s.attribute not in RESOURCE_SETTINGS}
    values["issuer"] = "https://d111111abcdef8.cloudfront.net"  # what the template derives when Issuer is empty
    Settings.from_mapping(values)


def test_the_stale_key_alarm_follows_the_stack_s_own_settings(resources: dict[str, Any], params: dict[str, Any]) -> None:
    alarm = resources["StaleActiveKeyAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Threshold"], alarm["TreatMissingData"]) == ("ActiveKeyOverdueSeconds", 0, "breaching")
    assert "StaleKeyAlarmSeconds" not in params  # nothing kept in step with the settings by hand


def test_only_the_rotator_writes_the_revocation_list_and_the_signer_only_reads_it(resources: dict[str, Any]) -> None:
    """The record (an object only the rotate role may write) and its SSM mirror (which the rotator repairs)."""
    by_function: dict[str, set[str]] = {}
    for name, statement in policy_statements(resources):
        if "revoked-kids" in json.dumps(statement.get("Resource")):
            by_function.setdefault(name, set()).update(as_list(statement["Action"]))
    assert by_function == {
        "RotateFunction": {"s3:GetObject", "s3:PutObject", "ssm:GetParameter", "ssm:PutParameter", "ssm:GetParameterHistory", "ssm:DeleteParameter"},
        "SignFunction": {"s3:GetObject", "ssm:GetParameter"},
    }


def test_schedule_becomes_a_rate_expression(params: dict[str, Any], resources: dict[str, Any]) -> None:
    pattern = params["Schedule"]["AllowedPattern"]
    tick = resources["RotateFunction"]["Properties"]["Events"]["Tick"]
    assert tick["Type"] == "ScheduleV2"
    expression = tick["Properties"]["ScheduleExpression"]["Fn::If"]
    assert expression[0] == "TicksEveryMinute" and expression[1] == "rate(1 minute)"
    fmt, variables = expression[2]["Fn::Sub"]
    assert variables["Minutes"] == {"Fn::Select": [0, {"Fn::Split": ["m", {"Ref": "Schedule"}]}]}
    for text in ("15m", "5m", "60m", "1m"):
        assert re.fullmatch(pattern, text)
        minutes = text.split("m")[0]
        assert parse_duration(text) == timedelta(minutes=int(minutes))
        assert fmt.replace("${Minutes}", minutes) == f"rate({minutes} minutes)"
    for text in ("0m", "30s", "1h", "1.5m", "15"):
        assert not re.fullmatch(pattern, text), f"Schedule lets {text!r} through but cannot turn it into a rate"
    assert parse_rotate_event(json.loads(tick["Properties"]["Input"])).operation == "tick"


# --------------------------------------------------------------------------- functions
@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_get_every_setting_they_read_under_its_env_name(template: dict[str, Any], function: str) -> None:
    assert {s.attribute: cfn_value(s.stack.value) for s in SETTINGS if isinstance(s.stack, StackValue)} == RESOURCE_SETTINGS
    variables = function_environment(template, function)
    extension = EXTENSION_ENV if function == "SignFunction" else {}
    assert set(variables) - set(extension) == {s.env for s in SETTINGS if function in s.readers}
    for spec in SETTINGS:
        if function not in spec.readers:
            continue
        value = variables[spec.env]
        if spec.attribute in RESOURCE_SETTINGS:
            assert value == RESOURCE_SETTINGS[spec.attribute]
        elif spec.attribute == "issuer":
            assert value["Fn::If"][0] == "HasIssuer" and value["Fn::If"][1] == {"Ref": "Issuer"}
        else:
            assert value == {"Ref": spec.pascal}


# The Parameters and Secrets extension's own settings on the sign function: its port (which makes the signer read
# through it) and no caching, so that signer-cache-ttl alone bounds how long a retired or revoked key signs.
EXTENSION_ENV = {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773", "SECRETS_MANAGER_TTL": "0", "SSM_PARAMETER_STORE_TTL": "0"}


def test_the_sign_function_reads_through_the_extension_layer_with_caching_off(template: dict[str, Any], resources: dict[str, Any]) -> None:
    props = resources["SignFunction"]["Properties"]
    settings = {s.env for s in SETTINGS}
    assert {k: v for k, v in props["Environment"]["Variables"].items() if k not in settings} == EXTENSION_ENV
    (choice,) = props["Layers"]
    condition, override, mapped = choice["Fn::If"]
    assert condition == "HasExtensionLayerArn" and override == {"Ref": "ParametersSecretsExtensionLayerArn"}
    assert mapped == {"Fn::FindInMap": ["ParametersSecretsExtension", {"Ref": "AWS::Region"}, "LayerArn"]}
    table = template["Mappings"]["ParametersSecretsExtension"]
    assert {"us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"} <= set(table)
    for region, entry in table.items():
        assert re.fullmatch(rf"arn:aws[a-z-]*:lambda:{region}:[0-9]{{12}}:layer:AWS-Parameters-and-Secrets-Lambda-Extension:[0-9]+", entry["LayerArn"])
    parameter = template["Parameters"]["ParametersSecretsExtensionLayerArn"]
    assert parameter["Default"] == "" and re.fullmatch(parameter["AllowedPattern"], table["us-east-1"]["LayerArn"])
    assert "RotateFunction" not in {n for n, r in resources.items() if "Layers" in r.get("Properties", {})}


def test_functions_and_layer(template: dict[str, Any], resources: dict[str, Any]) -> None:
    layer = resources["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/jwks_rotator"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert (ROOT / "layers/jwks_rotator/jwks_rotator/core/settings.py").is_file()
    assert (ROOT / "layers/jwks_rotator/requirements.txt").is_file()
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Layers"] == [{"Ref": "SharedLayer"}]
    for name, directory in (("RotateFunction", "functions/rotate"), ("SignFunction", "functions/sign")):
        props = resources[name]["Properties"]
        assert props["CodeUri"].rstrip("/") == directory
        assert props["Handler"] == "app.handler"
        assert props.get("Runtime", "python3.12") == "python3.12"
    assert resources["SignFunction"]["Properties"]["Timeout"] <= 10
    assert resources["SignFunction"]["Properties"]["MemorySize"] == {"Ref": "SignMemorySize"}
    assert template["Parameters"]["SignMemorySize"]["Default"] == 1024  # chosen by measurement (benchmarks/RESULTS.md, power tuning)


def test_snapstart_and_provisioned_concurrency_are_opt_in_on_a_published_alias(template: dict[str, Any], resources: dict[str, Any]) -> None:
    props = resources["SignFunction"]["Properties"]
    parameters = template["Parameters"]
    assert parameters["SignSnapStart"]["Default"] == "None" and parameters["SignSnapStart"]["AllowedValues"] == ["None", "PublishedVersions"]
    assert parameters["SignProvisionedConcurrency"]["Default"] == 0
    assert props["SnapStart"] == {"Fn::If": ["SignSnapStartOn", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]}  # off: no property at all
    version, alias = resources["SignFunctionVersion"], resources["SignFunctionAlias"]
    assert version["Condition"] == alias["Condition"] == "SignPublishesVersions"  # off by default: neither exists
    assert version["Properties"]["FunctionName"] == alias["Properties"]["FunctionName"] == {"Ref": "SignFunction"}
    assert version["Properties"]["Description"] == {"Fn::Sub": "revision ${SignCodeRevision}"}  # a new revision, a new version
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": ["SignFunctionVersion", "Version"]}
    concurrency = alias["Properties"]["ProvisionedConcurrencyConfig"]["Fn::If"]
    assert concurrency[0] == "HasSignProvisionedConcurrency" and concurrency[2] == {"Ref": "AWS::NoValue"}
    outputs = template["Outputs"]
    # Off (the default): the outputs callers use and the name proofs bind to are the function's own, as before.
    assert outputs["SignFunctionName"]["Value"] == {"Ref": "SignFunction"}
    assert outputs["SignFunctionArn"]["Value"] == {"Fn::GetAtt": ["SignFunction", "Arn"]}
    assert outputs["SignFunctionAliasArn"]["Condition"] == "SignPublishesVersions"
    conditions = template["Conditions"]
    assert conditions["SignPublishesVersions"] == {"Fn::Or": [{"Condition": "SignSnapStartOn"}, {"Condition": "HasSignProvisionedConcurrency"}]}


def test_secret_starts_as_the_empty_keyring_under_the_cmk(resources: dict[str, Any]) -> None:
    secret = resources["KeyringSecret"]["Properties"]
    assert secret["SecretString"] == EMPTY_KEYRING_JSON
    assert secret["KmsKeyId"] == {"Ref": "KeyringKey"}
    assert resources["KeyringKey"]["Properties"]["EnableKeyRotation"] is True


# --------------------------------------------------------------------------- least privilege
WRITE_VERBS = ("Put", "Update", "Delete", "Create", "Restore", "Rotate", "Tag", "Untag", "Replicate", "Cancel",
               "Encrypt", "ReEncrypt", "GenerateDataKey", "Sign", "Schedule", "Enable", "Disable", "Remove")


def test_sign_function_can_only_read_the_current_signing_view_and_the_revocation_list(single_resources: dict[str, Any]) -> None:
    """The identity policy holds the revocation list only; the secret and its key grant the rest, by name (one region)."""
    resources = single_resources
    statements = [s for name, s in policy_statements(resources) if name == "SignFunction" and s["Sid"] not in KMS_SIGN_SIDS]
    assert {a for s in statements for a in as_list(s["Action"])} == {"ssm:GetParameter", "s3:GetObject"}
    [record] = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert record["Resource"] == {"Fn::Sub": "${JwksBucket.Arn}/revocations/revoked-kids.json"}
    sign_role = {"Fn::GetAtt": ["SignFunctionRole", "Arn"]}
    by_sid = {s["Sid"]: s for s in resources["SigningKeySecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"] if "Sid" in s}
    read = by_sid["SignRoleReadsTheCurrentSigningView"]
    assert read["Principal"] == {"AWS": sign_role} and read["Action"] == "secretsmanager:GetSecretValue"
    # A version's labels are a set (the current one may also carry JWKSROTATOR_STAGED): match any.
    assert read["Condition"] == {"ForAnyValue:StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"},
                                 "StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
    keyring_policy = resources["KeyringSecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"]
    assert "SignFunctionRole" not in json.dumps(keyring_policy)
    key_statements = resources["KeyringKey"]["Properties"]["KeyPolicy"]["Statement"]
    [decrypt] = [s for s in key_statements if isinstance(s, dict) and s.get("Principal") == {"AWS": sign_role}]
    assert decrypt["Action"] == "kms:Decrypt" and "kms:ViaService" in decrypt["Condition"]["StringEquals"]
    assert decrypt["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}-signing-key-??????"}
    assert resources["SigningKeySecret"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-signing-key"}


def test_no_statement_of_the_key_policy_lets_the_account_use_the_key(resources: dict[str, Any]) -> None:
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    uses = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt", "kms:Sign")
    for statement in resources["KeyringKey"]["Properties"]["KeyPolicy"]["Statement"]:
        if isinstance(statement, dict) and statement.get("Principal") == root:
            assert not [a for a in as_list(statement["Action"]) if a.startswith(uses)], statement["Sid"]


# Actions with no resource ARN in IAM: "*" is their only resource. CreateKey (and TagResource at CreateKey) only
# under the stack-tag conditions checked below; ListKeys reveals key ids only.
RESOURCELESS = {"CreateOnlyStackTaggedSigningKeys": {"kms:CreateKey"}, "TagNewKeysWithTheStackTag": {"kms:TagResource"},
                "FindStackKeysByTag": {"kms:ListKeys"}}
KMS_SIGN_SIDS = {"SignWithStackTaggedKeys", "ReadStackTaggedPublicKeys"}
STACK_TAG_CONDITION = {"aws:ResourceTag/jwks-rotator:stack": {"Ref": "AWS::StackName"}}


def test_no_wildcards_in_identity_policies(resources: dict[str, Any]) -> None:
    for name, statement in policy_statements(resources):
        if statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{name}: wildcard action {action}"
        if set(as_list(statement["Action"])) == RESOURCELESS.get(statement.get("Sid", "")):
            continue
        for resource in as_list(statement["Resource"]):
            assert resource != "*", f"{name}: {statement.get('Sid')} allows {statement['Action']} on '*'"


def _kms_statements(resources: dict[str, Any], function: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for name, s in policy_statements(resources)
            if name == function and any(a.startswith("kms:") for a in as_list(s["Action"])) and s["Sid"] not in
            {"DecryptTheKeyringThroughSecretsManager", "KeyringKeyThroughSecretsManager"}}


def test_the_sign_role_signs_only_with_stack_tagged_keys_jws_algorithms_and_raw_messages(resources: dict[str, Any]) -> None:
    from jwks_rotator.core.keys.kms import KMS_ALGORITHMS

    statements = _kms_statements(resources, "SignFunction")
    assert set(statements) == KMS_SIGN_SIDS
    sign = statements["SignWithStackTaggedKeys"]
    assert as_list(sign["Action"]) == ["kms:Sign"]
    condition = sign["Condition"]["StringEquals"]
    assert condition["aws:ResourceTag/jwks-rotator:stack"] == {"Ref": "AWS::StackName"}
    assert condition["kms:MessageType"] == "RAW"
    assert sorted(condition["kms:SigningAlgorithm"]) == sorted(a.signing_algorithm for a in KMS_ALGORITHMS.values())
    assert "ED25519_PH_SHA_512" not in condition["kms:SigningAlgorithm"]
    public = statements["ReadStackTaggedPublicKeys"]
    assert as_list(public["Action"]) == ["kms:GetPublicKey"] and public["Condition"]["StringEquals"] == STACK_TAG_CONDITION


def test_the_rotate_role_creates_only_stack_tagged_keys_and_manages_only_those(single_resources: dict[str, Any]) -> None:
    from jwks_rotator.core.keys.kms import KMS_ALGORITHMS, kms_key_spec

    resources = single_resources  # several regions add ReplicateKey: tests/template/test_regions.py
    statements = _kms_statements(resources, "RotateFunction")
    create = statements["CreateOnlyStackTaggedSigningKeys"]
    specs = sorted({kms_key_spec(alg, size) for alg in KMS_ALGORITHMS for size in (2048, 3072, 4096)})
    assert as_list(create["Action"]) == ["kms:CreateKey"]
    condition = {**create["Condition"], "StringEquals": {**create["Condition"]["StringEquals"],
                                                         "kms:KeySpec": sorted(create["Condition"]["StringEquals"]["kms:KeySpec"])}}
    assert condition == {
        "StringEquals": {"aws:RequestTag/jwks-rotator:stack": {"Ref": "AWS::StackName"}, "kms:KeyOrigin": "AWS_KMS",
                         "kms:KeyUsage": "SIGN_VERIFY", "kms:KeySpec": specs},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["jwks-rotator:stack"]},
    }
    assert statements["TagNewKeysWithTheStackTag"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/jwks-rotator:stack": {"Ref": "AWS::StackName"}},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["jwks-rotator:stack"]},
    }
    # The tag Allow on "*" also matches existing keys: the Deny keeps tag changes to keys already of this stack.
    deny = statements["NoTagChangesOnOtherKeys"]
    assert deny["Effect"] == "Deny" and set(as_list(deny["Action"])) == {"kms:TagResource", "kms:UntagResource"}
    assert deny["Condition"] == {"StringNotEquals": STACK_TAG_CONDITION}
    for sid, statement in statements.items():
        actions = set(as_list(statement["Action"]))
        if statement["Effect"] == "Deny":
            continue
        assert "kms:UntagResource" not in actions and "kms:Sign" not in actions, sid  # revoke is DisableKey
        if sid in RESOURCELESS or sid == "ReadKeyTags":
            continue
        assert statement["Condition"]["StringEquals"] == STACK_TAG_CONDITION, sid
    assert {"kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"} <= set(
        statements["ManageOnlyStackTaggedKeys"]["Action"])
    assert statements["TagStackKeysWithTheirKid"]["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["jwks-rotator:kid"]}


def test_only_the_rotate_function_writes(resources: dict[str, Any]) -> None:
    writes = {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage", "s3:PutObject",
              "cloudfront:CreateInvalidation", "kms:GenerateDataKey", "kms:Encrypt"}
    rotate = _function_actions(resources, "RotateFunction")
    # The secrets and their key are granted to the rotate role on the resources (checked in tests/privilege).
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "cloudfront:CreateInvalidation"} <= rotate
    for name, statement in policy_statements(resources):
        if name != "RotateFunction" and statement.get("Effect") == "Allow":
            assert not writes & set(as_list(statement["Action"])), f"{name} may write: {statement['Action']}"


def test_rotate_writes_only_the_two_documents_the_revocation_record_and_its_two_ledgers(single_resources: dict[str, Any]) -> None:
    targets = [
        r["Fn::Sub"]
        for name, statement in policy_statements(single_resources)
        if name == "RotateFunction" and "s3:PutObject" in as_list(statement["Action"])
        for r in as_list(statement["Resource"])
    ]
    assert sorted(targets) == ["${JwksBucket.Arn}/.well-known/jwks.json", "${JwksBucket.Arn}/.well-known/openid-configuration",
                               "${JwksBucket.Arn}/revocations/revoked-kids.json", "${JwksBucket.Arn}/state/last-tick.json",
                               "${JwksBucket.Arn}/state/replication.json"]


def test_bucket_is_private_tls_only_and_readable_only_by_the_distribution(single_resources: dict[str, Any]) -> None:
    resources = single_resources
    bucket = resources["JwksBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    statements = resources["JwksBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tls = [s for s in statements if s["Effect"] == "Deny"]
    assert tls and tls[0]["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Sub": "${JwksBucket.Arn}/.well-known/*"}
    assert "${Distribution}" in allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]


def test_distribution_is_https_only_through_oac(resources: dict[str, Any]) -> None:
    config = resources["Distribution"]["Properties"]["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    origin = config["Origins"][0]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
    custom_cert = config["ViewerCertificate"]["Fn::If"][1]
    assert custom_cert["MinimumProtocolVersion"].startswith("TLSv1.2")


def test_checkov_skips_are_justified(resources: dict[str, Any]) -> None:
    for name, resource in resources.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"])
            assert len(skip.get("comment", "")) > 30, f"{name}: checkov skip {skip['id']} needs a reason"


def test_outputs(single_region: Any) -> None:
    outputs = single_region.outputs
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert outputs["SignFunctionArn"]["Value"] == {"Fn::GetAtt": ["SignFunction", "Arn"]}
    assert outputs["KeyringSecretArn"]["Value"] == {"Ref": "KeyringSecret"}


def test_earlier_document_versions_are_kept_a_year_by_default(resources: dict[str, Any], params: dict[str, Any]) -> None:
    [rule] = resources["JwksBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == {"Ref": "JwksVersionRetentionDays"}
    assert params["JwksVersionRetentionDays"]["Default"] == 365
    assert resources["JwksBucket"]["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"


def test_operator_roles_parameter_takes_the_role_lists_the_setting_takes(params: dict[str, Any]) -> None:
    import re

    pattern = re.compile(params["OperatorRoles"]["AllowedPattern"])
    accepted = ["", "arn:aws:iam::123456789012:role/ops", "arn:aws:iam::123456789012:role/ops-*,arn:aws-cn:iam::210987654321:role/break.glass@x"]
    for value in accepted:
        assert pattern.fullmatch(value), value
        Settings.from_mapping({"operator-roles": value})
    for value in ["arn:aws:iam::123456789012:role/team/ops", "arn:aws:iam::12345678901:role/ops", "ops", "arn:aws:iam::123456789012:user/ops"]:
        assert not pattern.fullmatch(value), value


def test_the_scheduler_role_trusts_only_this_stacks_own_schedule(resources: dict[str, Any]) -> None:
    tick = resources["RotateFunction"]["Properties"]["Events"]["Tick"]["Properties"]
    assert tick["RoleArn"] == {"Fn::GetAtt": ["TickScheduleRole", "Arn"]}
    (trust,) = resources["TickScheduleRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source = trust["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source.endswith(":schedule/default/${AWS::StackName}-tick") and source == (
        "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/default/" + "${AWS::StackName}-tick"
    )
    (policy,) = resources["TickScheduleRole"]["Properties"]["Policies"]
    actions = {s["Action"] for s in policy["PolicyDocument"]["Statement"]}
    assert actions == {"lambda:InvokeFunction", "sqs:SendMessage"}


def test_both_functions_enforce_an_optional_code_signing_configuration(params: dict[str, Any], resources: dict[str, Any]) -> None:
    assert params["CodeSigningConfigArn"]["Default"] == ""
    assert re.fullmatch(params["CodeSigningConfigArn"]["AllowedPattern"], "arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-0123456789abcdef0")
    for function in ("RotateFunction", "SignFunction"):
        assert resources[function]["Properties"]["CodeSigningConfigArn"] == {
            "Fn::If": ["HasCodeSigning", {"Ref": "CodeSigningConfigArn"}, {"Ref": "AWS::NoValue"}]}
