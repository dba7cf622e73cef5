"""The revocation list on an SSM parameter: create when missing, add with a confirm loop, stay bounded, fail closed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jwks_rotator.adapters.sdk.revocation_parameter import (
    MAX_ATTEMPTS,
    MAX_VALUE_BYTES,
    RevocationListFullError,
    SsmRevocationList,
    SsmRevocationReader,
    encode_kids,
)
from jwks_rotator.core.errors import StoreError

NAME = "/jwks-rotator/revoked-kids"


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} for secret-canary"}}, operation)


class FakeSsm:
    """One SSM parameter with versions and history, as GetParameter, PutParameter and GetParameterHistory see it.

    ``before_put`` runs before each PutParameter lands: a racing writer.
    """

    def __init__(self, value: str | None = None, *, type_: str = "String") -> None:
        self.history: list[tuple[int, str]] = [] if value is None else [(1, value)]
        self.type = type_
        self.puts = 0
        self.before_put: Callable[[], None] | None = None

    @property
    def value(self) -> str:
        return self.history[-1][1]

    def kids(self) -> list[str]:
        return list(json.loads(self.value))

    def get_parameter(self, *, Name: str) -> dict[str, Any]:
        assert Name == NAME
        if not self.history:
            raise client_error("ParameterNotFound", "GetParameter")
        version, value = self.history[-1]
        return {"Parameter": {"Name": Name, "Type": self.type, "Value": value, "Version": version}}

    def put_parameter(self, *, Name: str, Value: str, Type: str, Overwrite: bool) -> dict[str, Any]:
        assert (Name, Type) == (NAME, "String")
        if self.before_put is not None:
            racer, self.before_put = self.before_put, None
            racer()
        if self.history and not Overwrite:
            raise client_error("ParameterAlreadyExists", "PutParameter")
        self.puts += 1
        version = self.history[-1][0] + 1 if self.history else 1
        self.history.append((version, Value))
        return {"Version": version, "Tier": "Standard"}

    def get_parameter_history(self, *, Name: str, MaxResults: int, NextToken: str | None = None) -> dict[str, Any]:
        start = int(NextToken or 0)
        page = self.history[start:start + MaxResults]
        answer: dict[str, Any] = {"Parameters": [{"Name": Name, "Version": v, "Value": value} for v, value in page]}
        if start + MaxResults < len(self.history):
            answer["NextToken"] = str(start + MaxResults)
        return answer

    def write_directly(self, kids: list[str]) -> None:
        """Another writer's PutParameter."""
        self.history.append((self.history[-1][0] + 1, encode_kids(kids)))


def test_a_missing_parameter_is_created_empty_by_the_rotator() -> None:
    ssm = FakeSsm()
    assert SsmRevocationList(ssm, NAME).load() == frozenset()
    assert ssm.value == "[]" and ssm.puts == 1
    assert SsmRevocationList(ssm, NAME).load() == frozenset() and ssm.puts == 1


def test_a_creator_racing_another_keeps_the_others_list() -> None:
    ssm = FakeSsm()
    ssm.before_put = lambda: ssm.history.append((1, '["kid-a"]'))  # created by someone else between our read and write
    assert SsmRevocationList(ssm, NAME).load() == {"kid-a"}


def test_a_missing_parameter_fails_the_signers_read() -> None:
    with pytest.raises(StoreError) as raised:
        SsmRevocationReader(FakeSsm(), NAME).read()
    assert raised.value.reason == "ParameterNotFound" and "canary" not in raised.value.message


def test_add_appends_once_and_keeps_the_order() -> None:
    ssm = FakeSsm("[]")
    revocations = SsmRevocationList(ssm, NAME)
    revocations.add("kid-a")
    revocations.add("kid-b")
    revocations.add("kid-a")
    assert ssm.kids() == ["kid-a", "kid-b"] and ssm.puts == 2
    assert SsmRevocationReader(ssm, NAME).read() == {"kid-a", "kid-b"}


def test_a_writer_whose_read_went_stale_puts_back_the_kid_it_overwrote() -> None:
    ssm = FakeSsm('["kid-a"]')
    # Another rotator adds kid-b completely (its write follows its read, so it returns) between our read and our write.
    ssm.before_put = lambda: SsmRevocationList(ssm, NAME).add("kid-b")
    SsmRevocationList(ssm, NAME).add("kid-c")
    assert set(ssm.kids()) == {"kid-a", "kid-b", "kid-c"}
    assert [json.loads(value) for _, value in ssm.history][-2:] == [["kid-a", "kid-c"], ["kid-a", "kid-c", "kid-b"]]


def test_writers_that_never_stop_racing_give_up_after_bounded_attempts() -> None:
    ssm = FakeSsm("[]")
    counter = iter(range(1000))
    original_put = ssm.put_parameter

    def always_raced(**params: Any) -> dict[str, Any]:
        ssm.write_directly([f"other-{next(counter)}"])
        return original_put(**params)

    ssm.put_parameter = always_raced  # type: ignore[method-assign]
    with pytest.raises(StoreError, match=f"{MAX_ATTEMPTS} attempts") as raised:
        SsmRevocationList(ssm, NAME).add("kid-a")
    assert raised.value.reason == "RevocationListContended" and ssm.puts == MAX_ATTEMPTS


def test_a_full_list_refuses_a_new_kid_and_drops_none() -> None:
    kids = [f"{i:043d}" for i in range(89)]  # RFC 7638 thumbprints are 43 characters
    assert len(encode_kids(kids)) <= MAX_VALUE_BYTES < len(encode_kids([*kids, "x" * 43]))
    ssm = FakeSsm(encode_kids(kids))
    revocations = SsmRevocationList(ssm, NAME)
    with pytest.raises(RevocationListFullError) as raised:
        revocations.add("y" * 43)
    assert raised.value.code == "revocation_list_full" and "89 kids" in raised.value.message
    assert ssm.kids() == kids and ssm.puts == 0
    revocations.add(kids[0])  # already there: no write needed, no refusal


@pytest.mark.parametrize(
    ("value", "type_"),
    [("not json", "String"), ('{"kid": 1}', "String"), ("[1]", "String"), ('[""]', "String"), ("a,b", "StringList"),
     ("[]", "SecureString")],
)
def test_a_malformed_parameter_fails_closed_without_echoing_it(value: str, type_: str) -> None:
    ssm = FakeSsm(value, type_=type_)
    for read in (SsmRevocationReader(ssm, NAME).read, SsmRevocationList(ssm, NAME).load):
        with pytest.raises(StoreError) as raised:
            read()
        assert raised.value.reason == "MalformedRevocationList" and value not in raised.value.message


def test_an_aws_failure_names_the_code_only() -> None:
    class Throttled:
        def get_parameter(self, **params: Any) -> Any:
            raise client_error("ThrottlingException", "GetParameter")

    with pytest.raises(StoreError) as raised:
        SsmRevocationReader(Throttled(), NAME).read()
    assert raised.value.reason == "ThrottlingException" and "canary" not in str(raised.value)
