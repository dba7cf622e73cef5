"""doctor's gathering: an AWS refusal while reading one thing is that check's warning, never the end of the report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator_cli.doctor import kms_check, signer_check

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


class DeniedKms:
    def describe_key(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeKey")


class Obj:
    def client(self, service: str, **_: Any) -> Any:
        assert service == "kms"
        return DeniedKms()


def test_a_kms_key_not_describable_here_warns_instead_of_ending_doctor():
    key = generate_key("ES256", NOW, state=KeyState.ACTIVE).with_changes(kms_key_arn="arn:aws:kms:us-east-1:1:key/k")
    check = kms_check(Obj(), Keyring(keys=(key,)))  # type: ignore[arg-type]
    assert check.name == "kms custody" and check.result == "warn" and "AccessDeniedException" in check.detail and check.todo


class DeniedLambda:
    def get_function_configuration(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetFunctionConfiguration")


class LambdaObj:
    def lambda_endpoint(self) -> None:
        return None

    def client(self, service: str, **_: Any) -> Any:
        assert service == "lambda"
        return DeniedLambda()


class Stack:
    sign_function_name = "sign"
    demo_caller_role_arn = None


def test_a_sign_function_not_readable_here_is_the_signer_check_failing_not_the_end_of_doctor():
    check = signer_check(LambdaObj(), Stack(), None, None)  # type: ignore[arg-type]
    assert check.name == "signer" and check.result == "fail" and "AccessDeniedException" in check.detail
