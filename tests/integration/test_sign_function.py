"""The sign handler against the moto server: bootstrap with the rotation service, verify against the published JWKS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import jwt
import pytest

from jwks_rotator.adapters.s3_publisher import S3Publisher
from jwks_rotator.adapters.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.jwks import JWKS_PATH
from jwks_rotator.core.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.functions import load_function_module

pytestmark = pytest.mark.integration

ISSUER = "https://issuer.example"


def load_sign_app() -> Any:
    return load_function_module("sign")


def bootstrap(aws_resources: Any, algorithm: str, now: datetime) -> Settings:
    """Create, publish and activate a key the way the rotate function does."""
    settings = Settings(
        issuer=ISSUER, algorithm=algorithm, keyring_secret_id=aws_resources.secret_id, jwks_bucket=aws_resources.bucket,
        distribution_id=aws_resources.distribution_id,
    )
    store = SecretsManagerKeyringStore(aws_resources.client("secretsmanager"), aws_resources.secret_id)
    publisher = S3Publisher(
        aws_resources.client("s3"), aws_resources.bucket, settings, aws_resources.client("cloudfront"), aws_resources.distribution_id
    )
    report = RotationService(store, publisher, settings, clock=lambda: now).tick()
    assert report.converged and report.keyring.active is not None
    return settings


def published_jwks(aws_resources: Any) -> dict[str, Any]:
    body = aws_resources.client("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read()
    return json.loads(body)


@pytest.fixture
def sign_env(aws_resources: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The function's environment as the template sets it, pointed at the moto server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_resources.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("KEYRING_SECRET_ID", aws_resources.secret_id)
    monkeypatch.setenv("ISSUER", ISSUER)
    monkeypatch.setenv("ALLOWED_AUDIENCES", "orders-api,billing-api")
    return monkeypatch


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_a_token_from_the_handler_verifies_against_the_jwks_in_s3(aws_resources: Any, sign_env: Any, algorithm: str) -> None:
    bootstrap(aws_resources, algorithm, datetime.now(UTC) - timedelta(minutes=1))
    sign_env.setenv("ALGORITHM", algorithm)
    app = load_sign_app()
    request = {"sub": "user-123", "aud": "orders-api", "ttl": 300, "claims": {"roles": ["admin"], "email_verified": True}}
    response = app.handler(request, None)
    assert response["token_type"] == "Bearer" and response["alg"] == algorithm
    jwks = published_jwks(aws_resources)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == response["kid"]]
    key = jwt.PyJWK(jwk)
    claims = jwt.decode(response["token"], key.key, algorithms=[algorithm], audience="orders-api", issuer=ISSUER)
    assert claims["sub"] == "user-123" and claims["roles"] == ["admin"] and claims["exp"] == response["expires_at"]
    assert jwt.get_unverified_header(response["token"]) == {"alg": algorithm, "typ": "JWT", "kid": jwk["kid"]}


def test_warm_invocations_make_no_aws_call(aws_resources: Any, sign_env: Any) -> None:
    bootstrap(aws_resources, "ES256", datetime.now(UTC) - timedelta(minutes=1))
    calls: list[str] = []
    real_client = boto3.client

    def counting_client(*args: Any, **kwargs: Any) -> Any:
        client = real_client(*args, **kwargs)
        client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        return client

    sign_env.setattr(boto3, "client", counting_client)
    app = load_sign_app()
    assert "token" in app.handler({"sub": "u", "aud": "orders-api"}, None)
    assert calls == ["GetSecretValue"]
    for _ in range(200):
        assert "token" in app.handler({"sub": "u", "aud": "billing-api"}, None)
    assert calls == ["GetSecretValue"]


def test_an_empty_keyring_answers_signing_unavailable(aws_resources: Any, sign_env: Any) -> None:
    app = load_sign_app()
    response = app.handler({"sub": "u", "aud": "orders-api"}, None)
    assert response == {"error": "signing_unavailable", "message": "no signing key: the keyring has no active key"}


def test_a_missing_secret_answers_signing_unavailable_with_the_error_code_only(aws_resources: Any, sign_env: Any) -> None:
    sign_env.setenv("KEYRING_SECRET_ID", "no-such-secret")
    app = load_sign_app()
    response = app.handler({"sub": "u", "aud": "orders-api"}, None)
    assert response["error"] == "signing_unavailable" and "ResourceNotFoundException" in response["message"]
