"""The fault proxy drops the connection of writes only: a read is never mistaken for a half-failed write."""

from __future__ import annotations

import pytest

from soak.proxy import Request


def _request(method: str, service: str, operation: str, *, target: bool) -> Request:
    headers = {"x-amz-target": f"AmazonSSM.{operation}"} if target else {}
    return Request(method, "/", headers, b"", service, operation)


@pytest.mark.parametrize("operation", ["GetParameter", "GetParameters", "DescribeParameters", "ListTagsForResource"])
def test_a_json_protocol_read_is_not_a_write_although_it_is_a_post(operation: str) -> None:
    assert not _request("POST", "ssm", operation, target=True).is_write


@pytest.mark.parametrize("operation", ["PutParameter", "DeleteParameter", "AddTagsToResource"])
def test_a_json_protocol_write_is_a_write(operation: str) -> None:
    assert _request("POST", "ssm", operation, target=True).is_write


def test_rest_calls_are_classified_by_method() -> None:
    assert _request("PUT", "s3", "PUT object", target=False).is_write
    assert not _request("GET", "s3", "GET object", target=False).is_write


def test_secrets_manager_writes_are_the_version_moves() -> None:
    assert _request("POST", "secretsmanager", "PutSecretValue", target=True).is_write
    assert not _request("POST", "secretsmanager", "GetSecretValue", target=True).is_write
