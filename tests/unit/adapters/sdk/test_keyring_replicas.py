"""Reading the keyring's replicas back: the kids of each region's replica, None for one that cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from jwks_rotator.adapters.sdk.keyring_replicas import (
    SecretsManagerKeyringReplicas,
    SecretsManagerSigningViewReplicas,
    secret_in_region,
)
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.ports import ReplicaReading


class Replica:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return {"SecretString": self.answer}


def test_each_region_reports_its_replicas_kids_or_none(caplog: pytest.LogCaptureFixture) -> None:
    key = generate_key("ES256", datetime.now(UTC))
    secret = Keyring(keys=(key,)).to_json()
    regions = {
        "eu-west-1": Replica(secret),
        "ap-south-1": Replica(ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "x"}}, "GetSecretValue")),
        "us-west-2": Replica(EndpointConnectionError(endpoint_url="https://secretsmanager.us-west-2.amazonaws.com")),
        "ca-central-1": Replica('{"not": "a keyring"}'),
    }
    held = SecretsManagerKeyringReplicas(regions, "keyring-secret").kids_by_region()
    assert held == {"eu-west-1": frozenset({key.kid}), "ap-south-1": None, "us-west-2": None, "ca-central-1": None}
    assert regions["eu-west-1"].calls == [{"SecretId": "keyring-secret", "VersionStage": "AWSCURRENT"}]
    assert secret not in caplog.text and "a keyring" not in caplog.text  # never a stored value in a log line


def test_each_regions_signing_view_reports_the_kids_it_may_sign_with() -> None:
    now = datetime.now(UTC)
    active = generate_key("ES256", now).with_changes(state=KeyState.ACTIVE, published_at=now, activated_at=now)
    pending = generate_key("ES256", now)
    view = Keyring(keys=(active, pending)).signing_view().to_json()  # the view holds the active key only
    regions = {"eu-west-1": Replica(view), "ap-south-1": Replica(ClientError({"Error": {"Code": "Throttling", "Message": "x"}}, "GetSecretValue"))}
    held = SecretsManagerSigningViewReplicas(regions, "signing-secret").signing_kids_by_region()
    assert held == {"eu-west-1": frozenset({active.kid}), "ap-south-1": None}


def test_each_replica_is_read_back_with_its_generation_by_its_own_regions_arn() -> None:
    key = generate_key("ES256", datetime.now(UTC))
    secret = Keyring(keys=(key,), generation=9).to_json()
    regions = {"eu-west-1": Replica(secret), "ap-south-1": Replica(ClientError({"Error": {"Code": "Throttling", "Message": "x"}}, "Get"))}
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:stack-keyring-AbC123"
    replicas = SecretsManagerKeyringReplicas(regions, arn)
    assert replicas.regions == ("eu-west-1", "ap-south-1")
    assert replicas.read_back() == {"eu-west-1": ReplicaReading(9, frozenset({key.kid})), "ap-south-1": None}
    assert regions["eu-west-1"].calls[0]["SecretId"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stack-keyring-AbC123"


@pytest.mark.parametrize(("secret_id", "expected"), [
    ("stack-keyring", "stack-keyring"),  # a name is the replica's name too
    ("arn:aws:secretsmanager:us-east-1:123456789012:secret:a:b-AbC123", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a:b-AbC123"),
    ("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:k-AbC123", "arn:aws-cn:secretsmanager:eu-west-1:123456789012:secret:k-AbC123"),
])
def test_a_secret_in_another_region_is_its_arn_with_the_region_replaced(secret_id: str, expected: str) -> None:
    assert secret_in_region(secret_id, "eu-west-1") == expected


def test_an_answer_without_a_secret_string_is_no_keyring() -> None:
    class Odd:
        def get_secret_value(self, **_: Any) -> dict[str, Any]:
            return {"SecretBinary": b"x"}

    assert SecretsManagerKeyringReplicas({"eu-west-1": Odd()}, "k").read_back() == {"eu-west-1": None}
