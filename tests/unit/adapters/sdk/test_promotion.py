"""Secrets Manager and S3 for promote: what counts as an unreachable old primary, replica state, writer marks."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from jwks_rotator.adapters.sdk.promotion import (
    S3OriginMarks,
    SecretsManagerPrimaryProbe,
    SecretsManagerReplicaSecret,
    SecretsManagerWriterMarks,
    secret_in_region,
)
from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.ports import PrimaryAnswer, WriterMark

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:stack-keyring-AbC123"


def client_error(code: str, status: int, operation: str = "GetSecretValue") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class Secrets:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[dict[str, Any]] = []

    def get_secret_value(self, **params: Any) -> Any:
        self.asked.append(params)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def describe_secret(self, **params: Any) -> Any:
        return self.get_secret_value(**params)

    def stop_replication_to_replica(self, **params: Any) -> Any:
        return self.get_secret_value(**params)


def test_a_secret_id_moves_to_another_region_only_when_it_is_an_arn() -> None:
    assert secret_in_region(ARN, "eu-west-1") == ARN.replace("us-east-1", "eu-west-1")
    assert secret_in_region("stack-keyring", "eu-west-1") == "stack-keyring"


@pytest.mark.parametrize(("failure", "reachable"), [
    (client_error("ServiceUnavailable", 503), False),  # the local cloud's regional outage, AWS's own failure
    (client_error("InternalServiceError", 500), False),
    (EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"), False),
    (ConnectTimeoutError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"), False),
    (ReadTimeoutError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"), False),
    (NoCredentialsError(), True),  # the caller's own fault, not the region's: no evidence of an outage
    (ParamValidationError(report="bad SecretId"), True),
    (client_error("AccessDeniedException", 400), True),  # an answer: the primary may still be writing
    (client_error("ResourceNotFoundException", 400), True),
])
def test_only_no_answer_or_a_5xx_is_an_unreachable_primary(failure: Exception, reachable: bool) -> None:
    secrets = Secrets(failure)
    answer = SecretsManagerPrimaryProbe(lambda region: secrets, ARN).probe("us-east-1")
    assert answer.reachable is reachable and answer.keyring_marker is None and answer.reason
    assert secrets.asked == [{"SecretId": ARN, "VersionStage": "AWSCURRENT"}]


def test_a_primary_that_answers_gives_its_writer_marker_and_generation() -> None:
    stepped = Keyring(generation=9).with_primary("eu-west-1", generation=10)
    secrets = Secrets({"SecretString": stepped.to_json()})
    probe = SecretsManagerPrimaryProbe(lambda region: secrets, ARN.replace("us-east-1", "eu-west-1"))
    assert probe.probe("us-east-1") == PrimaryAnswer(True, "eu-west-1", 10)
    assert secrets.asked[0]["SecretId"] == ARN  # the same secret, in the old primary's region
    assert SecretsManagerPrimaryProbe(lambda region: Secrets({"SecretString": "junk"}), ARN).probe("us-east-1") == PrimaryAnswer(
        True, reason="invalid_keyring")


def test_a_replica_names_its_primary_and_a_primary_or_standalone_secret_none() -> None:
    replica = ARN.replace("us-east-1", "eu-west-1")
    assert SecretsManagerReplicaSecret(Secrets({"ARN": replica, "PrimaryRegion": "us-east-1"}), replica).replicated_from() == "us-east-1"
    assert SecretsManagerReplicaSecret(Secrets({"ARN": ARN, "PrimaryRegion": "us-east-1"}), ARN).replicated_from() is None
    assert SecretsManagerReplicaSecret(Secrets({"ARN": replica}), replica).replicated_from() is None
    with pytest.raises(StoreError, match="InvalidRequestException") as failed:
        SecretsManagerReplicaSecret(Secrets(client_error("InvalidRequestException", 400, "StopReplicationToReplica")), replica).stop_replication()
    assert failed.value.reason == "InvalidRequestException"


def test_writer_marks_of_keyring_secrets_and_origins() -> None:
    promoted = Keyring(generation=3).with_primary("eu-west-1", generation=50)
    marks = SecretsManagerWriterMarks({"eu-west-1": Secrets({"SecretString": promoted.to_json()}),
                                       "ap-south-1": Secrets(client_error("ServiceUnavailable", 503))}, ARN).marks()
    assert marks == {"the keyring secret in ap-south-1": None, "the keyring secret in eu-west-1": WriterMark(50, "eu-west-1")}

    class S3:
        def __init__(self, answer: Any) -> None:
            self.answer = answer

        def head_object(self, **params: Any) -> Any:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    origins = S3OriginMarks([
        ("a", S3({"Metadata": {"keyring-generation": "12", "writer-region": "eu-west-1"}}), "bucket-a"),
        ("b", S3({"Metadata": {"keyring-generation": "7"}}), "bucket-b"),
        ("c", S3(client_error("404", 404, "HeadObject")), "bucket-c"),
        ("d", S3(client_error("503", 503, "HeadObject")), "bucket-d"),
        ("e", S3({"Metadata": {"keyring-generation": "9", "writer-region": "}{\n forged"}}), "bucket-e"),
    ]).marks()
    assert origins == {"a": WriterMark(12, "eu-west-1"), "b": WriterMark(7), "c": WriterMark(0), "d": None, "e": WriterMark(9)}
