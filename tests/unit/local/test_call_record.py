"""The call recorder reads requests as botocore sends them: principal, action, resource ARN and context keys.

Each request here is made by a real boto3 client and captured before it leaves (botocore's
``before-send`` event), so the recorder sees exactly the wire format the functions produce.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from jwks_rotator_local.call_record import CallRecorder, RecordedCall, SecretFacts

ACCOUNT, REGION = "123456789012", "us-east-1"
KEYRING_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:jwks-keyring-AbCdEf"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OLD = "0" * 32
SIGN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stack-SignFunctionRole-1"


class CannedFacts:
    account, region, partition = ACCOUNT, REGION, "aws"

    def principal(self, access_key_id: str) -> str | None:
        return {"ASIASIGN": SIGN_ROLE}.get(access_key_id)

    def principal_by_session_token(self, session_token: str) -> str | None:
        return {"sign-session-token": SIGN_ROLE}.get(session_token)

    def secret(self, secret_id: str) -> SecretFacts | None:
        if secret_id not in ("jwks-keyring", KEYRING_ARN):
            return None
        return SecretFacts(KEYRING_ARN, KEY_ARN, {"v-current": ("AWSCURRENT", "JWKSROTATOR_STAGED"), OLD: ("AWSPREVIOUS",)})

    def kms_key_tags(self, key_arn: str) -> Mapping[str, str]:
        return {"jwks-rotator:stack": "s"} if key_arn == KEY_ARN else {}

    def kms_key_policy(self, key_arn: str) -> str | None:
        return '{"Version":"2012-10-17","Statement":[]}' if key_arn == KEY_ARN else None

    def kms_key_arn(self, key_id: str) -> str | None:
        return KEY_ARN if key_id in ("alias/keyring", KEY_ARN, "1234abcd-12ab-34cd-56ef-1234567890ab") else None


def record(service: str, call: Callable[[Any], Any], *, access_key: str = "ASIASIGN") -> tuple[list[RecordedCall], CallRecorder]:
    """Make one boto3 call, hand the request it would send to a recorder, and return what was recorded."""
    recorder = CallRecorder(CannedFacts())
    client = boto3.client(service, region_name=REGION, endpoint_url="http://127.0.0.1:4566", aws_access_key_id=access_key,
                          aws_secret_access_key="secret", aws_session_token="token")

    def capture(request: Any, **_: Any) -> AWSResponse:
        headers: Mapping[str, str] = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        raw = request.body
        body = raw if isinstance(raw, bytes) else raw.getvalue() if hasattr(raw, "getvalue") else (raw or "").encode()
        path = request.url.split("127.0.0.1:4566", 1)[1]
        recorder(request.method, path, headers, body)
        raise _Sent

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Sent):
        call(client)
    return recorder.calls, recorder


class _Sent(Exception):
    """The request was captured; nothing is sent."""


def test_reading_the_current_secret_records_the_version_labels_and_secrets_managers_decrypt() -> None:
    calls, _ = record("secretsmanager", lambda c: c.get_secret_value(SecretId="jwks-keyring", VersionStage="AWSCURRENT"))
    own, decrypt = calls
    assert (own.principal, own.action, own.resource) == (SIGN_ROLE, "secretsmanager:GetSecretValue", KEYRING_ARN)
    assert own.context["secretsmanager:VersionStage"] == ("AWSCURRENT", "JWKSROTATOR_STAGED")
    assert own.context["aws:SecureTransport"] == "true" and own.context["aws:PrincipalArn"] == SIGN_ROLE
    assert (decrypt.principal, decrypt.action, decrypt.resource, decrypt.via) == (SIGN_ROLE, "kms:Decrypt", KEY_ARN, own.action)
    assert decrypt.context["kms:ViaService"] == f"secretsmanager.{REGION}.amazonaws.com"
    assert decrypt.context["kms:EncryptionContext:SecretARN"] == KEYRING_ARN
    assert decrypt.context["kms:EncryptionContext:SecretVersionId"] == "v-current"


def test_reading_an_older_version_records_its_own_labels() -> None:
    calls, _ = record("secretsmanager", lambda c: c.get_secret_value(SecretId=KEYRING_ARN, VersionId=OLD))
    assert calls[0].context["secretsmanager:VersionStage"] == ("AWSPREVIOUS",)


def test_reading_a_secret_that_does_not_exist_records_the_stage_the_request_names() -> None:
    gone = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:deleted-signing-key-XyZabc"
    calls, _ = record("secretsmanager", lambda c: c.get_secret_value(SecretId=gone, VersionStage="AWSCURRENT"))
    assert [(c.action, c.resource) for c in calls] == [("secretsmanager:GetSecretValue", gone)]  # no decrypt: nothing to decrypt
    assert calls[0].context["secretsmanager:VersionStage"] == ("AWSCURRENT",)  # judged as sent, as AWS judges it


def test_writing_a_secret_records_the_data_key_secrets_manager_asks_for() -> None:
    calls, _ = record("secretsmanager", lambda c: c.put_secret_value(SecretId="jwks-keyring", SecretString="s3cr3t-value", ClientRequestToken="t" * 32))
    assert [(c.action, c.resource) for c in calls] == [("secretsmanager:PutSecretValue", KEYRING_ARN), ("kms:GenerateDataKey", KEY_ARN)]
    assert "s3cr3t" not in repr(calls)  # no stored value is ever kept


@pytest.mark.parametrize(("call", "action", "resource"), [
    (lambda c: c.put_object(Bucket="docs", Key=".well-known/jwks.json", Body=b"{}"), "s3:PutObject", "arn:aws:s3:::docs/.well-known/jwks.json"),
    (lambda c: c.head_object(Bucket="docs", Key=".well-known/jwks.json"), "s3:GetObject", "arn:aws:s3:::docs/.well-known/jwks.json"),
    (lambda c: c.delete_object(Bucket="docs", Key="a"), "s3:DeleteObject", "arn:aws:s3:::docs/a"),
    (lambda c: c.list_objects_v2(Bucket="docs"), "s3:ListBucket", "arn:aws:s3:::docs"),
])
def test_s3_rest_calls(call: Callable[[Any], Any], action: str, resource: str) -> None:
    calls, _ = record("s3", call)
    assert [(c.action, c.resource) for c in calls] == [(action, resource)]


def test_cloudfront_invalidation() -> None:
    calls, _ = record("cloudfront", lambda c: c.create_invalidation(DistributionId="E123", InvalidationBatch={
        "Paths": {"Quantity": 1, "Items": ["/.well-known/jwks.json"]}, "CallerReference": "r"}))
    assert [(c.action, c.resource) for c in calls] == [("cloudfront:CreateInvalidation", f"arn:aws:cloudfront::{ACCOUNT}:distribution/E123")]


def test_kms_sign_records_the_key_arn_and_the_signing_algorithm() -> None:
    calls, _ = record("kms", lambda c: c.sign(KeyId="alias/keyring", Message=b"m", SigningAlgorithm="ECDSA_SHA_256", MessageType="RAW"))
    [call] = calls
    assert (call.action, call.resource) == ("kms:Sign", KEY_ARN)
    assert call.context["kms:SigningAlgorithm"] == "ECDSA_SHA_256" and call.context["kms:CallerAccount"] == ACCOUNT


def test_ssm_logs_cloudwatch_and_sts() -> None:
    [ssm], _ = record("ssm", lambda c: c.get_parameter(Name="/jwks-rotator/s/revoked-kids"))
    assert (ssm.action, ssm.resource) == ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/jwks-rotator/s/revoked-kids")
    [logs], _ = record("logs", lambda c: c.put_log_events(logGroupName="/aws/lambda/s-sign", logStreamName="x", logEvents=[{"timestamp": 1, "message": "m"}]))
    assert (logs.action, logs.resource) == ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/s-sign:log-stream:x")
    [metric], _ = record("cloudwatch", lambda c: c.put_metric_data(Namespace="JwksRotator", MetricData=[{"MetricName": "m", "Value": 1}]))
    assert (metric.action, metric.resource) == ("cloudwatch:PutMetricData", "*")
    [sts], _ = record("sts", lambda c: c.get_caller_identity())
    assert sts.action == "sts:GetCallerIdentity"


def test_an_unknown_access_key_is_never_a_principal_that_could_be_allowed() -> None:
    [call, _], _ = record("secretsmanager", lambda c: c.get_secret_value(SecretId="jwks-keyring"), access_key="AKIAUNKNOWN")
    assert call.principal == "unknown:AKIAUNKNOWN" and "aws:PrincipalArn" not in call.context


def test_a_request_no_rule_reads_is_noted_not_raised() -> None:
    recorder = CallRecorder(CannedFacts())
    recorder("GET", "/whatever", {"Authorization": "AWS4-HMAC-SHA256 Credential=ASIASIGN/20260101/us-east-1/ec2/aws4_request"}, b"")
    assert recorder.calls == [] and recorder.unparsed == ["GET /whatever (ValueError)"]


def test_a_read_through_the_secrets_extension_is_attributed_by_session_token() -> None:
    recorder = CallRecorder(CannedFacts())
    recorder.record_extension_read("sign-session-token", "jwks-keyring", version_stage="AWSCURRENT")
    recorder.record_extension_read("forged", "jwks-keyring")
    own, decrypt, forged, _ = recorder.calls
    assert (own.principal, own.action, own.resource) == (SIGN_ROLE, "secretsmanager:GetSecretValue", KEYRING_ARN)
    assert own.context["secretsmanager:VersionStage"] == ("AWSCURRENT", "JWKSROTATOR_STAGED")
    assert (decrypt.action, decrypt.via) == ("kms:Decrypt", "secretsmanager:GetSecretValue")
    assert forged.principal == "unknown:session-token"


def test_kms_calls_carry_the_keys_tags_the_request_tags_and_the_policy_in_force() -> None:
    [sign], _ = record("kms", lambda c: c.sign(KeyId=KEY_ARN, Message=b"m", SigningAlgorithm="ECDSA_SHA_256"))
    assert sign.context["aws:ResourceTag/jwks-rotator:stack"] == "s" and sign.resource_policy.startswith('{"Version"')
    create, tagging = record("kms", lambda c: c.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY",
                                                           Tags=[{"TagKey": "jwks-rotator:stack", "TagValue": "s"}]))[0]
    assert (create.action, create.resource) == ("kms:CreateKey", "*")
    assert create.context["aws:RequestTag/jwks-rotator:stack"] == "s" and create.context["aws:TagKeys"] == ("jwks-rotator:stack",)
    assert create.context["kms:KeySpec"] == "ECC_NIST_P256"
    assert create.context["kms:KeyOrigin"] == "AWS_KMS"  # left out of the request: KMS authorizes it with the default
    assert (tagging.action, tagging.resource, tagging.via) == ("kms:TagResource", "*", "kms:CreateKey")
    [bare], _ = record("kms", lambda c: c.create_key())  # no tags: no TagResource
    assert (bare.context["kms:KeySpec"], bare.context["kms:KeyUsage"], bare.context["kms:KeyOrigin"]) == (
        "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AWS_KMS")
