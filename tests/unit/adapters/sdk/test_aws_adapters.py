"""The AWS edge of the layer: the client factory, error codes, the signer's keyring read and the wiring (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from jwks_rotator.adapters.sdk.clients import ROTATION, SIGNING, ClientPolicy, client_factory, error_code, make_client
from jwks_rotator.adapters.sdk.secret_reader import SecretsManagerKeyringReader
from jwks_rotator.bootstrap.sign import build_token_signer
from jwks_rotator.core.errors import ConfigurationError, StoreError
from jwks_rotator.core.ports import StoredKeyring
from tests.sign_support import ISSUER, FakeSecrets, active_key, keyring_json, settings

THROTTLED = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down for secret-canary"}}, "GetSecretValue")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (THROTTLED, "ThrottlingException"),
        (ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject"), "404"),
        (ClientError({"Error": {"Code": "not a code: secret-canary", "Message": "x"}}, "GetSecretValue"), "ClientError"),
        (ClientError({}, "GetSecretValue"), "ClientError"),
        (EndpointConnectionError(endpoint_url="https://secretsmanager.example"), "EndpointConnectionError"),
        (RuntimeError("secret-canary"), "RuntimeError"),
    ],
)
def test_error_code_names_the_aws_code_or_the_failure_type_never_a_message(exc: Exception, code: str) -> None:
    assert error_code(exc) == code


def test_clients_get_explicit_timeouts_standard_retries_and_the_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4599")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = make_client("secretsmanager", SIGNING, aws_access_key_id="testing", aws_secret_access_key="testing")
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (SIGNING.connect_timeout, SIGNING.read_timeout)
    assert config.retries == {"mode": "standard", "total_max_attempts": SIGNING.attempts}
    assert client.meta.endpoint_url == "http://127.0.0.1:4599"
    assert client.meta.region_name == "eu-west-1"


def test_a_factory_passes_its_policy_and_options_to_every_client() -> None:
    policy = ClientPolicy(connect_timeout=1, read_timeout=7, attempts=3)
    build = client_factory(policy, endpoint_url="http://127.0.0.1:4598", region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    for service in ("s3", "cloudfront"):
        client = build(service)
        assert client.meta.endpoint_url == "http://127.0.0.1:4598"
        assert client.meta.config.read_timeout == 7 and client.meta.config.retries["total_max_attempts"] == 3
    assert ROTATION.read_timeout > SIGNING.read_timeout  # the rotate function has a 60 s budget, the sign function 5 s


def test_the_reader_returns_the_current_version_and_its_document() -> None:
    client = FakeSecrets('{"keys": []}', version_id="v7")
    assert SecretsManagerKeyringReader(client, "keyring").read_current() == StoredKeyring("v7", '{"keys": []}')
    assert client.calls == 1


@pytest.mark.parametrize(
    ("failure", "reason"),
    [(THROTTLED, "ThrottlingException"), (EndpointConnectionError(endpoint_url="https://sm.example"), "EndpointConnectionError")],
)
def test_a_failed_read_is_a_store_error_naming_the_code_only(failure: Exception, reason: str) -> None:
    client = FakeSecrets("{}")
    client.failure = failure
    with pytest.raises(StoreError) as raised:
        SecretsManagerKeyringReader(client, "keyring").read_current()
    assert raised.value.reason == reason and reason in raised.value.message
    assert "canary" not in raised.value.message and raised.value.__cause__ is None


class BinarySecret:
    """A secret stored as SecretBinary: no SecretString in the answer."""

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, Any]:
        return {"VersionId": "v1", "SecretBinary": b"secret-canary"}


def test_an_answer_of_the_wrong_shape_is_a_store_error_without_its_content() -> None:
    with pytest.raises(StoreError) as raised:
        SecretsManagerKeyringReader(BinarySecret(), "keyring").read_current()
    assert raised.value.reason == "MalformedResponse" and "canary" not in str(raised.value)


def test_the_wiring_builds_a_signer_on_a_secrets_manager_and_an_ssm_client() -> None:
    key = active_key("ES256")
    client = FakeSecrets(keyring_json(key))
    made: list[str] = []

    def clients(service: str) -> Any:
        made.append(service)
        return client

    signer = build_token_signer(settings(), clients, clock=lambda: 1_700_000_000.0)
    issued = signer.issue({"sub": "u", "aud": "orders-api"})
    assert made == ["secretsmanager", "ssm"] and client.calls == 1 and client.parameter_calls == 1
    assert issued.kid == key.kid and issued.expires_at == 1_700_000_000 + 900


def test_the_wired_signer_refuses_a_kid_on_the_revocation_parameter() -> None:
    key = active_key("ES256")
    client = FakeSecrets(keyring_json(key), revoked=(key.kid,))
    signer = build_token_signer(settings(), lambda service: client)
    outcome = signer.handle({"sub": "u", "aud": "orders-api"})
    assert outcome.response == {"error": "signing_unavailable", "message": f"no signing key: the active key {key.kid} is revoked"}


@pytest.mark.parametrize("values", [{"issuer": ISSUER}, {"keyring_secret_id": "keyring"}], ids=["no-secret", "no-issuer"])
def test_the_wiring_refuses_before_building_any_client(values: dict[str, str]) -> None:
    from jwks_rotator.core.settings import Settings

    def clients(service: str) -> Any:
        raise AssertionError("no client may be built for an incomplete configuration")

    with pytest.raises(ConfigurationError):
        build_token_signer(Settings(**values), clients)


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_SECRETS_MANAGER"])
def test_a_deployed_signer_refuses_an_aws_endpoint_from_its_environment(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the extension's port the signer reads through boto3, which honours these variables: one configuration
    # change would point the revocation record and its mirror at a server answering "nothing revoked".
    import boto3

    def no_client(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no client may be built for a redirected signer")

    monkeypatch.setattr(boto3, "client", no_client)
    environ = {"AWS_REGION": "eu-west-1", variable: "http://attacker.example"}
    with pytest.raises(ConfigurationError) as refused:
        build_token_signer(settings(jwks_bucket="stack-bucket"), environ=environ)
    assert "attacker" not in refused.value.message
