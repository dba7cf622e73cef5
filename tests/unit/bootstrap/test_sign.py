"""The sign function's composition root: which clients it builds, the wired signer, refusals before any client (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from jwks_rotator.bootstrap.sign import build_token_signer
from jwks_rotator.core.errors import ConfigurationError
from tests.sign_support import ISSUER, FakeSecrets, active_key, keyring_json, settings


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
