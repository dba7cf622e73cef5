"""The sign path's reads through the Parameters and Secrets extension: requests, answers, and every failure as a code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jwks_rotator.adapters.lean.http import HttpError, HttpResponse
from jwks_rotator.adapters.lean.secrets_extension import (
    ExtensionClient,
    ExtensionEndpoint,
    ExtensionKeyringReader,
    ExtensionRevocationReader,
)
from jwks_rotator.core.errors import ConfigurationError, StoreError

SECRET_VALUE = '{"format": 1, "keys": [], "private": "canary-private-value"}'


class FakeTransport:
    """The transport double: records requests and answers with a queued response (or fails)."""

    def __init__(self, *answers: HttpResponse | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, path: str, *, headers: Any = None, body: bytes | None = None) -> HttpResponse:
        self.requests.append((method, path, dict(headers or {})))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(document: Any) -> HttpResponse:
    return HttpResponse(200, {"content-type": "application/json"}, json.dumps(document).encode())


def reader(*answers: HttpResponse | Exception, secret_id: str = "arn:aws:secretsmanager:us-east-1:1:secret:jwks/keyring") -> tuple[ExtensionKeyringReader, FakeTransport]:
    transport = FakeTransport(*answers)
    return ExtensionKeyringReader(ExtensionClient(transport, lambda: "session-token"), secret_id), transport  # type: ignore[arg-type]


def test_the_keyring_is_the_current_version_read_with_the_session_token() -> None:
    keyring, transport = reader(ok({"ARN": "arn", "Name": "n", "VersionId": "v7", "SecretString": SECRET_VALUE, "VersionStages": ["AWSCURRENT"]}))
    stored = keyring.read_current()
    assert (stored.version_id, stored.text) == ("v7", SECRET_VALUE)
    ((method, path, headers),) = transport.requests
    assert method == "GET"
    assert path == "/secretsmanager/get?secretId=arn%3Aaws%3Asecretsmanager%3Aus-east-1%3A1%3Asecret%3Ajwks%2Fkeyring&versionStage=AWSCURRENT"
    assert headers == {"X-Aws-Parameters-Secrets-Token": "session-token"}


def test_the_revocation_list_is_a_string_parameter_of_kids() -> None:
    transport = FakeTransport(ok({"Parameter": {"Name": "/jwks-rotator/s/revoked-kids", "Type": "String", "Value": '["k1","k2"]', "Version": 3}}))
    revocations = ExtensionRevocationReader(ExtensionClient(transport, lambda: "t"), "/jwks-rotator/s/revoked-kids")  # type: ignore[arg-type]
    assert revocations.read() == frozenset({"k1", "k2"})
    assert transport.requests[0][1] == "/systemsmanager/parameters/get?name=%2Fjwks-rotator%2Fs%2Frevoked-kids"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (HttpResponse(400, {}, b'{"__type":"ResourceNotFoundException","message":"canary-private-value"}'), "ResourceNotFoundException"),
        (HttpResponse(400, {}, b'{"__type":"com.amazonaws.secretsmanager#AccessDeniedException"}'), "AccessDeniedException"),
        (HttpResponse(401, {}, b"canary-private-value"), "HTTP401"),
        (HttpResponse(500, {}, b'{"__type":"not a code: canary-private-value"}'), "HTTP500"),
        (HttpError("GET failed: ConnectionRefusedError"), "ExtensionUnreachable"),
        (ok({"VersionId": "v1"}), "MalformedResponse"),
        (ok(["not", "an", "object"]), "MalformedResponse"),
        (HttpResponse(200, {}, b"canary-private-value"), "MalformedResponse"),
    ],
)
def test_every_failure_is_a_store_error_naming_a_code_never_the_answer(answer: Any, reason: str) -> None:
    keyring, _ = reader(answer)
    with pytest.raises(StoreError) as caught:
        keyring.read_current()
    assert caught.value.reason == reason and reason in caught.value.message
    assert "canary" not in caught.value.message


@pytest.mark.parametrize("parameter", [{"Type": "SecureString", "Value": "[]"}, {"Type": "String", "Value": "not json"}, "x"])
def test_a_revocation_list_of_the_wrong_shape_fails_closed(parameter: Any) -> None:
    revocations = ExtensionRevocationReader(ExtensionClient(FakeTransport(ok({"Parameter": parameter})), lambda: "t"), "/p")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        revocations.read()


def test_the_endpoint_comes_from_the_extension_port_and_reads_the_token_at_each_request() -> None:
    assert ExtensionEndpoint.from_environment({}) is None
    environ = {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773", "AWS_SESSION_TOKEN": "first"}
    endpoint = ExtensionEndpoint.from_environment(environ)
    assert endpoint is not None and endpoint.port == 2773 and endpoint.token() == "first"
    environ["AWS_SESSION_TOKEN"] = "second"
    assert endpoint.token() == "second"
    assert endpoint.transport().origin == "http://localhost:2773"
    for bad in ("0", "65536", "port", "-1", ""):
        with pytest.raises(ConfigurationError, match="PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"):
            ExtensionEndpoint.from_environment({"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": bad})
