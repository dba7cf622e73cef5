"""Tokens from the sign handler verify in PyJWT, jwcrypto and jose, for every supported algorithm.

The verifiers fetch the JWKS over HTTP from the local edge (the CloudFront
stand-in), never from moto's ``.well-known`` path, and are configured the way
their documentation shows: key chosen by kid, one allowed algorithm, issuer
and audience checked.
"""

from __future__ import annotations

import json
from typing import Any

import jwt as pyjwt
import pytest

from jwks_rotator.core.keys.algorithms import algorithm_names
from jwks_rotator.core.keys.records import PRIVATE_MEMBERS
from jwks_rotator_testkit.verifiers import Expectation, NodeVerifier, jwcrypto_verify, pyjwt_verify

from .conftest import AUDIENCE, INTEROP_PROFILE, OTHER_AUDIENCE, Deployment
from .support import ALGORITHMS, split_token

pytestmark = pytest.mark.interop

CUSTOM_CLAIMS = {"roles": ["reader", "writer"], "tenant": {"id": 42, "name": "acme"}}


@pytest.fixture(scope="module")
def issued(deployment: Deployment) -> dict[str, Any]:
    """One token from the sign handler, with custom claims and an explicit ttl."""
    return deployment.issue(sub="user-7", aud=AUDIENCE, ttl=300, claims=CUSTOM_CLAIMS)


def test_the_suite_covers_every_supported_algorithm() -> None:
    assert sorted(ALGORITHMS) == sorted(algorithm_names())


def _check_claims(claims: dict[str, Any], deployment: Deployment, issued: dict[str, Any]) -> None:
    assert claims["iss"] == deployment.issuer
    assert claims["sub"] == "user-7"
    assert claims["aud"] == AUDIENCE
    assert claims["exp"] == issued["expires_at"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] <= claims["iat"]
    assert claims["roles"] == CUSTOM_CLAIMS["roles"]
    assert claims["tenant"] == CUSTOM_CLAIMS["tenant"]
    assert claims["azp"] == INTEROP_PROFILE  # the issuance profile that let the caller have it


def test_documents_are_served_by_the_edge_with_the_stored_headers(deployment: Deployment) -> None:
    discovery_body, discovery_headers = deployment.fetch(deployment.settings.discovery_uri)
    discovery = json.loads(discovery_body)
    assert discovery["issuer"] == deployment.issuer
    assert discovery["jwks_uri"] == deployment.jwks_url
    assert deployment.alg in discovery["id_token_signing_alg_values_supported"]

    body, headers = deployment.fetch(discovery["jwks_uri"])
    for response_headers in (headers, discovery_headers):
        assert response_headers["content-type"] == "application/json"
        assert response_headers["cache-control"] == "public, max-age=3600"
    jwks = json.loads(body)
    kids = [key["kid"] for key in jwks["keys"]]
    assert "dummy" not in kids  # not moto's Cognito stand-in
    assert kids[0] == deployment.active_key().kid  # active first, for verifiers that ignore kid
    assert len(kids) == 2  # the active key and the next, pending one
    for key in jwks["keys"]:
        assert key["alg"] == deployment.alg and key["use"] == "sig"
        assert not PRIVATE_MEMBERS.intersection(key)


def test_sign_handler_answers_with_the_active_key(deployment: Deployment, issued: dict[str, Any]) -> None:
    header, claims, _ = split_token(issued["token"])
    active = deployment.active_key()
    assert issued["token_type"] == "Bearer"
    assert (issued["kid"], issued["alg"]) == (active.kid, deployment.alg)
    assert header == {"alg": deployment.alg, "typ": "JWT", "kid": active.kid}
    assert claims["exp"] == issued["expires_at"]


def test_pyjwt_verifies_with_pyjwkclient(deployment: Deployment, issued: dict[str, Any]) -> None:
    client = pyjwt.PyJWKClient(deployment.jwks_url)
    assert client.get_signing_key_from_jwt(issued["token"]).key_id == issued["kid"]
    claims = pyjwt_verify(client, issued["token"], deployment.alg, deployment.expect)
    _check_claims(claims, deployment, issued)


def test_jwcrypto_verifies_with_the_fetched_key_set(deployment: Deployment, issued: dict[str, Any]) -> None:
    claims = jwcrypto_verify(deployment.jwks_text(), issued["token"], deployment.alg, deployment.expect)
    _check_claims(claims, deployment, issued)


def test_jose_verifies_with_a_remote_key_set(deployment: Deployment, issued: dict[str, Any], node_verifier: NodeVerifier) -> None:
    result = node_verifier.verify(
        issued["token"],
        alg=deployment.alg,
        expect=deployment.expect,
        jwks_url=deployment.jwks_url,
        cache_max_age_ms=600_000,  # jose's defaults: nothing here depends on a refetch
        cooldown_ms=30_000,
    )
    assert result["ok"], f"jose refused: {result.get('code')}: {result.get('message')}"
    assert result["header"]["kid"] == issued["kid"]
    _check_claims(result["claims"], deployment, issued)


def test_a_token_for_several_audiences_verifies_for_each(deployment: Deployment, node_verifier: NodeVerifier) -> None:
    issued = deployment.issue(sub="user-8", aud=[AUDIENCE, OTHER_AUDIENCE], ttl=120)
    jwks_text = deployment.jwks_text()
    client = pyjwt.PyJWKClient(deployment.jwks_url)
    for audience in (AUDIENCE, OTHER_AUDIENCE):
        expect = Expectation(issuer=deployment.issuer, audience=audience)
        assert pyjwt_verify(client, issued["token"], deployment.alg, expect)["aud"] == [AUDIENCE, OTHER_AUDIENCE]
        assert jwcrypto_verify(jwks_text, issued["token"], deployment.alg, expect)["sub"] == "user-8"
        result = node_verifier.verify(
            issued["token"], alg=deployment.alg, expect=expect, jwks_url=deployment.jwks_url, cache_max_age_ms=600_000, cooldown_ms=30_000
        )
        assert result["ok"], f"jose refused: {result.get('code')}: {result.get('message')}"
