"""Reading who a caller is from the ARN STS returned."""

from __future__ import annotations

import pytest

from jwks_rotator.core.callers.principals import identity_from_arn
from jwks_rotator.core.errors import UnauthenticatedError


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_a_role_session_is_its_role_without_the_session_name(partition: str) -> None:
    identity = identity_from_arn(f"arn:{partition}:sts::123456789012:assumed-role/orders-service/i-0abc@example.com")
    assert identity.role_arn == f"arn:{partition}:iam::123456789012:role/orders-service"
    assert identity.account == "123456789012" and identity.partition == partition and identity.is_role
    assert "i-0abc" not in identity.role_arn


def test_the_session_name_does_not_change_the_role() -> None:
    one = identity_from_arn("arn:aws:sts::123456789012:assumed-role/orders/alice")
    assert one.role_arn == "arn:aws:iam::123456789012:role/orders"
    with pytest.raises(UnauthenticatedError):  # a slash cannot smuggle a path into the role
        identity_from_arn("arn:aws:sts::123456789012:assumed-role/orders/role/admin")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:iam::123456789012:user/team/alice",
        "arn:aws:iam::123456789012:root",
        "arn:aws:sts::123456789012:federated-user/bob",
    ],
)
def test_users_root_and_federated_users_have_no_role(arn: str) -> None:
    identity = identity_from_arn(arn)
    assert identity.role_arn is None and not identity.is_role and identity.sts_arn == arn


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws-iso:sts::123456789012:assumed-role/r/s",
        "arn:aws:sts::12345678901:assumed-role/r/s",
        "arn:aws:sts:eu-west-1:123456789012:assumed-role/r/s",
        "arn:aws:iam::123456789012:role/orders",
        "arn:aws:s3:::bucket",
        "",
    ],
)
def test_other_arns_are_refused(arn: str) -> None:
    with pytest.raises(UnauthenticatedError) as caught:
        identity_from_arn(arn)
    assert caught.value.reason == "identity_arn_malformed"
