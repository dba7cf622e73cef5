"""Tokens signed by KMS (key-custody kms) verify in PyJWT, jwcrypto and jose, for every algorithm moto's KMS signs correctly.

The rotator creates the KMS keys on the moto server; the sign handler signs
with one ``Sign`` call per token; the verifiers fetch the JWKS over HTTP from
the local edge. PS256 and EdDSA are not in this matrix: moto signs PS256
with the maximum PSS salt length (strict verifiers reject it) and cannot
create Ed25519 keys; ``tests/unit/core/lifecycle/test_kms_custody.py`` covers their
signing path against a test double that signs as AWS does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest

from jwks_rotator.core.keys.records import PRIVATE_MEMBERS
from jwks_rotator_testkit.verifiers import NodeVerifier, jwcrypto_verify, pyjwt_verify
from tests.kms_doubles import ROTATE_ROLE, SIGN_ROLE

from .conftest import AUDIENCE, Deployment, InteropCaller, make_deployment
from .support import split_token

pytestmark = pytest.mark.interop

KMS_ALGORITHMS = ("RS256", "ES256", "ES384", "ES512")


@pytest.fixture(scope="module", params=[pytest.param(alg, id=f"kms-{alg}") for alg in KMS_ALGORITHMS])
def kms_deployment(request: pytest.FixtureRequest, moto_endpoint: str, interop_caller: InteropCaller) -> Iterator[Deployment]:
    extra = {"key_custody": "kms", "kms_stack_tag": f"interop-{uuid.uuid4().hex[:8]}", "kms_sign_role_arn": SIGN_ROLE,
             "kms_rotate_role_arn": ROTATE_ROLE, "kms_handover_wait": "0s"}  # moto applies Enable/Disable at once
    deployed = make_deployment(moto_endpoint, request.param, interop_caller, extra_settings=extra)
    yield deployed
    deployed.edge.stop()


@pytest.fixture(scope="module")
def kms_issued(kms_deployment: Deployment) -> dict[str, Any]:
    return kms_deployment.issue(sub="user-7", aud=AUDIENCE, ttl=300, claims={"roles": ["reader"]})


def test_the_keys_are_in_kms_and_the_jwks_holds_public_members_only(kms_deployment: Deployment) -> None:
    active = kms_deployment.active_key()
    assert active.kms_key_arn is not None and active.custody == "kms"
    for key in kms_deployment.jwks()["keys"]:
        assert not PRIVATE_MEMBERS.intersection(key) and key["alg"] == kms_deployment.alg


def test_pyjwt_verifies_a_kms_signed_token(kms_deployment: Deployment, kms_issued: dict[str, Any]) -> None:
    header, _, signature = split_token(kms_issued["token"])
    assert header["kid"] == kms_deployment.active_key().kid
    if kms_deployment.alg.startswith("ES"):
        assert len(signature) == {"ES256": 64, "ES384": 96, "ES512": 132}[kms_deployment.alg]  # r || s, not DER
    claims = pyjwt_verify(pyjwt.PyJWKClient(kms_deployment.jwks_url), kms_issued["token"], kms_deployment.alg, kms_deployment.expect)
    assert claims["sub"] == "user-7" and claims["roles"] == ["reader"]


def test_jwcrypto_verifies_a_kms_signed_token(kms_deployment: Deployment, kms_issued: dict[str, Any]) -> None:
    claims = jwcrypto_verify(kms_deployment.jwks_text(), kms_issued["token"], kms_deployment.alg, kms_deployment.expect)
    assert claims["sub"] == "user-7"


def test_jose_verifies_a_kms_signed_token(kms_deployment: Deployment, kms_issued: dict[str, Any], node_verifier: NodeVerifier) -> None:
    result = node_verifier.verify(kms_issued["token"], alg=kms_deployment.alg, expect=kms_deployment.expect,
                                  jwks_url=kms_deployment.jwks_url, cache_max_age_ms=600_000, cooldown_ms=30_000)
    assert result["ok"], f"jose refused: {result.get('code')}: {result.get('message')}"
    assert result["claims"]["sub"] == "user-7"


def test_every_signature_has_the_fixed_jws_width(kms_deployment: Deployment) -> None:
    """A dozen tokens: with ES512 most need left padding (a short DER integer), so a wrong width would show."""
    client = pyjwt.PyJWKClient(kms_deployment.jwks_url)
    width = {"RS256": 256, "ES256": 64, "ES384": 96, "ES512": 132}[kms_deployment.alg]
    for _ in range(12):
        issued = kms_deployment.issue(sub="user-9", aud=AUDIENCE, ttl=60)
        assert len(split_token(issued["token"])[2]) == width
        pyjwt_verify(client, issued["token"], kms_deployment.alg, kms_deployment.expect)
