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
